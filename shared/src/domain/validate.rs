//! Validation of a job spec against the API references' limits, before any AWS call.
//!
//! Every rule cites the API fact it enforces. All broken rules are reported together, each
//! naming its field (`job.paths[3]`) and what was expected.

use aws_sdk_datasync::types as ds;
use aws_sdk_fsx::types as fsx;

use crate::error::{FieldError, InvalidJob};
use crate::job::{
    DataSyncOptions, JOB_SPEC_VERSION, JobKind, JobSpec, Limits, ManifestSpec, TaskReportSpec,
};
use crate::poll;

/// Default cap on FSx `Paths` (the FSx user guide's console steps say "up to 32").
pub const DEFAULT_MAX_PATHS: usize = 32;
/// The FSx API model's `DataRepositoryTaskPaths` maximum.
pub const API_MAX_PATHS: usize = 100;
/// FSx `DataRepositoryTaskPath` maximum length (API model: max 4096).
pub const MAX_PATH_CHARS: usize = 4096;
/// FSx `ArchivePath` (CompletionReport.Path) length bounds (API model: 3 to 4357).
pub const MAX_REPORT_PATH_CHARS: usize = 4357;
/// DataSync `FilterRule.Value` maximum length (API model: max 102,400).
pub const MAX_FILTER_CHARS: usize = 102_400;
/// FSx and DataSync both cap `Tags` at 50 (FSx `Tags` max 50; DataSync `InputTagList` max 50).
pub const MAX_TAGS: usize = 50;
/// Timeout bounds: at least a minute, at most 30 days.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 60 * 60;

const JOB: &str = "job";

/// Checks every rule for `job`; `Err` lists each broken one.
pub fn validate(job: &JobSpec, limits: &Limits) -> Result<(), InvalidJob> {
    let mut c = Checker::default();
    c.common(job);
    if job.kind.is_fsx() {
        c.fsx(job, limits);
    } else {
        c.datasync(job);
    }
    if c.errors.is_empty() {
        Ok(())
    } else {
        Err(InvalidJob { errors: c.errors })
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

fn field(name: &str) -> String {
    format!("{JOB}.{name}")
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            problem: problem.into(),
        });
    }

    fn common(&mut self, job: &JobSpec) {
        if job.version != JOB_SPEC_VERSION {
            self.fail(
                field("version"),
                format!(
                    "unsupported version {}; this build understands version {JOB_SPEC_VERSION}",
                    job.version
                ),
            );
        }
        let name_ok = (1..=64).contains(&job.name.len())
            && job
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
        if !name_ok {
            self.fail(
                field("name"),
                format!(
                    "must be 1-64 characters of [A-Za-z0-9._-]; got {:?}",
                    job.name
                ),
            );
        }
        self.tags(job);
        if let Some(timeout) = job.timeout_seconds
            && !TIMEOUT_RANGE.contains(&timeout)
        {
            self.fail(
                field("timeout_seconds"),
                format!(
                    "must be between {} and {} seconds; got {timeout}",
                    TIMEOUT_RANGE.start(),
                    TIMEOUT_RANGE.end()
                ),
            );
        }
        if let Some(spec) = job.poll {
            let range = poll::ALLOWED_SECONDS;
            for (name, value) in [
                ("min_seconds", spec.min_seconds),
                ("max_seconds", spec.max_seconds),
            ] {
                if let Some(v) = value
                    && !range.contains(&v)
                {
                    self.fail(
                        field(&format!("poll.{name}")),
                        format!(
                            "must be between {} and {} seconds; got {v}",
                            range.start(),
                            range.end()
                        ),
                    );
                }
            }
            if let (Some(min), Some(max)) = (spec.min_seconds, spec.max_seconds)
                && min > max
            {
                self.fail(
                    field("poll"),
                    format!("min_seconds ({min}) must not exceed max_seconds ({max})"),
                );
            }
        }
        if let Some(topic) = job.notify.as_ref().and_then(|n| n.topic_arn.as_deref())
            && !is_arn_of(topic, "sns", |resource| {
                !resource.is_empty() && !resource.contains('/')
            })
        {
            self.fail(
                field("notify.topic_arn"),
                format!(
                    "must be an SNS topic ARN (arn:aws:sns:region:account:topic); got {topic:?}"
                ),
            );
        }
    }

    /// FSx `Tag`: key 1-128, value 0-256 (API model); DataSync allows longer keys, so FSx's bound
    /// applies to both. Keys starting with `aws:` are reserved by AWS.
    /// DataSync executions carry one more tag, Ferry's idempotency key, so DataSync jobs get 49.
    fn tags(&mut self, job: &JobSpec) {
        let max = if job.kind.is_fsx() {
            MAX_TAGS
        } else {
            MAX_TAGS - 1
        };
        if job.tags.len() > max {
            self.fail(
                field("tags"),
                format!(
                    "at most {max} tags for kind {}; got {}",
                    job.kind.as_str(),
                    job.tags.len()
                ),
            );
        }
        let tag_char = |ch: char| {
            ch.is_alphanumeric()
                || (ch.is_whitespace() && !ch.is_control())
                || matches!(ch, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
        };
        for (key, value) in &job.tags {
            let f = field(&format!("tags.{key}"));
            if !(1..=128).contains(&key.chars().count()) || !key.chars().all(tag_char) {
                self.fail(
                    &f,
                    "tag keys must be 1-128 letters, digits, spaces or _ . : / = + - @",
                );
            } else if key.to_ascii_lowercase().starts_with("aws:") {
                self.fail(&f, "tag keys starting with \"aws:\" are reserved by AWS");
            }
            if value.chars().count() > 256 || !value.chars().all(tag_char) {
                self.fail(
                    &f,
                    "tag values must be at most 256 letters, digits, spaces or _ . : / = + - @",
                );
            }
        }
    }

    fn not_for_kind(&mut self, kind: JobKind, name: &str, present: bool) {
        if present {
            self.fail(
                field(name),
                format!("is not used by kind {}; remove it", kind.as_str()),
            );
        }
    }

    fn fsx(&mut self, job: &JobSpec, limits: &Limits) {
        let kind = job.kind;
        self.not_for_kind(kind, "task_arn", job.task_arn.is_some());
        self.not_for_kind(kind, "options", job.options.is_some());
        self.not_for_kind(kind, "includes", !job.includes.is_empty());
        self.not_for_kind(kind, "excludes", !job.excludes.is_empty());
        self.not_for_kind(kind, "manifest", job.manifest.is_some());
        self.not_for_kind(kind, "task_report", job.task_report.is_some());
        self.not_for_kind(
            kind,
            "release",
            job.release.is_some() && kind != JobKind::FsxRelease,
        );
        self.not_for_kind(
            kind,
            "capacity_to_release",
            job.capacity_to_release.is_some() && kind != JobKind::FsxAutoRelease,
        );

        match job.file_system_id.as_deref() {
            None => self.fail(field("file_system_id"), format!("is required for kind {}", kind.as_str())),
            Some(id) if !is_file_system_id(id) => self.fail(
                field("file_system_id"),
                format!("must be \"fs-\" followed by 8-17 lowercase hex digits (API pattern ^(fs-[0-9a-f]{{8,}})$, length 11-21); got {id:?}"),
            ),
            Some(_) => {}
        }

        let cap = limits.max_paths.min(API_MAX_PATHS);
        if job.paths.len() > cap {
            self.fail(
                field("paths"),
                format!(
                    "at most {cap} paths per task (FSx API allows {API_MAX_PATHS}; this deployment's cap is {cap}); got {}",
                    job.paths.len()
                ),
            );
        }
        for (i, path) in job.paths.iter().enumerate() {
            let f = field(&format!("paths[{i}]"));
            if let Some(problem) = fsx_path_problem(kind, path) {
                self.fail(&f, problem);
            } else if job.paths[..i].contains(path) {
                self.fail(&f, format!("duplicates an earlier path {path:?}"));
            }
        }

        if let Some(report) = &job.report {
            if report.enabled {
                match report.path.as_deref() {
                    None => self.fail(
                        field("report.path"),
                        "is required when the report is enabled",
                    ),
                    Some(path) => {
                        if let Some(problem) = s3_url_problem(path, MAX_REPORT_PATH_CHARS) {
                            self.fail(field("report.path"), problem);
                        }
                    }
                }
            }
            self.one_of(
                field("report.format"),
                report.format.as_deref(),
                fsx::ReportFormat::values(),
            );
            self.one_of(
                field("report.scope"),
                report.scope.as_deref(),
                fsx::ReportScope::values(),
            );
        }
        // ReleaseConfiguration.DurationSinceLastAccess.Value: "Value" minimum 0 (API model).
        if let Some(release) = job.release
            && release.days_since_last_access < 0
        {
            self.fail(
                field("release.days_since_last_access"),
                format!(
                    "must be 0 or more days; got {}",
                    release.days_since_last_access
                ),
            );
        }
        // CapacityToRelease: minimum 1 GiB (API model), and an AUTO_RELEASE_DATA task needs it.
        match (kind, job.capacity_to_release) {
            (JobKind::FsxAutoRelease, None) => self.fail(
                field("capacity_to_release"),
                "is required for kind fsx_auto_release (GiB to release)",
            ),
            (_, Some(gib)) if gib < 1 => self.fail(
                field("capacity_to_release"),
                format!("must be at least 1 GiB; got {gib}"),
            ),
            _ => {}
        }
    }

    fn datasync(&mut self, job: &JobSpec) {
        let kind = job.kind;
        self.not_for_kind(kind, "file_system_id", job.file_system_id.is_some());
        self.not_for_kind(kind, "paths", !job.paths.is_empty());
        self.not_for_kind(kind, "report", job.report.is_some());
        self.not_for_kind(kind, "release", job.release.is_some());
        self.not_for_kind(
            kind,
            "capacity_to_release",
            job.capacity_to_release.is_some(),
        );

        match job.task_arn.as_deref() {
            None => self.fail(field("task_arn"), "is required for kind datasync"),
            Some(arn) if !is_datasync_task_arn(arn) => self.fail(
                field("task_arn"),
                format!("must be a DataSync task ARN (arn:aws:datasync:region:account:task/task-id); got {arn:?}"),
            ),
            Some(_) => {}
        }
        if let Some(options) = &job.options {
            self.options(options);
        }
        self.filter("includes", &job.includes);
        self.filter("excludes", &job.excludes);
        if let Some(manifest) = &job.manifest {
            self.manifest(manifest);
        }
        if let Some(report) = &job.task_report {
            self.task_report(report);
        }
    }

    fn one_of(&mut self, field: String, value: Option<&str>, allowed: &[&str]) {
        if let Some(value) = value
            && !allowed.contains(&value)
        {
            self.fail(
                field,
                format!("must be one of {}; got {value:?}", allowed.join(", ")),
            );
        }
    }

    fn options(&mut self, o: &DataSyncOptions) {
        let f = |name: &str| field(&format!("options.{name}"));
        self.one_of(
            f("verify_mode"),
            o.verify_mode.as_deref(),
            ds::VerifyMode::values(),
        );
        self.one_of(
            f("overwrite_mode"),
            o.overwrite_mode.as_deref(),
            ds::OverwriteMode::values(),
        );
        self.one_of(f("atime"), o.atime.as_deref(), ds::Atime::values());
        self.one_of(f("mtime"), o.mtime.as_deref(), ds::Mtime::values());
        self.one_of(f("uid"), o.uid.as_deref(), ds::Uid::values());
        self.one_of(f("gid"), o.gid.as_deref(), ds::Gid::values());
        self.one_of(
            f("preserve_deleted_files"),
            o.preserve_deleted_files.as_deref(),
            ds::PreserveDeletedFiles::values(),
        );
        self.one_of(
            f("preserve_devices"),
            o.preserve_devices.as_deref(),
            ds::PreserveDevices::values(),
        );
        self.one_of(
            f("posix_permissions"),
            o.posix_permissions.as_deref(),
            ds::PosixPermissions::values(),
        );
        self.one_of(
            f("task_queueing"),
            o.task_queueing.as_deref(),
            ds::TaskQueueing::values(),
        );
        self.one_of(
            f("log_level"),
            o.log_level.as_deref(),
            ds::LogLevel::values(),
        );
        self.one_of(
            f("transfer_mode"),
            o.transfer_mode.as_deref(),
            ds::TransferMode::values(),
        );
        self.one_of(
            f("security_descriptor_copy_flags"),
            o.security_descriptor_copy_flags.as_deref(),
            ds::SmbSecurityDescriptorCopyFlags::values(),
        );
        self.one_of(
            f("object_tags"),
            o.object_tags.as_deref(),
            ds::ObjectTags::values(),
        );
        // Options.BytesPerSecond: "-1" means unlimited, otherwise at least 1 (API reference).
        if let Some(bps) = o.bytes_per_second
            && bps != -1
            && bps < 1
        {
            self.fail(
                f("bytes_per_second"),
                format!("must be -1 (unlimited) or at least 1; got {bps}"),
            );
        }
    }

    /// DataSync `FilterRule`: one `SIMPLE_PATTERN` rule whose value is the patterns joined by `|`,
    /// at most 102,400 characters (API model). A `|` inside a pattern cannot be expressed.
    fn filter(&mut self, name: &str, patterns: &[String]) {
        for (i, pattern) in patterns.iter().enumerate() {
            let f = field(&format!("{name}[{i}]"));
            if pattern.is_empty() {
                self.fail(&f, "must not be empty");
            } else if pattern.contains('|') {
                self.fail(&f, "must not contain '|' (DataSync separates patterns with it); list such files in a manifest instead");
            } else if let Some(ch) = pattern.chars().find(|ch| is_forbidden_char(*ch)) {
                self.fail(&f, format!("must not contain the control character {ch:?}"));
            }
        }
        let joined = filter_value_len(patterns);
        if joined > MAX_FILTER_CHARS {
            self.fail(
                field(name),
                format!("the patterns joined with '|' are {joined} characters; DataSync allows {MAX_FILTER_CHARS} (use a manifest for larger sets)"),
            );
        }
    }

    fn manifest(&mut self, m: &ManifestSpec) {
        if !is_s3_bucket_arn(&m.bucket_arn) {
            self.fail(
                field("manifest.bucket_arn"),
                format!(
                    "must be an S3 bucket or access point ARN (arn:aws:s3:::bucket); got {:?}",
                    m.bucket_arn
                ),
            );
        }
        // S3ManifestConfig.ManifestObjectPath: at most 4096 characters (AWS-FACTS).
        if m.object_path.is_empty() || m.object_path.chars().count() > MAX_PATH_CHARS {
            self.fail(
                field("manifest.object_path"),
                format!("must be 1-{MAX_PATH_CHARS} characters"),
            );
        } else if m.object_path.chars().any(is_forbidden_char) {
            self.fail(
                field("manifest.object_path"),
                "must not contain NUL, CR or LF",
            );
        }
        if !is_role_arn(&m.bucket_access_role_arn) {
            self.fail(
                field("manifest.bucket_access_role_arn"),
                format!(
                    "must be an IAM role ARN (arn:aws:iam::account:role/name); got {:?}",
                    m.bucket_access_role_arn
                ),
            );
        }
        if let Some(version) = &m.object_version_id
            && (version.is_empty() || version.len() > 100)
        {
            self.fail(
                field("manifest.object_version_id"),
                "must be 1-100 characters",
            );
        }
    }

    fn task_report(&mut self, r: &TaskReportSpec) {
        if !is_s3_bucket_arn(&r.bucket_arn) {
            self.fail(
                field("task_report.bucket_arn"),
                format!(
                    "must be an S3 bucket ARN (arn:aws:s3:::bucket); got {:?}",
                    r.bucket_arn
                ),
            );
        }
        if !is_role_arn(&r.bucket_access_role_arn) {
            self.fail(
                field("task_report.bucket_access_role_arn"),
                format!(
                    "must be an IAM role ARN (arn:aws:iam::account:role/name); got {:?}",
                    r.bucket_access_role_arn
                ),
            );
        }
        if let Some(sub) = &r.subdirectory
            && (sub.chars().count() > MAX_PATH_CHARS || sub.chars().any(is_forbidden_char))
        {
            self.fail(
                field("task_report.subdirectory"),
                format!("must be at most {MAX_PATH_CHARS} characters without NUL, CR or LF"),
            );
        }
        self.one_of(
            field("task_report.output_type"),
            r.output_type.as_deref(),
            ds::ReportOutputType::values(),
        );
        self.one_of(
            field("task_report.report_level"),
            r.report_level.as_deref(),
            ds::ReportLevel::values(),
        );
        self.one_of(
            field("task_report.object_version_ids"),
            r.object_version_ids.as_deref(),
            ds::ObjectVersionIds::values(),
        );
        if let Some(o) = &r.overrides {
            for (name, value) in [
                ("transferred", &o.transferred),
                ("verified", &o.verified),
                ("deleted", &o.deleted),
                ("skipped", &o.skipped),
            ] {
                self.one_of(
                    field(&format!("task_report.overrides.{name}")),
                    value.as_deref(),
                    ds::ReportLevel::values(),
                );
            }
        }
    }
}

/// Length of the DataSync filter value the patterns become (`a|b|c`).
pub fn filter_value_len(patterns: &[String]) -> usize {
    patterns.iter().map(|p| p.chars().count()).sum::<usize>() + patterns.len().saturating_sub(1)
}

/// Characters the FSx path pattern excludes: NUL, CR, LF, U+0085, U+2028, U+2029 (API model
/// `DataRepositoryTaskPath` pattern `^[^\u0000\u0085\u2028\u2029\r\n]{0,4096}$`).
pub fn is_forbidden_char(ch: char) -> bool {
    matches!(ch, '\0' | '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// Why `path` is not a valid FSx `Paths` entry for `kind`, if it is not.
///
/// Export and release paths are relative to the file system's mount point (`path1`, not
/// `/mnt/fsx/path1`); release also takes `/` for "everything". Import paths are
/// `s3://bucket/prefix` (FSx API reference, `CreateDataRepositoryTask.Paths`).
pub fn fsx_path_problem(kind: JobKind, path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("must not be empty".into());
    }
    if path.chars().count() > MAX_PATH_CHARS {
        return Some(format!(
            "must be at most {MAX_PATH_CHARS} characters; got {}",
            path.chars().count()
        ));
    }
    if let Some(ch) = path.chars().find(|ch| is_forbidden_char(*ch)) {
        return Some(format!("must not contain the control character {ch:?}"));
    }
    if kind == JobKind::FsxImport {
        return s3_url_problem(path, MAX_PATH_CHARS).map(|p| {
            format!("{p} (import paths name the linked S3 repository: s3://bucket/prefix)")
        });
    }
    if path.starts_with("s3://") {
        return Some(format!(
            "must be a path on the file system, relative to its root; {} paths are not S3 URLs",
            kind.as_str()
        ));
    }
    if path == "/" {
        return (kind != JobKind::FsxRelease).then(|| {
            "\"/\" (the whole file system) is only accepted by release tasks; omit paths to export everything".into()
        });
    }
    if path.starts_with('/') {
        return Some(format!(
            "must be relative to the file system root (e.g. \"projects/a\", not \"/mnt/fsx/projects/a\"); got {path:?}"
        ));
    }
    if has_parent_segment(path) {
        return Some(format!("must not contain a '..' segment; got {path:?}"));
    }
    None
}

fn has_parent_segment(path: &str) -> bool {
    path.split('/').any(|segment| segment == "..")
}

/// Why `url` is not an `s3://bucket[/prefix]` URL, if it is not.
pub fn s3_url_problem(url: &str, max_chars: usize) -> Option<String> {
    let Some(rest) = url.strip_prefix("s3://") else {
        return Some(format!("must be an s3://bucket/prefix URL; got {url:?}"));
    };
    if url.chars().count() > max_chars {
        return Some(format!("must be at most {max_chars} characters"));
    }
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if !is_bucket_name(bucket) {
        return Some(format!(
            "must name a valid bucket (3-63 of a-z 0-9 . -) after s3://; got {bucket:?}"
        ));
    }
    if has_parent_segment(key) {
        return Some(format!("must not contain a '..' segment; got {url:?}"));
    }
    if let Some(ch) = url.chars().find(|ch| is_forbidden_char(*ch)) {
        return Some(format!("must not contain the control character {ch:?}"));
    }
    None
}

/// S3 bucket naming rules: 3-63 characters of lowercase letters, digits, `.` and `-`, starting
/// and ending with a letter or digit.
pub fn is_bucket_name(bucket: &str) -> bool {
    let bytes = bucket.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// FSx `FileSystemId`: pattern `^(fs-[0-9a-f]{8,})$`, length 11-21 (API model).
pub fn is_file_system_id(id: &str) -> bool {
    (11..=21).contains(&id.len())
        && id.strip_prefix("fs-").is_some_and(|hex| {
            hex.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// FSx `TaskId`: pattern `^(task-[0-9a-f]{17,})$`, length 12-128 (API model).
pub fn is_fsx_task_id(id: &str) -> bool {
    (12..=128).contains(&id.len())
        && id
            .strip_prefix("task-")
            .is_some_and(|hex| hex.len() >= 7 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `arn:partition:service:region:account:resource` whose service is `service` and whose resource
/// satisfies `resource_ok`.
fn is_arn_of(arn: &str, service: &str, resource_ok: impl Fn(&str) -> bool) -> bool {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    arn.len() <= 2048
        && parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == service
        && resource_ok(parts[5])
}

/// DataSync `TaskArn`: `arn:partition:datasync:region:account:task/task-<17 hex>`, max 128.
pub fn is_datasync_task_arn(arn: &str) -> bool {
    arn.len() <= 128
        && is_arn_of(arn, "datasync", |r| {
            r.strip_prefix("task/task-")
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
        })
}

/// DataSync `TaskExecutionArn`: `...:task/task-<id>/execution/exec-<id>`, max 128.
pub fn is_datasync_execution_arn(arn: &str) -> bool {
    arn.len() <= 128
        && is_arn_of(arn, "datasync", |r| {
            r.strip_prefix("task/task-")
                .and_then(|rest| rest.split_once("/execution/exec-"))
                .is_some_and(|(task, exec)| {
                    [task, exec]
                        .iter()
                        .all(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()))
                })
        })
}

/// The task ARN an execution ARN belongs to.
pub fn datasync_task_of_execution(execution_arn: &str) -> Option<&str> {
    execution_arn
        .find("/execution/")
        .map(|at| &execution_arn[..at])
}

fn is_s3_bucket_arn(arn: &str) -> bool {
    arn.len() <= 156
        && (is_arn_of(arn, "s3", |r| !r.is_empty())
            || is_arn_of(arn, "s3-outposts", |r| !r.is_empty()))
}

fn is_role_arn(arn: &str) -> bool {
    is_arn_of(arn, "iam", |r| {
        r.len() > "role/".len() && r.starts_with("role/")
    })
}

#[cfg(test)]
mod tests;
