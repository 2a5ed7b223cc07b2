//! AWS adapters of the ports: FSx data repository tasks and DataSync task executions.

mod datasync;
mod fsx;
mod notify;
pub mod retry;
mod trigger;

pub use notify::AwsNotify;
pub use trigger::AwsTrigger;

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::error::{AwsError, FerryError};
use crate::job::ValidJob;
use crate::ports::{CancelOutcome, CancelTask, DescribeTask, StartTask};
use crate::status::{TaskHandle, TaskSnapshot};
use crate::token::IdempotencyKey;

/// Both services behind the three ports; each call goes to the service the job or handle names.
#[derive(Debug, Clone)]
pub struct AwsTasks {
    fsx: aws_sdk_fsx::Client,
    datasync: aws_sdk_datasync::Client,
}

impl AwsTasks {
    /// Builds both clients from one loaded configuration. Building a client does no I/O, so a
    /// function that only ever sees FSx jobs pays nothing for the DataSync one.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        AwsTasks {
            fsx: aws_sdk_fsx::Client::new(config),
            datasync: aws_sdk_datasync::Client::new(config),
        }
    }

    /// Adapters over given clients (tests use mocked ones).
    pub fn from_clients(fsx: aws_sdk_fsx::Client, datasync: aws_sdk_datasync::Client) -> Self {
        AwsTasks { fsx, datasync }
    }
}

impl StartTask for AwsTasks {
    async fn start_task(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> Result<TaskHandle, FerryError> {
        if job.kind.is_fsx() {
            fsx::start(&self.fsx, job, key).await
        } else {
            datasync::start(&self.datasync, job, key).await
        }
    }
}

impl DescribeTask for AwsTasks {
    async fn describe_task(&self, task: &TaskHandle) -> Result<TaskSnapshot, FerryError> {
        match task {
            TaskHandle::Fsx {
                file_system_id,
                task_id,
            } => fsx::describe(&self.fsx, file_system_id, task_id).await,
            TaskHandle::Datasync { task_execution_arn } => {
                datasync::describe(&self.datasync, task_execution_arn).await
            }
        }
    }
}

impl CancelTask for AwsTasks {
    async fn cancel_task(&self, task: &TaskHandle) -> Result<CancelOutcome, FerryError> {
        match task {
            TaskHandle::Fsx { task_id, .. } => fsx::cancel(&self.fsx, task_id).await,
            TaskHandle::Datasync { task_execution_arn } => {
                datasync::cancel(&self.datasync, task_execution_arn).await
            }
        }
    }
}

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

/// An S3 error: a missing bucket is `NotFound`; anything else is classified as usual.
fn s3_error<E, R>(operation: &'static str, error: SdkError<E, R>) -> FerryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: fmt::Debug + Send + Sync + 'static,
{
    let class = (error.code() == Some("NoSuchBucket")).then_some(Class::NotFound);
    classify(operation, error, class)
}

/// A builder refused a request Ferry assembled: a field the API requires is missing.
fn build_error(field: &str, error: aws_smithy_types::error::operation::BuildError) -> FerryError {
    FerryError::invalid(format!("job.{field}"), error.to_string())
}

#[cfg(test)]
mod tests;
