use super::*;

const EXEC: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab";
const TASK: &str = "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0";

/// Asserts that `parse` accepts every value of `good` and refuses every value of `bad`.
fn sorts<T: fmt::Debug>(parse: impl Fn(&str) -> Result<T, IdError>, good: &[&str], bad: &[&str]) {
    for value in good {
        assert!(parse(value).is_ok(), "{value:?} is refused");
    }
    for value in bad {
        assert!(parse(value).is_err(), "{value:?} is accepted");
    }
}

#[test]
fn an_arn_is_split_into_its_six_parts() {
    let arn = Arn::parse("arn:aws:states:us-east-1:111122223333:stateMachine:ferry").unwrap();
    assert_eq!(
        (arn.partition(), arn.service(), arn.region(), arn.account()),
        ("aws", "states", "us-east-1", "111122223333")
    );
    assert_eq!(arn.account_id(), Some("111122223333"));
    assert_eq!(arn.resource(), "stateMachine:ferry");
    let bucket = Arn::parse("arn:aws-cn:s3:::my-bucket").unwrap();
    assert_eq!(
        (bucket.partition(), bucket.region(), bucket.account()),
        ("aws-cn", "", "")
    );
    assert_eq!(bucket.account_id(), None);
    let long = format!("arn:aws:s3:::{}", "b".repeat(3000));
    sorts(
        Arn::parse,
        &[],
        &[
            "",
            "arn",
            "arn:aws:s3",
            "arn:aws:s3:::",
            "nra:aws:s3:::b",
            "arn:gcp:s3:::b",
            "arn::s3:::b",
            "arn:aws::::b",
            "arn:aws:s3::: b",
            "arn:awsef0/execution/exec-5b:datasync:us-east-1:111122223333:task/task-0123456789abcdef0",
            "arn:aws-:s3:::b",
            "arn:aws:S3:::b",
            "arn:aws:s3:us_east_1::b",
            &long,
        ],
    );
    assert!(Arn::parse("arn:aws-iso-b:datasync:us-isob-east-1:111122223333:task/t").is_ok());
}

#[test]
fn file_system_and_task_ids_follow_the_api_patterns() {
    sorts(
        FileSystemId::parse,
        &["fs-0123456789abcdef0", "fs-01234567"],
        &[
            "fs-1",
            "fs-0123456789ABCDEF0",
            "fsx-0123456789",
            "fs-0123456789abcdef0123",
        ],
    );
    // The pattern (17+ lowercase hex digits) is the rule, not the model's looser minimum
    // length of 12, which would admit `task-` and 7 digits (issue 17, defect 6).
    sorts(
        FsxTaskId::parse,
        &["task-0123456789abcdef0", "task-0123456789abcdef0123"],
        &[
            "task-",
            "task-012345",
            "task-0123456",
            "task-0123456789abcdef",
            "task-0123456789ABCDEF0",
            "0123456789abcdef0",
            "task-0123456789abcdefg",
        ],
    );
}

#[test]
fn datasync_ids_have_at_most_17_hex_digits() {
    // A fuzz find: a task id of 60 digits passed, and the execution ARN built on it did not.
    let long = format!(
        "arn:aws:datasync:us-east-1:111122223333:task/task-{}",
        "e".repeat(60)
    );
    assert!(DataSyncTaskArn::parse(&long).is_err());
    assert!(
        DataSyncTaskArn::parse("arn:aws:datasync:us-east-1:111122223333:task/task-0123").is_ok()
    );
    assert!(
        DataSyncExecutionArn::parse(&format!("{TASK}/execution/exec-{}", "0".repeat(18))).is_err()
    );
}

#[test]
fn datasync_arns_are_told_apart_and_split() {
    // A fuzz find: a partition holding `/execution/` once split into the wrong ids.
    assert!(
        DataSyncExecutionArn::parse(
            "arn:awsef0/execution/exec-5b:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-5b"
        )
        .is_err()
    );
    let exec = DataSyncExecutionArn::parse(EXEC).unwrap();
    assert_eq!(exec.task_arn().as_str(), TASK);
    assert_eq!(
        exec.ids(),
        ("task-0123456789abcdef0", "exec-0a12a34ab112233ab")
    );
    assert_eq!(exec.region(), "us-east-1");
    let task = DataSyncTaskArn::parse(TASK).unwrap();
    assert_eq!(task.task_id(), "task-0123456789abcdef0");
    assert!(DataSyncTaskArn::parse(EXEC).is_err());
    let gov = "arn:aws-us-gov:datasync:us-gov-west-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab";
    sorts(
        DataSyncExecutionArn::parse,
        &[gov],
        &[
            TASK,
            "",
            "not an arn",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-1/extra",
            "arn:aws:datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-../x",
            "arn:aws:datasync:us-east-1:111122223333:location/loc-0123456789abcdef0",
            "arn:aws:fsx:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab",
            "arn::datasync:us-east-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab",
            "arn:aws:datasync:us-east-1:1111:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab",
            "arn:aws:datasync:US-EAST-1:111122223333:task/task-0123456789abcdef0/execution/exec-0a12a34ab112233ab",
            "arn:aws:datasync:us-east-1:111122223333:task/exec-0a12a34ab112233ab/execution/task-0123456789abcdef0",
            "arn:aws:datasync:us-east-1:111122223333:task/task-01/execution/exec-",
        ],
    );
}

#[test]
fn one_topic_rule_for_every_topic() {
    let bad = [
        "arn:aws:sns:us-east-1:111122223333:",
        "arn:aws:sns::111122223333:t",
        "arn:aws:sns:us-east-1:1111:t",
        "arn:aws:sns:us-east-1:111122223333:a/b",
        "arn:aws:sqs:us-east-1:111122223333:t",
        "arn:aws:sns:us-east-1:111122223333:.fifo",
    ];
    sorts(
        TopicArn::parse,
        &[
            "arn:aws:sns:us-east-1:111122223333:ferry-reports",
            "arn:aws:sns:us-east-1:111122223333:orders_v2.fifo",
            "arn:aws-cn:sns:cn-north-1:111122223333:t",
        ],
        &bad,
    );
    for value in bad {
        let e = TopicArn::parse(value).unwrap_err();
        assert!(e.to_string().starts_with("must be an SNS topic ARN"), "{e}");
    }
}

#[test]
fn state_machine_role_and_bucket_arns() {
    let sm =
        StateMachineArn::parse("arn:aws:states:us-east-1:111122223333:stateMachine:ferry").unwrap();
    assert_eq!(sm.account_id().as_deref(), Some("111122223333"));
    sorts(
        StateMachineArn::parse,
        &[],
        &["arn:aws:states:us-east-1:111122223333:execution:ferry:x"],
    );
    sorts(
        RoleArn::parse,
        &["arn:aws:iam::111122223333:role/ferry"],
        &["arn:aws:iam::111122223333:user/ferry", "not-a-role"],
    );
    // How S3 requests name each place DataSync takes (issue 17, defect 5: an access point's
    // last `:` part, `accesspoint/ap`, used to be taken as a bucket name).
    const AP: &str = "arn:aws:s3:us-east-1:111122223333:accesspoint/reports-ap";
    const OUTPOST: &str = "arn:aws:s3-outposts:us-east-1:111122223333:outpost/op-01ac5d28a6a232904/accesspoint/reports";
    let request_bucket = |arn: &str| {
        S3BucketArn::parse(arn)
            .unwrap()
            .request_bucket()
            .map(|b| b.to_string())
    };
    assert_eq!(
        request_bucket("arn:aws:s3:::ferry-data").as_deref(),
        Some("ferry-data")
    );
    assert_eq!(
        request_bucket("arn:aws-cn:s3:::ferry-data").as_deref(),
        Some("ferry-data")
    );
    assert_eq!(request_bucket(AP).as_deref(), Some(AP));
    assert_eq!(request_bucket(OUTPOST).as_deref(), Some(OUTPOST));
    assert_eq!(request_bucket("arn:aws:s3:::Not_A_Bucket"), None);
    assert_eq!(
        request_bucket(
            "arn:aws:s3-outposts:us-east-1:111122223333:outpost/op-01ac5d28a6a232904/bucket/b"
        ),
        None
    );
    sorts(
        S3BucketArn::parse,
        &["arn:aws:s3:us-east-1:111122223333:accesspoint/ap"],
        &["arn:aws:sqs:us-east-1:111122223333:q"],
    );
}

#[test]
fn bucket_names_follow_s3_rules() {
    let long = "a".repeat(64);
    sorts(
        BucketName::parse,
        &["ferry-data.2026"],
        &["ab", "Ferry", "-ferry", "ferry-", "fe rry", &long],
    );
}

#[test]
fn report_locations_may_name_an_access_point() {
    const AP: &str = "arn:aws:s3:us-east-1:111122223333:accesspoint/reports-ap";
    const OUTPOST: &str = "arn:aws:s3-outposts:us-east-1:111122223333:outpost/op-01ac5d28a6a232904/accesspoint/reports";
    for (arn, key) in [(AP, "ferry/run-1/"), (OUTPOST, "a/b"), (AP, "")] {
        let url = S3Url::parse_location(&format!("s3://{arn}/{key}"), 1_024).unwrap();
        assert_eq!(url.bucket().as_str(), arn);
        assert_eq!(url.key(), key);
        let again = S3Url::new(url.bucket(), url.key());
        assert_eq!(again.as_str(), url.as_str());
    }
    // Plain URLs parse as before; an ARN is not a bucket where only buckets are taken.
    let plain = S3Url::parse_location("s3://ferry-data/x", 100).unwrap();
    assert_eq!(plain.bucket().as_str(), "ferry-data");
    assert!(S3Url::parse(&format!("s3://{AP}/x"), 1_024).is_err());
    for bad in [
        "s3://arn:aws:s3:us-east-1:111122223333:bucket/b/x",
        "s3://arn:aws:sqs:us-east-1:111122223333:accesspoint/q/x",
        "s3://arn:aws:s3:us-east-1:111122223333:accesspoint/ap/../x",
    ] {
        assert!(S3Url::parse_location(bad, 1_024).is_err(), "{bad}");
    }
}

#[test]
fn s3_urls_are_split_once() {
    let url = S3Url::parse("s3://ferry-data/incoming/a b", 100).unwrap();
    assert_eq!(url.bucket().as_str(), "ferry-data");
    assert_eq!(url.key(), "incoming/a b");
    assert_eq!(url.to_string(), "s3://ferry-data/incoming/a b");
    assert_eq!(S3Url::parse("s3://ferry-data", 100).unwrap().key(), "");
    let problem = |text: &str| S3Url::parse(text, 30).unwrap_err().to_string();
    assert!(problem("https://ferry-data/x").starts_with("must be an s3://bucket/prefix URL"));
    assert_eq!(
        problem("s3://ferry-data/a/b/c/d/e/f/g/h/i/j"),
        "must be at most 30 characters"
    );
    assert!(problem("s3://Ferry/x").starts_with("must name a valid bucket"));
    assert!(problem("s3://ferry-data/a/../b").contains("'..' segment"));
    assert!(problem("s3://ferry-data/a\nb").contains("control character"));
}

#[test]
fn ids_round_trip_through_serde_and_refuse_malformed_values() {
    let id: FileSystemId = serde_json::from_str("\"fs-0123456789abcdef0\"").unwrap();
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        "\"fs-0123456789abcdef0\""
    );
    let e = serde_json::from_str::<FileSystemId>("\"fs-1\"").unwrap_err();
    assert!(e.to_string().contains("must be \"fs-\" followed by"), "{e}");
    // A huge value is echoed bounded.
    let e = FileSystemId::parse(&"x".repeat(1_000_000)).unwrap_err();
    assert!(e.to_string().len() < 1_000, "{}", e.to_string().len());
}
