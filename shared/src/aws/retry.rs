//! How the AWS SDK retries Ferry's calls before an error reaches the state machine.
//!
//! Two layers retry: the SDK, inside one invocation, and the state machine, which invokes the
//! function again (`Throttled`, `AwsService`, Lambda errors; see `statemachine/ferry.asl.json`).
//! The SDK's layer is the cheap one: it costs a short sleep, where a state-machine retry costs
//! a new invocation, state transitions, and for `notify` a second copy of a report already
//! published. So the SDK gets enough attempts that a throttled call practically never gets
//! through to the state machine:
//!
//! * **Standard mode, 5 attempts** ([`MAX_ATTEMPTS`]). The SDK's default is standard mode with
//!   3 attempts ("Retry behavior", AWS SDKs and Tools Reference Guide; "Configuring retries in
//!   the AWS SDK for Rust"). With a fraction `p` of calls throttled, a call fails after `n`
//!   attempts with probability `p^n`: at 10 %, 1 in 1,000 calls with 3 attempts, 1 in 100,000
//!   with 5. A job makes tens of calls (start, each poll, two publishes), so 3 attempts would
//!   hand about one job in fifty to the state machine's retries. Throttling backoff starts at
//!   1 s and doubles, with full jitter: the four retries wait at most 15 s in all, within every
//!   function's Timeout (30 s or more in template.yaml).
//! * **Not adaptive mode.** The reference guide calls adaptive mode "appropriate only for
//!   specialized use-cases": its client-side rate limiter learns from one process's calls, and a
//!   Lambda instance makes a handful per invocation while its concurrent siblings learn nothing
//!   from it.
//! * `AWS_MAX_ATTEMPTS` or `AWS_RETRY_MODE` in a function's environment replaces Ferry's choice
//!   with the SDK's own resolution of those variables.
//! * **SNS `Throttled`.** The SNS API model names its throttling error `Throttled` (HTTP 429),
//!   which is not in the Rust SDK's list of throttling codes (aws-runtime's
//!   `THROTTLING_ERRORS`), is not modeled on `Publish`, and 429 is not among the status codes it
//!   retries (500, 502, 503, 504): without help, a throttled publish is never retried by the SDK.
//!   [`SnsThrottled`] classifies it as throttling on Ferry's SNS client.

use aws_config::retry::RetryConfig;
use aws_sdk_sns::operation::publish::PublishError;
use aws_smithy_runtime_api::client::interceptors::context::InterceptorContext;
use aws_smithy_runtime_api::client::retries::classifiers::{
    ClassifyRetry, RetryAction, RetryClassifierPriority,
};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// Attempts per AWS call: the first and up to four retries.
pub const MAX_ATTEMPTS: u32 = 5;

/// Environment variables with which an operator takes the retry choice back.
const OVERRIDES: [&str; 2] = ["AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE"];

/// Ferry's retry configuration, or `None` when the environment sets its own (`lookup` reads
/// an environment variable).
pub fn retry_config(lookup: impl Fn(&str) -> Option<String>) -> Option<RetryConfig> {
    if OVERRIDES
        .iter()
        .any(|name| lookup(name).is_some_and(|v| !v.trim().is_empty()))
    {
        return None;
    }
    Some(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
}

/// An SNS client from `config` that also retries SNS's own throttling error.
pub fn sns_client(config: &aws_config::SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(
        with_sns_throttling(aws_sdk_sns::config::Builder::from(config)).build(),
    )
}

/// Adds [`SnsThrottled`] to an SNS client configuration.
pub fn with_sns_throttling(builder: aws_sdk_sns::config::Builder) -> aws_sdk_sns::config::Builder {
    builder.retry_classifier(SnsThrottled)
}

/// Classifies SNS's `Throttled` error (HTTP 429) as throttling, so the retry strategy retries
/// it with throttling backoff like any other service's `ThrottlingException`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SnsThrottled;

impl ClassifyRetry for SnsThrottled {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else {
            return RetryAction::NoActionIndicated;
        };
        // 429 Too Many Requests is throttling whatever the body says; the code also covers an
        // answer that lost its status on the way (the botocore model: `Throttled`, 429).
        let too_many = ctx.response().is_some_and(|r| r.status().as_u16() == 429);
        let code = error
            .as_operation_error()
            .and_then(|e| e.downcast_ref::<PublishError>())
            .and_then(|e| e.code());
        if too_many || code == Some("Throttled") {
            RetryAction::throttling_error()
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "SNS Throttled"
    }

    fn priority(&self) -> RetryClassifierPriority {
        // After the SDK's own classifiers, which have nothing to say about this error.
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use aws_sdk_s3 as s3;
    use aws_sdk_sns as sns;
    use aws_smithy_mocks::{RuleMode, mock, mock_client};
    use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;

    use super::*;
    use crate::aws::AwsNotify;
    use crate::notify::message::SnsMessage;
    use crate::ports::Publish;

    /// SNS's answer to a throttled call (awsQuery error document; code and status from the
    /// botocore model).
    const THROTTLED: &str = "<ErrorResponse xmlns=\"http://sns.amazonaws.com/doc/2010-03-31/\">\
        <Error><Type>Sender</Type><Code>Throttled</Code><Message>Rate exceeded</Message></Error>\
        <RequestId>0f9e8c7a-1b2c-4d5e-8f90-123456789abc</RequestId></ErrorResponse>";

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn ferry_retries_each_call_five_times_in_standard_mode() {
        let config = retry_config(env(&[("AWS_REGION", "us-east-1")])).expect("Ferry's choice");
        assert_eq!(config.max_attempts(), MAX_ATTEMPTS);
        assert_eq!(config.mode(), aws_config::retry::RetryMode::Standard);
    }

    #[test]
    fn the_environment_can_take_the_choice_back() {
        assert!(retry_config(env(&[("AWS_MAX_ATTEMPTS", "10")])).is_none());
        assert!(retry_config(env(&[("AWS_RETRY_MODE", "adaptive")])).is_none());
        assert!(retry_config(env(&[("AWS_MAX_ATTEMPTS", " ")])).is_some());
    }

    fn message() -> SnsMessage {
        SnsMessage {
            topic_arn: "arn:aws:sns:us-east-1:111122223333:ferry-reports".into(),
            subject: "[Ferry] nightly-export SUCCEEDED".into(),
            body: "{}".into(),
            attributes: BTreeMap::from([("format".into(), "json".into())]),
        }
    }

    fn throttled() -> HttpResponse {
        HttpResponse::new(
            StatusCode::try_from(429).expect("valid status"),
            SdkBody::from(THROTTLED),
        )
    }

    /// Ferry's retry configuration with a short backoff, so the test does not sleep seconds.
    fn fast_retries(builder: sns::config::Builder) -> sns::config::Builder {
        builder.retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(1))
                .with_max_backoff(Duration::from_millis(5)),
        )
    }

    fn publish_rule(throttled_answers: usize) -> aws_smithy_mocks::Rule {
        mock!(sns::Client::publish)
            .sequence()
            .http_response(throttled)
            .times(throttled_answers)
            .output(|| {
                sns::operation::publish::PublishOutput::builder()
                    .message_id("m-1")
                    .build()
            })
            .build()
    }

    fn ports(sns: sns::Client) -> AwsNotify {
        let s3 = mock_client!(s3, RuleMode::MatchAny, &[]);
        AwsNotify::from_clients(sns, s3)
    }

    #[tokio::test]
    async fn a_throttled_publish_is_retried_by_the_sdk() {
        let rule = publish_rule(MAX_ATTEMPTS as usize - 1);
        let client = mock_client!(sns, RuleMode::Sequential, [&rule], |b| {
            with_sns_throttling(fast_retries(b))
        });
        let id = ports(client).publish(&message()).await.expect("published");
        assert_eq!(id, "m-1");
        assert_eq!(rule.num_calls(), MAX_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn a_publish_throttled_on_every_attempt_is_throttled_for_the_state_machine() {
        let rule = publish_rule(MAX_ATTEMPTS as usize);
        let client = mock_client!(sns, RuleMode::Sequential, [&rule], |b| {
            with_sns_throttling(fast_retries(b))
        });
        let error = ports(client).publish(&message()).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
        assert_eq!(rule.num_calls(), MAX_ATTEMPTS as usize);
    }

    #[tokio::test]
    async fn without_the_classifier_the_sdk_does_not_retry_sns_throttling() {
        // Why SnsThrottled exists. Should a later SDK retry `Throttled` on its own, this test
        // fails and the classifier can go.
        let rule = publish_rule(1);
        let client = mock_client!(sns, RuleMode::Sequential, [&rule], fast_retries);
        let error = ports(client).publish(&message()).await.unwrap_err();
        assert_eq!(error.error_type(), "Throttled");
        assert_eq!(rule.num_calls(), 1);
    }
}
