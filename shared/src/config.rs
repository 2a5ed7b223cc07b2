//! Every function's configuration, read once at cold start from the environment, through one
//! reader ([`read`]). Variable names match `template.yaml`; the reference is
//! `docs/configuration.md`. A blank value counts as unset everywhere; a bad value stops the
//! function with a [`ConfigError`] naming the variable.

use std::ops::RangeInclusive;
use std::str::FromStr;

pub use reach::Reach;

use crate::domain::access::Policy;
use crate::domain::job::Limits;
use crate::domain::poll::{self, PollSettings};
use crate::domain::validate::{API_MAX_PATHS, DEFAULT_MAX_PATHS};
pub use crate::error::ConfigError;
use crate::ids::{IdError, StateMachineArn, TopicArn};

/// Cap on FSx `Paths` per task (default 32, at most the API's 100).
pub const ENV_MAX_PATHS: &str = "FERRY_MAX_PATHS";
/// Default shortest polling interval in seconds (default 15).
pub const ENV_POLL_MIN: &str = "FERRY_POLL_MIN_SECONDS";
/// Default longest polling interval in seconds (default 600).
pub const ENV_POLL_MAX: &str = "FERRY_POLL_MAX_SECONDS";
/// The routes of `s3-trigger` (a JSON array; `docs/routes.md`).
pub const ENV_ROUTES: &str = "FERRY_ROUTES";
/// Where `s3-trigger`'s routes are when they do not fit in [`ENV_ROUTES`]: an `s3://` object
/// holding the same JSON array, read once at cold start. Lambda allows 4 KB for all of a
/// function's variables (Lambda developer guide, "Lambda quotas": environment variables), so
/// inline routes stop at about a dozen.
pub const ENV_ROUTES_URL: &str = "FERRY_ROUTES_URL";
/// Most bytes of a routes object: validated whole at cold start, a megabyte is thousands of
/// routes.
pub const MAX_ROUTES_BYTES: usize = 1 << 20;
/// The state machine `s3-trigger` starts executions of.
pub const ENV_STATE_MACHINE_ARN: &str = "FERRY_STATE_MACHINE_ARN";
/// The default report topic; a job's `notify.topic_arn` overrides it.
pub const ENV_TOPIC_ARN: &str = "FERRY_TOPIC_ARN";
/// How many failed paths a report lists at most (default 50).
pub const ENV_REPORT_MAX_PATHS: &str = "FERRY_REPORT_MAX_PATHS";
/// Bytes of a failure report read at most (default 64 MiB).
pub const ENV_REPORT_MAX_BYTES: &str = "FERRY_REPORT_MAX_BYTES";
/// The region the function runs in (set by Lambda).
pub const ENV_REGION: &str = "AWS_REGION";
/// The lane table (DynamoDB): the jobs per lane, the runs, the leases.
pub const ENV_LANE_TABLE: &str = "FERRY_LANE_TABLE";
/// How long a runner's lease lasts unless renewed, in seconds (default 900).
pub const ENV_LEASE_SECONDS: &str = "FERRY_LEASE_SECONDS";
/// The longest wait between status checks while jobs wait in the lane (default 60).
pub const ENV_BUSY_POLL_MAX: &str = "FERRY_BUSY_POLL_MAX_SECONDS";
/// How long a runner waiting for a DataSync run's end event goes without news before it checks
/// the execution itself, in seconds (default 900; 0: no events, DataSync runs are polled).
pub const ENV_DATASYNC_FALLBACK: &str = "FERRY_DATASYNC_FALLBACK_POLL_SECONDS";
/// The fallback's default: DataSync events are best effort (EventBridge events reference).
pub const DEFAULT_DATASYNC_FALLBACK_SECONDS: u32 = 900;

/// Reads one variable through `lookup` (the environment, or a map in tests): trimmed, with a
/// blank value counted as unset.
pub fn read(lookup: &impl Fn(&str) -> Option<String>, variable: &str) -> Option<String> {
    lookup(variable)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A whole number within `range`, or `default` when unset.
fn number<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    range: RangeInclusive<T>,
    default: T,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = read(lookup, variable) else {
        return Ok(default);
    };
    let value: T = raw.parse().map_err(|_| ConfigError {
        variable,
        problem: format!("expected a whole number, got {raw:?}"),
    })?;
    if !range.contains(&value) {
        return Err(ConfigError {
            variable,
            problem: format!(
                "must be between {} and {}, got {value}",
                range.start(),
                range.end()
            ),
        });
    }
    Ok(value)
}

/// An identifier parsed by `parse`, or `None` when unset.
fn id<T>(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &'static str,
    parse: fn(&str) -> Result<T, IdError>,
) -> Result<Option<T>, ConfigError> {
    read(lookup, variable)
        .map(|raw| {
            parse(&raw).map_err(|e| ConfigError {
                variable,
                problem: e.to_string(),
            })
        })
        .transpose()
}

pub(crate) fn required<T>(
    value: Option<T>,
    variable: &'static str,
    what: &str,
) -> Result<T, ConfigError> {
    value.ok_or_else(|| ConfigError {
        variable,
        problem: format!("is required: {what}"),
    })
}

/// A function's configuration: read through a lookup (tests pass a map), or from the
/// environment at cold start.
pub trait FromEnvironment: Sized {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError>;

    fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }
}

/// `start-task`, `task-status` and `cancel-task`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskConfig {
    pub limits: Limits,
    /// Polling bounds for jobs that set none.
    pub poll: PollSettings,
    /// The file systems and DataSync tasks `start-task` may start work on ([`reach`]).
    pub reach: Reach,
}

impl FromEnvironment for TaskConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<TaskConfig, ConfigError> {
        let min_seconds = number(
            &lookup,
            ENV_POLL_MIN,
            poll::ALLOWED_SECONDS,
            poll::DEFAULT_MIN_SECONDS,
        )?;
        let max_seconds = number(
            &lookup,
            ENV_POLL_MAX,
            poll::ALLOWED_SECONDS,
            poll::DEFAULT_MAX_SECONDS,
        )?;
        // CloudFormation cannot compare two parameters (a template's Rules have no numeric
        // comparison), so the deployment may pass a minimum above the maximum: the maximum
        // wins, said once at cold start, rather than every invocation failing.
        let min_seconds = if min_seconds > max_seconds {
            tracing::warn!(
                "{ENV_POLL_MIN} ({min_seconds}) exceeds {ENV_POLL_MAX} ({max_seconds}): polls wait {max_seconds} s at least and at most"
            );
            max_seconds
        } else {
            min_seconds
        };
        Ok(TaskConfig {
            limits: limits(&lookup)?,
            poll: PollSettings {
                min_seconds,
                max_seconds,
            },
            reach: Reach::from_lookup(&lookup)?,
        })
    }
}

pub(crate) fn limits(lookup: &impl Fn(&str) -> Option<String>) -> Result<Limits, ConfigError> {
    Ok(Limits {
        max_paths: number(lookup, ENV_MAX_PATHS, 1..=API_MAX_PATHS, DEFAULT_MAX_PATHS)?,
    })
}

/// The lane table: what every function that enqueues, runs or follows a lane reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneConfig {
    /// `FERRY_LANE_TABLE`: 3-255 of `[A-Za-z0-9_.-]` (DynamoDB table names).
    pub table: String,
    /// `FERRY_LEASE_SECONDS`: longer than the longest wait between two runner steps (the
    /// longest poll, `FERRY_POLL_MAX_SECONDS`), so a live runner never loses its lane.
    pub lease_seconds: u32,
    /// `FERRY_BUSY_POLL_MAX_SECONDS`: the longest wait between status checks while jobs wait in
    /// the lane, so the lane idles at most that long between runs.
    pub busy_poll_max_seconds: u32,
    /// `FERRY_DATASYNC_FALLBACK_POLL_SECONDS`: a DataSync run's runner waits for the run's end
    /// event (its task token, `HeartbeatSeconds`) at most this long without news (an event, the
    /// check's heartbeat) before it checks the execution itself. 0: no waiting on events.
    pub datasync_fallback_seconds: u32,
}

impl FromEnvironment for LaneConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<LaneConfig, ConfigError> {
        let table = required(
            read(&lookup, ENV_LANE_TABLE),
            ENV_LANE_TABLE,
            "the name of Ferry's lane table",
        )?;
        let table_ok = (3..=255).contains(&table.len())
            && table
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if !table_ok {
            return Err(ConfigError {
                variable: ENV_LANE_TABLE,
                problem: format!(
                    "must be a DynamoDB table name (3-255 of A-Z a-z 0-9 _ . -), got {table:?}"
                ),
            });
        }
        let poll_max = number(
            &lookup,
            ENV_POLL_MAX,
            poll::ALLOWED_SECONDS,
            poll::DEFAULT_MAX_SECONDS,
        )?;
        let lease_seconds = number(&lookup, ENV_LEASE_SECONDS, 10..=86_400, 900)?;
        // A runner renews its lease at each status check, at most `poll_max` apart: a shorter
        // lease would expire while its runner waits. CloudFormation cannot compare the two
        // parameters, so the lease is lengthened to cover the wait and a step, said once at
        // cold start, rather than every invocation failing.
        let lease_seconds = if lease_seconds <= poll_max {
            let longer = poll_max + LEASE_MARGIN_SECONDS;
            tracing::warn!(
                "{ENV_LEASE_SECONDS} ({lease_seconds}) does not exceed {ENV_POLL_MAX} ({poll_max}): leases last {longer} s"
            );
            longer
        } else {
            lease_seconds
        };
        Ok(LaneConfig {
            table,
            lease_seconds,
            busy_poll_max_seconds: number(&lookup, ENV_BUSY_POLL_MAX, poll::ALLOWED_SECONDS, 60)?,
            datasync_fallback_seconds: datasync_fallback(&lookup)?,
        })
    }
}

/// What a lease lasts beyond the longest wait between status checks when the configured lease
/// is not longer than that wait: a minute for the step that renews it.
pub const LEASE_MARGIN_SECONDS: u32 = 60;

/// `FERRY_DATASYNC_FALLBACK_POLL_SECONDS`: 0 (off) or 10-86,400 (template.yaml's
/// `AllowedPattern` lets only these through).
fn datasync_fallback(lookup: &impl Fn(&str) -> Option<String>) -> Result<u32, ConfigError> {
    let seconds = number(
        lookup,
        ENV_DATASYNC_FALLBACK,
        0..=86_400,
        DEFAULT_DATASYNC_FALLBACK_SECONDS,
    )?;
    if (1..10).contains(&seconds) {
        return Err(ConfigError {
            variable: ENV_DATASYNC_FALLBACK,
            problem: format!("{seconds} is too short: 0 (off) or 10-86400"),
        });
    }
    Ok(seconds)
}

/// A function's own configuration and the lane table's: `start-task`, `task-status`,
/// `cancel-task` and `lane` read `Laned<TaskConfig>`, `notify` reads `Laned<NotifyConfig>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Laned<C> {
    pub config: C,
    pub lanes: LaneConfig,
}

impl<C: FromEnvironment> FromEnvironment for Laned<C> {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Laned<C>, ConfigError> {
        Ok(Laned {
            config: C::from_lookup(&lookup)?,
            lanes: LaneConfig::from_lookup(&lookup)?,
        })
    }
}

/// `FERRY_STATE_MACHINE_ARN`: the runner state machine, whose executions the entries start.
pub fn runner(lookup: &impl Fn(&str) -> Option<String>) -> Result<StateMachineArn, ConfigError> {
    required(
        id(lookup, ENV_STATE_MACHINE_ARN, StateMachineArn::parse)?,
        ENV_STATE_MACHINE_ARN,
        "the ARN of Ferry's runner state machine (arn:aws:states:region:account:stateMachine:name)",
    )
}

/// `submit`: validates jobs as the task functions do, enqueues them, starts runners.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitConfig {
    pub tasks: TaskConfig,
    pub lanes: LaneConfig,
    pub runner: StateMachineArn,
    /// Who may do what through the function URL ([`ENV_ACCESS_POLICY`]); `None` refuses every
    /// URL request (closed by default). Direct invocations are not checked: IAM decides them.
    pub access: Option<Policy>,
}

/// The access policy's JSON ([`crate::domain::access`]), on `submit` only.
pub const ENV_ACCESS_POLICY: &str = "FERRY_ACCESS_POLICY";

/// The access policy in `lookup`, if one is set: a policy that does not parse fails the cold
/// start, naming the variable and every broken field.
pub fn access_policy(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<Option<Policy>, ConfigError> {
    match lookup(ENV_ACCESS_POLICY) {
        Some(text) if !text.trim().is_empty() => {
            Policy::parse(&text).map(Some).map_err(|e| ConfigError {
                variable: ENV_ACCESS_POLICY,
                problem: e.to_string(),
            })
        }
        _ => Ok(None),
    }
}

impl FromEnvironment for SubmitConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<SubmitConfig, ConfigError> {
        Ok(SubmitConfig {
            tasks: TaskConfig::from_lookup(&lookup)?,
            lanes: LaneConfig::from_lookup(&lookup)?,
            runner: runner(&lookup)?,
            access: access_policy(&lookup)?,
        })
    }
}

/// `notify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    /// The deployment's report topic; `None` when every job must name its own.
    pub topic_arn: Option<TopicArn>,
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

impl FromEnvironment for NotifyConfig {
    fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<NotifyConfig, ConfigError> {
        let defaults = NotifyConfig::default();
        Ok(NotifyConfig {
            topic_arn: id(&lookup, ENV_TOPIC_ARN, TopicArn::parse)?,
            region: read(&lookup, ENV_REGION),
            max_paths: number(&lookup, ENV_REPORT_MAX_PATHS, 0..=1000, defaults.max_paths)?,
            max_report_bytes: number(
                &lookup,
                ENV_REPORT_MAX_BYTES,
                1024..=(512 << 20),
                defaults.max_report_bytes,
            )?,
        })
    }
}

pub mod reach;

#[cfg(test)]
mod tests;
