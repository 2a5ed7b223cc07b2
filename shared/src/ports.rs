//! Ports: every narrow capability a handler needs, grouped by the function that uses it. The
//! AWS adapters in [`crate::aws`] implement them over the SDK; the fakes (`fakes`, feature
//! `test-util`) in memory. A handler is generic over exactly the ports it calls, which is also
//! how the security test derives each function's IAM policy from the code.

use std::collections::HashSet;
use std::future::Future;

use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::ValidJob;
use crate::domain::status::{Counts, TaskHandle, TaskSnapshot, Timestamp};
use crate::error::FerryError;
use crate::ids::{DataSyncExecutionArn, DataSyncTaskArn, FileSystemId, S3Url, UploadId};
use crate::lanes::record::{
    DroppedUpload, Enqueued, JobEnd, JobRecord, JobState, KeptReport, LaneState, LeaseRequest,
    Leased, Millis, QueuedJob, Registered, RunId, RunJob, RunRecord,
};
use crate::lanes::{JobId, LaneId};
use crate::notify::message::SnsMessage;

// --- start-task, task-status, cancel-task ---

/// Starts the FSx data repository task or DataSync execution a job describes.
pub trait StartTask {
    /// Starts `job` at most once per `key`: a second call with the same key returns the task
    /// the first one started.
    fn start_task(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<TaskHandle, FerryError>> + Send;

    /// As [`Self::start_task`], after an attempt that may have started the task and stopped
    /// before recording it: the task it started is found even if it has ended since (DataSync,
    /// whose search otherwise looks only at live executions), or, when that cannot be told,
    /// nothing is started ([`FerryError::Indeterminate`]).
    fn start_task_again(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> impl Future<Output = Result<TaskHandle, FerryError>> + Send;
}

/// Describes a task as its service reports it.
pub trait DescribeTask {
    fn describe_task(
        &self,
        task: &TaskHandle,
    ) -> impl Future<Output = Result<TaskSnapshot, FerryError>> + Send;
}

/// A task that holds a job's target (FSx runs one data repository task per file system).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActiveTask {
    /// FSx task id.
    pub id: String,
    pub lifecycle: String,
    pub created_at: Option<Timestamp>,
}

/// The tasks that hold a job's target now, to wait for them instead of failing.
pub trait ActiveTasks {
    /// FSx: the file system's `PENDING`, `EXECUTING` and `CANCELING` tasks. DataSync: none
    /// (DataSync queues the executions of a task itself; a refused start names no holder).
    fn active_tasks(
        &self,
        job: &ValidJob,
    ) -> impl Future<Output = Result<Vec<ActiveTask>, FerryError>> + Send;
}

/// What a cancellation request did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The service accepted the request; the task moves to CANCELING/CANCELLING.
    Requested,
    /// The task had already ended: nothing to cancel (FSx `DataRepositoryTaskEnded`, or a
    /// DataSync execution in SUCCESS/ERROR).
    AlreadyEnded,
}

/// Where `ferry tasks` looks: a file system's data repository tasks, or a DataSync task's
/// executions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskTarget {
    FileSystem(FileSystemId),
    /// A file system's tasks that ran on one data repository association (`dra-…`: FSx's
    /// `data-repository-association-id` filter).
    Association(FileSystemId, String),
    DataSyncTask(DataSyncTaskArn),
}

/// A task or execution as the service lists it, Ferry's or not.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ListedTask {
    /// FSx task id or DataSync execution ARN.
    pub id: String,
    /// FSx task type (`EXPORT_TO_REPOSITORY`, ...); DataSync: the task mode (`BASIC`,
    /// `ENHANCED`).
    pub kind: String,
    /// The service's own lifecycle or status, verbatim.
    pub lifecycle: String,
    pub created_at: Option<Timestamp>,
    pub ended_at: Option<Timestamp>,
    pub counts: Counts,
}

/// The tasks (FSx) or executions (DataSync) of a target, every page, for people.
pub trait ListTasks {
    /// `lifecycles` empty: all of them.
    fn list_tasks(
        &self,
        target: &TaskTarget,
        lifecycles: &[String],
    ) -> impl Future<Output = Result<Vec<ListedTask>, FerryError>> + Send;
}

/// How a file system is linked to S3 (its data repository associations, or its own
/// configuration): what an FSx job's paths must lie in. `None`: this adapter does not read
/// links (nothing is checked, nothing refused).
pub trait ReadLinks {
    fn read_links(
        &self,
        file_system: &FileSystemId,
    ) -> impl Future<Output = Result<Option<crate::domain::links::Links>, FerryError>> + Send;
}

/// Cancels a running task.
pub trait CancelTask {
    fn cancel_task(
        &self,
        task: &TaskHandle,
    ) -> impl Future<Output = Result<CancelOutcome, FerryError>> + Send;
}

// --- s3-trigger ---

/// What starting a state-machine execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartOutcome {
    Started {
        execution_arn: String,
    },
    /// An execution with this name exists already (running with the same input, or ended
    /// within the last 90 days): this job was started before.
    AlreadyStarted,
}

/// Starts an execution of Ferry's state machine.
pub trait StartExecution {
    fn start_execution(
        &self,
        name: &str,
        input: &str,
    ) -> impl Future<Output = Result<StartOutcome, FerryError>> + Send;
}

/// Writes an object to S3 (DataSync manifests).
pub trait PutObject {
    fn put_object(
        &self,
        object: &S3Url,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;
}

// --- notify ---

/// Publishes a message to SNS; returns the message id.
pub trait Publish {
    fn publish(
        &self,
        message: &SnsMessage,
    ) -> impl Future<Output = Result<String, FerryError>> + Send;
}

/// An object read from S3, up to a byte limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The object is longer than what was read.
    pub cut: bool,
}

/// `s3-trigger`'s routes, when they live in S3 (`FERRY_ROUTES_URL`): read once, at cold start.
pub trait ReadRoutes {
    /// The object's text: `NotFound` when it does not exist, `TooLarge` past `max_bytes`.
    fn read_routes(
        &self,
        object: &S3Url,
        max_bytes: usize,
    ) -> impl Future<Output = Result<String, FerryError>> + Send;
}

/// Reads failure reports from S3.
pub trait ReadReports {
    /// The first `max_bytes` of an object; `None` when it does not exist.
    fn get_object(
        &self,
        object: &S3Url,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Option<Fetched>, FerryError>> + Send;

    /// Up to `max_keys` keys under `prefix` (its bucket, and its key as a key prefix), in S3's
    /// (lexicographic) order.
    fn list_keys(
        &self,
        prefix: &S3Url,
        max_keys: usize,
    ) -> impl Future<Output = Result<Vec<String>, FerryError>> + Send;
}

// --- lanes: s3-trigger and submit enqueue and kick; the runner takes, runs and finishes ---

/// A run's record, read consistently: what the task functions read, since the runner hands
/// them only a reference to its run (its spec may weigh 320 KiB; the runner's state 256 KiB).
pub trait ReadRuns {
    fn run(
        &self,
        lane: &LaneId,
        id: &RunId,
    ) -> impl Future<Output = Result<Option<RunRecord>, FerryError>> + Send;
}

/// Jobs read back by id as they were queued: a runner settling a claimed run that its claim
/// did not finish merges again the jobs the run took.
pub trait ReadQueued {
    /// The jobs `ids` of `lane` (those still in the table), in the order given.
    fn queued(
        &self,
        lane: &LaneId,
        ids: &[JobId],
    ) -> impl Future<Output = Result<Vec<QueuedJob>, FerryError>> + Send;
}

/// What the lane table holds, read consistently: the lanes, each lane's lease and run in
/// flight, its pending jobs, a job by its id.
pub trait LaneView: ReadRuns {
    /// Up to `limit` pending jobs of `lane`, oldest first, read consistently, stopping once
    /// the jobs read weigh `max_bytes` ([`QueuedJob::weight`]; the oldest is always read): a
    /// function's memory holds what it reads.
    fn pending(
        &self,
        lane: &LaneId,
        limit: usize,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Vec<QueuedJob>, FerryError>> + Send;

    /// How many jobs of `lane` are pending, counted up to `limit` (reading none of them).
    fn pending_count(
        &self,
        lane: &LaneId,
        limit: usize,
    ) -> impl Future<Output = Result<usize, FerryError>> + Send;

    /// The first `limit` members of the run `run` of `lane` (the jobs it took), oldest first.
    fn members(
        &self,
        lane: &LaneId,
        run: &RunId,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<RunJob>, FerryError>> + Send;

    /// The job `id`, wherever it is (pending, in a run, ended); `None` when it was never
    /// enqueued (or its record expired).
    fn job(&self, id: &JobId)
    -> impl Future<Output = Result<Option<JobRecord>, FerryError>> + Send;

    /// Every lane registered at `now` (a job queued there within
    /// [`crate::lanes::record::REGISTRATION_DAYS`]), idle or not, every page.
    fn lanes(
        &self,
        now: Millis,
    ) -> impl Future<Output = Result<Vec<Registered>, FerryError>> + Send;

    /// The registration of `lane`, if it has one.
    fn registration(
        &self,
        lane: &LaneId,
    ) -> impl Future<Output = Result<Option<Registered>, FerryError>> + Send;

    /// The lane's lease and run in flight, read consistently.
    fn lane(&self, lane: &LaneId) -> impl Future<Output = Result<LaneState, FerryError>> + Send;

    /// The reports kept for the runs of `lane` (of every lane: `None`) published within
    /// `window` (since, now; at most the last 30 days), newest first, at most `limit` of them: only those
    /// are read. Each without its text (the summary `ferry history` lists; [`Self::report`]
    /// has the text).
    fn history(
        &self,
        lane: Option<&LaneId>,
        window: (Millis, Millis),
        limit: usize,
    ) -> impl Future<Output = Result<Vec<KeptReport>, FerryError>> + Send;

    /// Uploads that started nothing, recorded within `window` (since, now; at most the last 30
    /// days), newest first, at most `limit` of them: only those are read.
    fn dropped(
        &self,
        window: (Millis, Millis),
        limit: usize,
    ) -> impl Future<Output = Result<Vec<DroppedUpload>, FerryError>> + Send;

    /// The report kept for the run `id` of `lane`, once `notify` published it.
    fn report(
        &self,
        lane: &LaneId,
        id: &RunId,
    ) -> impl Future<Output = Result<Option<KeptReport>, FerryError>> + Send;
}

/// Adding jobs to their lanes.
pub trait LaneQueue {
    /// Enqueues `job` in its lane, at most once per job id.
    fn enqueue(&self, job: &QueuedJob)
    -> impl Future<Output = Result<Enqueued, FerryError>> + Send;
}

/// Jobs that record the uploads they cover (`s3-trigger`): a message SQS delivers again, in
/// another grouping, finds its uploads queued instead of queueing them in a second job.
pub trait QueuedUploads {
    /// Enqueues `job` as [`LaneQueue::enqueue`] does and, in the same transaction, the ids of
    /// the uploads it covers: both are written, or neither.
    fn enqueue_covering(
        &self,
        job: &QueuedJob,
        uploads: &[UploadId],
    ) -> impl Future<Output = Result<Enqueued, FerryError>> + Send;

    /// The uploads covered by the jobs enqueued on `lane` at or after `since` (epoch ms),
    /// read consistently.
    fn queued_uploads(
        &self,
        lane: &LaneId,
        since: Millis,
    ) -> impl Future<Output = Result<HashSet<UploadId>, FerryError>> + Send;
}

/// Each lane's lease: at most one runner at a time.
pub trait LaneLease {
    /// Takes the lease for the request's owner, when it is free or expired (or already the
    /// owner's).
    fn acquire(
        &self,
        request: &LeaseRequest,
    ) -> impl Future<Output = Result<Leased, FerryError>> + Send;

    /// Extends `owner`'s lease; [`FerryError::LeaseLost`] when it is no longer `owner`'s.
    fn renew(
        &self,
        lane: &LaneId,
        owner: &str,
        until: Millis,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;

    /// Gives the lease up, when it is still `owner`'s and no run is in flight.
    fn release(
        &self,
        lane: &LaneId,
        owner: &str,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;

    /// Marks `lane` idle (since `now`) in the registry, so the sweep passes it by, unless a
    /// job was queued since its registration named `seen` (then it stays as it is). `true`:
    /// marked.
    fn mark_idle(
        &self,
        lane: &LaneId,
        seen: Option<&JobId>,
        now: Millis,
    ) -> impl Future<Output = Result<bool, FerryError>> + Send;

    /// Passes `from`'s lease on `to.lane` to `to.owner` (a runner continuing as a new
    /// execution); a lease `to.owner` holds already (a retried hand-over) is kept, extended.
    fn hand_over(
        &self,
        from: &str,
        to: &LeaseRequest,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;
}

/// The runner's writes: the run in flight in each lane, and jobs that end without one.
pub trait LaneRuns {
    /// Ends pending jobs without a run. Returns the jobs it ended: one taken or ended
    /// meanwhile is left as it is.
    fn end_pending(
        &self,
        jobs: &[QueuedJob],
        end: JobEnd,
    ) -> impl Future<Output = Result<Vec<JobId>, FerryError>> + Send;

    /// Writes `run` as its lane's run in flight: only for the lease's `owner`, only when no
    /// run is in flight ([`FerryError::LeaseLost`] otherwise).
    fn claim(
        &self,
        owner: &str,
        run: &RunRecord,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;

    /// Moves `jobs` (the run's, as planned) from pending to running, each with its member
    /// record; again on an adopted run, it changes nothing that is done. Returns the jobs that
    /// were no longer pending (cancelled meanwhile): the run goes on without them.
    fn take_jobs(
        &self,
        run: &RunRecord,
        jobs: &[QueuedJob],
    ) -> impl Future<Output = Result<Vec<JobId>, FerryError>> + Send;

    /// Gives `jobs`, which the run took but does not cover after all (its merge shrank when a
    /// job of it was cancelled), back to the lane: pending again, as they were queued.
    fn return_jobs(
        &self,
        run: &RunRecord,
        jobs: &[QueuedJob],
    ) -> impl Future<Output = Result<(), FerryError>> + Send;

    /// Replaces the record of a run in flight (its jobs settled, its task started, a cancel
    /// asked).
    fn update(&self, run: &RunRecord) -> impl Future<Output = Result<(), FerryError>> + Send;

    /// Counts one more adoption of the run in flight (a runner took it over from one that
    /// stopped); returns how many there have been.
    fn adopted(&self, run: &RunRecord) -> impl Future<Output = Result<u32, FerryError>> + Send;

    /// Ends the run: each of its members' jobs to `state` (a job already ended stays as it
    /// is), in bounded pieces, then the run done (its record as given, `ended_at` set) and the
    /// lane free of it, while the lease is `owner`'s. Again after a failure, it finishes what
    /// is left.
    fn finish(
        &self,
        owner: &str,
        run: &RunRecord,
        state: JobState,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;
}

/// What the runner's task steps write on their run: `task-status`, that its task was seen
/// being cancelled from outside Ferry; `start-task`, that it sets out to start the task, then
/// the task it started. The record is replaced as [`LaneRuns::update`] does.
pub trait NoteRuns {
    fn note(&self, run: &RunRecord) -> impl Future<Output = Result<(), FerryError>> + Send;

    /// Marks the run in flight: a start of its task is attempted from `now` on (kept beside
    /// the record; the first mark stands). Returns the mark that stands.
    fn mark_start(
        &self,
        run: &RunRecord,
        now: Millis,
    ) -> impl Future<Output = Result<Millis, FerryError>> + Send;
}

/// Keeps the report `notify` published for a run, for `ferry history` and `ferry watch`.
pub trait KeepReports {
    /// Again, the same report replaces it.
    fn keep_report(
        &self,
        report: &KeptReport,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;
}

/// Records the uploads `s3-trigger` dropped (no route, not a creation), for people.
pub trait RecordDropped {
    fn record_dropped(
        &self,
        uploads: &[DroppedUpload],
    ) -> impl Future<Output = Result<(), FerryError>> + Send;
}

// --- DataSync runs woken by events (`lane`'s await, `datasync-event`, a cancel) ---

/// A DataSync run's wake slot (lane table item `wake` / execution ARN): where its waiting
/// runner leaves its task token, and where a wake that came while no runner waited is noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WakeSlot {
    pub execution: DataSyncExecutionArn,
    pub lane: LaneId,
    pub run: RunId,
    /// The runner execution (the lease's owner) that waits, or last waited.
    pub owner: String,
    /// The waiting runner's task token; `None`: no runner waits.
    pub token: Option<String>,
    /// How long the runner waits without news before it checks itself (its HeartbeatSeconds).
    pub heartbeat_seconds: u32,
}

/// What parking a runner's token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parked {
    /// The token is in the slot: an event, the check or a cancel completes it.
    Waiting,
    /// A wake came while no runner waited (it is now taken): the runner must not wait.
    AlreadyWoken,
}

/// What noting a wake did when no token was there to complete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// The next runner that parks returns at once.
    Noted,
    /// No run of Ferry's has this execution: not Ferry's, or long gone.
    Unknown,
    /// A runner parked its token meanwhile: take it instead.
    TokenAppeared,
}

/// The lane table's wake slots.
pub trait WakeSlots {
    /// Creates (or refreshes) the slot of a run's execution when its task starts, so a wake
    /// that comes before the runner first waits is noted, not lost.
    fn open_slot(
        &self,
        slot: &WakeSlot,
        expires_at: Millis,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;

    /// Leaves `slot.token` for a wake, unless a wake was noted (then takes the note).
    fn park(
        &self,
        slot: &WakeSlot,
        expires_at: Millis,
    ) -> impl Future<Output = Result<Parked, FerryError>> + Send;

    /// Takes the waiting token, if one is there (only one caller gets it).
    fn take_token(
        &self,
        execution: &DataSyncExecutionArn,
        now: Millis,
    ) -> impl Future<Output = Result<Option<WakeSlot>, FerryError>> + Send;

    /// Notes a wake for the next runner that parks, when no token is there.
    fn note_wake(
        &self,
        execution: &DataSyncExecutionArn,
        now: Millis,
    ) -> impl Future<Output = Result<Noted, FerryError>> + Send;

    /// Every slot with a waiting token (the check's list), every page.
    fn waiting(&self) -> impl Future<Output = Result<Vec<WakeSlot>, FerryError>> + Send;
}

/// How Step Functions took a task token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAnswer {
    /// The waiting task got it.
    Taken,
    /// The task no longer waits (it timed out, its execution ended or was stopped):
    /// `TaskTimedOut`, `TaskDoesNotExist` or `InvalidToken` (API reference). Not an error.
    Stale,
}

/// Completes a waiting runner's task (`SendTaskSuccess`): it goes on to check its task.
pub trait WakeRunners {
    fn wake_runner(
        &self,
        token: &str,
        output: &str,
    ) -> impl Future<Output = Result<TokenAnswer, FerryError>> + Send;
}

/// Tells a waiting runner's task it is still waiting for a reason (`SendTaskHeartbeat`), which
/// resets its heartbeat clock and adds nothing to its history.
pub trait KeepRunnersWaiting {
    fn keep_waiting(
        &self,
        token: &str,
    ) -> impl Future<Output = Result<TokenAnswer, FerryError>> + Send;
}

/// Describes a DataSync task execution (the check).
pub trait DescribeExecution {
    fn describe_execution(
        &self,
        execution: &DataSyncExecutionArn,
    ) -> impl Future<Output = Result<TaskSnapshot, FerryError>> + Send;
}
