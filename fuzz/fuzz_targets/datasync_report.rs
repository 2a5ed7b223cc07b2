//! DataSync detailed task reports (JSON, JSON Lines, truncated), report locations, execution
//! ARNs and report keys: never a panic; a digest whose per-error counts add up; what parses as
//! a location and an execution gives a prefix inside the location.
#![no_main]

use ferry::ids::{DataSyncExecutionArn, S3Url};
use ferry::notify::datasync_report::{
    detailed_report_prefix, is_detailed_report_key, read_detailed_report,
};
use ferry::notify::digest::DigestBuilder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let cut = flags & 1 == 1;
    let max_paths = usize::from(flags >> 1) % 8;
    let mut builder = DigestBuilder::new(max_paths);
    read_detailed_report(body, cut, &mut builder);
    let digest = builder.finish();
    assert_eq!(digest.by_error.values().sum::<u64>(), digest.failed);
    assert!(digest.paths.len() <= max_paths && digest.paths.len() as u64 <= digest.failed);
    assert_eq!(
        digest.paths_truncated,
        (digest.paths.len() as u64) < digest.failed
    );
    for path in &digest.paths {
        assert!(!path.path.is_empty());
        assert!(path.error.chars().count() <= 201, "{:?}", path.error);
    }

    let text = String::from_utf8_lossy(body);
    let (location, arn) = text.split_once('\n').unwrap_or((&text, ""));
    let execution = DataSyncExecutionArn::parse(arn).ok();
    if let Some(execution) = &execution {
        let (task, exec) = execution.ids();
        assert!(task.starts_with("task-") && exec.starts_with("exec-"));
        assert!(arn.contains(task) && arn.contains(exec));
    }
    if let (Ok(location), Some(execution)) = (S3Url::parse(location, 4096), &execution) {
        let prefix = detailed_report_prefix(&location, execution);
        assert_eq!(prefix.bucket(), location.bucket());
        let key = prefix.key();
        assert!(key.ends_with('/') && key.contains("Detailed-Reports/"));
        assert!(key.starts_with(location.key().trim_matches('/')));
    }
    is_detailed_report_key(location);
    is_detailed_report_key(&text);
});
