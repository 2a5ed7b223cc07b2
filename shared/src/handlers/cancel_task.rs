//! `cancel-task`: cancels the task (a no-op when it already ended) and returns its status
//! afterwards. Called by the lane runner, it renews the runner's lease first.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use super::TaskInput;
use crate::config::{Laned, TaskConfig};
use crate::domain::status::TaskStatus;
use crate::error::FerryError;
use crate::ports::{CancelOutcome, CancelTask, DescribeTask, LaneLease};

/// What the cancellation did, and the task's status after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelTaskOutput {
    pub cancel: CancelOutcome,
    #[serde(flatten)]
    pub status: TaskStatus,
}

pub async fn handle<P: CancelTask + DescribeTask, L: LaneLease>(
    (tasks, lanes): &(P, L),
    config: &Laned<TaskConfig>,
    event: LambdaEvent<Value>,
) -> Result<CancelTaskOutput, FerryError> {
    let input @ TaskInput { task, .. } = &TaskInput::parse(event.payload)?;
    if let Some(runner) = &input.runner {
        runner.renew(lanes, &config.lanes).await?;
    }
    let cancel = tasks.cancel_task(task).await?;
    let snapshot = tasks.describe_task(task).await?;
    let status = TaskStatus::from_snapshot(snapshot, input.context(&config.config, true));
    info!(task = %status.task, cancel = ?cancel, lifecycle = %status.lifecycle, "cancel");
    Ok(CancelTaskOutput { cancel, status })
}
