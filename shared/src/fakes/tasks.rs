//! [`FakeTasks`]: in-memory FSx and DataSync, one task per idempotency key, ids in the services'
//! formats, lifecycles a test moves forward.

use std::collections::{HashMap, VecDeque};

use super::{FakeFailure, Shared};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{DataSyncTarget, JobSpec, Service, ValidJob};
use crate::domain::status::{Counts, Failure, Phase, TaskHandle, TaskSnapshot, Timestamp, Timings};
use crate::error::FerryError;
use crate::ids::{DataSyncExecutionArn, FsxTaskId};
use crate::ports::{
    ActiveTask, ActiveTasks, CancelOutcome, CancelTask, DescribeExecution, DescribeTask, StartTask,
};

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
