//! `ferry-notify`: see `ferry::handlers::notify`; `ferry::handlers::serve` wires it.

use ferry::aws::AwsNotify;
use ferry::handlers::{notify, serve};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(|aws, _| AwsNotify::new(aws), notify::handle).await
}
