//! The composition root, what the binaries and the CLI share at the top: [`serve`] (a
//! function's cold start and event loop), the AWS configuration ([`load_aws_config`]), the
//! clock and the functions' logging. Use cases take the time as a value
//! ([`crate::lanes::runner::Timing`]); their callers read it here. Handlers never reach here
//! for AWS: the binary hands them their ports.

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
use lambda_runtime::{LambdaEvent, service_fn};
use serde::Serialize;
use serde_json::Value;

use crate::aws;
use crate::config::{ConfigError, FromEnvironment, LaneConfig};
use crate::error::FerryError;
use crate::lanes::record::Millis;
use crate::lanes::runner::Timing;

/// Milliseconds since the Unix epoch, now: the lane table's clock. Built with the `test-util`
/// feature (never deployed), a test may set its thread's clock instead
/// (`fakes::set_virtual_now`): the lane protocol's simulation drives leases with it.
pub fn now_millis() -> Millis {
    #[cfg(feature = "test-util")]
    if let Some(now) = crate::fakes::virtual_now() {
        return now;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now, and how long a lease taken or renewed now lasts.
pub fn timing(lanes: &LaneConfig) -> Timing {
    Timing {
        now: now_millis(),
        lease_ms: u64::from(lanes.lease_seconds) * 1000,
    }
}

/// The functions' own log level (template.yaml sets it from the `LogLevel` parameter):
/// `TRACE`, `DEBUG`, `INFO`, `WARN`, `ERROR` or `FATAL`.
pub const ENV_LOG_LEVEL: &str = "FERRY_LOG_LEVEL";

/// The level Ferry's log lines are kept at: `FERRY_LOG_LEVEL`, else Lambda's
/// `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else INFO (`lookup` reads the environment).
///
/// The functions filter their own lines because Lambda's filter cannot be used: "If the
/// `level` value field is invalid or missing, Lambda assigns the log output the level INFO"
/// (Lambda developer guide, "Log-level filtering"), so with `ApplicationLogLevel` at WARN or
/// above it drops every Embedded Metric Format line (EMF has no `level`), and with them every
/// metric, the dashboard and the alarms on them. template.yaml keeps Lambda's filter at TRACE
/// and passes `LogLevel` here instead; EMF lines are written past this filter. Tracing has no
/// FATAL level and Ferry logs nothing fatal: FATAL keeps no log line (metrics still go out).
/// A value that is no level is INFO (the template allows only levels).
pub fn log_level(lookup: impl Fn(&str) -> Option<String>) -> LevelFilter {
    let chosen = [ENV_LOG_LEVEL, "AWS_LAMBDA_LOG_LEVEL", "RUST_LOG"]
        .into_iter()
        .find_map(|name| lookup(name).filter(|v| !v.trim().is_empty()));
    match chosen.as_deref().map(str::trim) {
        Some(level) if level.eq_ignore_ascii_case("FATAL") => LevelFilter::OFF,
        Some(level) => level.parse().unwrap_or(LevelFilter::INFO),
        None => LevelFilter::INFO,
    }
}

/// Sets up the functions' tracing: JSON lines (each with its `level`) when Lambda's log format
/// is JSON (`AWS_LAMBDA_LOG_FORMAT`), text otherwise, at [`log_level`] (`RUST_LOG` directives
/// may refine it). What `lambda_runtime::tracing::init_default_subscriber` does, but with
/// Ferry's level first.
pub fn init_logging() {
    let env = |name: &str| std::env::var(name).ok();
    let filter = EnvFilter::builder()
        .with_default_directive(log_level(env).into())
        .from_env_lossy();
    let collector = lambda_runtime::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter);
    let json = env("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
    if json {
        collector.json().init();
    } else {
        collector.init();
    }
}

/// Runs a function: sets up JSON-capable tracing at Ferry's log level
/// ([`init_logging`]), reads the configuration `C` from the environment, loads
/// the AWS configuration, builds the function's ports with `ports`, then hands every event to
/// `handler`. A configuration error stops the function at cold start, naming the variable.
pub async fn serve<C, P, O>(
    ports: impl FnOnce(&aws_config::SdkConfig, &C) -> P,
    handler: impl AsyncFn(&P, &C, LambdaEvent<Value>) -> Result<O, FerryError>,
) -> Result<(), lambda_runtime::Error>
where
    C: FromEnvironment,
    O: Serialize,
{
    serve_loaded(
        async |_: &aws_config::SdkConfig| C::from_env(),
        ports,
        handler,
    )
    .await
}

/// As [`serve`], with a configuration that `load` reads with the AWS configuration in hand
/// (`s3-trigger`'s routes may be an S3 object).
pub async fn serve_loaded<C, P, O>(
    load: impl AsyncFnOnce(&aws_config::SdkConfig) -> Result<C, ConfigError>,
    ports: impl FnOnce(&aws_config::SdkConfig, &C) -> P,
    handler: impl AsyncFn(&P, &C, LambdaEvent<Value>) -> Result<O, FerryError>,
) -> Result<(), lambda_runtime::Error>
where
    O: Serialize,
{
    init_logging();
    let aws = load_aws_config().await;
    let config = load(&aws).await?;
    let ports = ports(&aws, &config);
    // Boxed: the handler's future type stays out of the runtime's (whose layout the optimizer
    // otherwise computes past rustc's query depth limit); one allocation per invocation.
    let handle = |event| -> Pin<Box<dyn Future<Output = Result<O, FerryError>> + '_>> {
        Box::pin(handler(&ports, &config, event))
    };
    lambda_runtime::run(service_fn(handle)).await
}

/// Loads the AWS configuration once, for a function's cold start. Endpoints follow the standard
/// variables (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_FSX`, ...), which is how the local emulator
/// is reached. Every call is retried in standard mode, up to [`aws::retry::MAX_ATTEMPTS`]
/// attempts, unless `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE` say otherwise ([`aws::retry`] says
/// why).
pub async fn load_aws_config() -> aws_config::SdkConfig {
    let loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client());
    match aws::retry::retry_config(|name| std::env::var(name).ok()) {
        Some(retry) => loader.retry_config(retry),
        None => loader,
    }
    .load()
    .await
}

/// The HTTPS client of every SDK client: the SDK's own (`aws-smithy-http-client`: hyper 1,
/// rustls, the machine's CA certificates, the SDK's cipher-suite restriction), with *ring* as the
/// crypto provider instead of the `default-https-client` feature's aws-lc. Both give the same
/// TLS 1.2/1.3 cipher suites; what aws-lc adds is the post-quantum hybrid key exchange
/// X25519MLKEM768 (rustls offers it only with aws-lc). ring makes each zip ~0.25 MB smaller, is
/// no slower at cold start, and drops aws-lc's C sources (and cmake) from every build;
/// bench/README.md has the figures.
fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(vars: &[(&str, &str)]) -> LevelFilter {
        log_level(|name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn each_log_level_the_template_allows_is_ferrys_own_filter() {
        let cases = [
            ("TRACE", LevelFilter::TRACE),
            ("DEBUG", LevelFilter::DEBUG),
            ("INFO", LevelFilter::INFO),
            ("WARN", LevelFilter::WARN),
            ("ERROR", LevelFilter::ERROR),
            ("FATAL", LevelFilter::OFF),
        ];
        for (name, filter) in cases {
            // Lambda's own variable says TRACE (template.yaml): Ferry's wins.
            assert_eq!(
                level(&[(ENV_LOG_LEVEL, name), ("AWS_LAMBDA_LOG_LEVEL", "TRACE")]),
                filter,
                "{name}"
            );
        }
        assert_eq!(
            level(&[("AWS_LAMBDA_LOG_LEVEL", "warn")]),
            LevelFilter::WARN
        );
        assert_eq!(level(&[("RUST_LOG", "debug")]), LevelFilter::DEBUG);
        assert_eq!(
            level(&[(ENV_LOG_LEVEL, " "), ("RUST_LOG", "error")]),
            LevelFilter::ERROR
        );
        assert_eq!(level(&[(ENV_LOG_LEVEL, "loud")]), LevelFilter::INFO);
        assert_eq!(level(&[]), LevelFilter::INFO);
    }
}
