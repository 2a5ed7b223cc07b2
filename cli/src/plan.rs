//! `ferry plan --routes ROUTES (EVENT-FILE | --keys FILE)`: offline, what `s3-trigger` would
//! queue for a set of uploads (the same code: routes, key checks, coalescing, validation) and
//! the runs the lane runner would start if those jobs waited together (the same merge). For
//! trying routes before deploying them. With `--associations` (not offline: the links are read
//! with the caller's credentials), an FSx route that does not fit its file system's links to S3
//! queues nothing, as s3-trigger would hold its uploads back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use ferry::aws::AwsTasks;
use ferry::config::{FromEnvironment, TaskConfig};
use ferry::domain::job::{JobSpec, Limits};
use ferry::lanes::LaneId;
use ferry::lanes::merge::{Candidate, merge};
use ferry::trigger::coalesce::{self, PlannedJob};
use ferry::trigger::events::{self, S3Object};
use ferry::trigger::key::check_key;
use ferry::trigger::routes::Routes;
use serde::Serialize;

use crate::links::Verdict;
use crate::{Failure, OutputArgs};

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("uploads").required(true).args(["event", "keys"]))]
pub struct PlanArgs {
    /// The routes (what FERRY_ROUTES holds).
    #[arg(long)]
    pub routes: PathBuf,
    /// An event as s3-trigger receives it: an SQS batch, an S3 notification or an EventBridge
    /// "Object Created" event (the files in events/s3-trigger/).
    pub event: Option<PathBuf>,
    /// Instead of an event: one upload per line, `s3://bucket/key` or `bucket/key`.
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Also read each FSx route's file system links to S3 (with your credentials) and hold back
    /// the uploads of a route whose tasks would fail there, as s3-trigger does
    #[arg(long)]
    pub associations: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `--json` prints.
#[derive(Debug, Serialize)]
struct PlanOutput {
    objects: usize,
    /// Objects no route matched.
    unmatched: usize,
    /// Records that were not object creations (removals, test events).
    ignored: usize,
    /// Messages or objects s3-trigger would fail, with why.
    refused: Vec<String>,
    jobs: Vec<JobOutput>,
    runs: Vec<RunOutput>,
}

#[derive(Debug, Serialize)]
struct JobOutput {
    route: String,
    lane: String,
    objects: usize,
    /// Lines of the DataSync manifest the job would write, when it has one.
    manifest_entries: Option<usize>,
    spec: JobSpec,
}

#[derive(Debug, Serialize)]
struct RunOutput {
    lane: String,
    /// Indices into `jobs`.
    jobs: Vec<usize>,
    spec: JobSpec,
}

pub async fn run(args: &PlanArgs) -> Result<ExitCode, Failure> {
    let limits = TaskConfig::from_env()
        .map_err(|e| Failure::new(e.to_string()))?
        .limits;
    let routes = read_routes(&args.routes, &limits)?;
    let (objects, ignored, mut refused) = match (&args.event, &args.keys) {
        (Some(event), _) => from_event(event)?,
        (None, Some(keys)) => from_keys(keys)?,
        (None, None) => unreachable!("clap requires one of them"),
    };
    let mut plan = coalesce::plan(&routes, &limits, objects.iter().map(|o| (0, o)));
    refused.extend(plan.rejected.iter().map(|r| r.reason.clone()));
    if args.associations {
        let misrouted = misrouted_routes(&routes, &limits, &plan.jobs).await;
        plan.jobs
            .retain(|planned| match misrouted.get(&planned.route) {
                Some(why) => {
                    refused.push(format!("{} objects held back: {why}", planned.objects));
                    false
                }
                None => true,
            });
    }
    let mut jobs = Vec::new();
    for planned in &plan.jobs {
        match job_output(&routes, &limits, planned) {
            Ok(job) => jobs.push(job),
            Err(why) => refused.push(why),
        }
    }
    let output = PlanOutput {
        objects: objects.len(),
        unmatched: plan.unmatched,
        ignored,
        refused,
        runs: runs(&jobs, &plan.jobs, &routes, &limits),
        jobs,
    };
    if args.output.json {
        println!("{}", serde_json::to_string(&output).unwrap_or_default());
    } else {
        print!("{}", text(&output));
    }
    Ok(ExitCode::SUCCESS)
}

/// The routes of `planned` whose job for their whole prefix would fail on its file system's
/// links, with why (as s3-trigger checks them); a read that fails is a warning on stderr.
async fn misrouted_routes(
    routes: &Routes,
    limits: &Limits,
    planned: &[PlannedJob],
) -> BTreeMap<usize, String> {
    let tasks = AwsTasks::new(&ferry::runtime::load_aws_config().await);
    let used: BTreeSet<usize> = planned.iter().map(|p| p.route).collect();
    let mut misrouted = BTreeMap::new();
    for index in used {
        let route = routes.get(index);
        let Some(job) = route.prefix_job(limits) else {
            continue;
        };
        match crate::links::check(&tasks, &job).await {
            Verdict::Fits => {}
            Verdict::Refused(problems) => {
                let why = format!(
                    "route {}: its tasks would fail: {}",
                    route.name,
                    problems.join("; ")
                );
                misrouted.insert(index, why);
            }
            Verdict::Unknown(why) => eprintln!("ferry: warning: route {}: {why}", route.name),
        }
    }
    misrouted
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("{}: cannot read: {e}", path.display())))
}

fn read_routes(path: &Path, limits: &Limits) -> Result<Routes, Failure> {
    Routes::from_json(&read(path)?, limits)
        .map_err(|e| Failure::new(format!("{}: invalid routes: {e}", path.display())))
}

type Uploads = (Vec<S3Object>, usize, Vec<String>);

fn from_event(path: &Path) -> Result<Uploads, Failure> {
    let value: serde_json::Value = serde_json::from_str(&read(path)?)
        .map_err(|e| Failure::new(format!("{}: not JSON: {e}", path.display())))?;
    let batch =
        events::parse(value).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let mut objects = Vec::new();
    let mut ignored = 0;
    let mut refused = Vec::new();
    for (i, message) in batch.messages.into_iter().enumerate() {
        ignored += message.ignored.len();
        match message.objects {
            Ok(found) => objects.extend(found),
            Err(e) => refused.push(format!("message {i}: {e}")),
        }
    }
    Ok((objects, ignored, refused))
}

fn from_keys(path: &Path) -> Result<Uploads, Failure> {
    let mut objects = Vec::new();
    let mut refused = Vec::new();
    for (n, line) in read(path)?.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bare = line.strip_prefix("s3://").unwrap_or(line);
        let Some((bucket, key)) = bare.split_once('/') else {
            refused.push(format!(
                "line {}: expected s3://bucket/key, got {line:?}",
                n + 1
            ));
            continue;
        };
        match check_key(key.to_owned()) {
            Ok(key) => objects.push(S3Object {
                bucket: bucket.to_owned(),
                key,
                size: None,
                version_id: None,
                sequencer: None,
                etag: None,
            }),
            Err(e) => refused.push(format!("line {}: {e}", n + 1)),
        }
    }
    Ok((objects, 0, refused))
}

fn job_output(routes: &Routes, limits: &Limits, planned: &PlannedJob) -> Result<JobOutput, String> {
    let route = routes.get(planned.route);
    let valid = planned
        .job
        .clone()
        .validate(limits)
        .map_err(|e| format!("route {}: invalid job: {e}", route.name))?;
    Ok(JobOutput {
        route: route.name.clone(),
        lane: LaneId::of(&valid).to_string(),
        objects: planned.objects,
        manifest_entries: planned.manifest.as_ref().map(|m| {
            m.body
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
        }),
        spec: valid.into_spec(),
    })
}

/// The runs the runner would start, lane by lane, if the jobs waited together in this order.
fn runs(
    jobs: &[JobOutput],
    planned: &[PlannedJob],
    routes: &Routes,
    limits: &Limits,
) -> Vec<RunOutput> {
    let mut runs = Vec::new();
    let lanes: std::collections::BTreeSet<&str> = jobs.iter().map(|j| j.lane.as_str()).collect();
    for lane in lanes {
        let mut waiting: Vec<usize> = (0..jobs.len()).filter(|&i| jobs[i].lane == lane).collect();
        while !waiting.is_empty() {
            let roots: Vec<String> = waiting
                .iter()
                .map(|&i| routes.get(planned[i].route).collapse_root())
                .collect();
            let candidates: Vec<Candidate> = waiting
                .iter()
                .zip(&roots)
                .map(|(&i, root)| Candidate {
                    spec: &jobs[i].spec,
                    collapse_root: Some(root.as_str()),
                })
                .collect();
            let Some(merged) = merge(&candidates, limits) else {
                break;
            };
            let taken: Vec<usize> = merged.taken.iter().map(|&k| waiting[k]).collect();
            waiting.retain(|i| !taken.contains(i));
            runs.push(RunOutput {
                lane: lane.to_owned(),
                jobs: taken,
                spec: merged.spec,
            });
        }
    }
    runs
}

fn text(out: &PlanOutput) -> String {
    let mut text = format!(
        "{} objects: {} matched no route, {} records ignored\n",
        out.objects, out.unmatched, out.ignored
    );
    for why in &out.refused {
        text.push_str(&format!("refused: {why}\n"));
    }
    for (i, job) in out.jobs.iter().enumerate() {
        text.push_str(&format!(
            "job {i}: route {} -> {} on {} ({} object{}){}\n",
            job.route,
            job.spec.kind.as_str(),
            job.lane,
            job.objects,
            if job.objects == 1 { "" } else { "s" },
            targets(&job.spec, job.manifest_entries)
        ));
    }
    for run in &out.runs {
        let jobs: Vec<String> = run.jobs.iter().map(ToString::to_string).collect();
        text.push_str(&format!(
            "run on {}: jobs {}{}\n",
            run.lane,
            jobs.join(", "),
            targets(&run.spec, None)
        ));
    }
    text
}

/// `: paths a, b` / `: includes /x|/y` / `: manifest of 12 entries` / `: the whole file system`.
fn targets(spec: &JobSpec, manifest_entries: Option<usize>) -> String {
    if let Some(n) = manifest_entries {
        return format!(": manifest of {n} entries");
    }
    if !spec.paths.is_empty() {
        return format!(": paths {}", spec.paths.join(", "));
    }
    if !spec.includes.is_empty() {
        return format!(": includes {}", spec.includes.join("|"));
    }
    ": everything".to_owned()
}
