//! `ferry-s3-trigger`: see `ferry::handlers::s3_trigger`; `ferry::handlers::serve` wires it.

use ferry::aws::{AwsLanes, AwsTrigger};
use ferry::config::TriggerConfig;
use ferry::handlers::{s3_trigger, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &TriggerConfig| {
            let runners = AwsTrigger::new(aws, config.runner.clone());
            (runners, AwsLanes::new(aws, &config.lanes.table))
        },
        s3_trigger::handle,
    )
    .await
}
