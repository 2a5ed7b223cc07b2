//! The lane table in DynamoDB: [`AwsLanes`] behind [`LaneQueue`], [`LaneLease`] and
//! [`LaneRuns`].
//!
//! One table, keys `pk` and `sk` (strings), TTL attribute `expires_at` (epoch seconds, set on
//! finished jobs and runs only; DynamoDB deletes expired items within days, so nothing reads
//! them as current). Items:
//!
//! | `pk` | `sk` | what |
//! |---|---|---|
//! | `lane#{lane}` | `lane` | the lease (`lease_owner`, `lease_until`) and the run in flight (`run_id`) |
//! | `lane#{lane}` | `pending#{enqueued_at:020}#{job}` | a pending job, oldest first (`doc_json`) |
//! | `lane#{lane}` | `uploads#{enqueued_at:020}#{job}#{part}` | the uploads an `s3-trigger` job covers (`upload_ids`: 16-byte ids side by side), kept 15 days |
//! | `lane#{lane}` | `job#{job}` | a job's state (`job_state`, `run_id`, `doc_json`) |
//! | `lane#{lane}` | `report#{run}` | a run's report as published (`doc_json`: summary and text) |
//! | `lane#{lane}` | `reported#{published_at:020}#{run}` | its summary, the lane's history newest last |
//! | `history#{day}` | `{published_at:020}#{run}` | its summary, every lane's history of that day |
//! | `lane#{lane}` | `run#{run}` | a run (`run_state`, `doc_json`; `adoptions`, `start_attempted_at` and the cancel marks `cancel_json`, `canceled_outside_at`, beside it) |
//! | `lane#{lane}` | `member#{run}#{enqueued_at:020}#{job}` | a job the run took, oldest first (`doc_json`: its summary for the report) |
//! | `job#{job}` | `job` | which lane a job is in (`lane_key`) |
//! | `lanes` | `{lane}` | the registry: every lane with a job queued in the last 31 days (`last_job`, `expires_at`; `idle_since` once its runner released it with nothing pending), the sweep's list |
//! | `wake` | `{execution ARN}` | a DataSync run's wake slot (`lane_key`, `run_id`, `slot_owner`, `wake_token` while its runner waits, `woke_at` for a wake no runner waited for) |
//!
//! Records are the lane module's types as JSON in `doc_json`; the attributes conditions test are
//! top-level, named so that none is a DynamoDB reserved word (`state` and `status` are: Developer
//! Guide, "Reserved words in DynamoDB"). Every change that must hold together is one conditional write or one transaction
//! (`TransactWriteItems`, at most 100 items; DynamoDB developer guide, "Amazon DynamoDB
//! Transactions"), packed by [`budget::transactions`] within 100 actions and 4 MB, each action
//! weighed as the item it writes or removes. Items are at most 400 KB: a job's and a run's
//! records hold a spec of at most [`budget::SPEC_BYTES`], and a run's job list is not one item
//! but one member item per job.

use std::collections::{HashMap, HashSet};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{AsyncSleep, SharedAsyncSleep};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Delete, Put, PutRequest, ReturnValue, ReturnValuesOnConditionCheckFailure,
    TransactWriteItem, Update, WriteRequest,
};
use aws_smithy_runtime_api::client::result::SdkError;
use tracing::instrument;

use super::{Class, classify, send};
use crate::budget;
use crate::domain::text::hex;
use crate::error::{AwsError, FerryError};
use crate::ids::{DataSyncExecutionArn, UploadId};
use crate::lanes::record::{
    CancelRequest, DroppedUpload, Enqueued, JobEnd, JobRecord, JobState, KeptReport, LaneState,
    Lease, LeaseRequest, Leased, Millis, QueuedJob, REGISTRATION_DAYS, Registered, RunId, RunJob,
    RunRecord, RunState,
};
use crate::lanes::{JobId, LaneId};
use crate::ports::{
    KeepReports, LaneLease, LaneQueue, LaneRuns, LaneView, NoteRuns, Noted, Parked, QueuedUploads,
    ReadQueued, ReadRuns, RecordDropped, WakeSlot, WakeSlots,
};

/// How long finished jobs and runs are kept (TTL): 30 days.
const RETENTION_SECONDS: u64 = 30 * 24 * 60 * 60;
/// What a job's item may hold beyond its record (`doc_json`): keys, attribute names, its state,
/// run id and expiry. Weighing a transaction's actions with it over-counts, never under.
const JOB_ITEM_EXTRA_BYTES: usize = 4 * 1024;

/// How long member items are kept (TTL from the claim): a run lasts at most its jobs' 30-day
/// timeout, and its record is kept 30 days after.
const MEMBER_RETENTION_SECONDS: u64 = 2 * RETENTION_SECONDS;

/// Most keys to a `BatchGetItem` call (DynamoDB API reference, BatchGetItem).
const KEYS_PER_BATCH_GET: usize = 100;

/// Items to a `BatchWriteItem` call: at most 25 put or delete requests (DynamoDB API
/// reference, BatchWriteItem).
const ITEMS_PER_BATCH: usize = 25;

/// How often items DynamoDB left unprocessed (throttled) are written again, with a growing pause,
/// before the write fails (the API reference advises retrying them with backoff).
const BATCH_ATTEMPTS: u32 = 5;

/// Dropped uploads are kept by the hour: `dropped#<hours since the epoch>`, so that a burst
/// spreads over partitions and a look back reads only the hours it covers.
fn dropped_pk(at: Millis) -> String {
    format!("dropped#{}", at / 3_600_000)
}

type Item = HashMap<String, AttributeValue>;

/// The lane table.
#[derive(Debug, Clone)]
pub struct AwsLanes {
    client: Client,
    table: String,
    sleep: Option<SharedAsyncSleep>,
}

impl AwsLanes {
    pub fn new(config: &aws_config::SdkConfig, table: &str) -> Self {
        AwsLanes::from_client(Client::new(config), table)
    }

    pub fn from_client(client: Client, table: &str) -> Self {
        AwsLanes {
            // The SDK runtime's sleep, for pauses between writes of unprocessed items.
            sleep: Client::config(&client).sleep_impl(),
            client,
            table: table.to_owned(),
        }
    }
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn lane_pk(lane: &LaneId) -> String {
    format!("lane#{lane}")
}

fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

fn pending_sk(enqueued_at: Millis, job: &JobId) -> String {
    format!("pending#{enqueued_at:020}#{job}")
}

/// Where the uploads a job covers are kept, oldest job first (a redelivery reads from the
/// time its message was sent).
const UPLOADS_PREFIX: &str = "uploads#";

/// Upload ids per `uploads#` item: 16,384 × 16 bytes = 256 KiB, within an item's 400 KB with
/// room for its keys. An invocation carries at most 6 MB (Lambda's payload limit), a few
/// thousand to some 70,000 records, so a job's ids take at most a few items, and the enqueue
/// transaction stays within 100 actions and 4 MB (checked before it is sent).
const UPLOAD_IDS_PER_ITEM: usize = 16_384;

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

fn member_prefix(run: &RunId) -> String {
    format!("member#{run}#")
}

fn member_sk(run: &RunId, job: &RunJob) -> String {
    format!("{}{:020}#{}", member_prefix(run), job.enqueued_at, job.id)
}

/// A record as the `doc_json` attribute holds it.
fn json<T: serde::Serialize>(record: &T) -> AttributeValue {
    // Records are plain data (strings, numbers, lists): serializing them cannot fail.
    s(serde_json::to_string(record).unwrap_or_default())
}

/// The `doc_json` of an item, read back.
fn record<T: serde::de::DeserializeOwned>(
    operation: &'static str,
    item: &Item,
) -> Result<T, FerryError> {
    let text = item
        .get("doc_json")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| malformed(operation, "an item without its record"))?;
    serde_json::from_str(text)
        .map_err(|e| malformed(operation, &format!("a record that does not parse: {e}")))
}

fn number(item: &Item, name: &str) -> Option<u64> {
    item.get(name)?.as_n().ok()?.parse().ok()
}

fn text(item: &Item, name: &str) -> Option<String> {
    item.get(name)?.as_s().ok().cloned()
}

fn malformed(operation: &'static str, what: &str) -> FerryError {
    FerryError::AwsService {
        source: AwsError::malformed(operation, what),
    }
}

fn request_error(operation: &'static str, error: impl std::fmt::Display) -> FerryError {
    FerryError::AwsService {
        source: AwsError::request(operation, error),
    }
}

/// DynamoDB's own classes: a missing table is the deployment's, not the job's.
fn table_class<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(
    error: &E,
) -> Option<Class> {
    (error.code() == Some("ResourceNotFoundException")).then_some(Class::NotFound)
}

/// True when a transaction was cancelled because its first item's condition failed; the
/// reasons list one code per item, in order (API reference, `TransactionCanceledException`).
fn first_condition_failed<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .first()
            .and_then(|r| r.code())
            .is_some_and(|code| code == "ConditionalCheckFailed"),
        _ => false,
    }
}

/// True when any item's condition failed.
fn a_condition_failed<R>(error: &SdkError<TransactWriteItemsError, R>) -> bool {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
            .cancellation_reasons()
            .iter()
            .any(|r| r.code() == Some("ConditionalCheckFailed")),
        _ => false,
    }
}

/// A transaction another one raced with is worth retrying soon.
fn transaction_class(error: &TransactWriteItemsError) -> Option<Class> {
    match error {
        TransactWriteItemsError::TransactionCanceledException(e)
            if e.cancellation_reasons()
                .iter()
                .any(|r| r.code() == Some("TransactionConflict")) =>
        {
            Some(Class::Throttled)
        }
        TransactWriteItemsError::TransactionInProgressException(_) => Some(Class::Throttled),
        TransactWriteItemsError::ResourceNotFoundException(_) => Some(Class::NotFound),
        other => table_class(other),
    }
}

fn lease_lost(lane: &LaneId, owner: &str) -> FerryError {
    FerryError::LeaseLost {
        lane: lane.to_string(),
        owner: owner.to_owned(),
    }
}

impl AwsLanes {
    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, FerryError> {
        within_an_item(&item)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(|e| request_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete(&self, key: Item) -> Result<TransactWriteItem, FerryError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(|e| request_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    fn update(
        &self,
        key: Item,
        expression: &str,
        condition: Option<&str>,
        values: Item,
    ) -> Result<TransactWriteItem, FerryError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_values((!values.is_empty()).then_some(values))
            .build()
            .map_err(|e| request_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// Runs `items` as one transaction; `Ok(false)` when a condition failed.
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, FerryError> {
        Ok(self.transaction(items).await? == Transacted::Done)
    }

    /// Runs `items` as one transaction and says which condition failed, if one did.
    async fn transaction(&self, items: Vec<TransactWriteItem>) -> Result<Transacted, FerryError> {
        const OP: &str = "TransactWriteItems";
        let answer = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Transacted::Done),
            Err(e) if first_condition_failed(&e) => Ok(Transacted::FirstConditionFailed),
            Err(e) if a_condition_failed(&e) => Ok(Transacted::ConditionFailed),
            Err(e) => {
                let class = e.as_service_error().and_then(transaction_class);
                Err(classify(OP, e, class))
            }
        }
    }

    /// A conditional update of the lane item: `Failed` with the item as it was when the
    /// condition did not hold.
    async fn update_lane(
        &self,
        lane: &LaneId,
        expression: &str,
        condition: &str,
        values: Item,
    ) -> Result<Conditional, FerryError> {
        const OP: &str = "UpdateItem";
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(lane_pk(lane), "lane")))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match answer {
            Ok(_) => Ok(Conditional::Done),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => Ok(
                    Conditional::Failed(failed.item().cloned().unwrap_or_default()),
                ),
                _ => {
                    let class = e.as_service_error().and_then(table_class);
                    Err(classify(OP, e, class))
                }
            },
        }
    }

    async fn get(&self, key: Item) -> Result<Option<Item>, FerryError> {
        let request = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send();
        let output = send("GetItem", request, table_class).await?;
        Ok(output.item)
    }

    /// Every item of `pk` whose sort key starts with `prefix`, in order, up to `limit`.
    async fn query(&self, pk: String, prefix: &str, limit: usize) -> Result<Vec<Item>, FerryError> {
        self.query_within(pk, prefix, limit, usize::MAX).await
    }

    /// As [`AwsLanes::query`], stopping once the items' records (`doc_json`) weigh `max_bytes`
    /// (the first item is always read).
    async fn query_within(
        &self,
        pk: String,
        prefix: &str,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<Item>, FerryError> {
        let mut items = Vec::new();
        let mut bytes = 0usize;
        let mut start: Option<Item> = None;
        loop {
            let page_size = i32::try_from(limit - items.len())
                .unwrap_or(i32::MAX)
                .max(1);
            let request = self
                .key_query(&pk, prefix)
                .consistent_read(true)
                .limit(page_size)
                .set_exclusive_start_key(start.take())
                .send();
            let page = send("Query", request, table_class).await?;
            for item in page.items.unwrap_or_default() {
                let weight = text_len(&item, "doc_json");
                if items.len() >= limit || (!items.is_empty() && bytes + weight > max_bytes) {
                    return Ok(items);
                }
                bytes += weight;
                items.push(item);
            }
            match page.last_evaluated_key {
                Some(last) if items.len() < limit => start = Some(last),
                _ => return Ok(items),
            }
        }
    }

    /// Up to `limit` items of `pk` whose sort key lies between `from` and `to`, newest (last)
    /// first, every page until `limit`.
    async fn newest(
        &self,
        pk: &str,
        (from, to): (&str, &str),
        limit: usize,
    ) -> Result<Vec<Item>, FerryError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        while items.len() < limit {
            let request = self
                .range_query(pk, (from, to))
                .scan_index_forward(false)
                .limit(i32::try_from(limit - items.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send();
            let page = send("Query", request, table_class).await?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(last) => start = Some(last),
                None => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// A Query of the items of `pk` whose sort key lies between `from` and `to`.
    fn range_query(
        &self,
        pk: &str,
        (from, to): (&str, &str),
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        let values = HashMap::from([
            (":pk".to_owned(), s(pk)),
            (":from".to_owned(), s(from)),
            (":to".to_owned(), s(to)),
        ]);
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
            .set_expression_attribute_values(Some(values))
    }

    /// A Query of the items of `pk` whose sort key starts with `prefix` (all of `pk` when it
    /// is empty).
    fn key_query(
        &self,
        pk: &str,
        prefix: &str,
    ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder {
        // DynamoDB refuses an empty string as a key value, `begins_with`'s included: the
        // whole partition is `pk` alone.
        let mut values = HashMap::from([(":pk".to_owned(), s(pk))]);
        let condition = if prefix.is_empty() {
            "pk = :pk"
        } else {
            values.insert(":prefix".to_owned(), s(prefix));
            "pk = :pk AND begins_with(sk, :prefix)"
        };
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
    }

    /// How many items of `pk` under `prefix` there are, counted up to `limit` (`Select` COUNT:
    /// nothing is returned but the count, page by page).
    async fn count(&self, pk: String, prefix: &str, limit: usize) -> Result<usize, FerryError> {
        let mut count = 0usize;
        let mut start: Option<Item> = None;
        loop {
            let request = self
                .key_query(&pk, prefix)
                .consistent_read(true)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .limit(i32::try_from(limit - count).unwrap_or(i32::MAX).max(1))
                .set_exclusive_start_key(start.take())
                .send();
            let page = send("Query", request, table_class).await?;
            count += usize::try_from(page.count).unwrap_or_default();
            match page.last_evaluated_key {
                Some(last) if count < limit => start = Some(last),
                _ => return Ok(count.min(limit)),
            }
        }
    }

    /// The items with `keys`, consistently, every page (`BatchGetItem`, 100 keys to a call;
    /// keys DynamoDB leaves unprocessed are asked for again, with backoff).
    async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, FerryError> {
        const OP: &str = "BatchGetItem";
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_BATCH_GET) {
            let mut wanted = chunk.to_vec();
            for attempt in 0..BATCH_ATTEMPTS {
                let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                    .set_keys(Some(wanted))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| request_error(OP, e))?;
                let answer = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| {
                        let class = e.as_service_error().and_then(table_class);
                        classify(OP, e, class)
                    })?;
                if let Some(mut found) = answer.responses {
                    items.extend(found.remove(&self.table).unwrap_or_default());
                }
                wanted = answer
                    .unprocessed_keys
                    .and_then(|mut left| left.remove(&self.table))
                    .map(|k| k.keys)
                    .unwrap_or_default();
                if wanted.is_empty() {
                    break;
                }
                self.pause(attempt).await;
            }
            if !wanted.is_empty() {
                return Err(unprocessed(OP, wanted.len(), "keys"));
            }
        }
        Ok(items)
    }

    /// The pause before writing (or reading) again what DynamoDB left unprocessed: doubling
    /// from 50 ms.
    async fn pause(&self, attempt: u32) {
        if let Some(sleep) = &self.sleep {
            sleep
                .sleep(std::time::Duration::from_millis(50u64 << attempt))
                .await;
        }
    }
}

/// `Ok` when `item` fits one DynamoDB item ([`budget::ITEM_BYTES`], as DynamoDB counts it):
/// checked before every put, so that a size is never discovered by DynamoDB. The budgets
/// upstream (a job's spec, a run's merge) keep every item far within it; this names the item
/// if one ever is not.
fn within_an_item(item: &Item) -> Result<(), FerryError> {
    let what = || {
        let sk = text(item, "sk").unwrap_or_default();
        format!(
            "the lane table item {}",
            crate::domain::text::truncate_chars(&sk, 80)
        )
    };
    budget::within(what(), item_bytes(item), budget::ITEM_BYTES)?;
    Ok(())
}

/// What DynamoDB counts an item as, in bytes (Developer Guide, "Item sizes and formats"): each
/// attribute's name (UTF-8) and value; a string its UTF-8 bytes, a number about one byte per two
/// significant digits plus one (counted here at its most), binary its length, a boolean or null
/// one byte, a list or map 3 bytes plus one per element plus its elements (and, for a map, its
/// names). The lane table's items stay within [`budget::ITEM_BYTES`] by this count.
pub fn item_bytes(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_bytes(value))
        .sum()
}

fn value_bytes(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(text) => text.len(),
        AttributeValue::N(number) => number.len().div_ceil(2) + 1,
        AttributeValue::B(blob) => blob.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(set) => set.iter().map(String::len).sum(),
        AttributeValue::Ns(set) => set.iter().map(|n| n.len().div_ceil(2) + 1).sum(),
        AttributeValue::Bs(set) => set.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value_bytes(v)).sum::<usize>(),
        AttributeValue::M(map) => {
            3 + map
                .iter()
                .map(|(k, v)| 1 + k.len() + value_bytes(v))
                .sum::<usize>()
        }
        // A kind this SDK does not know: counted as nothing it could be smaller than.
        _ => 0,
    }
}

const DAY_MS: Millis = 86_400_000;

/// The history index's partition of the day of `at`: every lane's reports of that day.
fn history_pk(at: Millis) -> String {
    format!("history#{}", at / DAY_MS)
}

/// The registry's partition: one item per lane (`sk` its key).
const REGISTRY_PK: &str = "lanes";

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

/// What DynamoDB still left unprocessed after every attempt: throttling, as the caller sees it.
fn unprocessed(operation: &'static str, count: usize, what: &str) -> FerryError {
    FerryError::Throttled {
        source: AwsError::malformed(
            operation,
            &format!("{count} {what} were still unprocessed after {BATCH_ATTEMPTS} attempts"),
        ),
    }
}

/// UTF-8 bytes of a string attribute (0 when absent).
fn text_len(item: &Item, name: &str) -> usize {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map_or(0, String::len)
}

/// What a conditional write did.
enum Conditional {
    Done,
    Failed(Item),
}

/// What a transaction did: the conditions of a transaction are checked together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transacted {
    Done,
    FirstConditionFailed,
    ConditionFailed,
}

impl ReadRuns for AwsLanes {
    #[instrument(skip(self))]
    async fn run(&self, lane: &LaneId, id: &RunId) -> Result<Option<RunRecord>, FerryError> {
        let item = self.get(key(lane_pk(lane), format!("run#{id}"))).await?;
        item.map(|item| stored_run_of(&item)).transpose()
    }
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

impl LaneLease for AwsLanes {
    #[instrument(skip(self))]
    async fn acquire(&self, request: &LeaseRequest) -> Result<Leased, FerryError> {
        let answer = self
            .update_lane(
                &request.lane,
                "SET lease_owner = :owner, lease_until = :until",
                "attribute_not_exists(lease_owner) OR lease_until < :now OR lease_owner = :owner",
                HashMap::from([
                    (":owner".into(), s(&request.owner)),
                    (":until".into(), n(request.until)),
                    (":now".into(), n(request.now)),
                ]),
            )
            .await?;
        Ok(match answer {
            Conditional::Done => Leased::Acquired,
            Conditional::Failed(old) => Leased::HeldBy(Lease {
                owner: text(&old, "lease_owner").unwrap_or_default(),
                until: number(&old, "lease_until").unwrap_or_default(),
            }),
        })
    }

    #[instrument(skip(self))]
    async fn renew(&self, lane: &LaneId, owner: &str, until: Millis) -> Result<(), FerryError> {
        self.change_lease(lane, owner, LeaseChange::Renew { until })
            .await
    }

    #[instrument(skip(self))]
    async fn release(&self, lane: &LaneId, owner: &str) -> Result<(), FerryError> {
        self.change_lease(lane, owner, LeaseChange::Release).await
    }

    /// One conditional `UpdateItem` of the registration: only while it still names `seen`.
    #[instrument(skip(self))]
    async fn mark_idle(
        &self,
        lane: &LaneId,
        seen: Option<&JobId>,
        now: Millis,
    ) -> Result<bool, FerryError> {
        const OP: &str = "UpdateItem";
        let mut values = HashMap::from([(":now".to_owned(), n(now))]);
        let condition = match seen {
            Some(job) => {
                values.insert(":seen".into(), s(job.to_string()));
                "last_job = :seen"
            }
            None => "attribute_exists(pk) AND attribute_not_exists(last_job)",
        };
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(REGISTRY_PK.into(), lane.to_string())))
            .update_expression("SET idle_since = :now")
            .condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .send()
            .await;
        match answer {
            Ok(_) => Ok(true),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(_)) => Ok(false),
                _ => {
                    let class = e.as_service_error().and_then(table_class);
                    Err(classify(OP, e, class))
                }
            },
        }
    }

    #[instrument(skip(self))]
    async fn hand_over(&self, from: &str, to: &LeaseRequest) -> Result<(), FerryError> {
        let change = LeaseChange::HandOver {
            to: &to.owner,
            until: to.until,
        };
        self.change_lease(&to.lane, from, change).await
    }
}

/// A change to a lane's lease that only its holder may make.
enum LeaseChange<'a> {
    Renew {
        until: Millis,
    },
    /// Only with no run in flight: a runner with a run cannot give the lane up.
    Release,
    HandOver {
        to: &'a str,
        until: Millis,
    },
}

impl AwsLanes {
    /// Makes `change` while the lease is `owner`'s; [`FerryError::LeaseLost`] otherwise.
    async fn change_lease(
        &self,
        lane: &LaneId,
        owner: &str,
        change: LeaseChange<'_>,
    ) -> Result<(), FerryError> {
        let mut values = HashMap::from([(":owner".to_owned(), s(owner))]);
        let (expression, condition) = match change {
            LeaseChange::Renew { until } => {
                values.insert(":until".into(), n(until));
                ("SET lease_until = :until", "lease_owner = :owner")
            }
            LeaseChange::Release => (
                "REMOVE lease_owner, lease_until",
                "lease_owner = :owner AND attribute_not_exists(run_id)",
            ),
            LeaseChange::HandOver { to, until } => {
                values.insert(":to".into(), s(to));
                values.insert(":until".into(), n(until));
                (
                    "SET lease_owner = :to, lease_until = :until",
                    // Or passed to `to` already: a retried hand-over whose first attempt
                    // landed (its answer lost) goes on.
                    "lease_owner = :owner OR lease_owner = :to",
                )
            }
        };
        let answer = self
            .update_lane(lane, expression, condition, values)
            .await?;
        kept(answer, lane, owner)
    }
}

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
                    Some("run_id = :run"),
                    HashMap::from([
                        (":state".into(), s(state.as_str())),
                        (":expires".into(), expires.clone()),
                        (":run".into(), s(run.id.0.clone())),
                    ]),
                )?;
                Ok((vec![update], member.weight + JOB_ITEM_EXTRA_BYTES))
            })
            .collect::<Result<Vec<_>, FerryError>>()?;
        for (_, items) in packed(groups) {
            // A job this run does not hold any more (it cannot happen but by hand) keeps its
            // state; redo the transaction item by item so the others still end.
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

/// `Ok` when an update of the lane item conditional on `owner`'s lease happened; the lease
/// lost otherwise.
fn kept(answer: Conditional, lane: &LaneId, owner: &str) -> Result<(), FerryError> {
    match answer {
        Conditional::Done => Ok(()),
        Conditional::Failed(_) => Err(lease_lost(lane, owner)),
    }
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

#[cfg(test)]
mod tests;

/// The wake slots' partition: one, since at most one run waits per DataSync task and the check
/// reads them all.
const WAKE_PK: &str = "wake";

fn slot_key(execution: &DataSyncExecutionArn) -> Item {
    key(WAKE_PK.to_owned(), execution.as_str())
}

/// The slot's attributes, as `open_slot` and `park` write them.
fn slot_values(slot: &WakeSlot, expires_at: Millis) -> Item {
    HashMap::from([
        (":lane".to_owned(), s(slot.lane.to_string())),
        (":run".to_owned(), s(slot.run.0.clone())),
        (":owner".to_owned(), s(slot.owner.clone())),
        (
            ":heartbeat".to_owned(),
            n(u64::from(slot.heartbeat_seconds)),
        ),
        (":expires".to_owned(), n(expires_at / 1000)),
    ])
}

const SLOT_SET: &str = "SET lane_key = :lane, run_id = :run, slot_owner = :owner, heartbeat_seconds = :heartbeat, expires_at = :expires";

/// A slot read back (`None`: not a whole slot).
fn slot_of(item: &Item) -> Option<WakeSlot> {
    Some(WakeSlot {
        execution: DataSyncExecutionArn::parse(&text(item, "sk")?).ok()?,
        lane: LaneId::parse(&text(item, "lane_key")?).ok()?,
        run: RunId(text(item, "run_id")?),
        owner: text(item, "slot_owner")?,
        token: text(item, "wake_token"),
        heartbeat_seconds: u32::try_from(number(item, "heartbeat_seconds")?).ok()?,
    })
}

impl AwsLanes {
    /// One `UpdateItem` of a wake slot; with `old`, the item as it was before (ALL_OLD).
    async fn update_slot(
        &self,
        execution: &DataSyncExecutionArn,
        (expression, condition): (&str, Option<&str>),
        values: Item,
        old: bool,
    ) -> Result<(Conditional, Option<Item>), FerryError> {
        const OP: &str = "UpdateItem";
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(slot_key(execution)))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_values(Some(values).filter(|v| !v.is_empty()))
            .return_values(if old {
                ReturnValue::AllOld
            } else {
                ReturnValue::None
            })
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match answer {
            Ok(output) => Ok((Conditional::Done, output.attributes)),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(failed)) => Ok((
                    Conditional::Failed(failed.item().cloned().unwrap_or_default()),
                    None,
                )),
                _ => {
                    let class = e.as_service_error().and_then(table_class);
                    Err(classify(OP, e, class))
                }
            },
        }
    }
}

/// Every change to a slot is one conditional `UpdateItem` on it, so a runner parking its token
/// and a wake arriving cannot miss each other: the wake takes the token, or notes itself where
/// the park's condition sees it.
impl WakeSlots for AwsLanes {
    #[instrument(skip(self, slot), fields(execution = %slot.execution))]
    async fn open_slot(&self, slot: &WakeSlot, expires_at: Millis) -> Result<(), FerryError> {
        let values = slot_values(slot, expires_at);
        self.update_slot(&slot.execution, (SLOT_SET, None), values, false)
            .await?;
        Ok(())
    }

    #[instrument(skip(self, slot), fields(execution = %slot.execution))]
    async fn park(&self, slot: &WakeSlot, expires_at: Millis) -> Result<Parked, FerryError> {
        let mut values = slot_values(slot, expires_at);
        let token = slot.token.clone().unwrap_or_default();
        values.insert(":token".into(), s(token));
        let expression = format!("{SLOT_SET}, wake_token = :token");
        let condition = Some("attribute_not_exists(woke_at)");
        let (parked, _) = self
            .update_slot(&slot.execution, (&expression, condition), values, false)
            .await?;
        if matches!(parked, Conditional::Done) {
            return Ok(Parked::Waiting);
        }
        // The wake noted is this runner's: taken, so the next park waits.
        self.update_slot(
            &slot.execution,
            ("REMOVE woke_at", None),
            Item::new(),
            false,
        )
        .await?;
        Ok(Parked::AlreadyWoken)
    }

    #[instrument(skip(self))]
    async fn take_token(
        &self,
        execution: &DataSyncExecutionArn,
        now: Millis,
    ) -> Result<Option<WakeSlot>, FerryError> {
        let values = HashMap::from([(":now".to_owned(), n(now))]);
        let change = (
            "REMOVE wake_token SET woken_at = :now",
            Some("attribute_exists(wake_token)"),
        );
        match self.update_slot(execution, change, values, true).await? {
            (Conditional::Done, Some(old)) => Ok(slot_of(&old)),
            _ => Ok(None),
        }
    }

    #[instrument(skip(self))]
    async fn note_wake(
        &self,
        execution: &DataSyncExecutionArn,
        now: Millis,
    ) -> Result<Noted, FerryError> {
        let values = HashMap::from([(":now".to_owned(), n(now))]);
        let change = (
            "SET woke_at = :now",
            Some("attribute_exists(run_id) AND attribute_not_exists(wake_token)"),
        );
        Ok(
            match self.update_slot(execution, change, values, false).await? {
                (Conditional::Done, _) => Noted::Noted,
                (Conditional::Failed(item), _) if item.contains_key("wake_token") => {
                    Noted::TokenAppeared
                }
                (Conditional::Failed(_), _) => Noted::Unknown,
            },
        )
    }

    #[instrument(skip(self))]
    async fn waiting(&self) -> Result<Vec<WakeSlot>, FerryError> {
        let items = self.query(WAKE_PK.to_owned(), "", usize::MAX).await?;
        Ok(items
            .iter()
            .filter_map(slot_of)
            .filter(|slot| slot.token.is_some())
            .collect())
    }
}
