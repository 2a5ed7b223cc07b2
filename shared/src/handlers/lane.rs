//! `lane`: the runner's steps between tasks ([`crate::lanes::runner`]), one action per call.
//! (People cancel a job through `submit`, which can start the runner execution that reports it.)
//!
//! | action | does | answers |
//! |---|---|---|
//! | `take` | adopt the run in flight, or end expired pending jobs and claim a new run | the run (or none), the expired jobs, the backlog |
//! | `started` | record the task a run started, so an adopting runner follows it | the run |
//! | `finish` | end the run's jobs as its report said, free the lane | the run, done |
//! | `release` | give the lane up, then look again | `again`: take once more |
//! | `hand_over` | pass the lease to the runner's next execution | that execution's input |
//! | `await` | (a callback state) leave the runner's task token where a DataSync run's end wakes it ([`crate::lanes::wake`]) | `{"parked": "waiting" \| "already_woken"}` (Step Functions waits for the token either way) |
//!
//! The answers are shaped for the state machine, whose state Step Functions caps at 256 KiB:
//! references, never values. A run travels as a [`RunSummary`] (its id, state, task handle and
//! counts: no spec, no job list; the task functions read the spec from the lane table), expired
//! jobs as their ids. Every answer is checked against [`budget::ANSWER_BYTES`] before it
//! leaves.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use super::timing;
use crate::budget;
use crate::config::{Laned, TaskConfig};
use crate::domain::parse;
use crate::domain::status::TaskHandle;
use crate::error::FerryError;
use crate::ids::DataSyncExecutionArn;
use crate::lanes::record::{JobState, Millis, RunId, RunRecord, RunState};
use crate::lanes::runner::{self, RunnerInput, Taken, Taker, Timing};
use crate::lanes::wake::{self, Wait};
use crate::lanes::{JobId, LaneId};
use crate::metrics::{self, Emf, Unit};
use crate::notify::report::Outcome;
use crate::ports::{
    LaneLease, LaneRuns, LaneView, Parked, ReadQueued, WakeRunners, WakeSlot, WakeSlots,
};

/// One step, as the runner state machine sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum LaneInput {
    Take {
        lane: LaneId,
        owner: String,
        /// How many executions ran the lane before this one without a break.
        #[serde(default)]
        generation: u64,
    },
    Started {
        lane: LaneId,
        owner: String,
        run: RunId,
        task: TaskHandle,
    },
    Finish {
        lane: LaneId,
        owner: String,
        run: RunId,
        /// The outcome the run's report gave.
        outcome: Outcome,
    },
    Release {
        lane: LaneId,
        owner: String,
    },
    HandOver {
        lane: LaneId,
        owner: String,
        /// How many executions ran the lane before this one without a break.
        generation: u64,
    },
    Await {
        lane: LaneId,
        owner: String,
        run: RunId,
        task: TaskHandle,
        /// The callback state's task token (`$$.Task.Token`).
        token: String,
        /// The state's `HeartbeatSeconds`: how long the runner waits without news.
        heartbeat_seconds: u32,
        /// The state's `TimeoutSeconds`: how long it waits at most (the run's deadline).
        timeout_seconds: u64,
    },
}

/// A run as the state machine carries it: a reference and what its choices read. The spec
/// stays in the lane table, where the task functions read it (it may weigh 320 KiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: RunId,
    pub state: RunState,
    /// The task, once started (an adopted run may have one).
    pub task: Option<TaskHandle>,
    pub deadline: Millis,
    /// How many jobs it covers.
    pub jobs: usize,
    /// Someone asked to cancel one of its jobs.
    pub cancel_requested: bool,
    /// Runners that adopted it after their predecessor stopped.
    pub adoptions: u32,
}

impl RunSummary {
    pub fn of(run: &RunRecord) -> RunSummary {
        RunSummary {
            id: run.id.clone(),
            state: run.state,
            task: run.task.clone(),
            deadline: run.deadline,
            jobs: run.job_count,
            cancel_requested: run.cancel.is_some(),
            adoptions: run.adoptions,
        }
    }
}

/// What a take answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakeAnswer {
    pub run: Option<RunSummary>,
    pub adopted: bool,
    /// The run was adopted more than [`runner::MAX_ADOPTIONS`] times: the runner ends it
    /// failed (`Abandon`), its task cancelled, instead of following it again.
    pub abandon: bool,
    /// Jobs that ended pending (their deadline passed): `notify` reports each, reading it from
    /// the lane table.
    pub expired: Vec<JobId>,
    pub backlog: usize,
}

/// What a step answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum LaneOutput {
    Taken(TakeAnswer),
    Run(RunSummary),
    Release { again: bool },
    HandedOver(RunnerInput),
    Parked { parked: Parked },
}

/// The job state a run's report outcome gives each of its jobs.
pub fn job_state(outcome: Outcome) -> JobState {
    match outcome {
        Outcome::Succeeded => JobState::Succeeded,
        Outcome::Failed | Outcome::CouldNotStart => JobState::Failed,
        Outcome::Canceled => JobState::Canceled,
        Outcome::TimedOut => JobState::TimedOut,
    }
}

/// `ports`: the lane table, and Step Functions for a runner whose wait was over before it began.
pub async fn handle<P: LaneView + LaneLease + LaneRuns + ReadQueued + WakeSlots, S: WakeRunners>(
    (ports, runners): &(P, S),
    config: &Laned<TaskConfig>,
    event: LambdaEvent<Value>,
) -> Result<LaneOutput, FerryError> {
    let input: LaneInput = parse::from_value(event.payload, "")?;
    let timing = timing(&config.lanes);
    let output = match input {
        LaneInput::Take {
            lane,
            owner,
            generation,
        } => {
            let taker = Taker {
                lane: &lane,
                owner: &owner,
                generation,
            };
            take(ports, config, taker, timing, &event.context.request_id).await?
        }
        LaneInput::Started {
            lane,
            owner,
            run,
            task,
        } => {
            let fallback = config.lanes.datasync_fallback_seconds;
            let run = started(ports, (&lane, &owner), &run, task, timing).await?;
            open_slot(ports, (&lane, &owner), &run, fallback, timing).await?;
            LaneOutput::Run(run)
        }
        LaneInput::Finish {
            lane,
            owner,
            run,
            outcome,
        } => finish(ports, (&lane, &owner), &run, outcome, timing).await?,
        LaneInput::Release { lane, owner } => LaneOutput::Release {
            again: runner::release(ports, (&lane, &owner), timing).await?,
        },
        LaneInput::HandOver {
            lane,
            owner,
            generation,
        } => {
            let next = runner::hand_over(ports, (&lane, &owner), generation, timing).await?;
            info!(lane = %lane, from = %owner, to = %next.owner, generation = next.generation,
                  "lease handed over");
            LaneOutput::HandedOver(next)
        }
        LaneInput::Await {
            lane,
            owner,
            run,
            task,
            token,
            heartbeat_seconds,
            timeout_seconds,
        } => {
            let slot = WakeSlot {
                execution: datasync_execution(&task)?,
                lane,
                run,
                owner,
                token: Some(checked_token(token)?),
                heartbeat_seconds: heartbeat_seconds.max(1),
            };
            let parked = park((ports, runners), slot, timeout_seconds, timing).await?;
            LaneOutput::Parked { parked }
        }
    };
    budget::check("the lane function's answer", &output, budget::ANSWER_BYTES)
        .map_err(FerryError::from)?;
    Ok(output)
}

/// Leaves the waiting runner's token in its run's wake slot, for `timeout_seconds` at most.
async fn park<P: LaneLease + WakeSlots, S: WakeRunners>(
    ports: (&P, &S),
    slot: WakeSlot,
    timeout_seconds: u64,
    timing: Timing,
) -> Result<Parked, FerryError> {
    let wait = Wait {
        slot,
        timeout_seconds,
        lease_ms: timing.lease_ms,
        now: timing.now,
    };
    wake::park(ports, &wait).await
}

/// Ends the run as its report's `outcome` says (each job's state follows it).
async fn finish<P: LaneView + LaneLease + LaneRuns>(
    ports: &P,
    (lane, owner): (&LaneId, &str),
    run: &RunId,
    outcome: Outcome,
    timing: Timing,
) -> Result<LaneOutput, FerryError> {
    let state = job_state(outcome);
    let done = runner::finish(ports, (lane, owner), run, state, timing).await?;
    info!(lane = %lane, run = %run, jobs = done.job_count, state = state.as_str(), "run finished");
    Ok(LaneOutput::Run(RunSummary::of(&done)))
}

/// A take, its metrics and its answer; `salt` (the invocation's id) names a new run.
async fn take<P: LaneView + LaneLease + LaneRuns + ReadQueued>(
    ports: &P,
    config: &Laned<TaskConfig>,
    taker: Taker<'_>,
    timing: Timing,
    salt: &str,
) -> Result<LaneOutput, FerryError> {
    let taken = runner::take(ports, &config.config.limits, taker, timing, salt).await?;
    emit_metrics(taker.lane, &taken, timing.now);
    Ok(LaneOutput::Taken(answer(taker.lane, taken)))
}

/// The lane's backlog, and how long each job of a new run waited (dimension Lane).
fn emit_metrics(lane: &LaneId, taken: &Taken, now: Millis) {
    let lane = lane.to_string();
    let mut emf = Emf::new(now, &[("Lane", &lane)], &[&["Lane"]]);
    emf.add(metrics::BACKLOG, Unit::Count, taken.backlog as f64);
    for enqueued_at in &taken.enqueued {
        let waited = now.saturating_sub(*enqueued_at) / 1000;
        emf.add(metrics::JOB_WAIT, Unit::Seconds, waited as f64);
    }
    emf.emit();
}

fn answer(lane: &LaneId, taken: Taken) -> TakeAnswer {
    info!(lane = %lane, run = ?taken.run.as_ref().map(|r| &r.id), adopted = taken.adopted,
          abandon = taken.abandon, expired = taken.expired.len(), backlog = taken.backlog, "take");
    TakeAnswer {
        run: taken.run.as_ref().map(RunSummary::of),
        adopted: taken.adopted,
        abandon: taken.abandon,
        expired: taken.expired,
        backlog: taken.backlog,
    }
}

/// The execution of a DataSync task handle; only DataSync runs wait for events.
fn datasync_execution(task: &TaskHandle) -> Result<DataSyncExecutionArn, FerryError> {
    match task {
        TaskHandle::Datasync { task_execution_arn } => Ok(task_execution_arn.clone()),
        TaskHandle::Fsx { .. } => Err(FerryError::invalid(
            "task",
            "expected a DataSync task execution: FSx sends no events for data repository tasks, its runs are polled",
        )),
    }
}

/// A task token as SendTaskSuccess takes it: 1-2048 characters (API reference).
fn checked_token(token: String) -> Result<String, FerryError> {
    if (1..=2048).contains(&token.len()) {
        Ok(token)
    } else {
        Err(FerryError::invalid(
            "token",
            format!(
                "must be a task token of 1-2048 characters, got {} characters",
                token.len()
            ),
        ))
    }
}

/// A DataSync run's wake slot, opened when its task starts (unless events are off): an end
/// event that comes before the runner first waits is noted there, not lost.
async fn open_slot<P: WakeSlots>(
    ports: &P,
    (lane, owner): (&LaneId, &str),
    run: &RunSummary,
    fallback_seconds: u32,
    timing: Timing,
) -> Result<(), FerryError> {
    let Some(TaskHandle::Datasync { task_execution_arn }) = &run.task else {
        return Ok(());
    };
    if fallback_seconds == 0 {
        return Ok(());
    }
    let slot = WakeSlot {
        execution: task_execution_arn.clone(),
        lane: lane.clone(),
        run: run.id.clone(),
        owner: owner.to_owned(),
        token: None,
        heartbeat_seconds: fallback_seconds,
    };
    let left = run.deadline.saturating_sub(timing.now) / 1000;
    ports
        .open_slot(&slot, wake::slot_expiry(timing.now, left))
        .await
}

/// Records the task the run started (once; a retry that finds it recorded changes nothing).
async fn started<P: LaneView + LaneLease + LaneRuns>(
    ports: &P,
    (lane, owner): (&LaneId, &str),
    run_id: &RunId,
    task: TaskHandle,
    timing: Timing,
) -> Result<RunSummary, FerryError> {
    ports.renew(lane, owner, timing.until()).await?;
    let mut run = runner::stored_run(ports, lane, run_id).await?;
    if run.state == RunState::Claimed {
        run.state = RunState::Started;
        run.task = Some(task);
        run.started_at = Some(timing.now);
        ports.update(&run).await?;
    }
    Ok(RunSummary::of(&run))
}
