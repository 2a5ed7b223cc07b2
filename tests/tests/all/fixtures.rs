//! Every file in `events/` through the real handler of its function (with in-memory ports).
//!
//! `events/<function>/<case>.json` is the single fixture source: the same files serve
//! `sam local invoke -e` and `cargo lambda invoke --data-file`. Files named `invalid-*` must be
//! rejected with the `error_type` listed in `INVALID` below, naming the field listed there.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ferry::FerryError;
use ferry::config::{Laned, NotifyConfig, SubmitConfig, TaskConfig};
use ferry::domain::access::Policy;
use ferry::domain::idempotency::IdempotencyKey;
use ferry::domain::job::{JobKind, JobSpec};
use ferry::domain::status::{Counts, Phase, TaskHandle, TaskStatus, Timestamp};
use ferry::fakes::{FakeFailure, FakeLanes, FakeNotify, FakeTask, FakeTasks, FakeTrigger};
use ferry::handlers::cancel_task::{self, CancelTaskOutput};
use ferry::handlers::start_task::{self, StartTaskOutput};
use ferry::handlers::{datasync_event, lane, notify, s3_trigger, submit, task_status};
use ferry::ids::{DataSyncExecutionArn, StateMachineArn, TopicArn};
use ferry::lanes::record::{JobEnd, JobState, LeaseRequest, RunId};
use ferry::lanes::{JobId, JobSource, LaneId};
use ferry::ports::{CancelOutcome, LaneLease, LaneQueue, LaneRuns, LaneView, WakeSlot, WakeSlots};
use ferry::runtime::now_millis;
use ferry::trigger::config::TriggerConfig;
use ferry_tests::{STATE_MACHINE, lane_config, laned, submitted_job};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde_json::{Value, json};

/// `(function, invalid fixture, error_type, text its message must contain)`.
const INVALID: &[(&str, &str, &str, &str)] = &[
    ("start-task", "invalid-kind", "InvalidJob", "job.kind"),
    (
        "start-task",
        "invalid-absolute-export-path",
        "InvalidJob",
        "job.paths[0]",
    ),
    ("start-task", "invalid-101-paths", "InvalidJob", "job.paths"),
    (
        "start-task",
        "invalid-parent-segment",
        "InvalidJob",
        "job.paths[0]",
    ),
    (
        "start-task",
        "invalid-missing-file-system-id",
        "InvalidJob",
        "job.file_system_id",
    ),
    (
        "start-task",
        "invalid-report-path",
        "InvalidJob",
        "job.report.path",
    ),
    (
        "start-task",
        "invalid-bytes-per-second",
        "InvalidJob",
        "job.options.bytes_per_second",
    ),
    (
        "start-task",
        "invalid-task-block",
        "InvalidJob",
        "job.task.source_location_arn",
    ),
    (
        "task-status",
        "invalid-service-mismatch",
        "InvalidJob",
        "task.service",
    ),
    (
        "cancel-task",
        "invalid-task-id",
        "InvalidJob",
        "task.task_id",
    ),
    (
        "s3-trigger",
        "invalid-unknown-shape",
        "InvalidEvent",
        "not an S3 notification",
    ),
    (
        "notify",
        "invalid-still-running",
        "InvalidEvent",
        "status.phase",
    ),
    ("lane", "invalid-unknown-action", "InvalidJob", "action"),
    (
        "datasync-event",
        "invalid-not-datasync",
        "InvalidEvent",
        "source/detail-type",
    ),
    ("submit", "invalid-id-and-occurrence", "InvalidJob", "id"),
];

const FUNCTIONS: [&str; 8] = [
    "datasync-event",
    "start-task",
    "task-status",
    "cancel-task",
    "s3-trigger",
    "notify",
    "lane",
    "submit",
];

/// The task functions' configuration: defaults and the lane table.
fn config() -> Laned<TaskConfig> {
    laned(TaskConfig::default())
}

/// The runner the lane fixtures name, holding the lease of the lane they name, with one job
/// pending there (the one `events/submit/cancel.json` cancels).
const FIXTURE_OWNER: &str = "lane-fixture-runner";
const FIXTURE_JOB: &str = "fixture-pending-job";

async fn lane_with_a_pending_job(payload: &Value) -> FakeLanes {
    let lanes = FakeLanes::new();
    // A cancel names no lane: the job's own (its file system's).
    let lane = payload
        .get("lane")
        .cloned()
        .unwrap_or("fsx:fs-0123456789abcdef0".into());
    let Ok(lane) = serde_json::from_value::<LaneId>(lane) else {
        return lanes;
    };
    let now = now_millis();
    let request = LeaseRequest {
        lane: lane.clone(),
        owner: FIXTURE_OWNER.into(),
        now,
        until: now + 900_000,
    };
    lanes.acquire(&request).await.unwrap();
    let spec: JobSpec =
        serde_json::from_value(load("start-task", "fsx-import")["job"].clone()).unwrap();
    // `events/submit/cancel.json` names the job it cancels.
    let mut job = submitted_job(spec, |valid| {
        match payload["cancel"]["job"].as_str().map(JobId::parse) {
            Some(Ok(id)) => id,
            _ => JobId::derive(&JobSource::Caller(FIXTURE_JOB.into()), valid),
        }
    });
    job.lane = lane;
    lanes.enqueue(&job).await.unwrap();
    lanes
}

/// For a fixture naming a runner's run (`events/start-task/from-runner.json`): the lane it
/// names, its runner holding the lease, and that run in flight with one job.
async fn lane_with_a_run(payload: &Value) -> FakeLanes {
    let Some(runner) = payload.get("runner") else {
        return FakeLanes::new();
    };
    let lanes = lane_with_a_pending_job(runner).await;
    let lane: LaneId = serde_json::from_value(runner["lane"].clone()).unwrap();
    let pending = lanes.pending(&lane, 1, usize::MAX).await.unwrap();
    let now = now_millis();
    let spec = pending[0].spec.clone();
    let run = ferry_tests::claimed_run(lane, runner["run"].as_str().unwrap(), spec, 1, now);
    lanes.claim(FIXTURE_OWNER, &run).await.unwrap();
    lanes.take_jobs(&run, &pending).await.unwrap();
    lanes
}

/// For a fixture naming jobs that ended pending (`events/notify/expired.json`): each of them
/// queued, then timed out.
async fn lane_with_an_expired_job(payload: &Value) -> FakeLanes {
    let lanes = FakeLanes::new();
    let Some(expired) = payload.get("expired") else {
        return lanes;
    };
    for id in expired["jobs"].as_array().into_iter().flatten() {
        let cancel = json!({"cancel": {"job": id}, "lane": expired["lane"]});
        let one = lane_with_a_pending_job(&cancel).await;
        let job = one.jobs().pop().unwrap().0;
        lanes.enqueue(&job).await.unwrap();
        let end = JobEnd {
            state: JobState::TimedOut,
            at: job.deadline,
            cancel: None,
        };
        lanes.end_pending(&[job], end).await.unwrap();
    }
    lanes
}

/// The routes every s3-trigger fixture is run with (`config/routes.example.json`, the example
/// `docs/routes.md` links to).
fn trigger_config() -> TriggerConfig {
    let text = std::fs::read_to_string(events_dir().join("../config/routes.example.json")).unwrap();
    ferry_tests::trigger_config(&text)
}

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../events")
}

struct Fixture {
    function: String,
    case: String,
    payload: Value,
}

fn fixtures() -> Vec<Fixture> {
    let mut all = Vec::new();
    for function in std::fs::read_dir(events_dir()).expect("events/ exists") {
        let function = function.unwrap().path();
        if !function.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(&function).unwrap() {
            let path = file.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let payload =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            all.push(Fixture {
                function: function.file_name().unwrap().to_string_lossy().into_owned(),
                case: path.file_stem().unwrap().to_string_lossy().into_owned(),
                payload,
            });
        }
    }
    all.sort_by(|a, b| (&a.function, &a.case).cmp(&(&b.function, &b.case)));
    all
}

fn load(function: &str, case: &str) -> Value {
    let path = events_dir().join(function).join(format!("{case}.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// A fake holding the task a status/cancel fixture refers to, in `lifecycle`. An invalid
/// fixture's handle may not parse: the fake then holds nothing (the handler refuses the input
/// before it asks).
fn fake_with_task(
    payload: &Value,
    lifecycle: &str,
) -> ((FakeTasks, FakeLanes), Option<TaskHandle>) {
    let fake = FakeTasks::new();
    let Ok(handle) = serde_json::from_value::<TaskHandle>(payload["task"].clone()) else {
        return ((fake, FakeLanes::new()), None);
    };
    let job: JobSpec = serde_json::from_value(payload["job"].clone()).expect("fixture job");
    fake.insert(FakeTask {
        handle: handle.clone(),
        key: IdempotencyKey::derive(None, &job),
        job,
        lifecycle: lifecycle.into(),
        counts: Counts::default(),
        created_at: Timestamp::now(),
        failure: None,
        cancel_requests: 0,
    });
    ((fake, FakeLanes::new()), Some(handle))
}

async fn run(function: &str, payload: Value) -> Result<Value, FerryError> {
    let config = config();
    match function {
        "start-task" => {
            let ports = (FakeTasks::new(), lane_with_a_run(&payload).await);
            start_task::handle(&ports, &config, event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap())
        }
        "task-status" => {
            let (ports, _) = fake_with_task(&payload, running(&payload));
            task_status::handle(&ports, &config, event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap())
        }
        "cancel-task" => {
            let (ports, _) = fake_with_task(&payload, running(&payload));
            cancel_task::handle(&ports, &config, event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap())
        }
        "s3-trigger" => {
            let ports = (FakeTrigger::new(), FakeLanes::new());
            s3_trigger::handle(&ports, &trigger_config(), event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap())
        }
        "notify" => {
            let ports = (FakeNotify::new(), lane_with_an_expired_job(&payload).await);
            let config = laned(NotifyConfig {
                topic_arn: TopicArn::parse("arn:aws:sns:us-east-1:111122223333:ferry-reports").ok(),
                region: Some("us-east-1".into()),
                ..NotifyConfig::default()
            });
            notify::handle(&ports, &config, event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap())
        }
        "lane" => {
            let ports = (lane_with_a_pending_job(&payload).await, FakeTrigger::new());
            lane::handle(&ports, &config, event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap())
        }
        "datasync-event" => {
            let ports = a_runner_waiting_for(EXECUTION).await;
            datasync_event::handle(&ports, &lane_config(), event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap())
        }
        "submit" => {
            let ports = (FakeTrigger::new(), lane_with_a_pending_job(&payload).await);
            submit::handle(&ports, &submit_config(), event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap())
        }
        other => panic!("events/{other}/ has no handler: add it to this test"),
    }
}

/// The execution the DataSync fixtures name (`events/datasync-event/`, `events/lane/await.json`).
const EXECUTION: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718/execution/exec-0123456789abcdef0";

/// A runner waiting for `execution`'s end (its token parked), which is transferring.
async fn a_runner_waiting_for(execution: &str) -> (FakeLanes, FakeTrigger, FakeTasks) {
    let execution = DataSyncExecutionArn::parse(execution).unwrap();
    let handle = TaskHandle::Datasync {
        task_execution_arn: execution.clone(),
    };
    let job: JobSpec =
        serde_json::from_value(json!({"name": "results-to-archive", "kind": "datasync",
        "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718"}))
        .unwrap();
    let tasks = FakeTasks::new();
    tasks.insert(FakeTask {
        handle,
        key: IdempotencyKey::derive(None, &job),
        job,
        lifecycle: "TRANSFERRING".into(),
        counts: Counts::default(),
        created_at: Timestamp::now(),
        failure: None,
        cancel_requests: 0,
    });
    let lanes = FakeLanes::new();
    let slot = WakeSlot {
        execution,
        lane: LaneId::parse("datasync-task:results-to-archive").unwrap(),
        run: RunId("run-fixture".into()),
        owner: FIXTURE_OWNER.into(),
        token: Some("token-fixture".into()),
        heartbeat_seconds: 900,
    };
    lanes.park(&slot, now_millis()).await.unwrap();
    (lanes, FakeTrigger::new(), tasks)
}

fn running(payload: &Value) -> &'static str {
    if payload["task"]["service"] == "fsx" {
        "EXECUTING"
    } else {
        "TRANSFERRING"
    }
}

fn submit_config() -> SubmitConfig {
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/access.example.json"),
    )
    .unwrap();
    SubmitConfig {
        tasks: TaskConfig::default(),
        lanes: lane_config(),
        runner: StateMachineArn::parse(STATE_MACHINE).unwrap(),
        access: Some(Policy::parse(&policy).unwrap_or_else(|e| panic!("{e}"))),
    }
}

#[tokio::test]
async fn every_fixture_runs_through_its_real_handler() {
    let all = fixtures();
    let functions: BTreeSet<&str> = all.iter().map(|f| f.function.as_str()).collect();
    assert_eq!(
        functions,
        FUNCTIONS.into_iter().collect(),
        "a function without fixtures, or fixtures without a function"
    );
    for fixture in &all {
        let result = run(&fixture.function, fixture.payload.clone()).await;
        let name = format!("events/{}/{}.json", fixture.function, fixture.case);
        match INVALID
            .iter()
            .find(|(f, c, _, _)| *f == fixture.function && *c == fixture.case)
        {
            Some((_, _, error_type, text)) => {
                let error = result.expect_err(&name);
                if let FerryError::InvalidJob(invalid) = &error {
                    assert!(
                        invalid.mentions(text),
                        "{name}: error does not name {text}: {invalid}"
                    );
                }
                let diagnostic: Diagnostic = error.into();
                assert_eq!(diagnostic.error_type, *error_type, "{name}");
                assert!(
                    diagnostic.error_message.contains(text),
                    "{name}: {}",
                    diagnostic.error_message
                );
            }
            None => {
                assert!(
                    !fixture.case.starts_with("invalid-"),
                    "{name} is not listed in INVALID"
                );
                let output = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                let expected = match fixture.function.as_str() {
                    "s3-trigger" if fixture.payload["Records"][0]["eventSource"] == "aws:sqs" => {
                        "batchItemFailures"
                    }
                    "s3-trigger" => "enqueued",
                    "notify" => "message_ids",
                    "lane" => match fixture.payload["action"].as_str() {
                        Some("take") => "run",
                        Some("release") => "again",
                        Some("await") => "parked",
                        _ => "generation",
                    },
                    "submit" if fixture.payload.get("rawPath").is_some() => {
                        // A function URL request: answered 200, what the job's submission says.
                        assert_eq!(output["statusCode"], 200, "{name}: {output}");
                        assert!(
                            output["body"]
                                .as_str()
                                .unwrap_or_default()
                                .contains("job_id"),
                            "{name}: {output}"
                        );
                        "statusCode"
                    }
                    "submit" if fixture.payload.get("cancel").is_some() => "cancel",
                    "datasync-event" if fixture.payload.get("check").is_some() => "kept_waiting",
                    "datasync-event" => "woke",
                    "submit" if fixture.payload.get("sweep").is_some() => "kicked",
                    "submit" if fixture.payload.get("detail-type").is_some() => "replaced",
                    "submit" => "job_id",
                    _ => "task",
                };
                assert!(
                    output.get(expected).is_some(),
                    "{name}: output has no {expected}: {output}"
                );
            }
        }
    }
    for (function, case, _, _) in INVALID {
        assert!(
            all.iter()
                .any(|f| f.function == *function && f.case == *case),
            "missing events/{function}/{case}.json"
        );
    }
}

#[tokio::test]
async fn there_is_a_start_fixture_for_every_job_kind() {
    let kinds: BTreeSet<String> = fixtures()
        .into_iter()
        .filter(|f| f.function == "start-task" && !f.case.starts_with("invalid-"))
        .filter_map(|f| f.payload["job"]["kind"].as_str().map(str::to_owned))
        .collect();
    for kind in [
        JobKind::FsxExport,
        JobKind::FsxImport,
        JobKind::FsxRelease,
        JobKind::FsxAutoRelease,
        JobKind::Datasync,
    ] {
        assert!(
            kinds.contains(kind.as_str()),
            "no events/start-task fixture for {}",
            kind.as_str()
        );
    }
}

#[tokio::test]
async fn start_is_idempotent_per_execution() {
    let ports = (FakeTasks::new(), FakeLanes::new());
    let fake = &ports.0;
    let config = config();
    let payload = load("start-task", "fsx-export");
    let first: StartTaskOutput = start_task::handle(&ports, &config, event(payload.clone()))
        .await
        .unwrap();
    let second = start_task::handle(&ports, &config, event(payload.clone()))
        .await
        .unwrap();
    assert_eq!(first.task, second.task);
    assert_eq!(first.idempotency_key, second.idempotency_key);
    assert_eq!(
        fake.tasks().len(),
        1,
        "a retried start created a second task"
    );
    assert_eq!(fake.start_calls(), 2);
    assert_eq!(first.next_poll_seconds, 15);

    let mut other_execution = payload;
    other_execution["execution"] = "nightly-export-2026-11-22T02-00-00Z".into();
    let third = start_task::handle(&ports, &config, event(other_execution))
        .await
        .unwrap();
    assert_ne!(third.task, first.task);
    assert_eq!(fake.tasks().len(), 2);
}

#[tokio::test]
async fn start_task_reaches_the_port_with_the_fixture_job() {
    let ports = (FakeTasks::new(), FakeLanes::new());
    let fake = &ports.0;
    let output = start_task::handle(&ports, &config(), event(load("start-task", "datasync")))
        .await
        .unwrap();
    assert!(matches!(output.task, Some(TaskHandle::Datasync { .. })));
    let tasks = fake.tasks();
    assert_eq!(
        tasks[0].job.includes,
        ["/results/2026-11-21", "/results/summary*.csv"]
    );
    assert_eq!(tasks[0].key.as_str(), output.idempotency_key);
}

#[tokio::test]
async fn start_failures_keep_their_error_type() {
    for (failure, expected) in [
        (FakeFailure::Throttled, "Throttled"),
        (FakeFailure::NotFound, "NotFound"),
        (FakeFailure::LimitExceeded, "LimitExceeded"),
        (FakeFailure::Internal, "AwsService"),
    ] {
        let ports = (FakeTasks::new(), FakeLanes::new());
        let fake = &ports.0;
        fake.fail_next_start(failure);
        let error = start_task::handle(&ports, &config(), event(load("start-task", "fsx-import")))
            .await
            .unwrap_err();
        let diagnostic: Diagnostic = error.into();
        assert_eq!(diagnostic.error_type, expected);
        assert!(fake.tasks().is_empty());
    }
}

#[tokio::test]
async fn a_non_object_event_is_a_clear_invalid_job() {
    let error = start_task::handle(
        &(FakeTasks::new(), FakeLanes::new()),
        &config(),
        event(Value::String("hello".into())),
    )
    .await
    .unwrap_err();
    let diagnostic: Diagnostic = error.into();
    assert_eq!(diagnostic.error_type, "InvalidJob");
    assert!(
        diagnostic.error_message.contains("input"),
        "{}",
        diagnostic.error_message
    );
}

#[tokio::test]
async fn status_follows_the_lifecycle_to_the_end() {
    let payload = load("task-status", "fsx");
    let (ports, handle) = fake_with_task(&payload, "PENDING");
    let fake = &ports.0;
    let handle = handle.expect("fixture handle");
    async fn status(ports: &(FakeTasks, FakeLanes), payload: &Value) -> TaskStatus {
        task_status::handle(ports, &config(), event(payload.clone()))
            .await
            .unwrap()
            .status
    }
    let pending = status(&ports, &payload).await;
    assert_eq!(
        (pending.phase, pending.done, pending.lifecycle.as_str()),
        (Phase::Pending, false, "PENDING")
    );
    assert_eq!(pending.next_poll_seconds, 15);

    let counts = Counts {
        total: Some(10),
        succeeded: Some(4),
        ..Counts::default()
    };
    fake.set(&handle, "EXECUTING", counts.clone(), None);
    let running = status(&ports, &payload).await;
    assert_eq!((running.phase, running.done), (Phase::Running, false));
    assert_eq!(running.counts, counts);

    fake.set(
        &handle,
        "SUCCEEDED",
        Counts {
            total: Some(10),
            succeeded: Some(10),
            ..Counts::default()
        },
        None,
    );
    let done = status(&ports, &payload).await;
    assert_eq!(
        (done.phase, done.done, done.timed_out),
        (Phase::Succeeded, true, false)
    );
}

#[tokio::test]
async fn cancel_is_idempotent_and_reports_the_state() {
    let payload = load("cancel-task", "fsx");
    let (ports, handle) = fake_with_task(&payload, "EXECUTING");
    let fake = &ports.0;
    let handle = handle.expect("fixture handle");
    let config = config();
    let first: CancelTaskOutput = cancel_task::handle(&ports, &config, event(payload.clone()))
        .await
        .unwrap();
    assert_eq!(first.cancel, CancelOutcome::Requested);
    assert_eq!(
        (first.status.lifecycle.as_str(), first.status.done),
        ("CANCELING", false)
    );
    fake.set(&handle, "CANCELED", Counts::default(), None);
    let again = cancel_task::handle(&ports, &config, event(payload))
        .await
        .unwrap();
    assert_eq!(again.cancel, CancelOutcome::AlreadyEnded);
    assert_eq!(
        (again.status.phase, again.status.done),
        (Phase::Canceled, true)
    );
    let json = serde_json::to_value(&again).unwrap();
    assert_eq!(json["cancel"], "already_ended");
    assert_eq!(json["phase"], "canceled");
}

#[tokio::test]
async fn a_cancelled_datasync_execution_that_ends_in_error_is_canceled() {
    let mut payload = load("task-status", "datasync");
    let (ports, handle) = fake_with_task(&payload, "ERROR");
    let handle = handle.expect("fixture handle");
    let failed = task_status::handle(&ports, &config(), event(payload.clone()))
        .await
        .unwrap()
        .status;
    assert_eq!(failed.phase, Phase::Failed);
    payload["cancel_requested"] = true.into();
    let canceled = task_status::handle(&ports, &config(), event(payload))
        .await
        .unwrap()
        .status;
    assert_eq!(canceled.phase, Phase::Canceled);
    assert_eq!(canceled.task, handle);
}

#[tokio::test]
async fn status_of_an_unknown_task_is_not_found() {
    let payload = load("task-status", "fsx");
    let error = task_status::handle(
        &(FakeTasks::new(), FakeLanes::new()),
        &config(),
        event(payload),
    )
    .await
    .unwrap_err();
    assert_eq!(error.error_type(), "NotFound");
}
