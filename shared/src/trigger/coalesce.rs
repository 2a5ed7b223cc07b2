//! Coalescing: turn a batch of uploaded objects into as few jobs as the APIs allow.
//!
//! - FSx (import, export, release): one job per route. Keys become paths; when there are more
//!   than the path cap allows (32 by default), sibling paths collapse into their common
//!   directory, level by level, so the task covers every object while importing as little else
//!   as possible, and never more than the route's prefix.
//! - DataSync: one job per route with an `Includes` filter of the exact files (`/`-rooted,
//!   `|`-separated, at most 102,400 characters). A batch that does not fit, or has keys a filter
//!   cannot express (`|` separates patterns, `*` is a wildcard), goes into a CSV manifest in S3
//!   instead (a manifest lists full file paths relative to the source location). Without a
//!   manifest target, long batches split into several filters; inexpressible keys are errors.
//!
//! Objects are sorted and deduplicated first, so the same set of objects always produces the
//! same jobs, whatever order the records arrived in: a redelivered batch names the same
//! executions.

use std::collections::{BTreeSet, HashSet};

use sha2::{Digest, Sha256};

use super::events::S3Object;
use super::routes::{Route, Routes};
use crate::budget::{SPEC_BYTES, json_bytes, json_list_bytes, json_str_bytes};
use crate::domain::job::{JobKind, JobSpec, Limits};
pub use crate::domain::paths::{collapse, component_cmp};
use crate::domain::validate::{MAX_FILTER_CHARS, MAX_PATH_CHARS, filter_len, fsx_path_problem};
use crate::ids::{UploadId, is_forbidden_char};

/// A job to start, with what it needs written first and the messages it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedJob {
    pub route: usize,
    pub job: JobSpec,
    /// A DataSync manifest to write before starting (the job's `manifest` points at it).
    pub manifest: Option<ManifestFile>,
    /// Number of distinct objects the job covers.
    pub objects: usize,
    /// Indices of the messages whose objects the job covers.
    pub messages: BTreeSet<usize>,
    /// SHA-256 over the uploads the job covers: each distinct key with the version id,
    /// sequencer and ETag of every record naming it. Two batches whose jobs look the same
    /// (paths collapsed to one folder) but carry different uploads differ here, so they get
    /// different execution names; a redelivered batch has the same uploads and the same name.
    pub uploads: [u8; 32],
    /// Each distinct upload the job covers, sorted: the lane table keeps them with the job, so
    /// that a message redelivered in another grouping finds its uploads queued.
    pub upload_ids: Vec<UploadId>,
}

/// A CSV manifest: one path per line (and a version id when the event had one). It goes to the
/// route's manifest bucket, under a key chosen from the job's content when the job is named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    pub body: Vec<u8>,
}

/// The outcome of planning one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    pub jobs: Vec<PlannedJob>,
    /// Objects no route matched (counted, and recorded for people; not an error).
    pub unmatched: usize,
    /// Those objects, with the index of the message each came from.
    pub unmatched_objects: Vec<(usize, S3Object)>,
    /// Objects that cannot be turned into a valid job, and why: refused for good (the same
    /// upload is refused again), so `s3-trigger` records them for people instead of failing
    /// their messages again and again.
    pub rejected: Vec<Refused>,
}

/// An upload refused, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    /// The index of the message it came in.
    pub message: usize,
    pub object: S3Object,
    pub reason: String,
}

/// `(route, object, message)`, sorted by route then key: duplicates of a key are adjacent.
struct Routed<'a> {
    route: usize,
    /// The first eight bytes of the key below the route's prefix, in component order: most
    /// comparisons end here, without following the pointer to the key.
    head: u64,
    object: &'a S3Object,
    message: usize,
}

/// Plans the jobs for `objects`, each tagged with the index of the message it came from.
///
/// Borrows the objects: the handler keeps its parsed batch, nothing is copied.
pub fn plan<'a>(
    routes: &Routes,
    limits: &Limits,
    objects: impl IntoIterator<Item = (usize, &'a S3Object)>,
) -> Plan {
    let mut plan = Plan::default();
    let objects = objects.into_iter();
    let mut routed: Vec<Routed> = Vec::with_capacity(objects.size_hint().0);
    for (message, object) in objects {
        match routes.route_for(&object.bucket, &object.key) {
            None => {
                plan.unmatched += 1;
                plan.unmatched_objects.push((message, object.clone()));
            }
            Some(route) => routed.push(Routed {
                route,
                head: head(&object.key[routes.get(route).prefix.len()..]),
                object,
                message,
            }),
        }
    }
    // Component order (see `component_cmp`) is what `collapse` needs, so it does not sort again.
    routed.sort_unstable_by(|a, b| {
        a.route
            .cmp(&b.route)
            .then(a.head.cmp(&b.head))
            .then_with(|| component_cmp(&a.object.key, &b.object.key))
            .then(a.message.cmp(&b.message))
    });
    for group in routed.chunk_by(|a, b| a.route == b.route) {
        let index = group[0].route;
        let route = routes.get(index);
        if route.job.kind == JobKind::Datasync {
            plan_datasync(index, route, limits, group, &mut plan);
        } else {
            plan_fsx(index, route, limits, group, &mut plan);
        }
    }
    plan
}

/// The first eight bytes of `rel` as a number that orders like [`component_cmp`]: each byte
/// mapped to a distinct value in rank order (`/` lowest), missing bytes as 0. A smaller head
/// means a smaller key; equal heads need the full comparison.
fn head(rel: &str) -> u64 {
    let mut out = [0u8; 8];
    for (slot, &b) in out.iter_mut().zip(rel.as_bytes()) {
        *slot = match b {
            b'/' => 0,
            0..b'/' => b + 1,
            _ => b,
        };
    }
    u64::from_be_bytes(out)
}

/// The distinct objects of a sorted group: runs of records naming the same key.
fn distinct<'g, 'a>(group: &'g [Routed<'a>]) -> impl Iterator<Item = &'g [Routed<'a>]> {
    group.chunk_by(|a, b| a.object.key == b.object.key)
}

/// What identifies one upload of a key: version id, sequencer, ETag.
fn identity<'a>(r: &Routed<'a>) -> [&'a str; 3] {
    let o = r.object;
    [&o.version_id, &o.sequencer, &o.etag].map(|f| f.as_deref().unwrap_or(""))
}

/// The latest upload among the records naming one key, whatever order they arrived in: "the
/// event notification with the greater sequencer hexadecimal value is the event that occurred
/// later" (S3 User Guide, "Event message structure"). A record without a sequencer is taken to
/// be older than any with one; among equals, the last record wins. Issue 17, defect 1: the
/// first record's version used to be the one a manifest named, so a newer upload could be left
/// untransferred while its message was acknowledged.
fn newest<'g, 'a>(same: &'g [Routed<'a>]) -> &'g Routed<'a> {
    let mut best = &same[0];
    for r in &same[1..] {
        if sequencer_order(
            r.object.sequencer.as_deref(),
            best.object.sequencer.as_deref(),
        ) != std::cmp::Ordering::Less
        {
            best = r;
        }
    }
    best
}

/// Orders two sequencers by their hexadecimal value (leading zeros and letter case aside);
/// a missing or non-hex sequencer is lower than any valid one.
fn sequencer_order(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    let value = |s: Option<&str>| {
        s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(|s| s.trim_start_matches('0').to_ascii_lowercase())
    };
    match (value(a), value(b)) {
        (Some(a), Some(b)) => a.len().cmp(&b.len()).then_with(|| a.cmp(&b)),
        (a, b) => a.is_some().cmp(&b.is_some()),
    }
}

/// Appends one length-prefixed field, so no two different identities hash the same bytes.
fn field(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// What a job covers, gathered one distinct key at a time.
#[derive(Default)]
struct Covered<'a> {
    objects: usize,
    messages: Vec<usize>,
    /// Each record covered (its message and object), to name them if the job is refused.
    records: Vec<(usize, &'a S3Object)>,
    uploads: Sha256,
    upload_ids: Vec<UploadId>,
    /// One key's identity, hashed in one call (many small `update`s cost more than the hash).
    scratch: Vec<u8>,
}

impl<'a> Covered<'a> {
    /// Adds one distinct key (all the records naming it).
    fn add(&mut self, same: &[Routed<'a>]) {
        self.objects += 1;
        self.messages.extend(same.iter().map(|r| r.message));
        self.records
            .extend(same.iter().map(|r| (r.message, r.object)));
        self.upload_ids
            .extend(same.iter().map(|r| r.object.upload_id()));
        let buf = &mut self.scratch;
        buf.clear();
        field(buf, same[0].object.key.as_bytes());
        if let [only] = same {
            buf.push(1);
            for f in identity(only) {
                field(buf, f.as_bytes());
            }
        } else {
            // Duplicate records of one upload (a redelivery within the batch) count once.
            let mut identities: Vec<[&str; 3]> = same.iter().map(identity).collect();
            identities.sort_unstable();
            identities.dedup();
            buf.push(u8::try_from(identities.len()).unwrap_or(u8::MAX));
            for f in identities.iter().flatten() {
                field(buf, f.as_bytes());
            }
        }
        self.uploads.update(&self.scratch);
    }

    fn job(self, route: usize, job: JobSpec, manifest: Option<ManifestFile>) -> PlannedJob {
        let mut messages = self.messages;
        messages.sort_unstable();
        messages.dedup();
        let mut upload_ids = self.upload_ids;
        upload_ids.sort_unstable();
        upload_ids.dedup();
        PlannedJob {
            route,
            job,
            manifest,
            objects: self.objects,
            messages: messages.into_iter().collect(),
            uploads: self.uploads.finalize().into(),
            upload_ids,
        }
    }
}

/// Refuses every record of one distinct key.
fn reject(plan: &mut Plan, same: &[Routed], reason: &str) {
    reject_records(plan, same.iter().map(|r| (r.message, r.object)), reason);
}

/// Refuses each record (its message and object) for `reason`.
fn reject_records<'a>(
    plan: &mut Plan,
    records: impl IntoIterator<Item = (usize, &'a S3Object)>,
    reason: &str,
) {
    plan.rejected
        .extend(records.into_iter().map(|(message, object)| Refused {
            message,
            object: object.clone(),
            reason: reason.to_owned(),
        }));
}

/// Adds `job` when it is valid; otherwise fails every message it covers. Checked here, as
/// `start-task` would refuse it: the messages fail now instead of the execution later.
fn push_valid(
    plan: &mut Plan,
    index: usize,
    route: &Route,
    limits: &Limits,
    job: JobSpec,
    covered: Covered,
) {
    match job.clone().validate(limits) {
        Ok(_) => plan.jobs.push(covered.job(index, job, None)),
        Err(invalid) => {
            let reason = format!("route {}: {invalid}", route.name);
            reject_records(plan, covered.records, &reason);
        }
    }
}

/// True when `rel` is certainly a valid FSx path under the route: short, no control or line
/// separator characters, no `..` segment, nothing that could make it absolute or an S3 URL,
/// below a prefix that ends a directory. Anything else goes through the full check, which also
/// says why. (The full check formats the path first; skipping it for plain keys is most of the
/// per-object cost.)
fn plainly_valid(route: &Route, rel: &str) -> bool {
    let bytes = rel.as_bytes();
    let clean = if rel.is_ascii() {
        !bytes.iter().any(|b| matches!(b, 0 | b'\r' | b'\n'))
    } else {
        !rel.chars().any(is_forbidden_char)
    };
    // Byte length bounds character length, so the length test is conservative too.
    (route.prefix.is_empty() || route.prefix.ends_with('/'))
        && route.prefix.len() + route.bucket.as_str().len() + bytes.len() + "s3:///".len()
            <= MAX_PATH_CHARS
        && !bytes.is_empty()
        && bytes[0] != b'/'
        && !rel.starts_with("s3:")
        && clean
        && !rel.split('/').any(|segment| segment == "..")
}

fn plan_fsx(index: usize, route: &Route, limits: &Limits, group: &[Routed], plan: &mut Plan) {
    let kind = route.job.kind;
    let mut keys = Vec::with_capacity(group.len());
    let mut covered = Covered::default();
    for same in distinct(group) {
        let object = same[0].object;
        let rel = &object.key[route.prefix.len()..];
        // Check the object's own path: a key the API cannot take fails its messages alone.
        let problem = if plainly_valid(route, rel) {
            None
        } else {
            fsx_path_problem(kind, &fsx_path(route, rel, false))
        };
        if let Some(problem) = problem {
            let reason = format!("s3://{}/{}: {problem}", object.bucket, object.key);
            reject(plan, same, &reason);
            continue;
        }
        keys.push(rel);
        covered.add(same);
    }
    if keys.is_empty() {
        return;
    }
    let mut job = route.job.clone();
    let collapsed = collapse(&keys, limits.max_paths.max(1));
    // A folder that is also a key (`a` and `a/b` both uploaded) is imported as the prefix `a`,
    // which holds both: `a/` would leave the object `a` out.
    let uploaded: HashSet<&str> = if kind == JobKind::FsxImport && collapsed.iter().any(|(_, d)| *d)
    {
        keys.iter().copied().collect()
    } else {
        HashSet::new()
    };
    job.paths = collapsed
        .iter()
        .map(|(rel, dir)| fsx_path(route, rel, *dir && !uploaded.contains(rel.as_str())))
        .collect();
    if job.paths.len() == 1 && job.paths[0].is_empty() {
        match kind {
            JobKind::FsxExport => job.paths.clear(), // the whole file system: the API's default
            JobKind::FsxRelease => job.paths = vec!["/".into()],
            _ => {}
        }
    }
    push_valid(plan, index, route, limits, job, covered);
}

/// The FSx path for a relative key (or collapsed prefix) of a route: `s3://bucket/prefix/rel`
/// for imports (directories end in `/`), `file_system_root/rel` for export and release.
fn fsx_path(route: &Route, rel: &str, dir: bool) -> String {
    if route.job.kind == JobKind::FsxImport {
        let slash = if dir && !rel.is_empty() { "/" } else { "" };
        return format!("s3://{}/{}{rel}{slash}", route.bucket, route.prefix);
    }
    let root = route.file_system_root();
    match (root.is_empty(), rel.is_empty()) {
        (_, true) => root.to_owned(),
        (true, false) => rel.to_owned(),
        (false, false) => format!("{root}/{rel}"),
    }
}

/// DataSync filter syntax: `|` separates patterns and `*` is a wildcard (API reference,
/// `FilterRule`): a key holding either can only be listed in a manifest. So can a key with a
/// control character, which a filter value may not hold (start-task rejects it) but a quoted
/// manifest field can (user guide, "Creating your manifest": quote paths with line endings).
fn inexpressible(rel: &str) -> bool {
    rel.contains('|') || rel.contains('*') || rel.chars().any(is_forbidden_char)
}

/// Why DataSync cannot transfer the object at `key`, if it cannot: "DataSync can't transfer
/// objects with a prefix that begins with a slash (/) or includes //, /./, or /../ patterns"
/// (API reference, `CreateLocationS3` `Subdirectory`). Such a key must fail its own messages:
/// stripping the slash would name another object, and `..` could reach outside the route.
/// A trailing `/` (a folder marker) is allowed.
fn datasync_key_problem(key: &str) -> Option<&'static str> {
    let body = key.strip_suffix('/').unwrap_or(key);
    body.split('/')
        .any(|segment| matches!(segment, "" | "." | ".."))
        .then_some(
            "DataSync cannot transfer a key that begins with '/' or contains '//', '/./' or '/../'",
        )
}

fn plan_datasync(index: usize, route: &Route, limits: &Limits, group: &[Routed], plan: &mut Plan) {
    let source = route.source_prefix();
    let mut entries: Vec<(&str, &[Routed])> = Vec::with_capacity(group.len());
    for same in distinct(group) {
        let key = &same[0].object.key;
        if let Some(problem) = datasync_key_problem(key) {
            let reason = format!("s3://{}/{key}: {problem}", same[0].object.bucket);
            reject(plan, same, &reason);
            continue;
        }
        // Relative to the source location; one `/` separates a source prefix given without it.
        let rel = &key[source.len()..];
        entries.push((rel.strip_prefix('/').unwrap_or(rel), same));
    }
    if entries.is_empty() {
        return;
    }
    let filter_len = entries
        .iter()
        .map(|(rel, _)| filter_len(rel) + 1)
        .sum::<usize>()
        + entries.len().saturating_sub(1);
    let filter_bytes = 2 + entries
        .iter()
        .map(|(rel, _)| json_str_bytes(rel) + 2)
        .sum::<usize>();
    let needs_manifest = filter_len > MAX_FILTER_CHARS
        || filter_bytes > includes_budget(route)
        || entries.iter().any(|(rel, _)| inexpressible(rel));
    if needs_manifest && route.manifest.is_some() {
        plan_manifest(index, route, &entries, plan);
    } else {
        plan_filters(index, route, limits, entries, plan);
    }
}

/// One job whose manifest lists every entry.
fn plan_manifest(index: usize, route: &Route, entries: &[(&str, &[Routed])], plan: &mut Plan) {
    // Flexible: a row has a version id only when its event had one, so rows of one
    // manifest can have one field or two (a strict writer refuses the second kind).
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_writer(Vec::new());
    let mut covered = Covered::default();
    for (rel, same) in entries {
        let row: Vec<&str> = std::iter::once(*rel)
            .chain(newest(same).object.version_id.as_deref())
            .collect();
        match writer.write_record(&row) {
            Ok(()) => covered.add(same),
            // Not expected writing to memory; if it happens, the object fails, never
            // silently missing from the manifest.
            Err(e) => reject(plan, same, &format!("{rel:?}: manifest row: {e}")),
        }
    }
    match writer.into_inner() {
        Ok(body) if covered.objects > 0 => {
            let manifest = ManifestFile { body };
            plan.jobs
                .push(covered.job(index, route.job.clone(), Some(manifest)));
        }
        Ok(_) => {}
        Err(e) => {
            let reason = format!("route {}: manifest: {e}", route.name);
            reject_records(plan, covered.records, &reason);
        }
    }
}

/// The most the `includes` of a job from `route` may weigh as JSON: the job spec must stay
/// within [`SPEC_BYTES`] (it is kept in one DynamoDB item), and the route's own job (its
/// excludes, tags, options) takes its share first. Keys of many-byte scripts reach this before
/// DataSync's 102,400 characters: 102,400 CJK characters weigh 300 KB.
fn includes_budget(route: &Route) -> usize {
    let mut probe = route.job.clone();
    probe.includes = vec![String::new()];
    // The route's job, its includes key and an empty list's bytes; what is left is the list's.
    let fixed = json_bytes(&probe) - json_list_bytes([""]);
    SPEC_BYTES.saturating_sub(fixed)
}

/// Include filters only: as many jobs as it takes for each filter to fit in one rule, and each
/// job within the spec budget ([`includes_budget`]).
fn plan_filters(
    index: usize,
    route: &Route,
    limits: &Limits,
    entries: Vec<(&str, &[Routed])>,
    plan: &mut Plan,
) {
    let mut chunk: Vec<String> = Vec::new();
    let mut chunk_len = 0usize;
    let budget = includes_budget(route);
    // The list's JSON: its brackets, then each pattern and a comma.
    let mut chunk_bytes = 2usize;
    let mut covered = Covered::default();
    let flush = |chunk: &mut Vec<String>, covered: &mut Covered, plan: &mut Plan| {
        if chunk.is_empty() {
            return;
        }
        let mut job = route.job.clone();
        job.includes = std::mem::take(chunk);
        push_valid(plan, index, route, limits, job, std::mem::take(covered));
    };
    for (rel, same) in entries {
        if inexpressible(rel) {
            let reason = format!(
                "{rel:?} contains '|', '*' or a control character, which a DataSync filter cannot express; configure a manifest for route {}",
                route.name
            );
            reject(plan, same, &reason);
            continue;
        }
        let pattern = format!("/{rel}");
        let added = filter_len(&pattern) + usize::from(!chunk.is_empty());
        let weight = json_str_bytes(&pattern) + usize::from(!chunk.is_empty());
        if chunk_len + added > MAX_FILTER_CHARS || chunk_bytes + weight > budget {
            flush(&mut chunk, &mut covered, plan);
            chunk_len = 0;
            chunk_bytes = 2;
        }
        chunk_len += filter_len(&pattern) + usize::from(!chunk.is_empty());
        chunk_bytes += json_str_bytes(&pattern) + usize::from(!chunk.is_empty());
        chunk.push(pattern);
        covered.add(same);
    }
    flush(&mut chunk, &mut covered, plan);
}

#[cfg(test)]
mod tests;
