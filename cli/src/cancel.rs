//! `ferry cancel JOB|RUN [--reason TEXT]`: a pending job ends canceled and never starts, and a
//! runner execution named after it sends its canceled report at once; a running one's run is
//! marked, and its runner cancels the task at its next status check (one poll later at most).
//! Either report says who asked and why: through `submit`'s function URL (`--url`, the
//! stack's `SubmitUrl`), the caller Lambda verified, as the access policy allows; without one,
//! the caller's AWS identity from `sts:GetCallerIdentity`. Something already ended is said so, exit 0.

use std::process::ExitCode;

use clap::Args;
use ferry::lanes::JobId;
use ferry::lanes::intake::{CancelAnswer, CancelInput};
use ferry::lanes::record::RunId;
use ferry::lanes::runner::{self, Cancelled};
use ferry::ports::LaneView;
use ferry::runtime::now_millis;

use crate::Failure;
use crate::deploy::{DeployArgs, Deployment, RunnerArgs};
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
    let job = match Target::parse(&args.id)? {
        Target::Run(run) => first_job_of_run(&deployment.lanes()?, &run).await?,
        Target::Job(job) => job,
    };
    let (done, by) = match deployment.url() {
        Some(url) => {
            // The function cancels, wakes the run's runner and sends the report itself; the
            // report names the caller Lambda verified.
            let body = serde_json::json!({"cancel": {"job": job, "reason": args.reason}});
            let answer: CancelAnswer = crate::url::post(&deployment.aws, url, &body)
                .await?
                .decode()?;
            (answer.done, answer.by)
        }
        None => directly(&deployment, &job, args.reason).await?,
    };
    match &done {
        Cancelled::WhilePending => println!("job {job} was pending: canceled, it will never start"),
        Cancelled::RunCancelRequested { run, jobs } => println!(
            "run {run}: cancel requested by {by}; its runner cancels the task at its next status check; every job of the run ends canceled ({})",
            crate::text::plural(*jobs, "job")
        ),
        Cancelled::AlreadyEnded { state } => println!(
            "job {job} already ended ({}): nothing to cancel",
            state.as_str()
        ),
    }
    if done == Cancelled::WhilePending {
        println!("its canceled report goes to the job's topic now");
    }
    Ok(ExitCode::SUCCESS)
}

/// Without a function URL: cancels with the caller's own credentials, as `submit` would, the
/// report naming the caller's `GetCallerIdentity` ARN.
async fn directly(
    deployment: &Deployment,
    job: &JobId,
    reason: String,
) -> Result<(Cancelled, String), Failure> {
    let lanes = deployment.lanes()?;
    let runners = deployment.runners()?;
    let by = caller(&deployment.aws).await?;
    let input = CancelInput {
        job: job.clone(),
        by,
        reason,
    };
    input
        .check()
        .map_err(|e| Failure::new(format!("--reason: {e}")))?;
    let cancel = runner::cancel(&lanes, job, (&input.by, &input.reason), now_millis()).await?;
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
    }
    Ok((cancel.done, input.by))
}

/// The caller's ARN, for the report.
pub async fn caller(aws: &aws_config::SdkConfig) -> Result<String, Failure> {
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
