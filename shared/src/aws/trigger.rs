//! The entries' adapter (`s3-trigger`, `submit`): Step Functions `StartExecution` of runner
//! executions, S3 `PutObject` (`s3-trigger`'s DataSync manifests), and a file system's links
//! to S3 (`submit`'s preflight: `fsx::links`, kept [`LINKS_TTL`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use aws_sdk_s3::primitives::ByteStream;
use tracing::instrument;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::get_object::GetObjectError;

use super::{classify, fsx, s3_class, send, sfn};
use crate::budget;
use crate::config::{ConfigError, ENV_ROUTES_URL};
use crate::domain::links::Links;
use crate::error::FerryError;
use crate::ids::{FileSystemId, S3Url, StateMachineArn};
use crate::ports::{
    PutObject, ReadLinks, ReadRoutes, StartExecution, StartOutcome, TokenAnswer, WakeRunners,
};

/// How long a file system's links, once read, answer `submit`'s preflight: associations change
/// rarely, and a job submitted right after one changed is at worst let through (its task then
/// says what FSx says) or refused with the association list the read showed.
pub const LINKS_TTL: std::time::Duration = std::time::Duration::from_secs(60);
/// At most this many file systems' links are kept (the cache starts again past it).
const LINKS_KEPT: usize = 1_000;

type LinksCache = Arc<Mutex<HashMap<FileSystemId, (Instant, Links)>>>;

/// Starts executions of the runner state machine and writes manifests.
#[derive(Debug, Clone)]
pub struct AwsTrigger {
    sfn: aws_sdk_sfn::Client,
    s3: aws_sdk_s3::Client,
    /// None: links are not read (tests of the other ports).
    fsx: Option<aws_sdk_fsx::Client>,
    links: LinksCache,
    state_machine_arn: StateMachineArn,
    /// The account of the state machine: manifests are only written to buckets it owns.
    bucket_owner: Option<String>,
}

impl AwsTrigger {
    pub fn new(config: &aws_config::SdkConfig, state_machine_arn: StateMachineArn) -> Self {
        AwsTrigger::from_clients(
            aws_sdk_sfn::Client::new(config),
            aws_sdk_s3::Client::new(config),
            state_machine_arn,
        )
        .with_fsx(aws_sdk_fsx::Client::new(config))
    }

    /// Reads file systems' links with `fsx` (building a client does no I/O).
    pub fn with_fsx(mut self, fsx: aws_sdk_fsx::Client) -> Self {
        self.fsx = Some(fsx);
        self
    }

    pub fn from_clients(
        sfn: aws_sdk_sfn::Client,
        s3: aws_sdk_s3::Client,
        state_machine_arn: StateMachineArn,
    ) -> Self {
        AwsTrigger {
            sfn,
            s3,
            fsx: None,
            links: LinksCache::default(),
            bucket_owner: state_machine_arn.account_id(),
            state_machine_arn,
        }
    }
}

impl ReadLinks for AwsTrigger {
    async fn read_links(&self, file_system: &FileSystemId) -> Result<Option<Links>, FerryError> {
        let kept = self
            .links
            .lock()
            .ok()
            .and_then(|c| c.get(file_system).cloned());
        if let Some((read_at, links)) = kept
            && read_at.elapsed() < LINKS_TTL
        {
            return Ok(Some(links));
        }
        let Some(client) = &self.fsx else {
            return Ok(None);
        };
        let links = fsx::read_links(client, file_system).await?;
        if let Ok(mut cache) = self.links.lock() {
            if cache.len() >= LINKS_KEPT {
                cache.clear();
            }
            cache.insert(file_system.clone(), (Instant::now(), links.clone()));
        }
        Ok(Some(links))
    }
}

impl StartExecution for AwsTrigger {
    #[instrument(skip(self, input))]
    async fn start_execution(&self, name: &str, input: &str) -> Result<StartOutcome, FerryError> {
        sfn::start_execution(&self.sfn, &self.state_machine_arn, name, input).await
    }
}

/// A cancel wakes the run's runner waiting for its DataSync execution's end.
impl WakeRunners for AwsTrigger {
    async fn wake_runner(&self, token: &str, output: &str) -> Result<TokenAnswer, FerryError> {
        sfn::send_task_success(&self.sfn, token, output).await
    }
}

impl PutObject for AwsTrigger {
    /// Writes with the bucket owner's settings: no ACL (a bucket with Object Ownership "bucket
    /// owner enforced" refuses any but `bucket-owner-full-control`), no encryption or storage
    /// class (the bucket's defaults apply). `ExpectedBucketOwner` is Ferry's own account: S3
    /// answers 403 if the bucket belongs to another account (S3 user guide, "Verifying bucket
    /// ownership with bucket owner condition"), so a manifest listing the uploads never lands in
    /// a bucket someone else re-created under the configured name; and as writer and owner are
    /// one account, the owner owns the object under every Object Ownership setting.
    #[instrument(skip(self, body), fields(bytes = body.len()))]
    async fn put_object(&self, object: &S3Url, body: Vec<u8>) -> Result<(), FerryError> {
        const OP: &str = "PutObject";
        let request = self
            .s3
            .put_object()
            .bucket(object.bucket().as_str())
            .key(object.key())
            .set_expected_bucket_owner(self.bucket_owner.clone())
            .content_type("text/csv")
            .body(ByteStream::from(body))
            .send();
        send(OP, request, s3_class).await?;
        Ok(())
    }
}

/// `s3-trigger`'s routes object, read at cold start: at most `max_bytes + 1` bytes are asked
/// for (a range), so an object past the budget is refused without being read whole. The bucket
/// must be Ferry's own account's (`ExpectedBucketOwner`), as for manifests: routes from a bucket
/// someone else re-created under the configured name would decide what Ferry moves.
impl ReadRoutes for AwsTrigger {
    #[instrument(skip(self))]
    async fn read_routes(&self, object: &S3Url, max_bytes: usize) -> Result<String, FerryError> {
        const OP: &str = "GetObject";
        let request = self
            .s3
            .get_object()
            .bucket(object.bucket().as_str())
            .key(object.key())
            .set_expected_bucket_owner(self.bucket_owner.clone())
            .range(format!("bytes=0-{max_bytes}"))
            .send()
            .await;
        let output = match request {
            Ok(output) => output,
            Err(e) => {
                return match e.as_service_error() {
                    Some(GetObjectError::NoSuchKey(_)) => Err(FerryError::NotFound {
                        message: format!("{object}: no such object"),
                        source: None,
                    }),
                    // A range of an empty object is unsatisfiable: the routes are empty.
                    _ if e.code() == Some("InvalidRange") => Ok(String::new()),
                    _ => {
                        let class = e.as_service_error().and_then(s3_class);
                        Err(classify(OP, e, class))
                    }
                };
            }
        };
        let body = super::read_body(OP, output.body).await?;
        budget::within(format!("the routes object {object}"), body.len(), max_bytes)?;
        String::from_utf8(body).map_err(|e| {
            FerryError::Configuration(ConfigError {
                variable: ENV_ROUTES_URL,
                problem: format!("{object}: routes must be UTF-8 JSON: {e}"),
            })
        })
    }
}

#[cfg(test)]
mod tests;
