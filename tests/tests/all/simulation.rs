//! A deterministic simulation of the lane protocol (issue 25), in the spirit of FoundationDB's
//! simulation testing and TigerBeetle's VOPR: a seeded scheduler interleaves every actor's
//! steps over the real handlers (`submit`, `lane`, `start-task`, `task-status`, `cancel-task`,
//! `notify`) and the in-memory ports, on a virtual clock, and checks the protocol's invariants
//! after every step.
//!
//! Actors: people submitting jobs (each kicks its lane) and cancelling them; uploads, whose
//! notifications wait in an SQS queue that `s3-trigger` is invoked on in batches SQS groups as
//! it likes (a message not acknowledged comes back after its visibility timeout, with its
//! receive count up, in whatever batch); lane runners, each
//! following the state machine's paths (Settle, Take, NotifyExpired, StartTask, Started,
//! GetStatus, CancelTask, Notify, Finish, Release, HandOver); the services moving tasks along
//! (FSx tasks and DataSync executions succeed or fail); the sweep, every 5 minutes of virtual
//! time; runner stops, whose status change event is delivered at once, late, twice or never;
//! runners paused past their lease (their lane taken over meanwhile, their next step refused);
//! Lambda invocations that crash before their call or after it (the answer lost, the call
//! retried; for `s3-trigger`, every message of the batch comes back); the lane table failing
//! to say which uploads are queued; the lane table failing between start-task's start of a task and its record of it;
//! and the clock, which jumps, so that leases of slow runners expire.
//!
//! Invariants, checked after every step (each failure names its seed: `FERRY_SIM_SEED=<n>`
//! replays it exactly):
//! - **one task per run**: no two FSx tasks or DataSync executions carry one run's key;
//! - **one runner per lane**: a lease-checked step that succeeds is the lease holder's;
//! - **a job ends once**: a job in a final state never changes again;
//! - **an upload is queued once**: no upload is in two jobs, however its message was
//!   redelivered and regrouped;
//! - **recovery**: no lane has work (a job pending or a run in flight) without a live runner
//!   holding its lease for longer than [`RECOVERY_BOUND_MS`] (a lease and a sweep, when the
//!   stop event is lost);
//! - at the end, once faults stop: **every job ends**, **every job is reported**, and **every
//!   upload is queued** (in exactly one job, its message acknowledged).
//!
//! What it does not cover: a cancel's report execution stopped whose status change event is
//! lost too (that report is lost: docs/guarantees.md); a step is atomic (one Lambda invocation runs whole between two
//! others; interleavings inside one invocation are represented only by crashes after its AWS
//! call); the DataSync end-event path (runners poll); the SNS, S3 and DynamoDB services beyond
//! the fakes' conditions; and Step Functions itself (the runner model follows the definition's
//! paths; `statemachine/test` runs the definition).
//!
//! `make test` runs [`SEEDS`] seeds (0 to 999) and prints how many, the steps, the time and how
//! often each path was taken (a campaign that never takes one of [`EXPLORED`] fails);
//! `make simulate` is the longer campaign (`FERRY_SIM_SEEDS`, 20,000 by default, from
//! `FERRY_SIM_FIRST_SEED`, in a release build). A failure prints its seed and the steps before
//! it; `FERRY_SIM_SEED=<n>` replays it exactly, `FERRY_SIM_LOG=1` with every step.

use std::collections::{BTreeMap, BTreeSet};

use ferry::config::{Laned, NotifyConfig, SubmitConfig, TaskConfig};
use ferry::fakes::{FakeLanes, FakeNotify, FakeTasks, FakeTrigger, set_virtual_now};
use ferry::handlers::s3_trigger::{self, TriggerOutput};
use ferry::handlers::{cancel_task, lane, notify, start_task, submit, task_status};
use ferry::ids::{StateMachineArn, TopicArn};
use ferry::lanes::LaneId;
use ferry::lanes::record::JobState;
use ferry::ports::LaneView;
use ferry::trigger::config::TriggerConfig;
use ferry::{FerryError, lanes::JobId};
use ferry_tests::{STATE_MACHINE, lane_config, laned, trigger_config};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

/// Seeds `make test` runs (each a few hundred steps).
const SEEDS: u64 = 1_000;
/// Steps of faults, then (at most) of draining without them.
const STEPS: usize = 150;
const DRAIN_STEPS: usize = 3_000;
const MINUTE: u64 = 60_000;
/// The lease (`FERRY_LEASE_SECONDS`, 900 s) and the sweep's period (5 minutes), plus a minute
/// of slack: a stopped runner whose event is lost is replaced within this.
const RECOVERY_BOUND_MS: u64 = 900_000 + 5 * MINUTE + MINUTE;
/// The definition's Lambda retries: a step failing this many times running takes its Catch.
const MAX_ATTEMPTS: u32 = 6;
/// A runner hands over after this many steps (the history budget, scaled down).
const HAND_OVER_AFTER: u32 = 40;

/// Uploads made at most (fewer than an import's 32 paths: a job's paths name its uploads).
const MAX_UPLOADS: u64 = 24;
/// The upload queue's visibility timeout: a message not acknowledged comes back after it.
const VISIBILITY_MS: u64 = 5 * MINUTE;

const FS: &str = "fs-0123456789abcdef0";
const TASK_ARN: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";

/// SplitMix64: small, seedable, the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Where a runner is in the definition.
#[derive(Debug, Clone, PartialEq)]
enum Pc {
    Settle,
    Take,
    NotifyExpired(Value),
    StartTask,
    Started,
    GetStatus,
    CancelTask,
    Notify,
    NotifyCouldNotStart,
    Finish(String),
    Release,
    HandOver,
    /// A cancel's report execution: one notify of the job it ended.
    NotifyCanceled(Value),
    Done(&'static str),
}

#[derive(Debug)]
struct Runner {
    name: String,
    lane: Option<LaneId>,
    generation: u64,
    pc: Pc,
    run: Option<String>,
    task: Option<Value>,
    status: Option<Value>,
    cancel_requested: bool,
    steps: u32,
    failures: u32,
    stopped: bool,
    /// A slow runner (its Lambda calls throttled, a long wait) takes no step before then.
    paused_until: u64,
}

impl Runner {
    fn live(&self) -> bool {
        !self.stopped && !matches!(self.pc, Pc::Done(_))
    }
    /// The execution's input, as its status change event carries it.
    fn input(&self) -> Value {
        match &self.pc {
            Pc::NotifyCanceled(canceled) => json!({"canceled": canceled}),
            _ => json!({"lane": self.lane, "owner": self.name, "generation": self.generation}),
        }
    }

    fn context(&self) -> Value {
        json!({"lane": self.lane, "owner": self.name, "run": self.run})
    }
}

/// What a Lambda invocation came to, as the runner sees it.
enum Called {
    Answer(Value),
    Error(FerryError),
    /// It crashed (before its call, or after it with the answer lost): the state retries.
    Crashed,
}

/// An upload's notification in the SQS queue.
#[derive(Debug)]
struct Notification {
    upload: u64,
    /// Times it was received (its `ApproximateReceiveCount` once received again).
    receives: u32,
    sent: u64,
    visible_at: u64,
}

struct World {
    rng: Rng,
    seed: u64,
    now: u64,
    next_sweep: u64,
    lanes: FakeLanes,
    tasks: FakeTasks,
    trigger: FakeTrigger,
    /// notify's ports: SNS, and the lane table (the same as `lanes`).
    notify: (FakeNotify, FakeLanes),
    runners: Vec<Runner>,
    seen_executions: usize,
    /// Stop events not delivered yet: (the stopped execution's name and input, deliveries
    /// left).
    events: Vec<(String, Value, u32)>,
    jobs: Vec<JobId>,
    /// The upload queue, and how many uploads were made.
    queue: Vec<Notification>,
    uploads: u64,
    /// Which jobs cover each upload, as of the last `s3-trigger` invocation (the only actor
    /// that queues uploads).
    covered: BTreeMap<u64, Vec<JobId>>,
    /// `s3-trigger`'s configuration, read once.
    routes: TriggerConfig,
    ended: BTreeMap<JobId, JobState>,
    /// Since when each lane has had work and no live runner holding its lease.
    orphaned_since: BTreeMap<LaneId, u64>,
    faults: bool,
    log: Vec<String>,
    /// How often each path was taken (printed, and checked to be explored at all).
    seen: BTreeMap<&'static str, u64>,
}

/// An invocation with its own request id (Lambda's are unique: they name runs and runners).
fn event(payload: Value) -> LambdaEvent<Value> {
    static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut context = Context::default();
    context.request_id = format!("req-{n}");
    LambdaEvent::new(payload, context)
}

fn fsx_lane() -> LaneId {
    LaneId::parse(&format!("fsx:{FS}")).unwrap()
}

fn sync_lane() -> LaneId {
    LaneId::parse(&format!("datasync:{TASK_ARN}")).unwrap()
}

fn task_config() -> Laned<TaskConfig> {
    laned(TaskConfig::default())
}

fn submit_config() -> SubmitConfig {
    SubmitConfig {
        tasks: TaskConfig::default(),
        lanes: lane_config(),
        runner: StateMachineArn::parse(STATE_MACHINE).unwrap(),
        access: None,
    }
}

fn notify_config() -> Laned<NotifyConfig> {
    laned(NotifyConfig {
        topic_arn: TopicArn::parse("arn:aws:sns:us-east-1:111122223333:ferry-reports").ok(),
        ..NotifyConfig::default()
    })
}

/// Whether a step of this kind renews or checks the lease (its success means its runner held
/// the lane).
fn lease_checked(pc: &Pc) -> bool {
    !matches!(
        pc,
        Pc::Settle
            | Pc::NotifyExpired(_)
            | Pc::Notify
            | Pc::NotifyCouldNotStart
            | Pc::NotifyCanceled(_)
            | Pc::Done(_)
    )
}

impl World {
    fn new(seed: u64) -> World {
        let now = 1_800_000_000_000;
        set_virtual_now(Some(now));
        let lanes = FakeLanes::new();
        World {
            rng: Rng(seed),
            seed,
            now,
            next_sweep: now + 5 * MINUTE,
            notify: (FakeNotify::new(), lanes.clone()),
            lanes,
            tasks: FakeTasks::new(),
            trigger: FakeTrigger::new(),
            runners: Vec::new(),
            seen_executions: 0,
            events: Vec::new(),
            jobs: Vec::new(),
            queue: Vec::new(),
            uploads: 0,
            covered: BTreeMap::new(),
            routes: routes(),
            ended: BTreeMap::new(),
            orphaned_since: BTreeMap::new(),
            faults: true,
            log: Vec::new(),
            seen: BTreeMap::new(),
        }
    }

    fn fail(&self, what: &str) -> ! {
        let keep = std::env::var("FERRY_SIM_LOG").map_or(40, |_| usize::MAX);
        let tail: Vec<&String> = self.log.iter().rev().take(keep).collect();
        panic!(
            "seed {}: {what}\nreplay: FERRY_SIM_SEED={} cargo test -p ferry-tests --test all -- simulation::\nlast steps, newest first:\n  {}",
            self.seed,
            self.seed,
            tail.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join("\n  ")
        )
    }

    fn saw(&mut self, path: &'static str) {
        *self.seen.entry(path).or_default() += 1;
    }

    fn note(&mut self, line: String) {
        self.log.push(format!(
            "{:>7} s  {line}",
            (self.now - 1_800_000_000_000) / 1000
        ));
    }

    // -------------------------------------------------------------- the actors

    async fn step(&mut self) {
        if self.now >= self.next_sweep {
            self.next_sweep += 5 * MINUTE;
            return self.sweep().await;
        }
        let live: Vec<usize> = (0..self.runners.len())
            .filter(|&i| self.runners[i].live() && self.runners[i].paused_until <= self.now)
            .collect();
        let roll = self.rng.below(100);
        match roll {
            0..=50 if !live.is_empty() => {
                let i = live[self.rng.below(live.len() as u64) as usize];
                self.runner_step(i).await;
            }
            51..=64 => self.service_step(),
            65..=72 if self.faults && self.jobs.len() < 40 => self.submit_job().await,
            73..=75 if self.faults => self.cancel_job().await,
            76..=79 if self.faults && !live.is_empty() => {
                let i = live[self.rng.below(live.len() as u64) as usize];
                self.stop_runner(i);
            }
            80..=84 if !self.events.is_empty() => self.deliver_event().await,
            86..=87 if self.faults && self.uploads < MAX_UPLOADS => self.upload(),
            88..=90 if self.queue.iter().any(|n| n.visible_at <= self.now) => {
                self.deliver_uploads().await
            }
            85 if self.faults && !live.is_empty() => {
                // A runner slower than its lease: its lane is taken over meanwhile.
                let i = live[self.rng.below(live.len() as u64) as usize];
                self.runners[i].paused_until = self.now + 20 * MINUTE + self.rng.below(20 * MINUTE);
                let name = self.runners[i].name.clone();
                self.saw("runners paused past their lease");
                self.note(format!("pause {name}"));
            }
            _ => self.tick(),
        }
        self.spawn_runners();
    }

    /// The clock moves: mostly seconds (a runner's waits), sometimes minutes.
    fn tick(&mut self) {
        let jump = if self.rng.chance(10) {
            self.rng.below(10 * MINUTE)
        } else {
            self.rng.below(30_000)
        };
        // Never past the sweep's next run: the schedule runs it on time.
        self.now = (self.now + jump).min(self.next_sweep);
        set_virtual_now(Some(self.now));
    }

    /// A task of the fakes moves on: FSx PENDING → EXECUTING → SUCCEEDED (or FAILED);
    /// DataSync QUEUED → TRANSFERRING → SUCCESS (or ERROR); a cancelled one ends.
    fn service_step(&mut self) {
        let live: Vec<_> = self
            .tasks
            .tasks()
            .into_iter()
            .filter(|t| !is_final(&t.lifecycle))
            .collect();
        if live.is_empty() {
            return self.tick();
        }
        let task = &live[self.rng.below(live.len() as u64) as usize];
        let fails = self.rng.chance(10);
        let next = match (task.lifecycle.as_str(), fails) {
            ("PENDING", _) => "EXECUTING",
            ("QUEUED", _) => "TRANSFERRING",
            ("EXECUTING", false) => "SUCCEEDED",
            ("EXECUTING", true) => "FAILED",
            ("TRANSFERRING", false) => "SUCCESS",
            ("TRANSFERRING", true) => "ERROR",
            ("CANCELING", _) => "CANCELED",
            ("CANCELLING", _) => "ERROR",
            _ => return,
        };
        self.note(format!(
            "service: {} {} -> {next}",
            task.handle, task.lifecycle
        ));
        self.tasks.set(
            &task.handle,
            next,
            task.counts.clone(),
            task.failure.clone(),
        );
    }

    async fn submit_job(&mut self) {
        let n = self.jobs.len();
        let job = if self.rng.chance(50) {
            json!({"name": format!("import-{n}"), "kind": "fsx_import", "file_system_id": FS,
                   "paths": [format!("s3://ferry-data/in/{n}/")]})
        } else {
            json!({"name": format!("sync-{n}"), "kind": "datasync", "task_arn": TASK_ARN})
        };
        let input = json!({"job": job, "id": format!("sim-{n}")});
        let ports = (self.trigger.clone(), self.lanes.clone());
        match submit::handle(&ports, &submit_config(), event(input)).await {
            Ok(out) => {
                let out = serde_json::to_value(out).unwrap();
                let id = JobId::parse(out["job_id"].as_str().unwrap()).unwrap();
                self.note(format!("submit: {id} {}", out["runner"]));
                self.jobs.push(id);
            }
            Err(e) => self.fail(&format!("submit failed: {e}")),
        }
    }

    async fn cancel_job(&mut self) {
        if self.jobs.is_empty() {
            return;
        }
        let job = self.jobs[self.rng.below(self.jobs.len() as u64) as usize].clone();
        let input = json!({"cancel": {"job": job, "by": "sim", "reason": "simulated"}});
        let ports = (self.trigger.clone(), self.lanes.clone());
        match submit::handle(&ports, &submit_config(), event(input)).await {
            Ok(out) => self.note(format!(
                "cancel {job}: {}",
                serde_json::to_value(out).unwrap()
            )),
            Err(e) => self.fail(&format!("cancel failed: {e}")),
        }
    }

    async fn sweep(&mut self) {
        let ports = (self.trigger.clone(), self.lanes.clone());
        match submit::handle(&ports, &submit_config(), event(json!({"sweep": {}}))).await {
            Ok(out) => {
                let out = serde_json::to_value(out).unwrap();
                if out["kicked"].as_array().is_some_and(|k| !k.is_empty()) {
                    self.saw("sweeps that kicked a lane");
                }
                self.note(format!("sweep: kicked {}", out["kicked"]));
            }
            Err(e) => self.fail(&format!("sweep failed: {e}")),
        }
    }

    /// One to three objects uploaded: S3 sends one notification each to the queue.
    fn upload(&mut self) {
        for _ in 0..=self.rng.below(3) {
            if self.uploads == MAX_UPLOADS {
                break;
            }
            self.queue.push(Notification {
                upload: self.uploads,
                receives: 0,
                sent: self.now,
                visible_at: self.now,
            });
            self.note(format!("upload u{}", self.uploads));
            self.uploads += 1;
        }
    }

    /// The event source mapping invokes `s3-trigger` on some of the visible messages, grouped
    /// as SQS likes; what it does not acknowledge (failed, crashed, answer lost) comes back
    /// after the visibility timeout.
    async fn deliver_uploads(&mut self) {
        let visible: Vec<usize> = (0..self.queue.len())
            .filter(|&i| self.queue[i].visible_at <= self.now)
            .collect();
        let mut batch: Vec<usize> = visible
            .iter()
            .copied()
            .filter(|_| self.rng.chance(60))
            .collect();
        if batch.is_empty() {
            batch.push(visible[self.rng.below(visible.len() as u64) as usize]);
        }
        let mut records = Vec::new();
        for &i in &batch {
            let n = &mut self.queue[i];
            n.receives += 1;
            n.visible_at = self.now + VISIBILITY_MS;
            if n.receives > 1 && self.covered.contains_key(&n.upload) {
                *self
                    .seen
                    .entry("uploads redelivered after they were queued")
                    .or_default() += 1;
            }
            records.push(sqs_record(n));
        }
        let uploads: Vec<u64> = batch.iter().map(|&i| self.queue[i].upload).collect();
        let crash = self.faults && self.rng.chance(15);
        if crash && self.rng.chance(33) {
            self.saw("Lambda crashes");
            return self.note(format!("s3-trigger {uploads:?}: crashed before its calls"));
        }
        let read_fails = self.faults && self.rng.chance(10);
        self.lanes.fail_next_upload_reads(u32::from(read_fails));
        let ports = (self.trigger.clone(), self.lanes.clone());
        let payload = event(json!({"Records": records}));
        let answer = s3_trigger::handle(&ports, &self.routes, payload).await;
        self.lanes.fail_next_upload_reads(0);
        self.covered = self.coverage();
        let known: BTreeSet<JobId> = self.jobs.iter().cloned().collect();
        for (job, _) in self.lanes.jobs() {
            if !known.contains(&job.id) {
                self.jobs.push(job.id);
            }
        }
        if crash {
            self.saw("Lambda crashes");
            return self.note(format!("s3-trigger {uploads:?}: answer lost"));
        }
        let failed: BTreeSet<String> = match answer {
            Ok(TriggerOutput::Sqs(response)) => response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            Ok(other) => self.fail(&format!("s3-trigger answered an SQS event with {other:?}")),
            Err(e) => self.fail(&format!("s3-trigger failed its whole batch: {e}")),
        };
        if !failed.is_empty() {
            self.saw("upload messages failed for redelivery");
        }
        self.note(format!("s3-trigger {uploads:?}: failed {failed:?}"));
        let done: BTreeSet<usize> = batch
            .into_iter()
            .filter(|&i| !failed.contains(&message_id(self.queue[i].upload)))
            .collect();
        let mut i = 0;
        self.queue.retain(|_| {
            i += 1;
            !done.contains(&(i - 1))
        });
    }

    /// Which jobs cover each upload, from the jobs' import paths (one path an upload: fewer
    /// uploads than an import's path cap never collapse).
    fn coverage(&self) -> BTreeMap<u64, Vec<JobId>> {
        let mut covered: BTreeMap<u64, Vec<JobId>> = BTreeMap::new();
        for (job, _) in self.lanes.jobs() {
            for path in &job.spec.paths {
                let upload = path
                    .strip_prefix("s3://ferry-data/up/u")
                    .and_then(|rest| rest.strip_suffix(".h5"))
                    .and_then(|n| n.parse().ok());
                if let Some(upload) = upload {
                    covered.entry(upload).or_default().push(job.id.clone());
                }
            }
        }
        covered
    }

    /// A runner execution stops (by hand, failed, timed out): its status change event comes
    /// at once, later, twice, or never.
    fn stop_runner(&mut self, i: usize) {
        let runner = &mut self.runners[i];
        runner.stopped = true;
        let name = runner.name.clone();
        let input = runner.input();
        let mut deliveries = match self.rng.below(10) {
            0..=1 => 0,
            2 => 2,
            _ => 1,
        };
        if matches!(runner.pc, Pc::NotifyCanceled(_)) {
            // Not covered: a cancel's report execution stopped and its event lost too (the
            // report is lost; docs/guarantees.md says so).
            deliveries = deliveries.max(1);
        }
        if deliveries > 0 {
            self.events.push((name.clone(), input, deliveries));
        }
        self.saw("runners stopped");
        self.note(format!("stop {name} (events: {deliveries})"));
    }

    async fn deliver_event(&mut self) {
        let i = self.rng.below(self.events.len() as u64) as usize;
        let (name, input) = (self.events[i].0.clone(), self.events[i].1.clone());
        self.events[i].2 -= 1;
        if self.events[i].2 == 0 {
            self.events.remove(i);
        }
        let arn = format!("arn:aws:states:us-east-1:111122223333:execution:ferry:{name}");
        let change = json!({"detail-type": "Step Functions Execution Status Change",
                            "source": "aws.states",
                            "detail": {"executionArn": arn, "status": "ABORTED",
                                       "input": input.to_string()}});
        let ports = (self.trigger.clone(), self.lanes.clone());
        match submit::handle(&ports, &submit_config(), event(change)).await {
            Ok(out) => {
                let out = serde_json::to_value(out).unwrap();
                if out["replaced"]["kick"] == "started" {
                    self.saw("runners replaced on their stop event");
                }
                self.note(format!("stop event {name}: {out}"));
            }
            // Lambda retries an asynchronous invocation: the event comes back.
            Err(e) => {
                self.note(format!("stop event failed: {e}"));
                self.events.push((name, input, 1));
            }
        }
    }

    /// Every execution started on the state machine since the last look becomes an actor.
    fn spawn_runners(&mut self) {
        let executions = self.trigger.executions();
        for (name, input) in executions.into_iter().skip(self.seen_executions) {
            self.seen_executions += 1;
            let pc = if input.get("canceled").is_some() {
                Pc::NotifyCanceled(input["canceled"].clone())
            } else if input.get("settle_seconds").is_some() {
                Pc::Settle
            } else {
                Pc::Take
            };
            let lane = input
                .get("lane")
                .map(|l| serde_json::from_value(l.clone()).unwrap());
            self.runners.push(Runner {
                name,
                lane,
                generation: input["generation"].as_u64().unwrap_or(0),
                pc,
                run: None,
                task: None,
                status: None,
                cancel_requested: false,
                steps: 0,
                failures: 0,
                stopped: false,
                paused_until: 0,
            });
        }
    }

    // -------------------------------------------------------------- a runner's step

    /// One Lambda invocation of runner `i`, with the crash faults.
    async fn invoke(&mut self, function: &str, payload: Value) -> Called {
        let crash = self.faults && self.rng.chance(5);
        let before = crash && self.rng.chance(50);
        if before {
            return Called::Crashed;
        }
        // A lane table failing between start-task's call to the service and its record of
        // what it started: the run is left marked, with no task recorded.
        let record_fails = self.faults && function == "start-task" && self.rng.chance(10);
        if record_fails {
            self.saw("starts whose record failed");
        }
        self.lanes.fail_next_notes(u32::from(record_fails));
        let answer = match function {
            "lane" => {
                let ports = (self.lanes.clone(), self.trigger.clone());
                lane::handle(&ports, &task_config(), event(payload))
                    .await
                    .map(|o| serde_json::to_value(o).unwrap())
            }
            "start-task" => {
                let ports = (self.tasks.clone(), self.lanes.clone());
                start_task::handle(&ports, &task_config(), event(payload))
                    .await
                    .map(|o| serde_json::to_value(o).unwrap())
            }
            "task-status" => {
                let ports = (self.tasks.clone(), self.lanes.clone());
                task_status::handle(&ports, &task_config(), event(payload))
                    .await
                    .map(|o| serde_json::to_value(o).unwrap())
            }
            "cancel-task" => {
                let ports = (self.tasks.clone(), self.lanes.clone());
                cancel_task::handle(&ports, &task_config(), event(payload))
                    .await
                    .map(|o| serde_json::to_value(o).unwrap())
            }
            "notify" => notify::handle(&self.notify, &notify_config(), event(payload))
                .await
                .map(|o| serde_json::to_value(o).unwrap()),
            other => panic!("no function {other}"),
        };
        self.lanes.fail_next_notes(0);
        if crash {
            return Called::Crashed; // after its call: the answer is lost
        }
        match answer {
            Ok(v) => Called::Answer(v),
            Err(e) => Called::Error(e),
        }
    }

    async fn runner_step(&mut self, i: usize) {
        let pc = self.runners[i].pc.clone();
        let (function, payload) = self.call_of(i, &pc);
        let name = self.runners[i].name.clone();
        let Some(function) = function else {
            // Settle: a wait, no call.
            self.runners[i].pc = Pc::Take;
            return;
        };
        let called = self.invoke(function, payload).await;
        self.runners[i].steps += 1;
        match called {
            Called::Crashed => {
                self.saw("Lambda crashes");
                self.note(format!("{name} {pc:?}: crashed"));
                self.retry(i, &pc);
            }
            Called::Error(FerryError::LeaseLost { .. }) if lease_checked(&pc) => {
                let lease = self.runners[i]
                    .lane
                    .as_ref()
                    .and_then(|l| self.lanes.lease(l));
                self.saw("steps refused LeaseLost");
                self.note(format!("{name} {pc:?}: LeaseLost (lease: {lease:?})"));
                self.runners[i].pc = Pc::Done("LaneLost");
            }
            Called::Error(e) => {
                self.note(format!("{name} {pc:?}: {} {e}", e.error_type()));
                self.caught(i, &pc, &e);
            }
            Called::Answer(answer) => {
                self.runners[i].failures = 0;
                if lease_checked(&pc) {
                    self.check_holder(i, &pc, &answer);
                }
                match &pc {
                    Pc::Take if answer["adopted"] == true => self.saw("runs adopted"),
                    Pc::HandOver => self.saw("hand-overs"),
                    Pc::CancelTask => self.saw("tasks cancelled"),
                    Pc::Finish(_) => self.saw("runs finished"),
                    _ => {}
                }
                self.note(format!("{name} {pc:?}: ok"));
                if let Some((next, input)) = self.advance(i, &pc, answer) {
                    // StartNext: Step Functions starts the next execution.
                    use ferry::ports::StartExecution;
                    if let Err(e) = self
                        .trigger
                        .start_execution(&next, &input.to_string())
                        .await
                    {
                        self.fail(&format!("StartNext failed: {e}"));
                    }
                }
            }
        }
    }

    /// The function and payload the definition sends from `pc`.
    fn call_of(&self, i: usize, pc: &Pc) -> (Option<&'static str>, Value) {
        let r = &self.runners[i];
        let lane_call = |action: &str| json!({"action": action, "lane": r.lane, "owner": r.name, "generation": r.generation});
        match pc {
            Pc::Settle | Pc::Done(_) => (None, Value::Null),
            Pc::Take => (Some("lane"), lane_call("take")),
            Pc::Release => (
                Some("lane"),
                json!({"action": "release", "lane": r.lane, "owner": r.name}),
            ),
            Pc::HandOver => (Some("lane"), lane_call("hand_over")),
            Pc::NotifyExpired(expired) => (Some("notify"), json!({"expired": expired})),
            Pc::NotifyCanceled(canceled) => (Some("notify"), json!({"expired": canceled})),
            Pc::StartTask => (Some("start-task"), json!({"runner": r.context()})),
            Pc::Started => (
                Some("lane"),
                json!({"action": "started", "lane": r.lane, "owner": r.name, "run": r.run, "task": r.task}),
            ),
            Pc::GetStatus => (
                Some("task-status"),
                json!({"task": r.task, "cancel_requested": r.cancel_requested, "runner": r.context()}),
            ),
            Pc::CancelTask => (
                Some("cancel-task"),
                json!({"task": r.task, "runner": r.context()}),
            ),
            Pc::Notify => (
                Some("notify"),
                json!({"execution": r.name, "task": r.task, "status": r.status,
                       "timed_out": r.status.as_ref().is_some_and(|s| s["timed_out"] == true),
                       "runner": r.context()}),
            ),
            Pc::NotifyCouldNotStart => (
                Some("notify"),
                json!({"execution": r.name, "error": {"Error": "CouldNotStart", "Cause": "simulated"},
                       "runner": r.context()}),
            ),
            Pc::Finish(outcome) => (
                Some("lane"),
                json!({"action": "finish", "lane": r.lane, "owner": r.name, "run": r.run, "outcome": outcome}),
            ),
        }
    }

    /// A crashed invocation: the state retries, up to the definition's attempts; past them, the
    /// state's Catch (for the lane steps: the runner fails, and Step Functions says so).
    fn retry(&mut self, i: usize, pc: &Pc) {
        self.runners[i].failures += 1;
        if self.runners[i].failures < MAX_ATTEMPTS {
            return;
        }
        let error = FerryError::AwsService {
            source: ferry::error::AwsError::malformed("sim", "retries exhausted"),
        };
        self.caught(i, pc, &error);
    }

    /// An error the state does not retry (or retries exhausted): the definition's Catch.
    fn caught(&mut self, i: usize, pc: &Pc, error: &FerryError) {
        let retryable = matches!(error.error_type(), "Throttled" | "AwsService");
        if retryable && self.runners[i].failures < MAX_ATTEMPTS {
            self.runners[i].failures += 1;
            return;
        }
        self.runners[i].failures = 0;
        let next = match pc {
            Pc::StartTask => Pc::NotifyCouldNotStart,
            Pc::Started | Pc::CancelTask => Pc::GetStatus,
            Pc::GetStatus => Pc::NotifyCouldNotStart,
            Pc::Notify | Pc::NotifyCouldNotStart => Pc::Finish(self.unreported_outcome(i)),
            Pc::NotifyExpired(_) => Pc::Take,
            _ => {
                // RunnerFailed (a cancel's report: its notify failed): the execution fails,
                // and Step Functions says so.
                let runner = &mut self.runners[i];
                let event = (runner.name.clone(), runner.input(), 1);
                runner.pc = Pc::Done("failed");
                self.events.push(event);
                return;
            }
        };
        self.runners[i].pc = next;
    }

    /// `OutcomeUnreported`: the outcome the task's phase gives, unreported.
    fn unreported_outcome(&self, i: usize) -> String {
        match self.runners[i]
            .status
            .as_ref()
            .and_then(|s| s["phase"].as_str())
        {
            Some("succeeded") => "succeeded".into(),
            Some("canceled") => "canceled".into(),
            _ => "failed".into(),
        }
    }

    /// The definition's next state after a successful answer; the execution to start next
    /// after a hand-over.
    fn advance(&mut self, i: usize, pc: &Pc, answer: Value) -> Option<(String, Value)> {
        let r = &mut self.runners[i];
        let mut start_next = None;
        r.pc = match pc {
            Pc::Take => {
                let expired = &answer["expired"];
                let run = &answer["run"];
                r.run = run["id"].as_str().map(str::to_owned);
                r.task = None;
                r.status = None;
                r.cancel_requested = false;
                let after_expired = if run.is_null() {
                    Pc::Release
                } else if answer["abandon"] == true {
                    Pc::NotifyCouldNotStart
                } else if run["state"] == "started" {
                    r.task = Some(run["task"].clone());
                    Pc::GetStatus
                } else {
                    Pc::StartTask
                };
                if expired.as_array().is_some_and(|e| !e.is_empty()) {
                    // NotifyExpired, then on (simplified: the take again finds the run).
                    Pc::NotifyExpired(json!({"lane": r.lane, "jobs": expired}))
                } else {
                    after_expired
                }
            }
            Pc::NotifyExpired(_) => Pc::Take,
            Pc::StartTask => {
                if answer["canceled"] == true || answer["timed_out"] == true {
                    Pc::NotifyCouldNotStart
                } else if answer["busy"] == true {
                    Pc::StartTask
                } else {
                    r.task = Some(answer["task"].clone());
                    Pc::Started
                }
            }
            Pc::Started => Pc::GetStatus,
            Pc::GetStatus => {
                let asked = answer["timed_out"] == true || answer["cancel_asked"] == true;
                r.status = Some(answer.clone());
                if answer["done"] == true {
                    Pc::Notify
                } else if asked && !r.cancel_requested {
                    Pc::CancelTask
                } else if r.steps > HAND_OVER_AFTER && !r.cancel_requested {
                    Pc::HandOver
                } else {
                    Pc::GetStatus
                }
            }
            Pc::CancelTask => {
                r.cancel_requested = true;
                Pc::GetStatus
            }
            Pc::Notify | Pc::NotifyCouldNotStart => {
                Pc::Finish(answer["outcome"].as_str().unwrap_or("failed").to_owned())
            }
            Pc::Finish(_) => {
                if r.steps > HAND_OVER_AFTER {
                    Pc::HandOver
                } else {
                    Pc::Take
                }
            }
            Pc::Release => {
                if answer["again"] == true {
                    Pc::Take
                } else {
                    Pc::Done("Idle")
                }
            }
            Pc::HandOver => {
                // StartNext: the next execution, named by the lane function.
                let name = answer["owner"].as_str().unwrap().to_owned();
                start_next = Some((name, answer.clone()));
                Pc::Done("HandedOver")
            }
            Pc::NotifyCanceled(_) => Pc::Done("Canceled reported"),
            Pc::Settle | Pc::Done(_) => pc.clone(),
        };
        start_next
    }

    // -------------------------------------------------------------- invariants

    /// A lease-checked step succeeded: its runner held the lane (or passed it on).
    fn check_holder(&self, i: usize, pc: &Pc, answer: &Value) {
        let r = &self.runners[i];
        let Some(lane) = &r.lane else { return };
        let holder = self.lanes.lease(lane).map(|l| l.owner);
        let expected = match pc {
            Pc::HandOver => answer["owner"].as_str().map(str::to_owned),
            Pc::Release if answer["again"] != true => None,
            _ => Some(r.name.clone()),
        };
        if expected.is_some() && holder != expected {
            self.fail(&format!(
                "one runner per lane: {} {pc:?} succeeded while the lease is {holder:?}",
                r.name
            ));
        }
    }

    async fn check(&mut self) {
        // One task per run.
        let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
        for task in self.tasks.tasks() {
            *per_key.entry(task.key.to_string()).or_default() += 1;
        }
        if let Some((key, n)) = per_key.iter().find(|(_, n)| **n > 1) {
            self.fail(&format!("one task per run: {n} tasks carry the key {key}"));
        }
        // A job ends once.
        for (job, state) in self.lanes.jobs() {
            let id = job.id;
            if let Some(before) = self.ended.get(&id)
                && *before != state
            {
                self.fail(&format!("job {id} ended {before:?}, then became {state:?}"));
            }
            if is_final_job(state) {
                self.ended.insert(id, state);
            }
        }
        // An upload is queued once.
        if let Some((upload, jobs)) = self.covered.iter().find(|(_, j)| j.len() > 1) {
            self.fail(&format!(
                "an upload is queued once: u{upload} is in {jobs:?}"
            ));
        }
        // Recovery.
        for lane in [fsx_lane(), sync_lane()] {
            let has_work = self.has_work(&lane).await;
            let held = self.lanes.lease(&lane).is_some_and(|l| {
                l.until > self.now && self.runners.iter().any(|r| r.name == l.owner && r.live())
            });
            if has_work && !held {
                let since = *self.orphaned_since.entry(lane.clone()).or_insert(self.now);
                if self.now - since > RECOVERY_BOUND_MS {
                    self.fail(&format!(
                        "recovery: {lane} has had work and no live runner for {} s",
                        (self.now - since) / 1000
                    ));
                }
            } else {
                self.orphaned_since.remove(&lane);
            }
        }
    }

    async fn has_work(&self, lane: &LaneId) -> bool {
        let state = self.lanes.lane(lane).await.unwrap();
        state.run.is_some() || !self.lanes.pending(lane, 1, 0).await.unwrap().is_empty()
    }

    /// Once faults stop: every job ended, every job reported, no runner left.
    fn check_end(&self) {
        let open: Vec<_> = self
            .lanes
            .jobs()
            .into_iter()
            .filter(|(_, s)| !is_final_job(*s))
            .collect();
        if !open.is_empty() {
            self.fail(&format!(
                "every job ends: {} still open: {open:?}",
                open.len()
            ));
        }
        let mut reported = BTreeSet::new();
        for message in self.notify.0.published() {
            if message.attributes.get("format").map(String::as_str) != Some("json") {
                continue;
            }
            let report: Value = serde_json::from_str(&message.body).unwrap();
            if let Some(job) = report["job_id"].as_str() {
                reported.insert(job.to_owned());
            }
            for job in report["jobs"]["listed"].as_array().into_iter().flatten() {
                reported.insert(job["id"].as_str().unwrap_or_default().to_owned());
            }
        }
        for id in &self.jobs {
            if !reported.contains(id.as_str()) {
                self.fail(&format!("every job is reported: {id} is in no report"));
            }
        }
        if let Some(lost) = (0..self.uploads).find(|u| !self.covered.contains_key(u)) {
            self.fail(&format!("every upload is queued: u{lost} is in no job"));
        }
        if !self.queue.is_empty() {
            self.fail(&format!(
                "every upload message is acknowledged: {:?}",
                self.queue
            ));
        }
    }
}

/// `s3-trigger`'s routes: uploads under `up/` are imported into the simulated file system.
fn routes() -> TriggerConfig {
    trigger_config(
        &json!([{"name": "uploads", "bucket": "ferry-data", "prefix": "up/",
                 "job": {"name": "import-uploads", "kind": "fsx_import", "file_system_id": FS}}])
        .to_string(),
    )
}

fn message_id(upload: u64) -> String {
    format!("msg-u{upload}")
}

/// An upload's notification as Lambda's SQS event carries it: the same message id every time,
/// its receive count and the time it was sent among its attributes.
fn sqs_record(n: &Notification) -> Value {
    let body = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "ferry-data"},
               "object": {"key": format!("up/u{}.h5", n.upload), "size": 1,
                          "eTag": "0123456789abcdef0123456789abcdef",
                          "sequencer": format!("{:016X}", n.upload)}}}]});
    json!({"messageId": message_id(n.upload), "eventSource": "aws:sqs",
           "body": body.to_string(),
           "attributes": {"ApproximateReceiveCount": n.receives.to_string(),
                          "SentTimestamp": n.sent.to_string()}})
}

fn is_final(lifecycle: &str) -> bool {
    matches!(
        lifecycle,
        "SUCCEEDED" | "FAILED" | "CANCELED" | "SUCCESS" | "ERROR"
    )
}

fn is_final_job(state: JobState) -> bool {
    !matches!(state, JobState::Pending | JobState::Running)
}

async fn simulate(seed: u64, seen: &mut BTreeMap<&'static str, u64>) -> usize {
    let mut world = World::new(seed);
    for _ in 0..STEPS {
        world.step().await;
        world.check().await;
    }
    world.faults = false;
    let mut steps = STEPS;
    for _ in 0..DRAIN_STEPS {
        world.step().await;
        world.check().await;
        steps += 1;
        let quiet = world.lanes.jobs().iter().all(|(_, s)| is_final_job(*s))
            && !world.runners.iter().any(Runner::live)
            && world.events.is_empty()
            && world.queue.is_empty();
        if quiet {
            break;
        }
    }
    world.check_end();
    set_virtual_now(None);
    for (path, n) in world.seen {
        *seen.entry(path).or_default() += n;
    }
    steps
}

/// Paths every campaign of a hundred seeds or more must have taken: a change that stopped the
/// simulation reaching one would otherwise pass unnoticed.
const EXPLORED: [&str; 13] = [
    "runners paused past their lease",
    "uploads redelivered after they were queued",
    "upload messages failed for redelivery",
    "Lambda crashes",
    "steps refused LeaseLost",
    "starts whose record failed",
    "runners stopped",
    "runners replaced on their stop event",
    "sweeps that kicked a lane",
    "runs adopted",
    "hand-overs",
    "tasks cancelled",
    "runs finished",
];

#[tokio::test]
async fn the_lane_protocol_keeps_its_invariants_under_every_interleaving_tried() {
    let seeds: Vec<u64> = match std::env::var("FERRY_SIM_SEED") {
        Ok(seed) => vec![seed.parse().expect("FERRY_SIM_SEED: a number")],
        Err(_) => {
            let number = |name: &str, default: u64| {
                std::env::var(name)
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(default)
            };
            let first = number("FERRY_SIM_FIRST_SEED", 0);
            (first..first + number("FERRY_SIM_SEEDS", SEEDS)).collect()
        }
    };
    let started = std::time::Instant::now();
    let mut steps = 0;
    let mut seen = BTreeMap::new();
    for &seed in &seeds {
        steps += simulate(seed, &mut seen).await;
    }
    // Straight to stderr, past the test harness's capture: `make test` shows it.
    let line = format!(
        "simulation: {} seeds ({}..={}), {steps} steps, {:.1} s\n",
        seeds.len(),
        seeds.first().unwrap_or(&0),
        seeds.last().unwrap_or(&0),
        started.elapsed().as_secs_f64()
    );
    let paths: Vec<String> = seen.iter().map(|(p, n)| format!("{p} {n}")).collect();
    let line = format!("{line}simulation paths: {}\n", paths.join(", "));
    let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
    if seeds.len() >= 100 {
        for path in EXPLORED {
            assert!(
                seen.get(path).is_some_and(|n| *n > 0),
                "never explored: {path}"
            );
        }
    }
}
