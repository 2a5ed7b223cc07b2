//! Validation of a job spec against the API references' limits, before any AWS call.
//!
//! Every rule cites the API fact it enforces. All broken rules are reported together, each
//! naming its field (`job.paths[3]`) and what was expected. What passes comes out as a
//! [`ValidJob`] with its identifiers parsed ([`crate::ids`]).
//!
//! The rules every kind shares are here; each service's rules are in a child (`fsx.rs`,
//! `datasync.rs`), and a DataSync task definition's in `task_definition.rs`.

use crate::budget::{self, SPEC_BYTES};
use crate::domain::job::{JOB_SPEC_VERSION, JobKind, JobSpec, Limits, Service, ValidJob};
use crate::domain::poll;
use crate::error::{FieldError, FieldErrors};
use crate::ids::{IdError, TopicArn};

/// Default cap on FSx `Paths` (the FSx user guide's console steps say "up to 32").
pub const DEFAULT_MAX_PATHS: usize = 32;
/// The FSx API model's `DataRepositoryTaskPaths` maximum.
pub const API_MAX_PATHS: usize = 100;
/// FSx `DataRepositoryTaskPath` maximum length (API model: max 4096).
pub const MAX_PATH_CHARS: usize = 4096;
/// FSx `ArchivePath` (CompletionReport.Path) length bounds (API model: 3 to 4357).
pub const MAX_REPORT_PATH_CHARS: usize = 4357;
/// DataSync `FilterRule.Value` maximum length (API model: max 102,400).
pub const MAX_FILTER_CHARS: usize = 102_400;
/// FSx and DataSync both cap `Tags` at 50 (FSx `Tags` max 50; DataSync `InputTagList` max 50).
pub const MAX_TAGS: usize = 50;
/// Timeout bounds: at least a minute, at most 30 days.
/// Longest run id a job's `retry_of` names (`run-` and an invocation id: a Lambda request id
/// is 36 characters).
pub const MAX_RUN_ID_CHARS: usize = 128;

/// A run id as Ferry writes them: `run-` then 1 to [`MAX_RUN_ID_CHARS`] - 4 characters of
/// `[A-Za-z0-9._:-]`.
pub fn is_run_id(text: &str) -> bool {
    text.len() <= MAX_RUN_ID_CHARS
        && text.strip_prefix("run-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | ':' | '-'))
        })
}

pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 60..=30 * 24 * 60 * 60;

/// Checks every rule for `job`; `Err` lists each broken one.
pub fn validate(job: JobSpec, limits: &Limits) -> Result<ValidJob, FieldErrors> {
    let mut c = Checker::default();
    let topic = c.common(&job);
    let service = if job.kind.is_fsx() {
        c.fsx(&job, limits).map(Service::Fsx)
    } else {
        c.datasync(&job).map(Service::DataSync)
    };
    c.weight(&job);
    match (c.errors.is_empty(), service) {
        (true, Some(service)) => Ok(ValidJob::new(job, service, topic)),
        (_, _) if !c.errors.is_empty() => Err(FieldErrors { errors: c.errors }),
        // Every part parses when no rule is broken; this is only reachable by a bug here.
        _ => Err(FieldErrors::one(
            "job",
            "could not be assembled after validation",
        )),
    }
}

#[derive(Default)]
struct Checker {
    errors: Vec<FieldError>,
}

fn field(name: &str) -> String {
    format!("job.{name}")
}

impl Checker {
    fn fail(&mut self, field: impl Into<String>, problem: impl Into<String>) {
        self.errors.push(FieldError {
            field: field.into(),
            problem: problem.into(),
        });
    }

    /// The parsed value, or `None` with the problem recorded against `name`.
    fn parsed<T>(&mut self, name: &str, result: Result<T, IdError>) -> Option<T> {
        result
            .map_err(|e| self.fail(field(name), e.to_string()))
            .ok()
    }

    /// Checks the fields every kind has; returns the job's report topic.
    fn common(&mut self, job: &JobSpec) -> Option<TopicArn> {
        if job.version != JOB_SPEC_VERSION {
            self.fail(
                field("version"),
                format!(
                    "unsupported version {}; this build understands version {JOB_SPEC_VERSION}",
                    job.version
                ),
            );
        }
        let name_ok = (1..=64).contains(&job.name.len())
            && job
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '-'));
        if !name_ok {
            self.fail(
                field("name"),
                format!(
                    "must be 1-64 characters of [A-Za-z0-9._-]; got {:?}",
                    crate::domain::text::truncate_chars(&job.name, 200)
                ),
            );
        }
        self.tags(job);
        self.control(job);
        let topic = job.notify.as_ref().and_then(|n| n.topic_arn.as_deref())?;
        self.parsed("notify.topic_arn", TopicArn::parse(topic))
    }

    /// The whole spec within [`SPEC_BYTES`] as JSON: a job is kept in one DynamoDB item (400
    /// KB), as is the run that merges it, so a heavier one could never be queued or run. Every
    /// field may be within its own API limit and the sum still too heavy (two DataSync filters
    /// of 102,400 characters of CJK weigh 600 KB); the error names the heaviest field.
    fn weight(&mut self, job: &JobSpec) {
        let bytes = budget::json_bytes(job);
        if bytes <= SPEC_BYTES {
            return;
        }
        let fields: [(&str, usize); 6] = [
            ("paths", budget::json_bytes(&job.paths)),
            ("includes", budget::json_bytes(&job.includes)),
            ("excludes", budget::json_bytes(&job.excludes)),
            ("task", budget::json_bytes(&job.task)),
            ("tags", budget::json_bytes(&job.tags)),
            ("manifest", budget::json_bytes(&job.manifest)),
        ];
        let (heaviest, weight) = fields
            .into_iter()
            .max_by_key(|&(_, w)| w)
            .unwrap_or(("paths", 0));
        self.fail(
            field(heaviest),
            format!(
                "weighs {} bytes as JSON, and the whole job {}: a job is kept in one DynamoDB item and may weigh at most {} bytes (docs/limits.md); send fewer or shorter paths or patterns (DataSync: list the files in a manifest instead)",
                budget::thousands(weight),
                budget::thousands(bytes),
                budget::thousands(SPEC_BYTES)
            ),
        );
    }

    /// Ferry's own fields: `timeout_seconds`, `retry_of` and `poll`.
    fn control(&mut self, job: &JobSpec) {
        if let Some(run) = &job.retry_of
            && !is_run_id(run)
        {
            self.fail(
                field("retry_of"),
                format!(
                    "must be a run id: `run-` then 1-{} characters of [A-Za-z0-9._:-]; got {:?}",
                    MAX_RUN_ID_CHARS - 4,
                    crate::domain::text::truncate_chars(run, 200)
                ),
            );
        }
        if let Some(timeout) = job.timeout_seconds
            && !TIMEOUT_RANGE.contains(&timeout)
        {
            self.out_of_range("timeout_seconds", timeout, &TIMEOUT_RANGE);
        }
        let Some(spec) = job.poll else { return };
        for (name, value) in [
            ("poll.min_seconds", spec.min_seconds),
            ("poll.max_seconds", spec.max_seconds),
        ] {
            if let Some(v) = value
                && !poll::ALLOWED_SECONDS.contains(&v)
            {
                self.out_of_range(name, v, &poll::ALLOWED_SECONDS);
            }
        }
        if let (Some(min), Some(max)) = (spec.min_seconds, spec.max_seconds)
            && min > max
        {
            self.fail(
                field("poll"),
                format!("min_seconds ({min}) must not exceed max_seconds ({max})"),
            );
        }
    }

    fn out_of_range<T: std::fmt::Display>(
        &mut self,
        name: &str,
        value: T,
        range: &std::ops::RangeInclusive<T>,
    ) {
        self.fail(
            field(name),
            format!(
                "must be between {} and {} seconds; got {value}",
                range.start(),
                range.end()
            ),
        );
    }

    /// FSx `Tag`: key 1-128, value 0-256 (API model); DataSync allows longer keys, so FSx's bound
    /// applies to both. Keys starting with `aws:` are reserved by AWS.
    /// DataSync executions carry one more tag, Ferry's idempotency key, so DataSync jobs get 49.
    fn tags(&mut self, job: &JobSpec) {
        let max = if job.kind.is_fsx() {
            MAX_TAGS
        } else {
            MAX_TAGS - 1
        };
        if job.tags.len() > max {
            self.fail(
                field("tags"),
                format!(
                    "at most {max} tags for kind {}; got {}",
                    job.kind.as_str(),
                    job.tags.len()
                ),
            );
        }
        let tag_char = |ch: char| {
            ch.is_alphanumeric()
                || (ch.is_whitespace() && !ch.is_control())
                || matches!(ch, '_' | '.' | ':' | '/' | '=' | '+' | '-' | '@')
        };
        for (key, value) in &job.tags {
            let f = field(&format!("tags.{key}"));
            if !(1..=128).contains(&key.chars().count()) || !key.chars().all(tag_char) {
                self.fail(
                    &f,
                    "tag keys must be 1-128 letters, digits, spaces or _ . : / = + - @",
                );
            } else if key.to_ascii_lowercase().starts_with("aws:") {
                self.fail(&f, "tag keys starting with \"aws:\" are reserved by AWS");
            }
            if value.chars().count() > 256 || !value.chars().all(tag_char) {
                self.fail(
                    &f,
                    "tag values must be at most 256 letters, digits, spaces or _ . : / = + - @",
                );
            }
        }
    }

    /// Refuses each field of `fields` that is set although `kind` does not use it.
    fn not_for_kind(&mut self, kind: JobKind, fields: &[(&str, bool)]) {
        for (name, present) in fields {
            if *present {
                self.fail(
                    field(name),
                    format!("is not used by kind {}; remove it", kind.as_str()),
                );
            }
        }
    }

    fn one_of(&mut self, field: String, value: Option<&str>, allowed: &[&str]) {
        if let Some(value) = value
            && !allowed.contains(&value)
        {
            self.fail(
                field,
                format!("must be one of {}; got {value:?}", allowed.join(", ")),
            );
        }
    }
}

mod datasync;
mod fsx;
pub mod task_definition;

pub use datasync::{filter_len, filter_value_len};
pub use fsx::fsx_path_problem;

#[cfg(test)]
mod tests;
