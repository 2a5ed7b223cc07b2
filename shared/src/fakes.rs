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

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{JobSpec, Service, ValidJob};
use crate::domain::status::{Counts, Failure, Phase, TaskHandle, TaskSnapshot, Timestamp, Timings};
use crate::error::{AwsError, FerryError};
use crate::ids::{DataSyncExecutionArn, FsxTaskId, S3Url};
use crate::notify::message::SnsMessage;
use crate::ports::{
    CancelOutcome, CancelTask, DescribeTask, Fetched, Publish, PutObject, ReadReports,
    StartExecution, StartOutcome, StartTask,
};

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
#[derive(Debug, Default)]
pub struct FakeTasks {
    state: Mutex<State>,
}

impl FakeTasks {
    pub fn new() -> Self {
        FakeTasks::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock already failed; keep the data usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes the next start fail with `failure` (queued; one failure per call).
    pub fn fail_next_start(&self, failure: FakeFailure) {
        self.lock().start_failures.push_back(failure);
    }

    /// Every task started so far, in order.
    pub fn tasks(&self) -> Vec<FakeTask> {
        self.lock().tasks.clone()
    }

    /// How many times `start_task` was called (including ones that returned an existing task).
    pub fn start_calls(&self) -> u32 {
        self.lock().start_calls
    }

    /// Adds a task directly (as if started earlier), returning its handle.
    pub fn insert(&self, task: FakeTask) -> TaskHandle {
        let mut state = self.lock();
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
        let mut state = self.lock();
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

impl StartTask for FakeTasks {
    async fn start_task(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> Result<TaskHandle, FerryError> {
        let mut state = self.lock();
        state.start_calls += 1;
        if let Some(failure) = state.start_failures.pop_front() {
            return Err(failure.into_error());
        }
        if let Some(&index) = state.by_key.get(key) {
            return Ok(state.tasks[index].handle.clone());
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
                        target.task_arn
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

impl DescribeTask for FakeTasks {
    async fn describe_task(&self, task: &TaskHandle) -> Result<TaskSnapshot, FerryError> {
        let mut state = self.lock();
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

impl CancelTask for FakeTasks {
    async fn cancel_task(&self, task: &TaskHandle) -> Result<CancelOutcome, FerryError> {
        let mut state = self.lock();
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
#[derive(Debug, Default)]
pub struct FakeTrigger {
    state: Mutex<TriggerState>,
}

#[derive(Debug, Default)]
struct TriggerState {
    executions: Vec<(String, serde_json::Value)>,
    objects: Vec<(String, String, Vec<u8>)>,
    start_calls: u32,
    fail_starts: VecDeque<FakeFailure>,
    fail_puts: u32,
}

impl FakeTrigger {
    pub fn new() -> Self {
        FakeTrigger::default()
    }

    fn lock(&self) -> MutexGuard<'_, TriggerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Executions started, in order, with their parsed input.
    pub fn executions(&self) -> Vec<(String, serde_json::Value)> {
        self.lock().executions.clone()
    }

    /// Objects written, as `(bucket, key, body)`.
    pub fn objects(&self) -> Vec<(String, String, Vec<u8>)> {
        self.lock().objects.clone()
    }

    pub fn start_calls(&self) -> u32 {
        self.lock().start_calls
    }

    /// Makes the next start fail with `failure`.
    pub fn fail_next_start(&self, failure: FakeFailure) {
        self.lock().fail_starts.push_back(failure);
    }

    /// Makes the next `count` writes fail.
    pub fn fail_next_puts(&self, count: u32) {
        self.lock().fail_puts += count;
    }
}

impl StartExecution for FakeTrigger {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, FerryError> {
        let mut state = self.lock();
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

impl PutObject for FakeTrigger {
    async fn put_object(&self, object: &S3Url, body: Vec<u8>) -> Result<(), FerryError> {
        let mut state = self.lock();
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
    state: Mutex<NotifyState>,
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

    fn lock(&self) -> MutexGuard<'_, NotifyState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts an object into the fake bucket.
    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.lock()
            .objects
            .insert((bucket.to_owned(), key.to_owned()), body.into());
    }

    /// Messages published, in order.
    pub fn published(&self) -> Vec<SnsMessage> {
        self.lock().published.clone()
    }

    /// `(bucket, key)` of every object read or looked for.
    pub fn reads(&self) -> Vec<(String, String)> {
        self.lock().reads.clone()
    }

    /// Makes the next publish fail with `failure`.
    pub fn fail_next_publish(&self, failure: FakeFailure) {
        self.lock().fail_publishes.push_back(failure);
    }

    /// Every S3 read fails with AccessDenied.
    pub fn deny_reads(&self) {
        self.lock().denied = true;
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
        let mut state = self.lock();
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
        let mut state = self.lock();
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
        let state = self.lock();
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
