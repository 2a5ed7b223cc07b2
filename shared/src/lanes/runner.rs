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
//! - [`sweep`](fn@sweep): kick every lane whose runner is gone while work is left.
//! - [`cancel`](fn@cancel): cancel a job: a pending one ends at once, a running one's run is
//!   cancelled.
//! - [`report_canceled`]: start the runner execution that reports a job cancelled while pending.
//!
//! Every runner step renews the lease first: a runner that no longer holds it stops
//! ([`FerryError::LeaseLost`]).
//!
//! Here: the runner's names and its lease ([`kick`], [`release`], [`hand_over`], [`replace`]).
//! Taking and finishing a run are in `run.rs`, the sweep in `sweep.rs`, cancels in `cancel.rs`.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::LaneId;
use super::record::{LeaseRequest, Leased, Millis};
use crate::domain::text::hex;
use crate::error::FerryError;
use crate::ports::{LaneLease, LaneView, StartExecution, StartOutcome};

mod cancel;
mod run;
mod sweep;

pub use cancel::{
    Cancel, CanceledInput, Cancelled, EndedPending, cancel, canceled_name, report_canceled,
    report_canceled_again,
};
pub(crate) use run::stored_run;
pub use run::{
    MAX_EXPIRED_PER_TAKE, MAX_PENDING_READ, PENDING_READ_BYTES, Taken, Taker, finish, take,
};
pub use sweep::{SWEEP_CONCURRENCY, Swept, sweep};

/// Most times a run is adopted after its runner stopped without handing it over, before it is
/// abandoned: reported failed, its task cancelled, its jobs ended, the lane freed. A run that
/// stops every runner that follows it (a bug, a payload AWS refuses, a step that can never
/// succeed) must not hold its lane for ever.
pub const MAX_ADOPTIONS: u32 = 3;

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

// Over the in-memory lane table, which the `test-util` feature builds (`cargo test --workspace`
// enables it through the tests package).
#[cfg(all(test, feature = "test-util"))]
mod tests;
