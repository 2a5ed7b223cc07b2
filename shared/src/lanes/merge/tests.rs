use serde_json::{Value, json};

use super::*;

const FS: &str = "fs-0123456789abcdef0";
const TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";
const ROOT: &str = "s3://ferry-data/incoming/";

fn spec(value: Value) -> JobSpec {
    serde_json::from_value(value).expect("job parses")
}

fn import(name: &str, paths: &[&str]) -> JobSpec {
    spec(json!({"name": name, "kind": "fsx_import", "file_system_id": FS, "paths": paths}))
}

fn sync(name: &str, includes: &[&str]) -> JobSpec {
    spec(json!({"name": name, "kind": "datasync", "task_arn": TASK, "includes": includes}))
}

fn from_root(spec: &JobSpec) -> Candidate<'_> {
    Candidate {
        spec,
        collapse_root: Some(ROOT),
    }
}

fn as_given(spec: &JobSpec) -> Candidate<'_> {
    Candidate {
        spec,
        collapse_root: None,
    }
}

fn limits(max_paths: usize) -> Limits {
    Limits { max_paths }
}

/// One upload import job `j<i>` per path, all from [`ROOT`], merged within `limits`.
fn merged_uploads<P: AsRef<str>>(paths: &[P], limits: Limits) -> Merged {
    let jobs: Vec<JobSpec> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| import(&format!("j{i}"), &[path.as_ref()]))
        .collect();
    let candidates: Vec<Candidate> = jobs.iter().map(from_root).collect();
    merge(&candidates, &limits).expect("a run")
}

#[test]
fn nothing_pending_is_no_run() {
    assert_eq!(merge(&[], &Limits::default()), None);
}

#[test]
fn compatible_imports_merge_into_one_run_in_path_order() {
    let merged = merged_uploads(
        &[
            "s3://ferry-data/incoming/x/1.h5",
            "s3://ferry-data/incoming/y/2.h5",
            "s3://ferry-data/incoming/x/1.h5",
        ],
        limits(32),
    );
    assert_eq!(merged.taken, [0, 1, 2]);
    assert_eq!(
        merged.spec.paths,
        [
            "s3://ferry-data/incoming/x/1.h5",
            "s3://ferry-data/incoming/y/2.h5"
        ]
    );
    assert_eq!(
        merged.spec.name, "j0",
        "the run is named after its oldest job"
    );
}

#[test]
fn too_many_paths_collapse_inside_the_root_and_never_above_it() {
    let paths: Vec<String> = (0..40)
        .map(|i| format!("{ROOT}d{}/f{i}.h5", i % 4))
        .collect();
    let merged = merged_uploads(&paths, limits(8));
    assert_eq!(merged.taken.len(), 40, "every job fits once collapsed");
    assert!(merged.spec.paths.len() <= 8, "{:?}", merged.spec.paths);
    for path in &merged.spec.paths {
        assert!(path.starts_with(ROOT), "{path} is outside the root");
    }
    assert_eq!(
        merged.spec.paths,
        [
            "s3://ferry-data/incoming/d0/",
            "s3://ferry-data/incoming/d1/",
            "s3://ferry-data/incoming/d2/",
            "s3://ferry-data/incoming/d3/"
        ]
    );
}

#[test]
fn paths_given_as_is_never_collapse_so_a_job_that_does_not_fit_waits() {
    let a = import("a", &["s3://ferry-data/one/a", "s3://ferry-data/one/b"]);
    let b = import("b", &["s3://ferry-data/two/c", "s3://ferry-data/two/d"]);
    let c = import("c", &["s3://ferry-data/one/a"]);
    let merged = merge(&[as_given(&a), as_given(&b), as_given(&c)], &limits(3)).unwrap();
    assert_eq!(merged.taken, [0, 2], "b would need 4 paths; c is covered");
    assert_eq!(
        merged.spec.paths,
        ["s3://ferry-data/one/a", "s3://ferry-data/one/b"]
    );
}

#[test]
fn covered_paths_are_dropped() {
    let merged = merged_uploads(
        &[
            "s3://ferry-data/incoming/x/",
            "s3://ferry-data/incoming/x/deep/1.h5",
            "s3://ferry-data/incoming/xy",
        ],
        limits(32),
    );
    assert_eq!(
        merged.spec.paths,
        ["s3://ferry-data/incoming/x/", "s3://ferry-data/incoming/xy"],
        "an import prefix ending in / covers keys under it, not keys that merely start alike"
    );
    let export = |name: &str, paths: &[&str]| {
        spec(json!({"name": name, "kind": "fsx_export", "file_system_id": FS, "paths": paths}))
    };
    let (d, e) = (
        export("d", &["results/run1"]),
        export("e", &["results/run1/a.nc", "results/run10"]),
    );
    let merged = merge(&[as_given(&d), as_given(&e)], &limits(32)).unwrap();
    assert_eq!(merged.spec.paths, ["results/run1", "results/run10"]);
}

#[test]
fn a_job_of_the_whole_file_system_or_task_covers_every_other() {
    let everything = spec(json!({"name": "all", "kind": "fsx_export", "file_system_id": FS}));
    let some =
        spec(json!({"name": "some", "kind": "fsx_export", "file_system_id": FS, "paths": ["a"]}));
    let merged = merge(&[as_given(&some), as_given(&everything)], &limits(32)).unwrap();
    assert_eq!(merged.taken, [0, 1]);
    assert!(merged.spec.paths.is_empty());
    let release = |name: &str, paths: &[&str]| {
        spec(
            json!({"name": name, "kind": "fsx_release", "file_system_id": FS, "paths": paths,
                    "release": {"days_since_last_access": 0}}),
        )
    };
    let (r1, r2) = (release("r1", &["cold"]), release("r2", &["/"]));
    let merged = merge(&[as_given(&r1), as_given(&r2)], &limits(32)).unwrap();
    assert_eq!(merged.spec.paths, ["/"], "release says everything with /");
    let (s1, s2) = (sync("s1", &["/a"]), sync("s2", &[]));
    let merged = merge(&[as_given(&s1), as_given(&s2)], &limits(32)).unwrap();
    assert!(merged.spec.includes.is_empty());
}

#[test]
fn different_kinds_or_options_never_merge() {
    let a = import("a", &["s3://ferry-data/incoming/a"]);
    let export =
        spec(json!({"name": "e", "kind": "fsx_export", "file_system_id": FS, "paths": ["a"]}));
    let mut reported = import("r", &["s3://ferry-data/incoming/b"]);
    reported.report = Some(crate::domain::job::ReportSpec {
        enabled: true,
        path: Some("s3://ferry-data/reports".into()),
        format: None,
        scope: None,
    });
    let mut other_topic = import("t", &["s3://ferry-data/incoming/c"]);
    other_topic.notify = Some(crate::domain::job::NotifySpec {
        topic_arn: Some("arn:aws:sns:us-east-1:111122223333:team-b".into()),
    });
    let mut longer = import("l", &["s3://ferry-data/incoming/d"]);
    longer.timeout_seconds = Some(7_200);
    let candidates = [
        from_root(&a),
        as_given(&export),
        from_root(&reported),
        from_root(&other_topic),
        from_root(&longer),
    ];
    let merged = merge(&candidates, &limits(32)).unwrap();
    assert_eq!(merged.taken, [0, 4], "only the timeout may differ");
    assert_eq!(
        merged.spec.timeout_seconds,
        Some(7_200),
        "the longest one applies"
    );
}

#[test]
fn includes_merge_within_the_filter_limit() {
    let long = |name: &str, c: char| sync(name, &[&format!("/{}", c.to_string().repeat(60_000))]);
    let (a, b, c) = (long("a", 'a'), long("b", 'b'), sync("c", &["/c"]));
    let merged = merge(&[as_given(&a), as_given(&b), as_given(&c)], &limits(32)).unwrap();
    assert_eq!(
        merged.taken,
        [0, 2],
        "a and b together pass 102,400 characters"
    );
    assert!(filter_value_len(&merged.spec.includes) <= MAX_FILTER_CHARS);
}

#[test]
fn a_manifest_job_runs_alone() {
    let mut manifest = sync("m", &[]);
    manifest.manifest = Some(crate::domain::job::ManifestSpec {
        bucket_arn: "arn:aws:s3:::ferry-data".into(),
        object_path: "m.csv".into(),
        bucket_access_role_arn: "arn:aws:iam::111122223333:role/r".into(),
        object_version_id: None,
    });
    let other = sync("o", &["/x"]);
    let merged = merge(&[as_given(&manifest), as_given(&other)], &limits(32)).unwrap();
    assert_eq!(merged.taken, [0]);
    let merged = merge(&[as_given(&other), as_given(&manifest)], &limits(32)).unwrap();
    assert_eq!(merged.taken, [0]);
}

#[test]
fn the_merged_run_is_a_valid_job() {
    let paths: Vec<String> = (0..500)
        .map(|i| format!("{ROOT}batch{}/k{i}", i % 50))
        .collect();
    let merged = merged_uploads(&paths, Limits::default());
    assert_eq!(merged.taken.len(), 500);
    merged
        .spec
        .clone()
        .validate(&Limits::default())
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn a_merge_stops_at_the_first_job_that_would_pass_the_spec_budget() {
    // Issue 24: export jobs whose paths are long and multi-byte, each valid alone (8 paths of
    // 4,000 CJK characters: 96 KB), merged with the cap raised to 100 paths: four of them fit
    // 320 KiB, the fifth would not.
    let specs: Vec<JobSpec> = (0..8)
        .map(|j| {
            let paths: Vec<String> = (0..8)
                .map(|p| format!("d{j}/{p}{}", "\u{6587}".repeat(4000)))
                .collect();
            spec(json!({"name": format!("e{j}"), "kind": "fsx_export", "file_system_id": FS, "paths": paths}))
        })
        .collect();
    let candidates: Vec<Candidate> = specs.iter().map(as_given).collect();
    let merged = merge(&candidates, &limits(100)).unwrap();
    assert_eq!(merged.taken, [0, 1, 2]);
    let weight = crate::budget::json_bytes(&merged.spec);
    assert!(weight <= crate::budget::SPEC_BYTES, "{weight}");
    // The next one alone is taken by the next run.
    let rest = merge(&candidates[3..], &limits(100)).unwrap();
    assert_eq!(rest.taken, [0, 1, 2]);
}

#[test]
fn datasync_includes_merge_within_the_spec_budget_as_well_as_the_filter_limit() {
    // CJK patterns: 102,400 UTF-16 units fit the filter limit but weigh 300 KB; with the
    // first job's own excludes (60 KB) the bytes run out first.
    let pattern = |j: usize, p: usize| format!("/{j}/{p}{}", "\u{6587}".repeat(90));
    let excludes: Vec<String> = (0..200).map(|p| pattern(99, p)).collect();
    let specs: Vec<JobSpec> = (0..12)
        .map(|j| {
            let includes: Vec<String> = (0..100).map(|p| pattern(j, p)).collect();
            spec(
                json!({"name": format!("s{j}"), "kind": "datasync", "task_arn": TASK,
                        "includes": includes, "excludes": excludes}),
            )
        })
        .collect();
    let candidates: Vec<Candidate> = specs.iter().map(as_given).collect();
    let merged = merge(&candidates, &limits(32)).unwrap();
    let weight = crate::budget::json_bytes(&merged.spec);
    assert!(weight <= crate::budget::SPEC_BYTES, "{weight}");
    assert!(
        filter_value_len(&merged.spec.includes) < MAX_FILTER_CHARS,
        "the byte budget, not the filter limit, stopped it"
    );
    assert!(
        merged.taken.len() < 12 && merged.taken.len() > 1,
        "{:?}",
        merged.taken
    );
}

#[test]
fn a_folder_that_is_also_an_uploaded_file_stays_a_bare_prefix_holding_both() {
    // Found on CI by hostile_input: `é/` would leave the object `é` out of the import.
    let paths = [
        format!("{ROOT}é"),
        format!("{ROOT}é/a"),
        format!("{ROOT}é/b"),
        format!("{ROOT}x"),
    ];
    let merged = merged_uploads(&paths, limits(2));
    assert_eq!(
        merged.spec.paths,
        ["s3://ferry-data/incoming/x", "s3://ferry-data/incoming/é"]
    );
    assert_eq!(merged.taken.len(), 4);
}
