//! `ferry tasks FILE-SYSTEM|DATASYNC-TASK [--lifecycle L]...`: the service's own list of a file
//! system's data repository tasks (`DescribeDataRepositoryTasks` with the `file-system-id` and
//! `task-lifecycle` filters, the FSx guide's "view tasks by file system and lifecycle") or a
//! DataSync task's executions, Ferry's and others'. With the lane table named, Ferry's runs are
//! marked. `--association dra-…` keeps one data repository association's tasks (FSx's
//! `data-repository-association-id` filter).

use std::collections::BTreeSet;
use std::process::ExitCode;

use clap::Args;
use comfy_table::{Table, presets::NOTHING};
use ferry::aws::AwsTasks;
use ferry::ids::{DataSyncTaskArn, FileSystemId};
use ferry::lanes::LaneId;
use ferry::ports::{LaneView, ListTasks, ListedTask, TaskTarget};

use crate::deploy::DeployArgs;
use crate::{Failure, OutputArgs};

#[derive(Debug, Args)]
pub struct TasksArgs {
    /// A file system id (`fs-…`) or a DataSync task ARN.
    pub target: String,
    /// Only tasks in this lifecycle (FSx: PENDING, EXECUTING, CANCELING, SUCCEEDED, FAILED,
    /// CANCELED; DataSync: QUEUED, LAUNCHING, PREPARING, TRANSFERRING, VERIFYING, CANCELLING,
    /// SUCCESS, ERROR); repeat for several.
    #[arg(long)]
    pub lifecycle: Vec<String>,
    /// Only the tasks of this data repository association (`dra-…`; a file system's target
    /// only).
    #[arg(long, value_name = "ID")]
    pub association: Option<String>,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: TasksArgs) -> Result<ExitCode, Failure> {
    let (mut target, lane) = target(&args.target)?;
    if let Some(id) = &args.association {
        let TaskTarget::FileSystem(fs) = &target else {
            return Err(Failure::new(
                "--association: only a file system's tasks run on an association (TARGET fs-…)",
            ));
        };
        if !(id.starts_with("dra-") && (13..=23).contains(&id.len())) {
            return Err(Failure::new(format!(
                "--association: expected an association id (dra- and 8 or more hex digits, 13-23 characters); got {id:?}"
            )));
        }
        target = TaskTarget::Association(fs.clone(), id.clone());
    }
    let deployment = args.deploy.open(None).await?;
    let listed = AwsTasks::new(&deployment.aws)
        .list_tasks(&target, &args.lifecycle)
        .await?;
    let ferrys = match deployment.known_table() {
        Some(_) => Some(ferrys_tasks(&deployment.lanes()?, &lane).await?),
        None => None,
    };
    if args.output.json {
        let tasks: Vec<serde_json::Value> = listed
            .iter()
            .map(|t| {
                let mut value = serde_json::to_value(t).unwrap_or_default();
                if let (Some(ids), Some(fields)) = (&ferrys, value.as_object_mut()) {
                    fields.insert("ferry".into(), ids.contains(&t.id).into());
                }
                value
            })
            .collect();
        println!("{}", serde_json::json!({ "tasks": tasks }));
    } else if listed.is_empty() {
        println!("no tasks");
    } else {
        println!("{}", table(&listed, ferrys.as_ref()));
    }
    Ok(ExitCode::SUCCESS)
}

fn target(text: &str) -> Result<(TaskTarget, LaneId), Failure> {
    if text.starts_with("fs-") {
        let fs = FileSystemId::parse(text).map_err(|e| Failure::new(format!("TARGET: {e}")))?;
        return Ok((TaskTarget::FileSystem(fs.clone()), LaneId::Fsx(fs)));
    }
    let arn = DataSyncTaskArn::parse(text).map_err(|e| {
        Failure::new(format!(
            "TARGET: expected a file system id (fs-…) or a DataSync task ARN: {e}"
        ))
    })?;
    Ok((TaskTarget::DataSyncTask(arn.clone()), LaneId::DataSync(arn)))
}

/// Most kept reports `ferry tasks` reads to tell Ferry's tasks from others.
const MAX_REPORTS_READ: usize = 1_000;

/// The task ids Ferry's runs in this lane used (kept reports and the run in flight).
async fn ferrys_tasks<L: LaneView>(lanes: &L, lane: &LaneId) -> Result<BTreeSet<String>, Failure> {
    let now = ferry::runtime::now_millis();
    // The kept reports of the last 30 days, newest first (at most as many as listed).
    let mut ids: BTreeSet<String> = lanes
        .history(
            Some(lane),
            (now.saturating_sub(30 * 86_400_000), now),
            MAX_REPORTS_READ,
        )
        .await?
        .into_iter()
        .filter_map(|r| r.task_id)
        .collect();
    if let Some(run) = lanes.lane(lane).await?.run
        && let Some(task) = lanes.run(lane, &run).await?.and_then(|r| r.task)
    {
        ids.insert(task.id().to_owned());
    }
    Ok(ids)
}

fn table(tasks: &[ListedTask], ferrys: Option<&BTreeSet<String>>) -> Table {
    let mut table = Table::new();
    let mut header = vec!["TASK", "TYPE", "LIFECYCLE", "CREATED", "ENDED", "FILES"];
    if ferrys.is_some() {
        header.push("FERRY");
    }
    table.load_style(NOTHING).set_header(header);
    let dash = || "-".to_owned();
    let when = |t: &Option<ferry::domain::status::Timestamp>| {
        t.map_or_else(dash, ferry::notify::message::rfc3339)
    };
    for t in tasks {
        let files = match (t.counts.succeeded, t.counts.total) {
            (Some(done), Some(total)) => format!("{done}/{total}"),
            _ => dash(),
        };
        let mut row = vec![
            t.id.clone(),
            t.kind.clone(),
            t.lifecycle.clone(),
            when(&t.created_at),
            when(&t.ended_at),
            files,
        ];
        if let Some(ids) = ferrys {
            row.push(if ids.contains(&t.id) { "yes" } else { "no" }.to_owned());
        }
        table.add_row(row);
    }
    table
}
