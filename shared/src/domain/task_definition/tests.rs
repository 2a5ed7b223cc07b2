use serde_json::{Value, json};

use super::*;

const SRC: &str = "arn:aws:datasync:us-east-1:111122223333:location/loc-0123456789abcdef0";
const DST: &str = "arn:aws:datasync:us-east-1:111122223333:location/loc-0fedcba9876543210";
const ROLE: &str = "arn:aws:iam::111122223333:role/ferry-datasync";

/// Every CreateTask field set, validly.
fn full() -> Value {
    json!({
        "name": "archive results",
        "source_location_arn": SRC,
        "destination_location_arn": DST,
        "options": {"verify_mode": "ONLY_FILES_TRANSFERRED", "atime": "BEST_EFFORT", "mtime": "PRESERVE",
                    "transfer_mode": "CHANGED", "log_level": "BASIC", "bytes_per_second": 1048576},
        "includes": ["/results"],
        "excludes": ["*.tmp"],
        "schedule": {"schedule_expression": "cron(0 12 ? * SUN,WED *)", "status": "ENABLED"},
        "task_mode": "ENHANCED",
        "manifest": {"bucket_arn": "arn:aws:s3:::manifests", "object_path": "m.csv", "bucket_access_role_arn": ROLE},
        "task_report": {"bucket_arn": "arn:aws:s3:::reports", "bucket_access_role_arn": ROLE, "report_level": "ERRORS_ONLY"},
        "cloudwatch_log_group_arn": "arn:aws:logs:us-east-1:111122223333:log-group:/aws/datasync:*",
        "tags": {"team": "ml"}
    })
}

fn def(v: Value) -> TaskDefinition {
    serde_json::from_value(v).expect("a definition")
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

fn fields(v: Value) -> Vec<String> {
    def(v)
        .validate()
        .expect_err("invalid")
        .errors
        .into_iter()
        .map(|e| e.field)
        .collect()
}

#[test]
fn a_definition_with_every_field_is_valid_and_unknown_fields_are_refused() {
    def(full()).validate().unwrap();
    let typo = with(full(), "sheduel", json!({}));
    assert!(serde_json::from_value::<TaskDefinition>(typo).is_err());
}

#[test]
fn every_broken_rule_is_named_at_once_under_job_task() {
    let bad = json!({
        "name": "no|pipes",
        "source_location_arn": "arn:aws:datasync:us-east-1:111122223333:location/loc-short",
        "destination_location_arn": "arn:aws:s3:::not-a-location",
        "options": {"verify_mode": "POINT_IN_TIME_CONSISTENT", "atime": "NONE", "mtime": "PRESERVE"},
        "includes": ["a|b"],
        "schedule": {"schedule_expression": "every day", "status": "ON"},
        "task_mode": "ENHANCED",
        "cloudwatch_log_group_arn": "arn:aws:logs:us-east-1:111122223333:log-group:a:b",
        "tags": {"aws:owner": "x", "ferry:task-name": "y", "ok": "bad|value"}
    });
    let got = fields(bad);
    for expected in [
        "job.task.name",
        "job.task.source_location_arn",
        "job.task.destination_location_arn",
        "job.task.options.verify_mode",
        "job.task.options.mtime",
        "job.task.includes[0]",
        "job.task.schedule.schedule_expression",
        "job.task.schedule.status",
        "job.task.cloudwatch_log_group_arn",
        "job.task.tags.aws:owner",
        "job.task.tags.ferry:task-name",
        "job.task.tags.ok",
    ] {
        assert!(
            got.iter().any(|f| f == expected),
            "{expected} missing from {got:?}"
        );
    }
}

#[test]
fn enhanced_mode_refuses_point_in_time_verification_basic_takes_it() {
    let options = json!({"verify_mode": "POINT_IN_TIME_CONSISTENT"});
    let enhanced = with(full(), "options", options.clone());
    assert_eq!(fields(enhanced), ["job.task.options.verify_mode"]);
    let basic = with(
        with(full(), "options", options),
        "task_mode",
        json!("BASIC"),
    );
    def(basic).validate().unwrap();
}

#[test]
fn tags_beyond_48_and_same_locations_are_refused() {
    let tags: serde_json::Map<String, Value> =
        (0..49).map(|i| (format!("k{i}"), json!("v"))).collect();
    assert_eq!(
        fields(with(full(), "tags", Value::Object(tags))),
        ["job.task.tags"]
    );
    let same = with(full(), "destination_location_arn", json!(SRC));
    assert_eq!(fields(same), ["job.task.destination_location_arn"]);
}

fn existing(digest: Option<String>) -> ExistingTask {
    ExistingTask {
        task_arn: "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0".into(),
        digest,
        source_location_arn: SRC.into(),
        destination_location_arn: DST.into(),
        task_mode: "ENHANCED".into(),
    }
}

#[test]
fn ensuring_creates_reuses_or_updates_the_one_named_task() {
    let d = def(full());
    assert_eq!(plan(&d, &[]), EnsurePlan::Create);
    let same = existing(Some(d.digest()));
    assert_eq!(
        plan(&d, std::slice::from_ref(&same)),
        EnsurePlan::Reuse {
            task_arn: same.task_arn.clone()
        }
    );
    // Anything UpdateTask can change (here the options) is an update of the same task.
    let changed = def(with(full(), "options", json!({"log_level": "TRANSFER"})));
    assert_ne!(changed.digest(), d.digest());
    assert_eq!(
        plan(&changed, std::slice::from_ref(&same)),
        EnsurePlan::Update {
            task_arn: same.task_arn.clone()
        }
    );
    // A task without Ferry's digest tag is brought in line the same way.
    assert!(matches!(
        plan(&d, &[existing(None)]),
        EnsurePlan::Update { .. }
    ));
}

#[test]
fn what_update_task_cannot_change_is_refused_naming_each_field_and_two_tasks_are_never_picked_from()
{
    let moved = def(with(
        with(full(), "source_location_arn", json!(DST)),
        "destination_location_arn",
        json!(SRC),
    ));
    let basic = def(with(full(), "task_mode", json!("BASIC")));
    let EnsurePlan::Refuse { problems } = plan(&moved, &[existing(None)]) else {
        panic!("moved locations must be refused");
    };
    let named: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        named,
        [
            "job.task.source_location_arn",
            "job.task.destination_location_arn"
        ]
    );
    let EnsurePlan::Refuse { problems } = plan(&basic, &[existing(None)]) else {
        panic!("a changed mode must be refused");
    };
    assert_eq!(problems[0].0, "job.task.task_mode");
    let mut other = existing(None);
    other.task_arn = "arn:aws:datasync:us-east-1:111122223333:task/task-0fedcba9876543210".into();
    let EnsurePlan::Refuse { problems } = plan(&def(full()), &[existing(None), other]) else {
        panic!("two tasks with one name must be refused");
    };
    assert!(
        problems[0].1.contains("2 DataSync tasks"),
        "{}",
        problems[0].1
    );
}

#[test]
fn the_digest_is_stable_and_covers_every_field() {
    let d = def(full());
    assert_eq!(d.digest(), def(full()).digest());
    assert_eq!(d.digest().len(), 64);
    for (key, value) in [
        ("name", json!("other")),
        ("includes", json!(["/other"])),
        (
            "cloudwatch_log_group_arn",
            json!("arn:aws:logs:us-east-1:111122223333:log-group:other"),
        ),
        ("tags", json!({"team": "hpc"})),
    ] {
        assert_ne!(def(with(full(), key, value)).digest(), d.digest(), "{key}");
    }
}
