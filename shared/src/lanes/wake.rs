//! DataSync runs end the moment DataSync says so. DataSync sends "DataSync Task Execution State
//! Change" events to EventBridge, best effort (EventBridge events reference, AWS DataSync
//! events); FSx sends none for data repository tasks, so only DataSync runs wait this way.
//!
//! A runner following a DataSync run waits in a callback state (`.waitForTaskToken`) instead of
//! polling: [`park`] leaves its task token in the run's wake slot (lane table). Three things
//! complete it ([`wake`]): the run's end event (`datasync-event`), the check (`datasync-event`
//! on a schedule: an execution that ended without its event), and a cancel asked for one of
//! the run's jobs (`submit`). The runner then describes the execution and decides from that, as
//! it always did: an event is a reason to look, never the answer.
//!
//! A wake that comes while no runner waits (between two waits, or before the first) is noted in
//! the slot, and the next [`park`] returns at once. Each change to a slot is one conditional
//! write, so a park and a wake cannot miss each other. Duplicate, late and out-of-order wakes
//! cost at most one extra status check; a token whose task no longer waits is not an error.
//!
//! The safety net: the runner's wait has `HeartbeatSeconds` = `FERRY_DATASYNC_FALLBACK_POLL_SECONDS`
//! (900 by default) and ends at the run's deadline. The check heartbeats every waiting runner
//! whose execution still runs (`SendTaskHeartbeat` adds nothing to the execution's history, API
//! reference) and renews its lease; without any news for a whole fallback period (no event, no
//! check), the wait times out and the runner checks the execution itself.

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::record::Millis;
use crate::domain::status::Phase;
use crate::error::FerryError;
use crate::ids::DataSyncExecutionArn;
use crate::ports::{
    DescribeExecution, KeepRunnersWaiting, LaneLease, Noted, Parked, TokenAnswer, WakeRunners,
    WakeSlot, WakeSlots,
};

/// How a wake went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Woke {
    /// The waiting runner's task was completed: it checks the execution now.
    Runner,
    /// The token was taken but its task no longer waited (it timed out, or its execution
    /// ended): that runner is already checking, or gone.
    Stale,
    /// No runner waited: the next one to wait returns at once.
    Noted,
    /// No run of Ferry's has this execution.
    Unknown,
}

/// A waiting runner's task output: who woke it (the runner logs it; it decides from
/// `DescribeTaskExecution`, whatever the wake said).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WakeNote {
    pub woken_by: String,
}

fn note(why: &str) -> String {
    let note = WakeNote {
        woken_by: why.to_owned(),
    };
    // Plain data: serializing cannot fail.
    serde_json::to_string(&note).unwrap_or_default()
}

/// Rounds of take-or-note before giving up: each round fails only because a runner parked or
/// took its token between two writes, which a live lane does once.
const WAKE_ROUNDS: usize = 4;

/// Wakes the runner waiting for `execution`, or notes the wake for the next one (`why` goes in
/// its task's output).
pub async fn wake<P: WakeSlots, S: WakeRunners>(
    (slots, runners): (&P, &S),
    execution: &DataSyncExecutionArn,
    why: &str,
    now: Millis,
) -> Result<Woke, FerryError> {
    for _ in 0..WAKE_ROUNDS {
        if let Some(slot) = slots.take_token(execution, now).await? {
            let token = slot.token.unwrap_or_default();
            let answer = runners.wake_runner(&token, &note(why)).await?;
            info!(execution = %execution, run = %slot.run, why, answer = ?answer, "runner woken");
            return Ok(match answer {
                TokenAnswer::Taken => Woke::Runner,
                TokenAnswer::Stale => Woke::Stale,
            });
        }
        match slots.note_wake(execution, now).await? {
            Noted::Noted => return Ok(Woke::Noted),
            Noted::Unknown => return Ok(Woke::Unknown),
            Noted::TokenAppeared => continue,
        }
    }
    Err(FerryError::TaskConflict {
        message: format!(
            "the wake slot of {execution} changed {WAKE_ROUNDS} times while waking its runner; try again"
        ),
        source: None,
    })
}

/// A runner's wait, as the state machine's `AwaitEnd` asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub slot: WakeSlot,
    /// How long the wait may last in all (the run's deadline).
    pub timeout_seconds: u64,
    pub lease_ms: Millis,
    pub now: Millis,
}

/// Parks a runner's token in its run's wake slot, after renewing its lease for the whole
/// heartbeat period (the check renews it again while the execution runs). A wake noted before
/// completes the token at once (the runner's own task; Step Functions then ends its wait).
pub async fn park<P: WakeSlots + LaneLease, S: WakeRunners>(
    (lanes, runners): (&P, &S),
    wait: &Wait,
) -> Result<Parked, FerryError> {
    let slot = &wait.slot;
    let until = lease_until(slot, wait.now, wait.lease_ms);
    lanes.renew(&slot.lane, &slot.owner, until).await?;
    let expires = slot_expiry(wait.now, wait.timeout_seconds);
    let parked = lanes.park(slot, expires).await?;
    if parked == Parked::AlreadyWoken {
        let token = slot.token.as_deref().unwrap_or_default();
        runners
            .wake_runner(token, &note("a wake that came while no runner waited"))
            .await?;
    }
    info!(execution = %slot.execution, run = %slot.run, parked = ?parked, heartbeat_seconds = slot.heartbeat_seconds, "runner waits");
    Ok(parked)
}

/// A waiting runner's lease: a whole heartbeat period, then the lease as after any step.
fn lease_until(slot: &WakeSlot, now: Millis, lease_ms: Millis) -> Millis {
    let heartbeat_ms = Millis::from(slot.heartbeat_seconds) * 1000;
    now.saturating_add(heartbeat_ms).saturating_add(lease_ms)
}

/// A slot outlives the longest wait by a day (DynamoDB deletes expired items within days).
pub fn slot_expiry(now: Millis, timeout_seconds: u64) -> Millis {
    now.saturating_add(timeout_seconds.saturating_mul(1000))
        .saturating_add(24 * 3600 * 1000)
}

/// What one check did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    /// Runners waiting.
    pub waiting: usize,
    /// Runners woken: their execution had ended without its event reaching them.
    pub woken: usize,
    /// Runners told to keep waiting (heartbeat sent, lease renewed).
    pub kept_waiting: usize,
    /// Tokens whose task no longer waited.
    pub stale: usize,
}

/// The check: every waiting runner's execution described; one that ended wakes its runner (its
/// event was lost or late), one that runs gets a heartbeat and its runner's lease renewed. An
/// execution that cannot be described is skipped and fails the check at the end (the others
/// are still checked).
pub async fn check<P, S, D>(
    (slots, runners, executions): (&P, &S, &D),
    lease_ms: Millis,
    now: Millis,
) -> Result<Checked, FerryError>
where
    P: WakeSlots + LaneLease,
    S: WakeRunners + KeepRunnersWaiting,
    D: DescribeExecution,
{
    let waiting = slots.waiting().await?;
    let mut checked = Checked {
        waiting: waiting.len(),
        ..Checked::default()
    };
    let mut failed = None;
    for slot in waiting {
        match check_one((slots, runners, executions), &slot, lease_ms, now).await {
            Ok(Seen::Woken) => checked.woken += 1,
            Ok(Seen::Gone) => checked.stale += 1,
            Ok(Seen::KeptWaiting) => checked.kept_waiting += 1,
            Err(e) => {
                warn!(execution = %slot.execution, error = %e, "check failed");
                failed = Some(e);
            }
        }
    }
    info!(
        waiting = checked.waiting,
        woken = checked.woken,
        kept_waiting = checked.kept_waiting,
        stale = checked.stale,
        "checked"
    );
    match failed {
        Some(e) => Err(e),
        None => Ok(checked),
    }
}

/// What the check did for one waiting runner.
enum Seen {
    Woken,
    /// Its token no longer waited (or was taken meanwhile).
    Gone,
    KeptWaiting,
}

async fn check_one<P, S, D>(
    (slots, runners, executions): (&P, &S, &D),
    slot: &WakeSlot,
    lease_ms: Millis,
    now: Millis,
) -> Result<Seen, FerryError>
where
    P: WakeSlots + LaneLease,
    S: WakeRunners + KeepRunnersWaiting,
    D: DescribeExecution,
{
    let snapshot = executions.describe_execution(&slot.execution).await?;
    if Phase::from_datasync(&snapshot.lifecycle, false).is_terminal() {
        let why = format!("the check: the execution is {}", snapshot.lifecycle);
        let woke = wake((slots, runners), &slot.execution, &why, now).await?;
        return Ok(if woke == Woke::Runner {
            Seen::Woken
        } else {
            Seen::Gone
        });
    }
    let token = slot.token.as_deref().unwrap_or_default();
    if runners.keep_waiting(token).await? == TokenAnswer::Stale {
        return Ok(Seen::Gone);
    }
    match slots
        .renew(&slot.lane, &slot.owner, lease_until(slot, now, lease_ms))
        .await
    {
        Err(FerryError::LeaseLost { .. }) => {
            warn!(execution = %slot.execution, owner = %slot.owner, "a waiting runner no longer holds its lane");
        }
        other => other?,
    }
    Ok(Seen::KeptWaiting)
}
