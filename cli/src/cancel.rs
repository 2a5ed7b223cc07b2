//! `ferry cancel JOB|RUN [--reason TEXT]`: a pending job ends canceled and never starts; a
//! running one's run is marked, and its runner cancels the task at its next status check (one
//! poll later at most) and reports who asked (the caller's AWS identity, from
//! `sts:GetCallerIdentity`) and why. Something already ended is said so, exit 0.

use std::process::ExitCode;

use clap::Args;
use ferry::handlers::now_millis;
use ferry::lanes::JobId;
use ferry::lanes::record::{JobState, RunId};
use ferry::lanes::runner::{self, Cancelled};
use ferry::ports::LaneView;

use crate::Failure;
use crate::deploy::{self, DeployArgs};
use crate::runs::{Target, find_run};

#[derive(Debug, Args)]
pub struct CancelArgs {
    /// A job id (`job-…`, as `submit` and `status` print it) or a run id (`run-…`: every job
    /// of the run).
    pub id: String,
    /// Why, for the run's report.
    #[arg(long, default_value = "")]
    pub reason: String,
    #[command(flatten)]
    pub deploy: DeployArgs,
}

pub async fn run(args: CancelArgs) -> Result<ExitCode, Failure> {
    let aws = deploy::aws().await;
    let lanes = args.deploy.lanes(&aws)?;
    let job = match Target::parse(&args.id)? {
        Target::Run(run) => first_job_of_run(&lanes, &run).await?,
        Target::Job(job) => job,
    };
    let by = caller(&aws).await?;
    let done = runner::cancel(&lanes, &job, (&by, &args.reason), now_millis()).await?;
    match done {
        Cancelled::WhilePending => println!("job {job} was pending: canceled, it will never start"),
        Cancelled::RunCancelRequested { run, jobs } => println!(
            "run {run}: cancel requested by {by}; its runner cancels the task at its next status check; every job of the run ends canceled ({})",
            crate::text::plural(jobs.len(), "job")
        ),
        Cancelled::AlreadyEnded { state } => println!(
            "job {job} already ended ({}): nothing to cancel",
            state.as_str()
        ),
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
    let (_, run) = find_run(lanes, id).await?;
    let job = run
        .jobs
        .iter()
        .find(|j| j.state == JobState::Running)
        .or(run.jobs.first())
        .ok_or_else(|| Failure::new(format!("run {id} has no jobs")))?;
    Ok(job.id.clone())
}
