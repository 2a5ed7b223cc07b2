//! `cancel-task`: cancels the task (a no-op when it already ended) and returns its status
//! afterwards.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use super::TaskInput;
use crate::config::TaskConfig;
use crate::domain::status::TaskStatus;
use crate::error::FerryError;
use crate::ports::{CancelOutcome, CancelTask, DescribeTask};

/// What the cancellation did, and the task's status after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelTaskOutput {
    pub cancel: CancelOutcome,
    #[serde(flatten)]
    pub status: TaskStatus,
}

pub async fn handle<P: CancelTask + DescribeTask>(
    port: &P,
    config: &TaskConfig,
    event: LambdaEvent<Value>,
) -> Result<CancelTaskOutput, FerryError> {
    let input @ TaskInput { task, .. } = &TaskInput::parse(event.payload)?;
    let cancel = port.cancel_task(task).await?;
    let snapshot = port.describe_task(task).await?;
    let status = TaskStatus::from_snapshot(snapshot, input.context(config, true));
    info!(task = %status.task, cancel = ?cancel, lifecycle = %status.lifecycle, "cancel");
    Ok(CancelTaskOutput { cancel, status })
}
