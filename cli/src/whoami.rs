//! `ferry whoami`: who you are to Ferry, and what you may do. With `submit`'s function URL
//! (`--url`, `FERRY_SUBMIT_URL`, the stack's `SubmitUrl`), the URL answers with your ARN as
//! Lambda verified it and what each access-policy rule naming you grants (docs/access.md).
//! Without one, your `sts:GetCallerIdentity` ARN: your requests then write the lane table with
//! your own credentials, and the jobs you submit are recorded as from an unverified caller.

use std::process::ExitCode;

use clap::Args;
use ferry::domain::access::Whoami;

use crate::deploy::DeployArgs;
use crate::{Failure, OutputArgs};

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: WhoamiArgs) -> Result<ExitCode, Failure> {
    let deployment = args.deploy.open(None).await?;
    let Some(url) = deployment.url() else {
        let arn = crate::cancel::caller(&deployment.aws).await?;
        if args.output.json {
            println!("{}", serde_json::json!({"caller": arn, "verified": false}));
        } else {
            println!("you are {arn} (sts:GetCallerIdentity)");
            println!(
                "no function URL (--url, FERRY_SUBMIT_URL or the stack's SubmitUrl): submit and cancel write the lane table with your credentials; jobs you submit are recorded as from an unverified caller"
            );
        }
        return Ok(ExitCode::SUCCESS);
    };
    let body = serde_json::json!({"whoami": {}});
    let whoami: Whoami = crate::url::post(&deployment.aws, url, &body)
        .await?
        .decode()?;
    if args.output.json {
        let mut value = serde_json::to_value(&whoami).unwrap_or_default();
        value["verified"] = serde_json::json!(true);
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "you are {} (verified by submit's function URL)",
        whoami.caller
    );
    if !whoami.policy {
        println!("this deployment has no access policy: the URL refuses every request");
    } else if whoami.grants.is_empty() {
        println!("no rule of the access policy names you: every request is refused");
    } else {
        println!("the access policy grants you:");
        for grant in &whoami.grants {
            println!("  {grant}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
