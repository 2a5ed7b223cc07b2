//! The lane-aware handlers through their real code, over the in-memory lane table and services:
//! what the runner's calls do to the lease, the lane and the answers the state machine reads.

use ferry::config::{NotifyConfig, SubmitConfig, TaskConfig};
use ferry::domain::idempotency::IdempotencyKey;
use ferry::domain::job::JobSpec;
use ferry::domain::status::{Counts, Failure, Phase, TaskHandle, Timestamp};
use ferry::fakes::{FakeFailure, FakeLanes, FakeNotify, FakeTask, FakeTasks, FakeTrigger};
use ferry::handlers::{lane, notify, start_task, submit, task_status};
use ferry::ids::{StateMachineArn, TopicArn};
use ferry::lanes::record::{JobState, LeaseRequest};
use ferry::lanes::{JobId, JobSource, LaneId};
use ferry::notify::report::Outcome;
use ferry::ports::{LaneLease, LaneQueue, LaneView, ReadRuns};
use ferry::runtime::now_millis;
use ferry_tests::{STATE_MACHINE, lane_config, laned, submitted_job};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const FS: &str = "fs-0123456789abcdef0";
const OWNER: &str = "lane-test-runner";

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

/// An invocation with its own request id (what names runners and runs).
fn invocation(payload: Value, request_id: &str) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = request_id.into();
    LambdaEvent::new(payload, context)
}

fn lane_id() -> LaneId {
    LaneId::parse(&format!("fsx:{FS}")).unwrap()
}

fn import(name: &str) -> JobSpec {
    serde_json::from_value(
        json!({"name": name, "kind": "fsx_import", "file_system_id": FS,
        "paths": [format!("s3://ferry-data/incoming/{name}/")]}),
    )
    .unwrap()
}

/// `spec` queued now as a person's job `id`.
async fn queue(lanes: &FakeLanes, spec: JobSpec, id: &str) -> JobId {
    let job = submitted_job(spec, |valid| {
        JobId::derive(&JobSource::Caller(id.into()), valid)
    });
    lanes.enqueue(&job).await.unwrap();
    job.id
}

/// A runner holding the lane, with one job taken into a run: (lanes, run id, job id).
async fn a_run_in_flight() -> (FakeLanes, String, JobId) {
    a_run_in_flight_of(import("first"), lane_id()).await
}

/// A runner holding `lane`, with one job of `spec` taken into a run.
async fn a_run_in_flight_of(spec: JobSpec, lane: LaneId) -> (FakeLanes, String, JobId) {
    let lanes = FakeLanes::new();
    let job = queue(&lanes, spec, "first").await;
    let now = now_millis();
    let request = LeaseRequest {
        lane: lane.clone(),
        owner: OWNER.into(),
        now,
        until: now + 900_000,
    };
    lanes.acquire(&request).await.unwrap();
    let taken = lane::handle(
        &(lanes.clone(), FakeTrigger::new()),
        &laned(TaskConfig::default()),
        event(json!({"action": "take", "lane": lane, "owner": OWNER})),
    )
    .await
    .unwrap();
    let taken = serde_json::to_value(taken).unwrap();
    let run = taken["run"]["id"].as_str().expect("a run").to_owned();
    (lanes, run, job)
}

fn submit_config() -> SubmitConfig {
    SubmitConfig {
        tasks: TaskConfig::default(),
        lanes: lane_config(),
        runner: StateMachineArn::parse(STATE_MACHINE).unwrap(),
        access: None,
    }
}

/// Cancels `job` the way people do (submit's `{"cancel": ...}`): the lanes back, the runner
/// executions it started, and its answer.
async fn cancel(
    lanes: FakeLanes,
    job: &JobId,
    by: &str,
    reason: &str,
) -> (FakeLanes, FakeTrigger, Value) {
    let ports = (FakeTrigger::new(), lanes);
    let input = json!({"cancel": {"job": job, "by": by, "reason": reason}});
    let out = submit::handle(&ports, &submit_config(), event(input))
        .await
        .unwrap();
    let (runners, lanes) = ports;
    (lanes, runners, serde_json::to_value(out).unwrap())
}

fn runner(run: &str) -> Value {
    json!({"lane": lane_id(), "owner": OWNER, "run": run})
}

const SYNC_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";

fn sync_job() -> JobSpec {
    serde_json::from_value(json!({"name": "sync", "kind": "datasync", "task_arn": SYNC_TASK}))
        .unwrap()
}

fn sync_lane() -> LaneId {
    LaneId::parse(&format!("datasync:{SYNC_TASK}")).unwrap()
}

/// A runner holding the DataSync task's lane, with one job taken into a run.
async fn a_datasync_run_in_flight() -> (FakeLanes, Value) {
    let (lanes, run, _) = a_run_in_flight_of(sync_job(), sync_lane()).await;
    (
        lanes,
        json!({"lane": sync_lane(), "owner": OWNER, "run": run}),
    )
}

fn datasync_execution(lifecycle: &str) -> FakeTask {
    let arn = format!("{SYNC_TASK}/execution/exec-0123456789abcdef0");
    let handle: TaskHandle =
        serde_json::from_value(json!({"service": "datasync", "task_execution_arn": arn})).unwrap();
    FakeTask {
        handle,
        ..fsx_task("task-0000000000000000c", lifecycle, 60)
    }
}

fn fsx_task(id: &str, lifecycle: &str, age_seconds: i64) -> FakeTask {
    let handle: TaskHandle =
        serde_json::from_value(json!({"service": "fsx", "file_system_id": FS, "task_id": id}))
            .unwrap();
    let job = import("held");
    FakeTask {
        handle,
        key: IdempotencyKey::derive(Some(id), &job),
        job,
        lifecycle: lifecycle.into(),
        counts: Counts::default(),
        created_at: Timestamp::from_secs(Timestamp::now().0.secs() - age_seconds),
        failure: None,
        cancel_requests: 0,
    }
}

#[tokio::test]
async fn a_file_system_held_by_another_task_is_answered_busy_not_as_an_error() {
    let tasks = FakeTasks::new();
    tasks.insert(fsx_task("task-0000000000000000a", "EXECUTING", 600));
    tasks.fail_next_start(FakeFailure::Conflict);
    let ports = (tasks, FakeLanes::new());
    let config = laned(TaskConfig::default());
    let input = json!({"job": import("next"), "execution": "run-1"});
    let answer = start_task::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    assert!(answer.busy && answer.task.is_none() && !answer.timed_out);
    assert_eq!(answer.held_by.len(), 1);
    assert_eq!(answer.held_by[0].id, "task-0000000000000000a");
    // A fifth of the holder's 10 minutes is 120 s: capped at FERRY_BUSY_POLL_MAX_SECONDS.
    assert_eq!(answer.next_poll_seconds, 60);

    // Past the run's deadline, still busy: the run ends without starting.
    ports.0.fail_next_start(FakeFailure::Conflict);
    let mut late = input;
    late["deadline"] = json!(now_millis() - 1);
    let answer = start_task::handle(&ports, &config, event(late))
        .await
        .unwrap();
    assert!(answer.busy && answer.timed_out);
    // Free again: it starts.
    let answer = start_task::handle(
        &ports,
        &config,
        event(json!({"job": import("next"), "execution": "run-1"})),
    )
    .await
    .unwrap();
    assert!(!answer.busy && answer.task.is_some());
}

#[tokio::test]
async fn a_status_check_renews_the_lease_caps_the_wait_while_jobs_wait_and_passes_a_cancel_on() {
    let (lanes, run, job) = a_run_in_flight().await;
    let tasks = FakeTasks::new();
    let handle = tasks.insert(fsx_task("task-0000000000000000b", "EXECUTING", 3_000));
    let ports = (tasks, lanes);
    let config = laned(TaskConfig::default());
    let before = ports.1.lease(&lane_id()).unwrap().until;
    let input = json!({"task": handle, "runner": runner(&run)});
    let status = task_status::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    assert!(
        ports.1.lease(&lane_id()).unwrap().until >= before,
        "renewed"
    );
    assert!(!status.waiting && !status.cancel_asked);
    // A fifth of 50 minutes is 600 s, the job's bound; a third of the 900 s lease is less.
    assert_eq!(status.status.next_poll_seconds, 300);

    queue(&ports.1, import("second"), "second").await;
    let status = task_status::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    assert!(status.waiting);
    assert_eq!(
        status.status.next_poll_seconds, 60,
        "FERRY_BUSY_POLL_MAX_SECONDS"
    );

    let (tasks, lanes) = ports;
    let (lanes, runners, cancelled) = cancel(lanes, &job, "alice", "wrong folder").await;
    assert_eq!(cancelled["cancel"], "run_cancel_requested");
    assert!(
        runners.executions().is_empty(),
        "the run's own runner reports it"
    );
    let ports = (tasks, lanes);
    let status = task_status::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    assert!(status.cancel_asked);

    // Another runner took the lane: this one's checks fail with LeaseLost.
    let mut other = input;
    other["runner"]["owner"] = json!("lane-someone-else");
    let error = task_status::handle(&ports, &config, event(other))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "LeaseLost");
}

#[tokio::test]
async fn a_task_seen_cancelling_without_ferry_asking_ends_canceled_not_failed() {
    let (lanes, runner) = a_datasync_run_in_flight().await;
    let tasks = FakeTasks::new();
    let handle = tasks.insert(datasync_execution("CANCELLING"));
    let ports = (tasks, lanes);
    let config = laned(TaskConfig::default());
    let input = json!({"task": handle, "runner": runner});
    let status = task_status::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    assert!(!status.status.done && !status.cancel_asked);
    let seen = ports.1.runs()[0].canceled_outside;
    assert!(seen.is_some(), "the first sighting is recorded");

    // DataSync's result of a cancelled run is not documented: whatever it says, the run
    // seen CANCELLING ends canceled, and the sighting is not rewritten.
    let failure = Failure {
        message: None,
        error_code: Some("InternalError".into()),
        error_detail: Some("unrelated".into()),
    };
    ports
        .0
        .set(&handle, "ERROR", Counts::default(), Some(failure));
    let status = task_status::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    assert_eq!(status.status.phase, Phase::Canceled);
    assert!(status.status.done);
    assert_eq!(ports.1.runs()[0].canceled_outside, seen);

    // Without the sighting (another run, never seen CANCELLING) the same ERROR is a failure.
    let (lanes, runner) = a_datasync_run_in_flight().await;
    let ports = (ports.0, lanes);
    let input = json!({"task": handle, "runner": runner});
    let status = task_status::handle(&ports, &config, event(input))
        .await
        .unwrap();
    assert_eq!(status.status.phase, Phase::Failed);
    assert_eq!(ports.1.runs()[0].canceled_outside, None);
}

#[tokio::test]
async fn a_cancel_ferry_asked_for_is_not_recorded_as_outside() {
    let (lanes, runner) = a_datasync_run_in_flight().await;
    let tasks = FakeTasks::new();
    let handle = tasks.insert(datasync_execution("CANCELLING"));
    let ports = (tasks, lanes);
    let config = laned(TaskConfig::default());
    let input = json!({"task": handle, "runner": runner, "cancel_requested": true});
    task_status::handle(&ports, &config, event(input))
        .await
        .unwrap();
    assert_eq!(ports.1.runs()[0].canceled_outside, None);
}

#[tokio::test]
async fn one_report_per_run_lists_its_jobs_and_says_who_cancelled_it() {
    let (lanes, run, job) = a_run_in_flight().await;
    let (lanes, _, _) = cancel(lanes, &job, "bob", "not needed").await;
    let ports = (FakeNotify::new(), lanes);
    let notify_config = laned(NotifyConfig {
        topic_arn: TopicArn::parse("arn:aws:sns:us-east-1:111122223333:ferry-reports").ok(),
        ..NotifyConfig::default()
    });
    let status = json!({"task": {"service": "fsx", "file_system_id": FS,
                                 "task_id": "task-0000000000000000c"},
                        "phase": "canceled", "lifecycle": "CANCELED", "done": true,
                        "timed_out": false, "age_seconds": 60, "next_poll_seconds": 15,
                        "counts": {}, "timings": {}});
    let input = json!({"execution": "lane-runner-1", "status": status, "runner": runner(&run)});
    let out = notify::handle(&ports, &notify_config, event(input))
        .await
        .unwrap();
    assert_eq!(out.message_ids.len(), 2);
    let published = ports.0.published();
    let report: Value = serde_json::from_str(&published[0].body).unwrap();
    assert_eq!(report["run"], run.as_str());
    assert_eq!(report["execution"], "lane-runner-1");
    assert_eq!(report["jobs"]["total"], 1);
    assert_eq!(report["jobs"]["listed"][0]["id"], json!(job));
    assert_eq!(
        report["reason"],
        "cancelled at the request of bob (unverified): not needed"
    );
    assert!(published[1].body.contains("Jobs:         1 (first)\n"));

    // The lane table keeps it for `ferry history` and `ferry watch`: the text message whole
    // (it is short), the outcome, the run's size.
    let now = now_millis();
    let [listed] = ports
        .1
        .history(Some(&lane_id()), (now - 60_000, now + 60_000), 50)
        .await
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(listed.run.0, run);
    assert_eq!((listed.outcome, listed.jobs), (Outcome::Canceled, 1));
    assert_eq!(listed.subject, published[1].subject);
    let kept = ports
        .1
        .report(&lane_id(), &listed.run)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.text, published[1].body);
    assert_eq!(kept.outcome, listed.outcome);
}

#[tokio::test]
async fn jobs_that_ended_pending_get_a_timed_out_report_each() {
    // Two exports queued with a deadline already past: the runner's take ends them and names
    // them; notify reads each from the lane table and reports it.
    let lanes = FakeLanes::new();
    let mut ids = Vec::new();
    for name in ["a", "b"] {
        let spec: JobSpec = serde_json::from_value(
            json!({"name": format!("waited-{name}"), "kind": "fsx_export", "file_system_id": FS}),
        )
        .unwrap();
        let mut job = submitted_job(spec, |valid| {
            JobId::derive(&JobSource::Caller(name.into()), valid)
        });
        job.deadline = job.enqueued_at.saturating_sub(1);
        job.enqueued_at -= 3_600_000 - u64::from(name == "b");
        lanes.enqueue(&job).await.unwrap();
        ids.push(job.id);
    }
    let now = now_millis();
    let request = LeaseRequest {
        lane: lane_id(),
        owner: OWNER.into(),
        now,
        until: now + 900_000,
    };
    lanes.acquire(&request).await.unwrap();
    let taken = lane::handle(
        &(lanes.clone(), FakeTrigger::new()),
        &laned(TaskConfig::default()),
        event(json!({"action": "take", "lane": lane_id(), "owner": OWNER})),
    )
    .await
    .unwrap();
    let taken = serde_json::to_value(taken).unwrap();
    assert_eq!(taken["expired"], json!(ids), "ids, never specs");
    assert_eq!(taken["run"], Value::Null);
    let ports = (FakeNotify::new(), lanes);
    let config = laned(NotifyConfig {
        topic_arn: TopicArn::parse("arn:aws:sns:us-east-1:111122223333:ferry-reports").ok(),
        ..NotifyConfig::default()
    });
    let out = notify::handle(
        &ports,
        &config,
        event(json!({"expired": {"lane": lane_id(), "jobs": taken["expired"]}})),
    )
    .await
    .unwrap();
    assert_eq!(out.message_ids.len(), 4, "two messages per job");
    let reports: Vec<Value> = ports
        .0
        .published()
        .iter()
        .filter(|m| m.attributes["format"] == "json")
        .map(|m| serde_json::from_str(&m.body).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    for report in &reports {
        assert_eq!(report["outcome"], "timed_out");
        assert!(report["reason"].as_str().unwrap().contains("never ran"));
        assert!(report.get("task_id").is_none() && report.get("run").is_none());
        assert_eq!(report["jobs"]["total"], 1);
    }
    assert_eq!(reports[1]["job"], "waited-b");
}

#[tokio::test]
async fn a_pending_job_cancelled_never_runs_and_its_report_goes_out_at_once_and_once() {
    let lanes = FakeLanes::new();
    let job = queue(&lanes, import("waiting"), "waiting").await;
    let (lanes, runners, answer) = cancel(
        lanes,
        &job,
        "arn:aws:iam::111122223333:user/alice",
        "wrong folder",
    )
    .await;
    assert_eq!(answer, json!({"cancel": "while_pending"}));
    assert!(
        lanes
            .pending(&lane_id(), 10, usize::MAX)
            .await
            .unwrap()
            .is_empty(),
        "out of the queue"
    );
    assert_eq!(
        lanes.job(&job).await.unwrap().unwrap().state,
        JobState::Canceled
    );
    // One runner execution, named after the job, whose input is what notify reports.
    let [(name, input)] = runners.executions().try_into().unwrap();
    let enqueued_at = lanes.job(&job).await.unwrap().unwrap().job.enqueued_at;
    assert_eq!(name, ferry::lanes::runner::canceled_name(&job, enqueued_at));
    assert!(name.len() <= 80);
    assert_eq!(
        input,
        json!({"canceled": {"lane": lane_id(), "jobs": [job]}}),
        "by reference: no job spec in the execution's input"
    );

    // notify, as the state machine's NotifyCanceled calls it, reads the job from the table.
    let ports = (FakeNotify::new(), lanes);
    let config = laned(NotifyConfig {
        topic_arn: TopicArn::parse("arn:aws:sns:us-east-1:111122223333:ferry-reports").ok(),
        ..NotifyConfig::default()
    });
    let out = notify::handle(
        &ports,
        &config,
        event(json!({"expired": input["canceled"]})),
    )
    .await
    .unwrap();
    assert_eq!(out.outcome, Outcome::Canceled);
    let published = ports.0.published();
    let report: Value = serde_json::from_str(&published[0].body).unwrap();
    assert_eq!(report["outcome"], "canceled");
    let reason = report["reason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "cancelled at the request of arn:aws:iam::111122223333:user/alice (unverified) while it waited"
        ),
        "{reason}"
    );
    assert!(reason.ends_with(": wrong folder; it never ran"), "{reason}");
    assert_eq!(report["jobs"]["listed"][0]["id"], json!(job));

    // Cancelling again: already ended, and the report is asked for again under the same name
    // (a first cancel may have stopped before sending it), which starts nothing new.
    let runners_before = runners;
    let ports = (runners_before, ports.1);
    let again = submit::handle(
        &ports,
        &submit_config(),
        event(json!({"cancel": {"job": job, "by": "bob"}})),
    )
    .await
    .unwrap();
    assert_eq!(
        serde_json::to_value(again).unwrap(),
        json!({"cancel": "already_ended", "state": "canceled"})
    );
    assert_eq!(ports.0.executions().len(), 1, "reported once");
}

#[tokio::test]
async fn a_cancel_says_who_asks_within_limits() {
    let lanes = FakeLanes::new();
    let job = queue(&lanes, import("waiting"), "waiting").await;
    let ports = (FakeTrigger::new(), lanes);
    for (input, field) in [
        (json!({"cancel": {"job": job, "by": "  "}}), "cancel.by"),
        (json!({"cancel": {"job": job}}), "by"),
        (
            json!({"cancel": {"job": job, "by": "x", "reason": "a\nb"}}),
            "cancel.reason",
        ),
        (
            json!({"cancel": {"job": job, "by": "x", "reason": "r".repeat(1025)}}),
            "cancel.reason",
        ),
        (json!({"cancel": {"job": "nope", "by": "x"}}), "job"),
        (
            json!({"cancel": {"job": job, "by": "x", "why": "?"}}),
            "why",
        ),
    ] {
        let error = submit::handle(&ports, &submit_config(), event(input.clone()))
            .await
            .unwrap_err();
        assert_eq!(error.error_type(), "InvalidJob", "{input}");
        assert!(error.to_string().contains(field), "{input}: {error}");
    }
    assert_eq!(
        ports.1.job(&job).await.unwrap().unwrap().state,
        JobState::Pending,
        "untouched"
    );
    assert!(ports.0.executions().is_empty());
}

#[tokio::test]
async fn a_run_is_recorded_when_started_and_its_jobs_end_as_its_report_said() {
    let (lanes, run, job) = a_run_in_flight().await;
    let config = laned(TaskConfig::default());
    let task = json!({"service": "fsx", "file_system_id": FS, "task_id": "task-0000000000000000d"});
    let ports = (lanes.clone(), FakeTrigger::new());
    let step = |payload: Value| lane::handle(&ports, &config, event(payload));
    let started = step(
        json!({"action": "started", "lane": lane_id(), "owner": OWNER,
                              "run": run, "task": task}),
    )
    .await
    .unwrap();
    assert_eq!(serde_json::to_value(&started).unwrap()["state"], "started");
    let finished = step(
        json!({"action": "finish", "lane": lane_id(), "owner": OWNER,
                               "run": run, "outcome": "succeeded"}),
    )
    .await
    .unwrap();
    assert_eq!(serde_json::to_value(&finished).unwrap()["state"], "done");
    assert_eq!(
        lanes.jobs().iter().find(|(j, _)| j.id == job).unwrap().1,
        JobState::Succeeded
    );
    // Nothing pending: the lane is released, and a second look finds nothing.
    let released = step(json!({"action": "release", "lane": lane_id(), "owner": OWNER}))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(released).unwrap(),
        json!({"again": false})
    );
    assert_eq!(lanes.lease(&lane_id()), None);
    let unknown = step(json!({"action": "start", "lane": lane_id()}))
        .await
        .unwrap_err();
    assert_eq!(unknown.error_type(), "InvalidJob");
}

#[tokio::test]
async fn a_schedule_occurrence_submitted_twice_is_one_job_and_one_runner() {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let config = SubmitConfig {
        tasks: TaskConfig::default(),
        lanes: lane_config(),
        runner: StateMachineArn::parse(STATE_MACHINE).unwrap(),
        access: None,
    };
    let occurrence =
        "arn:aws:scheduler:us-east-1:111122223333:schedule/default/x@2026-11-30T01:00:00Z";
    let input = json!({"job": import("nightly"), "occurrence": occurrence});
    let first = submit::handle(&ports, &config, invocation(input.clone(), "delivery-1"))
        .await
        .unwrap();
    let second = submit::handle(&ports, &config, invocation(input, "delivery-2"))
        .await
        .unwrap();
    let (first, second) = (
        serde_json::to_value(first).unwrap(),
        serde_json::to_value(second).unwrap(),
    );
    assert_eq!(first["job_id"], second["job_id"]);
    assert_eq!(
        (first["enqueued"].clone(), second["enqueued"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(first["runner"]["kick"], "started");
    assert_eq!(second["runner"]["kick"], "running");
    assert_eq!(ports.0.executions().len(), 1, "one runner for the lane");
    // The sweep leaves a lane whose runner holds a live lease alone.
    let swept = submit::handle(&ports, &config, event(json!({"sweep": {}})))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(swept).unwrap(),
        json!({"kicked": [], "registered": 1, "visited": 1, "unvisited": 0})
    );
    let bad = submit::handle(&ports, &config, event(json!({"sweep": {"now": true}})))
        .await
        .unwrap_err();
    assert_eq!(bad.error_type(), "InvalidJob");
}

#[tokio::test]
async fn a_cancel_and_a_status_check_s_note_racing_both_survive() {
    use ferry::ports::NoteRuns;
    let (lanes, run, job) = a_run_in_flight().await;
    let run_id = ferry::lanes::record::RunId(run);
    // A status check read the run, then a cancel came, then the check wrote what it saw.
    let mut stale = lanes.run(&lane_id(), &run_id).await.unwrap().unwrap();
    let (lanes, _, _) = cancel(lanes, &job, "bob", "not needed").await;
    stale.canceled_outside = Some(now_millis());
    lanes.note(&stale).await.unwrap();
    let read = lanes.run(&lane_id(), &run_id).await.unwrap().unwrap();
    assert_eq!(read.cancel.expect("the cancel kept").by, "bob (unverified)");
    assert!(read.canceled_outside.is_some());
}

/// A job may ask for status checks an hour apart (`poll.min_seconds` 3600), but each check
/// renews the runner's lease: the first must come within a third of it, or the lease expires
/// during the wait and another runner adopts the run.
#[tokio::test]
async fn the_first_status_check_after_a_start_comes_within_the_lease() {
    let mut spec = serde_json::to_value(import("slow")).unwrap();
    spec["poll"] = json!({"min_seconds": 3600, "max_seconds": 3600});
    let spec: JobSpec = serde_json::from_value(spec).unwrap();
    let (lanes, run, _) = a_run_in_flight_of(spec.clone(), lane_id()).await;
    let ports = (FakeTasks::new(), lanes);
    let config = laned(TaskConfig::default());
    let lease_seconds = config.lanes.lease_seconds;
    assert!(lease_seconds < 3600);
    let started = start_task::handle(&ports, &config, event(json!({"runner": runner(&run)})))
        .await
        .unwrap();
    assert!(started.task.is_some());
    assert_eq!(started.next_poll_seconds, lease_seconds / 3);
    // A caller without a lease (the job given whole) gets the job's own wait.
    let direct = json!({"job": spec, "execution": "direct-1"});
    let started = start_task::handle(&ports, &config, event(direct))
        .await
        .unwrap();
    assert_eq!(started.next_poll_seconds, 3600);
}

/// start-task records the task it started on the run before answering: a runner that adopts
/// the run follows that task, and a retry (its first answer lost) asks the service nothing.
#[tokio::test]
async fn start_task_records_what_it_started_on_the_run_before_answering() {
    let (lanes, runner) = a_datasync_run_in_flight().await;
    let run_id = ferry::lanes::record::RunId(runner["run"].as_str().unwrap().to_owned());
    let ports = (FakeTasks::new(), lanes);
    let config = laned(TaskConfig::default());
    let input = json!({"runner": runner});
    let first = start_task::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    let run = ports.1.run(&sync_lane(), &run_id).await.unwrap().unwrap();
    assert_eq!(run.state, ferry::lanes::record::RunState::Started);
    assert_eq!(run.task, first.task);
    assert!(run.start_attempted.is_some() && run.started_at.is_some());
    let again = start_task::handle(&ports, &config, event(input))
        .await
        .unwrap();
    assert_eq!(again.task, first.task);
    assert_eq!(
        ports.0.start_calls(),
        1,
        "the retry asked the service nothing"
    );
}

/// Issue 25: a runner stopped between starting its DataSync execution and recording it left
/// the run claimed; the runner that adopted it after the lease expired looked for the
/// execution among live ones only and, the execution having ended meanwhile, started another.
#[tokio::test]
async fn a_run_adopted_after_its_start_stopped_midway_never_gets_a_second_execution() {
    let (lanes, runner) = a_datasync_run_in_flight().await;
    let run_id = ferry::lanes::record::RunId(runner["run"].as_str().unwrap().to_owned());
    let claimed = lanes.run(&sync_lane(), &run_id).await.unwrap().unwrap();
    let ports = (FakeTasks::new(), lanes);
    let config = laned(TaskConfig::default());
    let input = json!({"runner": runner});
    let first = start_task::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    // As if it stopped before recording: the run as claimed (its mark kept beside it) ...
    ferry::ports::LaneRuns::update(&ports.1, &claimed)
        .await
        .unwrap();
    let run = ports.1.run(&sync_lane(), &run_id).await.unwrap().unwrap();
    assert_eq!(
        (run.task.clone(), run.start_attempted.is_some()),
        (None, true)
    );
    // ... and its execution ended before the run was adopted.
    let handle = first.task.clone().unwrap();
    ports.0.set(&handle, "SUCCESS", Counts::default(), None);
    let adopted = start_task::handle(&ports, &config, event(input))
        .await
        .unwrap();
    assert_eq!(adopted.task, first.task, "the first execution, followed");
    assert_eq!(ports.0.tasks().len(), 1, "never a second execution");
    let run = ports.1.run(&sync_lane(), &run_id).await.unwrap().unwrap();
    assert_eq!(run.task, first.task, "recorded this time");
}

#[tokio::test]
async fn start_task_reads_the_run_it_is_given_by_reference_and_starts_it_once() {
    let (lanes, run, _) = a_run_in_flight().await;
    let ports = (FakeTasks::new(), lanes);
    let config = laned(TaskConfig::default());
    let input = json!({"runner": runner(&run)});
    let first = start_task::handle(&ports, &config, event(input.clone()))
        .await
        .unwrap();
    let again = start_task::handle(&ports, &config, event(input))
        .await
        .unwrap();
    assert_eq!(
        first.task, again.task,
        "the run's id is the idempotency identity"
    );
    let [task] = ports.0.tasks().try_into().unwrap();
    assert_eq!(
        task.job.paths,
        import("first").paths,
        "the run's spec, from the table"
    );
    let stored = ports.1.runs().pop().unwrap();
    assert_eq!(task.key.to_string(), stored.token);
    // A job and a runner at once: which is it?
    let both = json!({"runner": runner(&run), "job": import("x")});
    let error = start_task::handle(&ports, &config, event(both))
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("job: must be left out"),
        "{error}"
    );
}

#[tokio::test]
async fn a_run_cancelled_before_its_task_started_is_not_started_and_is_reported_canceled() {
    // Issue 25, mechanism 3 (a cancel must reach a run in every state).
    let (lanes, run, job) = a_run_in_flight().await;
    let (lanes, _, answer) =
        cancel(lanes, &job, "arn:aws:iam::111122223333:user/ana", "oops").await;
    assert_eq!(answer["cancel"], "run_cancel_requested");
    let ports = (FakeTasks::new(), lanes);
    let config = laned(TaskConfig::default());
    let out = start_task::handle(&ports, &config, event(json!({"runner": runner(&run)})))
        .await
        .unwrap();
    assert!(out.canceled && out.task.is_none() && !out.busy);
    assert!(ports.0.tasks().is_empty(), "nothing started");
    // The state machine's CanceledBeforeStart → NotifyCouldNotStart.
    let notify_ports = (FakeNotify::new(), ports.1);
    let notify_config = laned(NotifyConfig {
        topic_arn: TopicArn::parse("arn:aws:sns:us-east-1:111122223333:ferry-reports").ok(),
        ..NotifyConfig::default()
    });
    let input = json!({"execution": "lane-runner-1", "runner": runner(&run),
                       "error": {"Error": "Canceled", "Cause": "cancelled before its task started; it never ran"}});
    let out = notify::handle(&notify_ports, &notify_config, event(input))
        .await
        .unwrap();
    assert_eq!(out.outcome, Outcome::Canceled);
    let report: Value = serde_json::from_str(&notify_ports.0.published()[0].body).unwrap();
    assert_eq!(
        report["reason"],
        "cancelled at the request of arn:aws:iam::111122223333:user/ana (unverified): oops"
    );
}

#[tokio::test]
async fn an_abandoned_run_is_reported_failed_with_why() {
    let (lanes, run, _) = a_run_in_flight().await;
    let ports = (FakeNotify::new(), lanes);
    let config = laned(NotifyConfig {
        topic_arn: TopicArn::parse("arn:aws:sns:us-east-1:111122223333:ferry-reports").ok(),
        ..NotifyConfig::default()
    });
    let cause = "Ferry abandoned the run: 4 runners in a row stopped while following it";
    let input = json!({"execution": "lane-runner-1", "runner": runner(&run), "task": null,
                       "error": {"Error": "RunAbandoned", "Cause": cause}});
    let out = notify::handle(&ports, &config, event(input)).await.unwrap();
    assert_eq!(out.outcome, Outcome::Failed);
    let report: Value = serde_json::from_str(&ports.0.published()[0].body).unwrap();
    assert_eq!(report["reason"], cause);
    assert_eq!(report["jobs"]["total"], 1);
}

#[tokio::test]
async fn an_occurrence_too_long_to_be_a_schedules_is_refused_by_name() {
    // Issue 24, mechanism 3: the occurrence becomes the job's source, kept with the job and
    // listed in reports; unbounded, it could weigh megabytes.
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let input = json!({"job": import("nightly"), "occurrence": "x".repeat(1025)});
    let error = submit::handle(&ports, &submit_config(), event(input))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "InvalidJob");
    assert!(
        error
            .to_string()
            .contains("occurrence: must be 1-1024 characters"),
        "{error}"
    );
    assert!(ports.1.jobs().is_empty());
}

/// The status change event Step Functions sends for a runner execution (the parts `submit`
/// reads, and a field EventBridge may add).
fn status_change(status: &str, input: Option<Value>) -> Value {
    let mut detail = json!({
        "executionArn": format!("arn:aws:states:us-east-1:111122223333:execution:ferry:{OWNER}"),
        "stateMachineArn": "arn:aws:states:us-east-1:111122223333:stateMachine:ferry",
        "name": OWNER, "status": status, "redriveCount": 0,
    });
    if let Some(input) = input {
        detail["input"] = Value::String(input.to_string());
    }
    json!({"detail-type": "Step Functions Execution Status Change", "source": "aws.states",
           "detail": detail})
}

#[tokio::test]
async fn a_runner_aborted_failed_or_timed_out_is_replaced_and_nothing_else_is() {
    let runner_input = json!({"lane": lane_id(), "owner": OWNER, "generation": 3});
    for status in ["ABORTED", "FAILED", "TIMED_OUT"] {
        let (lanes, _, _) = a_run_in_flight().await;
        let ports = (FakeTrigger::new(), lanes);
        let event_in = status_change(status, Some(runner_input.clone()));
        let out = submit::handle(&ports, &submit_config(), event(event_in))
            .await
            .unwrap();
        let out = serde_json::to_value(out).unwrap();
        let owner = ferry::lanes::runner::replacement_name(&lane_id(), OWNER);
        assert_eq!(
            out,
            json!({"lane": lane_id(), "replaced": {"kick": "started", "owner": owner}}),
            "{status}"
        );
        assert_eq!(ports.1.lease(&lane_id()).unwrap().owner, owner);
        let [(name, input)] = ports.0.executions().try_into().unwrap();
        assert_eq!(name, owner);
        assert_eq!(input["settle_seconds"], 40);
    }
    let cases = [
        ("SUCCEEDED", Some(runner_input.clone()), "not a stop"),
        ("RUNNING", Some(runner_input.clone()), "not a stop"),
        (
            "ABORTED",
            None,
            "the event carries no input: the sweep replaces the runner",
        ),
        ("FAILED", Some(json!({"jobs": []})), "not a lane runner"),
    ];
    for (status, input, why) in cases {
        let (lanes, _, _) = a_run_in_flight().await;
        let ports = (FakeTrigger::new(), lanes);
        let out = submit::handle(
            &ports,
            &submit_config(),
            event(status_change(status, input)),
        )
        .await
        .unwrap();
        assert_eq!(serde_json::to_value(out).unwrap(), json!({"ignored": why}));
        assert_eq!(ports.1.lease(&lane_id()).unwrap().owner, OWNER, "{status}");
        assert!(ports.0.executions().is_empty());
    }

    // A cancel's report execution that stopped before reporting is started again, once.
    let report = json!({"canceled": {"lane": lane_id(), "jobs": []}});
    let (lanes, _, _) = a_run_in_flight().await;
    let ports = (FakeTrigger::new(), lanes);
    for _ in 0..2 {
        let out = submit::handle(
            &ports,
            &submit_config(),
            event(status_change("ABORTED", Some(report.clone()))),
        )
        .await
        .unwrap();
        let out = serde_json::to_value(out).unwrap();
        assert_eq!(out["replaced"]["kick"], "started");
    }
    let [(name, input)] = ports.0.executions().try_into().unwrap();
    assert!(
        name.starts_with("cancel-again-") && name.len() <= 80,
        "{name}"
    );
    assert_eq!(input, report);
    assert_eq!(
        ports.1.lease(&lane_id()).unwrap().owner,
        OWNER,
        "no lease taken"
    );
}
