//! What links a file system to S3, and whether a job fits it (issue 30's preflight).
//!
//! FSx data repository tasks only work inside a file system's links: "A
//! CreateDataRepositoryTask operation will fail if a data repository is not linked to the FSx
//! file system" (FSx API reference). A link is a **data repository association** (a file system
//! path mapped 1-1 to an S3 path; "supported on ... all FSx for Lustre 2.12 and 2.15 file
//! systems, excluding scratch_1 deployment type", API_DataRepositoryAssociation) or, on the
//! older deployment types, the file system's own `DataRepositoryConfiguration` (`ImportPath`,
//! `ExportPath`; "not supported on file systems with a data repository association",
//! API_DataRepositoryConfiguration).
//!
//! [`problems`] says what would make a task fail, naming the path, the rule and the links:
//! - an import path (`s3://bucket/prefix`) in no linked S3 path;
//! - an export or release path in no association's file system path;
//! - an enabled completion report outside every linked S3 path ("must be located within the
//!   file system's ExportPath", API_CompletionReport);
//! - an export on an association that exports automatically: "Automatic export and export data
//!   repository tasks cannot run at the same time" (FSx for Lustre user guide, "Exporting
//!   changes to the data repository");
//! - any task on a file system with no link at all.
//!
//! A path above a link (the bucket of an association's prefix, a file system directory holding
//! an association's path) is not refused: it reaches the link. Associations that are not
//! `AVAILABLE` are named with their lifecycle in every message; they are not refused on that
//! alone (one `CREATING` now may be `AVAILABLE` by the time the job runs).

use std::fmt;

use crate::domain::job::{JobKind, JobSpec, Service, ValidJob};
use crate::error::FieldError;
use crate::ids::FileSystemId;

fn at(field: impl Into<String>, problem: String) -> FieldError {
    FieldError {
        field: field.into(),
        problem,
    }
}

/// One data repository association (`DescribeDataRepositoryAssociations`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Association {
    /// `dra-…`.
    pub id: String,
    /// `FileSystemPath`: `/ns1/` (the leading `/` is required; `/` is the whole file system).
    pub file_system_path: String,
    /// `DataRepositoryPath`: `s3://bucket/prefix/`.
    pub data_repository_path: String,
    /// `Lifecycle`: CREATING, AVAILABLE, MISCONFIGURED, UPDATING, DELETING, FAILED.
    pub lifecycle: String,
    /// `S3.AutoImportPolicy.Events` (NEW, CHANGED, DELETED); empty: no automatic import.
    #[serde(default)]
    pub auto_import: Vec<String>,
    /// `S3.AutoExportPolicy.Events`; empty: no automatic export.
    #[serde(default)]
    pub auto_export: Vec<String>,
}

/// How a file system is linked to S3.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "linked_by", rename_all = "snake_case")]
pub enum Links {
    /// Data repository associations (possibly none: then nothing is linked).
    Associations { associations: Vec<Association> },
    /// The older way: the file system's `DataRepositoryConfiguration`.
    FileSystem {
        import_path: String,
        export_path: Option<String>,
        /// `AutoImportPolicy`: NONE, NEW, NEW_CHANGED, NEW_CHANGED_DELETED.
        auto_import: Option<String>,
        lifecycle: Option<String>,
    },
}

impl Links {
    /// The linked S3 paths.
    fn s3_paths(&self) -> Vec<&str> {
        match self {
            Links::Associations { associations } => associations
                .iter()
                .map(|a| a.data_repository_path.as_str())
                .collect(),
            Links::FileSystem {
                import_path,
                export_path,
                ..
            } => std::iter::once(import_path.as_str())
                .chain(export_path.as_deref())
                .collect(),
        }
    }
}

impl Links {
    /// The S3 URL a file system path (relative to the mount point, as FSx reports name files)
    /// is linked to: under the association with the longest file system path that holds it,
    /// or under the file system's `ImportPath`. `None` when no link holds it.
    pub fn s3_url_of(&self, fs_path: &str) -> Option<String> {
        let path = fs_path.trim_matches('/');
        let (prefix, rest) = match self {
            Links::Associations { associations } => {
                let a = associations
                    .iter()
                    .filter(|a| within(path, &a.file_system_path))
                    .max_by_key(|a| normalized(&a.file_system_path).len())?;
                let root = normalized(&a.file_system_path);
                let rest = path[root.len()..].trim_start_matches('/');
                (a.data_repository_path.as_str(), rest)
            }
            Links::FileSystem { import_path, .. } => (import_path.as_str(), path),
        };
        let prefix = prefix.trim_end_matches('/');
        Some(if rest.is_empty() {
            format!("{prefix}/")
        } else {
            format!("{prefix}/{rest}")
        })
    }
}

impl fmt::Display for Links {
    /// `dra-1 /ns1/ ↔ s3://b/data/ (AVAILABLE, automatic export NEW,CHANGED); ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Links::Associations { associations } if associations.is_empty() => {
                f.write_str("no data repository association")
            }
            Links::Associations { associations } => {
                let listed: Vec<String> = associations.iter().map(describe).collect();
                write!(f, "associations {}", listed.join("; "))
            }
            Links::FileSystem {
                import_path,
                export_path,
                auto_import,
                lifecycle,
            } => {
                write!(f, "ImportPath {import_path}")?;
                if let Some(e) = export_path {
                    write!(f, ", ExportPath {e}")?;
                }
                if let Some(a) = auto_import.as_deref().filter(|a| *a != "NONE") {
                    write!(f, ", AutoImportPolicy {a}")?;
                }
                if let Some(l) = lifecycle.as_deref().filter(|l| *l != "AVAILABLE") {
                    write!(f, " ({l})")?;
                }
                Ok(())
            }
        }
    }
}

fn describe(a: &Association) -> String {
    let mut notes = vec![a.lifecycle.clone()];
    if !a.auto_import.is_empty() {
        notes.push(format!("automatic import {}", a.auto_import.join(",")));
    }
    if !a.auto_export.is_empty() {
        notes.push(format!("automatic export {}", a.auto_export.join(",")));
    }
    format!(
        "{} {} ↔ {} ({})",
        a.id,
        a.file_system_path,
        a.data_repository_path,
        notes.join(", ")
    )
}

/// `s3://b/p/` → `b/p`; `/ns1/` → `ns1`; `/` → ``.
fn normalized(path: &str) -> &str {
    path.strip_prefix("s3://").unwrap_or(path).trim_matches('/')
}

/// `inner` is `outer` or below it, segment by segment (`""` holds everything).
fn within(inner: &str, outer: &str) -> bool {
    let (inner, outer) = (normalized(inner), normalized(outer));
    outer.is_empty()
        || inner == outer
        || inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// One reaches the other: either holds the other.
fn related(a: &str, b: &str) -> bool {
    within(a, b) || within(b, a)
}

/// Everything about `job` that would make its task fail on a file system linked by `links`,
/// each naming the field, the rule and the links. Empty for DataSync jobs.
pub fn problems(job: &ValidJob, links: &Links) -> Vec<FieldError> {
    let Service::Fsx(fsx) = job.service() else {
        return Vec::new();
    };
    let fs = &fsx.file_system_id;
    let spec = job.spec();
    if matches!(links, Links::Associations { associations } if associations.is_empty()) {
        return vec![at(
            "job.file_system_id",
            format!(
                "{fs} is linked to no data repository (no data repository association, no ImportPath): \"A CreateDataRepositoryTask operation will fail if a data repository is not linked\""
            ),
        )];
    }
    let mut out = Vec::new();
    let s3_paths = links.s3_paths();
    match spec.kind {
        JobKind::FsxImport => {
            for (i, path) in spec.paths.iter().enumerate() {
                if !s3_paths.iter().any(|s3| related(path, s3)) {
                    out.push(at(
                        format!("job.paths[{i}]"),
                        format!(
                            "{path} is in no S3 path linked to {fs} (import paths must lie in a linked repository); it has {links}"
                        ),
                    ));
                }
            }
        }
        JobKind::FsxExport | JobKind::FsxRelease => {
            if let Links::Associations { associations } = links {
                out.extend(fs_path_problems(spec, fs, associations, links));
            }
        }
        _ => {}
    }
    if let Some(report) = &fsx.report_path
        && !s3_paths.iter().any(|s3| within(report.as_str(), s3))
    {
        out.push(at(
            "job.report.path",
            format!(
                "{report} is outside every S3 path linked to {fs} (a completion report \"must be located within the file system's ExportPath\" or an association's data repository); it has {links}"
            ),
        ));
    }
    out
}

/// Export and release paths against the associations' file system paths, and an export's
/// clash with automatic export.
fn fs_path_problems(
    spec: &JobSpec,
    fs: &FileSystemId,
    associations: &[Association],
    links: &Links,
) -> Vec<FieldError> {
    let mut out = Vec::new();
    // No paths: the whole file system (FSx uses the root directory).
    let whole = ["/".to_owned()];
    let paths: &[String] = if spec.paths.is_empty() {
        &whole
    } else {
        &spec.paths
    };
    for (i, path) in paths.iter().enumerate() {
        let (field, what) = if spec.paths.is_empty() {
            (
                "job.paths".to_owned(),
                "none (the whole file system)".to_owned(),
            )
        } else {
            (format!("job.paths[{i}]"), path.clone())
        };
        let reached: Vec<&Association> = associations
            .iter()
            .filter(|a| related(path, &a.file_system_path))
            .collect();
        if reached.is_empty() {
            out.push(at(
                field,
                format!(
                    "{what} is under no data repository association of {fs} ({} paths must lie in an association's file system path); it has {links}",
                    spec.kind.as_str()
                ),
            ));
            continue;
        }
        let exporting: Vec<&str> = reached
            .iter()
            .filter(|a| !a.auto_export.is_empty())
            .map(|a| a.id.as_str())
            .collect();
        if spec.kind == JobKind::FsxExport && !exporting.is_empty() {
            out.push(at(
                field,
                format!(
                    "{what} reaches {} which export{} automatically: \"Automatic export and export data repository tasks cannot run at the same time\" (FSx already exports these files); it has {links}",
                    exporting.join(", "),
                    if exporting.len() == 1 { "s" } else { "" }
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests;
