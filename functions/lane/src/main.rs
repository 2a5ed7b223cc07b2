//! `ferry-lane`: see `ferry::handlers::lane`; `ferry::runtime::serve` wires it.

use ferry::aws::{AwsLanes, AwsTokens};
use ferry::config::{Laned, TaskConfig};
use ferry::handlers::lane;
use ferry::runtime::serve;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &Laned<TaskConfig>| {
            (AwsLanes::new(aws, &config.lanes.table), AwsTokens::new(aws))
        },
        lane::handle,
    )
    .await
}
