//! `notify`'s pure logic and its reading of failure reports.
//!
//! [`report`] builds the completion report from what the state machine hands over, [`message`]
//! turns it into SNS messages within SNS's limits, [`digest`] reads FSx's CSV failure reports
//! and [`datasync_report`] DataSync's JSON task reports. [`attach_digest`] finds and reads the
//! report of a task that failed files. The handler is [`crate::handlers::notify`].

pub mod datasync_report;
pub mod digest;
pub mod message;
pub mod report;

use tracing::warn;

use crate::config::NotifyConfig;
use crate::domain::job::JobKind;
use crate::domain::status::{REPORT_WAIT_SECONDS, TaskHandle, TaskStatus};
use crate::domain::validate::MAX_REPORT_PATH_CHARS;
use crate::error::FerryError;
use crate::ids::{DataSyncExecutionArn, FsxTaskId, S3Url};
use crate::ports::ReadReports;
use digest::{Digest, DigestBuilder};
use report::{JobInfo, Outcome, Report};

/// DataSync detailed report files read at most per execution.
pub const MAX_DATASYNC_REPORT_FILES: usize = 50;

/// Why a report carries no failure digest where one was expected; said in the report.
#[derive(Debug, thiserror::Error)]
pub enum DigestError {
    #[error("the report path {0:?} is not an s3:// URL")]
    NotS3Url(String),
    #[error("could not read {url}: {source}")]
    Read {
        url: S3Url,
        #[source]
        source: FerryError,
    },
    #[error("no failure report found (looked for {})", .0.join(", "))]
    NoFsxReport(Vec<String>),
    #[error("no detailed task report found under {0} (a SUMMARY_ONLY report lists no files)")]
    NoDataSyncReport(S3Url),
}

/// Reads the failure report of a task that failed files into the report, or says in the
/// report why it could not. A missing or unreadable report never fails the notification.
pub async fn attach_digest<P: ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    job: &JobInfo,
    status: Option<&TaskStatus>,
    report: &mut Report,
) {
    let Some(status) = status else { return };
    if let Some(note) = report_result_note(status) {
        warn!(job = %job.name, note = %note, "no failure digest");
        report.digest_note = Some(note);
        return;
    }
    let failed = status
        .counts
        .failed
        .or(status.counts.files_failed)
        .unwrap_or(0);
    if failed == 0 && report.outcome != Outcome::Failed {
        return;
    }
    let Some(location) = report.report_location.clone() else {
        return;
    };
    let result = match S3Url::parse_location(&location, MAX_REPORT_PATH_CHARS) {
        Err(_) => Err(DigestError::NotS3Url(location)),
        Ok(url) => read_failures(ports, config, job.kind.known(), &url, &status.task).await,
    };
    match result {
        Ok(digest) => report.digest = Some(digest),
        Err(note) => {
            warn!(job = %job.name, note = %note, "no failure digest");
            report.digest_note = Some(note.to_string());
        }
    }
}

/// Reads the failure report a task wrote under `location` (its `Report.Path`, or DataSync's
/// report bucket and subdirectory): at most `config.max_report_bytes` of it, keeping the first
/// `config.max_paths` failed paths. What `notify` digests, and what `ferry retry --failed-only`
/// reruns.
pub async fn read_failures<P: ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    kind: Option<JobKind>,
    location: &S3Url,
    task: &TaskHandle,
) -> Result<Digest, DigestError> {
    match task {
        TaskHandle::Fsx { task_id, .. } => fsx_digest(ports, config, kind, location, task_id).await,
        TaskHandle::Datasync { task_execution_arn } => {
            datasync_digest(ports, config, location, task_execution_arn).await
        }
    }
}

/// What DataSync's `ReportResult` says when its task report is not there to read: it could not
/// write it (`ERROR`, with its code and detail), or it was still writing it when Ferry stopped
/// waiting ([`REPORT_WAIT_SECONDS`] after the end).
fn report_result_note(status: &TaskStatus) -> Option<String> {
    let r = status.report.as_ref()?;
    match r.status.as_deref()? {
        s if s.eq_ignore_ascii_case("ERROR") => {
            let detail: Vec<&str> = [&r.error_code, &r.error_detail]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            Some(if detail.is_empty() {
                "DataSync could not write the task report (ReportResult ERROR)".to_owned()
            } else {
                format!(
                    "DataSync could not write the task report: {}",
                    detail.join(": ")
                )
            })
        }
        s if s.eq_ignore_ascii_case("PENDING") => Some(format!(
            "DataSync was still writing the task report {} after the execution ended; it was not read",
            message::duration(REPORT_WAIT_SECONDS)
        )),
        _ => None,
    }
}

/// FSx writes `{Report.Path}/task-{id}/{file}` (API reference, `CompletionReport.Format`). Task
/// ids already start with `task-`, so whether the folder is `task-{task id}` or the task id
/// itself is ambiguous in the documentation: both are tried, the task id first, each with the
/// file names of [`digest::fsx_report_files`].
async fn fsx_digest<P: ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    kind: Option<JobKind>,
    location: &S3Url,
    task_id: &FsxTaskId,
) -> Result<Digest, DigestError> {
    let bucket = location.bucket();
    let prefix = location.key().trim_end_matches('/');
    let mut tried = Vec::new();
    for dir in [task_id.to_string(), format!("task-{task_id}")] {
        for file in digest::fsx_report_files(kind) {
            let key = if prefix.is_empty() {
                format!("{dir}/{file}")
            } else {
                format!("{prefix}/{dir}/{file}")
            };
            let url = S3Url::new(bucket, &key);
            match ports.get_object(&url, config.max_report_bytes).await {
                Ok(Some(fetched)) => {
                    let mut builder = DigestBuilder::new(config.max_paths);
                    builder.source(url.to_string());
                    digest::read_fsx_report(&fetched.body, fetched.cut, &mut builder);
                    return Ok(builder.finish());
                }
                Ok(None) => tried.push(url.to_string()),
                Err(source) => return Err(DigestError::Read { url, source }),
            }
        }
    }
    Err(DigestError::NoFsxReport(tried))
}

/// DataSync writes detailed reports under the configured subdirectory; each file that can hold
/// errors is read (at most [`MAX_DATASYNC_REPORT_FILES`]).
async fn datasync_digest<P: ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    location: &S3Url,
    execution: &DataSyncExecutionArn,
) -> Result<Digest, DigestError> {
    let prefix = datasync_report::detailed_report_prefix(location, execution);
    let keys = ports
        .list_keys(&prefix, 1000)
        .await
        .map_err(|source| DigestError::Read {
            url: prefix.clone(),
            source,
        })?;
    let keys: Vec<&String> = keys
        .iter()
        .filter(|k| datasync_report::is_detailed_report_key(k))
        .collect();
    if keys.is_empty() {
        return Err(DigestError::NoDataSyncReport(prefix));
    }
    let mut builder = DigestBuilder::new(config.max_paths);
    let mut budget = config.max_report_bytes;
    for key in keys.iter().take(MAX_DATASYNC_REPORT_FILES) {
        if budget == 0 {
            builder.truncated();
            break;
        }
        let url = S3Url::new(prefix.bucket(), key);
        match ports.get_object(&url, budget).await {
            Ok(Some(fetched)) => {
                budget = budget.saturating_sub(fetched.body.len());
                builder.source(url.to_string());
                datasync_report::read_detailed_report(&fetched.body, fetched.cut, &mut builder);
            }
            Ok(None) => {}
            Err(source) => return Err(DigestError::Read { url, source }),
        }
    }
    if keys.len() > MAX_DATASYNC_REPORT_FILES {
        builder.truncated();
    }
    Ok(builder.finish())
}
