//! CloudWatch metrics in the Embedded Metric Format (EMF): one JSON document per line on
//! standard output. "Lambda automatically sends everything that your function writes to
//! standard output to a CloudWatch Logs log group, and CloudWatch Logs extracts metrics from any
//! log events that follow the embedded metric format specification" (CloudWatch user guide,
//! "Using the embedded metric format with Lambda"); the functions' JSON log format does not
//! re-encode a line that is already JSON (Lambda developer guide, "Configuring JSON and plain
//! text log formats"). No API call, no extra permission, no latency.
//!
//! The document, as the EMF specification ("Specification: Embedded metric format", CloudWatch
//! user guide) gives it: a root object whose `_aws` member holds `Timestamp` (milliseconds
//! since the epoch) and `CloudWatchMetrics`, a list of directives, each a `Namespace`, its
//! `Dimensions` (a list of dimension sets, each a list of root member names; an empty set
//! publishes the metrics without dimensions) and its `Metrics` (`Name` and `Unit`); the root
//! then holds each dimension's value (a string) and each metric's value (a number, or a list
//! of numbers). The limits are those AWS's own EMF libraries enforce (awslabs
//! aws-embedded-metrics-*, `Constants`): at most 30 dimensions in a set, dimension names of
//! 250 and values of 1,024 characters, metric names of 1,024, namespaces of 256 of
//! `[a-zA-Z0-9._#:/-]`, 100 metrics to a document and 100 values to a metric. A metric with
//! more values is split over several documents here.
//!
//! Not a crate: the one that exists (`metrics_cloudwatch_embedded`) says its interface is not
//! stable and brings the `metrics` facade; what Ferry needs is this page.
//!
//! The names below are what `template.yaml`'s dashboard and alarm read
//! (`scripts/check-dashboard.py` checks them against this file).

use serde_json::{Map, Value, json};

use crate::domain::text::truncate_chars;

/// The metrics' namespace when `FERRY_METRICS_NAMESPACE` is unset (template.yaml sets
/// `Ferry/<stack name>`, so two stacks in one account keep their metrics apart).
pub const NAMESPACE: &str = "Ferry";

/// `FERRY_METRICS_NAMESPACE`: 1-256 of `[a-zA-Z0-9._#:/-]`.
pub const ENV_NAMESPACE: &str = "FERRY_METRICS_NAMESPACE";

/// The namespace: the variable's when it is a valid one, else [`NAMESPACE`] (a metric is not
/// worth stopping a function for; `template.yaml` sets a valid one).
fn namespace() -> &'static str {
    static NAME: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var(ENV_NAMESPACE)
            .ok()
            .filter(|n| valid_namespace(n))
            .unwrap_or_else(|| NAMESPACE.to_owned())
    })
}

fn valid_namespace(name: &str) -> bool {
    (1..=256).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._#:/-".contains(c))
}

// notify, once per run: dimensions Lane + Outcome, and Outcome alone.
/// 1 per run that ended.
pub const RUNS: &str = "Runs";
/// Seconds from the task's start to its end.
pub const RUN_DURATION: &str = "RunDuration";
/// Files the task transferred (FSx: succeeded; DataSync: transferred).
pub const FILES: &str = "Files";
pub const FILES_FAILED: &str = "FilesFailed";
/// Bytes the task transferred (DataSync; FSx does not count bytes).
pub const BYTES: &str = "Bytes";
/// Jobs a run covered (merged).
pub const JOBS_PER_RUN: &str = "JobsPerRun";
/// Jobs that waited past their deadline and never ran (no dimension).
pub const JOBS_EXPIRED: &str = "JobsExpired";
/// 1 per run abandoned after its runners kept stopping (dimensions Lane + Outcome, Outcome).
pub const RUNS_ABANDONED: &str = "RunsAbandoned";

// lane `take`: dimension Lane.
/// Pending jobs left after a run was taken (as far as the take read).
pub const BACKLOG: &str = "Backlog";
/// Seconds each job of a new run waited in its lane.
pub const JOB_WAIT: &str = "JobWait";

// submit's sweep, every 5 minutes: dimension Lane, and none (the alarm's).
/// Seconds the oldest pending job of a lane has waited (0 when none waits).
pub const OLDEST_PENDING: &str = "OldestPendingAge";

// s3-trigger, once per batch: no dimension.
/// Uploads in jobs queued.
pub const UPLOADS_QUEUED: &str = "UploadsQueued";
/// Uploads no route matched.
pub const UPLOADS_UNMATCHED: &str = "UploadsUnmatched";
/// Records that were not object creations (removals, test events).
pub const UPLOADS_IGNORED: &str = "UploadsIgnored";
/// Objects refused: no job of their route could ever run them (recorded, not retried).
pub const UPLOADS_REFUSED: &str = "UploadsRefused";
/// Messages failed back to the queue (unreadable, refused, not queued).
pub const MESSAGES_FAILED: &str = "MessagesFailed";

const MAX_DIMENSIONS_PER_SET: usize = 30;
/// (A cut value ends with `…`, within the bound.)
const MAX_DIMENSION_VALUE_CHARS: usize = 1024;
const MAX_METRICS_PER_DOCUMENT: usize = 100;
const MAX_VALUES_PER_METRIC: usize = 100;

/// CloudWatch units Ferry uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Seconds,
    Bytes,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
        }
    }
}

/// Metrics sharing dimensions and a timestamp, rendered as EMF documents.
#[derive(Debug, Clone, PartialEq)]
pub struct Emf {
    timestamp_ms: u64,
    dimensions: Vec<(&'static str, String)>,
    /// The dimension sets, as indices into `dimensions` (an empty set: no dimension).
    sets: Vec<Vec<usize>>,
    metrics: Vec<(&'static str, Unit, Vec<f64>)>,
}

impl Emf {
    /// Metrics at `timestamp_ms`, published under each of `sets` (names from `dimensions`).
    pub fn new(
        timestamp_ms: u64,
        dimensions: &[(&'static str, &str)],
        sets: &[&[&'static str]],
    ) -> Emf {
        let dimensions: Vec<(&'static str, String)> = dimensions
            .iter()
            .map(|(name, value)| (*name, truncate_chars(value, MAX_DIMENSION_VALUE_CHARS - 1)))
            .collect();
        let sets = sets
            .iter()
            .map(|set| {
                set.iter()
                    .filter_map(|name| dimensions.iter().position(|(n, _)| n == name))
                    .take(MAX_DIMENSIONS_PER_SET)
                    .collect()
            })
            .collect();
        Emf {
            timestamp_ms,
            dimensions,
            sets,
            metrics: Vec::new(),
        }
    }

    /// Adds a value of `name` (another value of the same metric joins its list).
    pub fn add(&mut self, name: &'static str, unit: Unit, value: f64) -> &mut Emf {
        if !value.is_finite() {
            return self;
        }
        match self.metrics.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, _, values)) => values.push(value),
            None => self.metrics.push((name, unit, vec![value])),
        }
        self
    }

    /// The documents, one JSON object per line: nothing when no metric was added.
    pub fn documents(&self) -> Vec<String> {
        let mut documents = Vec::new();
        for chunk in self.metrics.chunks(MAX_METRICS_PER_DOCUMENT) {
            let rounds = chunk.iter().map(|(_, _, v)| v.len()).max().unwrap_or(0);
            for round in 0..rounds.div_ceil(MAX_VALUES_PER_METRIC) {
                let range = round * MAX_VALUES_PER_METRIC..(round + 1) * MAX_VALUES_PER_METRIC;
                let values: Vec<_> = chunk
                    .iter()
                    .filter_map(|(name, unit, values)| {
                        let part = values.get(range.start..range.end.min(values.len()))?;
                        (!part.is_empty()).then_some((*name, *unit, part))
                    })
                    .collect();
                documents.push(self.document(&values).to_string());
            }
        }
        documents
    }

    fn document(&self, metrics: &[(&'static str, Unit, &[f64])]) -> Value {
        let sets: Vec<Vec<&str>> = self
            .sets
            .iter()
            .map(|set| set.iter().map(|&i| self.dimensions[i].0).collect())
            .collect();
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        let mut root = Map::new();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": self.timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace(),
                    "Dimensions": sets,
                    "Metrics": definitions,
                }],
            }),
        );
        for (name, value) in &self.dimensions {
            root.insert((*name).into(), Value::from(value.as_str()));
        }
        for (name, _, values) in metrics {
            let value = match values {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert((*name).into(), value);
        }
        Value::Object(root)
    }

    /// Writes the documents to standard output, where Lambda's log capture finds them.
    pub fn emit(&self) {
        for document in self.documents() {
            println!("{document}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks one document against the specification's rules, as CloudWatch would.
    fn assert_valid(document: &str) -> Value {
        let root: Value = serde_json::from_str(document).expect("one JSON object");
        let aws = &root["_aws"];
        assert!(aws["Timestamp"].is_u64());
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        for directive in directives {
            let namespace = directive["Namespace"].as_str().unwrap();
            assert!(!namespace.is_empty() && namespace.len() <= 256);
            assert!(
                namespace
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._#:/-".contains(c))
            );
            for set in directive["Dimensions"].as_array().unwrap() {
                let set = set.as_array().unwrap();
                assert!(set.len() <= 30);
                for name in set {
                    let value = &root[name.as_str().unwrap()];
                    assert!(value.is_string(), "dimension {name} has a string value");
                    assert!(value.as_str().unwrap().chars().count() <= 1024);
                }
            }
            let metrics = directive["Metrics"].as_array().unwrap();
            assert!(!metrics.is_empty() && metrics.len() <= 100);
            for metric in metrics {
                let name = metric["Name"].as_str().unwrap();
                let unit = metric["Unit"].as_str().unwrap();
                assert!(["Count", "Seconds", "Bytes"].contains(&unit));
                match &root[name] {
                    Value::Number(_) => {}
                    Value::Array(values) => {
                        assert!(values.len() <= 100 && values.iter().all(Value::is_number));
                    }
                    other => panic!("metric {name} has no numeric value: {other}"),
                }
            }
        }
        root
    }

    #[test]
    fn a_run_s_metrics_make_one_valid_document_under_both_dimension_sets() {
        let mut emf = Emf::new(
            1_700_000_000_000,
            &[
                ("Lane", "fsx:fs-0123456789abcdef0"),
                ("Outcome", "succeeded"),
            ],
            &[&["Lane", "Outcome"], &["Outcome"]],
        );
        emf.add(RUNS, Unit::Count, 1.0)
            .add(RUN_DURATION, Unit::Seconds, 42.0)
            .add(BYTES, Unit::Bytes, 1e9);
        let [document] = emf.documents().try_into().unwrap();
        let root = assert_valid(&document);
        assert_eq!(
            root["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Lane", "Outcome"], ["Outcome"]])
        );
        assert_eq!(root["Lane"], "fsx:fs-0123456789abcdef0");
        assert_eq!(root[RUNS], 1.0);
        assert_eq!(root[BYTES], 1e9);
        assert!(!document.contains('\n'), "one line");
    }

    #[test]
    fn many_values_are_lists_of_at_most_100_over_several_documents() {
        let mut emf = Emf::new(1, &[("Lane", "fsx:fs-0123456789abcdef0")], &[&["Lane"]]);
        for i in 0..250 {
            emf.add(JOB_WAIT, Unit::Seconds, f64::from(i));
        }
        emf.add(BACKLOG, Unit::Count, 7.0);
        let documents = emf.documents();
        assert_eq!(documents.len(), 3);
        let roots: Vec<Value> = documents.iter().map(|d| assert_valid(d)).collect();
        let waits: usize = roots
            .iter()
            .map(|r| r[JOB_WAIT].as_array().map_or(1, Vec::len))
            .sum();
        assert_eq!(waits, 250, "every value, once");
        let backlogs = roots.iter().filter(|r| r.get(BACKLOG).is_some()).count();
        assert_eq!(backlogs, 1, "a single-valued metric is not repeated");
    }

    #[test]
    fn namespaces_follow_the_specification_s_pattern() {
        assert!(valid_namespace("Ferry/prod-stack_1.a#b:c"));
        for bad in ["", "Ferry stack", "Ferry/é", &"x".repeat(257)] {
            assert!(!valid_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn no_dimension_long_values_and_nothing_to_say() {
        let long = "x".repeat(5_000);
        let mut emf = Emf::new(1, &[("Lane", &long)], &[&["Lane"], &[]]);
        assert!(emf.documents().is_empty(), "no metric, no document");
        emf.add(OLDEST_PENDING, Unit::Seconds, f64::NAN);
        assert!(emf.documents().is_empty(), "not a number: left out");
        emf.add(OLDEST_PENDING, Unit::Seconds, 30.0);
        let [document] = emf.documents().try_into().unwrap();
        let root = assert_valid(&document);
        assert_eq!(root["Lane"].as_str().unwrap().chars().count(), 1024);
        assert_eq!(
            root["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Lane"], []])
        );
    }
}
