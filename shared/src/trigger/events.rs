//! The three ways an upload reaches `s3-trigger`, and the objects each one names.
//!
//! - a direct S3 event notification (`{"Records": [{"eventSource": "aws:s3", ...}]}`);
//! - an SQS event whose message bodies are S3 notifications (also the `s3:TestEvent` S3 sends
//!   when the notification is configured, S3 → SNS → SQS envelopes, and EventBridge events
//!   routed to SQS);
//! - an EventBridge `Object Created` event from `aws.s3`.
//!
//! Only the fields Ferry uses are modelled, each checked, so a malformed record fails alone with
//! a message naming what is wrong. Events other than object creation are counted and ignored.

use serde::Deserialize;
use serde_json::Value;

use super::key::{KeyError, check_key, decode_notification_key};

/// One object an event says was created.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct S3Object {
    pub bucket: String,
    /// The decoded key.
    pub key: String,
    pub size: Option<u64>,
    pub version_id: Option<String>,
    /// Orders the events of one key: a later upload of the same key has a different one. With
    /// the ETag, it tells a new upload from a redelivery of the same event.
    pub sequencer: Option<String>,
    pub etag: Option<String>,
}

/// Which shape the invocation had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    S3,
    Sqs,
    EventBridge,
}

/// Why one message (or a direct event) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("{field}: {problem}")]
    Malformed { field: String, problem: String },
    #[error("{field}: {source}")]
    Key {
        field: String,
        #[source]
        source: KeyError,
    },
}

/// What one message (or the whole direct event) contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The SQS `messageId`, for `batchItemFailures`; `None` for a direct event.
    pub id: Option<String>,
    /// The created objects, or why the message could not be read.
    pub objects: Result<Vec<S3Object>, MessageError>,
    /// Records that were not object creations (removals, test events).
    pub ignored: usize,
}

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub shape: Shape,
    pub messages: Vec<Message>,
}

/// Recognizes the invocation's shape; `Err` says why it is none of the three.
pub fn parse(event: &Value) -> Result<Batch, String> {
    if let Some(records) = event.get("Records") {
        let Some(records) = records.as_array() else {
            return Err("Records: expected an array".into());
        };
        let source = records
            .first()
            .and_then(|r| r.get("eventSource"))
            .and_then(Value::as_str);
        return match source {
            Some("aws:sqs") => Ok(Batch {
                shape: Shape::Sqs,
                messages: records
                    .iter()
                    .enumerate()
                    .map(|(i, r)| sqs_message(i, r))
                    .collect(),
            }),
            Some("aws:s3") => Ok(Batch {
                shape: Shape::S3,
                messages: vec![direct(|| s3_notification(event, ""))],
            }),
            Some(other) => Err(format!(
                "Records[0].eventSource: expected \"aws:s3\" or \"aws:sqs\", got {other:?}"
            )),
            None if records.is_empty() => Err("Records: empty, nothing to do".into()),
            None => Err("Records[0].eventSource: missing".into()),
        };
    }
    if event.get("detail-type").is_some() && event.get("source").is_some() {
        return Ok(Batch {
            shape: Shape::EventBridge,
            messages: vec![direct(|| eventbridge(event, ""))],
        });
    }
    let keys: Vec<&str> = event
        .as_object()
        .map(|o| o.keys().map(String::as_str).take(8).collect())
        .unwrap_or_default();
    Err(format!(
        "not an S3 notification, an SQS event or an EventBridge S3 event (top-level keys: {keys:?})"
    ))
}

fn direct(read: impl FnOnce() -> Result<(Vec<S3Object>, usize), MessageError>) -> Message {
    match read() {
        Ok((objects, ignored)) => Message {
            id: None,
            objects: Ok(objects),
            ignored,
        },
        Err(e) => Message {
            id: None,
            objects: Err(e),
            ignored: 0,
        },
    }
}

fn malformed(field: impl Into<String>, problem: impl Into<String>) -> MessageError {
    MessageError::Malformed {
        field: field.into(),
        problem: problem.into(),
    }
}

fn sqs_message(index: usize, record: &Value) -> Message {
    let id = record
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let read = || -> Result<(Vec<S3Object>, usize), MessageError> {
        let field = format!("Records[{index}].body");
        let body = record
            .get("body")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(&field, "missing or not a string"))?;
        let parsed: Value =
            serde_json::from_str(body).map_err(|e| malformed(&field, format!("not JSON: {e}")))?;
        body_objects(&parsed, &field, 0)
    };
    let outcome = if id.is_none() {
        Err(malformed(format!("Records[{index}].messageId"), "missing"))
    } else {
        read()
    };
    match outcome {
        Ok((objects, ignored)) => Message {
            id,
            objects: Ok(objects),
            ignored,
        },
        Err(e) => Message {
            id,
            objects: Err(e),
            ignored: 0,
        },
    }
}

/// The objects in an SQS message body: an S3 notification, an S3 test event, an EventBridge
/// event, or an SNS envelope around one of them.
fn body_objects(
    body: &Value,
    field: &str,
    depth: u8,
) -> Result<(Vec<S3Object>, usize), MessageError> {
    if body.get("Records").is_some() {
        return s3_notification(body, field);
    }
    // Sent once when the notification is configured: {"Service":"Amazon S3","Event":"s3:TestEvent",...}
    if body.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        return Ok((Vec::new(), 1));
    }
    if body.get("detail-type").is_some() {
        return eventbridge(body, field);
    }
    if body.get("Type").and_then(Value::as_str) == Some("Notification") && depth == 0 {
        let message = body
            .get("Message")
            .and_then(Value::as_str)
            .ok_or_else(|| malformed(format!("{field}.Message"), "missing SNS Message"))?;
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| malformed(format!("{field}.Message"), format!("not JSON: {e}")))?;
        return body_objects(&inner, &format!("{field}.Message"), depth + 1);
    }
    Err(malformed(
        field,
        "not an S3 notification, S3 test event, EventBridge event or SNS envelope",
    ))
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records")]
    records: Vec<NotificationRecord>,
}

#[derive(Deserialize)]
struct NotificationRecord {
    #[serde(rename = "eventName")]
    event_name: String,
    s3: Entity,
}

#[derive(Deserialize)]
struct Entity {
    bucket: Bucket,
    object: Object,
}

#[derive(Deserialize)]
struct Bucket {
    name: String,
}

#[derive(Deserialize)]
struct Object {
    key: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default, rename = "versionId", alias = "version-id")]
    version_id: Option<String>,
    #[serde(default)]
    sequencer: Option<String>,
    /// `eTag` in notifications, `etag` in EventBridge details.
    #[serde(default, rename = "eTag", alias = "etag")]
    etag: Option<String>,
}

/// `base.rest`, or `rest` at the top level.
fn join(base: &str, rest: &str) -> String {
    if base.is_empty() {
        rest.to_owned()
    } else {
        format!("{base}.{rest}")
    }
}

fn s3_notification(value: &Value, base: &str) -> Result<(Vec<S3Object>, usize), MessageError> {
    let notification: Notification = serde_path_to_error::deserialize(value).map_err(|e| {
        malformed(
            join(base, &e.path().to_string()),
            e.into_inner().to_string(),
        )
    })?;
    let mut objects = Vec::with_capacity(notification.records.len());
    let mut ignored = 0;
    for (i, record) in notification.records.into_iter().enumerate() {
        // eventName is e.g. "ObjectCreated:Put" (the "s3:" prefix appears in configurations).
        if !record
            .event_name
            .trim_start_matches("s3:")
            .starts_with("ObjectCreated:")
        {
            ignored += 1;
            continue;
        }
        let key =
            decode_notification_key(&record.s3.object.key).map_err(|source| MessageError::Key {
                field: join(base, &format!("Records[{i}].s3.object.key")),
                source,
            })?;
        objects.push(S3Object {
            bucket: bucket_name(
                record.s3.bucket.name,
                &join(base, &format!("Records[{i}].s3.bucket.name")),
            )?,
            key,
            size: record.s3.object.size,
            version_id: record.s3.object.version_id,
            sequencer: record.s3.object.sequencer,
            etag: record.s3.object.etag,
        });
    }
    Ok((objects, ignored))
}

#[derive(Deserialize)]
struct EventBridgeEvent {
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Option<Value>,
}

/// EventBridge's `Object Created` detail carries the key unencoded (S3 user guide, "EventBridge
/// event message structure": `"key": "example-key"`), unlike notifications.
fn eventbridge(value: &Value, base: &str) -> Result<(Vec<S3Object>, usize), MessageError> {
    let event: EventBridgeEvent = serde_path_to_error::deserialize(value).map_err(|e| {
        malformed(
            join(base, &e.path().to_string()),
            e.into_inner().to_string(),
        )
    })?;
    if event.source != "aws.s3" {
        return Err(malformed(
            join(base, "source"),
            format!("expected \"aws.s3\", got {:?}", event.source),
        ));
    }
    if event.detail_type != "Object Created" {
        return Ok((Vec::new(), 1));
    }
    let detail = event
        .detail
        .ok_or_else(|| malformed(join(base, "detail"), "missing"))?;
    let detail: Entity = serde_path_to_error::deserialize(detail).map_err(|e| {
        malformed(
            join(base, &format!("detail.{}", e.path())),
            e.into_inner().to_string(),
        )
    })?;
    let key = check_key(detail.object.key).map_err(|source| MessageError::Key {
        field: join(base, "detail.object.key"),
        source,
    })?;
    Ok((
        vec![S3Object {
            bucket: bucket_name(detail.bucket.name, &join(base, "detail.bucket.name"))?,
            key,
            size: detail.object.size,
            version_id: detail.object.version_id,
            sequencer: detail.object.sequencer,
            etag: detail.object.etag,
        }],
        0,
    ))
}

fn bucket_name(name: String, field: &str) -> Result<String, MessageError> {
    if name.is_empty() || name.len() > 255 {
        return Err(malformed(field, "bucket name must be 1-255 characters"));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn s3_event(records: Vec<(&str, &str)>) -> Value {
        json!({"Records": records.into_iter().map(|(name, key)| json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
            "s3": {"bucket": {"name": "ferry-data"}, "object": {"key": key, "size": 5, "sequencer": "00"}}
        })).collect::<Vec<_>>()})
    }

    #[test]
    fn a_direct_notification_decodes_every_key() {
        let batch = parse(&s3_event(vec![
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
        let keys: Vec<&str> = message
            .objects
            .as_ref()
            .unwrap()
            .iter()
            .map(|o| o.key.as_str())
            .collect();
        assert_eq!(keys, ["incoming/red flower.jpg", "incoming/c++.tar"]);
        assert_eq!(message.ignored, 1);
        let first = &message.objects.as_ref().unwrap()[0];
        assert_eq!(first.sequencer.as_deref(), Some("00"));
    }

    #[test]
    fn sqs_messages_fail_alone() {
        let good = s3_event(vec![("ObjectCreated:Put", "a/b")]).to_string();
        let event = json!({"Records": [
            {"messageId": "m1", "eventSource": "aws:sqs", "body": good},
            {"messageId": "m2", "eventSource": "aws:sqs", "body": "{not json"},
            {"messageId": "m3", "eventSource": "aws:sqs", "body": "{\"Service\":\"Amazon S3\",\"Event\":\"s3:TestEvent\",\"Bucket\":\"ferry-data\"}"},
            {"messageId": "m4", "eventSource": "aws:sqs", "body": s3_event(vec![("ObjectCreated:Put", "bad%FF")]).to_string()},
        ]});
        let batch = parse(&event).unwrap();
        assert_eq!(batch.shape, Shape::Sqs);
        assert_eq!(batch.messages[0].objects.as_ref().unwrap().len(), 1);
        let e = batch.messages[1].objects.as_ref().unwrap_err().to_string();
        assert!(e.starts_with("Records[1].body: not JSON"), "{e}");
        assert_eq!(batch.messages[2].objects, Ok(vec![]));
        assert_eq!(batch.messages[2].ignored, 1);
        let e = batch.messages[3].objects.as_ref().unwrap_err().to_string();
        assert!(
            e.contains("Records[3].body.Records[0].s3.object.key"),
            "{e}"
        );
        assert!(e.contains("not UTF-8"), "{e}");
    }

    #[test]
    fn sns_envelopes_and_eventbridge_bodies_are_unwrapped() {
        let notification = s3_event(vec![("ObjectCreated:Copy", "x/y+z")]).to_string();
        let sns =
            json!({"Type": "Notification", "MessageId": "1", "Message": notification}).to_string();
        let eb = json!({"source": "aws.s3", "detail-type": "Object Created",
                        "detail": {"bucket": {"name": "b"}, "object": {"key": "raw key+plus", "size": 1}}})
        .to_string();
        let event = json!({"Records": [
            {"messageId": "m1", "eventSource": "aws:sqs", "body": sns},
            {"messageId": "m2", "eventSource": "aws:sqs", "body": eb},
        ]});
        let batch = parse(&event).unwrap();
        assert_eq!(batch.messages[0].objects.as_ref().unwrap()[0].key, "x/y z");
        assert_eq!(
            batch.messages[1].objects.as_ref().unwrap()[0].key,
            "raw key+plus"
        );
    }

    #[test]
    fn an_eventbridge_event_keeps_its_key_verbatim() {
        let event = json!({"version": "0", "source": "aws.s3", "detail-type": "Object Created",
            "detail": {"bucket": {"name": "ferry-data"}, "object": {"key": "incoming/a b+c%20d", "size": 10, "version-id": "v1",
                                                            "etag": "e1", "sequencer": "00AB"}}});
        let batch = parse(&event).unwrap();
        assert_eq!(batch.shape, Shape::EventBridge);
        let object = &batch.messages[0].objects.as_ref().unwrap()[0];
        assert_eq!(object.key, "incoming/a b+c%20d");
        assert_eq!(object.version_id.as_deref(), Some("v1"));
        assert_eq!(object.etag.as_deref(), Some("e1"));
        assert_eq!(object.sequencer.as_deref(), Some("00AB"));
        let deleted = json!({"source": "aws.s3", "detail-type": "Object Deleted", "detail": {}});
        assert_eq!(parse(&deleted).unwrap().messages[0].ignored, 1);
        let other = json!({"source": "aws.ec2", "detail-type": "Object Created", "detail": {}});
        assert!(parse(&other).unwrap().messages[0].objects.is_err());
    }

    #[test]
    fn unknown_shapes_are_a_clear_error() {
        for bad in [
            json!({"hello": 1}),
            json!([1, 2]),
            json!("x"),
            json!({"Records": 3}),
            json!({"Records": []}),
            json!({"Records": [{"eventSource": "aws:kinesis"}]}),
        ] {
            let e = parse(&bad).unwrap_err();
            assert!(!e.is_empty());
        }
    }

    #[test]
    fn a_record_missing_its_key_names_the_field() {
        let event = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                         "s3": {"bucket": {"name": "b"}, "object": {"size": 1}}}]});
        let e = parse(&event).unwrap().messages[0]
            .objects
            .clone()
            .unwrap_err()
            .to_string();
        assert!(e.contains("Records[0].s3.object"), "{e}");
        assert!(e.contains("missing field `key`"), "{e}");
    }
}
