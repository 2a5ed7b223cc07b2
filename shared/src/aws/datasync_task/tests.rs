//! Ensuring a DataSync task ([`super::ensure`]) against mocked
//! `ListTasks`, `ListTagsForResource`, `DescribeTask`, `CreateTask`, `UpdateTask`,
//! `TagResource` and `UntagResource`.

use std::collections::BTreeMap;

use aws_sdk_datasync as ds;
use aws_smithy_mocks::{Rule, mock};
use serde_json::{Value, json};

use crate::aws::test_support::*;
use crate::domain::task_definition::{DIGEST_TAG, NAME_TAG, TaskDefinition};

const SRC: &str = "arn:aws:datasync:us-east-1:111122223333:location/loc-0123456789abcdef0";
const DST: &str = "arn:aws:datasync:us-east-1:111122223333:location/loc-0fedcba9876543210";
const OTHER_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0aaaaaaaaaaaaaaaa";
const ROLE: &str = "arn:aws:iam::111122223333:role/ferry-datasync";
const LOGS: &str = "arn:aws:logs:us-east-1:111122223333:log-group:/aws/datasync:*";

/// Ensures `def` with a DataSync client answering by `rules`.
async fn ensure(
    rules: &[&Rule],
    def: &TaskDefinition,
) -> Result<crate::ids::DataSyncTaskArn, crate::error::FerryError> {
    super::ensure(&mock_client_of!(ds, rules), def).await
}

fn definition(v: Value) -> TaskDefinition {
    let def: TaskDefinition = serde_json::from_value(v).expect("definition");
    def.validate().expect("valid");
    def
}

/// Every CreateTask field set.
fn full() -> Value {
    json!({
        "name": "archive-results",
        "source_location_arn": SRC,
        "destination_location_arn": DST,
        "options": {"verify_mode": "ONLY_FILES_TRANSFERRED", "overwrite_mode": "NEVER", "atime": "BEST_EFFORT",
                    "mtime": "PRESERVE", "uid": "BOTH", "gid": "NAME", "preserve_deleted_files": "REMOVE",
                    "preserve_devices": "PRESERVE", "posix_permissions": "NONE", "bytes_per_second": 1048576,
                    "task_queueing": "DISABLED", "log_level": "TRANSFER", "transfer_mode": "CHANGED",
                    "security_descriptor_copy_flags": "OWNER_DACL_SACL", "object_tags": "NONE"},
        "includes": ["/results", "/logs"],
        "excludes": ["*.tmp"],
        "schedule": {"schedule_expression": "cron(0 12 ? * SUN,WED *)", "status": "ENABLED"},
        "task_mode": "ENHANCED",
        "manifest": {"bucket_arn": "arn:aws:s3:::manifests", "object_path": "m.csv", "bucket_access_role_arn": ROLE, "object_version_id": "v1"},
        "task_report": {"bucket_arn": "arn:aws:s3:::reports", "subdirectory": "ferry/", "bucket_access_role_arn": ROLE,
                        "output_type": "STANDARD", "report_level": "ERRORS_ONLY", "object_version_ids": "INCLUDE",
                        "overrides": {"transferred": "SUCCESSES_AND_ERRORS"}},
        "cloudwatch_log_group_arn": LOGS,
        "tags": {"team": "ml"}
    })
}

/// ListTasks answering `pages` pages, the tasks of each page by ARN (named after their ARN's
/// last digits, unless `named` gives the name); page tokens are numbers.
fn listing(pages: Vec<Vec<&'static str>>) -> Rule {
    listing_named(pages, &[])
}

fn listing_named(pages: Vec<Vec<&'static str>>, named: &[(&'static str, &'static str)]) -> Rule {
    use ds::operation::list_tasks::ListTasksOutput;
    use ds::types::TaskListEntry;
    let names: BTreeMap<&'static str, &'static str> = named.iter().copied().collect();
    let count = pages.len();
    let mut rule = mock!(ds::Client::list_tasks).sequence();
    for (n, arns) in pages.into_iter().enumerate() {
        let names = names.clone();
        rule = rule.output(move || {
            let out = ListTasksOutput::builder().set_tasks(Some(
                arns.iter()
                    .map(|a| {
                        let name = names.get(a).copied().unwrap_or(&a[a.len() - 4..]);
                        TaskListEntry::builder().task_arn(*a).name(name).build()
                    })
                    .collect(),
            ));
            if n + 1 < count {
                out.next_token((n + 1).to_string()).build()
            } else {
                out.build()
            }
        });
    }
    rule.build()
}

/// ListTagsForResource: `tags` for each task ARN given, none for others.
fn tagging(by_task: Vec<(&'static str, Vec<(&'static str, String)>)>) -> Rule {
    let by_task: BTreeMap<&str, Vec<(&str, String)>> = by_task.into_iter().collect();
    mock!(ds::Client::list_tags_for_resource).then_compute_output(move |req| {
        let tags = by_task
            .get(req.resource_arn().unwrap_or_default())
            .cloned()
            .unwrap_or_default();
        ds::operation::list_tags_for_resource::ListTagsForResourceOutput::builder()
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| {
                        ds::types::TagListEntry::builder()
                            .key(*k)
                            .value(v)
                            .build()
                            .unwrap()
                    })
                    .collect(),
            ))
            .build()
    })
}

/// DescribeTask of `DS_TASK`: the given locations and mode, an enabled schedule.
fn described(source: &'static str, mode: ds::types::TaskMode) -> Rule {
    mock!(ds::Client::describe_task)
        .match_requests(|req| req.task_arn() == Some(DS_TASK))
        .then_output(move || {
            ds::operation::describe_task::DescribeTaskOutput::builder()
                .task_arn(DS_TASK)
                .source_location_arn(source)
                .destination_location_arn(DST)
                .task_mode(mode.clone())
                .schedule(
                    ds::types::TaskSchedule::builder()
                        .schedule_expression("rate(1 day)")
                        .build()
                        .unwrap(),
                )
                .build()
        })
}

fn created() -> ds::operation::create_task::CreateTaskOutput {
    ds::operation::create_task::CreateTaskOutput::builder()
        .task_arn(DS_TASK)
        .build()
}

fn named(def: &TaskDefinition, digest: &str) -> Vec<(&'static str, String)> {
    vec![
        (NAME_TAG, def.name.clone()),
        (DIGEST_TAG, digest.to_owned()),
        ("old", "x".into()),
    ]
}

#[tokio::test]
async fn a_definition_no_task_carries_is_created_with_every_field_and_tagged() {
    let def = definition(full());
    let list = listing(vec![vec![OTHER_TASK]]);
    let tags = tagging(vec![(OTHER_TASK, vec![(NAME_TAG, "someone-else".into())])]);
    let (create, seen) = capturing(mock!(ds::Client::create_task), created);
    let arn = ensure(&[&list, &tags, &create], &def).await.unwrap();
    assert_eq!(arn.as_str(), DS_TASK);
    let req = last(&seen);
    assert_eq!(req.name(), Some("archive-results"));
    assert_eq!(req.source_location_arn(), Some(SRC));
    assert_eq!(req.destination_location_arn(), Some(DST));
    assert_eq!(req.cloud_watch_log_group_arn(), Some(LOGS));
    assert_eq!(req.task_mode().map(|m| m.as_str()), Some("ENHANCED"));
    let o = req.options().expect("options");
    let got = [
        o.verify_mode().map(|v| v.as_str()),
        o.overwrite_mode().map(|v| v.as_str()),
        o.atime().map(|v| v.as_str()),
        o.mtime().map(|v| v.as_str()),
        o.uid().map(|v| v.as_str()),
        o.gid().map(|v| v.as_str()),
        o.preserve_deleted_files().map(|v| v.as_str()),
        o.preserve_devices().map(|v| v.as_str()),
        o.posix_permissions().map(|v| v.as_str()),
        o.task_queueing().map(|v| v.as_str()),
        o.log_level().map(|v| v.as_str()),
        o.transfer_mode().map(|v| v.as_str()),
        o.security_descriptor_copy_flags().map(|v| v.as_str()),
        o.object_tags().map(|v| v.as_str()),
    ];
    assert_eq!(
        got.map(Option::unwrap),
        [
            "ONLY_FILES_TRANSFERRED",
            "NEVER",
            "BEST_EFFORT",
            "PRESERVE",
            "BOTH",
            "NAME",
            "REMOVE",
            "PRESERVE",
            "NONE",
            "DISABLED",
            "TRANSFER",
            "CHANGED",
            "OWNER_DACL_SACL",
            "NONE"
        ]
    );
    assert_eq!(o.bytes_per_second(), Some(1_048_576));
    assert_eq!(req.includes()[0].value(), Some("/results|/logs"));
    assert_eq!(req.excludes()[0].value(), Some("*.tmp"));
    let schedule = req.schedule().expect("schedule");
    assert_eq!(schedule.schedule_expression(), "cron(0 12 ? * SUN,WED *)");
    assert_eq!(schedule.status().map(|s| s.as_str()), Some("ENABLED"));
    let manifest = req
        .manifest_config()
        .and_then(|m| m.source())
        .and_then(|s| s.s3())
        .expect("manifest");
    assert_eq!(
        (
            manifest.s3_bucket_arn(),
            manifest.manifest_object_path(),
            manifest.manifest_object_version_id()
        ),
        ("arn:aws:s3:::manifests", "m.csv", Some("v1"))
    );
    let report = req.task_report_config().expect("report");
    let dest = report
        .destination()
        .and_then(|d| d.s3())
        .expect("report destination");
    assert_eq!(
        (dest.s3_bucket_arn(), dest.subdirectory()),
        ("arn:aws:s3:::reports", Some("ferry/"))
    );
    assert_eq!(
        report.report_level().map(|l| l.as_str()),
        Some("ERRORS_ONLY")
    );
    assert_eq!(
        report.object_version_ids().map(|l| l.as_str()),
        Some("INCLUDE")
    );
    let tags: BTreeMap<&str, Option<&str>> =
        req.tags().iter().map(|t| (t.key(), t.value())).collect();
    let digest = def.digest();
    assert_eq!(
        tags,
        BTreeMap::from([
            ("team", Some("ml")),
            (NAME_TAG, Some("archive-results")),
            (DIGEST_TAG, Some(digest.as_str())),
        ])
    );
}

#[tokio::test]
async fn the_task_made_for_the_definition_is_found_on_any_page_and_reused() {
    let def = definition(full());
    // The named task is on the third page; every page is read.
    let list = listing(vec![vec![OTHER_TASK], vec![], vec![DS_TASK]]);
    let tags = tagging(vec![(DS_TASK, named(&def, &def.digest()))]);
    let describe = described(SRC, ds::types::TaskMode::Enhanced);
    let create = mock!(ds::Client::create_task).then_output(created);
    let update = mock!(ds::Client::update_task)
        .then_output(|| ds::operation::update_task::UpdateTaskOutput::builder().build());
    let arn = ensure(&[&list, &tags, &describe, &create, &update], &def)
        .await
        .unwrap();
    assert_eq!(arn.as_str(), DS_TASK);
    assert_eq!(list.num_calls(), 3);
    assert_eq!(
        (create.num_calls(), update.num_calls()),
        (0, 0),
        "no drift, no call"
    );
}

#[tokio::test]
async fn a_changed_definition_updates_the_same_task_its_schedule_disabled_and_its_tags_brought_in_line()
 {
    let mut v = full();
    v.as_object_mut().unwrap().remove("schedule");
    v.as_object_mut().unwrap().remove("manifest");
    v["includes"] = json!([]);
    let def = definition(v);
    let list = listing(vec![vec![DS_TASK]]);
    let tags = tagging(vec![(DS_TASK, named(&def, "an-older-digest"))]);
    let describe = described(SRC, ds::types::TaskMode::Enhanced);
    let (update, seen) = capturing(mock!(ds::Client::update_task), || {
        ds::operation::update_task::UpdateTaskOutput::builder().build()
    });
    let (tag, tagged) = capturing(mock!(ds::Client::tag_resource), || {
        ds::operation::tag_resource::TagResourceOutput::builder().build()
    });
    let (untag, untagged) = capturing(mock!(ds::Client::untag_resource), || {
        ds::operation::untag_resource::UntagResourceOutput::builder().build()
    });
    let create = mock!(ds::Client::create_task).then_output(created);
    let arn = ensure(
        &[&list, &tags, &describe, &update, &tag, &untag, &create],
        &def,
    )
    .await
    .unwrap();
    assert_eq!(arn.as_str(), DS_TASK);
    assert_eq!(create.num_calls(), 0, "the same task, not a second one");
    let req = last(&seen);
    assert_eq!(req.task_arn(), Some(DS_TASK));
    assert!(
        req.includes().is_empty() && req.includes.is_some(),
        "an emptied filter clears it"
    );
    let schedule = req.schedule().expect("schedule");
    assert_eq!(
        (
            schedule.schedule_expression(),
            schedule.status().map(|s| s.as_str())
        ),
        ("rate(1 day)", Some("DISABLED"))
    );
    let manifest = req
        .manifest_config()
        .expect("an empty manifest configuration removes it");
    assert!(manifest.source().is_none());
    assert!(
        req.task_report_config()
            .and_then(|r| r.destination())
            .is_some()
    );
    let digest = def.digest();
    assert!(
        last(&tagged)
            .tags()
            .iter()
            .any(|t| t.key() == DIGEST_TAG && t.value() == Some(digest.as_str()))
    );
    assert_eq!(last(&untagged).keys(), ["old"]);
}

#[tokio::test]
async fn what_update_task_cannot_change_and_two_tasks_of_one_name_are_refused_naming_the_fields() {
    let def = definition(full());
    let list = listing(vec![vec![DS_TASK]]);
    let tags = tagging(vec![(DS_TASK, named(&def, "old"))]);
    let moved = described(DST, ds::types::TaskMode::Basic);
    let create = mock!(ds::Client::create_task).then_output(created);
    let err = ensure(&[&list, &tags, &moved, &create], &def)
        .await
        .unwrap_err();
    assert_eq!(err.error_type(), "InvalidJob");
    let text = err.to_string();
    for field in ["job.task.source_location_arn", "job.task.task_mode"] {
        assert!(text.contains(field), "{field} in {text}");
    }
    assert_eq!(create.num_calls(), 0);

    let list = listing(vec![vec![DS_TASK, OTHER_TASK]]);
    let tags = tagging(vec![
        (DS_TASK, named(&def, "old")),
        (OTHER_TASK, vec![(NAME_TAG, def.name.clone())]),
    ]);
    let describe_any = mock!(ds::Client::describe_task).then_output(|| {
        ds::operation::describe_task::DescribeTaskOutput::builder()
            .source_location_arn(SRC)
            .destination_location_arn(DST)
            .build()
    });
    let err = ensure(&[&list, &tags, &describe_any], &def)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("2 DataSync tasks"), "{err}");
}

#[tokio::test]
async fn a_listing_that_repeats_its_token_is_an_error_not_a_loop() {
    let list = mock!(ds::Client::list_tasks).then_output(|| {
        ds::operation::list_tasks::ListTasksOutput::builder()
            .next_token("same")
            .build()
    });
    let err = ensure(&[&list], &definition(full())).await.unwrap_err();
    assert_eq!(err.error_type(), "AwsService");
    assert_eq!(list.num_calls(), 2);
}

#[tokio::test]
async fn a_task_named_as_defined_is_checked_first_and_the_others_tags_are_not_read() {
    let def = definition(full());
    let list = listing_named(
        vec![vec![OTHER_TASK, DS_TASK]],
        &[(DS_TASK, "archive-results")],
    );
    let tags = tagging(vec![(DS_TASK, named(&def, &def.digest()))]);
    let describe = described(SRC, ds::types::TaskMode::Enhanced);
    let arn = ensure(&[&list, &tags, &describe], &def).await.unwrap();
    assert_eq!(arn.as_str(), DS_TASK);
    assert_eq!(tags.num_calls(), 1, "only the task named as defined");
}

#[tokio::test]
async fn an_update_that_fails_midway_leaves_the_old_digest_so_the_next_start_updates_again() {
    // The digest is the last thing written: were it written before the stale tags are removed,
    // a refused UntagResource would leave a task whose digest says it is in line.
    let def = definition(full());
    let list = listing(vec![vec![DS_TASK]]);
    // `named` holds a tag the definition does not: it is stale.
    let tags = tagging(vec![(DS_TASK, named(&def, "an-older-digest"))]);
    let describe = described(SRC, ds::types::TaskMode::Enhanced);
    let update = mock!(ds::Client::update_task)
        .then_output(|| ds::operation::update_task::UpdateTaskOutput::builder().build());
    let untag = mock!(ds::Client::untag_resource).then_error(once(
        ds::operation::untag_resource::UntagResourceError::generic(code("AccessDeniedException")),
    ));
    let tag = mock!(ds::Client::tag_resource)
        .then_output(|| ds::operation::tag_resource::TagResourceOutput::builder().build());
    let failed = ensure(&[&list, &tags, &describe, &update, &untag, &tag], &def).await;
    assert!(failed.is_err(), "{failed:?}");
    assert_eq!(untag.num_calls(), 1);
    assert_eq!(
        tag.num_calls(),
        0,
        "the digest is not written over a task still out of line"
    );
}
