//! `ferry-start-task`: see `ferry::handlers::start_task`; `ferry::handlers::serve` wires it.

use ferry::aws::AwsTasks;
use ferry::handlers::{serve, start_task};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(|aws, _| AwsTasks::new(aws), start_task::handle).await
}
