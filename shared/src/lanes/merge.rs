//! Merging pending jobs into one run: group commit for a lane.
//!
//! When a lane frees, the runner takes the oldest pending job and every later one that can
//! share its task, within the API's limits:
//!
//! - **Compatible**: same kind and the same options — the spec with its targets (`paths`,
//!   `includes`) and its name, timeout and rerun link left out ([`compatibility_key`]). A DataSync job with
//!   a manifest runs alone (merging manifests would mean writing a new one).
//! - **FSx**: the union of the jobs' paths, each covered path dropped; when that exceeds the
//!   path cap, paths that share a job's collapse root (the route prefix an upload job came
//!   from) collapse to common directories inside that root, never above it. A job with no
//!   paths (the whole file system, or every linked repository) covers every other job's paths.
//! - **DataSync**: the union of the jobs' include patterns while the joined filter stays within
//!   102,400 characters; a job with no includes (the whole task) covers every other job.
//!
//! - **Bytes**: the merged spec within [`SPEC_BYTES`] as JSON, since the run's record keeps it
//!   in one DynamoDB item: a merge stops adding a job at the first budget it would cross.
//!
//! A job that does not fit stays pending for the next run: the oldest job is always taken, so
//! no job waits behind ever newer ones.

use std::collections::{BTreeMap, BTreeSet};

use crate::budget::{SPEC_BYTES, json_bytes, json_list_bytes, json_str_bytes};
use crate::domain::job::{JobKind, JobSpec, Limits};
use crate::domain::paths::collapse;
use crate::domain::validate::{MAX_FILTER_CHARS, filter_value_len};

/// A job waiting in a lane, as the merge sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<'a> {
    pub spec: &'a JobSpec,
    /// The prefix the job's paths may collapse within (an upload job's route prefix, in the
    /// form of its paths); `None`: the paths stay as given.
    pub collapse_root: Option<&'a str>,
}

/// What a run covers: which candidates (by index) and the one task spec that does it.
#[derive(Debug, Clone, PartialEq)]
pub struct Merged {
    pub taken: Vec<usize>,
    pub spec: JobSpec,
}

/// The spec with everything a merge may differ in left out: two jobs merge only when these
/// are equal.
pub fn compatibility_key(spec: &JobSpec) -> JobSpec {
    let mut key = spec.clone();
    key.name = String::new();
    key.paths.clear();
    key.includes.clear();
    key.timeout_seconds = None;
    // A rerun's link to the run it reruns is its own (its member record keeps it for the
    // report); it merges like any job.
    key.retry_of = None;
    key
}

/// Merges `pending` (oldest first) into one run: the first candidate and every compatible one
/// that fits. `None` when there is nothing pending.
pub fn merge(pending: &[Candidate<'_>], limits: &Limits) -> Option<Merged> {
    let first = pending.first()?;
    let key = compatibility_key(first.spec);
    let alone = first.spec.manifest.is_some();
    let mut targets = Targets::new(first, limits);
    let weigher = Weigher::new(first.spec);
    let mut taken = vec![0];
    for (i, candidate) in pending.iter().enumerate().skip(1) {
        if alone || candidate.spec.manifest.is_some() {
            break;
        }
        if compatibility_key(candidate.spec) == key && targets.try_add(candidate, &weigher) {
            taken.push(i);
        }
    }
    let mut spec = first.spec.clone();
    targets.write(&mut spec);
    spec.timeout_seconds = taken
        .iter()
        .filter_map(|&i| pending[i].spec.timeout_seconds)
        .max()
        .or(spec.timeout_seconds);
    Some(Merged { taken, spec })
}

/// The targets of a run so far.
#[derive(Debug, Clone)]
enum Targets {
    /// Every path of the file system or repository, or the whole DataSync task.
    Everything,
    Fsx(FsxPaths),
    DataSync(BTreeSet<String>),
}

impl Targets {
    fn new(first: &Candidate<'_>, limits: &Limits) -> Targets {
        let spec = first.spec;
        match spec.kind {
            JobKind::Datasync if spec.includes.is_empty() => Targets::Everything,
            JobKind::Datasync => Targets::DataSync(spec.includes.iter().cloned().collect()),
            _ if covers_everything(spec) => Targets::Everything,
            kind => {
                let mut paths = FsxPaths::new(kind, limits.max_paths.max(1));
                // The first job is valid on its own: its paths fit.
                paths.add(first);
                Targets::Fsx(paths)
            }
        }
    }

    /// Adds the candidate's targets when they fit; `false` leaves the targets as they were.
    fn try_add(&mut self, candidate: &Candidate<'_>, weigher: &Weigher) -> bool {
        let spec = candidate.spec;
        match self {
            Targets::Everything => true,
            Targets::DataSync(_) if spec.includes.is_empty() => {
                *self = Targets::Everything;
                true
            }
            Targets::DataSync(includes) => {
                let mut grown = includes.clone();
                grown.extend(spec.includes.iter().cloned());
                let joined: Vec<String> = grown.iter().cloned().collect();
                if filter_value_len(&joined) > MAX_FILTER_CHARS
                    || !weigher.fits(json_list_bytes(grown.iter().map(String::as_str)))
                {
                    return false;
                }
                *includes = grown;
                true
            }
            Targets::Fsx(_) if covers_everything(spec) => {
                *self = Targets::Everything;
                true
            }
            Targets::Fsx(paths) => {
                let mut grown = paths.clone();
                grown.add(candidate);
                if grown.fit() && weigher.fits(grown.list_bytes()) {
                    *paths = grown;
                    true
                } else {
                    false
                }
            }
        }
    }

    fn write(self, spec: &mut JobSpec) {
        match self {
            Targets::Everything if spec.kind == JobKind::FsxRelease => {
                spec.paths = vec!["/".into()];
            }
            Targets::Everything => {
                spec.paths.clear();
                spec.includes.clear();
            }
            Targets::Fsx(paths) => spec.paths = paths.list(),
            Targets::DataSync(includes) => spec.includes = includes.into_iter().collect(),
        }
    }
}

/// What a merged spec weighs besides its target list (`paths` or `includes`), counted once from
/// the first job: the rest of a merged spec is the first job's, but for its timeout, counted
/// here at its longest.
#[derive(Debug, Clone, Copy)]
struct Weigher {
    fixed: usize,
}

impl Weigher {
    fn new(first: &JobSpec) -> Weigher {
        let mut probe = first.clone();
        probe.timeout_seconds = Some(u64::MAX);
        if first.kind == JobKind::Datasync {
            probe.includes = vec![String::new()];
        } else {
            probe.paths = vec![String::new()];
        }
        Weigher {
            fixed: json_bytes(&probe) - json_list_bytes([""]),
        }
    }

    /// True when a merged spec whose target list weighs `list_bytes` (as a JSON array) stays
    /// within [`SPEC_BYTES`].
    fn fits(self, list_bytes: usize) -> bool {
        self.fixed + list_bytes <= SPEC_BYTES
    }
}

/// An FSx job without paths covers the whole file system (export, release) or every linked
/// repository (import); a release also says so with `/`.
fn covers_everything(spec: &JobSpec) -> bool {
    spec.paths.is_empty()
        || (spec.kind == JobKind::FsxRelease && spec.paths.iter().any(|p| p == "/"))
}

/// FSx paths grouped by the root they may collapse within.
#[derive(Debug, Clone)]
struct FsxPaths {
    kind: JobKind,
    cap: usize,
    /// Root → paths relative to it (`None`: paths that never collapse, kept whole).
    groups: BTreeMap<Option<String>, BTreeSet<String>>,
}

impl FsxPaths {
    fn new(kind: JobKind, cap: usize) -> FsxPaths {
        FsxPaths {
            kind,
            cap,
            groups: BTreeMap::new(),
        }
    }

    fn add(&mut self, candidate: &Candidate<'_>) {
        for path in &candidate.spec.paths {
            let (root, rel) = match candidate.collapse_root {
                Some(root) if path.starts_with(root) => {
                    (Some(root.to_owned()), path[root.len()..].to_owned())
                }
                _ => (None, path.clone()),
            };
            self.groups.entry(root).or_default().insert(rel);
        }
        for paths in self.groups.values_mut() {
            prune_covered(paths, self.kind);
        }
    }

    fn count(&self) -> usize {
        self.groups.values().map(BTreeSet::len).sum()
    }

    /// Collapses the roots' paths until the count is within the cap; `false` when even
    /// collapsing each root to itself is not enough.
    fn fit(&mut self) -> bool {
        if self.count() <= self.cap {
            return true;
        }
        let fixed = self.groups.get(&None).map_or(0, BTreeSet::len);
        let roots: Vec<String> = self.groups.keys().flatten().cloned().collect();
        if fixed + roots.len() > self.cap {
            return false;
        }
        // Share the room left among the roots; collapsing one to fewer paths never widens it
        // past its root.
        let mut room = self.cap - fixed;
        for (i, root) in roots.iter().enumerate() {
            let group = self.groups.entry(Some(root.clone())).or_default();
            let share = room - (roots.len() - i - 1);
            let collapsed = collapse_group(group, share, self.kind);
            room -= collapsed.len();
            *group = collapsed;
        }
        self.count() <= self.cap
    }

    /// What [`FsxPaths::list`] weighs as a JSON array, without building it: a root joined to
    /// a path escapes as the two do apart.
    fn list_bytes(&self) -> usize {
        let mut count = 0usize;
        let mut sum = 0usize;
        for (root, rels) in &self.groups {
            let root_bytes = root.as_deref().map_or(0, |r| json_str_bytes(r) - 2);
            for rel in rels {
                count += 1;
                sum += root_bytes + json_str_bytes(rel);
            }
        }
        2 + sum + count.saturating_sub(1)
    }

    /// The paths, roots joined back on.
    fn list(self) -> Vec<String> {
        let mut out = Vec::new();
        for (root, rels) in self.groups {
            for rel in rels {
                out.push(match &root {
                    None => rel,
                    Some(root) => format!("{root}{rel}"),
                });
            }
        }
        out
    }
}

/// True when `path` covers `other`: for an import, an S3 prefix ending in `/` covers every key
/// under it; on the file system, a directory path covers everything below it.
fn covers(kind: JobKind, path: &str, other: &str) -> bool {
    // Within a root, the empty path is the root itself.
    if path == other || path.is_empty() {
        return true;
    }
    if kind == JobKind::FsxImport {
        return path.ends_with('/') && other.starts_with(path);
    }
    other
        .strip_prefix(path)
        .is_some_and(|rest| rest.starts_with('/') || path.ends_with('/'))
}

/// Drops every path another path in the set covers.
fn prune_covered(paths: &mut BTreeSet<String>, kind: JobKind) {
    let all: Vec<String> = paths.iter().cloned().collect();
    paths.retain(|p| !all.iter().any(|q| q != p && covers(kind, q, p)));
}

/// At most `cap` paths covering `group` (relative to its root), through the same collapse as
/// coalescing. A directory stays marked as one: an import prefix keeps its `/`.
fn collapse_group(group: &BTreeSet<String>, cap: usize, kind: JobKind) -> BTreeSet<String> {
    let keys: Vec<&str> = group.iter().map(String::as_str).collect();
    let dirs: BTreeSet<&str> = group
        .iter()
        .filter(|p| p.ends_with('/'))
        .map(|p| p.trim_end_matches('/'))
        .collect();
    collapse(&keys, cap.max(1))
        .into_iter()
        .map(|(rel, dir)| {
            // A folder that is also a file of the group stays a bare prefix, holding both.
            let slash = kind == JobKind::FsxImport
                && !rel.is_empty()
                && (dir || dirs.contains(rel.as_str()))
                && !group.contains(rel.as_str());
            if slash { format!("{rel}/") } else { rel }
        })
        .collect()
}

#[cfg(test)]
mod tests;
