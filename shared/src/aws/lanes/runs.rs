//! A run's records: [`ReadRuns`], [`NoteRuns`] and [`LaneRuns`] (claim, take and return jobs,
//! adopt, finish), each change one transaction or packed within a transaction's limits.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem};
use tracing::instrument;

use super::table::table_class;
use super::{
    AwsLanes, Item, RETENTION_SECONDS, item_bytes, json, key, lane_pk, lease_lost, malformed,
    member_sk, n, number, pending_sk, record, s, text, within_an_item,
};
use crate::aws::classify;
use crate::budget;
use crate::error::FerryError;
use crate::lanes::record::{
    JobEnd, JobState, Millis, QueuedJob, RunId, RunJob, RunRecord, RunState,
};
use crate::lanes::{JobId, LaneId};
use crate::ports::{LaneRuns, LaneView, NoteRuns, ReadRuns};

/// What a job's item may hold beyond its record (`doc_json`): keys, attribute names, its state,
/// run id and expiry. Weighing a transaction's actions with it over-counts, never under.
const JOB_ITEM_EXTRA_BYTES: usize = 4 * 1024;

/// How long member items are kept (TTL from the claim): a run lasts at most its jobs' 30-day
/// timeout, and its record is kept 30 days after.
const MEMBER_RETENTION_SECONDS: u64 = 2 * RETENTION_SECONDS;

impl ReadRuns for AwsLanes {
    #[instrument(skip(self))]
    async fn run(&self, lane: &LaneId, id: &RunId) -> Result<Option<RunRecord>, FerryError> {
        let item = self.get(key(lane_pk(lane), format!("run#{id}"))).await?;
        item.map(|item| stored_run_of(&item)).transpose()
    }
}

impl NoteRuns for AwsLanes {
    #[instrument(skip(self, run), fields(lane = %run.lane, run = %run.id))]
    async fn note(&self, run: &RunRecord) -> Result<(), FerryError> {
        self.replace_run(run).await
    }

    /// `SET start_attempted_at = if_not_exists(...)` beside the run's record, on a run still
    /// in flight; the mark that stands comes back (`UPDATED_NEW`).
    #[instrument(skip(self, run), fields(lane = %run.lane, run = %run.id))]
    async fn mark_start(&self, run: &RunRecord, now: Millis) -> Result<Millis, FerryError> {
        let expression = "SET start_attempted_at = if_not_exists(start_attempted_at, :now)";
        let item = self.mark_run(run, expression, (":now", n(now))).await?;
        Ok(number(&item, "start_attempted_at").unwrap_or(now))
    }
}

/// A run's record, with the marks kept beside it: a cancel request (`cancel_json`), the
/// first sighting of an outside cancel (`canceled_outside_at`), the adoption count
/// (`adoptions`) and the first attempt to start its task (`start_attempted_at`). Each is written once, next to
/// the record, by whoever makes it, so a record replaced from an earlier read (the runner's
/// `started`, a status check's note, a cancel) never loses the other's.
fn stored_run_of(item: &Item) -> Result<RunRecord, FerryError> {
    let mut run: RunRecord = record("GetItem", item)?;
    if run.cancel.is_none()
        && let Some(text) = text(item, "cancel_json")
    {
        run.cancel = Some(serde_json::from_str(&text).map_err(|e| {
            malformed(
                "GetItem",
                &format!("a cancel request that does not parse: {e}"),
            )
        })?);
    }
    if run.canceled_outside.is_none() {
        run.canceled_outside = number(item, "canceled_outside_at");
    }
    if run.start_attempted.is_none() {
        run.start_attempted = number(item, "start_attempted_at");
    }
    // The count `adopted` keeps beside the record (ADD), never lost to a record replaced from
    // an earlier read.
    if let Some(count) = number(item, "adoptions") {
        run.adoptions = run.adoptions.max(u32::try_from(count).unwrap_or(u32::MAX));
    }
    Ok(run)
}

impl AwsLanes {
    /// One `UpdateItem` of a mark kept beside a run in flight (`expression`, with its one
    /// `value`), answering the marks it left (`UPDATED_NEW`); a run no longer in flight is
    /// `NotFound`.
    async fn mark_run(
        &self,
        run: &RunRecord,
        expression: &str,
        (name, value): (&str, AttributeValue),
    ) -> Result<Item, FerryError> {
        const OP: &str = "UpdateItem";
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(lane_pk(&run.lane), format!("run#{}", run.id))))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk) AND run_state <> :done")
            .expression_attribute_values(name, value)
            .expression_attribute_values(":done", s(state_name(RunState::Done)))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await;
        match answer {
            Ok(output) => Ok(output.attributes.unwrap_or_default()),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => {
                    Err(FerryError::NotFound {
                        message: format!("run {} of {} is not in flight", run.id, run.lane),
                        source: None,
                    })
                }
                _ => {
                    let class = e.as_service_error().and_then(table_class);
                    Err(classify(OP, e, class))
                }
            },
        }
    }
}

impl AwsLanes {
    /// Replaces the record of a run in flight (never a finished one). Its cancel marks are also
    /// kept beside it, first one wins ([`stored_run_of`]).
    async fn replace_run(&self, run: &RunRecord) -> Result<(), FerryError> {
        let mut expression = "SET run_state = :state, doc_json = :doc".to_owned();
        let mut values = HashMap::from([
            (":state".into(), s(state_name(run.state))),
            (":doc".into(), json(run)),
            (":done".into(), s(state_name(RunState::Done))),
        ]);
        // The record the update leaves: its doc and the marks beside it, at their largest.
        let mut after = key(lane_pk(&run.lane), format!("run#{}", run.id));
        after.insert("doc_json".into(), values[":doc"].clone());
        if let Some(cancel) = &run.cancel {
            after.insert("cancel_json".into(), json(cancel));
        }
        within_an_item(&after)?;
        if let Some(cancel) = &run.cancel {
            expression.push_str(", cancel_json = if_not_exists(cancel_json, :cancel)");
            values.insert(":cancel".into(), json(cancel));
        }
        if let Some(at) = run.canceled_outside {
            expression
                .push_str(", canceled_outside_at = if_not_exists(canceled_outside_at, :outside)");
            values.insert(":outside".into(), n(at));
        }
        let item = self.update(
            key(lane_pk(&run.lane), format!("run#{}", run.id)),
            &expression,
            Some("attribute_exists(pk) AND run_state <> :done"),
            values,
        )?;
        if self.transact(vec![item]).await? {
            Ok(())
        } else {
            Err(FerryError::NotFound {
                message: format!("run {} of {} is not in flight", run.id, run.lane),
                source: None,
            })
        }
    }
}

impl LaneRuns for AwsLanes {
    /// One transaction per job: its queue entry removed, its item ended (only while pending),
    /// with who cancelled it and why when someone did.
    #[instrument(skip(self, jobs, end), fields(jobs = jobs.len()))]
    async fn end_pending(&self, jobs: &[QueuedJob], end: JobEnd) -> Result<Vec<JobId>, FerryError> {
        let mut ended = Vec::with_capacity(jobs.len());
        for job in jobs {
            let mut expression = "SET job_state = :state, expires_at = :expires".to_owned();
            let mut values = HashMap::from([
                (":state".into(), s(end.state.as_str())),
                (":pending".into(), s(JobState::Pending.as_str())),
                (":expires".into(), n(end.at / 1000 + RETENTION_SECONDS)),
            ]);
            if let Some(cancel) = &end.cancel {
                expression.push_str(", cancel_json = :cancel");
                values.insert(":cancel".into(), json(cancel));
            }
            let items = self.out_of_queue(
                (&job.lane, job.enqueued_at, &job.id),
                &expression,
                "job_state = :pending",
                values,
            )?;
            if self.transact(items.to_vec()).await? {
                ended.push(job.id.clone());
            }
        }
        Ok(ended)
    }

    /// The run and the lane's pointer to it in one transaction: the lease must be `owner`'s
    /// and the lane free.
    #[instrument(skip(self, run), fields(lane = %run.lane, run = %run.id, jobs = run.job_count))]
    async fn claim(&self, owner: &str, run: &RunRecord) -> Result<(), FerryError> {
        let mut item = key(lane_pk(&run.lane), format!("run#{}", run.id));
        item.insert("run_state".into(), s(state_name(run.state)));
        item.insert("doc_json".into(), json(run));
        let pointer = self.lane_pointer(
            run,
            owner,
            "SET run_id = :run",
            "lease_owner = :owner AND attribute_not_exists(run_id)",
        )?;
        let claimed = self
            .transact(vec![
                self.put(item, Some("attribute_not_exists(pk)"))?,
                pointer,
            ])
            .await?;
        held(claimed, &run.lane, owner)
    }

    /// Three actions a job (its queue entry removed, its item running in this run, its member
    /// record written), packed within a transaction's limits. A transaction that fails because
    /// a job is no longer pending (cancelled) is redone job by job, so the others are taken and
    /// the cancelled ones named.
    #[instrument(skip(self, run, jobs), fields(lane = %run.lane, run = %run.id, jobs = jobs.len()))]
    async fn take_jobs(
        &self,
        run: &RunRecord,
        jobs: &[QueuedJob],
    ) -> Result<Vec<JobId>, FerryError> {
        let groups = jobs
            .iter()
            .map(|job| self.take_job(run, job))
            .collect::<Result<Vec<_>, _>>()?;
        let mut gone = Vec::new();
        for (range, items) in packed(groups) {
            if self.transact(items).await? {
                continue;
            }
            for job in &jobs[range] {
                let (actions, _) = self.take_job(run, job)?;
                if !self.transact(actions).await? {
                    gone.push(job.id.clone());
                }
            }
        }
        Ok(gone)
    }

    /// Three actions a job: its item pending again (only while this run's), its queue entry
    /// back, its member record removed.
    #[instrument(skip(self, run, jobs), fields(lane = %run.lane, run = %run.id, jobs = jobs.len()))]
    async fn return_jobs(&self, run: &RunRecord, jobs: &[QueuedJob]) -> Result<(), FerryError> {
        let groups = jobs
            .iter()
            .map(|job| self.return_job(run, job))
            .collect::<Result<Vec<_>, _>>()?;
        for (_, items) in packed(groups) {
            // A job no longer this run's (it cannot happen but by hand) stays as it is.
            self.transact(items).await?;
        }
        Ok(())
    }

    #[instrument(skip(self, run), fields(lane = %run.lane, run = %run.id))]
    async fn update(&self, run: &RunRecord) -> Result<(), FerryError> {
        self.replace_run(run).await
    }

    /// `ADD adoptions 1` beside the run's record (never lost to a record replaced from an
    /// earlier read), on a run still in flight.
    #[instrument(skip(self, run), fields(lane = %run.lane, run = %run.id))]
    async fn adopted(&self, run: &RunRecord) -> Result<u32, FerryError> {
        let item = self
            .mark_run(run, "ADD adoptions :one", (":one", n(1)))
            .await?;
        Ok(number(&item, "adoptions").map_or(1, |count| u32::try_from(count).unwrap_or(u32::MAX)))
    }

    /// Each member's job to `state` (packed within a transaction's limits; a job already ended
    /// stays as it is), then the run done and the lane's pointer to it removed, together,
    /// while the lease is `owner`'s.
    #[instrument(skip(self, run), fields(lane = %run.lane, run = %run.id, jobs = run.job_count))]
    async fn finish(
        &self,
        owner: &str,
        run: &RunRecord,
        state: JobState,
    ) -> Result<(), FerryError> {
        let pk = lane_pk(&run.lane);
        let at = run.ended_at.unwrap_or(run.claimed_at);
        let expires = n(at / 1000 + RETENTION_SECONDS);
        let members = self.members(&run.lane, &run.id, usize::MAX).await?;
        let groups = members
            .iter()
            .map(|member| {
                let update = self.update(
                    key(pk.clone(), format!("job#{}", member.id)),
                    "SET job_state = :state, expires_at = :expires",
                    Some("run_id = :run AND job_state = :running"),
                    HashMap::from([
                        (":state".into(), s(state.as_str())),
                        (":expires".into(), expires.clone()),
                        (":run".into(), s(run.id.0.clone())),
                        (":running".into(), s(JobState::Running.as_str())),
                    ]),
                )?;
                Ok((vec![update], member.weight + JOB_ITEM_EXTRA_BYTES))
            })
            .collect::<Result<Vec<_>, FerryError>>()?;
        for (_, items) in packed(groups) {
            // A job that already ended (a finish retried after its jobs were written, with
            // another state) or that this run does not hold any more (by hand) keeps its
            // state; redo the transaction item by item so the others still end. Found by the
            // lane contract (tests/tests/all/lane_contract.rs), which FakeLanes kept.
            if !self.transact(items.clone()).await? {
                for item in items {
                    self.transact(vec![item]).await?;
                }
            }
        }
        let mut done = run.clone();
        done.state = RunState::Done;
        let run_done = self.update(
            key(pk, format!("run#{}", run.id)),
            "SET run_state = :done, doc_json = :doc, expires_at = :expires",
            None,
            HashMap::from([
                (":done".into(), s(state_name(RunState::Done))),
                (":doc".into(), json(&done)),
                (":expires".into(), expires),
            ]),
        )?;
        let pointer = self.lane_pointer(
            run,
            owner,
            "REMOVE run_id",
            "run_id = :run AND lease_owner = :owner",
        )?;
        let finished = self.transact(vec![run_done, pointer]).await?;
        held(finished, &run.lane, owner)
    }
}

/// Groups of actions (each with its weight in bytes) packed into transactions within
/// DynamoDB's limits ([`budget::transactions`]): each transaction's actions, and which groups
/// it holds.
fn packed(
    groups: Vec<(Vec<TransactWriteItem>, usize)>,
) -> Vec<(std::ops::Range<usize>, Vec<TransactWriteItem>)> {
    let sizes: Vec<(usize, usize)> = groups.iter().map(|(a, w)| (a.len(), *w)).collect();
    let mut groups = groups.into_iter();
    budget::transactions(&sizes)
        .into_iter()
        .map(|range| {
            let items = groups
                .by_ref()
                .take(range.len())
                .flat_map(|(actions, _)| actions)
                .collect();
            (range, items)
        })
        .collect()
}

/// `Ok` when a write conditional on `owner`'s lease happened; the lease lost otherwise.
fn held(written: bool, lane: &LaneId, owner: &str) -> Result<(), FerryError> {
    if written {
        Ok(())
    } else {
        Err(lease_lost(lane, owner))
    }
}

fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Claimed => "claimed",
        RunState::Started => "started",
        RunState::Done => "done",
    }
}

impl AwsLanes {
    /// A write to the lane item's run pointer, conditional on `condition` (which may name
    /// `:run` and `:owner`).
    fn lane_pointer(
        &self,
        run: &RunRecord,
        owner: &str,
        expression: &str,
        condition: &str,
    ) -> Result<TransactWriteItem, FerryError> {
        self.update(
            key(lane_pk(&run.lane), "lane"),
            expression,
            Some(condition),
            HashMap::from([
                (":run".into(), s(run.id.0.clone())),
                (":owner".into(), s(owner)),
            ]),
        )
    }

    /// The writes that move one job of `run` from pending to running, only while it is pending
    /// (or already this run's): its queue entry removed, its item updated, its member record
    /// written. Weighed as the three items (the entry and the item hold the job's record).
    fn take_job(
        &self,
        run: &RunRecord,
        job: &QueuedJob,
    ) -> Result<(Vec<TransactWriteItem>, usize), FerryError> {
        let [entry, item] = self.out_of_queue(
            (&run.lane, job.enqueued_at, &job.id),
            "SET job_state = :running, run_id = :run",
            "job_state = :pending OR run_id = :run",
            HashMap::from([
                (":running".into(), s(JobState::Running.as_str())),
                (":pending".into(), s(JobState::Pending.as_str())),
                (":run".into(), s(run.id.0.clone())),
            ]),
        )?;
        let member = RunJob::of(job);
        let mut record = key(lane_pk(&run.lane), member_sk(&run.id, &member));
        record.insert("doc_json".into(), json(&member));
        record.insert(
            "expires_at".into(),
            n(run.claimed_at / 1000 + MEMBER_RETENTION_SECONDS),
        );
        let weight = 2 * (member.weight + JOB_ITEM_EXTRA_BYTES) + item_bytes(&record);
        Ok((vec![entry, item, self.put(record, None)?], weight))
    }

    /// The writes that give one job of `run` back to its lane: its item pending again (only
    /// while this run's), its queue entry back, its member record removed.
    fn return_job(
        &self,
        run: &RunRecord,
        job: &QueuedJob,
    ) -> Result<(Vec<TransactWriteItem>, usize), FerryError> {
        let pk = lane_pk(&run.lane);
        let item = self.update(
            key(pk.clone(), format!("job#{}", job.id)),
            "SET job_state = :pending REMOVE run_id",
            Some("run_id = :run"),
            HashMap::from([
                (":pending".into(), s(JobState::Pending.as_str())),
                (":run".into(), s(run.id.0.clone())),
            ]),
        )?;
        let mut entry = key(pk.clone(), pending_sk(job.enqueued_at, &job.id));
        entry.insert("doc_json".into(), json(job));
        let member = RunJob::of(job);
        let gone = self.delete(key(pk, member_sk(&run.id, &member)))?;
        let weight = 2 * (member.weight + JOB_ITEM_EXTRA_BYTES) + budget::json_bytes(&member);
        Ok((vec![item, self.put(entry, None)?, gone], weight))
    }

    /// The two writes that take a job (its lane, enqueue time and id) out of the queue: its
    /// pending entry removed, its job item updated by `expression` on `condition`.
    fn out_of_queue(
        &self,
        (lane, enqueued_at, job): (&LaneId, Millis, &JobId),
        expression: &str,
        condition: &str,
        values: Item,
    ) -> Result<[TransactWriteItem; 2], FerryError> {
        let pk = lane_pk(lane);
        Ok([
            self.delete(key(pk.clone(), pending_sk(enqueued_at, job)))?,
            self.update(
                key(pk, format!("job#{job}")),
                expression,
                Some(condition),
                values,
            )?,
        ])
    }
}
