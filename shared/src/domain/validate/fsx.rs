//! The FSx kinds' rules: the file system, `paths`, the completion report, and what release
//! tasks take.

use aws_sdk_fsx::types as fsx;

use super::{API_MAX_PATHS, Checker, MAX_PATH_CHARS, MAX_REPORT_PATH_CHARS, field};
use crate::domain::job::{FsxJob, JobKind, JobSpec, Limits};
use crate::ids::{FileSystemId, S3Url, has_parent_segment, is_forbidden_char};

impl Checker {
    pub(super) fn fsx(&mut self, job: &JobSpec, limits: &Limits) -> Option<FsxJob> {
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
