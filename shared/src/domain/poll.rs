//! Adaptive polling: how long the state machine waits before asking for a task's status again.
//!
//! FSx publishes no events for data repository tasks and Step Functions has no `.sync`
//! integration for FSx or DataSync, so Ferry polls. Standard workflows bill per state transition
//! (one poll = Wait + GetStatus + the history counter + Choice = 4 transitions in the lane
//! runner), so a fixed 30-second poll over a 6-hour task costs 720 polls, about 2,880 transitions. Ferry instead waits a fraction of the task's age
//! ([`AGE_FRACTION`]): short at first, when small tasks finish, and geometrically longer as the task
//! proves long. When progress is observable it also estimates the time left and never waits past
//! it, nor past the job's deadline. Each wait is clamped to the job's `[min, max]` bounds
//! (defaults 15 s and 600 s). [`simulate`] counts the cost; `docs/state-machine.md` and
//! `docs/performance.md` quote its figures.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

/// Bounds accepted for `poll.min_seconds` and `poll.max_seconds`.
pub const ALLOWED_SECONDS: RangeInclusive<u32> = 5..=3600;
/// Default first (and shortest) wait.
pub const DEFAULT_MIN_SECONDS: u32 = 15;
/// Default longest wait: a finished task is noticed at most 10 minutes late.
pub const DEFAULT_MAX_SECONDS: u32 = 600;
/// Wait this fraction of the task's age: 0.2 grows each wait by 20 %.
pub const AGE_FRACTION: f64 = 0.2;
/// State transitions per poll in the runner's loop: WaitPoll, GetStatus, CountPoll, IsDone.
pub const TRANSITIONS_PER_POLL: u64 = 4;

/// The bounds of the polling interval, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollSettings {
    pub min_seconds: u32,
    pub max_seconds: u32,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            min_seconds: DEFAULT_MIN_SECONDS,
            max_seconds: DEFAULT_MAX_SECONDS,
        }
    }
}

/// What the schedule knows about the task when choosing the next wait.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollInput {
    /// Seconds since the task was created (FSx `CreationTime`, DataSync `StartTime`).
    pub age_seconds: u64,
    /// Observed completion in `[0, 1]`, when the service reports it.
    pub progress: Option<f64>,
    /// The task is being cancelled: cancellation is short, so poll at the minimum.
    pub canceling: bool,
    /// Seconds left before the job's timeout, when one applies.
    pub seconds_to_deadline: Option<u64>,
}

/// Seconds to wait before the next status check.
pub fn next_poll_seconds(settings: PollSettings, input: PollInput) -> u32 {
    let min = settings.min_seconds.max(1);
    let max = settings.max_seconds.max(min);
    if input.canceling {
        return min;
    }
    let mut wait = input.age_seconds as f64 * AGE_FRACTION;
    if let Some(progress) = input.progress
        && progress > 0.0
        && progress < 1.0
    {
        // Linear estimate of the time left; waiting for it (when shorter) catches the end.
        let remaining = input.age_seconds as f64 * (1.0 - progress) / progress;
        wait = wait.min(remaining);
    }
    if let Some(deadline) = input.seconds_to_deadline {
        wait = wait.min(deadline as f64);
    }
    // `as` saturates on overflow and maps NaN to 0: no panic on any input.
    (wait.ceil() as u64).clamp(u64::from(min), u64::from(max)) as u32
}

/// What polling a task of a given duration costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PollCost {
    /// Status checks until the task's end is observed.
    pub polls: u64,
    /// State transitions those polls cost.
    pub transitions: u64,
    /// How late the end was noticed, in seconds.
    pub detection_delay_seconds: u64,
}

/// Counts the polls the adaptive schedule makes for a task lasting `duration_seconds`; with
/// `linear_progress`, the task reports progress growing linearly (the best case for estimates).
pub fn simulate(settings: PollSettings, duration_seconds: u64, linear_progress: bool) -> PollCost {
    let mut now = 0u64;
    let mut polls = 0u64;
    loop {
        let progress = (linear_progress && duration_seconds > 0)
            .then(|| (now as f64 / duration_seconds as f64).min(1.0));
        now += u64::from(next_poll_seconds(
            settings,
            PollInput {
                age_seconds: now,
                progress,
                canceling: false,
                seconds_to_deadline: None,
            },
        ));
        polls += 1;
        if now >= duration_seconds {
            return PollCost {
                polls,
                transitions: polls * TRANSITIONS_PER_POLL,
                detection_delay_seconds: now - duration_seconds,
            };
        }
    }
}

/// The cost of a fixed-interval poll, for comparison.
pub fn fixed_cost(interval_seconds: u64, duration_seconds: u64) -> PollCost {
    let polls = duration_seconds.div_ceil(interval_seconds).max(1);
    PollCost {
        polls,
        transitions: polls * TRANSITIONS_PER_POLL,
        detection_delay_seconds: polls * interval_seconds - duration_seconds,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(age_seconds: u64) -> PollInput {
        PollInput {
            age_seconds,
            progress: None,
            canceling: false,
            seconds_to_deadline: None,
        }
    }

    /// The wait after `input` with the default settings.
    fn wait(input: PollInput) -> u32 {
        next_poll_seconds(PollSettings::default(), input)
    }

    #[test]
    fn starts_at_the_minimum() {
        assert_eq!([0, 60].map(|age| wait(input(age))), [15, 15]);
    }

    #[test]
    fn grows_with_age_then_caps() {
        let ages = [500, 2_000, 10_000, u64::MAX];
        assert_eq!(ages.map(|age| wait(input(age))), [100, 400, 600, 600]);
    }

    #[test]
    fn respects_the_jobs_bounds() {
        let s = PollSettings {
            min_seconds: 60,
            max_seconds: 120,
        };
        assert_eq!(next_poll_seconds(s, input(0)), 60);
        assert_eq!(next_poll_seconds(s, input(10_000)), 120);
        // Inverted bounds never panic: the minimum wins.
        let inverted = PollSettings {
            min_seconds: 90,
            max_seconds: 30,
        };
        assert_eq!(next_poll_seconds(inverted, input(10_000)), 90);
    }

    #[test]
    fn observed_progress_shortens_the_wait_near_the_end() {
        // 2000 s for 95 %: about 105 s left, shorter than 20 % of the age (400 s). Less progress,
        // or progress that means nothing, leaves 20 % of the age.
        for (progress, expected) in [(0.95, 106), (0.1, 400), (f64::NAN, 400)] {
            let observed = PollInput {
                progress: Some(progress),
                ..input(2_000)
            };
            assert_eq!(wait(observed), expected, "progress {progress}");
        }
    }

    #[test]
    fn never_waits_past_the_deadline_nor_while_canceling() {
        for (seconds_to_deadline, expected) in [(42, 42), (0, 15)] {
            let deadline = PollInput {
                seconds_to_deadline: Some(seconds_to_deadline),
                ..input(10_000)
            };
            assert_eq!(wait(deadline), expected, "{seconds_to_deadline} s left");
        }
        let canceling = PollInput {
            canceling: true,
            ..input(10_000)
        };
        assert_eq!(wait(canceling), 15);
    }

    #[test]
    fn a_six_hour_task_costs_under_a_tenth_of_fixed_30s_polling() {
        let six_hours = 6 * 3600;
        let fixed = fixed_cost(30, six_hours);
        assert_eq!(fixed.polls, 720);
        for linear in [false, true] {
            let adaptive = simulate(PollSettings::default(), six_hours, linear);
            assert!(
                adaptive.transitions * 10 < fixed.transitions,
                "{adaptive:?} vs {fixed:?}"
            );
            assert!(adaptive.detection_delay_seconds <= u64::from(DEFAULT_MAX_SECONDS));
        }
    }

    #[test]
    fn a_short_task_is_noticed_quickly() {
        let cost = simulate(PollSettings::default(), 45, false);
        assert!(cost.detection_delay_seconds <= 15, "{cost:?}");
    }
}
