//! `ferry-task-status`: see `ferry::handlers::task_status`.

use ferry::Config;
use ferry::aws::AwsTasks;
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = Config::from_env()?;
    let tasks = AwsTasks::new(&ferry::load_aws_config().await);
    lambda_runtime::run(service_fn(|event| {
        ferry::handlers::task_status(&tasks, &config, event)
    }))
    .await
}
