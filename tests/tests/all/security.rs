//! Security: what the functions log, what they may call, and how they write.
//!
//! - Every handler runs through its real AWS adapter, signed with credentials that carry a
//!   session token, against an in-process HTTP endpoint. The logs, captured as
//!   `lambda_runtime`'s JSON subscriber writes them, hold no secret key or session token even
//!   at TRACE, and at INFO and DEBUG none of the payload (job specs, keys, report paths), also
//!   when every function is then fed hostile input (refused, unmatched, malformed and
//!   oversized keys, invalid jobs and events: what gets logged at WARN).
//! - The DataSync manifest `PutObject` carries `x-amz-expected-bucket-owner` and no ACL,
//!   encryption or storage-class header: the bucket owner's settings apply.
//! - Each function's IAM policy in `template.yaml` grants exactly the AWS calls its code makes,
//!   derived from the source (`shared/src/aws/*.rs` with their child modules, the handlers'
//!   port bounds and each `functions/<name>/src/main.rs`), plus a listed set of documented
//!   dependent actions.
//! - Topics, queues, log groups and the lane table are encrypted (the table with point-in-time
//!   recovery); the queues refuse plain HTTP; the state machine logs no execution data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_s3::config::{Credentials, Region, SharedCredentialsProvider};
use aws_smithy_http_client::test_util::infallible_client_fn;
use ferry::aws::{AwsLanes, AwsNotify, AwsTasks, AwsTokens, AwsTrigger};
use ferry::config::{FromEnvironment, NotifyConfig, SubmitConfig, TaskConfig};
use ferry::handlers::{
    cancel_task, datasync_event, lane, notify, s3_trigger, start_task, submit, task_status,
};
use ferry::ids::StateMachineArn;
use ferry::trigger::config::TriggerConfig;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tracing::Level;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------

const ACCESS_KEY_ID: &str = "AKIAFERRYSECURITYTEST";
const SECRET_ACCESS_KEY: &str = "sEcReT/FerrySecurityTest/K7MDENGbPxRfiCY";
const SESSION_TOKEN: &str = "FwoGZXIvYXdzEFerrySessionTokenMustNeverBeLogged";
/// Put in every payload the functions receive: job specs, keys, report contents.
const PAYLOAD: &str = "PAYLOAD-MARKER";

const FS: &str = "fs-0123456789abcdef0";
const TASK_ID: &str = "task-0123456789abcdef0";
const DS_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718";
const DS_EXEC: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718/execution/exec-0123456789abcdef0";
const STATE_MACHINE: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry";
const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:ferry-reports";

/// One request the functions sent.
#[derive(Debug, Clone)]
struct Sent {
    method: String,
    uri: String,
    headers: Vec<(String, String)>,
}

impl Sent {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn response(status: u16, body: String) -> http::Response<String> {
    http::Response::builder()
        .status(status)
        .body(body)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Answers each AWS call the five functions make with a minimal valid response.
fn answer(request: &http::Request<aws_sdk_s3::primitives::SdkBody>) -> http::Response<String> {
    let target = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or("");
    let body = request
        .body()
        .bytes()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    let fsx_task = |lifecycle: &str| {
        json!({"TaskId": TASK_ID, "Lifecycle": lifecycle, "Type": "EXPORT_TO_REPOSITORY",
               "CreationTime": 1_763_700_000, "FileSystemId": FS})
    };
    let json = match target {
        // submit's preflight: the links cannot be read, so the job goes through with a warning
        // (and the warning's log line must hold no payload either).
        "DescribeFileSystems" => {
            return response(
                400,
                json!({"__type": "FileSystemNotFound", "Message": "no such file system"})
                    .to_string(),
            );
        }
        "CreateDataRepositoryTask" => json!({"DataRepositoryTask": fsx_task("PENDING")}),
        "DescribeDataRepositoryTasks" => json!({"DataRepositoryTasks": [fsx_task("EXECUTING")]}),
        "CancelDataRepositoryTask" => json!({"TaskId": TASK_ID, "Lifecycle": "CANCELING"}),
        "ListTaskExecutions" => json!({"TaskExecutions": []}),
        "StartTaskExecution" => json!({"TaskExecutionArn": DS_EXEC}),
        "DescribeTaskExecution" => json!({"TaskExecutionArn": DS_EXEC, "Status": "TRANSFERRING"}),
        "CancelTaskExecution" => json!({}),
        "StartExecution" => json!({"executionArn": format!("{STATE_MACHINE}:x"),
                                   "startDate": 1_763_700_000}),
        // The lane table: every write succeeds, every read finds an empty lane.
        "TransactWriteItems" | "UpdateItem" | "GetItem" => json!({}),
        "BatchWriteItem" => json!({"UnprocessedItems": {}}),
        "Query" => json!({"Items": [], "Count": 0, "ScannedCount": 0}),
        _ if body.contains("Action=Publish") => {
            return response(
                200,
                "<PublishResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\"><PublishResult><MessageId>m-1</MessageId></PublishResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></PublishResponse>".into(),
            );
        }
        // S3 (REST): PutObject of a manifest, GetObject of a failure report.
        _ if request.method() == "PUT" => return response(200, String::new()),
        _ if request.method() == "GET" => {
            let report = format!("projects/{PAYLOAD}/failed.nc,failed,FileSizeTooLarge\n");
            let mut r = response(206, report.clone());
            r.headers_mut().insert(
                "content-range",
                format!("bytes 0-{}/{}", report.len() - 1, report.len())
                    .parse()
                    .unwrap_or_else(|e| panic!("{e}")),
            );
            return r;
        }
        other => panic!(
            "unexpected AWS call {other:?} {} {}",
            request.method(),
            request.uri()
        ),
    };
    response(200, json.to_string())
}

/// An SDK configuration like Lambda's (credentials with a session token) whose HTTP client
/// records each request and answers it.
fn aws(sent: Arc<Mutex<Vec<Sent>>>) -> SdkConfig {
    let client = infallible_client_fn(move |request| {
        sent.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Sent {
                method: request.method().to_string(),
                uri: request.uri().to_string(),
                headers: request
                    .headers()
                    .iter()
                    .map(|(n, v)| {
                        (
                            n.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect(),
            });
        answer(&request)
    });
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            ACCESS_KEY_ID,
            SECRET_ACCESS_KEY,
            Some(SESSION_TOKEN.to_owned()),
            None,
            "ferry-security-test",
        )))
        .http_client(client)
        .build()
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// s3-trigger's configuration (the example routes), the runner and its ports.
fn trigger_setup(
    aws: &SdkConfig,
    lanes: &AwsLanes,
) -> (TriggerConfig, StateMachineArn, (AwsTrigger, AwsLanes)) {
    let trigger_config = ferry_tests::trigger_config(&read("config/routes.example.json"));
    let state_machine = StateMachineArn::parse(STATE_MACHINE).unwrap_or_else(|e| panic!("{e}"));
    let trigger = (AwsTrigger::new(aws, state_machine.clone()), lanes.clone());
    (trigger_config, state_machine, trigger)
}

/// An S3 notification of one upload of `key`, as an SQS message body.
fn body(key: &str) -> String {
    json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "ferry-data-repository"},
               "object": {"key": key, "size": 1, "sequencer": "00AB"}}}]})
    .to_string()
}

/// The task functions' configuration as a least-privilege deployment reads it: its file
/// systems and DataSync tasks listed (`FileSystemIds`, `DataSyncTaskArns`).
fn task_config() -> TaskConfig {
    TaskConfig::from_lookup(|name| match name {
        "FERRY_FILE_SYSTEMS" | "FERRY_DATASYNC_TASKS" => Some("listed".to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs every handler through its AWS adapters, each call expected to succeed.
async fn run_every_function(aws: &SdkConfig) {
    let config = ferry_tests::laned(task_config());
    let lanes = AwsLanes::new(aws, ferry_tests::LANE_TABLE);
    let tasks = (AwsTasks::new(aws), lanes.clone());
    let fsx_job = json!({"name": "nightly-export", "kind": "fsx_export", "file_system_id": FS,
                         "paths": [format!("projects/{PAYLOAD}/output")],
                         "tags": {"owner": format!("{PAYLOAD}-tag")}});
    let ds_job = json!({"name": "results-to-archive", "kind": "datasync", "task_arn": DS_TASK,
                        "includes": [format!("/results/{PAYLOAD}")],
                        "tags": {"owner": format!("{PAYLOAD}-tag")}});
    for job in [&fsx_job, &ds_job] {
        let started = start_task::handle(
            &tasks,
            &config,
            event(json!({"job": job, "execution": "exec-1"})),
        )
        .await
        .unwrap_or_else(|e| panic!("start-task: {e}"));
        let input = json!({"job": job, "task": started.task.expect("started")});
        task_status::handle(&tasks, &config, event(input.clone()))
            .await
            .unwrap_or_else(|e| panic!("task-status: {e}"));
        cancel_task::handle(&tasks, &config, event(input))
            .await
            .unwrap_or_else(|e| panic!("cancel-task: {e}"));
    }

    let (trigger_config, state_machine, trigger) = trigger_setup(aws, &lanes);
    let batch = json!({"Records": [
        {"messageId": "m1", "eventSource": "aws:sqs", "body": body(&format!("incoming/{PAYLOAD}/a.nc"))},
        // '|' cannot be in a filter: this one goes to a manifest (PutObject).
        {"messageId": "m2", "eventSource": "aws:sqs", "body": body(&format!("outgoing/{PAYLOAD}%7Cb.csv"))},
    ]});
    let output = s3_trigger::handle(&trigger, &trigger_config, event(batch))
        .await
        .unwrap_or_else(|e| panic!("s3-trigger: {e}"));
    assert_eq!(
        serde_json::to_value(&output).unwrap_or_default(),
        json!({"batchItemFailures": []})
    );

    let notify_config =
        NotifyConfig::from_lookup(|name| (name == "FERRY_TOPIC_ARN").then(|| TOPIC.to_owned()))
            .unwrap_or_else(|e| panic!("{e}"));
    let report: Value = serde_json::from_str(&read("events/notify/failed-with-report.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let notify_ports = (AwsNotify::new(aws), lanes.clone());
    let notify_config = ferry_tests::laned(notify_config);
    let published = notify::handle(&notify_ports, &notify_config, event(report))
        .await
        .unwrap_or_else(|e| panic!("notify: {e}"));
    assert_eq!(published.message_ids.len(), 2);

    let lane_step =
        json!({"action": "take", "lane": format!("fsx:{FS}"), "owner": "lane-runner-1"});
    let lane_ports = (lanes.clone(), AwsTokens::new(aws));
    lane::handle(&lane_ports, &config, event(lane_step))
        .await
        .unwrap_or_else(|e| panic!("lane: {e}"));
    let submit_config = SubmitConfig {
        tasks: config.config,
        lanes: config.lanes.clone(),
        runner: state_machine,
        access: None,
    };
    for input in [
        json!({"job": fsx_job, "id": format!("{PAYLOAD}-id")}),
        json!({"sweep": {}}),
    ] {
        submit::handle(&trigger, &submit_config, event(input))
            .await
            .unwrap_or_else(|e| panic!("submit: {e}"));
    }
}

/// Every function fed input it refuses, each carrying [`PAYLOAD`]: what it logs about a refusal
/// (at WARN) must not echo the input. Errors are expected; only the logs are looked at.
async fn run_hostile_inputs(aws: &SdkConfig) {
    let config = ferry_tests::laned(task_config());
    let lanes = AwsLanes::new(aws, ferry_tests::LANE_TABLE);
    let tasks = (AwsTasks::new(aws), lanes.clone());
    let invalid_job = json!({"name": format!("{PAYLOAD}!"), "kind": "fsx_export",
                             "file_system_id": format!("fs-{PAYLOAD}"),
                             "paths": [format!("/{PAYLOAD}/../x")]});
    let _ = start_task::handle(&tasks, &config, event(json!({"job": invalid_job}))).await;
    let _ = task_status::handle(
        &tasks,
        &config,
        event(json!({"job": invalid_job, "task": PAYLOAD})),
    )
    .await;
    let _ = cancel_task::handle(&tasks, &config, event(json!({"task": {"fsx": PAYLOAD}}))).await;

    let (trigger_config, state_machine, trigger) = trigger_setup(aws, &lanes);
    let long = format!("incoming/{}", PAYLOAD.repeat(80));
    let keys = [
        format!("elsewhere/{PAYLOAD}/unmatched.nc"),
        format!("incoming/{PAYLOAD}%FF.nc"),
        format!("incoming/{PAYLOAD}%01control.nc"),
        format!("incoming/{PAYLOAD}/../../escape.nc"),
        format!("incoming/{PAYLOAD}/"),
        long,
    ];
    let mut records: Vec<Value> = keys
        .iter()
        .enumerate()
        .map(|(i, key)| json!({"messageId": format!("h{i}"), "eventSource": "aws:sqs", "body": body(key)}))
        .collect();
    records.push(
        json!({"messageId": "h-bad", "eventSource": "aws:sqs", "body": format!("{{{PAYLOAD}")}),
    );
    let _ = s3_trigger::handle(
        &trigger,
        &trigger_config,
        event(json!({"Records": records})),
    )
    .await;
    let _ = s3_trigger::handle(&trigger, &trigger_config, event(json!({PAYLOAD: 1}))).await;

    let submit_config = SubmitConfig {
        tasks: config.config,
        lanes: config.lanes.clone(),
        runner: state_machine,
        // The example policy names the fixture's caller, so its requests reach the job's rules.
        access: Some(
            ferry::domain::access::Policy::parse(&read("config/access.example.json"))
                .unwrap_or_else(|e| panic!("{e}")),
        ),
    };
    // Through the function URL too: the refusal's message goes to the caller, not the logs.
    let url_request = |body: Value| {
        let mut request: Value = serde_json::from_str(&read("events/submit/url-person.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        request["body"] = json!(body.to_string());
        request
    };
    for input in [
        json!({"job": invalid_job}),
        json!({"job": invalid_job, "id": PAYLOAD, "occurrence": PAYLOAD}),
        json!({"cancel": {"job": PAYLOAD, "by": PAYLOAD, "reason": PAYLOAD}}),
        json!({PAYLOAD: {}}),
        url_request(json!({"job": invalid_job})),
        url_request(json!({"cancel": {"job": PAYLOAD, "reason": PAYLOAD}})),
        url_request(json!({PAYLOAD: {}})),
    ] {
        let _ = submit::handle(&trigger, &submit_config, event(input)).await;
    }
    let lane_ports = (lanes.clone(), AwsTokens::new(aws));
    let _ = lane::handle(&lane_ports, &config, event(json!({"action": PAYLOAD}))).await;
    let _ = lane::handle(
        &lane_ports,
        &config,
        event(json!({"action": "take", "lane": format!("fsx:{PAYLOAD}"), "owner": PAYLOAD})),
    )
    .await;
    let notify_config =
        NotifyConfig::from_lookup(|name| (name == "FERRY_TOPIC_ARN").then(|| TOPIC.to_owned()))
            .unwrap_or_else(|e| panic!("{e}"));
    let notify_ports = (AwsNotify::new(aws), lanes.clone());
    let notify_config = ferry_tests::laned(notify_config);
    let _ = notify::handle(
        &notify_ports,
        &notify_config,
        event(json!({"job": invalid_job})),
    )
    .await;
    let event_ports = (lanes.clone(), AwsTokens::new(aws), AwsTasks::new(aws));
    let datasync_event = json!({"source": "aws.datasync", "detail-type": PAYLOAD,
                                "resources": [format!("arn:aws:datasync:{PAYLOAD}")],
                                "detail": {"State": PAYLOAD}});
    let _ = datasync_event::handle(&event_ports, &config.lanes, event(datasync_event)).await;
}

/// A global subscriber that records nothing but leaves every callsite's interest undecided.
///
/// `tracing` caches, per callsite, whether any subscriber wants it, computed from the
/// subscribers alive when the callsite is first hit. Every test of this binary shares the
/// cache, so a handler's callsite first hit by another test while no capturing subscriber is
/// alive can be cached as "never" and then miss a capture here (a flaky missing log line).
/// With this one installed no callsite is ever "never": each event asks the thread's
/// subscriber.
struct Undecided;

impl tracing::Subscriber for Undecided {
    fn register_callsite(
        &self,
        _: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        tracing::subscriber::Interest::sometimes()
    }
    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        false
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The logs of one run of every function at `level`, and the requests it sent.
fn logs_at(level: Level) -> (String, Vec<Sent>) {
    static UNDECIDED: std::sync::Once = std::sync::Once::new();
    UNDECIDED.call_once(|| {
        // Only this module captures logs; if something else set a global one, it is not ours
        // to replace, and the rebuild below still covers the callsites registered so far.
        let _ = tracing::subscriber::set_global_default(Undecided);
    });
    let buffer = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = buffer.clone();
    // As lambda_runtime::tracing::init_default_subscriber writes them with LogFormat JSON.
    let subscriber = tracing_subscriber::fmt()
        .with_target(false)
        .json()
        .with_max_level(level)
        .with_writer(move || Sink(sink.clone()))
        .finish();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let aws = aws(sent.clone());
    tracing::subscriber::with_default(subscriber, || {
        // Callsites first hit by other tests before the line above have their interest
        // recomputed now that this subscriber is alive.
        tracing::callsite::rebuild_interest_cache();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
            .block_on(async {
                run_every_function(&aws).await;
                run_hostile_inputs(&aws).await;
            });
    });
    let logs =
        String::from_utf8_lossy(&buffer.lock().unwrap_or_else(|e| e.into_inner())).into_owned();
    let sent = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    (logs, sent)
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_never_hold_credentials_even_at_trace() {
    let (logs, sent) = logs_at(Level::TRACE);
    // The run really used the credentials: every request is signed with them.
    assert!(sent.len() >= 12, "{} requests", sent.len());
    for request in &sent {
        let auth = request.header("authorization").unwrap_or_default();
        assert!(auth.contains(ACCESS_KEY_ID), "{} unsigned", request.uri);
        assert_eq!(request.header("x-amz-security-token"), Some(SESSION_TOKEN));
    }
    // And TRACE is verbose: the SDK's own request tracing is in there.
    assert!(logs.lines().count() > 100, "{} lines", logs.lines().count());
    assert!(logs.contains("starting task") && logs.contains("report published"));
    // The capture sees what is logged: at TRACE the SDK logs request bodies (job specs), and
    // the headers it logs are redacted.
    assert!(logs.contains(PAYLOAD));
    assert!(logs.contains("redacted"));
    for secret in [SECRET_ACCESS_KEY, SESSION_TOKEN] {
        assert!(!logs.contains(secret), "a credential is in the logs");
    }
}

#[test]
fn logs_at_info_and_debug_hold_no_payload() {
    for level in [Level::WARN, Level::INFO, Level::DEBUG] {
        let (logs, _) = logs_at(level);
        if level >= Level::INFO {
            assert!(logs.contains("\"runner started\""), "{level}: {logs}");
        }
        // The hostile run was refused loudly enough to be seen at WARN.
        assert!(
            logs.contains("\"WARN\""),
            "{level}: nothing at WARN: {logs}"
        );
        for secret in [SECRET_ACCESS_KEY, SESSION_TOKEN] {
            assert!(
                !logs.contains(secret),
                "{level}: a credential is in the logs"
            );
        }
        // Job specs, tags, paths, uploaded keys and report contents all carry the marker.
        if let Some(line) = logs.lines().find(|l| l.contains(PAYLOAD)) {
            panic!("{level}: payload in the logs: {line}");
        }
    }
}

#[test]
fn manifests_are_written_with_the_bucket_owners_settings() {
    let (_, sent) = logs_at(Level::ERROR);
    let puts: Vec<&Sent> = sent.iter().filter(|r| r.method == "PUT").collect();
    assert_eq!(puts.len(), 1, "one manifest");
    let put = puts[0];
    assert!(put.uri.contains("ferry-manifests/"), "{}", put.uri);
    // Only a bucket of the state machine's account (S3 answers 403 otherwise).
    assert_eq!(
        put.header("x-amz-expected-bucket-owner"),
        Some("111122223333")
    );
    // No ACL (Object Ownership decides), no encryption or storage class (bucket defaults).
    for (name, _) in &put.headers {
        for refused in [
            "x-amz-acl",
            "x-amz-grant-",
            "x-amz-server-side-encryption",
            "x-amz-storage-class",
            "x-amz-object-lock",
            "x-amz-website-redirect-location",
        ] {
            assert!(!name.starts_with(refused), "PutObject sends {name}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// IAM: each function's policy against the AWS calls its code makes
// ---------------------------------------------------------------------------------------

/// Actions a policy grants that no code calls, each for a documented reason. Each must be
/// granted (a stale entry fails the test too).
const DEPENDENT_ACTIONS: &[(&str, &str, &str)] = &[
    (
        "start-task",
        "fsx:TagResource",
        "CreateDataRepositoryTask with Tags needs it (Service Authorization Reference: dependent action)",
    ),
    (
        "start-task",
        "datasync:TagResource",
        "StartTaskExecution with Tags (Ferry's idempotency tag) needs it (dependent action)",
    ),
    (
        "start-task",
        "iam:PassRole",
        "a manifest or task report passes its bucket access role to DataSync",
    ),
    (
        "start-task",
        "iam:CreateServiceLinkedRole",
        "CreateTask with TaskMode ENHANCED needs it (DataSync API reference, CreateTask)",
    ),
    (
        "notify",
        "kms:GenerateDataKey*",
        "Publish to the KMS-encrypted report topic",
    ),
    (
        "notify",
        "kms:Decrypt",
        "Publish to the KMS-encrypted report topic",
    ),
    (
        "s3-trigger",
        "sqs:ReceiveMessage",
        "the SQS event source mapping polls with the function's role",
    ),
    (
        "s3-trigger",
        "sqs:DeleteMessage",
        "the event source mapping deletes processed messages",
    ),
    (
        "s3-trigger",
        "sqs:GetQueueAttributes",
        "the event source mapping reads the queue's attributes",
    ),
];

/// SDK operations whose IAM action is not `service:Operation`.
const ACTION_OF_OPERATION: &[(&str, &str)] = &[
    ("s3:ListObjectsV2", "s3:ListBucket"),
    // "Permissions for Put, Update, Delete, and Get actions are governed by the permissions
    // used for the underlying PutItem, UpdateItem, DeleteItem, and GetItem operations" (DynamoDB
    // developer guide, "Using IAM with DynamoDB transactions"): the transaction itself needs
    // nothing; each item's builder (below) names its action.
    ("dynamodb:TransactWriteItems", ""),
];

/// A transaction item built with `Put::builder()` (...) is that action (see above).
const TRANSACTION_ITEMS: &[(&str, &str)] = &[
    ("Put", "put_item"),
    ("Update", "update_item"),
    ("Delete", "delete_item"),
    ("ConditionCheck", "condition_check_item"),
];

/// The IAM prefix of each SDK crate Ferry uses.
const IAM_PREFIX: &[(&str, &str)] = &[
    ("fsx", "fsx"),
    ("datasync", "datasync"),
    ("s3", "s3"),
    ("sns", "sns"),
    ("sfn", "states"),
    ("dynamodb", "dynamodb"),
];

fn parse_rust(path: &Path) -> syn::File {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A function of an adapter module, or a method of one of its trait impls.
#[derive(Debug, Default)]
struct FnFacts {
    /// SDK operations called directly: (crate, snake_case operation).
    operations: BTreeSet<(String, String)>,
    /// Functions called: (module, name); module "" is the same module.
    calls: BTreeSet<(String, String)>,
}

/// What `shared/src/aws` holds: free functions per module, and trait impls per (trait, type).
#[derive(Debug, Default)]
struct Adapters {
    functions: BTreeMap<(String, String), FnFacts>,
    /// (trait, type) -> the module of the impl, and its methods.
    impls: BTreeMap<(String, String), (String, Vec<FnFacts>)>,
}

struct BodyVisitor<'a> {
    /// Variables that are SDK clients, and struct fields (`self.s3`) that are: name -> crate.
    clients: &'a BTreeMap<String, String>,
    facts: FnFacts,
}

impl<'ast> syn::visit::Visit<'ast> for BodyVisitor<'_> {
    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        let client = match &*call.receiver {
            syn::Expr::Path(p) => p.path.get_ident().map(ToString::to_string),
            syn::Expr::Field(f) => match (&*f.base, &f.member) {
                (syn::Expr::Path(base), syn::Member::Named(name)) if base.path.is_ident("self") => {
                    Some(name.to_string())
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(krate) = client.as_ref().and_then(|c| self.clients.get(c)) {
            self.facts
                .operations
                .insert((krate.clone(), call.method.to_string()));
        }
        // `self.transact(...)`: a method of the adapter's own (inherent) impl.
        if let syn::Expr::Path(p) = &*call.receiver
            && p.path.is_ident("self")
        {
            self.facts
                .calls
                .insert((String::new(), call.method.to_string()));
        }
        syn::visit::visit_expr_method_call(self, call);
    }

    /// `vec![self.put(..)?, ..]`: syn leaves macro bodies as tokens; read the ones that are
    /// lists of expressions.
    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let parser = syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated;
        if let Ok(exprs) = mac.parse_body_with(parser) {
            for expr in &exprs {
                syn::visit::Visit::visit_expr(self, expr);
            }
        }
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(p) = &*call.func {
            let segments: Vec<String> = p
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            match segments.as_slice() {
                [item, builder] if builder == "builder" => {
                    if let Some((_, operation)) = TRANSACTION_ITEMS.iter().find(|(t, _)| t == item)
                    {
                        self.facts
                            .operations
                            .insert(("dynamodb".into(), (*operation).to_owned()));
                    }
                }
                [name] => {
                    self.facts.calls.insert((String::new(), name.clone()));
                }
                [module, name] => {
                    self.facts.calls.insert((module.clone(), name.clone()));
                }
                _ => {}
            }
        }
        syn::visit::visit_expr_call(self, call);
    }
}

/// The SDK crate a type names (`aws_sdk_fsx::Client`, or `Client` imported from one).
fn sdk_crate_of(ty: &syn::Type, imported_client: Option<&str>) -> Option<String> {
    let syn::Type::Path(path) = ty else {
        return match ty {
            syn::Type::Reference(r) => sdk_crate_of(&r.elem, imported_client),
            _ => None,
        };
    };
    let segments: Vec<String> = path
        .path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect();
    match segments.as_slice() {
        [krate, client] if client == "Client" => krate.strip_prefix("aws_sdk_").map(str::to_owned),
        [client] if client == "Client" => imported_client.map(str::to_owned),
        _ => None,
    }
}

/// The adapter modules of `shared/src/aws` and their files: `fsx.rs` is the module `fsx`, with
/// its children (`fsx/<child>.rs`, its tests aside); `mod.rs` is the module "".
fn adapter_modules() -> BTreeMap<String, Vec<PathBuf>> {
    let dir = root().join("shared/src/aws");
    let rust = |path: &Path| path.extension().is_some_and(|e| e == "rs");
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if !rust(&path) || stem == "test_support" {
            continue;
        }
        let module = if stem == "mod" {
            String::new()
        } else {
            stem.to_owned()
        };
        let mut files = vec![path.clone()];
        if let Ok(children) = std::fs::read_dir(dir.join(stem)) {
            for child in children {
                let child = child.unwrap_or_else(|e| panic!("{e}")).path();
                if rust(&child) && child.file_stem().is_some_and(|s| s != "tests") {
                    files.push(child);
                }
            }
        }
        modules.insert(module, files);
    }
    modules
}

fn read_adapters() -> Adapters {
    let mut adapters = Adapters::default();
    for (module, paths) in adapter_modules() {
        let files: Vec<syn::File> = paths.iter().map(|path| parse_rust(path)).collect();
        let items = || files.iter().flat_map(|file| &file.items);
        // `use aws_sdk_fsx::Client;`
        let imported = items().find_map(|item| match item {
            syn::Item::Use(u) => {
                let text = quote_tokens(&u.tree);
                text.strip_prefix("aws_sdk_")
                    .and_then(|rest| rest.strip_suffix("::Client"))
                    .map(str::to_owned)
            }
            _ => None,
        });
        // Struct fields holding clients (`sfn: aws_sdk_sfn::Client`).
        let mut fields = BTreeMap::new();
        for item in items() {
            if let syn::Item::Struct(s) = item {
                for field in &s.fields {
                    if let (Some(name), Some(krate)) =
                        (&field.ident, sdk_crate_of(&field.ty, imported.as_deref()))
                    {
                        fields.insert(name.to_string(), krate);
                    }
                }
            }
        }
        let facts_of = |sig: &syn::Signature, block: &syn::Block| {
            let mut clients = fields.clone();
            for input in &sig.inputs {
                if let syn::FnArg::Typed(arg) = input
                    && let syn::Pat::Ident(name) = &*arg.pat
                    && let Some(krate) = sdk_crate_of(&arg.ty, imported.as_deref())
                {
                    clients.insert(name.ident.to_string(), krate);
                }
            }
            let mut visitor = BodyVisitor {
                clients: &clients,
                facts: FnFacts::default(),
            };
            syn::visit::Visit::visit_block(&mut visitor, block);
            visitor.facts
        };
        for item in items() {
            match item {
                syn::Item::Fn(f) => {
                    adapters.functions.insert(
                        (module.clone(), f.sig.ident.to_string()),
                        facts_of(&f.sig, &f.block),
                    );
                }
                // An inherent impl's methods are the module's helpers, like its functions.
                syn::Item::Impl(i) if i.trait_.is_none() => {
                    for item in &i.items {
                        if let syn::ImplItem::Fn(m) = item {
                            adapters.functions.insert(
                                (module.clone(), m.sig.ident.to_string()),
                                facts_of(&m.sig, &m.block),
                            );
                        }
                    }
                }
                syn::Item::Impl(i) => {
                    let (Some((_, trait_path, _)), syn::Type::Path(ty)) = (&i.trait_, &*i.self_ty)
                    else {
                        continue;
                    };
                    let name = |p: &syn::Path| p.segments.last().map(|s| s.ident.to_string());
                    let (Some(trait_name), Some(type_name)) = (name(trait_path), name(&ty.path))
                    else {
                        continue;
                    };
                    let methods = i
                        .items
                        .iter()
                        .filter_map(|item| match item {
                            syn::ImplItem::Fn(m) => Some(facts_of(&m.sig, &m.block)),
                            _ => None,
                        })
                        .collect();
                    adapters
                        .impls
                        .insert((trait_name, type_name), (module.clone(), methods));
                }
                _ => {}
            }
        }
    }
    adapters
}

/// A `use` tree as `a::b::C` (single paths only).
fn quote_tokens(tree: &syn::UseTree) -> String {
    match tree {
        syn::UseTree::Path(p) => format!("{}::{}", p.ident, quote_tokens(&p.tree)),
        syn::UseTree::Name(n) => n.ident.to_string(),
        _ => String::new(),
    }
}

impl Adapters {
    /// Every SDK operation reachable from `facts` in `module`, following calls between the
    /// adapter modules' functions.
    fn operations(
        &self,
        module: &str,
        facts: &FnFacts,
        seen: &mut BTreeSet<(String, String)>,
    ) -> BTreeSet<(String, String)> {
        let mut out = facts.operations.clone();
        for (m, name) in &facts.calls {
            let key = (
                if m.is_empty() {
                    module.to_owned()
                } else {
                    m.clone()
                },
                name.clone(),
            );
            if seen.insert(key.clone())
                && let Some(callee) = self.functions.get(&key)
            {
                out.extend(self.operations(&key.0, callee, seen));
            }
        }
        out
    }

    /// The operations the adapter types a function builds can make through one port trait
    /// (every one of them that implements it).
    fn port_operations(
        &self,
        trait_name: &str,
        type_names: &BTreeSet<String>,
    ) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        let mut implemented = false;
        for type_name in type_names {
            let Some((module, methods)) =
                self.impls.get(&(trait_name.to_owned(), type_name.clone()))
            else {
                continue;
            };
            implemented = true;
            for method in methods {
                out.extend(self.operations(module, method, &mut BTreeSet::new()));
            }
        }
        assert!(
            implemented,
            "no `impl {trait_name}` for any of {type_names:?} in shared/src/aws"
        );
        out
    }
}

/// Handlers (`shared/src/handlers/<name>.rs`: `pub async fn handle<P: TraitA + TraitB>`, and
/// its child modules in `handlers/<name>/`), by file name, and the port traits they may use:
/// those of `handle` and of `load` (a configuration read at cold start through a port, as
/// `s3-trigger`'s routes object).
fn handler_bounds() -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    let dir = root().join("shared/src/handlers");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.is_dir() {
            for child in std::fs::read_dir(&path).unwrap_or_else(|e| panic!("{e}")) {
                files.push((
                    stem.to_owned(),
                    child.unwrap_or_else(|e| panic!("{e}")).path(),
                ));
            }
        } else {
            files.push((stem.to_owned(), path));
        }
    }
    for (stem, path) in files {
        for item in parse_rust(&path).items {
            let syn::Item::Fn(f) = item else { continue };
            if f.sig.asyncness.is_none()
                || !matches!(f.vis, syn::Visibility::Public(_))
                || !["handle", "load"].contains(&f.sig.ident.to_string().as_str())
            {
                continue;
            }
            let mut traits = BTreeSet::new();
            for param in &f.sig.generics.params {
                if let syn::GenericParam::Type(t) = param {
                    for bound in &t.bounds {
                        if let syn::TypeParamBound::Trait(b) = bound
                            && let Some(last) = b.path.segments.last()
                        {
                            traits.insert(last.ident.to_string());
                        }
                    }
                }
            }
            if !traits.is_empty() {
                out.entry(stem.clone())
                    .or_insert_with(BTreeSet::new)
                    .extend(traits);
            }
        }
    }
    out
}

/// Finds the handler a `main.rs` serves (`start_task::handle`) and the adapter types it builds
/// (`AwsTasks::new`, `AwsLanes::new`).
struct MainVisitor<'a> {
    handlers: &'a BTreeMap<String, BTreeSet<String>>,
    handler: Option<String>,
    /// Every `Aws*::new` the binary builds (its ports may be a tuple of adapters).
    adapters: BTreeSet<String>,
}

impl<'ast> syn::visit::Visit<'ast> for MainVisitor<'_> {
    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let syn::Expr::Path(p) = &*call.func {
            let segments: Vec<String> = p
                .path
                .segments
                .iter()
                .map(|s| s.ident.to_string())
                .collect();
            if let Some(last) = segments.last()
                && last == "new"
                && segments.len() >= 2
                && segments[segments.len() - 2].starts_with("Aws")
            {
                self.adapters.insert(segments[segments.len() - 2].clone());
            }
        }
        syn::visit::visit_expr_call(self, call);
    }

    fn visit_expr_path(&mut self, path: &'ast syn::ExprPath) {
        // `serve(..., start_task::handle)`: the handler is its module's.
        let segments: Vec<String> = path
            .path
            .segments
            .iter()
            .map(|s| s.ident.to_string())
            .collect();
        if let [.., module, handle] = segments.as_slice()
            && handle == "handle"
            && self.handlers.contains_key(module)
        {
            self.handler = Some(module.clone());
        }
        syn::visit::visit_expr_path(self, path);
    }
}

/// Each function (`functions/<name>`) and the IAM actions its code can call.
fn actions_called() -> BTreeMap<String, BTreeSet<String>> {
    let adapters = read_adapters();
    let handlers = handler_bounds();
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root().join("functions")).unwrap_or_else(|e| panic!("{e}")) {
        let dir = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        let mut visitor = MainVisitor {
            handlers: &handlers,
            handler: None,
            adapters: BTreeSet::new(),
        };
        syn::visit::Visit::visit_file(&mut visitor, &parse_rust(&dir.join("src/main.rs")));
        let Some(handler) = visitor.handler.filter(|_| !visitor.adapters.is_empty()) else {
            panic!("functions/{name}/src/main.rs: no handler call or Aws*::new adapter found");
        };
        let mut actions = BTreeSet::new();
        for port in &handlers[&handler] {
            let operations = adapters.port_operations(port, &visitor.adapters);
            for (krate, operation) in operations {
                let prefix = IAM_PREFIX
                    .iter()
                    .find(|(k, _)| *k == krate)
                    .map(|(_, p)| *p)
                    .unwrap_or_else(|| panic!("no IAM prefix for aws_sdk_{krate}"));
                let pascal: String = operation
                    .split('_')
                    .map(|w| {
                        let mut c = w.chars();
                        c.next()
                            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                            .unwrap_or_default()
                    })
                    .collect();
                let action = format!("{prefix}:{pascal}");
                let action = ACTION_OF_OPERATION
                    .iter()
                    .find(|(op, _)| *op == action)
                    .map_or(action, |(_, a)| (*a).to_owned());
                if !action.is_empty() {
                    actions.insert(action);
                }
            }
        }
        out.insert(name, actions);
    }
    out
}

fn template() -> serde_norway::Value {
    serde_norway::from_str(&read("template.yaml")).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

/// Every Allow action of a policy list, through `!If` branches (both: either may deploy).
fn allowed_actions(value: &serde_norway::Value, out: &mut BTreeSet<String>, function: &str) {
    use serde_norway::Value as Y;
    match value {
        Y::Sequence(items) => items.iter().for_each(|v| allowed_actions(v, out, function)),
        Y::Tagged(tagged) if tagged.tag == "If" => {
            if let Y::Sequence(branches) = &tagged.value {
                branches
                    .iter()
                    .skip(1)
                    .for_each(|v| allowed_actions(v, out, function));
            }
        }
        Y::Tagged(tagged) if tagged.tag == "Ref" => {
            assert_eq!(
                tagged.value.as_str(),
                Some("AWS::NoValue"),
                "{function}: policy {value:?}"
            );
        }
        Y::Mapping(map) => {
            if let Some(statements) = map.get("Statement") {
                allowed_actions(statements, out, function);
            } else if map.contains_key("Effect") {
                if map.get("Effect").and_then(Y::as_str) != Some("Allow") {
                    return;
                }
                match map.get("Action") {
                    Some(Y::String(a)) => {
                        out.insert(a.clone());
                    }
                    Some(Y::Sequence(list)) => {
                        out.extend(list.iter().filter_map(|a| a.as_str().map(str::to_owned)))
                    }
                    other => panic!("{function}: statement without a plain Action: {other:?}"),
                }
            } else {
                // A SAM policy template (SQSPollerPolicy, ...) grants actions this test cannot see.
                panic!("{function}: unsupported policy {map:?}: list the actions in a Statement");
            }
        }
        // A managed policy name or ARN: its actions are not in the template.
        other => {
            panic!("{function}: unsupported policy {other:?}: list the actions in a Statement")
        }
    }
}

/// Each function's granted actions in template.yaml, by `functions/<name>`: its `Policies`,
/// and the `AWS::IAM::Policy` resources attached to the role SAM makes for it (`<Id>Role`),
/// which is how a function the state machine names is granted calls on the state machine.
fn actions_granted() -> BTreeMap<String, BTreeSet<String>> {
    let template = template();
    let mut out = BTreeMap::new();
    let mut by_role = BTreeMap::new();
    let resources = template["Resources"]
        .as_mapping()
        .unwrap_or_else(|| panic!("no Resources"));
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap_or_else(|| panic!("{id:?}: no Metadata.BuildProperties.Binary"));
        let name = binary.strip_prefix("ferry-").unwrap_or(binary).to_owned();
        let properties = &resource["Properties"];
        assert!(
            properties.get("Events").is_none(),
            "{name}: SAM Events attach managed policies this test cannot see"
        );
        let mut actions = BTreeSet::new();
        if let Some(policies) = properties.get("Policies") {
            allowed_actions(policies, &mut actions, &name);
        }
        let id = id.as_str().unwrap_or_default();
        by_role.insert(format!("{id}Role"), name.clone());
        out.insert(name, actions);
    }
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::IAM::Policy") {
            continue;
        }
        let roles = resource["Properties"]["Roles"]
            .as_sequence()
            .cloned()
            .unwrap_or_default();
        for role in roles {
            let serde_norway::Value::Tagged(tagged) = role else {
                continue;
            };
            let function = tagged.value.as_str().and_then(|r| by_role.get(r));
            if let (true, Some(function)) = (tagged.tag == "Ref", function) {
                let document = &resource["Properties"]["PolicyDocument"];
                let actions = out.entry(function.clone()).or_default();
                allowed_actions(document, actions, &format!("{function} ({id:?})"));
            }
        }
    }
    out
}

/// `granted` (possibly with `*`) covers `action`.
fn grants(granted: &str, action: &str) -> bool {
    match granted.strip_suffix('*') {
        Some(head) => action.starts_with(head),
        None => granted == action,
    }
}

/// Every mismatch between the actions each function calls and those its policy grants.
fn iam_problems(
    called: &BTreeMap<String, BTreeSet<String>>,
    granted: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    let mut problems = Vec::new();
    if called.keys().ne(granted.keys()) {
        problems.push(format!(
            "functions/ has {:?}, template.yaml {:?}",
            called.keys().collect::<Vec<_>>(),
            granted.keys().collect::<Vec<_>>()
        ));
        return problems;
    }
    for (function, actions) in called {
        let policy = &granted[function];
        for action in actions {
            if !policy.iter().any(|g| grants(g, action)) {
                problems.push(format!(
                    "{function} calls {action}, which its policy does not grant"
                ));
            }
        }
        for grant in policy {
            let used = actions.iter().any(|a| grants(grant, a));
            let dependent = DEPENDENT_ACTIONS
                .iter()
                .any(|(f, a, _)| f == function && a == grant);
            if !used && !dependent {
                problems.push(format!(
                    "{function} is granted {grant}, which its code never calls (remove it, or list it in DEPENDENT_ACTIONS with why)"
                ));
            }
        }
    }
    for (function, action, why) in DEPENDENT_ACTIONS {
        if !granted[*function].contains(*action) {
            problems.push(format!(
                "DEPENDENT_ACTIONS lists {action} for {function} ({why}), but it is not granted"
            ));
        }
    }
    problems
}

#[test]
fn each_function_is_granted_exactly_the_calls_its_code_makes() {
    let called = actions_called();
    let granted = actions_granted();
    // The derivation itself must see the calls (a parser that finds nothing proves nothing).
    assert_eq!(
        called["start-task"],
        BTreeSet::from(
            [
                "fsx:CreateDataRepositoryTask",
                "fsx:DescribeDataRepositoryTasks",
                "datasync:StartTaskExecution",
                "datasync:ListTaskExecutions",
                "datasync:ListTagsForResource",
                // A task block: the task is ensured before it starts.
                "datasync:ListTasks",
                "datasync:DescribeTask",
                "datasync:CreateTask",
                "datasync:UpdateTask",
                "datasync:TagResource",
                "datasync:UntagResource",
                "dynamodb:UpdateItem",
                // The run it starts, read by reference.
                "dynamodb:GetItem",
            ]
            .map(String::from)
        )
    );
    assert!(
        called["notify"].contains("s3:ListBucket"),
        "{:?}",
        called["notify"]
    );
    let problems = iam_problems(&called, &granted);
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // And the comparison fails both ways: a call without a grant, a grant without a call.
    let mut new_call = called.clone();
    if let Some(actions) = new_call.get_mut("task-status") {
        actions.insert("fsx:DescribeFileSystems".into());
    }
    assert_eq!(iam_problems(&new_call, &granted).len(), 1);
    let mut extra_grant = granted.clone();
    if let Some(actions) = extra_grant.get_mut("s3-trigger") {
        actions.insert("s3:DeleteObject".into());
    }
    assert_eq!(iam_problems(&called, &extra_grant).len(), 1);
    let mut stale = granted;
    if let Some(actions) = stale.get_mut("start-task") {
        actions.remove("iam:PassRole");
    }
    assert_eq!(iam_problems(&called, &stale).len(), 1);
}

/// Every IAM statement of every function, through `!If` branches (both: either may deploy).
fn statements<'a>(value: &'a serde_norway::Value, out: &mut Vec<&'a serde_norway::Mapping>) {
    use serde_norway::Value as Y;
    match value {
        Y::Sequence(items) => items.iter().for_each(|v| statements(v, out)),
        Y::Tagged(tagged) if tagged.tag == "If" => {
            if let Y::Sequence(branches) = &tagged.value {
                branches.iter().skip(1).for_each(|v| statements(v, out));
            }
        }
        Y::Mapping(map) if map.contains_key("Effect") => out.push(map),
        Y::Mapping(map) => map.values().for_each(|v| statements(v, out)),
        _ => {}
    }
}

/// The tag conditions each DataSync action must carry (docs/access.md, "DataSync grants scoped
/// by Ferry's tags"): one of these `Null: {key: "false"}` keys, in every statement granting it.
fn datasync_tag_conditions() -> BTreeMap<&'static str, Vec<String>> {
    use ferry::domain::idempotency::IDEMPOTENCY_TAG as KEY;
    use ferry::domain::task_definition::NAME_TAG as NAME;
    let request = |tag: &str| format!("aws:RequestTag/{tag}");
    let resource = |tag: &str| format!("aws:ResourceTag/{tag}");
    BTreeMap::from([
        // Every execution Ferry starts carries its idempotency key...
        ("datasync:StartTaskExecution", vec![request(KEY)]),
        ("datasync:TagResource", vec![request(KEY), request(NAME)]),
        // ...and only such executions are read or cancelled.
        ("datasync:DescribeTaskExecution", vec![resource(KEY)]),
        ("datasync:CancelTaskExecution", vec![resource(KEY)]),
        // Tasks: created tagged with their definition's name; only those are kept.
        ("datasync:CreateTask", vec![request(NAME)]),
        ("datasync:DescribeTask", vec![resource(NAME)]),
        ("datasync:UpdateTask", vec![resource(NAME)]),
        ("datasync:UntagResource", vec![resource(NAME)]),
    ])
}

#[test]
fn datasync_grants_are_scoped_by_the_tags_the_code_sets() {
    use serde_norway::Value as Y;
    let template = template();
    let wanted = datasync_tag_conditions();
    let mut checked = BTreeSet::new();
    let mut problems = Vec::new();
    for (id, resource) in template["Resources"].as_mapping().expect("Resources") {
        let mut found = Vec::new();
        statements(&resource["Properties"]["Policies"], &mut found);
        for statement in found {
            let actions: Vec<&str> = match statement.get("Action") {
                Some(Y::String(a)) => vec![a.as_str()],
                Some(Y::Sequence(list)) => list.iter().filter_map(Y::as_str).collect(),
                _ => vec![],
            };
            let null = statement
                .get("Condition")
                .and_then(|c| c.get("Null"))
                .and_then(Y::as_mapping);
            let held = |key: &String| {
                null.and_then(|n| n.get(key.as_str())).and_then(Y::as_str) == Some("false")
            };
            for action in actions {
                let Some(keys) = wanted.get(action) else {
                    continue;
                };
                checked.insert(action);
                if !keys.iter().any(held) {
                    problems.push(format!(
                        "{id:?} {:?} grants {action} without Null {{{}: \"false\"}}",
                        statement.get("Sid"),
                        keys.join(" | ")
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The walk must see every action it checks (a walk that finds nothing proves nothing).
    assert_eq!(checked, wanted.keys().copied().collect());
}

#[test]
fn topics_queues_logs_and_the_lane_table_are_encrypted_and_executions_log_no_data() {
    use serde_norway::Value as Y;
    let template = template();
    let resources = template["Resources"]
        .as_mapping()
        .unwrap_or_else(|| panic!("no Resources"));
    let mut seen = BTreeMap::<&str, usize>::new();
    for (id, resource) in resources {
        let kind = resource["Type"].as_str().unwrap_or_default();
        let p = &resource["Properties"];
        match kind {
            "AWS::SNS::Topic" => assert!(
                p.get("KmsMasterKeyId").is_some(),
                "{id:?}: unencrypted topic"
            ),
            "AWS::SQS::Queue" => assert!(
                p.get("SqsManagedSseEnabled") == Some(&Y::Bool(true))
                    || p.get("KmsMasterKeyId").is_some(),
                "{id:?}: unencrypted queue"
            ),
            "AWS::Logs::LogGroup" => {
                assert!(p.get("KmsKeyId").is_some(), "{id:?}: unencrypted log group")
            }
            "AWS::SQS::QueuePolicy" => {
                let text = format!("{:?}", p["PolicyDocument"]);
                assert!(
                    text.contains("aws:SecureTransport") && text.contains("Deny"),
                    "{id:?}: the queue accepts plain HTTP"
                );
            }
            "AWS::DynamoDB::Table" => {
                assert_eq!(
                    p["SSESpecification"]["SSEEnabled"],
                    Y::Bool(true),
                    "{id:?}: not encrypted with a KMS key"
                );
                assert!(
                    p["SSESpecification"].get("KMSMasterKeyId").is_some(),
                    "{id:?}: not the stack's key"
                );
                assert_eq!(
                    p["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"],
                    Y::Bool(true),
                    "{id:?}: no point-in-time recovery"
                );
            }
            "AWS::Serverless::StateMachine" => {
                assert_eq!(
                    p["Logging"]["IncludeExecutionData"],
                    Y::Bool(false),
                    "{id:?}: execution data (job specs, paths) would be logged"
                );
            }
            _ => continue,
        }
        *seen.entry(kind).or_default() += 1;
    }
    // The test looked at something of each kind.
    for kind in [
        "AWS::SNS::Topic",
        "AWS::SQS::Queue",
        "AWS::Logs::LogGroup",
        "AWS::SQS::QueuePolicy",
        "AWS::Serverless::StateMachine",
        "AWS::DynamoDB::Table",
    ] {
        assert!(
            seen.get(kind).is_some_and(|n| *n > 0),
            "no {kind} in template.yaml"
        );
    }
}

/// Issue 25: a runner replaced on its status change event must not still be acting when its
/// replacement starts. Step Functions does not stop a Lambda invocation in flight when it stops
/// an execution, so the replacement waits [`runner::SETTLE_SECONDS`], which must outlast every
/// runner step that acts on a task or the lane; and the rule must send exactly the stops of the
/// runner state machine to `submit`.
#[test]
fn a_replacement_runner_waits_out_every_step_the_stopped_one_had_in_flight() {
    use ferry::lanes::runner;
    let template = template();
    let resources = &template["Resources"];
    let default = template["Globals"]["Function"]["Timeout"]
        .as_u64()
        .expect("a global Timeout");
    for function in [
        "StartTaskFunction",
        "TaskStatusFunction",
        "CancelTaskFunction",
        "LaneFunction",
    ] {
        let timeout = resources[function]["Properties"]["Timeout"]
            .as_u64()
            .unwrap_or(default);
        assert!(
            timeout < u64::from(runner::SETTLE_SECONDS),
            "{function}: Timeout {timeout} s is not shorter than the replacement's settle ({} s)",
            runner::SETTLE_SECONDS
        );
    }
    let rule = &resources["RunnerStoppedRule"]["Properties"];
    let pattern = &rule["EventPattern"];
    assert_eq!(pattern["source"][0].as_str(), Some("aws.states"));
    assert_eq!(
        pattern["detail-type"][0].as_str(),
        Some(ferry::handlers::submit::STATUS_CHANGE)
    );
    let statuses: Vec<&str> = pattern["detail"]["status"]
        .as_sequence()
        .expect("statuses")
        .iter()
        .filter_map(|s| s.as_str())
        .collect();
    assert_eq!(statuses, ["ABORTED", "FAILED", "TIMED_OUT"]);
    let target = format!("{:?}", rule["Targets"][0]["Arn"]);
    assert!(target.contains("SubmitFunction"), "{target}");
    let permission = format!("{:?}", resources["RunnerStoppedPermission"]["Properties"]);
    assert!(
        permission.contains("SubmitFunction") && permission.contains("events.amazonaws.com"),
        "{permission}"
    );
}
