//! Ferry: move data between Amazon S3 and file systems on AWS with event-driven Lambda functions.
//!
//! This crate holds everything the functions share: the job spec ([`job`]) and its validation
//! ([`validate`]), task handles and the normalized status ([`status`]), adaptive polling
//! ([`poll`]), idempotency keys ([`token`]), errors with stable Lambda `error_type`s
//! ([`error`]), the ports ([`ports`]) with their AWS adapters ([`aws`]), and the handlers
//! ([`handlers`]) the binaries under `functions/` run.

pub mod aws;
pub mod config;
pub mod error;
pub mod handlers;
pub mod input;
pub mod job;
pub mod notify;
pub mod poll;
pub mod ports;
pub mod status;
pub mod token;
pub mod trigger;
pub mod validate;

#[cfg(feature = "test-util")]
pub mod fakes;

pub use config::Config;
pub use error::FerryError;
pub use job::{JobKind, JobSpec, ValidJob};
pub use status::{Phase, TaskHandle, TaskStatus};

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
