//! `notify`: the completion report, published to SNS.
//!
//! The lane runner calls it once per run, at the end: with the final task status, or with the
//! error that stopped the run from starting (Step Functions' `Catch` output). It builds the
//! report ([`crate::notify::report`]), lists the jobs the run covered (read from the lane
//! table), reads the task's failure report from S3 when there is one
//! ([`crate::notify::attach_digest`]), and publishes it ([`crate::notify::message`]). A missing
//! or unreadable failure report is said in the message; a failed publish is an error (the state
//! machine retries it).
//!
//! With `expired` instead, it reports each job that ended while it waited in its lane (its
//! deadline passed, or someone cancelled it): one report per job, no task. Jobs and runs come
//! by reference (lane, ids) and are read from the lane table, so the state machine never
//! carries a spec or a job list.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use super::RunnerContext;
use crate::config::{ConfigError, ENV_TOPIC_ARN, Laned, NotifyConfig};
use crate::domain::parse;
use crate::domain::status::{TaskHandle, TaskStatus, Timestamp};
use crate::domain::text;
use crate::error::FerryError;
use crate::ids::TopicArn;
use crate::lanes::record::{JobRecord, JobState, KEPT_TEXT_BYTES, KeptReport, Millis, RunRecord};
use crate::lanes::runner::{EndedPending, stored_run};
use crate::metrics::{self, Emf, Unit};
use crate::notify::report::{
    self, CoveredJob, CoveredJobs, Facts, JobInfo, MAX_LISTED_JOBS, Outcome, Report, StepError,
};
use crate::notify::{attach_digest, message};
use crate::ports::{KeepReports, LaneView, Publish, ReadReports};

/// The input, as the state machine passes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyInput {
    /// The job spec, kept as JSON: a job that could not start may be invalid, and is reported
    /// all the same ([`JobInfo`] reads what it can). Absent with `expired`, and with `runner`
    /// (the run's spec is read from the lane table).
    #[serde(default)]
    pub job: Value,
    /// The Step Functions execution name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskHandle>,
    /// The final normalized status (from `task-status` or `cancel-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    /// What stopped the job (`Catch` output: `Error` and `Cause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// The state machine cancelled the task because the job's timeout passed.
    #[serde(default)]
    pub timed_out: bool,
    /// The lane runner reporting a run: the report lists the run's jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerContext>,
    /// Jobs that ended pending (their deadline passed, or someone cancelled them): one report
    /// each.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired: Option<EndedPending>,
}

/// What `notify` returns: the outcome it reported and the published message ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyOutput {
    pub outcome: Outcome,
    pub topic_arn: String,
    pub message_ids: Vec<String>,
    /// The path list was shortened to fit SNS's size limit.
    pub paths_truncated: bool,
}

pub async fn handle<P: Publish + ReadReports, L: LaneView + KeepReports>(
    (reports, lanes): &(P, L),
    config: &Laned<NotifyConfig>,
    event: LambdaEvent<Value>,
) -> Result<NotifyOutput, FerryError> {
    let input: NotifyInput = parse::from_value(event.payload, "")?;
    let config = &config.config;
    if let Some(expired) = &input.expired {
        return report_expired((reports, lanes), config, expired).await;
    }
    let run = match &input.runner {
        Some(runner) => Some(stored_run(lanes, &runner.lane, &runner.run).await?),
        None => None,
    };
    let job = match (&run, input.job.is_null()) {
        (Some(run), _) => JobInfo::from_spec(run.spec.clone()),
        (None, false) => JobInfo::from_value(&input.job),
        (None, true) => {
            return Err(FerryError::invalid(
                "job",
                "expected the job spec (or \"runner\", or \"expired\")",
            ));
        }
    };
    let topic_arn = topic_for(&job, config)?;
    let facts = Facts {
        job: &job,
        execution: input.execution.as_deref(),
        task: input.task.as_ref(),
        status: input.status.as_ref(),
        error: input.error.as_ref(),
        timed_out: input.timed_out,
        region: config.region.as_deref(),
    };
    let mut report = report::build(&facts).map_err(|e| FerryError::InvalidEvent {
        message: e.to_string(),
    })?;
    if let Some(run) = &run {
        let listed = lanes.members(&run.lane, &run.id, MAX_LISTED_JOBS).await?;
        describe_run(&mut report, run, listed);
    }
    attach_digest(reports, config, &job, input.status.as_ref(), &mut report).await;
    report.retry = report::retry_command(&report);
    let (report, messages) = message::render(report, topic_arn.as_str());
    if let Some(run) = &run {
        // Kept before publishing: a retry after a failed publish keeps the same report again,
        // where the other order would publish twice after a failed write.
        lanes.keep_report(&kept(run, &report, &messages)).await?;
    }
    let abandoned = input
        .error
        .as_ref()
        .is_some_and(|e| e.error == report::ABANDONED);
    let metrics = run.as_ref().map(|run| run_metrics(run, &report, abandoned));
    let published = publish(reports, report, messages, &topic_arn).await?;
    if let Some(emf) = metrics {
        emf.emit();
    }
    super::bounded(published, "the notify answer")
}

/// A run's report as metrics: by lane and outcome, and by outcome alone. An abandoned run
/// counts in `RunsAbandoned` too (its alarm).
fn run_metrics(run: &RunRecord, report: &Report, abandoned: bool) -> Emf {
    let lane = run.lane.to_string();
    let outcome = report.outcome.as_upper().to_ascii_lowercase();
    let mut emf = Emf::new(
        super::now_millis(),
        &[("Lane", &lane), ("Outcome", &outcome)],
        &[&["Lane", "Outcome"], &["Outcome"]],
    );
    let counts = &report.counts;
    let as_f64 = |n: i64| n as f64;
    emf.add(metrics::RUNS, Unit::Count, 1.0).add(
        metrics::JOBS_PER_RUN,
        Unit::Count,
        run.job_count as f64,
    );
    if let Some(seconds) = report.duration_seconds {
        emf.add(metrics::RUN_DURATION, Unit::Seconds, seconds as f64);
    }
    if abandoned {
        emf.add(metrics::RUNS_ABANDONED, Unit::Count, 1.0);
    }
    if let Some(files) = counts.succeeded.or(counts.files_transferred) {
        emf.add(metrics::FILES, Unit::Count, as_f64(files));
    }
    if let Some(failed) = counts.failed.or(counts.files_failed) {
        emf.add(metrics::FILES_FAILED, Unit::Count, as_f64(failed));
    }
    if let Some(bytes) = counts.bytes_transferred {
        emf.add(metrics::BYTES, Unit::Bytes, as_f64(bytes));
    }
    emf
}

/// What the lane table keeps of a run's report: the summary and the text message (bounded).
fn kept(run: &RunRecord, report: &Report, messages: &[message::SnsMessage]) -> KeptReport {
    let text = messages
        .iter()
        .find(|m| m.attributes.get("format").is_some_and(|f| f == "text"))
        .map_or_else(String::new, |m| kept_text(&m.body));
    KeptReport {
        run: run.id.clone(),
        lane: run.lane.clone(),
        job: report.job.clone(),
        kind: report.kind.clone(),
        outcome: report.outcome,
        reason: report.reason.clone(),
        task_id: report.task_id.clone(),
        started_at: report.started_at,
        ended_at: report.ended_at,
        duration_seconds: report.duration_seconds,
        counts: report.counts.clone(),
        jobs: run.job_count,
        subject: messages
            .first()
            .map(|m| m.subject.clone())
            .unwrap_or_default(),
        text,
        published_at: super::now_millis(),
    }
}

/// The run and its jobs in the report (`listed`: the first of its members, oldest first; the
/// rest are counted); a cancel someone asked for is the reason.
fn describe_run(report: &mut Report, run: &RunRecord, listed: Vec<crate::lanes::record::RunJob>) {
    report.run = Some(run.id.to_string());
    report.jobs = Some(CoveredJobs {
        total: run.job_count.max(listed.len()),
        listed: listed
            .into_iter()
            .take(MAX_LISTED_JOBS)
            .map(|j| CoveredJob {
                id: j.id.to_string(),
                name: j.name,
                source: j.source,
                enqueued_at: at(j.enqueued_at),
                deadline: None,
                retry_of: j.retry_of,
            })
            .collect(),
    });
    if let (Outcome::Canceled, Some(cancel)) = (report.outcome, &run.cancel) {
        let why = if cancel.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", cancel.reason)
        };
        report.reason = Some(format!("cancelled at the request of {}{why}", cancel.by));
    }
}

/// The text message, cut to [`KEPT_TEXT_BYTES`] with a note saying so.
fn kept_text(body: &str) -> String {
    let mut kept = text::truncate_bytes(body.to_owned(), KEPT_TEXT_BYTES);
    if kept.len() < body.len() {
        kept.push_str(KEPT_TEXT_CUT);
    }
    kept
}

const KEPT_TEXT_CUT: &str = "\n(cut: the whole report went to SNS)";

fn at(millis: Millis) -> Timestamp {
    Timestamp::from_secs(i64::try_from(millis / 1000).unwrap_or(i64::MAX))
}

/// One report per job that ended pending: its deadline passed, or it was cancelled. Each is
/// read from the lane table; one no longer there (its record expired) is skipped, said in the
/// log.
async fn report_expired<P: Publish + ReadReports, L: LaneView>(
    (reports, lanes): (&P, &L),
    config: &NotifyConfig,
    expired: &EndedPending,
) -> Result<NotifyOutput, FerryError> {
    let mut message_ids = Vec::new();
    let mut outcome = Outcome::TimedOut;
    let mut ended = Vec::with_capacity(expired.jobs.len());
    for id in &expired.jobs {
        match lanes.job(id).await? {
            Some(record) => ended.push(record),
            None => warn!(job = %id, "an ended job to report is no longer in the lane table"),
        }
    }
    let mut emf = Emf::new(super::now_millis(), &[], &[&[]]);
    let timed_out = ended.iter().filter(|e| e.cancel.is_none()).count();
    emf.add(metrics::JOBS_EXPIRED, Unit::Count, timed_out as f64);
    emf.emit();
    for ended in &ended {
        let job = JobInfo::from_spec(ended.job.spec.clone());
        let topic_arn = topic_for(&job, config)?;
        let error = ended_pending_error(ended);
        let facts = Facts {
            job: &job,
            execution: None,
            task: None,
            status: None,
            error: Some(&error),
            timed_out: ended.cancel.is_none(),
            region: config.region.as_deref(),
        };
        let mut report = report::build(&facts).map_err(|e| FerryError::InvalidEvent {
            message: e.to_string(),
        })?;
        if ended.cancel.is_some() || ended.state == JobState::Canceled {
            report.outcome = Outcome::Canceled;
            report.reason = Some(error.cause.clone());
        }
        report.jobs = Some(CoveredJobs::of(std::iter::once(CoveredJob {
            id: ended.job.id.to_string(),
            name: job.name.clone(),
            source: ended.job.source.clone(),
            enqueued_at: at(ended.job.enqueued_at),
            deadline: Some(at(ended.job.deadline)),
            retry_of: ended.job.spec.retry_of.clone(),
        })));
        let (report, messages) = message::render(report, topic_arn.as_str());
        let published = publish(reports, report, messages, &topic_arn).await?;
        outcome = published.outcome;
        message_ids.extend(published.message_ids);
    }
    let answer = NotifyOutput {
        outcome,
        topic_arn: config
            .topic_arn
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        message_ids,
        paths_truncated: false,
    };
    super::bounded(answer, "the notify answer")
}

/// Why a job ended without running: its deadline passed, or someone cancelled it.
fn ended_pending_error(ended: &JobRecord) -> StepError {
    let since = message::rfc3339(at(ended.job.enqueued_at));
    match &ended.cancel {
        Some(cancel) => {
            let why = if cancel.reason.is_empty() {
                String::new()
            } else {
                format!(": {}", cancel.reason)
            };
            StepError {
                error: "Canceled".into(),
                cause: format!(
                    "cancelled at the request of {} while it waited in its lane (since {since}){why}; it never ran",
                    cancel.by
                ),
            }
        }
        None => StepError {
            error: "TimedOut".into(),
            cause: format!(
                "the job waited in its lane from {since} until its deadline {} passed and never ran (the lane was busy: runs ahead of it, or a task Ferry did not start)",
                message::rfc3339(at(ended.job.deadline))
            ),
        },
    }
}

/// Publishes both messages of `report` (as [`message::render`] made them).
async fn publish<P: Publish>(
    reports: &P,
    report: Report,
    messages: Vec<message::SnsMessage>,
    topic_arn: &TopicArn,
) -> Result<NotifyOutput, FerryError> {
    let mut message_ids = Vec::with_capacity(messages.len());
    for message in &messages {
        message_ids.push(reports.publish(message).await?);
    }
    info!(job = %report.job, outcome = report.outcome.as_upper(), topic = %topic_arn, "report published");
    Ok(NotifyOutput {
        outcome: report.outcome,
        topic_arn: topic_arn.to_string(),
        message_ids,
        paths_truncated: report.digest.as_ref().is_some_and(|d| d.paths_truncated),
    })
}

/// The job's topic override, or the deployment's topic. A job whose topic is not a topic ARN
/// could only have failed to start (validation refuses it); its report goes to the
/// deployment's topic rather than nowhere.
fn topic_for(job: &JobInfo, config: &NotifyConfig) -> Result<TopicArn, FerryError> {
    let own = job.topic_arn.as_deref().map(TopicArn::parse);
    match (own, &config.topic_arn) {
        (Some(Ok(topic)), _) => Ok(topic),
        (Some(Err(e)), Some(default)) => {
            warn!(problem = %e, "job.notify.topic_arn is not a topic ARN; using the default topic");
            Ok(default.clone())
        }
        (Some(Err(e)), None) => Err(FerryError::invalid(
            "job.notify.topic_arn",
            format!("{e}, and {ENV_TOPIC_ARN} is not set"),
        )),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(FerryError::Configuration(ConfigError {
            variable: ENV_TOPIC_ARN,
            problem:
                "is not set and the job names no notify.topic_arn: the report has nowhere to go"
                    .into(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_text_is_cut_to_its_bound_and_says_so() {
        let long = "é".repeat(KEPT_TEXT_BYTES);
        let kept = kept_text(&long);
        assert!(kept.len() <= KEPT_TEXT_BYTES + KEPT_TEXT_CUT.len());
        assert!(kept.ends_with(KEPT_TEXT_CUT));
        assert_eq!(kept_text("short"), "short");
    }
}
