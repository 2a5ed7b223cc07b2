//! `ferry-cancel-task`: see `ferry::handlers::cancel_task`; `ferry::runtime::serve` wires it.

use ferry::aws::{AwsLanes, AwsTasks};
use ferry::config::{Laned, TaskConfig};
use ferry::handlers::cancel_task;
use ferry::runtime::serve;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &Laned<TaskConfig>| {
            (AwsTasks::new(aws), AwsLanes::new(aws, &config.lanes.table))
        },
        cancel_task::handle,
    )
    .await
}
