//! `ferry-cancel-task`: see `ferry::handlers::cancel_task`; `ferry::handlers::serve` wires it.

use ferry::aws::AwsTasks;
use ferry::handlers::{cancel_task, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(|aws, _| AwsTasks::new(aws), cancel_task::handle).await
}
