//! What several commands share: finding a run from a job or run id, and a running task's
//! progress.

use ferry::domain::status::TaskSnapshot;
use ferry::lanes::record::{RunId, RunRecord};
use ferry::lanes::{JobId, LaneId};
use ferry::ports::LaneView;
use ferry::runtime::now_millis;
use serde::Serialize;

use crate::Failure;

/// A job id (`job-…`) or a run id (`run-…`), as people give them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Job(JobId),
    Run(RunId),
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, Failure> {
        if text.starts_with("run-") && text.len() > 4 {
            return Ok(Target::Run(RunId(text.to_owned())));
        }
        JobId::parse(text)
            .map(Target::Job)
            .map_err(|e| Failure::new(format!("{text}: not a job or run id ({e})")))
    }
}

/// A run and the lane it is in: every registered lane is looked at (a run id does not name its
/// lane).
pub async fn find_run<L: LaneView>(lanes: &L, id: &RunId) -> Result<(LaneId, RunRecord), Failure> {
    for registered in lanes.lanes(now_millis()).await? {
        if let Some(run) = lanes.run(&registered.lane, id).await? {
            return Ok((registered.lane, run));
        }
    }
    Err(Failure::new(format!(
        "not found: run {id} is in no lane of this table"
    )))
}

/// A running task's progress, as far as its service reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Progress {
    /// The service's lifecycle (`EXECUTING`, `TRANSFERRING`, ...).
    pub lifecycle: Option<String>,
    pub files_done: Option<i64>,
    pub files_total: Option<i64>,
    pub bytes: Option<i64>,
    /// From the share done so far and the time it took.
    pub eta_seconds: Option<u64>,
}

impl Progress {
    /// FSx counts files (`SucceededCount` of `TotalCount`); DataSync files transferred of the
    /// estimate, and bytes.
    pub fn of(snapshot: &TaskSnapshot, age_seconds: u64) -> Progress {
        let counts = &snapshot.counts;
        Progress {
            lifecycle: Some(snapshot.lifecycle.clone()),
            files_done: counts.succeeded.or(counts.files_transferred),
            files_total: counts.total.or(counts.estimated_files_to_transfer),
            bytes: counts.bytes_transferred.or(counts.bytes_written),
            eta_seconds: counts
                .progress()
                .filter(|p| *p > 0.0 && *p < 1.0)
                .map(|p| (age_seconds as f64 * (1.0 - p) / p).round() as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_told_apart_and_a_bad_one_named() {
        assert_eq!(
            Target::parse("run-abc").unwrap(),
            Target::Run(RunId("run-abc".into()))
        );
        let job = format!("job-{}", "a".repeat(56));
        assert!(matches!(Target::parse(&job), Ok(Target::Job(_))));
        let bad = Target::parse("nightly").unwrap_err().message;
        assert!(bad.starts_with("nightly: not a job or run id"), "{bad}");
        assert!(Target::parse("run-").is_err());
    }
}
