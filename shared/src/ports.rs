//! Ports: the narrow capabilities the handlers need, so they can run against AWS
//! ([`crate::aws::AwsTasks`]) or against in-memory fakes (`fakes`, behind `test-util`).

use std::future::Future;

use crate::error::FerryError;
use crate::job::ValidJob;
use crate::status::{TaskHandle, TaskSnapshot};
use crate::token::IdempotencyKey;

/// Starts the FSx data repository task or DataSync execution a job describes.
pub trait StartTask {
    /// Starts `job` at most once per `key`: a second call with the same key returns the task
    /// the first one started.
    fn start_task(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<TaskHandle, FerryError>> + Send;
}

/// Describes a task as its service reports it.
pub trait DescribeTask {
    fn describe_task(
        &self,
        task: &TaskHandle,
    ) -> impl Future<Output = Result<TaskSnapshot, FerryError>> + Send;
}

/// What a cancellation request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The service accepted the request; the task moves to CANCELING/CANCELLING.
    Requested,
    /// The task had already ended: nothing to cancel (FSx `DataRepositoryTaskEnded`, or a
    /// DataSync execution in SUCCESS/ERROR).
    AlreadyEnded,
}

/// Cancels a running task.
pub trait CancelTask {
    fn cancel_task(
        &self,
        task: &TaskHandle,
    ) -> impl Future<Output = Result<CancelOutcome, FerryError>> + Send;
}
