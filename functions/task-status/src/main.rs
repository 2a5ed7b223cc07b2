//! `ferry-task-status`: see `ferry::handlers::task_status`; `ferry::runtime::serve` wires it.

use ferry::aws::{AwsLanes, AwsTasks};
use ferry::config::{Laned, TaskConfig};
use ferry::handlers::task_status;
use ferry::runtime::serve;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &Laned<TaskConfig>| {
            (AwsTasks::new(aws), AwsLanes::new(aws, &config.lanes.table))
        },
        task_status::handle,
    )
    .await
}
