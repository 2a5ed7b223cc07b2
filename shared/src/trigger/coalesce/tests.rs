use std::cmp::Ordering;

use serde_json::json;

use super::*;
use crate::domain::paths::common_prefix_len;
use crate::domain::validate::filter_value_len;
use crate::trigger::routes::Routes;

/// `super::plan` over owned records (the handler lends its parsed batch instead).
fn plan(routes: &Routes, limits: &Limits, objects: Vec<(usize, S3Object)>) -> Plan {
    super::plan(routes, limits, objects.iter().map(|(m, o)| (*m, o)))
}

const FS: &str = "fs-0123456789abcdef0";
const DS_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";

/// Every key is covered by (equal to, or under) some collapsed prefix.
fn covers(prefixes: &[(String, bool)], key: &str) -> bool {
    let key = key.trim_end_matches('/');
    prefixes.iter().any(|(p, dir)| {
        p.is_empty()
            || key == p
            || (*dir
                && key
                    .strip_prefix(p.as_str())
                    .is_some_and(|r| r.starts_with('/')))
    })
}

fn check_collapse(keys: &[String], cap: usize) -> Vec<(String, bool)> {
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let out = collapse(&refs, cap);
    assert!(out.len() <= cap, "{} prefixes for cap {cap}", out.len());
    assert!(!out.is_empty());
    for key in keys {
        assert!(covers(&out, key), "{key} not covered by {out:?}");
    }
    out
}

fn owned(keys: &[&str]) -> Vec<String> {
    keys.iter().map(|s| s.to_string()).collect()
}

/// Asserts `keys` collapse within `cap` to exactly `expected`: (prefix, whether a directory).
fn assert_collapses(keys: &[String], cap: usize, expected: &[(&str, bool)]) {
    let out = check_collapse(keys, cap);
    let out: Vec<(&str, bool)> = out.iter().map(|(p, dir)| (p.as_str(), *dir)).collect();
    assert_eq!(out, expected);
}

#[test]
fn few_keys_stay_exact() {
    assert_collapses(
        &owned(&["a/x.h5", "a/y.h5", "b/c/z.h5"]),
        32,
        &[("a/x.h5", false), ("a/y.h5", false), ("b/c/z.h5", false)],
    );
}

#[test]
fn siblings_collapse_into_their_directory() {
    let mut keys: Vec<String> = (0..40).map(|i| format!("runs/r1/f{i:02}")).collect();
    keys.push("runs/r2/only".into());
    keys.push("logs/today".into());
    // r1's 40 files cannot stay exact; r2 and logs can.
    assert_collapses(
        &keys,
        32,
        &[
            ("logs/today", false),
            ("runs/r1", true),
            ("runs/r2/only", false),
        ],
    );
}

#[test]
fn one_folder_of_ten_thousand_becomes_that_folder() {
    let keys: Vec<String> = (0..10_000)
        .map(|i| format!("batch/2026-11-21/part-{i:05}.parquet"))
        .collect();
    assert_collapses(&keys, 32, &[("batch/2026-11-21", true)]);
}

#[test]
fn ten_thousand_different_folders_fall_back_to_the_route_prefix() {
    let keys: Vec<String> = (0..10_000).map(|i| format!("d{i:05}/file")).collect();
    assert_collapses(&keys, 32, &[("", true)]);
}

#[test]
fn deep_trees_collapse_level_by_level() {
    // 10 x 10 x 10 x 10 = 10,000 leaves, four levels deep.
    let keys: Vec<String> = (0..10_000)
        .map(|i| {
            format!(
                "l{}/m{}/n{}/f{}",
                i / 1000,
                (i / 100) % 10,
                (i / 10) % 10,
                i % 10
            )
        })
        .collect();
    let out = check_collapse(&keys, 32);
    // The 10 top-level directories fit, then as many of them expand as the cap allows (two:
    // 10 + 9 + 9 = 28); a third would need 37.
    assert_eq!(out.len(), 28);
    assert!(out.iter().all(|(_, dir)| *dir));
    let out = check_collapse(&keys, 100);
    assert_eq!(out.len(), 100);
}

#[test]
fn mixed_depths_expand_cheapest_first() {
    let mut keys: Vec<String> = (0..30).map(|i| format!("big/{i}")).collect();
    keys.extend(["small/a/1", "small/a/2", "small/b"].map(String::from));
    // Root -> {big, small}; small and then small/a expand, big (30 children) cannot.
    assert_collapses(
        &keys,
        5,
        &[
            ("big", true),
            ("small/a/1", false),
            ("small/a/2", false),
            ("small/b", false),
        ],
    );
}

#[test]
fn a_cap_of_one_is_always_satisfiable() {
    assert_collapses(&owned(&["a", "b/c"]), 1, &[("", true)]);
    assert_collapses(&owned(&["only/one"]), 1, &[("only/one", false)]);
}

#[test]
fn folder_markers_and_a_key_equal_to_a_folder() {
    assert_collapses(
        &owned(&["dir/", "dir/a", "dir"]),
        32,
        &[("dir", false), ("dir/a", false)],
    );
}

fn routes(value: serde_json::Value) -> Routes {
    Routes::from_json(&value.to_string(), &Limits::default()).expect("routes")
}

fn object(bucket: &str, key: &str) -> S3Object {
    S3Object {
        bucket: bucket.into(),
        key: key.into(),
        size: Some(1),
        version_id: None,
        sequencer: None,
        etag: None,
    }
}

/// `(message, object)` records of objects in `ferry-data`, from `(message, key)`.
fn records(keys: &[(usize, &str)]) -> Vec<(usize, S3Object)> {
    keys.iter()
        .map(|&(message, key)| (message, object("ferry-data", key)))
        .collect()
}

/// The messages of the records a plan rejected.
fn rejected(plan: &Plan) -> BTreeSet<usize> {
    plan.rejected.iter().map(|r| r.message).collect()
}

/// The manifest of a plan's first job, as text.
fn manifest_body(plan: &Plan) -> String {
    let manifest = plan.jobs[0].manifest.as_ref().expect("manifest");
    String::from_utf8(manifest.body.clone()).unwrap()
}

fn import_routes() -> Routes {
    routes(
        json!([{"name": "incoming", "bucket": "ferry-data", "prefix": "incoming/",
                   "job": {"name": "incoming-import", "kind": "fsx_import", "file_system_id": FS}}]),
    )
}

#[test]
fn ten_thousand_records_for_one_route_make_valid_jobs_within_the_cap() {
    let routes = import_routes();
    let limits = Limits::default();
    for distribution in 0..3 {
        let objects: Vec<(usize, S3Object)> = (0..10_000)
            .map(|i| {
                let key = match distribution {
                    0 => format!("incoming/one/f{i}"),
                    1 => format!("incoming/d{i}/f"),
                    _ => format!("incoming/{}/{}/{}/f{i}", i % 7, i % 13, i % 17),
                };
                (i / 10, object("ferry-data", &key))
            })
            .collect();
        let plan = plan(&routes, &limits, objects);
        assert!(plan.rejected.is_empty() && plan.unmatched == 0);
        assert!(plan.jobs.len() <= 10_000usize.div_ceil(32));
        for job in &plan.jobs {
            assert!(job.job.paths.len() <= 32);
            assert!(
                job.job
                    .paths
                    .iter()
                    .all(|p| p.starts_with("s3://ferry-data/incoming/")),
                "{:?}",
                job.job.paths
            );
            job.job
                .clone()
                .validate(&limits)
                .expect("planned job is valid");
        }
        let messages: BTreeSet<usize> = plan
            .jobs
            .iter()
            .flat_map(|j| j.messages.iter().copied())
            .collect();
        assert_eq!(messages.len(), 1_000, "every message is accounted for");
    }
}

#[test]
fn import_paths_are_exact_when_few() {
    let mut objects = records(&[
        (0, "incoming/b file.h5"),
        (1, "incoming/a.h5"),
        (2, "incoming/a.h5"),
        (2, "elsewhere/x"),
    ]);
    objects.push((3, object("other-bucket", "incoming/x")));
    let plan = plan_with(&import_routes(), objects);
    assert_eq!(plan.unmatched, 2);
    assert_eq!(plan.jobs.len(), 1);
    let job = &plan.jobs[0];
    assert_eq!(
        job.job.paths,
        [
            "s3://ferry-data/incoming/a.h5",
            "s3://ferry-data/incoming/b file.h5"
        ]
    );
    assert_eq!(job.objects, 2);
    assert_eq!(job.messages, BTreeSet::from([0, 1, 2]));
}

#[test]
fn record_order_does_not_change_the_plan() {
    let keys: Vec<String> = (0..100)
        .map(|i| format!("incoming/{}/f{i}", i % 9))
        .collect();
    let forward: Vec<(usize, S3Object)> =
        keys.iter().map(|k| (0, object("ferry-data", k))).collect();
    let mut backward = forward.clone();
    backward.reverse();
    let a = plan(&import_routes(), &Limits::default(), forward);
    let b = plan(&import_routes(), &Limits::default(), backward);
    assert_eq!(a, b);
}

#[test]
fn an_unusable_key_fails_only_its_message() {
    let objects = records(&[(0, "incoming/ok"), (1, "incoming/../escape")]);
    let plan = plan_with(&import_routes(), objects);
    assert_eq!(plan.jobs.len(), 1);
    assert_eq!(plan.jobs[0].messages, BTreeSet::from([0]));
    assert_eq!(plan.rejected.len(), 1);
    assert_eq!(plan.rejected[0].message, 1);
    assert!(
        plan.rejected[0].reason.contains("'..'"),
        "{}",
        plan.rejected[0].reason
    );
}

#[test]
fn export_and_release_paths_are_mapped_to_the_file_system() {
    let routes = routes(json!([
        {"name": "results", "bucket": "ferry-data", "prefix": "results/", "file_system_path": "/scratch/results/",
         "job": {"name": "results-export", "kind": "fsx_export", "file_system_id": FS}},
        {"name": "cold", "bucket": "ferry-data", "prefix": "cold/",
         "job": {"name": "cold-release", "kind": "fsx_release", "file_system_id": FS}},
    ]));
    let objects = records(&[(0, "results/run1/out.nc"), (0, "cold/a")]);
    let plan = plan_with(&routes, objects);
    assert_eq!(plan.jobs[0].job.paths, ["scratch/results/run1/out.nc"]);
    assert_eq!(plan.jobs[1].job.paths, ["cold/a"]);
    // Collapsing a release route to its root gives "/" when it maps to the file system root.
    let root = routes_root_release();
    let many: Vec<(usize, S3Object)> = (0..50)
        .map(|i| (0, object("ferry-data", &format!("d{i}/x"))))
        .collect();
    let p = plan_with(&root, many);
    assert_eq!(p.jobs[0].job.paths, ["/"]);
}

fn routes_root_release() -> Routes {
    routes(json!([{"name": "all", "bucket": "ferry-data",
                   "job": {"name": "release-all", "kind": "fsx_release", "file_system_id": FS}}]))
}

fn plan_with(routes: &Routes, objects: Vec<(usize, S3Object)>) -> Plan {
    plan(routes, &Limits::default(), objects)
}

fn datasync_routes(manifest: bool) -> Routes {
    let mut route = json!({"name": "outgoing", "bucket": "ferry-data", "prefix": "outgoing/", "source_prefix": "outgoing/",
                           "job": {"name": "outgoing-sync", "kind": "datasync", "task_arn": DS_TASK}});
    if manifest {
        route["manifest"] = json!({"bucket": "ferry-data", "prefix": "ferry-manifests/",
                                   "bucket_access_role_arn": "arn:aws:iam::111122223333:role/ferry-manifest"});
    }
    routes(json!([route]))
}

#[test]
fn datasync_batches_become_one_include_filter() {
    let objects = records(&[(0, "outgoing/a/b.csv"), (1, "outgoing/c d.csv")]);
    let p = plan_with(&datasync_routes(true), objects);
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(p.jobs[0].job.includes, ["/a/b.csv", "/c d.csv"]);
    assert!(p.jobs[0].manifest.is_none());
    p.jobs[0].job.clone().validate(&Limits::default()).unwrap();
}

fn long_keys(n: usize) -> Vec<(usize, S3Object)> {
    (0..n)
        .map(|i| {
            (
                i,
                object(
                    "ferry-data",
                    &format!("outgoing/{}/{i:06}", "x".repeat(200)),
                ),
            )
        })
        .collect()
}

#[test]
fn datasync_overflow_goes_to_a_manifest() {
    let p = plan_with(&datasync_routes(true), long_keys(1_000));
    assert_eq!(p.jobs.len(), 1);
    let job = &p.jobs[0];
    assert!(job.job.includes.is_empty());
    let text = manifest_body(&p);
    assert_eq!(text.lines().count(), 1_000);
    assert!(text.lines().next().unwrap().starts_with(&"x".repeat(200)));
    assert_eq!(job.messages.len(), 1_000);
}

#[test]
fn datasync_overflow_without_a_manifest_splits_into_fitting_filters() {
    let p = plan_with(&datasync_routes(false), long_keys(1_000));
    // 1,000 patterns of 208 characters (plus separators) need ceil(208,999 / 102,400) = 3 rules.
    assert_eq!(p.jobs.len(), 3);
    for job in &p.jobs {
        assert!(filter_value_len(&job.job.includes) <= MAX_FILTER_CHARS);
        job.job.clone().validate(&Limits::default()).unwrap();
    }
    assert_eq!(p.jobs.iter().map(|j| j.objects).sum::<usize>(), 1_000);
}

/// Plans `objects` for the DataSync route with a manifest target and without: the manifest of
/// the first, and the second, which must be a single job.
fn with_and_without_manifest(objects: Vec<(usize, S3Object)>) -> (String, Plan) {
    let with = plan_with(&datasync_routes(true), objects.clone());
    let without = plan_with(&datasync_routes(false), objects);
    assert_eq!(without.jobs.len(), 1);
    (manifest_body(&with), without)
}

#[test]
fn keys_a_filter_cannot_express_use_the_manifest_or_fail_alone() {
    let (body, without) = with_and_without_manifest(records(&[
        (0, "outgoing/a|b"),
        (1, "outgoing/star*"),
        (2, "outgoing/plain, with comma"),
    ]));
    assert_eq!(body, "a|b\n\"plain, with comma\"\nstar*\n");
    assert_eq!(without.jobs[0].job.includes, ["/plain, with comma"]);
    assert_eq!(rejected(&without), BTreeSet::from([0, 1]));
}

#[test]
fn datasync_keys_it_cannot_transfer_fail_alone_and_never_name_another_object() {
    // Routes at the bucket root and under outgoing/: "//x" must not become "/x" (another
    // object), and "outgoing/../secret" must not reach outside the route.
    let root = routes(json!([{"name": "all", "bucket": "ferry-data",
        "job": {"name": "all-sync", "kind": "datasync", "task_arn": DS_TASK}}]));
    let objects = records(&[
        (0, "/x"),
        (1, "a//b"),
        (2, "a/./b"),
        (3, "a/../secret"),
        (4, "../up"),
        (5, "x"),
        (6, "folder/"),
    ]);
    let p = plan_with(&root, objects);
    assert_eq!(p.jobs.len(), 1);
    assert_eq!(p.jobs[0].job.includes, ["/folder/", "/x"]);
    assert_eq!(rejected(&p), BTreeSet::from([0, 1, 2, 3, 4]));
    assert!(p.rejected[0].reason.contains("'//'"), "{:?}", p.rejected);
    let p = plan_with(
        &datasync_routes(true),
        records(&[(0, "outgoing/../secret/x")]),
    );
    assert!(p.jobs.is_empty());
    assert_eq!(p.rejected.len(), 1);
}

#[test]
fn a_manifest_keeps_every_row_whether_or_not_it_has_a_version_id() {
    // Found by fuzzing: the CSV writer refused rows with another field count than the first,
    // and the error was ignored, so versioned objects after an unversioned one went missing.
    let mut versioned = object("ferry-data", "outgoing/b|versioned");
    versioned.version_id = Some("v2".into());
    let mut objects = records(&[(0, "outgoing/a|plain"), (2, "outgoing/c|plain")]);
    objects.insert(1, (1, versioned));
    let p = plan_with(&datasync_routes(true), objects);
    assert_eq!(manifest_body(&p), "a|plain\nb|versioned,v2\nc|plain\n");
    assert_eq!(p.jobs[0].objects, 3);
    assert!(p.rejected.is_empty());
}

#[test]
fn datasync_keys_with_line_breaks_go_to_the_manifest_or_fail_alone() {
    // A filter value may not hold CR or LF (start-task would refuse the whole job, and with it
    // every other upload of the batch); a quoted manifest field may.
    let objects = records(&[(0, "outgoing/line\nbreak"), (1, "outgoing/plain")]);
    let (body, without) = with_and_without_manifest(objects);
    assert_eq!(body, "\"line\nbreak\"\nplain\n");
    assert_eq!(without.jobs[0].job.includes, ["/plain"]);
    without.jobs[0]
        .job
        .clone()
        .validate(&Limits::default())
        .unwrap();
    assert_eq!(without.rejected.len(), 1);
    assert_eq!(without.rejected[0].message, 0);
}

#[test]
fn component_order_equals_comparing_segments() {
    let keys = [
        "", "a", "a/", "a/b", "a-b", "a-b/c", "a/b/c", "ab", "a.b", "a b", "a!", "a/!", "é/x",
        "e/x", "a//b", "/a", "z", "a/b-c", "a/b/",
    ];
    for x in keys {
        for y in keys {
            assert_eq!(
                component_cmp(x, y),
                x.split('/').cmp(y.split('/')),
                "{x:?} vs {y:?}"
            );
        }
    }
}

#[test]
fn heads_never_contradict_component_order() {
    let keys = [
        "",
        "a",
        "a/",
        "a/b",
        "a-b",
        "a-b/c",
        "a/b/c",
        "ab",
        "a.b",
        "a b",
        "a!",
        "a/!",
        "é/x",
        "e/x",
        "a//b",
        "/a",
        "\u{1}",
        "\u{0}",
        "./x",
        "abcdefgh",
        "abcdefg/",
        "abcdefghi",
        "abcdefg",
        "abcdefg.",
    ];
    for x in keys {
        for y in keys {
            if head(x) < head(y) {
                assert_eq!(component_cmp(x, y), Ordering::Less, "{x:?} vs {y:?}");
            }
        }
    }
}

#[test]
fn common_prefix_len_finds_the_first_difference_at_every_offset() {
    let base = "0123456789abcdefghijklmnopqrstuvwxyz".as_bytes();
    for at in 0..base.len() {
        let mut other = base.to_vec();
        other[at] = b'/';
        assert_eq!(common_prefix_len(base, &other), at);
        assert_eq!(common_prefix_len(&base[..at], base), at);
    }
    assert_eq!(common_prefix_len(base, base), base.len());
}

#[test]
fn plainly_valid_keys_are_a_subset_of_valid_paths() {
    let routes = import_routes();
    let route = routes.get(0);
    let rels = [
        "a",
        "a/b.txt",
        "s3://x",
        "s3:x",
        "/abs",
        "a/../b",
        "..",
        "a/..",
        "a\rb",
        "a\u{2028}b",
        "a\u{85}b",
        "ünï/cødé",
        "a:b",
        "a//b",
        "a/./b",
        "...",
        "x/.../y",
    ];
    for kind in [JobKind::FsxImport, JobKind::FsxExport, JobKind::FsxRelease] {
        for rel in rels {
            let mut r = route.clone();
            r.job.kind = kind;
            if plainly_valid(&r, rel) {
                assert_eq!(
                    fsx_path_problem(kind, &fsx_path(&r, rel, false)),
                    None,
                    "{kind:?} {rel:?}"
                );
            }
        }
    }
    let long = "d/".repeat(2100);
    assert!(!plainly_valid(route, &long));
    assert!(plainly_valid(route, "a/b"));
}

#[test]
fn uploads_identify_what_a_job_covers_not_how_it_arrived() {
    let upload = |key: &str, sequencer: &str| S3Object {
        sequencer: Some(sequencer.into()),
        etag: Some("e".into()),
        ..object("ferry-data", key)
    };
    let uploads_of = |records: Vec<(usize, S3Object)>| {
        let plan = plan(&import_routes(), &Limits::default(), records);
        assert_eq!(plan.jobs.len(), 1);
        plan.jobs[0].uploads
    };
    // Records of `(message, key, sequencer)`, all with the same ETag.
    let uploads_of_keys = |records: &[(usize, &str, &str)]| {
        let records = records.iter().map(|&(m, key, seq)| (m, upload(key, seq)));
        uploads_of(records.collect())
    };
    let a = uploads_of_keys(&[(0, "incoming/x", "01"), (1, "incoming/y", "02")]);
    // Same uploads in another order, from other messages, or delivered twice: same identity.
    let twice = [
        (0, "incoming/x", "01"),
        (1, "incoming/y", "02"),
        (2, "incoming/x", "01"),
    ];
    for same in [
        &[(5, "incoming/y", "02"), (3, "incoming/x", "01")][..],
        &twice,
    ] {
        assert_eq!(a, uploads_of_keys(same), "{same:?}");
    }
    // Another upload of the same key, or another key: a different identity.
    for other in [
        [(0, "incoming/x", "03"), (1, "incoming/y", "02")],
        [(0, "incoming/x", "01"), (1, "incoming/z", "02")],
    ] {
        assert_ne!(a, uploads_of_keys(&other), "{other:?}");
    }
    // Field boundaries are length-prefixed: moving a character between fields changes it.
    let sequenced = |sequencer: &str, etag: &str| {
        let upload = S3Object {
            etag: Some(etag.into()),
            ..upload("incoming/x", sequencer)
        };
        uploads_of(vec![(0, upload)])
    };
    assert_ne!(sequenced("0", "1e"), sequenced("01", "e"));
}

#[test]
fn a_manifest_names_the_newest_version_of_a_key_whatever_the_order() {
    // Issue 17, defect 1: the first record's version was the one listed, so with the newer
    // upload's message first the manifest named the older version.
    let upload = |version: &str, sequencer: &str| {
        let mut o = object("ferry-data", "outgoing/k|pipe");
        o.version_id = Some(version.into());
        o.sequencer = Some(sequencer.into());
        o
    };
    // By hexadecimal value: 0x100 is later than 0xFF though "100" < "FF" as text; leading
    // zeros and case do not count.
    for (older, newer) in [
        ("00FF", "100"),
        ("0055AED6DCD90281E5", "0055aed6dcd90281e6"),
    ] {
        let forward = vec![(0, upload("v-old", older)), (1, upload("v-new", newer))];
        let backward = vec![(0, upload("v-new", newer)), (1, upload("v-old", older))];
        let a = plan_with(&datasync_routes(true), forward);
        let b = plan_with(&datasync_routes(true), backward);
        assert_eq!(manifest_body(&a), "k|pipe,v-new\n");
        assert_eq!(manifest_body(&b), "k|pipe,v-new\n");
        assert_eq!(a.jobs[0].uploads, b.jobs[0].uploads);
    }
    // A record without a sequencer never wins over one with it.
    let mut bare = object("ferry-data", "outgoing/k|pipe");
    bare.version_id = Some("v-unknown".into());
    let p = plan_with(
        &datasync_routes(true),
        vec![(0, upload("v-seq", "01")), (1, bare)],
    );
    assert_eq!(manifest_body(&p), "k|pipe,v-seq\n");
}

#[test]
fn emoji_keys_split_filters_by_utf16_units() {
    // Issue 17, defect 4: 600 patterns of "/", 96 emoji and 3 digits are 60,599 Rust `char`s
    // with the separators (one filter) but 118,199 UTF-16 units (two).
    let keys: Vec<String> = (0..600)
        .map(|i| format!("outgoing/{}{i:03}", "\u{1F600}".repeat(96)))
        .collect();
    let objects = keys
        .iter()
        .enumerate()
        .map(|(m, k)| (m, object("ferry-data", k)))
        .collect();
    let p = plan_with(&datasync_routes(false), objects);
    assert!(p.rejected.is_empty(), "{:?}", p.rejected.first());
    assert_eq!(p.jobs.len(), 2);
    for job in &p.jobs {
        assert!(filter_value_len(&job.job.includes) <= MAX_FILTER_CHARS);
        job.job.clone().validate(&Limits::default()).unwrap();
    }
    assert_eq!(p.jobs.iter().map(|j| j.objects).sum::<usize>(), 600);
}

/// A DataSync route whose own job excludes 200 KB of CJK patterns: what is left of the spec
/// budget for the includes is far less than DataSync's 102,400 characters.
fn heavy_datasync_routes(manifest: bool) -> Routes {
    let excludes: Vec<String> = (0..700)
        .map(|i| format!("/skip/{i}/{}", "\u{6587}".repeat(95)))
        .collect();
    let mut route = json!({"name": "outgoing", "bucket": "ferry-data", "prefix": "outgoing/", "source_prefix": "outgoing/",
                           "job": {"name": "outgoing-sync", "kind": "datasync", "task_arn": DS_TASK,
                                   "excludes": excludes}});
    if manifest {
        route["manifest"] = json!({"bucket": "ferry-data", "prefix": "ferry-manifests/",
                                   "bucket_access_role_arn": "arn:aws:iam::111122223333:role/ferry-manifest"});
    }
    routes(json!([route]))
}

/// `n` uploads of CJK keys (300 bytes each).
fn cjk_keys(n: usize) -> Vec<(usize, S3Object)> {
    (0..n)
        .map(|i| {
            (
                i,
                object(
                    "ferry-data",
                    &format!("outgoing/{i:05}{}", "\u{6587}".repeat(98)),
                ),
            )
        })
        .collect()
}

#[test]
fn datasync_filters_stay_within_the_spec_budget_not_only_the_filter_limit() {
    // Issue 24: 600 CJK keys are 60,000 characters of filter (within 102,400) but with the
    // route's own excludes the job would pass 320 KiB.
    let objects = cjk_keys(600);
    let split = plan_with(&heavy_datasync_routes(false), objects.clone());
    assert!(split.rejected.is_empty(), "{:?}", split.rejected);
    assert!(split.jobs.len() > 1, "split into fitting jobs");
    for job in &split.jobs {
        let weight = crate::budget::json_bytes(&job.job);
        assert!(weight <= crate::budget::SPEC_BYTES, "{weight}");
        job.job.clone().validate(&Limits::default()).unwrap();
    }
    assert_eq!(split.jobs.iter().map(|j| j.objects).sum::<usize>(), 600);
    let listed = plan_with(&heavy_datasync_routes(true), objects);
    assert_eq!(
        listed.jobs.len(),
        1,
        "with a manifest: one job listing every key"
    );
    assert!(listed.jobs[0].manifest.is_some());
}
