//! Wake slots in the fake lane table ([`WakeSlots`]).

use super::FakeLanes;
use crate::error::FerryError;
use crate::ids::DataSyncExecutionArn;
use crate::lanes::record::Millis;
use crate::ports::{Noted, Parked, WakeSlot, WakeSlots};

impl FakeLanes {
    /// The wake slot of `execution`, and whether a wake is noted on it.
    pub fn slot(&self, execution: &DataSyncExecutionArn) -> Option<(WakeSlot, bool)> {
        let state = self.state.lock();
        let (slot, noted) = state.slots.get(execution.as_str())?;
        Some((slot.clone(), noted.is_some()))
    }
}

/// Each method is one step under the lock, as each is one conditional write in DynamoDB.
impl WakeSlots for FakeLanes {
    async fn open_slot(&self, slot: &WakeSlot, _expires_at: Millis) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        let entry = state
            .slots
            .entry(slot.execution.to_string())
            .or_insert_with(|| (slot.clone(), None));
        let token = entry.0.token.take();
        entry.0 = WakeSlot {
            token,
            ..slot.clone()
        };
        Ok(())
    }

    async fn park(&self, slot: &WakeSlot, _expires_at: Millis) -> Result<Parked, FerryError> {
        let mut state = self.state.lock();
        let entry = state
            .slots
            .entry(slot.execution.to_string())
            .or_insert_with(|| (slot.clone(), None));
        if entry.1.take().is_some() {
            return Ok(Parked::AlreadyWoken);
        }
        entry.0 = slot.clone();
        Ok(Parked::Waiting)
    }

    async fn take_token(
        &self,
        execution: &DataSyncExecutionArn,
        _now: Millis,
    ) -> Result<Option<WakeSlot>, FerryError> {
        let mut state = self.state.lock();
        let Some((slot, _)) = state.slots.get_mut(execution.as_str()) else {
            return Ok(None);
        };
        if slot.token.is_none() {
            return Ok(None);
        }
        let taken = slot.clone();
        slot.token = None;
        Ok(Some(taken))
    }

    async fn note_wake(
        &self,
        execution: &DataSyncExecutionArn,
        now: Millis,
    ) -> Result<Noted, FerryError> {
        let mut state = self.state.lock();
        Ok(match state.slots.get_mut(execution.as_str()) {
            None => Noted::Unknown,
            Some((slot, _)) if slot.token.is_some() => Noted::TokenAppeared,
            Some((_, noted)) => {
                *noted = Some(now);
                Noted::Noted
            }
        })
    }

    async fn waiting(&self) -> Result<Vec<WakeSlot>, FerryError> {
        let state = self.state.lock();
        Ok(state
            .slots
            .values()
            .filter(|(slot, _)| slot.token.is_some())
            .map(|(slot, _)| slot.clone())
            .collect())
    }
}
