//! `notify`: the completion report, published to SNS.
//!
//! The state machine calls it once per job, at the end: with the final task status, or with the
//! error that stopped the job from starting (Step Functions' `Catch` output). It builds the
//! report ([`crate::notify::report`]), reads the task's failure report from S3 when there is
//! one ([`crate::notify::attach_digest`]), and publishes it ([`crate::notify::message`]). A
//! missing or unreadable failure report is said in the message; a failed publish is an error
//! (the state machine retries it).

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::config::{ConfigError, ENV_TOPIC_ARN, NotifyConfig};
use crate::domain::parse;
use crate::domain::status::{TaskHandle, TaskStatus};
use crate::error::FerryError;
use crate::ids::TopicArn;
use crate::notify::report::{self, Facts, JobInfo, Outcome, StepError};
use crate::notify::{attach_digest, message};
use crate::ports::{Publish, ReadReports};

/// The input, as the state machine passes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyInput {
    /// The job spec, kept as JSON: a job that could not start may be invalid, and is reported
    /// all the same ([`JobInfo`] reads what it can).
    pub job: Value,
    /// The Step Functions execution name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskHandle>,
    /// The final normalized status (from `task-status` or `cancel-task`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TaskStatus>,
    /// What stopped the job (`Catch` output: `Error` and `Cause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<StepError>,
    /// The state machine cancelled the task because the job's timeout passed.
    #[serde(default)]
    pub timed_out: bool,
}

/// What `notify` returns: the outcome it reported and the published message ids.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotifyOutput {
    pub outcome: Outcome,
    pub topic_arn: String,
    pub message_ids: Vec<String>,
    /// The path list was shortened to fit SNS's size limit.
    pub paths_truncated: bool,
}

pub async fn handle<P: Publish + ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    event: LambdaEvent<Value>,
) -> Result<NotifyOutput, FerryError> {
    let input: NotifyInput = parse::from_value(event.payload, "")?;
    let job = JobInfo::from_value(&input.job);
    let topic_arn = topic_for(&job, config)?;
    let facts = Facts {
        job: &job,
        execution: input.execution.as_deref(),
        task: input.task.as_ref(),
        status: input.status.as_ref(),
        error: input.error.as_ref(),
        timed_out: input.timed_out,
        region: config.region.as_deref(),
    };
    let mut report = report::build(&facts).map_err(|e| FerryError::InvalidEvent {
        message: e.to_string(),
    })?;
    attach_digest(ports, config, &job, input.status.as_ref(), &mut report).await;
    let (report, messages) = message::render(report, topic_arn.as_str());
    let mut message_ids = Vec::with_capacity(messages.len());
    for message in &messages {
        message_ids.push(ports.publish(message).await?);
    }
    info!(job = %report.job, outcome = report.outcome.as_upper(), topic = %topic_arn, "report published");
    Ok(NotifyOutput {
        outcome: report.outcome,
        topic_arn: topic_arn.to_string(),
        message_ids,
        paths_truncated: report.digest.as_ref().is_some_and(|d| d.paths_truncated),
    })
}

/// The job's topic override, or the deployment's topic. A job whose topic is not a topic ARN
/// could only have failed to start (validation refuses it); its report goes to the
/// deployment's topic rather than nowhere.
fn topic_for(job: &JobInfo, config: &NotifyConfig) -> Result<TopicArn, FerryError> {
    let own = job.topic_arn.as_deref().map(TopicArn::parse);
    match (own, &config.topic_arn) {
        (Some(Ok(topic)), _) => Ok(topic),
        (Some(Err(e)), Some(default)) => {
            warn!(problem = %e, "job.notify.topic_arn is not a topic ARN; using the default topic");
            Ok(default.clone())
        }
        (Some(Err(e)), None) => Err(FerryError::invalid(
            "job.notify.topic_arn",
            format!("{e}, and {ENV_TOPIC_ARN} is not set"),
        )),
        (None, Some(default)) => Ok(default.clone()),
        (None, None) => Err(FerryError::Configuration(ConfigError {
            variable: ENV_TOPIC_ARN,
            problem:
                "is not set and the job names no notify.topic_arn: the report has nowhere to go"
                    .into(),
        })),
    }
}
