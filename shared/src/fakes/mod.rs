//! In-memory fakes of every port in [`crate::ports`], for tests (feature `test-util`; never in a
//! deployed binary).
//!
//! - [`FakeTasks`] (start, describe, cancel a task) behaves like the services where Ferry depends
//!   on it: one task per idempotency key, ids in the services' formats, lifecycles a test moves
//!   forward, cancellation that is a no-op on an ended task, and scripted failures.
//! - [`FakeTrigger`] (start an execution, write an object): one execution per name, as Step
//!   Functions' standard workflows; scripted start and write failures.
//! - [`FakeNotify`] (publish, read reports): records what is published, serves the objects a
//!   test puts; scripted publish failures and denied reads.
//! - [`FakeLanes`] (the lane table): the adapter's conditions, in memory.
//!
//! Each fake is a child module (`tasks.rs`, `trigger.rs`, `notify.rs`, `lanes.rs`); here are
//! what they share: their state behind a lock, scripted failures, and the virtual clock.

use std::cell::Cell;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{AwsError, FerryError};
use crate::lanes::record::Millis;

mod lanes;
mod notify;
mod tasks;
mod trigger;

pub use lanes::FakeLanes;
pub use notify::FakeNotify;
pub use tasks::{FakeTask, FakeTasks};
pub use trigger::FakeTrigger;

/// A fake's state behind a lock. A test that panicked while holding it already failed; the
/// data stays usable. Clones share it (a test hands a clone to a handler's ports and reads the
/// original).
#[derive(Debug, Default)]
struct Shared<T>(Arc<Mutex<T>>);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Arc::clone(&self.0))
    }
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A failure to script into the next start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeFailure {
    Conflict,
    Throttled,
    NotFound,
    LimitExceeded,
    Internal,
}

impl FakeFailure {
    fn into_error(self) -> FerryError {
        let aws = |code: &str| AwsError {
            operation: "FakeStart",
            code: Some(code.to_owned()),
            summary: format!("{code}: injected by FakeTasks"),
            source: format!("{code}: injected by FakeTasks").into(),
        };
        match self {
            FakeFailure::Conflict => FerryError::TaskConflict {
                message: "An existing data repository task is currently executing".into(),
                source: Some(aws("DataRepositoryTaskExecuting")),
            },
            FakeFailure::Throttled => FerryError::Throttled {
                source: aws("ThrottlingException"),
            },
            FakeFailure::NotFound => FerryError::NotFound {
                message: "file system not found".into(),
                source: Some(aws("FileSystemNotFound")),
            },
            FakeFailure::LimitExceeded => FerryError::LimitExceeded {
                source: aws("ServiceLimitExceeded"),
            },
            FakeFailure::Internal => FerryError::AwsService {
                source: aws("InternalServerError"),
            },
        }
    }
}

thread_local! {
    static VIRTUAL_NOW: Cell<Option<Millis>> = const { Cell::new(None) };
}

/// Sets this thread's clock for [`crate::runtime::now_millis`] (`None`: the wall clock again).
pub fn set_virtual_now(now: Option<Millis>) {
    VIRTUAL_NOW.with(|c| c.set(now));
}

/// This thread's virtual clock, if a test set one.
pub fn virtual_now() -> Option<Millis> {
    VIRTUAL_NOW.with(Cell::get)
}
