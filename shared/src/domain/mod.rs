//! Ferry's domain: what a job is, when it is valid, how a task's status reads and how often to
//! ask for it. Pure: nothing here calls AWS (the SDK's enums are used only for their lists of
//! valid values).
//!
//! - [`job`]: the job spec, [`job::ValidJob`] and its per-service parts.
//! - [`validate`]: every rule a job must satisfy, each citing the API fact it enforces.
//! - [`status`]: task handles and the normalized status every function after a start speaks.
//! - [`poll`]: the adaptive polling schedule and its cost.
//! - [`task_definition`]: DataSync tasks Ferry ensures itself (`CreateTask`): the definition,
//!   its rules and what ensuring it takes.
//! - [`idempotency`]: the keys that make a retried start return the task it already started.
//! - [`parse`]: serde with field paths, for every input Ferry reads.
//! - [`text`]: bounded text and hex digests.
//! - [`access`]: the access policy: which verified caller may submit or cancel which jobs.
//! - [`links`]: how a file system is linked to S3, and whether an FSx job fits its links.

pub mod access;
pub mod idempotency;
pub mod job;
pub mod links;
pub mod outcome;
pub mod parse;
pub mod paths;
pub mod poll;
pub mod rerun;
pub mod status;
pub mod task_definition;
pub mod text;
pub mod validate;
