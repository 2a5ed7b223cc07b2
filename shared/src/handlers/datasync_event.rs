//! `datasync-event`: wakes the runner waiting for a DataSync run's end
//! ([`crate::lanes::wake`]).
//!
//! - An EventBridge "DataSync Task Execution State Change" event (the template's rule sends the
//!   final states, SUCCESS and ERROR, of this account's and region's executions; the execution
//!   ARN is in `resources`, the state in `detail.State`: EventBridge events reference, AWS
//!   DataSync events). The runner of the execution's run is woken, or the wake noted for it;
//!   an execution no run of Ferry's has is ignored. Duplicate, late and out-of-order events are
//!   harmless: the runner decides from `DescribeTaskExecution`, never from the event.
//! - `{"check": {}}` (a schedule): every waiting runner's execution is described; one that
//!   ended wakes its runner (its event was lost), one that runs gets a heartbeat and its
//!   runner's lease renewed.

use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::info;

use super::timing;
use crate::config::LaneConfig;
use crate::domain::parse;
use crate::error::FerryError;
use crate::ids::DataSyncExecutionArn;
use crate::lanes::wake::{self, Checked, Woke};
use crate::ports::{DescribeExecution, KeepRunnersWaiting, LaneLease, WakeRunners, WakeSlots};

/// The events the rule sends (EventBridge events reference, AWS DataSync events).
pub const SOURCE: &str = "aws.datasync";
pub const DETAIL_TYPE: &str = "DataSync Task Execution State Change";

/// An EventBridge event, as much of it as the function reads.
#[derive(Debug, Clone, Deserialize)]
pub struct StateChange {
    pub source: String,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub resources: Vec<String>,
    pub detail: StateDetail,
}

#[derive(Debug, Clone, Deserialize)]
pub struct StateDetail {
    #[serde(rename = "State")]
    pub state: String,
}

/// What the function did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EventOutput {
    Event {
        execution: DataSyncExecutionArn,
        state: String,
        woke: Woke,
    },
    Checked(Checked),
}

/// `{"check": {}}`, nothing else.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Check {
    #[serde(rename = "check")]
    _options: NoOptions,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoOptions {}

/// `ports`: the lane table (wake slots), Step Functions (tokens), DataSync (the check).
/// (The bounds stay inline: the security test reads them to derive the function's IAM policy.)
pub async fn handle<
    P: WakeSlots + LaneLease,
    S: WakeRunners + KeepRunnersWaiting,
    D: DescribeExecution,
>(
    (slots, runners, executions): &(P, S, D),
    config: &LaneConfig,
    event: LambdaEvent<Value>,
) -> Result<EventOutput, FerryError> {
    let timing = timing(config);
    if event.payload.get("check").is_some() {
        let _: Check = parse::from_value(event.payload, "")?;
        let checked =
            wake::check((slots, runners, executions), timing.lease_ms, timing.now).await?;
        return Ok(EventOutput::Checked(checked));
    }
    let (execution, state) = state_change(event.payload)?;
    let why = format!("a DataSync event: the execution is {state}");
    let woke = wake::wake((slots, runners), &execution, &why, timing.now).await?;
    info!(execution = %execution, state, woke = ?woke, "DataSync event");
    Ok(EventOutput::Event {
        execution,
        state,
        woke,
    })
}

/// The execution and state of a DataSync execution state change.
pub fn state_change(payload: Value) -> Result<(DataSyncExecutionArn, String), FerryError> {
    let invalid = |message: String| FerryError::InvalidEvent { message };
    let event: StateChange = parse::from_value(payload, "")
        .map_err(|e| invalid(format!("not an EventBridge DataSync event: {e}")))?;
    if event.source != SOURCE || event.detail_type != DETAIL_TYPE {
        return Err(invalid(format!(
            "source/detail-type: expected {SOURCE:?}/{DETAIL_TYPE:?} (the rule's pattern), got {:?}/{:?}",
            event.source, event.detail_type
        )));
    }
    let execution = event
        .resources
        .iter()
        .find_map(|r| DataSyncExecutionArn::parse(r).ok())
        .ok_or_else(|| {
            invalid(format!(
                "resources: expected a DataSync task execution ARN (arn:aws:datasync:region:account:task/task-id/execution/exec-id), got {:?}",
                event.resources
            ))
        })?;
    if event.detail.state.is_empty() {
        return Err(invalid("detail.State: empty".into()));
    }
    Ok((execution, event.detail.state))
}
