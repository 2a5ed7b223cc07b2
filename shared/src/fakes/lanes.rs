//! [`FakeLanes`]: the lane table in memory, with the DynamoDB adapter's conditions. Here: its
//! state, what a test reads of it, and the reads, enqueues, lease and kept reports; a run's
//! changes and runner executions are in `runs.rs`, wake slots in `wake.rs`.

use std::collections::{BTreeMap, HashSet};

use super::{FakeFailure, Shared};
use crate::error::FerryError;
use crate::ids::UploadId;
use crate::lanes::record::{
    CancelRequest, DroppedUpload, Enqueued, JobRecord, JobState, KeptReport, LaneState, Lease,
    LeaseRequest, Leased, Millis, QueuedJob, REGISTRATION_DAYS, Registered, RunId, RunJob,
    RunRecord,
};
use crate::lanes::{JobId, LaneId};
use crate::ports::{
    KeepReports, LaneLease, LaneQueue, LaneView, QueuedUploads, ReadQueued, ReadRuns,
    RecordDropped, WakeSlot,
};

mod runs;
mod wake;

/// In-memory lane table: the same conditions as the DynamoDB adapter (a job enqueued once, one
/// lease holder, one run in flight claimed only by the lease holder, jobs taken only while
/// pending), and a clock-free lease (the caller says what time it is).
#[derive(Debug, Default, Clone)]
pub struct FakeLanes {
    state: Shared<LanesState>,
}

#[derive(Debug, Default)]
struct LanesState {
    /// Job id → (job, state, run).
    jobs: BTreeMap<JobId, (QueuedJob, JobState, Option<RunId>)>,
    /// Who cancelled a job while it was pending.
    cancels: BTreeMap<JobId, CancelRequest>,
    /// The registry: each lane's registration.
    registry: BTreeMap<LaneId, Registration>,
    /// Each run's members, by job id.
    members: BTreeMap<(LaneId, RunId), BTreeMap<JobId, RunJob>>,
    leases: BTreeMap<LaneId, Lease>,
    runs: BTreeMap<(LaneId, RunId), RunRecord>,
    reports: BTreeMap<(LaneId, RunId), KeptReport>,
    dropped: Vec<DroppedUpload>,
    fail_record_dropped: u32,
    in_flight: BTreeMap<LaneId, RunId>,
    fail_enqueues: u32,
    /// The uploads each job of `s3-trigger` covers: (lane, enqueued at, job, upload ids).
    covered: Vec<(LaneId, Millis, JobId, Vec<UploadId>)>,
    fail_upload_reads: u32,
    /// Runner executions started: (name, input).
    runners: Vec<(String, String)>,
    /// Wake slots by execution ARN: the slot, and when a wake no runner waited for came.
    slots: BTreeMap<String, (WakeSlot, Option<Millis>)>,
    fail_runner_starts: u32,
    fail_lane_reads: u32,
    fail_notes: u32,
}

/// A lane's registration, as the lane table keeps it.
#[derive(Debug, Clone)]
struct Registration {
    last_job: JobId,
    expires_at: Millis,
    idle: bool,
}

impl LanesState {
    fn holds(&self, lane: &LaneId, owner: &str) -> bool {
        self.leases
            .get(lane)
            .is_some_and(|held| held.owner == owner)
    }
}

impl FakeLanes {
    pub fn new() -> Self {
        FakeLanes::default()
    }

    /// Makes the next `count` reads of a lane's own record fail (the table throttled).
    pub fn fail_next_lane_reads(&self, count: u32) {
        self.state.lock().fail_lane_reads += count;
    }

    /// Sets how many of the next notes on a run (`NoteRuns::note`: start-task recording the
    /// task it started, a status check's note) fail (a DynamoDB outage): 0 ends it.
    pub fn fail_next_notes(&self, count: u32) {
        self.state.lock().fail_notes = count;
    }

    /// Fails the next `count` recordings of dropped uploads.
    pub fn fail_next_record_dropped(&self, count: u32) {
        self.state.lock().fail_record_dropped = count;
    }

    /// The dropped uploads recorded, in order.
    pub fn dropped_uploads(&self) -> Vec<DroppedUpload> {
        self.state.lock().dropped.clone()
    }

    /// Makes the next `count` enqueues fail (a DynamoDB outage).
    pub fn fail_next_enqueues(&self, count: u32) {
        self.state.lock().fail_enqueues += count;
    }

    /// Sets how many of the next reads of queued uploads fail (the table throttled): 0 ends it.
    pub fn fail_next_upload_reads(&self, count: u32) {
        self.state.lock().fail_upload_reads = count;
    }

    /// Each job enqueued with the uploads it covers: (job, upload ids), in enqueue order.
    pub fn covered_uploads(&self) -> Vec<(JobId, Vec<UploadId>)> {
        let state = self.state.lock();
        let mut covered: Vec<_> = state.covered.iter().collect();
        covered.sort_by_key(|(_, at, job, _)| (*at, job.clone()));
        covered
            .into_iter()
            .map(|(_, _, job, ids)| (job.clone(), ids.clone()))
            .collect()
    }

    /// Every job with its state, in enqueue order.
    pub fn jobs(&self) -> Vec<(QueuedJob, JobState)> {
        let state = self.state.lock();
        let mut jobs: Vec<(QueuedJob, JobState)> = state
            .jobs
            .values()
            .map(|(job, s, _)| (job.clone(), *s))
            .collect();
        jobs.sort_by(|a, b| (a.0.enqueued_at, &a.0.id).cmp(&(b.0.enqueued_at, &b.0.id)));
        jobs
    }

    /// Runner executions started, in order: (name, input).
    pub fn runners(&self) -> Vec<(String, String)> {
        self.state.lock().runners.clone()
    }

    /// Makes the next `count` runner starts fail (Step Functions unavailable).
    pub fn fail_next_runner_starts(&self, count: u32) {
        self.state.lock().fail_runner_starts += count;
    }

    /// Every run ever claimed.
    pub fn runs(&self) -> Vec<RunRecord> {
        self.state.lock().runs.values().cloned().collect()
    }

    /// The lease of `lane`, if any.
    pub fn lease(&self, lane: &LaneId) -> Option<Lease> {
        self.state.lock().leases.get(lane).cloned()
    }

    fn lost(lane: &LaneId, owner: &str) -> FerryError {
        FerryError::LeaseLost {
            lane: lane.to_string(),
            owner: owner.to_owned(),
        }
    }
}

impl ReadRuns for FakeLanes {
    async fn run(&self, lane: &LaneId, id: &RunId) -> Result<Option<RunRecord>, FerryError> {
        Ok(self
            .state
            .lock()
            .runs
            .get(&(lane.clone(), id.clone()))
            .cloned())
    }
}

impl ReadQueued for FakeLanes {
    async fn queued(&self, lane: &LaneId, ids: &[JobId]) -> Result<Vec<QueuedJob>, FerryError> {
        let state = self.state.lock();
        Ok(ids
            .iter()
            .filter_map(|id| state.jobs.get(id))
            .filter(|(job, _, _)| &job.lane == lane)
            .map(|(job, _, _)| job.clone())
            .collect())
    }
}

impl LaneView for FakeLanes {
    async fn history(
        &self,
        lane: Option<&LaneId>,
        (since, _now): (Millis, Millis),
        limit: usize,
    ) -> Result<Vec<KeptReport>, FerryError> {
        let state = self.state.lock();
        let mut reports: Vec<KeptReport> = state
            .reports
            .values()
            .filter(|r| lane.is_none_or(|l| &r.lane == l) && r.published_at >= since)
            .map(|r| KeptReport {
                text: String::new(),
                ..r.clone()
            })
            .collect();
        reports.sort_by_key(|r| std::cmp::Reverse(r.published_at));
        reports.truncate(limit);
        Ok(reports)
    }
    async fn dropped(
        &self,
        (since, _now): (Millis, Millis),
        limit: usize,
    ) -> Result<Vec<DroppedUpload>, FerryError> {
        let state = self.state.lock();
        let mut dropped: Vec<DroppedUpload> = state
            .dropped
            .iter()
            .filter(|d| d.at >= since)
            .cloned()
            .collect();
        dropped.sort_by_key(|d| std::cmp::Reverse(d.at));
        dropped.truncate(limit);
        Ok(dropped)
    }
    async fn report(&self, lane: &LaneId, id: &RunId) -> Result<Option<KeptReport>, FerryError> {
        let state = self.state.lock();
        Ok(state.reports.get(&(lane.clone(), id.clone())).cloned())
    }

    async fn pending(
        &self,
        lane: &LaneId,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<QueuedJob>, FerryError> {
        let mut read = Vec::new();
        let mut bytes = 0;
        for (job, state) in self.jobs() {
            if &job.lane != lane || state != JobState::Pending {
                continue;
            }
            let weight = job.weight();
            if read.len() >= limit || (!read.is_empty() && bytes + weight > max_bytes) {
                break;
            }
            bytes += weight;
            read.push(job);
        }
        Ok(read)
    }

    async fn pending_count(&self, lane: &LaneId, limit: usize) -> Result<usize, FerryError> {
        Ok(self
            .jobs()
            .iter()
            .filter(|(job, state)| &job.lane == lane && *state == JobState::Pending)
            .take(limit)
            .count())
    }

    async fn members(
        &self,
        lane: &LaneId,
        run: &RunId,
        limit: usize,
    ) -> Result<Vec<RunJob>, FerryError> {
        let state = self.state.lock();
        let mut members: Vec<RunJob> = state
            .members
            .get(&(lane.clone(), run.clone()))
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        members.sort_by(|a, b| (a.enqueued_at, &a.id).cmp(&(b.enqueued_at, &b.id)));
        members.truncate(limit);
        Ok(members)
    }

    async fn job(&self, id: &JobId) -> Result<Option<JobRecord>, FerryError> {
        let state = self.state.lock();
        Ok(state.jobs.get(id).map(|(job, s, run)| JobRecord {
            job: job.clone(),
            state: *s,
            run: run.clone(),
            cancel: state.cancels.get(id).cloned(),
        }))
    }

    async fn lanes(&self, now: Millis) -> Result<Vec<Registered>, FerryError> {
        let state = self.state.lock();
        Ok(state
            .registry
            .iter()
            .filter(|(_, r)| r.expires_at > now)
            .map(|(lane, r)| Registered {
                lane: lane.clone(),
                idle: r.idle,
                last_job: Some(r.last_job.clone()),
            })
            .collect())
    }

    async fn registration(&self, lane: &LaneId) -> Result<Option<Registered>, FerryError> {
        let state = self.state.lock();
        Ok(state.registry.get(lane).map(|r| Registered {
            lane: lane.clone(),
            idle: r.idle,
            last_job: Some(r.last_job.clone()),
        }))
    }
    async fn lane(&self, lane: &LaneId) -> Result<LaneState, FerryError> {
        let mut state = self.state.lock();
        if state.fail_lane_reads > 0 {
            state.fail_lane_reads -= 1;
            return Err(FakeFailure::Throttled.into_error());
        }
        Ok(LaneState {
            lease: state.leases.get(lane).cloned(),
            run: state.in_flight.get(lane).cloned(),
        })
    }
}

impl LaneQueue for FakeLanes {
    async fn enqueue(&self, job: &QueuedJob) -> Result<Enqueued, FerryError> {
        let mut state = self.state.lock();
        if state.fail_enqueues > 0 {
            state.fail_enqueues -= 1;
            return Err(FakeFailure::Internal.into_error());
        }
        if state.jobs.contains_key(&job.id) {
            return Ok(Enqueued::AlreadyQueued);
        }
        state
            .jobs
            .insert(job.id.clone(), (job.clone(), JobState::Pending, None));
        let registration = Registration {
            last_job: job.id.clone(),
            expires_at: job.enqueued_at + REGISTRATION_DAYS * 86_400_000,
            idle: false,
        };
        state.registry.insert(job.lane.clone(), registration);
        Ok(Enqueued::Added)
    }
}

impl QueuedUploads for FakeLanes {
    async fn enqueue_covering(
        &self,
        job: &QueuedJob,
        uploads: &[UploadId],
    ) -> Result<Enqueued, FerryError> {
        let enqueued = self.enqueue(job).await?;
        if enqueued == Enqueued::Added {
            let ids = uploads.to_vec();
            let entry = (job.lane.clone(), job.enqueued_at, job.id.clone(), ids);
            self.state.lock().covered.push(entry);
        }
        Ok(enqueued)
    }

    async fn queued_uploads(
        &self,
        lane: &LaneId,
        since: Millis,
    ) -> Result<HashSet<UploadId>, FerryError> {
        let mut state = self.state.lock();
        if state.fail_upload_reads > 0 {
            state.fail_upload_reads -= 1;
            return Err(FakeFailure::Throttled.into_error());
        }
        Ok(state
            .covered
            .iter()
            .filter(|(l, at, _, _)| l == lane && *at >= since)
            .flat_map(|(_, _, _, ids)| ids.iter().copied())
            .collect())
    }
}

impl LaneLease for FakeLanes {
    async fn acquire(&self, request: &LeaseRequest) -> Result<Leased, FerryError> {
        let mut state = self.state.lock();
        let lane = &request.lane;
        match state.leases.get(lane) {
            Some(held) if held.owner != request.owner && held.until >= request.now => {
                Ok(Leased::HeldBy(held.clone()))
            }
            _ => {
                let lease = Lease {
                    owner: request.owner.clone(),
                    until: request.until,
                };
                state.leases.insert(lane.clone(), lease);
                Ok(Leased::Acquired)
            }
        }
    }

    async fn renew(&self, lane: &LaneId, owner: &str, until: Millis) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        match state.leases.get_mut(lane) {
            Some(held) if held.owner == owner => {
                held.until = until;
                Ok(())
            }
            _ => Err(FakeLanes::lost(lane, owner)),
        }
    }

    async fn release(&self, lane: &LaneId, owner: &str) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        let mine = state.holds(lane, owner);
        if !mine || state.in_flight.contains_key(lane) {
            return Err(FakeLanes::lost(lane, owner));
        }
        state.leases.remove(lane);
        Ok(())
    }

    async fn mark_idle(
        &self,
        lane: &LaneId,
        seen: Option<&JobId>,
        _now: Millis,
    ) -> Result<bool, FerryError> {
        let mut state = self.state.lock();
        match state.registry.get_mut(lane) {
            Some(r) if Some(&r.last_job) == seen => {
                r.idle = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn hand_over(&self, from: &str, to: &LeaseRequest) -> Result<(), FerryError> {
        let lane = &to.lane;
        let mut state = self.state.lock();
        match state.leases.get_mut(lane) {
            // Or passed to `to` already: a retried hand-over whose first attempt landed.
            Some(held) if held.owner == from || held.owner == to.owner => {
                held.owner.clone_from(&to.owner);
                held.until = to.until;
                Ok(())
            }
            _ => Err(FakeLanes::lost(lane, from)),
        }
    }
}

impl KeepReports for FakeLanes {
    async fn keep_report(&self, report: &KeptReport) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        let at = (report.lane.clone(), report.run.clone());
        state.reports.insert(at, report.clone());
        Ok(())
    }
}

impl RecordDropped for FakeLanes {
    async fn record_dropped(&self, uploads: &[DroppedUpload]) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        if state.fail_record_dropped > 0 {
            state.fail_record_dropped -= 1;
            return Err(FakeFailure::Internal.into_error());
        }
        state.dropped.extend_from_slice(uploads);
        Ok(())
    }
}
