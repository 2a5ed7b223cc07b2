use serde_json::{Value, json};

use super::*;
use crate::domain::job::JobSpec;

fn job(value: Value) -> JobSpec {
    serde_json::from_value(value).expect("test job parses")
}

const FS: &str = "fs-0123456789abcdef0";

fn export() -> Value {
    json!({"name": "nightly-export", "kind": "fsx_export", "file_system_id": FS})
}

fn datasync() -> Value {
    json!({"name": "sync", "kind": "datasync",
           "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0"})
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base[key] = value;
    base
}

fn errors(value: Value) -> FieldErrors {
    validate(job(value), &Limits::default()).expect_err("job should be invalid")
}

/// Asserts the job is rejected with an error on `field` whose text contains `needle`.
fn rejects(value: Value, field: &str, needle: &str) {
    let e = errors(value);
    assert!(
        e.errors
            .iter()
            .any(|f| f.field == field && f.problem.contains(needle)),
        "expected {field} containing {needle:?}, got: {e}"
    );
}

/// Asserts, for each `(key, value, field, needle)`, that `base` with `key` set to `value` is
/// rejected with an error on `field` whose text contains `needle`.
fn rejects_each(base: &Value, cases: &[(&str, Value, &str, &str)]) {
    for (key, value, field, needle) in cases {
        rejects(with(base.clone(), key, value.clone()), field, needle);
    }
}

/// The minimal FSx job, of another kind.
fn of_kind(kind: &str) -> Value {
    with(export(), "kind", json!(kind))
}

fn accepts(value: Value) {
    if let Err(e) = validate(job(value), &Limits::default()) {
        panic!("expected valid, got: {e}");
    }
}

#[test]
fn minimal_jobs_of_every_kind_are_valid() {
    accepts(export());
    for (kind, key, value) in [
        ("fsx_import", "paths", json!(["s3://bucket/prefix"])),
        ("fsx_release", "paths", json!(["/"])),
        ("fsx_auto_release", "capacity_to_release", json!(100)),
    ] {
        accepts(with(of_kind(kind), key, value));
    }
    accepts(datasync());
}

#[test]
fn a_complete_fsx_job_is_valid() {
    accepts(json!({
        "version": 1, "name": "release-cold", "kind": "fsx_release",
        "file_system_id": "fs-0123456789abcdef0",
        "paths": ["projects/a", "scratch/b c/ünï"],
        "report": {"enabled": true, "path": "s3://bucket/reports", "format": "REPORT_CSV_20191124", "scope": "FAILED_FILES_ONLY"},
        "release": {"days_since_last_access": 0},
        "tags": {"team": "ml", "cost-center": "42"},
        "timeout_seconds": 21600, "poll": {"min_seconds": 30, "max_seconds": 900},
        "notify": {"topic_arn": "arn:aws:sns:us-east-1:111122223333:ferry"},
        "retry_of": "run-3f2b6c1e-0a9d-4c3e-8f1a-2b7d9e4c5a60"
    }));
}

#[test]
fn a_complete_datasync_job_is_valid() {
    accepts(with(
        datasync(),
        "options",
        json!({
            "verify_mode": "ONLY_FILES_TRANSFERRED", "overwrite_mode": "ALWAYS", "atime": "BEST_EFFORT",
            "mtime": "PRESERVE", "uid": "INT_VALUE", "gid": "INT_VALUE", "preserve_deleted_files": "PRESERVE",
            "preserve_devices": "NONE", "posix_permissions": "PRESERVE", "bytes_per_second": -1,
            "task_queueing": "ENABLED", "log_level": "TRANSFER", "transfer_mode": "CHANGED",
            "security_descriptor_copy_flags": "OWNER_DACL", "object_tags": "PRESERVE"
        }),
    ));
}

#[test]
fn rejects_a_missing_file_system_id() {
    let mut value = export();
    value.as_object_mut().unwrap().remove("file_system_id");
    rejects(value, "job.file_system_id", "is required");
}

#[test]
fn rejects_a_malformed_file_system_id() {
    for bad in [
        "fs-123",
        "fs-0123456789ABCDEF0",
        "file-0123456789abcdef0",
        "fs-0123456789abcdef0123",
    ] {
        let value = with(export(), "file_system_id", json!(bad));
        rejects(value, "job.file_system_id", "fs-");
    }
}

/// The minimal export job with one path.
fn export_path(path: &str) -> Value {
    with(export(), "paths", json!([path]))
}

#[test]
fn rejects_an_absolute_export_path() {
    rejects(
        export_path("/mnt/fsx/data"),
        "job.paths[0]",
        "relative to the file system root",
    );
    rejects(export_path("/"), "job.paths[0]", "only accepted by release");
}

#[test]
fn rejects_parent_segments_anywhere() {
    for bad in ["..", "a/../b", "a/..", "../a"] {
        rejects(export_path(bad), "job.paths[0]", "'..'");
    }
    // A name that merely contains two dots is fine.
    accepts(export_path("a..b/c.."));
    let import = with(
        of_kind("fsx_import"),
        "paths",
        json!(["s3://bucket/a/../b"]),
    );
    rejects(import, "job.paths[0]", "'..'");
}

#[test]
fn rejects_control_characters() {
    for control in ['\0', '\r', '\n', '\u{85}', '\u{2028}', '\u{2029}'] {
        let path = format!("a{control}b");
        rejects(export_path(&path), "job.paths[0]", "control character");
    }
}

#[test]
fn enforces_the_path_length_limit() {
    accepts(export_path(&"a".repeat(4096)));
    rejects(
        export_path(&"a".repeat(4097)),
        "job.paths[0]",
        "at most 4096",
    );
    // Characters, not bytes: 4096 two-byte characters are allowed.
    accepts(export_path(&"é".repeat(4096)));
}

#[test]
fn enforces_the_path_count_cap_and_its_configuration() {
    let paths = |n: usize| json!((0..n).map(|i| format!("p{i}")).collect::<Vec<_>>());
    accepts(with(export(), "paths", paths(32)));
    rejects(
        with(export(), "paths", paths(33)),
        "job.paths",
        "at most 32",
    );
    let raised = Limits { max_paths: 100 };
    assert!(validate(job(with(export(), "paths", paths(100))), &raised).is_ok());
    let e = validate(job(with(export(), "paths", paths(101))), &raised).unwrap_err();
    assert!(e.mentions("job.paths"), "{e}");
    // A configured cap above the API's 100 is held to 100.
    let too_high = Limits { max_paths: 500 };
    assert!(validate(job(with(export(), "paths", paths(101))), &too_high).is_err());
}

#[test]
fn rejects_duplicate_paths() {
    let value = with(export(), "paths", json!(["a", "b", "a"]));
    rejects(value, "job.paths[2]", "duplicates");
}

#[test]
fn import_paths_must_be_s3_urls() {
    let import = of_kind("fsx_import");
    rejects_each(
        &import,
        &[
            ("paths", json!(["data/raw"]), "job.paths[0]", "s3://"),
            (
                "paths",
                json!(["s3://Bad_Bucket/x"]),
                "job.paths[0]",
                "valid bucket",
            ),
        ],
    );
    for ok in ["s3://bucket", "s3://my.bucket-1/deep/prefix/"] {
        accepts(with(import.clone(), "paths", json!([ok])));
    }
    rejects(export_path("s3://bucket/x"), "job.paths[0]", "not S3 URLs");
}

#[test]
fn report_path_must_be_an_s3_url_when_enabled() {
    rejects_each(
        &export(),
        &[
            (
                "report",
                json!({"enabled": true}),
                "job.report.path",
                "required",
            ),
            (
                "report",
                json!({"enabled": true, "path": "/reports"}),
                "job.report.path",
                "s3://",
            ),
            (
                "report",
                json!({"enabled": true, "path": "s3://b/r", "format": "CSV"}),
                "job.report.format",
                "REPORT_CSV_20191124",
            ),
            (
                "report",
                json!({"enabled": true, "path": "s3://bkt/r", "scope": "ALL"}),
                "job.report.scope",
                "FAILED_FILES_ONLY",
            ),
        ],
    );
    accepts(with(export(), "report", json!({"enabled": false})));
}

#[test]
fn release_days_must_not_be_negative() {
    let release = |days: i64| {
        let value = json!({"days_since_last_access": days});
        with(of_kind("fsx_release"), "release", value)
    };
    rejects(
        release(-1),
        "job.release.days_since_last_access",
        "0 or more",
    );
    accepts(release(0));
}

#[test]
fn kind_specific_fields_are_rejected_elsewhere() {
    rejects_each(
        &export(),
        &[
            (
                "release",
                json!({"days_since_last_access": 1}),
                "job.release",
                "not used by kind fsx_export",
            ),
            (
                "capacity_to_release",
                json!(5),
                "job.capacity_to_release",
                "not used",
            ),
            ("task_arn", json!("arn"), "job.task_arn", "not used"),
            ("includes", json!(["/a"]), "job.includes", "not used"),
        ],
    );
    rejects_each(
        &datasync(),
        &[
            (
                "file_system_id",
                json!(FS),
                "job.file_system_id",
                "not used",
            ),
            ("paths", json!(["a"]), "job.paths", "not used"),
        ],
    );
}

#[test]
fn auto_release_needs_a_capacity() {
    let auto = of_kind("fsx_auto_release");
    rejects(auto.clone(), "job.capacity_to_release", "required");
    let none = with(auto, "capacity_to_release", json!(0));
    rejects(none, "job.capacity_to_release", "at least 1");
}

#[test]
fn datasync_needs_a_task_arn() {
    let mut value = datasync();
    value.as_object_mut().unwrap().remove("task_arn");
    rejects(value, "job.task_arn", "required");
    let bucket = with(datasync(), "task_arn", json!("arn:aws:s3:::bucket"));
    rejects(bucket, "job.task_arn", "DataSync task ARN");
}

#[test]
fn bytes_per_second_is_minus_one_or_positive() {
    let rate = |n: i64| with(datasync(), "options", json!({"bytes_per_second": n}));
    for ok in [-1, 1, 1_000_000] {
        accepts(rate(ok));
    }
    for bad in [0, -2] {
        rejects(
            rate(bad),
            "job.options.bytes_per_second",
            "-1 (unlimited) or at least 1",
        );
    }
}

#[test]
fn option_values_must_be_the_apis() {
    for (option, value, needle) in [
        ("verify_mode", "SOMETIMES", "POINT_IN_TIME_CONSISTENT"),
        ("transfer_mode", "changed", "must be one of"),
    ] {
        let options = with(datasync(), "options", json!({ option: value }));
        rejects(options, &format!("job.options.{option}"), needle);
    }
}

#[test]
fn option_combinations_the_api_rules_out_are_refused_each_named() {
    // Issue 17: the Options reference's pairings.
    let with_options = |o: Value| with(datasync(), "options", o);
    for (atime, mtime) in [("BEST_EFFORT", "PRESERVE"), ("NONE", "NONE")] {
        accepts(with_options(json!({"atime": atime, "mtime": mtime})));
    }
    accepts(with_options(json!({"atime": "NONE"})));
    accepts(with_options(
        json!({"preserve_deleted_files": "REMOVE", "transfer_mode": "CHANGED"}),
    ));
    for (atime, mtime) in [("BEST_EFFORT", "NONE"), ("NONE", "PRESERVE")] {
        rejects(
            with_options(json!({"atime": atime, "mtime": mtime})),
            "job.options.mtime",
            "must be PRESERVE with atime BEST_EFFORT",
        );
    }
    // Both broken rules at once, each naming its field.
    let e = errors(with_options(json!({
        "atime": "NONE", "mtime": "PRESERVE",
        "preserve_deleted_files": "REMOVE", "transfer_mode": "ALL"
    })));
    let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
    assert_eq!(
        fields,
        ["job.options.mtime", "job.options.transfer_mode"],
        "{e}"
    );
}

#[test]
fn filters_respect_the_102400_character_limit() {
    // 1,024 patterns of 99 characters: 101,376 + 1,023 separators = 102,399.
    let fits: Vec<String> = (0..1024).map(|i| format!("/{i:0>98}")).collect();
    assert_eq!(filter_value_len(&fits), 102_399);
    accepts(with(datasync(), "includes", json!(fits)));
    let mut over = fits.clone();
    over.push("/x".into());
    rejects_each(
        &datasync(),
        &[
            ("includes", json!(over), "job.includes", "102400"),
            ("excludes", json!(["/a|/b"]), "job.excludes[0]", "'|'"),
            ("excludes", json!([""]), "job.excludes[0]", "empty"),
        ],
    );
}

#[test]
fn filters_are_measured_in_utf16_code_units_not_scalar_values_or_bytes() {
    // Issue 17, defect 4. CJK: one unit and three bytes per character; 1,024 patterns of
    // "/" + 98 CJK characters are 101,376 units + 1,023 separators: they fit, though in bytes
    // they are 302,080.
    let cjk: Vec<String> = (0..1024)
        .map(|_| format!("/{}", "\u{6587}".repeat(98)))
        .collect();
    assert_eq!(filter_value_len(&cjk), 102_399);
    accepts(with(datasync(), "includes", json!(cjk)));
    // Emoji: two units each. 512 patterns of "/" + 99 emoji are 51,200 scalar values (and
    // 511 separators), half the limit that way, but 101,888 + 511 = 102,399 units: fits;
    // one more emoji does not.
    let mut emoji: Vec<String> = (0..512)
        .map(|_| format!("/{}", "\u{1F600}".repeat(99)))
        .collect();
    assert_eq!(filter_value_len(&emoji), 102_399);
    accepts(with(datasync(), "includes", json!(emoji)));
    emoji[0].push('\u{1F600}');
    assert_eq!(
        emoji.iter().map(|p| p.chars().count()).sum::<usize>() + 511,
        51_712
    );
    rejects(
        with(datasync(), "includes", json!(emoji)),
        "job.includes",
        "UTF-16",
    );
}

#[test]
fn manifest_and_task_report_arns_are_checked() {
    const ROLE: &str = "arn:aws:iam::111122223333:role/r";
    rejects_each(
        &datasync(),
        &[
            (
                "manifest",
                json!({"bucket_arn": "bucket", "object_path": "m.csv", "bucket_access_role_arn": ROLE}),
                "job.manifest.bucket_arn",
                "S3 bucket",
            ),
            (
                "manifest",
                json!({"bucket_arn": "arn:aws:s3:::b", "object_path": "", "bucket_access_role_arn": "arn:aws:iam::111122223333:user/u"}),
                "job.manifest.bucket_access_role_arn",
                "IAM role",
            ),
            (
                "task_report",
                json!({"bucket_arn": "arn:aws:s3:::b", "bucket_access_role_arn": ROLE, "report_level": "ALL"}),
                "job.task_report.report_level",
                "ERRORS_ONLY",
            ),
        ],
    );
}

#[test]
fn common_fields_are_checked() {
    rejects_each(
        &export(),
        &[
            ("version", json!(2), "job.version", "unsupported version 2"),
            ("name", json!("has space"), "job.name", "[A-Za-z0-9._-]"),
            ("name", json!(""), "job.name", "1-64"),
            (
                "retry_of",
                json!("nightly"),
                "job.retry_of",
                "must be a run id",
            ),
            (
                "retry_of",
                json!("run-"),
                "job.retry_of",
                "must be a run id",
            ),
            (
                "retry_of",
                json!("run-a b"),
                "job.retry_of",
                "[A-Za-z0-9._:-]",
            ),
            (
                "retry_of",
                json!(format!("run-{}", "a".repeat(125))),
                "job.retry_of",
                "1-124 characters",
            ),
            (
                "timeout_seconds",
                json!(10),
                "job.timeout_seconds",
                "between 60",
            ),
            (
                "poll",
                json!({"min_seconds": 1}),
                "job.poll.min_seconds",
                "between 5",
            ),
            (
                "poll",
                json!({"min_seconds": 600, "max_seconds": 60}),
                "job.poll",
                "must not exceed",
            ),
            (
                "notify",
                json!({"topic_arn": "arn:aws:sqs:us-east-1:111122223333:q"}),
                "job.notify.topic_arn",
                "SNS topic ARN",
            ),
        ],
    );
}

#[test]
fn tags_are_limited() {
    let many = |n: usize| {
        json!(
            (0..n)
                .map(|i| (format!("k{i}"), "v".to_string()))
                .collect::<std::collections::BTreeMap<_, _>>()
        )
    };
    accepts(with(export(), "tags", many(50)));
    rejects(with(export(), "tags", many(51)), "job.tags", "at most 50");
    // DataSync executions also carry Ferry's idempotency tag.
    accepts(with(datasync(), "tags", many(49)));
    rejects(with(datasync(), "tags", many(50)), "job.tags", "at most 49");
    rejects_each(
        &export(),
        &[
            (
                "tags",
                json!({"aws:reserved": "x"}),
                "job.tags.aws:reserved",
                "reserved",
            ),
            (
                "tags",
                json!({"k": "bad\nvalue"}),
                "job.tags.k",
                "tag values",
            ),
        ],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let e = errors(json!({"name": "bad name", "kind": "fsx_export", "paths": ["/abs", "a/../b"]}));
    for field in [
        "job.name",
        "job.file_system_id",
        "job.paths[0]",
        "job.paths[1]",
    ] {
        assert!(e.mentions(field), "{field} missing from {e}");
    }
}

#[test]
fn a_file_cache_id_is_refused_with_the_reason() {
    // Issue 17: AUTO_RELEASE_DATA is documented for Amazon File Cache, but the request names
    // only a file system (FileSystemId, pattern ^(fs-[0-9a-f]{8,})$).
    let job = json!({"name": "cache-release", "kind": "fsx_auto_release",
                     "file_system_id": "fc-0123456789abcdef0", "capacity_to_release": 10});
    rejects(job, "job.file_system_id", "Amazon File Cache");
}

#[test]
fn a_job_heavier_than_one_item_can_hold_is_refused_naming_its_heaviest_field() {
    // Issue 24: every field within its API limit, the whole past what one DynamoDB item holds.
    // 32 export paths of 4,096 CJK characters: 12 KiB each, 393 KB in all.
    let long: Vec<String> = (0..32)
        .map(|i| format!("{i:02}{}", "\u{6587}".repeat(4094)))
        .collect();
    let heavy = with(export(), "paths", json!(long));
    let e = errors(heavy);
    assert_eq!(e.errors.len(), 1, "{e}");
    assert_eq!(e.errors[0].field, "job.paths");
    assert!(e.errors[0].problem.contains("393,"), "{e}");
    assert!(e.errors[0].problem.contains("327,680"), "{e}");
    // Two DataSync filters of 102,400 units of CJK: each fits the API, together 600 KB.
    let cjk: Vec<String> = (0..1024)
        .map(|_| format!("/{}", "\u{6587}".repeat(98)))
        .collect();
    let mut excludes = cjk.clone();
    excludes[0].push('x');
    let both = with(
        with(datasync(), "includes", json!(cjk)),
        "excludes",
        json!(excludes),
    );
    rejects(both, "job.excludes", "327,680 bytes");
    // The heaviest job that fits: one filter at the API's limit.
    accepts(with(datasync(), "includes", json!(cjk)));
}

#[test]
fn the_weight_budget_counts_json_escapes() {
    // A tab is one character of a path and two bytes of JSON; \u{1} is six.
    let paths: Vec<String> = (0..32)
        .map(|i| format!("{i:02}{}", "\u{1}".repeat(4094)))
        .collect();
    assert!(crate::budget::json_bytes(&paths) > crate::budget::SPEC_BYTES);
    rejects(
        with(export(), "paths", json!(paths)),
        "job.paths",
        "bytes as JSON",
    );
}
