//! Enqueueing: [`LaneQueue`] and [`QueuedUploads`], one transaction per job with the uploads
//! it covers.

use std::collections::HashSet;

use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem};
use tracing::instrument;

use super::table::{Transacted, table_class};
use super::{
    AwsLanes, Item, REGISTRY_PK, item_bytes, json, key, lane_pk, malformed, n, pending_sk, s,
};
use crate::aws::send;
use crate::budget;
use crate::error::FerryError;
use crate::ids::UploadId;
use crate::lanes::record::{Enqueued, JobState, Millis, QueuedJob, REGISTRATION_DAYS};
use crate::lanes::{JobId, LaneId};
use crate::ports::{LaneQueue, QueuedUploads};

/// Where the uploads a job covers are kept, oldest job first (a redelivery reads from the
/// time its message was sent).
const UPLOADS_PREFIX: &str = "uploads#";

/// Upload ids per `uploads#` item: 16,384 × 16 bytes = 256 KiB, within an item's 400 KB with
/// room for its keys. An invocation carries at most 6 MB (Lambda's payload limit), a few
/// thousand to some 70,000 records, so a job's ids take at most a few items, and the enqueue
/// transaction stays within 100 actions and 4 MB (checked before it is sent).
pub(super) const UPLOAD_IDS_PER_ITEM: usize = 16_384;

/// How long the uploads a job covers are kept: SQS keeps a message at most 14 days (SQS
/// developer guide, "Amazon SQS message quotas": `MessageRetentionPeriod`), after which it
/// cannot come back; a day more for clocks.
const UPLOADS_RETENTION_SECONDS: u64 = 15 * 24 * 60 * 60;

/// The `part`th item of the uploads `job` covers: the ids side by side in one binary attribute
/// (`upload_ids`), kept while a message could come back.
fn uploads_item(job: &QueuedJob, part: usize, ids: &[UploadId]) -> Item {
    let sk = format!("{UPLOADS_PREFIX}{:020}#{}#{part}", job.enqueued_at, job.id);
    let mut item = key(lane_pk(&job.lane), sk);
    let bytes: Vec<u8> = ids.iter().flat_map(|id| id.0).collect();
    item.insert(
        "upload_ids".into(),
        AttributeValue::B(aws_sdk_dynamodb::primitives::Blob::new(bytes)),
    );
    item.insert(
        "expires_at".into(),
        n(job.enqueued_at / 1000 + UPLOADS_RETENTION_SECONDS),
    );
    item
}

/// `Ok` when `items` fit one transaction (100 actions, 4 MB, as [`item_bytes`] weighs them):
/// an enqueue is one transaction or it is not atomic.
fn within_a_transaction(items: &[TransactWriteItem], job: &JobId) -> Result<(), FerryError> {
    let what = || format!("the enqueue of job {job}");
    budget::within(what(), items.len(), budget::TRANSACTION_ACTIONS)?;
    let bytes = items
        .iter()
        .filter_map(|i| i.put.as_ref())
        .map(|put| item_bytes(put.item()))
        .sum();
    budget::within(what(), bytes, budget::TRANSACTION_BYTES)?;
    Ok(())
}

impl LaneQueue for AwsLanes {
    #[instrument(skip(self, job), fields(lane = %job.lane, job = %job.id))]
    async fn enqueue(&self, job: &QueuedJob) -> Result<Enqueued, FerryError> {
        self.enqueue_with(job, &[]).await
    }
}

impl QueuedUploads for AwsLanes {
    #[instrument(skip(self, job, uploads), fields(lane = %job.lane, job = %job.id, uploads = uploads.len()))]
    async fn enqueue_covering(
        &self,
        job: &QueuedJob,
        uploads: &[UploadId],
    ) -> Result<Enqueued, FerryError> {
        self.enqueue_with(job, uploads).await
    }

    /// Every `uploads#` item of the lane from `since` on, consistently, every page (only a
    /// message SQS delivered again asks: the read is not on the path of a first delivery).
    #[instrument(skip(self))]
    async fn queued_uploads(
        &self,
        lane: &LaneId,
        since: Millis,
    ) -> Result<HashSet<UploadId>, FerryError> {
        let pk = lane_pk(lane);
        let from = format!("{UPLOADS_PREFIX}{since:020}");
        let to = format!("{UPLOADS_PREFIX}~");
        let mut found = HashSet::new();
        let mut start: Option<Item> = None;
        loop {
            let request = self
                .range_query(&pk, (&from, &to))
                .projection_expression("upload_ids")
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send();
            let page = send("Query", request, table_class).await?;
            for item in page.items.unwrap_or_default() {
                let Some(AttributeValue::B(ids)) = item.get("upload_ids") else {
                    return Err(malformed("Query", "an uploads item without upload_ids"));
                };
                let ids = ids.as_ref();
                if ids.len() % UploadId::BYTES != 0 {
                    return Err(malformed("Query", "upload_ids not a whole number of ids"));
                }
                found.extend(ids.chunks_exact(UploadId::BYTES).map(|chunk| {
                    let mut id = [0; UploadId::BYTES];
                    id.copy_from_slice(chunk);
                    UploadId(id)
                }));
            }
            match page.last_evaluated_key {
                Some(last) => start = Some(last),
                None => return Ok(found),
            }
        }
    }
}

impl AwsLanes {
    /// One transaction: the job (only if new), its place in the queue, its locator, the
    /// lane's registration, and the uploads it covers (one item per
    /// [`UPLOAD_IDS_PER_ITEM`]). A job seen before fails the first condition: already queued.
    async fn enqueue_with(
        &self,
        job: &QueuedJob,
        uploads: &[UploadId],
    ) -> Result<Enqueued, FerryError> {
        let pk = lane_pk(&job.lane);
        let mut item = key(pk.clone(), format!("job#{}", job.id));
        item.insert("job_state".into(), s(JobState::Pending.as_str()));
        item.insert("doc_json".into(), json(job));
        let mut pending = key(pk, pending_sk(job.enqueued_at, &job.id));
        pending.insert("doc_json".into(), json(job));
        let mut locator = key(format!("job#{}", job.id), "job");
        locator.insert("lane_key".into(), s(job.lane.to_string()));
        // The lane's registration, renewed (and no longer idle): the sweep's list.
        let mut registered = key(REGISTRY_PK.into(), job.lane.to_string());
        registered.insert("last_job".into(), s(job.id.to_string()));
        registered.insert(
            "expires_at".into(),
            n(job.enqueued_at / 1000 + REGISTRATION_DAYS * 86_400),
        );
        let mut items = vec![
            self.put(item, Some("attribute_not_exists(pk)"))?,
            self.put(pending, None)?,
            self.put(locator, None)?,
            self.put(registered, None)?,
        ];
        for (part, ids) in uploads.chunks(UPLOAD_IDS_PER_ITEM).enumerate() {
            items.push(self.put(uploads_item(job, part, ids), None)?);
        }
        within_a_transaction(&items, &job.id)?;
        match self.transaction(items).await? {
            Transacted::Done => Ok(Enqueued::Added),
            // Only the job's put has a condition: a job enqueued before.
            Transacted::FirstConditionFailed | Transacted::ConditionFailed => {
                Ok(Enqueued::AlreadyQueued)
            }
        }
    }
}
