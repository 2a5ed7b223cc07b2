//! Task handles and the normalized task status every function after `start-task` speaks.
//!
//! Adapters turn a service's description into a [`TaskSnapshot`] (raw lifecycle, counts, times,
//! failure, report); [`TaskStatus::from_snapshot`] adds the normalized phase, `done`, the timeout
//! verdict and the next polling interval. Unknown lifecycle values are kept verbatim and treated
//! as "still running": a new AWS status never panics Ferry nor ends a job early.

use std::fmt;
use std::time::SystemTime;

use aws_smithy_types::DateTime;
use aws_smithy_types::date_time::Format;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_with::skip_serializing_none;

use crate::domain::poll::{self, PollInput, PollSettings};
use crate::ids::{DataSyncExecutionArn, FileSystemId, FsxTaskId};

/// Which task a job started: the state machine passes it back to every later function. Its
/// ids are parsed when it is deserialized, so a malformed handle is refused naming its field
/// (`task.task_id: must be "task-" followed by at least 17 lowercase hex digits ...`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "service", rename_all = "snake_case", try_from = "HandleFields")]
pub enum TaskHandle {
    /// An FSx data repository task.
    Fsx {
        file_system_id: FileSystemId,
        task_id: FsxTaskId,
    },
    /// A DataSync task execution.
    Datasync {
        task_execution_arn: DataSyncExecutionArn,
    },
}

impl TaskHandle {
    /// The task id or execution ARN, for logs and reports.
    pub fn id(&self) -> &str {
        match self {
            TaskHandle::Fsx { task_id, .. } => task_id.as_str(),
            TaskHandle::Datasync { task_execution_arn } => task_execution_arn.as_str(),
        }
    }

    /// True for an FSx task, false for a DataSync execution.
    pub fn is_fsx(&self) -> bool {
        matches!(self, TaskHandle::Fsx { .. })
    }
}

/// A handle as it arrives: read as one flat object, because serde cannot say which field of
/// an internally tagged enum failed to parse; the service then says which fields it needs.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HandleFields {
    service: HandleService,
    file_system_id: Option<FileSystemId>,
    task_id: Option<FsxTaskId>,
    task_execution_arn: Option<DataSyncExecutionArn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum HandleService {
    Fsx,
    Datasync,
}

/// A handle whose fields do not fit its service.
#[derive(Debug, thiserror::Error)]
#[error("a {service} handle needs {needs} and nothing else")]
pub struct HandleError {
    service: &'static str,
    needs: &'static str,
}

impl TryFrom<HandleFields> for TaskHandle {
    type Error = HandleError;

    fn try_from(fields: HandleFields) -> Result<TaskHandle, HandleError> {
        match fields {
            HandleFields {
                service: HandleService::Fsx,
                file_system_id: Some(file_system_id),
                task_id: Some(task_id),
                task_execution_arn: None,
            } => Ok(TaskHandle::Fsx {
                file_system_id,
                task_id,
            }),
            HandleFields {
                service: HandleService::Datasync,
                file_system_id: None,
                task_id: None,
                task_execution_arn: Some(task_execution_arn),
            } => Ok(TaskHandle::Datasync { task_execution_arn }),
            HandleFields {
                service: HandleService::Fsx,
                ..
            } => Err(HandleError {
                service: "fsx",
                needs: "file_system_id and task_id",
            }),
            HandleFields { .. } => Err(HandleError {
                service: "datasync",
                needs: "task_execution_arn",
            }),
        }
    }
}

impl fmt::Display for TaskHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskHandle::Fsx {
                file_system_id,
                task_id,
            } => write!(f, "{task_id} on {file_system_id}"),
            TaskHandle::Datasync { task_execution_arn } => f.write_str(task_execution_arn.as_str()),
        }
    }
}

/// Where a task is in its life, the same for every service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::Canceled)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "pending",
            Phase::Running => "running",
            Phase::Succeeded => "succeeded",
            Phase::Failed => "failed",
            Phase::Canceled => "canceled",
        }
    }

    /// FSx `DataRepositoryTaskLifecycle`: PENDING, EXECUTING, CANCELING, SUCCEEDED, FAILED,
    /// CANCELED (API reference). Anything else is an unknown, non-terminal value.
    pub fn from_fsx(lifecycle: &str) -> Phase {
        match lifecycle {
            "PENDING" => Phase::Pending,
            "SUCCEEDED" => Phase::Succeeded,
            "FAILED" => Phase::Failed,
            "CANCELED" => Phase::Canceled,
            // EXECUTING, CANCELING, and values this build does not know yet.
            _ => Phase::Running,
        }
    }

    /// DataSync `TaskExecutionStatus`: QUEUED, LAUNCHING, PREPARING, TRANSFERRING, VERIFYING,
    /// CANCELLING, SUCCESS, ERROR (API reference). A cancelled execution ends as ERROR, so an
    /// ERROR after Ferry asked to cancel is reported as canceled.
    pub fn from_datasync(status: &str, cancel_requested: bool) -> Phase {
        match status {
            "QUEUED" | "LAUNCHING" => Phase::Pending,
            "SUCCESS" => Phase::Succeeded,
            "ERROR" if cancel_requested => Phase::Canceled,
            "ERROR" => Phase::Failed,
            // PREPARING, TRANSFERRING, VERIFYING, CANCELLING, and unknown values (moto's
            // INITIALIZING among them).
            _ => Phase::Running,
        }
    }

    /// The phase of `snapshot`. A DataSync `ERROR` is a cancel when a cancel was requested or
    /// seen (`cancelled`: Ferry asked, or the execution was seen `CANCELLING` without Ferry
    /// asking) or when its result says so ([`reads_as_cancelled`]).
    fn of(snapshot: &TaskSnapshot, cancelled: bool) -> Phase {
        let lifecycle = snapshot.lifecycle.as_str();
        match snapshot.task {
            TaskHandle::Fsx { .. } => Phase::from_fsx(lifecycle),
            TaskHandle::Datasync { .. } => Phase::from_datasync(
                lifecycle,
                cancelled || reads_as_cancelled(snapshot.failure.as_ref()),
            ),
        }
    }
}

/// A DataSync result naming a cancel. AWS documents no `Result` for a cancelled execution (it
/// ends `ERROR`; the error code is not listed, AWS-FACTS.md): any error code or detail that
/// mentions a cancel counts (the emulator's detail is "Task execution was cancelled."). An
/// execution seen `CANCELLING` counts whatever its result (task-status remembers it).
fn reads_as_cancelled(failure: Option<&Failure>) -> bool {
    failure.is_some_and(|f| {
        [&f.error_code, &f.error_detail]
            .into_iter()
            .flatten()
            .any(|text| text.to_ascii_lowercase().contains("cancel"))
    })
}

/// The lifecycle values of a task being cancelled: FSx `CANCELING`, DataSync `CANCELLING`.
pub fn is_canceling(lifecycle: &str) -> bool {
    matches!(lifecycle, "CANCELING" | "CANCELLING")
}

/// An instant, serialized as an RFC 3339 string (`2026-11-21T10:00:00Z`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timestamp(pub DateTime);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp(DateTime::from(SystemTime::now()))
    }

    pub fn from_secs(epoch_seconds: i64) -> Timestamp {
        Timestamp(DateTime::from_secs(epoch_seconds))
    }

    /// Whole seconds from `self` to `later`, 0 when `later` is earlier.
    pub fn seconds_until(self, later: Timestamp) -> u64 {
        u64::try_from(later.0.secs() - self.0.secs()).unwrap_or(0)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self
            .0
            .fmt(Format::DateTime)
            .map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        DateTime::from_str(&text, Format::DateTime)
            .map(Timestamp)
            .map_err(|e| serde::de::Error::custom(format!("expected an RFC 3339 time: {e}")))
    }
}

/// Progress counters. FSx fills the first four; DataSync the rest. Absent when not reported.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub total: Option<i64>,
    pub succeeded: Option<i64>,
    pub failed: Option<i64>,
    /// FSx `Status.ReleasedCapacity` (auto-release tasks).
    pub released_capacity: Option<i64>,
    pub files_prepared: Option<i64>,
    pub files_transferred: Option<i64>,
    pub files_skipped: Option<i64>,
    pub files_verified: Option<i64>,
    pub files_deleted: Option<i64>,
    /// DataSync `FilesFailed`, summed over prepare, transfer, verify and delete.
    pub files_failed: Option<i64>,
    /// DataSync `FilesFailed` per phase, as the API gives them (Enhanced mode fills all four).
    pub files_failed_by_phase: Option<PhaseCounts>,
    /// DataSync `FilesListed.AtSource` (Enhanced mode: objects listed at the source).
    pub files_listed_at_source: Option<i64>,
    /// DataSync `FilesListed.AtDestinationForDelete` (Enhanced mode, with deletion on).
    pub files_listed_for_delete: Option<i64>,
    pub bytes_written: Option<i64>,
    pub bytes_transferred: Option<i64>,
    pub bytes_compressed: Option<i64>,
    pub estimated_files_to_transfer: Option<i64>,
    pub estimated_bytes_to_transfer: Option<i64>,
    pub estimated_files_to_delete: Option<i64>,
}

/// Files per DataSync phase (`TaskExecutionFilesFailedDetail`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseCounts {
    pub prepare: i64,
    pub transfer: i64,
    pub verify: i64,
    pub delete: i64,
}

impl Counts {
    /// Observed completion in `[0, 1]`, when the counters allow an estimate.
    pub fn progress(&self) -> Option<f64> {
        let ratio = |done: i64, total: i64| {
            (total > 0).then(|| (done.max(0) as f64 / total as f64).min(1.0))
        };
        if let Some(total) = self.total {
            return ratio(
                self.succeeded.unwrap_or(0) + self.failed.unwrap_or(0),
                total,
            );
        }
        if let (Some(done), Some(total)) =
            (self.bytes_transferred, self.estimated_bytes_to_transfer)
            && total > 0
        {
            return ratio(done, total);
        }
        match (self.files_transferred, self.estimated_files_to_transfer) {
            (Some(done), Some(total)) => ratio(done, total),
            _ => None,
        }
    }
}

/// When things happened. DataSync phase durations are in milliseconds, as the API reports them.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// FSx `CreationTime`; DataSync `StartTime` (when the start was requested).
    pub created_at: Option<Timestamp>,
    /// FSx `StartTime`; DataSync `LaunchTime` (later than the request for a queued execution).
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    /// FSx `Status.LastUpdatedTime`.
    pub last_updated_at: Option<Timestamp>,
    pub prepare_duration_ms: Option<i64>,
    pub transfer_duration_ms: Option<i64>,
    pub verify_duration_ms: Option<i64>,
    pub total_duration_ms: Option<i64>,
}

/// Why a task failed, as the service said it.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// FSx `FailureDetails.Message` (at most 256 characters).
    pub message: Option<String>,
    /// DataSync `Result.ErrorCode`.
    pub error_code: Option<String>,
    /// DataSync `Result.ErrorDetail`.
    pub error_detail: Option<String>,
}

/// Where the task's own report is.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLocation {
    /// The configured destination: FSx `Report.Path`, or `s3://bucket/subdirectory` for DataSync.
    pub path: Option<String>,
    /// DataSync `ReportResult.Status` (PENDING, SUCCESS, ERROR).
    pub status: Option<String>,
    pub error_code: Option<String>,
    pub error_detail: Option<String>,
}

/// A task as its service describes it, before normalization.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSnapshot {
    pub task: TaskHandle,
    /// The raw lifecycle or status string, kept verbatim.
    pub lifecycle: String,
    pub counts: Counts,
    pub timings: Timings,
    pub failure: Option<Failure>,
    pub report: Option<ReportLocation>,
}

/// The normalized status returned by `task-status` and `cancel-task`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task: TaskHandle,
    pub phase: Phase,
    /// The service's own lifecycle value, verbatim (e.g. `EXECUTING`, `TRANSFERRING`).
    pub lifecycle: String,
    /// True once the lifecycle is terminal: the state machine stops polling.
    pub done: bool,
    /// The job's timeout has passed and the task is not done: the state machine cancels it.
    pub timed_out: bool,
    /// Seconds since the task was created.
    pub age_seconds: u64,
    /// Seconds the state machine should wait before polling again.
    pub next_poll_seconds: u32,
    pub counts: Counts,
    pub timings: Timings,
    pub failure: Option<Failure>,
    pub report: Option<ReportLocation>,
    /// The task has ended but DataSync is still writing its task report (`ReportResult.Status`
    /// `PENDING`): `done` waits for it, at most [`REPORT_WAIT_SECONDS`] after the end.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report_pending: bool,
}

/// How long after an execution ends Ferry waits for DataSync to finish writing its task report
/// before reporting without it (the report then says it was still being written). DataSync
/// writes the report after the transfer (`ReportResult`: PENDING, then SUCCESS or ERROR; API
/// reference, DescribeTaskExecution); its documentation gives no bound, so this one is Ferry's.
pub const REPORT_WAIT_SECONDS: u64 = 300;

/// What the status computation needs from the job and the caller.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatusContext {
    pub poll: PollSettings,
    pub timeout_seconds: u64,
    /// Ferry already asked to cancel this task, or saw it being cancelled without asking.
    pub cancel_requested: bool,
    pub now: Timestamp,
}

impl TaskStatus {
    /// Normalizes a snapshot: phase, `done`, timeout, and the next polling interval.
    pub fn from_snapshot(snapshot: TaskSnapshot, ctx: StatusContext) -> TaskStatus {
        let phase = Phase::of(&snapshot, ctx.cancel_requested);
        let ended = phase.is_terminal();
        let report_pending = ended && report_still_pending(&snapshot, ctx.now);
        let done = ended && !report_pending;
        let born = snapshot.timings.created_at.or(snapshot.timings.started_at);
        let age_seconds = born.map_or(0, |t| t.seconds_until(ctx.now));
        let timed_out = !ended && age_seconds >= ctx.timeout_seconds;
        let canceling = is_canceling(&snapshot.lifecycle) || (ctx.cancel_requested && !done);
        let next_poll_seconds = if report_pending {
            ctx.poll.min_seconds
        } else {
            poll::next_poll_seconds(
                ctx.poll,
                PollInput {
                    age_seconds,
                    progress: (phase == Phase::Running)
                        .then(|| snapshot.counts.progress())
                        .flatten(),
                    canceling,
                    seconds_to_deadline: Some(ctx.timeout_seconds.saturating_sub(age_seconds)),
                },
            )
        };
        TaskStatus {
            task: snapshot.task,
            phase,
            lifecycle: bounded(Some(snapshot.lifecycle)).unwrap_or_default(),
            done,
            timed_out,
            age_seconds,
            next_poll_seconds,
            counts: snapshot.counts,
            timings: snapshot.timings,
            failure: snapshot.failure.map(Failure::bounded),
            report: snapshot.report.map(ReportLocation::bounded),
            report_pending,
        }
    }
}

/// Most characters of a service's own text (an error detail, a lifecycle) the normalized status
/// keeps: it travels in the runner's state, whose quota is 256 KiB, and the services document
/// no bound for DataSync's `ErrorDetail`.
pub const MAX_SERVICE_TEXT_CHARS: usize = 2_000;

fn bounded(text: Option<String>) -> Option<String> {
    text.map(|t| crate::domain::text::truncate_chars(&t, MAX_SERVICE_TEXT_CHARS))
}

impl Failure {
    /// Each text within [`MAX_SERVICE_TEXT_CHARS`].
    pub fn bounded(self) -> Failure {
        Failure {
            message: bounded(self.message),
            error_code: bounded(self.error_code),
            error_detail: bounded(self.error_detail),
        }
    }
}

impl ReportLocation {
    /// Each text within [`MAX_SERVICE_TEXT_CHARS`].
    pub fn bounded(self) -> ReportLocation {
        ReportLocation {
            path: bounded(self.path),
            status: bounded(self.status),
            error_code: bounded(self.error_code),
            error_detail: bounded(self.error_detail),
        }
    }
}

/// An ended execution whose task report DataSync is still writing, within
/// [`REPORT_WAIT_SECONDS`] of its end. Without an end time there is nothing to bound the wait
/// by, so there is no wait.
fn report_still_pending(snapshot: &TaskSnapshot, now: Timestamp) -> bool {
    let pending = snapshot
        .report
        .as_ref()
        .and_then(|r| r.status.as_deref())
        .is_some_and(|s| s.eq_ignore_ascii_case("PENDING"));
    let since_end = snapshot.timings.ended_at.map(|t| t.seconds_until(now));
    pending && since_end.is_some_and(|s| s < REPORT_WAIT_SECONDS)
}

#[cfg(test)]
mod tests;
