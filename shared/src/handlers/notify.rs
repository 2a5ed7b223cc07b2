//! `notify`: the completion report, published to SNS.
//!
//! The state machine calls it once per job, at the end: with the final task status, or with the
//! error that stopped the job from starting (Step Functions' `Catch` output). It builds the
//! report ([`report`]), reads the task's failure report from S3 when there is one ([`digest`],
//! [`datasync_report`]), and publishes it ([`message`]). A missing or unreadable failure report
//! is said in the message; a failed publish is an error (the state machine retries it).

pub mod datasync_report;
pub mod digest;
pub mod message;
pub mod report;

use std::future::Future;

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use crate::config::ConfigError;
use crate::error::FerryError;
use crate::status::{TaskHandle, TaskStatus};
use digest::DigestBuilder;
use message::SnsMessage;
use report::{Facts, JobInfo, Outcome, Report, StepError};

/// The default topic (`FERRY_TOPIC_ARN`); a job's `notify.topic_arn` overrides it.
pub const ENV_TOPIC_ARN: &str = "FERRY_TOPIC_ARN";
/// How many failed paths a report lists at most (`FERRY_REPORT_MAX_PATHS`, default 50).
pub const ENV_MAX_PATHS: &str = "FERRY_REPORT_MAX_PATHS";
/// Bytes of a failure report read at most (`FERRY_REPORT_MAX_BYTES`, default 64 MiB).
pub const ENV_MAX_BYTES: &str = "FERRY_REPORT_MAX_BYTES";
/// DataSync detailed report files read at most per execution.
pub const MAX_DATASYNC_REPORT_FILES: usize = 50;

/// Publishes a message to SNS; returns the message id.
pub trait Publish {
    fn publish(
        &self,
        message: &SnsMessage,
    ) -> impl Future<Output = Result<String, FerryError>> + Send;
}

/// An object read from S3, up to a byte limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub body: Vec<u8>,
    /// The object is longer than what was read.
    pub cut: bool,
}

/// Reads failure reports from S3.
pub trait ReadReports {
    /// The first `max_bytes` of an object; `None` when it does not exist.
    fn get_object(
        &self,
        bucket: &str,
        key: &str,
        max_bytes: usize,
    ) -> impl Future<Output = Result<Option<Fetched>, FerryError>> + Send;

    /// Up to `max_keys` keys under `prefix`, in S3's (lexicographic) order.
    fn list_keys(
        &self,
        bucket: &str,
        prefix: &str,
        max_keys: usize,
    ) -> impl Future<Output = Result<Vec<String>, FerryError>> + Send;
}

/// `notify`'s configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub topic_arn: Option<String>,
    pub region: Option<String>,
    pub max_paths: usize,
    pub max_report_bytes: usize,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            topic_arn: None,
            region: None,
            max_paths: 50,
            max_report_bytes: 64 << 20,
        }
    }
}

impl NotifyConfig {
    pub fn from_env() -> Result<NotifyConfig, ConfigError> {
        NotifyConfig::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<NotifyConfig, ConfigError> {
        let mut config = NotifyConfig::default();
        if let Some(arn) = lookup(ENV_TOPIC_ARN).filter(|v| !v.is_empty()) {
            if !is_topic_arn(&arn) {
                return Err(ConfigError {
                    variable: ENV_TOPIC_ARN,
                    problem: format!(
                        "expected an SNS topic ARN (arn:aws:sns:region:account:name), got {arn:?}"
                    ),
                });
            }
            config.topic_arn = Some(arn);
        }
        config.region = lookup("AWS_REGION").filter(|v| !v.is_empty());
        let number =
            |name: &'static str, range: std::ops::RangeInclusive<usize>, default: usize| {
                match lookup(name) {
                    None => Ok(default),
                    Some(v) => v
                        .trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| range.contains(n))
                        .ok_or_else(|| ConfigError {
                            variable: name,
                            problem: format!(
                                "expected a whole number from {} to {}, got {v:?}",
                                range.start(),
                                range.end()
                            ),
                        }),
                }
            };
        config.max_paths = number(ENV_MAX_PATHS, 0..=1000, config.max_paths)?;
        config.max_report_bytes =
            number(ENV_MAX_BYTES, 1024..=(512 << 20), config.max_report_bytes)?;
        Ok(config)
    }
}

/// `arn:partition:sns:region:account:name`.
pub fn is_topic_arn(arn: &str) -> bool {
    let parts: Vec<&str> = arn.split(':').collect();
    parts.len() == 6
        && parts[0] == "arn"
        && !parts[1].is_empty()
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[4].len() == 12
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && !parts[5].is_empty()
}

/// `notify` input, as the state machine passes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyInput {
    /// The job spec (kept as JSON: a job that could not start may be invalid).
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

/// Handles one invocation of `notify`.
pub async fn notify<P: Publish + ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    event: LambdaEvent<Value>,
) -> Result<NotifyOutput, FerryError> {
    let input: NotifyInput = crate::input::parse(event.payload, "")?;
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
    let (report, messages) = message::render(report, &topic_arn);
    let mut message_ids = Vec::with_capacity(messages.len());
    for message in &messages {
        message_ids.push(ports.publish(message).await?);
    }
    info!(job = %report.job, outcome = report.outcome.as_upper(), topic = %topic_arn, "report published");
    Ok(NotifyOutput {
        outcome: report.outcome,
        topic_arn,
        message_ids,
        paths_truncated: report.digest.as_ref().is_some_and(|d| d.paths_truncated),
    })
}

/// The job's topic override, or the deployment's topic.
fn topic_for(job: &JobInfo, config: &NotifyConfig) -> Result<String, FerryError> {
    match (&job.topic_arn, &config.topic_arn) {
        (Some(arn), _) if is_topic_arn(arn) => Ok(arn.clone()),
        (Some(arn), Some(default)) => {
            warn!(topic = %arn, "job.notify.topic_arn is not a topic ARN; using the default topic");
            Ok(default.clone())
        }
        (None, Some(default)) => Ok(default.clone()),
        (Some(arn), None) => Err(FerryError::invalid(
            "job.notify.topic_arn",
            format!(
                "expected an SNS topic ARN (arn:aws:sns:region:account:name), got {arn:?}, and {ENV_TOPIC_ARN} is not set"
            ),
        )),
        (None, None) => Err(FerryError::invalid(
            "job.notify.topic_arn",
            format!("no topic: set {ENV_TOPIC_ARN} or the job's notify.topic_arn"),
        )),
    }
}

/// Reads the task's failure report into the report, or says why it could not.
async fn attach_digest<P: ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    job: &JobInfo,
    status: Option<&TaskStatus>,
    report: &mut Report,
) {
    let Some(status) = status else { return };
    let failed = status
        .counts
        .failed
        .or(status.counts.files_failed)
        .unwrap_or(0);
    if failed == 0 && report.outcome != Outcome::Failed {
        return;
    }
    let Some(location) = report.report_location.clone() else {
        return;
    };
    let result = match &status.task {
        TaskHandle::Fsx { task_id, .. } => fsx_digest(ports, config, job, &location, task_id).await,
        TaskHandle::Datasync { task_execution_arn } => {
            datasync_digest(ports, config, &location, task_execution_arn).await
        }
    };
    match result {
        Ok(digest) => report.digest = Some(digest),
        Err(note) => {
            warn!(job = %job.name, note = %note, "no failure digest");
            report.digest_note = Some(note);
        }
    }
}

/// `s3://bucket/key` → (`bucket`, `key`).
fn split_s3_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then_some((bucket, key))
}

/// FSx writes `{Report.Path}/task-{id}/{file}` (API reference, `CompletionReport.Format`). Task
/// ids already start with `task-`, so whether the folder is `task-{task id}` or the task id
/// itself is ambiguous in the documentation: both are tried, the task id first. The file is
/// `report.csv` for imports and `failures.csv` otherwise (user guide); the other name is tried
/// too, as older guides name `failures.csv` for every task type.
async fn fsx_digest<P: ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    job: &JobInfo,
    location: &str,
    task_id: &str,
) -> Result<digest::Digest, String> {
    let Some((bucket, prefix)) = split_s3_url(location) else {
        return Err(format!("the report path {location:?} is not an s3:// URL"));
    };
    let prefix = prefix.trim_end_matches('/');
    let join = |dir: &str, file: &str| {
        if prefix.is_empty() {
            format!("{dir}/{file}")
        } else {
            format!("{prefix}/{dir}/{file}")
        }
    };
    let primary = if job.kind == "fsx_import" {
        ["report.csv", "failures.csv"]
    } else {
        ["failures.csv", "report.csv"]
    };
    let mut tried = Vec::new();
    for dir in [task_id.to_owned(), format!("task-{task_id}")] {
        for file in primary {
            let key = join(&dir, file);
            match ports
                .get_object(bucket, &key, config.max_report_bytes)
                .await
            {
                Ok(Some(fetched)) => {
                    let mut builder = DigestBuilder::new(config.max_paths);
                    builder.source(format!("s3://{bucket}/{key}"));
                    digest::read_fsx_report(&fetched.body, fetched.cut, &mut builder);
                    return Ok(builder.finish());
                }
                Ok(None) => tried.push(format!("s3://{bucket}/{key}")),
                Err(e) => return Err(format!("could not read s3://{bucket}/{key}: {e}")),
            }
        }
    }
    Err(format!(
        "no failure report found (looked for {})",
        tried.join(", ")
    ))
}

/// DataSync writes detailed reports under the configured subdirectory; each file that can hold
/// errors is read (at most [`MAX_DATASYNC_REPORT_FILES`]).
async fn datasync_digest<P: ReadReports>(
    ports: &P,
    config: &NotifyConfig,
    location: &str,
    execution_arn: &str,
) -> Result<digest::Digest, String> {
    let Some((bucket, prefix)) = datasync_report::detailed_report_prefix(location, execution_arn)
    else {
        return Err(format!(
            "cannot tell where the task report of {execution_arn} is under {location}"
        ));
    };
    let keys = ports
        .list_keys(&bucket, &prefix, 1000)
        .await
        .map_err(|e| format!("could not list s3://{bucket}/{prefix}: {e}"))?;
    let keys: Vec<&String> = keys
        .iter()
        .filter(|k| datasync_report::is_detailed_report_key(k))
        .collect();
    if keys.is_empty() {
        return Err(format!(
            "no detailed task report found under s3://{bucket}/{prefix} (a SUMMARY_ONLY report lists no files)"
        ));
    }
    let mut builder = DigestBuilder::new(config.max_paths);
    let mut budget = config.max_report_bytes;
    for key in keys.iter().take(MAX_DATASYNC_REPORT_FILES) {
        if budget == 0 {
            builder.truncated();
            break;
        }
        match ports.get_object(&bucket, key, budget).await {
            Ok(Some(fetched)) => {
                budget = budget.saturating_sub(fetched.body.len());
                builder.source(format!("s3://{bucket}/{key}"));
                datasync_report::read_detailed_report(&fetched.body, fetched.cut, &mut builder);
            }
            Ok(None) => {}
            Err(e) => return Err(format!("could not read s3://{bucket}/{key}: {e}")),
        }
    }
    if keys.len() > MAX_DATASYNC_REPORT_FILES {
        builder.truncated();
    }
    Ok(builder.finish())
}
