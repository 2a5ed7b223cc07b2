//! Rerunning what a run did not do (`ferry retry`, issue 30): a job of the run's own kind and
//! options, linked to the run by `retry_of`, aimed either at everything the run covered or at
//! its failed files only.
//!
//! Failed files come from the task's own failure report, as the service names them:
//! - **FSx export and release**: paths relative to the file system's mount point (the user
//!   guide's example report names `dir1/myLargeFile`), which is what `Paths` takes.
//! - **FSx import**: the same kind of path, but an import's `Paths` are S3 prefixes, so each is
//!   mapped to S3 through the file system's links ([`Links::s3_url_of`]). A path already given
//!   as an `s3://` URL is taken as it is.
//! - **DataSync**: `RelativePath`, relative to the source location (with a leading `/` in Basic
//!   mode, without in Enhanced mode), which is what an include filter takes.
//!
//! The files are collapsed into at most the path cap (FSx) or one filter of 102,400
//! characters (DataSync), and the spec within [`SPEC_BYTES`], with the same collapse as uploads
//! ([`collapse`]): a collapsed directory reruns everything in it, which [`Rerun::widened`]
//! says.

use std::collections::BTreeSet;

use crate::budget::{self, SPEC_BYTES};
use crate::domain::job::{JobKind, JobSpec, Limits};
use crate::domain::links::Links;
use crate::domain::paths::collapse;
use crate::domain::validate::MAX_FILTER_CHARS;

/// A rerun's job, and what it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Rerun {
    pub spec: JobSpec,
    /// Distinct failed files it reruns.
    pub files: usize,
    /// Some of its paths or patterns are directories holding more than the failed files.
    pub widened: bool,
}

/// Why the failed files cannot be rerun alone.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RerunError {
    #[error("the run failed no file: there is nothing to rerun alone")]
    NothingFailed,
    #[error(
        "{0} runs no list of files (it frees capacity by age): rerun it whole, without --failed-only"
    )]
    NoFiles(&'static str),
    #[error(
        "the import failed {path:?}, a file system path no link maps to S3 ({links}): rerun the whole job"
    )]
    Unlinked { path: String, links: String },
    #[error(
        "the import's failures name file system paths, and mapping them to S3 needs the file system's links, which could not be read: {0}"
    )]
    LinksUnknown(String),
    #[error(
        "{path:?} contains '|', '*' or a control character, which a DataSync filter cannot express: rerun the whole job"
    )]
    Inexpressible { path: String },
    #[error("{0} failed files do not fit one job, even collapsed: rerun the whole job")]
    TooMany(usize),
}

/// The run's whole job again, linked to `run`.
pub fn whole(run_spec: &JobSpec, run: &str) -> JobSpec {
    let mut spec = run_spec.clone();
    spec.retry_of = Some(run.to_owned());
    spec
}

/// A job of the run's kind and options for its `failed` files only, linked to `run`. `links`
/// are the file system's (needed for an FSx import: `Err` says why they are not known).
pub fn failed_only(
    run_spec: &JobSpec,
    run: &str,
    failed: &[&str],
    links: Result<&Links, &str>,
    limits: &Limits,
) -> Result<Rerun, RerunError> {
    if failed.is_empty() {
        return Err(RerunError::NothingFailed);
    }
    let mut spec = whole(run_spec, run);
    match run_spec.kind {
        JobKind::FsxExport | JobKind::FsxRelease => {
            let keys: BTreeSet<&str> = failed.iter().map(|p| p.trim_matches('/')).collect();
            fsx(spec, keys, limits)
        }
        JobKind::FsxImport => {
            let urls = import_urls(failed, links)?;
            let keys: BTreeSet<&str> = urls.iter().map(String::as_str).collect();
            fsx(spec, keys, limits)
        }
        JobKind::FsxAutoRelease => Err(RerunError::NoFiles("an auto-release task")),
        JobKind::Datasync => {
            // The failed files are listed, whatever the run listed them with.
            spec.manifest = None;
            datasync(spec, failed)
        }
    }
}

/// Each failed import path as the S3 URL it was imported from.
fn import_urls(failed: &[&str], links: Result<&Links, &str>) -> Result<Vec<String>, RerunError> {
    let mut urls = Vec::with_capacity(failed.len());
    for path in failed {
        if path.starts_with("s3://") {
            urls.push((*path).to_owned());
            continue;
        }
        let links = links.map_err(|why| RerunError::LinksUnknown(why.to_owned()))?;
        let url = links.s3_url_of(path).ok_or_else(|| RerunError::Unlinked {
            path: (*path).to_owned(),
            links: links.to_string(),
        })?;
        urls.push(url);
    }
    Ok(urls)
}

/// The job for `keys` collapsed into at most `cap` targets, halving the cap until `fits` takes
/// it: `fits` sets the targets on the spec from the collapsed `(path, is_directory)` pairs and
/// says whether the job is within its limits (`Err`: it never can be).
fn shrink(
    keys: BTreeSet<&str>,
    mut cap: usize,
    mut fits: impl FnMut(Vec<(String, bool)>) -> Result<Option<JobSpec>, RerunError>,
) -> Result<Rerun, RerunError> {
    let files = keys.len();
    let keys: Vec<&str> = keys.into_iter().collect();
    cap = cap.clamp(1, files.max(1));
    loop {
        let collapsed = collapse(&keys, cap);
        let widened = collapsed.iter().any(|(_, dir)| *dir);
        if let Some(spec) = fits(collapsed)? {
            return Ok(Rerun {
                spec,
                files,
                widened,
            });
        }
        if cap == 1 {
            return Err(RerunError::TooMany(files));
        }
        cap /= 2;
    }
}

/// FSx: the files collapsed within the path cap, then within the spec budget.
fn fsx(mut spec: JobSpec, keys: BTreeSet<&str>, limits: &Limits) -> Result<Rerun, RerunError> {
    let files = keys.len();
    let import = spec.kind == JobKind::FsxImport;
    shrink(keys, limits.max_paths, |collapsed| {
        spec.paths = collapsed
            .into_iter()
            .map(|(path, dir)| {
                if import && dir && !path.ends_with('/') {
                    format!("{path}/")
                } else {
                    path
                }
            })
            .collect();
        let above_buckets = |p: &String| !p.starts_with("s3://") || p == "s3://";
        if import && spec.paths.iter().any(above_buckets) {
            // Collapsed above a bucket: more buckets than the cap.
            return Err(RerunError::TooMany(files));
        }
        if spec.paths == [""] {
            // Collapsed to the file system's root: the API's default for an export, `/` for a
            // release.
            spec.paths = match spec.kind {
                JobKind::FsxRelease => vec!["/".to_owned()],
                _ => Vec::new(),
            };
        }
        Ok((budget::json_bytes(&spec) <= SPEC_BYTES).then(|| spec.clone()))
    })
}

/// DataSync: one include pattern per file (`/` then its path relative to the source location),
/// collapsed until the filter fits one rule and the spec its budget.
fn datasync(mut spec: JobSpec, failed: &[&str]) -> Result<Rerun, RerunError> {
    let keys: BTreeSet<&str> = failed.iter().map(|p| p.trim_start_matches('/')).collect();
    if let Some(path) = keys
        .iter()
        .find(|k| k.contains(['|', '*']) || k.chars().any(char::is_control))
    {
        return Err(RerunError::Inexpressible {
            path: (*path).to_owned(),
        });
    }
    let files = keys.len();
    shrink(keys, files, |collapsed| {
        spec.includes = collapsed
            .into_iter()
            .map(|(path, _)| format!("/{path}"))
            .collect();
        if spec.includes == ["/"] {
            // Collapsed to the location itself: the whole task.
            spec.includes.clear();
        }
        // The patterns joined by `|`: each pattern and a separator, but one.
        let filter_chars: usize = spec.includes.iter().map(|p| p.chars().count() + 1).sum();
        let fits = filter_chars <= MAX_FILTER_CHARS + 1 && budget::json_bytes(&spec) <= SPEC_BYTES;
        Ok(fits.then(|| spec.clone()))
    })
}

#[cfg(test)]
mod tests;
