//! [`FakeTrigger`]: in-memory Step Functions (executions, task tokens) and S3 writes, for the
//! entries and the runners' wakes.

use std::collections::{HashMap, VecDeque};

use super::{FakeFailure, Shared};
use crate::domain::links::Links;
use crate::error::FerryError;
use crate::ids::{FileSystemId, S3Url};
use crate::ports::{
    KeepRunnersWaiting, PutObject, ReadLinks, ReadRoutes, StartExecution, StartOutcome,
    TokenAnswer, WakeRunners,
};

/// In-memory Step Functions and S3 for `s3-trigger`: one execution per name, like a standard
/// workflow's execution names; scripted start failures.
#[derive(Debug, Default, Clone)]
pub struct FakeTrigger {
    state: Shared<TriggerState>,
}

#[derive(Debug, Default)]
struct TriggerState {
    executions: Vec<(String, serde_json::Value)>,
    /// Task tokens completed (SendTaskSuccess), with their output, in order.
    woken: Vec<(String, String)>,
    /// Heartbeats sent, per token.
    heartbeats: Vec<String>,
    /// Tokens whose task no longer waits (answered `Stale`).
    stale: Vec<String>,
    objects: Vec<(String, String, Vec<u8>)>,
    start_calls: u32,
    fail_starts: VecDeque<FakeFailure>,
    fail_puts: u32,
    /// Links by file system, for `submit`'s preflight; none set: links are not read.
    links: Option<Result<HashMap<FileSystemId, Links>, FakeFailure>>,
}

impl FakeTrigger {
    pub fn new() -> Self {
        FakeTrigger::default()
    }

    /// Executions started, in order, with their parsed input.
    pub fn executions(&self) -> Vec<(String, serde_json::Value)> {
        self.state.lock().executions.clone()
    }

    /// Objects written, as `(bucket, key, body)`.
    pub fn objects(&self) -> Vec<(String, String, Vec<u8>)> {
        self.state.lock().objects.clone()
    }

    pub fn start_calls(&self) -> u32 {
        self.state.lock().start_calls
    }

    /// Makes the next start fail with `failure`.
    pub fn fail_next_start(&self, failure: FakeFailure) {
        self.state.lock().fail_starts.push_back(failure);
    }

    /// Answers `read_links` with these links (a file system not among them: linked to
    /// nothing).
    pub fn set_links(&self, links: HashMap<FileSystemId, Links>) {
        self.state.lock().links = Some(Ok(links));
    }

    /// Makes every `read_links` fail with `failure`.
    pub fn fail_links(&self, failure: FakeFailure) {
        self.state.lock().links = Some(Err(failure));
    }

    /// Makes the next `count` writes fail.
    pub fn fail_next_puts(&self, count: u32) {
        self.state.lock().fail_puts += count;
    }
}

impl ReadLinks for FakeTrigger {
    async fn read_links(&self, file_system: &FileSystemId) -> Result<Option<Links>, FerryError> {
        match &self.state.lock().links {
            None => Ok(None),
            Some(Err(failure)) => Err(failure.into_error()),
            Some(Ok(by_fs)) => Ok(Some(by_fs.get(file_system).cloned().unwrap_or(
                Links::Associations {
                    associations: Vec::new(),
                },
            ))),
        }
    }
}

impl StartExecution for FakeTrigger {
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, FerryError> {
        let mut state = self.state.lock();
        state.start_calls += 1;
        if let Some(failure) = state.fail_starts.pop_front() {
            return Err(failure.into_error());
        }
        if state.executions.iter().any(|(n, _)| n == name) {
            return Ok(StartOutcome::AlreadyStarted);
        }
        let parsed =
            serde_json::from_str(input).map_err(|e| FerryError::invalid("input", e.to_string()))?;
        state.executions.push((name.to_owned(), parsed));
        Ok(StartOutcome::Started {
            execution_arn: format!("arn:aws:states:us-east-1:111122223333:execution:ferry:{name}"),
        })
    }
}

impl FakeTrigger {
    /// Tokens completed (SendTaskSuccess) and their output, in order.
    pub fn woken(&self) -> Vec<(String, String)> {
        self.state.lock().woken.clone()
    }

    /// Heartbeats sent, one token per heartbeat, in order.
    pub fn heartbeats(&self) -> Vec<String> {
        self.state.lock().heartbeats.clone()
    }

    /// Makes `token`'s task stop waiting: later calls with it answer `Stale`.
    pub fn expire_token(&self, token: &str) {
        self.state.lock().stale.push(token.to_owned());
    }
}

/// A token answers once, as Step Functions does: completed or expired, it is stale after.
impl WakeRunners for FakeTrigger {
    async fn wake_runner(&self, token: &str, output: &str) -> Result<TokenAnswer, FerryError> {
        let mut state = self.state.lock();
        if state.stale.iter().any(|t| t == token) {
            return Ok(TokenAnswer::Stale);
        }
        state.stale.push(token.to_owned());
        state.woken.push((token.to_owned(), output.to_owned()));
        Ok(TokenAnswer::Taken)
    }
}

impl KeepRunnersWaiting for FakeTrigger {
    async fn keep_waiting(&self, token: &str) -> Result<TokenAnswer, FerryError> {
        let mut state = self.state.lock();
        if state.stale.iter().any(|t| t == token) {
            return Ok(TokenAnswer::Stale);
        }
        state.heartbeats.push(token.to_owned());
        Ok(TokenAnswer::Taken)
    }
}

/// Routes objects are the objects written with `put_object` (the latest of a key wins).
impl ReadRoutes for FakeTrigger {
    async fn read_routes(&self, object: &S3Url, max_bytes: usize) -> Result<String, FerryError> {
        let state = self.state.lock();
        let found = state
            .objects
            .iter()
            .rev()
            .find(|(b, k, _)| b == object.bucket().as_str() && k == object.key());
        let Some((_, _, body)) = found else {
            return Err(FakeFailure::NotFound.into_error());
        };
        crate::budget::within(object.to_string(), body.len(), max_bytes)?;
        Ok(String::from_utf8_lossy(body).into_owned())
    }
}

impl PutObject for FakeTrigger {
    async fn put_object(&self, object: &S3Url, body: Vec<u8>) -> Result<(), FerryError> {
        let mut state = self.state.lock();
        if state.fail_puts > 0 {
            state.fail_puts -= 1;
            return Err(FakeFailure::Internal.into_error());
        }
        state
            .objects
            .push((object.bucket().to_string(), object.key().to_owned(), body));
        Ok(())
    }
}
