//! Cancelling a job ([`cancel`]: a pending one ends at once, a running one's run is marked
//! cancelled), and the runner execution that reports a job cancelled while pending
//! ([`report_canceled`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::stored_run;
use crate::domain::status::TaskHandle;
use crate::domain::text::hex;
use crate::error::FerryError;
use crate::ids::DataSyncExecutionArn;
use crate::lanes::record::{CancelRequest, JobEnd, JobState, Millis, RunId};
use crate::lanes::{JobId, LaneId};
use crate::ports::{LaneRuns, LaneView, StartExecution, StartOutcome};

/// What cancelling a job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cancel", rename_all = "snake_case")]
pub enum Cancelled {
    /// It was pending: it ended canceled and will never run.
    WhilePending,
    /// It is running in `run`: the run's task is cancelled at its next status check (or not
    /// started at all), and every job of the run (`jobs` of them) ends canceled with it.
    RunCancelRequested { run: RunId, jobs: usize },
    /// It had ended already, in `state`.
    AlreadyEnded { state: JobState },
}

/// A cancel, and the report it still owes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancel {
    pub done: Cancelled,
    /// A job that ended canceled while pending: the report [`report_canceled`] sends. Also for
    /// a job found already ended that way, since the cancel that ended it may have stopped
    /// before sending it (sending twice reports once).
    pub report: Option<EndedPending>,
    /// When the job was enqueued: it names this enqueue of the job apart from an earlier one
    /// under the same id (a caller's id submitted again after the table forgot the first), so
    /// the report's execution name is its own.
    pub enqueued_at: Millis,
    /// A run whose cancel was asked follows this DataSync execution: its runner may be waiting
    /// for the execution's end event; [`crate::lanes::wake::wake`] it so it cancels now.
    pub wake: Option<DataSyncExecutionArn>,
}

/// Cancels the job `id` for `by` (who asked) because of `reason`.
pub async fn cancel<P: LaneView + LaneRuns>(
    ports: &P,
    id: &JobId,
    (by, reason): (&str, &str),
    now: Millis,
) -> Result<Cancel, FerryError> {
    let not_found = || FerryError::NotFound {
        message: format!(
            "job {id} is not in the lane table (never enqueued, or ended more than 30 days ago)"
        ),
        source: None,
    };
    let request = CancelRequest {
        by: by.to_owned(),
        reason: reason.to_owned(),
        at: now,
    };
    let mut found = ports.job(id).await?.ok_or_else(not_found)?;
    let report = || EndedPending {
        lane: found.job.lane.clone(),
        jobs: vec![id.clone()],
    };
    if found.state == JobState::Pending {
        let end = JobEnd {
            state: JobState::Canceled,
            at: now,
            cancel: Some(request.clone()),
        };
        if ports
            .end_pending(std::slice::from_ref(&found.job), end)
            .await?
            .contains(id)
        {
            return Ok(Cancel {
                done: Cancelled::WhilePending,
                report: Some(report()),
                enqueued_at: found.job.enqueued_at,
                wake: None,
            });
        }
        // A runner took it meanwhile (or another cancel ended it): look again.
        found = ports.job(id).await?.ok_or_else(not_found)?;
    }
    let enqueued_at = found.job.enqueued_at;
    match (found.state, found.run.clone()) {
        (JobState::Running, Some(run_id)) => {
            cancel_run(ports, &found.job.lane, run_id, request, enqueued_at).await
        }
        (JobState::Canceled, None) => Ok(Cancel {
            done: Cancelled::AlreadyEnded {
                state: JobState::Canceled,
            },
            report: Some(EndedPending {
                lane: found.job.lane.clone(),
                jobs: vec![id.clone()],
            }),
            enqueued_at,
            wake: None,
        }),
        (state, _) => Ok(Cancel {
            done: Cancelled::AlreadyEnded { state },
            report: None,
            enqueued_at,
            wake: None,
        }),
    }
}

/// Marks the run in flight `run_id` of `lane` cancelled (once: the first request stands): its
/// runner cancels the task at its next status check, or does not start it.
async fn cancel_run<P: LaneView + LaneRuns>(
    ports: &P,
    lane: &LaneId,
    run_id: RunId,
    request: CancelRequest,
    enqueued_at: Millis,
) -> Result<Cancel, FerryError> {
    let mut run = stored_run(ports, lane, &run_id).await?;
    if run.cancel.is_none() {
        run.cancel = Some(request);
        ports.update(&run).await?;
    }
    let wake = match &run.task {
        Some(TaskHandle::Datasync { task_execution_arn }) => Some(task_execution_arn.clone()),
        _ => None,
    };
    Ok(Cancel {
        done: Cancelled::RunCancelRequested {
            run: run_id,
            jobs: run.job_count,
        },
        report: None,
        enqueued_at,
        wake,
    })
}

/// Jobs of one lane that ended pending (their deadline passed, or someone cancelled them), to
/// report one by one: `notify` reads each from the lane table. By reference: at most
/// [`MAX_EXPIRED_PER_TAKE`](super::MAX_EXPIRED_PER_TAKE) ids (about 3 KB), however large the
/// jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndedPending {
    pub lane: LaneId,
    pub jobs: Vec<JobId>,
}

/// The input of the runner execution that only reports jobs cancelled while pending (the
/// state machine sends `canceled` to notify and ends; it takes no lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanceledInput {
    pub canceled: EndedPending,
}

/// Sends the report of a job cancelled while pending: a runner execution named after the job
/// and when it was enqueued reports it. The name makes it once: Step Functions refuses a name
/// used in the last 90 days (`ExecutionAlreadyExists`, API reference, StartExecution), so a
/// second cancel of the job sends nothing twice. The enqueue time in the name keeps apart a
/// job whose id comes back after the lane table forgot it (30 days; a caller's id submitted
/// again): its own cancel is reported, not refused as the first one's (issue 25).
pub async fn report_canceled<S: StartExecution>(
    runners: &S,
    report: &EndedPending,
    enqueued_at: Millis,
) -> Result<StartOutcome, FerryError> {
    let input = CanceledInput {
        canceled: report.clone(),
    };
    // Plain data: serializing cannot fail. Two ids and a lane: far within the 256 KiB an
    // execution's input may be.
    let text = serde_json::to_string(&input).unwrap_or_default();
    let name = report.jobs.first().map_or_else(
        || "cancel-none".to_owned(),
        |id| canceled_name(id, enqueued_at),
    );
    runners.start_execution(&name, &text).await
}

/// Starts again the report of a job cancelled while pending whose execution `stopped` ended
/// before reporting (stopped by hand, or notify failing past its retries): its status change
/// event says so. The new execution's name derives from the stopped one's, so a second
/// delivery of the event starts nothing more; the report may then go out twice (reports are
/// at least once). Found by the lane protocol's simulation (seed 9): the report was lost, and
/// a second cancel could not send it (its name was taken).
pub async fn report_canceled_again<S: StartExecution>(
    runners: &S,
    stopped: &str,
    input: &CanceledInput,
) -> Result<String, FerryError> {
    let name = format!(
        "cancel-again-{}",
        hex(&Sha256::digest(stopped.as_bytes()), 24)
    );
    // Plain data: serializing cannot fail.
    let text = serde_json::to_string(input).unwrap_or_default();
    runners.start_execution(&name, &text).await?;
    Ok(name)
}

/// `cancel-<job digest>-<enqueued at>`: StartExecution's `name` takes at most 80 letters,
/// digits, `-` and `_`; a job id is always `job-` and 56 hex digits ([`JobId::parse`]) and
/// epoch milliseconds 13 digits until the year 2286, so this is 77.
pub fn canceled_name(id: &JobId, enqueued_at: Millis) -> String {
    let digest = id.as_str().trim_start_matches("job-");
    format!("cancel-{digest}-{enqueued_at}")
}
