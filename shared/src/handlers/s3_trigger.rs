//! `s3-trigger`: uploads in, jobs queued on their lanes, nothing lost.
//!
//! Reads the invocation ([`crate::trigger::events`]), routes and coalesces the created objects
//! ([`crate::trigger::coalesce`]), writes a DataSync manifest where one is needed, enqueues each
//! job on its lane (its id derives from the uploads it covers, so a redelivered batch adds
//! nothing), then kicks each lane's runner. Each job is enqueued with the ids of the uploads it
//! covers, in the same transaction: an SQS message delivered again (after an invocation died
//! past its enqueue) may come in another grouping, whose job would have another id, so the
//! uploads of redelivered messages are looked up first and those already queued are left out. A message is acknowledged only once its jobs are
//! enqueued: for SQS it reports per-message failures (`batchItemFailures`), so only the messages
//! behind a failed enqueue, or a message that cannot be read, are redelivered; a poison message
//! fails alone. A failed kick fails nothing: the jobs are queued, and the sweep starts the
//! runner.
//!
//! An FSx route whose job would fail on its file system's links to S3 (an import prefix no
//! association links, an export where FSx exports automatically: [`links::problems`] for the
//! route's whole prefix) queues nothing: its uploads' messages fail for redelivery, then reach
//! the upload queue's dead-letter queue, to be redriven once the route or the associations are
//! mended. The links are read through a cache (a minute); a read that fails lets the uploads
//! through, logged, as their task would say the same thing later.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use aws_lambda_events::sqs::SqsBatchResponse;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, trace, warn};

use super::timing;
use crate::config::{ConfigError, ENV_ROUTES_URL, FromEnvironment, MAX_ROUTES_BYTES};
use crate::domain::job::{JobSpec, Limits, Service};
use crate::domain::links;
use crate::domain::text::truncate_chars;
use crate::error::FerryError;
use crate::ids::{S3Url, UploadId};
use crate::lanes::record::{DroppedUpload, Enqueued, Millis, QueuedJob};
use crate::lanes::runner::{self, Kicked, Timing};
use crate::lanes::{JobId, JobSource, LaneId};
use crate::metrics::{self, Emf, Unit};
use crate::ports::{
    LaneLease, PutObject, QueuedUploads, ReadLinks, ReadRoutes, RecordDropped, StartExecution,
};
use crate::trigger::coalesce::{self, ManifestFile, PlannedJob, Refused};
use crate::trigger::config::TriggerConfig;
use crate::trigger::events::{self, Batch, S3Object, Shape};
use crate::trigger::job_name;
use crate::trigger::routes::Route;

/// What a direct (S3 or EventBridge) invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerSummary {
    pub objects: usize,
    pub unmatched: usize,
    pub ignored: usize,
    /// Objects refused: no job of their route could ever run them (recorded for people).
    #[serde(default)]
    pub refused: usize,
    /// Jobs added to their lanes, by id.
    pub enqueued: Vec<String>,
    /// Jobs that were queued before (a redelivery), by id.
    pub already_queued: Vec<String>,
    /// Uploads of redelivered messages that jobs enqueued before already cover (left out).
    #[serde(default)]
    pub uploads_already_queued: usize,
    /// Objects held back because their route does not fit its file system's links to S3
    /// (their messages fail for redelivery).
    #[serde(default)]
    pub misrouted: usize,
}

/// The handler's answer: SQS gets its batch response; other shapes a summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TriggerOutput {
    Sqs(SqsBatchResponse),
    Summary(TriggerSummary),
}

/// The messages that must be redelivered, and the first reason why.
#[derive(Default)]
struct Failures {
    messages: BTreeSet<usize>,
    first: Option<FerryError>,
}

impl Failures {
    fn add(
        &mut self,
        messages: impl IntoIterator<Item = usize>,
        error: impl FnOnce() -> FerryError,
    ) {
        self.messages.extend(messages);
        if self.first.is_none() {
            self.first = Some(error());
        }
    }
}

/// `s3-trigger`'s configuration, once, at cold start: the routes inline (`FERRY_ROUTES`), or
/// read from the object `FERRY_ROUTES_URL` names (at most [`MAX_ROUTES_BYTES`]) and validated
/// the same way. Any failure (no such object, access denied, invalid routes) stops the cold
/// start naming the variable and the object: Lambda reports the function's init error, and
/// the upload queue keeps the messages until it starts.
pub async fn load<R: ReadRoutes>(
    routes: &R,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<TriggerConfig, ConfigError> {
    let Some(object) = TriggerConfig::routes_object(&lookup)? else {
        return TriggerConfig::from_lookup(lookup);
    };
    let text = routes
        .read_routes(&object, MAX_ROUTES_BYTES)
        .await
        .map_err(|e| ConfigError {
            variable: ENV_ROUTES_URL,
            problem: format!("could not read the routes from {object}: {e}"),
        })?;
    let config = TriggerConfig::with_routes(&lookup, &text, ENV_ROUTES_URL).map_err(|e| {
        let problem = if e.variable == ENV_ROUTES_URL {
            format!("{object}: {}", e.problem)
        } else {
            e.problem
        };
        ConfigError { problem, ..e }
    })?;
    info!(routes = config.routes.len(), object = %object, "routes read");
    Ok(config)
}

/// `ports`: S3 for manifests and the runner state machine, and the lane table.
pub async fn handle<
    P: PutObject + StartExecution + ReadLinks,
    L: QueuedUploads + LaneLease + RecordDropped,
>(
    ports: &(P, L),
    config: &TriggerConfig,
    event: LambdaEvent<Value>,
) -> Result<TriggerOutput, FerryError> {
    let batch = events::parse(event.payload).map_err(|e| FerryError::InvalidEvent {
        message: e.to_string(),
    })?;
    let mut failures = Failures::default();
    let mut summary = read(&batch, &mut failures);
    let timing = timing(&config.lanes);
    let objects = || {
        batch.messages.iter().enumerate().flat_map(|(i, message)| {
            let found = message.objects.as_deref().unwrap_or_default();
            found.iter().map(move |object| (i, object))
        })
    };
    let mut plan = coalesce::plan(&config.routes, &config.limits, objects());
    let before = queued_before(&ports.1, config, (&batch, &plan), timing.now, &mut failures).await;
    if !before.queued.is_empty() || !before.unknown.is_empty() {
        // Planned again without them: the same uploads always make the same jobs.
        let left = objects().filter(|(i, object)| {
            !before.unknown.contains(i) && !before.queued.contains(&object.upload_id())
        });
        plan = coalesce::plan(&config.routes, &config.limits, left);
        summary.uploads_already_queued = before.queued.len();
        info!(
            uploads = before.queued.len(),
            "uploads of redelivered messages were queued before; left out"
        );
    }
    summary.unmatched = plan.unmatched;
    summary.refused = plan.rejected.len();
    if plan.unmatched > 0 {
        info!(unmatched = plan.unmatched, "objects matched no route");
    }
    for refused in &plan.rejected {
        // The reason names the key: payload, kept out of the logs (ferry history --unmatched
        // shows it); the key by its fingerprint.
        warn!(message_id = ?batch.messages[refused.message].id,
              key = %crate::domain::text::fingerprint(&refused.object.key),
              "an upload is refused: its job could never run; recorded");
    }
    let dropped = Dropped {
        unmatched: &plan.unmatched_objects,
        refused: &plan.rejected,
    };
    record_dropped(&ports.1, &batch, dropped, timing.now, &mut failures).await;
    let mut lanes = BTreeSet::new();
    let mut queued_objects = 0;
    for planned in plan.jobs {
        let objects = planned.objects;
        let found = (&mut summary, &mut failures);
        if let Some(lane) = act(ports, config, planned, timing.now, found).await {
            lanes.insert(lane);
            queued_objects += objects;
        }
    }
    kick_all(ports, lanes, timing, &event.context.request_id).await;
    emit_metrics(
        &summary,
        queued_objects,
        failures.messages.len(),
        timing.now,
    );
    respond(&batch, summary, failures)
}

/// The batch's counts as CloudWatch metrics (no dimension): what went where.
fn emit_metrics(summary: &TriggerSummary, queued: usize, failed: usize, now: Millis) {
    let mut emf = Emf::new(now, &[], &[&[]]);
    emf.add(metrics::UPLOADS_QUEUED, Unit::Count, queued as f64)
        .add(
            metrics::UPLOADS_UNMATCHED,
            Unit::Count,
            summary.unmatched as f64,
        )
        .add(
            metrics::UPLOADS_IGNORED,
            Unit::Count,
            summary.ignored as f64,
        )
        .add(
            metrics::UPLOADS_REFUSED,
            Unit::Count,
            summary.refused as f64,
        )
        .add(metrics::MESSAGES_FAILED, Unit::Count, failed as f64);
    emf.emit();
}

/// What of a batch starts nothing, besides the records that are not creations.
struct Dropped<'a> {
    /// Objects no route matched, with their message's index.
    unmatched: &'a [(usize, S3Object)],
    /// Objects whose job could never run (a key no task can name, a job over its budget).
    refused: &'a [Refused],
}

/// Records the uploads that start nothing (records that are not creations, objects no route
/// matched, objects refused) where `ferry history --unmatched` finds them. A refused upload is
/// refused again on every delivery, so it is recorded once and its message acknowledged rather
/// than failed until the dead-letter queue. A failed write fails their messages: they come back
/// rather than vanish unrecorded.
async fn record_dropped<L: RecordDropped>(
    lanes: &L,
    batch: &Batch,
    found: Dropped<'_>,
    now: Millis,
    failures: &mut Failures,
) {
    let mut dropped = Vec::new();
    let mut messages = BTreeSet::new();
    for (i, message) in batch.messages.iter().enumerate() {
        for ignored in &message.ignored {
            messages.insert(i);
            dropped.push(DroppedUpload {
                at: now,
                why: format!("ignored: {}", ignored.event),
                bucket: ignored.bucket.clone(),
                key: ignored.key.clone(),
                message_id: message.id.clone(),
            });
        }
    }
    let objects = found
        .unmatched
        .iter()
        .map(|(i, object)| (*i, object, "matched no route".to_owned()))
        .chain(found.refused.iter().map(|r| {
            let why = format!("refused: {}", truncate_chars(&r.reason, MAX_REFUSED_CHARS));
            (r.message, &r.object, why)
        }));
    for (i, object, why) in objects {
        messages.insert(i);
        dropped.push(DroppedUpload {
            at: now,
            why,
            bucket: Some(object.bucket.clone()),
            key: Some(object.key.clone()),
            message_id: batch.messages[i].id.clone(),
        });
    }
    if dropped.is_empty() {
        return;
    }
    if let Err(e) = lanes.record_dropped(&dropped).await {
        error!(uploads = dropped.len(), error_type = e.error_type(), error = %e,
               "could not record the uploads that start nothing; their messages come back");
        failures.add(messages, || e);
    }
}

/// Most characters of a refusal's reason kept with the upload (a reason names the key, and a
/// job's every broken rule).
const MAX_REFUSED_CHARS: usize = 2_000;

/// Counts what the batch holds and fails each message that cannot be read.
fn read(batch: &Batch, failures: &mut Failures) -> TriggerSummary {
    let mut summary = TriggerSummary::default();
    for (i, message) in batch.messages.iter().enumerate() {
        summary.ignored += message.ignored.len();
        match &message.objects {
            Ok(found) => summary.objects += found.len(),
            Err(e) => {
                // The error quotes the key (payload): WARN says which field and why, the key
                // only by its fingerprint; TRACE has it whole.
                warn!(message_id = ?message.id, error = %e.loggable(), "unreadable message");
                trace!(message_id = ?message.id, error = %e, "unreadable message");
                failures.add([i], || FerryError::InvalidEvent {
                    message: e.to_string(),
                });
            }
        }
    }
    summary
}

/// What the lane table says of the uploads of redelivered messages.
#[derive(Default)]
struct QueuedBefore {
    /// Uploads of this batch that jobs enqueued before cover.
    queued: HashSet<UploadId>,
    /// Messages whose lane could not be read: failed, and left out of the plan.
    unknown: BTreeSet<usize>,
}

/// How far before a message's `SentTimestamp` a job covering it is looked for: clocks differ.
const CLOCK_SKEW_MS: Millis = 5 * 60 * 1000;
/// How far back a lookup reaches at most: SQS keeps a message at most 14 days (the lane table
/// keeps what jobs cover 15).
const LOOKBACK_MS: Millis = 14 * 24 * 3_600_000;

/// For each lane with a planned job covering a redelivered message, the uploads jobs enqueued
/// since that message was sent cover (only those of this batch are kept). A lane that cannot be
/// read fails the messages of its jobs: they come back rather than risk a second job.
async fn queued_before<L: QueuedUploads>(
    lanes: &L,
    config: &TriggerConfig,
    (batch, plan): (&Batch, &coalesce::Plan),
    now: Millis,
    failures: &mut Failures,
) -> QueuedBefore {
    let mut found = QueuedBefore::default();
    let mut asks: BTreeMap<LaneId, (Millis, Vec<&PlannedJob>)> = BTreeMap::new();
    for planned in &plan.jobs {
        let messages = planned.messages.iter();
        let sent = messages
            .filter_map(|&i| batch.messages[i].redelivered_since)
            .min();
        // Planned jobs are valid (coalesce keeps no other), so each has a lane.
        let (Some(sent), Ok(valid)) = (sent, planned.job.clone().validate(&config.limits)) else {
            continue;
        };
        let ask = asks.entry(LaneId::of(&valid)).or_insert((sent, Vec::new()));
        ask.0 = ask.0.min(sent);
        ask.1.push(planned);
    }
    for (lane, (sent, jobs)) in asks {
        let since = sent
            .saturating_sub(CLOCK_SKEW_MS)
            .max(now.saturating_sub(LOOKBACK_MS));
        match lanes.queued_uploads(&lane, since).await {
            Ok(queued) => {
                let ours = jobs.iter().flat_map(|job| &job.upload_ids);
                found.queued.extend(ours.filter(|id| queued.contains(id)));
            }
            Err(e) => {
                error!(lane = %lane, error_type = e.error_type(), error = %e,
                       "could not read which uploads are queued; their messages come back");
                let messages: Vec<usize> = jobs
                    .iter()
                    .flat_map(|j| j.messages.iter().copied())
                    .collect();
                found.unknown.extend(&messages);
                failures.add(messages, || e);
            }
        }
    }
    found
}

/// Enqueues one planned job; a failure fails every message the job covers, as does a route
/// that does not fit its file system's links ([`misrouted`]). Returns the lane to kick when
/// the job is queued.
async fn act<P: PutObject + ReadLinks, L: QueuedUploads>(
    (objects, lanes): &(P, L),
    config: &TriggerConfig,
    planned: PlannedJob,
    now: Millis,
    (summary, failures): (&mut TriggerSummary, &mut Failures),
) -> Option<LaneId> {
    let route = config.routes.get(planned.route);
    if let Some(problems) = misrouted(objects, route, &config.limits).await {
        // The problems name the route's prefix and the links (configuration), never a key.
        error!(route = %route.name, problems = %problems,
               "the route does not fit its file system's links: its uploads are not queued");
        summary.misrouted += planned.objects;
        let message = format!("route {}: its tasks would fail: {problems}", route.name);
        failures.add(planned.messages, || FerryError::InvalidEvent { message });
        return None;
    }
    let name = job_name(route, &planned.job, &planned.uploads);
    let enqueue = async {
        let job = with_manifest(objects, route, &name, planned.job, planned.manifest).await?;
        let queued = queued_job(config, route, job, &planned.uploads, now)?;
        let outcome = lanes.enqueue_covering(&queued, &planned.upload_ids).await?;
        Ok::<_, FerryError>((queued, outcome))
    };
    match enqueue.await {
        Ok((queued, outcome)) => {
            info!(job = %queued.id, lane = %queued.lane, objects = planned.objects, outcome = ?outcome, "job queued");
            let ids = match outcome {
                Enqueued::Added => &mut summary.enqueued,
                Enqueued::AlreadyQueued => &mut summary.already_queued,
            };
            ids.push(queued.id.to_string());
            Some(queued.lane)
        }
        Err(e) => {
            error!(job = %name, error_type = e.error_type(), error = %e, "could not enqueue");
            failures.add(planned.messages, || e);
            None
        }
    }
}

/// Why every task of `route` would fail on its file system's links to S3: the problems of its
/// job for the route's whole prefix ([`links::problems`]). `None` for a DataSync route, a route
/// that fits, and links not known or not read (logged: the uploads go through unchecked).
async fn misrouted<R: ReadLinks>(reader: &R, route: &Route, limits: &Limits) -> Option<String> {
    let job = route.prefix_job(limits)?;
    let Service::Fsx(fsx) = job.service() else {
        return None;
    };
    match reader.read_links(&fsx.file_system_id).await {
        Ok(Some(read)) => {
            let problems: Vec<String> = links::problems(&job, &read)
                .iter()
                .map(ToString::to_string)
                .collect();
            (!problems.is_empty()).then(|| problems.join("; "))
        }
        Ok(None) => None,
        Err(e) => {
            warn!(route = %route.name, error_type = e.error_type(),
                  "the file system's links were not read: the route's uploads are not checked against them");
            None
        }
    }
}

/// The queue entry of a planned job: its id from the uploads it covers, its lane, and the
/// route prefix its paths may collapse within when runs merge.
fn queued_job(
    config: &TriggerConfig,
    route: &Route,
    job: JobSpec,
    uploads: &[u8; 32],
    now: Millis,
) -> Result<QueuedJob, FerryError> {
    let valid = job.validate(&config.limits)?;
    let timeout_ms = valid.timeout_seconds().saturating_mul(1000);
    Ok(QueuedJob {
        id: JobId::derive(&JobSource::Uploads(*uploads), &valid),
        lane: LaneId::of(&valid),
        collapse_root: Some(route.collapse_root()),
        source: format!("s3-trigger route {}", route.name),
        enqueued_at: now,
        deadline: now.saturating_add(timeout_ms),
        spec: valid.into_spec(),
    })
}

/// Kicks each lane that got a job. A kick that fails is logged, not failed: the jobs are
/// queued, and the sweep starts their runner.
async fn kick_all<P: StartExecution, L: LaneLease>(
    (runners, lanes): &(P, L),
    to_kick: BTreeSet<LaneId>,
    timing: Timing,
    salt: &str,
) {
    for lane in to_kick {
        match runner::kick((lanes, runners), &lane, timing, salt).await {
            Ok(Kicked::Started { owner }) => info!(lane = %lane, runner = %owner, "runner started"),
            Ok(Kicked::Running { owner }) => info!(lane = %lane, runner = %owner, "runner running"),
            Err(e) => warn!(lane = %lane, error_type = e.error_type(), error = %e,
                            "could not kick the lane; the sweep will"),
        }
    }
}

/// SQS: the batch response naming every failed message. Otherwise the summary, or the first
/// error (Lambda then retries the whole event).
fn respond(
    batch: &Batch,
    summary: TriggerSummary,
    failures: Failures,
) -> Result<TriggerOutput, FerryError> {
    if batch.shape != Shape::Sqs {
        return match failures.first {
            Some(e) => Err(e),
            None => Ok(TriggerOutput::Summary(summary)),
        };
    }
    let mut response = SqsBatchResponse::default();
    for i in failures.messages {
        match &batch.messages[i].id {
            Some(id) => response.add_failure(id.clone()),
            // Without a message id the failure cannot be reported per message: fail the
            // whole batch so nothing is deleted from the queue.
            None => {
                return Err(failures.first.unwrap_or(FerryError::InvalidEvent {
                    message: "SQS record without messageId".into(),
                }));
            }
        }
    }
    Ok(TriggerOutput::Sqs(response))
}

/// The job, with the manifest it needs written first (DataSync batches that do not fit a
/// filter), named after the job.
async fn with_manifest<P: PutObject>(
    objects: &P,
    route: &Route,
    name: &str,
    mut job: JobSpec,
    manifest: Option<ManifestFile>,
) -> Result<JobSpec, FerryError> {
    if let (Some(file), Some(target)) = (manifest, &route.manifest) {
        let bucket = target.bucket.clone().into();
        let object = S3Url::new(&bucket, &format!("{}{name}.csv", target.prefix));
        objects.put_object(&object, file.body).await?;
        job.manifest = route.manifest_spec(object.key());
    }
    Ok(job)
}
