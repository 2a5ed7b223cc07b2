//! Finding the deployment: the lane table, the runner state machine and `submit`'s function
//! URL. Each comes from, in order: its flag (`--table`, `--runner`, `--url`), the outputs of
//! the stack `--stack` names (`LaneTableName`, `StateMachineArn`, `SubmitUrl`; CloudFormation
//! `DescribeStacks`), or a variable (`FERRY_LANE_TABLE`, `FERRY_STATE_MACHINE_ARN`,
//! `FERRY_SUBMIT_URL`). With a URL, `submit`, `cancel` and `drain` send their requests to it,
//! signed, so the caller is verified and the access policy applies (docs/access.md); without one
//! they write the lane table with the caller's credentials, recorded as unverified. AWS credentials, region and
//! endpoints come from the standard chain, so `AWS_ENDPOINT_URL` reaches the local emulator.

use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use clap::Args;
use ferry::aws::{AwsLanes, AwsTrigger};
use ferry::config::{ENV_LANE_TABLE, ENV_STATE_MACHINE_ARN, FromEnvironment, SubmitConfig};
use ferry::ids::StateMachineArn;

use crate::Failure;

/// The stack variable (`--stack`).
pub const ENV_STACK: &str = "FERRY_STACK";
/// The stack outputs that name the lane table and the runner (template.yaml).
const OUTPUT_TABLE: &str = "LaneTableName";
const OUTPUT_RUNNER: &str = "StateMachineArn";
const OUTPUT_URL: &str = "SubmitUrl";
/// `submit`'s function URL (`--url`).
pub const ENV_SUBMIT_URL: &str = "FERRY_SUBMIT_URL";

#[derive(Debug, Clone, Args)]
pub struct DeployArgs {
    /// The CloudFormation stack Ferry is deployed as: its outputs name the lane table and the
    /// runner (--table and --runner win over it; it wins over FERRY_LANE_TABLE and
    /// FERRY_STATE_MACHINE_ARN)
    #[arg(long, env = ENV_STACK, value_name = "NAME")]
    pub stack: Option<String>,
    /// The lane table (the stack's LaneTableName output) [env: FERRY_LANE_TABLE]
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// submit's function URL (the stack's SubmitUrl output): submit, cancel and drain send
    /// their requests there, signed with your AWS credentials [env: FERRY_SUBMIT_URL]
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RunnerArgs {
    /// The runner state machine (the stack's StateMachineArn output)
    /// [env: FERRY_STATE_MACHINE_ARN]
    #[arg(long, value_name = "ARN")]
    pub runner: Option<String>,
}

/// Where the deployment is, once found, with the AWS configuration to reach it.
#[derive(Debug, Clone)]
pub struct Deployment {
    pub aws: aws_config::SdkConfig,
    table: Option<String>,
    runner: Option<String>,
    url: Option<String>,
}

impl DeployArgs {
    /// Loads the AWS configuration the way the functions load it and finds the deployment:
    /// reads the stack's outputs when `--stack` is given.
    pub async fn open(&self, runner: Option<&RunnerArgs>) -> Result<Deployment, Failure> {
        let aws = ferry::runtime::load_aws_config().await;
        let stack = match given(self.stack.as_deref()) {
            Some(name) => Some(StackOutputs::read(&aws, name).await?),
            None => None,
        };
        let from_stack = |key| stack.as_ref().map(|s| s.get(key)).transpose();
        let table = match given(self.table.as_deref()) {
            Some(table) => Some(table.to_owned()),
            None => from_stack(OUTPUT_TABLE)?.or_else(|| env(ENV_LANE_TABLE)),
        };
        let runner = match given(runner.and_then(|r| r.runner.as_deref())) {
            Some(arn) => Some(arn.to_owned()),
            None if runner.is_some() => {
                from_stack(OUTPUT_RUNNER)?.or_else(|| env(ENV_STATE_MACHINE_ARN))
            }
            None => None,
        };
        let url = match given(self.url.as_deref()) {
            Some(url) => Some(url.to_owned()),
            None => stack
                .as_ref()
                .and_then(|s| s.find(OUTPUT_URL))
                .or_else(|| env(ENV_SUBMIT_URL)),
        };
        Ok(Deployment {
            aws,
            table,
            runner,
            url,
        })
    }
}

fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Deployment {
    /// `submit`'s function URL, when one was named.
    pub fn url(&self) -> Option<&str> {
        self.url.as_deref()
    }

    /// The lane table, when one was named.
    pub fn known_table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    pub fn table(&self) -> Result<&str, Failure> {
        self.known_table().ok_or_else(|| {
            Failure::new(format!(
                "no lane table: give --stack NAME, --table NAME or set {ENV_LANE_TABLE} (the stack's {OUTPUT_TABLE} output)"
            ))
        })
    }

    pub fn lanes(&self) -> Result<AwsLanes, Failure> {
        Ok(AwsLanes::new(&self.aws, self.table()?))
    }

    fn runner_text(&self) -> Result<&str, Failure> {
        self.runner.as_deref().ok_or_else(|| {
            Failure::new(format!(
                "no runner: give --stack NAME, --runner ARN or set {ENV_STATE_MACHINE_ARN} (the stack's {OUTPUT_RUNNER} output)"
            ))
        })
    }

    /// Starts runner executions (a submit's kick, a cancel's report).
    pub fn runners(&self) -> Result<AwsTrigger, Failure> {
        let arn = StateMachineArn::parse(self.runner_text()?)
            .map_err(|e| Failure::new(format!("--runner: {e}")))?;
        Ok(AwsTrigger::new(&self.aws, arn))
    }

    /// `submit`'s configuration: the deployment found, then the environment (limits, lease).
    pub fn submit_config(&self) -> Result<SubmitConfig, Failure> {
        let table = self.table()?;
        let runner = self.runner_text()?;
        SubmitConfig::from_lookup(|name| match name {
            ENV_LANE_TABLE => Some(table.to_owned()),
            ENV_STATE_MACHINE_ARN => Some(runner.to_owned()),
            _ => std::env::var(name).ok(),
        })
        .map_err(|e| {
            // The configuration names the variables; here they may have come from flags.
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
}

/// The outputs `keys` of the stack `name` (each an error naming it when the stack lacks it),
/// with the AWS configuration loaded the way the functions load it.
pub async fn stack_outputs(name: &str, keys: &[&str]) -> Result<Vec<String>, Failure> {
    let aws = ferry::runtime::load_aws_config().await;
    let stack = StackOutputs::read(&aws, name).await?;
    keys.iter().map(|key| stack.get(key)).collect()
}

/// A stack's outputs.
struct StackOutputs {
    name: String,
    status: String,
    outputs: Vec<(String, String)>,
}

impl StackOutputs {
    async fn read(aws: &aws_config::SdkConfig, name: &str) -> Result<StackOutputs, Failure> {
        let answer = aws_sdk_cloudformation::Client::new(aws)
            .describe_stacks()
            .stack_name(name)
            .send()
            .await;
        let answer = match answer {
            Ok(answer) => answer,
            // CloudFormation answers an unknown stack with `ValidationError`, "Stack with id
            // NAME does not exist" (DescribeStacks has no modelled not-found error).
            Err(e)
                if e.code() == Some("ValidationError")
                    && e.message().is_some_and(|m| m.contains("does not exist")) =>
            {
                let region = aws
                    .region()
                    .map_or_else(|| "no region set".to_owned(), ToString::to_string);
                return Err(Failure::new(format!(
                    "stack {name} not found in {region}: check --stack ({ENV_STACK}) and AWS_REGION"
                )));
            }
            Err(e) => {
                let error = ferry::error::AwsError::new("DescribeStacks", e);
                return Err(Failure::new(format!("cannot read stack {name}: {error}")));
            }
        };
        let stack = answer
            .stacks()
            .first()
            .ok_or_else(|| Failure::new(format!("stack {name} not found")))?;
        Ok(StackOutputs {
            name: name.to_owned(),
            status: stack
                .stack_status()
                .map_or_else(|| "unknown".to_owned(), |s| s.as_str().to_owned()),
            outputs: stack
                .outputs()
                .iter()
                .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
                .collect(),
        })
    }

    fn find(&self, key: &str) -> Option<String> {
        self.outputs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    fn get(&self, key: &str) -> Result<String, Failure> {
        self.find(key).ok_or_else(|| {
            Failure::new(format!(
                "stack {} ({}) has no {key} output: is it a Ferry stack (template.yaml)?",
                self.name, self.status
            ))
        })
    }
}
