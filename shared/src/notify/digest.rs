//! The failure digest: what a task's own failure report says, in a form a person can act on.
//!
//! A digest counts the failed files, groups them by error code, and keeps the first few paths.
//! It is built one record at a time ([`DigestBuilder`]) so a report of any length costs the same
//! memory; only the first `max_paths` paths are kept.
//!
//! FSx writes one CSV per task (FSx for Lustre user guide, "Working with task completion
//! reports"): `report.csv` for import tasks and `failures.csv` for export and release tasks, under
//! `{Report.Path}/task-{id}/`, with three fields `FilePath,FileStatus,ErrorCode`, RFC 4180 quoting,
//! and paths starting with `@ + - =` wrapped in quotation marks (the guide's example:
//! `@filename.txt` becomes `"""@filename.txt"""`, i.e. the field is `"@filename.txt"`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::job::JobKind;
use crate::domain::text::truncate_chars;

/// Most error codes a digest names; the rest are counted together under [`OTHER_CODES`]. A
/// failure report can hold as many distinct codes as lines, and every one of them would reach
/// the SNS message (issue 17, defect 2: reports of 2-3 MB, which SNS refuses).
pub const MAX_NAMED_CODES: usize = 20;
/// Distinct codes counted while reading; codes first seen after these go to [`OTHER_CODES`],
/// so reading costs bounded memory whatever the report holds.
const MAX_TRACKED_CODES: usize = 1_000;
/// The key the codes past [`MAX_NAMED_CODES`] are counted under.
pub const OTHER_CODES: &str = "(other codes)";
/// An error code or message is cut to this many characters.
pub const MAX_CODE_CHARS: usize = 200;
/// A failed path is cut to this many characters (Lustre paths are at most 4,096 bytes).
pub const MAX_PATH_CHARS: usize = 4_096;

/// A failed file and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedPath {
    pub path: String,
    pub error: String,
}

/// What a failure report says.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    /// Where the report was read (`s3://bucket/key`; several files for DataSync).
    pub sources: Vec<String>,
    /// Failed files counted in the report.
    pub failed: u64,
    /// Failed files per error code.
    pub by_error: BTreeMap<String, u64>,
    /// The first failed paths, in report order.
    pub paths: Vec<FailedPath>,
    /// `paths` holds fewer than `failed` entries (the rest were left out).
    pub paths_truncated: bool,
    /// Lines that could not be read, counted and skipped (a report is never all-or-nothing).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub unreadable_lines: u64,
    /// Only the first part of a very large report was read.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub report_truncated: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Digest {
    /// Keeps only the first `n` paths (to fit a message), recording that some were left out.
    pub fn keep_paths(&mut self, n: usize) {
        if self.paths.len() > n {
            self.paths.truncate(n);
            self.paths_truncated = true;
        }
    }
}

/// Builds a [`Digest`] record by record.
#[derive(Debug, Clone)]
pub struct DigestBuilder {
    digest: Digest,
    max_paths: usize,
}

impl DigestBuilder {
    pub fn new(max_paths: usize) -> DigestBuilder {
        DigestBuilder {
            digest: Digest::default(),
            max_paths,
        }
    }

    pub fn source(&mut self, url: impl Into<String>) {
        self.digest.sources.push(url.into());
    }

    /// Counts one failed file.
    pub fn failed(&mut self, path: &str, error: &str) {
        let error = if error.is_empty() {
            "(none)".to_owned()
        } else {
            truncate_chars(error, MAX_CODE_CHARS)
        };
        self.digest.failed += 1;
        let by_error = &mut self.digest.by_error;
        if let Some(n) = by_error.get_mut(&error) {
            *n += 1;
        } else if by_error.len() < MAX_TRACKED_CODES {
            by_error.insert(error.clone(), 1);
        } else {
            *by_error.entry(OTHER_CODES.to_owned()).or_default() += 1;
        }
        if self.digest.paths.len() < self.max_paths {
            self.digest.paths.push(FailedPath {
                path: truncate_chars(path, MAX_PATH_CHARS),
                error,
            });
        } else {
            self.digest.paths_truncated = true;
        }
    }

    pub fn unreadable(&mut self) {
        self.digest.unreadable_lines += 1;
    }

    /// The report was cut short (read with a byte limit).
    pub fn truncated(&mut self) {
        self.digest.report_truncated = true;
    }

    /// The digest, naming the [`MAX_NAMED_CODES`] most frequent codes (ties by name) and
    /// counting the rest under [`OTHER_CODES`].
    pub fn finish(mut self) -> Digest {
        let by_error = std::mem::take(&mut self.digest.by_error);
        let mut other = by_error.get(OTHER_CODES).copied().unwrap_or(0);
        let mut codes: Vec<(String, u64)> = by_error
            .into_iter()
            .filter(|(code, _)| code != OTHER_CODES)
            .collect();
        codes.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        for (_, n) in codes.iter().skip(MAX_NAMED_CODES) {
            other += n;
        }
        codes.truncate(MAX_NAMED_CODES);
        self.digest.by_error = codes.into_iter().collect();
        if other > 0 {
            self.digest.by_error.insert(OTHER_CODES.to_owned(), other);
        }
        self.digest
    }
}

/// The FSx report file names for a job, the one the user guide gives for its kind first:
/// `report.csv` for imports and `failures.csv` otherwise. Older guides name `failures.csv` for
/// every task type, so the other is tried too. An unknown kind tries `failures.csv` first.
pub fn fsx_report_files(kind: Option<JobKind>) -> [&'static str; 2] {
    if kind == Some(JobKind::FsxImport) {
        ["report.csv", "failures.csv"]
    } else {
        ["failures.csv", "report.csv"]
    }
}

/// Reads an FSx completion report into `builder`. Rows whose status is not `failed` (a report
/// scope other than failed-files-only) are not failures and are skipped. When `cut` is true the
/// body was read up to a byte limit: its last, possibly partial, line is ignored.
pub fn read_fsx_report(body: &[u8], cut: bool, builder: &mut DigestBuilder) {
    let body = if cut {
        builder.truncated();
        match body.iter().rposition(|b| *b == b'\n') {
            Some(end) => &body[..=end],
            None => &[],
        }
    } else {
        body
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(body);
    let mut record = csv::ByteRecord::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(_) => {
                builder.unreadable();
                continue;
            }
        }
        let field = |i: usize| record.get(i).map(String::from_utf8_lossy);
        let (Some(path), Some(status)) = (field(0), field(1)) else {
            builder.unreadable();
            continue;
        };
        // A header line, if FSx ever writes one.
        if path == "FilePath" && status == "FileStatus" {
            continue;
        }
        if !status.trim().eq_ignore_ascii_case("failed") {
            continue;
        }
        let error = field(2).unwrap_or_default();
        builder.failed(&unquote_fsx_path(&path), error.trim());
    }
}

/// Undoes FSx's protection of paths that start with `@ + - =` (which spreadsheets would read as
/// formulas): such a path arrives wrapped in one pair of quotation marks, double per the guide's
/// examples, single per its prose. Both are accepted; other paths are returned as they are.
pub fn unquote_fsx_path(path: &str) -> std::borrow::Cow<'_, str> {
    for quote in ['"', '\''] {
        if let Some(inner) = path.strip_prefix(quote).and_then(|p| p.strip_suffix(quote))
            && inner.starts_with(['@', '+', '-', '='])
        {
            return inner.into();
        }
    }
    path.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(body: &str, max_paths: usize) -> Digest {
        let mut builder = DigestBuilder::new(max_paths);
        read_fsx_report(body.as_bytes(), false, &mut builder);
        builder.finish()
    }

    #[test]
    fn the_user_guide_example_is_read() {
        let d = digest(
            "myRestrictedFile,failed,S3AccessDenied\ndir1/myLargeFile,failed,FileSizeTooLarge\ndir2/anotherLargeFile,failed,FileSizeTooLarge\n",
            10,
        );
        assert_eq!(d.failed, 3);
        assert_eq!(d.by_error["FileSizeTooLarge"], 2);
        assert_eq!(d.by_error["S3AccessDenied"], 1);
        assert_eq!(d.paths[0].path, "myRestrictedFile");
        assert!(!d.paths_truncated);
    }

    #[test]
    fn fsx_quoting_is_undone() {
        // The guide's encodings: @filename.txt -> """@filename.txt""", file,name.txt ->
        // "file,name.txt", file"name.txt -> "file""name.txt".
        let d = digest(
            "\"\"\"@filename.txt\"\"\",failed,E1\n\"\"\"+filename.txt\"\"\",failed,E1\n\"file,name.txt\",failed,E2\n\"file\"\"name.txt\",failed,E2\n'=sum.txt',failed,E3\n\"plain\",failed,E3\n",
            10,
        );
        let paths: Vec<&str> = d.paths.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "@filename.txt",
                "+filename.txt",
                "file,name.txt",
                "file\"name.txt",
                "=sum.txt",
                "plain"
            ]
        );
        // A quoted path not starting with a formula character keeps its quotes.
        assert_eq!(unquote_fsx_path("'quoted'"), "'quoted'");
    }

    #[test]
    fn bad_lines_are_counted_not_fatal_and_successes_are_not_failures() {
        let body = "a,failed,E\nonly-one-field\nb,succeeded,\n\"unterminated,failed,E\n";
        let d = digest(body, 10);
        assert_eq!(d.failed, 1);
        assert!(d.unreadable_lines >= 1);
        let d = digest("a,failed,\n", 10);
        assert_eq!(d.by_error["(none)"], 1);
    }

    #[test]
    fn only_the_first_paths_are_kept() {
        let body: String = (0..1000)
            .map(|i| format!("f{i},failed,E{}\n", i % 3))
            .collect();
        let d = digest(&body, 5);
        assert_eq!(d.failed, 1000);
        assert_eq!(d.paths.len(), 5);
        assert!(d.paths_truncated);
        assert_eq!(d.by_error.values().sum::<u64>(), 1000);
    }

    #[test]
    fn a_report_of_many_distinct_codes_names_the_most_frequent_and_counts_the_rest() {
        // Issue 17, defect 2: every distinct code used to reach the message.
        // Codes seen before the first 1,000 distinct ones are counted by name.
        let mut body = "common,failed,S3AccessDenied\n".repeat(7);
        body.push_str(&"large,failed,FileSizeTooLarge\n".repeat(3));
        body.extend((0..50_000).map(|i| format!("f{i},failed,E{i}{}\n", "E".repeat(300))));
        let d = digest(&body, 5);
        assert_eq!(d.failed, 50_010);
        assert_eq!(d.by_error.len(), MAX_NAMED_CODES + 1);
        assert_eq!(d.by_error["S3AccessDenied"], 7);
        assert_eq!(d.by_error["FileSizeTooLarge"], 3);
        assert_eq!(d.by_error.values().sum::<u64>(), 50_010);
        assert_eq!(d.by_error[OTHER_CODES], 50_010 - 7 - 3 - 18);
        assert!(
            d.by_error
                .keys()
                .all(|k| k.chars().count() <= MAX_CODE_CHARS + 1)
        );
        assert!(
            d.paths
                .iter()
                .all(|p| p.error.chars().count() <= MAX_CODE_CHARS + 1)
        );
    }

    #[test]
    fn a_cut_report_drops_its_partial_last_line() {
        let mut builder = DigestBuilder::new(5);
        read_fsx_report(b"a,failed,E\nb,failed,E\nc,fai", true, &mut builder);
        let d = builder.finish();
        assert_eq!(d.failed, 2);
        assert!(d.report_truncated);
    }
}
