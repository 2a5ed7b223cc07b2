use super::*;
use crate::notify::report::SCHEMA;

fn report(job: &str, outcome: Outcome) -> Report {
    Report {
        schema: SCHEMA.into(),
        job: job.into(),
        kind: "fsx_export".into(),
        outcome,
        reason: None,
        execution: None,
        region: None,
        file_system_id: Some("fs-0123456789abcdef0".into()),
        datasync_task_arn: None,
        task_id: None,
        lifecycle: None,
        started_at: None,
        ended_at: None,
        duration_seconds: None,
        counts: Counts::default(),
        throughput_bytes_per_second: None,
        failure: None,
        report_location: None,
        digest: None,
        digest_note: None,
        console_url: None,
        run: None,
        jobs: None,
        retry: None,
    }
}

#[test]
fn subjects_are_short_ascii_single_lines() {
    let s = subject(&report("nightly-export", Outcome::Succeeded));
    assert_eq!(
        s,
        "[Ferry] nightly-export SUCCEEDED on fs-0123456789abcdef0"
    );
    // A long name is cut, never the outcome or the resource (issue 17, defect 3).
    let s = subject(&report(&"x".repeat(200), Outcome::CouldNotStart));
    assert_eq!(s.len(), MAX_SUBJECT_CHARS);
    assert!(s.starts_with("[Ferry] xxx"), "{s}");
    assert!(
        s.ends_with("... COULD_NOT_START on fs-0123456789abcdef0"),
        "{s}"
    );
    let mut r = report(&"y".repeat(200), Outcome::Failed);
    r.file_system_id = None;
    r.datasync_task_arn =
        Some("arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0".into());
    let s = subject(&r);
    assert!(s.len() <= MAX_SUBJECT_CHARS);
    assert!(s.ends_with("... FAILED on task-0123456789abcdef0"), "{s}");
    let s = subject(&report("bad\nname\u{e9}", Outcome::Failed));
    assert!(!s.contains('\n') && s.is_ascii(), "{s}");
}

#[test]
fn every_label_is_followed_by_a_space() {
    let mut r = report("results-to-archive", Outcome::Succeeded);
    r.file_system_id = None;
    r.datasync_task_arn =
        Some("arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718".into());
    r.task_id = Some("exec-0f1e2d3c4b5a69788".into());
    let t = text(&r);
    assert!(
        t.contains("DataSync task: arn:aws:datasync:"),
        "label and value run together:\n{t}"
    );
    assert!(t.contains("\nTask:         exec-"), "values line up:\n{t}");
}

#[test]
fn a_runs_jobs_are_counted_and_named_once_each() {
    use crate::notify::report::CoveredJob;
    let job = |name: &str| CoveredJob {
        id: format!("job-{name}"),
        name: name.into(),
        source: "s3-trigger route r".into(),
        enqueued_at: Timestamp::from_secs(0),
        deadline: None,
        retry_of: None,
    };
    let jobs = CoveredJobs::of(
        [
            job("incoming-import"),
            job("nightly"),
            job("incoming-import"),
        ]
        .into_iter(),
    );
    assert_eq!(jobs_line(&jobs), "3 (incoming-import x2, nightly)");
    let many = CoveredJobs {
        total: 250,
        listed: (0..7).map(|i| job(&format!("j{i}"))).collect(),
    };
    assert_eq!(jobs_line(&many), "250 (j0, j1, j2, j3, j4, ...)");
    let mut report = report("run-job", Outcome::Succeeded);
    report.run = Some("run-1".into());
    report.jobs = Some(jobs);
    let text = text(&report);
    assert!(text.contains("Run:          run-1\n"), "{text}");
    assert!(
        text.contains("Jobs:         3 (incoming-import x2, nightly)\n"),
        "{text}"
    );
}

#[test]
fn a_report_says_how_to_rerun_what_failed_and_names_the_run_a_rerun_reruns() {
    use crate::notify::digest::Digest;
    use crate::notify::report::{CoveredJob, retry_command};
    let mut r = report("nightly-export", Outcome::Failed);
    r.run = Some("run-2".into());
    r.jobs = Some(CoveredJobs::of(std::iter::once(CoveredJob {
        id: "job-a".into(),
        name: "nightly-export".into(),
        source: "submit".into(),
        enqueued_at: Timestamp::from_secs(0),
        deadline: None,
        retry_of: Some("run-1".into()),
    })));
    // Failed files read from the failure report: only those are rerun.
    r.digest = Some(Digest {
        failed: 3,
        ..Digest::default()
    });
    r.retry = retry_command(&r);
    let t = text(&r);
    assert!(t.contains("Retry of:     run-1\n"), "{t}");
    assert!(
        t.contains("Retry:        ferry retry run-2 --failed-only\n"),
        "{t}"
    );
    // No report to read: the whole job is rerun.
    r.digest = None;
    r.counts.failed = Some(3);
    assert_eq!(retry_command(&r).as_deref(), Some("ferry retry run-2"));
    // A success with no failed file, a person's cancel, or no run: nothing to rerun.
    r.counts.failed = Some(0);
    r.outcome = Outcome::Succeeded;
    assert_eq!(retry_command(&r), None);
    r.outcome = Outcome::Canceled;
    assert_eq!(retry_command(&r), None);
    r.outcome = Outcome::TimedOut;
    assert_eq!(retry_command(&r).as_deref(), Some("ferry retry run-2"));
    r.run = None;
    assert_eq!(retry_command(&r), None);
}

#[test]
fn numbers_read_well() {
    for (n, text) in [
        (0, "0"),
        (999, "999"),
        (1_000, "1,000"),
        (-1_234_567, "-1,234,567"),
    ] {
        assert_eq!(thousands(n), text);
    }
    for (seconds, text) in [(12, "12s"), (245, "4m 05s"), (3723, "1h 02m 03s")] {
        assert_eq!(duration(seconds), text);
    }
    for (n, text) in [
        (512, "512 B"),
        (1536, "1.5 KiB"),
        (96_636_764_160, "90.0 GiB"),
    ] {
        assert_eq!(bytes_text(n), text);
    }
}

#[test]
fn size_counts_the_body_and_every_attribute() {
    let r = report("j", Outcome::Failed);
    let m = SnsMessage {
        topic_arn: "t".into(),
        subject: "s".into(),
        body: "12345".into(),
        attributes: attributes(&r, "json"),
    };
    // status+String+FAILED, job+String+j, kind+String+fsx_export, format+String+json
    assert_eq!(
        m.size(),
        5 + (6 + 6 + 6) + (3 + 6 + 1) + (4 + 6 + 10) + (6 + 6 + 4)
    );
}

#[test]
fn every_message_fits_sns_whatever_the_report_holds() {
    // Issue 17, defect 2: a digest of many distinct codes made 2-3 MB messages. Here every
    // field is far past its bound at once.
    use crate::domain::status::Failure;
    use crate::notify::digest::DigestBuilder;
    use crate::notify::report::{CoveredJob, CoveredJobs};
    let huge = |c: char| c.to_string().repeat(1_000_000);
    let mut r = report(&huge('j'), Outcome::Failed);
    r.kind = huge('k');
    r.reason = Some(huge('r'));
    r.execution = Some(huge('e'));
    r.region = Some(huge('g'));
    r.file_system_id = Some(huge('f'));
    r.task_id = Some(huge('t'));
    r.lifecycle = Some(huge('l'));
    r.report_location = Some(huge('s'));
    r.digest_note = Some(huge('n'));
    r.console_url = Some(huge('u'));
    r.run = Some(huge('u'));
    r.retry = Some(huge('z'));
    r.failure = Some(Failure {
        message: Some(huge('m')),
        error_code: Some(huge('c')),
        error_detail: Some(huge('d')),
    });
    let mut builder = DigestBuilder::new(1_000);
    for i in 0..20_000 {
        builder.failed(
            &format!("{i}{}", "p".repeat(5_000)),
            &format!("{i}{}", "E".repeat(500)),
        );
    }
    for i in 0..200 {
        builder.source(format!("s3://bucket/{}{i}", "k".repeat(100_000)));
    }
    r.digest = Some(builder.finish());
    r.jobs = Some(CoveredJobs::of((0..2_000).map(|i| CoveredJob {
        id: format!("{i}{}", "i".repeat(100_000)),
        name: huge('x'),
        source: huge('y'),
        enqueued_at: Timestamp::now(),
        deadline: None,
        retry_of: Some(huge('w')),
    })));
    let (kept, messages) = render(r, "arn:aws:sns:us-east-1:111122223333:ferry");
    assert_eq!(messages.len(), 2);
    for m in &messages {
        assert!(
            m.size() + m.subject.len() + MARGIN_BYTES <= SNS_MAX_BYTES,
            "{} bytes",
            m.size()
        );
        assert!(m.subject.len() <= MAX_SUBJECT_CHARS && m.subject.ends_with("..."));
    }
    let digest = kept.digest.unwrap();
    assert!(digest.paths_truncated);
    assert_eq!(digest.failed, 20_000);
    assert_eq!(kept.jobs.unwrap().total, 2_000);
}
