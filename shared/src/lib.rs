//! Ferry: move data between Amazon S3 and file systems on AWS with event-driven Lambda functions.
//!
//! This crate (the `shared/` folder) is everything the binaries under `functions/` run; each
//! binary only names its adapters and its handler and hands them to [`runtime::serve`], which
//! reads the configuration, loads the AWS configuration and runs the handler.
//!
//! # Layout
//!
//! One home for each concept; the folders say what is where.
//!
//! - [`domain`]: the job spec and its validation, DataSync task definitions Ferry ensures,
//!   task handles and the normalized status, adaptive polling, idempotency keys, input parsing
//!   with field paths, bounded text. Pure: no AWS calls.
//! - [`budget`]: byte budgets: what every payload crossing a boundary (a state, an item, a
//!   transaction, a message, an answer) may weigh, measured from its serialized bytes.
//! - [`ids`]: identifiers parsed once (file system ids, DataSync and SNS ARNs, `s3://` URLs):
//!   every ARN and URL is split there and nowhere else.
//! - [`error`]: [`FerryError`] and the stable `error_type`s the state machine matches on.
//! - [`config`]: every function's configuration, read from the environment by one reader.
//! - [`ports`]: every port trait (start, describe, cancel a task; start an execution, write an
//!   object; publish, read reports), grouped by the function that uses it.
//! - [`handlers`]: the Lambda entry points and their input/output types, one file per function.
//! - [`metrics`]: CloudWatch metrics in the Embedded Metric Format (one log line each).
//! - [`lanes`]: where tasks run one at a time (a file system, a DataSync task), job ids, and
//!   the merging of pending jobs into one run.
//! - [`trigger`]: `s3-trigger`'s logic: event envelopes, key decoding, routes, coalescing.
//! - [`notify`]: `notify`'s logic: the completion report, SNS messages, failure-report digests.
//! - [`aws`]: the adapters of the ports over the AWS SDK, each with its tests beside it, and
//!   how SDK errors are classified and retried.
//! - [`runtime`]: the composition root: [`runtime::serve`] (logging, configuration, the AWS
//!   configuration, the event loop), the clock.
//! - `fakes` (feature `test-util`): in-memory fakes of the ports, for tests.

pub mod aws;
pub mod budget;
pub mod config;
pub mod domain;
pub mod error;
pub mod handlers;
pub mod ids;
pub mod lanes;
pub mod metrics;
pub mod notify;
pub mod ports;
pub mod runtime;
pub mod trigger;

#[cfg(feature = "test-util")]
pub mod fakes;

pub use error::FerryError;
