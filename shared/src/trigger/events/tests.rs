use serde_json::json;

use super::*;

fn s3_event(records: Vec<(&str, &str)>) -> Value {
    json!({"Records": records.into_iter().map(|(name, key)| json!({
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
        "eventTime": "2026-11-21T10:00:00.000Z",
        "s3": {"bucket": {"name": "ferry-data"}, "object": {"key": key, "size": 5, "sequencer": "00"}}
    })).collect::<Vec<_>>()})
}

/// An SNS notification as SNS delivers it to an SQS queue (raw delivery off).
fn sns_envelope(message: String) -> String {
    json!({"Type": "Notification", "MessageId": "1", "Message": message,
           "TopicArn": "arn:aws:sns:us-east-1:111122223333:uploads",
           "Timestamp": "2026-11-21T10:00:00.000Z", "SignatureVersion": "1", "Signature": "c2ln",
           "SigningCertURL": "https://sns.us-east-1.amazonaws.com/cert.pem",
           "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe"})
    .to_string()
}

fn objects(message: &Message) -> &[S3Object] {
    message.objects.as_deref().unwrap_or_else(|e| panic!("{e}"))
}

fn error(message: &Message) -> String {
    match &message.objects {
        Err(e) => e.to_string(),
        Ok(found) => panic!("expected an error, got {found:?}"),
    }
}

#[test]
fn a_direct_notification_decodes_every_key() {
    let batch = parse(s3_event(vec![
        ("ObjectCreated:Put", "incoming/red+flower.jpg"),
        (
            "ObjectCreated:CompleteMultipartUpload",
            "incoming/c%2B%2B.tar",
        ),
        ("ObjectRemoved:Delete", "incoming/old"),
    ]))
    .unwrap();
    assert_eq!(batch.shape, Shape::S3);
    let message = &batch.messages[0];
    let keys: Vec<&str> = objects(message).iter().map(|o| o.key.as_str()).collect();
    assert_eq!(keys, ["incoming/red flower.jpg", "incoming/c++.tar"]);
    assert_eq!(message.ignored.len(), 1);
    assert_eq!(objects(message)[0].sequencer.as_deref(), Some("00"));
}

#[test]
fn sqs_messages_fail_alone() {
    let good = s3_event(vec![("ObjectCreated:Put", "a/b")]).to_string();
    let event = json!({"Records": [
        {"messageId": "m1", "eventSource": "aws:sqs", "body": good},
        {"messageId": "m2", "eventSource": "aws:sqs", "body": "{not json"},
        {"messageId": "m3", "eventSource": "aws:sqs", "body": "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Bucket\":\"ferry-data\"}"},
        {"messageId": "m4", "eventSource": "aws:sqs", "body": s3_event(vec![("ObjectCreated:Put", "bad%FF")]).to_string()},
        {"messageId": "m5", "eventSource": "aws:sqs", "body": 42},
        {"eventSource": "aws:sqs", "body": good},
    ]});
    let batch = parse(event).unwrap();
    assert_eq!(batch.shape, Shape::Sqs);
    assert_eq!(objects(&batch.messages[0]).len(), 1);
    let e = error(&batch.messages[1]);
    assert!(e.starts_with("Records[1].body: not JSON"), "{e}");
    assert_eq!(batch.messages[2].objects, Ok(vec![]));
    assert_eq!(batch.messages[2].ignored.len(), 1);
    let e = error(&batch.messages[3]);
    assert!(
        e.contains("Records[3].body.Records[0].s3.object.key"),
        "{e}"
    );
    assert!(e.contains("not UTF-8"), "{e}");
    // An envelope that cannot be read still has its id, so it fails by id.
    assert_eq!(batch.messages[4].id.as_deref(), Some("m5"));
    assert!(error(&batch.messages[4]).starts_with("Records[4].body"));
    assert_eq!(batch.messages[5].id, None);
    assert_eq!(error(&batch.messages[5]), "Records[5].messageId: missing");
}

#[test]
fn sns_envelopes_and_eventbridge_bodies_are_unwrapped() {
    let notification = s3_event(vec![("ObjectCreated:Copy", "x/y+z")]).to_string();
    let eb = json!({"source": "aws.s3", "detail-type": "Object Created",
                    "detail": {"bucket": {"name": "b"}, "object": {"key": "raw key+plus", "size": 1}}})
    .to_string();
    let event = json!({"Records": [
        {"messageId": "m1", "eventSource": "aws:sqs", "body": sns_envelope(notification)},
        {"messageId": "m2", "eventSource": "aws:sqs", "body": eb},
        {"messageId": "m3", "eventSource": "aws:sqs", "body": json!({"Type": "Notification", "Message": "{}"}).to_string()},
    ]});
    let batch = parse(event).unwrap();
    assert_eq!(objects(&batch.messages[0])[0].key, "x/y z");
    assert_eq!(objects(&batch.messages[1])[0].key, "raw key+plus");
    // An SNS envelope missing what SNS always sends names the field.
    let e = error(&batch.messages[2]);
    assert!(e.starts_with("Records[2].body"), "{e}");
    assert!(e.contains("missing field"), "{e}");
}

#[test]
fn an_sns_event_s3_sns_lambda_is_read_record_by_record() {
    let notification = s3_event(vec![("ObjectCreated:Put", "incoming/a+b.h5")]).to_string();
    let record = |message: Value| {
        json!({"EventVersion": "1.0", "EventSource": "aws:sns",
               "EventSubscriptionArn": "arn:aws:sns:us-east-1:111122223333:uploads:1",
               "Sns": message})
    };
    let envelope: Value = serde_json::from_str(&sns_envelope(notification)).unwrap();
    let event = json!({"Records": [
        record(envelope),
        record(json!({"Type": "Notification", "Message": "not json"})),
        {"EventSource": "aws:sns"},
    ]});
    let batch = parse(event).unwrap();
    assert_eq!(batch.shape, Shape::Sns);
    assert_eq!(objects(&batch.messages[0])[0].key, "incoming/a b.h5");
    assert_eq!(batch.messages[0].id, None);
    assert!(error(&batch.messages[1]).starts_with("Records[1].Sns"));
    assert_eq!(error(&batch.messages[2]), "Records[2].Sns: missing");
}

#[test]
fn an_eventbridge_event_keeps_its_key_verbatim() {
    let event = json!({"version": "0", "source": "aws.s3", "detail-type": "Object Created",
        "detail": {"bucket": {"name": "ferry-data"}, "object": {"key": "incoming/a b+c%20d", "size": 10, "version-id": "v1",
                                                        "etag": "e1", "sequencer": "00AB"}}});
    let batch = parse(event).unwrap();
    assert_eq!(batch.shape, Shape::EventBridge);
    let object = &objects(&batch.messages[0])[0];
    assert_eq!(object.key, "incoming/a b+c%20d");
    assert_eq!(object.version_id.as_deref(), Some("v1"));
    assert_eq!(object.etag.as_deref(), Some("e1"));
    assert_eq!(object.sequencer.as_deref(), Some("00AB"));
    let deleted = json!({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}});
    assert_eq!(parse(deleted).unwrap().messages[0].ignored.len(), 1);
    let other = json!({"source": "aws.ec2", "detail-type": "Object Created", "detail": {}});
    assert!(parse(other).unwrap().messages[0].objects.is_err());
    let no_key = json!({"source": "aws.s3", "detail-type": "Object Created",
                        "detail": {"bucket": {"name": "b"}, "object": {"size": 1}}});
    let e = error(&parse(no_key).unwrap().messages[0]);
    assert!(e.starts_with("detail.object: missing field `key`"), "{e}");
}

#[test]
fn unknown_shapes_are_a_clear_error() {
    for (bad, expected) in [
        (json!({"hello": 1}), "top-level keys: [\"hello\"]"),
        (json!([1, 2]), "top-level keys: []"),
        (json!("x"), "top-level keys: []"),
        (json!({"Records": 3}), "Records: expected an array"),
        (json!({"Records": []}), "Records: empty"),
        (
            json!({"Records": [{"eventSource": "aws:kinesis"}]}),
            "got \"aws:kinesis\"",
        ),
        (
            json!({"Records": [{}]}),
            "Records[0].eventSource: missing (nor an SNS record's EventSource): expected S3 \
             notification records (aws:s3), SQS messages (aws:sqs) or SNS notifications (aws:sns)",
        ),
    ] {
        let e = parse(bad).unwrap_err().to_string();
        assert!(e.contains(expected), "{e}");
    }
}

#[test]
fn a_record_missing_its_key_or_event_name_names_the_field() {
    let event = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                     "s3": {"bucket": {"name": "b"}, "object": {"size": 1}}}]});
    let e = error(&parse(event).unwrap().messages[0]);
    assert!(e.contains("Records[0].s3.object"), "{e}");
    assert!(e.contains("missing field `key`"), "{e}");
    let event = json!({"Records": [{"eventSource": "aws:s3",
                                     "s3": {"bucket": {"name": "b"}, "object": {"key": "k"}}}]});
    let e = error(&parse(event).unwrap().messages[0]);
    assert!(e.contains("missing field `eventName`"), "{e}");
}

#[test]
fn a_message_received_before_says_since_when_a_job_could_cover_it() {
    let body = s3_event(vec![("ObjectCreated:Put", "incoming/a.h5")]).to_string();
    let message = |attributes: Value| json!({"messageId": "m", "eventSource": "aws:sqs", "body": body, "attributes": attributes});
    let batch = parse(json!({"Records": [
        message(json!({"ApproximateReceiveCount": "1", "SentTimestamp": "1764000000000"})),
        message(json!({"ApproximateReceiveCount": "3", "SentTimestamp": "1764000000000"})),
        message(json!({"ApproximateReceiveCount": "2"})),
        message(json!({"SentTimestamp": "1764000000000"})),
        message(json!({"ApproximateReceiveCount": "one", "SentTimestamp": "soon"})),
        {"messageId": "m", "eventSource": "aws:sqs", "body": body},
    ]}))
    .unwrap();
    let since: Vec<Option<u64>> = batch.messages.iter().map(|m| m.redelivered_since).collect();
    assert_eq!(
        since,
        [
            None,
            Some(1_764_000_000_000),
            Some(0),
            Some(1_764_000_000_000),
            Some(0),
            Some(0)
        ],
        "only a first delivery is known not to be a redelivery"
    );
    // Direct events are retried whole by Lambda: no regrouping, nothing to look up.
    let direct = parse(s3_event(vec![("ObjectCreated:Put", "incoming/a.h5")])).unwrap();
    assert_eq!(direct.messages[0].redelivered_since, None);
}

#[test]
fn an_upload_is_told_apart_by_every_field_and_a_missing_one_from_an_empty_one() {
    let object = S3Object {
        bucket: "ferry-data".into(),
        key: "incoming/a.h5".into(),
        size: Some(5),
        version_id: Some("v1".into()),
        sequencer: Some("00AA".into()),
        etag: Some("e".into()),
    };
    let id = object.upload_id();
    assert_eq!(
        id,
        S3Object {
            size: Some(6),
            ..object.clone()
        }
        .upload_id(),
        "the size is not part of an upload's identity"
    );
    let others = [
        S3Object {
            bucket: "ferry-datb".into(),
            ..object.clone()
        },
        S3Object {
            key: "incoming/b.h5".into(),
            ..object.clone()
        },
        S3Object {
            version_id: None,
            ..object.clone()
        },
        S3Object {
            version_id: Some(String::new()),
            ..object.clone()
        },
        S3Object {
            sequencer: Some("00AB".into()),
            ..object.clone()
        },
        S3Object {
            etag: Some("f".into()),
            ..object.clone()
        },
        // Fields do not run into each other.
        S3Object {
            bucket: "ferry-data/incoming".into(),
            key: "/a.h5".into(),
            ..object.clone()
        },
    ];
    for other in others {
        assert_ne!(other.upload_id(), id, "{other:?}");
    }
}
