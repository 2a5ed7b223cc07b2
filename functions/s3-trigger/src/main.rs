//! `ferry-s3-trigger`: see `ferry::trigger::s3_trigger`.

use ferry::aws::AwsTrigger;
use ferry::trigger::{self, TriggerConfig};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = TriggerConfig::from_env()?;
    let ports = AwsTrigger::new(
        &ferry::load_aws_config().await,
        trigger::state_machine_arn_from_env()?,
    );
    lambda_runtime::run(service_fn(|event| {
        trigger::s3_trigger(&ports, &config, event)
    }))
    .await
}
