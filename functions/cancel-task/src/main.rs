//! `ferry-cancel-task`: see `ferry::handlers::cancel_task`.

use ferry::Config;
use ferry::aws::AwsTasks;
use lambda_runtime::{Error, service_fn};

// One thread: Lambda hands an execution environment one invocation at a time, so worker
// threads would only add start-up work (measured: ~1.3 ms of a ~13 ms cold start; bench/).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let tasks = AwsTasks::new(&ferry::load_aws_config().await);
    lambda_runtime::run(service_fn(|event| {
        ferry::handlers::cancel_task(&tasks, &config, event)
    }))
    .await
}
