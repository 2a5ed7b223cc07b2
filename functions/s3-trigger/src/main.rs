//! `ferry-s3-trigger`: see `ferry::trigger::s3_trigger`.

use ferry::aws::AwsTrigger;
use ferry::trigger::{self, TriggerConfig};
use lambda_runtime::{Error, service_fn};

// One thread: Lambda hands an execution environment one invocation at a time, so worker
// threads would only add start-up work (measured: ~1.3 ms of a ~13 ms cold start; bench/).
#[tokio::main(flavor = "current_thread")]
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
