//! Intake: a job submitted by a schedule or a person (queued once per id, its lane kicked), and
//! a job cancelled. What `submit` (the Lambda function) and the `ferry` CLI both call.

use serde::{Deserialize, Serialize};
use tracing::info;

use super::record::{Enqueued, Millis, QueuedJob};
use super::runner::{self, Cancelled, Kicked, Timing};
use super::{JobId, JobSource, LaneId, wake};
use crate::config::SubmitConfig;
use crate::domain::access::Principal;
use crate::domain::job::{JobSpec, ValidJob};
use crate::error::FerryError;
use crate::ports::{
    LaneLease, LaneQueue, LaneRuns, LaneView, StartExecution, WakeRunners, WakeSlots,
};

/// What a schedule or a person submits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitInput {
    pub job: JobSpec,
    /// The caller's id for the job (1-128 printable characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A schedule occurrence (`<schedule ARN>@<scheduled time>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub occurrence: Option<String>,
}

/// `{"cancel": ...}`: who cancels which job, and why.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    pub job: JobId,
    /// Who asks (a person, a tool, an IAM ARN), for the report: 1-2048 characters.
    pub by: String,
    /// Why, for the report: at most 1024 characters.
    #[serde(default)]
    pub reason: String,
}

/// Longest schedule occurrence `submit` takes.
const MAX_OCCURRENCE_CHARS: usize = 1024;

/// Longest `by` (an IAM ARN is at most 2048 characters) and `reason` a cancel takes.
pub const MAX_BY_CHARS: usize = 2048;
const MAX_REASON_CHARS: usize = 1024;

impl CancelInput {
    /// `by` and `reason` within their limits.
    pub fn check(&self) -> Result<(), FerryError> {
        let by = self.by.trim();
        if by.is_empty() || by.chars().count() > MAX_BY_CHARS || by.chars().any(char::is_control) {
            return Err(FerryError::invalid(
                "cancel.by",
                format!(
                    "must say who cancels: 1-{MAX_BY_CHARS} characters without control characters"
                ),
            ));
        }
        if self.reason.chars().count() > MAX_REASON_CHARS
            || self.reason.chars().any(char::is_control)
        {
            return Err(FerryError::invalid(
                "cancel.reason",
                format!("must be at most {MAX_REASON_CHARS} characters without control characters"),
            ));
        }
        Ok(())
    }
}

/// Who a cancel's record and report name: a verified caller's ARN, or what an unverified one
/// typed (`by`, at most [`MAX_BY_CHARS`]) marked `(unverified)`.
pub fn recorded_by(typed: &str, caller: Caller<'_>) -> String {
    match caller {
        Caller::Verified(principal) => principal.to_string(),
        Caller::Unverified => format!("{} (unverified)", typed.trim()),
    }
}

/// Cancels `input.job` (see the module's summary) and, for a job that ended pending, starts
/// the runner execution that reports it. Sending the report again is safe, so a cancel that
/// failed after ending the job is simply repeated.
///
/// The report names who asked: a verified caller's principal ARN, or the `by` an unverified
/// caller typed, marked `(unverified)`.
pub async fn cancel<S: StartExecution + WakeRunners, L: LaneView + LaneRuns + WakeSlots>(
    (runners, lanes): &(S, L),
    (input, caller): (&CancelInput, Caller<'_>),
    now: Millis,
) -> Result<Cancelled, FerryError> {
    input.check()?;
    let by = recorded_by(&input.by, caller);
    let done = runner::cancel(lanes, &input.job, (&by, &input.reason), now).await?;
    info!(job = %input.job, outcome = ?done.done, "cancel");
    if let Some(report) = &done.report {
        let started = runner::report_canceled(runners, report, done.enqueued_at).await?;
        info!(job = %input.job, report = ?started, "cancel report");
    }
    if let Some(execution) = &done.wake {
        // The run's runner may be waiting for the execution's end: it cancels now, not at
        // its next check.
        wake::wake((lanes, runners), execution, "a cancel", now).await?;
    }
    Ok(done.done)
}

/// What a cancel through `submit`'s function URL answers: what it did, and who the report
/// names (the caller Lambda verified).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelAnswer {
    #[serde(flatten)]
    pub done: Cancelled,
    pub by: String,
}

/// A job submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub job_id: JobId,
    pub lane: LaneId,
    /// `false`: the job was submitted before (a duplicate delivery or the same `id`).
    pub enqueued: bool,
    pub runner: Kicked,
    /// What the caller should know: the job went through unchecked (its file system's links
    /// to S3 could not be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

impl SubmitInput {
    /// Checks `id` and `occurrence` as `submit` does (the job is checked by
    /// [`JobSpec::validate`]): what `ferry validate` says of a submit event.
    pub fn check_source(&self) -> Result<(), FerryError> {
        source(self, "validate").map(|_| ())
    }
}

/// The source a submission's job id derives from.
fn source(input: &SubmitInput, request_id: &str) -> Result<JobSource, FerryError> {
    match (&input.id, &input.occurrence) {
        (Some(_), Some(_)) => Err(FerryError::invalid(
            "id",
            "give either id (a caller's job id) or occurrence (a schedule's), not both",
        )),
        (Some(id), None) => {
            let ok = (1..=128).contains(&id.chars().count()) && !id.chars().any(char::is_control);
            if ok {
                Ok(JobSource::Caller(id.clone()))
            } else {
                Err(FerryError::invalid(
                    "id",
                    "must be 1-128 characters without control characters",
                ))
            }
        }
        (None, Some(occurrence)) => {
            // `<schedule ARN>@<scheduled time>`: a schedule ARN names a group and a schedule
            // of at most 64 characters each (EventBridge Scheduler API reference), so an
            // occurrence is a few hundred characters; the bound keeps the job's source (kept
            // with the job, listed in reports) small whatever is sent.
            let ok = (1..=MAX_OCCURRENCE_CHARS).contains(&occurrence.chars().count())
                && !occurrence.chars().any(char::is_control);
            if ok {
                Ok(JobSource::Schedule(occurrence.clone()))
            } else {
                Err(FerryError::invalid(
                    "occurrence",
                    format!(
                        "must be 1-{MAX_OCCURRENCE_CHARS} characters without control characters (<schedule ARN>@<scheduled time>); got {} characters",
                        occurrence.chars().count()
                    ),
                ))
            }
        }
        (None, None) => Ok(JobSource::Caller(format!("request {request_id}"))),
    }
}

/// Who asks: a principal AWS verified (the function URL's caller), or a caller nothing
/// verified (a direct invocation, the CLI writing the table with its own credentials).
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    Verified(&'a Principal),
    Unverified,
}

/// How a job submitted by a verified caller names it in its `source` (and in reports).
const VERIFIED_SOURCE: &str = "submit by ";

/// The verified principal that submitted `job`, if one did (read back from its source).
pub fn submitter(job: &QueuedJob) -> Option<&str> {
    job.source.strip_prefix(VERIFIED_SOURCE)
}

/// Validates `input`'s job, enqueues it on its lane (once per job id) and kicks the lane's
/// runner, at `timing` (now, and the lease). `request_id` names this submission when the input
/// names none (no `id`, no `occurrence`): every such submission is a new job. The job's source
/// says who asked: a schedule's occurrence, a verified caller, or an unverified one. Also what
/// `ferry submit` calls.
pub async fn submit<S: StartExecution, L: LaneView + LaneQueue + LaneLease>(
    ports: &(S, L),
    config: &SubmitConfig,
    (input, caller): (&SubmitInput, Caller<'_>),
    (request_id, timing): (&str, Timing),
) -> Result<Submitted, FerryError> {
    let source = source(input, request_id)?;
    let job = input.job.clone().validate(&config.tasks.limits)?;
    enqueue_and_kick(ports, (input, source, job, caller), (request_id, timing)).await
}

/// [`submit`] for a caller that validated `input.job` already (into `job`), as the function
/// URL does before it checks the access policy: the spec is validated once.
pub async fn submit_validated<S: StartExecution, L: LaneView + LaneQueue + LaneLease>(
    ports: &(S, L),
    (input, job, caller): (&SubmitInput, ValidJob, Caller<'_>),
    (request_id, timing): (&str, Timing),
) -> Result<Submitted, FerryError> {
    let source = source(input, request_id)?;
    enqueue_and_kick(ports, (input, source, job, caller), (request_id, timing)).await
}

async fn enqueue_and_kick<S: StartExecution, L: LaneView + LaneQueue + LaneLease>(
    (runners, lanes): &(S, L),
    (input, source, job, caller): (&SubmitInput, JobSource, ValidJob, Caller<'_>),
    (request_id, timing): (&str, Timing),
) -> Result<Submitted, FerryError> {
    let lane = LaneId::of(&job);
    let queued = QueuedJob {
        id: JobId::derive(&source, &job),
        lane: lane.clone(),
        collapse_root: None,
        source: match (&input.occurrence, caller) {
            (Some(occurrence), _) => format!("schedule {occurrence}"),
            (None, Caller::Verified(principal)) => format!("{VERIFIED_SOURCE}{principal}"),
            (None, Caller::Unverified) => "submit (unverified caller)".into(),
        },
        enqueued_at: timing.now,
        deadline: timing
            .now
            .saturating_add(job.timeout_seconds().saturating_mul(1000)),
        spec: job.into_spec(),
    };
    let enqueued = lanes.enqueue(&queued).await? == Enqueued::Added;
    let runner = runner::kick((lanes, runners), &lane, timing, request_id).await?;
    info!(job = %queued.id, lane = %lane, enqueued, runner = ?runner, "submitted");
    Ok(Submitted {
        job_id: queued.id,
        lane,
        enqueued,
        runner,
        warning: None,
    })
}
