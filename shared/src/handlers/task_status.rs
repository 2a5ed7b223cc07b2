//! `task-status`: describes the task and returns its normalized status.
//!
//! Called by the lane runner, it also renews the runner's lease and reads the lane: while jobs
//! wait there, the next check comes within `FERRY_BUSY_POLL_MAX_SECONDS`, so the lane idles at
//! most that long between runs; a cancel asked for one of the run's jobs is passed on
//! (`cancel_asked`). Every wait stays under a third of the lease, which the next check renews.
//!
//! A task seen being cancelled (`CANCELING`, `CANCELLING`) when Ferry did not ask was cancelled
//! from outside (the console, the AWS CLI, the API): the run record remembers it, so the run
//! ends `canceled` rather than `failed` (a cancelled DataSync execution ends `ERROR`).

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use super::{RunnerContext, TaskInput, now_millis};
use crate::config::{LaneConfig, Laned, TaskConfig};
use crate::domain::status::{TaskHandle, TaskStatus, is_canceling};
use crate::error::FerryError;
use crate::lanes::record::RunRecord;
use crate::lanes::runner::stored_run;
use crate::ports::{DescribeTask, LaneLease, LaneView, NoteRuns};

/// The status, and what the lane says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusOutput {
    #[serde(flatten)]
    pub status: TaskStatus,
    /// Jobs wait in the lane for this run to end.
    pub waiting: bool,
    /// Someone asked to cancel one of the run's jobs: the runner cancels the task.
    pub cancel_asked: bool,
    /// A DataSync run that goes on: the runner waits for its end event instead of polling
    /// ([`crate::lanes::wake`]), this long at most.
    /// Always present (null: poll), so the state machine can select it.
    #[serde(rename = "await", default)]
    pub wait: Option<AwaitPlan>,
}

/// The runner's callback wait (`AwaitEnd`'s `HeartbeatSecondsPath` and `TimeoutSecondsPath`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwaitPlan {
    /// `FERRY_DATASYNC_FALLBACK_POLL_SECONDS`: without news for this long, the runner checks.
    pub heartbeat_seconds: u32,
    /// Until the task's timeout, counted from its creation as `timed_out` is (at least 1).
    pub timeout_seconds: u64,
}

pub async fn handle<P: DescribeTask, L: LaneView + LaneLease + NoteRuns>(
    (tasks, lanes): &(P, L),
    config: &Laned<TaskConfig>,
    event: LambdaEvent<Value>,
) -> Result<StatusOutput, FerryError> {
    let input = TaskInput::parse(event.payload)?;
    let news = match &input.runner {
        Some(runner) => Some(lane_news(lanes, &config.lanes, runner).await?),
        None => None,
    };
    let job = input.job(news.as_ref().map(|n| &n.run.spec))?;
    let snapshot = tasks.describe_task(&input.task).await?;
    let mut cancelled = input.cancel_requested;
    if let Some(news) = &news {
        cancelled |= cancelled_outside(lanes, &news.run, &snapshot.lifecycle, &input).await?;
    }
    let context = input.context(job, &config.config, cancelled);
    let timeout_seconds = context.timeout_seconds;
    let mut status = TaskStatus::from_snapshot(snapshot, context);
    let (waiting, cancel_asked) = news
        .as_ref()
        .map_or((false, false), |n| (n.waiting, n.run.cancel.is_some()));
    if input.runner.is_some() {
        status.next_poll_seconds = within_lease(status.next_poll_seconds, waiting, &config.lanes);
    }
    let wait = match &news {
        Some(news) if !cancel_asked && !input.cancel_requested => await_plan(
            &status,
            timeout_seconds,
            config.lanes.datasync_fallback_seconds,
        ),
        _ => None,
    };
    info!(
        task = %status.task, lifecycle = %status.lifecycle, phase = status.phase.as_str(),
        done = status.done, timed_out = status.timed_out, next_poll_seconds = status.next_poll_seconds,
        waiting, cancel_asked, awaits = wait.is_some(), "task status"
    );
    super::bounded(
        StatusOutput {
            status,
            waiting,
            cancel_asked,
            wait,
        },
        "the task status",
    )
}

/// The wait for a DataSync run that goes on, when events are on (a fallback period is set):
/// until the task's own timeout (`timeout_seconds` from its creation), when the status check
/// that ends the wait finds it `timed_out` and the runner cancels it. (Issue 25: the wait used
/// to end at the run's deadline, counted from its jobs' enqueue, so between that and the
/// task's timeout the runner spun through one-second waits, each a status check.)
fn await_plan(
    status: &TaskStatus,
    timeout_seconds: u64,
    fallback_seconds: u32,
) -> Option<AwaitPlan> {
    let datasync = matches!(status.task, TaskHandle::Datasync { .. });
    if !datasync || fallback_seconds == 0 || status.done || status.timed_out {
        return None;
    }
    Some(AwaitPlan {
        heartbeat_seconds: fallback_seconds,
        timeout_seconds: timeout_seconds.saturating_sub(status.age_seconds).max(1),
    })
}

/// What the lane says to a runner's status check.
struct LaneNews {
    /// Jobs wait behind the run.
    pub waiting: bool,
    /// The run's record, as stored.
    pub run: RunRecord,
}

/// Renews the runner's lease, then reads whether jobs wait and the run's record.
async fn lane_news<L: LaneView + LaneLease>(
    lanes: &L,
    config: &LaneConfig,
    runner: &RunnerContext,
) -> Result<LaneNews, FerryError> {
    runner.renew(lanes, config).await?;
    let waiting = !lanes.pending(&runner.lane, 1, 0).await?.is_empty();
    let run = stored_run(lanes, &runner.lane, &runner.run).await?;
    Ok(LaneNews { waiting, run })
}

/// Whether the run's task is being (or was) cancelled from outside Ferry: seen `CANCELING` /
/// `CANCELLING` now, with no cancel asked by Ferry or through it, or seen so before. The first
/// sighting is written to the run record.
async fn cancelled_outside<L: NoteRuns>(
    lanes: &L,
    run: &RunRecord,
    lifecycle: &str,
    input: &TaskInput,
) -> Result<bool, FerryError> {
    if run.canceled_outside.is_some() {
        return Ok(true);
    }
    if input.cancel_requested || run.cancel.is_some() || !is_canceling(lifecycle) {
        return Ok(false);
    }
    let noted = RunRecord {
        canceled_outside: Some(now_millis()),
        ..run.clone()
    };
    lanes.note(&noted).await?;
    info!(run = %run.id, lifecycle, "task being cancelled outside Ferry");
    Ok(true)
}

/// The wait, within `FERRY_BUSY_POLL_MAX_SECONDS` while jobs wait and within a third of the
/// lease always.
pub(super) fn within_lease(seconds: u32, waiting: bool, lanes: &LaneConfig) -> u32 {
    let mut cap = (lanes.lease_seconds / 3).max(1);
    if waiting {
        cap = cap.min(lanes.busy_poll_max_seconds);
    }
    seconds.min(cap)
}
