//! `ferry-task-status`: see `ferry::handlers::task_status`; `ferry::handlers::serve` wires it.

use ferry::aws::AwsTasks;
use ferry::handlers::{serve, task_status};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(|aws, _| AwsTasks::new(aws), task_status::handle).await
}
