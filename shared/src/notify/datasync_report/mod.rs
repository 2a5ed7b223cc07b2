//! DataSync task reports: where they are and how to read their failures.
//!
//! When a task execution is started with a `TaskReportConfig`, DataSync writes JSON task
//! reports to the configured S3 bucket and `Subdirectory`. A `SUMMARY_ONLY` report is a summary
//! and nothing else; a `STANDARD` report adds *detailed* reports that list each file, object or
//! directory DataSync attempted to transfer, skipped, verified or deleted, with either errors
//! only or successes and errors (`ReportLevel`, per kind through `Overrides`; API reference,
//! "TaskReportConfig", <https://docs.aws.amazon.com/datasync/latest/userguide/API_TaskReportConfig.html>).
//! This module finds an execution's detailed reports and reads their failures into a
//! [`DigestBuilder`].
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

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::notify::digest::DigestBuilder;

/// The folder of standard (detailed) reports under the report subdirectory.
pub const DETAILED_REPORTS: &str = "Detailed-Reports";
/// The folder of summary reports under the report subdirectory.
pub const SUMMARY_REPORTS: &str = "Summary-Reports";

/// Error codes longer than this (in characters) are cut: they are group keys, not prose.
const MAX_ERROR_CHARS: usize = 200;

/// The S3 prefix under which an execution's detailed reports live:
/// `{subdirectory}/Detailed-Reports/{task-id}/{exec-id}/`, or without the subdirectory when it is
/// empty. `report_location` is `s3://bucket/subdirectory` (the subdirectory may be empty, and
/// may end with `/` or not); `execution_arn` is
/// `arn:partition:datasync:region:account:task/task-…/execution/exec-…`. `None` when either
/// cannot be read.
pub fn detailed_report_prefix(
    report_location: &str,
    execution_arn: &str,
) -> Option<(String, String)> {
    let rest = report_location.trim().strip_prefix("s3://")?;
    let (bucket, subdirectory) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() || bucket.contains(char::is_whitespace) {
        return None;
    }
    let (task_id, execution_id) = execution_ids(execution_arn)?;
    let subdirectory = subdirectory.trim_matches('/');
    let prefix = if subdirectory.is_empty() {
        format!("{DETAILED_REPORTS}/{task_id}/{execution_id}/")
    } else {
        format!("{subdirectory}/{DETAILED_REPORTS}/{task_id}/{execution_id}/")
    };
    Some((bucket.to_owned(), prefix))
}

/// The task id and execution id (`task-…`, `exec-…`) of a DataSync execution ARN. The API's
/// pattern is `^arn:(aws|aws-cn|aws-us-gov|aws-iso|aws-iso-b):datasync:[a-z\-0-9]*:[0-9]{12}:task/task-[0-9a-f]{17}/execution/exec-[0-9a-f]{17}$`
/// (DescribeTaskExecution); this accepts any partition and any alphanumeric ids.
pub fn execution_ids(execution_arn: &str) -> Option<(&str, &str)> {
    let mut parts = execution_arn.trim().splitn(6, ':');
    let (arn, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    if arn != "arn"
        || partition.is_empty()
        || service != "datasync"
        || !region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || account.len() != 12
        || !account.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut segments = resource.split('/');
    match (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) {
        (Some("task"), Some(task), Some("execution"), Some(execution), None)
            if is_id(task, "task-") && is_id(execution, "exec-") =>
        {
            Some((task, execution))
        }
        _ => None,
    }
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

/// Reads one detailed report file into `builder`.
///
/// The file is a JSON object whose lists (`Transferred`, `Verified`, `Skipped`, `Deleted`, …) hold
/// one entry per item; the entries are read one at a time, so a file of any length costs one
/// entry's memory. A top-level list of entries, and several documents one after the other (JSON
/// Lines), are read too. For each entry:
///
/// * no `RelativePath` string, or not an object: [`DigestBuilder::unreadable`];
/// * a status (`TransferStatus`, `VerifyStatus`, any field named `Status` or ending in `Status`)
///   of `FAILED` (or `FAILURE`, `FAIL`, `ERROR`, `ERRORED`), or no success status but an
///   `ErrorCode`, `ErrorDetail`, `FailureCode` or `FailureReason`: [`DigestBuilder::failed`],
///   with the error `ErrorCode`, else `FailureReason (FailureCode)`, else the failing status
///   (`TransferStatus=FAILED`), else `ErrorDetail` (each cut to 200 characters);
/// * a status of `SUCCESS` (or `SUCCEEDED`, `SUCCESSFUL`), or another status with no error field:
///   not a failure, skipped;
/// * neither a status nor an error field: unreadable.
///
/// `cut` says the body was read only up to a byte limit: the report is marked truncated, and the
/// entries before the cut count while the one it falls in is dropped. A body that is not JSON,
/// or JSON that stops before the end of a file that was not cut, counts one unreadable (the
/// entries before the fault still count). Never panics.
pub fn read_detailed_report(body: &[u8], cut: bool, builder: &mut DigestBuilder) {
    if cut {
        builder.truncated();
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut documents = 0usize;
    loop {
        // `end` only skips whitespace and looks: it fails while there is another document.
        if de.end().is_ok() {
            if documents == 0 && !cut {
                builder.unreadable();
            }
            return;
        }
        match (Document {
            builder: &mut *builder,
        })
        .deserialize(&mut de)
        {
            Ok(()) => documents += 1,
            Err(e) => {
                if !(cut && e.is_eof()) {
                    builder.unreadable();
                }
                return;
            }
        }
    }
}

/// A whole report document: an object of entry lists, a list of entries, or one entry.
struct Document<'a> {
    builder: &'a mut DigestBuilder,
}

impl<'de> DeserializeSeed<'de> for Document<'_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Document<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a DataSync task report (a JSON object of entry lists)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let builder = self.builder;
        // The document's own scalar fields, in case the document is a single entry.
        let mut scalars = Map::new();
        let mut lists = 0usize;
        while let Some(key) = map.next_key::<String>()? {
            match map.next_value_seed(Field {
                builder: &mut *builder,
            })? {
                FieldValue::List => lists += 1,
                FieldValue::Scalar(value) => {
                    scalars.insert(key, value);
                }
                FieldValue::Object => {}
            }
        }
        if lists == 0 && scalars.contains_key("RelativePath") {
            read_entry(&Value::Object(scalars), builder);
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        read_entries(seq, self.builder)
    }
}

/// What a top-level field held.
enum FieldValue {
    /// A list, read as entries.
    List,
    /// A string, number, boolean or null.
    Scalar(Value),
    /// An object (skipped).
    Object,
}

/// One top-level field of a document: lists are read as entries as they are parsed.
struct Field<'a> {
    builder: &'a mut DigestBuilder,
}

impl<'de> DeserializeSeed<'de> for Field<'_> {
    type Value = FieldValue;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<FieldValue, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Field<'_> {
    type Value = FieldValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::from(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::from(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::String(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::String(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<FieldValue, E> {
        Ok(FieldValue::Scalar(Value::Null))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldValue, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(FieldValue::Object)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<FieldValue, A::Error> {
        read_entries(seq, self.builder)?;
        Ok(FieldValue::List)
    }
}

/// Reads a list of entries, one at a time.
fn read_entries<'de, A: SeqAccess<'de>>(
    mut seq: A,
    builder: &mut DigestBuilder,
) -> Result<(), A::Error> {
    while let Some(entry) = seq.next_element::<Value>()? {
        read_entry(&entry, builder);
    }
    Ok(())
}

/// How an entry ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Failed(String),
    NotFailed,
    Unknown,
}

fn read_entry(entry: &Value, builder: &mut DigestBuilder) {
    let Some(fields) = entry.as_object() else {
        builder.unreadable();
        return;
    };
    let Some(path) = fields
        .get("RelativePath")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
    else {
        builder.unreadable();
        return;
    };
    match outcome(fields) {
        Outcome::Failed(error) => builder.failed(path, &error),
        Outcome::NotFailed => {}
        Outcome::Unknown => builder.unreadable(),
    }
}

fn outcome(fields: &Map<String, Value>) -> Outcome {
    let mut failing: Option<(&str, &str)> = None;
    let mut succeeded = false;
    let mut has_status = false;
    for (key, value) in fields {
        if !key.ends_with("Status") {
            continue;
        }
        let Some(status) = value.as_str().map(str::trim) else {
            continue;
        };
        has_status = true;
        if is_failure(status) {
            failing.get_or_insert((key.as_str(), status));
        } else if is_success(status) {
            succeeded = true;
        }
    }
    let has_error = ["ErrorCode", "ErrorDetail", "FailureCode", "FailureReason"]
        .iter()
        .any(|k| text(fields.get(*k)).is_some());
    if failing.is_some() || (!succeeded && has_error) {
        Outcome::Failed(error_of(fields, failing))
    } else if has_status {
        Outcome::NotFailed
    } else {
        Outcome::Unknown
    }
}

fn is_failure(status: &str) -> bool {
    ["FAILED", "FAILURE", "FAIL", "ERROR", "ERRORED"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s))
}

fn is_success(status: &str) -> bool {
    ["SUCCESS", "SUCCEEDED", "SUCCESSFUL"]
        .iter()
        .any(|s| status.eq_ignore_ascii_case(s))
}

/// The error to group an entry under.
fn error_of(fields: &Map<String, Value>, failing: Option<(&str, &str)>) -> String {
    let error = if let Some(code) = text(fields.get("ErrorCode")) {
        code
    } else {
        match (
            text(fields.get("FailureReason")),
            text(fields.get("FailureCode")),
        ) {
            (Some(reason), Some(code)) => format!("{reason} ({code})"),
            (Some(reason), None) => reason,
            (None, Some(code)) => code,
            (None, None) => match failing {
                Some((key, status)) => format!("{key}={status}"),
                None => text(fields.get("ErrorDetail")).unwrap_or_default(),
            },
        }
    };
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => format!("{}…", &error[..end]),
        None => error,
    }
}

/// A non-empty string (trimmed) or a number, as text.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::digest::Digest;

    const ARN: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab";
    const TASK: &str = "task-0123456789abcdef0";
    const EXEC: &str = "exec-0a12a34ab112233ab";

    fn read(body: &str, cut: bool, max_paths: usize) -> Digest {
        let mut builder = DigestBuilder::new(max_paths);
        read_detailed_report(body.as_bytes(), cut, &mut builder);
        builder.finish()
    }

    #[test]
    fn the_prefix_follows_the_documented_layout() {
        let expected = format!("ferry/Detailed-Reports/{TASK}/{EXEC}/");
        for location in [
            "s3://reports/ferry/",
            "s3://reports/ferry",
            "s3://reports//ferry//",
            " s3://reports/ferry ",
        ] {
            assert_eq!(
                detailed_report_prefix(location, ARN),
                Some(("reports".to_owned(), expected.clone())),
                "{location}"
            );
        }
        let bare = format!("Detailed-Reports/{TASK}/{EXEC}/");
        for location in ["s3://reports/", "s3://reports"] {
            assert_eq!(
                detailed_report_prefix(location, ARN),
                Some(("reports".to_owned(), bare.clone())),
                "{location}"
            );
        }
        assert_eq!(
            detailed_report_prefix("s3://reports/a/b/", ARN).map(|(_, p)| p),
            Some(format!("a/b/Detailed-Reports/{TASK}/{EXEC}/"))
        );
        let gov = "arn:aws-us-gov:datasync:us-gov-west-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab";
        assert!(detailed_report_prefix("s3://reports/x", gov).is_some());
    }

    #[test]
    fn malformed_locations_and_arns_give_no_prefix() {
        for location in [
            "",
            "reports/ferry",
            "s3://",
            "s3:///ferry",
            "https://reports/ferry",
            "s3://my bucket/x",
        ] {
            assert_eq!(detailed_report_prefix(location, ARN), None, "{location:?}");
        }
        for arn in [
            "",
            "not an arn",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-1/extra",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-../x",
            "arn:aws:datasync:us-east-1:111122223333:location/loc-0123456789abcdef0",
            "arn:aws:fsx:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab",
            "arn::datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab",
            "arn:aws:datasync:us-east-1:1111:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab",
            "arn:aws:datasync:US-EAST-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab",
            "arn:aws:datasync:us-east-1:111122223333:task/exec-0a12a34ab112233ab/execution/task-0123456789abcdef0",
        ] {
            assert_eq!(
                detailed_report_prefix("s3://reports/ferry", arn),
                None,
                "{arn:?}"
            );
        }
    }

    #[test]
    fn report_files_are_told_from_the_summary() {
        let dir = format!("ferry/Detailed-Reports/{TASK}/{EXEC}");
        for name in [
            "files-transferred-v1-00001-0a123abc12d3b0e4f.json",
            "files-verified-v1-00001-00000000000000000.json",
            "files-verified-v1-00002-0a123abc12d3b0e4f.JSON",
            "files-skipped-v1-00001-0a123abc12d3b0e4f.json",
            "files-deleted-v1-00001-0a123abc12d3b0e4f.json",
        ] {
            assert!(
                is_detailed_report_key(&format!("{dir}/{EXEC}.{name}")),
                "{name}"
            );
        }
        for key in [
            format!("ferry/Summary-Reports/{TASK}/{EXEC}/{EXEC}.summary-v1.json"),
            format!("{dir}/{EXEC}.summary-v1.json"),
            format!("{dir}/"),
            format!("{dir}/{EXEC}.files-transferred-v1-00001-0a123abc12d3b0e4f.json.gz"),
            format!("{dir}/{EXEC}.files-transferred-v1-00001-0a123abc12d3b0e4f.csv"),
            format!("{dir}/{EXEC}.files-.json"),
            format!("{dir}/notes.files-transferred.json"),
            format!("{dir}/readme.txt"),
            format!("{dir}/.json"),
            String::new(),
        ] {
            assert!(!is_detailed_report_key(&key), "{key}");
        }
    }

    /// The user guide's examples (Basic and Enhanced mode), with more entries.
    fn sample() -> String {
        r#"{
    "TaskExecutionId": "exec-0a12a34ab112233ab",
    "Transferred": [{
        "RelativePath": "/object1.txt",
        "SrcMetadata": {"Type": "Regular", "ContentSize": 6, "Mtime": "2022-01-07T16:59:26.136114671Z",
                        "Atime": "2022-01-07T16:59:26.136114671Z", "Uid": 0, "Gid": 0, "Mode": "0644"},
        "Overwrite": "False",
        "DstS3VersionId": "jtqRtX3jN4J2G8k0sFSGYK1f35KqpAVP",
        "TransferTimestamp": "2022-01-07T16:59:45.747270957Z",
        "TransferType": "CONTENT_AND_METADATA",
        "TransferStatus": "SUCCESS"
    }, {
        "RelativePath": "/dir/object2.txt",
        "SrcMetadata": {"Type": "Regular", "ContentSize": 6, "Mtime": "2022-01-07T16:59:26.136114671Z"},
        "Overwrite": "False",
        "TransferTimestamp": "2022-01-07T16:59:45.747270957Z",
        "TransferType": "CONTENT_AND_METADATA",
        "TransferStatus": "FAILED",
        "FailureReason": "S3 Get Object Failed",
        "FailureCode": 40974
    }, {
        "RelativePath": "object3.txt",
        "SourceMetadata": {"Type": "Object", "ContentSize": 6, "LastModified": "2022-10-07T20:48:32Z",
                           "SystemMetadata": {"ContentType": "binary/octet-stream", "ETag": "\"3a7c\"",
                                              "ServerSideEncryption": "AES256"},
                           "UserMetadata": {}, "Tags": []},
        "Overwrite": "False",
        "TransferTimestamp": "2022-10-09T16:05:11.134040717Z",
        "TransferType": "CONTENT_AND_METADATA",
        "TransferStatus": "FAILED",
        "ErrorCode": "AccessDenied",
        "ErrorDetail": "User: arn:aws:sts::111222333444:assumed-role/AWSDataSyncS3Bucket/AwsSync-loc-0b3017fc4ba4a2d8d is not authorized to perform: kms:GenerateDataKey"
    }, {
        "RelativePath": "object4.txt",
        "TransferStatus": "FAILED",
        "ErrorCode": "AccessDenied"
    }, {
        "RelativePath": "/dir",
        "SrcMetadata": {"Type": "Directory", "ContentSize": 0},
        "TransferStatus": "SUCCESS"
    }]
}"#
        .to_owned()
    }

    #[test]
    fn a_documented_report_counts_its_failures_and_skips_its_successes() {
        let d = read(&sample(), false, 10);
        assert_eq!(d.failed, 3);
        assert_eq!(d.unreadable_lines, 0);
        assert!(!d.report_truncated);
        let paths: Vec<(&str, &str)> = d
            .paths
            .iter()
            .map(|p| (p.path.as_str(), p.error.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("/dir/object2.txt", "S3 Get Object Failed (40974)"),
                ("object3.txt", "AccessDenied"),
                ("object4.txt", "AccessDenied"),
            ]
        );
    }

    #[test]
    fn errors_are_grouped_by_code() {
        let d = read(&sample(), false, 1);
        assert_eq!(d.by_error.len(), 2);
        assert_eq!(d.by_error["AccessDenied"], 2);
        assert_eq!(d.by_error["S3 Get Object Failed (40974)"], 1);
        assert_eq!(d.paths.len(), 1);
        assert!(d.paths_truncated);
    }

    #[test]
    fn verified_and_other_lists_are_read_and_errors_fall_back_sensibly() {
        let body = r#"{"TaskExecutionId": "exec-1",
          "Verified": [
            {"RelativePath": "/a", "SrcChecksum": "SHA256:aa", "DstChecksum": "SHA256:aa",
             "DstMetadata": {"Type": "Regular"}, "VerifyStatus": "SUCCESS"},
            {"RelativePath": "/b", "SrcChecksum": "SHA256:aa", "DstChecksum": "SHA256:bb", "VerifyStatus": "FAILED"},
            {"RelativePath": "/c", "VerifyStatus": "failed", "ErrorCode": "  ", "ErrorDetail": "checksum mismatch"}
          ],
          "Skipped": [
            {"RelativePath": "/d", "SkippedStatus": "SUCCESS", "SkippedReason": "unchanged"},
            {"RelativePath": "/e", "SkippedStatus": "FAILED", "FailureReason": "Permission denied"}
          ],
          "Deleted": [
            {"RelativePath": "/f", "DeleteStatus": "SUCCESS"},
            {"RelativePath": "/g", "FailureCode": "12"},
            {"RelativePath": "/h", "DeleteStatus": "PENDING"},
            {"RelativePath": "/i", "ErrorDetail": "something went wrong"}
          ]}"#;
        let d = read(body, false, 10);
        let paths: Vec<(&str, &str)> = d
            .paths
            .iter()
            .map(|p| (p.path.as_str(), p.error.as_str()))
            .collect();
        assert_eq!(
            paths,
            [
                ("/b", "VerifyStatus=FAILED"),
                ("/c", "VerifyStatus=failed"),
                ("/e", "Permission denied"),
                ("/g", "12"),
                ("/i", "something went wrong"),
            ]
        );
        assert_eq!(d.unreadable_lines, 0);
    }

    #[test]
    fn long_error_codes_are_cut() {
        let code = "é".repeat(500);
        let body = format!(
            r#"{{"Transferred": [{{"RelativePath": "/a", "TransferStatus": "FAILED", "ErrorCode": "{code}"}}]}}"#
        );
        let d = read(&body, false, 10);
        assert_eq!(d.paths[0].error.chars().count(), MAX_ERROR_CHARS + 1);
    }

    #[test]
    fn a_cut_report_keeps_the_entries_before_the_cut() {
        let body = sample();
        // Cut inside the fourth entry: the first three (two failures) count.
        let at = body.find("object4.txt").expect("sample has object4");
        let d = read(&body[..at], true, 10);
        assert_eq!(d.failed, 2);
        assert!(d.report_truncated);
        assert_eq!(d.unreadable_lines, 0);
        // Cut anywhere: never a panic, never an unreadable entry, failures only grow.
        let mut last = 0;
        for end in 0..=body.len() {
            let mut builder = DigestBuilder::new(10);
            read_detailed_report(&body.as_bytes()[..end], true, &mut builder);
            let d = builder.finish();
            assert_eq!(
                d.unreadable_lines,
                0,
                "cut at {end}: {:?}",
                String::from_utf8_lossy(&body.as_bytes()[..end])
            );
            assert!(d.failed >= last, "cut at {end}");
            assert!(d.report_truncated);
            last = d.failed;
        }
        assert_eq!(last, 3);
    }

    #[test]
    fn an_incomplete_report_that_was_not_cut_is_unreadable_after_its_good_entries() {
        let body = sample();
        let at = body.find("object4.txt").expect("sample has object4");
        let d = read(&body[..at], false, 10);
        assert_eq!(d.failed, 2);
        assert_eq!(d.unreadable_lines, 1);
        assert!(!d.report_truncated);
    }

    #[test]
    fn garbage_is_counted_not_fatal() {
        for body in [
            "",
            "   ",
            "not json",
            "42",
            "null",
            "\"x\"",
            "{\"Transferred\": [",
            "}{",
            "[",
        ] {
            let d = read(body, false, 10);
            assert_eq!(d.failed, 0, "{body:?}");
            assert_eq!(d.unreadable_lines, 1, "{body:?}");
        }
        // Entries of the wrong shape are unreadable one by one; the good ones still count.
        let d = read(
            r#"{"Transferred": [1, "x", null, [], {}, {"RelativePath": 5, "TransferStatus": "FAILED"},
                {"RelativePath": "", "TransferStatus": "FAILED"}, {"RelativePath": "/no-status"},
                {"RelativePath": "/ok", "TransferStatus": "FAILED", "ErrorCode": "E"}],
                "Other": {"nested": [1, 2]}, "Count": 3, "Flag": true, "Nothing": null}"#,
            false,
            10,
        );
        assert_eq!(d.failed, 1);
        assert_eq!(d.unreadable_lines, 8);
        // Deep nesting stops at serde_json's recursion limit instead of overflowing the stack.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(read(&deep, false, 10).unreadable_lines, 1);
        let deep = format!("{{\"Transferred\": [{}", "{\"a\":".repeat(100_000));
        assert_eq!(read(&deep, false, 10).unreadable_lines, 1);
        // Random bytes: no panic.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = br#"{}[]:,"\ 0123456789.eE+-truefalsnulRelativePathTransferStatusFAILED"#;
        for _ in 0..2000 {
            let len = (seed % 200) as usize;
            let mut bytes = Vec::with_capacity(len);
            for _ in 0..len {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let b = (seed >> 33) as u8;
                bytes.push(if b.is_multiple_of(4) {
                    b
                } else {
                    alphabet[b as usize % alphabet.len()]
                });
            }
            let mut builder = DigestBuilder::new(5);
            read_detailed_report(&bytes, seed.is_multiple_of(2), &mut builder);
            let _ = builder.finish();
        }
    }

    #[test]
    fn a_cut_anywhere_in_any_kind_of_value_is_a_cut_not_an_error() {
        // Every JSON token kind, escapes and multi-byte characters, cut at every byte.
        let body = "{\"TaskExecutionId\": \"exec-1\", \"Transferred\": [\
            {\"RelativePath\": \"/caf\u{e9}/\\u00e9\\\"q\\\\\", \"Overwrite\": false, \"Flag\": true,\
             \"None\": null, \"Neg\": -1.5e-3, \"Big\": 18446744073709551615, \"List\": [1, {\"a\": []}],\
             \"TransferStatus\": \"FAILED\", \"ErrorCode\": \"E\u{1F600}\"},\
            {\"RelativePath\": \"/b\", \"TransferStatus\": \"FAILED\", \"FailureCode\": 1.0}]}";
        let bytes = body.as_bytes();
        let mut last = 0;
        for end in 0..=bytes.len() {
            let mut builder = DigestBuilder::new(10);
            read_detailed_report(&bytes[..end], true, &mut builder);
            let d = builder.finish();
            assert_eq!(
                d.unreadable_lines,
                0,
                "cut at {end}: {:?}",
                String::from_utf8_lossy(&bytes[..end])
            );
            assert!(d.failed >= last);
            last = d.failed;
        }
        assert_eq!(last, 2);
        let d = read(body, false, 10);
        assert_eq!(d.paths[0].path, "/caf\u{e9}/\u{e9}\"q\\");
        assert_eq!(d.paths[0].error, "E\u{1F600}");
        assert_eq!(d.paths[1].error, "1.0");
    }

    #[test]
    fn a_list_of_entries_and_json_lines_are_read_too() {
        let d = read(
            r#"[{"RelativePath": "/a", "TransferStatus": "FAILED", "ErrorCode": "E1"}, {"RelativePath": "/b", "TransferStatus": "SUCCESS"}]"#,
            false,
            10,
        );
        assert_eq!(d.failed, 1);
        let d = read(
            "{\"RelativePath\": \"/a\", \"TransferStatus\": \"FAILED\", \"ErrorCode\": \"E1\", \"SrcMetadata\": {\"Type\": \"Regular\"}}\n\
             {\"RelativePath\": \"/b\", \"TransferStatus\": \"SUCCESS\"}\n\
             {\"Transferred\": [{\"RelativePath\": \"/c\", \"TransferStatus\": \"FAILED\", \"ErrorCode\": \"E2\"}]}\n",
            false,
            10,
        );
        assert_eq!(d.failed, 2);
        assert_eq!(d.unreadable_lines, 0);
        assert_eq!(d.by_error["E1"], 1);
        assert_eq!(d.by_error["E2"], 1);
    }

    #[test]
    fn a_large_report_is_read_entry_by_entry() {
        const N: usize = 100_000;
        let mut body = String::with_capacity(N * 160);
        body.push_str(r#"{"TaskExecutionId": "exec-0a12a34ab112233ab", "Transferred": ["#);
        for i in 0..N {
            if i > 0 {
                body.push(',');
            }
            if i.is_multiple_of(10) {
                body.push_str(&format!(
                    r#"{{"RelativePath": "/data/f{i}", "SrcMetadata": {{"Type": "Regular", "ContentSize": {i}}}, "TransferStatus": "FAILED", "ErrorCode": "E{}"}}"#,
                    i % 3
                ));
            } else {
                body.push_str(&format!(
                    r#"{{"RelativePath": "/data/f{i}", "SrcMetadata": {{"Type": "Regular", "ContentSize": {i}}}, "TransferStatus": "SUCCESS"}}"#
                ));
            }
        }
        body.push_str("]}");
        let d = read(&body, false, 50);
        assert_eq!(d.failed, (N / 10) as u64);
        assert_eq!(d.by_error.values().sum::<u64>(), (N / 10) as u64);
        assert_eq!(d.by_error.len(), 3);
        assert_eq!(d.paths.len(), 50);
        assert_eq!(d.paths[0].path, "/data/f0");
        assert_eq!(d.paths[1].path, "/data/f10");
        assert!(d.paths_truncated);
        assert_eq!(d.unreadable_lines, 0);
        // The same report cut in half: the first half's failures count.
        let half = body.len() / 2;
        let d = read(&body[..half], true, 50);
        assert!(d.failed > 4_000 && d.failed < 6_000, "{}", d.failed);
        assert_eq!(d.unreadable_lines, 0);
    }
}
