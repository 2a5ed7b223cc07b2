//! What the adapter tests share: mocked SDK clients with retries off (each test sees the
//! classification of exactly the error it scripted), valid jobs, rules that capture the request
//! an operation received, and a table runner for how scripted errors are classified.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use aws_smithy_mocks::{Rule, RuleBuilder};
use aws_smithy_types::error::ErrorMetadata;
use serde_json::{Value, json};

use crate::domain::idempotency::IdempotencyKey;
use crate::domain::job::{JobSpec, Limits, ValidJob};
use crate::domain::status::{TaskHandle, Timings};
use crate::error::FerryError;

pub const FS: &str = "fs-0123456789abcdef0";
pub const TASK_ID: &str = "task-0123456789abcdef0";
pub const DS_TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";
pub const DS_EXEC: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0123456789abcdef0";

/// A mocked client of SDK crate `$sdk` answering by `$rules`, retries off.
macro_rules! mock_client_of {
    ($sdk:ident, $rules:expr) => {
        aws_smithy_mocks::mock_client!($sdk, aws_smithy_mocks::RuleMode::MatchAny, $rules, |c| c
            .retry_config($sdk::config::retry::RetryConfig::disabled()))
    };
}
pub(crate) use mock_client_of;

pub fn valid(value: Value) -> ValidJob {
    serde_json::from_value::<JobSpec>(value)
        .expect("job parses")
        .validate(&Limits::default())
        .expect("job is valid")
}

pub fn key() -> IdempotencyKey {
    IdempotencyKey::derive(
        Some("exec-1"),
        &serde_json::from_value(export_job()).unwrap(),
    )
}

pub fn export_job() -> Value {
    json!({"name": "nightly-export", "kind": "fsx_export", "file_system_id": FS})
}

pub fn datasync_job() -> Value {
    json!({"name": "sync", "kind": "datasync", "task_arn": DS_TASK})
}

/// A task handle as the state machine passes it.
pub fn handle_of(value: Value) -> TaskHandle {
    serde_json::from_value(value).expect("handle parses")
}

/// Holds the last request an operation received.
pub type Seen<T> = Arc<Mutex<Option<T>>>;

/// Finishes `mock` (a `mock!(Client::operation)`) into a rule that keeps the last request it
/// receives and answers `output()`; read the request with [`last`].
pub fn capturing<I, O, E>(
    mock: RuleBuilder<I, O, E>,
    output: impl Fn() -> O + Send + Sync + 'static,
) -> (Rule, Seen<I>)
where
    I: Clone + Debug + Send + Sync + 'static,
    O: Debug + Send + Sync + 'static,
    E: Debug + Send + Sync + std::error::Error + 'static,
{
    let seen: Seen<I> = Arc::new(Mutex::new(None));
    let cell = seen.clone();
    let rule = mock.then_compute_output(move |req| {
        *cell.lock().unwrap() = Some(req.clone());
        output()
    });
    (rule, seen)
}

/// Every request a rule received, in order (a [`capturing`] that keeps them all).
pub fn capturing_all<I, O, E>(
    mock: RuleBuilder<I, O, E>,
    output: impl Fn() -> O + Send + Sync + 'static,
) -> (Rule, Arc<Mutex<Vec<I>>>)
where
    I: Clone + Debug + Send + Sync + 'static,
    O: Debug + Send + Sync + 'static,
    E: Debug + Send + Sync + std::error::Error + 'static,
{
    let seen: Arc<Mutex<Vec<I>>> = Arc::new(Mutex::new(Vec::new()));
    let cell = seen.clone();
    let rule = mock.then_compute_output(move |req| {
        cell.lock().unwrap().push(req.clone());
        output()
    });
    (rule, seen)
}

/// The last request a [`capturing`] rule received; panics when it received none.
pub fn last<T: Clone>(seen: &Seen<T>) -> T {
    seen.lock().unwrap().clone().expect("request seen")
}

/// An answer given once, for `then_error(once(error))`: a second call panics.
pub fn once<T: Send + 'static>(value: T) -> impl Fn() -> T + Send + Sync + 'static {
    let cell = Mutex::new(Some(value));
    move || cell.lock().unwrap().take().expect("called once")
}

/// Error metadata with only a code, for `E::generic(code("ThrottlingException"))`.
pub fn code(code: &str) -> ErrorMetadata {
    ErrorMetadata::builder().code(code).build()
}

/// Scripts `mock` (a `mock!(Client::operation)`) to answer each case's error once, in turn; for
/// each case, `call` runs the operation against that rule, which must be reached exactly once,
/// and the adapter must report the case's expected error type.
pub async fn assert_error_types<I, O, E, T: Debug>(
    mock: RuleBuilder<I, O, E>,
    call: impl AsyncFn(&Rule) -> Result<T, FerryError>,
    cases: Vec<(E, &'static str)>,
) where
    I: Debug + Send + Sync + 'static,
    O: Debug + Send + Sync + 'static,
    E: Debug + Send + Sync + std::error::Error + 'static,
{
    let expected: Vec<(String, &str)> = cases.iter().map(|(e, t)| (format!("{e:?}"), *t)).collect();
    let scripted = cases
        .into_iter()
        .fold(mock.sequence(), |s, (e, _)| s.error(once(e)));
    let rule = scripted.build();
    for (n, (error, expected)) in expected.into_iter().enumerate() {
        assert_eq!(error_type(call(&rule).await), expected, "{error}");
        assert_eq!(
            rule.num_calls(),
            n + 1,
            "{error}: the operation is called once"
        );
    }
}

/// The seconds of a snapshot's creation, start and end times.
pub fn secs(timings: &Timings) -> [Option<i64>; 3] {
    [timings.created_at, timings.started_at, timings.ended_at].map(|t| t.map(|t| t.0.secs()))
}

pub fn error_type(result: Result<impl std::fmt::Debug, FerryError>) -> &'static str {
    result.expect_err("expected an error").error_type()
}

/// `s3://bucket/key`, with a bucket name valid by construction in tests.
pub fn object(bucket: &str, key: &str) -> crate::ids::S3Url {
    let bucket = crate::ids::S3Bucket::parse(bucket).expect("bucket name");
    crate::ids::S3Url::new(&bucket, key)
}
