//! `ferry retry RUN [--failed-only]`: rerun what a run did not do, as a new job on its lane,
//! linked to the run (`retry_of`, named in the new run's report).
//!
//! Without `--failed-only` the run's whole job runs again. With it, the task's own failure
//! report (FSx's completion report, DataSync's detailed task report) is read with the caller's
//! credentials, whole up to [`MAX_REPORT_BYTES`], and a job of the run's kind and options is
//! built for its failed files only ([`ferry::domain::rerun`]). A run whose failed files cannot
//! be known (no report, one only partly readable, one past the bound) is not rerun by halves:
//! the message says why and gives the command that reruns the whole job.
//!
//! The job's id defaults to one derived from the run, so running the same command twice
//! queues one job (`--id` names another).

use std::process::ExitCode;

use clap::Args;
use ferry::aws::{AwsNotify, AwsTasks};
use ferry::config::{FromEnvironment, NotifyConfig, TaskConfig};
use ferry::domain::job::{JobKind, JobSpec};
use ferry::domain::rerun::{self, Rerun};
use ferry::domain::status::TaskHandle;
use ferry::domain::validate::{MAX_REPORT_PATH_CHARS, is_run_id};
use ferry::ids::{FileSystemId, S3Url};
use ferry::lanes::intake::SubmitInput;
use ferry::lanes::record::{RunId, RunRecord, RunState};
use ferry::notify::digest::Digest;
use ferry::ports::{DescribeTask, ReadLinks};
use serde::Serialize;

use crate::deploy::{DeployArgs, Deployment, RunnerArgs};
use crate::links::Verdict;
use crate::submit::FollowArgs;
use crate::{Failure, OutputArgs};

/// Most bytes of failure reports read for one retry: the failed paths are kept in memory.
pub const MAX_REPORT_BYTES: usize = 256 << 20;

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The run to rerun (`run-…`: its report's `Run:` line, `ferry history`).
    pub run: String,
    /// Rerun only the files the run's task failed, from its failure report.
    #[arg(long)]
    pub failed_only: bool,
    /// Your id for the new job (1-128 characters); by default one derived from the run, so
    /// the same retry is never queued twice.
    #[arg(long)]
    pub id: Option<String>,
    /// Print the job that would be submitted and stop.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub follow: FollowArgs,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct Retried {
    run: String,
    failed_only: bool,
    /// Distinct failed files rerun (with --failed-only).
    failed_files: Option<usize>,
    /// Where they were read.
    sources: Vec<String>,
    /// Some paths are directories holding more than the failed files.
    widened: bool,
    job: JobSpec,
    submitted: Option<ferry::lanes::intake::Submitted>,
}

pub async fn run(args: RetryArgs) -> Result<ExitCode, Failure> {
    if !is_run_id(&args.run) {
        return Err(Failure::new(format!(
            "{}: not a run id (run-…, as a report's Run: line and `ferry history` give it)",
            args.run
        )));
    }
    let id = RunId(args.run.clone());
    let limits = TaskConfig::from_env()
        .map_err(|e| Failure::new(e.to_string()))?
        .limits;
    let deployment = args.deploy.open(Some(&args.runner)).await?;
    let (_, run) = crate::runs::find_run(&deployment.lanes()?, &id).await?;
    if run.state != RunState::Done {
        return Err(Failure::new(format!(
            "run {id} has not ended ({}): wait for its report, or `ferry cancel` it first",
            run_state(run.state)
        )));
    }
    let mut retried = if args.failed_only {
        failed_only(&deployment, &run, &limits).await?
    } else {
        Retried {
            run: id.to_string(),
            failed_only: false,
            failed_files: None,
            sources: Vec::new(),
            widened: false,
            job: rerun::whole(&run.spec, &id.0),
            submitted: None,
        }
    };
    let valid = retried
        .job
        .clone()
        .validate(&limits)
        .map_err(|e| Failure::new(format!("run {id}: the rerun's job is not valid: {e}")))?;
    if args.dry_run {
        print(&retried, args.output.json);
        return Ok(ExitCode::SUCCESS);
    }
    match crate::links::check(&AwsTasks::new(&deployment.aws), &valid).await {
        Verdict::Fits => {}
        Verdict::Refused(problems) => {
            return Err(Failure::new(format!(
                "run {id}: the rerun is refused before queueing, its task would fail:\n  {}",
                problems.join("\n  ")
            )));
        }
        Verdict::Unknown(why) => eprintln!("ferry: warning: {why}"),
    }
    let input = SubmitInput {
        job: retried.job.clone(),
        id: Some(
            args.id
                .clone()
                .unwrap_or_else(|| default_id(&id, args.failed_only)),
        ),
        occurrence: None,
    };
    let submitted = crate::submit::send(&deployment, &input).await?;
    let job_id = submitted.job_id.clone();
    retried.submitted = Some(submitted);
    print(&retried, args.output.json);
    args.follow
        .follow(&deployment, &job_id, args.output.json)
        .await
}

/// The job id a retry of `run` gets by default: the same command twice is one job.
fn default_id(run: &RunId, failed_only: bool) -> String {
    let what = if failed_only { "failed" } else { "all" };
    ferry::domain::text::truncate_chars(&format!("retry-{what}:{run}"), 128)
}

fn run_state(state: RunState) -> &'static str {
    match state {
        RunState::Claimed => "its task is starting",
        RunState::Started => "its task is running",
        RunState::Done => "done",
    }
}

/// The run's failed files, read from its task's failure report, as a job.
async fn failed_only(
    deployment: &Deployment,
    run: &RunRecord,
    limits: &ferry::domain::job::Limits,
) -> Result<Retried, Failure> {
    let id = &run.id;
    let whole = format!("rerun the whole job with `ferry retry {id}`");
    let Some(task) = &run.task else {
        return Err(Failure::new(format!(
            "run {id} started no task, so no file failed in it: {whole}"
        )));
    };
    let tasks = AwsTasks::new(&deployment.aws);
    let location = report_location(&tasks, run, task).await.ok_or_else(|| {
        Failure::new(format!(
            "run {id}: its task wrote no failure report to read (the job enables none): {whole}"
        ))
    })?;
    let digest = read_report(deployment, run, task, &location)
        .await
        .map_err(|why| Failure::new(format!("run {id}: {why}: {whole}")))?;
    let failed: Vec<&str> = digest.paths.iter().map(|p| p.path.as_str()).collect();
    let links = match (&run.spec.kind, &run.spec.file_system_id) {
        (JobKind::FsxImport, Some(fs)) => import_links(&tasks, fs).await,
        _ => Err("not needed".to_owned()),
    };
    let Rerun {
        spec,
        files,
        widened,
    } = rerun::failed_only(
        &run.spec,
        &id.0,
        &failed,
        links.as_ref().map_err(String::as_str),
        limits,
    )
    .map_err(|e| Failure::new(format!("run {id}: {e}")))?;
    Ok(Retried {
        run: id.to_string(),
        failed_only: true,
        failed_files: Some(files),
        sources: digest.sources,
        widened,
        job: spec,
        submitted: None,
    })
}

/// Where the task's report is: as its service describes the task, or else (FSx no longer
/// describing it) the run's own `Report.Path`.
async fn report_location(tasks: &AwsTasks, run: &RunRecord, task: &TaskHandle) -> Option<String> {
    let described = tasks
        .describe_task(task)
        .await
        .ok()
        .and_then(|s| s.report)
        .and_then(|r| r.path);
    described.or_else(|| {
        run.spec
            .report
            .as_ref()
            .filter(|r| r.enabled)
            .and_then(|r| r.path.clone())
    })
}

/// The whole failure report, or why it cannot be trusted to list every failed file.
async fn read_report(
    deployment: &Deployment,
    run: &RunRecord,
    task: &TaskHandle,
    location: &str,
) -> Result<Digest, String> {
    let url = S3Url::parse_location(location, MAX_REPORT_PATH_CHARS)
        .map_err(|e| format!("the report path {location:?} is not an s3:// URL ({e})"))?;
    let config = NotifyConfig {
        max_paths: usize::MAX,
        max_report_bytes: MAX_REPORT_BYTES,
        ..NotifyConfig::default()
    };
    let reports = AwsNotify::new(&deployment.aws);
    let digest = ferry::notify::read_failures(&reports, &config, Some(run.spec.kind), &url, task)
        .await
        .map_err(|e| e.to_string())?;
    if digest.report_truncated {
        return Err(format!(
            "its failure report passes {} MiB and was read only in part",
            MAX_REPORT_BYTES >> 20
        ));
    }
    if digest.unreadable_lines > 0 {
        return Err(format!(
            "{} lines of its failure report ({}) could not be read, so their files are unknown",
            digest.unreadable_lines,
            digest.sources.join(", ")
        ));
    }
    Ok(digest)
}

/// The links an import's failed paths are mapped to S3 through, or why they are unknown.
async fn import_links(
    tasks: &AwsTasks,
    file_system: &str,
) -> Result<ferry::domain::links::Links, String> {
    let fs = FileSystemId::parse(file_system).map_err(|e| e.to_string())?;
    match tasks.read_links(&fs).await {
        Ok(Some(links)) => Ok(links),
        Ok(None) => Err(format!("{fs} was not found")),
        Err(e) => Err(e.to_string()),
    }
}

fn print(retried: &Retried, json: bool) {
    if json {
        println!("{}", serde_json::to_string(retried).unwrap_or_default());
        return;
    }
    let what = match retried.failed_files {
        Some(files) => {
            let targets = retried.job.paths.len().max(retried.job.includes.len());
            let widened = if retried.widened {
                " (collapsed: directories rerun whole)"
            } else {
                ""
            };
            format!(
                "{files} failed files from {} as {targets} paths{widened}",
                retried.sources.join(", ")
            )
        }
        None => "the whole job".to_owned(),
    };
    println!("retry of run {}: {what}", retried.run);
    match &retried.submitted {
        Some(submitted) => {
            if let Some(warning) = &submitted.warning {
                eprintln!("ferry: warning: {warning}");
            }
            println!("{}", crate::submit::describe(submitted));
        }
        None => println!(
            "{}",
            serde_json::to_string_pretty(&retried.job).unwrap_or_default()
        ),
    }
}
