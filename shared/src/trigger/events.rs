//! The three ways an upload reaches `s3-trigger`, and the objects each one names.
//!
//! - a direct S3 event notification (`{"Records": [{"eventSource": "aws:s3", ...}]}`);
//! - an SQS event whose message bodies are S3 notifications (also the `s3:TestEvent` S3 sends
//!   when the notification is configured, S3 → SNS → SQS envelopes, and EventBridge events
//!   routed to SQS);
//! - an EventBridge `Object Created` event from `aws.s3`;
//! - an SNS event (S3 → SNS → Lambda: `{"Records": [{"EventSource": "aws:sns", "Sns": {...}}]}`,
//!   note the capital `E`), each record's `Sns.Message` an S3 notification. Lambda invokes the
//!   function asynchronously for SNS: a record that fails fails the invocation, which Lambda
//!   retries and then sends to the function's on-failure destination or dead-letter queue, when
//!   one is configured. An SQS queue behind the topic keeps failures per message instead
//!   (docs/routes.md).
//!
//! The envelopes are `aws_lambda_events`' types (SQS messages, SNS notifications, EventBridge
//! events, the S3 entity of a record), read one record or message at a time so that a
//! malformed one fails alone with a message naming its field. Two shapes are Ferry's own, each
//! saying why where it is declared. Keys are decoded by [`super::key`], never taken from the
//! crate's `url_decoded_key`, which S3 does not fill. Events other than object creation are
//! counted and ignored.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::s3::S3Entity;
use aws_lambda_events::sns::SnsMessage;
use aws_lambda_events::sqs::SqsMessage;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use sha2::{Digest, Sha256};

use super::key::{KeyError, check_key, decode_notification_key};
use crate::domain::parse;
use crate::ids::UploadId;

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

impl S3Object {
    /// The upload this record names (see [`UploadId`]).
    pub fn upload_id(&self) -> UploadId {
        let mut hasher = Sha256::new();
        let fields = [
            Some(self.bucket.as_str()),
            Some(self.key.as_str()),
            self.version_id.as_deref(),
            self.sequencer.as_deref(),
            self.etag.as_deref(),
        ];
        for field in fields {
            // Length-prefixed, and a missing field told from an empty one.
            match field {
                Some(f) => {
                    hasher.update([1]);
                    hasher.update((f.len() as u64).to_le_bytes());
                    hasher.update(f.as_bytes());
                }
                None => hasher.update([0]),
            }
        }
        let digest = hasher.finalize();
        let mut id = [0; UploadId::BYTES];
        id.copy_from_slice(&digest[..UploadId::BYTES]);
        UploadId(id)
    }
}

/// Which shape the invocation had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    S3,
    Sqs,
    EventBridge,
    Sns,
}

/// Why the invocation is none of the three shapes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("Records: expected an array")]
    RecordsNotArray,
    #[error("Records: empty, nothing to do")]
    NoRecords,
    #[error(
        "Records[0].eventSource: missing (nor an SNS record's EventSource): expected S3 notification records (aws:s3), SQS messages (aws:sqs) or SNS notifications (aws:sns)"
    )]
    NoEventSource,
    #[error(
        "Records[0].eventSource: expected \"aws:s3\", \"aws:sqs\" or (EventSource) \"aws:sns\", got {0:?}"
    )]
    UnknownEventSource(String),
    #[error(
        "not an S3 notification, an SQS event or an EventBridge S3 event (top-level keys: {0:?})"
    )]
    UnknownShape(Vec<String>),
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

impl MessageError {
    /// What a log line may say (the field, and a key or a quoted value only by its
    /// [`fingerprint`](crate::domain::text::fingerprint)): the whole error quotes the key.
    pub fn loggable(&self) -> String {
        use crate::domain::text::fingerprint;
        match self {
            MessageError::Malformed { field, problem } => {
                format!("{field}: malformed (reason {})", fingerprint(problem))
            }
            MessageError::Key {
                field,
                source: KeyError::NotUtf8 { encoded },
            } => format!(
                "{field}: object key ({}) is not UTF-8 once percent-decoded",
                fingerprint(encoded)
            ),
            MessageError::Key { field, source } => format!("{field}: {source}"),
        }
    }
}

/// What one message (or the whole direct event) contained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The SQS `messageId`, for `batchItemFailures`; `None` for a direct event.
    pub id: Option<String>,
    /// The created objects, or why the message could not be read.
    pub objects: Result<Vec<S3Object>, MessageError>,
    /// Records that were not object creations (removals, test events).
    pub ignored: Vec<Ignored>,
    /// Set when an SQS message may have been delivered before (its `ApproximateReceiveCount`
    /// is not 1): its `SentTimestamp` (epoch milliseconds; 0 when missing), before which no
    /// job can cover it. A message delivered again may come in another grouping, whose job
    /// would have another id: `s3-trigger` looks up which of its uploads are queued already.
    pub redelivered_since: Option<u64>,
}

/// A record that was not an object creation: what it was, and what it named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The event name (`ObjectRemoved:Delete`, `s3:TestEvent`, an EventBridge detail type).
    pub event: String,
    pub bucket: Option<String>,
    /// The object's key (decoded), when the record named one.
    pub key: Option<String>,
}

impl Message {
    fn new(id: Option<String>, read: Read) -> Message {
        let (objects, ignored) = match read {
            Ok((objects, ignored)) => (Ok(objects), ignored),
            Err(e) => (Err(e), Vec::new()),
        };
        Message {
            id,
            objects,
            ignored,
            redelivered_since: None,
        }
    }
}

/// A parsed invocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub shape: Shape,
    pub messages: Vec<Message>,
}

/// The objects a message names and the records it ignored.
type Read = Result<(Vec<S3Object>, Vec<Ignored>), MessageError>;

/// Recognizes the invocation's shape and reads each message.
pub fn parse(event: Value) -> Result<Batch, EventError> {
    if let Some(records) = event.get("Records") {
        let Some(records) = records.as_array() else {
            return Err(EventError::RecordsNotArray);
        };
        // SNS spells it `EventSource`; S3 and SQS `eventSource`.
        let source = records
            .first()
            .and_then(|r| r.get("eventSource").or_else(|| r.get("EventSource")))
            .and_then(Value::as_str);
        return match source {
            Some("aws:sqs") => Ok(Batch {
                shape: Shape::Sqs,
                messages: sqs_messages(event),
            }),
            Some("aws:s3") => Ok(Batch {
                shape: Shape::S3,
                messages: vec![Message::new(None, s3_notification(event, ""))],
            }),
            Some("aws:sns") => Ok(Batch {
                shape: Shape::Sns,
                messages: sns_records(event),
            }),
            Some(other) => Err(EventError::UnknownEventSource(
                crate::domain::text::truncate_chars(other, 100),
            )),
            None if records.is_empty() => Err(EventError::NoRecords),
            None => Err(EventError::NoEventSource),
        };
    }
    if event.get("detail-type").is_some() && event.get("source").is_some() {
        return Ok(Batch {
            shape: Shape::EventBridge,
            messages: vec![Message::new(None, eventbridge(event, ""))],
        });
    }
    let keys = event
        .as_object()
        .map(|o| o.keys().take(8).cloned().collect())
        .unwrap_or_default();
    Err(EventError::UnknownShape(keys))
}

/// `base.rest`, or `rest` at the top level.
fn join(base: &str, rest: &str) -> String {
    if base.is_empty() {
        rest.to_owned()
    } else {
        format!("{base}.{rest}")
    }
}

/// Deserializes `value`, naming a malformed field under `base`.
fn read_as<T: DeserializeOwned>(value: Value, base: &str) -> Result<T, MessageError> {
    parse::from_value(value, base).map_err(|e| {
        let first = e.errors.into_iter().next();
        MessageError::Malformed {
            field: first
                .as_ref()
                .map_or_else(|| base.to_owned(), |f| f.field.clone()),
            problem: first.map_or_else(String::new, |f| f.problem),
        }
    })
}

fn malformed(field: impl Into<String>, problem: impl Into<String>) -> MessageError {
    MessageError::Malformed {
        field: field.into(),
        problem: problem.into(),
    }
}

/// The event's `Records` (checked to be an array by [`parse`]), taken out of it.
fn records(mut event: Value) -> Vec<Value> {
    match event.get_mut("Records").map(Value::take) {
        Some(Value::Array(records)) => records,
        _ => Vec::new(),
    }
}

fn sqs_messages(event: Value) -> Vec<Message> {
    records(event)
        .into_iter()
        .enumerate()
        .map(|(i, record)| sqs_message(i, record))
        .collect()
}

/// Each SNS record's notification (`Sns`, an envelope like the one SNS puts in an SQS body).
fn sns_records(event: Value) -> Vec<Message> {
    records(event)
        .into_iter()
        .enumerate()
        .map(|(i, mut record)| {
            let field = format!("Records[{i}].Sns");
            let read = match record.get_mut("Sns").map(Value::take) {
                Some(envelope) => body_objects(envelope, &field, 0),
                None => Err(malformed(&field, "missing")),
            };
            Message::new(None, read)
        })
        .collect()
}

/// One SQS message. Its `messageId` is read first, from the raw record, so that even a record
/// whose envelope cannot be read is reported failed by id.
fn sqs_message(index: usize, record: Value) -> Message {
    let base = format!("Records[{index}]");
    let id = record
        .get("messageId")
        .and_then(Value::as_str)
        .map(str::to_owned);
    if id.is_none() {
        return Message::new(None, Err(malformed(join(&base, "messageId"), "missing")));
    }
    let redelivered_since = redelivered_since(&record);
    let read = read_as::<SqsMessage>(record, &base).and_then(|message| {
        let field = join(&base, "body");
        let body = message
            .body
            .ok_or_else(|| malformed(&field, "missing or not a string"))?;
        let parsed: Value =
            serde_json::from_str(&body).map_err(|e| malformed(&field, format!("not JSON: {e}")))?;
        body_objects(parsed, &field, 0)
    });
    Message {
        redelivered_since,
        ..Message::new(id, read)
    }
}

/// See [`Message::redelivered_since`]. SQS sends both attributes as decimal strings ("Using
/// Lambda with Amazon SQS", the event's `attributes`); a count that is missing or unreadable
/// is taken as a redelivery (a lookup costs little; a duplicate job costs a task).
fn redelivered_since(record: &Value) -> Option<u64> {
    let attribute = |name: &str| {
        record
            .get("attributes")
            .and_then(|a| a.get(name))
            .and_then(Value::as_str)
            .and_then(|v| v.parse::<u64>().ok())
    };
    match attribute("ApproximateReceiveCount") {
        Some(1) => None,
        _ => Some(attribute("SentTimestamp").unwrap_or(0)),
    }
}

/// The objects in an SQS message body: an S3 notification, an S3 test event, an EventBridge
/// event, or an SNS envelope around one of them.
fn body_objects(body: Value, field: &str, depth: u8) -> Read {
    if body.get("Records").is_some() {
        return s3_notification(body, field);
    }
    // Sent once when the notification is configured: {"Service":"Amazon S3","Event":"s3:TestEvent",...}
    if body.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        let ignored = Ignored {
            event: "s3:TestEvent".into(),
            bucket: body
                .get("Bucket")
                .and_then(Value::as_str)
                .map(str::to_owned),
            key: None,
        };
        return Ok((Vec::new(), vec![ignored]));
    }
    if body.get("detail-type").is_some() {
        return eventbridge(body, field);
    }
    if body.get("Type").and_then(Value::as_str) == Some("Notification") && depth == 0 {
        let envelope: SnsMessage = read_as(body, field)?;
        let inner_field = join(field, "Message");
        let inner: Value = serde_json::from_str(&envelope.message)
            .map_err(|e| malformed(&inner_field, format!("not JSON: {e}")))?;
        return body_objects(inner, &inner_field, depth + 1);
    }
    Err(malformed(
        field,
        "not an S3 notification, S3 test event, EventBridge event or SNS envelope",
    ))
}

/// An S3 event notification, read record by record. Not `aws_lambda_events::s3::S3Event`: its
/// records require `eventTime`, `userIdentity` and `requestParameters`, which S3 sends but
/// other producers of the same notification leave out (moto, under the local emulator, sends
/// neither of the last two), and which Ferry does not read. A record is its `eventName` and the
/// crate's `S3Entity`.
#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Records")]
    records: Vec<NotificationRecord>,
}

#[derive(Deserialize)]
struct NotificationRecord {
    #[serde(rename = "eventName")]
    event_name: String,
    s3: S3Entity,
}

fn s3_notification(value: Value, base: &str) -> Read {
    let notification: Notification = read_as(value, base)?;
    let mut objects = Vec::with_capacity(notification.records.len());
    let mut ignored = Vec::new();
    for (i, record) in notification.records.into_iter().enumerate() {
        // eventName is e.g. "ObjectCreated:Put" (the "s3:" prefix appears in configurations).
        if !record
            .event_name
            .trim_start_matches("s3:")
            .starts_with("ObjectCreated:")
        {
            let key = record.s3.object.key.as_deref();
            ignored.push(Ignored {
                event: crate::domain::text::truncate_chars(&record.event_name, 100),
                bucket: record.s3.bucket.name,
                key: key.and_then(|k| decode_notification_key(k).ok()),
            });
            continue;
        }
        let field = |rest: &str| join(base, &format!("Records[{i}].s3.{rest}"));
        let object = record.s3.object;
        let encoded = object
            .key
            .ok_or_else(|| malformed(field("object"), "missing field `key`"))?;
        let key = decode_notification_key(&encoded).map_err(|source| MessageError::Key {
            field: field("object.key"),
            source,
        })?;
        objects.push(S3Object {
            bucket: bucket_name(record.s3.bucket.name, &field("bucket.name"))?,
            key,
            size: object.size.and_then(|s| u64::try_from(s).ok()),
            version_id: object.version_id,
            sequencer: object.sequencer,
            etag: object.e_tag,
        });
    }
    Ok((objects, ignored))
}

/// The `detail` of S3's EventBridge `Object Created` event (S3 user guide, "EventBridge event
/// message structure"). Ferry's own: `aws_lambda_events` has no S3 detail type, and its
/// notification `S3Object` names the fields differently (`versionId`, `eTag` where EventBridge
/// writes `version-id`, `etag`). The key arrives unencoded here, unlike in notifications.
#[derive(Deserialize)]
struct ObjectCreatedDetail {
    bucket: DetailBucket,
    object: DetailObject,
}

#[derive(Deserialize)]
struct DetailBucket {
    name: Option<String>,
}

#[derive(Deserialize)]
struct DetailObject {
    key: String,
    size: Option<u64>,
    #[serde(rename = "version-id")]
    version_id: Option<String>,
    sequencer: Option<String>,
    etag: Option<String>,
}

fn eventbridge(value: Value, base: &str) -> Read {
    let event: EventBridgeEvent<Value> = read_as(value, base)?;
    if event.source != "aws.s3" {
        return Err(malformed(
            join(base, "source"),
            format!(
                "expected \"aws.s3\", got {:?}",
                crate::domain::text::truncate_chars(&event.source, 100)
            ),
        ));
    }
    if event.detail_type != "Object Created" {
        let named = |path: &[&str]| {
            path.iter()
                .try_fold(&event.detail, |v, k| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let ignored = Ignored {
            event: crate::domain::text::truncate_chars(&event.detail_type, 100),
            bucket: named(&["bucket", "name"]),
            key: named(&["object", "key"]),
        };
        return Ok((Vec::new(), vec![ignored]));
    }
    let detail: ObjectCreatedDetail = read_as(event.detail, &join(base, "detail"))?;
    let key = check_key(detail.object.key).map_err(|source| MessageError::Key {
        field: join(base, "detail.object.key"),
        source,
    })?;
    let object = S3Object {
        bucket: bucket_name(detail.bucket.name, &join(base, "detail.bucket.name"))?,
        key,
        size: detail.object.size,
        version_id: detail.object.version_id,
        sequencer: detail.object.sequencer,
        etag: detail.object.etag,
    };
    Ok((vec![object], Vec::new()))
}

fn bucket_name(name: Option<String>, field: &str) -> Result<String, MessageError> {
    match name {
        Some(name) if (1..=255).contains(&name.len()) => Ok(name),
        _ => Err(malformed(field, "bucket name must be 1-255 characters")),
    }
}

#[cfg(test)]
mod tests;
