use serde_json::{Value, json};

use super::*;
use crate::domain::links::Association;

const RUN: &str = "run-3f2b6c1e-0a9d-4c3e-8f1a-2b7d9e4c5a60";

fn spec(v: Value) -> JobSpec {
    serde_json::from_value(v).expect("spec")
}

fn export() -> JobSpec {
    spec(json!({
        "name": "nightly-export", "kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0",
        "paths": ["results"],
        "report": {"enabled": true, "path": "s3://data/reports", "scope": "FAILED_FILES_ONLY"}
    }))
}

fn links() -> Links {
    let a = |id: &str, fs: &str, s3: &str| Association {
        id: id.into(),
        file_system_path: fs.into(),
        data_repository_path: s3.into(),
        lifecycle: "AVAILABLE".into(),
        auto_import: vec![],
        auto_export: vec![],
    };
    Links::Associations {
        associations: vec![
            a("dra-1", "/", "s3://root-bucket/"),
            a("dra-2", "/ns1/", "s3://data/ns1-prefix/"),
        ],
    }
}

fn limits(max_paths: usize) -> Limits {
    Limits { max_paths }
}

#[test]
fn an_export_reruns_exactly_its_failed_files_with_its_own_options() {
    let failed = [
        "results/2026/run-03/output-7.nc",
        "results/2026/run-05/output-1.nc",
        "/scratch/a b/ünï",
    ];
    let rerun = failed_only(&export(), RUN, &failed, Err("not read"), &limits(32)).unwrap();
    assert_eq!(
        rerun.spec.paths,
        [
            "results/2026/run-03/output-7.nc",
            "results/2026/run-05/output-1.nc",
            "scratch/a b/ünï"
        ]
    );
    assert_eq!(rerun.files, 3);
    assert!(!rerun.widened);
    assert_eq!(rerun.spec.retry_of.as_deref(), Some(RUN));
    // Everything but the paths and the link is the run's.
    let mut same = rerun.spec.clone();
    same.paths = export().paths;
    same.retry_of = None;
    assert_eq!(same, export());
    rerun.spec.validate(&limits(32)).expect("a valid job");
}

#[test]
fn more_failed_files_than_the_path_cap_collapse_into_directories_and_say_so() {
    let failed: Vec<String> = (0..500)
        .map(|i| format!("results/day-{}/file-{i}", i % 7))
        .collect();
    let failed: Vec<&str> = failed.iter().map(String::as_str).collect();
    let rerun = failed_only(&export(), RUN, &failed, Err("-"), &limits(32)).unwrap();
    assert!(rerun.spec.paths.len() <= 32);
    assert_eq!(rerun.files, 500);
    assert!(rerun.widened);
    // Every failed file is under one of the paths.
    for f in &failed {
        assert!(
            rerun
                .spec
                .paths
                .iter()
                .any(|p| f == p || f.starts_with(&format!("{p}/"))),
            "{f} not covered by {:?}",
            rerun.spec.paths
        );
    }
}

#[test]
fn a_release_collapsed_to_the_root_releases_from_the_root() {
    let mut release = export();
    release.kind = JobKind::FsxRelease;
    let failed = ["a/1", "b/2", "c/3"];
    let rerun = failed_only(&release, RUN, &failed, Err("-"), &limits(1)).unwrap();
    assert_eq!(rerun.spec.paths, ["/"]);
    assert!(rerun.widened);
    let rerun = failed_only(&export(), RUN, &failed, Err("-"), &limits(1)).unwrap();
    assert!(rerun.spec.paths.is_empty(), "the whole file system");
}

#[test]
fn import_failures_are_mapped_to_s3_through_the_links() {
    let mut import = export();
    import.kind = JobKind::FsxImport;
    import.paths = vec!["s3://data/ns1-prefix/".into()];
    let failed = ["ns1/x/1.bin", "top.bin", "s3://data/ns1-prefix/given.bin"];
    let rerun = failed_only(&import, RUN, &failed, Ok(&links()), &limits(32)).unwrap();
    assert_eq!(
        rerun.spec.paths,
        [
            "s3://data/ns1-prefix/given.bin",
            "s3://data/ns1-prefix/x/1.bin",
            "s3://root-bucket/top.bin"
        ]
    );
    // Collapsed, a directory stays a prefix (`/` at its end).
    let rerun = failed_only(&import, RUN, &failed[..2], Ok(&links()), &limits(1));
    assert_eq!(rerun, Err(RerunError::TooMany(2)), "two buckets, one path");
    let many = ["ns1/x/1.bin", "ns1/x/2.bin", "ns1/y/3.bin"];
    let rerun = failed_only(&import, RUN, &many, Ok(&links()), &limits(2)).unwrap();
    assert_eq!(
        rerun.spec.paths,
        ["s3://data/ns1-prefix/x/", "s3://data/ns1-prefix/y/3.bin"]
    );
    // Without links, a file system path cannot be mapped: the message says why.
    let e = failed_only(&import, RUN, &failed, Err("AccessDenied"), &limits(32)).unwrap_err();
    assert!(e.to_string().contains("AccessDenied"), "{e}");
    // A path no link holds is named.
    let only_ns1 = Links::Associations {
        associations: match links() {
            Links::Associations { associations } => associations[1..].to_vec(),
            Links::FileSystem { .. } => unreachable!(),
        },
    };
    let e = failed_only(&import, RUN, &["elsewhere/f"], Ok(&only_ns1), &limits(32)).unwrap_err();
    assert!(e.to_string().contains("\"elsewhere/f\""), "{e}");
    // The older way: under the ImportPath.
    let older = Links::FileSystem {
        import_path: "s3://old/in".into(),
        export_path: None,
        auto_import: None,
        lifecycle: None,
    };
    let rerun = failed_only(&import, RUN, &["d/f"], Ok(&older), &limits(32)).unwrap();
    assert_eq!(rerun.spec.paths, ["s3://old/in/d/f"]);
}

#[test]
fn a_datasync_rerun_lists_its_failed_files_as_include_patterns() {
    let run = spec(json!({
        "name": "to-archive", "kind": "datasync",
        "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0",
        "includes": ["/incoming"], "excludes": ["*.tmp"],
        "manifest": {"bucket_arn": "arn:aws:s3:::m", "object_path": "m.csv",
                     "bucket_access_role_arn": "arn:aws:iam::111122223333:role/r"}
    }));
    // Basic mode names `/a/1`, Enhanced mode `a/1`: the same file.
    let rerun = failed_only(&run, RUN, &["/a/1", "a/1", "b/2"], Err("-"), &limits(32)).unwrap();
    assert_eq!(rerun.spec.includes, ["/a/1", "/b/2"]);
    assert_eq!(rerun.spec.excludes, ["*.tmp"]);
    assert_eq!(rerun.spec.manifest, None);
    assert_eq!(rerun.files, 2);
    let e = failed_only(&run, RUN, &["/a|b"], Err("-"), &limits(32)).unwrap_err();
    assert!(matches!(e, RerunError::Inexpressible { .. }), "{e}");
}

#[test]
fn a_datasync_filter_too_long_for_one_rule_is_collapsed_until_it_fits() {
    let run = spec(json!({
        "name": "to-archive", "kind": "datasync",
        "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0"
    }));
    let failed: Vec<String> = (0..5_000)
        .map(|i| format!("dir-{}/{}-{i}", i % 50, "f".repeat(40)))
        .collect();
    let failed: Vec<&str> = failed.iter().map(String::as_str).collect();
    let rerun = failed_only(&run, RUN, &failed, Err("-"), &limits(32)).unwrap();
    let filter = rerun.spec.includes.join("|");
    assert!(filter.len() <= MAX_FILTER_CHARS, "{}", filter.len());
    assert!(rerun.widened);
    rerun.spec.validate(&limits(32)).expect("a valid job");
}

#[test]
fn what_cannot_be_rerun_alone_says_so() {
    assert_eq!(
        failed_only(&export(), RUN, &[], Err("-"), &limits(32)),
        Err(RerunError::NothingFailed)
    );
    let mut auto = export();
    auto.kind = JobKind::FsxAutoRelease;
    let e = failed_only(&auto, RUN, &["a"], Err("-"), &limits(32)).unwrap_err();
    assert!(e.to_string().contains("without --failed-only"), "{e}");
    let again = whole(&export(), RUN);
    assert_eq!(again.paths, export().paths);
    assert_eq!(again.retry_of.as_deref(), Some(RUN));
}
