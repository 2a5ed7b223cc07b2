//! DataSync task executions: `StartTaskExecution`, `DescribeTaskExecution`,
//! `CancelTaskExecution`, with `ListTaskExecutions` and `ListTagsForResource` for idempotency.

use aws_sdk_datasync::Client;
use aws_sdk_datasync::operation::cancel_task_execution::CancelTaskExecutionError as CancelError;
use aws_sdk_datasync::operation::describe_task_execution::{
    DescribeTaskExecutionError as DescribeError, DescribeTaskExecutionOutput,
};
use aws_sdk_datasync::operation::start_task_execution::StartTaskExecutionError as StartError;
use aws_sdk_datasync::types::{
    Atime, FilterRule, FilterType, Gid, LogLevel, ManifestAction, ManifestConfig, ManifestFormat,
    Mtime, ObjectTags, ObjectVersionIds, Options, OverwriteMode, PosixPermissions,
    PreserveDeletedFiles, PreserveDevices, ReportDestination, ReportDestinationS3, ReportLevel,
    ReportOutputType, ReportOverride, ReportOverrides, S3ManifestConfig,
    SmbSecurityDescriptorCopyFlags, SourceManifestConfig, TagListEntry, TaskExecutionStatus,
    TaskQueueing, TaskReportConfig, TransferMode, Uid, VerifyMode,
};
use tracing::{info, instrument, warn};

use super::{Class, build_error, classify};
use crate::error::{AwsError, FerryError};
use crate::job::{DataSyncOptions, ManifestSpec, TaskReportSpec, ValidJob};
use crate::ports::CancelOutcome;
use crate::status::{
    Counts, Failure, Phase, ReportLocation, TaskHandle, TaskSnapshot, Timestamp, Timings,
};
use crate::token::{IDEMPOTENCY_TAG, IdempotencyKey};

/// `ListTaskExecutions` pages of at most 100 (API model); Ferry looks at no more than this many
/// pages for an execution it may already have started.
const LIST_PAGE_SIZE: i32 = 100;
const MAX_LIST_PAGES: usize = 10;

/// Starts an execution, unless one tagged with `key` is already active: DataSync has no
/// idempotency token, so a retried start looks for the execution the first attempt started.
#[instrument(skip(client, job), fields(job = %job.name))]
pub(super) async fn start(
    client: &Client,
    job: &ValidJob,
    key: &IdempotencyKey,
) -> Result<TaskHandle, FerryError> {
    const OP: &str = "StartTaskExecution";
    let task_arn = job
        .task_arn
        .clone()
        .ok_or_else(|| FerryError::invalid("job.task_arn", "is required"))?;

    if let Some(existing) = find_started(client, &task_arn, key).await? {
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

    let output = client
        .start_task_execution()
        .task_arn(&task_arn)
        .set_override_options(job.options.as_ref().map(options))
        .set_includes(filter(&job.includes))
        .set_excludes(filter(&job.excludes))
        .set_manifest_config(job.manifest.as_ref().map(manifest).transpose()?)
        .set_task_report_config(job.task_report.as_ref().map(task_report).transpose()?)
        .set_tags(Some(tags))
        .send()
        .await
        .map_err(|e| {
            let class = match e.as_service_error() {
                Some(StartError::InvalidRequestException(err)) => {
                    if err.message().is_some_and(is_conflict_message) {
                        Some(Class::Conflict)
                    } else {
                        Some(Class::Rejected)
                    }
                }
                _ => None,
            };
            classify(OP, e, class)
        })?;
    let task_execution_arn = output
        .task_execution_arn()
        .ok_or_else(|| FerryError::AwsService {
            source: AwsError::malformed(OP, "no TaskExecutionArn"),
        })?
        .to_owned();
    info!(task_execution_arn = %task_execution_arn, "DataSync execution started");
    Ok(TaskHandle::Datasync { task_execution_arn })
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

/// The ARN of an active execution of `task_arn` tagged with `key`, if there is one.
async fn find_started(
    client: &Client,
    task_arn: &str,
    key: &IdempotencyKey,
) -> Result<Option<String>, FerryError> {
    let mut next_token = None;
    for _ in 0..MAX_LIST_PAGES {
        let page = client
            .list_task_executions()
            .task_arn(task_arn)
            .max_results(LIST_PAGE_SIZE)
            .set_next_token(next_token)
            .send()
            .await
            .map_err(|e| {
                let class = e
                    .as_service_error()
                    .and_then(|se| se.is_invalid_request_exception().then_some(Class::NotFound));
                classify("ListTaskExecutions", e, class)
            })?;
        for entry in page.task_executions() {
            let active = entry.status().is_some_and(|s| {
                !matches!(s, TaskExecutionStatus::Success | TaskExecutionStatus::Error)
            });
            if let (true, Some(arn)) = (active, entry.task_execution_arn())
                && has_key(client, arn, key).await?
            {
                return Ok(Some(arn.to_owned()));
            }
        }
        match page.next_token() {
            Some(token) => next_token = Some(token.to_owned()),
            None => return Ok(None),
        }
    }
    warn!(
        pages = MAX_LIST_PAGES,
        "stopped looking for an earlier execution"
    );
    Ok(None)
}

async fn has_key(
    client: &Client,
    execution_arn: &str,
    key: &IdempotencyKey,
) -> Result<bool, FerryError> {
    let tags = client
        .list_tags_for_resource()
        .resource_arn(execution_arn)
        .max_results(100)
        .send()
        .await
        .map_err(|e| classify("ListTagsForResource", e, None))?;
    Ok(tags
        .tags()
        .iter()
        .any(|t| t.key() == IDEMPOTENCY_TAG && t.value() == Some(key.as_str())))
}

fn options(o: &DataSyncOptions) -> Options {
    Options::builder()
        .set_verify_mode(o.verify_mode.as_deref().map(VerifyMode::from))
        .set_overwrite_mode(o.overwrite_mode.as_deref().map(OverwriteMode::from))
        .set_atime(o.atime.as_deref().map(Atime::from))
        .set_mtime(o.mtime.as_deref().map(Mtime::from))
        .set_uid(o.uid.as_deref().map(Uid::from))
        .set_gid(o.gid.as_deref().map(Gid::from))
        .set_preserve_deleted_files(
            o.preserve_deleted_files
                .as_deref()
                .map(PreserveDeletedFiles::from),
        )
        .set_preserve_devices(o.preserve_devices.as_deref().map(PreserveDevices::from))
        .set_posix_permissions(o.posix_permissions.as_deref().map(PosixPermissions::from))
        .set_bytes_per_second(o.bytes_per_second)
        .set_task_queueing(o.task_queueing.as_deref().map(TaskQueueing::from))
        .set_log_level(o.log_level.as_deref().map(LogLevel::from))
        .set_transfer_mode(o.transfer_mode.as_deref().map(TransferMode::from))
        .set_security_descriptor_copy_flags(
            o.security_descriptor_copy_flags
                .as_deref()
                .map(SmbSecurityDescriptorCopyFlags::from),
        )
        .set_object_tags(o.object_tags.as_deref().map(ObjectTags::from))
        .build()
}

/// One `SIMPLE_PATTERN` rule: DataSync takes at most one, its patterns separated by `|`.
fn filter(patterns: &[String]) -> Option<Vec<FilterRule>> {
    (!patterns.is_empty()).then(|| {
        vec![
            FilterRule::builder()
                .filter_type(FilterType::SimplePattern)
                .value(patterns.join("|"))
                .build(),
        ]
    })
}

fn manifest(m: &ManifestSpec) -> Result<ManifestConfig, FerryError> {
    let s3 = S3ManifestConfig::builder()
        .manifest_object_path(&m.object_path)
        .bucket_access_role_arn(&m.bucket_access_role_arn)
        .s3_bucket_arn(&m.bucket_arn)
        .set_manifest_object_version_id(m.object_version_id.clone())
        .build()
        .map_err(|e| build_error("manifest", e))?;
    Ok(ManifestConfig::builder()
        .action(ManifestAction::Transfer)
        .format(ManifestFormat::Csv)
        .source(SourceManifestConfig::builder().s3(s3).build())
        .build())
}

fn task_report(r: &TaskReportSpec) -> Result<TaskReportConfig, FerryError> {
    let s3 = ReportDestinationS3::builder()
        .set_subdirectory(r.subdirectory.clone())
        .s3_bucket_arn(&r.bucket_arn)
        .bucket_access_role_arn(&r.bucket_access_role_arn)
        .build()
        .map_err(|e| build_error("task_report", e))?;
    let level = |value: &Option<String>| {
        value.as_deref().map(|v| {
            ReportOverride::builder()
                .report_level(ReportLevel::from(v))
                .build()
        })
    };
    Ok(TaskReportConfig::builder()
        .destination(ReportDestination::builder().s3(s3).build())
        .set_output_type(r.output_type.as_deref().map(ReportOutputType::from))
        .set_report_level(r.report_level.as_deref().map(ReportLevel::from))
        .set_object_version_ids(r.object_version_ids.as_deref().map(ObjectVersionIds::from))
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
    execution_arn: &str,
) -> Result<TaskSnapshot, FerryError> {
    let output = client
        .describe_task_execution()
        .task_execution_arn(execution_arn)
        .send()
        .await
        .map_err(|e| {
            let class = match e.as_service_error() {
                Some(DescribeError::InvalidRequestException(err)) => {
                    if err.message().is_some_and(is_not_found_message) {
                        Some(Class::NotFound)
                    } else {
                        Some(Class::Rejected)
                    }
                }
                _ => None,
            };
            classify("DescribeTaskExecution", e, class)
        })?;
    Ok(snapshot(&output, execution_arn))
}

fn is_not_found_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("not found") || m.contains("does not exist") || m.contains("not exist")
}

fn snapshot(out: &DescribeTaskExecutionOutput, execution_arn: &str) -> TaskSnapshot {
    let files_failed = out
        .files_failed()
        .map(|f| f.prepare() + f.transfer() + f.verify() + f.delete());
    let counts = Counts {
        files_prepared: Some(out.files_prepared()),
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
    };
    let result = out.result();
    let timings = Timings {
        created_at: out.start_time().copied().map(Timestamp),
        started_at: out.launch_time().copied().map(Timestamp),
        ended_at: out.end_time().copied().map(Timestamp),
        prepare_duration_ms: result.and_then(|r| r.prepare_duration()),
        transfer_duration_ms: result.and_then(|r| r.transfer_duration()),
        verify_duration_ms: result.and_then(|r| r.verify_duration()),
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
    let report = out
        .task_report_config()
        .and_then(|c| c.destination())
        .and_then(|d| d.s3())
        .map(|s3| ReportLocation {
            path: Some(report_url(s3.s3_bucket_arn(), s3.subdirectory())),
            status: out
                .report_result()
                .and_then(|r| r.status())
                .map(|s| s.as_str().to_owned()),
            error_code: out
                .report_result()
                .and_then(|r| r.error_code())
                .map(str::to_owned),
            error_detail: out
                .report_result()
                .and_then(|r| r.error_detail())
                .map(str::to_owned),
        });
    TaskSnapshot {
        task: TaskHandle::Datasync {
            task_execution_arn: execution_arn.to_owned(),
        },
        lifecycle: out
            .status()
            .map_or_else(|| "UNKNOWN".to_owned(), |s| s.as_str().to_owned()),
        counts,
        timings,
        failure,
        report,
    }
}

/// `s3://bucket/subdirectory` from a bucket ARN (`arn:aws:s3:::bucket`).
fn report_url(bucket_arn: &str, subdirectory: Option<&str>) -> String {
    let bucket = bucket_arn.rsplit(':').next().unwrap_or(bucket_arn);
    let sub = subdirectory.unwrap_or("").trim_start_matches('/');
    format!("s3://{bucket}/{sub}")
}

/// Cancels the execution. DataSync answers `InvalidRequestException` for an execution that is
/// no longer running; Ferry then describes it, and an ended execution is `AlreadyEnded`.
#[instrument(skip(client))]
pub(super) async fn cancel(
    client: &Client,
    execution_arn: &str,
) -> Result<CancelOutcome, FerryError> {
    const OP: &str = "CancelTaskExecution";
    match client
        .cancel_task_execution()
        .task_execution_arn(execution_arn)
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
