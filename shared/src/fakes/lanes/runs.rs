//! A run's changes in the fake lane table ([`NoteRuns`], [`LaneRuns`]) and the runner
//! executions it starts ([`StartExecution`]).

use super::FakeLanes;
use crate::error::FerryError;
use crate::fakes::FakeFailure;
use crate::lanes::JobId;
use crate::lanes::record::{JobEnd, JobState, Millis, QueuedJob, RunJob, RunRecord, RunState};
use crate::ports::{LaneRuns, NoteRuns, StartExecution, StartOutcome};

impl NoteRuns for FakeLanes {
    async fn note(&self, run: &RunRecord) -> Result<(), FerryError> {
        {
            let mut state = self.state.lock();
            if state.fail_notes > 0 {
                state.fail_notes -= 1;
                return Err(FakeFailure::Internal.into_error());
            }
        }
        LaneRuns::update(self, run).await
    }

    async fn mark_start(&self, run: &RunRecord, now: Millis) -> Result<Millis, FerryError> {
        let mut state = self.state.lock();
        match state.runs.get_mut(&(run.lane.clone(), run.id.clone())) {
            Some(stored) if stored.state != RunState::Done => {
                Ok(*stored.start_attempted.get_or_insert(now))
            }
            _ => Err(FerryError::NotFound {
                message: format!("run {} of {} is not in flight", run.id, run.lane),
                source: None,
            }),
        }
    }
}

impl LaneRuns for FakeLanes {
    async fn end_pending(&self, jobs: &[QueuedJob], end: JobEnd) -> Result<Vec<JobId>, FerryError> {
        let mut state = self.state.lock();
        let mut ended = Vec::new();
        for job in jobs {
            if let Some(entry) = state.jobs.get_mut(&job.id)
                && entry.1 == JobState::Pending
            {
                entry.1 = end.state;
                ended.push(job.id.clone());
                if let Some(cancel) = &end.cancel {
                    state.cancels.insert(job.id.clone(), cancel.clone());
                }
            }
        }
        Ok(ended)
    }

    async fn claim(&self, owner: &str, run: &RunRecord) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        let mine = state.holds(&run.lane, owner);
        let key = (run.lane.clone(), run.id.clone());
        if !mine || state.in_flight.contains_key(&run.lane) || state.runs.contains_key(&key) {
            return Err(FakeLanes::lost(&run.lane, owner));
        }
        state.in_flight.insert(run.lane.clone(), run.id.clone());
        state.runs.insert(key, run.clone());
        Ok(())
    }

    async fn take_jobs(
        &self,
        run: &RunRecord,
        jobs: &[QueuedJob],
    ) -> Result<Vec<JobId>, FerryError> {
        let mut state = self.state.lock();
        let mut gone = Vec::new();
        for job in jobs {
            match state.jobs.get_mut(&job.id) {
                Some(entry)
                    if entry.1 == JobState::Pending || entry.2.as_ref() == Some(&run.id) =>
                {
                    entry.1 = JobState::Running;
                    entry.2 = Some(run.id.clone());
                    state
                        .members
                        .entry((run.lane.clone(), run.id.clone()))
                        .or_default()
                        .insert(job.id.clone(), RunJob::of(job));
                }
                _ => gone.push(job.id.clone()),
            }
        }
        Ok(gone)
    }

    async fn return_jobs(&self, run: &RunRecord, jobs: &[QueuedJob]) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        for job in jobs {
            if let Some(entry) = state.jobs.get_mut(&job.id)
                && entry.2.as_ref() == Some(&run.id)
            {
                entry.1 = JobState::Pending;
                entry.2 = None;
                if let Some(members) = state.members.get_mut(&(run.lane.clone(), run.id.clone())) {
                    members.remove(&job.id);
                }
            }
        }
        Ok(())
    }

    async fn update(&self, run: &RunRecord) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        match state.runs.get_mut(&(run.lane.clone(), run.id.clone())) {
            Some(stored) if stored.state != RunState::Done => {
                // The cancel marks stay as first written, and the adoption count as counted,
                // as the lane table keeps them beside the record.
                let cancel = stored.cancel.clone().or_else(|| run.cancel.clone());
                let canceled_outside = stored.canceled_outside.or(run.canceled_outside);
                let start_attempted = stored.start_attempted.or(run.start_attempted);
                let adoptions = stored.adoptions;
                *stored = RunRecord {
                    cancel,
                    canceled_outside,
                    start_attempted,
                    adoptions,
                    ..run.clone()
                };
                Ok(())
            }
            _ => Err(FerryError::NotFound {
                message: format!("run {} of {} is not in flight", run.id, run.lane),
                source: None,
            }),
        }
    }

    async fn adopted(&self, run: &RunRecord) -> Result<u32, FerryError> {
        let mut state = self.state.lock();
        match state.runs.get_mut(&(run.lane.clone(), run.id.clone())) {
            Some(stored) if stored.state != RunState::Done => {
                stored.adoptions += 1;
                Ok(stored.adoptions)
            }
            _ => Err(FerryError::NotFound {
                message: format!("run {} of {} is not in flight", run.id, run.lane),
                source: None,
            }),
        }
    }

    async fn finish(&self, owner: &str, run: &RunRecord, end: JobState) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        if !state.holds(&run.lane, owner) || state.in_flight.get(&run.lane) != Some(&run.id) {
            return Err(FakeLanes::lost(&run.lane, owner));
        }
        let members: Vec<JobId> = state
            .members
            .get(&(run.lane.clone(), run.id.clone()))
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        for id in members {
            if let Some(entry) = state.jobs.get_mut(&id)
                && entry.2.as_ref() == Some(&run.id)
            {
                entry.1 = end;
            }
        }
        let key = (run.lane.clone(), run.id.clone());
        let adoptions = state.runs.get(&key).map_or(0, |r| r.adoptions);
        let mut done = run.clone();
        done.state = RunState::Done;
        done.adoptions = adoptions;
        state.runs.insert(key, done);
        state.in_flight.remove(&run.lane);
        Ok(())
    }
}

/// Runner executions, as Step Functions would start them: one per name.
impl StartExecution for FakeLanes {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, FerryError> {
        let mut state = self.state.lock();
        if state.fail_runner_starts > 0 {
            state.fail_runner_starts -= 1;
            return Err(FakeFailure::Internal.into_error());
        }
        if state.runners.iter().any(|(n, _)| n == name) {
            return Ok(StartOutcome::AlreadyStarted);
        }
        state.runners.push((name.to_owned(), input.to_owned()));
        Ok(StartOutcome::Started {
            execution_arn: format!(
                "arn:aws:states:us-east-1:111122223333:execution:ferry-lane:{name}"
            ),
        })
    }
}
