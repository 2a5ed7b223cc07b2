//! `s3-trigger`: uploads in, state-machine executions out, nothing lost.
//!
//! Reads the invocation ([`crate::trigger::events`]), routes and coalesces the created objects
//! ([`crate::trigger::coalesce`]), writes a DataSync manifest where one is needed, and starts
//! one Step Functions execution per job, named after its content
//! ([`crate::trigger::execution_name`]), so a redelivered batch starts nothing new. For SQS it
//! reports per-message failures (`batchItemFailures`): only the messages behind a failed start,
//! or a message that cannot be read, are redelivered; a poison message fails alone.

use std::collections::BTreeSet;

use aws_lambda_events::sqs::SqsBatchResponse;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{error, info, warn};

use crate::config::TriggerConfig;
use crate::domain::job::JobSpec;
use crate::error::FerryError;
use crate::ids::S3Url;
use crate::ports::{PutObject, StartExecution, StartOutcome};
use crate::trigger::coalesce::{self, ManifestFile, PlannedJob};
use crate::trigger::events::{self, Batch, Shape};
use crate::trigger::execution_name;
use crate::trigger::routes::Route;

/// What a direct (S3 or EventBridge) invocation did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerSummary {
    pub objects: usize,
    pub unmatched: usize,
    pub ignored: usize,
    pub started: Vec<String>,
    pub already_started: Vec<String>,
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

pub async fn handle<P: StartExecution + PutObject>(
    ports: &P,
    config: &TriggerConfig,
    event: LambdaEvent<Value>,
) -> Result<TriggerOutput, FerryError> {
    let batch = events::parse(event.payload).map_err(|e| FerryError::InvalidEvent {
        message: e.to_string(),
    })?;
    let mut failures = Failures::default();
    let mut summary = read(&batch, &mut failures);
    let objects = batch.messages.iter().enumerate().flat_map(|(i, message)| {
        let found = message.objects.as_deref().unwrap_or_default();
        found.iter().map(move |object| (i, object))
    });
    let plan = coalesce::plan(&config.routes, &config.limits, objects);
    summary.unmatched = plan.unmatched;
    if plan.unmatched > 0 {
        info!(unmatched = plan.unmatched, "objects matched no route");
    }
    for (message, reason) in &plan.rejected {
        warn!(message_id = ?batch.messages[*message].id, reason = %reason, "object cannot be transferred");
        failures.add([*message], || FerryError::InvalidEvent {
            message: reason.clone(),
        });
    }
    for planned in plan.jobs {
        act(ports, config, planned, &mut summary, &mut failures).await;
    }
    respond(&batch, summary, failures)
}

/// Counts what the batch holds and fails each message that cannot be read.
fn read(batch: &Batch, failures: &mut Failures) -> TriggerSummary {
    let mut summary = TriggerSummary::default();
    for (i, message) in batch.messages.iter().enumerate() {
        summary.ignored += message.ignored;
        match &message.objects {
            Ok(found) => summary.objects += found.len(),
            Err(e) => {
                warn!(message_id = ?message.id, error = %e, "unreadable message");
                failures.add([i], || FerryError::InvalidEvent {
                    message: e.to_string(),
                });
            }
        }
    }
    summary
}

/// Starts one planned job; a failure fails every message the job covers.
async fn act<P: StartExecution + PutObject>(
    ports: &P,
    config: &TriggerConfig,
    planned: PlannedJob,
    summary: &mut TriggerSummary,
    failures: &mut Failures,
) {
    let route = config.routes.get(planned.route);
    let name = execution_name(route, &planned.job, &planned.uploads);
    match start(ports, route, &name, planned.job, planned.manifest).await {
        Ok(StartOutcome::Started { execution_arn }) => {
            info!(execution = %name, execution_arn = %execution_arn, objects = planned.objects, "execution started");
            summary.started.push(name);
        }
        Ok(StartOutcome::AlreadyStarted) => {
            info!(execution = %name, objects = planned.objects, "execution already started");
            summary.already_started.push(name);
        }
        Err(e) => {
            error!(execution = %name, error_type = e.error_type(), error = %e, "could not start execution");
            failures.add(planned.messages, || e);
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

async fn start<P: StartExecution + PutObject>(
    ports: &P,
    route: &Route,
    name: &str,
    mut job: JobSpec,
    manifest: Option<ManifestFile>,
) -> Result<StartOutcome, FerryError> {
    if let (Some(file), Some(target)) = (manifest, &route.manifest) {
        let object = S3Url::new(&target.bucket, &format!("{}{name}.csv", target.prefix));
        ports.put_object(&object, file.body).await?;
        job.manifest = route.manifest_spec(object.key());
    }
    let input = serde_json::json!({ "job": job }).to_string();
    ports.start_execution(name, &input).await
}
