//! `ferry validate FILE... [--stack NAME]`: job specs, submit events (what a schedule sends
//! `submit`: `{"job": ..., "occurrence": ...}`), access policies (`{"rules": ...}`) and routes files, offline, with the
//! functions' rules (the same code: `JobSpec::validate`, `Routes::from_json`) and the limits the
//! environment sets (`FERRY_MAX_PATHS`); with `--stack`, also routes whose bucket the stack's
//! upload queue does not accept notifications from (they would never fire); with
//! `--associations`, also FSx jobs whose task would fail on their file system's links to S3,
//! and FSx routes whose jobs would (each route's job for its whole prefix, as s3-trigger checks
//! it).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use ferry::FerryError;
use ferry::aws::AwsTasks;
use ferry::config::{FromEnvironment, TaskConfig};
use ferry::domain::access::Policy;
use ferry::domain::job::{JobSpec, Limits, ValidJob};
use ferry::domain::parse;
use ferry::error::FieldErrors;
use ferry::lanes::LaneId;
use ferry::lanes::intake::SubmitInput;
use ferry::trigger::routes::Routes;

use crate::links::Verdict;

/// Prints one verdict per file (and every broken rule under an invalid one); exit 1 when any
/// file is invalid or unreadable. With `associations`, a valid FSx job is also checked against
/// its file system's links to S3 (read with the caller's credentials; `crate::links`).
pub async fn run(files: &[PathBuf], allowed_buckets: Option<&str>, associations: bool) -> ExitCode {
    let limits = match TaskConfig::from_env() {
        Ok(config) => config.limits,
        Err(e) => {
            eprintln!("ferry: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tasks = match associations {
        true => Some(AwsTasks::new(&ferry::runtime::load_aws_config().await)),
        false => None,
    };
    let mut all_valid = true;
    for file in files {
        let mut checked = check(file, &limits, allowed_buckets);
        if let (Some(tasks), Ok((what, jobs))) = (&tasks, &checked) {
            checked = against_links(tasks, what, jobs).await;
        }
        match checked {
            Ok((what, _)) => println!("{}: valid {what}", file.display()),
            Err(problems) => {
                all_valid = false;
                println!("{}: invalid", file.display());
                for problem in problems {
                    println!("  {problem}");
                }
            }
        }
    }
    if all_valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The file's FSx jobs checked against their file systems' links: each problem prefixed with
/// what it is about (`route incoming-import: `), or what was not checked and why.
async fn against_links(tasks: &AwsTasks, what: &str, jobs: &[Labelled]) -> Checked {
    let mut refused = Vec::new();
    let mut unknown = Vec::new();
    for (label, job) in jobs {
        match crate::links::check(tasks, job).await {
            Verdict::Fits => {}
            Verdict::Refused(problems) => {
                refused.extend(problems.into_iter().map(|p| format!("{label}{p}")));
            }
            Verdict::Unknown(why) => unknown.push(format!("{label}{why}")),
        }
    }
    if !refused.is_empty() {
        return Err(refused);
    }
    if unknown.is_empty() {
        return Ok((what.to_owned(), Vec::new()));
    }
    Ok((
        format!(
            "{what} (not checked against its associations: {})",
            unknown.join("; ")
        ),
        Vec::new(),
    ))
}

/// A job a file holds, with what to prefix its problems with (`route NAME: `, or nothing).
type Labelled = (String, ValidJob);
type Checked = Result<(String, Vec<Labelled>), Vec<String>>;

/// What the file is when valid (`job "x" on lane fsx:fs-...`, `routes file (3 routes)`) and
/// the jobs it holds (a job spec or a submit event: its job; routes: each route's job for its
/// whole prefix), or its problems.
pub fn check(file: &Path, limits: &Limits, allowed_buckets: Option<&str>) -> Checked {
    let text = std::fs::read_to_string(file).map_err(|e| vec![format!("cannot read: {e}")])?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| vec![format!("not JSON: {e}")])?;
    let listed = |errors: FieldErrors| -> Vec<String> {
        errors.errors.iter().map(ToString::to_string).collect()
    };
    match value {
        serde_json::Value::Array(_) => {
            let routes = Routes::from_json(&text, limits).map_err(listed)?;
            let unreachable = allowed_buckets.map_or_else(Vec::new, |allowed| {
                crate::notifications::buckets_that_cannot_send(&routes, allowed)
            });
            if !unreachable.is_empty() {
                return Err(unreachable);
            }
            let jobs = (0..routes.len())
                .map(|i| routes.get(i))
                .filter_map(|r| Some((format!("route {}: ", r.name), r.prefix_job(limits)?)))
                .collect();
            Ok((
                format!(
                    "routes file ({} route{})",
                    routes.len(),
                    if routes.len() == 1 { "" } else { "s" }
                ),
                jobs,
            ))
        }
        // What the submit function takes: `{"job": ..., "id"|"occurrence": ...}` (a schedule's
        // input, events/submit/*.json), checked as submit checks it.
        serde_json::Value::Object(ref fields) if fields.contains_key("job") => {
            let input: SubmitInput = parse::from_value(value, "").map_err(listed)?;
            input.check_source().map_err(|e| match e {
                FerryError::InvalidJob(errors) => listed(errors),
                other => vec![other.to_string()],
            })?;
            let job = input.job.validate(limits).map_err(listed)?;
            let what = format!(
                "submit event: job {:?} on lane {}",
                job.spec().name,
                LaneId::of(&job)
            );
            Ok((what, vec![(String::new(), job)]))
        }
        // An access policy (`AccessPolicy`, docs/access.md), checked as submit's cold start does.
        serde_json::Value::Object(ref fields) if fields.contains_key("rules") => {
            let policy = Policy::parse(&text).map_err(listed)?;
            let what = format!("access policy (rules {})", policy.rule_names().join(", "));
            Ok((what, Vec::new()))
        }
        serde_json::Value::Object(_) => {
            let spec: JobSpec = parse::from_value(value, "job").map_err(listed)?;
            let job = spec.validate(limits).map_err(listed)?;
            let what = format!("job {:?} on lane {}", job.spec().name, LaneId::of(&job));
            Ok((what, vec![(String::new(), job)]))
        }
        _ => Err(vec![
            "expected a job spec, a submit event or an access policy (a JSON object), or routes (a JSON array)"
                .to_owned(),
        ]),
    }
}
