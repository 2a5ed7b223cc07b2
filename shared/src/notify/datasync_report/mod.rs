//! DataSync task reports: where they are and how to read their failures.
//!
//! When a task execution is started with a `TaskReportConfig`, DataSync writes JSON task
//! reports to the configured S3 bucket and `Subdirectory`. A `SUMMARY_ONLY` report is a summary
//! and nothing else; a `STANDARD` report adds *detailed* reports that list each file, object or
//! directory DataSync attempted to transfer, skipped, verified or deleted, with either errors
//! only or successes and errors (`ReportLevel`, per kind through `Overrides`; API reference,
//! "TaskReportConfig", <https://docs.aws.amazon.com/datasync/latest/userguide/API_TaskReportConfig.html>).
//! This module finds an execution's detailed reports; [`read_detailed_report`] reads their
//! failures into a [`super::digest::DigestBuilder`].
//!
//! # What is verified, and where
//!
//! * **Layout.** AWS DataSync User Guide, "Viewing your DataSync task reports"
//!   (<https://docs.aws.amazon.com/datasync/latest/userguide/task-report-viewing.html>):
//!   summary-only reports are under `{reports-prefix}/Summary-Reports/{task-id-folder}/{task-execution-id-folder}`
//!   and standard reports under `{reports-prefix}/Detailed-Reports/{task-id-folder}/{task-execution-id-folder}`.
//!   That the folders are the bare ids `task-…` and `exec-…` (the last two segments of the
//!   execution ARN) is not spelled out there; it is what AWS's own solutions rely on:
//!   `aws-solutions/prebid-server-deployment-on-aws`,
//!   `source/infrastructure/aws_lambda_layers/datasync_s3_layer/python/datasync_reports/reports.py`
//!   (lists `{prefix}/Detailed-Reports/{task_id}/{execution_id}/` with both ids split from the
//!   ARN), and `aws-solutions/digital-evidence-archive-on-aws`,
//!   `source/dea-app/src/models/validation/joi-common.ts` (pattern
//!   `Detailed-Reports/task-[^/]+/exec-[^/]+/exec-[^/]+.files-verified-[^/]+`).
//! * **File names.** Not in the user guide. `reports.py` above names the files
//!   `exec-0a12a34ab112233ab.files-verified-v1-00001-0a123abc12d3b0e4f.json` and
//!   `exec-0a12a34ab112233ab.files-transferred-v1-00001-0a123abc12d3b0e4f.json`; the
//!   evidence-archive pattern above agrees (`exec-….files-verified-…`).
//!   The numbered part is how a report is split: the user guide's "Monitoring your data
//!   transfers with task reports" (<https://docs.aws.amazon.com/datasync/latest/userguide/task-reports.html>,
//!   "Limitations") says an individual task report can't exceed 5 MB and a large one "might be
//!   split into multiple reports".
//! * **Entries.** Same page, "Example task reports": a detailed report is one JSON object,
//!   `{"TaskExecutionId": "exec-…", "Transferred": [ {…}, … ]}`. Each entry has `RelativePath`
//!   (with a leading `/` in Basic mode, without in Enhanced mode), the source metadata
//!   (`SrcMetadata` in Basic mode, `SourceMetadata` in Enhanced mode), `Overwrite`,
//!   `TransferTimestamp`, `TransferType` and `TransferStatus` (`SUCCESS` or `FAILED`). A failed
//!   entry carries, in Enhanced mode, `ErrorCode` (e.g. `AccessDenied`) and `ErrorDetail` (a
//!   sentence); in Basic mode, `FailureReason` (e.g. `S3 Get Object Failed`) and a numeric
//!   `FailureCode` (e.g. `40974`). Verified entries, as the evidence-archive solution reads them
//!   (`source/dea-app/src/storage/datasync-event-handler.ts`), have `RelativePath`,
//!   `SrcMetadata`, `SrcChecksum`, `DstMetadata`, `DstChecksum`, `VerifyTimestamp` and
//!   `VerifyStatus`, under a `Verified` list.
//!
//! # What is assumed
//!
//! * That skipped and deleted reports are named `….files-skipped-…json` and
//!   `….files-deleted-…json` and list entries under `Skipped` and `Deleted` with a `…Status`
//!   field: the guide only says each says "whether an item was skipped (deleted) successfully".
//!   So any `exec-….files-<kind>-….json` is read, any top-level list in it is taken as entries,
//!   and any top-level entry field named `Status` or ending in `Status` is a status.
//! * That nothing but `files-` reports lives under the detailed prefix. The summary is under
//!   `Summary-Reports/` (user guide, above) and named `exec-….summary-v1.json` (a name seen only
//!   in third-party scripts); were it listed here, it would be passed over as not a `files-`
//!   report.
//! * That DataSync joins `Subdirectory` and `Detailed-Reports` with one `/` whether or not the
//!   subdirectory ends with one.
//! * Which status values mean what, beyond `SUCCESS` and `FAILED`: see [`read_detailed_report`].
//!
//! A file listed as failed in two reports (say, transferred and verified) counts once per
//! report: telling the two apart would need every failed path kept in memory.

use crate::ids::{DataSyncExecutionArn, S3Url};

mod reader;

pub use reader::read_detailed_report;

/// The folder of standard (detailed) reports under the report subdirectory.
pub const DETAILED_REPORTS: &str = "Detailed-Reports";
/// The folder of summary reports under the report subdirectory.
pub const SUMMARY_REPORTS: &str = "Summary-Reports";

/// Where an execution's detailed reports live: the report bucket, under
/// `{subdirectory}/Detailed-Reports/{task-id}/{exec-id}/`, or without the subdirectory when it is
/// empty. `report_location` is `s3://bucket/subdirectory` (the subdirectory may be empty, and
/// may end with `/` or not).
pub fn detailed_report_prefix(report_location: &S3Url, execution: &DataSyncExecutionArn) -> S3Url {
    let (task_id, execution_id) = execution.ids();
    let subdirectory = report_location.key().trim_matches('/');
    let prefix = if subdirectory.is_empty() {
        format!("{DETAILED_REPORTS}/{task_id}/{execution_id}/")
    } else {
        format!("{subdirectory}/{DETAILED_REPORTS}/{task_id}/{execution_id}/")
    };
    S3Url::new(report_location.bucket(), &prefix)
}

fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// True when `key` (an object under [`detailed_report_prefix`]) is a detailed report file that can
/// hold failures: its name is `exec-….files-<kind>….json` (`transferred`, `verified`, and, by
/// assumption, `skipped` and `deleted`; any other kind too, as each lists per-item results). The
/// summary, folder markers and anything else are not.
pub fn is_detailed_report_key(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    let Some((execution, report)) = name.split_once('.') else {
        return false;
    };
    let Some(kind) = report.strip_prefix("files-") else {
        return false;
    };
    let kind = kind.split(['-', '.']).next().unwrap_or("");
    let json = report
        .len()
        .checked_sub(5)
        .and_then(|start| report.get(start..))
        .is_some_and(|ext| ext.eq_ignore_ascii_case(".json"));
    is_id(execution, "exec-")
        && !kind.is_empty()
        && kind.bytes().all(|b| b.is_ascii_alphabetic())
        && json
}

#[cfg(test)]
mod tests;
