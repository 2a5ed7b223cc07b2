//! `ferry-s3-trigger`: see `ferry::handlers::s3_trigger`; `ferry::handlers::serve` wires it.

use ferry::aws::AwsTrigger;
use ferry::config::TriggerConfig;
use ferry::handlers::{s3_trigger, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &TriggerConfig| AwsTrigger::new(aws, config.state_machine_arn.clone()),
        s3_trigger::handle,
    )
    .await
}
