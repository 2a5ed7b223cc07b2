//! `submit`'s preflight (issue 30): an FSx job whose task would fail on its file system's links
//! to S3 (data repository associations) is refused before it is queued, directly and through
//! the function URL; links that cannot be read let a good job through with a warning.

use std::collections::HashMap;

use ferry::config::SubmitConfig;
use ferry::domain::links::{Association, Links};
use ferry::fakes::{FakeFailure, FakeLanes, FakeTrigger};
use ferry::handlers::submit::{self, SubmitOutput};
use ferry::ids::FileSystemId;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const FS: &str = "fs-0123456789abcdef0";
const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/hpc-users/alice";

/// The example access policy's deployment (`access::config`).
fn config() -> SubmitConfig {
    crate::access::config(true)
}

/// `/ns1/` ↔ `s3://data/ns1/`, and `/raw/` ↔ `s3://data/raw/` exporting automatically.
fn linked() -> FakeTrigger {
    let association = |id: &str, path: &str, auto_export: Vec<String>| Association {
        id: id.into(),
        file_system_path: format!("/{path}/"),
        data_repository_path: format!("s3://data/{path}/"),
        lifecycle: "AVAILABLE".into(),
        auto_import: vec![],
        auto_export,
    };
    let runners = FakeTrigger::new();
    runners.set_links(HashMap::from([(
        FileSystemId::parse(FS).unwrap(),
        Links::Associations {
            associations: vec![
                association("dra-0000000000000001", "ns1", vec![]),
                association("dra-0000000000000002", "raw", vec!["NEW".into()]),
            ],
        },
    )]));
    runners
}

fn job(kind: &str, path: &str) -> Value {
    json!({"name": "j", "kind": kind, "file_system_id": FS, "paths": [path]})
}

async fn direct(
    ports: &(FakeTrigger, FakeLanes),
    payload: Value,
) -> Result<SubmitOutput, ferry::FerryError> {
    submit::handle(
        ports,
        &config(),
        LambdaEvent::new(payload, Context::default()),
    )
    .await
}

async fn queued(lanes: &FakeLanes) -> usize {
    lanes.jobs().len()
}

#[tokio::test]
async fn a_misrouted_job_is_refused_naming_the_path_and_the_associations_and_nothing_is_queued() {
    let ports = (linked(), FakeLanes::new());
    let error = direct(&ports, json!({"job": job("fsx_import", "s3://data/ns2/x")}))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "InvalidJob");
    assert_eq!(
        error.to_string(),
        format!(
            "invalid job: job.paths[0]: s3://data/ns2/x is in no S3 path linked to {FS} (import paths must lie in a linked repository); it has associations dra-0000000000000001 /ns1/ ↔ s3://data/ns1/ (AVAILABLE); dra-0000000000000002 /raw/ ↔ s3://data/raw/ (AVAILABLE, automatic export NEW)"
        )
    );
    let clash = direct(&ports, json!({"job": job("fsx_export", "raw/day-1")}))
        .await
        .unwrap_err();
    assert!(
        clash.to_string().contains("which exports automatically"),
        "{clash}"
    );
    assert_eq!(queued(&ports.1).await, 0);
    // Inside them: queued, with no warning.
    let out = direct(&ports, json!({"job": job("fsx_import", "s3://data/ns1/x")}))
        .await
        .unwrap();
    let SubmitOutput::Submitted(submitted) = out else {
        panic!("{out:?}")
    };
    assert!(submitted.enqueued && submitted.warning.is_none());
    assert_eq!(queued(&ports.1).await, 1);
}

#[tokio::test]
async fn through_the_url_a_misrouted_job_is_a_400_naming_the_problem() {
    let ports = (linked(), FakeLanes::new());
    let body = json!({"job": job("fsx_export", "scratch/x")});
    let payload = crate::access::request(Some(ALICE), "POST", &body);
    let out = serde_json::to_value(direct(&ports, payload).await.unwrap()).unwrap();
    assert_eq!(out["statusCode"], 400, "{out}");
    let answer: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["error_type"], "InvalidJob");
    assert!(
        answer["message"].as_str().unwrap().starts_with(&format!(
            "invalid job: job.paths[0]: scratch/x is under no data repository association of {FS}"
        )),
        "{answer}"
    );
    assert_eq!(queued(&ports.1).await, 0);
}

#[tokio::test]
async fn links_that_cannot_be_read_let_the_job_through_with_a_warning() {
    let runners = FakeTrigger::new();
    runners.fail_links(FakeFailure::Throttled);
    let ports = (runners, FakeLanes::new());
    let out = direct(&ports, json!({"job": job("fsx_import", "s3://anywhere/x")}))
        .await
        .unwrap();
    let SubmitOutput::Submitted(submitted) = out else {
        panic!("{out:?}")
    };
    assert_eq!(
        submitted.warning.as_deref(),
        Some(format!("the data repository links of {FS} could not be read (Throttled), so the job was not checked against them").as_str())
    );
    assert_eq!(queued(&ports.1).await, 1);
    // DataSync jobs are not checked (no links read).
    let sync = json!({"job": {"name": "s", "kind": "datasync",
        "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0"}});
    let SubmitOutput::Submitted(s) = direct(&ports, sync).await.unwrap() else {
        panic!()
    };
    assert!(s.warning.is_none());
}
