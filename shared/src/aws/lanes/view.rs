//! Reading the lane table: [`ReadQueued`] and [`LaneView`] (pending jobs, a run's members, a
//! job, the registry, a lane's lease, the report history, dropped uploads).

use std::collections::HashMap;

use tracing::instrument;

use super::{
    AwsLanes, DAY_MS, Item, REGISTRY_PK, dropped_pk, history_pk, key, lane_pk, malformed,
    member_prefix, number, record, text,
};
use crate::error::FerryError;
use crate::lanes::record::{
    CancelRequest, DroppedUpload, JobRecord, JobState, KeptReport, LaneState, Lease, Millis,
    QueuedJob, Registered, RunId, RunJob,
};
use crate::lanes::{JobId, LaneId};
use crate::ports::{LaneView, ReadQueued};

/// A registry item read back.
fn registered(item: &Item) -> Result<Registered, FerryError> {
    let lane = text(item, "sk").unwrap_or_default();
    let lane = LaneId::parse(&lane).map_err(|e| malformed("Query", &format!("lane {e}")))?;
    Ok(Registered {
        lane,
        idle: item.contains_key("idle_since"),
        last_job: text(item, "last_job").and_then(|id| JobId::parse(&id).ok()),
    })
}

impl ReadQueued for AwsLanes {
    /// `BatchGetItem` of the jobs' items, then in the order asked.
    #[instrument(skip(self, ids), fields(jobs = ids.len()))]
    async fn queued(&self, lane: &LaneId, ids: &[JobId]) -> Result<Vec<QueuedJob>, FerryError> {
        let keys = ids
            .iter()
            .map(|id| key(lane_pk(lane), format!("job#{id}")))
            .collect();
        let mut found: HashMap<JobId, QueuedJob> = HashMap::new();
        for item in self.batch_get(keys).await? {
            let job: QueuedJob = record("BatchGetItem", &item)?;
            found.insert(job.id.clone(), job);
        }
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }
}

impl LaneView for AwsLanes {
    #[instrument(skip(self))]
    async fn pending(
        &self,
        lane: &LaneId,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<QueuedJob>, FerryError> {
        let items = self
            .query_within(lane_pk(lane), "pending#", limit, max_bytes)
            .await?;
        items.iter().map(|item| record("Query", item)).collect()
    }

    #[instrument(skip(self))]
    async fn pending_count(&self, lane: &LaneId, limit: usize) -> Result<usize, FerryError> {
        self.count(lane_pk(lane), "pending#", limit).await
    }

    #[instrument(skip(self))]
    async fn members(
        &self,
        lane: &LaneId,
        run: &RunId,
        limit: usize,
    ) -> Result<Vec<RunJob>, FerryError> {
        let items = self
            .query(lane_pk(lane), &member_prefix(run), limit)
            .await?;
        items.iter().map(|item| record("Query", item)).collect()
    }

    /// The locator names the lane; the job's item there holds its state and run.
    #[instrument(skip(self))]
    async fn job(&self, id: &JobId) -> Result<Option<JobRecord>, FerryError> {
        let Some(locator) = self.get(key(format!("job#{id}"), "job")).await? else {
            return Ok(None);
        };
        let lane = text(&locator, "lane_key").unwrap_or_default();
        let lane = LaneId::parse(&lane).map_err(|e| malformed("GetItem", &format!("lane {e}")))?;
        let Some(item) = self.get(key(lane_pk(&lane), format!("job#{id}"))).await? else {
            return Ok(None);
        };
        let state = text(&item, "job_state").unwrap_or_default();
        let cancel = text(&item, "cancel_json")
            .map(|text| serde_json::from_str::<CancelRequest>(&text))
            .transpose()
            .map_err(|e| {
                malformed(
                    "GetItem",
                    &format!("a cancel request that does not parse: {e}"),
                )
            })?;
        Ok(Some(JobRecord {
            cancel,
            job: record("GetItem", &item)?,
            state: JobState::parse(&state)
                .ok_or_else(|| malformed("GetItem", &format!("a job in state {state:?}")))?,
            run: text(&item, "run_id").map(RunId),
        }))
    }

    /// One Query of the registry (every page), past registrations left out: DynamoDB's TTL
    /// deletes expired items within days, not at once (Developer Guide, "Using time to live").
    #[instrument(skip(self))]
    async fn lanes(&self, now: Millis) -> Result<Vec<Registered>, FerryError> {
        let items = self.query(REGISTRY_PK.into(), "", usize::MAX).await?;
        items
            .iter()
            .filter(|item| number(item, "expires_at").is_none_or(|at| at > now / 1000))
            .map(registered)
            .collect()
    }

    #[instrument(skip(self))]
    async fn registration(&self, lane: &LaneId) -> Result<Option<Registered>, FerryError> {
        let item = self.get(key(REGISTRY_PK.into(), lane.to_string())).await?;
        item.as_ref().map(registered).transpose()
    }
    #[instrument(skip(self))]
    async fn lane(&self, lane: &LaneId) -> Result<LaneState, FerryError> {
        let Some(item) = self.get(key(lane_pk(lane), "lane")).await? else {
            return Ok(LaneState::default());
        };
        let lease = text(&item, "lease_owner").map(|owner| Lease {
            owner,
            until: number(&item, "lease_until").unwrap_or_default(),
        });
        Ok(LaneState {
            lease,
            run: text(&item, "run_id").map(RunId),
        })
    }

    /// `--lane`: one Query of the lane's report index, newest first, `limit` items. Every
    /// lane: the day partitions of the history index from `now` back to `since`, newest first,
    /// until `limit` are read.
    #[instrument(skip(self))]
    async fn history(
        &self,
        lane: Option<&LaneId>,
        (since, now): (Millis, Millis),
        limit: usize,
    ) -> Result<Vec<KeptReport>, FerryError> {
        let partitions: Vec<(String, String)> = match lane {
            Some(lane) => vec![(lane_pk(lane), "reported#".to_owned())],
            None => (since / DAY_MS..=now / DAY_MS)
                .rev()
                .map(|day| (history_pk(day * DAY_MS), String::new()))
                .collect(),
        };
        let mut reports: Vec<KeptReport> = Vec::new();
        for (pk, prefix) in partitions {
            if reports.len() >= limit {
                break;
            }
            let from = format!("{prefix}{since:020}");
            let to = format!("{prefix}~");
            for item in self
                .newest(&pk, (&from, &to), limit - reports.len())
                .await?
            {
                let report: KeptReport = record("Query", &item)?;
                // A retried notify indexes its report again: the newest copy stands.
                if !reports
                    .iter()
                    .any(|r| r.run == report.run && r.lane == report.lane)
                {
                    reports.push(report);
                }
            }
        }
        Ok(reports)
    }
    /// The hour partitions from `now` back to `since`, each newest first, until `limit` are
    /// read.
    #[instrument(skip(self))]
    async fn dropped(
        &self,
        (since, now): (Millis, Millis),
        limit: usize,
    ) -> Result<Vec<DroppedUpload>, FerryError> {
        let mut dropped = Vec::new();
        for hour in (since / 3_600_000..=now / 3_600_000).rev() {
            if dropped.len() >= limit {
                break;
            }
            let from = format!("{since:020}");
            let items = self
                .newest(
                    &dropped_pk(hour * 3_600_000),
                    (&from, "~"),
                    limit - dropped.len(),
                )
                .await?;
            for item in items {
                dropped.push(record::<DroppedUpload>("Query", &item)?);
            }
        }
        Ok(dropped)
    }
    #[instrument(skip(self))]
    async fn report(&self, lane: &LaneId, id: &RunId) -> Result<Option<KeptReport>, FerryError> {
        let item = self.get(key(lane_pk(lane), format!("report#{id}"))).await?;
        item.map(|item| record("GetItem", &item)).transpose()
    }
}
