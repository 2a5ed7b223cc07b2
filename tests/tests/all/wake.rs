//! DataSync runs woken by their end events (`ferry::lanes::wake`), through the real handlers
//! (`lane`'s `started` and `await`, `task-status`, `datasync-event`, `submit`'s cancel) over the
//! in-memory lane table, Step Functions tokens and DataSync.

use ferry::config::{LaneConfig, SubmitConfig, TaskConfig};
use ferry::domain::idempotency::IdempotencyKey;
use ferry::domain::job::JobSpec;
use ferry::domain::status::{Counts, Timestamp};
use ferry::fakes::{FakeLanes, FakeTask, FakeTasks, FakeTrigger};
use ferry::handlers::{datasync_event, lane, submit, task_status};
use ferry::ids::{DataSyncExecutionArn, StateMachineArn};
use ferry::lanes::record::{JobState, LeaseRequest};
use ferry::lanes::{JobId, JobSource, LaneId};
use ferry::ports::{LaneLease, LaneQueue};
use ferry::runtime::now_millis;
use ferry_tests::{STATE_MACHINE, lane_config, laned, submitted_job};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718";
const OWNER: &str = "lane-wake-runner";

fn execution() -> String {
    format!("{TASK}/execution/exec-0123456789abcdef0")
}

fn event(payload: Value) -> LambdaEvent<Value> {
    LambdaEvent::new(payload, Context::default())
}

fn lane_id() -> LaneId {
    LaneId::parse(&format!("datasync:{TASK}")).unwrap()
}

fn sync_job() -> JobSpec {
    serde_json::from_value(json!({"name": "archive", "kind": "datasync", "task_arn": TASK}))
        .unwrap()
}

fn handle() -> Value {
    json!({"service": "datasync", "task_execution_arn": execution()})
}

/// EventBridge's "DataSync Task Execution State Change" event for `execution`.
fn state_change(execution: &str, state: &str) -> Value {
    json!({"version": "0", "id": "6a7e8f0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
           "detail-type": "DataSync Task Execution State Change", "source": "aws.datasync",
           "account": "111122223333", "time": "2026-11-30T03:12:44Z", "region": "us-east-1",
           "resources": [execution], "detail": {"State": state}})
}

/// A DataSync run started in its lane (the runner holds the lease): lanes, run id, job id.
struct World {
    lanes: FakeLanes,
    runners: FakeTrigger,
    tasks: FakeTasks,
    run: String,
    job: JobId,
}

impl World {
    async fn started(lifecycle: &str) -> World {
        let lanes = FakeLanes::new();
        let job = submitted_job(sync_job(), |valid| {
            JobId::derive(&JobSource::Caller("archive".into()), valid)
        });
        lanes.enqueue(&job).await.unwrap();
        let now = now_millis();
        let request = LeaseRequest {
            lane: lane_id(),
            owner: OWNER.into(),
            now,
            until: now + 900_000,
        };
        lanes.acquire(&request).await.unwrap();
        let world = World {
            lanes,
            runners: FakeTrigger::new(),
            tasks: FakeTasks::new(),
            run: String::new(),
            job: job.id,
        };
        let taken = world
            .lane(json!({"action": "take", "lane": lane_id(), "owner": OWNER}))
            .await
            .unwrap();
        let run = taken["run"]["id"].as_str().unwrap().to_owned();
        world
            .lane(
                json!({"action": "started", "lane": lane_id(), "owner": OWNER, "run": run,
                         "task": handle()}),
            )
            .await
            .unwrap();
        world.tasks.insert(FakeTask {
            handle: serde_json::from_value(handle()).unwrap(),
            key: IdempotencyKey::derive(None, &sync_job()),
            job: sync_job(),
            lifecycle: lifecycle.into(),
            counts: Counts::default(),
            created_at: Timestamp::now(),
            failure: None,
            cancel_requests: 0,
        });
        World { run, ..world }
    }

    async fn lane(&self, payload: Value) -> Result<Value, ferry::FerryError> {
        let ports = (self.lanes.clone(), self.runners.clone());
        lane::handle(&ports, &laned(TaskConfig::default()), event(payload))
            .await
            .map(|o| serde_json::to_value(o).unwrap())
    }

    /// The runner's `AwaitEnd` with `token`.
    async fn park(&self, token: &str) -> Value {
        self.lane(
            json!({"action": "await", "lane": lane_id(), "owner": OWNER, "run": self.run,
                         "task": handle(), "token": token, "heartbeat_seconds": 900,
                         "timeout_seconds": 21_600}),
        )
        .await
        .unwrap()
    }

    async fn datasync_event(&self, payload: Value) -> Result<Value, ferry::FerryError> {
        let ports = (self.lanes.clone(), self.runners.clone(), self.tasks.clone());
        datasync_event::handle(&ports, &lane_config(), event(payload))
            .await
            .map(|o| serde_json::to_value(o).unwrap())
    }

    async fn status(&self, config: &LaneConfig) -> Value {
        let ports = (self.tasks.clone(), self.lanes.clone());
        let input = json!({"task": handle(),
                           "runner": {"lane": lane_id(), "owner": OWNER, "run": self.run}});
        let config = ferry::config::Laned {
            config: TaskConfig::default(),
            lanes: config.clone(),
        };
        let out = task_status::handle(&ports, &config, event(input))
            .await
            .unwrap();
        serde_json::to_value(out).unwrap()
    }
}

/// Issue 25: the wait ended at the run's deadline (its jobs' enqueue plus their timeout), but
/// the task is cancelled at its own timeout (its creation plus the job's timeout): in between,
/// the runner spun through one-second waits, each a status check and a dozen writes.
#[tokio::test]
async fn a_run_past_its_deadline_waits_until_its_task_s_timeout_not_one_second() {
    use ferry::ports::{LaneRuns, ReadRuns};
    let world = World::started("TRANSFERRING").await;
    let id = ferry::lanes::record::RunId(world.run.clone());
    let mut run = world.lanes.run(&lane_id(), &id).await.unwrap().unwrap();
    // The jobs waited in the lane for most of their timeout before the task started.
    run.deadline = now_millis() - 1_000;
    world.lanes.update(&run).await.unwrap();
    let status = world.status(&lane_config()).await;
    assert_eq!(status["timed_out"], false, "the task itself is young");
    let timeout = sync_job().timeout_seconds();
    let wait = status["await"]["timeout_seconds"].as_u64().unwrap();
    assert!(
        wait + 5 >= timeout && wait <= timeout,
        "waits {wait} s, until the task's timeout ({timeout} s from its creation)"
    );
}

#[tokio::test]
async fn a_run_s_end_event_wakes_its_waiting_runner_once() {
    let world = World::started("TRANSFERRING").await;
    // The status check asks the runner to wait: the fallback period, and the run's deadline.
    let status = world.status(&lane_config()).await;
    assert_eq!(status["await"]["heartbeat_seconds"], 900);
    assert!(status["await"]["timeout_seconds"].as_u64().unwrap() > 0);
    assert_eq!(world.park("token-1").await, json!({"parked": "waiting"}));
    assert!(world.runners.woken().is_empty(), "nothing to wake it yet");

    let woke = world
        .datasync_event(state_change(&execution(), "SUCCESS"))
        .await
        .unwrap();
    assert_eq!(woke["woke"], "runner");
    let [(token, output)] = world.runners.woken().try_into().unwrap();
    assert_eq!(token, "token-1");
    assert!(output.contains("the execution is SUCCESS"), "{output}");

    // A duplicate is noted for a runner that would wait again: it does not wait (one extra
    // status check at most), and nothing is woken twice.
    let again = world
        .datasync_event(state_change(&execution(), "SUCCESS"))
        .await
        .unwrap();
    assert_eq!(again["woke"], "noted");
    assert_eq!(
        world.park("token-2").await,
        json!({"parked": "already_woken"})
    );
    let woken: Vec<String> = world.runners.woken().into_iter().map(|(t, _)| t).collect();
    assert_eq!(
        woken,
        ["token-1", "token-2"],
        "the runner's own wait ended at once"
    );
    // And the one after waits again.
    assert_eq!(world.park("token-3").await, json!({"parked": "waiting"}));
}

#[tokio::test]
async fn an_end_that_comes_before_the_runner_waits_is_not_lost() {
    let world = World::started("SUCCESS").await;
    // `started` opened the slot: the event finds the run though no runner waits yet.
    let early = world
        .datasync_event(state_change(&execution(), "SUCCESS"))
        .await
        .unwrap();
    assert_eq!(early["woke"], "noted");
    assert_eq!(
        world.park("token-1").await,
        json!({"parked": "already_woken"})
    );
    assert_eq!(world.runners.woken().len(), 1);
}

#[tokio::test]
async fn late_stale_unknown_and_out_of_order_events_change_nothing() {
    let world = World::started("TRANSFERRING").await;
    world.park("token-1").await;
    // The runner's wait timed out meanwhile (it is checking): its token is stale, not an error.
    world.runners.expire_token("token-1");
    let late = world
        .datasync_event(state_change(&execution(), "ERROR"))
        .await
        .unwrap();
    assert_eq!(late["woke"], "stale");
    // An execution no run of Ferry's has: ignored, nothing written.
    let other = format!("{TASK}/execution/exec-0fedcba9876543210");
    let unknown = world
        .datasync_event(state_change(&other, "SUCCESS"))
        .await
        .unwrap();
    assert_eq!(unknown["woke"], "unknown");
    let other = DataSyncExecutionArn::parse(&other).unwrap();
    assert!(world.lanes.slot(&other).is_none());
    // A state out of order (TRANSFERRING after ERROR) only wakes: the runner decides from
    // DescribeTaskExecution.
    world.park("token-2").await;
    let out_of_order = world
        .datasync_event(state_change(&execution(), "TRANSFERRING"))
        .await
        .unwrap();
    assert_eq!(out_of_order["woke"], "runner");
}

#[tokio::test]
async fn the_check_wakes_a_runner_whose_event_was_lost_and_keeps_the_others_waiting() {
    let world = World::started("TRANSFERRING").await;
    world.park("token-1").await;
    let checked = world.datasync_event(json!({"check": {}})).await.unwrap();
    assert_eq!(
        checked,
        json!({"waiting": 1, "woken": 0, "kept_waiting": 1, "stale": 0})
    );
    assert_eq!(world.runners.heartbeats(), ["token-1"]);
    let lease = world.lanes.lease(&lane_id()).unwrap();
    assert!(
        lease.until >= now_millis() + 900_000,
        "the lease covers the next heartbeat period"
    );

    // The execution ended and its event never came: the check wakes the runner.
    let task = serde_json::from_value(handle()).unwrap();
    world.tasks.set(&task, "SUCCESS", Counts::default(), None);
    let checked = world.datasync_event(json!({"check": {}})).await.unwrap();
    assert_eq!(checked["woken"], 1);
    assert_eq!(world.runners.woken()[0].0, "token-1");
    let checked = world.datasync_event(json!({"check": {}})).await.unwrap();
    assert_eq!(checked["waiting"], 0, "nobody waits any more");
}

#[tokio::test]
async fn a_cancel_wakes_the_runner_waiting_for_its_run() {
    let world = World::started("TRANSFERRING").await;
    world.park("token-1").await;
    let ports = (world.runners.clone(), world.lanes.clone());
    let config = SubmitConfig {
        tasks: TaskConfig::default(),
        lanes: lane_config(),
        runner: StateMachineArn::parse(STATE_MACHINE).unwrap(),
        access: None,
    };
    let input = json!({"cancel": {"job": world.job, "by": "alice", "reason": "wrong folder"}});
    let out = submit::handle(&ports, &config, event(input)).await.unwrap();
    assert_eq!(
        serde_json::to_value(out).unwrap()["cancel"],
        "run_cancel_requested"
    );
    let [(token, output)] = world.runners.woken().try_into().unwrap();
    assert_eq!(token, "token-1");
    assert!(output.contains("a cancel"));
    // The status check then passes the cancel on, and asks for no wait.
    let status = world.status(&lane_config()).await;
    assert_eq!(status["cancel_asked"], true);
    assert_eq!(status["await"], Value::Null);
    assert_eq!(
        world
            .lanes
            .jobs()
            .iter()
            .find(|(j, _)| j.id == world.job)
            .unwrap()
            .1,
        JobState::Running
    );
}

#[tokio::test]
async fn no_wait_for_fsx_with_events_off_or_past_the_deadline_and_bad_input_is_named() {
    let world = World::started("TRANSFERRING").await;
    let off = LaneConfig {
        datasync_fallback_seconds: 0,
        ..lane_config()
    };
    assert_eq!(world.status(&off).await["await"], Value::Null);
    let fsx = json!({"service": "fsx", "file_system_id": "fs-0123456789abcdef0",
                     "task_id": "task-0123456789abcdef0"});
    let error = world
        .lane(
            json!({"action": "await", "lane": lane_id(), "owner": OWNER, "run": world.run,
                     "task": fsx, "token": "t", "heartbeat_seconds": 900, "timeout_seconds": 60}),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("task"), "{error}");
    let error = world
        .lane(
            json!({"action": "await", "lane": lane_id(), "owner": OWNER, "run": world.run,
                     "task": handle(), "token": "", "heartbeat_seconds": 900,
                     "timeout_seconds": 60}),
        )
        .await
        .unwrap_err();
    assert!(error.to_string().contains("token"), "{error}");
    // A runner that lost its lane stops waiting (LeaseLost, the state machine's LaneLost).
    let error = world
        .lane(
            json!({"action": "await", "lane": lane_id(), "owner": "lane-someone-else",
                     "run": world.run, "task": handle(), "token": "t",
                     "heartbeat_seconds": 900, "timeout_seconds": 60}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "LeaseLost");
    // Events that are not DataSync execution state changes are refused, naming what is wrong.
    for (payload, field) in [
        (json!({"source": "aws.datasync"}), "detail-type"),
        (
            json!({"source": "aws.datasync", "detail-type": "DataSync Task Execution State Change",
                   "resources": ["arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718"],
                   "detail": {"State": "SUCCESS"}}),
            "resources",
        ),
        (json!({"check": {"now": true}}), "now"),
    ] {
        let error = world.datasync_event(payload.clone()).await.unwrap_err();
        assert!(error.to_string().contains(field), "{payload}: {error}");
    }
}

#[test]
fn the_fallback_is_off_or_at_least_ten_seconds() {
    use ferry::config::FromEnvironment;
    let with = |value: &str| {
        LaneConfig::from_lookup(|name| match name {
            "FERRY_LANE_TABLE" => Some("ferry-lanes".into()),
            "FERRY_DATASYNC_FALLBACK_POLL_SECONDS" => Some(value.into()),
            _ => None,
        })
    };
    assert_eq!(with("0").unwrap().datasync_fallback_seconds, 0);
    assert_eq!(with("900").unwrap().datasync_fallback_seconds, 900);
    let error = with("5").unwrap_err().to_string();
    assert!(
        error.contains("FERRY_DATASYNC_FALLBACK_POLL_SECONDS"),
        "{error}"
    );
    assert_eq!(lane_config().datasync_fallback_seconds, 900, "the default");
}
