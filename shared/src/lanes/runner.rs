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
    CancelRequest, JobEnd, JobState, LeaseRequest, Leased, Millis, QueuedJob, RunId, RunRecord,
    RunState,
};
use super::{JobId, LaneId, MAX_JOBS_PER_RUN};
use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::Limits;
use crate::domain::status::TaskHandle;
use crate::domain::text::hex;
use crate::error::FerryError;
use crate::ids::DataSyncExecutionArn;
use crate::ports::{
    LaneLease, LaneRuns, LaneView, ReadQueued, ReadRuns, StartExecution, StartOutcome,
};

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

/// The runner execution's input: its lane, its name (the lease's owner), how many executions
/// ran the lane before it without a break (hand-overs), and how long to wait before its first
/// step (a replacement, [`replace`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunnerInput {
    pub lane: LaneId,
    pub owner: String,
    #[serde(default)]
    pub generation: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub settle_seconds: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A runner execution's name: the lane's digest, the time and `salt` (an invocation id), within
/// Step Functions' 80 characters of `[A-Za-z0-9_-]`.
pub fn runner_name(lane: &LaneId, now: Millis, salt: &str) -> String {
    named(lane, &now.to_string(), salt)
}

/// `lane-<16 hex digits of the lane's digest>-<middle>-<12 of salt's>`: a runner's name.
fn named(lane: &LaneId, middle: &str, salt: &str) -> String {
    let lane_digest = Sha256::digest(lane.to_string().as_bytes());
    let salt_digest = Sha256::digest(salt.as_bytes());
    format!(
        "lane-{}-{middle}-{}",
        hex(&lane_digest, 16),
        hex(&salt_digest, 12)
    )
}

/// The name of the execution that continues runner `owner` of `lane` after its hand-over at
/// `generation`: `lane-<lane digest>-h<generation + 1>-<digest of owner and generation>`, at
/// most 56 characters. Unique as `owner` is (each name has its own digest), and the same each
/// time it is asked for.
pub fn continuation_name(lane: &LaneId, owner: &str, generation: u64) -> String {
    let middle = format!("h{}", generation.saturating_add(1));
    named(lane, &middle, &format!("{owner}/{generation}"))
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
        settle_seconds: 0,
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

/// Most expired jobs one take ends (and so one `NotifyExpired` reports): their ids travel in
/// the runner's state; the next take ends the rest.
pub const MAX_EXPIRED_PER_TAKE: usize = 50;

/// Most bytes of pending jobs one take reads (and so may merge): the lane function's memory
/// holds them. At the typical 1-3 KB a job, [`MAX_PENDING_READ`] jobs fit many times over; at
/// the largest a job may be ([`crate::budget::SPEC_BYTES`]), about fifty do, and the rest wait
/// for the next run. The oldest job is always read.
pub const PENDING_READ_BYTES: usize = 16 * 1024 * 1024;

/// Most times a run is adopted after its runner stopped without handing it over, before it is
/// abandoned: reported failed, its task cancelled, its jobs ended, the lane freed. A run that
/// stops every runner that follows it (a bug, a payload AWS refuses, a step that can never
/// succeed) must not hold its lane for ever.
pub const MAX_ADOPTIONS: u32 = 3;

/// What a take found.
#[derive(Debug, Clone, PartialEq)]
pub struct Taken {
    /// The run to start or follow; `None`: nothing is pending.
    pub run: Option<RunRecord>,
    /// The run was in flight already (its runner died or handed over).
    pub adopted: bool,
    /// The run was adopted more than [`MAX_ADOPTIONS`] times: end it, failed.
    pub abandon: bool,
    /// Jobs whose deadline passed while they were pending: ended as timed out, to report (at
    /// most [`MAX_EXPIRED_PER_TAKE`]; the next take ends the rest).
    pub expired: Vec<JobId>,
    /// Pending jobs left for later runs (as far as this take read).
    pub backlog: usize,
    /// When each job of a new run was enqueued (how long they waited, for the metric).
    pub enqueued: Vec<Millis>,
}

/// Who takes: the lane, the runner execution holding its lease, and how many executions ran
/// the lane before it without a break (a continuation, generation 1 and up, adopts the run its
/// predecessor handed over; generation 0 adopts one whose runner stopped).
#[derive(Debug, Clone, Copy)]
pub struct Taker<'a> {
    pub lane: &'a LaneId,
    pub owner: &'a str,
    pub generation: u64,
}

/// One take for the runner `taker`; `run_id` names a new run (the invocation's id).
pub async fn take<P: LaneView + LaneLease + LaneRuns + ReadQueued>(
    ports: &P,
    limits: &Limits,
    taker: Taker<'_>,
    timing: Timing,
    run_id: &str,
) -> Result<Taken, FerryError> {
    let Taker { lane, owner, .. } = taker;
    ports.renew(lane, owner, timing.until()).await?;
    let in_flight = ports.lane(lane).await?.run;
    let pending = ports
        .pending(lane, MAX_PENDING_READ, PENDING_READ_BYTES)
        .await?;
    // Jobs past their deadline end even behind a run in flight, so a run that keeps failing
    // never keeps them from their report.
    let (mut expired, live): (Vec<QueuedJob>, Vec<QueuedJob>) = pending
        .into_iter()
        .partition(|job| job.deadline <= timing.now);
    expired.truncate(MAX_EXPIRED_PER_TAKE);
    let expired = end_expired(ports, expired, timing.now).await?;
    if let Some(id) = in_flight {
        let adopted = adopt(ports, limits, taker, &id, timing).await?;
        return Ok(Taken {
            abandon: adopted
                .as_ref()
                .is_some_and(|run| run.adoptions > MAX_ADOPTIONS),
            run: adopted,
            adopted: true,
            expired,
            backlog: live.len(),
            enqueued: Vec::new(),
        });
    }
    let Some(planned) = plan(
        &live,
        limits,
        lane,
        RunId(format!("run-{run_id}")),
        timing.now,
    ) else {
        return Ok(Taken {
            run: None,
            adopted: false,
            abandon: false,
            expired,
            backlog: 0,
            enqueued: Vec::new(),
        });
    };
    ports.claim(owner, &planned.run).await?;
    let jobs: Vec<QueuedJob> = planned.taken.iter().map(|&i| live[i].clone()).collect();
    let taken = jobs.len();
    let gone = ports.take_jobs(&planned.run, &jobs).await?;
    let enqueued = jobs
        .iter()
        .filter(|j| !gone.contains(&j.id))
        .map(|j| j.enqueued_at)
        .collect();
    let run = if gone.is_empty() {
        Some(planned.run)
    } else {
        let kept = jobs.into_iter().filter(|j| !gone.contains(&j.id)).collect();
        settle(ports, limits, (planned.run, kept), owner, timing.now).await?
    };
    Ok(Taken {
        run,
        adopted: false,
        abandon: false,
        expired,
        backlog: live.len().saturating_sub(taken),
        enqueued,
    })
}

/// The run in flight, adopted: the adoption counted (unless this runner continues the one
/// that handed the run over), and a run whose claim died before it took every job settled to
/// the jobs it took. `None`: it took none, and is finished.
async fn adopt<P: LaneView + LaneRuns + LaneLease + ReadQueued>(
    ports: &P,
    limits: &Limits,
    taker: Taker<'_>,
    id: &RunId,
    timing: Timing,
) -> Result<Option<RunRecord>, FerryError> {
    let mut run = stored_run(ports, taker.lane, id).await?;
    if taker.generation == 0 {
        // Counted first: whatever fails next, the count of runners the run stopped grows.
        run.adoptions = ports.adopted(&run).await?;
    }
    if run.state != RunState::Claimed || run.adoptions > MAX_ADOPTIONS {
        return Ok(Some(run));
    }
    // A claim can die between writing the run and taking its last job: the run is what it
    // took (each job's move and member record are one write).
    let members = ports.members(taker.lane, id, MAX_JOBS_PER_RUN + 1).await?;
    if members.len() == run.job_count {
        return Ok(Some(run));
    }
    let ids: Vec<JobId> = members.into_iter().map(|m| m.id).collect();
    let kept = ports.queued(taker.lane, &ids).await?;
    settle(ports, limits, (run, kept), taker.owner, timing.now).await
}

/// Settles a claimed run on the jobs it holds (`kept`, oldest first): merged again, since some
/// of the planned ones are not among them; a job the new merge leaves out goes back to the
/// lane. A run that holds no job is finished at once (`None`).
async fn settle<P: LaneRuns>(
    ports: &P,
    limits: &Limits,
    (mut run, kept): (RunRecord, Vec<QueuedJob>),
    owner: &str,
    now: Millis,
) -> Result<Option<RunRecord>, FerryError> {
    let Some(again) = plan(&kept, limits, &run.lane, run.id.clone(), run.claimed_at) else {
        run.job_count = 0;
        run.ended_at = Some(now);
        ports.finish(owner, &run, JobState::Canceled).await?;
        return Ok(None);
    };
    let left: Vec<QueuedJob> = kept
        .iter()
        .enumerate()
        .filter(|(i, _)| !again.taken.contains(i))
        .map(|(_, job)| job.clone())
        .collect();
    if !left.is_empty() {
        ports.return_jobs(&run, &left).await?;
    }
    run.spec = again.run.spec;
    run.job_count = again.run.job_count;
    run.token = again.run.token;
    run.deadline = again.run.deadline;
    ports.update(&run).await?;
    Ok(Some(run))
}

/// The run `id` of `lane`, which the lane table must hold.
pub(crate) async fn stored_run<P: ReadRuns>(
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
) -> Result<Vec<JobId>, FerryError> {
    if expired.is_empty() {
        return Ok(Vec::new());
    }
    let end = JobEnd {
        state: JobState::TimedOut,
        at: now,
        cancel: None,
    };
    ports.end_pending(&expired, end).await
}

/// A run planned from pending jobs: its record, and which of them (by index) it covers.
struct Planned {
    run: RunRecord,
    taken: Vec<usize>,
}

/// The run that merges the oldest of `live` with every compatible job that fits, at most
/// [`MAX_JOBS_PER_RUN`] of them, within the spec budget.
fn plan(
    live: &[QueuedJob],
    limits: &Limits,
    lane: &LaneId,
    id: RunId,
    now: Millis,
) -> Option<Planned> {
    let candidates: Vec<Candidate> = live
        .iter()
        .take(MAX_JOBS_PER_RUN)
        .map(|job| Candidate {
            spec: &job.spec,
            collapse_root: job.collapse_root.as_deref(),
        })
        .collect();
    let merged = merge(&candidates, limits)?;
    let deadline = merged.taken.iter().map(|&i| live[i].deadline).max()?;
    let token = IdempotencyKey::derive(Some(&id.0), &merged.spec).to_string();
    let run = RunRecord {
        id,
        lane: lane.clone(),
        state: RunState::Claimed,
        spec: merged.spec,
        job_count: merged.taken.len(),
        token,
        task: None,
        claimed_at: now,
        deadline,
        started_at: None,
        ended_at: None,
        cancel: None,
        canceled_outside: None,
        adoptions: 0,
        start_attempted: None,
    };
    Some(Planned {
        run,
        taken: merged.taken,
    })
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
    run.ended_at = Some(timing.now);
    ports.finish(owner, &run, state).await?;
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
    // Read before the look: an entry that queues a job after it renews the registration, so
    // the idle mark, conditional on what was read here, cannot hide that job from the sweep.
    let seen = ports.registration(lane).await?.and_then(|r| r.last_job);
    match ports.release(lane, owner).await {
        Ok(()) => {}
        // A retried Release whose first attempt landed (its answer lost): the lease is gone,
        // or taken by the runner a kick started since, which carries on. Look as the first
        // attempt would have, or the lane would wait for the sweep with a job in it.
        Err(FerryError::LeaseLost { .. }) => match ports.lane(lane).await?.lease {
            Some(held) if held.owner == owner => {
                return Err(FerryError::LeaseLost {
                    lane: lane.to_string(),
                    owner: owner.to_owned(),
                });
            }
            Some(held) if held.until > timing.now => return Ok(false),
            _ => {}
        },
        Err(e) => return Err(e),
    }
    if ports.pending(lane, 1, 0).await?.is_empty() {
        ports.mark_idle(lane, seen.as_ref(), timing.now).await?;
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
/// `generation` only (not the clock), so a retried hand-over names the same execution: the
/// port accepts a lease already passed to it, and Step Functions answers a name in use, with
/// the same input, with that execution (issue 25: a retry named another execution, found the
/// lease gone and ended `LaneLost`, leaving the lane to the lease's expiry and the sweep).
pub async fn hand_over<P: LaneLease>(
    ports: &P,
    (lane, owner): (&LaneId, &str),
    generation: u64,
    timing: Timing,
) -> Result<RunnerInput, FerryError> {
    let next = continuation_name(lane, owner, generation);
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
        settle_seconds: 0,
    })
}

/// How long a replacement runner waits before its first step: longer than any runner step's
/// Lambda timeout that acts on a task (start-task, task-status and cancel-task: 30 s), since
/// Step Functions does not stop a Lambda invocation in flight when it stops the execution. A
/// step the stopped runner had in flight has ended before the replacement acts; its later
/// steps never come, and its lease is the replacement's.
pub const SETTLE_SECONDS: u32 = 40;

/// The name of the runner that replaces the stopped runner `stopped` of `lane`:
/// `lane-<lane digest>-r-<digest of the stopped one>`, 48 characters. It derives from the
/// stopped runner alone, so a stop event delivered twice names the same replacement.
pub fn replacement_name(lane: &LaneId, stopped: &str) -> String {
    named(lane, "r", stopped)
}

/// Replaces the runner `stopped` of `lane`, whose execution ended without releasing the lane
/// or handing it over (aborted, failed or timed out; Step Functions' status change event says
/// so): its lease passes at once to a replacement, which waits [`SETTLE_SECONDS`] and adopts
/// the run in flight. Without this, the lane waited for the lease to expire and the sweep
/// (issue 25: p95 906 s). A lease that is not the stopped runner's any more (released, handed
/// over, or expired and taken) is left to its holder; a free one gets a plain [`kick`].
///
/// The lease is read first and passed on only while the stopped runner holds it: a stop event
/// delivered again after the replacement ran and stopped in turn must not give the lane back
/// to that dead replacement (found by the lane protocol's simulation, seed 0: the hand-over
/// accepts a lease its target holds, for retried hand-overs, and Step Functions answers a
/// used name as started, so the lane stayed with a dead runner for another lease).
pub async fn replace<L: LaneLease + LaneView, S: StartExecution>(
    (lanes, runners): (&L, &S),
    lane: &LaneId,
    stopped: &str,
    timing: Timing,
) -> Result<Kicked, FerryError> {
    let held = lanes.lane(lane).await?.lease;
    if held.is_none_or(|lease| lease.owner != stopped) {
        return kick((lanes, runners), lane, timing, stopped).await;
    }
    let owner = replacement_name(lane, stopped);
    let to = LeaseRequest {
        lane: lane.clone(),
        owner: owner.clone(),
        now: timing.now,
        until: timing.until(),
    };
    match lanes.hand_over(stopped, &to).await {
        Ok(()) => {}
        Err(FerryError::LeaseLost { .. }) => {
            return kick((lanes, runners), lane, timing, stopped).await;
        }
        Err(e) => return Err(e),
    }
    let input = RunnerInput {
        lane: lane.clone(),
        owner: owner.clone(),
        generation: 0,
        settle_seconds: SETTLE_SECONDS,
    };
    // Plain data: serializing cannot fail.
    let text = serde_json::to_string(&input).unwrap_or_default();
    // A start that fails is an error: the event is delivered again (Lambda retries an
    // asynchronous invocation), names the same replacement, and finds the lease its own.
    runners.start_execution(&owner, &text).await?;
    Ok(Kicked::Started { owner })
}

/// Most lanes the sweep visits at once: each visit is two reads (the lane, its oldest job)
/// and maybe a kick; ten thousand lanes take a thousand rounds of a few milliseconds.
pub const SWEEP_CONCURRENCY: usize = 16;

/// What the sweep did.
#[derive(Debug, Default)]
pub struct Swept {
    /// Lanes registered (idle ones included).
    pub registered: usize,
    /// Lanes with work left unvisited when the sweep's time ran out: the next sweep, which
    /// starts elsewhere in the registry, visits them.
    pub unvisited: usize,
    /// Each lane visited (not idle) and how long its oldest pending job has waited, in
    /// seconds (0: none waits): the oldest-pending alarm's metric.
    pub oldest: Vec<(LaneId, u64)>,
    /// The lanes kicked, and what each kick did.
    pub kicked: Vec<(LaneId, Kicked)>,
    /// The lanes whose visit failed, and why; the others were visited all the same.
    pub failed: Vec<(LaneId, FerryError)>,
}

/// Kicks every lane whose runner is gone (its lease expired) while work is left: a run in
/// flight to finish or jobs pending. Lanes their runner released idle are passed by (an entry
/// that queues a job there renews them); the others are visited [`SWEEP_CONCURRENCY`] at a
/// time, and one that fails does not keep the sweep from the rest. No visit starts past
/// `until` (the function's deadline, less a margin): the sweep ends in time whatever the
/// number of lanes, and each sweep starts at another place in the registry (it turns with the
/// clock), so lanes a sweep did not reach are reached by the next.
pub async fn sweep<L: LaneView + LaneLease, S: StartExecution>(
    (lanes, runners): (&L, &S),
    (timing, until): (Timing, Millis),
    salt: &str,
    clock: impl Fn() -> Millis,
) -> Result<Swept, FerryError> {
    use futures_util::stream::{self, StreamExt};
    let registered = lanes.lanes(timing.now).await?;
    let mut swept = Swept {
        registered: registered.len(),
        ..Swept::default()
    };
    let mut working: Vec<LaneId> = registered
        .into_iter()
        .filter(|r| !r.idle)
        .map(|r| r.lane)
        .collect();
    if !working.is_empty() {
        let turn = usize::try_from(timing.now / 1000).unwrap_or_default() % working.len();
        working.rotate_left(turn);
    }
    let clock = &clock;
    let visits = stream::iter(working)
        .map(|lane| async move {
            if clock() >= until {
                return (lane, None);
            }
            let visit = visit((lanes, runners), &lane, timing, salt).await;
            (lane, Some(visit))
        })
        .buffer_unordered(SWEEP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for (lane, visit) in visits {
        let Some(visit) = visit else {
            swept.unvisited += 1;
            continue;
        };
        match visit {
            Ok((age, kicked)) => {
                swept.oldest.push((lane.clone(), age));
                if let Some(kicked) = kicked {
                    swept.kicked.push((lane, kicked));
                }
            }
            Err(e) => swept.failed.push((lane, e)),
        }
    }
    swept.oldest.sort();
    swept.kicked.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(swept)
}

/// One lane's visit: how long its oldest pending job has waited, and the kick it needed (its
/// lease expired while work is left).
async fn visit<L: LaneView + LaneLease, S: StartExecution>(
    (lanes, runners): (&L, &S),
    lane: &LaneId,
    timing: Timing,
    salt: &str,
) -> Result<(u64, Option<Kicked>), FerryError> {
    let state = lanes.lane(lane).await?;
    let oldest = lanes.pending(lane, 1, 0).await?;
    let age = oldest
        .first()
        .map_or(0, |job| timing.now.saturating_sub(job.enqueued_at) / 1000);
    let held = state.lease.as_ref().is_some_and(|l| l.until >= timing.now);
    if held || (state.run.is_none() && oldest.is_empty()) {
        return Ok((age, None));
    }
    let kicked = kick((lanes, runners), lane, timing, salt).await?;
    Ok((age, Some(kicked)))
}

/// What cancelling a job did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cancel", rename_all = "snake_case")]
pub enum Cancelled {
    /// It was pending: it ended canceled and will never run.
    WhilePending,
    /// It is running in `run`: the run's task is cancelled at its next status check (or not
    /// started at all), and every job of the run (`jobs` of them) ends canceled with it.
    RunCancelRequested { run: RunId, jobs: usize },
    /// It had ended already, in `state`.
    AlreadyEnded { state: JobState },
}

/// A cancel, and the report it still owes.
#[derive(Debug, Clone, PartialEq)]
pub struct Cancel {
    pub done: Cancelled,
    /// A job that ended canceled while pending: the report [`report_canceled`] sends. Also for
    /// a job found already ended that way, since the cancel that ended it may have stopped
    /// before sending it (sending twice reports once).
    pub report: Option<EndedPending>,
    /// When the job was enqueued: it names this enqueue of the job apart from an earlier one
    /// under the same id (a caller's id submitted again after the table forgot the first), so
    /// the report's execution name is its own.
    pub enqueued_at: Millis,
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
    let report = || EndedPending {
        lane: found.job.lane.clone(),
        jobs: vec![id.clone()],
    };
    if found.state == JobState::Pending {
        let end = JobEnd {
            state: JobState::Canceled,
            at: now,
            cancel: Some(request.clone()),
        };
        if ports
            .end_pending(std::slice::from_ref(&found.job), end)
            .await?
            .contains(id)
        {
            return Ok(Cancel {
                done: Cancelled::WhilePending,
                report: Some(report()),
                enqueued_at: found.job.enqueued_at,
                wake: None,
            });
        }
        // A runner took it meanwhile (or another cancel ended it): look again.
        found = ports.job(id).await?.ok_or_else(not_found)?;
    }
    let enqueued_at = found.job.enqueued_at;
    match (found.state, found.run.clone()) {
        (JobState::Running, Some(run_id)) => {
            cancel_run(ports, &found.job.lane, run_id, request, enqueued_at).await
        }
        (JobState::Canceled, None) => Ok(Cancel {
            done: Cancelled::AlreadyEnded {
                state: JobState::Canceled,
            },
            report: Some(EndedPending {
                lane: found.job.lane.clone(),
                jobs: vec![id.clone()],
            }),
            enqueued_at,
            wake: None,
        }),
        (state, _) => Ok(Cancel {
            done: Cancelled::AlreadyEnded { state },
            report: None,
            enqueued_at,
            wake: None,
        }),
    }
}

/// Marks the run in flight `run_id` of `lane` cancelled (once: the first request stands): its
/// runner cancels the task at its next status check, or does not start it.
async fn cancel_run<P: LaneView + LaneRuns>(
    ports: &P,
    lane: &LaneId,
    run_id: RunId,
    request: CancelRequest,
    enqueued_at: Millis,
) -> Result<Cancel, FerryError> {
    let mut run = stored_run(ports, lane, &run_id).await?;
    if run.cancel.is_none() {
        run.cancel = Some(request);
        ports.update(&run).await?;
    }
    let wake = match &run.task {
        Some(TaskHandle::Datasync { task_execution_arn }) => Some(task_execution_arn.clone()),
        _ => None,
    };
    Ok(Cancel {
        done: Cancelled::RunCancelRequested {
            run: run_id,
            jobs: run.job_count,
        },
        report: None,
        enqueued_at,
        wake,
    })
}

/// Jobs of one lane that ended pending (their deadline passed, or someone cancelled them), to
/// report one by one: `notify` reads each from the lane table. By reference: at most
/// [`MAX_EXPIRED_PER_TAKE`] ids (about 3 KB), however large the jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndedPending {
    pub lane: LaneId,
    pub jobs: Vec<JobId>,
}

/// The input of the runner execution that only reports jobs cancelled while pending (the
/// state machine sends `canceled` to notify and ends; it takes no lease).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CanceledInput {
    pub canceled: EndedPending,
}

/// Sends the report of a job cancelled while pending: a runner execution named after the job
/// and when it was enqueued reports it. The name makes it once: Step Functions refuses a name
/// used in the last 90 days (`ExecutionAlreadyExists`, API reference, StartExecution), so a
/// second cancel of the job sends nothing twice. The enqueue time in the name keeps apart a
/// job whose id comes back after the lane table forgot it (30 days; a caller's id submitted
/// again): its own cancel is reported, not refused as the first one's (issue 25).
pub async fn report_canceled<S: StartExecution>(
    runners: &S,
    report: &EndedPending,
    enqueued_at: Millis,
) -> Result<StartOutcome, FerryError> {
    let input = CanceledInput {
        canceled: report.clone(),
    };
    // Plain data: serializing cannot fail. Two ids and a lane: far within the 256 KiB an
    // execution's input may be.
    let text = serde_json::to_string(&input).unwrap_or_default();
    let name = report.jobs.first().map_or_else(
        || "cancel-none".to_owned(),
        |id| canceled_name(id, enqueued_at),
    );
    runners.start_execution(&name, &text).await
}

/// Starts again the report of a job cancelled while pending whose execution `stopped` ended
/// before reporting (stopped by hand, or notify failing past its retries): its status change
/// event says so. The new execution's name derives from the stopped one's, so a second
/// delivery of the event starts nothing more; the report may then go out twice (reports are
/// at least once). Found by the lane protocol's simulation (seed 9): the report was lost, and
/// a second cancel could not send it (its name was taken).
pub async fn report_canceled_again<S: StartExecution>(
    runners: &S,
    stopped: &str,
    input: &CanceledInput,
) -> Result<String, FerryError> {
    let name = format!(
        "cancel-again-{}",
        hex(&Sha256::digest(stopped.as_bytes()), 24)
    );
    // Plain data: serializing cannot fail.
    let text = serde_json::to_string(input).unwrap_or_default();
    runners.start_execution(&name, &text).await?;
    Ok(name)
}

/// `cancel-<job digest>-<enqueued at>`: StartExecution's `name` takes at most 80 letters,
/// digits, `-` and `_`; a job id is always `job-` and 56 hex digits ([`JobId::parse`]) and
/// epoch milliseconds 13 digits until the year 2286, so this is 77.
pub fn canceled_name(id: &JobId, enqueued_at: Millis) -> String {
    let digest = id.as_str().trim_start_matches("job-");
    format!("cancel-{digest}-{enqueued_at}")
}

// Over the in-memory lane table, which the `test-util` feature builds (`cargo test --workspace`
// enables it through the tests package).
#[cfg(all(test, feature = "test-util"))]
mod tests;
