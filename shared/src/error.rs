//! Errors shared by every function, and the stable `error_type`s the state machine matches on.
//!
//! The Step Functions definition retries and catches on `Diagnostic.error_type`, so the strings
//! returned by [`FerryError::error_type`] are part of Ferry's contract: never rename them.

use std::fmt;

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use lambda_runtime::Diagnostic;

use crate::domain::text::truncate_bytes;

/// A configuration variable is unset where it is required, or set to something unusable
/// (`crate::config` reads them; the error lives here, at the floor, so that `FerryError` can
/// carry it without reaching up into configuration).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {variable}: {problem}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub problem: String,
}

/// The error type every handler returns.
#[derive(Debug, thiserror::Error)]
pub enum FerryError {
    /// The job spec or the function input is invalid. Never retried.
    #[error("invalid job: {0}")]
    InvalidJob(#[from] FieldErrors),

    /// The deployment is missing something this invocation needs (a setting read at cold start
    /// is checked there; this is what only a particular input reveals, such as a report with no
    /// topic to go to). Never retried: an operator must change the deployment.
    #[error("configuration: {0}")]
    Configuration(#[from] ConfigError),

    /// The service rejected the request as invalid (FSx `BadRequest`, `UnsupportedOperation`,
    /// `IncompatibleParameterError`; DataSync `InvalidRequestException`). Reported as
    /// `InvalidJob`: retrying the same request cannot succeed.
    #[error("rejected by AWS: {source}")]
    Rejected {
        #[source]
        source: AwsError,
    },

    /// The invocation is not an event this function understands (or a record in it is
    /// malformed). Never retried as is.
    #[error("invalid event: {message}")]
    InvalidEvent { message: String },

    /// Another task holds the resource: FSx `DataRepositoryTaskExecuting`, or a DataSync task that
    /// already has an active or queued execution. Retried later, with backoff, for hours.
    #[error("task conflict: {message}")]
    TaskConflict {
        message: String,
        #[source]
        source: Option<AwsError>,
    },

    /// A service quota refused the request (FSx `ServiceLimitExceeded`). Retried slowly: waiting
    /// for running tasks to end frees the quota; a hard quota ends in "could not start".
    #[error("service limit exceeded: {source}")]
    LimitExceeded {
        #[source]
        source: AwsError,
    },

    /// The service throttled the request even after the SDK's own retries. Retried soon.
    #[error("throttled: {source}")]
    Throttled {
        #[source]
        source: AwsError,
    },

    /// The runner no longer holds its lane's lease (it expired and another runner took the
    /// lane, or it was handed over). The runner stops; the lane's new owner carries on.
    #[error("lease lost: {lane} is no longer held by {owner}")]
    LeaseLost { lane: String, owner: String },

    /// The file system, DataSync task or execution does not exist. Never retried.
    #[error("not found: {message}")]
    NotFound {
        message: String,
        #[source]
        source: Option<AwsError>,
    },

    /// A payload Ferry was about to write or answer is over its byte budget
    /// ([`crate::budget`]): refused here, before AWS would refuse it (a Step Functions state
    /// over 256 KiB fails its execution beyond any `Catch`). Never retried: the same input
    /// weighs the same again.
    #[error("too large: {0}")]
    TooLarge(#[from] crate::budget::Oversize),

    /// Whether acting would do something twice cannot be told within Ferry's bounds (a start
    /// retried after its first attempt stopped, with more DataSync executions to search than
    /// one invocation reads): Ferry does not act. Never retried: the same search ends the same.
    #[error("cannot tell: {message}")]
    Indeterminate { message: String },

    /// The access policy allows no such request from this verified caller (or there is no
    /// policy, or no verified caller): the message names the caller, what it asked and what its
    /// rules lack (`domain::access`). Never retried.
    #[error("access denied: {message}")]
    AccessDenied { message: String },

    /// Any other AWS failure (network, 5xx, an unexpected error code). Retried a few times.
    #[error("AWS service error: {source}")]
    AwsService {
        #[source]
        source: AwsError,
    },
}

impl FerryError {
    /// Every `error_type` [`FerryError::error_type`] returns: the only names of Ferry's that the
    /// state machine (`statemachine/build.py`) may retry or catch.
    pub const ERROR_TYPES: [&'static str; 12] = [
        "InvalidJob",
        "InvalidEvent",
        "Configuration",
        "TaskConflict",
        "LimitExceeded",
        "Throttled",
        "NotFound",
        "LeaseLost",
        "TooLarge",
        "Indeterminate",
        "AccessDenied",
        "AwsService",
    ];

    /// The stable `error_type` reported to Lambda, matched by the state machine's Retry/Catch.
    pub fn error_type(&self) -> &'static str {
        match self {
            FerryError::InvalidJob(_) | FerryError::Rejected { .. } => "InvalidJob",
            FerryError::InvalidEvent { .. } => "InvalidEvent",
            FerryError::Configuration(_) => "Configuration",
            FerryError::TaskConflict { .. } => "TaskConflict",
            FerryError::LimitExceeded { .. } => "LimitExceeded",
            FerryError::Throttled { .. } => "Throttled",
            FerryError::NotFound { .. } => "NotFound",
            FerryError::LeaseLost { .. } => "LeaseLost",
            FerryError::TooLarge(_) => "TooLarge",
            FerryError::Indeterminate { .. } => "Indeterminate",
            FerryError::AccessDenied { .. } => "AccessDenied",
            FerryError::AwsService { .. } => "AwsService",
        }
    }

    /// Shorthand for an invalid-job error about one field.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FerryError::InvalidJob(FieldErrors::one(field, problem))
    }
}

/// Longest Lambda error message Ferry returns, in bytes. Messages echo the offending input
/// (`got "..."`), and Step Functions puts the message in the error's `Cause`, inside a state
/// payload limited to 256 KiB: a job with a 6 MB name must still reach "could not start".
pub const MAX_ERROR_MESSAGE_BYTES: usize = 8 * 1024;

impl From<FerryError> for Diagnostic {
    fn from(error: FerryError) -> Diagnostic {
        Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: truncate_bytes(error_chain(&error), MAX_ERROR_MESSAGE_BYTES),
        }
    }
}

/// `error` and its sources, joined with ": ", so the Lambda error message says what AWS said.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// One rule broken by one field of the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Path of the field in the input, e.g. `job.paths[3]`.
    pub field: String,
    /// What was expected, and what was found.
    pub problem: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.problem)
    }
}

/// Every problem found in an input (a job, a function's input, the routes), so a user fixes
/// them all in one round trip.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FieldErrors {
    pub errors: Vec<FieldError>,
}

impl FieldErrors {
    pub fn one(field: impl Into<String>, problem: impl Into<String>) -> Self {
        FieldErrors {
            errors: vec![FieldError {
                field: field.into(),
                problem: problem.into(),
            }],
        }
    }

    /// True when some error names `field` (exactly, or one of its elements or members).
    pub fn mentions(&self, field: &str) -> bool {
        self.errors.iter().any(|e| {
            e.field == field
                || e.field
                    .strip_prefix(field)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

/// An AWS SDK error, kept whole as the source, with the parts Ferry classifies on.
#[derive(Debug, thiserror::Error)]
#[error("{operation}: {summary}")]
pub struct AwsError {
    /// The API operation, e.g. `CreateDataRepositoryTask`.
    pub operation: &'static str,
    /// The service's error code (`DataRepositoryTaskExecuting`), when the service answered.
    pub code: Option<String>,
    /// `code: message`, or the SDK's description of a failure to reach the service.
    pub summary: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl AwsError {
    /// Wraps an SDK error for `operation`, keeping it as the source.
    pub fn new<E, R>(operation: &'static str, error: SdkError<E, R>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
        R: fmt::Debug + Send + Sync + 'static,
    {
        let code = error.code().map(str::to_owned);
        let summary = match (error.code(), error.message()) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            (Some(code), None) => code.to_owned(),
            _ => DisplayErrorContext(&error).to_string(),
        };
        AwsError {
            operation,
            code,
            summary,
            source: Box::new(error),
        }
    }

    /// A response that lacks what the API reference promises (e.g. no task id).
    pub fn malformed(operation: &'static str, what: &str) -> Self {
        AwsError::local(operation, format!("malformed response: {what}"))
    }

    /// The SDK refused to build a request Ferry assembled (a field the API requires is missing).
    pub fn request(operation: &'static str, error: impl fmt::Display) -> Self {
        AwsError::local(operation, format!("could not build the request: {error}"))
    }

    fn local(operation: &'static str, summary: String) -> Self {
        AwsError {
            operation,
            code: None,
            source: summary.clone().into(),
            summary,
        }
    }

    /// The service's message without the code, when it sent one.
    pub fn message(&self) -> &str {
        match &self.code {
            Some(code) => self
                .summary
                .strip_prefix(code.as_str())
                .and_then(|rest| rest.strip_prefix(": "))
                .unwrap_or(&self.summary),
            None => &self.summary,
        }
    }

    /// True when the code is one of the throttling codes AWS services use. The list is the one
    /// the SDK's own retry classifier treats as throttling (aws-smithy-runtime `THROTTLING_ERRORS`).
    pub fn is_throttling(&self) -> bool {
        const THROTTLING: &[&str] = &[
            "Throttling",
            "ThrottlingException",
            "ThrottledException",
            "RequestThrottledException",
            "TooManyRequestsException",
            "ProvisionedThroughputExceededException",
            "TransactionInProgressException",
            "RequestLimitExceeded",
            "BandwidthLimitExceeded",
            "LimitExceededException",
            "RequestThrottled",
            "SlowDown",
            "PriorRequestNotComplete",
            "EC2ThrottledException",
        ];
        self.code
            .as_deref()
            .is_some_and(|c| THROTTLING.contains(&c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aws() -> AwsError {
        AwsError {
            operation: "Test",
            code: None,
            summary: "test".into(),
            source: Box::new(std::io::Error::other("test")),
        }
    }

    #[test]
    fn error_types_lists_every_type_an_error_can_have() {
        let message = || "m".to_owned();
        let every_variant = [
            FerryError::invalid("f", "p"),
            FerryError::Configuration(ConfigError {
                variable: "X",
                problem: message(),
            }),
            FerryError::Rejected { source: aws() },
            FerryError::InvalidEvent { message: message() },
            FerryError::TaskConflict {
                message: message(),
                source: None,
            },
            FerryError::LimitExceeded { source: aws() },
            FerryError::Throttled { source: aws() },
            FerryError::LeaseLost {
                lane: message(),
                owner: message(),
            },
            FerryError::NotFound {
                message: message(),
                source: None,
            },
            FerryError::TooLarge(crate::budget::Oversize {
                what: message(),
                bytes: 2,
                limit: 1,
            }),
            FerryError::Indeterminate { message: message() },
            FerryError::AccessDenied { message: message() },
            FerryError::AwsService { source: aws() },
        ];
        let types: std::collections::BTreeSet<_> =
            every_variant.iter().map(FerryError::error_type).collect();
        let listed: std::collections::BTreeSet<_> = FerryError::ERROR_TYPES.into_iter().collect();
        assert_eq!(types, listed);
    }

    /// A name the definition retries or catches that no step can raise is a policy that never
    /// applies (a typo such as "LeaseLosts" leaves a lost lease to `States.ALL`).
    #[test]
    fn the_runner_definition_matches_only_errors_that_exist() {
        fn names(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::Array(errors)) = map.get("ErrorEquals") {
                        found.extend(errors.iter().filter_map(|e| e.as_str().map(str::to_owned)));
                    }
                    map.values().for_each(|v| names(v, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| names(v, found)),
                _ => {}
            }
        }
        let definition: serde_json::Value =
            serde_json::from_str(include_str!("../../statemachine/ferry.asl.json")).unwrap();
        let mut found = Vec::new();
        names(&definition, &mut found);
        assert!(found.len() > 100, "{} names", found.len());
        // Lambda's own errorTypes for a crashed or timed-out instance; Step Functions' and its
        // service integrations' names are prefixed.
        let runtime = ["Runtime.ExitError", "Sandbox.Timedout"];
        let unknown: Vec<_> = found
            .iter()
            .filter(|n| !FerryError::ERROR_TYPES.contains(&n.as_str()))
            .filter(|n| !runtime.contains(&n.as_str()))
            .filter(|n| {
                !["States.", "Lambda.", "StepFunctions."]
                    .iter()
                    .any(|p| n.starts_with(p))
            })
            .collect();
        assert!(unknown.is_empty(), "matched but never raised: {unknown:?}");
    }

    #[test]
    fn error_messages_are_bounded_for_step_functions() {
        let huge = FerryError::invalid("job.name", format!("got {:?}", "é".repeat(3_000_000)));
        let diagnostic = Diagnostic::from(huge);
        assert_eq!(diagnostic.error_type, "InvalidJob");
        assert!(diagnostic.error_message.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(
            diagnostic
                .error_message
                .starts_with("invalid job: job.name: got")
        );
        assert!(diagnostic.error_message.ends_with("more bytes)"));
        let small = Diagnostic::from(FerryError::invalid("job.name", "is required"));
        assert_eq!(small.error_message, "invalid job: job.name: is required");
    }

    #[test]
    fn invalid_job_lists_every_field() {
        let error = FieldErrors {
            errors: vec![
                FieldError {
                    field: "job.paths[0]".into(),
                    problem: "must not contain '..'".into(),
                },
                FieldError {
                    field: "job.file_system_id".into(),
                    problem: "is required".into(),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "job.paths[0]: must not contain '..'; job.file_system_id: is required"
        );
        assert!(error.mentions("job.paths"));
        assert!(error.mentions("job.file_system_id"));
        assert!(!error.mentions("job.path"));
    }

    #[test]
    fn diagnostic_carries_stable_error_type() {
        let diagnostic: Diagnostic = FerryError::invalid("job.kind", "is required").into();
        assert_eq!(diagnostic.error_type, "InvalidJob");
        assert_eq!(
            diagnostic.error_message,
            "invalid job: job.kind: is required"
        );
    }
}
