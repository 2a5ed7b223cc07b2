//! The runner's steps between tasks, and the kick that starts a runner: what the lane function
//! does for the state machine, over the lane ports.
//!
//! - [`kick`]: take a free (or expired) lease and start a runner execution that holds it. Every
//!   entry kicks after enqueueing; the sweep kicks lanes whose runner died.
//! - [`take`]: adopt the run in flight (a runner that died left it), or end the pending jobs
//!   past their deadline and claim a new run of everything that merges with the oldest job.
//! - [`finish`]: end the run's jobs as its task ended and free the lane for the next run.
//! - [`release`]: give the lane up when nothing is pending, then look again, so a job enqueued
//!   while it was released is never stranded.
//! - [`hand_over`]: pass the lease to the runner's next execution before this one's history
//!   grows too long (the state machine then starts it).
//! - [`sweep`]: kick every lane whose runner is gone while work is left.
//! - [`cancel`]: cancel a job: a pending one ends at once, a running one's run is cancelled.
//! - [`report_canceled`]: start the runner execution that reports a job cancelled while pending.
//!
//! Every runner step renews the lease first: a runner that no longer holds it stops
//! ([`FerryError::LeaseLost`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::merge::{Candidate, merge};
use super::record::{
    CancelRequest, JobEnd, JobState, LeaseRequest, Leased, Millis, QueuedJob, RunId, RunJob,
    RunRecord, RunState,
};
use super::{JobId, LaneId, MAX_JOBS_PER_RUN};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::Limits;
use crate::domain::status::TaskHandle;
use crate::domain::text::hex;
use crate::error::FerryError;
use crate::ids::DataSyncExecutionArn;
use crate::ports::{LaneLease, LaneRuns, LaneView, StartExecution, StartOutcome};

/// Most pending jobs one take reads (and so may merge): a run covers at most
/// [`MAX_JOBS_PER_RUN`] anyway; the rest wait for the next run.
pub const MAX_PENDING_READ: usize = MAX_JOBS_PER_RUN;

/// The timing a runner works with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub now: Millis,
    /// How long a lease lasts unless renewed: longer than the longest wait between two steps.
    pub lease_ms: Millis,
}

impl Timing {
    /// When a lease taken or renewed now expires.
    pub fn until(self) -> Millis {
        self.now.saturating_add(self.lease_ms)
    }
}

/// What starting a runner did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kick", rename_all = "snake_case")]
pub enum Kicked {
    /// A runner was started (or had been, under this name).
    Started { owner: String },
    /// A runner holds the lane already.
    Running { owner: String },
}

/// The runner execution's input: its lane, its name (the lease's owner), and how many
/// executions ran the lane before it without a break (hand-overs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerInput {
    pub lane: LaneId,
    pub owner: String,
    #[serde(default)]
    pub generation: u64,
}

/// A runner execution's name: the lane's digest, the time and `salt` (an invocation id), within
/// Step Functions' 80 characters of `[A-Za-z0-9_-]`.
pub fn runner_name(lane: &LaneId, now: Millis, salt: &str) -> String {
    let lane_digest = Sha256::digest(lane.to_string().as_bytes());
    let salt_digest = Sha256::digest(salt.as_bytes());
    format!(
        "lane-{}-{now}-{}",
        hex(&lane_digest, 16),
        hex(&salt_digest, 12)
    )
}

/// Takes `lane`'s lease for a new runner named after `salt` and starts it with `runners`. A
/// failed start gives the lease back so the next kick can try; if even that fails, the lease
/// expires.
pub async fn kick<L: LaneLease, S: StartExecution>(
    (lanes, runners): (&L, &S),
    lane: &LaneId,
    timing: Timing,
    salt: &str,
) -> Result<Kicked, FerryError> {
    let owner = runner_name(lane, timing.now, salt);
    let request = LeaseRequest {
        lane: lane.clone(),
        owner: owner.clone(),
        now: timing.now,
        until: timing.until(),
    };
    if let Leased::HeldBy(held) = lanes.acquire(&request).await? {
        return Ok(Kicked::Running { owner: held.owner });
    }
    let input = RunnerInput {
        lane: lane.clone(),
        owner: owner.clone(),
        generation: 0,
    };
    // Plain data: serializing cannot fail.
    let text = serde_json::to_string(&input).unwrap_or_default();
    match runners.start_execution(&owner, &text).await {
        Ok(StartOutcome::Started { .. } | StartOutcome::AlreadyStarted) => {
            Ok(Kicked::Started { owner })
        }
        Err(e) => {
            // Best effort: a lease not given back expires.
            let _ = lanes.release(lane, &owner).await;
            Err(e)
        }
    }
}

/// Most expired jobs one take ends: their summaries travel in the runner's state, which
/// Step Functions caps at 256 KiB.
pub const MAX_EXPIRED_PER_TAKE: usize = 50;

/// A job that ended pending, as its report needs it: the spec without its path lists (which
/// can be 100 KB), and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpiredJob {
    pub id: JobId,
    pub source: String,
    pub enqueued_at: Millis,
    pub deadline: Millis,
    /// The job spec with `paths`, `includes` and `excludes` left out.
    pub job: serde_json::Value,
    /// Someone cancelled it while it was pending (absent: its deadline passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canceled: Option<CancelRequest>,
}

impl ExpiredJob {
    fn of(job: QueuedJob) -> ExpiredJob {
        let mut spec = serde_json::to_value(&job.spec).unwrap_or_default();
        if let Some(fields) = spec.as_object_mut() {
            for long in ["paths", "includes", "excludes"] {
                fields.remove(long);
            }
        }
        ExpiredJob {
            id: job.id,
            source: job.source,
            enqueued_at: job.enqueued_at,
            deadline: job.deadline,
            job: spec,
            canceled: None,
        }
    }

    fn canceled(job: QueuedJob, request: CancelRequest) -> ExpiredJob {
        ExpiredJob {
            canceled: Some(request),
            ..ExpiredJob::of(job)
        }
    }
}

/// What a take found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Taken {
    /// The run to start or follow; `None`: nothing is pending.
    pub run: Option<RunRecord>,
    /// The run was in flight already (its runner died or handed over).
    pub adopted: bool,
    /// Jobs whose deadline passed while they were pending: ended as timed out, to report (at
    /// most [`MAX_EXPIRED_PER_TAKE`]; the next take ends the rest).
    pub expired: Vec<ExpiredJob>,
    /// Pending jobs left for later runs (as far as this take read).
    pub backlog: usize,
}

/// One take for the runner `owner` of `lane`; `run_id` names a new run (the invocation's id).
pub async fn take<P: LaneView + LaneLease + LaneRuns>(
    ports: &P,
    limits: &Limits,
    (lane, owner): (&LaneId, &str),
    timing: Timing,
    run_id: &str,
) -> Result<Taken, FerryError> {
    ports.renew(lane, owner, timing.until()).await?;
    if let Some(id) = ports.lane(lane).await?.run {
        let run = adopt(ports, lane, &id).await?;
        return Ok(Taken {
            run: Some(run),
            adopted: true,
            expired: Vec::new(),
            backlog: 0,
        });
    }
    let pending = ports.pending(lane, MAX_PENDING_READ).await?;
    let (mut expired, live): (Vec<QueuedJob>, Vec<QueuedJob>) = pending
        .into_iter()
        .partition(|job| job.deadline <= timing.now);
    expired.truncate(MAX_EXPIRED_PER_TAKE);
    let expired = end_expired(ports, expired, timing.now).await?;
    let Some(mut run) = plan(
        &live,
        limits,
        lane,
        RunId(format!("run-{run_id}")),
        timing.now,
    ) else {
        return Ok(Taken {
            run: None,
            adopted: false,
            expired,
            backlog: 0,
        });
    };
    ports.claim(owner, &run).await?;
    let gone = ports.take_jobs(&run).await?;
    if !gone.is_empty() {
        drop_jobs(ports, &mut run, &live, limits, &gone).await?;
    }
    let backlog = live.len().saturating_sub(run.jobs.len() + gone.len());
    if run.jobs.is_empty() {
        // Every job of it was cancelled meanwhile: nothing to run; free the lane.
        run.ended_at = Some(timing.now);
        ports.finish(owner, &run).await?;
        return Ok(Taken {
            run: None,
            adopted: false,
            expired,
            backlog,
        });
    }
    Ok(Taken {
        run: Some(run),
        adopted: false,
        expired,
        backlog,
    })
}

/// The run in flight, its jobs taken again (a claim can die between writing the run and
/// taking its jobs: taking them again changes nothing that was done).
async fn adopt<P: LaneView + LaneRuns>(
    ports: &P,
    lane: &LaneId,
    id: &RunId,
) -> Result<RunRecord, FerryError> {
    let run = stored_run(ports, lane, id).await?;
    if run.state == RunState::Claimed {
        // A job cancelled in between is reported with the run: it never started.
        ports.take_jobs(&run).await?;
    }
    Ok(run)
}

/// The run `id` of `lane`, which the lane table must hold.
pub(crate) async fn stored_run<P: LaneView>(
    ports: &P,
    lane: &LaneId,
    id: &RunId,
) -> Result<RunRecord, FerryError> {
    ports
        .run(lane, id)
        .await?
        .ok_or_else(|| FerryError::NotFound {
            message: format!("run {id} of {lane} is not in the lane table"),
            source: None,
        })
}

/// Ends the expired jobs; returns the ones this take ended (to report once).
async fn end_expired<P: LaneRuns>(
    ports: &P,
    expired: Vec<QueuedJob>,
    now: Millis,
) -> Result<Vec<ExpiredJob>, FerryError> {
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let end = JobEnd {
        state: JobState::TimedOut,
        at: now,
    };
    let ended = ports.end_pending(&expired, end).await?;
    Ok(expired
        .into_iter()
        .filter(|job| ended.contains(&job.id))
        .map(ExpiredJob::of)
        .collect())
}

/// The run that merges the oldest of `live` with every compatible job that fits, at most
/// [`MAX_JOBS_PER_RUN`] of them.
fn plan(
    live: &[QueuedJob],
    limits: &Limits,
    lane: &LaneId,
    id: RunId,
    now: Millis,
) -> Option<RunRecord> {
    let candidates: Vec<Candidate> = live
        .iter()
        .take(MAX_JOBS_PER_RUN)
        .map(|job| Candidate {
            spec: &job.spec,
            collapse_root: job.collapse_root.as_deref(),
        })
        .collect();
    let merged = merge(&candidates, limits)?;
    let jobs = merged.taken.iter().map(|&i| run_job(&live[i])).collect();
    let deadline = merged.taken.iter().map(|&i| live[i].deadline).max()?;
    let token = IdempotencyKey::derive(Some(&id.0), &merged.spec).to_string();
    Some(RunRecord {
        id,
        lane: lane.clone(),
        state: RunState::Claimed,
        spec: merged.spec,
        jobs,
        token,
        task: None,
        claimed_at: now,
        deadline,
        started_at: None,
        ended_at: None,
        cancel: None,
        canceled_outside: None,
    })
}

fn run_job(job: &QueuedJob) -> RunJob {
    RunJob {
        id: job.id.clone(),
        name: job.spec.name.clone(),
        source: job.source.clone(),
        enqueued_at: job.enqueued_at,
        state: JobState::Running,
    }
}

/// Drops the jobs `gone` (cancelled while the run was claimed) and merges again what is left;
/// a run left with no job is finished at once.
async fn drop_jobs<P: LaneRuns>(
    ports: &P,
    run: &mut RunRecord,
    live: &[QueuedJob],
    limits: &Limits,
    gone: &[super::JobId],
) -> Result<(), FerryError> {
    let kept: Vec<QueuedJob> = live
        .iter()
        .filter(|job| run.jobs.iter().any(|j| j.id == job.id) && !gone.contains(&job.id))
        .cloned()
        .collect();
    match plan(&kept, limits, &run.lane, run.id.clone(), run.claimed_at) {
        Some(again) => {
            run.jobs = again.jobs;
            run.spec = again.spec;
            run.token = again.token;
            run.deadline = again.deadline;
        }
        None => run.jobs.clear(),
    }
    ports.update(run).await
}

/// Ends the run in flight: every job to `state` (the run's outcome), then the lane free. A run
/// already done (a retried finish) is returned as it is.
pub async fn finish<P: LaneView + LaneLease + LaneRuns>(
    ports: &P,
    (lane, owner): (&LaneId, &str),
    run_id: &RunId,
    state: JobState,
    timing: Timing,
) -> Result<RunRecord, FerryError> {
    ports.renew(lane, owner, timing.until()).await?;
    let mut run = stored_run(ports, lane, run_id).await?;
    if run.state == RunState::Done {
        return Ok(run);
    }
    for job in &mut run.jobs {
        job.state = state;
    }
    run.ended_at = Some(timing.now);
    ports.finish(owner, &run).await?;
    run.state = RunState::Done;
    Ok(run)
}

/// Gives the lane up, then looks again: a job enqueued meanwhile (its entry's kick found the
/// lane still held) is taken by this runner, which takes the lease back. `true`: go on.
pub async fn release<P: LaneView + LaneLease>(
    ports: &P,
    (lane, owner): (&LaneId, &str),
    timing: Timing,
) -> Result<bool, FerryError> {
    ports.release(lane, owner).await?;
    if ports.pending(lane, 1).await?.is_empty() {
        return Ok(false);
    }
    let request = LeaseRequest {
        lane: lane.clone(),
        owner: owner.to_owned(),
        now: timing.now,
        until: timing.until(),
    };
    // Someone else's kick may have taken it in between: then that runner carries on.
    Ok(ports.acquire(&request).await? == Leased::Acquired)
}

/// Passes the lease to the runner's next execution, which the state machine then starts
/// itself (with the answer as its input). The new name derives from the old one and
/// `generation`, so a retried hand-over names the same execution (Step Functions answers a
/// name in use with that execution).
pub async fn hand_over<P: LaneLease>(
    ports: &P,
    (lane, owner): (&LaneId, &str),
    generation: u64,
    timing: Timing,
) -> Result<RunnerInput, FerryError> {
    let next = runner_name(lane, timing.now, &format!("{owner}/{generation}"));
    let to = LeaseRequest {
        lane: lane.clone(),
        owner: next.clone(),
        now: timing.now,
        until: timing.until(),
    };
    ports.hand_over(owner, &to).await?;
    Ok(RunnerInput {
        lane: lane.clone(),
        owner: next,
        generation: generation.saturating_add(1),
    })
}

/// Kicks every lane whose runner is gone (its lease expired) while work is left: a run in
/// flight to finish or jobs pending. Returns what each kick did.
pub async fn sweep<L: LaneView + LaneLease, S: StartExecution>(
    (lanes, runners): (&L, &S),
    timing: Timing,
    salt: &str,
) -> Result<Vec<(LaneId, Kicked)>, FerryError> {
    let mut kicked = Vec::new();
    for lane in lanes.lanes().await? {
        let state = lanes.lane(&lane).await?;
        if state.lease.as_ref().is_some_and(|l| l.until >= timing.now) {
            continue;
        }
        if state.run.is_none() && lanes.pending(&lane, 1).await?.is_empty() {
            continue;
        }
        let outcome = kick((lanes, runners), &lane, timing, salt).await?;
        kicked.push((lane, outcome));
    }
    Ok(kicked)
}

/// Each lane and how long its oldest pending job has waited, in seconds (0: none waits): the
/// sweep's metric, which the oldest-pending alarm watches.
pub async fn oldest_pending<L: LaneView>(
    lanes: &L,
    now: Millis,
) -> Result<Vec<(LaneId, u64)>, FerryError> {
    let mut ages = Vec::new();
    for lane in lanes.lanes().await? {
        let oldest = lanes.pending(&lane, 1).await?;
        let age = oldest
            .first()
            .map_or(0, |job| now.saturating_sub(job.enqueued_at) / 1000);
        ages.push((lane, age));
    }
    Ok(ages)
}

/// What cancelling a job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cancel", rename_all = "snake_case")]
pub enum Cancelled {
    /// It was pending: it ended canceled and will never run.
    WhilePending,
    /// It is running in `run`: the run's task is cancelled at its next status check, and every
    /// job of the run (`jobs`) ends canceled with it.
    RunCancelRequested { run: RunId, jobs: Vec<JobId> },
    /// It had ended already, in `state`.
    AlreadyEnded { state: JobState },
}

/// A cancel, and the report it still owes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancel {
    pub done: Cancelled,
    /// A job that ended canceled while pending: its report, which [`report_canceled`] sends.
    /// Also for a job found already ended that way, since the cancel that ended it may have
    /// stopped before sending it (sending twice reports once).
    pub report: Option<ExpiredJob>,
    /// A run whose cancel was asked follows this DataSync execution: its runner may be waiting
    /// for the execution's end event; [`crate::lanes::wake::wake`] it so it cancels now.
    pub wake: Option<DataSyncExecutionArn>,
}

/// Cancels the job `id` for `by` (who asked) because of `reason`.
pub async fn cancel<P: LaneView + LaneRuns>(
    ports: &P,
    id: &JobId,
    (by, reason): (&str, &str),
    now: Millis,
) -> Result<Cancel, FerryError> {
    let not_found = || FerryError::NotFound {
        message: format!(
            "job {id} is not in the lane table (never enqueued, or ended more than 30 days ago)"
        ),
        source: None,
    };
    let request = CancelRequest {
        by: by.to_owned(),
        reason: reason.to_owned(),
        at: now,
    };
    let mut found = ports.job(id).await?.ok_or_else(not_found)?;
    if found.state == JobState::Pending {
        let end = JobEnd {
            state: JobState::Canceled,
            at: now,
        };
        if ports
            .end_pending(std::slice::from_ref(&found.job), end)
            .await?
            .contains(id)
        {
            return Ok(Cancel {
                done: Cancelled::WhilePending,
                report: Some(ExpiredJob::canceled(found.job, request)),
                wake: None,
            });
        }
        // A runner took it meanwhile (or another cancel ended it): look again.
        found = ports.job(id).await?.ok_or_else(not_found)?;
    }
    match (found.state, found.run) {
        (JobState::Running, Some(run_id)) => {
            let mut run = stored_run(ports, &found.job.lane, &run_id).await?;
            if run.cancel.is_none() {
                run.cancel = Some(request);
                ports.update(&run).await?;
            }
            let wake = match &run.task {
                Some(TaskHandle::Datasync { task_execution_arn }) => {
                    Some(task_execution_arn.clone())
                }
                _ => None,
            };
            Ok(Cancel {
                done: Cancelled::RunCancelRequested {
                    run: run_id,
                    jobs: run.jobs.into_iter().map(|j| j.id).collect(),
                },
                report: None,
                wake,
            })
        }
        (JobState::Canceled, None) => Ok(Cancel {
            done: Cancelled::AlreadyEnded {
                state: JobState::Canceled,
            },
            report: Some(ExpiredJob::canceled(found.job, request)),
            wake: None,
        }),
        (state, _) => Ok(Cancel {
            done: Cancelled::AlreadyEnded { state },
            report: None,
            wake: None,
        }),
    }
}

/// The input of the runner execution that only reports jobs cancelled while pending (the
/// state machine sends `canceled` to notify and ends; it takes no lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanceledInput {
    pub canceled: Vec<ExpiredJob>,
}

/// Sends the report of a job cancelled while pending: a runner execution named after the job
/// reports it. The name makes it once: Step Functions refuses a name used in the last 90 days
/// (`ExecutionAlreadyExists`, API reference, StartExecution), longer than the lane table keeps
/// the job (30 days), so a second cancel of the job sends nothing twice.
pub async fn report_canceled<S: StartExecution>(
    runners: &S,
    report: &ExpiredJob,
) -> Result<StartOutcome, FerryError> {
    let input = CanceledInput {
        canceled: vec![report.clone()],
    };
    // Plain data: serializing cannot fail.
    let text = serde_json::to_string(&input).unwrap_or_default();
    runners
        .start_execution(&canceled_name(&report.id), &text)
        .await
}

/// `cancel-<job id>`: StartExecution's `name` takes at most 80 letters, digits, `-` and `_`;
/// a job id is always `job-` and 56 hex digits ([`JobId::parse`]), so this is 67.
fn canceled_name(id: &JobId) -> String {
    format!("cancel-{id}")
}

// Over the in-memory lane table, which the `test-util` feature builds (`cargo test --workspace`
// enables it through the tests package).
#[cfg(all(test, feature = "test-util"))]
mod tests;
