//! `ferry status [LANE] [--json]`: each lane's run in flight (its task, lifecycle, progress,
//! age and an estimate of the time left), the jobs waiting and the oldest one's age, and the
//! runner holding the lane. Reads the lane table consistently and describes each running task
//! (`DescribeDataRepositoryTasks` / `DescribeTaskExecution`).

use std::process::ExitCode;

use clap::Args;
use comfy_table::{ContentArrangement, Table, presets::NOTHING};
use ferry::aws::AwsTasks;
use ferry::domain::job::JobKind;
use ferry::domain::status::TaskHandle;
use ferry::lanes::LaneId;
use ferry::lanes::record::{LaneState, Millis, RunRecord, RunState};
use ferry::ports::{DescribeTask, LaneView};
use ferry::runtime::now_millis;
use serde::Serialize;

use crate::deploy::DeployArgs;
use crate::runs::Progress;
use crate::text::{age, bytes, short_id, short_lane};
use crate::{Failure, OutputArgs};

/// Pending jobs counted per lane; past it the count reads `1000+`.
const MAX_COUNTED: usize = 1_000;

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One lane (`fsx:fs-0123456789abcdef0`, `datasync:<task ARN>`, `datasync-task:<name>`);
    /// every lane when left out.
    pub lane: Option<String>,
    /// Every column (the task, bytes, the oldest wait) and whole ids: run, runner.
    #[arg(long)]
    pub wide: bool,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// One lane, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct LaneStatus {
    pub lane: LaneId,
    /// The runner execution holding the lane, and until when (ms since the epoch).
    pub runner: Option<Runner>,
    pub run: Option<RunStatus>,
    /// Jobs waiting (counted up to 1,000: `waiting_capped` past it).
    pub waiting: usize,
    pub waiting_capped: bool,
    pub oldest_waiting_seconds: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Runner {
    pub owner: String,
    pub lease_until: Millis,
    /// The lease is still valid: the runner is alive (or stopped less than a lease ago).
    pub alive: bool,
}

#[derive(Debug, Serialize)]
pub struct RunStatus {
    pub id: String,
    /// `claimed` (starting) or `started`.
    pub state: RunState,
    pub kind: JobKind,
    pub jobs: usize,
    pub task: Option<TaskHandle>,
    /// The task's lifecycle, files, bytes and time left, as its service reports them.
    #[serde(flatten)]
    pub progress: Progress,
    pub age_seconds: u64,
    pub cancel_requested: bool,
    /// Describing the task failed: why.
    pub task_error: Option<String>,
}

pub async fn run(args: StatusArgs) -> Result<ExitCode, Failure> {
    let deployment = args.deploy.open(None).await?;
    let lanes = deployment.lanes()?;
    let tasks = AwsTasks::new(&deployment.aws);
    let now = now_millis();
    let mut idle = 0;
    let ids = match &args.lane {
        Some(text) => vec![LaneId::parse(text).map_err(|e| Failure::new(format!("LANE: {e}")))?],
        // Lanes their runner released with nothing left are not shown (`ferry status LANE` shows
        // one): they are counted.
        None => {
            let registered = lanes.lanes(now).await?;
            idle = registered.iter().filter(|r| r.idle).count();
            registered
                .into_iter()
                .filter(|r| !r.idle)
                .map(|r| r.lane)
                .collect()
        }
    };
    let mut all = Vec::with_capacity(ids.len());
    for id in ids {
        all.push(lane_status(&lanes, &tasks, id, now).await?);
    }
    if args.output.json {
        let doc = serde_json::json!({ "lanes": all, "idle_lanes": idle });
        println!("{doc}");
    } else if all.is_empty() && idle == 0 {
        println!("no lanes: nothing was queued in this table in the last 31 days");
    } else if all.is_empty() {
        println!(
            "no lane has work: {} idle",
            crate::text::plural(idle, "lane")
        );
    } else {
        println!("{}", table(&all, args.wide));
        if idle > 0 {
            println!(
                "and {} idle (ferry status LANE shows one)",
                crate::text::plural(idle, "lane")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn lane_status<L: LaneView, T: DescribeTask>(
    lanes: &L,
    tasks: &T,
    lane: LaneId,
    now: Millis,
) -> Result<LaneStatus, Failure> {
    let LaneState { lease, run } = lanes.lane(&lane).await?;
    let run = match run {
        Some(id) => lanes.run(&lane, &id).await?,
        None => None,
    };
    let run = match run {
        Some(record) => Some(run_status(tasks, &record, now).await),
        None => None,
    };
    let waiting = lanes.pending_count(&lane, MAX_COUNTED + 1).await?;
    let oldest = lanes.pending(&lane, 1, 0).await?;
    Ok(LaneStatus {
        runner: lease.map(|l| Runner {
            alive: l.until >= now,
            owner: l.owner,
            lease_until: l.until,
        }),
        run,
        waiting: waiting.min(MAX_COUNTED),
        waiting_capped: waiting > MAX_COUNTED,
        oldest_waiting_seconds: oldest
            .first()
            .map(|j| now.saturating_sub(j.enqueued_at) / 1000),
        lane,
    })
}

async fn run_status<T: DescribeTask>(tasks: &T, run: &RunRecord, now: Millis) -> RunStatus {
    let since = run.started_at.unwrap_or(run.claimed_at);
    let age_seconds = now.saturating_sub(since) / 1000;
    let mut status = RunStatus {
        id: run.id.to_string(),
        state: run.state,
        kind: run.spec.kind,
        jobs: run.job_count,
        task: run.task.clone(),
        progress: Progress::default(),
        age_seconds,
        cancel_requested: run.cancel.is_some(),
        task_error: None,
    };
    if let Some(task) = &run.task {
        match tasks.describe_task(task).await {
            Ok(snapshot) => status.progress = Progress::of(&snapshot, age_seconds),
            Err(e) => status.task_error = Some(crate::text::error_line(&e)),
        }
    }
    status
}

/// Columns of the table: the narrow form fits a 100-column terminal for fsx lanes (ids cut to
/// what tells them apart); `--wide` adds the task, bytes and oldest wait, with full ids.
fn table(lanes: &[LaneStatus], wide: bool) -> Table {
    let mut table = Table::new();
    let mut header = vec!["LANE", "RUN", "JOBS"];
    if wide {
        header.push("TASK");
    }
    header.extend(["LIFECYCLE", "FILES"]);
    if wide {
        header.push("BYTES");
    }
    header.extend(["AGE", "LEFT", "WAITING"]);
    if wide {
        header.push("OLDEST");
    }
    header.push("RUNNER");
    table.load_style(NOTHING).set_header(header);
    for lane in lanes {
        table.add_row(row(lane, wide));
    }
    let last = table.column_count().saturating_sub(1);
    for (i, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if i == last { 0 } else { 2 }));
    }
    if let Some(width) = terminal_width() {
        table
            .set_content_arrangement(ContentArrangement::Dynamic)
            .set_width(width);
    }
    table
}

/// The terminal's width when standard output is one (a pipe or a file gets every row whole).
fn terminal_width() -> Option<u16> {
    let (rows, columns) = console::Term::stdout().size_checked()?;
    (rows > 0 && columns > 0).then_some(columns)
}

fn row(lane: &LaneStatus, wide: bool) -> Vec<String> {
    let dash = || "-".to_owned();
    let run = lane.run.as_ref();
    let files = run.and_then(|r| match (r.progress.files_done, r.progress.files_total) {
        (Some(done), Some(total)) => Some(format!("{done}/{total}")),
        (Some(done), None) => Some(done.to_string()),
        _ => None,
    });
    let waiting = if lane.waiting_capped {
        format!("{}+", lane.waiting)
    } else {
        lane.waiting.to_string()
    };
    let mut cells = vec![
        short_lane(&lane.lane),
        run.map_or_else(dash, |r| if wide { r.id.clone() } else { short_run(&r.id) }),
        run.map_or_else(dash, |r| {
            let kind = r.kind.as_str();
            format!("{} {}", r.jobs, kind.strip_prefix("fsx_").unwrap_or(kind))
        }),
    ];
    if wide {
        cells.push(
            run.and_then(|r| r.task.as_ref())
                .map_or_else(dash, |t| short_id(t.id()).to_owned()),
        );
    }
    cells.push(
        run.and_then(|r| r.task_error.clone().or(r.progress.lifecycle.clone()))
            .map_or_else(dash, |l| {
                if run.is_some_and(|r| r.cancel_requested) {
                    format!("{l} (cancel asked)")
                } else {
                    l
                }
            }),
    );
    cells.push(files.unwrap_or_else(dash));
    if wide {
        cells.push(run.and_then(|r| r.progress.bytes).map_or_else(dash, bytes));
    }
    cells.push(run.map_or_else(dash, |r| age(r.age_seconds)));
    cells.push(
        run.and_then(|r| r.progress.eta_seconds)
            .map_or_else(dash, age),
    );
    cells.push(waiting);
    if wide {
        cells.push(lane.oldest_waiting_seconds.map_or_else(dash, age));
    }
    cells.push(
        lane.runner
            .as_ref()
            .map_or_else(dash, |r| match (r.alive, wide) {
                (true, true) => r.owner.clone(),
                (false, true) => format!("{} (lease expired)", r.owner),
                (true, false) => "alive".to_owned(),
                (false, false) => "lease expired".to_owned(),
            }),
    );
    cells
}

/// `run-23406811`: a run id's first eight hex digits, enough to tell the runs on one screen
/// apart (`ferry watch` and `ferry cancel` take the whole id: `--wide` or `--json` shows it).
fn short_run(id: &str) -> String {
    id.get(..12).map_or_else(|| id.to_owned(), str::to_owned)
}
