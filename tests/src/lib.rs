//! What the workspace-level tests in `tests/tests/` share.

use ferry::config::{ENV_ROUTES, ENV_STATE_MACHINE_ARN, FromEnvironment, TriggerConfig};

/// The state machine the trigger's tests start executions of.
pub const STATE_MACHINE: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry";

/// `s3-trigger`'s configuration with `routes` (a JSON array) and [`STATE_MACHINE`].
pub fn trigger_config(routes: &str) -> TriggerConfig {
    TriggerConfig::from_lookup(|name| match name {
        n if n == ENV_ROUTES => Some(routes.to_owned()),
        n if n == ENV_STATE_MACHINE_ARN => Some(STATE_MACHINE.to_owned()),
        _ => None,
    })
    .unwrap_or_else(|e| panic!("{e}"))
}
