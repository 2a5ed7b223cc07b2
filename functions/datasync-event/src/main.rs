//! `ferry-datasync-event`: see `ferry::handlers::datasync_event`; `ferry::runtime::serve`
//! wires it.

use ferry::aws::{AwsLanes, AwsTasks, AwsTokens};
use ferry::config::LaneConfig;
use ferry::handlers::datasync_event;
use ferry::runtime::serve;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &LaneConfig| {
            (
                AwsLanes::new(aws, &config.table),
                AwsTokens::new(aws),
                AwsTasks::new(aws),
            )
        },
        datasync_event::handle,
    )
    .await
}
