//! `notify` through its real handler, with in-memory SNS and S3, on the fixtures in
//! `events/notify/`.

use std::path::Path;

use ferry::FerryError;
use ferry::config::NotifyConfig;
use ferry::fakes::{FakeFailure, FakeLanes, FakeNotify};
use ferry::handlers::notify::{self, NotifyOutput};
use ferry::ids::TopicArn;
use ferry::notify::message::{MAX_SUBJECT_CHARS, SNS_MAX_BYTES, SnsMessage};
use ferry::notify::report::Report;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:ferry-reports";
const BUCKET: &str = "ferry-data-repository";

fn fixture(case: &str) -> Value {
    let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../events/notify"))
        .join(format!("{case}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn config() -> NotifyConfig {
    NotifyConfig {
        topic_arn: Some(TopicArn::parse(TOPIC).unwrap()),
        region: Some("us-east-1".into()),
        ..NotifyConfig::default()
    }
}

/// In-memory SNS and S3, and the lane table.
fn new_ports() -> (FakeNotify, FakeLanes) {
    (FakeNotify::new(), FakeLanes::new())
}

async fn invoke(
    ports: &(FakeNotify, FakeLanes),
    config: &NotifyConfig,
    payload: Value,
) -> Result<NotifyOutput, FerryError> {
    let config = ferry_tests::laned(config.clone());
    notify::handle(
        ports,
        &config,
        LambdaEvent::new(payload, Context::default()),
    )
    .await
}

/// The JSON and the text message of the one report published.
fn published(fake: &FakeNotify) -> (Report, SnsMessage, SnsMessage) {
    let messages = fake.published();
    assert_eq!(messages.len(), 2, "one JSON and one text message");
    let (json, text) = (messages[0].clone(), messages[1].clone());
    assert_eq!(json.attributes["format"], "json");
    assert_eq!(text.attributes["format"], "text");
    for m in [&json, &text] {
        assert_eq!(m.topic_arn, TOPIC);
        assert!(m.subject.len() <= MAX_SUBJECT_CHARS, "{}", m.subject);
        assert!(
            m.subject.bytes().all(|b| (b' '..=b'~').contains(&b)),
            "{}",
            m.subject
        );
        assert!(m.size() < SNS_MAX_BYTES);
    }
    (
        serde_json::from_str(&json.body).expect("the JSON body parses as a report"),
        json,
        text,
    )
}

#[tokio::test]
async fn a_successful_datasync_run_reports_counts_bytes_and_throughput() {
    let ports = new_ports();
    let fake = &ports.0;
    let out = invoke(&ports, &config(), fixture("succeeded-datasync"))
        .await
        .unwrap();
    assert_eq!(out.message_ids.len(), 2);
    let (report, json, text) = published(fake);
    assert_eq!(
        json.subject,
        "[Ferry] results-to-archive SUCCEEDED on task-0a1b2c3d4e5f60718"
    );
    assert_eq!(json.attributes["status"], "SUCCEEDED");
    assert_eq!(json.attributes["job"], "results-to-archive");
    assert_eq!(json.attributes["kind"], "datasync");
    assert_eq!(report.schema, "ferry.completion-report/1");
    assert_eq!(report.counts.files_transferred, Some(1843));
    assert_eq!(report.duration_seconds, Some(713));
    // 96,636,764,160 bytes over 650 s of transfer.
    assert_eq!(report.throughput_bytes_per_second, Some(148_671_944));
    assert_eq!(
        report.console_url.as_deref(),
        Some(
            "https://us-east-1.console.aws.amazon.com/datasync/home?region=us-east-1#/history/task-0a1b2c3d4e5f60718/exec-0f1e2d3c4b5a69788"
        )
    );
    assert!(
        report.digest.is_none() && report.digest_note.is_none(),
        "nothing failed: no report read"
    );
    assert!(fake.reads().is_empty());
    assert!(
        text.body
            .contains("Ferry job results-to-archive (datasync) succeeded."),
        "{}",
        text.body
    );
    assert!(text.body.contains("transferred 1,843"), "{}", text.body);
    assert!(text.body.contains("Duration:     11m 53s"), "{}", text.body);
    assert!(text.body.contains("90.0 GiB"), "{}", text.body);
}

#[tokio::test]
async fn a_failed_export_includes_a_digest_of_its_failure_report() {
    let ports = new_ports();
    let fake = &ports.0;
    fake.put(
        BUCKET,
        "ferry-reports/task-0123456789abcdef0/failures.csv",
        "projects/climate/output/a.nc,failed,FileSizeTooLarge\n\"\"\"@odd,name.nc\"\"\",failed,S3AccessDenied\nprojects/climate/output/b.nc,failed,FileSizeTooLarge\n",
    );
    invoke(&ports, &config(), fixture("failed-with-report"))
        .await
        .unwrap();
    let (report, json, text) = published(fake);
    assert_eq!(
        json.subject,
        "[Ferry] nightly-export FAILED on fs-0123456789abcdef0"
    );
    assert_eq!(json.attributes["status"], "FAILED");
    assert_eq!(
        report.reason.as_deref(),
        Some("Some files failed to export. See the task completion report for details.")
    );
    let digest = report.digest.expect("digest");
    assert_eq!(digest.failed, 3);
    assert_eq!(digest.by_error["FileSizeTooLarge"], 2);
    assert_eq!(digest.paths[1].path, "@odd,name.nc");
    assert_eq!(
        digest.sources,
        [format!(
            "s3://{BUCKET}/ferry-reports/task-0123456789abcdef0/failures.csv"
        )]
    );
    assert!(
        text.body.contains("Failure report: 3 failed files"),
        "{}",
        text.body
    );
    assert!(
        text.body.contains("@odd,name.nc (S3AccessDenied)"),
        "{}",
        text.body
    );
    assert_eq!(
        report.console_url.as_deref(),
        Some(
            "https://us-east-1.console.aws.amazon.com/fsx/home?region=us-east-1#file-system-details/fs-0123456789abcdef0"
        )
    );
}

#[tokio::test]
async fn the_other_documented_report_folder_is_found_too() {
    let ports = new_ports();
    let fake = &ports.0;
    fake.put(
        BUCKET,
        "ferry-reports/task-task-0123456789abcdef0/failures.csv",
        "x,failed,E\n",
    );
    invoke(&ports, &config(), fixture("failed-with-report"))
        .await
        .unwrap();
    let (report, _, _) = published(fake);
    assert_eq!(report.digest.expect("digest").failed, 1);
}

#[tokio::test]
async fn an_import_reads_report_csv() {
    let ports = new_ports();
    let fake = &ports.0;
    let mut payload = fixture("failed-with-report");
    payload["job"] = json!({"name": "incoming-import", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0",
        "report": {"enabled": true, "path": "s3://ferry-data-repository/ferry-reports"}});
    fake.put(
        BUCKET,
        "ferry-reports/task-0123456789abcdef0/report.csv",
        "in/a,failed,S3ObjectNotFound\n",
    );
    invoke(&ports, &config(), payload).await.unwrap();
    let (report, _, _) = published(fake);
    assert_eq!(
        report.digest.expect("digest").by_error["S3ObjectNotFound"],
        1
    );
    assert_eq!(
        fake.reads()[0].1,
        "ferry-reports/task-0123456789abcdef0/report.csv",
        "report.csv is looked for first for imports"
    );
}

#[tokio::test]
async fn a_missing_or_unreadable_report_is_said_not_fatal() {
    let ports = new_ports();
    let fake = &ports.0;
    invoke(&ports, &config(), fixture("failed-with-report"))
        .await
        .unwrap();
    let (report, _, text) = published(fake);
    assert!(report.digest.is_none());
    let note = report.digest_note.expect("note");
    assert!(note.starts_with("no failure report found"), "{note}");
    assert!(text.body.contains(&note));

    let ports = new_ports();
    let fake = &ports.0;
    fake.deny_reads();
    invoke(&ports, &config(), fixture("failed-with-report"))
        .await
        .unwrap();
    let (report, _, _) = published(fake);
    let note = report.digest_note.expect("note");
    assert!(note.contains("AccessDenied"), "{note}");
}

#[tokio::test]
async fn canceled_outside_ferry_and_timed_out_are_told_apart() {
    let ports = new_ports();
    let fake = &ports.0;
    invoke(&ports, &config(), fixture("canceled"))
        .await
        .unwrap();
    let (report, json, _) = published(fake);
    assert_eq!(json.attributes["status"], "CANCELED");
    assert_eq!(
        report.reason.as_deref(),
        Some("cancelled outside Ferry (the console, the AWS CLI or the API): Ferry did not ask")
    );

    let ports = new_ports();
    let fake = &ports.0;
    invoke(&ports, &config(), fixture("timed-out"))
        .await
        .unwrap();
    let (report, json, text) = published(fake);
    assert_eq!(
        json.subject,
        "[Ferry] incoming-import TIMED_OUT on fs-0123456789abcdef0"
    );
    assert_eq!(
        report.reason.as_deref(),
        Some("the job's timeout of 7200 s passed; Ferry cancelled the task")
    );
    assert!(
        text.body.contains("TIMED OUT and was canceled"),
        "{}",
        text.body
    );
}

#[tokio::test]
async fn a_job_that_could_not_start_is_reported_with_the_reason() {
    let ports = new_ports();
    let fake = &ports.0;
    let out = invoke(&ports, &config(), fixture("could-not-start"))
        .await
        .unwrap();
    assert_eq!(out.outcome, ferry::notify::report::Outcome::CouldNotStart);
    let (report, json, text) = published(fake);
    assert_eq!(
        json.subject,
        "[Ferry] nightly-export COULD_NOT_START on fs-0123456789abcdef0"
    );
    let reason = report.reason.expect("reason");
    assert!(
        reason.starts_with("InvalidJob: invalid job: job.paths[0]: must be relative"),
        "{reason}"
    );
    assert!(report.task_id.is_none());
    assert!(text.body.contains("COULD NOT START"));

    // Even a job too broken to parse is reported, with what could be read from it.
    let ports = new_ports();
    let fake = &ports.0;
    let payload = json!({"job": {"name": "weird", "kind": "fsx_teleport"},
        "error": {"Error": "States.TaskFailed", "Cause": "not json"}});
    invoke(&ports, &config(), payload).await.unwrap();
    let (report, _, _) = published(fake);
    assert_eq!(report.kind, "fsx_teleport");
    assert_eq!(
        report.reason.as_deref(),
        Some("States.TaskFailed: not json")
    );
}

#[tokio::test]
async fn a_failed_publish_is_an_error_never_ok() {
    let ports = new_ports();
    let fake = &ports.0;
    fake.fail_next_publish(FakeFailure::Throttled);
    let error = invoke(&ports, &config(), fixture("canceled"))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "Throttled");
    // The retry publishes the report.
    invoke(&ports, &config(), fixture("canceled"))
        .await
        .unwrap();
    assert_eq!(fake.published().len(), 2);
}

#[tokio::test]
async fn the_job_can_choose_its_topic_and_a_missing_topic_is_a_clear_error() {
    let ports = new_ports();
    let fake = &ports.0;
    let mut payload = fixture("canceled");
    let other = "arn:aws:sns:us-east-1:111122223333:team-b";
    payload["job"]["notify"] = json!({"topic_arn": other});
    let out = invoke(&ports, &config(), payload.clone()).await.unwrap();
    assert_eq!(out.topic_arn, other);
    assert!(fake.published().iter().all(|m| m.topic_arn == other));

    let no_topic = NotifyConfig {
        topic_arn: None,
        ..config()
    };
    let error = invoke(&new_ports(), &no_topic, fixture("canceled"))
        .await
        .unwrap_err();
    // A deployment without a topic is a configuration problem, not the job's.
    assert_eq!(error.error_type(), "Configuration");
    assert!(error.to_string().contains("FERRY_TOPIC_ARN"), "{error}");
}

#[tokio::test]
async fn a_100000_line_failure_report_still_fits_in_one_message() {
    let ports = new_ports();
    let fake = &ports.0;
    // Long paths, so that even the default 50 listed paths would not be the limit; the
    // configured 1,000 paths of ~520 bytes each would be, and must be cut to fit.
    let long = "deep/".repeat(100);
    let body: String = (0..100_000)
        .map(|i| {
            format!(
                "{long}file-{i:06}.dat,failed,{}\n",
                ["FileSizeTooLarge", "S3AccessDenied", "ResourceBusy"][i % 3]
            )
        })
        .collect();
    // ~50 MiB: within the default read limit, so every line is counted.
    assert!(body.len() > 50_000_000 && body.len() < config().max_report_bytes);
    fake.put(
        BUCKET,
        "ferry-reports/task-0123456789abcdef0/failures.csv",
        body,
    );
    let config = NotifyConfig {
        max_paths: 1000,
        ..config()
    };
    let out = invoke(&ports, &config, fixture("failed-with-report"))
        .await
        .unwrap();
    assert!(out.paths_truncated);
    let (report, json, text) = published(fake);
    let digest = report.digest.expect("digest");
    assert_eq!(digest.failed, 100_000);
    assert_eq!(digest.by_error.values().sum::<u64>(), 100_000);
    assert!(digest.paths_truncated);
    assert!(
        !digest.paths.is_empty() && digest.paths.len() < 1000,
        "{}",
        digest.paths.len()
    );
    assert!(json.size() <= SNS_MAX_BYTES && text.size() <= SNS_MAX_BYTES);
    assert!(
        text.body
            .contains(&format!("{} of 100,000 paths shown", digest.paths.len())),
        "{}",
        &text.body[text.body.len() - 300..]
    );
}

#[tokio::test]
async fn a_report_larger_than_the_read_limit_is_digested_in_part() {
    let ports = new_ports();
    let fake = &ports.0;
    let body: String = (0..10_000).map(|i| format!("f{i},failed,E\n")).collect();
    fake.put(
        BUCKET,
        "ferry-reports/task-0123456789abcdef0/failures.csv",
        body,
    );
    let config = NotifyConfig {
        max_report_bytes: 4096,
        ..config()
    };
    invoke(&ports, &config, fixture("failed-with-report"))
        .await
        .unwrap();
    let (report, _, text) = published(fake);
    let digest = report.digest.expect("digest");
    assert!(digest.report_truncated);
    assert!(digest.failed > 0 && digest.failed < 10_000);
    assert!(text.body.contains("only its beginning was read"));
}

#[tokio::test]
async fn a_status_that_has_not_ended_is_rejected() {
    let error = invoke(&new_ports(), &config(), fixture("invalid-still-running"))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "InvalidEvent");
    assert!(error.to_string().contains("status.phase"), "{error}");
    let error = invoke(&new_ports(), &config(), json!({"job": {}}))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("\"status\""), "{error}");
}

#[tokio::test]
async fn a_failed_datasync_run_digests_its_detailed_task_reports() {
    let ports = new_ports();
    let fake = &ports.0;
    let mut payload = fixture("succeeded-datasync");
    let status = &mut payload["status"];
    status["phase"] = json!("failed");
    status["lifecycle"] = json!("ERROR");
    status["counts"]["files_failed"] = json!(2);
    status["failure"] = json!({"error_code": "SyncTaskErrorLocationNotAdded", "error_detail": "Some files could not be transferred."});
    status["report"] =
        json!({"path": "s3://ferry-data-repository/datasync-reports", "status": "SUCCESS"});
    let dir = "datasync-reports/Detailed-Reports/task-0a1b2c3d4e5f60718/exec-0f1e2d3c4b5a69788";
    fake.put(
        BUCKET,
        &format!("{dir}/exec-0f1e2d3c4b5a69788.files-transferred-v1-00001-0a123abc12d3b0e4f.json"),
        json!({"TaskExecutionId": "exec-0f1e2d3c4b5a69788", "Transferred": [
            {"RelativePath": "results/ok.h5", "TransferStatus": "SUCCESS"},
            {"RelativePath": "results/denied.h5", "TransferStatus": "FAILED", "ErrorCode": "AccessDenied", "ErrorDetail": "Access denied"},
        ]})
        .to_string(),
    );
    fake.put(
        BUCKET,
        &format!("{dir}/exec-0f1e2d3c4b5a69788.files-verified-v1-00001-0a123abc12d3b0e4f.json"),
        json!({"TaskExecutionId": "exec-0f1e2d3c4b5a69788", "Verified": [
            {"RelativePath": "results/changed.h5", "VerifyStatus": "FAILED", "ErrorCode": "ChecksumMismatch"},
        ]})
        .to_string(),
    );
    invoke(&ports, &config(), payload).await.unwrap();
    let (report, json, text) = published(fake);
    assert_eq!(json.attributes["status"], "FAILED");
    assert_eq!(
        report.reason.as_deref(),
        Some("SyncTaskErrorLocationNotAdded: Some files could not be transferred.")
    );
    let digest = report.digest.expect("digest");
    assert_eq!(digest.failed, 2);
    assert_eq!(digest.by_error["AccessDenied"], 1);
    assert_eq!(digest.by_error["ChecksumMismatch"], 1);
    assert_eq!(digest.sources.len(), 2);
    assert!(
        text.body.contains("results/denied.h5 (AccessDenied)"),
        "{}",
        text.body
    );

    // A SUMMARY_ONLY report has no detailed files: said, not fatal.
    let ports = new_ports();
    let fake = &ports.0;
    let mut payload = fixture("succeeded-datasync");
    payload["status"]["phase"] = json!("failed");
    payload["status"]["lifecycle"] = json!("ERROR");
    payload["status"]["report"] = json!({"path": "s3://ferry-data-repository/datasync-reports"});
    invoke(&ports, &config(), payload).await.unwrap();
    let (report, _, _) = published(fake);
    assert!(
        report
            .digest_note
            .expect("note")
            .contains("no detailed task report")
    );
}

#[tokio::test]
async fn a_task_report_datasync_could_not_write_or_had_not_written_is_said() {
    // Issue 17: ReportResult ERROR (code and detail) and a report still PENDING when Ferry
    // stopped waiting are said in the report, instead of "no detailed task report found".
    for (result, expected) in [
        (
            json!({"status": "ERROR", "error_code": "S3AccessDenied", "error_detail": "Cannot write to s3://ferry-data-repository/datasync-reports"}),
            "DataSync could not write the task report: S3AccessDenied: Cannot write to s3://ferry-data-repository/datasync-reports",
        ),
        (
            json!({"status": "ERROR"}),
            "DataSync could not write the task report (ReportResult ERROR)",
        ),
        (
            json!({"status": "PENDING"}),
            "DataSync was still writing the task report 5m 00s after the execution ended; it was not read",
        ),
    ] {
        let ports = new_ports();
        let fake = &ports.0;
        let mut payload = fixture("succeeded-datasync");
        let mut report = result.clone();
        report["path"] = json!("s3://ferry-data-repository/datasync-reports");
        payload["status"]["report"] = report;
        invoke(&ports, &config(), payload).await.unwrap();
        let (report, _, text) = published(fake);
        assert_eq!(report.digest_note.as_deref(), Some(expected), "{result}");
        assert!(text.body.contains(expected), "{}", text.body);
        assert!(
            fake.reads().is_empty(),
            "nothing to read: {:?}",
            fake.reads()
        );
    }
}

#[tokio::test]
async fn an_enhanced_mode_run_reports_files_listed_failures_per_phase_and_total_throughput() {
    // Issue 17: Enhanced mode gives no phase durations (always 0), so throughput is over the
    // run's TotalDuration; its listed/prepared counters and per-phase failures are shown.
    let ports = new_ports();
    let fake = &ports.0;
    let mut payload = fixture("succeeded-datasync");
    let status = &mut payload["status"];
    let timings = status["timings"].as_object_mut().unwrap();
    for phase in [
        "prepare_duration_ms",
        "transfer_duration_ms",
        "verify_duration_ms",
    ] {
        timings.remove(phase);
    }
    status["counts"]["files_listed_at_source"] = json!(1900);
    status["counts"]["files_prepared"] = json!(1855);
    status["counts"]["files_failed"] = json!(3);
    status["counts"]["files_failed_by_phase"] =
        json!({"prepare": 1, "transfer": 2, "verify": 0, "delete": 0});
    invoke(&ports, &config(), payload).await.unwrap();
    let (report, _, text) = published(fake);
    // 96,636,764,160 bytes over the 713 s TotalDuration.
    assert_eq!(report.throughput_bytes_per_second, Some(135_535_433));
    assert_eq!(report.counts.files_listed_at_source, Some(1900));
    assert!(
        text.body
            .contains("failed 3, listed 1,900, prepared 1,855, transferred 1,843"),
        "{}",
        text.body
    );
    assert!(
        text.body.contains("Failed in:    prepare 1, transfer 2\n"),
        "{}",
        text.body
    );
}
