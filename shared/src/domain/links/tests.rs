use serde_json::{Value, json};

use super::*;
use crate::domain::job::{JobSpec, Limits};

const FS: &str = "fs-0123456789abcdef0";

fn job(v: Value) -> ValidJob {
    let mut v = v;
    v["file_system_id"] = json!(FS);
    let spec: JobSpec = serde_json::from_value(v).expect("spec");
    spec.validate(&Limits::default()).expect("valid")
}

/// The problems as `ferry` prints them: `field: problem`.
fn problems(job: &ValidJob, links: &Links) -> Vec<String> {
    super::problems(job, links)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn association(id: &str, fs_path: &str, s3: &str, auto_export: &[&str]) -> Association {
    Association {
        id: id.into(),
        file_system_path: fs_path.into(),
        data_repository_path: s3.into(),
        lifecycle: "AVAILABLE".into(),
        auto_import: vec![],
        auto_export: auto_export.iter().map(|e| (*e).to_owned()).collect(),
    }
}

/// Two associations: `/ns1/` ↔ `s3://data/ns1/`, and `/raw/` ↔ `s3://raw/`, which exports
/// automatically.
fn two() -> Links {
    Links::Associations {
        associations: vec![
            association("dra-0000000000000001", "/ns1/", "s3://data/ns1/", &[]),
            association(
                "dra-0000000000000002",
                "/raw/",
                "s3://raw/",
                &["NEW", "CHANGED"],
            ),
        ],
    }
}

#[test]
fn a_job_inside_its_associations_passes() {
    let import = job(json!({"name": "i", "kind": "fsx_import",
        "paths": ["s3://data/ns1/a", "s3://raw/b/c", "s3://data"]}));
    assert_eq!(problems(&import, &two()), Vec::<String>::new());
    let export = job(
        json!({"name": "e", "kind": "fsx_export", "paths": ["ns1/results"],
        "report": {"enabled": true, "path": "s3://data/ns1/reports"}}),
    );
    assert_eq!(problems(&export, &two()), Vec::<String>::new());
    let release = job(json!({"name": "r", "kind": "fsx_release", "paths": ["/"]}));
    assert_eq!(problems(&release, &two()), Vec::<String>::new());
}

#[test]
fn an_import_outside_every_linked_s3_path_is_refused_naming_the_path_and_the_associations() {
    let import = job(json!({"name": "i", "kind": "fsx_import",
        "paths": ["s3://data/ns1/a", "s3://data/ns2/x"]}));
    assert_eq!(
        problems(&import, &two()),
        [format!(
            "job.paths[1]: s3://data/ns2/x is in no S3 path linked to {FS} (import paths must lie in a linked repository); it has associations dra-0000000000000001 /ns1/ ↔ s3://data/ns1/ (AVAILABLE); dra-0000000000000002 /raw/ ↔ s3://raw/ (AVAILABLE, automatic export NEW,CHANGED)"
        )]
    );
}

#[test]
fn an_export_outside_every_association_or_on_one_that_exports_itself_is_refused() {
    let outside = job(json!({"name": "e", "kind": "fsx_export", "paths": ["scratch/x", "ns1"]}));
    let found = problems(&outside, &two());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(&format!(
            "job.paths[0]: scratch/x is under no data repository association of {FS} (fsx_export paths must lie in an association's file system path)"
        )),
        "{found:?}"
    );
    let automatic = job(json!({"name": "e", "kind": "fsx_export", "paths": ["raw/day-1"]}));
    let found = problems(&automatic, &two());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("job.paths[0]: raw/day-1 reaches dra-0000000000000002 which exports automatically: \"Automatic export and export data repository tasks cannot run at the same time\""),
        "{found:?}"
    );
    // No paths: the whole file system, which holds the automatic one.
    let whole = job(json!({"name": "e", "kind": "fsx_export"}));
    assert!(
        problems(&whole, &two())[0]
            .starts_with("job.paths: none (the whole file system) reaches dra-0000000000000002"),
        "{:?}",
        problems(&whole, &two())
    );
    // A release there is fine: only export clashes with automatic export.
    let release = job(json!({"name": "r", "kind": "fsx_release", "paths": ["raw/day-1"]}));
    assert!(problems(&release, &two()).is_empty());
}

#[test]
fn a_report_outside_every_linked_s3_path_is_refused() {
    let export = job(json!({"name": "e", "kind": "fsx_export", "paths": ["ns1"],
        "report": {"enabled": true, "path": "s3://elsewhere/reports"}}));
    let found = problems(&export, &two());
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with(&format!(
            "job.report.path: s3://elsewhere/reports is outside every S3 path linked to {FS}"
        )),
        "{found:?}"
    );
    // A bucket's name that merely starts like a linked one is not inside it.
    let near = job(json!({"name": "e", "kind": "fsx_export", "paths": ["ns1"],
        "report": {"enabled": true, "path": "s3://data/ns1-reports"}}));
    assert_eq!(problems(&near, &two()).len(), 1);
}

#[test]
fn a_file_system_linked_by_nothing_refuses_every_task_and_the_older_link_is_read_too() {
    let none = Links::Associations {
        associations: vec![],
    };
    let release = job(json!({"name": "r", "kind": "fsx_release", "paths": ["/"]}));
    assert_eq!(
        problems(&release, &none),
        [format!(
            "job.file_system_id: {FS} is linked to no data repository (no data repository association, no ImportPath): \"A CreateDataRepositoryTask operation will fail if a data repository is not linked\""
        )]
    );
    let older = Links::FileSystem {
        import_path: "s3://repo".into(),
        export_path: Some("s3://repo/FSxLustre20260101T000000Z".into()),
        auto_import: Some("NEW".into()),
        lifecycle: Some("AVAILABLE".into()),
    };
    let import = job(
        json!({"name": "i", "kind": "fsx_import", "paths": ["s3://repo/a", "s3://other"],
        "report": {"enabled": true, "path": "s3://repo/FSxLustre20260101T000000Z/reports"}}),
    );
    assert_eq!(
        problems(&import, &older),
        [format!(
            "job.paths[1]: s3://other is in no S3 path linked to {FS} (import paths must lie in a linked repository); it has ImportPath s3://repo, ExportPath s3://repo/FSxLustre20260101T000000Z, AutoImportPolicy NEW"
        )]
    );
    // Export and release paths are the file system's own on the older link: nothing to check.
    let export = job(json!({"name": "e", "kind": "fsx_export", "paths": ["anything"]}));
    assert!(problems(&export, &older).is_empty());
}

#[test]
fn an_association_not_available_is_named_with_its_lifecycle() {
    let mut links = two();
    if let Links::Associations { associations } = &mut links {
        associations[0].lifecycle = "MISCONFIGURED".into();
    }
    let import = job(json!({"name": "i", "kind": "fsx_import", "paths": ["s3://nowhere/x"]}));
    assert!(
        problems(&import, &links)[0]
            .contains("dra-0000000000000001 /ns1/ ↔ s3://data/ns1/ (MISCONFIGURED)"),
        "{:?}",
        problems(&import, &links)
    );
}
