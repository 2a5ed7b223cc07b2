//! The `ferry` binary offline: help, `validate`, usage errors and a deployment that cannot be
//! found or reached. Commands against a deployment are tested on the local emulator
//! (local/tests/test_cli.py).

use std::process::{Command, Output};

fn ferry(args: &[&str]) -> Output {
    ferry_with(args, &[])
}

/// `ferry args` in the crate's folder, with none of Ferry's variables but `env`.
fn ferry_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    for name in [
        "FERRY_LANE_TABLE",
        "FERRY_STATE_MACHINE_ARN",
        "FERRY_STACK",
        "FERRY_MAX_PATHS",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    command.output().expect("the ferry binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_lists_every_command() {
    let out = ferry(&["--help"]);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for command in [
        "validate",
        "plan",
        "submit",
        "status",
        "cancel",
        "watch",
        "history",
        "tasks",
        "notifications",
        "drain",
        "whoami",
    ] {
        assert!(help.contains(command), "{command} missing from:\n{help}");
    }
    let submit = text(&ferry(&["submit", "--help"]).stdout);
    for flag in [
        "--id",
        "--wait",
        "--table",
        "FERRY_LANE_TABLE",
        "--runner",
        "--url",
        "FERRY_SUBMIT_URL",
        "--json",
    ] {
        assert!(submit.contains(flag), "{flag} missing from:\n{submit}");
    }
}

#[test]
fn valid_files_pass_and_say_what_they_are() {
    let out = ferry(&[
        "validate",
        "tests/files/export.json",
        "tests/files/routes.json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains(
        "tests/files/export.json: valid job \"nightly-export\" on lane fsx:fs-0123456789abcdef0"
    ));
    assert!(stdout.contains("tests/files/routes.json: valid routes file (1 route)"));
}

/// An access policy is checked as `submit`'s cold start checks it, every broken field named.
#[test]
fn access_policies_are_checked_naming_each_field() {
    let broken = std::env::temp_dir().join(format!("ferry-policy-{}.json", std::process::id()));
    std::fs::write(
        &broken,
        r#"{"rules": [{"name": "a", "principals": ["alice"], "actions": ["delete"]}]}"#,
    )
    .unwrap();
    let out = ferry(&[
        "validate",
        "../config/access.example.json",
        broken.to_str().unwrap(),
    ]);
    let _ = std::fs::remove_file(&broken);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "../config/access.example.json: valid access policy (rules hpc-users, operators)"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("rules[0].actions[0]"), "{stdout}");
}

/// What `submit` takes (a schedule's input) is what `ferry validate` takes, with submit's rules.
#[test]
fn submit_events_are_checked_as_submit_checks_them() {
    let out = ferry(&[
        "validate",
        "../events/submit/schedule.json",
        "../events/submit/person.json",
        "../events/submit/invalid-id-and-occurrence.json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for expected in [
        "../events/submit/schedule.json: valid submit event: job ",
        "../events/submit/person.json: valid submit event: job ",
        "../events/submit/invalid-id-and-occurrence.json: invalid\n  id: give either id",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn every_broken_rule_is_named_by_its_field_and_exits_1() {
    let out = ferry(&[
        "validate",
        "tests/files/export.json",
        "tests/files/invalid-job.json",
        "tests/files/invalid-routes.json",
        "tests/files/missing.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    for expected in [
        "tests/files/export.json: valid",
        "tests/files/invalid-job.json: invalid",
        "  job.name: must be 1-64 characters",
        "  job.file_system_id: must be \"fs-\" followed by 8-17 lowercase hex digits",
        "  job.paths[0]: must be relative to the file system root",
        "tests/files/invalid-routes.json: invalid",
        "  routes[1]: route \"b\" overlaps route \"a\"",
        "tests/files/missing.json: invalid\n  cannot read:",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn the_environment_s_limits_apply_and_a_bad_one_is_named() {
    let out = ferry_with(
        &["validate", "tests/files/export.json"],
        &[("FERRY_MAX_PATHS", "many")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "ferry: environment variable FERRY_MAX_PATHS: expected a whole number, got \"many\""
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["validate"][..],
        &["frobnicate"],
        &["submit"],
        &["submit", "x.json", "--interval", "0"],
    ] {
        let out = ferry(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
}

#[test]
fn a_deployment_that_is_not_named_is_one_clear_line() {
    let out = ferry(&["status"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).trim(),
        "ferry: no lane table: give --stack NAME, --table NAME or set FERRY_LANE_TABLE (the stack's LaneTableName output)"
    );
    let out = ferry(&[
        "submit",
        "tests/files/export.json",
        "--table",
        "ferry-lanes",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("ferry: no runner: give --stack NAME, --runner ARN"));
    let runner = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry";
    let out = ferry(&[
        "submit",
        "tests/files/export.json",
        "--table",
        "t",
        "--runner",
        runner,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .starts_with("ferry: --table (FERRY_LANE_TABLE): must be a DynamoDB table name"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_invalid_job_is_refused_before_anything_is_sent() {
    let out = ferry(&[
        "submit",
        "tests/files/invalid-job.json",
        "--runner",
        "arn:aws:states:us-east-1:111122223333:stateMachine:ferry",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("ferry: tests/files/invalid-job.json: invalid job: job.name:"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[test]
fn a_drain_of_something_that_is_no_file_system_is_refused_before_anything_is_sent() {
    let runner = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry";
    let out = ferry(&["drain", "vol-123", "--runner", runner]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("ferry: invalid drain: job.file_system_id:"),
        "{stderr}"
    );
    let out = ferry(&["drain", "fs-0123456789abcdef0", "../up", "--runner", runner]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("job.paths[0]"),
        "{}",
        text(&out.stderr)
    );
    let out = ferry(&["drain", "fs-0123456789abcdef0", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[test]
fn an_unreachable_endpoint_is_one_line_and_exit_1_never_a_panic() {
    let unreachable = [
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_MAX_ATTEMPTS", "1"),
    ];
    // The stack is read first, and its failure is the one line.
    let out = ferry_with(&["status", "--stack", "ferry-prod"], &unreachable);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ferry: cannot read stack ferry-prod: DescribeStacks: dispatch failure"),
        "{stderr}"
    );
    let out = ferry_with(&["status", "--table", "ferry-lanes"], &unreachable);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ferry: AWS service error: Query: dispatch failure"),
        "{stderr}"
    );
    assert!(
        stderr
            .contains("no answer from AWS: check the region, the credentials and AWS_ENDPOINT_URL")
    );
    assert!(!stderr.contains("panicked") && !stderr.contains("DispatchFailure("));
    // submit's function URL, unreachable: one line naming it.
    let out = ferry_with(&["whoami", "--url", "http://127.0.0.1:9/"], &unreachable);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("ferry: http://127.0.0.1:9/: "),
        "{stderr}"
    );
    let out = ferry_with(&["whoami", "--url", "not a url"], &unreachable);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("ferry: --url not a url: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn plan_shows_the_jobs_and_runs_an_event_would_make() {
    let out = ferry(&[
        "plan",
        "--routes",
        "tests/files/plan-routes.json",
        "../events/s3-trigger/sqs-batch.json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for expected in [
        "5 objects: 0 matched no route, 2 records ignored\n",
        "refused: \"outgoing/2026-11-21/metrics|v2.json\" contains '|'",
        "job 0: route imports -> fsx_import on fsx:fs-0123456789abcdef0 (3 objects): paths \
         s3://ferry-data-repository/incoming/batch-7/a.h5, ",
        "job 1: route sync -> datasync on datasync:arn:aws:datasync:us-east-1:111122223333:task/\
         task-0123456789abcdef0 (1 object): includes /outgoing/2026-11-21/model.pt\n",
        "run on fsx:fs-0123456789abcdef0: jobs 0: paths ",
    ] {
        assert!(
            stdout.contains(expected),
            "{expected:?} missing from:\n{stdout}"
        );
    }
}

#[test]
fn plan_reads_keys_and_names_what_it_refuses_in_json() {
    let keys = std::env::temp_dir().join(format!("ferry-plan-keys-{}.txt", std::process::id()));
    std::fs::write(
        &keys,
        "# uploads\ns3://ferry-data-repository/incoming/a.h5\nferry-data-repository/incoming/b.h5\n\
         s3://elsewhere/x\nnot-a-key\n",
    )
    .unwrap();
    let keys_arg = keys.to_string_lossy().into_owned();
    let out = ferry(&[
        "plan",
        "--routes",
        "tests/files/plan-routes.json",
        "--keys",
        &keys_arg,
        "--json",
    ]);
    std::fs::remove_file(&keys).ok();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(plan["objects"], 3);
    assert_eq!(plan["unmatched"], 1);
    assert_eq!(
        plan["refused"][0],
        "line 5: expected s3://bucket/key, got \"not-a-key\""
    );
    assert_eq!(plan["jobs"][0]["objects"], 2);
    assert_eq!(plan["runs"][0]["jobs"], serde_json::json!([0]));
    assert_eq!(plan["runs"][0]["lane"], "fsx:fs-0123456789abcdef0");
}

#[test]
fn plan_needs_uploads_and_refuses_an_unknown_event_shape() {
    let out = ferry(&["plan", "--routes", "tests/files/plan-routes.json"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ferry(&[
        "plan",
        "--routes",
        "tests/files/plan-routes.json",
        "../events/s3-trigger/invalid-unknown-shape.json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr)
            .contains("not an S3 notification, an SQS event or an EventBridge S3 event")
    );
    let out = ferry(&[
        "plan",
        "--routes",
        "tests/files/invalid-routes.json",
        "--keys",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("invalid routes: routes[1]: route \"b\" overlaps"));
}

#[test]
fn tasks_and_history_refuse_bad_targets_before_calling_aws() {
    let out = ferry(&["tasks", "fs-12"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).starts_with("ferry: TARGET: "),
        "{}",
        text(&out.stderr)
    );
    let out = ferry(&["history", "--since", "7y", "--table", "ferry-lanes"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("expected a duration such as 90s, 30m, 12h, 7d or 2w"));
}
