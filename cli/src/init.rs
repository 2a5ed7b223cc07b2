//! `ferry init FILE-SYSTEM [--out DIR] [--report S3_URL] [--force] [--json]`: reads a file
//! system's links to S3 (its data repository associations, or its own `ImportPath`) and writes
//! what Ferry should do there, never what FSx already does itself:
//! - `routes.json`: an import route per linked S3 path with no automatic import (uploads under
//!   it become `fsx_import` jobs);
//! - `schedules/export-<name>.json`: a submit event (a schedule's input) exporting each
//!   association's directory that has no automatic export ("Automatic export and export data
//!   repository tasks cannot run at the same time", FSx for Lustre user guide);
//! - and says, link by link, what FSx's automatic import and export already cover.
//!
//! Every job written is checked against the links it came from (`links::problems`), and every
//! file validates with `ferry validate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use ferry::aws::AwsTasks;
use ferry::domain::job::{JobSpec, Limits};
use ferry::domain::links::{Association, Links, problems};
use ferry::ids::FileSystemId;
use ferry::ports::ReadLinks;
use serde_json::{Value, json};

use crate::{Failure, OutputArgs};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The file system (`fs-…`).
    pub file_system: String,
    /// Where to write `routes.json` and `schedules/`.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// A completion report path for every job written (`s3://bucket/prefix`, inside a linked
    /// repository). Without it the jobs write no report.
    #[arg(long, value_name = "S3_URL")]
    pub report: Option<String>,
    /// Overwrite files that exist.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub output: OutputArgs,
}

/// What `init` proposes for one link.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Step {
    /// The association (`dra-…`) or `ImportPath`.
    pub link: String,
    /// What happens to uploads there: FSx's automatic import, or a route.
    pub import: String,
    /// What happens to files written there: FSx's automatic export, or a schedule.
    pub export: String,
}

/// Routes, schedules (name, submit event) and the plan for `links`.
#[derive(Debug, Default, PartialEq, serde::Serialize)]
pub struct Proposal {
    pub routes: Vec<Value>,
    pub schedules: Vec<(String, Value)>,
    pub plan: Vec<Step>,
}

pub async fn run(args: InitArgs) -> Result<ExitCode, Failure> {
    let fs = FileSystemId::parse(&args.file_system)
        .map_err(|e| Failure::new(format!("FILE-SYSTEM: {e}")))?;
    let aws = ferry::runtime::load_aws_config().await;
    let links = AwsTasks::new(&aws)
        .read_links(&fs)
        .await?
        .ok_or_else(|| Failure::new("the links could not be read"))?;
    let proposal = propose(&fs, &links, args.report.as_deref())?;
    let written = write(&args.out, &proposal, args.force)?;
    if args.output.json {
        let report = json!({"file_system": fs.as_str(), "links": links, "plan": proposal.plan,
                            "written": written});
        println!("{report}");
    } else {
        println!("{fs}: {links}");
        for step in &proposal.plan {
            println!(
                "  {}\n    import: {}\n    export: {}",
                step.link, step.import, step.export
            );
        }
        for path in &written {
            println!("wrote {path}");
        }
        if !proposal.schedules.is_empty() {
            println!(
                "Run each schedule's file as the input of an EventBridge Scheduler schedule targeting the stack's submit function (for example daily: cron(0 2 * * ? *)), or with `ferry submit`."
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What Ferry should do on `fs`, linked by `links`, each job checked against them.
pub fn propose(
    fs: &FileSystemId,
    links: &Links,
    report: Option<&str>,
) -> Result<Proposal, Failure> {
    let mut proposal = Proposal::default();
    let mut names = Vec::new();
    match links {
        Links::Associations { associations } if associations.is_empty() => {
            return Err(Failure::new(format!(
                "{fs} is linked to no data repository (no data repository association, no ImportPath): there is nothing to import or export"
            )));
        }
        Links::Associations { associations } => {
            for a in associations {
                let name = unique(&mut names, &a.file_system_path);
                let step = association(fs, a, &name, report, &mut proposal);
                proposal.plan.push(step);
            }
        }
        Links::FileSystem {
            import_path,
            auto_import,
            ..
        } => {
            let name = unique(&mut names, "/");
            let automatic = auto_import.as_deref().filter(|p| *p != "NONE");
            let import = match automatic {
                Some(policy) => {
                    format!("FSx imports changes itself (AutoImportPolicy {policy}): no route")
                }
                None => proposal.route(fs, import_path, &name, report),
            };
            let export = proposal.schedule(fs, None, &name, report);
            proposal.plan.push(Step {
                link: format!("ImportPath {import_path}"),
                import,
                export,
            });
        }
    }
    // Every job written must fit the links it came from.
    let jobs = proposal
        .routes
        .iter()
        .map(|r| &r["job"])
        .chain(proposal.schedules.iter().map(|(_, s)| &s["job"]));
    for job in jobs {
        let spec: JobSpec = serde_json::from_value(job.clone())
            .map_err(|e| Failure::new(format!("a proposed job does not parse: {e}")))?;
        let valid = spec
            .validate(&Limits::default())
            .map_err(|e| Failure::new(format!("a proposed job is invalid: {e}")))?;
        if let Some(problem) = problems(&valid, links).first() {
            return Err(Failure::new(format!(
                "a proposed job would not fit the links: {problem}"
            )));
        }
    }
    Ok(proposal)
}

fn association(
    fs: &FileSystemId,
    a: &Association,
    name: &str,
    report: Option<&str>,
    proposal: &mut Proposal,
) -> Step {
    let import = if a.auto_import.is_empty() {
        proposal.route(fs, &a.data_repository_path, name, report)
    } else {
        let missing: Vec<&str> = ["NEW", "CHANGED", "DELETED"]
            .into_iter()
            .filter(|e| !a.auto_import.iter().any(|x| x == e))
            .collect();
        let mut text = format!(
            "FSx imports {} objects itself (automatic import): no route",
            a.auto_import.join(", ")
        );
        if !missing.is_empty() {
            text.push_str(&format!(
                " ({} not imported automatically: add a route if you need them)",
                missing.join(", ")
            ));
        }
        text
    };
    let export = if a.auto_export.is_empty() {
        let dir = a.file_system_path.trim_matches('/');
        proposal.schedule(fs, (!dir.is_empty()).then_some(dir), name, report)
    } else {
        format!(
            "FSx exports {} files itself (automatic export): no export schedule (an export task would be refused)",
            a.auto_export.join(", ")
        )
    };
    let mut link = format!(
        "{} {} ↔ {} ({})",
        a.id, a.file_system_path, a.data_repository_path, a.lifecycle
    );
    if a.lifecycle != "AVAILABLE" {
        link.push_str(": not AVAILABLE, tasks there may fail until it is");
    }
    Step {
        link,
        import,
        export,
    }
}

impl Proposal {
    /// An import route for the uploads under `s3_path`; what the plan says of it.
    fn route(
        &mut self,
        fs: &FileSystemId,
        s3_path: &str,
        name: &str,
        report: Option<&str>,
    ) -> String {
        let rest = s3_path.strip_prefix("s3://").unwrap_or(s3_path);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = match prefix.trim_end_matches('/') {
            "" => String::new(),
            p => format!("{p}/"),
        };
        let route_name = format!("import-{name}");
        let mut job = json!({"name": route_name, "kind": "fsx_import",
                             "file_system_id": fs.as_str()});
        if let Some(path) = report {
            job["report"] = json!({"enabled": true, "path": path});
        }
        self.routes
            .push(json!({"name": route_name, "bucket": bucket, "prefix": prefix, "job": job}));
        format!("route {route_name}: uploads under s3://{bucket}/{prefix} become fsx_import jobs")
    }

    /// A schedule's submit event exporting `dir` (None: the whole file system).
    fn schedule(
        &mut self,
        fs: &FileSystemId,
        dir: Option<&str>,
        name: &str,
        report: Option<&str>,
    ) -> String {
        let schedule_name = format!("export-{name}");
        let mut job = json!({"name": schedule_name, "kind": "fsx_export",
                             "file_system_id": fs.as_str()});
        if let Some(dir) = dir {
            job["paths"] = json!([dir]);
        }
        if let Some(path) = report {
            job["report"] = json!({"enabled": true, "path": path});
        }
        let file = format!("schedules/{schedule_name}.json");
        self.schedules.push((schedule_name, json!({ "job": job })));
        format!(
            "no automatic export: schedule {file} exports {}",
            dir.map_or("the whole file system".to_owned(), |d| format!("{d}/"))
        )
    }
}

/// A route and job name from a file system path (`/ns1/` → `ns1`, `/` → `root`), unique
/// among `names`: 1-30 of `[A-Za-z0-9_-]` (routes take 40; `import-`/`export-` come first).
fn unique(names: &mut Vec<String>, fs_path: &str) -> String {
    let base: String = match fs_path.trim_matches('/') {
        "" => "root".to_owned(),
        path => path
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '-'
                }
            })
            .take(26)
            .collect(),
    };
    let mut name = base.clone();
    let mut n = 2;
    while names.contains(&name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    names.push(name.clone());
    name
}

/// Writes `routes.json` and each schedule; the paths written.
fn write(out: &Path, proposal: &Proposal, force: bool) -> Result<Vec<String>, Failure> {
    let mut files = vec![(
        out.join("routes.json"),
        Value::Array(proposal.routes.clone()),
    )];
    for (name, event) in &proposal.schedules {
        files.push((
            out.join("schedules").join(format!("{name}.json")),
            event.clone(),
        ));
    }
    if !force && let Some((path, _)) = files.iter().find(|(p, _)| p.exists()) {
        return Err(Failure::new(format!(
            "{} exists: give --force to overwrite, or another --out",
            path.display()
        )));
    }
    let mut written = Vec::new();
    for (path, value) in files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
        }
        let text = serde_json::to_string_pretty(&value).unwrap_or_default() + "\n";
        std::fs::write(&path, text)
            .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn association(id: &str, path: &str, import: &[&str], export: &[&str]) -> Association {
        Association {
            id: id.into(),
            file_system_path: path.into(),
            data_repository_path: format!("s3://data{path}"),
            lifecycle: "AVAILABLE".into(),
            auto_import: import.iter().map(|e| (*e).to_owned()).collect(),
            auto_export: export.iter().map(|e| (*e).to_owned()).collect(),
        }
    }

    #[test]
    fn what_fsx_does_itself_is_skipped_and_the_rest_proposed() {
        let fs = FileSystemId::parse("fs-0123456789abcdef0").unwrap();
        let links = Links::Associations {
            associations: vec![
                association("dra-0000000000000001", "/projects/", &["NEW"], &[]),
                association(
                    "dra-0000000000000002",
                    "/results/",
                    &[],
                    &["NEW", "CHANGED"],
                ),
            ],
        };
        let proposal = propose(&fs, &links, Some("s3://data/results/reports")).unwrap();
        // Automatic import on /projects/: no route; none on /results/: a route there.
        assert_eq!(proposal.routes.len(), 1);
        assert_eq!(proposal.routes[0]["prefix"], "results/");
        assert_eq!(proposal.routes[0]["bucket"], "data");
        // Automatic export on /results/: no schedule; none on /projects/: one.
        let names: Vec<&str> = proposal.schedules.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["export-projects"]);
        assert_eq!(proposal.schedules[0].1["job"]["paths"], json!(["projects"]));
        assert!(
            proposal.plan[0]
                .import
                .contains("(CHANGED, DELETED not imported automatically")
        );
        assert!(proposal.plan[1].export.contains("no export schedule"));
    }

    #[test]
    fn nothing_linked_is_an_error_and_the_older_link_is_one_route_and_one_schedule() {
        let fs = FileSystemId::parse("fs-0123456789abcdef0").unwrap();
        let none = Links::Associations {
            associations: vec![],
        };
        assert!(
            propose(&fs, &none, None)
                .unwrap_err()
                .message
                .contains("linked to no data repository")
        );
        let older = Links::FileSystem {
            import_path: "s3://repo/in".into(),
            export_path: Some("s3://repo/out".into()),
            auto_import: Some("NONE".into()),
            lifecycle: None,
        };
        let proposal = propose(&fs, &older, None).unwrap();
        assert_eq!(
            (proposal.routes.len(), proposal.schedules.len()),
            (1, 1),
            "{proposal:?}"
        );
        assert_eq!(proposal.routes[0]["prefix"], "in/");
        assert!(proposal.schedules[0].1["job"].get("paths").is_none());
        // A report outside the links is refused before anything is written.
        let outside = propose(&fs, &older, Some("s3://elsewhere/r")).unwrap_err();
        assert!(
            outside.message.contains("would not fit the links"),
            "{}",
            outside.message
        );
    }

    #[test]
    fn names_are_unique_and_valid() {
        let mut names = Vec::new();
        assert_eq!(unique(&mut names, "/a b/"), "a-b");
        assert_eq!(unique(&mut names, "/a.b/"), "a-b-2");
        assert_eq!(unique(&mut names, "/"), "root");
    }
}
