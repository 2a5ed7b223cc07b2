use super::*;

const FSX_LIFECYCLES: [(&str, Phase); 6] = [
    ("PENDING", Phase::Pending),
    ("EXECUTING", Phase::Running),
    ("CANCELING", Phase::Running),
    ("SUCCEEDED", Phase::Succeeded),
    ("FAILED", Phase::Failed),
    ("CANCELED", Phase::Canceled),
];

const DATASYNC_STATUSES: [(&str, Phase); 8] = [
    ("QUEUED", Phase::Pending),
    ("LAUNCHING", Phase::Pending),
    ("PREPARING", Phase::Running),
    ("TRANSFERRING", Phase::Running),
    ("VERIFYING", Phase::Running),
    ("CANCELLING", Phase::Running),
    ("SUCCESS", Phase::Succeeded),
    ("ERROR", Phase::Failed),
];

#[test]
fn every_fsx_lifecycle_the_sdk_knows_is_mapped() {
    use aws_sdk_fsx::types::DataRepositoryTaskLifecycle;
    for value in DataRepositoryTaskLifecycle::values() {
        let expected = FSX_LIFECYCLES
            .iter()
            .find(|(name, _)| name == value)
            .unwrap_or_else(|| panic!("lifecycle {value} has no expected phase in this test"));
        assert_eq!(Phase::from_fsx(value), expected.1, "{value}");
    }
}

#[test]
fn every_datasync_status_the_sdk_knows_is_mapped() {
    use aws_sdk_datasync::types::TaskExecutionStatus;
    for value in TaskExecutionStatus::values() {
        let expected = DATASYNC_STATUSES
            .iter()
            .find(|(name, _)| name == value)
            .unwrap_or_else(|| panic!("status {value} has no expected phase in this test"));
        assert_eq!(Phase::from_datasync(value, false), expected.1, "{value}");
    }
    assert_eq!(Phase::from_datasync("ERROR", true), Phase::Canceled);
    assert_eq!(Phase::from_datasync("SUCCESS", true), Phase::Succeeded);
}

#[test]
fn an_error_whose_result_names_a_cancel_is_canceled_even_when_ferry_did_not_ask() {
    let datasync: TaskHandle = serde_json::from_value(serde_json::json!({
        "service": "datasync",
        "task_execution_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0123456789abcdef0"
    }))
    .unwrap();
    let ended = |code: Option<&str>, detail: Option<&str>| {
        let mut s = snapshot(datasync.clone(), "ERROR", 0);
        s.failure = Some(Failure {
            message: None,
            error_code: code.map(Into::into),
            error_detail: detail.map(Into::into),
        });
        TaskStatus::from_snapshot(s, ctx(60)).phase
    };
    assert_eq!(
        ended(None, Some("Task execution was cancelled.")),
        Phase::Canceled
    );
    assert_eq!(ended(Some("OpCancelled"), None), Phase::Canceled);
    assert_eq!(
        ended(Some("S3AccessDenied"), Some("Access denied")),
        Phase::Failed
    );
    assert_eq!(ended(None, None), Phase::Failed);
    // FSx has its own CANCELED: a failure message never turns FAILED into a cancel.
    let mut fsx_failed = snapshot(fsx(), "FAILED", 0);
    fsx_failed.failure = Some(Failure {
        message: Some("cancelled upstream".into()),
        error_code: None,
        error_detail: None,
    });
    assert_eq!(
        TaskStatus::from_snapshot(fsx_failed, ctx(60)).phase,
        Phase::Failed
    );
    assert!(is_canceling("CANCELING") && is_canceling("CANCELLING"));
    assert!(!is_canceling("CANCELED") && !is_canceling("ERROR"));
}

#[test]
fn unknown_values_are_kept_and_not_terminal() {
    assert_eq!(Phase::from_fsx("ARCHIVING"), Phase::Running);
    assert_eq!(Phase::from_datasync("INITIALIZING", false), Phase::Running);
    assert_eq!(Phase::from_fsx(""), Phase::Running);
}

fn snapshot(task: TaskHandle, lifecycle: &str, created: i64) -> TaskSnapshot {
    TaskSnapshot {
        task,
        lifecycle: lifecycle.into(),
        counts: Counts::default(),
        timings: Timings {
            created_at: Some(Timestamp::from_secs(created)),
            ..Timings::default()
        },
        failure: None,
        report: None,
    }
}

fn fsx() -> TaskHandle {
    serde_json::from_value(serde_json::json!({"service": "fsx",
        "file_system_id": "fs-0123456789abcdef0", "task_id": "task-0123456789abcdef0"}))
    .unwrap()
}

fn ctx(now: i64) -> StatusContext {
    StatusContext {
        poll: PollSettings::default(),
        timeout_seconds: 3_600,
        cancel_requested: false,
        now: Timestamp::from_secs(now),
    }
}

#[test]
fn normalizes_a_running_task() {
    let mut snap = snapshot(fsx(), "EXECUTING", 1_000);
    snap.counts.total = Some(100);
    snap.counts.succeeded = Some(10);
    let status = TaskStatus::from_snapshot(snap, ctx(2_000));
    assert_eq!(status.phase, Phase::Running);
    assert!(!status.done && !status.timed_out);
    assert_eq!(status.age_seconds, 1_000);
    assert_eq!(status.next_poll_seconds, 200);
}

#[test]
fn an_ended_execution_waits_a_bounded_time_for_its_task_report() {
    // Issue 17: DataSync writes its task report after the execution ends; reading it at
    // once found nothing.
    let ds: TaskHandle = serde_json::from_value(serde_json::json!({"service": "datasync",
        "task_execution_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0123456789abcdef0"}))
    .unwrap();
    let ended = |report: &str, now: i64| {
        let mut snap = snapshot(ds.clone(), "ERROR", 0);
        snap.timings.ended_at = Some(Timestamp::from_secs(1_000));
        snap.report = Some(ReportLocation {
            status: Some(report.into()),
            ..ReportLocation::default()
        });
        TaskStatus::from_snapshot(snap, ctx(now))
    };
    let waiting = ended("PENDING", 1_060);
    assert!(waiting.report_pending && !waiting.done && !waiting.timed_out);
    assert_eq!(waiting.phase, Phase::Failed);
    assert_eq!(
        waiting.next_poll_seconds,
        PollSettings::default().min_seconds
    );
    // Past the job's timeout too: the execution has ended, there is nothing to cancel.
    let late = ended("PENDING", 3_700);
    assert!(late.done && !late.report_pending && !late.timed_out);
    let bound = ended("PENDING", 1_000 + REPORT_WAIT_SECONDS as i64);
    assert!(bound.done && !bound.report_pending);
    for written in ["SUCCESS", "ERROR"] {
        assert!(ended(written, 1_001).done, "{written}");
    }
    let serialized = serde_json::to_value(ended("SUCCESS", 1_001)).unwrap();
    assert!(serialized.get("report_pending").is_none());
}

#[test]
fn a_task_past_its_timeout_is_timed_out_until_it_ends() {
    let status = TaskStatus::from_snapshot(snapshot(fsx(), "EXECUTING", 0), ctx(3_600));
    assert!(status.timed_out);
    assert_eq!(status.next_poll_seconds, 15);
    let ended = TaskStatus::from_snapshot(snapshot(fsx(), "SUCCEEDED", 0), ctx(9_999));
    assert!(ended.done && !ended.timed_out);
}

#[test]
fn a_canceling_task_is_polled_at_the_minimum() {
    let status = TaskStatus::from_snapshot(snapshot(fsx(), "CANCELING", 0), ctx(3_000));
    assert_eq!(status.phase, Phase::Running);
    assert_eq!(status.next_poll_seconds, 15);
}

#[test]
fn a_clock_behind_the_service_gives_age_zero() {
    let status = TaskStatus::from_snapshot(snapshot(fsx(), "PENDING", 5_000), ctx(4_000));
    assert_eq!(status.age_seconds, 0);
}

#[test]
fn status_serializes_with_snake_case_and_rfc3339() {
    let status = TaskStatus::from_snapshot(
        snapshot(fsx(), "SUCCEEDED", 1_700_000_000),
        ctx(1_700_000_060),
    );
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["phase"], "succeeded");
    assert_eq!(json["task"]["service"], "fsx");
    assert_eq!(json["timings"]["created_at"], "2023-11-14T22:13:20Z");
    let back: TaskStatus = serde_json::from_value(json).unwrap();
    assert_eq!(back, status);
}

#[test]
fn progress_prefers_fsx_counts_then_bytes_then_files() {
    let fsx_counts = Counts {
        total: Some(10),
        succeeded: Some(4),
        failed: Some(1),
        ..Counts::default()
    };
    assert_eq!(fsx_counts.progress(), Some(0.5));
    let bytes = Counts {
        bytes_transferred: Some(25),
        estimated_bytes_to_transfer: Some(100),
        files_transferred: Some(9),
        estimated_files_to_transfer: Some(10),
        ..Counts::default()
    };
    assert_eq!(bytes.progress(), Some(0.25));
    let files = Counts {
        files_transferred: Some(9),
        estimated_files_to_transfer: Some(10),
        ..Counts::default()
    };
    assert_eq!(files.progress(), Some(0.9));
    assert_eq!(Counts::default().progress(), None);
    let empty = Counts {
        total: Some(0),
        ..Counts::default()
    };
    assert_eq!(empty.progress(), None);
}
