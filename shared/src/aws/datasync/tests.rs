//! The DataSync adapter through [`AwsTasks`]: `StartTaskExecution` (with `ListTaskExecutions`
//! and `ListTagsForResource` for idempotency), `DescribeTaskExecution`, `CancelTaskExecution`,
//! asserting the exact requests and how every documented error is classified.

use aws_sdk_datasync as ds;
use aws_sdk_fsx as fsx;
use aws_smithy_mocks::{Rule, mock};
use aws_smithy_types::DateTime;
use serde_json::json;

use crate::aws::AwsTasks;
use crate::aws::test_support::*;
use crate::domain::idempotency::IDEMPOTENCY_TAG;
use crate::domain::status::TaskHandle;
use crate::ids::DataSyncTaskArn;
use crate::ports::{CancelOutcome, CancelTask, DescribeTask, ListTasks, StartTask, TaskTarget};

fn tasks_ds(rules: &[&Rule]) -> AwsTasks {
    AwsTasks::from_clients(mock_client_of!(fsx, &[]), mock_client_of!(ds, rules))
}

// ---------- DataSync StartTaskExecution ----------

fn no_executions() -> Rule {
    mock!(ds::Client::list_task_executions)
        .match_requests(|req| req.task_arn() == Some(DS_TASK))
        .then_output(|| {
            ds::operation::list_task_executions::ListTaskExecutionsOutput::builder().build()
        })
}

/// The modeled error DataSync answers a request it refuses with, for every operation.
fn invalid_request(message: &str) -> ds::types::error::InvalidRequestException {
    ds::types::error::InvalidRequestException::builder()
        .message(message)
        .build()
}

fn started() -> ds::operation::start_task_execution::StartTaskExecutionOutput {
    ds::operation::start_task_execution::StartTaskExecutionOutput::builder()
        .task_execution_arn(DS_EXEC)
        .build()
}

#[tokio::test]
async fn datasync_start_request_carries_every_field() {
    let (start, seen) = capturing(mock!(ds::Client::start_task_execution), started);
    let list = no_executions();
    let job = valid(json!({
        "name": "sync", "kind": "datasync", "task_arn": DS_TASK,
        "options": {
            "verify_mode": "ONLY_FILES_TRANSFERRED", "overwrite_mode": "NEVER", "atime": "BEST_EFFORT",
            "mtime": "PRESERVE", "uid": "BOTH", "gid": "NAME", "preserve_deleted_files": "PRESERVE",
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
    assert_eq!(handle, ds_handle());
    let req = last(&seen);
    assert_eq!(req.task_arn(), Some(DS_TASK));
    let o = req.override_options().expect("options");
    assert_eq!(o.verify_mode().unwrap().as_str(), "ONLY_FILES_TRANSFERRED");
    assert_eq!(o.overwrite_mode().unwrap().as_str(), "NEVER");
    assert_eq!(o.atime().unwrap().as_str(), "BEST_EFFORT");
    assert_eq!(o.mtime().unwrap().as_str(), "PRESERVE");
    assert_eq!(o.uid().unwrap().as_str(), "BOTH");
    assert_eq!(o.gid().unwrap().as_str(), "NAME");
    assert_eq!(o.preserve_deleted_files().unwrap().as_str(), "PRESERVE");
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

fn tagged(value: &str) -> Rule {
    let value = value.to_owned();
    mock!(ds::Client::list_tags_for_resource)
        .match_requests(|req| req.resource_arn() == Some(DS_EXEC))
        .then_output(move || {
            ds::operation::list_tags_for_resource::ListTagsForResourceOutput::builder()
                .tags(
                    ds::types::TagListEntry::builder()
                        .key(IDEMPOTENCY_TAG)
                        .value(&value)
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

/// Starts the DataSync job with ListTaskExecutions answered by `list` and ListTagsForResource
/// by `tags`: the handle, and how many times StartTaskExecution was called.
async fn start_after(list: &Rule, tags: &Rule) -> (TaskHandle, usize) {
    let start = mock!(ds::Client::start_task_execution).then_output(started);
    let handle = tasks_ds(&[list, tags, &start])
        .start_task(&valid(datasync_job()), &key())
        .await
        .unwrap();
    (handle, start.num_calls())
}

#[tokio::test]
async fn datasync_retried_start_returns_the_execution_already_started() {
    let list = listed(ds::types::TaskExecutionStatus::Transferring);
    let (handle, starts) = start_after(&list, &tagged(key().as_str())).await;
    assert_eq!(handle, ds_handle());
    assert_eq!(starts, 0, "no second execution");
}

#[tokio::test]
async fn datasync_active_execution_of_another_key_or_an_ended_one_does_not_count() {
    let active = listed(ds::types::TaskExecutionStatus::Transferring);
    let (_, starts) = start_after(&active, &tagged("ferry-someone-else")).await;
    assert_eq!(starts, 1);

    let ended = listed(ds::types::TaskExecutionStatus::Success);
    let tags = tagged(key().as_str());
    let (_, starts) = start_after(&ended, &tags).await;
    assert_eq!(starts, 1);
    assert_eq!(tags.num_calls(), 0, "ended executions are not inspected");
}

/// `pages` pages of ListTaskExecutions: 100 ended executions each, and on the last page also
/// the live execution `DS_EXEC`. Each page's token is its number.
fn paged(pages: usize, last_status: ds::types::TaskExecutionStatus) -> Rule {
    use ds::operation::list_task_executions::ListTaskExecutionsOutput;
    use ds::types::{TaskExecutionListEntry, TaskExecutionStatus};
    let ended = |page: usize, i: usize| {
        TaskExecutionListEntry::builder()
            .task_execution_arn(format!("{DS_TASK}/execution/exec-{page:08x}{i:09x}"))
            .status(TaskExecutionStatus::Success)
            .build()
    };
    let outputs = (0..pages).map(move |page| {
        let mut out = ListTaskExecutionsOutput::builder()
            .set_task_executions(Some((0..100).map(|i| ended(page, i)).collect()));
        if page + 1 < pages {
            out = out.next_token((page + 1).to_string());
        } else {
            out = out.task_executions(
                TaskExecutionListEntry::builder()
                    .task_execution_arn(DS_EXEC)
                    .status(last_status.clone())
                    .build(),
            );
        }
        out.build()
    });
    let mut rule = mock!(ds::Client::list_task_executions).sequence();
    for output in outputs.collect::<Vec<_>>() {
        rule = rule.output(move || output.clone());
    }
    rule.build()
}

#[tokio::test]
async fn datasync_a_retried_start_reads_every_page_to_find_its_execution() {
    // Issue 17: the search stopped after 10 pages and started a second execution.
    let list = paged(12, ds::types::TaskExecutionStatus::Queued);
    let tags = tagged(key().as_str());
    let (handle, starts) = start_after(&list, &tags).await;
    assert_eq!(list.num_calls(), 12);
    assert_eq!(handle, ds_handle());
    assert_eq!(starts, 0, "no second execution");
    assert_eq!(tags.num_calls(), 1, "only live executions' tags are read");
}

fn untagged() -> Rule {
    mock!(ds::Client::list_tags_for_resource).then_output(|| {
        ds::operation::list_tags_for_resource::ListTagsForResourceOutput::builder().build()
    })
}

/// Starts the DataSync job again (an earlier attempt may have started it) with
/// ListTaskExecutions answered by `list`, DS_EXEC's tags by `tags` and every other execution
/// untagged: the answer, how many times StartTaskExecution and ListTagsForResource were called.
async fn start_again_after(
    list: &Rule,
    tags: &Rule,
) -> (Result<TaskHandle, crate::error::FerryError>, usize, usize) {
    let start = mock!(ds::Client::start_task_execution).then_output(started);
    let others = untagged();
    let answer = tasks_ds(&[list, tags, &others, &start])
        .start_task_again(&valid(datasync_job()), &key())
        .await;
    let tag_reads = tags.num_calls() + others.num_calls();
    (answer, start.num_calls(), tag_reads)
}

#[tokio::test]
async fn datasync_a_start_again_finds_its_execution_among_ended_ones() {
    // Issue 25: a run adopted after its runner stopped between StartTaskExecution and recording
    // what it started, whose execution had ended meanwhile, got a second execution.
    let list = paged(3, ds::types::TaskExecutionStatus::Success);
    let (answer, starts, tag_reads) = start_again_after(&list, &tagged(key().as_str())).await;
    assert_eq!(answer.unwrap(), ds_handle());
    assert_eq!(starts, 0, "no second execution");
    assert_eq!(tag_reads, 301, "the ended ones, in the order listed");

    // A first start reads no ended execution's tags, and starts.
    let list = paged(3, ds::types::TaskExecutionStatus::Success);
    let tags = tagged(key().as_str());
    let (_, starts) = start_after(&list, &tags).await;
    assert_eq!((starts, tags.num_calls()), (1, 0));
}

#[tokio::test]
async fn datasync_a_start_again_that_reads_every_ended_execution_and_finds_none_starts() {
    // The earlier attempt stopped before its call: nothing of its key, so it starts.
    let list = paged(2, ds::types::TaskExecutionStatus::Success);
    let (answer, starts, tag_reads) = start_again_after(&list, &tagged("ferry-other")).await;
    assert_eq!(answer.unwrap(), ds_handle());
    assert_eq!((starts, tag_reads), (1, 201));
}

#[tokio::test]
async fn datasync_a_start_again_with_more_ended_executions_than_it_reads_starts_nothing() {
    let list = paged(6, ds::types::TaskExecutionStatus::Success);
    let (answer, starts, tag_reads) = start_again_after(&list, &tagged("ferry-other")).await;
    let error = answer.unwrap_err();
    assert_eq!(error.error_type(), "Indeterminate");
    let message = error.to_string();
    assert!(
        message.contains("601 ended executions") && message.contains(key().as_str()),
        "{message}"
    );
    assert_eq!(starts, 0, "never a second execution");
    assert_eq!(tag_reads, super::MAX_ENDED_SEARCHED);
}

#[tokio::test]
async fn datasync_a_cancelling_execution_of_the_same_key_is_not_adopted() {
    // Issue 17: a CANCELLING execution counted as the job's current one.
    let list = listed(ds::types::TaskExecutionStatus::Cancelling);
    let tags = tagged(key().as_str());
    let (_, starts) = start_after(&list, &tags).await;
    assert_eq!(starts, 1);
    assert_eq!(tags.num_calls(), 0);
}

#[tokio::test]
async fn datasync_a_listing_that_repeats_its_token_is_an_error_not_a_loop() {
    use ds::operation::list_task_executions::ListTaskExecutionsOutput;
    let list = mock!(ds::Client::list_task_executions).then_output(|| {
        ListTaskExecutionsOutput::builder()
            .next_token("same")
            .build()
    });
    let start = mock!(ds::Client::start_task_execution).then_output(started);
    let result = tasks_ds(&[&list, &start])
        .start_task(&valid(datasync_job()), &key())
        .await;
    assert_eq!(error_type(result), "AwsService");
    assert_eq!(list.num_calls(), 2);
    assert_eq!(start.num_calls(), 0);
}

#[tokio::test]
async fn datasync_start_errors_map_to_stable_error_types() {
    use ds::operation::start_task_execution::StartTaskExecutionError as E;
    let internal = ds::types::error::InternalException::builder()
        .message("oops")
        .build();
    assert_error_types(
        mock!(ds::Client::start_task_execution),
        async |start| {
            let list = no_executions();
            let job = valid(datasync_job());
            tasks_ds(&[&list, start]).start_task(&job, &key()).await
        },
        vec![
            (
                E::InvalidRequestException(invalid_request("Invalid include filter")),
                "InvalidJob",
            ),
            (
                E::InvalidRequestException(invalid_request(
                    "Task already has an execution running with the same filters",
                )),
                "TaskConflict",
            ),
            (E::InternalException(internal), "AwsService"),
            (E::generic(code("ThrottlingException")), "Throttled"),
        ],
    )
    .await;
}

#[tokio::test]
async fn datasync_listing_failure_is_not_ignored() {
    use ds::operation::list_task_executions::ListTaskExecutionsError as E;
    let list = mock!(ds::Client::list_task_executions).then_error(once(
        E::InvalidRequestException(invalid_request("no such task")),
    ));
    let start = mock!(ds::Client::start_task_execution).then_output(started);
    let result = tasks_ds(&[&list, &start])
        .start_task(&valid(datasync_job()), &key())
        .await;
    assert_eq!(error_type(result), "NotFound");
    assert_eq!(start.num_calls(), 0);
}

// ---------- DataSync DescribeTaskExecution / CancelTaskExecution ----------

fn ds_handle() -> TaskHandle {
    handle_of(json!({"service": "datasync", "task_execution_arn": DS_EXEC}))
}

fn described(status: ds::types::TaskExecutionStatus) -> Rule {
    described_in(status, ds::types::TaskMode::Basic)
}

fn described_in(status: ds::types::TaskExecutionStatus, mode: ds::types::TaskMode) -> Rule {
    use ds::types::*;
    mock!(ds::Client::describe_task_execution)
        .match_requests(|req| req.task_execution_arn() == Some(DS_EXEC))
        .then_output(move || {
            ds::operation::describe_task_execution::DescribeTaskExecutionOutput::builder()
                .task_execution_arn(DS_EXEC)
                .status(status.clone())
                .task_mode(mode.clone())
                .files_listed(
                    TaskExecutionFilesListedDetail::builder()
                        .at_source(120)
                        .at_destination_for_delete(3)
                        .build(),
                )
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
        (None, Some(98), Some(1), Some(97), Some(2), Some(3))
    );
    // Enhanced-mode counters are not read from a Basic task.
    assert_eq!(
        (c.files_listed_at_source, c.files_failed_by_phase.as_ref()),
        (None, None)
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
    assert_eq!(
        secs(t),
        [
            Some(1_700_000_000),
            Some(1_700_000_030),
            Some(1_700_000_600)
        ]
    );
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
async fn datasync_enhanced_mode_counters_are_read_and_its_zero_phase_durations_are_not() {
    // Issue 17: Enhanced mode reports files listed, prepared and failed per phase; its phase
    // durations are "always 0" (TaskExecutionResultDetail), so they are not durations.
    let rule = described_in(
        ds::types::TaskExecutionStatus::Success,
        ds::types::TaskMode::Enhanced,
    );
    let snap = tasks_ds(&[&rule])
        .describe_task(&ds_handle())
        .await
        .unwrap();
    let c = &snap.counts;
    assert_eq!(
        (
            c.files_listed_at_source,
            c.files_listed_for_delete,
            c.files_prepared,
            c.files_failed
        ),
        (Some(120), Some(3), Some(100), Some(3))
    );
    let phases = c.files_failed_by_phase.as_ref().expect("per phase");
    assert_eq!(
        (
            phases.prepare,
            phases.transfer,
            phases.verify,
            phases.delete
        ),
        (0, 2, 1, 0)
    );
    let t = &snap.timings;
    assert_eq!(
        (
            t.prepare_duration_ms,
            t.transfer_duration_ms,
            t.verify_duration_ms,
            t.total_duration_ms
        ),
        (None, None, None, Some(570_000))
    );
}

#[tokio::test]
async fn datasync_describe_invalid_request_is_not_found_or_rejected() {
    use ds::operation::describe_task_execution::DescribeTaskExecutionError as E;
    assert_error_types(
        mock!(ds::Client::describe_task_execution),
        async |rule| tasks_ds(&[rule]).describe_task(&ds_handle()).await,
        vec![
            (
                E::InvalidRequestException(invalid_request("Execution not found")),
                "NotFound",
            ),
            (
                E::InvalidRequestException(invalid_request("1 validation error")),
                "InvalidJob",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn datasync_cancel_is_idempotent_on_ended_executions() {
    use ds::operation::cancel_task_execution::{
        CancelTaskExecutionError as E, CancelTaskExecutionOutput,
    };
    use ds::types::TaskExecutionStatus as S;
    let ok = mock!(ds::Client::cancel_task_execution)
        .match_requests(|req| req.task_execution_arn() == Some(DS_EXEC))
        .then_output(|| CancelTaskExecutionOutput::builder().build());
    assert_eq!(
        tasks_ds(&[&ok]).cancel_task(&ds_handle()).await.unwrap(),
        CancelOutcome::Requested
    );

    for (status, outcome) in [
        (S::Success, Some(CancelOutcome::AlreadyEnded)),
        (S::Error, Some(CancelOutcome::AlreadyEnded)),
        (S::Cancelling, Some(CancelOutcome::Requested)),
        (S::Transferring, None),
    ] {
        let cancel = mock!(ds::Client::cancel_task_execution)
            .then_error(|| E::InvalidRequestException(invalid_request("not running")));
        let describe = described(status.clone());
        let result = tasks_ds(&[&cancel, &describe])
            .cancel_task(&ds_handle())
            .await;
        match outcome {
            Some(expected) => assert_eq!(result.unwrap(), expected, "{status:?}"),
            None => assert_eq!(error_type(result), "InvalidJob", "{status:?}"),
        }
    }
}

#[test]
fn report_locations_name_the_bucket_s3_requests_take() {
    // Issue 17, defect 5: an access point's report was looked for in `s3://accesspoint/...`.
    const AP: &str = "arn:aws:s3:us-east-1:111122223333:accesspoint/reports-ap";
    const OUTPOST: &str = "arn:aws:s3-outposts:us-east-1:111122223333:outpost/op-01ac5d28a6a232904/accesspoint/reports";
    for (arn, sub, bucket, url) in [
        (
            "arn:aws:s3:::reports",
            Some("/ferry/"),
            "reports",
            "s3://reports/ferry/".to_owned(),
        ),
        (
            "arn:aws-us-gov:s3:::reports",
            None,
            "reports",
            "s3://reports/".to_owned(),
        ),
        (AP, Some("ferry/"), AP, format!("s3://{AP}/ferry/")),
        (
            OUTPOST,
            Some("ferry"),
            OUTPOST,
            format!("s3://{OUTPOST}/ferry"),
        ),
    ] {
        let got = super::report_url(arn, sub);
        assert_eq!(got, url);
        // notify reads exactly that place.
        let parsed = crate::ids::S3Url::parse_location(&got, 1_024).unwrap();
        assert_eq!(parsed.bucket().as_str(), bucket);
    }
}

#[tokio::test]
async fn datasync_lists_a_task_s_executions_on_every_page_filtered_by_status() {
    use ds::operation::list_task_executions::ListTaskExecutionsOutput;
    use ds::types::{TaskExecutionListEntry, TaskExecutionStatus};
    let entry = |n: u8, status| {
        TaskExecutionListEntry::builder()
            .task_execution_arn(format!("{DS_TASK}/execution/exec-0000000000000000{n}"))
            .status(status)
            .build()
    };
    let first = mock!(ds::Client::list_task_executions)
        .match_requests(|r| r.next_token().is_none() && r.task_arn() == Some(DS_TASK))
        .then_output(move || {
            ListTaskExecutionsOutput::builder()
                .task_executions(entry(1, TaskExecutionStatus::Success))
                .task_executions(entry(2, TaskExecutionStatus::Transferring))
                .next_token("more")
                .build()
        });
    let second = mock!(ds::Client::list_task_executions)
        .match_requests(|r| r.next_token() == Some("more"))
        .then_output(move || {
            ListTaskExecutionsOutput::builder()
                .task_executions(entry(3, TaskExecutionStatus::Error))
                .build()
        });
    let target = TaskTarget::DataSyncTask(DataSyncTaskArn::parse(DS_TASK).unwrap());
    let all = tasks_ds(&[&first, &second])
        .list_tasks(&target, &[])
        .await
        .unwrap();
    let statuses: Vec<&str> = all.iter().map(|t| t.lifecycle.as_str()).collect();
    assert_eq!(statuses, ["SUCCESS", "TRANSFERRING", "ERROR"]);
    assert_eq!(all[0].kind, "BASIC", "no task mode: DataSync's default");
    let first = mock!(ds::Client::list_task_executions)
        .match_requests(|r| r.next_token().is_none())
        .then_output(move || {
            ListTaskExecutionsOutput::builder()
                .task_executions(entry(1, TaskExecutionStatus::Success))
                .task_executions(entry(2, TaskExecutionStatus::Transferring))
                .build()
        });
    let running = tasks_ds(&[&first])
        .list_tasks(&target, &["TRANSFERRING".to_owned()])
        .await
        .unwrap();
    assert_eq!(running.len(), 1);
    assert!(running[0].id.ends_with("exec-00000000000000002"));
}
