//! The lane table in DynamoDB: [`AwsLanes`] behind [`LaneQueue`](crate::ports::LaneQueue),
//! [`LaneLease`](crate::ports::LaneLease) and [`LaneRuns`](crate::ports::LaneRuns).
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
//!
//! Here: the table's keys and items, and how an item is weighed. The ports' implementations
//! are children by concern: `table.rs` (the DynamoDB calls they are built from), `view.rs`
//! (reads), `queue.rs` (enqueues), `lease.rs`, `runs.rs` (a run's claim, jobs and end),
//! `reports.rs` (kept reports, dropped uploads) and `wake.rs` (wake slots).

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::SharedAsyncSleep;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::budget;
use crate::error::{AwsError, FerryError};
use crate::lanes::record::{Millis, RunId, RunJob};
use crate::lanes::{JobId, LaneId};

mod lease;
mod queue;
mod reports;
mod runs;
mod table;
mod view;
mod wake;

/// How long finished jobs and runs are kept (TTL): 30 days.
const RETENTION_SECONDS: u64 = 30 * 24 * 60 * 60;

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

fn lease_lost(lane: &LaneId, owner: &str) -> FerryError {
    FerryError::LeaseLost {
        lane: lane.to_string(),
        owner: owner.to_owned(),
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

#[cfg(test)]
mod tests;
