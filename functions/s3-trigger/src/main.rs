//! `ferry-s3-trigger`: see `ferry::handlers::s3_trigger`; `ferry::runtime::serve_loaded` wires
//! it, with the routes read first (inline, or from the S3 object `FERRY_ROUTES_URL` names).

use ferry::aws::{AwsLanes, AwsTrigger};
use ferry::config::runner;
use ferry::handlers::s3_trigger;
use ferry::runtime::serve_loaded;
use ferry::trigger::config::TriggerConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve_loaded(
        async |aws| {
            let env = |name: &str| std::env::var(name).ok();
            let routes = AwsTrigger::new(aws, runner(&env)?);
            s3_trigger::load(&routes, env).await
        },
        |aws, config: &TriggerConfig| {
            let runners = AwsTrigger::new(aws, config.runner.clone());
            (runners, AwsLanes::new(aws, &config.lanes.table))
        },
        s3_trigger::handle,
    )
    .await
}
