//! Turning a report into SNS messages: subject, JSON body, email text, attributes, size.
//!
//! Ferry publishes each report twice to the topic, once as JSON and once as text, each with the
//! attributes `status`, `job`, `kind` and `format` (`json` or `text`). Why not one publish with
//! `MessageStructure=json` and a per-protocol `email` text: the SNS API model says message
//! attributes are not sent with such messages (see AWS-FACTS), and attributes are what
//! subscription filter policies match. Two plain messages keep attributes for every protocol;
//! subscribers pick one with a filter policy (`{"format": ["text"]}` for email,
//! `{"format": ["json"]}` for queues and functions).
//!
//! Sizes: a publish is at most 262,144 bytes counting the message and every attribute's name,
//! type and value (SNS `Publish` API reference). Ferry keeps each publish under that with a
//! margin, shortening the failed-path list first (halving it until it fits, and saying so).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::digest::Digest;
use super::report::{CoveredJobs, Outcome, Report};
use crate::domain::status::{Counts, Timestamp};
use crate::domain::text::{truncate_ascii, truncate_chars};
use crate::ids::DataSyncTaskArn;

/// SNS `Publish`: message plus attributes at most 262,144 bytes.
pub const SNS_MAX_BYTES: usize = 262_144;
/// Room kept for the subject and anything SNS counts that Ferry does not see.
const MARGIN_BYTES: usize = 1_024;
/// Subjects must be under 100 characters (SNS `Publish`), ASCII, without line breaks.
pub const MAX_SUBJECT_CHARS: usize = 99;

/// One SNS message, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnsMessage {
    pub topic_arn: String,
    pub subject: String,
    pub body: String,
    /// String attributes: `status`, `job`, `kind`, `format`.
    pub attributes: BTreeMap<String, String>,
}

impl SnsMessage {
    /// The bytes SNS counts against its limit: the body and each attribute's name, data type
    /// (`String`) and value.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .attributes
                .iter()
                .map(|(k, v)| k.len() + "String".len() + v.len())
                .sum::<usize>()
    }
}

/// The subject: `[Ferry] {job} {OUTCOME} on {resource}`, ASCII only, under 100 characters.
/// A long job name is what gets cut (ending `...`): the outcome and the file system or task id
/// are what a reader of a list of subjects needs (issue 17, defect 3).
pub fn subject(report: &Report) -> String {
    let resource = report
        .file_system_id
        .clone()
        .or_else(|| {
            let arn = report.datasync_task_arn.as_deref()?;
            DataSyncTaskArn::parse(arn)
                .ok()
                .map(|arn| arn.task_id().to_owned())
        })
        .map_or_else(String::new, |r| format!(" on {}", subject_text(&r)));
    let head = "[Ferry] ";
    let tail = format!(" {}{resource}", report.outcome.as_upper());
    let job = subject_text(&report.job);
    match MAX_SUBJECT_CHARS.checked_sub(head.len() + tail.len()) {
        // Room for at least a few characters of the name and the `...`.
        Some(room) if room >= 8 => format!("{head}{}{tail}", truncate_ascii(&job, room)),
        _ => truncate_ascii(&format!("{head}{job}{tail}"), MAX_SUBJECT_CHARS),
    }
}

/// SNS subjects: ASCII, starting with a letter, number or punctuation; no line breaks or
/// control characters. Job names are already [A-Za-z0-9._-]; anything else is replaced.
fn subject_text(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The attributes subscription filter policies match.
pub fn attributes(report: &Report, format: &str) -> BTreeMap<String, String> {
    let value = |s: &str| {
        if s.is_empty() {
            "(none)".to_owned()
        } else {
            truncate_chars(s, 256)
        }
    };
    BTreeMap::from([
        ("status".to_owned(), report.outcome.as_upper().to_owned()),
        ("job".to_owned(), value(&report.job)),
        ("kind".to_owned(), value(&report.kind)),
        ("format".to_owned(), format.to_owned()),
    ])
}

/// The readable text for email subscribers: a headline, the facts as aligned lines, then what
/// the failure report says.
pub fn text(report: &Report) -> String {
    let mut out = String::new();
    let headline = match report.outcome {
        Outcome::Succeeded => "succeeded",
        Outcome::Failed => "FAILED",
        Outcome::Canceled => "was canceled",
        Outcome::TimedOut => "TIMED OUT and was canceled",
        Outcome::CouldNotStart => "COULD NOT START",
    };
    let _ = writeln!(
        out,
        "Ferry job {} ({}) {headline}.",
        report.job, report.kind
    );
    if let Some(reason) = &report.reason {
        let _ = writeln!(out, "Reason: {reason}");
    }
    out.push('\n');
    for (label, value) in facts(report) {
        // Values start in column 15; the space keeps the longest label ("DataSync task:", 14
        // characters) apart from its value.
        let _ = writeln!(out, "{label:<13} {value}");
    }
    if let Some(note) = &report.digest_note {
        let _ = writeln!(out, "\nFailure report: {note}");
    }
    if let Some(digest) = &report.digest {
        digest_text(digest, &mut out);
    }
    out
}

/// The report's facts as `(label, value)` lines, in reading order, leaving out what is unknown.
fn facts(report: &Report) -> Vec<(&'static str, String)> {
    let mut lines: Vec<(&'static str, String)> = [
        ("File system:", report.file_system_id.clone()),
        ("DataSync task:", report.datasync_task_arn.clone()),
        ("Task:", report.task_id.clone()),
        ("Lifecycle:", report.lifecycle.clone()),
        ("Execution:", report.execution.clone()),
        ("Run:", report.run.clone()),
        ("Jobs:", report.jobs.as_ref().map(jobs_line)),
        (
            "Retry of:",
            report.jobs.as_ref().and_then(retried_runs_line),
        ),
        ("Started:", report.started_at.map(rfc3339)),
        ("Ended:", report.ended_at.map(rfc3339)),
        ("Duration:", report.duration_seconds.map(duration)),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|v| (label, v)))
    .collect();
    lines.extend(count_lines(
        &report.counts,
        report.throughput_bytes_per_second,
    ));
    if let Some(f) = &report.failure {
        let detail = [&f.message, &f.error_code, &f.error_detail]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(": ");
        // Often the reason already is the failure message.
        if report.reason.as_deref() != Some(detail.as_str()) {
            lines.push(("Failure:", detail));
        }
    }
    for (label, value) in [
        ("Task report:", &report.report_location),
        ("Console:", &report.console_url),
        ("Retry:", &report.retry),
    ] {
        if let Some(v) = value {
            lines.push((label, v.clone()));
        }
    }
    lines
}

/// How many jobs a run covered, and their names, each with how many jobs bore it (upload jobs
/// carry their route's job name): `3 (incoming-import x3)`, `2 (nightly-export, backfill)`.
fn jobs_line(jobs: &CoveredJobs) -> String {
    const NAMED: usize = 5;
    let mut names: Vec<(&str, usize)> = Vec::new();
    for job in &jobs.listed {
        match names.iter_mut().find(|(name, _)| *name == job.name) {
            Some((_, count)) => *count += 1,
            None => names.push((&job.name, 1)),
        }
    }
    let shown: Vec<String> = names
        .iter()
        .take(NAMED)
        .map(|(name, count)| match count {
            1 => (*name).to_owned(),
            n => format!("{name} x{n}"),
        })
        .collect();
    let tail = if names.len() > NAMED || jobs.total > jobs.listed.len() {
        ", ..."
    } else {
        ""
    };
    format!("{} ({}{tail})", jobs.total, shown.join(", "))
}

/// The runs the jobs rerun (`ferry retry`), the first few by id.
fn retried_runs_line(jobs: &CoveredJobs) -> Option<String> {
    const NAMED: usize = 3;
    let mut runs: Vec<&str> = Vec::new();
    for run in jobs.listed.iter().filter_map(|j| j.retry_of.as_deref()) {
        if !runs.contains(&run) {
            runs.push(run);
        }
    }
    if runs.is_empty() {
        return None;
    }
    let tail = if runs.len() > NAMED { ", ..." } else { "" };
    Some(format!(
        "{}{tail}",
        runs[..runs.len().min(NAMED)].join(", ")
    ))
}

/// Files, bytes, throughput and released capacity, each line only when something is known.
fn count_lines(c: &Counts, throughput: Option<u64>) -> Vec<(&'static str, String)> {
    let join = |parts: &[(&str, Option<i64>)], show: fn(i64) -> String| {
        let shown: Vec<String> = parts
            .iter()
            .filter_map(|(label, n)| n.map(|n| format!("{label} {}", show(n))))
            .collect();
        (!shown.is_empty()).then(|| shown.join(", "))
    };
    let files = join(
        &[
            ("total", c.total),
            ("succeeded", c.succeeded),
            ("failed", c.failed.or(c.files_failed)),
            ("listed", c.files_listed_at_source),
            ("prepared", c.files_prepared),
            ("transferred", c.files_transferred),
            ("skipped", c.files_skipped),
            ("verified", c.files_verified),
            ("deleted", c.files_deleted),
        ],
        thousands,
    );
    // Where the failures happened, when DataSync says and any did.
    let failed_in = c
        .files_failed_by_phase
        .as_ref()
        .filter(|f| f.prepare + f.transfer + f.verify + f.delete > 0)
        .and_then(|f| {
            join(
                &[
                    ("prepare", Some(f.prepare).filter(|n| *n > 0)),
                    ("transfer", Some(f.transfer).filter(|n| *n > 0)),
                    ("verify", Some(f.verify).filter(|n| *n > 0)),
                    ("delete", Some(f.delete).filter(|n| *n > 0)),
                ],
                thousands,
            )
        });
    let bytes = join(
        &[
            ("transferred", c.bytes_transferred),
            ("written", c.bytes_written),
            ("compressed", c.bytes_compressed),
        ],
        bytes_text,
    );
    [
        ("Files:", files),
        ("Failed in:", failed_in),
        ("Bytes:", bytes),
        (
            "Throughput:",
            throughput.map(|rate| format!("{}/s", bytes_text(rate as i64))),
        ),
        (
            "Released:",
            c.released_capacity
                .map(|gib| format!("{} GiB", thousands(gib))),
        ),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.map(|v| (label, v)))
    .collect()
}

/// What the failure report says: counts per error code, then the first failed paths.
fn digest_text(d: &Digest, out: &mut String) {
    let _ = writeln!(
        out,
        "\nFailure report: {} failed file{}{}",
        thousands(d.failed as i64),
        if d.failed == 1 { "" } else { "s" },
        if d.sources.is_empty() {
            String::new()
        } else {
            format!(" ({})", d.sources.join(", "))
        }
    );
    for (code, n) in &d.by_error {
        let _ = writeln!(out, "  {code:<28} {}", thousands(*n as i64));
    }
    if !d.paths.is_empty() {
        let _ = writeln!(out, "First failed paths:");
        for p in &d.paths {
            let _ = writeln!(out, "  {} ({})", p.path, p.error);
        }
    }
    if d.paths_truncated {
        let _ = writeln!(
            out,
            "  ... {} of {} paths shown; the full list is in the task report.",
            d.paths.len(),
            thousands(d.failed as i64)
        );
    }
    if d.report_truncated {
        let _ = writeln!(
            out,
            "  (the report is very large; only its beginning was read)"
        );
    }
    if d.unreadable_lines > 0 {
        let _ = writeln!(out, "  ({} unreadable lines skipped)", d.unreadable_lines);
    }
}

/// An id, name or other short field of a report is cut to this many characters.
const MAX_ID_CHARS: usize = 512;
/// A location, URL, note or service message is cut to this many characters.
const MAX_TEXT_CHARS: usize = 2_048;
/// Most report sources a digest names (DataSync writes one report file per kind of outcome).
const MAX_SOURCES: usize = 50;

/// Cuts every free-text field of a report to a bound, so that the messages built from it are
/// bounded whatever the job, the service or the failure report said (issue 17, defect 2). The
/// digest's codes and paths are bounded where it is built ([`super::digest`]).
fn bound_fields(report: &mut Report) {
    let cut = |text: &mut String, max: usize| {
        if text.chars().nth(max).is_some() {
            *text = truncate_chars(text, max);
        }
    };
    let cut_opt = |text: &mut Option<String>, max: usize| {
        if let Some(t) = text.as_mut() {
            cut(t, max);
        }
    };
    cut(&mut report.job, MAX_ID_CHARS);
    cut(&mut report.kind, MAX_ID_CHARS);
    for field in [
        &mut report.execution,
        &mut report.region,
        &mut report.file_system_id,
        &mut report.datasync_task_arn,
        &mut report.task_id,
        &mut report.lifecycle,
        &mut report.run,
    ] {
        cut_opt(field, MAX_ID_CHARS);
    }
    for field in [
        &mut report.reason,
        &mut report.report_location,
        &mut report.digest_note,
        &mut report.console_url,
        &mut report.retry,
    ] {
        cut_opt(field, MAX_TEXT_CHARS);
    }
    if let Some(f) = report.failure.as_mut() {
        cut_opt(&mut f.message, MAX_TEXT_CHARS);
        cut_opt(&mut f.error_code, MAX_ID_CHARS);
        cut_opt(&mut f.error_detail, MAX_TEXT_CHARS);
    }
    if let Some(d) = report.digest.as_mut() {
        d.sources.truncate(MAX_SOURCES);
        d.sources.iter_mut().for_each(|s| cut(s, MAX_TEXT_CHARS));
    }
    if let Some(jobs) = report.jobs.as_mut() {
        for job in &mut jobs.listed {
            cut(&mut job.id, MAX_ID_CHARS);
            cut(&mut job.name, MAX_ID_CHARS);
            cut(&mut job.source, MAX_ID_CHARS);
            cut_opt(&mut job.retry_of, MAX_ID_CHARS);
        }
    }
}

/// Both messages for one report, each within SNS's size limit. Every field is bounded first;
/// then the failed-path list is halved until both fit (the report's `digest.paths_truncated`
/// then says some were left out), and after it, if ever needed, the list of the run's jobs
/// (their `total` still counts them all).
pub fn render(mut report: Report, topic_arn: &str) -> (Report, Vec<SnsMessage>) {
    bound_fields(&mut report);
    let subject = subject(&report);
    let budget = SNS_MAX_BYTES - MARGIN_BYTES - subject.len();
    loop {
        let messages = vec![
            SnsMessage {
                topic_arn: topic_arn.to_owned(),
                subject: subject.clone(),
                // Serializing a report (strings, numbers, maps with string keys) cannot fail.
                body: serde_json::to_string(&report).unwrap_or_default(),
                attributes: attributes(&report, "json"),
            },
            SnsMessage {
                topic_arn: topic_arn.to_owned(),
                subject: subject.clone(),
                body: text(&report),
                attributes: attributes(&report, "text"),
            },
        ];
        if messages.iter().all(|m| m.size() <= budget) {
            return (report, messages);
        }
        let paths = report.digest.as_ref().map_or(0, |d| d.paths.len());
        let listed = report.jobs.as_ref().map_or(0, |j| j.listed.len());
        if paths > 0 {
            if let Some(d) = report.digest.as_mut() {
                d.keep_paths(paths / 2);
            }
        } else if listed > 0 {
            if let Some(j) = report.jobs.as_mut() {
                j.listed.truncate(listed / 2);
            }
        } else {
            // Every field is bounded: what is left is far below the limit
            // (`every_message_fits_sns_whatever_the_report_holds`).
            return (report, messages);
        }
    }
}

pub fn rfc3339(t: Timestamp) -> String {
    serde_json::to_value(t)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// `1h 02m 03s`, `4m 05s`, `12s`.
pub fn duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s:02}s"),
        _ => format!("{h}h {m:02}m {s:02}s"),
    }
}

/// `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `1.5 GiB`, `512 B`.
pub fn bytes_text(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests;
