//! The FSx adapter through [`AwsTasks`]: `CreateDataRepositoryTask`,
//! `DescribeDataRepositoryTasks`, `CancelDataRepositoryTask`, asserting the exact requests and
//! how every documented error is classified.

use aws_sdk_datasync as ds;
use aws_sdk_fsx as fsx;
use aws_smithy_mocks::{Rule, mock};
use aws_smithy_types::DateTime;
use aws_smithy_types::error::ErrorMetadata;
use fsx::operation::create_data_repository_task::{
    CreateDataRepositoryTaskInput, CreateDataRepositoryTaskOutput,
};
use serde_json::json;

use crate::aws::AwsTasks;
use crate::aws::test_support::*;
use crate::domain::status::{TaskHandle, TaskSnapshot};
use crate::ids::FileSystemId;
use crate::ports::{CancelOutcome, CancelTask, DescribeTask, ListTasks, StartTask, TaskTarget};

/// A request's filters as (name, values), whichever filter type the operation takes.
fn named<'a>(
    filters: impl Iterator<Item = (Option<&'a str>, &'a [String])>,
) -> Vec<(String, Vec<String>)> {
    filters
        .map(|(name, values)| (name.unwrap_or_default().to_owned(), values.to_vec()))
        .collect()
}

fn tasks_fsx(rules: &[&Rule]) -> AwsTasks {
    AwsTasks::from_clients(mock_client_of!(fsx, rules), mock_client_of!(ds, &[]))
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

// ---------- FSx CreateDataRepositoryTask ----------

/// FSx whose CreateDataRepositoryTask answers `created_task()`, and the request it received.
fn tasks_creating() -> (AwsTasks, Seen<CreateDataRepositoryTaskInput>) {
    let (rule, seen) = capturing(mock!(fsx::Client::create_data_repository_task), || {
        CreateDataRepositoryTaskOutput::builder()
            .data_repository_task(created_task())
            .build()
    });
    (tasks_fsx(&[&rule]), seen)
}

fn task_type(req: &CreateDataRepositoryTaskInput) -> Option<&str> {
    req.r#type().map(|t| t.as_str())
}

#[tokio::test]
async fn fsx_release_request_carries_every_field() {
    let (tasks, seen) = tasks_creating();
    let job = valid(json!({
        "name": "release-cold", "kind": "fsx_release", "file_system_id": FS,
        "paths": ["projects/a", "scratch"],
        "report": {"enabled": true, "path": "s3://bucket/reports"},
        "release": {"days_since_last_access": 30},
        "tags": {"team": "ml", "env": "prod"}
    }));
    let handle = tasks.start_task(&job, &key()).await.expect("starts");
    assert_eq!(handle, fsx_handle());
    let req = last(&seen);
    assert_eq!(task_type(&req), Some("RELEASE_DATA_FROM_FILESYSTEM"));
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
    let (tasks, seen) = tasks_creating();
    tasks
        .start_task(&valid(export_job()), &key())
        .await
        .expect("starts");
    let req = last(&seen);
    assert_eq!(task_type(&req), Some("EXPORT_TO_REPOSITORY"));
    assert_eq!(req.paths, None);
    assert_eq!(req.report().and_then(|r| r.enabled()), Some(false));
    assert_eq!(req.report().and_then(|r| r.path()), None);
    assert_eq!(req.tags, None);
    assert_eq!(req.release_configuration(), None);
}

#[tokio::test]
async fn fsx_import_and_auto_release_reach_the_request() {
    let (tasks, seen) = tasks_creating();
    let import = valid(
        json!({"name": "i", "kind": "fsx_import", "file_system_id": FS, "paths": ["s3://bucket/in"]}),
    );
    tasks.start_task(&import, &key()).await.unwrap();
    let req = last(&seen);
    assert_eq!(task_type(&req), Some("IMPORT_METADATA_FROM_REPOSITORY"));
    assert_eq!(req.paths(), ["s3://bucket/in"]);
    let auto = valid(
        json!({"name": "a", "kind": "fsx_auto_release", "file_system_id": FS, "capacity_to_release": 250}),
    );
    tasks.start_task(&auto, &key()).await.unwrap();
    let req = last(&seen);
    assert_eq!(task_type(&req), Some("AUTO_RELEASE_DATA"));
    assert_eq!(req.capacity_to_release(), Some(250));
}

const EXECUTING: &str =
    "An existing data repository task is currently executing on the file system.";

#[tokio::test]
async fn fsx_create_errors_map_to_stable_error_types() {
    use fsx::operation::create_data_repository_task::CreateDataRepositoryTaskError as E;
    use fsx::types::error as fe;
    assert_error_types(
        mock!(fsx::Client::create_data_repository_task),
        async |rule| {
            let job = valid(export_job());
            tasks_fsx(&[rule]).start_task(&job, &key()).await
        },
        vec![
            (
                E::DataRepositoryTaskExecuting(
                    fe::DataRepositoryTaskExecuting::builder()
                        .message(EXECUTING)
                        .build(),
                ),
                "TaskConflict",
            ),
            (
                E::ServiceLimitExceeded(
                    fe::ServiceLimitExceeded::builder()
                        .limit("TOTAL_SSD_IOPS".into())
                        .message("limit")
                        .build(),
                ),
                "LimitExceeded",
            ),
            (
                E::FileSystemNotFound(fe::FileSystemNotFound::builder().message("no fs").build()),
                "NotFound",
            ),
            (
                E::BadRequest(fe::BadRequest::builder().message("bad path").build()),
                "InvalidJob",
            ),
            (
                E::UnsupportedOperation(fe::UnsupportedOperation::builder().message("no").build()),
                "InvalidJob",
            ),
            (
                E::IncompatibleParameterError(
                    fe::IncompatibleParameterError::builder()
                        .parameter("Paths")
                        .message("token reused")
                        .build(),
                ),
                "InvalidJob",
            ),
            (
                E::InternalServerError(fe::InternalServerError::builder().message("oops").build()),
                "AwsService",
            ),
            (
                E::generic(
                    ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                ),
                "Throttled",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn fsx_conflict_message_is_kept_for_the_operator() {
    use fsx::operation::create_data_repository_task::CreateDataRepositoryTaskError as E;
    let executing = fsx::types::error::DataRepositoryTaskExecuting::builder()
        .message(EXECUTING)
        .build();
    let rule = mock!(fsx::Client::create_data_repository_task)
        .then_error(once(E::DataRepositoryTaskExecuting(executing)));
    let error = tasks_fsx(&[&rule])
        .start_task(&valid(export_job()), &key())
        .await
        .unwrap_err();
    let diagnostic: lambda_runtime::Diagnostic = error.into();
    assert_eq!(diagnostic.error_type, "TaskConflict");
    for needle in ["CreateDataRepositoryTask", "currently executing"] {
        assert!(
            diagnostic.error_message.contains(needle),
            "{needle}: {}",
            diagnostic.error_message
        );
    }
}

#[tokio::test]
async fn fsx_response_without_a_task_id_is_an_error() {
    let rule = mock!(fsx::Client::create_data_repository_task)
        .then_output(|| CreateDataRepositoryTaskOutput::builder().build());
    let result = tasks_fsx(&[&rule])
        .start_task(&valid(export_job()), &key())
        .await;
    assert_eq!(error_type(result), "AwsService");
}

// ---------- FSx DescribeDataRepositoryTasks ----------

fn fsx_handle() -> TaskHandle {
    handle_of(json!({"service": "fsx", "file_system_id": FS, "task_id": TASK_ID}))
}

/// DescribeDataRepositoryTasks asked for `TASK_ID`, answering `task` alone.
fn describing(task: fsx::types::DataRepositoryTask) -> Rule {
    use fsx::operation::describe_data_repository_tasks::DescribeDataRepositoryTasksOutput;
    mock!(fsx::Client::describe_data_repository_tasks)
        .match_requests(|req| req.task_ids() == [TASK_ID])
        .then_output(move || {
            DescribeDataRepositoryTasksOutput::builder()
                .data_repository_tasks(task.clone())
                .build()
        })
}

#[tokio::test]
async fn fsx_describe_maps_every_field() {
    use fsx::types::*;
    let rule = describing(
        DataRepositoryTask::builder()
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
            .failure_details(
                DataRepositoryTaskFailureDetails::builder()
                    .message("3 files failed")
                    .build(),
            )
            .report(
                CompletionReport::builder()
                    .enabled(true)
                    .path("s3://bucket/reports")
                    .build(),
            )
            .build(),
    );
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
        secs(&snap.timings),
        [
            Some(1_700_000_000),
            Some(1_700_000_010),
            Some(1_700_000_100)
        ]
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
    let gone = fsx::types::error::DataRepositoryTaskNotFound::builder()
        .message("gone")
        .build();
    assert_error_types(
        mock!(fsx::Client::describe_data_repository_tasks),
        async |rule| tasks_fsx(&[rule]).describe_task(&fsx_handle()).await,
        vec![
            (E::DataRepositoryTaskNotFound(gone), "NotFound"),
            (E::generic(code("ThrottlingException")), "Throttled"),
        ],
    )
    .await;
    let empty = mock!(fsx::Client::describe_data_repository_tasks)
        .then_output(|| DescribeDataRepositoryTasksOutput::builder().build());
    assert_eq!(
        error_type(tasks_fsx(&[&empty]).describe_task(&fsx_handle()).await),
        "NotFound"
    );
}

#[tokio::test]
async fn fsx_unknown_lifecycle_is_kept_verbatim() {
    use fsx::types::*;
    let rule = describing(
        DataRepositoryTask::builder()
            .task_id(TASK_ID)
            .lifecycle(DataRepositoryTaskLifecycle::from("HIBERNATING"))
            .r#type(DataRepositoryTaskType::Export)
            .creation_time(DateTime::from_secs(0))
            .build(),
    );
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
    use fsx::types::error as fe;
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
    let refusing = async |error: E| {
        let rule = mock!(fsx::Client::cancel_data_repository_task).then_error(once(error));
        tasks_fsx(&[&rule]).cancel_task(&fsx_handle()).await
    };
    let ended = fe::DataRepositoryTaskEnded::builder()
        .message("ended")
        .build();
    assert_eq!(
        refusing(E::DataRepositoryTaskEnded(ended)).await.unwrap(),
        CancelOutcome::AlreadyEnded
    );
    let missing = fe::DataRepositoryTaskNotFound::builder()
        .message("no")
        .build();
    let missing = refusing(E::DataRepositoryTaskNotFound(missing)).await;
    assert_eq!(error_type(missing), "NotFound");
}

#[tokio::test]
async fn fsx_lists_a_file_system_s_tasks_by_lifecycle_on_every_page() {
    use fsx::operation::describe_data_repository_tasks::DescribeDataRepositoryTasksOutput;
    use fsx::types::*;
    let task = |id: &str, lifecycle| {
        DataRepositoryTask::builder()
            .task_id(id)
            .file_system_id(FS)
            .lifecycle(lifecycle)
            .r#type(DataRepositoryTaskType::Export)
            .creation_time(DateTime::from_secs(1_700_000_000))
            .build()
    };
    let first = mock!(fsx::Client::describe_data_repository_tasks)
        .match_requests(|r| r.next_token().is_none())
        .then_output(move || {
            DescribeDataRepositoryTasksOutput::builder()
                .data_repository_tasks(task(
                    "task-0000000000000000a",
                    DataRepositoryTaskLifecycle::Executing,
                ))
                .next_token("page-2")
                .build()
        });
    let (second, seen) = capturing(
        mock!(fsx::Client::describe_data_repository_tasks)
            .match_requests(|r| r.next_token() == Some("page-2")),
        move || {
            DescribeDataRepositoryTasksOutput::builder()
                .data_repository_tasks(task(
                    "task-0000000000000000b",
                    DataRepositoryTaskLifecycle::Pending,
                ))
                .build()
        },
    );
    let target = TaskTarget::FileSystem(FileSystemId::parse(FS).unwrap());
    let wanted = ["EXECUTING".to_owned(), "PENDING".to_owned()];
    let listed = tasks_fsx(&[&first, &second])
        .list_tasks(&target, &wanted)
        .await
        .unwrap();
    let ids: Vec<(&str, &str, &str)> = listed
        .iter()
        .map(|t| (t.id.as_str(), t.kind.as_str(), t.lifecycle.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            (
                "task-0000000000000000a",
                "EXPORT_TO_REPOSITORY",
                "EXECUTING"
            ),
            ("task-0000000000000000b", "EXPORT_TO_REPOSITORY", "PENDING"),
        ]
    );
    let req = last(&seen);
    let filters: Vec<(String, Vec<String>)> = named(
        req.filters()
            .iter()
            .map(|f| (f.name().map(|n| n.as_str()), f.values())),
    );
    assert_eq!(
        filters,
        [
            ("file-system-id".to_owned(), vec![FS.to_owned()]),
            ("task-lifecycle".to_owned(), wanted.to_vec()),
        ]
    );
}

// ---------- links: DescribeFileSystems, DescribeDataRepositoryAssociations ----------

mod links {
    use fsx::operation::describe_data_repository_associations::DescribeDataRepositoryAssociationsOutput;
    use fsx::operation::describe_file_systems::DescribeFileSystemsOutput;
    use fsx::types::{
        AutoExportPolicy, AutoImportPolicy, DataRepositoryAssociation, DataRepositoryConfiguration,
        DataRepositoryLifecycle, EventType, FileSystem, LustreFileSystemConfiguration,
        S3DataRepositoryConfiguration,
    };

    use super::*;
    use crate::domain::links::{Association, Links};
    use crate::ports::ReadLinks;

    fn file_system(config: Option<DataRepositoryConfiguration>) -> Rule {
        mock!(fsx::Client::describe_file_systems).then_output(move || {
            let lustre = LustreFileSystemConfiguration::builder()
                .set_data_repository_configuration(config.clone())
                .build();
            DescribeFileSystemsOutput::builder()
                .file_systems(
                    FileSystem::builder()
                        .file_system_id(FS)
                        .lustre_configuration(lustre)
                        .build(),
                )
                .build()
        })
    }

    fn dra(id: &str, path: &str, export: bool) -> DataRepositoryAssociation {
        let mut s3 = S3DataRepositoryConfiguration::builder().auto_import_policy(
            AutoImportPolicy::builder()
                .events(EventType::New)
                .events(EventType::Changed)
                .build(),
        );
        if export {
            s3 = s3.auto_export_policy(AutoExportPolicy::builder().events(EventType::New).build());
        }
        DataRepositoryAssociation::builder()
            .association_id(id)
            .file_system_id(FS)
            .file_system_path(path)
            .data_repository_path(format!("s3://data{path}"))
            .lifecycle(DataRepositoryLifecycle::Available)
            .s3(s3.build())
            .build()
    }

    #[tokio::test]
    async fn associations_are_read_on_every_page_with_their_automatic_policies() {
        let (first, first_seen) = capturing(
            mock!(fsx::Client::describe_data_repository_associations)
                .match_requests(|r| r.next_token().is_none()),
            || {
                DescribeDataRepositoryAssociationsOutput::builder()
                    .associations(dra("dra-0000000000000001", "/ns1/", false))
                    .next_token("page-2")
                    .build()
            },
        );
        let second = mock!(fsx::Client::describe_data_repository_associations)
            .match_requests(|r| r.next_token() == Some("page-2"))
            .then_output(|| {
                DescribeDataRepositoryAssociationsOutput::builder()
                    .associations(dra("dra-0000000000000002", "/raw/", true))
                    .build()
            });
        let tasks = tasks_fsx(&[&file_system(None), &first, &second]);
        let links = tasks
            .read_links(&FileSystemId::parse(FS).unwrap())
            .await
            .unwrap();
        let Some(Links::Associations { associations }) = links else {
            panic!("{links:?}")
        };
        assert_eq!(
            associations,
            [
                Association {
                    id: "dra-0000000000000001".into(),
                    file_system_path: "/ns1/".into(),
                    data_repository_path: "s3://data/ns1/".into(),
                    lifecycle: "AVAILABLE".into(),
                    auto_import: vec!["NEW".into(), "CHANGED".into()],
                    auto_export: vec![],
                },
                Association {
                    id: "dra-0000000000000002".into(),
                    file_system_path: "/raw/".into(),
                    data_repository_path: "s3://data/raw/".into(),
                    lifecycle: "AVAILABLE".into(),
                    auto_import: vec!["NEW".into(), "CHANGED".into()],
                    auto_export: vec!["NEW".into()],
                },
            ]
        );
        let filters: Vec<(String, Vec<String>)> = named(
            last(&first_seen)
                .filters()
                .iter()
                .map(|f| (f.name().map(|n| n.as_str()), f.values())),
        );
        assert_eq!(
            filters,
            [("file-system-id".to_owned(), vec![FS.to_owned()])]
        );
    }

    #[tokio::test]
    async fn a_file_system_linked_the_older_way_is_read_from_its_own_configuration() {
        let config = DataRepositoryConfiguration::builder()
            .import_path("s3://repo")
            .export_path("s3://repo/FSxLustre20260101T000000Z")
            .auto_import_policy(fsx::types::AutoImportPolicyType::New)
            .lifecycle(DataRepositoryLifecycle::Available)
            .build();
        // No association is asked for: the older link excludes them.
        let associations = mock!(fsx::Client::describe_data_repository_associations)
            .then_output(|| DescribeDataRepositoryAssociationsOutput::builder().build());
        let tasks = tasks_fsx(&[&file_system(Some(config)), &associations]);
        let links = tasks
            .read_links(&FileSystemId::parse(FS).unwrap())
            .await
            .unwrap();
        assert_eq!(
            links.expect("read"),
            Links::FileSystem {
                import_path: "s3://repo".into(),
                export_path: Some("s3://repo/FSxLustre20260101T000000Z".into()),
                auto_import: Some("NEW".into()),
                lifecycle: Some("AVAILABLE".into()),
            }
        );
        assert_eq!(associations.num_calls(), 0);
    }

    #[tokio::test]
    async fn a_missing_file_system_is_not_found() {
        let missing = mock!(fsx::Client::describe_file_systems).then_error(|| {
            fsx::operation::describe_file_systems::DescribeFileSystemsError::FileSystemNotFound(
                fsx::types::error::FileSystemNotFound::builder()
                    .message("no such file system")
                    .build(),
            )
        });
        let error = tasks_fsx(&[&missing])
            .read_links(&FileSystemId::parse(FS).unwrap())
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "NotFound", "{error}");
        // An answer that lists no file system says the same.
        let none = mock!(fsx::Client::describe_file_systems)
            .then_output(|| DescribeFileSystemsOutput::builder().build());
        let error = tasks_fsx(&[&none])
            .read_links(&FileSystemId::parse(FS).unwrap())
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "NotFound", "{error}");
    }

    #[tokio::test]
    async fn an_associations_tasks_are_listed_with_its_filter() {
        let (rule, seen) = capturing(mock!(fsx::Client::describe_data_repository_tasks), || {
            fsx::operation::describe_data_repository_tasks::DescribeDataRepositoryTasksOutput::builder()
                .build()
        });
        let target = TaskTarget::Association(
            FileSystemId::parse(FS).unwrap(),
            "dra-0000000000000001".into(),
        );
        tasks_fsx(&[&rule]).list_tasks(&target, &[]).await.unwrap();
        let names: Vec<(String, Vec<String>)> = named(
            last(&seen)
                .filters()
                .iter()
                .map(|f| (f.name().map(|n| n.as_str()), f.values())),
        );
        assert_eq!(
            names,
            [
                ("file-system-id".to_owned(), vec![FS.to_owned()]),
                (
                    "data-repository-association-id".to_owned(),
                    vec!["dra-0000000000000001".to_owned()]
                ),
            ]
        );
    }
}
