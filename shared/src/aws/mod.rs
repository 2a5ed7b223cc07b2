//! AWS adapters of the ports, one file per adapter with its tests beside it
//! (`fsx.rs` and `fsx/tests.rs`, ...), and how SDK errors become [`FerryError`]s.
//!
//! - [`AwsTasks`] (`tasks.rs`): `start-task`, `task-status`, `cancel-task`; it sends each call
//!   to FSx (`fsx.rs`: data repository tasks) or DataSync (`datasync.rs`: task executions).
//! - [`AwsTrigger`] (`trigger.rs`): the entries' (`s3-trigger`, `submit`) runner starts (Step
//!   Functions `StartExecution`, `sfn.rs`) and S3 `PutObject` (manifests).
//! - [`AwsTokens`] (`sfn.rs`): `SendTaskSuccess` and `SendTaskHeartbeat` for runners waiting on
//!   a DataSync run's end (`lane`, `datasync-event`, `submit`'s cancel).
//! - [`AwsNotify`] (`notify.rs`): `notify`'s SNS `Publish` and S3 reads.
//! - [`AwsLanes`] (`lanes.rs`): the lane table in DynamoDB, which every function but
//!   `s3-trigger`'s manifests touches.
//! - [`retry`]: how many attempts the SDK makes before an error reaches the state machine.
//!
//! Each adapter names the operations it calls in full (`client.create_data_repository_task()`),
//! which the security test reads to check every function's IAM policy against its code.

mod datasync;
mod datasync_task;
mod fsx;
mod lanes;
mod notify;
pub mod retry;
mod sfn;
mod tasks;
mod trigger;

#[cfg(test)]
mod test_support;

pub use lanes::AwsLanes;
pub use notify::AwsNotify;
pub use sfn::AwsTokens;
pub use tasks::AwsTasks;
pub use trigger::AwsTrigger;

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{AwsError, FerryError};

/// How an operation's modeled error should be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Conflict,
    /// Throttling a service reports with its own code (SNS `Throttled`, `KMSThrottling`).
    Throttled,
    LimitExceeded,
    NotFound,
    Rejected,
}

/// Wraps an SDK error into the `FerryError` its class calls for. Errors without a class are
/// throttling (by code, after the SDK's own retries) or a generic `AwsService` error.
fn classify<E, R>(
    operation: &'static str,
    error: SdkError<E, R>,
    class: Option<Class>,
) -> FerryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let source = AwsError::new(operation, error);
    match class {
        Some(Class::Conflict) => FerryError::TaskConflict {
            message: source.message().to_owned(),
            source: Some(source),
        },
        Some(Class::LimitExceeded) => FerryError::LimitExceeded { source },
        Some(Class::NotFound) => FerryError::NotFound {
            message: source.message().to_owned(),
            source: Some(source),
        },
        Some(Class::Rejected) => FerryError::Rejected { source },
        Some(Class::Throttled) => FerryError::Throttled { source },
        None if source.is_throttling() => FerryError::Throttled { source },
        None => FerryError::AwsService { source },
    }
}

/// Awaits a request. Its error is classified by `class`, which knows the operation's modeled
/// errors, and otherwise as [`classify`] does (throttling by code, then `AwsService`).
async fn send<T, E, R>(
    operation: &'static str,
    request: impl std::future::Future<Output = Result<T, SdkError<E, R>>>,
    class: impl FnOnce(&E) -> Option<Class>,
) -> Result<T, FerryError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    request.await.map_err(|error| {
        let class = error.as_service_error().and_then(class);
        classify(operation, error, class)
    })
}

/// Errors an operation does not model: only throttling and service errors, by code.
fn unmodeled<E>(_: &E) -> Option<Class> {
    None
}

/// An S3 error: a missing bucket is `NotFound`.
fn s3_class<E: ProvideErrorMetadata>(error: &E) -> Option<Class> {
    (error.code() == Some("NoSuchBucket")).then_some(Class::NotFound)
}

/// An S3 object's body, read whole (a read that breaks off is a malformed response of `op`).
async fn read_body(
    op: &'static str,
    body: aws_sdk_s3::primitives::ByteStream,
) -> Result<Vec<u8>, FerryError> {
    let collected = body.collect().await.map_err(|e| FerryError::AwsService {
        source: AwsError::malformed(op, &format!("body could not be read: {e}")),
    })?;
    Ok(collected.into_bytes().to_vec())
}

/// An identifier a response must carry (the API reference promises it), parsed; a missing or
/// malformed one is a malformed response.
fn response_id<T>(
    operation: &'static str,
    field: &str,
    value: Option<&str>,
    parse: fn(&str) -> Result<T, crate::ids::IdError>,
) -> Result<T, FerryError> {
    let malformed = |what: String| FerryError::AwsService {
        source: AwsError::malformed(operation, &what),
    };
    let value = value.ok_or_else(|| malformed(format!("no {field}")))?;
    parse(value).map_err(|e| malformed(format!("{field} {e}")))
}

/// A builder refused a request Ferry assembled from the job: a field the API requires is
/// missing from `job.{field}`.
fn build_error(field: &str, error: aws_smithy_types::error::operation::BuildError) -> FerryError {
    FerryError::invalid(format!("job.{field}"), error.to_string())
}
