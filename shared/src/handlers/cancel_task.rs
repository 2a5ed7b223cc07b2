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
use crate::lanes::runner::stored_run;
use crate::ports::{CancelOutcome, CancelTask, DescribeTask, LaneLease, ReadRuns};

/// What the cancellation did, and the task's status after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelTaskOutput {
    pub cancel: CancelOutcome,
    #[serde(flatten)]
    pub status: TaskStatus,
}

pub async fn handle<P: CancelTask + DescribeTask, L: LaneLease + ReadRuns>(
    (tasks, lanes): &(P, L),
    config: &Laned<TaskConfig>,
    event: LambdaEvent<Value>,
) -> Result<CancelTaskOutput, FerryError> {
    let input @ TaskInput { task, .. } = &TaskInput::parse(event.payload)?;
    let run = match &input.runner {
        Some(runner) => {
            runner.renew(lanes, &config.lanes).await?;
            Some(stored_run(lanes, &runner.lane, &runner.run).await?)
        }
        None => None,
    };
    let job = input.job(run.as_ref().map(|r| &r.spec))?;
    let cancel = tasks.cancel_task(task).await?;
    let snapshot = tasks.describe_task(task).await?;
    let status = TaskStatus::from_snapshot(snapshot, input.context(job, &config.config, true));
    info!(task = %status.task, cancel = ?cancel, lifecycle = %status.lifecycle, "cancel");
    super::bounded(CancelTaskOutput { cancel, status }, "the cancel answer")
}
