//! `task-status`: describes the task and returns its normalized status.

use lambda_runtime::LambdaEvent;
use serde_json::Value;
use tracing::info;

use super::TaskInput;
use crate::config::TaskConfig;
use crate::domain::status::TaskStatus;
use crate::error::FerryError;
use crate::ports::DescribeTask;

pub async fn handle<P: DescribeTask>(
    port: &P,
    config: &TaskConfig,
    event: LambdaEvent<Value>,
) -> Result<TaskStatus, FerryError> {
    let input = TaskInput::parse(event.payload)?;
    let snapshot = port.describe_task(&input.task).await?;
    let status = TaskStatus::from_snapshot(snapshot, input.context(config, input.cancel_requested));
    info!(
        task = %status.task, lifecycle = %status.lifecycle, phase = status.phase.as_str(),
        done = status.done, timed_out = status.timed_out, next_poll_seconds = status.next_poll_seconds,
        "task status"
    );
    Ok(status)
}
