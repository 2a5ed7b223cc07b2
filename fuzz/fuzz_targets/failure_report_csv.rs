//! FSx completion reports (`failures.csv`): any bytes, read whole or as cut at a byte limit.
//! The digest never counts more failed files than the report has lines, its per-error counts
//! add up to the failed count, and the kept paths are the first ones, at most the cap.
#![no_main]

use ferry::notify::digest::{DigestBuilder, read_fsx_report};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let cut = flags & 1 == 1;
    let max_paths = usize::from(flags >> 1) % 8;
    let mut builder = DigestBuilder::new(max_paths);
    read_fsx_report(body, cut, &mut builder);
    let digest = builder.finish();
    // Each record ends at a line terminator (\n, \r or \r\n) or at the end of the body.
    let lines = body.iter().filter(|&&b| b == b'\n' || b == b'\r').count() as u64 + 1;
    assert!(
        digest.failed + digest.unreadable_lines <= lines,
        "{} failed + {} unreadable in {lines} lines",
        digest.failed,
        digest.unreadable_lines
    );
    assert_eq!(digest.by_error.values().sum::<u64>(), digest.failed);
    assert!(digest.paths.len() <= max_paths);
    assert!(digest.paths.len() as u64 <= digest.failed);
    assert_eq!(
        digest.paths_truncated,
        (digest.paths.len() as u64) < digest.failed
    );
    assert_eq!(digest.report_truncated, cut);
    // A path's code is named, or counted with the codes past the 20 most frequent.
    for path in &digest.paths {
        assert!(
            digest.by_error.contains_key(&path.error)
                || digest.by_error.contains_key(ferry::notify::digest::OTHER_CODES),
            "{path:?}"
        );
    }
    assert!(digest.by_error.len() <= ferry::notify::digest::MAX_NAMED_CODES + 1);
});
