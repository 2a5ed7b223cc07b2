//! Ferry: move data between Amazon S3 and file systems on AWS with event-driven Lambda functions.
//!
//! This crate (the `shared/` folder) is everything the binaries under `functions/` run; each
//! binary only reads its configuration, builds its AWS clients and hands every event to a
//! handler here.
//!
//! # Layout
//!
//! One home for each concept; the folders say what is where.
//!
//! - [`domain`]: the job spec and its validation, DataSync task definitions Ferry ensures,
//!   task handles and the normalized status, adaptive polling, idempotency keys, input parsing
//!   with field paths, bounded text. Pure: no AWS calls.
//! - [`budget`]: byte budgets: what every payload crossing a boundary (a state, an item, a
//!   transaction, a message, an answer) may weigh, measured from its serialized bytes.
//! - [`ids`]: identifiers parsed once (file system ids, DataSync and SNS ARNs, `s3://` URLs):
//!   every ARN and URL is split there and nowhere else.
//! - [`error`]: [`FerryError`] and the stable `error_type`s the state machine matches on.
//! - [`config`]: every function's configuration, read from the environment by one reader.
//! - [`ports`]: every port trait (start, describe, cancel a task; start an execution, write an
//!   object; publish, read reports), grouped by the function that uses it.
//! - [`handlers`]: the Lambda entry points and their input/output types, one file per function.
//! - [`metrics`]: CloudWatch metrics in the Embedded Metric Format (one log line each).
//! - [`lanes`]: where tasks run one at a time (a file system, a DataSync task), job ids, and
//!   the merging of pending jobs into one run.
//! - [`trigger`]: `s3-trigger`'s logic: event envelopes, key decoding, routes, coalescing.
//! - [`notify`]: `notify`'s logic: the completion report, SNS messages, failure-report digests.
//! - [`aws`]: the adapters of the ports over the AWS SDK, each with its tests beside it, and
//!   how SDK errors are classified and retried.
//! - `fakes` (feature `test-util`): in-memory fakes of the ports, for tests.

pub mod aws;
pub mod budget;
pub mod config;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod ids;
pub mod lanes;
pub mod metrics;
pub mod notify;
pub mod ports;
pub mod runtime;
pub mod trigger;

#[cfg(feature = "test-util")]
pub mod fakes;

pub use error::FerryError;

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
