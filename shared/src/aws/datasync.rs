//! DataSync task executions: `StartTaskExecution`, `DescribeTaskExecution`,
//! `CancelTaskExecution`, with `ListTaskExecutions` and `ListTagsForResource` for idempotency.

use aws_sdk_datasync::Client;
use aws_sdk_datasync::operation::cancel_task_execution::CancelTaskExecutionError as CancelError;
use aws_sdk_datasync::operation::describe_task_execution::{
    DescribeTaskExecutionError as DescribeError, DescribeTaskExecutionOutput,
};
use aws_sdk_datasync::operation::start_task_execution::StartTaskExecutionError as StartError;
use aws_sdk_datasync::types::{
    FilterRule, FilterType, ManifestAction, ManifestConfig, ManifestFormat, Options,
    ReportDestination, ReportDestinationS3, ReportLevel, ReportOverride, ReportOverrides,
    S3ManifestConfig, SourceManifestConfig, TagListEntry, TaskExecutionStatus, TaskMode,
    TaskReportConfig,
};
use futures_util::{StreamExt, stream};
use tracing::{info, instrument};

use super::{Class, build_error, classify, datasync_task, response_id, send, unmodeled};
use crate::domain::idempotency::{IDEMPOTENCY_TAG, IdempotencyKey};
use crate::domain::job::{
    DataSyncJob, DataSyncOptions, DataSyncTarget, ManifestSpec, S3Source, TaskReportSpec, ValidJob,
};
use crate::domain::status::{
    Counts, Failure, Phase, PhaseCounts, ReportLocation, TaskHandle, TaskSnapshot, Timestamp,
    Timings,
};
use crate::error::{AwsError, FerryError};
use crate::ids::{DataSyncExecutionArn, DataSyncTaskArn, S3BucketArn};
use crate::ports::{CancelOutcome, ListedTask};

/// `ListTaskExecutions` pages of at most 100 (API model, `MaxResults`).
const LIST_PAGE_SIZE: i32 = 100;

/// Most ended executions whose tags a search after a stopped attempt reads
/// ([`Search::Any`]): one `ListTagsForResource` each, about 50 ms, [`TAG_READS_AT_ONCE`] at a
/// time, so a search stays well within `start-task`'s 30 s timeout.
pub(super) const MAX_ENDED_SEARCHED: usize = 500;

/// `ListTagsForResource` calls a search makes at once.
const TAG_READS_AT_ONCE: usize = 4;

/// Which executions a start looks among for the one an earlier attempt started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Search {
    /// Queued and running ones: a retry soon after the attempt (an execution lasts minutes).
    Live,
    /// Ended ones too, after an attempt that stopped before its run recorded what it started
    /// (the run was adopted after its lease expired, and the execution may have ended since).
    Any,
}

/// Starts an execution, unless one tagged with `key` is already there (active; ended too with
/// [`Search::Any`]): DataSync has no idempotency token, so a retried start looks for the
/// execution the first attempt started.
#[instrument(skip(client, job, target), fields(job = %job.name))]
pub(super) async fn start(
    client: &Client,
    job: &ValidJob,
    target: &DataSyncJob,
    key: &IdempotencyKey,
    search: Search,
) -> Result<TaskHandle, FerryError> {
    const OP: &str = "StartTaskExecution";
    let ensured;
    let task_arn = match &target.target {
        DataSyncTarget::Task(arn) => arn,
        DataSyncTarget::Definition(def) => {
            ensured = datasync_task::ensure(client, def).await?;
            &ensured
        }
    };
    if let Some(existing) = find_started(client, task_arn, key, search).await? {
        info!(task_execution_arn = %existing, "execution already started for this key");
        return Ok(TaskHandle::Datasync {
            task_execution_arn: existing,
        });
    }

    let mut tags = Vec::with_capacity(job.tags.len() + 1);
    for (k, v) in job
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([(IDEMPOTENCY_TAG, key.as_str())])
    {
        tags.push(
            TagListEntry::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| build_error("tags", e))?,
        );
    }

    let manifest = match (&job.manifest, &target.manifest) {
        (Some(spec), Some(source)) => Some(manifest(spec, source)?),
        _ => None,
    };
    let task_report = match (&job.task_report, &target.task_report) {
        (Some(spec), Some(destination)) => Some(task_report(spec, destination)?),
        _ => None,
    };
    let request = client
        .start_task_execution()
        .task_arn(task_arn.as_str())
        .set_override_options(job.options.as_ref().map(options))
        .set_includes(filter(&job.includes))
        .set_excludes(filter(&job.excludes))
        .set_manifest_config(manifest)
        .set_task_report_config(task_report)
        .set_tags(Some(tags))
        .send();
    let output = send(OP, request, |e| match e {
        StartError::InvalidRequestException(err) => {
            by_message(err.message(), is_conflict_message, Class::Conflict)
        }
        _ => None,
    })
    .await?;
    let task_execution_arn = response_id(
        OP,
        "TaskExecutionArn",
        output.task_execution_arn(),
        DataSyncExecutionArn::parse,
    )?;
    info!(task_execution_arn = %task_execution_arn, "DataSync execution started");
    Ok(TaskHandle::Datasync { task_execution_arn })
}

/// DataSync answers most faults with one error, `InvalidRequestException`; its message tells
/// them apart: `class` when `is` recognizes it, otherwise a rejected request.
fn by_message(message: Option<&str>, is: fn(&str) -> bool, class: Class) -> Option<Class> {
    Some(if message.is_some_and(is) {
        class
    } else {
        Class::Rejected
    })
}

/// DataSync reports "this task already has an execution" as a plain `InvalidRequestException`;
/// its wording is not documented, so these phrases are matched (unverified against AWS: the
/// safe side is a retry, which the state machine bounds).
fn is_conflict_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "already running",
        "already has",
        "already queued",
        "currently running",
        "is running",
        "in progress",
        "already executing",
        "queue is full",
    ]
    .iter()
    .any(|phrase| m.contains(phrase))
}

/// The ARN of an execution of `task_arn` tagged with `key`, if there is one: among live ones
/// ([`Search::Live`]), or among all ([`Search::Any`]; live ones first, as they are read). Every
/// page is read, to the end (issue 17: the search used to stop after 10 pages and start a
/// second execution as if none existed). Live executions' tags are fetched as they come (a task
/// has few); with [`Search::Any`] the ended ones' after the last page, at most
/// [`MAX_ENDED_SEARCHED`]: past that, not found is not known, and nothing is started.
async fn find_started(
    client: &Client,
    task_arn: &DataSyncTaskArn,
    key: &IdempotencyKey,
    search: Search,
) -> Result<Option<DataSyncExecutionArn>, FerryError> {
    let mut next_token: Option<String> = None;
    // The first ended executions listed (their tags are read last), and how many there are.
    let mut ended: Vec<String> = Vec::new();
    let mut ended_count = 0_usize;
    loop {
        let request = client
            .list_task_executions()
            .task_arn(task_arn.as_str())
            .max_results(LIST_PAGE_SIZE)
            .set_next_token(next_token.clone())
            .send();
        let page = send("ListTaskExecutions", request, |e| {
            e.is_invalid_request_exception().then_some(Class::NotFound)
        })
        .await?;
        for entry in page.task_executions() {
            let Some(arn) = entry.task_execution_arn() else {
                continue;
            };
            if !entry.status().is_some_and(is_live) {
                if search == Search::Any {
                    ended_count += 1;
                    if ended.len() < MAX_ENDED_SEARCHED {
                        ended.push(arn.to_owned());
                    }
                }
            } else if has_key(client, arn, key).await? {
                return found(arn).map(Some);
            }
        }
        match page.next_token() {
            // A service that hands back the token it was given would loop for ever.
            Some(token) if next_token.as_deref() == Some(token) => {
                return Err(FerryError::AwsService {
                    source: AwsError::malformed(
                        "ListTaskExecutions",
                        "the same NextToken twice; cannot tell whether this job's execution \
                         already exists",
                    ),
                });
            }
            Some(token) => next_token = Some(token.to_owned()),
            None => return find_ended(client, (task_arn, key), &ended, ended_count).await,
        }
    }
}

/// The execution among `ended` (the first [`MAX_ENDED_SEARCHED`] of `count` ended ones, as
/// listed) tagged with `key`; not there with more left unread is [`FerryError::Indeterminate`].
async fn find_ended(
    client: &Client,
    (task_arn, key): (&DataSyncTaskArn, &IdempotencyKey),
    ended: &[String],
    count: usize,
) -> Result<Option<DataSyncExecutionArn>, FerryError> {
    let mut reads = stream::iter(ended.iter().cloned())
        .map(|arn: String| async move { has_key(client, &arn, key).await.map(|has| (arn, has)) })
        .buffered(TAG_READS_AT_ONCE);
    while let Some(read) = reads.next().await {
        if let (arn, true) = read? {
            return found(&arn).map(Some);
        }
    }
    if count > ended.len() {
        return Err(FerryError::Indeterminate {
            message: format!(
                "an earlier attempt to start this run stopped before recording what it started, \
                 and {task_arn} has {} ended executions, more than the {MAX_ENDED_SEARCHED} \
                 searched for the tag {IDEMPOTENCY_TAG}={key}: not started again, so as never to \
                 run it twice; look for an execution with that tag, and submit the jobs again \
                 if there is none",
                count
            ),
        });
    }
    Ok(None)
}

/// An execution ARN as `ListTaskExecutions` gave it, checked.
fn found(arn: &str) -> Result<DataSyncExecutionArn, FerryError> {
    response_id(
        "ListTaskExecutions",
        "TaskExecutionArn",
        Some(arn),
        DataSyncExecutionArn::parse,
    )
}

/// Every execution of a DataSync task (`ferry tasks`), optionally only in some statuses:
/// `ListTaskExecutions` (every page), which gives each execution's ARN, status and task mode.
/// The statuses are filtered here: the API has no filter.
#[instrument(skip(client))]
pub(super) async fn list(
    client: &Client,
    task_arn: &DataSyncTaskArn,
    statuses: &[String],
) -> Result<Vec<ListedTask>, FerryError> {
    let mut listed = Vec::new();
    let mut pages = client
        .list_task_executions()
        .task_arn(task_arn.as_str())
        .max_results(LIST_PAGE_SIZE)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| {
            let class = e
                .as_service_error()
                .and_then(|e| e.is_invalid_request_exception().then_some(Class::NotFound));
            classify("ListTaskExecutions", e, class)
        })?;
        for entry in page.task_executions() {
            let status = entry.status().map_or("UNKNOWN", |s| s.as_str()).to_owned();
            if !statuses.is_empty() && !statuses.contains(&status) {
                continue;
            }
            listed.push(ListedTask {
                id: entry.task_execution_arn().unwrap_or_default().to_owned(),
                kind: entry.task_mode().map_or("BASIC", |m| m.as_str()).to_owned(),
                lifecycle: status,
                created_at: None,
                ended_at: None,
                counts: Counts::default(),
            });
        }
    }
    Ok(listed)
}

/// An execution that is, or will be, doing the work: queued or running. Not one that ended,
/// and not one being cancelled (`CANCELLING`): adopting that would report the job as run by an
/// execution that is being stopped (issue 17), so a new one is started instead.
fn is_live(status: &TaskExecutionStatus) -> bool {
    matches!(
        status,
        TaskExecutionStatus::Queued
            | TaskExecutionStatus::Launching
            | TaskExecutionStatus::Preparing
            | TaskExecutionStatus::Transferring
            | TaskExecutionStatus::Verifying
    )
}

async fn has_key(
    client: &Client,
    execution_arn: &str,
    key: &IdempotencyKey,
) -> Result<bool, FerryError> {
    let request = client
        .list_tags_for_resource()
        .resource_arn(execution_arn)
        .max_results(100)
        .send();
    let tags = send("ListTagsForResource", request, unmodeled).await?;
    Ok(tags
        .tags()
        .iter()
        .any(|t| t.key() == IDEMPOTENCY_TAG && t.value() == Some(key.as_str())))
}

/// An API enum from the job's string (validation checked it is one of the enum's values).
pub(super) fn api<'a, T: From<&'a str>>(value: &'a Option<String>) -> Option<T> {
    value.as_deref().map(T::from)
}

pub(super) fn options(o: &DataSyncOptions) -> Options {
    Options::builder()
        .set_verify_mode(api(&o.verify_mode))
        .set_overwrite_mode(api(&o.overwrite_mode))
        .set_atime(api(&o.atime))
        .set_mtime(api(&o.mtime))
        .set_uid(api(&o.uid))
        .set_gid(api(&o.gid))
        .set_preserve_deleted_files(api(&o.preserve_deleted_files))
        .set_preserve_devices(api(&o.preserve_devices))
        .set_posix_permissions(api(&o.posix_permissions))
        .set_bytes_per_second(o.bytes_per_second)
        .set_task_queueing(api(&o.task_queueing))
        .set_log_level(api(&o.log_level))
        .set_transfer_mode(api(&o.transfer_mode))
        .set_security_descriptor_copy_flags(api(&o.security_descriptor_copy_flags))
        .set_object_tags(api(&o.object_tags))
        .build()
}

/// One `SIMPLE_PATTERN` rule: DataSync takes at most one, its patterns separated by `|`.
pub(super) fn filter(patterns: &[String]) -> Option<Vec<FilterRule>> {
    (!patterns.is_empty()).then(|| {
        vec![
            FilterRule::builder()
                .filter_type(FilterType::SimplePattern)
                .value(patterns.join("|"))
                .build(),
        ]
    })
}

pub(super) fn manifest(m: &ManifestSpec, source: &S3Source) -> Result<ManifestConfig, FerryError> {
    let s3 = S3ManifestConfig::builder()
        .manifest_object_path(&m.object_path)
        .bucket_access_role_arn(source.bucket_access_role_arn.as_str())
        .s3_bucket_arn(source.bucket_arn.as_str())
        .set_manifest_object_version_id(m.object_version_id.clone())
        .build()
        .map_err(|e| build_error("manifest", e))?;
    Ok(ManifestConfig::builder()
        .action(ManifestAction::Transfer)
        .format(ManifestFormat::Csv)
        .source(SourceManifestConfig::builder().s3(s3).build())
        .build())
}

pub(super) fn task_report(
    r: &TaskReportSpec,
    destination: &S3Source,
) -> Result<TaskReportConfig, FerryError> {
    let s3 = ReportDestinationS3::builder()
        .set_subdirectory(r.subdirectory.clone())
        .s3_bucket_arn(destination.bucket_arn.as_str())
        .bucket_access_role_arn(destination.bucket_access_role_arn.as_str())
        .build()
        .map_err(|e| build_error("task_report", e))?;
    let level = |value: &Option<String>| {
        api(value).map(|level: ReportLevel| ReportOverride::builder().report_level(level).build())
    };
    Ok(TaskReportConfig::builder()
        .destination(ReportDestination::builder().s3(s3).build())
        .set_output_type(api(&r.output_type))
        .set_report_level(api(&r.report_level))
        .set_object_version_ids(api(&r.object_version_ids))
        .set_overrides(r.overrides.as_ref().map(|o| {
            ReportOverrides::builder()
                .set_transferred(level(&o.transferred))
                .set_verified(level(&o.verified))
                .set_deleted(level(&o.deleted))
                .set_skipped(level(&o.skipped))
                .build()
        }))
        .build())
}

#[instrument(skip(client))]
pub(super) async fn describe(
    client: &Client,
    execution_arn: &DataSyncExecutionArn,
) -> Result<TaskSnapshot, FerryError> {
    let request = client
        .describe_task_execution()
        .task_execution_arn(execution_arn.as_str())
        .send();
    let output = send("DescribeTaskExecution", request, |e| match e {
        DescribeError::InvalidRequestException(err) => {
            by_message(err.message(), is_not_found_message, Class::NotFound)
        }
        _ => None,
    })
    .await?;
    Ok(snapshot(&output, execution_arn))
}

fn is_not_found_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not found") || m.contains("does not exist") || m.contains("not exist")
}

fn snapshot(
    out: &DescribeTaskExecutionOutput,
    execution_arn: &DataSyncExecutionArn,
) -> TaskSnapshot {
    let enhanced = out.task_mode() == Some(&TaskMode::Enhanced);
    let result = out.result();
    // "For Enhanced mode tasks, the value is always 0" (TaskExecutionResultDetail, of
    // PrepareDuration, TransferDuration and VerifyDuration): those are not durations there and
    // are left out; TotalDuration still is one.
    let phase = |d: Option<i64>| d.filter(|_| !enhanced);
    let timings = Timings {
        created_at: out.start_time().copied().map(Timestamp),
        started_at: out.launch_time().copied().map(Timestamp),
        ended_at: out.end_time().copied().map(Timestamp),
        prepare_duration_ms: phase(result.and_then(|r| r.prepare_duration())),
        transfer_duration_ms: phase(result.and_then(|r| r.transfer_duration())),
        verify_duration_ms: phase(result.and_then(|r| r.verify_duration())),
        total_duration_ms: result.and_then(|r| r.total_duration()),
        ..Timings::default()
    };
    let failure = result
        .filter(|r| r.error_code().is_some() || r.error_detail().is_some())
        .map(|r| Failure {
            message: None,
            error_code: r.error_code().map(str::to_owned),
            error_detail: r.error_detail().map(str::to_owned),
        });
    TaskSnapshot {
        task: TaskHandle::Datasync {
            task_execution_arn: execution_arn.clone(),
        },
        lifecycle: out
            .status()
            .map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
        counts: counts(out, enhanced),
        timings,
        failure,
        report: report_location(out),
    }
}

/// The execution's counters. FilesListed, FilesPrepared and FilesFailed "apply only to
/// Enhanced mode tasks" (DescribeTaskExecution); a Basic task's zeros there are not counts, so
/// they are left out (FilesFailed still gives the failed total when present).
fn counts(out: &DescribeTaskExecutionOutput, enhanced: bool) -> Counts {
    let by_phase = out.files_failed().map(|f| PhaseCounts {
        prepare: f.prepare(),
        transfer: f.transfer(),
        verify: f.verify(),
        delete: f.delete(),
    });
    let files_failed = by_phase
        .as_ref()
        .map(|f| f.prepare + f.transfer + f.verify + f.delete);
    let listed = out.files_listed().filter(|_| enhanced);
    Counts {
        files_failed_by_phase: by_phase.filter(|_| enhanced),
        files_listed_at_source: listed.map(|l| l.at_source()),
        files_listed_for_delete: listed.map(|l| l.at_destination_for_delete()),
        files_prepared: Some(out.files_prepared()).filter(|_| enhanced),
        files_transferred: Some(out.files_transferred()),
        files_skipped: Some(out.files_skipped()),
        files_verified: Some(out.files_verified()),
        files_deleted: Some(out.files_deleted()),
        files_failed,
        bytes_written: Some(out.bytes_written()),
        bytes_transferred: Some(out.bytes_transferred()),
        bytes_compressed: Some(out.bytes_compressed()),
        estimated_files_to_transfer: Some(out.estimated_files_to_transfer()),
        estimated_bytes_to_transfer: Some(out.estimated_bytes_to_transfer()),
        estimated_files_to_delete: Some(out.estimated_files_to_delete()),
        ..Counts::default()
    }
}

/// Where the task report goes, and what DataSync says of writing it (`ReportResult`).
fn report_location(out: &DescribeTaskExecutionOutput) -> Option<ReportLocation> {
    let s3 = out.task_report_config()?.destination()?.s3()?;
    let result = out.report_result();
    Some(ReportLocation {
        path: Some(report_url(s3.s3_bucket_arn(), s3.subdirectory())),
        status: result
            .and_then(|r| r.status())
            .map(|s| s.as_str().to_owned()),
        error_code: result.and_then(|r| r.error_code()).map(str::to_owned),
        error_detail: result.and_then(|r| r.error_detail()).map(str::to_owned),
    })
}

/// `s3://bucket/subdirectory` from a bucket ARN (`arn:aws:s3:::bucket`), or
/// `s3://<access point ARN>/subdirectory` for an access point (S3 takes the ARN as a request's
/// bucket). Another ARN is kept whole, so the report's location says what DataSync was given
/// and `notify` explains why it could not read it.
fn report_url(bucket_arn: &str, subdirectory: Option<&str>) -> String {
    let sub = subdirectory.unwrap_or("").trim_start_matches('/');
    match S3BucketArn::parse(bucket_arn)
        .ok()
        .and_then(|arn| arn.request_bucket())
    {
        Some(bucket) => format!("s3://{bucket}/{sub}"),
        None => format!("s3://{bucket_arn}/{sub}"),
    }
}

/// Cancels the execution. DataSync answers `InvalidRequestException` for an execution that is
/// no longer running; Ferry then describes it, and an ended execution is `AlreadyEnded`.
#[instrument(skip(client))]
pub(super) async fn cancel(
    client: &Client,
    execution_arn: &DataSyncExecutionArn,
) -> Result<CancelOutcome, FerryError> {
    const OP: &str = "CancelTaskExecution";
    match client
        .cancel_task_execution()
        .task_execution_arn(execution_arn.as_str())
        .send()
        .await
    {
        Ok(_) => {
            info!("DataSync execution cancellation requested");
            Ok(CancelOutcome::Requested)
        }
        Err(e)
            if matches!(
                e.as_service_error(),
                Some(CancelError::InvalidRequestException(_))
            ) =>
        {
            let current = describe(client, execution_arn).await?;
            if Phase::from_datasync(&current.lifecycle, false).is_terminal() {
                info!(status = %current.lifecycle, "DataSync execution had already ended");
                Ok(CancelOutcome::AlreadyEnded)
            } else if current.lifecycle == TaskExecutionStatus::Cancelling.as_str() {
                info!("DataSync execution was already being cancelled");
                Ok(CancelOutcome::Requested)
            } else {
                Err(classify(OP, e, Some(Class::Rejected)))
            }
        }
        Err(e) => Err(classify(OP, e, None)),
    }
}

#[cfg(test)]
mod tests;
