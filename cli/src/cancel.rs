//! `ferry cancel JOB|RUN [--reason TEXT]`: a pending job ends canceled and never starts, and a
//! runner execution named after it sends its canceled report at once; a running one's run is
//! marked, and its runner cancels the task at its next status check (one poll later at most).
//! Either report says who asked (the caller's AWS identity, from `sts:GetCallerIdentity`) and
//! why. Something already ended is said so, exit 0.

use std::process::ExitCode;

use clap::Args;
use ferry::lanes::JobId;
use ferry::lanes::intake::CancelInput;
use ferry::lanes::record::RunId;
use ferry::lanes::runner::{self, Cancelled};
use ferry::ports::LaneView;
use ferry::runtime::now_millis;

use crate::Failure;
use crate::deploy::{DeployArgs, RunnerArgs};
use crate::runs::{Target, find_run};

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// A job id (`job-…`, as `submit` and `status` print it) or a run id (`run-…`: every job
    /// of the run).
    pub id: String,
    /// Why, for the report (at most 1024 characters).
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
}

pub async fn run(args: CancelArgs) -> Result<ExitCode, Failure> {
    let deployment = args.deploy.open(Some(&args.runner)).await?;
    let lanes = deployment.lanes()?;
    let runners = deployment.runners()?;
    let job = match Target::parse(&args.id)? {
        Target::Run(run) => first_job_of_run(&lanes, &run).await?,
        Target::Job(job) => job,
    };
    let by = caller(&deployment.aws).await?;
    let input = CancelInput {
        job: job.clone(),
        by,
        reason: args.reason,
    };
    input
        .check()
        .map_err(|e| Failure::new(format!("--reason: {e}")))?;
    let cancel = runner::cancel(&lanes, &job, (&input.by, &input.reason), now_millis()).await?;
    match &cancel.done {
        Cancelled::WhilePending => println!("job {job} was pending: canceled, it will never start"),
        Cancelled::RunCancelRequested { run, jobs } => println!(
            "run {run}: cancel requested by {}; its runner cancels the task at its next status check; every job of the run ends canceled ({})",
            input.by,
            crate::text::plural(*jobs, "job")
        ),
        Cancelled::AlreadyEnded { state } => println!(
            "job {job} already ended ({}): nothing to cancel",
            state.as_str()
        ),
    }
    if let Some(execution) = &cancel.wake {
        // Its runner may be waiting for the DataSync execution's end: it cancels now.
        ferry::lanes::wake::wake((&lanes, &runners), execution, "a cancel", now_millis()).await?;
    }
    // A job that ended pending (now, or by a cancel that stopped before reporting it): its
    // report, once, whatever the number of cancels.
    if let Some(report) = &cancel.report {
        runner::report_canceled(&runners, report, cancel.enqueued_at).await.map_err(|e| {
            Failure::new(format!(
                "job {job} is canceled, but its report was not sent: {}; run this cancel again to send it",
                crate::text::error_line(&e)
            ))
        })?;
        if cancel.done == Cancelled::WhilePending {
            println!("its canceled report goes to the job's topic now");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The caller's ARN, for the report.
async fn caller(aws: &aws_config::SdkConfig) -> Result<String, Failure> {
    let answer = aws_sdk_sts::Client::new(aws)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            let error = ferry::error::AwsError::new("GetCallerIdentity", e);
            Failure::new(format!(
                "cannot tell who you are (the report names who cancelled): {error}"
            ))
        })?;
    answer
        .arn
        .ok_or_else(|| Failure::new("GetCallerIdentity answered without an ARN"))
}

/// A run's first job: cancelling one job of a run cancels the run (every job in it).
async fn first_job_of_run<L: LaneView>(lanes: &L, id: &RunId) -> Result<JobId, Failure> {
    let (lane, _) = find_run(lanes, id).await?;
    let first = lanes.members(&lane, id, 1).await?;
    first
        .into_iter()
        .next()
        .map(|member| member.id)
        .ok_or_else(|| Failure::new(format!("run {id} has no jobs")))
}
