//! The oracle for `s3-trigger`: given an event and what the handler did with it, is every
//! uploaded object accounted for, and does every job stay inside its route?
//!
//! Shared, as one source file, by the fuzz targets (`fuzz/`) and by the hostile-input tests
//! (`tests/tests/all/hostile_input.rs` includes it with `#[path]`), so `cargo test` and `make fuzz`
//! hold the handler to the same promise:
//!
//! - every object an `ObjectCreated` record names is counted `unmatched` (no route), or is
//!   covered by a job of its route queued in its lane (an FSx path equal to or above it, a DataSync
//!   include pattern naming it, or a line of the manifest written for it), or it is recorded
//!   refused (a job that could never run, for `ferry history --unmatched`), or its message is
//!   reported failed (SQS `batchItemFailures`) or the whole invocation failed (so it is retried);
//! - every queued job is valid, and reaches nothing outside its route's prefix;
//! - a direct invocation's summary counts what the event holds.

use std::collections::{BTreeSet, HashSet};

use ferry::FerryError;
use ferry::config::{
    ENV_LANE_TABLE, ENV_MAX_PATHS, ENV_ROUTES, ENV_STATE_MACHINE_ARN, FromEnvironment,
};
use ferry::domain::job::{JobKind, JobSpec};
use ferry::fakes::FakeLanes;
use ferry::handlers::s3_trigger::TriggerOutput;
use ferry::lanes::record::DroppedUpload;
use ferry::trigger::config::TriggerConfig;
use ferry::trigger::events::{self, S3Object, Shape};
use ferry::trigger::routes::Route;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;

/// Routes of every kind, with a path cap of 4 so that coalescing collapses early.
pub const ROUTES: &str = r#"[
  {"name": "incoming-import", "bucket": "ferry-data-repository", "prefix": "incoming/",
   "job": {"name": "incoming-import", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0",
           "report": {"enabled": true, "path": "s3://ferry-data-repository/ferry-reports"}}},
  {"name": "outgoing-sync", "bucket": "ferry-data-repository", "prefix": "outgoing/",
   "source_prefix": "outgoing/",
   "manifest": {"bucket": "ferry-manifests", "prefix": "m/",
                "bucket_access_role_arn": "arn:aws:iam::111122223333:role/ferry-manifest"},
   "job": {"name": "outgoing-sync", "kind": "datasync",
           "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718"}},
  {"name": "export", "bucket": "ferry-data-repository", "prefix": "export/",
   "file_system_path": "/fsx/exports/",
   "job": {"name": "export", "kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0"}},
  {"name": "release", "bucket": "ferry-data-repository", "prefix": "release/",
   "job": {"name": "release", "kind": "fsx_release", "file_system_id": "fs-0123456789abcdef0",
           "release": {"days_since_last_access": 0}}},
  {"name": "sync", "bucket": "ferry-data-repository", "prefix": "sync",
   "job": {"name": "sync", "kind": "datasync",
           "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60719"}},
  {"name": "raw", "bucket": "ferry-raw", "suffixes": [".h5", ".nc"],
   "job": {"name": "raw", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef1"}}
]"#;

/// Key prefixes that reach each route of [`ROUTES`] (and one that reaches none).
pub const ROUTE_KEYS: [(&str, &str); 7] = [
    ("ferry-data-repository", "incoming/"),
    ("ferry-data-repository", "outgoing/"),
    ("ferry-data-repository", "export/"),
    ("ferry-data-repository", "release/"),
    ("ferry-data-repository", "sync"),
    ("ferry-raw", ""),
    ("ferry-data-repository", "elsewhere/"),
];

/// `s3-trigger`'s configuration over [`ROUTES`].
pub fn trigger_config() -> TriggerConfig {
    TriggerConfig::from_lookup(|name| match name {
        ENV_ROUTES => Some(ROUTES.to_owned()),
        ENV_MAX_PATHS => Some("4".to_owned()),
        ENV_STATE_MACHINE_ARN => {
            Some("arn:aws:states:us-east-1:111122223333:stateMachine:ferry".to_owned())
        }
        ENV_LANE_TABLE => Some("ferry-lanes".to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("the oracle's routes are invalid: {e}"))
}

/// What S3 leaves unencoded in notification keys: letters, digits and `-_.~` (RFC 3986
/// unreserved); a space becomes `+` (S3 user guide, "Event message structure").
const S3_KEY_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b' ');

/// A key as an S3 notification carries it.
pub fn form_encode(key: &str) -> String {
    utf8_percent_encode(key, S3_KEY_SET)
        .to_string()
        .replace(' ', "+")
}

/// The uploads the in-memory lane table recorded as starting nothing.
pub fn recorded(lanes: &FakeLanes) -> Vec<DroppedUpload> {
    lanes.dropped_uploads()
}

/// The jobs queued in the in-memory lane table, as (job id, `{"job": spec}`).
pub fn queued(lanes: &FakeLanes) -> Vec<(String, Value)> {
    lanes
        .jobs()
        .into_iter()
        .map(|(job, _)| (job.id.to_string(), serde_json::json!({ "job": job.spec })))
        .collect()
}

/// What the handler left behind for one invocation: the jobs it queued (id, `{"job": spec}`,
/// see [`queued`]), the objects it stored (bucket, key, body) and the uploads it recorded as
/// starting nothing (see [`recorded`]).
pub struct Effects<'a> {
    pub executions: &'a [(String, Value)],
    pub written: &'a [(String, String, Vec<u8>)],
    pub recorded: &'a [DroppedUpload],
}

/// Checks the handler's answer to `event`, given what it left behind (`effects`, this
/// invocation's alone).
pub fn check_trigger(
    config: &TriggerConfig,
    event: &Value,
    output: &Result<TriggerOutput, FerryError>,
    effects: Effects<'_>,
) -> Result<(), String> {
    let Effects {
        executions,
        written,
        recorded,
    } = effects;
    let batch = match events::parse(event.clone()) {
        Ok(batch) => batch,
        Err(_) => {
            return match output {
                Err(e) if e.error_type() == "InvalidEvent" => Ok(()),
                other => Err(format!("an event of no known shape got {other:?}")),
            };
        }
    };
    // Each queued job, with the rows of its manifest (read once: a batch may list thousands).
    let mut jobs = Vec::with_capacity(executions.len());
    for (name, input) in executions {
        let job = check_execution(config, name, input, written)?;
        let rows: HashSet<String> = manifest_rows(&job, written)
            .unwrap_or_default()
            .into_iter()
            .collect();
        jobs.push((job, rows));
    }
    let failed: BTreeSet<usize> = match (batch.shape, output) {
        // The whole invocation failed: Lambda retries all of it (SQS: the whole batch returns
        // to the queue), so nothing is lost.
        (_, Err(_)) => return Ok(()),
        (Shape::Sqs, Ok(TriggerOutput::Sqs(response))) => {
            let mut failed = BTreeSet::new();
            for failure in &response.batch_item_failures {
                let id = Some(failure.item_identifier.as_str());
                let before = failed.len();
                // SQS ids are unique; a fuzzed batch may repeat one, and then all of them return.
                failed.extend(
                    (0..batch.messages.len()).filter(|&i| batch.messages[i].id.as_deref() == id),
                );
                if failed.len() == before && !batch.messages.iter().any(|m| m.id.as_deref() == id) {
                    return Err(format!(
                        "batchItemFailures names {failure:?}, no message of the batch"
                    ));
                }
            }
            failed
        }
        (Shape::S3 | Shape::EventBridge, Ok(TriggerOutput::Summary(summary))) => {
            let objects: usize = batch
                .messages
                .iter()
                .map(|m| m.objects.as_ref().map_or(0, Vec::len))
                .sum();
            let ignored: usize = batch.messages.iter().map(|m| m.ignored.len()).sum();
            if summary.objects != objects || summary.ignored != ignored {
                return Err(format!(
                    "summary counts {} objects and {} ignored; the event has {objects} and {ignored}",
                    summary.objects, summary.ignored
                ));
            }
            BTreeSet::new()
        }
        (shape, Ok(other)) => return Err(format!("a {shape:?} event answered {other:?}")),
    };
    let mut unmatched = 0usize;
    for (i, message) in batch.messages.iter().enumerate() {
        if failed.contains(&i) {
            continue;
        }
        let objects = message.objects.as_ref().map_err(|e| {
            format!("message {i} could not be read ({e}) but was not reported failed")
        })?;
        for object in objects {
            let Some(index) = config.routes.route_for(&object.bucket, &object.key) else {
                unmatched += 1;
                continue;
            };
            let route = config.routes.get(index);
            let covered = jobs
                .iter()
                .filter(|(job, _)| job.name == route.job.name)
                .any(|(job, rows)| covers(route, job, rows, object));
            let refused = recorded.iter().any(|d| {
                d.why.starts_with("refused: ")
                    && d.bucket.as_deref() == Some(object.bucket.as_str())
                    && d.key.as_deref() == Some(object.key.as_str())
            });
            if !covered && !refused {
                return Err(format!(
                    "s3://{}/{:?} (message {i}) is in no queued job of route {}, was not recorded refused, and its message did not fail",
                    object.bucket, object.key, route.name
                ));
            }
        }
    }
    if let Ok(TriggerOutput::Summary(summary)) = output
        && summary.unmatched != unmatched
    {
        return Err(format!(
            "summary counts {} unmatched; {unmatched} objects match no route",
            summary.unmatched
        ));
    }
    Ok(())
}

/// One queued job: an id of `[A-Za-z0-9_-]` within 80 characters, a valid job that stays
/// inside its route, and a manifest that was written.
fn check_execution(
    config: &TriggerConfig,
    name: &str,
    input: &Value,
    written: &[(String, String, Vec<u8>)],
) -> Result<JobSpec, String> {
    let name_ok = (1..=80).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !name_ok {
        return Err(format!("job id {name:?} is not an id"));
    }
    let job: JobSpec = serde_json::from_value(input["job"].clone())
        .map_err(|e| format!("execution {name}: input is not {{\"job\": ...}}: {e}"))?;
    job.clone()
        .validate(&config.limits)
        .map_err(|e| format!("execution {name} carries an invalid job: {e}"))?;
    let route = (0..config.routes.len())
        .map(|i| config.routes.get(i))
        .find(|r| r.job.name == job.name)
        .ok_or_else(|| format!("execution {name}: job {:?} belongs to no route", job.name))?;
    if let Some(manifest) = &job.manifest {
        let rows = manifest_rows(&job, written)
            .ok_or_else(|| format!("execution {name}: manifest {manifest:?} was not written"))?;
        for row in rows {
            inside_datasync(route, &row)?;
        }
    }
    for include in &job.includes {
        let rel = include
            .strip_prefix('/')
            .ok_or_else(|| format!("include {include:?} is not /-rooted"))?;
        inside_datasync(route, rel)?;
    }
    for path in &job.paths {
        inside_fsx(route, job.kind, path)?;
    }
    Ok(job)
}

/// A DataSync path (relative to the source location) names a key under the route's prefix,
/// with no `.`/`..`/empty segment that could lead elsewhere.
fn inside_datasync(route: &Route, rel: &str) -> Result<(), String> {
    let key = join_source(route.source_prefix(), rel);
    // An empty path is the source location itself (a folder marker equal to the source
    // prefix): the key still lies under the route's prefix.
    let body = rel.strip_suffix('/').unwrap_or(rel);
    let dots = !body.is_empty() && body.split('/').any(|s| matches!(s, "" | "." | ".."));
    if !key.starts_with(&route.prefix) || dots {
        return Err(format!(
            "route {}: DataSync path {rel:?} reaches outside prefix {:?}",
            route.name, route.prefix
        ));
    }
    Ok(())
}

/// An FSx path stays at or below the route's prefix (import) or file system directory
/// (export, release), with no `..` segment.
fn inside_fsx(route: &Route, kind: JobKind, path: &str) -> Result<(), String> {
    let inside = if kind == JobKind::FsxImport {
        path.starts_with(&format!("s3://{}/{}", route.bucket, route.prefix))
    } else {
        let root = route.file_system_root();
        (path == "/" && root.is_empty())
            || root.is_empty()
            || path == root
            || path.starts_with(&format!("{root}/"))
    };
    if !inside || path.split('/').any(|s| s == "..") {
        return Err(format!(
            "route {}: path {path:?} reaches outside the route",
            route.name
        ));
    }
    Ok(())
}

/// The key a DataSync path names: relative paths hang under the source prefix, with one `/`
/// between them when the prefix does not end with one.
fn join_source(source: &str, rel: &str) -> String {
    if source.is_empty() || source.ends_with('/') {
        format!("{source}{rel}")
    } else {
        format!("{source}/{rel}")
    }
}

/// Whether `job` (started for `route`, with `manifest` rows) transfers `object`.
fn covers(route: &Route, job: &JobSpec, manifest: &HashSet<String>, object: &S3Object) -> bool {
    let key = object.key.as_str();
    match job.kind {
        JobKind::FsxImport => {
            let url = format!("s3://{}/{key}", object.bucket);
            job.paths.iter().any(|p| url.starts_with(p.as_str()))
        }
        JobKind::FsxExport | JobKind::FsxRelease | JobKind::FsxAutoRelease => {
            if job.paths.is_empty() || job.paths.iter().any(|p| p == "/") {
                return true; // the whole file system
            }
            let rel = &key[route.prefix.len()..];
            let root = route.file_system_root();
            let path = if root.is_empty() {
                rel.to_owned()
            } else {
                format!("{root}/{rel}")
            };
            let path = path.trim_end_matches('/');
            job.paths.iter().any(|p| {
                path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            })
        }
        JobKind::Datasync => {
            let rel = &key[route.source_prefix().len()..];
            let rel = rel.strip_prefix('/').unwrap_or(rel);
            job.includes
                .iter()
                .any(|i| i.strip_prefix('/') == Some(rel))
                || manifest.contains(rel)
        }
    }
}

/// The first field of each row of the manifest `job` points at, if it was written.
fn manifest_rows(job: &JobSpec, written: &[(String, String, Vec<u8>)]) -> Option<Vec<String>> {
    let manifest = job.manifest.as_ref()?;
    let bucket = manifest.bucket_arn.strip_prefix("arn:aws:s3:::")?;
    let (_, _, body) = written
        .iter()
        .find(|(b, k, _)| b == bucket && *k == manifest.object_path)?;
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body.as_slice());
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(record.ok()?.get(0)?.to_owned());
    }
    Some(rows)
}
