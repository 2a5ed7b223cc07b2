//! What the workspace-level tests in `tests/tests/` share.

use ferry::config::{
    ENV_LANE_TABLE, ENV_ROUTES, ENV_STATE_MACHINE_ARN, FromEnvironment, LaneConfig, Laned,
    TaskConfig,
};
use ferry::domain::job::{JobSpec, ValidJob};
use ferry::lanes::record::{Millis, QueuedJob, RunId, RunRecord};
use ferry::lanes::{JobId, LaneId};
use ferry::runtime::now_millis;
use ferry::trigger::config::TriggerConfig;

/// The runner state machine the entries' tests start executions of.
pub const STATE_MACHINE: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry";
/// The lane table the tests' configurations name.
pub const LANE_TABLE: &str = "ferry-lanes";

/// The lane table's configuration, with the defaults (lease 900 s, busy poll 60 s).
pub fn lane_config() -> LaneConfig {
    LaneConfig::from_lookup(|name| (name == ENV_LANE_TABLE).then(|| LANE_TABLE.to_owned()))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `config` with the lane table's configuration.
pub fn laned<C>(config: C) -> Laned<C> {
    Laned {
        config,
        lanes: lane_config(),
    }
}

/// `s3-trigger`'s configuration with `routes` (a JSON array), [`STATE_MACHINE`] and
/// [`LANE_TABLE`].
pub fn trigger_config(routes: &str) -> TriggerConfig {
    TriggerConfig::from_lookup(|name| match name {
        n if n == ENV_ROUTES => Some(routes.to_owned()),
        n if n == ENV_STATE_MACHINE_ARN => Some(STATE_MACHINE.to_owned()),
        n if n == ENV_LANE_TABLE => Some(LANE_TABLE.to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `spec` as `submit` queues it now (wanted for an hour), with the id `id` gives it.
pub fn submitted_job(spec: JobSpec, id: impl FnOnce(&ValidJob) -> JobId) -> QueuedJob {
    let valid = spec
        .validate(&TaskConfig::default().limits)
        .unwrap_or_else(|e| panic!("{e}"));
    let now = now_millis();
    QueuedJob {
        id: id(&valid),
        lane: LaneId::of(&valid),
        spec: valid.into_spec(),
        collapse_root: None,
        source: "submit".into(),
        enqueued_at: now,
        deadline: now + 3_600_000,
    }
}

/// A run of `spec` claimed on `lane` at `now` (wanted for an hour), covering `job_count` jobs,
/// as the runner's take writes it: no task yet.
pub fn claimed_run(
    lane: LaneId,
    id: &str,
    spec: JobSpec,
    job_count: usize,
    now: Millis,
) -> RunRecord {
    RunRecord::claimed(
        (RunId(id.to_owned()), lane),
        (spec, job_count),
        (now, now + 3_600_000),
    )
}
