//! The completion report: what happened to a job, built from what the state machine hands over.
//!
//! The report is the JSON body subscribers parse (schema [`SCHEMA`], documented in
//! `docs/reports.md`), and the source of the subject and the email text ([`super::message`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_with::skip_serializing_none;

use super::digest::Digest;
use crate::domain::job::{JobKind, JobSpec};
use crate::domain::status::{Counts, Failure, Phase, TaskHandle, TaskStatus, Timestamp, Timings};
use crate::domain::text::truncate_chars;
use crate::ids::{DataSyncTaskArn, FileSystemId};

/// The report's schema identifier; bumped on any incompatible change.
pub const SCHEMA: &str = "ferry.completion-report/1";

/// The longest reason kept (a Step Functions `Cause` can be 32,768 characters).
pub const MAX_REASON_CHARS: usize = 2_000;

pub use crate::domain::outcome::Outcome;

/// The error Step Functions' `Catch` passes on (`ResultPath` of the error output).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "Cause", default)]
    pub cause: String,
}

impl StepError {
    /// `Error: message`, where a Lambda function's `Cause` (a JSON document with `errorMessage`)
    /// is reduced to its message.
    pub fn reason(&self) -> String {
        let message = serde_json::from_str::<Value>(&self.cause)
            .ok()
            .and_then(|v| {
                v.get("errorMessage")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| self.cause.clone());
        match (self.error.is_empty(), message.is_empty()) {
            (true, true) => "unknown error".into(),
            (false, true) => self.error.clone(),
            (true, false) => message,
            (false, false) => format!("{}: {message}", self.error),
        }
    }
}

/// What the report needs from the job. Read leniently: a job that could not start may be the
/// very thing that is wrong, and it must still be reported, so a job that is not a valid spec
/// is read field by field and whatever is missing stays unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub name: String,
    pub kind: ReportedKind,
    /// As given (shown in the report even when malformed).
    pub file_system_id: Option<String>,
    pub task_arn: Option<String>,
    /// As given; `notify` parses it into a topic ARN, falling back to the deployment's topic.
    pub topic_arn: Option<String>,
    pub timeout_seconds: Option<u64>,
    /// FSx `Report.Path` when the report is enabled.
    pub fsx_report_path: Option<String>,
}

impl JobInfo {
    pub fn from_value(job: &Value) -> JobInfo {
        if let Ok(spec) = serde_json::from_value::<JobSpec>(job.clone()) {
            return JobInfo::from_spec(spec);
        }
        let text = |pointer: &str| {
            job.pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        JobInfo {
            name: text("/name").unwrap_or_else(|| "(unnamed job)".into()),
            kind: ReportedKind::of(job.get("kind")),
            file_system_id: text("/file_system_id"),
            task_arn: text("/task_arn"),
            topic_arn: text("/notify/topic_arn"),
            timeout_seconds: job.get("timeout_seconds").and_then(Value::as_u64),
            fsx_report_path: None,
        }
    }

    pub fn from_spec(spec: JobSpec) -> JobInfo {
        JobInfo {
            fsx_report_path: spec
                .report
                .as_ref()
                .filter(|r| r.enabled)
                .and_then(|r| r.path.clone()),
            topic_arn: spec.notify.and_then(|n| n.topic_arn),
            name: spec.name,
            kind: ReportedKind::Known(spec.kind),
            file_system_id: spec.file_system_id,
            task_arn: spec.task_arn,
            timeout_seconds: spec.timeout_seconds,
        }
    }

    /// The kind as the report names it.
    pub fn kind_name(&self) -> &str {
        match &self.kind {
            ReportedKind::Known(kind) => kind.as_str(),
            ReportedKind::Unknown(given) => given,
        }
    }
}

/// A job's kind as the report says it: one Ferry knows, or, when it is missing or unknown,
/// what was given (cut to 64 characters), so the report still shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportedKind {
    Known(JobKind),
    Unknown(String),
}

impl ReportedKind {
    fn of(value: Option<&Value>) -> ReportedKind {
        let Some(value) = value else {
            return ReportedKind::Unknown("(no kind)".into());
        };
        match serde_json::from_value(value.clone()) {
            Ok(kind) => ReportedKind::Known(kind),
            Err(_) => ReportedKind::Unknown(truncate_chars(
                value.as_str().unwrap_or("(not a string)"),
                64,
            )),
        }
    }

    pub fn known(&self) -> Option<JobKind> {
        match self {
            ReportedKind::Known(kind) => Some(*kind),
            ReportedKind::Unknown(_) => None,
        }
    }
}

/// The completion report.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub job: String,
    pub kind: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// The Step Functions execution that ran the job.
    pub execution: Option<String>,
    pub region: Option<String>,
    pub file_system_id: Option<String>,
    pub datasync_task_arn: Option<String>,
    /// FSx task id or DataSync execution ARN.
    pub task_id: Option<String>,
    /// The service's final lifecycle (`SUCCEEDED`, `ERROR`, ...).
    pub lifecycle: Option<String>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub duration_seconds: Option<u64>,
    pub counts: Counts,
    /// Bytes transferred per second of transfer (DataSync).
    pub throughput_bytes_per_second: Option<u64>,
    pub failure: Option<Failure>,
    /// Where the task's own report is (`s3://...`).
    pub report_location: Option<String>,
    /// What the task's failure report says.
    pub digest: Option<Digest>,
    /// Why there is no digest when one was expected (missing or unreadable report).
    pub digest_note: Option<String>,
    pub console_url: Option<String>,
    /// The lane run that ran the task (`run-...`).
    pub run: Option<String>,
    /// The jobs the run covered (a run merges every compatible job waiting in its lane).
    pub jobs: Option<CoveredJobs>,
    /// The `ferry retry` command that reruns what failed ([`retry_command`]).
    pub retry: Option<String>,
}

/// The command that reruns what a run failed to do, when it failed to do something: only its
/// failed files when its failure report was read (`--failed-only`), the whole job when there
/// is no report to read. A run canceled by a person, or one that succeeded with no failed
/// file, gets none; nor does a job that ended without a run (there is nothing to rerun from).
pub fn retry_command(report: &Report) -> Option<String> {
    let run = report.run.as_deref()?;
    let failed_files = report.digest.as_ref().map_or_else(
        || {
            report
                .counts
                .failed
                .or(report.counts.files_failed)
                .unwrap_or(0)
                > 0
        },
        |d| d.failed > 0,
    );
    let failed_run = matches!(
        report.outcome,
        Outcome::Failed | Outcome::TimedOut | Outcome::CouldNotStart
    );
    if !failed_files && !failed_run {
        return None;
    }
    Some(if report.digest.as_ref().is_some_and(|d| d.failed > 0) {
        format!("ferry retry {run} --failed-only")
    } else {
        format!("ferry retry {run}")
    })
}

/// Most jobs a report lists by name: the rest are counted.
pub const MAX_LISTED_JOBS: usize = 100;

/// The jobs a run covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoveredJobs {
    pub total: usize,
    /// The first [`MAX_LISTED_JOBS`], oldest first.
    pub listed: Vec<CoveredJob>,
}

/// One job of a run.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CoveredJob {
    pub id: String,
    pub name: String,
    /// Where it came from (`s3-trigger route <name>`, `schedule <occurrence>`, `submit`).
    pub source: String,
    pub enqueued_at: Timestamp,
    /// When it stopped being wanted (jobs that ended pending).
    pub deadline: Option<Timestamp>,
    /// The run it reruns (`ferry retry`).
    pub retry_of: Option<String>,
}

impl CoveredJobs {
    /// `jobs` (all of them), listing the first [`MAX_LISTED_JOBS`].
    pub fn of(jobs: impl ExactSizeIterator<Item = CoveredJob>) -> CoveredJobs {
        let total = jobs.len();
        CoveredJobs {
            total,
            listed: jobs.take(MAX_LISTED_JOBS).collect(),
        }
    }
}

/// Everything the report is built from.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub job: &'a JobInfo,
    pub execution: Option<&'a str>,
    pub task: Option<&'a TaskHandle>,
    pub status: Option<&'a TaskStatus>,
    pub error: Option<&'a StepError>,
    /// The state machine cancelled the task because the job's timeout passed.
    pub timed_out: bool,
    /// The region of the deployment (`AWS_REGION`), used when the task does not name one.
    pub region: Option<&'a str>,
}

/// Why a report cannot be built: the input does not describe an ended job.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotEnded(pub String);

/// Bytes per second of the transfer phase when DataSync gives its duration; otherwise (FSx, or
/// Enhanced mode, whose phase durations are not reported) of the run's whole duration.
fn throughput(
    counts: &Counts,
    timings: Option<&Timings>,
    duration_seconds: Option<u64>,
) -> Option<u64> {
    let transfer_seconds = timings
        .and_then(|t| t.transfer_duration_ms)
        .filter(|ms| *ms > 0)
        .map(|ms| ms as f64 / 1000.0)
        .or_else(|| {
            timings
                .and_then(|t| t.total_duration_ms)
                .filter(|ms| *ms > 0)
                .map(|ms| ms as f64 / 1000.0)
        })
        .or(duration_seconds.map(|s| s as f64))
        .filter(|s| *s > 0.0);
    match (counts.bytes_transferred, transfer_seconds) {
        (Some(bytes), Some(seconds)) if bytes > 0 => Some((bytes as f64 / seconds) as u64),
        _ => None,
    }
}

/// Builds the report (without the digest, which needs S3).
pub fn build(f: &Facts<'_>) -> Result<Report, NotEnded> {
    let task = f.task.or(f.status.map(|s| &s.task));
    let (outcome, reason) = ending(f, task)?;
    let status = f.status;
    let timings = status.map(|s| &s.timings);
    let started_at = timings.and_then(|t| t.started_at.or(t.created_at));
    let ended_at = timings.and_then(|t| t.ended_at);
    let duration_seconds = match (started_at, ended_at) {
        (Some(a), Some(b)) => Some(a.seconds_until(b)),
        _ => None,
    };
    let counts = status.map(|s| s.counts.clone()).unwrap_or_default();
    let throughput_bytes_per_second = throughput(&counts, timings, duration_seconds);
    let (file_system_id, task_id) = match task {
        Some(TaskHandle::Fsx {
            file_system_id,
            task_id,
        }) => (Some(file_system_id.to_string()), Some(task_id.to_string())),
        Some(TaskHandle::Datasync { task_execution_arn }) => {
            (None, Some(task_execution_arn.to_string()))
        }
        None => (f.job.file_system_id.clone(), None),
    };
    let region = task
        .and_then(region_of)
        .or(f.region.map(str::to_owned))
        .filter(|r| !r.is_empty());
    let report_location = status
        .and_then(|s| s.report.as_ref())
        .and_then(|r| r.path.clone())
        .or_else(|| f.job.fsx_report_path.clone().filter(|_| task.is_some()));
    Ok(Report {
        schema: SCHEMA.into(),
        job: f.job.name.clone(),
        kind: f.job.kind_name().to_owned(),
        outcome,
        reason: reason.map(|r| truncate_chars(&r, MAX_REASON_CHARS)),
        execution: f.execution.map(str::to_owned),
        console_url: region.as_deref().and_then(|r| console_url(r, task, f.job)),
        region,
        file_system_id,
        // The job's task; for a task Ferry ensured from a definition, the one the execution ran.
        datasync_task_arn: f.job.task_arn.clone().or_else(|| match task {
            Some(TaskHandle::Datasync { task_execution_arn }) => {
                Some(task_execution_arn.task_arn().to_string())
            }
            _ => None,
        }),
        task_id,
        lifecycle: status.map(|s| s.lifecycle.clone()),
        started_at,
        ended_at,
        duration_seconds,
        counts,
        throughput_bytes_per_second,
        failure: status.and_then(|s| s.failure.clone()),
        report_location,
        digest: None,
        digest_note: None,
        run: None,
        jobs: None,
        retry: None,
    })
}

/// How the run ended, and why: from its final status, or from the error that stopped it.
fn ending(f: &Facts<'_>, task: Option<&TaskHandle>) -> Result<(Outcome, Option<String>), NotEnded> {
    Ok(match (f.status, f.error) {
        (Some(status), _) => outcome_of(status, f)?,
        // A job whose deadline passed before its lane could start it.
        (None, Some(error)) if task.is_none() && f.timed_out => {
            (Outcome::TimedOut, Some(error.reason()))
        }
        // A run cancelled before its task started (`notify` names who asked).
        (None, Some(error)) if task.is_none() && error.error == CANCELED_BEFORE_START => {
            (Outcome::Canceled, Some(error.cause.clone()))
        }
        // A run every runner that adopted it stopped on: ended, failed.
        (None, Some(error)) if error.error == ABANDONED => {
            (Outcome::Failed, Some(error.cause.clone()))
        }
        (None, Some(error)) if task.is_none() => (Outcome::CouldNotStart, Some(error.reason())),
        (None, Some(error)) => (
            Outcome::Failed,
            Some(format!("Ferry lost track of the task: {}", error.reason())),
        ),
        (None, None) => {
            return Err(NotEnded(
                "input: expected \"status\" (the final task status) or \"error\" (what stopped the job), got neither".into(),
            ));
        }
    })
}

/// The `Error` of a run whose cancel came before its task started (the state machine's
/// `CanceledBeforeStart`).
pub const CANCELED_BEFORE_START: &str = "Canceled";

/// The `Error` of a run abandoned after its runners kept stopping on it (the state machine's
/// `Abandon`; [`crate::lanes::runner::MAX_ADOPTIONS`]).
pub const ABANDONED: &str = "RunAbandoned";

/// The reason of a run cancelled without Ferry asking.
pub const CANCELED_OUTSIDE: &str =
    "cancelled outside Ferry (the console, the AWS CLI or the API): Ferry did not ask";

fn outcome_of(status: &TaskStatus, f: &Facts<'_>) -> Result<(Outcome, Option<String>), NotEnded> {
    let timeout = || {
        let limit = f
            .job
            .timeout_seconds
            .map_or_else(String::new, |t| format!(" of {t} s"));
        format!("the job's timeout{limit} passed; Ferry cancelled the task")
    };
    Ok(match status.phase {
        Phase::Succeeded => (Outcome::Succeeded, None),
        Phase::Failed => (Outcome::Failed, Some(failure_reason(status))),
        Phase::Canceled if f.timed_out => (Outcome::TimedOut, Some(timeout())),
        // Ferry cancels at the deadline (above) or when someone asks through it, which
        // `notify` states instead of this: any other cancel came from outside.
        Phase::Canceled => (Outcome::Canceled, Some(CANCELED_OUTSIDE.into())),
        Phase::Pending | Phase::Running => {
            return Err(NotEnded(format!(
                "status.phase: expected a final phase (succeeded, failed, canceled), got {} (lifecycle {})",
                status.phase.as_str(),
                status.lifecycle
            )));
        }
    })
}

fn failure_reason(status: &TaskStatus) -> String {
    let failure = status.failure.as_ref();
    let message = failure.and_then(|f| f.message.clone());
    let coded = failure.and_then(|f| match (&f.error_code, &f.error_detail) {
        (Some(code), Some(detail)) => Some(format!("{code}: {detail}")),
        (Some(code), None) => Some(code.clone()),
        (None, Some(detail)) => Some(detail.clone()),
        (None, None) => None,
    });
    let failed_files = status.counts.failed.or(status.counts.files_failed);
    message
        .or(coded)
        .or_else(|| {
            failed_files
                .filter(|n| *n > 0)
                .map(|n| format!("{n} files failed"))
        })
        .unwrap_or_else(|| format!("the task ended {}", status.lifecycle))
}

/// The region in a DataSync execution ARN (`arn:aws:datasync:REGION:...`).
fn region_of(task: &TaskHandle) -> Option<String> {
    match task {
        TaskHandle::Datasync { task_execution_arn } => Some(task_execution_arn.region()),
        TaskHandle::Fsx { .. } => None,
    }
}

/// The console page of the task: the FSx file system (its data repository tasks are listed
/// there) or the DataSync execution's history page. Console URL formats are not an API
/// contract; these are the ones the consoles use today. Ids go into the URL only once parsed,
/// so nothing but their own characters reaches it.
pub fn console_url(region: &str, task: Option<&TaskHandle>, job: &JobInfo) -> Option<String> {
    if !region
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    let host = if region.starts_with("cn-") {
        format!("https://{region}.console.amazonaws.cn")
    } else if region.starts_with("us-gov-") {
        format!("https://{region}.console.amazonaws-us-gov.com")
    } else {
        format!("https://{region}.console.aws.amazon.com")
    };
    let file_system =
        |fs: &str| format!("{host}/fsx/home?region={region}#file-system-details/{fs}");
    match task {
        Some(TaskHandle::Fsx { file_system_id, .. }) => Some(file_system(file_system_id.as_str())),
        Some(TaskHandle::Datasync { task_execution_arn }) => {
            let (task_id, exec_id) = task_execution_arn.ids();
            Some(format!(
                "{host}/datasync/home?region={region}#/history/{task_id}/{exec_id}"
            ))
        }
        None => {
            let fs = job.file_system_id.as_deref().map(FileSystemId::parse);
            let arn = job.task_arn.as_deref().map(DataSyncTaskArn::parse);
            match (fs, arn) {
                (Some(Ok(fs)), _) => Some(file_system(fs.as_str())),
                (_, Some(Ok(arn))) => Some(format!(
                    "{host}/datasync/home?region={region}#/tasks/{}",
                    arn.task_id()
                )),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_cause_is_reduced_to_its_message() {
        let e = StepError {
            error: "TaskConflict".into(),
            cause:
                r#"{"errorType":"TaskConflict","errorMessage":"task conflict: busy","trace":[]}"#
                    .into(),
        };
        assert_eq!(e.reason(), "TaskConflict: task conflict: busy");
        let e = StepError {
            error: "States.Timeout".into(),
            cause: String::new(),
        };
        assert_eq!(e.reason(), "States.Timeout");
        assert_eq!(StepError::default().reason(), "unknown error");
    }

    #[test]
    fn console_urls_follow_the_partition() {
        let job = JobInfo::from_value(&serde_json::json!({}));
        let fsx: TaskHandle = serde_json::from_value(serde_json::json!({"service": "fsx",
            "file_system_id": "fs-0123456789abcdef0", "task_id": "task-0123456789abcdef0"}))
        .unwrap();
        assert_eq!(
            console_url("cn-north-1", Some(&fsx), &job).as_deref(),
            Some(
                "https://cn-north-1.console.amazonaws.cn/fsx/home?region=cn-north-1#file-system-details/fs-0123456789abcdef0"
            )
        );
        assert!(
            console_url("us-gov-west-1", Some(&fsx), &job)
                .unwrap()
                .starts_with("https://us-gov-west-1.console.amazonaws-us-gov.com/")
        );
        assert_eq!(console_url("bad region", Some(&fsx), &job), None);
        let broken = JobInfo::from_value(&serde_json::json!({
            "file_system_id": "fs-x\"><script>", "task_arn": "not-an-arn"}));
        assert_eq!(console_url("us-east-1", None, &broken), None);
    }
}
