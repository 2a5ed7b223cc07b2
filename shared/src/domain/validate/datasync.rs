//! The DataSync kind's rules: the task (named or defined), options, filters, the manifest and
//! the task report. A task definition's checks (`task_definition.rs`) reuse the last four.

use aws_sdk_datasync::types as ds;

use super::{Checker, MAX_FILTER_CHARS, MAX_PATH_CHARS, field};
use crate::domain::job::{
    DataSyncJob, DataSyncOptions, DataSyncTarget, JobSpec, ManifestSpec, S3Source, TaskReportSpec,
};
use crate::ids::{DataSyncTaskArn, RoleArn, S3BucketArn, is_forbidden_char};

impl Checker {
    pub(super) fn datasync(&mut self, job: &JobSpec) -> Option<DataSyncJob> {
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

    pub(super) fn options(&mut self, o: &DataSyncOptions) {
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
    pub(super) fn filter(&mut self, name: &str, patterns: &[String]) {
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

    pub(super) fn manifest(&mut self, m: &ManifestSpec) -> Option<S3Source> {
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

    pub(super) fn task_report(&mut self, r: &TaskReportSpec) -> Option<S3Source> {
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
