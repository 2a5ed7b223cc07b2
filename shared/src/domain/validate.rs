//! Validation of a job spec against the API references' limits, before any AWS call.
//!
//! Every rule cites the API fact it enforces. All broken rules are reported together, each
//! naming its field (`job.paths[3]`) and what was expected. What passes comes out as a
//! [`ValidJob`] with its identifiers parsed ([`crate::ids`]).

use aws_sdk_datasync::types as ds;
use aws_sdk_fsx::types as fsx;

use crate::budget::{self, SPEC_BYTES};
use crate::domain::job::{
    DataSyncJob, DataSyncOptions, DataSyncTarget, FsxJob, JOB_SPEC_VERSION, JobKind, JobSpec,
    Limits, ManifestSpec, S3Source, Service, TaskReportSpec, ValidJob,
};
use crate::domain::poll;
use crate::error::{FieldError, FieldErrors};
use crate::ids::{
    DataSyncTaskArn, FileSystemId, IdError, RoleArn, S3BucketArn, S3Url, TopicArn,
    has_parent_segment, is_forbidden_char,
};

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

/// Checks every rule for `job`; `Err` lists each broken one.
pub fn validate(job: JobSpec, limits: &Limits) -> Result<ValidJob, FieldErrors> {
    let mut c = Checker::default();
    let topic = c.common(&job);
    let service = if job.kind.is_fsx() {
        c.fsx(&job, limits).map(Service::Fsx)
    } else {
        c.datasync(&job).map(Service::DataSync)
    };
    c.weight(&job);
    match (c.errors.is_empty(), service) {
        (true, Some(service)) => Ok(ValidJob::new(job, service, topic)),
        (_, _) if !c.errors.is_empty() => Err(FieldErrors { errors: c.errors }),
        // Every part parses when no rule is broken; this is only reachable by a bug here.
        _ => Err(FieldErrors::one(
            "job",
            "could not be assembled after validation",
        )),
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

fn field(name: &str) -> String {
    format!("job.{name}")
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            problem: problem.into(),
        });
    }

    /// The parsed value, or `None` with the problem recorded against `name`.
    fn parsed<T>(&mut self, name: &str, result: Result<T, IdError>) -> Option<T> {
        result
            .map_err(|e| self.fail(field(name), e.to_string()))
            .ok()
    }

    /// Checks the fields every kind has; returns the job's report topic.
    fn common(&mut self, job: &JobSpec) -> Option<TopicArn> {
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
                    crate::domain::text::truncate_chars(&job.name, 200)
                ),
            );
        }
        self.tags(job);
        self.control(job);
        let topic = job.notify.as_ref().and_then(|n| n.topic_arn.as_deref())?;
        self.parsed("notify.topic_arn", TopicArn::parse(topic))
    }

    /// The whole spec within [`SPEC_BYTES`] as JSON: a job is kept in one DynamoDB item (400
    /// KB), as is the run that merges it, so a heavier one could never be queued or run. Every
    /// field may be within its own API limit and the sum still too heavy (two DataSync filters
    /// of 102,400 characters of CJK weigh 600 KB); the error names the heaviest field.
    fn weight(&mut self, job: &JobSpec) {
        let bytes = budget::json_bytes(job);
        if bytes <= SPEC_BYTES {
            return;
        }
        let fields: [(&str, usize); 6] = [
            ("paths", budget::json_bytes(&job.paths)),
            ("includes", budget::json_bytes(&job.includes)),
            ("excludes", budget::json_bytes(&job.excludes)),
            ("task", budget::json_bytes(&job.task)),
            ("tags", budget::json_bytes(&job.tags)),
            ("manifest", budget::json_bytes(&job.manifest)),
        ];
        let (heaviest, weight) = fields
            .into_iter()
            .max_by_key(|&(_, w)| w)
            .unwrap_or(("paths", 0));
        self.fail(
            field(heaviest),
            format!(
                "weighs {} bytes as JSON, and the whole job {}: a job is kept in one DynamoDB item and may weigh at most {} bytes (docs/limits.md); send fewer or shorter paths or patterns (DataSync: list the files in a manifest instead)",
                budget::thousands(weight),
                budget::thousands(bytes),
                budget::thousands(SPEC_BYTES)
            ),
        );
    }

    /// Ferry's own fields: `timeout_seconds` and `poll`.
    fn control(&mut self, job: &JobSpec) {
        if let Some(timeout) = job.timeout_seconds
            && !TIMEOUT_RANGE.contains(&timeout)
        {
            self.out_of_range("timeout_seconds", timeout, &TIMEOUT_RANGE);
        }
        let Some(spec) = job.poll else { return };
        for (name, value) in [
            ("poll.min_seconds", spec.min_seconds),
            ("poll.max_seconds", spec.max_seconds),
        ] {
            if let Some(v) = value
                && !poll::ALLOWED_SECONDS.contains(&v)
            {
                self.out_of_range(name, v, &poll::ALLOWED_SECONDS);
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

    fn out_of_range<T: std::fmt::Display>(
        &mut self,
        name: &str,
        value: T,
        range: &std::ops::RangeInclusive<T>,
    ) {
        self.fail(
            field(name),
            format!(
                "must be between {} and {} seconds; got {value}",
                range.start(),
                range.end()
            ),
        );
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

    /// Refuses each field of `fields` that is set although `kind` does not use it.
    fn not_for_kind(&mut self, kind: JobKind, fields: &[(&str, bool)]) {
        for (name, present) in fields {
            if *present {
                self.fail(
                    field(name),
                    format!("is not used by kind {}; remove it", kind.as_str()),
                );
            }
        }
    }

    fn fsx(&mut self, job: &JobSpec, limits: &Limits) -> Option<FsxJob> {
        let kind = job.kind;
        self.not_for_kind(
            kind,
            &[
                ("task_arn", job.task_arn.is_some()),
                ("task", job.task.is_some()),
                ("options", job.options.is_some()),
                ("includes", !job.includes.is_empty()),
                ("excludes", !job.excludes.is_empty()),
                ("manifest", job.manifest.is_some()),
                ("task_report", job.task_report.is_some()),
                (
                    "release",
                    job.release.is_some() && kind != JobKind::FsxRelease,
                ),
                (
                    "capacity_to_release",
                    job.capacity_to_release.is_some() && kind != JobKind::FsxAutoRelease,
                ),
            ],
        );
        let file_system_id = match job.file_system_id.as_deref() {
            None => {
                self.fail(
                    field("file_system_id"),
                    format!("is required for kind {}", kind.as_str()),
                );
                None
            }
            // An Amazon File Cache id: the likeliest reason to try is AUTO_RELEASE_DATA, which
            // AWS documents for caches, but CreateDataRepositoryTask names no cache: its only id
            // is FileSystemId, pattern ^(fs-[0-9a-f]{8,})$ (FSx API model).
            Some(id) if id.starts_with("fc-") => {
                self.fail(
                    field("file_system_id"),
                    format!("is an Amazon File Cache id ({id:?}); CreateDataRepositoryTask takes only a file system id (fs- and 8-17 lowercase hex digits), and the API has no parameter for a cache"),
                );
                None
            }
            Some(id) => self.parsed("file_system_id", FileSystemId::parse(id)),
        };
        self.fsx_paths(job, limits);
        let report_path = self.fsx_report(job);
        self.fsx_release(job);
        Some(FsxJob {
            file_system_id: file_system_id?,
            task_type: kind.fsx_task_type()?,
            report_path: report_path?,
        })
    }

    fn fsx_paths(&mut self, job: &JobSpec, limits: &Limits) {
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
            if let Some(problem) = fsx_path_problem(job.kind, path) {
                self.fail(&f, problem);
            } else if job.paths[..i].contains(path) {
                self.fail(&f, format!("duplicates an earlier path {path:?}"));
            }
        }
    }

    /// `Report`: the path is required when enabled; format and scope have one value each.
    /// `Some(path)` is the parsed report path (`Some(None)` when there is none to parse).
    fn fsx_report(&mut self, job: &JobSpec) -> Option<Option<S3Url>> {
        let Some(report) = &job.report else {
            return Some(None);
        };
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
        if !report.enabled {
            return Some(None);
        }
        let Some(path) = report.path.as_deref() else {
            self.fail(
                field("report.path"),
                "is required when the report is enabled",
            );
            return None;
        };
        match S3Url::parse(path, MAX_REPORT_PATH_CHARS) {
            Ok(url) => Some(Some(url)),
            Err(e) => {
                self.fail(field("report.path"), e.to_string());
                None
            }
        }
    }

    /// `ReleaseConfiguration` and `CapacityToRelease`.
    fn fsx_release(&mut self, job: &JobSpec) {
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
        match (job.kind, job.capacity_to_release) {
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

    fn datasync(&mut self, job: &JobSpec) -> Option<DataSyncJob> {
        self.not_for_kind(
            job.kind,
            &[
                ("file_system_id", job.file_system_id.is_some()),
                ("paths", !job.paths.is_empty()),
                ("report", job.report.is_some()),
                ("release", job.release.is_some()),
                ("capacity_to_release", job.capacity_to_release.is_some()),
            ],
        );
        let target = match (job.task_arn.as_deref(), &job.task) {
            (None, None) => {
                self.fail(
                    field("task_arn"),
                    "is required for kind datasync (or a task block Ferry ensures)",
                );
                None
            }
            (Some(_), Some(_)) => {
                self.fail(
                    field("task"),
                    "must not be given with task_arn: name an existing task or define one, not both",
                );
                None
            }
            (Some(arn), None) => self
                .parsed("task_arn", DataSyncTaskArn::parse(arn))
                .map(DataSyncTarget::Task),
            (None, Some(def)) => match def.validate() {
                Ok(()) => Some(DataSyncTarget::Definition(Box::new(def.clone()))),
                Err(errors) => {
                    self.errors.extend(errors.errors);
                    None
                }
            },
        };
        if let Some(options) = &job.options {
            self.options(options);
        }
        self.filter("includes", &job.includes);
        self.filter("excludes", &job.excludes);
        let manifest = job.manifest.as_ref().map(|m| self.manifest(m));
        let task_report = job.task_report.as_ref().map(|r| self.task_report(r));
        Some(DataSyncJob {
            target: target?,
            manifest: manifest.map_or(Some(None), |m| m.map(Some))?,
            task_report: task_report.map_or(Some(None), |r| r.map(Some))?,
        })
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
        /// `(field, value, the SDK's values of its enum)` for each option named `field: Enum`.
        macro_rules! options {
            ($($field:ident: $enum:ident),* $(,)?) => {
                [$((stringify!($field), &o.$field, ds::$enum::values())),*]
            };
        }
        #[rustfmt::skip]
        let enums = options![
            verify_mode: VerifyMode, overwrite_mode: OverwriteMode, atime: Atime, mtime: Mtime,
            uid: Uid, gid: Gid, preserve_deleted_files: PreserveDeletedFiles,
            preserve_devices: PreserveDevices, posix_permissions: PosixPermissions,
            task_queueing: TaskQueueing, log_level: LogLevel, transfer_mode: TransferMode,
            security_descriptor_copy_flags: SmbSecurityDescriptorCopyFlags, object_tags: ObjectTags,
        ];
        for (name, value, allowed) in enums {
            self.one_of(field(&format!("options.{name}")), value.as_deref(), allowed);
        }
        self.option_pairs(o);
        // Options.BytesPerSecond: "-1" means unlimited, otherwise at least 1 (API reference).
        if let Some(bps) = o.bytes_per_second
            && bps != -1
            && bps < 1
        {
            self.fail(
                field("options.bytes_per_second"),
                format!("must be -1 (unlimited) or at least 1; got {bps}"),
            );
        }
    }

    /// The combinations the DataSync API reference (`Options`) rules out, when both options are
    /// given (an option left out takes the task's value, which a job does not know): "If Atime
    /// is set to BEST_EFFORT, Mtime must be set to PRESERVE. If Atime is set to NONE, Mtime
    /// must also be NONE" (and the same from Mtime's side); and PreserveDeletedFiles: "If you
    /// set this parameter to REMOVE, you can't set TransferMode to ALL".
    fn option_pairs(&mut self, o: &DataSyncOptions) {
        if let (Some(atime), Some(mtime)) = (o.atime.as_deref(), o.mtime.as_deref()) {
            let paired = matches!(
                (atime, mtime),
                ("BEST_EFFORT", "PRESERVE") | ("NONE", "NONE")
            );
            if !paired {
                self.fail(
                    field("options.mtime"),
                    format!("must be PRESERVE with atime BEST_EFFORT and NONE with atime NONE (DataSync Options); got atime {atime:?}, mtime {mtime:?}"),
                );
            }
        }
        if o.preserve_deleted_files.as_deref() == Some("REMOVE")
            && o.transfer_mode.as_deref() == Some("ALL")
        {
            self.fail(
                field("options.transfer_mode"),
                "must not be ALL with preserve_deleted_files REMOVE: transferring all data, DataSync does not scan the destination, so it cannot know what to delete (DataSync Options)",
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
                format!("the patterns joined with '|' are {joined} characters (UTF-16 code units: an emoji counts 2); DataSync allows {MAX_FILTER_CHARS} (use a manifest for larger sets)"),
            );
        }
    }

    /// The bucket and role DataSync uses for a manifest or a report (`prefix` names the block).
    fn s3_source(&mut self, prefix: &str, bucket: &str, role: &str) -> Option<S3Source> {
        let bucket_arn = self.parsed(&format!("{prefix}.bucket_arn"), S3BucketArn::parse(bucket));
        let role = self.parsed(
            &format!("{prefix}.bucket_access_role_arn"),
            RoleArn::parse(role),
        );
        Some(S3Source {
            bucket_arn: bucket_arn?,
            bucket_access_role_arn: role?,
        })
    }

    fn manifest(&mut self, m: &ManifestSpec) -> Option<S3Source> {
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
        if let Some(version) = &m.object_version_id
            && (version.is_empty() || version.len() > 100)
        {
            self.fail(
                field("manifest.object_version_id"),
                "must be 1-100 characters",
            );
        }
        self.s3_source("manifest", &m.bucket_arn, &m.bucket_access_role_arn)
    }

    fn task_report(&mut self, r: &TaskReportSpec) -> Option<S3Source> {
        if let Some(sub) = &r.subdirectory
            && (sub.chars().count() > MAX_PATH_CHARS || sub.chars().any(is_forbidden_char))
        {
            self.fail(
                field("task_report.subdirectory"),
                format!("must be at most {MAX_PATH_CHARS} characters without NUL, CR or LF"),
            );
        }
        let levels = ds::ReportLevel::values();
        let overrides = r.overrides.clone().unwrap_or_default();
        for (name, value, allowed) in [
            (
                "output_type",
                &r.output_type,
                ds::ReportOutputType::values(),
            ),
            ("report_level", &r.report_level, levels),
            (
                "object_version_ids",
                &r.object_version_ids,
                ds::ObjectVersionIds::values(),
            ),
            ("overrides.transferred", &overrides.transferred, levels),
            ("overrides.verified", &overrides.verified, levels),
            ("overrides.deleted", &overrides.deleted, levels),
            ("overrides.skipped", &overrides.skipped, levels),
        ] {
            self.one_of(
                field(&format!("task_report.{name}")),
                value.as_deref(),
                allowed,
            );
        }
        self.s3_source("task_report", &r.bucket_arn, &r.bucket_access_role_arn)
    }
}

/// The length of a DataSync filter value (or a part of one) as Ferry measures it: in UTF-16
/// code units. The API model's `FilterValue` has `@length(max: 102400)`, which Smithy counts in
/// Unicode scalar values (Smithy 2.0 spec, "length trait"); a service whose strings are UTF-16
/// may count code units, and those are never fewer (an emoji is one scalar value and two
/// units; CJK is one of each). So a filter measured this way fits whichever the service
/// counts, at the cost of half the room only for characters outside the BMP. Not bytes: a
/// CJK key is 3 bytes but one character (issue 17, defect 4).
pub fn filter_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Length of the DataSync filter value the patterns become (`a|b|c`), by [`filter_len`].
pub fn filter_value_len(patterns: &[String]) -> usize {
    patterns.iter().map(|p| filter_len(p)).sum::<usize>() + patterns.len().saturating_sub(1)
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
        return S3Url::parse(path, MAX_PATH_CHARS).err().map(|e| {
            format!("{e} (import paths name the linked S3 repository: s3://bucket/prefix)")
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

pub mod task_definition;

#[cfg(test)]
mod tests;
