//! Finding the deployment: the lane table and the runner state machine, from flags or the
//! variables the functions read (`FERRY_LANE_TABLE`, `FERRY_STATE_MACHINE_ARN`; the stack's
//! `LaneTableName` and `StateMachineArn` outputs). AWS credentials, region and endpoints come
//! from the standard chain, so `AWS_ENDPOINT_URL` reaches the local emulator.

use clap::Args;
use ferry::aws::{AwsLanes, AwsTrigger};
use ferry::config::{ENV_LANE_TABLE, ENV_STATE_MACHINE_ARN, FromEnvironment, SubmitConfig};

use crate::Failure;

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// The lane table (the stack's LaneTableName output).
    #[arg(long, env = ENV_LANE_TABLE, value_name = "NAME")]
    pub table: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RunnerArgs {
    /// The runner state machine (the stack's StateMachineArn output): submitting starts a
    /// runner on the job's lane when none runs.
    #[arg(long, env = ENV_STATE_MACHINE_ARN, value_name = "ARN")]
    pub runner: Option<String>,
}

/// The AWS configuration, loaded the way the functions load it.
pub async fn aws() -> aws_config::SdkConfig {
    ferry::load_aws_config().await
}

impl DeployArgs {
    pub fn table(&self) -> Result<&str, Failure> {
        self.table.as_deref().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            Failure::new(format!(
                "no lane table: give --table NAME or set {ENV_LANE_TABLE} (the stack's LaneTableName output)"
            ))
        })
    }

    pub fn lanes(&self, aws: &aws_config::SdkConfig) -> Result<AwsLanes, Failure> {
        Ok(AwsLanes::new(aws, self.table()?))
    }
}

/// `submit`'s configuration: the flags first, then the environment (limits, lease, poll).
pub fn submit_config(deploy: &DeployArgs, runner: &RunnerArgs) -> Result<SubmitConfig, Failure> {
    let table = deploy.table()?.to_owned();
    let arn = runner
        .runner
        .as_deref()
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| {
            Failure::new(format!(
                "no runner: give --runner ARN or set {ENV_STATE_MACHINE_ARN} (the stack's StateMachineArn output)"
            ))
        })?
        .to_owned();
    SubmitConfig::from_lookup(|name| lookup(name, &table, Some(&arn))).map_err(|e| {
        let text = e
            .to_string()
            .replace(
                &format!("environment variable {ENV_STATE_MACHINE_ARN}"),
                &format!("--runner ({ENV_STATE_MACHINE_ARN})"),
            )
            .replace(
                &format!("environment variable {ENV_LANE_TABLE}"),
                &format!("--table ({ENV_LANE_TABLE})"),
            );
        Failure::new(text)
    })
}

pub fn runners(aws: &aws_config::SdkConfig, config: &SubmitConfig) -> AwsTrigger {
    AwsTrigger::new(aws, config.runner.clone())
}

fn lookup(name: &str, table: &str, runner: Option<&str>) -> Option<String> {
    match name {
        ENV_LANE_TABLE => Some(table.to_owned()),
        ENV_STATE_MACHINE_ARN => runner.map(str::to_owned),
        _ => std::env::var(name).ok(),
    }
}
