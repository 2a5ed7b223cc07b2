//! `ferry history [--lane L] [--since DURATION] [--limit N] [--json]`: finished runs, newest
//! first, from the reports `notify` keeps in the lane table (30 days): outcome, duration,
//! files and bytes, how many jobs each covered.
//!
//! `--unmatched`: instead, the uploads that started nothing (no route matched the object, or
//! the record was not an object creation), as `s3-trigger` recorded them, newest first.

use std::process::ExitCode;

use clap::Args;
use comfy_table::{Table, presets::NOTHING};
use ferry::lanes::LaneId;
use ferry::lanes::record::KeptReport;
use ferry::ports::LaneView;
use ferry::runtime::now_millis;

use crate::deploy::DeployArgs;
use crate::text::{age, bytes, parse_duration, short_lane};
use crate::{Failure, OutputArgs};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this lane: `fsx:<file system id>`, `datasync:<task ARN>` or `datasync-task:<name>`
    /// (`status --json` gives each lane's key).
    #[arg(long)]
    pub lane: Option<String>,
    /// How far back: 90s, 30m, 12h, 7d, 2w (reports are kept 30 days).
    #[arg(long, default_value = "7d", value_parser = parse_duration)]
    pub since: u64,
    /// At most this many runs (or uploads), newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// The uploads that started nothing instead of runs: objects no route matched, records
    /// that were not object creations.
    #[arg(long, conflicts_with = "lane")]
    pub unmatched: bool,
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

pub async fn run(args: HistoryArgs) -> Result<ExitCode, Failure> {
    let deployment = args.deploy.open(None).await?;
    let lanes = deployment.lanes()?;
    if args.unmatched {
        return unmatched(&lanes, &args).await;
    }
    let lane = match &args.lane {
        Some(text) => Some(LaneId::parse(text).map_err(|e| Failure::new(format!("--lane: {e}")))?),
        None => None,
    };
    let now = now_millis();
    let since = now.saturating_sub(args.since.saturating_mul(1000));
    // Newest first, and only as many as are printed (the lane table indexes them by time).
    let reports = lanes
        .history(lane.as_ref(), (since, now), args.limit)
        .await?;
    if args.output.json {
        let runs: Vec<serde_json::Value> = reports.iter().map(summary).collect();
        println!("{}", serde_json::json!({ "runs": runs }));
    } else if reports.is_empty() {
        println!("no finished runs in that time");
    } else {
        println!("{}", table(&reports));
    }
    Ok(ExitCode::SUCCESS)
}

async fn unmatched<L: LaneView>(lanes: &L, args: &HistoryArgs) -> Result<ExitCode, Failure> {
    let now = now_millis();
    let since = now.saturating_sub(args.since.saturating_mul(1000));
    // Newest first, and only as many as are printed.
    let dropped = lanes.dropped((since, now), args.limit).await?;
    if args.output.json {
        println!("{}", serde_json::json!({ "dropped": dropped }));
        return Ok(ExitCode::SUCCESS);
    }
    if dropped.is_empty() {
        println!("no upload started nothing in that time");
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_header(vec!["WHEN", "WHY", "OBJECT", "MESSAGE"]);
    for d in &dropped {
        let object = match (&d.bucket, &d.key) {
            (Some(bucket), Some(key)) => format!("s3://{bucket}/{key}"),
            (Some(bucket), None) => format!("s3://{bucket}"),
            _ => "-".to_owned(),
        };
        table.add_row(vec![
            format!("{} ago", age(now.saturating_sub(d.at) / 1000)),
            d.why.clone(),
            object,
            d.message_id.clone().unwrap_or_else(|| "-".to_owned()),
        ]);
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}

/// A kept report without its text, for `--json`.
fn summary(report: &KeptReport) -> serde_json::Value {
    let mut value = serde_json::to_value(report).unwrap_or_default();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("text");
    }
    value
}

fn table(reports: &[KeptReport]) -> Table {
    let mut table = Table::new();
    table.load_style(NOTHING).set_header(vec![
        "ENDED", "RUN", "LANE", "JOB", "OUTCOME", "TOOK", "FILES", "FAILED", "BYTES", "JOBS",
    ]);
    let now = now_millis();
    let dash = || "-".to_owned();
    for r in reports {
        let counts = &r.counts;
        let files = counts
            .succeeded
            .or(counts.files_transferred)
            .map(|n| n.to_string());
        let failed = counts.failed.or(counts.files_failed).map(|n| n.to_string());
        table.add_row(vec![
            format!("{} ago", age(now.saturating_sub(r.published_at) / 1000)),
            r.run.to_string(),
            short_lane(&r.lane),
            r.job.clone(),
            r.outcome.as_upper().to_owned(),
            r.duration_seconds.map_or_else(dash, age),
            files.unwrap_or_else(dash),
            failed.unwrap_or_else(dash),
            counts
                .bytes_transferred
                .or(counts.bytes_written)
                .map_or_else(dash, bytes),
            r.jobs.to_string(),
        ]);
    }
    table
}
