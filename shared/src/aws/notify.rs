//! `notify`'s adapters: SNS `Publish`, and S3 `GetObject` / `ListObjectsV2` for failure reports.

use aws_sdk_s3::operation::get_object::GetObjectError;
use aws_sdk_sns::operation::publish::PublishError;
use aws_sdk_sns::types::MessageAttributeValue;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use tracing::instrument;

use super::{Class, classify, response_id, s3_class, send};
use crate::error::{AwsError, FerryError};
use crate::ids::S3Url;
use crate::notify::message::SnsMessage;
use crate::ports::{Fetched, Publish, ReadReports};

/// Publishes reports and reads failure reports.
#[derive(Debug, Clone)]
pub struct AwsNotify {
    sns: aws_sdk_sns::Client,
    s3: aws_sdk_s3::Client,
}

impl AwsNotify {
    /// The SNS client also retries SNS's own throttling error (see [`super::retry`]).
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        AwsNotify::from_clients(
            super::retry::sns_client(config),
            aws_sdk_s3::Client::new(config),
        )
    }

    pub fn from_clients(sns: aws_sdk_sns::Client, s3: aws_sdk_s3::Client) -> Self {
        AwsNotify { sns, s3 }
    }
}

impl Publish for AwsNotify {
    #[instrument(skip(self, message), fields(topic = %message.topic_arn, bytes = message.size()))]
    async fn publish(&self, message: &SnsMessage) -> Result<String, FerryError> {
        const OP: &str = "Publish";
        let mut request = self
            .sns
            .publish()
            .topic_arn(&message.topic_arn)
            .subject(&message.subject)
            .message(&message.body);
        for (name, value) in &message.attributes {
            let attribute = MessageAttributeValue::builder()
                .data_type("String")
                .string_value(value)
                .build()
                .map_err(|e| FerryError::AwsService {
                    source: AwsError::request(OP, format_args!("message attribute {name}: {e}")),
                })?;
            request = request.message_attributes(name, attribute);
        }
        let output = send(OP, request.send(), |e| match e {
            PublishError::NotFoundException(_) => Some(Class::NotFound),
            PublishError::InvalidParameterException(_)
            | PublishError::InvalidParameterValueException(_)
            | PublishError::ValidationException(_) => Some(Class::Rejected),
            PublishError::KmsThrottlingException(_) => Some(Class::Throttled),
            // SNS's throttling error (`Throttled`) is not modeled on Publish; the client
            // retried it already (retry::SnsThrottled).
            _ if e.code() == Some("Throttled") => Some(Class::Throttled),
            _ => None,
        })
        .await?;
        response_id(OP, "MessageId", output.message_id(), |id| Ok(id.to_owned()))
    }
}

impl ReadReports for AwsNotify {
    #[instrument(skip(self))]
    async fn get_object(
        &self,
        object: &S3Url,
        max_bytes: usize,
    ) -> Result<Option<Fetched>, FerryError> {
        const OP: &str = "GetObject";
        let last = max_bytes.max(1) - 1;
        let output = match self
            .s3
            .get_object()
            .bucket(object.bucket().as_str())
            .key(object.key())
            .range(format!("bytes=0-{last}"))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                return match e.as_service_error() {
                    Some(GetObjectError::NoSuchKey(_)) => Ok(None),
                    // A range on an empty object is unsatisfiable: the report is empty.
                    _ if e.code() == Some("InvalidRange") => Ok(Some(Fetched {
                        body: Vec::new(),
                        cut: false,
                    })),
                    // Without s3:ListBucket, S3 answers AccessDenied for a missing key.
                    _ => Err(classify(OP, e, None)),
                };
            }
        };
        // `Content-Range: bytes 0-999/5000`: the total after the slash.
        let total = output
            .content_range()
            .and_then(|r| r.rsplit('/').next())
            .and_then(|t| t.parse::<u64>().ok());
        let body = super::read_body(OP, output.body).await?;
        let cut = total.is_some_and(|t| t > body.len() as u64) || body.len() > max_bytes;
        let mut body = body;
        body.truncate(max_bytes);
        Ok(Some(Fetched { body, cut }))
    }

    #[instrument(skip(self))]
    async fn list_keys(&self, prefix: &S3Url, max_keys: usize) -> Result<Vec<String>, FerryError> {
        const OP: &str = "ListObjectsV2";
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .s3
                .list_objects_v2()
                .bucket(prefix.bucket().as_str())
                .prefix(prefix.key())
                .set_continuation_token(token.take())
                .send();
            let output = send(OP, request, s3_class).await?;
            keys.extend(
                output
                    .contents()
                    .iter()
                    .filter_map(|o| o.key().map(str::to_owned)),
            );
            token = output.next_continuation_token().map(str::to_owned);
            if keys.len() >= max_keys || token.is_none() || output.is_truncated() != Some(true) {
                keys.truncate(max_keys);
                return Ok(keys);
            }
        }
    }
}

#[cfg(test)]
mod tests;
