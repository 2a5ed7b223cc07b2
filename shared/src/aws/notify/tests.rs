//! `notify`'s adapter: SNS `Publish`, and S3 `GetObject` / `ListObjectsV2` for failure reports.

use std::collections::BTreeMap;

use aws_sdk_s3 as s3;
use aws_sdk_sns as sns;

use aws_smithy_mocks::{Rule, mock};

use crate::aws::AwsNotify;
use crate::aws::test_support::*;
use crate::notify::message::SnsMessage;
use crate::ports::{Fetched, Publish, ReadReports};

const TOPIC: &str = "arn:aws:sns:us-east-1:111122223333:ferry-reports";

fn ports(sns_rules: &[&Rule], s3_rules: &[&Rule]) -> AwsNotify {
    AwsNotify::from_clients(
        mock_client_of!(sns, sns_rules),
        mock_client_of!(s3, s3_rules),
    )
}

fn message() -> SnsMessage {
    SnsMessage {
        topic_arn: TOPIC.into(),
        subject: "[Ferry] nightly-export FAILED on fs-0123456789abcdef0".into(),
        body: "{\"schema\":\"ferry.completion-report/1\"}".into(),
        attributes: BTreeMap::from([
            ("format".into(), "json".into()),
            ("job".into(), "nightly-export".into()),
            ("kind".into(), "fsx_export".into()),
            ("status".into(), "FAILED".into()),
        ]),
    }
}

#[tokio::test]
async fn publish_sends_topic_subject_body_and_string_attributes() {
    let rule = mock!(sns::Client::publish)
        .match_requests(|req| {
            let attrs = req.message_attributes().cloned().unwrap_or_default();
            let attr = |name: &str| {
                attrs.get(name).map(|a| {
                    (
                        a.data_type().to_owned(),
                        a.string_value().map(str::to_owned),
                    )
                })
            };
            req.topic_arn() == Some(TOPIC)
                && req.subject() == Some("[Ferry] nightly-export FAILED on fs-0123456789abcdef0")
                && req.message() == Some("{\"schema\":\"ferry.completion-report/1\"}")
                && req.message_structure().is_none()
                && attrs.len() == 4
                && attr("status") == Some(("String".into(), Some("FAILED".into())))
                && attr("job") == Some(("String".into(), Some("nightly-export".into())))
                && attr("kind") == Some(("String".into(), Some("fsx_export".into())))
                && attr("format") == Some(("String".into(), Some("json".into())))
        })
        .then_output(|| {
            sns::operation::publish::PublishOutput::builder()
                .message_id("m-1")
                .build()
        });
    let id = ports(&[&rule], &[]).publish(&message()).await.unwrap();
    assert_eq!(id, "m-1");
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn publish_errors_map_to_stable_error_types() {
    use sns::operation::publish::PublishError as E;
    use sns::types::error as se;
    assert_error_types(
        mock!(sns::Client::publish),
        async |rule| ports(&[rule], &[]).publish(&message()).await,
        vec![
            (
                E::NotFoundException(se::NotFoundException::builder().build()),
                "NotFound",
            ),
            (
                E::InvalidParameterException(se::InvalidParameterException::builder().build()),
                "InvalidJob",
            ),
            (E::generic(code("Throttled")), "Throttled"),
            (
                E::KmsThrottlingException(se::KmsThrottlingException::builder().build()),
                "Throttled",
            ),
            (
                E::AuthorizationErrorException(se::AuthorizationErrorException::builder().build()),
                "AwsService",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_missing_report_is_none_and_a_denied_one_an_error() {
    use s3::operation::get_object::GetObjectError as E;
    let get = async |error: E| {
        let rule = mock!(s3::Client::get_object).then_error(once(error));
        ports(&[], &[&rule])
            .get_object(&object("reports", "k"), 10)
            .await
    };
    let missing = E::NoSuchKey(s3::types::error::NoSuchKey::builder().build());
    assert_eq!(get(missing).await.unwrap(), None);
    let denied = get(E::generic(code("AccessDenied"))).await;
    assert_eq!(error_type(denied), "AwsService");
    let empty = get(E::generic(code("InvalidRange"))).await;
    assert_eq!(
        empty.unwrap(),
        Some(Fetched {
            body: vec![],
            cut: false
        })
    );
}

#[tokio::test]
async fn get_object_reads_a_range_and_says_when_the_object_is_longer() {
    let rule = mock!(s3::Client::get_object)
        .match_requests(|req| {
            (req.bucket(), req.key(), req.range())
                == (Some("reports"), Some("r/failures.csv"), Some("bytes=0-9"))
        })
        .then_output(|| {
            s3::operation::get_object::GetObjectOutput::builder()
                .content_range("bytes 0-9/25")
                .body(s3::primitives::ByteStream::from_static(b"a,failed,E"))
                .build()
        });
    let fetched = ports(&[], &[&rule])
        .get_object(&object("reports", "r/failures.csv"), 10)
        .await
        .unwrap();
    assert_eq!(
        fetched,
        Some(Fetched {
            body: b"a,failed,E".to_vec(),
            cut: true
        })
    );
}

#[tokio::test]
async fn list_keys_follows_continuation_tokens() {
    use s3::operation::list_objects_v2::ListObjectsV2Output as Out;
    let listed = |k: &str| s3::types::Object::builder().key(k).build();
    let first = mock!(s3::Client::list_objects_v2)
        .match_requests(|req| {
            req.bucket() == Some("reports")
                && req.prefix() == Some("p/")
                && req.continuation_token().is_none()
        })
        .then_output(move || {
            Out::builder()
                .contents(listed("p/1"))
                .is_truncated(true)
                .next_continuation_token("t2")
                .build()
        });
    let second = mock!(s3::Client::list_objects_v2)
        .match_requests(|req| req.continuation_token() == Some("t2"))
        .then_output(move || {
            Out::builder()
                .contents(listed("p/2"))
                .is_truncated(false)
                .build()
        });
    let keys = ports(&[], &[&first, &second])
        .list_keys(&object("reports", "p/"), 10)
        .await
        .unwrap();
    assert_eq!(keys, ["p/1", "p/2"]);
}
