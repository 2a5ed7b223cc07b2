//! [`FakeNotify`]: in-memory SNS and S3 reads for `notify`.

use std::collections::VecDeque;

use super::{FakeFailure, Shared};
use crate::error::{AwsError, FerryError};
use crate::ids::S3Url;
use crate::notify::message::SnsMessage;
use crate::ports::{Fetched, Publish, ReadReports};

/// In-memory SNS and S3 for `notify`: published messages are recorded, objects are whatever the
/// test puts in; publishes and reads can be made to fail.
#[derive(Debug, Default)]
pub struct FakeNotify {
    state: Shared<NotifyState>,
}

#[derive(Debug, Default)]
struct NotifyState {
    published: Vec<SnsMessage>,
    objects: std::collections::BTreeMap<(String, String), Vec<u8>>,
    fail_publishes: VecDeque<FakeFailure>,
    denied: bool,
    reads: Vec<(String, String)>,
}

impl FakeNotify {
    pub fn new() -> Self {
        FakeNotify::default()
    }

    /// Puts an object into the fake bucket.
    pub fn put(&self, bucket: &str, key: &str, body: impl Into<Vec<u8>>) {
        self.state
            .lock()
            .objects
            .insert((bucket.to_owned(), key.to_owned()), body.into());
    }

    /// Messages published, in order.
    pub fn published(&self) -> Vec<SnsMessage> {
        self.state.lock().published.clone()
    }

    /// `(bucket, key)` of every object read or looked for.
    pub fn reads(&self) -> Vec<(String, String)> {
        self.state.lock().reads.clone()
    }

    /// Makes the next publish fail with `failure`.
    pub fn fail_next_publish(&self, failure: FakeFailure) {
        self.state.lock().fail_publishes.push_back(failure);
    }

    /// Every S3 read fails with AccessDenied.
    pub fn deny_reads(&self) {
        self.state.lock().denied = true;
    }

    fn access_denied(operation: &'static str) -> FerryError {
        FerryError::AwsService {
            source: AwsError {
                operation,
                code: Some("AccessDenied".into()),
                summary: "AccessDenied: Access Denied".into(),
                source: "AccessDenied: injected by FakeNotify".into(),
            },
        }
    }
}

impl Publish for FakeNotify {
    async fn publish(&self, message: &SnsMessage) -> Result<String, FerryError> {
        let mut state = self.state.lock();
        if let Some(failure) = state.fail_publishes.pop_front() {
            return Err(failure.into_error());
        }
        state.published.push(message.clone());
        Ok(format!("message-{}", state.published.len()))
    }
}

impl ReadReports for FakeNotify {
    async fn get_object(
        &self,
        object: &S3Url,
        max_bytes: usize,
    ) -> Result<Option<Fetched>, FerryError> {
        let mut state = self.state.lock();
        let (bucket, key) = (object.bucket().as_str(), object.key());
        state.reads.push((bucket.to_owned(), key.to_owned()));
        if state.denied {
            return Err(FakeNotify::access_denied("GetObject"));
        }
        Ok(state
            .objects
            .get(&(bucket.to_owned(), key.to_owned()))
            .map(|body| Fetched {
                cut: body.len() > max_bytes,
                body: body[..body.len().min(max_bytes)].to_vec(),
            }))
    }

    async fn list_keys(&self, prefix: &S3Url, max_keys: usize) -> Result<Vec<String>, FerryError> {
        let state = self.state.lock();
        let (bucket, prefix) = (prefix.bucket().as_str(), prefix.key());
        if state.denied {
            return Err(FakeNotify::access_denied("ListObjectsV2"));
        }
        Ok(state
            .objects
            .keys()
            .filter(|(b, k)| b == bucket && k.starts_with(prefix))
            .map(|(_, k)| k.clone())
            .take(max_keys)
            .collect())
    }
}
