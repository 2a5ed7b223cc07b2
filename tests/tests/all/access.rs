//! Who may do what: `submit`'s function URL (`AuthType: AWS_IAM`) through the real handler,
//! with the access policy of `config/access.example.json`. Each answer is the HTTP response the
//! URL returns; the lane table shows what was queued and who the records name.

use std::path::Path;

use ferry::config::{FromEnvironment, SubmitConfig, TaskConfig};
use ferry::domain::access::Policy;
use ferry::fakes::{FakeLanes, FakeTrigger};
use ferry::handlers::submit;
use ferry::ids::StateMachineArn;
use ferry::lanes::JobId;
use ferry::lanes::record::JobState;
use ferry::ports::LaneView;
use ferry_tests::{STATE_MACHINE, lane_config};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const ALICE: &str = "arn:aws:sts::111122223333:assumed-role/hpc-users/alice";
const BOB: &str = "arn:aws:sts::111122223333:assumed-role/hpc-users/bob";
const OPERATOR: &str = "arn:aws:iam::111122223333:role/ferry-operators";
const FS: &str = "fs-0123456789abcdef0";

pub(crate) fn config(access: bool) -> SubmitConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/access.example.json");
    let policy = std::fs::read_to_string(path).unwrap();
    SubmitConfig {
        tasks: TaskConfig::default(),
        lanes: lane_config(),
        runner: StateMachineArn::parse(STATE_MACHINE).unwrap(),
        access: access.then(|| Policy::parse(&policy).unwrap_or_else(|e| panic!("{e}"))),
    }
}

/// A function URL request (payload format 2.0) from `caller` (`None`: no IAM identity).
pub(crate) fn request(caller: Option<&str>, method: &str, body: &Value) -> Value {
    let mut context = json!({
        "accountId": "111122223333", "apiId": "url-id", "domainName": "url-id.lambda-url.us-east-1.on.aws",
        "http": {"method": method, "path": "/", "protocol": "HTTP/1.1", "sourceIp": "198.51.100.7", "userAgent": "test"},
        "requestId": "r-1", "time": "07/Dec/2026:15:00:00 +0000", "timeEpoch": 1796655600000u64
    });
    if let Some(arn) = caller {
        context["authorizer"] = json!({"iam": {"accessKey": "ASIA1", "accountId": "111122223333",
                                                "callerId": "AROA1:x", "userArn": arn, "userId": "AROA1:x"}});
    }
    json!({"version": "2.0", "rawPath": "/", "rawQueryString": "", "headers": {"content-type": "application/json"},
           "requestContext": context, "body": body.to_string(), "isBase64Encoded": false})
}

fn export(name: &str) -> Value {
    json!({"name": name, "kind": "fsx_export", "file_system_id": FS, "paths": ["results"]})
}

type Ports = (FakeTrigger, FakeLanes);

/// The URL's answer: status and parsed body. A function error would be a bare 502.
async fn call(ports: &Ports, config: &SubmitConfig, payload: Value) -> (u16, Value) {
    // Each request its own Lambda request id, as Lambda gives (a job without `id` is new).
    static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let mut context = Context::default();
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    context.request_id = format!("request-{n}");
    let event = LambdaEvent::new(payload, context);
    let output = submit::handle(ports, config, event)
        .await
        .unwrap_or_else(|e| panic!("a URL request ended in a function error: {e}"));
    let output = serde_json::to_value(output).unwrap();
    let status = output["statusCode"].as_u64().expect("an HTTP response") as u16;
    assert_eq!(output["headers"]["content-type"], "application/json");
    let body = serde_json::from_str(output["body"].as_str().unwrap()).unwrap();
    (status, body)
}

/// A `POST` of `body` from `caller`, to a deployment with the example policy.
async fn post(ports: &Ports, caller: &str, body: &Value) -> (u16, Value) {
    call(ports, &config(true), request(Some(caller), "POST", body)).await
}

async fn submitted(ports: &Ports, caller: &str, name: &str) -> JobId {
    let (status, body) = call(
        ports,
        &config(true),
        request(Some(caller), "POST", &json!({"job": export(name)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body["job_id"].clone()).unwrap()
}

#[tokio::test]
async fn a_request_with_no_verified_caller_or_no_policy_is_refused() {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let job = json!({"job": export("x")});
    let (status, body) = call(&ports, &config(true), request(None, "POST", &job)).await;
    assert_eq!(status, 403);
    assert_eq!(body["error_type"], "AccessDenied");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no verified caller"),
        "{body}"
    );
    // Closed by default: a deployment without a policy refuses every URL request.
    let (status, body) = call(
        &ports,
        &config(false),
        request(Some(OPERATOR), "POST", &job),
    )
    .await;
    assert_eq!(status, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no access policy"),
        "{body}"
    );
    assert!(
        ports.0.executions().is_empty(),
        "nothing queued, no runner started"
    );
}

#[tokio::test]
async fn the_policy_refuses_what_no_rule_allows_and_names_the_callers_rules() {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let release_elsewhere = json!({"job": {"name": "r", "kind": "fsx_release", "file_system_id": "fs-0fedcba9876543210",
                                           "paths": ["scratch"], "release": {"days_since_last_access": 7}}});
    let (status, body) = post(&ports, ALICE, &release_elsewhere).await;
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!(
            "{ALICE} may not submit fsx_release jobs on lane fsx:fs-0fedcba9876543210"
        )),
        "{message}"
    );
    assert!(message.contains("'hpc-users' allows"), "{message}");
    // Someone no rule names.
    let stranger = "arn:aws:iam::444455556666:user/mallory";
    let (status, body) = post(&ports, stranger, &json!({"job": export("x")})).await;
    assert_eq!(status, 403);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no rule of the access policy names this principal")
    );
    assert!(
        ports.0.executions().is_empty(),
        "nothing refused started a runner"
    );
}

#[tokio::test]
async fn an_allowed_submit_is_queued_under_the_verified_callers_name() {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let job = submitted(&ports, ALICE, "alice-export").await;
    let record = ports.1.job(&job).await.unwrap().expect("queued");
    assert_eq!(record.job.source, format!("submit by {ALICE}"));
    assert_eq!(ports.0.executions().len(), 1, "its lane's runner started");
    // A schedule's occurrence is not a person's to give.
    let scheduled = json!({"job": export("x"), "occurrence": "arn:aws:scheduler:us-east-1:111122223333:schedule/default/s@2026-12-07T00:00:00Z"});
    let (status, body) = post(&ports, ALICE, &scheduled).await;
    assert_eq!(
        (status, body["error_type"].as_str()),
        (400, Some("InvalidJob")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("occurrence"));
}

#[tokio::test]
async fn a_cancel_of_another_persons_job_needs_cancel_others() {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let alices = submitted(&ports, ALICE, "alice-export").await;
    let cancel = |job: &JobId| json!({"cancel": {"job": job, "reason": "wrong folder"}});
    // Bob is in the same group, whose rule has cancel but not cancel-others.
    let (status, body) = post(&ports, BOB, &cancel(&alices)).await;
    assert_eq!(status, 403, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{BOB} may not cancel-others fsx_export jobs")),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "submitted by this caller: its source is \"submit by {ALICE}\""
        )),
        "{message}"
    );
    let record = ports.1.job(&alices).await.unwrap().unwrap();
    assert_eq!(
        record.state,
        JobState::Pending,
        "the refused cancel changed nothing"
    );
    // Alice cancels her own; the record names her verified ARN, whatever a body could say.
    let (status, body) = post(&ports, ALICE, &cancel(&alices)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"cancel": "while_pending", "by": ALICE}));
    let record = ports.1.job(&alices).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Canceled);
    assert_eq!(record.cancel.expect("who cancelled").by, ALICE);
    // An operator (cancel-others) cancels Bob's job.
    let bobs = submitted(&ports, BOB, "bob-export").await;
    let (status, body) = post(&ports, OPERATOR, &cancel(&bobs)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ports
            .1
            .job(&bobs)
            .await
            .unwrap()
            .unwrap()
            .cancel
            .unwrap()
            .by,
        OPERATOR
    );
    // A `by` of one's own choosing is not taken through the URL.
    let typed = json!({"cancel": {"job": bobs, "by": "someone else"}});
    let (status, body) = post(&ports, OPERATOR, &typed).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("by"), "{body}");
    // A job that does not exist.
    let unknown =
        JobId::parse("job-0123456789abcdef0123456789abcdef0123456789abcdef01234567").unwrap();
    let (status, _) = post(&ports, OPERATOR, &cancel(&unknown)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn only_a_json_post_is_taken() {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let job = json!({"job": export("x")});
    let (status, body) = call(&ports, &config(true), request(Some(ALICE), "GET", &job)).await;
    assert_eq!(status, 400);
    assert!(
        body["message"].as_str().unwrap().contains("must be POST"),
        "{body}"
    );
    let mut encoded = request(Some(ALICE), "POST", &job);
    encoded["isBase64Encoded"] = json!(true);
    let (status, body) = call(&ports, &config(true), encoded).await;
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Content-Type: application/json"),
        "{body}"
    );
    let mut broken = request(Some(ALICE), "POST", &job);
    broken["body"] = json!("{\"job\": ");
    let (status, body) = call(&ports, &config(true), broken).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("body"), "{body}");
    // The sweep is a schedule's, not a person's.
    let (status, _) = post(&ports, OPERATOR, &json!({"sweep": {}})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_direct_invocation_is_recorded_as_unverified() {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let direct = |payload: Value| LambdaEvent::new(payload, Context::default());
    let output = submit::handle(&ports, &config(true), direct(json!({"job": export("x")})))
        .await
        .unwrap();
    let job: JobId =
        serde_json::from_value(serde_json::to_value(output).unwrap()["job_id"].clone()).unwrap();
    assert_eq!(
        ports.1.job(&job).await.unwrap().unwrap().job.source,
        "submit (unverified caller)"
    );
    let cancel = json!({"cancel": {"job": job, "by": "alice", "reason": "r"}});
    submit::handle(&ports, &config(true), direct(cancel))
        .await
        .unwrap();
    let record = ports.1.job(&job).await.unwrap().unwrap();
    assert_eq!(record.cancel.unwrap().by, "alice (unverified)");
}

#[tokio::test]
async fn whoami_answers_the_verified_caller_and_what_its_rules_grant() {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let (status, body) = post(&ports, ALICE, &json!({"whoami": {}})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["caller"], ALICE);
    assert_eq!(body["policy"], true);
    assert_eq!(
        body["grants"],
        json!([
            "'hpc-users' allows submit, cancel of fsx_export, fsx_import, fsx_release on fsx:fs-0123456789abcdef0"
        ])
    );
    let stranger = "arn:aws:iam::444455556666:user/mallory";
    let (_, body) = post(&ports, stranger, &json!({"whoami": {}})).await;
    assert_eq!(body["grants"], json!([]));
    // Without a policy it still answers: nothing is granted.
    let (status, body) = call(
        &ports,
        &config(false),
        request(Some(ALICE), "POST", &json!({"whoami": {}})),
    )
    .await;
    assert_eq!((status, body["policy"].clone()), (200, json!(false)));
    let (status, _) = post(&ports, ALICE, &json!({"whoami": {"as": "root"}})).await;
    assert_eq!(status, 400, "whoami takes no options");
}

/// Closed by default: a deployment whose FileSystemIds and DataSyncTaskArns are empty (the
/// template's defaults: FERRY_FILE_SYSTEMS and FERRY_DATASYNC_TASKS `none`) starts nothing, and
/// the error names the parameter to set.
#[tokio::test]
async fn a_deployment_that_names_no_resources_starts_nothing() {
    use ferry::handlers::start_task;
    let closed = TaskConfig::from_lookup(|_| None).unwrap();
    let config = ferry_tests::laned(closed);
    let ports = (ferry::fakes::FakeTasks::new(), FakeLanes::new());
    let ds = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718";
    for (job, parameter) in [
        (export("closed"), "FileSystemIds"),
        (
            json!({"name": "d", "kind": "datasync", "task_arn": ds}),
            "DataSyncTaskArns",
        ),
    ] {
        let input = json!({"job": job, "execution": "closed-1"});
        let error =
            start_task::handle(&ports, &config, LambdaEvent::new(input, Context::default()))
                .await
                .unwrap_err();
        assert_eq!(error.error_type(), "Configuration");
        let message = error.to_string();
        assert!(
            message.contains(&format!("the {parameter} parameter")),
            "{message}"
        );
        assert!(
            message.contains("closed by default") && message.contains("give *"),
            "{message}"
        );
    }
    assert_eq!(ports.0.start_calls(), 0, "nothing started");
}
