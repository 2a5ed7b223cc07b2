//! `ferry watch JOB|RUN`: follows a run to its end, then prints its report as `notify`
//! published it. On a terminal a live bar shows files, bytes, rate and the time left; otherwise
//! (a pipe, a log) one line per change of lifecycle. Exit 0 when the run succeeded, 1 otherwise.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use ferry::aws::AwsTasks;
use ferry::lanes::LaneId;
use ferry::lanes::record::{JobState, KeptReport, RunId};
use ferry::notify::report::Outcome;
use ferry::ports::{DescribeTask, LaneView};
use ferry::runtime::now_millis;
use indicatif::{ProgressBar, ProgressStyle};

use crate::deploy::DeployArgs;
use crate::runs::{Progress, Target, find_run};
use crate::text::{age, bytes};
use crate::{Failure, OutputArgs};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// A job id (its run, once it has one) or a run id.
    pub id: String,
    /// Seconds between two looks.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub interval: u64,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: WatchArgs) -> Result<ExitCode, Failure> {
    let deployment = args.deploy.open(None).await?;
    let lanes = deployment.lanes()?;
    let tasks = AwsTasks::new(&deployment.aws);
    let pause = Duration::from_secs(args.interval);
    let (lane, run) = match Target::parse(&args.id)? {
        Target::Run(run) => (find_run(&lanes, &run).await?.0, run),
        Target::Job(job) => match run_of_job(&lanes, &job, pause).await? {
            Ok(found) => found,
            Err(state) => {
                if args.output.json {
                    let line =
                        serde_json::json!({"job": job, "state": state.as_str(), "run": null});
                    println!("{line}");
                } else {
                    println!("job {job} ended {} without running", state.as_str());
                }
                return Ok(ExitCode::FAILURE);
            }
        },
    };
    let report = follow(&lanes, &tasks, (&lane, &run), pause, args.output.json).await?;
    if args.output.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        println!("{}", report.text);
    }
    Ok(if report.outcome == Outcome::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Waits for a pending job to be taken by a run. `Err(state)`: it ended without one (cancelled
/// or timed out while pending), for the caller to say.
pub async fn run_of_job<L: LaneView>(
    lanes: &L,
    job: &ferry::lanes::JobId,
    pause: Duration,
) -> Result<Result<(LaneId, RunId), JobState>, Failure> {
    let mut said = false;
    loop {
        let record = lanes.job(job).await?.ok_or_else(|| {
            Failure::new(format!("not found: job {job} is not in the lane table"))
        })?;
        match (record.state, record.run) {
            (_, Some(run)) => return Ok(Ok((record.job.lane, run))),
            (JobState::Pending, None) => {
                if !said {
                    eprintln!("job {job} waits in {}", record.job.lane);
                    said = true;
                }
            }
            (state, None) => return Ok(Err(state)),
        }
        tokio::time::sleep(pause).await;
    }
}

/// Follows the run until `notify` has kept its report; shows progress meanwhile.
pub async fn follow<L: LaneView, T: DescribeTask>(
    lanes: &L,
    tasks: &T,
    (lane, id): (&LaneId, &RunId),
    pause: Duration,
    quiet: bool,
) -> Result<KeptReport, Failure> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] {pos}/{len} files {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut last_lifecycle = String::new();
    let mut rate = Rate::default();
    loop {
        if let Some(report) = lanes.report(lane, id).await? {
            bar.finish_and_clear();
            return Ok(report);
        }
        let run = lanes
            .run(lane, id)
            .await?
            .ok_or_else(|| Failure::new(format!("not found: run {id} is no longer in {lane}")))?;
        if let Some(task) = &run.task {
            let snapshot = tasks.describe_task(task).await?;
            let since = run.started_at.unwrap_or(run.claimed_at);
            let progress = Progress::of(&snapshot, now_millis().saturating_sub(since) / 1000);
            let lifecycle = progress.lifecycle.clone().unwrap_or_default();
            if lifecycle != last_lifecycle && !quiet {
                bar.suspend(|| println!("{} {lifecycle}", task.id()));
                last_lifecycle = lifecycle;
            }
            draw(&bar, &progress, rate.update(progress.bytes));
        } else if !quiet && last_lifecycle.is_empty() {
            bar.suspend(|| println!("run {id}: starting"));
            last_lifecycle = "starting".into();
        }
        tokio::time::sleep(pause).await;
    }
}

fn draw(bar: &ProgressBar, progress: &Progress, bytes_per_second: Option<f64>) {
    bar.set_prefix(progress.lifecycle.clone().unwrap_or_default());
    if let Some(total) = progress.files_total {
        bar.set_length(u64::try_from(total).unwrap_or(0));
    }
    if let Some(done) = progress.files_done {
        bar.set_position(u64::try_from(done).unwrap_or(0));
    }
    let mut message = Vec::new();
    if let Some(n) = progress.bytes {
        message.push(bytes(n));
    }
    if let Some(r) = bytes_per_second {
        message.push(format!("{}/s", bytes(r as i64)));
    }
    if let Some(eta) = progress.eta_seconds {
        message.push(format!("{} left", age(eta)));
    }
    bar.set_message(message.join(", "));
    bar.tick();
}

/// Bytes per second between two looks.
#[derive(Debug, Default)]
struct Rate {
    last: Option<(Instant, i64)>,
}

impl Rate {
    fn update(&mut self, bytes: Option<i64>) -> Option<f64> {
        let now = Instant::now();
        let bytes = bytes?;
        let rate = self.last.and_then(|(then, before)| {
            let seconds = now.duration_since(then).as_secs_f64();
            (seconds > 0.0 && bytes >= before).then(|| (bytes - before) as f64 / seconds)
        });
        self.last = Some((now, bytes));
        rate
    }
}
