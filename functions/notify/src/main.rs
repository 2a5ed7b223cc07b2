//! `ferry-notify`: see `ferry::handlers::notify`; `ferry::runtime::serve` wires it.

use ferry::aws::{AwsLanes, AwsNotify};
use ferry::config::{Laned, NotifyConfig};
use ferry::handlers::notify;
use ferry::runtime::serve;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    serve(
        |aws, config: &Laned<NotifyConfig>| {
            (AwsNotify::new(aws), AwsLanes::new(aws, &config.lanes.table))
        },
        notify::handle,
    )
    .await
}
