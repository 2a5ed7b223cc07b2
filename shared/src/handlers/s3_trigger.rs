//! `s3-trigger`: uploads in, state-machine executions out, nothing lost.
//!
//! The handler reads the invocation ([`events`]), routes each created object ([`routes`]),
//! coalesces them into as few jobs as the APIs allow ([`coalesce`]), writes a DataSync manifest
//! where one is needed, and starts one Step Functions execution per job. Execution names derive
//! from the job's content, so a redelivered batch starts nothing new. For SQS it reports
//! per-message failures (`batchItemFailures`): only the messages behind a failed start, or a
//! message that cannot be read, are redelivered; a poison message fails alone.

pub mod coalesce;
pub mod events;
pub mod key;
pub mod routes;

use std::collections::BTreeSet;
use std::future::Future;

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tracing::{error, info, warn};

use crate::config::{self, ConfigError};
use crate::error::FerryError;
use crate::job::{JobSpec, Limits};
use events::Shape;
use routes::{Route, Routes};

/// Environment variable holding the routes (a JSON array; see README).
pub const ENV_ROUTES: &str = "FERRY_ROUTES";
/// Environment variable holding the state machine's ARN.
pub const ENV_STATE_MACHINE_ARN: &str = "FERRY_STATE_MACHINE_ARN";

/// Step Functions execution names: 1-80 characters (API reference, StartExecution `name`).
pub const MAX_EXECUTION_NAME: usize = 80;

/// What starting an execution did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutionStart {
    Started {
        execution_arn: String,
    },
    /// An execution with this name exists already (running with the same input, or ended
    /// within the last 90 days): this job was started before.
    AlreadyStarted,
}

/// Starts a state-machine execution.
pub trait StartExecution {
    fn start_execution(
        &self,
        name: &str,
        input: &str,
    ) -> impl Future<Output = Result<ExecutionStart, FerryError>> + Send;
}

/// Writes an object to S3 (DataSync manifests).
pub trait PutObject {
    fn put_object(
        &self,
        bucket: &str,
        key: &str,
        body: Vec<u8>,
    ) -> impl Future<Output = Result<(), FerryError>> + Send;
}

/// `s3-trigger`'s configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerConfig {
    pub routes: Routes,
    pub limits: Limits,
}

impl TriggerConfig {
    /// Reads `FERRY_ROUTES` and `FERRY_MAX_PATHS`; overlapping or invalid routes stop the
    /// function at cold start with every problem listed.
    pub fn from_env() -> Result<TriggerConfig, ConfigError> {
        TriggerConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<TriggerConfig, ConfigError> {
        let limits = config::Config::from_lookup(&lookup)?.limits;
        let text = lookup(ENV_ROUTES).ok_or_else(|| ConfigError {
            variable: ENV_ROUTES,
            problem: "is required: a JSON array of routes".into(),
        })?;
        let routes = Routes::from_json(&text, &limits).map_err(|e| ConfigError {
            variable: ENV_ROUTES,
            problem: e.to_string(),
        })?;
        Ok(TriggerConfig { routes, limits })
    }
}

/// Reads the state machine ARN (required by the AWS adapter).
pub fn state_machine_arn_from_env() -> Result<String, ConfigError> {
    std::env::var(ENV_STATE_MACHINE_ARN)
        .ok()
        .filter(|v| v.starts_with("arn:") && v.contains(":states:") && v.contains(":stateMachine:"))
        .ok_or_else(|| ConfigError {
            variable: ENV_STATE_MACHINE_ARN,
            problem: "is required: the ARN of Ferry's state machine (arn:aws:states:region:account:stateMachine:name)".into(),
        })
}

/// Lambda's partial batch response for SQS (`ReportBatchItemFailures`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SqsBatchResponse {
    #[serde(rename = "batchItemFailures")]
    pub batch_item_failures: Vec<BatchItemFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchItemFailure {
    #[serde(rename = "itemIdentifier")]
    pub item_identifier: String,
}

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

/// The execution name of a job: the route's name and a digest of the job and of the uploads
/// it covers (see [`coalesce::PlannedJob::uploads`]; a manifest is derived from those), within
/// Step Functions' 80 characters of `[A-Za-z0-9_-]`.
pub fn execution_name(route: &Route, job: &JobSpec, uploads: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(job).unwrap_or_default());
    hasher.update(b"\0uploads\0");
    hasher.update(uploads);
    let digest = hasher.finalize();
    let mut name: String = route.name.chars().take(40).collect();
    name.push('-');
    for byte in digest.iter() {
        if name.len() + 2 > MAX_EXECUTION_NAME {
            break;
        }
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// Handles one invocation of `s3-trigger`.
pub async fn s3_trigger<P: StartExecution + PutObject>(
    ports: &P,
    config: &TriggerConfig,
    event: LambdaEvent<Value>,
) -> Result<TriggerOutput, FerryError> {
    let batch =
        events::parse(&event.payload).map_err(|message| FerryError::InvalidEvent { message })?;
    let mut failed: BTreeSet<usize> = BTreeSet::new();
    let mut first_error: Option<FerryError> = None;
    let mut summary = TriggerSummary::default();
    for (i, message) in batch.messages.iter().enumerate() {
        summary.ignored += message.ignored;
        match &message.objects {
            Ok(found) => summary.objects += found.len(),
            Err(e) => {
                warn!(message_id = ?message.id, error = %e, "unreadable message");
                failed.insert(i);
                first_error.get_or_insert_with(|| FerryError::InvalidEvent {
                    message: e.to_string(),
                });
            }
        }
    }
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
        failed.insert(*message);
        first_error.get_or_insert_with(|| FerryError::InvalidEvent {
            message: reason.clone(),
        });
    }
    for planned in plan.jobs {
        let route = config.routes.get(planned.route);
        let name = execution_name(route, &planned.job, &planned.uploads);
        match start(ports, route, &name, planned.job, planned.manifest).await {
            Ok(ExecutionStart::Started { execution_arn }) => {
                info!(execution = %name, execution_arn = %execution_arn, objects = planned.objects, "execution started");
                summary.started.push(name);
            }
            Ok(ExecutionStart::AlreadyStarted) => {
                info!(execution = %name, objects = planned.objects, "execution already started");
                summary.already_started.push(name);
            }
            Err(e) => {
                error!(execution = %name, error_type = e.error_type(), error = %e, "could not start execution");
                failed.extend(planned.messages);
                first_error.get_or_insert(e);
            }
        }
    }

    if batch.shape == Shape::Sqs {
        let mut response = SqsBatchResponse::default();
        for i in failed {
            match &batch.messages[i].id {
                Some(id) => response.batch_item_failures.push(BatchItemFailure {
                    item_identifier: id.clone(),
                }),
                // Without a message id the failure cannot be reported per message: fail the
                // whole batch so nothing is deleted from the queue.
                None => {
                    return Err(first_error.unwrap_or(FerryError::InvalidEvent {
                        message: "SQS record without messageId".into(),
                    }));
                }
            }
        }
        return Ok(TriggerOutput::Sqs(response));
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(TriggerOutput::Summary(summary)),
    }
}

async fn start<P: StartExecution + PutObject>(
    ports: &P,
    route: &Route,
    name: &str,
    mut job: JobSpec,
    manifest: Option<coalesce::ManifestFile>,
) -> Result<ExecutionStart, FerryError> {
    if let (Some(file), Some(target)) = (manifest, &route.manifest) {
        let key = format!("{}{name}.csv", target.prefix);
        ports.put_object(&file.bucket, &key, file.body).await?;
        job.manifest = route.manifest_spec(&key);
    }
    let input = serde_json::json!({ "job": job }).to_string();
    ports.start_execution(name, &input).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn execution_names_fit_step_functions_rules() {
        let routes = Routes::from_json(
            &serde_json::json!([{"name": "a-very-long-route-name-that-goes-past-forty-characters", "bucket": "ferry-data",
                "job": {"name": "n", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}])
            .to_string(),
            &Limits::default(),
        );
        // Route names are capped at 40 at load time; build one by hand to test truncation.
        assert!(routes.is_err());
        let route: Route = serde_json::from_value(
            serde_json::json!({"name": "r".repeat(40), "bucket": "ferry-data",
            "job": {"name": "n", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}),
        )
        .unwrap();
        let name = execution_name(&route, &route.job, &[0; 32]);
        assert!(name.len() <= MAX_EXECUTION_NAME, "{name}");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(name, execution_name(&route, &route.job, &[0; 32]));
        assert_ne!(name, execution_name(&route, &route.job, &[1; 32]));
    }
}
