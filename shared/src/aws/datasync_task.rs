//! Ensuring the DataSync task a [`TaskDefinition`] describes (issue 17): find the task Ferry
//! made for it, by the tag [`NAME_TAG`], reading `ListTasks` to its last page and each task's
//! tags (`ListTagsForResource`); read what `UpdateTask` cannot change (`DescribeTask`); then do
//! what [`plan`] says: `CreateTask` (tagged), nothing, or `UpdateTask` and the tags
//! (`TagResource`, `UntagResource`). `datasync::start` calls it for a job with a `task` block,
//! from the lane's one runner, so two ensures of one definition never run at once.
//!
//! Cost per run (the lane runner ensures once per run): the `ListTasks` pages, then one
//! `ListTagsForResource` and one `DescribeTask` for the task named as defined. Only when no task
//! of that name carries Ferry's tag (the first run, or a task renamed outside Ferry) are every
//! task's tags read.

use std::collections::BTreeMap;

use aws_sdk_datasync::Client;
use aws_sdk_datasync::operation::describe_task::DescribeTaskOutput;
use aws_sdk_datasync::types::{
    ManifestConfig, ScheduleStatus, TagListEntry, TaskReportConfig, TaskSchedule,
};
use tracing::{info, instrument};

use super::datasync::{api, filter, manifest, options, task_report};
use super::{Class, build_error, response_id, send, unmodeled};
use crate::domain::job::S3Source;
use crate::domain::task_definition::{
    DIGEST_TAG, EnsurePlan, ExistingTask, NAME_TAG, TaskDefinition, plan,
};
use crate::error::{AwsError, FerryError, FieldError, FieldErrors};
use crate::ids::{DataSyncTaskArn, RoleArn, S3BucketArn};

/// `ListTasks` pages of at most 100 (API model, `MaxResults`).
const LIST_PAGE_SIZE: i32 = 100;

/// The task `def` describes: found, updated or created. Two tasks tagged with one name, or a
/// change `UpdateTask` cannot make, is `InvalidJob` naming the fields.
#[instrument(skip(client, def), fields(task = %def.name))]
pub(super) async fn ensure(
    client: &Client,
    def: &TaskDefinition,
) -> Result<DataSyncTaskArn, FerryError> {
    let found = find_named(client, &def.name).await?;
    let existing: Vec<ExistingTask> = found.iter().map(|(task, _)| task.clone()).collect();
    match plan(def, &existing) {
        EnsurePlan::Create => create(client, def).await,
        EnsurePlan::Reuse { task_arn } => {
            info!(task_arn = %task_arn, "task as defined");
            parse_task_arn("ListTasks", &task_arn)
        }
        EnsurePlan::Update { task_arn } => {
            let (_, found) = found
                .iter()
                .find(|(task, _)| task.task_arn == task_arn)
                .ok_or_else(|| {
                    malformed("ListTasks", "the planned task is not among those found")
                })?;
            update(client, def, &task_arn, found).await?;
            parse_task_arn("UpdateTask", &task_arn)
        }
        EnsurePlan::Refuse { problems } => Err(FerryError::InvalidJob(FieldErrors {
            errors: problems
                .into_iter()
                .map(|(field, problem)| FieldError { field, problem })
                .collect(),
        })),
    }
}

/// What a found task holds beyond [`ExistingTask`]: its tags and schedule, which an update
/// must bring in line.
#[derive(Debug, Clone, Default)]
struct Found {
    tags: BTreeMap<String, String>,
    schedule_expression: Option<String>,
}

/// Every task tagged `NAME_TAG=name`, with what `plan` compares. Ferry names the tasks it makes
/// after their definition, so the tasks listed under that name are looked at first (one
/// `ListTagsForResource` each); only when none of them carries the tag, because the task was
/// renamed outside Ferry or does not exist yet, are the tags of every other task read.
async fn find_named(client: &Client, name: &str) -> Result<Vec<(ExistingTask, Found)>, FerryError> {
    let listed = list_all(client).await?;
    let (same_name, others): (Vec<_>, Vec<_>) = listed
        .into_iter()
        .partition(|(_, listed_name)| listed_name.as_deref() == Some(name));
    for group in [same_name, others] {
        let mut named = Vec::new();
        for (arn, _) in &group {
            let tags = task_tags(client, arn).await?;
            if tags.get(NAME_TAG).map(String::as_str) == Some(name) {
                let described = describe(client, arn).await?;
                named.push(existing(arn, tags, &described));
            }
        }
        if !named.is_empty() {
            return Ok(named);
        }
    }
    Ok(Vec::new())
}

/// Every task of the account and region: `ListTasks` to its last page, `(ARN, Name)`.
async fn list_all(client: &Client) -> Result<Vec<(String, Option<String>)>, FerryError> {
    let mut listed = Vec::new();
    let mut next_token: Option<String> = None;
    loop {
        let request = client
            .list_tasks()
            .max_results(LIST_PAGE_SIZE)
            .set_next_token(next_token.clone())
            .send();
        let page = send("ListTasks", request, unmodeled).await?;
        listed.extend(page.tasks().iter().filter_map(|t| {
            t.task_arn()
                .map(|arn| (arn.to_owned(), t.name().map(str::to_owned)))
        }));
        match page.next_token() {
            // A service that hands back the token it was given would loop for ever.
            Some(token) if next_token.as_deref() == Some(token) => {
                return Err(malformed("ListTasks", "the same NextToken twice"));
            }
            Some(token) => next_token = Some(token.to_owned()),
            None => return Ok(listed),
        }
    }
}

fn existing(
    arn: &str,
    tags: BTreeMap<String, String>,
    d: &DescribeTaskOutput,
) -> (ExistingTask, Found) {
    let task = ExistingTask {
        task_arn: arn.to_owned(),
        digest: tags.get(DIGEST_TAG).cloned(),
        source_location_arn: d.source_location_arn().unwrap_or_default().to_owned(),
        destination_location_arn: d.destination_location_arn().unwrap_or_default().to_owned(),
        task_mode: d
            .task_mode()
            .map_or_else(|| "BASIC".to_owned(), |m| m.as_str().to_owned()),
    };
    let found = Found {
        tags,
        schedule_expression: d
            .schedule()
            .map(|s| s.schedule_expression().to_owned())
            .filter(|s| !s.is_empty()),
    };
    (task, found)
}

async fn task_tags(client: &Client, arn: &str) -> Result<BTreeMap<String, String>, FerryError> {
    // A task holds at most 50 tags: one page of 100.
    let request = client
        .list_tags_for_resource()
        .resource_arn(arn)
        .max_results(100)
        .send();
    let out = send("ListTagsForResource", request, |e| {
        // A task deleted between ListTasks and here: not Ferry's to find.
        e.is_invalid_request_exception().then_some(Class::NotFound)
    })
    .await;
    match out {
        Ok(out) => Ok(out
            .tags()
            .iter()
            .map(|t| (t.key().to_owned(), t.value().unwrap_or_default().to_owned()))
            .collect()),
        Err(FerryError::NotFound { .. }) => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

async fn describe(client: &Client, arn: &str) -> Result<DescribeTaskOutput, FerryError> {
    let request = client.describe_task().task_arn(arn).send();
    send("DescribeTask", request, unmodeled).await
}

/// Creates the task with every field of the definition, tagged with its name and digest.
async fn create(client: &Client, def: &TaskDefinition) -> Result<DataSyncTaskArn, FerryError> {
    const OP: &str = "CreateTask";
    let (manifest_config, report_config) = configs(def)?;
    let request = client
        .create_task()
        .name(&def.name)
        .source_location_arn(&def.source_location_arn)
        .destination_location_arn(&def.destination_location_arn)
        .set_options(def.options.as_ref().map(options))
        .set_includes(filter(&def.includes))
        .set_excludes(filter(&def.excludes))
        .set_schedule(schedule(def, None)?)
        .set_task_mode(api(&def.task_mode))
        .set_manifest_config(manifest_config)
        .set_task_report_config(report_config)
        .set_cloud_watch_log_group_arn(def.cloudwatch_log_group_arn.clone())
        .set_tags(Some(tags(def)?))
        .send();
    let out = send(OP, request, |e| {
        e.is_invalid_request_exception().then_some(Class::Rejected)
    })
    .await?;
    let arn = parse_task_arn(OP, out.task_arn().unwrap_or_default())?;
    info!(task_arn = %arn, "DataSync task created");
    Ok(arn)
}

/// Brings the task in line with the definition: every field `UpdateTask` takes (an emptied
/// filter list clears it, an emptied manifest or report configuration removes it, a schedule
/// the definition no longer has is disabled), then the tags: the stale ones removed first, so
/// that the digest tag, written last, says the task is in line only once it is (a start that
/// fails midway finds the old digest and updates again).
async fn update(
    client: &Client,
    def: &TaskDefinition,
    task_arn: &str,
    found: &Found,
) -> Result<(), FerryError> {
    let (manifest_config, report_config) = configs(def)?;
    let request = client
        .update_task()
        .task_arn(task_arn)
        .name(&def.name)
        .set_options(def.options.as_ref().map(options))
        // An empty list clears the task's filters (UpdateTask takes 0 to 1 rules).
        .set_includes(Some(filter(&def.includes).unwrap_or_default()))
        .set_excludes(Some(filter(&def.excludes).unwrap_or_default()))
        .set_schedule(schedule(def, found.schedule_expression.as_deref())?)
        .manifest_config(manifest_config.unwrap_or_else(|| ManifestConfig::builder().build()))
        .task_report_config(report_config.unwrap_or_else(|| TaskReportConfig::builder().build()))
        .set_cloud_watch_log_group_arn(def.cloudwatch_log_group_arn.clone())
        .send();
    send("UpdateTask", request, |e| {
        e.is_invalid_request_exception().then_some(Class::Rejected)
    })
    .await?;
    let stale: Vec<String> = found
        .tags
        .keys()
        .filter(|k| !def.tags.contains_key(*k))
        .filter(|k| k.as_str() != NAME_TAG && k.as_str() != DIGEST_TAG && !k.starts_with("aws:"))
        .cloned()
        .collect();
    if !stale.is_empty() {
        let request = client
            .untag_resource()
            .resource_arn(task_arn)
            .set_keys(Some(stale))
            .send();
        send("UntagResource", request, unmodeled).await?;
    }
    let request = client
        .tag_resource()
        .resource_arn(task_arn)
        .set_tags(Some(tags(def)?))
        .send();
    send("TagResource", request, unmodeled).await?;
    info!(task_arn = %task_arn, "DataSync task updated to its definition");
    Ok(())
}

/// The task's schedule: the definition's; or, when it has none but the task had one, the same
/// expression `DISABLED` (the API has no "remove").
fn schedule(def: &TaskDefinition, had: Option<&str>) -> Result<Option<TaskSchedule>, FerryError> {
    let (expression, status) = match (&def.schedule, had) {
        (Some(s), _) => (s.schedule_expression.as_str(), api(&s.status)),
        (None, Some(expression)) => (expression, Some(ScheduleStatus::Disabled)),
        (None, None) => return Ok(None),
    };
    TaskSchedule::builder()
        .schedule_expression(expression)
        .set_status(status)
        .build()
        .map(Some)
        .map_err(|e| build_error("task.schedule", e))
}

/// The user's tags and Ferry's two.
fn tags(def: &TaskDefinition) -> Result<Vec<TagListEntry>, FerryError> {
    let digest = def.digest();
    def.tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([(NAME_TAG, def.name.as_str()), (DIGEST_TAG, digest.as_str())])
        .map(|(k, v)| {
            TagListEntry::builder()
                .key(k)
                .value(v)
                .build()
                .map_err(|e| build_error("task.tags", e))
        })
        .collect()
}

/// The manifest and report configurations, their bucket and role ARNs parsed (validation
/// checked them; a failure here names the field all the same).
fn configs(
    def: &TaskDefinition,
) -> Result<(Option<ManifestConfig>, Option<TaskReportConfig>), FerryError> {
    let source = |prefix: &str, bucket: &str, role: &str| -> Result<S3Source, FerryError> {
        let invalid = |name: &str, e: crate::ids::IdError| {
            FerryError::invalid(format!("job.task.{prefix}.{name}"), e.to_string())
        };
        Ok(S3Source {
            bucket_arn: S3BucketArn::parse(bucket).map_err(|e| invalid("bucket_arn", e))?,
            bucket_access_role_arn: RoleArn::parse(role)
                .map_err(|e| invalid("bucket_access_role_arn", e))?,
        })
    };
    let manifest_config = match &def.manifest {
        Some(m) => Some(manifest(
            m,
            &source("manifest", &m.bucket_arn, &m.bucket_access_role_arn)?,
        )?),
        None => None,
    };
    let report_config = match &def.task_report {
        Some(r) => Some(task_report(
            r,
            &source("task_report", &r.bucket_arn, &r.bucket_access_role_arn)?,
        )?),
        None => None,
    };
    Ok((manifest_config, report_config))
}

fn parse_task_arn(operation: &'static str, arn: &str) -> Result<DataSyncTaskArn, FerryError> {
    response_id(operation, "TaskArn", Some(arn), DataSyncTaskArn::parse)
}

fn malformed(operation: &'static str, what: &str) -> FerryError {
    FerryError::AwsService {
        source: AwsError::malformed(operation, what),
    }
}

#[cfg(test)]
mod tests;
