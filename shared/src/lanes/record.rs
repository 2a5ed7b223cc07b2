//! What the lane table keeps: queued jobs, the run in flight, and the lease.
//!
//! These are the records the runner and the entries read and write through the lane ports
//! ([`crate::ports::LaneQueue`], [`crate::ports::LaneLease`], [`crate::ports::LaneRuns`]); how
//! they are laid out in DynamoDB is the adapter's business (`aws/lanes.rs`).

use serde::{Deserialize, Serialize};

use super::{JobId, LaneId};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::JobSpec;
use crate::domain::outcome::Outcome;
use crate::domain::status::{Counts, TaskHandle, Timestamp};

/// Milliseconds since the Unix epoch: the lane table's clock (enqueue order, leases,
/// deadlines).
pub type Millis = u64;

/// A job waiting in its lane.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedJob {
    pub id: JobId,
    pub lane: LaneId,
    /// Validated when it was enqueued.
    pub spec: JobSpec,
    /// The prefix its paths may collapse within when merged (an upload job's route prefix).
    pub collapse_root: Option<String>,
    /// Where it came from, for people: `s3-trigger`, `schedule <occurrence>`, `submit`.
    pub source: String,
    pub enqueued_at: Millis,
    /// When it stops being wanted: a job still pending then is reported timed out.
    pub deadline: Millis,
}

impl QueuedJob {
    /// What the job weighs as stored (its record as JSON), in bytes.
    pub fn weight(&self) -> usize {
        crate::budget::json_bytes(self)
    }
}

/// What enqueueing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Added,
    /// The job was enqueued before (a redelivery): nothing changed.
    AlreadyQueued,
}

/// A job's state in its lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Canceled,
    /// Its deadline passed: while pending (it never ran), or while its run went on.
    TimedOut,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Pending => "pending",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Canceled => "canceled",
            JobState::TimedOut => "timed_out",
        }
    }

    /// The state named `text` ([`JobState::as_str`]).
    pub fn parse(text: &str) -> Option<JobState> {
        [
            JobState::Pending,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Canceled,
            JobState::TimedOut,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }

    pub fn is_finished(self) -> bool {
        !matches!(self, JobState::Pending | JobState::Running)
    }
}

/// A job found by its id: where it is and how far it got.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job: QueuedJob,
    pub state: JobState,
    /// The run that took it, once one did.
    pub run: Option<RunId>,
    /// Who cancelled it while it was pending, and why.
    pub cancel: Option<CancelRequest>,
}

/// A run's identity: `run-` and the id of the invocation that claimed it (unique).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job a run covers, as its report lists it: the run's **member** record. A run's job list is
/// not part of the run's own record (2,000 jobs with long sources pass DynamoDB's 400 KB item
/// limit): each job it took has a member record of its own, written with the job's move from
/// pending to running, and the run keeps the count ([`RunRecord::job_count`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunJob {
    pub id: JobId,
    pub name: String,
    pub source: String,
    pub enqueued_at: Millis,
    /// What the job's own record weighs in the lane table, in bytes: what ending it costs a
    /// transaction ([`crate::budget::TRANSACTION_BYTES`]).
    #[serde(default)]
    pub weight: usize,
    /// The run the job reruns (its spec's `retry_of`), for the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_of: Option<String>,
}

impl RunJob {
    /// The member record of `job`.
    pub fn of(job: &QueuedJob) -> RunJob {
        RunJob {
            id: job.id.clone(),
            name: job.spec.name.clone(),
            source: job.source.clone(),
            enqueued_at: job.enqueued_at,
            weight: job.weight(),
            retry_of: job.spec.retry_of.clone(),
        }
    }
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Written, jobs taken; the task may or may not have been started (the token says which).
    Claimed,
    /// The task is running; `task` names it.
    Started,
    /// Reported and finished.
    Done,
}

/// Who asked to cancel, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelRequest {
    pub by: String,
    pub reason: String,
    pub at: Millis,
}

/// The run in flight in a lane: written before the task starts, so a runner that dies at any
/// step is finished by the one that adopts the lane. Its jobs are its members ([`RunJob`]),
/// kept apart; the record counts them. What it weighs: its spec (at most
/// [`crate::budget::SPEC_BYTES`]) and a few bounded fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub lane: LaneId,
    pub state: RunState,
    /// The merged task spec.
    pub spec: JobSpec,
    /// How many jobs it covers (its members). (A record written before runs kept their jobs
    /// as members has none: drain the lanes before upgrading, docs/deploy.md.)
    #[serde(default)]
    pub job_count: usize,
    /// The idempotency key the task is started with (FSx `ClientRequestToken`, DataSync tag).
    pub token: String,
    pub task: Option<TaskHandle>,
    pub claimed_at: Millis,
    /// The latest of its jobs' deadlines: a run that cannot start before then (its target
    /// busy with a task Ferry did not start) ends timed out without running.
    #[serde(default = "no_deadline")]
    pub deadline: Millis,
    pub started_at: Option<Millis>,
    pub ended_at: Option<Millis>,
    pub cancel: Option<CancelRequest>,
    /// When Ferry first saw the task being cancelled without having asked (the console, the
    /// AWS CLI, the API): the run ends canceled "outside Ferry", not failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled_outside: Option<Millis>,
    /// How many runners adopted it after the one before them stopped without handing it over
    /// (a runner's continuation adopts it without counting). Past
    /// [`crate::lanes::runner::MAX_ADOPTIONS`] the run is abandoned: it can only be stopping
    /// every runner that follows it, and the jobs behind it must not wait for ever.
    #[serde(default)]
    pub adoptions: u32,
    /// When `start-task` first set out to start its task, before calling the service. A later
    /// attempt that finds no task recorded knows an earlier one may have started it and looks
    /// for it even among DataSync executions that have ended (DataSync has no idempotency
    /// token); kept beside the record, first one wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_attempted: Option<Millis>,
}

impl RunRecord {
    /// A run of `spec` (merged from `job_count` jobs) as a take claims it at `now`: no task
    /// yet, its idempotency key derived from its id and spec, wanted until `deadline`.
    pub fn claimed(
        (id, lane): (RunId, LaneId),
        (spec, job_count): (JobSpec, usize),
        (now, deadline): (Millis, Millis),
    ) -> RunRecord {
        RunRecord {
            token: IdempotencyKey::derive(Some(&id.0), &spec).to_string(),
            id,
            lane,
            state: RunState::Claimed,
            spec,
            job_count,
            task: None,
            claimed_at: now,
            deadline,
            started_at: None,
            ended_at: None,
            cancel: None,
            canceled_outside: None,
            adoptions: 0,
            start_attempted: None,
        }
    }
}

fn no_deadline() -> Millis {
    Millis::MAX
}

/// How pending jobs end without a run: `TimedOut` at their deadline, or `Canceled` (who asked
/// and why is kept with the job, for its report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobEnd {
    pub state: JobState,
    pub at: Millis,
    pub cancel: Option<CancelRequest>,
}

/// A lease asked for on `lane`: `owner`'s until `until`, taken at `now` (a lease whose `until`
/// is before `now` has expired).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRequest {
    pub lane: LaneId,
    pub owner: String,
    pub now: Millis,
    pub until: Millis,
}

/// The lane's lease: at most one runner at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    /// The runner execution's name.
    pub owner: String,
    pub until: Millis,
}

/// What taking a lease did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leased {
    Acquired,
    /// Another runner holds it, until `until` unless renewed.
    HeldBy(Lease),
}

/// A lane in the registry: a lane where a job was queued in the last
/// [`REGISTRATION_DAYS`] days (an entry renews it; DynamoDB's TTL prunes it after).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub lane: LaneId,
    /// Its runner released it with nothing pending, and no job came since: the sweep passes
    /// it by.
    pub idle: bool,
    /// The job whose enqueue last renewed it (what marking it idle is conditional on).
    pub last_job: Option<JobId>,
}

/// How long a lane stays registered after its last job was queued: a job waits at most its
/// 30-day timeout, and its run ends by then.
pub const REGISTRATION_DAYS: u64 = 31;

/// A lane's own record: its lease and the run in flight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LaneState {
    pub lease: Option<Lease>,
    pub run: Option<RunId>,
}

/// A run's completion report as `notify` published it, kept in the lane table (as long as the
/// run's record) for people: `ferry history` lists them, `ferry watch` prints the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptReport {
    pub run: RunId,
    pub lane: LaneId,
    /// The job name the report carries (a run's merged spec keeps its first job's name).
    pub job: String,
    pub kind: String,
    pub outcome: Outcome,
    pub reason: Option<String>,
    /// FSx task id or DataSync execution ARN.
    pub task_id: Option<String>,
    pub started_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub duration_seconds: Option<u64>,
    pub counts: Counts,
    /// How many jobs the run covered.
    pub jobs: usize,
    pub subject: String,
    /// The text message, cut to [`KEPT_TEXT_BYTES`] (the whole one went to SNS).
    pub text: String,
    /// When `notify` published it.
    pub published_at: Millis,
}

/// Most bytes of a report's text kept in the lane table: a DynamoDB item holds 400 KB.
pub const KEPT_TEXT_BYTES: usize = 16 * 1024;

/// An upload that started nothing, kept for people (`ferry history --unmatched`): an object no
/// route matched, or a record that was not an object creation. Keys stay out of the logs (they
/// are payload); this is where an operator finds them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DroppedUpload {
    pub at: Millis,
    /// `matched no route`, or `ignored: <event name>`.
    pub why: String,
    pub bucket: Option<String>,
    pub key: Option<String>,
    /// The SQS message it came in.
    pub message_id: Option<String>,
}
