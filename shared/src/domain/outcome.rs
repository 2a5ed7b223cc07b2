//! How a job ended: what a run's report says and what its jobs become.

use serde::{Deserialize, Serialize};

/// How the job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Succeeded,
    Failed,
    Canceled,
    /// The job's `timeout_seconds` passed; Ferry cancelled the task.
    TimedOut,
    /// The task was never started: the start failed in a way retries could not fix.
    CouldNotStart,
}

impl Outcome {
    /// The upper-case word used in subjects and the `status` message attribute.
    pub fn as_upper(self) -> &'static str {
        match self {
            Outcome::Succeeded => "SUCCEEDED",
            Outcome::Failed => "FAILED",
            Outcome::Canceled => "CANCELED",
            Outcome::TimedOut => "TIMED_OUT",
            Outcome::CouldNotStart => "COULD_NOT_START",
        }
    }
}
