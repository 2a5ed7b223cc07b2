//! `ferry submit JOB.json [--id ID] [--wait]`: validate the job, then send it to `submit`'s
//! function URL, signed (the caller verified; docs/access.md), or without a URL do what
//! `submit` does with the caller's own credentials: enqueue on the job's lane (once per job
//! id), start the lane's runner when none runs. `--wait` then follows the job to its end. An
//! FSx job whose task would fail on its file system's links to S3 is refused first
//! (`crate::links`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Args;
use ferry::aws::AwsTasks;
use ferry::config::{FromEnvironment, TaskConfig};
use ferry::domain::job::JobSpec;
use ferry::domain::parse;
use ferry::lanes::JobId;
use ferry::lanes::intake::{self, SubmitInput, Submitted};
use ferry::lanes::record::JobState;
use ferry::lanes::runner::Kicked;
use ferry::ports::LaneView;

use crate::deploy::{DeployArgs, Deployment, RunnerArgs};
use crate::links::Verdict;
use crate::{Failure, OutputArgs};

#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The job spec (a JSON object: what `ferry validate` checks).
    pub file: PathBuf,
    /// Your id for the job (1-128 characters): submitting the same id again is the same job,
    /// so a retried submission never runs twice. Without it every submission is a new job.
    #[arg(long)]
    pub id: Option<String>,
    #[command(flatten)]
    pub follow: FollowArgs,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// `--wait` and `--interval`: following a submitted job to its end.
#[derive(Debug, Clone, Copy, Args)]
pub struct FollowArgs {
    /// Follow the job until it ends; exit 0 only if it succeeded.
    #[arg(long)]
    pub wait: bool,
    /// Seconds between two looks at the job with --wait.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub interval: u64,
}

impl FollowArgs {
    /// Success at once without `--wait`; with it, follows `job` ([`wait`]) and succeeds only
    /// if the job did.
    pub async fn follow(
        self,
        deployment: &Deployment,
        job: &JobId,
        json: bool,
    ) -> Result<ExitCode, Failure> {
        if !self.wait {
            return Ok(ExitCode::SUCCESS);
        }
        let state = wait(&deployment.lanes()?, job, self.interval, json).await?;
        Ok(if state == JobState::Succeeded {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

pub async fn run(args: SubmitArgs) -> Result<ExitCode, Failure> {
    let input = SubmitInput {
        job: read_job(&args.file)?,
        id: args.id.clone(),
        occurrence: None,
    };
    // Offline first: a broken job is named before anything about the deployment is asked.
    let limits = TaskConfig::from_env()
        .map_err(|e| Failure::new(e.to_string()))?
        .limits;
    let valid = input
        .job
        .clone()
        .validate(&limits)
        .map_err(|e| Failure::new(format!("{}: invalid job: {e}", args.file.display())))?;
    let deployment = args.deploy.open(Some(&args.runner)).await?;
    if deployment.url().is_none() {
        // Where it would be sent is named before anything is read from AWS.
        deployment.submit_config()?;
        deployment.runners()?;
    }
    // A job its file system's links would make fail is refused before it is queued.
    match crate::links::check(&AwsTasks::new(&deployment.aws), &valid).await {
        Verdict::Fits => {}
        Verdict::Refused(problems) => {
            return Err(Failure::new(format!(
                "{}: refused before queueing, its task would fail:\n  {}",
                args.file.display(),
                problems.join("\n  ")
            )));
        }
        Verdict::Unknown(why) => eprintln!("ferry: warning: {why}"),
    }
    let submitted = send(&deployment, &input).await?;
    if args.output.json {
        println!("{}", serde_json::to_string(&submitted).unwrap_or_default());
    } else {
        println!("{}", describe(&submitted));
    }
    args.follow
        .follow(&deployment, &submitted.job_id, args.output.json)
        .await
}

/// Submits `input`: through `submit`'s function URL when the deployment has one (the caller
/// verified, the access policy applied), otherwise straight to the lane table with the
/// caller's credentials (recorded as an unverified caller).
pub async fn send(deployment: &Deployment, input: &SubmitInput) -> Result<Submitted, Failure> {
    if let Some(url) = deployment.url() {
        let body = serde_json::to_value(input).unwrap_or_default();
        return crate::url::post(&deployment.aws, url, &body)
            .await?
            .decode();
    }
    let config = deployment.submit_config()?;
    let ports = (deployment.runners()?, deployment.lanes()?);
    let timing = ferry::runtime::timing(&config.lanes);
    Ok(intake::submit(
        &ports,
        &config,
        (input, intake::Caller::Unverified),
        (&request_id(), timing),
    )
    .await?)
}

/// The job spec in `file`, with every parse problem named by field.
pub fn read_job(file: &PathBuf) -> Result<JobSpec, Failure> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Failure::new(format!("{}: cannot read: {e}", file.display())))?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failure::new(format!("{}: not JSON: {e}", file.display())))?;
    parse::from_value(value, "job")
        .map_err(|e| Failure::new(format!("{}: invalid job: {e}", file.display())))
}

/// Names this submission when the caller gave no id: unique per process and instant.
pub fn request_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("cli-{nanos:x}-{}", std::process::id())
}

pub fn describe(submitted: &Submitted) -> String {
    let queued = if submitted.enqueued {
        "queued"
    } else {
        "was submitted before (same id): nothing added"
    };
    let runner = match &submitted.runner {
        Kicked::Started { owner } => format!("runner {owner} started"),
        Kicked::Running { owner } => format!("runner {owner} already running"),
    };
    format!(
        "job {} {queued} on {}; {runner}",
        submitted.job_id, submitted.lane
    )
}

/// Looks at the job every `interval` seconds, printing each change of state, until it ends.
pub async fn wait<L: LaneView>(
    lanes: &L,
    id: &JobId,
    interval: u64,
    json: bool,
) -> Result<JobState, Failure> {
    let mut last = None;
    loop {
        let record = lanes
            .job(id)
            .await?
            .ok_or_else(|| Failure::new(format!("job {id} is no longer in the lane table")))?;
        if last != Some(record.state) {
            last = Some(record.state);
            let run = record.run.as_ref().map(|r| format!(" (run {r})"));
            if json {
                let line = serde_json::json!({"job": id, "state": record.state.as_str(), "run": record.run});
                println!("{line}");
            } else {
                println!("{}{}", record.state.as_str(), run.unwrap_or_default());
            }
        }
        if record.state.is_finished() {
            return Ok(record.state);
        }
        tokio::time::sleep(Duration::from_secs(interval)).await;
    }
}
