//! The lane's lease: [`LaneLease`] (acquire, renew, release, hand over) and the registry's
//! idle mark.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use tracing::instrument;

use super::table::{Conditional, table_class};
use super::{AwsLanes, REGISTRY_PK, key, lease_lost, n, number, s, text};
use crate::aws::classify;
use crate::error::FerryError;
use crate::lanes::record::{Lease, LeaseRequest, Leased, Millis};
use crate::lanes::{JobId, LaneId};
use crate::ports::LaneLease;

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

/// `Ok` when an update of the lane item conditional on `owner`'s lease happened; the lease
/// lost otherwise.
fn kept(answer: Conditional, lane: &LaneId, owner: &str) -> Result<(), FerryError> {
    match answer {
        Conditional::Done => Ok(()),
        Conditional::Failed(_) => Err(lease_lost(lane, owner)),
    }
}
