//! `ferry drain FILE_SYSTEM [PATH...]`: before a cluster is torn down, export what it wrote
//! through the file system's lane (queued behind running work, merged like any job), follow the
//! export to its end, then wait until no job of the lane is left. Exit 0 only when the export
//! succeeded with no failed file; otherwise the report (its failure digest when a report path
//! was given) is printed and the exit status says what happened. docs/space-and-teardown.md has
//! the teardown recipe.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use ferry::aws::AwsTasks;
use ferry::config::{FromEnvironment, TaskConfig};
use ferry::domain::job::JobSpec;
use ferry::domain::parse;
use ferry::lanes::intake::SubmitInput;
use ferry::lanes::record::KeptReport;
use ferry::lanes::{JobId, LaneId};
use ferry::notify::report::Outcome;
use ferry::ports::{DescribeTask, LaneView};
use serde::Serialize;

use crate::deploy::{DeployArgs, RunnerArgs};
use crate::watch::{follow, run_of_job};
use crate::{Failure, OutputArgs};

/// The export failed, some files failed, or the job ended without running.
const EXIT_FAILED: u8 = 1;
/// `--timeout` passed first: the export (or the lane's other work) goes on.
const EXIT_TIMED_OUT: u8 = 3;

#[derive(Debug, Args)]
pub struct DrainArgs {
    /// The file system (`fs-` and its hex digits).
    pub file_system: String,
    /// Paths to export, relative to the file system's root; the whole file system when none.
    pub paths: Vec<String>,
    /// Where FSx writes the report of failed files (`s3://bucket/prefix` in a linked data
    /// repository); with it, a failure prints which files failed and why.
    #[arg(long, value_name = "S3_URL")]
    pub report: Option<String>,
    /// Your id for this drain: a teardown script retried with the same id follows the same
    /// export instead of queueing another.
    #[arg(long)]
    pub id: Option<String>,
    /// Give up waiting after this many seconds (exit 3); what was queued still runs.
    #[arg(long, default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(1..=30 * 86_400))]
    pub timeout: u64,
    /// Seconds between two looks.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub interval: u64,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub runner: RunnerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// How a drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Verdict {
    /// The export succeeded with no failed file, and no job of the lane is left.
    Drained,
    /// The export's task failed (or was cancelled, or timed out).
    Failed,
    /// The task succeeded but some files failed to export.
    FilesFailed,
    /// The job ended without running (cancelled while pending, or past its deadline).
    NotRun,
    /// `--timeout` passed first.
    TimedOut,
}

/// What `--json` prints at the end.
#[derive(Debug, Serialize)]
struct Drained<'a> {
    /// The verdict is `drained`.
    drained: bool,
    verdict: Verdict,
    job_id: &'a JobId,
    lane: &'a LaneId,
    report: Option<&'a KeptReport>,
}

pub async fn run(args: DrainArgs) -> Result<ExitCode, Failure> {
    let job = export_job(&args)?;
    let deployment = args.deploy.open(Some(&args.runner)).await?;
    let lanes = deployment.lanes()?;
    let tasks = AwsTasks::new(&deployment.aws);
    let input = SubmitInput {
        job,
        id: args.id.clone(),
        occurrence: None,
    };
    let submitted = crate::submit::send(&deployment, &input).await?;
    if !args.output.json {
        println!("{}", crate::submit::describe(&submitted));
    }
    let (job, lane) = (&submitted.job_id, &submitted.lane);
    let pause = Duration::from_secs(args.interval);
    let waited = tokio::time::timeout(
        Duration::from_secs(args.timeout),
        drain(&lanes, &tasks, job, pause, args.output.json),
    )
    .await;
    let report = match waited {
        Ok(report) => report?,
        Err(_) => {
            return Ok(finish(
                &args,
                Drained::new(Verdict::TimedOut, job, lane, None),
            ));
        }
    };
    let verdict = verdict(report.as_ref());
    Ok(finish(
        &args,
        Drained::new(verdict, job, lane, report.as_ref()),
    ))
}

impl<'a> Drained<'a> {
    fn new(
        verdict: Verdict,
        job_id: &'a JobId,
        lane: &'a LaneId,
        report: Option<&'a KeptReport>,
    ) -> Self {
        Drained {
            drained: verdict == Verdict::Drained,
            verdict,
            job_id,
            lane,
            report,
        }
    }
}

/// The export's job spec: `drain-<file system>`, the paths given, the report if asked for;
/// checked with the functions' own rules before anything is asked of the deployment.
fn export_job(args: &DrainArgs) -> Result<JobSpec, Failure> {
    let mut value = serde_json::json!({
        "name": format!("drain-{}", args.file_system),
        "kind": "fsx_export",
        "file_system_id": args.file_system,
        "paths": args.paths,
    });
    if let Some(path) = &args.report {
        value["report"] = serde_json::json!({"enabled": true, "path": path});
    }
    let job: JobSpec =
        parse::from_value(value, "job").map_err(|e| Failure::new(format!("invalid drain: {e}")))?;
    let limits = TaskConfig::from_env()
        .map_err(|e| Failure::new(e.to_string()))?
        .limits;
    job.clone()
        .validate(&limits)
        .map_err(|e| Failure::new(format!("invalid drain: {e}")))?;
    Ok(job)
}

/// Follows the job to its run's report, then waits until the lane has no job pending and no
/// run in flight. `None`: the job ended without running (cancelled or past its deadline).
async fn drain<L: LaneView, T: DescribeTask>(
    lanes: &L,
    tasks: &T,
    job: &JobId,
    pause: Duration,
    quiet: bool,
) -> Result<Option<KeptReport>, Failure> {
    let Ok((lane, run)) = run_of_job(lanes, job, pause).await? else {
        return Ok(None);
    };
    let report = follow(lanes, tasks, (&lane, &run), pause, quiet).await?;
    let mut said = false;
    loop {
        let in_flight = lanes.lane(&lane).await?.run.is_some();
        // Whether any job waits is one key read; the count (up to 1,000) only for the line said.
        let any_pending = lanes.pending_count(&lane, 1).await? > 0;
        if !in_flight && !any_pending {
            return Ok(Some(report));
        }
        if !said && !quiet {
            let pending = lanes.pending_count(&lane, 1_000).await?;
            let more = if in_flight {
                "a run in flight"
            } else {
                "no run"
            };
            eprintln!("{lane}: waiting for its other work ({more}, {pending} jobs pending)");
            said = true;
        }
        tokio::time::sleep(pause).await;
    }
}

/// Drained only for a succeeded export with no failed file.
fn verdict(report: Option<&KeptReport>) -> Verdict {
    let Some(report) = report else {
        return Verdict::NotRun;
    };
    let failed = report.counts.failed.unwrap_or(0) + report.counts.files_failed.unwrap_or(0);
    match report.outcome {
        Outcome::Succeeded if failed == 0 => Verdict::Drained,
        Outcome::Succeeded => Verdict::FilesFailed,
        _ => Verdict::Failed,
    }
}

/// Prints the end (the report's text, with its failure digest; or what was left) and the exit
/// status.
fn finish(args: &DrainArgs, drained: Drained<'_>) -> ExitCode {
    if args.output.json {
        println!("{}", serde_json::to_string(&drained).unwrap_or_default());
    } else {
        if let Some(report) = drained.report {
            println!("{}", report.text);
        }
        let job = drained.job_id;
        let fs = &args.file_system;
        let line = match drained.verdict {
            Verdict::Drained => format!("drained {fs}: exported, and no job of its lane is left"),
            Verdict::NotRun => format!("not drained: job {job} ended without running"),
            Verdict::FilesFailed => format!("not drained: files of {fs} failed to export"),
            Verdict::Failed => format!("not drained: the export of {fs} failed"),
            Verdict::TimedOut => format!(
                "not drained: gave up after {} s; job {job} and the lane's work go on",
                args.timeout
            ),
        };
        println!("{line}");
    }
    match drained.verdict {
        Verdict::Drained => ExitCode::SUCCESS,
        Verdict::TimedOut => ExitCode::from(EXIT_TIMED_OUT),
        _ => ExitCode::from(EXIT_FAILED),
    }
}
