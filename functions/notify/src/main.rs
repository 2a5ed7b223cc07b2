//! `ferry-notify`: see `ferry::notify::notify`.

use ferry::aws::AwsNotify;
use ferry::notify::{self, NotifyConfig};
use lambda_runtime::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let config = NotifyConfig::from_env()?;
    let ports = AwsNotify::new(&ferry::load_aws_config().await);
    lambda_runtime::run(service_fn(|event| notify::notify(&ports, &config, event))).await
}
