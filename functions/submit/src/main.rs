//! `ferry-submit`: see `ferry::handlers::submit`; `ferry::runtime::serve` wires it.

use ferry::aws::{AwsLanes, AwsTrigger};
use ferry::config::SubmitConfig;
use ferry::handlers::submit;
use ferry::runtime::serve;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &SubmitConfig| {
            let runners = AwsTrigger::new(aws, config.runner.clone());
            (runners, AwsLanes::new(aws, &config.lanes.table))
        },
        submit::handle,
    )
    .await
}
