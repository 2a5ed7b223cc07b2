//! `s3-trigger`'s adapter: Step Functions `StartExecution` and S3 `PutObject` (manifests).

use aws_sdk_s3 as s3;
use aws_sdk_sfn as sfn;

use aws_smithy_mocks::{Rule, mock};
use aws_smithy_types::DateTime;

use crate::aws::AwsTrigger;
use crate::aws::test_support::*;
use crate::ids::StateMachineArn;
use crate::ports::{PutObject, StartExecution, StartOutcome};

const SM: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry";

fn ports(sfn_rules: &[&Rule], s3_rules: &[&Rule]) -> AwsTrigger {
    AwsTrigger::from_clients(
        mock_client_of!(sfn, sfn_rules),
        mock_client_of!(s3, s3_rules),
        StateMachineArn::parse(SM).unwrap(),
    )
}

#[tokio::test]
async fn start_execution_sends_name_input_and_state_machine() {
    let rule = mock!(sfn::Client::start_execution)
        .match_requests(|req| {
            req.state_machine_arn() == Some(SM)
                && req.name() == Some("route-abc")
                && req.input() == Some("{\"job\":{}}")
        })
        .then_output(|| {
            sfn::operation::start_execution::StartExecutionOutput::builder()
                .execution_arn(format!("{SM}:route-abc").replace(":stateMachine:", ":execution:"))
                .start_date(DateTime::from_secs(0))
                .build()
                .unwrap()
        });
    let started = ports(&[&rule], &[])
        .start_execution("route-abc", "{\"job\":{}}")
        .await
        .unwrap();
    assert_eq!(
        started,
        StartOutcome::Started {
            execution_arn: "arn:aws:states:us-east-1:111122223333:execution:ferry:route-abc".into()
        }
    );
    assert_eq!(rule.num_calls(), 1);
}

#[tokio::test]
async fn an_existing_execution_means_already_started() {
    use sfn::operation::start_execution::StartExecutionError as E;
    let exists = sfn::types::error::ExecutionAlreadyExists::builder()
        .message("exists")
        .build();
    let rule =
        mock!(sfn::Client::start_execution).then_error(once(E::ExecutionAlreadyExists(exists)));
    let started = ports(&[&rule], &[]).start_execution("n", "{}").await;
    assert_eq!(started.unwrap(), StartOutcome::AlreadyStarted);
}

#[tokio::test]
async fn start_execution_errors_map_to_stable_error_types() {
    use sfn::operation::start_execution::StartExecutionError as E;
    use sfn::types::error as se;
    assert_error_types(
        mock!(sfn::Client::start_execution),
        async |rule| ports(&[rule], &[]).start_execution("n", "{}").await,
        vec![
            (
                E::ExecutionLimitExceeded(se::ExecutionLimitExceeded::builder().build()),
                "LimitExceeded",
            ),
            (
                E::StateMachineDoesNotExist(se::StateMachineDoesNotExist::builder().build()),
                "NotFound",
            ),
            (
                E::InvalidExecutionInput(se::InvalidExecutionInput::builder().build()),
                "InvalidJob",
            ),
            (
                E::InvalidName(se::InvalidName::builder().build()),
                "InvalidJob",
            ),
            (E::generic(code("ThrottlingException")), "Throttled"),
            (E::generic(code("InternalFailure")), "AwsService"),
        ],
    )
    .await;
}

#[tokio::test]
async fn put_object_writes_the_manifest() {
    use s3::operation::put_object::PutObjectError as E;
    let rule = mock!(s3::Client::put_object)
        .match_requests(|req| {
            req.bucket() == Some("ferry-data")
                && req.key() == Some("ferry-manifests/x.csv")
                && req.content_type() == Some("text/csv")
                // Only a bucket of the state machine's account; its own ACL, encryption
                // and storage class settings apply.
                && req.expected_bucket_owner() == Some("111122223333")
                && req.acl().is_none()
                && req.grant_full_control().is_none()
                && req.grant_read().is_none()
                && req.server_side_encryption().is_none()
                && req.ssekms_key_id().is_none()
                && req.storage_class().is_none()
        })
        .then_output(|| s3::operation::put_object::PutObjectOutput::builder().build());
    ports(&[], &[&rule])
        .put_object(
            &object("ferry-data", "ferry-manifests/x.csv"),
            b"a\nb\n".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 1);
    assert_error_types(
        mock!(s3::Client::put_object),
        async |rule| {
            let object = object("reports", "k");
            ports(&[], &[rule]).put_object(&object, vec![]).await
        },
        vec![
            (E::generic(code("NoSuchBucket")), "NotFound"),
            (E::generic(code("SlowDown")), "Throttled"),
        ],
    )
    .await;
}

#[tokio::test]
async fn the_routes_object_is_read_from_our_own_account_within_its_budget() {
    use crate::ports::ReadRoutes;
    use s3::operation::get_object::{GetObjectError, GetObjectOutput};
    let routes = r#"[{"name": "r"}]"#;
    let (rule, seen) = capturing(mock!(s3::Client::get_object), move || {
        GetObjectOutput::builder()
            .body(s3::primitives::ByteStream::from_static(routes.as_bytes()))
            .build()
    });
    let object = object("ferry-config", "routes.json");
    let text = ports(&[], &[&rule])
        .read_routes(&object, 1_048_576)
        .await
        .unwrap();
    assert_eq!(text, routes);
    let req = last(&seen);
    assert_eq!(
        (req.bucket(), req.key()),
        (Some("ferry-config"), Some("routes.json"))
    );
    assert_eq!(
        req.expected_bucket_owner(),
        Some("111122223333"),
        "a bucket of another account is refused by S3"
    );
    assert_eq!(
        req.range(),
        Some("bytes=0-1048576"),
        "one byte past the budget at most"
    );

    // Past the budget: refused, named.
    let long = mock!(s3::Client::get_object).then_output(|| {
        GetObjectOutput::builder()
            .body(s3::primitives::ByteStream::from(vec![b' '; 11]))
            .build()
    });
    let error = ports(&[], &[&long])
        .read_routes(&object, 10)
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "TooLarge");
    assert!(
        error.to_string().contains("s3://ferry-config/routes.json"),
        "{error}"
    );

    // No such object: NotFound, naming it.
    let missing = mock!(s3::Client::get_object)
        .then_error(|| GetObjectError::NoSuchKey(s3::types::error::NoSuchKey::builder().build()));
    let error = ports(&[], &[&missing])
        .read_routes(&object, 10)
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "NotFound");
    assert!(error.to_string().contains("routes.json"), "{error}");
}
