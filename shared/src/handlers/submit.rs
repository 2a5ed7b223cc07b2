//! `submit`: the one entry for schedules and people. It validates a job, enqueues it on its
//! lane (once per job id) and kicks the lane's runner; the runner merges it with whatever else
//! waits and runs it when the lane frees.
//!
//! People's requests come through the function URL (`AuthType: AWS_IAM`, [`url`]): the caller
//! is the principal AWS verified, and the access policy says what it may do. A direct
//! invocation (the Scheduler, the sweep, EventBridge) is trusted as IAM allowed it, and a job or
//! cancel it carries is recorded as from an unverified caller.
//!
//! `{"cancel": {"job": "job-…", "by": "…", "reason": "…"}}` cancels a job instead: a pending
//! one ends canceled at once and a runner execution named after it sends its report (it takes no
//! lease, so a busy lane does not delay it); a running one's run is marked, and its runner
//! cancels the task at the next status check.
//!
//! `{"sweep": {}}` (the sweep schedule's input) instead starts a runner for every lane whose
//! runner is gone (its lease expired) while work is left: a runner execution that was stopped,
//! failed or timed out is replaced, and the new one adopts its run.
//!
//! A "Step Functions Execution Status Change" event (template.yaml's `RunnerStoppedRule`)
//! of a runner execution that was aborted, failed or timed out passes its lane's lease to a
//! replacement at once ([`runner::replace`]); the sweep stays the safety net, as the event is
//! delivered on a best-effort basis.
//!
//! The job's id derives from where it came from: a schedule's `occurrence` (EventBridge
//! Scheduler's schedule ARN and scheduled time, the same in every delivery of one occurrence,
//! so a duplicate delivery adds nothing), a caller's `id` (`ferry submit --id`: submitting it
//! again is the same job), or, with neither, this invocation (every submission a new job).

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, warn};

use super::{now_millis, timing};
use crate::config::SubmitConfig;
use crate::domain::job::{Service, ValidJob};
use crate::domain::{links, parse};
use crate::error::{FerryError, FieldErrors};
use crate::lanes::LaneId;
use crate::lanes::intake::{self, Caller, cancel};
pub use crate::lanes::intake::{CancelInput, SubmitInput, Submitted};
pub use url::UrlResponse;

pub mod url;
use crate::lanes::record::Millis;
use crate::lanes::runner::{self, Cancelled, Kicked};
use crate::metrics::{self, Emf, Unit};
use crate::ports::{
    LaneLease, LaneQueue, LaneRuns, LaneView, ReadLinks, StartExecution, WakeRunners, WakeSlots,
};

/// What `submit` answers: the job queued, what the sweep did, or what a cancel did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SubmitOutput {
    Submitted(Submitted),
    Swept {
        kicked: Vec<(LaneId, Kicked)>,
        /// Lanes registered, lanes visited, and lanes with work the sweep had no time for.
        registered: usize,
        visited: usize,
        unvisited: usize,
    },
    Cancelled(Cancelled),
    /// A cancel through the function URL: what it did and who the report names.
    CancelledBy(intake::CancelAnswer),
    /// A stopped runner's lane: what replacing it did.
    Replaced {
        lane: LaneId,
        replaced: Kicked,
    },
    /// A status change event that needs nothing: why.
    Ignored {
        ignored: String,
    },
    /// A function URL request's answer: an HTTP response.
    Url(UrlResponse),
    /// What a URL's `{"whoami": {}}` is answered (inside its HTTP response).
    Whoami(crate::domain::access::Whoami),
}

/// What Step Functions sends EventBridge when an execution's status changes (`detail-type`
/// "Step Functions Execution Status Change", `source` "aws.states"). Only what `submit` reads;
/// EventBridge may add fields.
#[derive(Debug, Deserialize)]
struct StatusChange {
    detail: StatusDetail,
}

#[derive(Debug, Deserialize)]
struct StatusDetail {
    #[serde(rename = "executionArn")]
    execution_arn: String,
    status: String,
    /// The execution's input, as a JSON string (absent when EventBridge left it out).
    #[serde(default)]
    input: Option<String>,
}

/// The `detail-type` of the events `runner_stopped` handles.
pub const STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// The statuses of an execution that ended without giving its lane up (`SUCCEEDED` runners
/// released the lane or handed it over).
const STOPPED: [&str; 3] = ["ABORTED", "FAILED", "TIMED_OUT"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelEnvelope {
    cancel: CancelInput,
}

/// `ports`: the runner state machine (to start runners, and to read a file system's links to
/// S3 for the preflight) and the lane table.
pub async fn handle<
    S: StartExecution + WakeRunners + ReadLinks,
    L: LaneView + LaneQueue + LaneLease + LaneRuns + WakeSlots,
>(
    ports: &(S, L),
    config: &SubmitConfig,
    event: LambdaEvent<Value>,
) -> Result<SubmitOutput, FerryError> {
    let (runners, lanes) = ports;
    let request_id = event.context.request_id;
    if url::is_url_request(&event.payload) {
        return Ok(url::respond(
            url::answer(ports, config, event.payload, &request_id).await,
        ));
    }
    if event.payload.get("cancel").is_some() {
        let input: CancelEnvelope = parse::from_value(event.payload, "")?;
        let now = timing(&config.lanes).now;
        return cancel(ports, (&input.cancel, Caller::Unverified), now)
            .await
            .map(SubmitOutput::Cancelled);
    }
    if event.payload.get("detail-type").and_then(Value::as_str) == Some(STATUS_CHANGE) {
        let change: StatusChange = parse::from_value(event.payload, "")?;
        return runner_stopped(ports, &change.detail, timing(&config.lanes)).await;
    }
    if event.payload.get("sweep").is_some() {
        let _: Sweep = parse::from_value(event.payload, "")?;
        let timing = timing(&config.lanes);
        let until = sweep_until(event.context.deadline, timing.now);
        let swept =
            runner::sweep((lanes, runners), (timing, until), &request_id, now_millis).await?;
        return answer_sweep(swept, timing.now);
    }
    let input: SubmitInput = parse::from_value(event.payload, "")?;
    let timing = timing(&config.lanes);
    input.check_source()?;
    let job = input.job.clone().validate(&config.tasks.limits)?;
    checked_submit(
        ports,
        (&input, job, Caller::Unverified),
        (&request_id, timing),
    )
    .await
    .map(SubmitOutput::Submitted)
}

/// A validated job, checked against its file system's links ([`preflight`]), then queued: the
/// answer carries the preflight's warning.
async fn checked_submit<S: StartExecution + ReadLinks, L: LaneView + LaneQueue + LaneLease>(
    ports: &(S, L),
    (input, job, caller): (&SubmitInput, ValidJob, Caller<'_>),
    (request_id, timing): (&str, runner::Timing),
) -> Result<Submitted, FerryError> {
    let warning = preflight(&ports.0, &job).await?;
    let submitted =
        intake::submit_validated(ports, (input, job, caller), (request_id, timing)).await?;
    Ok(Submitted {
        warning,
        ..submitted
    })
}

/// The preflight (issue 30, [`links::problems`]): an FSx job whose task would fail on its file
/// system's links to S3 is refused before it is queued (`InvalidJob`, each problem naming the
/// field, the rule and the associations). Links that cannot be read let the job through with
/// the warning returned (its task would say the same thing later); links this deployment does
/// not read check nothing.
async fn preflight<R: ReadLinks>(reader: &R, job: &ValidJob) -> Result<Option<String>, FerryError> {
    let Service::Fsx(fsx) = job.service() else {
        return Ok(None);
    };
    match reader.read_links(&fsx.file_system_id).await {
        Ok(None) => Ok(None),
        Ok(Some(read)) => {
            let errors = links::problems(job, &read);
            if errors.is_empty() {
                Ok(None)
            } else {
                Err(FerryError::InvalidJob(FieldErrors { errors }))
            }
        }
        Err(e) => {
            warn!(
                error_type = e.error_type(),
                "the job's file system links were not read: not checked against them"
            );
            Ok(Some(format!(
                "the data repository links of {} could not be read ({}), so the job was not checked against them",
                fsx.file_system_id,
                e.error_type()
            )))
        }
    }
}

/// Replaces the runner a status change event reports stopped (see the module's summary).
/// Another execution's event (a cancel's report, a status that is not a stop) needs nothing.
async fn runner_stopped<S: StartExecution, L: LaneLease + LaneView>(
    (runners, lanes): &(S, L),
    detail: &StatusDetail,
    timing: runner::Timing,
) -> Result<SubmitOutput, FerryError> {
    let ignored = |why: &str| {
        info!(execution = %detail.execution_arn, status = %detail.status, why, "status change ignored");
        Ok(SubmitOutput::Ignored {
            ignored: why.to_owned(),
        })
    };
    if !STOPPED.contains(&detail.status.as_str()) {
        return ignored("not a stop");
    }
    let Some(input) = &detail.input else {
        // The lane is only in the input; the sweep replaces the runner after its lease.
        return ignored("the event carries no input: the sweep replaces the runner");
    };
    if let Ok(report) = serde_json::from_str::<runner::CanceledInput>(input) {
        // A cancel's report that never went out: sent again.
        let name = detail.execution_arn.rsplit(':').next().unwrap_or_default();
        let again = runner::report_canceled_again(runners, name, &report).await?;
        info!(stopped = name, again = %again, "a cancel's report started again");
        return Ok(SubmitOutput::Replaced {
            lane: report.canceled.lane,
            replaced: Kicked::Started { owner: again },
        });
    }
    let Ok(stopped) = serde_json::from_str::<runner::RunnerInput>(input) else {
        return ignored("not a lane runner");
    };
    let replaced = runner::replace((lanes, runners), &stopped.lane, &stopped.owner, timing).await?;
    info!(lane = %stopped.lane, stopped = %stopped.owner, status = %detail.status,
          replaced = ?replaced, "stopped runner replaced");
    Ok(SubmitOutput::Replaced {
        lane: stopped.lane,
        replaced,
    })
}

/// Time the sweep leaves itself before its function's deadline (`Context::deadline`, epoch ms):
/// visits in flight finish and the answer goes back within it. Without a deadline (a test, a
/// direct call), 25 s, within the function's 30 s timeout.
const SWEEP_MARGIN_MS: Millis = 5_000;

fn sweep_until(deadline: Millis, now: Millis) -> Millis {
    if deadline == 0 {
        now + 25_000
    } else {
        deadline.saturating_sub(SWEEP_MARGIN_MS)
    }
}

/// The sweep's metrics and answer. A lane whose visit failed fails the sweep, once every other
/// lane was visited: the error names them (the schedule's retry, or the next sweep, visits
/// them again).
fn answer_sweep(swept: runner::Swept, now: Millis) -> Result<SubmitOutput, FerryError> {
    info!(
        registered = swept.registered,
        visited = swept.oldest.len() + swept.failed.len(),
        kicked = swept.kicked.len(),
        failed = swept.failed.len(),
        "swept"
    );
    for (lane, age) in &swept.oldest {
        let lane = lane.to_string();
        // Per lane, and without dimension: the oldest-pending alarm's metric.
        let mut emf = Emf::new(now, &[("Lane", &lane)], &[&["Lane"], &[]]);
        emf.add(metrics::OLDEST_PENDING, Unit::Seconds, *age as f64);
        emf.emit();
    }
    let failed = swept.failed.len();
    let Some((lane, first)) = swept.failed.into_iter().next() else {
        return Ok(SubmitOutput::Swept {
            kicked: swept.kicked,
            registered: swept.registered,
            visited: swept.oldest.len(),
            unvisited: swept.unvisited,
        });
    };
    error!(failed, lane = %lane, error_type = first.error_type(), error = %first,
           "the sweep could not visit every lane");
    Err(first)
}

/// The sweep schedule's input: `{"sweep": {}}`, nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Sweep {
    #[serde(rename = "sweep")]
    _options: NoOptions,
}

/// The sweep takes no options (yet).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}
