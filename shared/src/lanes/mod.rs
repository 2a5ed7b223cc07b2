//! Lanes: where tasks run one at a time, and the jobs that wait for them.
//!
//! FSx runs one data repository task per file system at a time (`DataRepositoryTaskExecuting`)
//! and DataSync one execution per task, so Ferry queues jobs per **lane** — a file system or a
//! DataSync task — and, whenever the lane frees, merges everything pending into the next run
//! ([`merge`]). This module holds what that is, independent of where the queue is kept:
//!
//! - [`LaneId`]: the lane a job runs in, and its key in the lane table.
//! - [`JobId`]: a job's identity, derived from its content and where it came from
//!   ([`JobSource`]), so enqueueing the same job twice (a redelivered upload batch, a schedule
//!   Scheduler delivered twice) adds nothing.
//! - [`merge`]: which pending jobs one run covers, and the task spec that does it.
//! - [`record`]: what the lane table keeps (queued jobs, runs, leases).
//! - [`runner`]: the runner's steps over the lane ports, the kick, the sweep and cancelling.
//!
//! The whole design, for people: `docs/lanes.md`.

pub mod intake;
pub mod merge;
pub mod record;
pub mod runner;
pub mod wake;

/// Most jobs one run covers: a run's record (its job list) must stay within DynamoDB's 400 KB
/// item limit, about 130 bytes a job.
pub const MAX_JOBS_PER_RUN: usize = 2_000;

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::job::{DataSyncTarget, JobSpec, Service, ValidJob};
use crate::domain::text::hex;
use crate::ids::{DataSyncTaskArn, FileSystemId, IdError};

/// Where tasks run one at a time. Serialized as its key (`fsx:fs-…`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum LaneId {
    /// An FSx for Lustre file system: one data repository task at a time.
    Fsx(FileSystemId),
    /// A DataSync task: one execution at a time.
    DataSync(DataSyncTaskArn),
    /// A DataSync task Ferry ensures from a definition, by the definition's name: the lane
    /// exists before the task does, and its one runner is the only one that ensures the task,
    /// so two jobs never create two tasks.
    DataSyncDefined(String),
}

impl LaneId {
    /// The lane a valid job runs in.
    pub fn of(job: &ValidJob) -> LaneId {
        match job.service() {
            Service::Fsx(fsx) => LaneId::Fsx(fsx.file_system_id.clone()),
            Service::DataSync(ds) => match &ds.target {
                DataSyncTarget::Task(arn) => LaneId::DataSync(arn.clone()),
                DataSyncTarget::Definition(def) => LaneId::DataSyncDefined(def.name.clone()),
            },
        }
    }

    /// Parses a lane's key (`fsx:fs-…`, `datasync:arn:…`, `datasync-task:<name>`), as
    /// [`fmt::Display`] writes it.
    pub fn parse(key: &str) -> Result<LaneId, IdError> {
        if let Some(name) = key.strip_prefix("datasync-task:")
            && !name.is_empty()
            && name.chars().count() <= 256
        {
            return Ok(LaneId::DataSyncDefined(name.to_owned()));
        }
        if let Some(id) = key.strip_prefix("fsx:") {
            return FileSystemId::parse(id).map(LaneId::Fsx);
        }
        if let Some(arn) = key.strip_prefix("datasync:") {
            return DataSyncTaskArn::parse(arn).map(LaneId::DataSync);
        }
        Err(IdError {
            expected: "a lane (fsx:<file system id>, datasync:<task ARN> or datasync-task:<name>)",
            got: crate::domain::text::truncate_chars(key, 200),
        })
    }
}

impl fmt::Display for LaneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LaneId::Fsx(id) => write!(f, "fsx:{id}"),
            LaneId::DataSync(arn) => write!(f, "datasync:{arn}"),
            LaneId::DataSyncDefined(name) => write!(f, "datasync-task:{name}"),
        }
    }
}

impl From<LaneId> for String {
    fn from(lane: LaneId) -> String {
        lane.to_string()
    }
}

impl TryFrom<String> for LaneId {
    type Error = IdError;

    fn try_from(key: String) -> Result<LaneId, IdError> {
        LaneId::parse(&key)
    }
}

/// Where a job came from: what makes two deliveries of it the same job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobSource {
    /// An upload batch: the digest of the uploads it covers (each key with the version id,
    /// sequencer and ETag of every record naming it; see `trigger::coalesce::PlannedJob`).
    Uploads([u8; 32]),
    /// A schedule occurrence, as EventBridge Scheduler delivers it (schedule ARN and scheduled
    /// time): Scheduler delivers at least once.
    Schedule(String),
    /// An id the caller chose (`ferry submit --id`): submitting it again is the same job.
    Caller(String),
}

/// A job's identity: `job-` and 56 hex digits of SHA-256 over its source and content.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JobId(String);

impl From<JobId> for String {
    fn from(id: JobId) -> String {
        id.0
    }
}

impl TryFrom<String> for JobId {
    type Error = IdError;

    fn try_from(text: String) -> Result<JobId, IdError> {
        JobId::parse(&text)
    }
}

/// Hex digits kept, as for idempotency keys: 224 bits.
const JOB_ID_HEX_DIGITS: usize = 56;

impl JobId {
    /// The id of `job` from `source`. A caller-given id names the job alone: the same id
    /// submitted with another spec is the same job (the first one stays).
    pub fn derive(source: &JobSource, job: &JobSpec) -> JobId {
        let mut hasher = Sha256::new();
        hasher.update(b"ferry/job/v1\0");
        match source {
            JobSource::Uploads(digest) => {
                hasher.update(b"uploads\0");
                hasher.update(digest);
                // Serializing plain data cannot fail; the struct serializes in field order.
                hasher.update(serde_json::to_vec(job).unwrap_or_default());
            }
            JobSource::Schedule(occurrence) => {
                hasher.update(b"schedule\0");
                hasher.update(occurrence.as_bytes());
                hasher.update(b"\0");
                hasher.update(serde_json::to_vec(job).unwrap_or_default());
            }
            JobSource::Caller(id) => {
                hasher.update(b"caller\0");
                hasher.update(id.as_bytes());
            }
        }
        JobId(format!(
            "job-{}",
            hex(&hasher.finalize(), JOB_ID_HEX_DIGITS)
        ))
    }

    /// A job id as stored or given back (`job-` and 56 lowercase hex digits).
    pub fn parse(text: &str) -> Result<JobId, IdError> {
        let ok = text.strip_prefix("job-").is_some_and(|h| {
            h.len() == JOB_ID_HEX_DIGITS
                && h.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        });
        if ok {
            Ok(JobId(text.to_owned()))
        } else {
            Err(IdError {
                expected: "a job id (\"job-\" and 56 lowercase hex digits)",
                got: crate::domain::text::truncate_chars(text, 200),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests;
