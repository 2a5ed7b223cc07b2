//! Adapter tests: mocked SDK clients (aws-smithy-mocks) assert the exact requests Ferry sends and
//! how every documented error is classified.

use std::sync::{Arc, Mutex};

use aws_sdk_datasync as ds;
use aws_sdk_fsx as fsx;
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::ErrorMetadata;
use serde_json::{Value, json};

use super::AwsTasks;
use crate::error::FerryError;
use crate::job::{JobSpec, Limits, ValidJob};
use crate::ports::{CancelOutcome, CancelTask, DescribeTask, StartTask};
use crate::status::{TaskHandle, TaskSnapshot};
use crate::token::{IDEMPOTENCY_TAG, IdempotencyKey};

const FS: &str = "fs-0123456789abcdef0";
const TASK_ID: &str = "task-0123456789abcdef0";
const DS_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";
const DS_EXEC: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0123456789abcdef0";

fn fsx_client(rules: &[&Rule]) -> fsx::Client {
    // Retries off: each test sees the classification of exactly the error it scripted.
    mock_client!(fsx, RuleMode::MatchAny, rules, |c| c
        .retry_config(fsx::config::retry::RetryConfig::disabled()))
}

fn ds_client(rules: &[&Rule]) -> ds::Client {
    mock_client!(ds, RuleMode::MatchAny, rules, |c| c
        .retry_config(ds::config::retry::RetryConfig::disabled()))
}

fn tasks_fsx(rules: &[&Rule]) -> AwsTasks {
    AwsTasks::from_clients(fsx_client(rules), ds_client(&[]))
}

fn tasks_ds(rules: &[&Rule]) -> AwsTasks {
    AwsTasks::from_clients(fsx_client(&[]), ds_client(rules))
}

fn valid(value: Value) -> ValidJob {
    serde_json::from_value::<JobSpec>(value)
        .expect("job parses")
        .validate(&Limits::default())
        .expect("job is valid")
}

fn key() -> IdempotencyKey {
    IdempotencyKey::derive(
        Some("exec-1"),
        &serde_json::from_value(export_job()).unwrap(),
    )
}

fn export_job() -> Value {
    json!({"name": "nightly-export", "kind": "fsx_export", "file_system_id": FS})
}

fn datasync_job() -> Value {
    json!({"name": "sync", "kind": "datasync", "task_arn": DS_TASK})
}

/// Holds the last request an operation received.
type Seen<T> = Arc<Mutex<Option<T>>>;

/// A cell to read in the test, and its clone for the mock to write.
fn capture<T: Clone>() -> (Seen<T>, Seen<T>) {
    let cell = Arc::new(Mutex::new(None));
    (cell.clone(), cell)
}

fn created_task() -> fsx::types::DataRepositoryTask {
    fsx::types::DataRepositoryTask::builder()
        .task_id(TASK_ID)
        .file_system_id(FS)
        .lifecycle(fsx::types::DataRepositoryTaskLifecycle::Pending)
        .r#type(fsx::types::DataRepositoryTaskType::Export)
        .creation_time(DateTime::from_secs(1_700_000_000))
        .build()
}

fn error_type(result: Result<impl std::fmt::Debug, FerryError>) -> &'static str {
    result.expect_err("expected an error").error_type()
}

// ---------- FSx CreateDataRepositoryTask ----------

#[tokio::test]
async fn fsx_release_request_carries_every_field() {
    use fsx::operation::create_data_repository_task::{
        CreateDataRepositoryTaskInput, CreateDataRepositoryTaskOutput,
    };
    let (seen, cell) = capture::<CreateDataRepositoryTaskInput>();
    let rule = mock!(fsx::Client::create_data_repository_task).then_compute_output(move |req| {
        *cell.lock().unwrap() = Some(req.clone());
        CreateDataRepositoryTaskOutput::builder()
            .data_repository_task(created_task())
            .build()
    });
    let job = valid(json!({
        "name": "release-cold", "kind": "fsx_release", "file_system_id": FS,
        "paths": ["projects/a", "scratch"],
        "report": {"enabled": true, "path": "s3://bucket/reports"},
        "release": {"days_since_last_access": 30},
        "tags": {"team": "ml", "env": "prod"}
    }));
    let handle = tasks_fsx(&[&rule])
        .start_task(&job, &key())
        .await
        .expect("starts");
    assert_eq!(
        handle,
        TaskHandle::Fsx {
            file_system_id: FS.into(),
            task_id: TASK_ID.into()
        }
    );
    let req = seen.lock().unwrap().clone().expect("request seen");
    assert_eq!(
        req.r#type().map(|t| t.as_str()),
        Some("RELEASE_DATA_FROM_FILESYSTEM")
    );
    assert_eq!(req.file_system_id(), Some(FS));
    assert_eq!(req.paths(), ["projects/a", "scratch"]);
    assert_eq!(req.client_request_token(), Some(key().as_str()));
    let report = req.report().expect("report");
    assert_eq!(report.enabled(), Some(true));
    assert_eq!(report.path(), Some("s3://bucket/reports"));
    assert_eq!(
        report.format().map(|f| f.as_str()),
        Some("REPORT_CSV_20191124")
    );
    assert_eq!(
        report.scope().map(|s| s.as_str()),
        Some("FAILED_FILES_ONLY")
    );
    let since = req
        .release_configuration()
        .and_then(|r| r.duration_since_last_access())
        .expect("release configuration");
    assert_eq!(since.unit().map(|u| u.as_str()), Some("DAYS"));
    assert_eq!(since.value(), Some(30));
    let tags: Vec<(&str, &str)> = req
        .tags()
        .iter()
        .map(|t| (t.key().unwrap(), t.value().unwrap()))
        .collect();
    assert_eq!(tags, [("env", "prod"), ("team", "ml")]);
    assert_eq!(req.capacity_to_release(), None);
}

#[tokio::test]
async fn fsx_minimal_export_sends_a_disabled_report_and_no_paths() {
    use fsx::operation::create_data_repository_task::{
        CreateDataRepositoryTaskInput, CreateDataRepositoryTaskOutput,
    };
    let (seen, cell) = capture::<CreateDataRepositoryTaskInput>();
    let rule = mock!(fsx::Client::create_data_repository_task).then_compute_output(move |req| {
        *cell.lock().unwrap() = Some(req.clone());
        CreateDataRepositoryTaskOutput::builder()
            .data_repository_task(created_task())
            .build()
    });
    tasks_fsx(&[&rule])
        .start_task(&valid(export_job()), &key())
        .await
        .expect("starts");
    let req = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        req.r#type().map(|t| t.as_str()),
        Some("EXPORT_TO_REPOSITORY")
    );
    assert_eq!(req.paths, None);
    assert_eq!(req.report().and_then(|r| r.enabled()), Some(false));
    assert_eq!(req.report().and_then(|r| r.path()), None);
    assert_eq!(req.tags, None);
    assert_eq!(req.release_configuration(), None);
}

#[tokio::test]
async fn fsx_import_and_auto_release_reach_the_request() {
    use fsx::operation::create_data_repository_task::{
        CreateDataRepositoryTaskInput, CreateDataRepositoryTaskOutput,
    };
    let (seen, cell) = capture::<CreateDataRepositoryTaskInput>();
    let rule = mock!(fsx::Client::create_data_repository_task).then_compute_output(move |req| {
        *cell.lock().unwrap() = Some(req.clone());
        CreateDataRepositoryTaskOutput::builder()
            .data_repository_task(created_task())
            .build()
    });
    let tasks = tasks_fsx(&[&rule]);
    let import = valid(
        json!({"name": "i", "kind": "fsx_import", "file_system_id": FS, "paths": ["s3://bucket/in"]}),
    );
    tasks.start_task(&import, &key()).await.unwrap();
    let req = seen.lock().unwrap().clone().unwrap();
    assert_eq!(
        req.r#type().map(|t| t.as_str()),
        Some("IMPORT_METADATA_FROM_REPOSITORY")
    );
    assert_eq!(req.paths(), ["s3://bucket/in"]);
    let auto = valid(
        json!({"name": "a", "kind": "fsx_auto_release", "file_system_id": FS, "capacity_to_release": 250}),
    );
    tasks.start_task(&auto, &key()).await.unwrap();
    let req = seen.lock().unwrap().clone().unwrap();
    assert_eq!(req.r#type().map(|t| t.as_str()), Some("AUTO_RELEASE_DATA"));
    assert_eq!(req.capacity_to_release(), Some(250));
}

#[tokio::test]
async fn fsx_create_errors_map_to_stable_error_types() {
    use fsx::operation::create_data_repository_task::CreateDataRepositoryTaskError as E;
    use fsx::types::error as fe;
    let cases: Vec<(E, &str)> = vec![
        (
            E::DataRepositoryTaskExecuting(
                fe::DataRepositoryTaskExecuting::builder()
                    .message("An existing data repository task is currently executing on the file system.")
                    .build(),
            ),
            "TaskConflict",
        ),
        (E::ServiceLimitExceeded(fe::ServiceLimitExceeded::builder().limit("TOTAL_SSD_IOPS".into()).message("limit").build()), "LimitExceeded"),
        (E::FileSystemNotFound(fe::FileSystemNotFound::builder().message("no fs").build()), "NotFound"),
        (E::BadRequest(fe::BadRequest::builder().message("bad path").build()), "InvalidJob"),
        (E::UnsupportedOperation(fe::UnsupportedOperation::builder().message("no").build()), "InvalidJob"),
        (E::IncompatibleParameterError(fe::IncompatibleParameterError::builder().parameter("Paths").message("token reused").build()), "InvalidJob"),
        (E::InternalServerError(fe::InternalServerError::builder().message("oops").build()), "AwsService"),
        (E::generic(ErrorMetadata::builder().code("ThrottlingException").message("Rate exceeded").build()), "Throttled"),
    ];
    for (error, expected) in cases {
        let error = Arc::new(Mutex::new(Some(error)));
        let rule = mock!(fsx::Client::create_data_repository_task)
            .then_error(move || error.lock().unwrap().take().expect("called once"));
        let result = tasks_fsx(&[&rule])
            .start_task(&valid(export_job()), &key())
            .await;
        assert_eq!(error_type(result), expected);
    }
}

#[tokio::test]
async fn fsx_conflict_message_is_kept_for_the_operator() {
    use fsx::operation::create_data_repository_task::CreateDataRepositoryTaskError as E;
    let rule = mock!(fsx::Client::create_data_repository_task).then_error(|| {
        E::DataRepositoryTaskExecuting(
            fsx::types::error::DataRepositoryTaskExecuting::builder()
                .message(
                    "An existing data repository task is currently executing on the file system.",
                )
                .build(),
        )
    });
    let error = tasks_fsx(&[&rule])
        .start_task(&valid(export_job()), &key())
        .await
        .unwrap_err();
    let diagnostic: lambda_runtime::Diagnostic = error.into();
    assert_eq!(diagnostic.error_type, "TaskConflict");
    assert!(
        diagnostic
            .error_message
            .contains("CreateDataRepositoryTask"),
        "{}",
        diagnostic.error_message
    );
    assert!(
        diagnostic.error_message.contains("currently executing"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn fsx_response_without_a_task_id_is_an_error() {
    let rule = mock!(fsx::Client::create_data_repository_task).then_output(|| {
        fsx::operation::create_data_repository_task::CreateDataRepositoryTaskOutput::builder()
            .build()
    });
    let result = tasks_fsx(&[&rule])
        .start_task(&valid(export_job()), &key())
        .await;
    assert_eq!(error_type(result), "AwsService");
}

// ---------- FSx DescribeDataRepositoryTasks ----------

fn fsx_handle() -> TaskHandle {
    TaskHandle::Fsx {
        file_system_id: FS.into(),
        task_id: TASK_ID.into(),
    }
}

#[tokio::test]
async fn fsx_describe_maps_every_field() {
    use fsx::types::*;
    let rule = mock!(fsx::Client::describe_data_repository_tasks)
        .match_requests(|req| req.task_ids() == [TASK_ID])
        .then_output(|| {
            let task = DataRepositoryTask::builder()
                .task_id(TASK_ID)
                .file_system_id(FS)
                .lifecycle(DataRepositoryTaskLifecycle::Failed)
                .r#type(DataRepositoryTaskType::Export)
                .creation_time(DateTime::from_secs(1_700_000_000))
                .start_time(DateTime::from_secs(1_700_000_010))
                .end_time(DateTime::from_secs(1_700_000_100))
                .status(
                    DataRepositoryTaskStatus::builder()
                        .total_count(10)
                        .succeeded_count(7)
                        .failed_count(3)
                        .last_updated_time(DateTime::from_secs(1_700_000_090))
                        .build(),
                )
                .failure_details(DataRepositoryTaskFailureDetails::builder().message("3 files failed").build())
                .report(CompletionReport::builder().enabled(true).path("s3://bucket/reports").build())
                .build();
            fsx::operation::describe_data_repository_tasks::DescribeDataRepositoryTasksOutput::builder()
                .data_repository_tasks(task)
                .build()
        });
    let snap: TaskSnapshot = tasks_fsx(&[&rule])
        .describe_task(&fsx_handle())
        .await
        .unwrap();
    assert_eq!(snap.lifecycle, "FAILED");
    assert_eq!(
        (snap.counts.total, snap.counts.succeeded, snap.counts.failed),
        (Some(10), Some(7), Some(3))
    );
    assert_eq!(
        snap.timings.created_at.map(|t| t.0.secs()),
        Some(1_700_000_000)
    );
    assert_eq!(
        snap.timings.started_at.map(|t| t.0.secs()),
        Some(1_700_000_010)
    );
    assert_eq!(
        snap.timings.ended_at.map(|t| t.0.secs()),
        Some(1_700_000_100)
    );
    assert_eq!(
        snap.timings.last_updated_at.map(|t| t.0.secs()),
        Some(1_700_000_090)
    );
    assert_eq!(
        snap.failure.and_then(|f| f.message).as_deref(),
        Some("3 files failed")
    );
    assert_eq!(
        snap.report.and_then(|r| r.path).as_deref(),
        Some("s3://bucket/reports")
    );
}

#[tokio::test]
async fn fsx_describe_not_found_and_empty_answers() {
    use fsx::operation::describe_data_repository_tasks::{
        DescribeDataRepositoryTasksError as E, DescribeDataRepositoryTasksOutput,
    };
    let rule = mock!(fsx::Client::describe_data_repository_tasks).then_error(|| {
        E::DataRepositoryTaskNotFound(
            fsx::types::error::DataRepositoryTaskNotFound::builder()
                .message("gone")
                .build(),
        )
    });
    assert_eq!(
        error_type(tasks_fsx(&[&rule]).describe_task(&fsx_handle()).await),
        "NotFound"
    );
    let empty = mock!(fsx::Client::describe_data_repository_tasks)
        .then_output(|| DescribeDataRepositoryTasksOutput::builder().build());
    assert_eq!(
        error_type(tasks_fsx(&[&empty]).describe_task(&fsx_handle()).await),
        "NotFound"
    );
    let throttled = mock!(fsx::Client::describe_data_repository_tasks)
        .then_error(|| E::generic(ErrorMetadata::builder().code("ThrottlingException").build()));
    assert_eq!(
        error_type(tasks_fsx(&[&throttled]).describe_task(&fsx_handle()).await),
        "Throttled"
    );
}

#[tokio::test]
async fn fsx_unknown_lifecycle_is_kept_verbatim() {
    use fsx::types::*;
    let rule = mock!(fsx::Client::describe_data_repository_tasks).then_output(|| {
        let task = DataRepositoryTask::builder()
            .task_id(TASK_ID)
            .lifecycle(DataRepositoryTaskLifecycle::from("HIBERNATING"))
            .r#type(DataRepositoryTaskType::Export)
            .creation_time(DateTime::from_secs(0))
            .build();
        fsx::operation::describe_data_repository_tasks::DescribeDataRepositoryTasksOutput::builder()
            .data_repository_tasks(task)
            .build()
    });
    let snap = tasks_fsx(&[&rule])
        .describe_task(&fsx_handle())
        .await
        .unwrap();
    assert_eq!(snap.lifecycle, "HIBERNATING");
}

// ---------- FSx CancelDataRepositoryTask ----------

#[tokio::test]
async fn fsx_cancel_outcomes() {
    use fsx::operation::cancel_data_repository_task::{
        CancelDataRepositoryTaskError as E, CancelDataRepositoryTaskOutput,
    };
    let ok = mock!(fsx::Client::cancel_data_repository_task)
        .match_requests(|req| req.task_id() == Some(TASK_ID))
        .then_output(|| {
            CancelDataRepositoryTaskOutput::builder()
                .lifecycle(fsx::types::DataRepositoryTaskLifecycle::Canceling)
                .task_id(TASK_ID)
                .build()
        });
    assert_eq!(
        tasks_fsx(&[&ok]).cancel_task(&fsx_handle()).await.unwrap(),
        CancelOutcome::Requested
    );
    let ended = mock!(fsx::Client::cancel_data_repository_task).then_error(|| {
        E::DataRepositoryTaskEnded(
            fsx::types::error::DataRepositoryTaskEnded::builder()
                .message("ended")
                .build(),
        )
    });
    assert_eq!(
        tasks_fsx(&[&ended])
            .cancel_task(&fsx_handle())
            .await
            .unwrap(),
        CancelOutcome::AlreadyEnded
    );
    let missing = mock!(fsx::Client::cancel_data_repository_task).then_error(|| {
        E::DataRepositoryTaskNotFound(
            fsx::types::error::DataRepositoryTaskNotFound::builder()
                .message("no")
                .build(),
        )
    });
    assert_eq!(
        error_type(tasks_fsx(&[&missing]).cancel_task(&fsx_handle()).await),
        "NotFound"
    );
}

// ---------- DataSync StartTaskExecution ----------

fn no_executions() -> Rule {
    mock!(ds::Client::list_task_executions)
        .match_requests(|req| req.task_arn() == Some(DS_TASK))
        .then_output(|| {
            ds::operation::list_task_executions::ListTaskExecutionsOutput::builder().build()
        })
}

fn started() -> ds::operation::start_task_execution::StartTaskExecutionOutput {
    ds::operation::start_task_execution::StartTaskExecutionOutput::builder()
        .task_execution_arn(DS_EXEC)
        .build()
}

#[tokio::test]
async fn datasync_start_request_carries_every_field() {
    use ds::operation::start_task_execution::StartTaskExecutionInput;
    let (seen, cell) = capture::<StartTaskExecutionInput>();
    let start = mock!(ds::Client::start_task_execution).then_compute_output(move |req| {
        *cell.lock().unwrap() = Some(req.clone());
        started()
    });
    let list = no_executions();
    let job = valid(json!({
        "name": "sync", "kind": "datasync", "task_arn": DS_TASK,
        "options": {
            "verify_mode": "ONLY_FILES_TRANSFERRED", "overwrite_mode": "NEVER", "atime": "BEST_EFFORT",
            "mtime": "PRESERVE", "uid": "BOTH", "gid": "NAME", "preserve_deleted_files": "REMOVE",
            "preserve_devices": "PRESERVE", "posix_permissions": "NONE", "bytes_per_second": 1048576,
            "task_queueing": "DISABLED", "log_level": "TRANSFER", "transfer_mode": "ALL",
            "security_descriptor_copy_flags": "OWNER_DACL_SACL", "object_tags": "NONE"
        },
        "includes": ["/data/a", "/data/b*"],
        "excludes": ["*.tmp"],
        "manifest": {"bucket_arn": "arn:aws:s3:::manifests", "object_path": "m/batch.csv",
                     "bucket_access_role_arn": "arn:aws:iam::111122223333:role/ferry-manifest", "object_version_id": "v1"},
        "task_report": {"bucket_arn": "arn:aws:s3:::reports", "subdirectory": "ferry/", "bucket_access_role_arn": "arn:aws:iam::111122223333:role/ferry-report",
                        "output_type": "STANDARD", "report_level": "ERRORS_ONLY", "object_version_ids": "INCLUDE",
                        "overrides": {"transferred": "SUCCESSES_AND_ERRORS", "skipped": "ERRORS_ONLY"}},
        "tags": {"team": "ml"}
    }));
    let handle = tasks_ds(&[&list, &start])
        .start_task(&job, &key())
        .await
        .unwrap();
    assert_eq!(
        handle,
        TaskHandle::Datasync {
            task_execution_arn: DS_EXEC.into()
        }
    );
    let req = seen.lock().unwrap().clone().unwrap();
    assert_eq!(req.task_arn(), Some(DS_TASK));
    let o = req.override_options().expect("options");
    assert_eq!(o.verify_mode().unwrap().as_str(), "ONLY_FILES_TRANSFERRED");
    assert_eq!(o.overwrite_mode().unwrap().as_str(), "NEVER");
    assert_eq!(o.atime().unwrap().as_str(), "BEST_EFFORT");
    assert_eq!(o.mtime().unwrap().as_str(), "PRESERVE");
    assert_eq!(o.uid().unwrap().as_str(), "BOTH");
    assert_eq!(o.gid().unwrap().as_str(), "NAME");
    assert_eq!(o.preserve_deleted_files().unwrap().as_str(), "REMOVE");
    assert_eq!(o.preserve_devices().unwrap().as_str(), "PRESERVE");
    assert_eq!(o.posix_permissions().unwrap().as_str(), "NONE");
    assert_eq!(o.bytes_per_second(), Some(1_048_576));
    assert_eq!(o.task_queueing().unwrap().as_str(), "DISABLED");
    assert_eq!(o.log_level().unwrap().as_str(), "TRANSFER");
    assert_eq!(o.transfer_mode().unwrap().as_str(), "ALL");
    assert_eq!(
        o.security_descriptor_copy_flags().unwrap().as_str(),
        "OWNER_DACL_SACL"
    );
    assert_eq!(o.object_tags().unwrap().as_str(), "NONE");
    let includes = req.includes();
    assert_eq!(includes.len(), 1);
    assert_eq!(
        includes[0].filter_type().unwrap().as_str(),
        "SIMPLE_PATTERN"
    );
    assert_eq!(includes[0].value(), Some("/data/a|/data/b*"));
    assert_eq!(req.excludes()[0].value(), Some("*.tmp"));
    let manifest = req.manifest_config().expect("manifest");
    assert_eq!(manifest.action().unwrap().as_str(), "TRANSFER");
    assert_eq!(manifest.format().unwrap().as_str(), "CSV");
    let s3 = manifest
        .source()
        .and_then(|s| s.s3())
        .expect("manifest source");
    assert_eq!(s3.manifest_object_path(), "m/batch.csv");
    assert_eq!(s3.s3_bucket_arn(), "arn:aws:s3:::manifests");
    assert_eq!(
        s3.bucket_access_role_arn(),
        "arn:aws:iam::111122223333:role/ferry-manifest"
    );
    assert_eq!(s3.manifest_object_version_id(), Some("v1"));
    let report = req.task_report_config().expect("task report");
    let dest = report
        .destination()
        .and_then(|d| d.s3())
        .expect("report destination");
    assert_eq!(dest.s3_bucket_arn(), "arn:aws:s3:::reports");
    assert_eq!(dest.subdirectory(), Some("ferry/"));
    assert_eq!(
        dest.bucket_access_role_arn(),
        "arn:aws:iam::111122223333:role/ferry-report"
    );
    assert_eq!(report.output_type().unwrap().as_str(), "STANDARD");
    assert_eq!(report.report_level().unwrap().as_str(), "ERRORS_ONLY");
    assert_eq!(report.object_version_ids().unwrap().as_str(), "INCLUDE");
    let overrides = report.overrides().expect("overrides");
    assert_eq!(
        overrides
            .transferred()
            .and_then(|o| o.report_level())
            .unwrap()
            .as_str(),
        "SUCCESSES_AND_ERRORS"
    );
    assert_eq!(
        overrides
            .skipped()
            .and_then(|o| o.report_level())
            .unwrap()
            .as_str(),
        "ERRORS_ONLY"
    );
    assert_eq!(overrides.verified(), None);
    let tags: Vec<(&str, Option<&str>)> = req.tags().iter().map(|t| (t.key(), t.value())).collect();
    assert_eq!(
        tags,
        [
            ("team", Some("ml")),
            (IDEMPOTENCY_TAG, Some(key().as_str()))
        ]
    );
}

fn listed(status: ds::types::TaskExecutionStatus) -> Rule {
    mock!(ds::Client::list_task_executions).then_output(move || {
        ds::operation::list_task_executions::ListTaskExecutionsOutput::builder()
            .task_executions(
                ds::types::TaskExecutionListEntry::builder()
                    .task_execution_arn(DS_EXEC)
                    .status(status.clone())
                    .build(),
            )
            .build()
    })
}

fn tagged(value: &'static str) -> Rule {
    mock!(ds::Client::list_tags_for_resource)
        .match_requests(|req| req.resource_arn() == Some(DS_EXEC))
        .then_output(move || {
            ds::operation::list_tags_for_resource::ListTagsForResourceOutput::builder()
                .tags(
                    ds::types::TagListEntry::builder()
                        .key(IDEMPOTENCY_TAG)
                        .value(value)
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

#[tokio::test]
async fn datasync_retried_start_returns_the_execution_already_started() {
    let list = listed(ds::types::TaskExecutionStatus::Transferring);
    let key = key();
    let tags = tagged(Box::leak(key.as_str().to_owned().into_boxed_str()));
    let start = mock!(ds::Client::start_task_execution).then_output(started);
    let handle = tasks_ds(&[&list, &tags, &start])
        .start_task(&valid(datasync_job()), &key)
        .await
        .unwrap();
    assert_eq!(
        handle,
        TaskHandle::Datasync {
            task_execution_arn: DS_EXEC.into()
        }
    );
    assert_eq!(start.num_calls(), 0, "no second execution");
}

#[tokio::test]
async fn datasync_active_execution_of_another_key_or_an_ended_one_does_not_count() {
    let list = listed(ds::types::TaskExecutionStatus::Transferring);
    let tags = tagged("ferry-someone-else");
    let start = mock!(ds::Client::start_task_execution).then_output(started);
    tasks_ds(&[&list, &tags, &start])
        .start_task(&valid(datasync_job()), &key())
        .await
        .unwrap();
    assert_eq!(start.num_calls(), 1);

    let ended = listed(ds::types::TaskExecutionStatus::Success);
    let tags = tagged(Box::leak(key().as_str().to_owned().into_boxed_str()));
    let start = mock!(ds::Client::start_task_execution).then_output(started);
    tasks_ds(&[&ended, &tags, &start])
        .start_task(&valid(datasync_job()), &key())
        .await
        .unwrap();
    assert_eq!(start.num_calls(), 1);
    assert_eq!(tags.num_calls(), 0, "ended executions are not inspected");
}

#[tokio::test]
async fn datasync_start_errors_map_to_stable_error_types() {
    use ds::operation::start_task_execution::StartTaskExecutionError as E;
    let invalid = |message: &'static str| {
        move || {
            E::InvalidRequestException(
                ds::types::error::InvalidRequestException::builder()
                    .message(message)
                    .build(),
            )
        }
    };
    for (rule, expected) in [
        (
            mock!(ds::Client::start_task_execution).then_error(invalid("Invalid include filter")),
            "InvalidJob",
        ),
        (
            mock!(ds::Client::start_task_execution).then_error(invalid(
                "Task already has an execution running with the same filters",
            )),
            "TaskConflict",
        ),
        (
            mock!(ds::Client::start_task_execution).then_error(|| {
                E::InternalException(
                    ds::types::error::InternalException::builder()
                        .message("oops")
                        .build(),
                )
            }),
            "AwsService",
        ),
        (
            mock!(ds::Client::start_task_execution).then_error(|| {
                E::generic(ErrorMetadata::builder().code("ThrottlingException").build())
            }),
            "Throttled",
        ),
    ] {
        let list = no_executions();
        let result = tasks_ds(&[&list, &rule])
            .start_task(&valid(datasync_job()), &key())
            .await;
        assert_eq!(error_type(result), expected);
    }
}

#[tokio::test]
async fn datasync_listing_failure_is_not_ignored() {
    use ds::operation::list_task_executions::ListTaskExecutionsError as E;
    let list = mock!(ds::Client::list_task_executions).then_error(|| {
        E::InvalidRequestException(
            ds::types::error::InvalidRequestException::builder()
                .message("no such task")
                .build(),
        )
    });
    let start = mock!(ds::Client::start_task_execution).then_output(started);
    let result = tasks_ds(&[&list, &start])
        .start_task(&valid(datasync_job()), &key())
        .await;
    assert_eq!(error_type(result), "NotFound");
    assert_eq!(start.num_calls(), 0);
}

// ---------- DataSync DescribeTaskExecution / CancelTaskExecution ----------

fn ds_handle() -> TaskHandle {
    TaskHandle::Datasync {
        task_execution_arn: DS_EXEC.into(),
    }
}

fn described(status: ds::types::TaskExecutionStatus) -> Rule {
    use ds::types::*;
    mock!(ds::Client::describe_task_execution)
        .match_requests(|req| req.task_execution_arn() == Some(DS_EXEC))
        .then_output(move || {
            ds::operation::describe_task_execution::DescribeTaskExecutionOutput::builder()
                .task_execution_arn(DS_EXEC)
                .status(status.clone())
                .start_time(DateTime::from_secs(1_700_000_000))
                .launch_time(DateTime::from_secs(1_700_000_030))
                .end_time(DateTime::from_secs(1_700_000_600))
                .estimated_files_to_transfer(100)
                .estimated_bytes_to_transfer(1_000)
                .estimated_files_to_delete(2)
                .files_prepared(100)
                .files_transferred(98)
                .files_skipped(1)
                .files_verified(97)
                .files_deleted(2)
                .bytes_written(990)
                .bytes_transferred(995)
                .bytes_compressed(500)
                .files_failed(
                    TaskExecutionFilesFailedDetail::builder()
                        .transfer(2)
                        .verify(1)
                        .build(),
                )
                .result(
                    TaskExecutionResultDetail::builder()
                        .prepare_duration(1_000)
                        .transfer_duration(500_000)
                        .verify_duration(60_000)
                        .total_duration(570_000)
                        .error_code("FsS3UnableToConnectToDestination")
                        .error_detail("Access denied")
                        .build(),
                )
                .task_report_config(
                    TaskReportConfig::builder()
                        .destination(
                            ReportDestination::builder()
                                .s3(ReportDestinationS3::builder()
                                    .s3_bucket_arn("arn:aws:s3:::reports")
                                    .subdirectory("ferry/")
                                    .bucket_access_role_arn("arn:aws:iam::111122223333:role/r")
                                    .build()
                                    .unwrap())
                                .build(),
                        )
                        .build(),
                )
                .report_result(ReportResult::builder().status(PhaseStatus::Success).build())
                .build()
        })
}

#[tokio::test]
async fn datasync_describe_maps_every_counter() {
    let rule = described(ds::types::TaskExecutionStatus::Error);
    let snap = tasks_ds(&[&rule])
        .describe_task(&ds_handle())
        .await
        .unwrap();
    assert_eq!(snap.lifecycle, "ERROR");
    let c = &snap.counts;
    assert_eq!(
        (
            c.files_prepared,
            c.files_transferred,
            c.files_skipped,
            c.files_verified,
            c.files_deleted,
            c.files_failed
        ),
        (Some(100), Some(98), Some(1), Some(97), Some(2), Some(3))
    );
    assert_eq!(
        (c.bytes_written, c.bytes_transferred, c.bytes_compressed),
        (Some(990), Some(995), Some(500))
    );
    assert_eq!(
        (
            c.estimated_files_to_transfer,
            c.estimated_bytes_to_transfer,
            c.estimated_files_to_delete
        ),
        (Some(100), Some(1_000), Some(2))
    );
    let t = &snap.timings;
    assert_eq!(t.created_at.map(|t| t.0.secs()), Some(1_700_000_000));
    assert_eq!(t.started_at.map(|t| t.0.secs()), Some(1_700_000_030));
    assert_eq!(t.ended_at.map(|t| t.0.secs()), Some(1_700_000_600));
    assert_eq!(
        (
            t.prepare_duration_ms,
            t.transfer_duration_ms,
            t.verify_duration_ms,
            t.total_duration_ms
        ),
        (Some(1_000), Some(500_000), Some(60_000), Some(570_000))
    );
    let failure = snap.failure.expect("failure");
    assert_eq!(
        failure.error_code.as_deref(),
        Some("FsS3UnableToConnectToDestination")
    );
    assert_eq!(failure.error_detail.as_deref(), Some("Access denied"));
    let report = snap.report.expect("report");
    assert_eq!(report.path.as_deref(), Some("s3://reports/ferry/"));
    assert_eq!(report.status.as_deref(), Some("SUCCESS"));
}

#[tokio::test]
async fn datasync_describe_invalid_request_is_not_found_or_rejected() {
    use ds::operation::describe_task_execution::DescribeTaskExecutionError as E;
    let missing = mock!(ds::Client::describe_task_execution).then_error(|| {
        E::InvalidRequestException(
            ds::types::error::InvalidRequestException::builder()
                .message("Execution not found")
                .build(),
        )
    });
    assert_eq!(
        error_type(tasks_ds(&[&missing]).describe_task(&ds_handle()).await),
        "NotFound"
    );
    let bad = mock!(ds::Client::describe_task_execution).then_error(|| {
        E::InvalidRequestException(
            ds::types::error::InvalidRequestException::builder()
                .message("1 validation error")
                .build(),
        )
    });
    assert_eq!(
        error_type(tasks_ds(&[&bad]).describe_task(&ds_handle()).await),
        "InvalidJob"
    );
}

#[tokio::test]
async fn datasync_cancel_is_idempotent_on_ended_executions() {
    use ds::operation::cancel_task_execution::{
        CancelTaskExecutionError as E, CancelTaskExecutionOutput,
    };
    let ok = mock!(ds::Client::cancel_task_execution)
        .match_requests(|req| req.task_execution_arn() == Some(DS_EXEC))
        .then_output(|| CancelTaskExecutionOutput::builder().build());
    assert_eq!(
        tasks_ds(&[&ok]).cancel_task(&ds_handle()).await.unwrap(),
        CancelOutcome::Requested
    );

    let refuse = || {
        mock!(ds::Client::cancel_task_execution).then_error(|| {
            E::InvalidRequestException(
                ds::types::error::InvalidRequestException::builder()
                    .message("not running")
                    .build(),
            )
        })
    };
    for (status, outcome) in [
        (
            ds::types::TaskExecutionStatus::Success,
            Some(CancelOutcome::AlreadyEnded),
        ),
        (
            ds::types::TaskExecutionStatus::Error,
            Some(CancelOutcome::AlreadyEnded),
        ),
        (
            ds::types::TaskExecutionStatus::Cancelling,
            Some(CancelOutcome::Requested),
        ),
        (ds::types::TaskExecutionStatus::Transferring, None),
    ] {
        let (cancel, describe) = (refuse(), described(status.clone()));
        let result = tasks_ds(&[&cancel, &describe])
            .cancel_task(&ds_handle())
            .await;
        match outcome {
            Some(expected) => assert_eq!(result.unwrap(), expected, "{status:?}"),
            None => assert_eq!(error_type(result), "InvalidJob", "{status:?}"),
        }
    }
}

// ---------- s3-trigger: Step Functions StartExecution, S3 PutObject ----------

mod trigger {
    use aws_sdk_s3 as s3;
    use aws_sdk_sfn as sfn;

    use super::*;
    use crate::aws::AwsTrigger;
    use crate::trigger::{ExecutionStart, PutObject, StartExecution};

    const SM: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry";

    fn ports(sfn_rules: &[&Rule], s3_rules: &[&Rule]) -> AwsTrigger {
        let sfn = mock_client!(sfn, RuleMode::MatchAny, sfn_rules, |c| c
            .retry_config(sfn::config::retry::RetryConfig::disabled()));
        let s3 = mock_client!(s3, RuleMode::MatchAny, s3_rules, |c| c
            .retry_config(s3::config::retry::RetryConfig::disabled()));
        AwsTrigger::from_clients(sfn, s3, SM.into())
    }

    #[tokio::test]
    async fn start_execution_sends_name_input_and_state_machine() {
        let rule = mock!(sfn::Client::start_execution)
            .match_requests(|req| {
                req.state_machine_arn() == Some(SM)
                    && req.name() == Some("route-abc")
                    && req.input() == Some("{\"job\":{}}")
            })
            .then_output(|| {
                sfn::operation::start_execution::StartExecutionOutput::builder()
                    .execution_arn(
                        format!("{SM}:route-abc").replace(":stateMachine:", ":execution:"),
                    )
                    .start_date(DateTime::from_secs(0))
                    .build()
                    .unwrap()
            });
        let started = ports(&[&rule], &[])
            .start_execution("route-abc", "{\"job\":{}}")
            .await
            .unwrap();
        assert_eq!(
            started,
            ExecutionStart::Started {
                execution_arn: "arn:aws:states:us-east-1:111122223333:execution:ferry:route-abc"
                    .into()
            }
        );
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn an_existing_execution_means_already_started() {
        use sfn::operation::start_execution::StartExecutionError as E;
        let rule = mock!(sfn::Client::start_execution).then_error(|| {
            E::ExecutionAlreadyExists(
                sfn::types::error::ExecutionAlreadyExists::builder()
                    .message("exists")
                    .build(),
            )
        });
        let started = ports(&[&rule], &[])
            .start_execution("n", "{}")
            .await
            .unwrap();
        assert_eq!(started, ExecutionStart::AlreadyStarted);
    }

    #[tokio::test]
    async fn start_execution_errors_map_to_stable_error_types() {
        use sfn::operation::start_execution::StartExecutionError as E;
        use sfn::types::error as se;
        type Case = (fn() -> E, &'static str);
        let cases: Vec<Case> = vec![
            (
                || E::ExecutionLimitExceeded(se::ExecutionLimitExceeded::builder().build()),
                "LimitExceeded",
            ),
            (
                || E::StateMachineDoesNotExist(se::StateMachineDoesNotExist::builder().build()),
                "NotFound",
            ),
            (
                || E::InvalidExecutionInput(se::InvalidExecutionInput::builder().build()),
                "InvalidJob",
            ),
            (
                || E::InvalidName(se::InvalidName::builder().build()),
                "InvalidJob",
            ),
            (
                || E::generic(ErrorMetadata::builder().code("ThrottlingException").build()),
                "Throttled",
            ),
            (
                || E::generic(ErrorMetadata::builder().code("InternalFailure").build()),
                "AwsService",
            ),
        ];
        for (error, expected) in cases {
            let rule = mock!(sfn::Client::start_execution).then_error(error);
            assert_eq!(
                error_type(ports(&[&rule], &[]).start_execution("n", "{}").await),
                expected
            );
        }
    }

    #[tokio::test]
    async fn put_object_writes_the_manifest() {
        let rule = mock!(s3::Client::put_object)
            .match_requests(|req| {
                req.bucket() == Some("ferry-data")
                    && req.key() == Some("ferry-manifests/x.csv")
                    && req.content_type() == Some("text/csv")
                    // Only a bucket of the state machine's account; its own ACL, encryption
                    // and storage class settings apply.
                    && req.expected_bucket_owner() == Some("111122223333")
                    && req.acl().is_none()
                    && req.grant_full_control().is_none()
                    && req.grant_read().is_none()
                    && req.server_side_encryption().is_none()
                    && req.ssekms_key_id().is_none()
                    && req.storage_class().is_none()
            })
            .then_output(|| s3::operation::put_object::PutObjectOutput::builder().build());
        ports(&[], &[&rule])
            .put_object("ferry-data", "ferry-manifests/x.csv", b"a\nb\n".to_vec())
            .await
            .unwrap();
        assert_eq!(rule.num_calls(), 1);
        let missing = mock!(s3::Client::put_object).then_error(|| {
            s3::operation::put_object::PutObjectError::generic(
                ErrorMetadata::builder().code("NoSuchBucket").build(),
            )
        });
        assert_eq!(
            error_type(
                ports(&[], &[&missing])
                    .put_object("gone", "k", vec![])
                    .await
            ),
            "NotFound"
        );
        let slow = mock!(s3::Client::put_object).then_error(|| {
            s3::operation::put_object::PutObjectError::generic(
                ErrorMetadata::builder().code("SlowDown").build(),
            )
        });
        assert_eq!(
            error_type(ports(&[], &[&slow]).put_object("b", "k", vec![]).await),
            "Throttled"
        );
    }
}

// ---------- notify: SNS Publish, S3 GetObject / ListObjectsV2 ----------

mod notify {
    use std::collections::BTreeMap;

    use aws_sdk_s3 as s3;
    use aws_sdk_sns as sns;

    use super::*;
    use crate::aws::AwsNotify;
    use crate::notify::message::SnsMessage;
    use crate::notify::{Fetched, Publish, ReadReports};

    const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:ferry-reports";

    fn ports(sns_rules: &[&Rule], s3_rules: &[&Rule]) -> AwsNotify {
        let sns = mock_client!(sns, RuleMode::MatchAny, sns_rules, |c| c
            .retry_config(sns::config::retry::RetryConfig::disabled()));
        let s3 = mock_client!(s3, RuleMode::MatchAny, s3_rules, |c| c
            .retry_config(s3::config::retry::RetryConfig::disabled()));
        AwsNotify::from_clients(sns, s3)
    }

    fn message() -> SnsMessage {
        SnsMessage {
            topic_arn: TOPIC.into(),
            subject: "[Ferry] nightly-export FAILED on fs-0123456789abcdef0".into(),
            body: "{\"schema\":\"ferry.completion-report/1\"}".into(),
            attributes: BTreeMap::from([
                ("format".into(), "json".into()),
                ("job".into(), "nightly-export".into()),
                ("kind".into(), "fsx_export".into()),
                ("status".into(), "FAILED".into()),
            ]),
        }
    }

    #[tokio::test]
    async fn publish_sends_topic_subject_body_and_string_attributes() {
        let rule = mock!(sns::Client::publish)
            .match_requests(|req| {
                let attrs = req.message_attributes().cloned().unwrap_or_default();
                let attr = |name: &str| {
                    attrs.get(name).map(|a| {
                        (
                            a.data_type().to_owned(),
                            a.string_value().map(str::to_owned),
                        )
                    })
                };
                req.topic_arn() == Some(TOPIC)
                    && req.subject()
                        == Some("[Ferry] nightly-export FAILED on fs-0123456789abcdef0")
                    && req.message() == Some("{\"schema\":\"ferry.completion-report/1\"}")
                    && req.message_structure().is_none()
                    && attrs.len() == 4
                    && attr("status") == Some(("String".into(), Some("FAILED".into())))
                    && attr("job") == Some(("String".into(), Some("nightly-export".into())))
                    && attr("kind") == Some(("String".into(), Some("fsx_export".into())))
                    && attr("format") == Some(("String".into(), Some("json".into())))
            })
            .then_output(|| {
                sns::operation::publish::PublishOutput::builder()
                    .message_id("m-1")
                    .build()
            });
        let id = ports(&[&rule], &[]).publish(&message()).await.unwrap();
        assert_eq!(id, "m-1");
        assert_eq!(rule.num_calls(), 1);
    }

    #[tokio::test]
    async fn publish_errors_map_to_stable_error_types() {
        use sns::operation::publish::PublishError as E;
        use sns::types::error as se;
        type Case = (fn() -> E, &'static str);
        let cases: Vec<Case> = vec![
            (
                || E::NotFoundException(se::NotFoundException::builder().build()),
                "NotFound",
            ),
            (
                || E::InvalidParameterException(se::InvalidParameterException::builder().build()),
                "InvalidJob",
            ),
            (
                || E::generic(ErrorMetadata::builder().code("Throttled").build()),
                "Throttled",
            ),
            (
                || E::KmsThrottlingException(se::KmsThrottlingException::builder().build()),
                "Throttled",
            ),
            (
                || {
                    E::AuthorizationErrorException(
                        se::AuthorizationErrorException::builder().build(),
                    )
                },
                "AwsService",
            ),
        ];
        for (error, expected) in cases {
            let rule = mock!(sns::Client::publish).then_error(error);
            let result = ports(&[&rule], &[]).publish(&message()).await;
            assert_eq!(error_type(result), expected);
        }
    }

    #[tokio::test]
    async fn get_object_reads_a_range_and_says_when_the_object_is_longer() {
        let rule = mock!(s3::Client::get_object)
            .match_requests(|req| {
                req.bucket() == Some("b")
                    && req.key() == Some("r/failures.csv")
                    && req.range() == Some("bytes=0-9")
            })
            .then_output(|| {
                s3::operation::get_object::GetObjectOutput::builder()
                    .content_range("bytes 0-9/25")
                    .body(s3::primitives::ByteStream::from_static(b"a,failed,E"))
                    .build()
            });
        let fetched = ports(&[], &[&rule])
            .get_object("b", "r/failures.csv", 10)
            .await
            .unwrap();
        assert_eq!(
            fetched,
            Some(Fetched {
                body: b"a,failed,E".to_vec(),
                cut: true
            })
        );
    }

    #[tokio::test]
    async fn a_missing_report_is_none_and_a_denied_one_an_error() {
        use s3::operation::get_object::GetObjectError as E;
        let missing = mock!(s3::Client::get_object)
            .then_error(|| E::NoSuchKey(s3::types::error::NoSuchKey::builder().build()));
        assert_eq!(
            ports(&[], &[&missing])
                .get_object("b", "k", 10)
                .await
                .unwrap(),
            None
        );
        let denied = mock!(s3::Client::get_object)
            .then_error(|| E::generic(ErrorMetadata::builder().code("AccessDenied").build()));
        assert_eq!(
            error_type(ports(&[], &[&denied]).get_object("b", "k", 10).await),
            "AwsService"
        );
        let empty = mock!(s3::Client::get_object)
            .then_error(|| E::generic(ErrorMetadata::builder().code("InvalidRange").build()));
        assert_eq!(
            ports(&[], &[&empty])
                .get_object("b", "k", 10)
                .await
                .unwrap(),
            Some(Fetched {
                body: vec![],
                cut: false
            })
        );
    }

    #[tokio::test]
    async fn list_keys_follows_continuation_tokens() {
        use s3::operation::list_objects_v2::ListObjectsV2Output as Out;
        let object = |k: &str| s3::types::Object::builder().key(k).build();
        let first = mock!(s3::Client::list_objects_v2)
            .match_requests(|req| req.prefix() == Some("p/") && req.continuation_token().is_none())
            .then_output(move || {
                Out::builder()
                    .contents(object("p/1"))
                    .is_truncated(true)
                    .next_continuation_token("t2")
                    .build()
            });
        let second = mock!(s3::Client::list_objects_v2)
            .match_requests(|req| req.continuation_token() == Some("t2"))
            .then_output(move || {
                Out::builder()
                    .contents(object("p/2"))
                    .is_truncated(false)
                    .build()
            });
        let keys = ports(&[], &[&first, &second])
            .list_keys("b", "p/", 10)
            .await
            .unwrap();
        assert_eq!(keys, ["p/1", "p/2"]);
    }
}
