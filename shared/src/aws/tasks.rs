//! [`AwsTasks`]: the task ports over FSx and DataSync.

use super::{datasync, fsx};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{Service, ValidJob};
use crate::domain::links::Links;
use crate::domain::status::{TaskHandle, TaskSnapshot};
use crate::error::FerryError;
use crate::ids::{DataSyncExecutionArn, FileSystemId};
use crate::ports::{
    ActiveTask, ActiveTasks, CancelOutcome, CancelTask, DescribeExecution, DescribeTask, ListTasks,
    ListedTask, ReadLinks, StartTask, TaskTarget,
};

/// Both services behind the three ports; each call goes to the service the job or handle names.
#[derive(Debug, Clone)]
pub struct AwsTasks {
    fsx: aws_sdk_fsx::Client,
    datasync: aws_sdk_datasync::Client,
}

impl AwsTasks {
    /// Builds both clients from one loaded configuration. Building a client does no I/O, so a
    /// function that only ever sees FSx jobs pays nothing for the DataSync one.
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        AwsTasks {
            fsx: aws_sdk_fsx::Client::new(config),
            datasync: aws_sdk_datasync::Client::new(config),
        }
    }

    /// Adapters over given clients (tests use mocked ones).
    pub fn from_clients(fsx: aws_sdk_fsx::Client, datasync: aws_sdk_datasync::Client) -> Self {
        AwsTasks { fsx, datasync }
    }
}

impl StartTask for AwsTasks {
    async fn start_task(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> Result<TaskHandle, FerryError> {
        self.start(job, key, datasync::Search::Live).await
    }

    async fn start_task_again(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
    ) -> Result<TaskHandle, FerryError> {
        self.start(job, key, datasync::Search::Any).await
    }
}

impl AwsTasks {
    /// FSx keeps a `ClientRequestToken` with the task it created, ended or not, so `search`
    /// only tells DataSync which executions to look among for one the key started.
    async fn start(
        &self,
        job: &ValidJob,
        key: &IdempotencyKey,
        search: datasync::Search,
    ) -> Result<TaskHandle, FerryError> {
        match job.service() {
            Service::Fsx(target) => fsx::start(&self.fsx, job, target, key).await,
            Service::DataSync(target) => {
                datasync::start(&self.datasync, job, target, key, search).await
            }
        }
    }
}

impl ActiveTasks for AwsTasks {
    async fn active_tasks(&self, job: &ValidJob) -> Result<Vec<ActiveTask>, FerryError> {
        match job.service() {
            Service::Fsx(target) => fsx::active(&self.fsx, &target.file_system_id).await,
            Service::DataSync(_) => Ok(Vec::new()),
        }
    }
}

impl ListTasks for AwsTasks {
    async fn list_tasks(
        &self,
        target: &TaskTarget,
        lifecycles: &[String],
    ) -> Result<Vec<ListedTask>, FerryError> {
        match target {
            TaskTarget::FileSystem(fs) => fsx::list(&self.fsx, fs, None, lifecycles).await,
            TaskTarget::Association(fs, id) => fsx::list(&self.fsx, fs, Some(id), lifecycles).await,
            TaskTarget::DataSyncTask(task) => {
                datasync::list(&self.datasync, task, lifecycles).await
            }
        }
    }
}

impl ReadLinks for AwsTasks {
    async fn read_links(&self, file_system: &FileSystemId) -> Result<Option<Links>, FerryError> {
        fsx::read_links(&self.fsx, file_system).await.map(Some)
    }
}

impl DescribeTask for AwsTasks {
    async fn describe_task(&self, task: &TaskHandle) -> Result<TaskSnapshot, FerryError> {
        match task {
            TaskHandle::Fsx {
                file_system_id,
                task_id,
            } => fsx::describe(&self.fsx, file_system_id, task_id).await,
            TaskHandle::Datasync { task_execution_arn } => {
                datasync::describe(&self.datasync, task_execution_arn).await
            }
        }
    }
}

impl DescribeExecution for AwsTasks {
    async fn describe_execution(
        &self,
        execution: &DataSyncExecutionArn,
    ) -> Result<TaskSnapshot, FerryError> {
        datasync::describe(&self.datasync, execution).await
    }
}

impl CancelTask for AwsTasks {
    async fn cancel_task(&self, task: &TaskHandle) -> Result<CancelOutcome, FerryError> {
        match task {
            TaskHandle::Fsx { task_id, .. } => fsx::cancel(&self.fsx, task_id).await,
            TaskHandle::Datasync { task_execution_arn } => {
                datasync::cancel(&self.datasync, task_execution_arn).await
            }
        }
    }
}
