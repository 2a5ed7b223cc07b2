//! A DataSync task Ferry creates and keeps itself (`CreateTask`), so a user need not create
//! every task by hand and paste its ARN into jobs and schedules (issue 17).
//!
//! A [`TaskDefinition`] carries every `CreateTask` field. [`TaskDefinition::validate`] checks
//! the rules the API reference states, all at once, each naming its field under `job.task`.
//! [`plan`] decides what ensuring a definition takes, given what Ferry finds in the account:
//! the task is found by the tags Ferry sets on it ([`NAME_TAG`], [`DIGEST_TAG`]), never by a
//! pick among look-alikes; a changed definition updates the same task (`UpdateTask`), and a
//! change `UpdateTask` cannot make (the locations or the task mode) is refused, naming the
//! fields, rather than leaking a second task.
//!
//! A job carries one as `task` (instead of `task_arn`); its jobs share the lane
//! `datasync-task:<name>`, and `start-task` ensures it (`aws/datasync_task.rs`) before each run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use sha2::{Digest, Sha256};

use crate::domain::job::{DataSyncOptions, ManifestSpec, TaskReportSpec};
use crate::domain::text::hex;

/// The tag naming the definition a task was made for (its `name`).
pub const NAME_TAG: &str = "ferry:task-name";
/// The tag holding the digest of the definition the task was last made or updated from.
pub const DIGEST_TAG: &str = "ferry:task-definition";

/// Every `CreateTask` field (DataSync API reference), in Ferry's snake_case.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDefinition {
    /// `Name`: also how Ferry finds the task again ([`NAME_TAG`]). Required by Ferry.
    pub name: String,
    /// `SourceLocationArn` (`arn:…:datasync:<region>:<account>:location/loc-…`).
    pub source_location_arn: String,
    /// `DestinationLocationArn`.
    pub destination_location_arn: String,
    /// `Options`: the fifteen task settings.
    pub options: Option<DataSyncOptions>,
    /// `Includes`: patterns joined with `|` into one `SIMPLE_PATTERN` rule.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub includes: Vec<String>,
    /// `Excludes`, the same way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// `Schedule`: DataSync's own schedule for the task.
    pub schedule: Option<TaskScheduleSpec>,
    /// `TaskMode`: `BASIC` (default) or `ENHANCED`.
    pub task_mode: Option<String>,
    /// `ManifestConfig`.
    pub manifest: Option<ManifestSpec>,
    /// `TaskReportConfig`.
    pub task_report: Option<TaskReportSpec>,
    /// `CloudWatchLogGroupArn`.
    pub cloudwatch_log_group_arn: Option<String>,
    /// `Tags`, besides the two Ferry sets.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
}

/// `TaskSchedule`.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskScheduleSpec {
    /// `ScheduleExpression` (`cron(…)` or `rate(…)`).
    pub schedule_expression: String,
    /// `Status`: `ENABLED` or `DISABLED`.
    pub status: Option<String>,
}

impl TaskDefinition {
    /// The digest of everything in the definition, as [`DIGEST_TAG`]'s value: 64 hex digits
    /// (a tag value may hold 256). Serialization is deterministic: fields in declaration order,
    /// maps sorted.
    pub fn digest(&self) -> String {
        // Serializing strings, numbers and sorted maps cannot fail.
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(&canonical), 64)
    }

    /// Checks every rule the `CreateTask` reference states; `Err` names each broken one.
    pub fn validate(&self) -> Result<(), crate::error::FieldErrors> {
        crate::domain::validate::task_definition::validate(self)
    }

    /// The effective task mode (`BASIC` when not given, as `CreateTask` defaults it).
    pub fn mode(&self) -> &str {
        self.task_mode.as_deref().unwrap_or("BASIC")
    }
}

/// What Ferry found tagged with a definition's name: a task and the facts `plan` compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingTask {
    pub task_arn: String,
    /// Its [`DIGEST_TAG`] value, if it has one.
    pub digest: Option<String>,
    pub source_location_arn: String,
    pub destination_location_arn: String,
    pub task_mode: String,
}

/// What ensuring a definition takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnsurePlan {
    /// No task carries the name: `CreateTask`.
    Create,
    /// The task is as defined: use it.
    Reuse { task_arn: String },
    /// The task differs in what `UpdateTask` can change: update it, then its digest tag.
    Update { task_arn: String },
    /// The definition changed what `UpdateTask` cannot change; each field named.
    Refuse { problems: Vec<(String, String)> },
}

/// Decides what ensuring `def` takes, given the tasks found tagged with its name. More than
/// one such task is refused, naming them: Ferry never picks one at random.
pub fn plan(def: &TaskDefinition, found: &[ExistingTask]) -> EnsurePlan {
    let task = match found {
        [] => return EnsurePlan::Create,
        [task] => task,
        several => {
            let arns: Vec<&str> = several.iter().map(|t| t.task_arn.as_str()).collect();
            return EnsurePlan::Refuse {
                problems: vec![(
                    "job.task.name".into(),
                    format!(
                        "{} DataSync tasks carry the tag {NAME_TAG}={}: {}; delete all but one",
                        arns.len(),
                        def.name,
                        arns.join(", ")
                    ),
                )],
            };
        }
    };
    // UpdateTask takes neither locations nor the task mode (DataSync API reference).
    let fixed = [
        (
            "source_location_arn",
            &def.source_location_arn,
            &task.source_location_arn,
        ),
        (
            "destination_location_arn",
            &def.destination_location_arn,
            &task.destination_location_arn,
        ),
    ];
    let mut problems: Vec<(String, String)> = fixed
        .iter()
        .filter(|(_, wanted, has)| wanted != has)
        .map(|(name, wanted, has)| {
            (
                format!("job.task.{name}"),
                format!(
                    "is {wanted:?} but task {} (named {:?}) has {has:?}, which UpdateTask cannot change; give the definition another name, or delete the task",
                    task.task_arn, def.name
                ),
            )
        })
        .collect();
    if !def.mode().eq_ignore_ascii_case(&task.task_mode) {
        problems.push((
            "job.task.task_mode".into(),
            format!(
                "is {} but task {} has {}, which UpdateTask cannot change; give the definition another name, or delete the task",
                def.mode(),
                task.task_arn,
                task.task_mode
            ),
        ));
    }
    if !problems.is_empty() {
        return EnsurePlan::Refuse { problems };
    }
    if task.digest.as_deref() == Some(def.digest().as_str()) {
        EnsurePlan::Reuse {
            task_arn: task.task_arn.clone(),
        }
    } else {
        EnsurePlan::Update {
            task_arn: task.task_arn.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
