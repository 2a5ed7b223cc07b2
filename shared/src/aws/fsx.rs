//! FSx for Lustre data repository tasks: `CreateDataRepositoryTask`,
//! `DescribeDataRepositoryTasks`, `CancelDataRepositoryTask`.

use aws_sdk_fsx::Client;
use aws_sdk_fsx::operation::cancel_data_repository_task::CancelDataRepositoryTaskError as CancelError;
use aws_sdk_fsx::operation::create_data_repository_task::CreateDataRepositoryTaskError as CreateError;
use aws_sdk_fsx::operation::describe_data_repository_tasks::DescribeDataRepositoryTasksError as DescribeError;
use aws_sdk_fsx::types::{
    CompletionReport, DataRepositoryTask, DataRepositoryTaskFilter, DataRepositoryTaskFilterName,
    DataRepositoryTaskType, DurationSinceLastAccess, ReleaseConfiguration, ReportFormat,
    ReportScope, Tag, Unit,
};
use tracing::{info, instrument};

use super::{Class, classify, response_id, send};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{FsxJob, ValidJob};
use crate::domain::status::{
    Counts, Failure, ReportLocation, TaskHandle, TaskSnapshot, Timestamp, Timings,
};
use crate::error::FerryError;
use crate::ids::{FileSystemId, FsxTaskId};
use crate::ports::{ActiveTask, CancelOutcome, ListedTask};

/// Creates the task. `ClientRequestToken` is the idempotency key: FSx returns the task it already
/// created for a token it has seen with the same parameters, so a retry creates nothing new.
#[instrument(skip(client, job, target), fields(job = %job.name, kind = job.kind.as_str()))]
pub(super) async fn start(
    client: &Client,
    job: &ValidJob,
    target: &FsxJob,
    key: &IdempotencyKey,
) -> Result<TaskHandle, FerryError> {
    const OP: &str = "CreateDataRepositoryTask";
    let request = client
        .create_data_repository_task()
        .r#type(DataRepositoryTaskType::from(target.task_type.as_str()))
        .file_system_id(target.file_system_id.as_str())
        .set_paths((!job.paths.is_empty()).then(|| job.paths.clone()))
        .report(completion_report(job, target))
        .client_request_token(key.as_str())
        .set_tags(fsx_tags(job))
        .set_capacity_to_release(job.capacity_to_release)
        .set_release_configuration(job.release.map(|release| {
            ReleaseConfiguration::builder()
                .duration_since_last_access(
                    DurationSinceLastAccess::builder()
                        .unit(Unit::Days)
                        .value(release.days_since_last_access)
                        .build(),
                )
                .build()
        }))
        .send();
    let output = send(OP, request, |e| match e {
        CreateError::DataRepositoryTaskExecuting(_) => Some(Class::Conflict),
        CreateError::ServiceLimitExceeded(_) => Some(Class::LimitExceeded),
        CreateError::FileSystemNotFound(_) => Some(Class::NotFound),
        CreateError::BadRequest(_)
        | CreateError::UnsupportedOperation(_)
        | CreateError::IncompatibleParameterError(_) => Some(Class::Rejected),
        _ => None,
    })
    .await?;

    let task_id = response_id(
        OP,
        "DataRepositoryTask.TaskId",
        output
            .data_repository_task()
            .and_then(DataRepositoryTask::task_id),
        FsxTaskId::parse,
    )?;
    info!(task_id = %task_id, file_system_id = %target.file_system_id, "FSx data repository task created");
    Ok(TaskHandle::Fsx {
        file_system_id: target.file_system_id.clone(),
        task_id,
    })
}

/// `Report` is required by the API: disabled unless the job enables it. When enabled, `Format`
/// and `Scope` default to their only values (`REPORT_CSV_20191124`, `FAILED_FILES_ONLY`).
fn completion_report(job: &ValidJob, target: &FsxJob) -> CompletionReport {
    match (&job.report, &target.report_path) {
        (Some(report), Some(path)) if report.enabled => CompletionReport::builder()
            .enabled(true)
            .path(path.as_str())
            .format(ReportFormat::from(
                report
                    .format
                    .as_deref()
                    .unwrap_or(ReportFormat::ReportCsv20191124.as_str()),
            ))
            .scope(ReportScope::from(
                report
                    .scope
                    .as_deref()
                    .unwrap_or(ReportScope::FailedFilesOnly.as_str()),
            ))
            .build(),
        _ => CompletionReport::builder().enabled(false).build(),
    }
}

fn fsx_tags(job: &ValidJob) -> Option<Vec<Tag>> {
    (!job.tags.is_empty()).then(|| {
        job.tags
            .iter()
            .map(|(key, value)| Tag::builder().key(key).value(value).build())
            .collect()
    })
}

#[instrument(skip(client))]
pub(super) async fn describe(
    client: &Client,
    file_system_id: &FileSystemId,
    task_id: &FsxTaskId,
) -> Result<TaskSnapshot, FerryError> {
    let request = client
        .describe_data_repository_tasks()
        .task_ids(task_id.as_str())
        .send();
    let output = send("DescribeDataRepositoryTasks", request, |e| match e {
        DescribeError::DataRepositoryTaskNotFound(_) | DescribeError::FileSystemNotFound(_) => {
            Some(Class::NotFound)
        }
        DescribeError::BadRequest(_) => Some(Class::Rejected),
        _ => None,
    })
    .await?;
    let task = output
        .data_repository_tasks()
        .iter()
        .find(|t| t.task_id() == Some(task_id.as_str()))
        .ok_or_else(|| FerryError::NotFound {
            message: format!("FSx returned no data repository task {task_id}"),
            source: None,
        })?;
    Ok(snapshot(task, file_system_id, task_id))
}

/// The file system's tasks that hold it: `DescribeDataRepositoryTasks` filtered by
/// `file-system-id` and `task-lifecycle` (API reference, DataRepositoryTaskFilter: "You can use
/// filters to narrow the response ... by file system ID ... and by task lifecycle"). FSx runs
/// one task at a time, so the first page (up to 50) holds them all.
#[instrument(skip(client))]
pub(super) async fn active(
    client: &Client,
    file_system_id: &FileSystemId,
) -> Result<Vec<ActiveTask>, FerryError> {
    let by_file_system = DataRepositoryTaskFilter::builder()
        .name(DataRepositoryTaskFilterName::FileSystemId)
        .values(file_system_id.as_str())
        .build();
    let holding = DataRepositoryTaskFilter::builder()
        .name(DataRepositoryTaskFilterName::TaskLifecycle)
        .values("PENDING")
        .values("EXECUTING")
        .values("CANCELING")
        .build();
    let request = client
        .describe_data_repository_tasks()
        .filters(by_file_system)
        .filters(holding)
        .send();
    let output = send("DescribeDataRepositoryTasks", request, |e| match e {
        DescribeError::FileSystemNotFound(_) => Some(Class::NotFound),
        DescribeError::BadRequest(_) => Some(Class::Rejected),
        _ => None,
    })
    .await?;
    Ok(output
        .data_repository_tasks()
        .iter()
        .map(|t| ActiveTask {
            id: t.task_id().unwrap_or_default().to_owned(),
            lifecycle: t.lifecycle().map_or("UNKNOWN", |l| l.as_str()).to_owned(),
            created_at: ts(t.creation_time()),
        })
        .collect())
}

/// Every data repository task of a file system (`ferry tasks`), optionally only in some
/// lifecycles: `DescribeDataRepositoryTasks` with the `file-system-id` (and `task-lifecycle`)
/// filters, every page (`NextToken`; FSx API reference).
#[instrument(skip(client))]
pub(super) async fn list(
    client: &Client,
    file_system_id: &FileSystemId,
    association: Option<&str>,
    lifecycles: &[String],
) -> Result<Vec<ListedTask>, FerryError> {
    let by_file_system = DataRepositoryTaskFilter::builder()
        .name(DataRepositoryTaskFilterName::FileSystemId)
        .values(file_system_id.as_str())
        .build();
    let mut request = client
        .describe_data_repository_tasks()
        .filters(by_file_system);
    if let Some(id) = association {
        let by_association = DataRepositoryTaskFilter::builder()
            .name(DataRepositoryTaskFilterName::DataRepoAssociationId)
            .values(id)
            .build();
        request = request.filters(by_association);
    }
    if !lifecycles.is_empty() {
        let by_lifecycle = DataRepositoryTaskFilter::builder()
            .name(DataRepositoryTaskFilterName::TaskLifecycle)
            .set_values(Some(lifecycles.to_vec()))
            .build();
        request = request.filters(by_lifecycle);
    }
    let mut listed = Vec::new();
    let mut pages = request.into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let class = match e.as_service_error() {
                Some(DescribeError::FileSystemNotFound(_)) => Some(Class::NotFound),
                Some(DescribeError::BadRequest(_)) => Some(Class::Rejected),
                _ => None,
            };
            classify("DescribeDataRepositoryTasks", e, class)
        })?;
        listed.extend(page.data_repository_tasks().iter().map(|task| {
            let status = task.status();
            ListedTask {
                id: task.task_id().unwrap_or_default().to_owned(),
                kind: task.r#type().map_or("UNKNOWN", |t| t.as_str()).to_owned(),
                lifecycle: task
                    .lifecycle()
                    .map_or("UNKNOWN", |l| l.as_str())
                    .to_owned(),
                created_at: ts(task.creation_time()),
                ended_at: ts(task.end_time()),
                counts: Counts {
                    total: status.and_then(|s| s.total_count()),
                    succeeded: status.and_then(|s| s.succeeded_count()),
                    failed: status.and_then(|s| s.failed_count()),
                    ..Counts::default()
                },
            }
        }));
    }
    Ok(listed)
}

fn ts(t: Option<&aws_smithy_types::DateTime>) -> Option<Timestamp> {
    t.copied().map(Timestamp)
}

fn snapshot(
    task: &DataRepositoryTask,
    file_system_id: &FileSystemId,
    task_id: &FsxTaskId,
) -> TaskSnapshot {
    let status = task.status();
    let counts = Counts {
        total: status.and_then(|s| s.total_count()),
        succeeded: status.and_then(|s| s.succeeded_count()),
        failed: status.and_then(|s| s.failed_count()),
        released_capacity: status.and_then(|s| s.released_capacity()),
        ..Counts::default()
    };
    let timings = Timings {
        created_at: ts(task.creation_time()),
        started_at: ts(task.start_time()),
        ended_at: ts(task.end_time()),
        last_updated_at: ts(status.and_then(|s| s.last_updated_time())),
        ..Timings::default()
    };
    let failure = task
        .failure_details()
        .and_then(|f| f.message())
        .map(|message| Failure {
            message: Some(message.to_owned()),
            ..Failure::default()
        });
    let report = task
        .report()
        .filter(|r| r.enabled() == Some(true))
        .map(|r| ReportLocation {
            path: r.path().map(str::to_owned),
            ..ReportLocation::default()
        });
    TaskSnapshot {
        // The handle the task was started with: FSx answered for exactly this task id.
        task: TaskHandle::Fsx {
            file_system_id: file_system_id.clone(),
            task_id: task_id.clone(),
        },
        lifecycle: task
            .lifecycle()
            .map_or_else(|| "UNKNOWN".to_owned(), |l| l.as_str().to_owned()),
        counts,
        timings,
        failure,
        report,
    }
}

/// Cancels the task. FSx answers `DataRepositoryTaskEnded` for a task that already ended:
/// cancelling is then a no-op, not an error.
#[instrument(skip(client))]
pub(super) async fn cancel(client: &Client, task: &FsxTaskId) -> Result<CancelOutcome, FerryError> {
    let answer = client
        .cancel_data_repository_task()
        .task_id(task.as_str())
        .send();
    let error = match answer.await {
        Ok(output) => {
            info!(lifecycle = ?output.lifecycle(), "FSx task cancellation requested");
            return Ok(CancelOutcome::Requested);
        }
        Err(error) => error,
    };
    let class = match error.as_service_error() {
        Some(CancelError::DataRepositoryTaskEnded(_)) => {
            info!("FSx task had already ended");
            return Ok(CancelOutcome::AlreadyEnded);
        }
        Some(CancelError::DataRepositoryTaskNotFound(_)) => Some(Class::NotFound),
        Some(CancelError::BadRequest(_) | CancelError::UnsupportedOperation(_)) => {
            Some(Class::Rejected)
        }
        _ => None,
    };
    Err(classify("CancelDataRepositoryTask", error, class))
}

mod links;
pub(super) use links::read_links;

#[cfg(test)]
mod tests;
