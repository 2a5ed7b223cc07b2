//! What the table keeps for reading later: [`KeepReports`] (a run's report and its two
//! history indexes) and [`RecordDropped`] (uploads no route took, by the hour).

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use tracing::instrument;

use super::table::{table_class, unprocessed};
use super::{
    AwsLanes, BATCH_ATTEMPTS, RETENTION_SECONDS, dropped_pk, history_pk, json, key, lane_pk, n,
};
use crate::aws::classify;
use crate::domain::text::hex;
use crate::error::{AwsError, FerryError};
use crate::lanes::record::{DroppedUpload, KeptReport};
use crate::ports::{KeepReports, RecordDropped};

/// Items to a `BatchWriteItem` call: at most 25 put or delete requests (DynamoDB API
/// reference, BatchWriteItem).
const ITEMS_PER_BATCH: usize = 25;

impl KeepReports for AwsLanes {
    /// One transaction of three unconditional puts: the report whole (`ferry watch` reads it
    /// by run), and its summary in two indexes, by lane and by day, newest first (`ferry
    /// history` reads only what it prints). A retried `notify` writes the same report again.
    /// They expire with the run's record.
    #[instrument(skip(self, report), fields(lane = %report.lane, run = %report.run))]
    async fn keep_report(&self, report: &KeptReport) -> Result<(), FerryError> {
        let at = report.published_at;
        let expires = n(at / 1000 + RETENTION_SECONDS);
        let summary = KeptReport {
            text: String::new(),
            ..report.clone()
        };
        let items = [
            (
                lane_pk(&report.lane),
                format!("report#{}", report.run),
                json(report),
            ),
            (
                lane_pk(&report.lane),
                format!("reported#{at:020}#{}", report.run),
                json(&summary),
            ),
            (
                history_pk(at),
                format!("{at:020}#{}", report.run),
                json(&summary),
            ),
        ];
        let puts = items
            .into_iter()
            .map(|(pk, sk, doc)| {
                let mut item = key(pk, sk);
                item.insert("doc_json".into(), doc);
                item.insert("expires_at".into(), expires.clone());
                self.put(item, None)
            })
            .collect::<Result<Vec<_>, _>>()?;
        // No condition: a failure is an error, never a condition.
        self.transact(puts).await?;
        Ok(())
    }
}

impl RecordDropped for AwsLanes {
    /// `BatchWriteItem`, 25 to a call; what DynamoDB leaves unprocessed is written again with
    /// backoff, and a write that still leaves some is an error (the caller fails the messages,
    /// which come back).
    #[instrument(skip(self, uploads), fields(uploads = uploads.len()))]
    async fn record_dropped(&self, uploads: &[DroppedUpload]) -> Result<(), FerryError> {
        const OP: &str = "BatchWriteItem";
        for (n, chunk) in uploads.chunks(ITEMS_PER_BATCH).enumerate() {
            let mut requests = chunk
                .iter()
                .enumerate()
                .map(|(i, upload)| dropped_put(upload, n * ITEMS_PER_BATCH + i))
                .collect::<Result<Vec<WriteRequest>, FerryError>>()?;
            for attempt in 0..BATCH_ATTEMPTS {
                let answer = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| {
                        let class = e.as_service_error().and_then(table_class);
                        classify(OP, e, class)
                    })?;
                requests = answer
                    .unprocessed_items
                    .and_then(|mut left| left.remove(&self.table))
                    .unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
                self.pause(attempt).await;
            }
            if !requests.is_empty() {
                return Err(unprocessed(OP, requests.len(), "of the dropped uploads"));
            }
        }
        Ok(())
    }
}

/// The put of one dropped upload: its hour's partition; a sort key of its time and a digest of
/// what it is and where it stood in its batch, so that two invocations in the same millisecond
/// never overwrite each other's (and a redelivered batch writes the same items again).
fn dropped_put(upload: &DroppedUpload, index: usize) -> Result<WriteRequest, FerryError> {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(serde_json::to_vec(upload).unwrap_or_default())
        .chain_update(index.to_be_bytes())
        .finalize();
    let sort = format!("{:020}#{}", upload.at, hex(&digest, 16));
    let mut item = key(dropped_pk(upload.at), sort);
    item.insert("doc_json".into(), json(upload));
    item.insert("expires_at".into(), n(upload.at / 1000 + RETENTION_SECONDS));
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(|e| FerryError::AwsService {
            source: AwsError::malformed("BatchWriteItem", &e.to_string()),
        })?;
    Ok(WriteRequest::builder().put_request(put).build())
}
