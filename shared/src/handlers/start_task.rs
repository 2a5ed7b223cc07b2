//! `start-task`: validates the job and starts its task, at most once per execution.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use crate::config::TaskConfig;
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::JobSpec;
use crate::domain::parse;
use crate::domain::status::{TaskHandle, Timestamp};
use crate::error::FerryError;
use crate::ports::StartTask;

/// The input: the job, and the identity of the caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StartTaskInput {
    pub job: JobSpec,
    /// The Step Functions execution name (`$$.Execution.Name`): the idempotency identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

/// The output the state machine reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartTaskOutput {
    pub task: TaskHandle,
    /// The FSx `ClientRequestToken` / DataSync tag value used for this start.
    pub idempotency_key: String,
    /// Seconds to wait before the first status check.
    pub next_poll_seconds: u32,
    pub started_at: Timestamp,
}

pub async fn handle<P: StartTask>(
    port: &P,
    config: &TaskConfig,
    event: LambdaEvent<Value>,
) -> Result<StartTaskOutput, FerryError> {
    let input: StartTaskInput = parse::from_value(event.payload, "")?;
    let job = input.job.validate(&config.limits)?;
    let key = IdempotencyKey::derive(input.execution.as_deref(), &job);
    info!(job = %job.name, kind = job.kind.as_str(), key = %key, "starting task");
    let task = port.start_task(&job, &key).await?;
    Ok(StartTaskOutput {
        task,
        idempotency_key: key.to_string(),
        next_poll_seconds: job.poll_settings(config.poll).min_seconds,
        started_at: Timestamp::now(),
    })
}
