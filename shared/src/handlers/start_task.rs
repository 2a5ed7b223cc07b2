//! `start-task`: validates the job and starts its task, at most once per identity.
//!
//! A target busy with a task Ferry did not start (FSx runs one data repository task per file
//! system) is not an error: the answer says `busy`, names the task that holds it, and says how
//! long to wait before asking again (at most `FERRY_BUSY_POLL_MAX_SECONDS`), so the runner
//! starts within one wait of that task ending. Past the run's `deadline` it says `timed_out`.
//!
//! Called by the lane runner, it reads the run from the lane table (its merged spec, its
//! deadline, a cancel asked for it): the runner's state carries only the reference. A run whose
//! cancel was asked before its task started is not started (`canceled`).

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use super::{RunnerContext, now_millis};
use crate::config::{Laned, TaskConfig};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{JobSpec, ValidJob};
use crate::domain::parse;
use crate::domain::poll::{PollInput, PollSettings, next_poll_seconds};
use crate::domain::status::{TaskHandle, Timestamp};
use crate::error::FerryError;
use crate::lanes::record::{Millis, RunRecord, RunState};
use crate::lanes::runner::stored_run;
use crate::ports::{ActiveTask, ActiveTasks, LaneLease, NoteRuns, ReadRuns, StartTask};

/// The input: the job and the identity of the caller, or the lane runner's reference to its
/// run (whose spec, identity and deadline are read from the lane table).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTaskInput {
    /// The job to start; absent with `runner`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSpec>,
    /// The idempotency identity: the run's id (or a Step Functions execution name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    /// The lane runner making the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<RunnerContext>,
    /// Epoch milliseconds after which a run still waiting for its target is not wanted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Millis>,
}

/// The output the state machine reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartTaskOutput {
    /// The task started (or started before under this identity); `None` while `busy`.
    pub task: Option<TaskHandle>,
    /// The target is held by another task: wait `next_poll_seconds` and call again.
    pub busy: bool,
    /// The tasks that hold the target, when `busy` (FSx).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_by: Vec<ActiveTask>,
    /// `busy` past the `deadline`: the run ends without starting.
    pub timed_out: bool,
    /// Someone cancelled the run before its task started: it is not started.
    #[serde(default)]
    pub canceled: bool,
    /// The FSx `ClientRequestToken` / DataSync tag value used for this start.
    pub idempotency_key: String,
    /// Seconds to wait before the next status check (or, `busy`, the next start).
    pub next_poll_seconds: u32,
    pub started_at: Timestamp,
}

/// What to start: the spec, the identity its idempotency key derives from, the deadline, and
/// whether a cancel came first.
struct Start {
    job: JobSpec,
    identity: Option<String>,
    deadline: Option<Millis>,
    canceled: bool,
    /// The lane runner's run (the runner holds a lease: no wait may outlast a third of it).
    run: Option<RunRecord>,
}

/// The job from the input, or from the run the runner refers to (after renewing its lease).
async fn what_to_start<L: LaneLease + ReadRuns>(
    lanes: &L,
    config: &Laned<TaskConfig>,
    input: StartTaskInput,
) -> Result<Start, FerryError> {
    match (input.runner, input.job) {
        (Some(runner), None) => {
            runner.renew(lanes, &config.lanes).await?;
            let run = stored_run(lanes, &runner.lane, &runner.run).await?;
            Ok(Start {
                identity: Some(run.id.0.clone()),
                deadline: Some(run.deadline),
                canceled: run.cancel.is_some(),
                job: run.spec.clone(),
                run: Some(run),
            })
        }
        (None, Some(job)) => Ok(Start {
            job,
            identity: input.execution,
            deadline: input.deadline,
            canceled: false,
            run: None,
        }),
        (Some(_), Some(_)) => Err(FerryError::invalid(
            "job",
            "must be left out with \"runner\": the runner's job is its run's, read from the lane table",
        )),
        (None, None) => Err(FerryError::invalid(
            "job",
            "is required (or \"runner\", the lane runner's reference to its run)",
        )),
    }
}

pub async fn handle<P: StartTask + ActiveTasks, L: LaneLease + ReadRuns + NoteRuns>(
    (tasks, lanes): &(P, L),
    config: &Laned<TaskConfig>,
    event: LambdaEvent<Value>,
) -> Result<StartTaskOutput, FerryError> {
    let input: StartTaskInput = parse::from_value(event.payload, "")?;
    let start = what_to_start(lanes, config, input).await?;
    let job = start.job.validate(&config.config.limits)?;
    // Closed by default: only the file systems and DataSync tasks the deployment names.
    config.config.reach.check(&job)?;
    let key = IdempotencyKey::derive(start.identity.as_deref(), &job);
    let poll = job.poll_settings(config.config.poll);
    let mut output = StartTaskOutput {
        task: None,
        busy: false,
        held_by: Vec::new(),
        timed_out: false,
        canceled: start.canceled,
        idempotency_key: key.to_string(),
        next_poll_seconds: poll.min_seconds,
        started_at: Timestamp::now(),
    };
    if start.canceled {
        info!(job = %job.name, key = %key, "cancelled before its task started: not started");
        return super::bounded(output, "the start answer");
    }
    info!(job = %job.name, kind = job.kind.as_str(), key = %key, "starting task");
    match start_once((tasks, lanes), &job, &key, start.run.as_ref()).await {
        Ok(task) => output.task = Some(task),
        Err(FerryError::TaskConflict { message, .. }) => {
            output.held_by = tasks.active_tasks(&job).await?;
            output.busy = true;
            output.timed_out = start.deadline.is_some_and(|d| now_millis() >= d);
            output.next_poll_seconds = busy_wait(&job, config, &output.held_by);
            output.held_by.truncate(MAX_HELD_BY);
            info!(job = %job.name, reason = %message, held_by = ?output.held_by,
                  wait = output.next_poll_seconds, timed_out = output.timed_out, "target busy");
        }
        Err(e) => return Err(e),
    }
    if start.run.is_some() {
        // The first status check renews the lease: a job's `poll.min_seconds` longer than
        // the lease would let it expire and another runner adopt the run (issue 25).
        output.next_poll_seconds =
            super::task_status::within_lease(output.next_poll_seconds, false, &config.lanes);
    }
    super::bounded(output, "the start answer")
}

/// Starts the run's task once, whatever stops on the way (the run's id is the idempotency key).
///
/// For a lane runner's run: a task already recorded is the answer (a retry whose first answer
/// was lost). Otherwise the run is marked before the service is called, and the task started
/// is recorded on the run at once, before any answer: a runner that adopts the run later
/// follows that task. A start that finds the mark of an earlier attempt but no task recorded
/// may have started one that has ended since (the runner stopped, its lease expired, the run
/// was adopted): it looks among ended DataSync executions too ([`StartTask::start_task_again`]),
/// and never starts a second (issue 25).
async fn start_once<P: StartTask, L: NoteRuns>(
    (tasks, lanes): (&P, &L),
    job: &ValidJob,
    key: &IdempotencyKey,
    run: Option<&RunRecord>,
) -> Result<TaskHandle, FerryError> {
    let Some(run) = run else {
        return tasks.start_task(job, key).await;
    };
    if let Some(task) = &run.task {
        info!(run = %run.id, task = %task, "task recorded already");
        return Ok(task.clone());
    }
    let now = now_millis();
    let marked = lanes.mark_start(run, now).await?;
    let task = if run.start_attempted.is_none() && marked == now {
        tasks.start_task(job, key).await?
    } else {
        info!(run = %run.id, since = marked, "an earlier attempt may have started the task");
        tasks.start_task_again(job, key).await?
    };
    let recorded = RunRecord {
        state: RunState::Started,
        task: Some(task.clone()),
        started_at: Some(now),
        ..run.clone()
    };
    lanes.note(&recorded).await?;
    Ok(task)
}

/// Most tasks holding the target that the answer names (FSx runs one task at a time; a few are
/// `CANCELING` or `PENDING` beside it): the answer stays far within the state's budget.
const MAX_HELD_BY: usize = 10;

/// How long to wait for the tasks that hold the target: a fifth of the oldest one's age, as
/// for Ferry's own tasks, between the job's shortest poll and `FERRY_BUSY_POLL_MAX_SECONDS`.
fn busy_wait(job: &ValidJob, config: &Laned<TaskConfig>, held_by: &[ActiveTask]) -> u32 {
    let poll = job.poll_settings(config.config.poll);
    let max_seconds = config.lanes.busy_poll_max_seconds.max(poll.min_seconds);
    let now = Timestamp::now();
    let age_seconds = held_by
        .iter()
        .filter_map(|t| t.created_at)
        .map(|created| created.seconds_until(now))
        .max()
        .unwrap_or(0);
    let settings = PollSettings {
        min_seconds: poll.min_seconds,
        max_seconds,
    };
    next_poll_seconds(
        settings,
        PollInput {
            age_seconds,
            progress: None,
            canceling: held_by.iter().any(|t| t.lifecycle == "CANCELING"),
            seconds_to_deadline: None,
        },
    )
}
