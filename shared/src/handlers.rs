//! The Lambda handlers of `start-task`, `task-status` and `cancel-task`, generic over the ports.
//!
//! Each takes the raw event (see [`crate::input`] for why), validates it, calls its port and
//! returns the JSON the state machine reads. The binaries under `functions/` only wire AWS
//! clients and configuration to these.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use crate::config::Config;
use crate::error::{FerryError, InvalidJob};
use crate::input;
use crate::job::{JobSpec, Limits, ValidJob};
use crate::ports::{CancelOutcome, CancelTask, DescribeTask, StartTask};
use crate::status::{StatusContext, TaskHandle, TaskStatus, Timestamp};
use crate::token::IdempotencyKey;
use crate::validate::{self, API_MAX_PATHS};

/// `start-task` input: the job, and the identity of the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTaskInput {
    pub job: JobSpec,
    /// The Step Functions execution name (`$$.Execution.Name`): the idempotency identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

/// `start-task` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartTaskOutput {
    pub task: TaskHandle,
    /// The FSx `ClientRequestToken` / DataSync tag value used for this start.
    pub idempotency_key: String,
    /// Seconds to wait before the first status check.
    pub next_poll_seconds: u32,
    pub started_at: Timestamp,
}

/// `task-status` and `cancel-task` input: the job and the task it started.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    pub job: JobSpec,
    pub task: TaskHandle,
    /// Set by the state machine after it asked to cancel (a cancelled DataSync run ends ERROR).
    #[serde(default)]
    pub cancel_requested: bool,
}

/// `cancel-task` output: what the cancellation did, and the task's status after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CancelTaskOutput {
    pub cancel: CancelOutcome,
    #[serde(flatten)]
    pub status: TaskStatus,
}

/// Validates the job and starts its task, at most once per execution.
pub async fn start_task<P: StartTask>(
    port: &P,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<StartTaskOutput, FerryError> {
    let input: StartTaskInput = input::parse(event.payload, "")?;
    let job = input.job.validate(&config.limits)?;
    let key = IdempotencyKey::derive(input.execution.as_deref(), &job);
    info!(job = %job.name, kind = job.kind.as_str(), key = %key, "starting task");
    let task = port.start_task(&job, &key).await?;
    Ok(StartTaskOutput {
        task,
        idempotency_key: key.to_string(),
        next_poll_seconds: job.poll_settings(config.poll).min_seconds,
        started_at: Timestamp::now(),
    })
}

/// Describes the task and returns its normalized status.
pub async fn task_status<P: DescribeTask>(
    port: &P,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<TaskStatus, FerryError> {
    let input: TaskInput = input::parse(event.payload, "")?;
    let job = checked_task_input(&input)?;
    let snapshot = port.describe_task(&input.task).await?;
    let status = TaskStatus::from_snapshot(snapshot, context(&job, config, input.cancel_requested));
    info!(
        task = %status.task, lifecycle = %status.lifecycle, phase = status.phase.as_str(),
        done = status.done, timed_out = status.timed_out, next_poll_seconds = status.next_poll_seconds,
        "task status"
    );
    Ok(status)
}

/// Cancels the task (a no-op when it already ended) and returns its status afterwards.
pub async fn cancel_task<P: CancelTask + DescribeTask>(
    port: &P,
    config: &Config,
    event: LambdaEvent<Value>,
) -> Result<CancelTaskOutput, FerryError> {
    let input: TaskInput = input::parse(event.payload, "")?;
    let job = checked_task_input(&input)?;
    let cancel = port.cancel_task(&input.task).await?;
    let snapshot = port.describe_task(&input.task).await?;
    let status = TaskStatus::from_snapshot(snapshot, context(&job, config, true));
    info!(task = %status.task, cancel = ?cancel, lifecycle = %status.lifecycle, "cancel");
    Ok(CancelTaskOutput { cancel, status })
}

fn context(job: &ValidJob, config: &Config, cancel_requested: bool) -> StatusContext {
    StatusContext {
        poll: job.poll_settings(config.poll),
        timeout_seconds: job.timeout_seconds(),
        cancel_requested,
        now: Timestamp::now(),
    }
}

/// The job was validated when its task started; it is checked again (against the API's own
/// path limit, so a deployment that lowered its cap still tracks older tasks) together with
/// the handle, which must belong to the job's service.
fn checked_task_input(input: &TaskInput) -> Result<ValidJob, FerryError> {
    let lenient = Limits {
        max_paths: API_MAX_PATHS,
    };
    let handle_problem = match (&input.task, input.job.kind.is_fsx()) {
        (TaskHandle::Fsx { file_system_id, .. }, true)
            if !validate::is_file_system_id(file_system_id) =>
        {
            Some((
                "task.file_system_id",
                format!("must be an FSx file system id (fs-...); got {file_system_id:?}"),
            ))
        }
        (TaskHandle::Fsx { task_id, .. }, true) if !validate::is_fsx_task_id(task_id) => Some((
            "task.task_id",
            format!("must be an FSx task id (task-...); got {task_id:?}"),
        )),
        (TaskHandle::Datasync { task_execution_arn }, false)
            if !validate::is_datasync_execution_arn(task_execution_arn) =>
        {
            Some((
                "task.task_execution_arn",
                format!(
                    "must be a DataSync execution ARN (...:task/task-.../execution/exec-...); got {task_execution_arn:?}"
                ),
            ))
        }
        (TaskHandle::Fsx { .. }, false) | (TaskHandle::Datasync { .. }, true) => Some((
            "task.service",
            format!("does not match the job's kind {}", input.job.kind.as_str()),
        )),
        _ => None,
    };
    let job_result = input.job.clone().validate(&lenient);
    match (job_result, handle_problem) {
        (Ok(job), None) => Ok(job),
        (Ok(_), Some((field, problem))) => Err(FerryError::invalid(field, problem)),
        (Err(mut invalid), problem) => {
            if let Some((field, problem)) = problem {
                invalid
                    .errors
                    .extend(InvalidJob::one(field, problem).errors);
            }
            Err(FerryError::InvalidJob(invalid))
        }
    }
}
