//! The Lambda entry points, one file per function, each with its input and output types. A
//! handler reads its event, calls the pure logic ([`crate::domain`], [`crate::trigger`],
//! [`crate::notify`]) and the ports it is generic over ([`crate::ports`]), and returns what the
//! state machine or the event source reads. The binaries under `functions/` only wire
//! configuration and AWS clients to these.
//!
//! Shared by every handler:
//!
//! - **Raw input.** Each takes the event as a `serde_json::Value` and parses it with
//!   [`crate::domain::parse`], which says why (a stable `InvalidJob`/`InvalidEvent` instead of
//!   the runtime's own deserialization error, and per-message failures for SQS).
//! - **One way to start.** Every binary's `main` is [`crate::runtime::serve`]: tracing,
//!   configuration read once, the AWS configuration loaded once, the function's adapter built,
//!   then the handler for each event.
//! - **One thread.** Every binary runs on a current-thread tokio runtime
//!   (`#[tokio::main(flavor = "current_thread")]`): Lambda hands an execution environment one
//!   invocation at a time, so worker threads would only add start-up work (measured: about
//!   1.3 ms of a 13 ms cold start; `bench/README.md`).

pub use crate::runtime::{now_millis, timing};

pub mod cancel_task;
pub mod datasync_event;
pub mod lane;
pub mod notify;
pub mod s3_trigger;
pub mod start_task;
pub mod submit;
pub mod task_status;

use serde::Serialize;

use crate::config::{LaneConfig, TaskConfig};
use crate::domain::job::JobSpec;
use crate::domain::status::{StatusContext, TaskHandle, Timestamp};
use crate::error::FerryError;
use crate::lanes::LaneId;
use crate::lanes::record::RunId;
use crate::lanes::runner::Timing;
use crate::ports::LaneLease;

/// Who calls a task function when the lane runner does: the lane, the runner execution that
/// holds its lease, and the run. The function renews the lease before anything else, so a
/// runner that lost its lane (stopped, then replaced by the sweep) stops at its next step with
/// `LeaseLost` instead of acting twice.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunnerContext {
    pub lane: LaneId,
    pub owner: String,
    pub run: RunId,
}

impl RunnerContext {
    /// Renews the runner's lease for another `FERRY_LEASE_SECONDS`.
    pub async fn renew<L: LaneLease>(
        &self,
        lanes: &L,
        config: &LaneConfig,
    ) -> Result<Timing, FerryError> {
        let timing = timing(config);
        lanes.renew(&self.lane, &self.owner, timing.until()).await?;
        Ok(timing)
    }
}

/// `task-status` and `cancel-task` input: the job and the task it started (from the lane
/// runner: the reference to its run instead of the job, read from the lane table).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// Absent with `runner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSpec>,
    pub task: TaskHandle,
    /// Set by the state machine after it asked to cancel (a cancelled DataSync run ends ERROR).
    #[serde(default)]
    pub cancel_requested: bool,
    /// The lane runner making the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerContext>,
}

impl TaskInput {
    /// Parses the input: `job` or `runner`, one of them. The job was validated when its task
    /// started and is not checked again on every poll: only its polling bounds and timeout are
    /// read, and the handle (whose ids are parsed with it) must belong to the job's service.
    pub fn parse(payload: serde_json::Value) -> Result<TaskInput, FerryError> {
        let input: TaskInput = crate::domain::parse::from_value(payload, "")?;
        match (&input.job, &input.runner) {
            (Some(job), None) => matching(&input.task, job)?,
            (None, Some(_)) => {}
            (Some(_), Some(_)) => {
                return Err(FerryError::invalid(
                    "job",
                    "must be left out with \"runner\": the runner's job is its run's, read from the lane table",
                ));
            }
            (None, None) => {
                return Err(FerryError::invalid(
                    "job",
                    "is required (or \"runner\", the lane runner's reference to its run)",
                ));
            }
        }
        Ok(input)
    }

    /// What the status computation needs, now, for `job` (the input's, or its run's).
    pub fn context(
        &self,
        job: &JobSpec,
        config: &TaskConfig,
        cancel_requested: bool,
    ) -> StatusContext {
        StatusContext {
            poll: job.poll_settings(config.poll),
            timeout_seconds: job.timeout_seconds(),
            cancel_requested,
            now: Timestamp::now(),
        }
    }

    /// The job: the input's, or else `run`'s (read by the caller for the runner), checked
    /// against the task handle.
    pub fn job<'a>(&'a self, run: Option<&'a JobSpec>) -> Result<&'a JobSpec, FerryError> {
        let job = self
            .job
            .as_ref()
            .or(run)
            .ok_or_else(|| FerryError::invalid("job", "is required (or \"runner\")"))?;
        matching(&self.task, job)?;
        Ok(job)
    }
}

/// The handle must belong to the job's service.
fn matching(task: &TaskHandle, job: &JobSpec) -> Result<(), FerryError> {
    if task.is_fsx() == job.kind.is_fsx() {
        Ok(())
    } else {
        Err(FerryError::invalid(
            "task.service",
            format!("does not match the job's kind {}", job.kind.as_str()),
        ))
    }
}

/// An answer to the state machine, checked against [`crate::budget::ANSWER_BYTES`]: a state
/// over Step Functions' 256 KiB fails its execution beyond any `Catch`, so an answer that could
/// make one is an error here instead (`TooLarge`), which the runner can catch.
pub fn bounded<T: Serialize>(answer: T, what: &str) -> Result<T, FerryError> {
    crate::budget::check(what, &answer, crate::budget::ANSWER_BYTES)?;
    Ok(answer)
}
