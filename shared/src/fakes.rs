//! In-memory fakes of every port in [`crate::ports`], for tests (feature `test-util`; never in a
//! deployed binary).
//!
//! - [`FakeTasks`] (start, describe, cancel a task) behaves like the services where Ferry depends
//!   on it: one task per idempotency key, ids in the services' formats, lifecycles a test moves
//!   forward, cancellation that is a no-op on an ended task, and scripted failures.
//! - [`FakeTrigger`] (start an execution, write an object): one execution per name, as Step
//!   Functions' standard workflows; scripted start and write failures.
//! - [`FakeNotify`] (publish, read reports): records what is published, serves the objects a
//!   test puts; scripted publish failures and denied reads.
//! - [`FakeLanes`] (the lane table): the adapter's conditions, in memory.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{DataSyncTarget, JobSpec, Service, ValidJob};
use crate::domain::status::{Counts, Failure, Phase, TaskHandle, TaskSnapshot, Timestamp, Timings};
use crate::error::{AwsError, FerryError};
use crate::ids::{DataSyncExecutionArn, FsxTaskId, S3Url, UploadId};
use crate::lanes::record::{
    CancelRequest, DroppedUpload, Enqueued, JobEnd, JobRecord, JobState, KeptReport, LaneState,
    Lease, LeaseRequest, Leased, Millis, QueuedJob, REGISTRATION_DAYS, Registered, RunId, RunJob,
    RunRecord, RunState,
};
use crate::lanes::{JobId, LaneId};
use crate::notify::message::SnsMessage;
use crate::ports::{
    ActiveTask, ActiveTasks, CancelOutcome, CancelTask, DescribeExecution, DescribeTask, Fetched,
    KeepReports, KeepRunnersWaiting, LaneLease, LaneQueue, LaneRuns, LaneView, NoteRuns, Noted,
    Parked, Publish, PutObject, QueuedUploads, ReadQueued, ReadReports, ReadRoutes, ReadRuns,
    RecordDropped, StartExecution, StartOutcome, StartTask, TokenAnswer, WakeRunners, WakeSlot,
    WakeSlots,
};

/// A fake's state behind a lock. A test that panicked while holding it already failed; the
/// data stays usable. Clones share it (a test hands a clone to a handler's ports and reads the
/// original).
#[derive(Debug, Default)]
struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A failure to script into the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeFailure {
    Conflict,
    Throttled,
    NotFound,
    LimitExceeded,
    Internal,
}

impl FakeFailure {
    fn into_error(self) -> FerryError {
        let aws = |code: &str| AwsError {
            operation: "FakeStart",
            code: Some(code.to_owned()),
            summary: format!("{code}: injected by FakeTasks"),
            source: format!("{code}: injected by FakeTasks").into(),
        };
        match self {
            FakeFailure::Conflict => FerryError::TaskConflict {
                message: "An existing data repository task is currently executing".into(),
                source: Some(aws("DataRepositoryTaskExecuting")),
            },
            FakeFailure::Throttled => FerryError::Throttled {
                source: aws("ThrottlingException"),
            },
            FakeFailure::NotFound => FerryError::NotFound {
                message: "file system not found".into(),
                source: Some(aws("FileSystemNotFound")),
            },
            FakeFailure::LimitExceeded => FerryError::LimitExceeded {
                source: aws("ServiceLimitExceeded"),
            },
            FakeFailure::Internal => FerryError::AwsService {
                source: aws("InternalServerError"),
            },
        }
    }
}

/// One fake task.
#[derive(Debug, Clone, PartialEq)]
pub struct FakeTask {
    pub handle: TaskHandle,
    pub job: JobSpec,
    pub key: IdempotencyKey,
    pub lifecycle: String,
    pub counts: Counts,
    pub created_at: Timestamp,
    pub failure: Option<Failure>,
    pub cancel_requests: u32,
}

#[derive(Debug, Default)]
struct State {
    tasks: Vec<FakeTask>,
    by_key: HashMap<IdempotencyKey, usize>,
    start_failures: VecDeque<FakeFailure>,
    start_calls: u32,
}

/// In-memory FSx and DataSync.
#[derive(Debug, Default, Clone)]
pub struct FakeTasks {
    state: Shared<State>,
}

impl FakeTasks {
    pub fn new() -> Self {
        FakeTasks::default()
    }

    /// Makes the next start fail with `failure` (queued; one failure per call).
    pub fn fail_next_start(&self, failure: FakeFailure) {
        self.state.lock().start_failures.push_back(failure);
    }

    /// Every task started so far, in order.
    pub fn tasks(&self) -> Vec<FakeTask> {
        self.state.lock().tasks.clone()
    }

    /// How many times `start_task` was called (including ones that returned an existing task).
    pub fn start_calls(&self) -> u32 {
        self.state.lock().start_calls
    }

    /// Adds a task directly (as if started earlier), returning its handle.
    pub fn insert(&self, task: FakeTask) -> TaskHandle {
        let mut state = self.state.lock();
        let handle = task.handle.clone();
        let index = state.tasks.len();
        state.by_key.insert(task.key.clone(), index);
        state.tasks.push(task);
        handle
    }

    /// Moves a task to `lifecycle`, with counts and an optional failure.
    pub fn set(
        &self,
        handle: &TaskHandle,
        lifecycle: &str,
        counts: Counts,
        failure: Option<Failure>,
    ) {
        let mut state = self.state.lock();
        if let Some(task) = state.tasks.iter_mut().find(|t| &t.handle == handle) {
            task.lifecycle = lifecycle.to_owned();
            task.counts = counts;
            task.failure = failure;
        }
    }

    fn is_terminal(task: &FakeTask) -> bool {
        match task.handle {
            TaskHandle::Fsx { .. } => Phase::from_fsx(&task.lifecycle).is_terminal(),
            TaskHandle::Datasync { .. } => {
                Phase::from_datasync(&task.lifecycle, false).is_terminal()
            }
        }
    }
}

/// The task a DataSync job runs in the fake: its ARN, or, for a definition, one derived from
/// the definition's name (the same name, the same task, as ensuring finds it in AWS).
fn fake_task_arn(target: &DataSyncTarget) -> String {
    match target {
        DataSyncTarget::Task(arn) => arn.to_string(),
        DataSyncTarget::Definition(def) => {
            use sha2::{Digest, Sha256};
            let digest = crate::domain::text::hex(&Sha256::digest(def.name.as_bytes()), 18);
            format!(
                "arn:aws:datasync:us-east-1:111122223333:task/task-{}",
                &digest[..17]
            )
        }
    }
}

impl StartTask for FakeTasks {
    async fn start_task(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> Result<TaskHandle, FerryError> {
        self.start(job, key, false)
    }

    async fn start_task_again(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> Result<TaskHandle, FerryError> {
        self.start(job, key, true)
    }
}

impl FakeTasks {
    /// One task per key, as the services keep it: FSx's `ClientRequestToken` finds the task
    /// whatever its lifecycle; the adapter's DataSync search finds only a live execution,
    /// unless `again` (an attempt may have started one that has ended since).
    fn start(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
        again: bool,
    ) -> Result<TaskHandle, FerryError> {
        let mut state = self.state.lock();
        state.start_calls += 1;
        if let Some(failure) = state.start_failures.pop_front() {
            return Err(failure.into_error());
        }
        if let Some(&index) = state.by_key.get(key) {
            let task = &state.tasks[index];
            let fsx = matches!(task.handle, TaskHandle::Fsx { .. });
            if fsx || again || !FakeTasks::is_terminal(task) {
                return Ok(task.handle.clone());
            }
        }
        let n = state.tasks.len() + 1;
        // Ids in the services' own formats, so they parse like real ones.
        let id_error = |e: crate::ids::IdError| FerryError::invalid("fake id", e.to_string());
        let (handle, lifecycle) = match job.service() {
            Service::Fsx(target) => (
                TaskHandle::Fsx {
                    file_system_id: target.file_system_id.clone(),
                    task_id: FsxTaskId::parse(&format!("task-{n:017x}")).map_err(id_error)?,
                },
                "PENDING",
            ),
            Service::DataSync(target) => (
                TaskHandle::Datasync {
                    task_execution_arn: DataSyncExecutionArn::parse(&format!(
                        "{}/execution/exec-{n:017x}",
                        fake_task_arn(&target.target)
                    ))
                    .map_err(id_error)?,
                },
                "QUEUED",
            ),
        };
        let index = state.tasks.len();
        state.by_key.insert(key.clone(), index);
        state.tasks.push(FakeTask {
            handle: handle.clone(),
            job: job.spec().clone(),
            key: key.clone(),
            lifecycle: lifecycle.to_owned(),
            counts: Counts::default(),
            created_at: Timestamp::now(),
            failure: None,
            cancel_requests: 0,
        });
        Ok(handle)
    }
}

/// The task `handle` names, or the `NotFound` a service answers for an unknown one.
fn find<'a>(
    tasks: &'a mut [FakeTask],
    handle: &TaskHandle,
) -> Result<&'a mut FakeTask, FerryError> {
    tasks
        .iter_mut()
        .find(|t| &t.handle == handle)
        .ok_or_else(|| FerryError::NotFound {
            message: format!("no task {handle}"),
            source: None,
        })
}

/// The fake's tasks on the job's FSx file system that have not ended (DataSync: none).
impl ActiveTasks for FakeTasks {
    async fn active_tasks(&self, job: &ValidJob) -> Result<Vec<ActiveTask>, FerryError> {
        let Service::Fsx(target) = job.service() else {
            return Ok(Vec::new());
        };
        let state = self.state.lock();
        Ok(state
            .tasks
            .iter()
            .filter(|t| !FakeTasks::is_terminal(t))
            .filter_map(|t| match &t.handle {
                TaskHandle::Fsx {
                    file_system_id,
                    task_id,
                } if *file_system_id == target.file_system_id => Some(ActiveTask {
                    id: task_id.to_string(),
                    lifecycle: t.lifecycle.clone(),
                    created_at: Some(t.created_at),
                }),
                _ => None,
            })
            .collect())
    }
}

impl DescribeTask for FakeTasks {
    async fn describe_task(&self, task: &TaskHandle) -> Result<TaskSnapshot, FerryError> {
        let mut state = self.state.lock();
        let found = find(&mut state.tasks, task)?;
        Ok(TaskSnapshot {
            task: found.handle.clone(),
            lifecycle: found.lifecycle.clone(),
            counts: found.counts.clone(),
            timings: Timings {
                created_at: Some(found.created_at),
                ..Timings::default()
            },
            failure: found.failure.clone(),
            report: None,
        })
    }
}

impl DescribeExecution for FakeTasks {
    async fn describe_execution(
        &self,
        execution: &DataSyncExecutionArn,
    ) -> Result<TaskSnapshot, FerryError> {
        let handle = TaskHandle::Datasync {
            task_execution_arn: execution.clone(),
        };
        self.describe_task(&handle).await
    }
}

impl CancelTask for FakeTasks {
    async fn cancel_task(&self, task: &TaskHandle) -> Result<CancelOutcome, FerryError> {
        let mut state = self.state.lock();
        let found = find(&mut state.tasks, task)?;
        found.cancel_requests += 1;
        if FakeTasks::is_terminal(found) {
            return Ok(CancelOutcome::AlreadyEnded);
        }
        found.lifecycle = match found.handle {
            TaskHandle::Fsx { .. } => "CANCELING",
            TaskHandle::Datasync { .. } => "CANCELLING",
        }
        .to_owned();
        Ok(CancelOutcome::Requested)
    }
}

/// In-memory Step Functions and S3 for `s3-trigger`: one execution per name, like a standard
/// workflow's execution names; scripted start failures.
#[derive(Debug, Default, Clone)]
pub struct FakeTrigger {
    state: Shared<TriggerState>,
}

#[derive(Debug, Default)]
struct TriggerState {
    executions: Vec<(String, serde_json::Value)>,
    /// Task tokens completed (SendTaskSuccess), with their output, in order.
    woken: Vec<(String, String)>,
    /// Heartbeats sent, per token.
    heartbeats: Vec<String>,
    /// Tokens whose task no longer waits (answered `Stale`).
    stale: Vec<String>,
    objects: Vec<(String, String, Vec<u8>)>,
    start_calls: u32,
    fail_starts: VecDeque<FakeFailure>,
    fail_puts: u32,
}

impl FakeTrigger {
    pub fn new() -> Self {
        FakeTrigger::default()
    }

    /// Executions started, in order, with their parsed input.
    pub fn executions(&self) -> Vec<(String, serde_json::Value)> {
        self.state.lock().executions.clone()
    }

    /// Objects written, as `(bucket, key, body)`.
    pub fn objects(&self) -> Vec<(String, String, Vec<u8>)> {
        self.state.lock().objects.clone()
    }

    pub fn start_calls(&self) -> u32 {
        self.state.lock().start_calls
    }

    /// Makes the next start fail with `failure`.
    pub fn fail_next_start(&self, failure: FakeFailure) {
        self.state.lock().fail_starts.push_back(failure);
    }

    /// Makes the next `count` writes fail.
    pub fn fail_next_puts(&self, count: u32) {
        self.state.lock().fail_puts += count;
    }
}

impl StartExecution for FakeTrigger {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, FerryError> {
        let mut state = self.state.lock();
        state.start_calls += 1;
        if let Some(failure) = state.fail_starts.pop_front() {
            return Err(failure.into_error());
        }
        if state.executions.iter().any(|(n, _)| n == name) {
            return Ok(StartOutcome::AlreadyStarted);
        }
        let parsed =
            serde_json::from_str(input).map_err(|e| FerryError::invalid("input", e.to_string()))?;
        state.executions.push((name.to_owned(), parsed));
        Ok(StartOutcome::Started {
            execution_arn: format!("arn:aws:states:us-east-1:111122223333:execution:ferry:{name}"),
        })
    }
}

thread_local! {
    static VIRTUAL_NOW: Cell<Option<Millis>> = const { Cell::new(None) };
}

/// Sets this thread's clock for [`crate::runtime::now_millis`] (`None`: the wall clock again).
pub fn set_virtual_now(now: Option<Millis>) {
    VIRTUAL_NOW.with(|c| c.set(now));
}

/// This thread's virtual clock, if a test set one.
pub fn virtual_now() -> Option<Millis> {
    VIRTUAL_NOW.with(Cell::get)
}

impl FakeTrigger {
    /// Tokens completed (SendTaskSuccess) and their output, in order.
    pub fn woken(&self) -> Vec<(String, String)> {
        self.state.lock().woken.clone()
    }

    /// Heartbeats sent, one token per heartbeat, in order.
    pub fn heartbeats(&self) -> Vec<String> {
        self.state.lock().heartbeats.clone()
    }

    /// Makes `token`'s task stop waiting: later calls with it answer `Stale`.
    pub fn expire_token(&self, token: &str) {
        self.state.lock().stale.push(token.to_owned());
    }
}

/// A token answers once, as Step Functions does: completed or expired, it is stale after.
impl WakeRunners for FakeTrigger {
    async fn wake_runner(&self, token: &str, output: &str) -> Result<TokenAnswer, FerryError> {
        let mut state = self.state.lock();
        if state.stale.iter().any(|t| t == token) {
            return Ok(TokenAnswer::Stale);
        }
        state.stale.push(token.to_owned());
        state.woken.push((token.to_owned(), output.to_owned()));
        Ok(TokenAnswer::Taken)
    }
}

impl KeepRunnersWaiting for FakeTrigger {
    async fn keep_waiting(&self, token: &str) -> Result<TokenAnswer, FerryError> {
        let mut state = self.state.lock();
        if state.stale.iter().any(|t| t == token) {
            return Ok(TokenAnswer::Stale);
        }
        state.heartbeats.push(token.to_owned());
        Ok(TokenAnswer::Taken)
    }
}

/// Routes objects are the objects written with `put_object` (the latest of a key wins).
impl ReadRoutes for FakeTrigger {
    async fn read_routes(&self, object: &S3Url, max_bytes: usize) -> Result<String, FerryError> {
        let state = self.state.lock();
        let found = state
            .objects
            .iter()
            .rev()
            .find(|(b, k, _)| b == object.bucket().as_str() && k == object.key());
        let Some((_, _, body)) = found else {
            return Err(FakeFailure::NotFound.into_error());
        };
        crate::budget::within(object.to_string(), body.len(), max_bytes)?;
        Ok(String::from_utf8_lossy(body).into_owned())
    }
}

impl PutObject for FakeTrigger {
    async fn put_object(&self, object: &S3Url, body: Vec<u8>) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        if state.fail_puts > 0 {
            state.fail_puts -= 1;
            return Err(FakeFailure::Internal.into_error());
        }
        state
            .objects
            .push((object.bucket().to_string(), object.key().to_owned(), body));
        Ok(())
    }
}

/// In-memory SNS and S3 for `notify`: published messages are recorded, objects are whatever the
/// test puts in; publishes and reads can be made to fail.
#[derive(Debug, Default)]
pub struct FakeNotify {
    state: Shared<NotifyState>,
}

#[derive(Debug, Default)]
struct NotifyState {
    published: Vec<SnsMessage>,
    objects: std::collections::BTreeMap<(String, String), Vec<u8>>,
    fail_publishes: VecDeque<FakeFailure>,
    denied: bool,
    reads: Vec<(String, String)>,
}

impl FakeNotify {
    pub fn new() -> Self {
        FakeNotify::default()
    }

    /// Puts an object into the fake bucket.
    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.state
            .lock()
            .objects
            .insert((bucket.to_owned(), key.to_owned()), body.into());
    }

    /// Messages published, in order.
    pub fn published(&self) -> Vec<SnsMessage> {
        self.state.lock().published.clone()
    }

    /// `(bucket, key)` of every object read or looked for.
    pub fn reads(&self) -> Vec<(String, String)> {
        self.state.lock().reads.clone()
    }

    /// Makes the next publish fail with `failure`.
    pub fn fail_next_publish(&self, failure: FakeFailure) {
        self.state.lock().fail_publishes.push_back(failure);
    }

    /// Every S3 read fails with AccessDenied.
    pub fn deny_reads(&self) {
        self.state.lock().denied = true;
    }

    fn access_denied(operation: &'static str) -> FerryError {
        FerryError::AwsService {
            source: AwsError {
                operation,
                code: Some("AccessDenied".into()),
                summary: "AccessDenied: Access Denied".into(),
                source: "AccessDenied: injected by FakeNotify".into(),
            },
        }
    }
}

impl Publish for FakeNotify {
    async fn publish(&self, message: &SnsMessage) -> Result<String, FerryError> {
        let mut state = self.state.lock();
        if let Some(failure) = state.fail_publishes.pop_front() {
            return Err(failure.into_error());
        }
        state.published.push(message.clone());
        Ok(format!("message-{}", state.published.len()))
    }
}

impl ReadReports for FakeNotify {
    async fn get_object(
        &self,
        object: &S3Url,
        max_bytes: usize,
    ) -> Result<Option<Fetched>, FerryError> {
        let mut state = self.state.lock();
        let (bucket, key) = (object.bucket().as_str(), object.key());
        state.reads.push((bucket.to_owned(), key.to_owned()));
        if state.denied {
            return Err(FakeNotify::access_denied("GetObject"));
        }
        Ok(state
            .objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .map(|body| Fetched {
                cut: body.len() > max_bytes,
                body: body[..body.len().min(max_bytes)].to_vec(),
            }))
    }

    async fn list_keys(&self, prefix: &S3Url, max_keys: usize) -> Result<Vec<String>, FerryError> {
        let state = self.state.lock();
        let (bucket, prefix) = (prefix.bucket().as_str(), prefix.key());
        if state.denied {
            return Err(FakeNotify::access_denied("ListObjectsV2"));
        }
        Ok(state
            .objects
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .take(max_keys)
            .collect())
    }
}

/// In-memory lane table: the same conditions as the DynamoDB adapter (a job enqueued once, one
/// lease holder, one run in flight claimed only by the lease holder, jobs taken only while
/// pending), and a clock-free lease (the caller says what time it is).
#[derive(Debug, Default, Clone)]
pub struct FakeLanes {
    state: Shared<LanesState>,
}

#[derive(Debug, Default)]
struct LanesState {
    /// Job id → (job, state, run).
    jobs: BTreeMap<JobId, (QueuedJob, JobState, Option<RunId>)>,
    /// Who cancelled a job while it was pending.
    cancels: BTreeMap<JobId, CancelRequest>,
    /// The registry: each lane's registration.
    registry: BTreeMap<LaneId, Registration>,
    /// Each run's members, by job id.
    members: BTreeMap<(LaneId, RunId), BTreeMap<JobId, RunJob>>,
    leases: BTreeMap<LaneId, Lease>,
    runs: BTreeMap<(LaneId, RunId), RunRecord>,
    reports: BTreeMap<(LaneId, RunId), KeptReport>,
    dropped: Vec<DroppedUpload>,
    fail_record_dropped: u32,
    in_flight: BTreeMap<LaneId, RunId>,
    fail_enqueues: u32,
    /// The uploads each job of `s3-trigger` covers: (lane, enqueued at, job, upload ids).
    covered: Vec<(LaneId, Millis, JobId, Vec<UploadId>)>,
    fail_upload_reads: u32,
    /// Runner executions started: (name, input).
    runners: Vec<(String, String)>,
    /// Wake slots by execution ARN: the slot, and when a wake no runner waited for came.
    slots: BTreeMap<String, (WakeSlot, Option<Millis>)>,
    fail_runner_starts: u32,
    fail_lane_reads: u32,
    fail_notes: u32,
}

/// A lane's registration, as the lane table keeps it.
#[derive(Debug, Clone)]
struct Registration {
    last_job: JobId,
    expires_at: Millis,
    idle: bool,
}

impl LanesState {
    fn holds(&self, lane: &LaneId, owner: &str) -> bool {
        self.leases
            .get(lane)
            .is_some_and(|held| held.owner == owner)
    }
}

impl FakeLanes {
    pub fn new() -> Self {
        FakeLanes::default()
    }

    /// Makes the next `count` reads of a lane's own record fail (the table throttled).
    pub fn fail_next_lane_reads(&self, count: u32) {
        self.state.lock().fail_lane_reads += count;
    }

    /// Sets how many of the next notes on a run (`NoteRuns::note`: start-task recording the
    /// task it started, a status check's note) fail (a DynamoDB outage): 0 ends it.
    pub fn fail_next_notes(&self, count: u32) {
        self.state.lock().fail_notes = count;
    }

    /// Fails the next `count` recordings of dropped uploads.
    pub fn fail_next_record_dropped(&self, count: u32) {
        self.state.lock().fail_record_dropped = count;
    }

    /// The dropped uploads recorded, in order.
    pub fn dropped_uploads(&self) -> Vec<DroppedUpload> {
        self.state.lock().dropped.clone()
    }

    /// Makes the next `count` enqueues fail (a DynamoDB outage).
    pub fn fail_next_enqueues(&self, count: u32) {
        self.state.lock().fail_enqueues += count;
    }

    /// Sets how many of the next reads of queued uploads fail (the table throttled): 0 ends it.
    pub fn fail_next_upload_reads(&self, count: u32) {
        self.state.lock().fail_upload_reads = count;
    }

    /// Each job enqueued with the uploads it covers: (job, upload ids), in enqueue order.
    pub fn covered_uploads(&self) -> Vec<(JobId, Vec<UploadId>)> {
        let state = self.state.lock();
        let mut covered: Vec<_> = state.covered.iter().collect();
        covered.sort_by_key(|(_, at, job, _)| (*at, job.clone()));
        covered
            .into_iter()
            .map(|(_, _, job, ids)| (job.clone(), ids.clone()))
            .collect()
    }

    /// Every job with its state, in enqueue order.
    pub fn jobs(&self) -> Vec<(QueuedJob, JobState)> {
        let state = self.state.lock();
        let mut jobs: Vec<(QueuedJob, JobState)> = state
            .jobs
            .values()
            .map(|(job, s, _)| (job.clone(), *s))
            .collect();
        jobs.sort_by(|a, b| (a.0.enqueued_at, &a.0.id).cmp(&(b.0.enqueued_at, &b.0.id)));
        jobs
    }

    /// Runner executions started, in order: (name, input).
    pub fn runners(&self) -> Vec<(String, String)> {
        self.state.lock().runners.clone()
    }

    /// Makes the next `count` runner starts fail (Step Functions unavailable).
    pub fn fail_next_runner_starts(&self, count: u32) {
        self.state.lock().fail_runner_starts += count;
    }

    /// Every run ever claimed.
    pub fn runs(&self) -> Vec<RunRecord> {
        self.state.lock().runs.values().cloned().collect()
    }

    /// The lease of `lane`, if any.
    pub fn lease(&self, lane: &LaneId) -> Option<Lease> {
        self.state.lock().leases.get(lane).cloned()
    }

    fn lost(lane: &LaneId, owner: &str) -> FerryError {
        FerryError::LeaseLost {
            lane: lane.to_string(),
            owner: owner.to_owned(),
        }
    }
}

impl ReadRuns for FakeLanes {
    async fn run(&self, lane: &LaneId, id: &RunId) -> Result<Option<RunRecord>, FerryError> {
        Ok(self
            .state
            .lock()
            .runs
            .get(&(lane.clone(), id.clone()))
            .cloned())
    }
}

impl ReadQueued for FakeLanes {
    async fn queued(&self, lane: &LaneId, ids: &[JobId]) -> Result<Vec<QueuedJob>, FerryError> {
        let state = self.state.lock();
        Ok(ids
            .iter()
            .filter_map(|id| state.jobs.get(id))
            .filter(|(job, _, _)| &job.lane == lane)
            .map(|(job, _, _)| job.clone())
            .collect())
    }
}

impl LaneView for FakeLanes {
    async fn history(
        &self,
        lane: Option<&LaneId>,
        (since, _now): (Millis, Millis),
        limit: usize,
    ) -> Result<Vec<KeptReport>, FerryError> {
        let state = self.state.lock();
        let mut reports: Vec<KeptReport> = state
            .reports
            .values()
            .filter(|r| lane.is_none_or(|l| &r.lane == l) && r.published_at >= since)
            .map(|r| KeptReport {
                text: String::new(),
                ..r.clone()
            })
            .collect();
        reports.sort_by_key(|r| std::cmp::Reverse(r.published_at));
        reports.truncate(limit);
        Ok(reports)
    }
    async fn dropped(
        &self,
        (since, _now): (Millis, Millis),
        limit: usize,
    ) -> Result<Vec<DroppedUpload>, FerryError> {
        let state = self.state.lock();
        let mut dropped: Vec<DroppedUpload> = state
            .dropped
            .iter()
            .filter(|d| d.at >= since)
            .cloned()
            .collect();
        dropped.sort_by_key(|d| std::cmp::Reverse(d.at));
        dropped.truncate(limit);
        Ok(dropped)
    }
    async fn report(&self, lane: &LaneId, id: &RunId) -> Result<Option<KeptReport>, FerryError> {
        let state = self.state.lock();
        Ok(state.reports.get(&(lane.clone(), id.clone())).cloned())
    }

    async fn pending(
        &self,
        lane: &LaneId,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<QueuedJob>, FerryError> {
        let mut read = Vec::new();
        let mut bytes = 0;
        for (job, state) in self.jobs() {
            if &job.lane != lane || state != JobState::Pending {
                continue;
            }
            let weight = job.weight();
            if read.len() >= limit || (!read.is_empty() && bytes + weight > max_bytes) {
                break;
            }
            bytes += weight;
            read.push(job);
        }
        Ok(read)
    }

    async fn pending_count(&self, lane: &LaneId, limit: usize) -> Result<usize, FerryError> {
        Ok(self
            .jobs()
            .iter()
            .filter(|(job, state)| &job.lane == lane && *state == JobState::Pending)
            .take(limit)
            .count())
    }

    async fn members(
        &self,
        lane: &LaneId,
        run: &RunId,
        limit: usize,
    ) -> Result<Vec<RunJob>, FerryError> {
        let state = self.state.lock();
        let mut members: Vec<RunJob> = state
            .members
            .get(&(lane.clone(), run.clone()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        members.sort_by(|a, b| (a.enqueued_at, &a.id).cmp(&(b.enqueued_at, &b.id)));
        members.truncate(limit);
        Ok(members)
    }

    async fn job(&self, id: &JobId) -> Result<Option<JobRecord>, FerryError> {
        let state = self.state.lock();
        Ok(state.jobs.get(id).map(|(job, s, run)| JobRecord {
            job: job.clone(),
            state: *s,
            run: run.clone(),
            cancel: state.cancels.get(id).cloned(),
        }))
    }

    async fn lanes(&self, now: Millis) -> Result<Vec<Registered>, FerryError> {
        let state = self.state.lock();
        Ok(state
            .registry
            .iter()
            .filter(|(_, r)| r.expires_at > now)
            .map(|(lane, r)| Registered {
                lane: lane.clone(),
                idle: r.idle,
                last_job: Some(r.last_job.clone()),
            })
            .collect())
    }

    async fn registration(&self, lane: &LaneId) -> Result<Option<Registered>, FerryError> {
        let state = self.state.lock();
        Ok(state.registry.get(lane).map(|r| Registered {
            lane: lane.clone(),
            idle: r.idle,
            last_job: Some(r.last_job.clone()),
        }))
    }
    async fn lane(&self, lane: &LaneId) -> Result<LaneState, FerryError> {
        let mut state = self.state.lock();
        if state.fail_lane_reads > 0 {
            state.fail_lane_reads -= 1;
            return Err(FakeFailure::Throttled.into_error());
        }
        Ok(LaneState {
            lease: state.leases.get(lane).cloned(),
            run: state.in_flight.get(lane).cloned(),
        })
    }
}

impl LaneQueue for FakeLanes {
    async fn enqueue(&self, job: &QueuedJob) -> Result<Enqueued, FerryError> {
        let mut state = self.state.lock();
        if state.fail_enqueues > 0 {
            state.fail_enqueues -= 1;
            return Err(FakeFailure::Internal.into_error());
        }
        if state.jobs.contains_key(&job.id) {
            return Ok(Enqueued::AlreadyQueued);
        }
        state
            .jobs
            .insert(job.id.clone(), (job.clone(), JobState::Pending, None));
        let registration = Registration {
            last_job: job.id.clone(),
            expires_at: job.enqueued_at + REGISTRATION_DAYS * 86_400_000,
            idle: false,
        };
        state.registry.insert(job.lane.clone(), registration);
        Ok(Enqueued::Added)
    }
}

impl QueuedUploads for FakeLanes {
    async fn enqueue_covering(
        &self,
        job: &QueuedJob,
        uploads: &[UploadId],
    ) -> Result<Enqueued, FerryError> {
        let enqueued = self.enqueue(job).await?;
        if enqueued == Enqueued::Added {
            let ids = uploads.to_vec();
            let entry = (job.lane.clone(), job.enqueued_at, job.id.clone(), ids);
            self.state.lock().covered.push(entry);
        }
        Ok(enqueued)
    }

    async fn queued_uploads(
        &self,
        lane: &LaneId,
        since: Millis,
    ) -> Result<HashSet<UploadId>, FerryError> {
        let mut state = self.state.lock();
        if state.fail_upload_reads > 0 {
            state.fail_upload_reads -= 1;
            return Err(FakeFailure::Throttled.into_error());
        }
        Ok(state
            .covered
            .iter()
            .filter(|(l, at, _, _)| l == lane && *at >= since)
            .flat_map(|(_, _, _, ids)| ids.iter().copied())
            .collect())
    }
}

impl LaneLease for FakeLanes {
    async fn acquire(&self, request: &LeaseRequest) -> Result<Leased, FerryError> {
        let mut state = self.state.lock();
        let lane = &request.lane;
        match state.leases.get(lane) {
            Some(held) if held.owner != request.owner && held.until >= request.now => {
                Ok(Leased::HeldBy(held.clone()))
            }
            _ => {
                let lease = Lease {
                    owner: request.owner.clone(),
                    until: request.until,
                };
                state.leases.insert(lane.clone(), lease);
                Ok(Leased::Acquired)
            }
        }
    }

    async fn renew(&self, lane: &LaneId, owner: &str, until: Millis) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        match state.leases.get_mut(lane) {
            Some(held) if held.owner == owner => {
                held.until = until;
                Ok(())
            }
            _ => Err(FakeLanes::lost(lane, owner)),
        }
    }

    async fn release(&self, lane: &LaneId, owner: &str) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        let mine = state.holds(lane, owner);
        if !mine || state.in_flight.contains_key(lane) {
            return Err(FakeLanes::lost(lane, owner));
        }
        state.leases.remove(lane);
        Ok(())
    }

    async fn mark_idle(
        &self,
        lane: &LaneId,
        seen: Option<&JobId>,
        _now: Millis,
    ) -> Result<bool, FerryError> {
        let mut state = self.state.lock();
        match state.registry.get_mut(lane) {
            Some(r) if Some(&r.last_job) == seen => {
                r.idle = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn hand_over(&self, from: &str, to: &LeaseRequest) -> Result<(), FerryError> {
        let lane = &to.lane;
        let mut state = self.state.lock();
        match state.leases.get_mut(lane) {
            // Or passed to `to` already: a retried hand-over whose first attempt landed.
            Some(held) if held.owner == from || held.owner == to.owner => {
                held.owner.clone_from(&to.owner);
                held.until = to.until;
                Ok(())
            }
            _ => Err(FakeLanes::lost(lane, from)),
        }
    }
}

impl KeepReports for FakeLanes {
    async fn keep_report(&self, report: &KeptReport) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        let at = (report.lane.clone(), report.run.clone());
        state.reports.insert(at, report.clone());
        Ok(())
    }
}

impl RecordDropped for FakeLanes {
    async fn record_dropped(&self, uploads: &[DroppedUpload]) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        if state.fail_record_dropped > 0 {
            state.fail_record_dropped -= 1;
            return Err(FakeFailure::Internal.into_error());
        }
        state.dropped.extend_from_slice(uploads);
        Ok(())
    }
}

impl NoteRuns for FakeLanes {
    async fn note(&self, run: &RunRecord) -> Result<(), FerryError> {
        {
            let mut state = self.state.lock();
            if state.fail_notes > 0 {
                state.fail_notes -= 1;
                return Err(FakeFailure::Internal.into_error());
            }
        }
        LaneRuns::update(self, run).await
    }

    async fn mark_start(&self, run: &RunRecord, now: Millis) -> Result<Millis, FerryError> {
        let mut state = self.state.lock();
        match state.runs.get_mut(&(run.lane.clone(), run.id.clone())) {
            Some(stored) if stored.state != RunState::Done => {
                Ok(*stored.start_attempted.get_or_insert(now))
            }
            _ => Err(FerryError::NotFound {
                message: format!("run {} of {} is not in flight", run.id, run.lane),
                source: None,
            }),
        }
    }
}

impl LaneRuns for FakeLanes {
    async fn end_pending(&self, jobs: &[QueuedJob], end: JobEnd) -> Result<Vec<JobId>, FerryError> {
        let mut state = self.state.lock();
        let mut ended = Vec::new();
        for job in jobs {
            if let Some(entry) = state.jobs.get_mut(&job.id)
                && entry.1 == JobState::Pending
            {
                entry.1 = end.state;
                ended.push(job.id.clone());
                if let Some(cancel) = &end.cancel {
                    state.cancels.insert(job.id.clone(), cancel.clone());
                }
            }
        }
        Ok(ended)
    }

    async fn claim(&self, owner: &str, run: &RunRecord) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        let mine = state.holds(&run.lane, owner);
        let key = (run.lane.clone(), run.id.clone());
        if !mine || state.in_flight.contains_key(&run.lane) || state.runs.contains_key(&key) {
            return Err(FakeLanes::lost(&run.lane, owner));
        }
        state.in_flight.insert(run.lane.clone(), run.id.clone());
        state.runs.insert(key, run.clone());
        Ok(())
    }

    async fn take_jobs(
        &self,
        run: &RunRecord,
        jobs: &[QueuedJob],
    ) -> Result<Vec<JobId>, FerryError> {
        let mut state = self.state.lock();
        let mut gone = Vec::new();
        for job in jobs {
            match state.jobs.get_mut(&job.id) {
                Some(entry)
                    if entry.1 == JobState::Pending || entry.2.as_ref() == Some(&run.id) =>
                {
                    entry.1 = JobState::Running;
                    entry.2 = Some(run.id.clone());
                    state
                        .members
                        .entry((run.lane.clone(), run.id.clone()))
                        .or_default()
                        .insert(job.id.clone(), RunJob::of(job));
                }
                _ => gone.push(job.id.clone()),
            }
        }
        Ok(gone)
    }

    async fn return_jobs(&self, run: &RunRecord, jobs: &[QueuedJob]) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        for job in jobs {
            if let Some(entry) = state.jobs.get_mut(&job.id)
                && entry.2.as_ref() == Some(&run.id)
            {
                entry.1 = JobState::Pending;
                entry.2 = None;
                if let Some(members) = state.members.get_mut(&(run.lane.clone(), run.id.clone())) {
                    members.remove(&job.id);
                }
            }
        }
        Ok(())
    }

    async fn update(&self, run: &RunRecord) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        match state.runs.get_mut(&(run.lane.clone(), run.id.clone())) {
            Some(stored) if stored.state != RunState::Done => {
                // The cancel marks stay as first written, and the adoption count as counted,
                // as the lane table keeps them beside the record.
                let cancel = stored.cancel.clone().or_else(|| run.cancel.clone());
                let canceled_outside = stored.canceled_outside.or(run.canceled_outside);
                let start_attempted = stored.start_attempted.or(run.start_attempted);
                let adoptions = stored.adoptions;
                *stored = RunRecord {
                    cancel,
                    canceled_outside,
                    start_attempted,
                    adoptions,
                    ..run.clone()
                };
                Ok(())
            }
            _ => Err(FerryError::NotFound {
                message: format!("run {} of {} is not in flight", run.id, run.lane),
                source: None,
            }),
        }
    }

    async fn adopted(&self, run: &RunRecord) -> Result<u32, FerryError> {
        let mut state = self.state.lock();
        match state.runs.get_mut(&(run.lane.clone(), run.id.clone())) {
            Some(stored) if stored.state != RunState::Done => {
                stored.adoptions += 1;
                Ok(stored.adoptions)
            }
            _ => Err(FerryError::NotFound {
                message: format!("run {} of {} is not in flight", run.id, run.lane),
                source: None,
            }),
        }
    }

    async fn finish(&self, owner: &str, run: &RunRecord, end: JobState) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        if !state.holds(&run.lane, owner) || state.in_flight.get(&run.lane) != Some(&run.id) {
            return Err(FakeLanes::lost(&run.lane, owner));
        }
        let members: Vec<JobId> = state
            .members
            .get(&(run.lane.clone(), run.id.clone()))
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for id in members {
            if let Some(entry) = state.jobs.get_mut(&id)
                && entry.2.as_ref() == Some(&run.id)
            {
                entry.1 = end;
            }
        }
        let key = (run.lane.clone(), run.id.clone());
        let adoptions = state.runs.get(&key).map_or(0, |r| r.adoptions);
        let mut done = run.clone();
        done.state = RunState::Done;
        done.adoptions = adoptions;
        state.runs.insert(key, done);
        state.in_flight.remove(&run.lane);
        Ok(())
    }
}

/// Runner executions, as Step Functions would start them: one per name.
impl StartExecution for FakeLanes {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, FerryError> {
        let mut state = self.state.lock();
        if state.fail_runner_starts > 0 {
            state.fail_runner_starts -= 1;
            return Err(FakeFailure::Internal.into_error());
        }
        if state.runners.iter().any(|(n, _)| n == name) {
            return Ok(StartOutcome::AlreadyStarted);
        }
        state.runners.push((name.to_owned(), input.to_owned()));
        Ok(StartOutcome::Started {
            execution_arn: format!(
                "arn:aws:states:us-east-1:111122223333:execution:ferry-lane:{name}"
            ),
        })
    }
}

impl FakeLanes {
    /// The wake slot of `execution`, and whether a wake is noted on it.
    pub fn slot(&self, execution: &DataSyncExecutionArn) -> Option<(WakeSlot, bool)> {
        let state = self.state.lock();
        let (slot, noted) = state.slots.get(execution.as_str())?;
        Some((slot.clone(), noted.is_some()))
    }
}

/// Each method is one step under the lock, as each is one conditional write in DynamoDB.
impl WakeSlots for FakeLanes {
    async fn open_slot(&self, slot: &WakeSlot, _expires_at: Millis) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        let entry = state
            .slots
            .entry(slot.execution.to_string())
            .or_insert_with(|| (slot.clone(), None));
        let token = entry.0.token.take();
        entry.0 = WakeSlot {
            token,
            ..slot.clone()
        };
        Ok(())
    }

    async fn park(&self, slot: &WakeSlot, _expires_at: Millis) -> Result<Parked, FerryError> {
        let mut state = self.state.lock();
        let entry = state
            .slots
            .entry(slot.execution.to_string())
            .or_insert_with(|| (slot.clone(), None));
        if entry.1.take().is_some() {
            return Ok(Parked::AlreadyWoken);
        }
        entry.0 = slot.clone();
        Ok(Parked::Waiting)
    }

    async fn take_token(
        &self,
        execution: &DataSyncExecutionArn,
        _now: Millis,
    ) -> Result<Option<WakeSlot>, FerryError> {
        let mut state = self.state.lock();
        let Some((slot, _)) = state.slots.get_mut(execution.as_str()) else {
            return Ok(None);
        };
        if slot.token.is_none() {
            return Ok(None);
        }
        let taken = slot.clone();
        slot.token = None;
        Ok(Some(taken))
    }

    async fn note_wake(
        &self,
        execution: &DataSyncExecutionArn,
        now: Millis,
    ) -> Result<Noted, FerryError> {
        let mut state = self.state.lock();
        Ok(match state.slots.get_mut(execution.as_str()) {
            None => Noted::Unknown,
            Some((slot, _)) if slot.token.is_some() => Noted::TokenAppeared,
            Some((_, noted)) => {
                *noted = Some(now);
                Noted::Noted
            }
        })
    }

    async fn waiting(&self) -> Result<Vec<WakeSlot>, FerryError> {
        let state = self.state.lock();
        Ok(state
            .slots
            .values()
            .filter(|(slot, _)| slot.token.is_some())
            .map(|(slot, _)| slot.clone())
            .collect())
    }
}
