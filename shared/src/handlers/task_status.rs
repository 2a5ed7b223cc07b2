//! `task-status`: describes the task and returns its normalized status.
//!
//! Called by the lane runner, it also renews the runner's lease and reads the lane: while jobs
//! wait there, the next check comes within `FERRY_BUSY_POLL_MAX_SECONDS`, so the lane idles at
//! most that long between runs; a cancel asked for one of the run's jobs is passed on
//! (`cancel_asked`). Every wait stays under a third of the lease, which the next check renews.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use super::{RunnerContext, TaskInput};
use crate::config::{LaneConfig, Laned, TaskConfig};
use crate::domain::status::TaskStatus;
use crate::error::FerryError;
use crate::lanes::runner::stored_run;
use crate::ports::{DescribeTask, LaneLease, LaneView};

/// The status, and what the lane says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusOutput {
    #[serde(flatten)]
    pub status: TaskStatus,
    /// Jobs wait in the lane for this run to end.
    pub waiting: bool,
    /// Someone asked to cancel one of the run's jobs: the runner cancels the task.
    pub cancel_asked: bool,
}

pub async fn handle<P: DescribeTask, L: LaneView + LaneLease>(
    (tasks, lanes): &(P, L),
    config: &Laned<TaskConfig>,
    event: LambdaEvent<Value>,
) -> Result<StatusOutput, FerryError> {
    let input = TaskInput::parse(event.payload)?;
    let (waiting, cancel_asked) = match &input.runner {
        Some(runner) => lane_news(lanes, &config.lanes, runner).await?,
        None => (false, false),
    };
    let snapshot = tasks.describe_task(&input.task).await?;
    let context = input.context(&config.config, input.cancel_requested);
    let mut status = TaskStatus::from_snapshot(snapshot, context);
    if input.runner.is_some() {
        status.next_poll_seconds = capped(status.next_poll_seconds, waiting, &config.lanes);
    }
    info!(
        task = %status.task, lifecycle = %status.lifecycle, phase = status.phase.as_str(),
        done = status.done, timed_out = status.timed_out, next_poll_seconds = status.next_poll_seconds,
        waiting, cancel_asked, "task status"
    );
    Ok(StatusOutput {
        status,
        waiting,
        cancel_asked,
    })
}

/// Renews the runner's lease, then reads whether jobs wait and whether a cancel was asked.
pub(super) async fn lane_news<L: LaneView + LaneLease>(
    lanes: &L,
    config: &LaneConfig,
    runner: &RunnerContext,
) -> Result<(bool, bool), FerryError> {
    runner.renew(lanes, config).await?;
    let waiting = !lanes.pending(&runner.lane, 1).await?.is_empty();
    let run = stored_run(lanes, &runner.lane, &runner.run).await?;
    Ok((waiting, run.cancel.is_some()))
}

/// The wait, within `FERRY_BUSY_POLL_MAX_SECONDS` while jobs wait and within a third of the
/// lease always.
fn capped(seconds: u32, waiting: bool, lanes: &LaneConfig) -> u32 {
    let mut cap = (lanes.lease_seconds / 3).max(1);
    if waiting {
        cap = cap.min(lanes.busy_poll_max_seconds);
    }
    seconds.min(cap)
}
