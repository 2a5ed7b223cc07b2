use std::collections::HashMap;

use super::reach::{ENV_DATASYNC_TASKS, ENV_FILE_SYSTEMS};
use super::*;
use crate::trigger::config::TriggerConfig;

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

const ROUTES: &str = r#"[{"name": "incoming", "bucket": "ferry-data", "prefix": "incoming/",
    "job": {"name": "import", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}]"#;
const STATE_MACHINE: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry";

/// What a deployment that opts in to every resource (`*`) reads: the defaults otherwise.
fn open_task_config() -> TaskConfig {
    TaskConfig::default()
}

#[test]
fn task_defaults_apply_when_unset_or_blank() {
    let every = [(ENV_FILE_SYSTEMS, "every"), (ENV_DATASYNC_TASKS, " every ")];
    assert_eq!(
        TaskConfig::from_lookup(lookup(&every)).unwrap(),
        open_task_config()
    );
    let blank = [every[0], every[1], (ENV_MAX_PATHS, " ")];
    assert_eq!(
        TaskConfig::from_lookup(lookup(&blank)).unwrap(),
        open_task_config()
    );
    assert_eq!(TaskConfig::default().limits.max_paths, 32);
}

#[test]
fn a_deployment_that_names_no_resources_starts_nothing_and_names_the_parameter() {
    use crate::domain::job::JobSpec;
    let job = |spec: serde_json::Value| {
        serde_json::from_value::<JobSpec>(spec)
            .unwrap()
            .validate(&Limits::default())
            .unwrap()
    };
    let export = job(serde_json::json!({"name": "e", "kind": "fsx_export",
                                        "file_system_id": "fs-0123456789abcdef0"}));
    let task = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718";
    let sync = job(serde_json::json!({"name": "d", "kind": "datasync", "task_arn": task}));
    // Unset, or blank: closed.
    for vars in [
        &[][..],
        &[(ENV_FILE_SYSTEMS, " "), (ENV_DATASYNC_TASKS, "")][..],
    ] {
        let reach = TaskConfig::from_lookup(lookup(vars)).unwrap().reach;
        let e = reach.check(&export).unwrap_err();
        assert_eq!(e.variable, ENV_FILE_SYSTEMS);
        assert!(
            e.problem.contains("names no file systems")
                && e.problem.contains("FileSystemIds parameter"),
            "{}",
            e.problem
        );
        let e = reach.check(&sync).unwrap_err();
        assert_eq!(e.variable, ENV_DATASYNC_TASKS);
        assert!(e.problem.contains("DataSyncTaskArns"), "{}", e.problem);
    }
    // Listed (IAM grants exactly those) or every: started.
    for mode in ["listed", "every"] {
        let vars = [(ENV_FILE_SYSTEMS, mode), (ENV_DATASYNC_TASKS, mode)];
        let reach = TaskConfig::from_lookup(lookup(&vars)).unwrap().reach;
        assert!(reach.check(&export).is_ok() && reach.check(&sync).is_ok());
    }
    let e = TaskConfig::from_lookup(lookup(&[(ENV_FILE_SYSTEMS, "*")])).unwrap_err();
    assert_eq!(e.variable, ENV_FILE_SYSTEMS);
    assert!(e.problem.contains("none, listed or every"), "{}", e.problem);
}

#[test]
fn task_values_within_bounds_are_read() {
    let c = TaskConfig::from_lookup(lookup(&[
        (ENV_MAX_PATHS, "100"),
        (ENV_POLL_MIN, "30"),
        (ENV_POLL_MAX, " 900 "),
    ]))
    .unwrap();
    assert_eq!(c.limits.max_paths, 100);
    assert_eq!(
        c.poll,
        PollSettings {
            min_seconds: 30,
            max_seconds: 900
        }
    );
}

#[test]
fn every_error_names_its_variable() {
    let variable = |vars: &[(&str, &str)]| TaskConfig::from_lookup(lookup(vars)).unwrap_err();
    let e = variable(&[(ENV_MAX_PATHS, "101")]);
    assert_eq!(e.variable, ENV_MAX_PATHS);
    assert!(e.to_string().contains("between 1 and 100"), "{e}");
    assert_eq!(variable(&[(ENV_POLL_MAX, "ten")]).variable, ENV_POLL_MAX);
    // A minimum above the maximum (CloudFormation cannot compare parameters): the maximum.
    let c = TaskConfig::from_lookup(lookup(&[(ENV_POLL_MIN, "700")])).unwrap();
    assert_eq!((c.poll.min_seconds, c.poll.max_seconds), (600, 600));
    let e = NotifyConfig::from_lookup(lookup(&[(ENV_REPORT_MAX_PATHS, "1001")])).unwrap_err();
    assert_eq!(e.variable, ENV_REPORT_MAX_PATHS);
    let e = NotifyConfig::from_lookup(lookup(&[(ENV_TOPIC_ARN, "arn:aws:sns:us-east-1:1:t")]))
        .unwrap_err();
    assert_eq!(e.variable, ENV_TOPIC_ARN);
    assert!(e.problem.starts_with("must be an SNS topic ARN"), "{e}");
}

#[test]
fn notify_reads_blank_values_as_unset_like_every_function() {
    let c = NotifyConfig::from_lookup(lookup(&[
        (ENV_TOPIC_ARN, ""),
        (ENV_REPORT_MAX_PATHS, "  "),
        (ENV_REPORT_MAX_BYTES, ""),
        (ENV_REGION, "eu-west-1"),
    ]))
    .unwrap();
    assert_eq!(
        c,
        NotifyConfig {
            region: Some("eu-west-1".into()),
            ..NotifyConfig::default()
        }
    );
    let c = NotifyConfig::from_lookup(lookup(&[
        (
            ENV_TOPIC_ARN,
            "arn:aws:sns:us-east-1:111122223333:ferry-reports",
        ),
        (ENV_REPORT_MAX_PATHS, "0"),
        (ENV_REPORT_MAX_BYTES, "1024"),
    ]))
    .unwrap();
    assert_eq!(
        c.topic_arn.map(String::from).as_deref(),
        Some("arn:aws:sns:us-east-1:111122223333:ferry-reports")
    );
    assert_eq!((c.max_paths, c.max_report_bytes), (0, 1024));
}

const TABLE: &str = "ferry-lanes";

#[test]
fn the_trigger_needs_routes_a_lane_table_and_a_state_machine() {
    let all = [
        (ENV_ROUTES, ROUTES),
        (ENV_STATE_MACHINE_ARN, STATE_MACHINE),
        (ENV_LANE_TABLE, TABLE),
    ];
    let c = TriggerConfig::from_lookup(lookup(&all)).unwrap();
    assert_eq!(c.routes.len(), 1);
    assert_eq!(c.runner.as_str(), STATE_MACHINE);
    assert_eq!(c.lanes.table, TABLE);
    for missing in [ENV_ROUTES, ENV_STATE_MACHINE_ARN, ENV_LANE_TABLE] {
        let some: Vec<(&str, &str)> = all.iter().copied().filter(|(k, _)| *k != missing).collect();
        let e = TriggerConfig::from_lookup(lookup(&some)).unwrap_err();
        assert_eq!(e.variable, missing);
        assert!(e.problem.starts_with("is required"), "{e}");
    }
    let e = TriggerConfig::from_lookup(lookup(&[
        (ENV_ROUTES, ROUTES),
        (ENV_LANE_TABLE, TABLE),
        (
            ENV_STATE_MACHINE_ARN,
            "arn:aws:states:us-east-1:111122223333:activity:x",
        ),
    ]))
    .unwrap_err();
    assert_eq!(e.variable, ENV_STATE_MACHINE_ARN);
    let e = TriggerConfig::from_lookup(lookup(&[
        (ENV_ROUTES, "[]"),
        (ENV_LANE_TABLE, TABLE),
        (ENV_STATE_MACHINE_ARN, STATE_MACHINE),
    ]))
    .unwrap_err();
    assert_eq!(e.variable, ENV_ROUTES);
    assert!(e.problem.contains("at least one route"), "{e}");
}

#[test]
fn the_lane_table_is_checked_and_the_lease_outlasts_the_longest_poll() {
    let c = LaneConfig::from_lookup(lookup(&[(ENV_LANE_TABLE, TABLE)])).unwrap();
    assert_eq!((c.lease_seconds, c.busy_poll_max_seconds), (900, 60));
    let e = LaneConfig::from_lookup(lookup(&[(ENV_LANE_TABLE, "no spaces")])).unwrap_err();
    assert_eq!(e.variable, ENV_LANE_TABLE);
    assert!(e.problem.contains("DynamoDB table name"), "{e}");
    // A lease no longer than the longest poll (600 s by default) is lengthened past it.
    let c = LaneConfig::from_lookup(lookup(&[
        (ENV_LANE_TABLE, TABLE),
        (ENV_LEASE_SECONDS, "600"),
    ]))
    .unwrap();
    assert_eq!(c.lease_seconds, 600 + LEASE_MARGIN_SECONDS);
    let c = LaneConfig::from_lookup(lookup(&[
        (ENV_LANE_TABLE, TABLE),
        (ENV_LEASE_SECONDS, "120"),
        (ENV_POLL_MAX, "60"),
        (ENV_BUSY_POLL_MAX, "5"),
    ]))
    .unwrap();
    assert_eq!((c.lease_seconds, c.busy_poll_max_seconds), (120, 5));
    let e = LaneConfig::from_lookup(lookup(&[(ENV_LANE_TABLE, TABLE), (ENV_BUSY_POLL_MAX, "1")]))
        .unwrap_err();
    assert_eq!(e.variable, ENV_BUSY_POLL_MAX);
}

#[test]
fn task_functions_and_submit_read_the_lane_table_too() {
    let vars = [
        (ENV_LANE_TABLE, TABLE),
        (ENV_FILE_SYSTEMS, "every"),
        (ENV_DATASYNC_TASKS, "every"),
    ];
    let c = Laned::<TaskConfig>::from_lookup(lookup(&vars)).unwrap();
    assert_eq!(
        (c.config, c.lanes.table.as_str()),
        (open_task_config(), TABLE)
    );
    let e = Laned::<TaskConfig>::from_lookup(lookup(&[])).unwrap_err();
    assert_eq!(e.variable, ENV_LANE_TABLE);
    let c = SubmitConfig::from_lookup(lookup(&[
        (ENV_LANE_TABLE, TABLE),
        (ENV_STATE_MACHINE_ARN, STATE_MACHINE),
    ]))
    .unwrap();
    assert_eq!(c.runner.as_str(), STATE_MACHINE);
    let e = SubmitConfig::from_lookup(lookup(&[(ENV_LANE_TABLE, TABLE)])).unwrap_err();
    assert_eq!(e.variable, ENV_STATE_MACHINE_ARN);
}
