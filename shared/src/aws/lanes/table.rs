//! The DynamoDB calls the ports are built from: puts, deletes and updates for transactions,
//! conditional updates, reads and queries page by page, batch reads with backoff; and how
//! DynamoDB's errors become [`FerryError`]s.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    Delete, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_smithy_runtime_api::client::result::SdkError;

use super::{AwsLanes, BATCH_ATTEMPTS, Item, key, lane_pk, request_error, s, within_an_item};
use crate::aws::{Class, classify, send};
use crate::error::{AwsError, FerryError};
use crate::lanes::LaneId;

/// Most keys to a `BatchGetItem` call (DynamoDB API reference, BatchGetItem).
const KEYS_PER_BATCH_GET: usize = 100;

/// DynamoDB's own classes: a missing table is the deployment's, not the job's.
pub(super) fn table_class<E: aws_smithy_types::error::metadata::ProvideErrorMetadata>(
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

impl AwsLanes {
    pub(super) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
    ) -> Result<TransactWriteItem, FerryError> {
        within_an_item(&item)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_owned))
            .build()
            .map_err(|e| request_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(super) fn delete(&self, key: Item) -> Result<TransactWriteItem, FerryError> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .build()
            .map_err(|e| request_error("TransactWriteItems", e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    pub(super) fn update(
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
    pub(super) async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<bool, FerryError> {
        Ok(self.transaction(items).await? == Transacted::Done)
    }

    /// Runs `items` as one transaction and says which condition failed, if one did.
    pub(super) async fn transaction(
        &self,
        items: Vec<TransactWriteItem>,
    ) -> Result<Transacted, FerryError> {
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
    pub(super) async fn update_lane(
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

    pub(super) async fn get(&self, key: Item) -> Result<Option<Item>, FerryError> {
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
    pub(super) async fn query(
        &self,
        pk: String,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Item>, FerryError> {
        self.query_within(pk, prefix, limit, usize::MAX).await
    }

    /// As [`AwsLanes::query`], stopping once the items' records (`doc_json`) weigh `max_bytes`
    /// (the first item is always read).
    pub(super) async fn query_within(
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
    pub(super) async fn newest(
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
    pub(super) fn range_query(
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
    pub(super) async fn count(
        &self,
        pk: String,
        prefix: &str,
        limit: usize,
    ) -> Result<usize, FerryError> {
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
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> Result<Vec<Item>, FerryError> {
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
    pub(super) async fn pause(&self, attempt: u32) {
        if let Some(sleep) = &self.sleep {
            sleep
                .sleep(std::time::Duration::from_millis(50u64 << attempt))
                .await;
        }
    }
}

/// What DynamoDB still left unprocessed after every attempt: throttling, as the caller sees it.
pub(super) fn unprocessed(operation: &'static str, count: usize, what: &str) -> FerryError {
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
pub(super) enum Conditional {
    Done,
    Failed(Item),
}

/// What a transaction did: the conditions of a transaction are checked together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transacted {
    Done,
    FirstConditionFailed,
    ConditionFailed,
}
