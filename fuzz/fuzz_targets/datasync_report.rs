//! DataSync detailed task reports (JSON, JSON Lines, truncated), report locations, execution
//! ARNs and report keys: never a panic; a digest whose per-error counts add up.
#![no_main]

use ferry::notify::datasync_report::{
    detailed_report_prefix, execution_ids, is_detailed_report_key, read_detailed_report,
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
    if let Some((task, execution)) = execution_ids(arn) {
        assert!(task.starts_with("task-") && execution.starts_with("exec-"));
        assert!(arn.contains(task) && arn.contains(execution));
    }
    if let Some((bucket, prefix)) = detailed_report_prefix(location, arn) {
        assert!(!bucket.is_empty() && !bucket.contains('/'));
        assert!(prefix.ends_with('/') && prefix.contains("Detailed-Reports/"));
    }
    is_detailed_report_key(location);
    is_detailed_report_key(&text);
});
