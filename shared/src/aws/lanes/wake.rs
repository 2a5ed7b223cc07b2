//! Wake slots: [`WakeSlots`], where a runner waiting on a DataSync run's end parks its token
//! and the run's end event finds it.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use tracing::instrument;

use super::table::{Conditional, table_class};
use super::{AwsLanes, Item, key, n, number, s, text};
use crate::aws::classify;
use crate::error::FerryError;
use crate::ids::DataSyncExecutionArn;
use crate::lanes::LaneId;
use crate::lanes::record::{Millis, RunId};
use crate::ports::{Noted, Parked, WakeSlot, WakeSlots};

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
