//! The sweep: [`sweep`] kicks every lane whose runner is gone while work is left.

use super::{Kicked, Timing, kick};
use crate::error::FerryError;
use crate::lanes::LaneId;
use crate::lanes::record::Millis;
use crate::ports::{LaneLease, LaneView, StartExecution};

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
