//! A run's life on its lane: [`take`] adopts the run in flight, or claims a new one of the
//! pending jobs that merge with the oldest; [`finish`] ends its jobs and frees the lane.

use super::{MAX_ADOPTIONS, Timing};
use crate::domain::job::Limits;
use crate::error::FerryError;
use crate::lanes::merge::{Candidate, merge};
use crate::lanes::record::{JobEnd, JobState, Millis, QueuedJob, RunId, RunRecord, RunState};
use crate::lanes::{JobId, LaneId, MAX_JOBS_PER_RUN};
use crate::ports::{LaneLease, LaneRuns, LaneView, ReadQueued, ReadRuns};

/// Most pending jobs one take reads (and so may merge): a run covers at most
/// [`MAX_JOBS_PER_RUN`] anyway; the rest wait for the next run.
pub const MAX_PENDING_READ: usize = MAX_JOBS_PER_RUN;

/// Most expired jobs one take ends (and so one `NotifyExpired` reports): their ids travel in
/// the runner's state; the next take ends the rest.
pub const MAX_EXPIRED_PER_TAKE: usize = 50;

/// Most bytes of pending jobs one take reads (and so may merge): the lane function's memory
/// holds them. At the typical 1-3 KB a job, [`MAX_PENDING_READ`] jobs fit many times over; at
/// the largest a job may be ([`crate::budget::SPEC_BYTES`]), about fifty do, and the rest wait
/// for the next run. The oldest job is always read.
pub const PENDING_READ_BYTES: usize = 16 * 1024 * 1024;

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
pub(super) async fn settle<P: LaneRuns>(
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
pub(super) struct Planned {
    pub(super) run: RunRecord,
    taken: Vec<usize>,
}

/// The run that merges the oldest of `live` with every compatible job that fits, at most
/// [`MAX_JOBS_PER_RUN`] of them, within the spec budget.
pub(super) fn plan(
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
    let run = RunRecord::claimed(
        (id, lane.clone()),
        (merged.spec, merged.taken.len()),
        (now, deadline),
    );
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
