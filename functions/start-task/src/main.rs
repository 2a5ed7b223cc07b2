//! `ferry-start-task`: see `ferry::handlers::start_task`; `ferry::runtime::serve` wires it.

use ferry::aws::{AwsLanes, AwsTasks};
use ferry::config::{Laned, TaskConfig};
use ferry::handlers::start_task;
use ferry::runtime::serve;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &Laned<TaskConfig>| {
            (AwsTasks::new(aws), AwsLanes::new(aws, &config.lanes.table))
        },
        start_task::handle,
    )
    .await
}
