//! Structured `s3-trigger` invocations: SQS batches (plain, SNS-wrapped and EventBridge bodies,
//! test events, unreadable bodies, missing ids), direct S3 notifications and EventBridge events,
//! whose keys are arbitrary bytes under each route's prefix, form-encoded as S3 does, raw, or
//! byte-by-byte percent-encoded (so invalid UTF-8 arrives too). Every outcome goes through the
//! oracle: each object started, unmatched, or behind a failed message; nothing outside its route.
#![no_main]

use std::sync::OnceLock;

use ferry::fakes::{FakeLanes, FakeTrigger};
use ferry::trigger::config::TriggerConfig;
use ferry::handlers::s3_trigger;
use ferry_fuzz::{block_on, oracle};
use lambda_runtime::{Context, LambdaEvent};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

#[derive(Arbitrary, Debug)]
struct Input {
    shape: u8,
    messages: Vec<Message>,
}

#[derive(Arbitrary, Debug)]
struct Message {
    body: u8,
    drop_id: bool,
    records: Vec<Record>,
}

#[derive(Arbitrary, Debug)]
struct Record {
    route: u8,
    key: Vec<u8>,
    encoding: u8,
    created: bool,
    version: Option<u8>,
    sequencer: u8,
}

static CONFIG: OnceLock<TriggerConfig> = OnceLock::new();

/// The key as the notification carries it.
fn encoded_key(record: &Record) -> String {
    let (_, prefix) = oracle::ROUTE_KEYS[record.route as usize % oracle::ROUTE_KEYS.len()];
    match record.encoding % 3 {
        0 => oracle::form_encode(&format!("{prefix}{}", String::from_utf8_lossy(&record.key))),
        1 => format!("{prefix}{}", String::from_utf8_lossy(&record.key)),
        _ => {
            let mut key = oracle::form_encode(prefix);
            for byte in &record.key {
                key.push_str(&format!("%{byte:02X}"));
            }
            key
        }
    }
}

fn s3_record(record: &Record) -> Value {
    let (bucket, _) = oracle::ROUTE_KEYS[record.route as usize % oracle::ROUTE_KEYS.len()];
    let mut object = json!({"key": encoded_key(record), "size": 1,
                            "sequencer": format!("{:016X}", record.sequencer)});
    if let Some(v) = record.version {
        object["versionId"] = json!(format!("v{v}"));
    }
    json!({"eventVersion": "2.1", "eventSource": "aws:s3",
           "eventName": if record.created { "ObjectCreated:Put" } else { "ObjectRemoved:Delete" },
           "s3": {"bucket": {"name": bucket}, "object": object}})
}

fn eventbridge(record: &Record) -> Value {
    let (bucket, prefix) = oracle::ROUTE_KEYS[record.route as usize % oracle::ROUTE_KEYS.len()];
    json!({"version": "0", "source": "aws.s3",
           "detail-type": if record.created { "Object Created" } else { "Object Deleted" },
           "detail": {"bucket": {"name": bucket},
                      "object": {"key": format!("{prefix}{}", String::from_utf8_lossy(&record.key)),
                                 "size": 1, "sequencer": format!("{:016X}", record.sequencer)}}})
}

fn notification(records: &[Record]) -> Value {
    json!({"Records": records.iter().map(s3_record).collect::<Vec<_>>()})
}

fn sqs_body(message: &Message) -> String {
    match message.body % 5 {
        0 => notification(&message.records).to_string(),
        1 => json!({"Type": "Notification", "MessageId": "sns-1",
                    "Message": notification(&message.records).to_string()})
        .to_string(),
        2 => match message.records.first() {
            Some(record) => eventbridge(record).to_string(),
            None => notification(&[]).to_string(),
        },
        3 => r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"ferry-data-repository"}"#
            .to_owned(),
        _ => String::from_utf8_lossy(
            &message
                .records
                .first()
                .map(|r| r.key.clone())
                .unwrap_or_default(),
        )
        .into_owned(),
    }
}

fuzz_target!(|input: Input| {
    let event = match input.shape % 3 {
        0 => json!({"Records": input.messages.iter().enumerate().map(|(i, m)| {
            let mut record = json!({"eventSource": "aws:sqs", "body": sqs_body(m)});
            if !m.drop_id {
                record["messageId"] = json!(format!("m{i}"));
            }
            record
        }).collect::<Vec<_>>()}),
        1 => notification(
            &input
                .messages
                .into_iter()
                .flat_map(|m| m.records)
                .collect::<Vec<_>>(),
        ),
        _ => match input.messages.first().and_then(|m| m.records.first()) {
            Some(record) => eventbridge(record),
            None => return,
        },
    };
    let config = CONFIG.get_or_init(oracle::trigger_config);
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let output = block_on(s3_trigger::handle(
        &ports,
        config,
        LambdaEvent::new(event.clone(), Context::default()),
    ));
    if let Err(violation) =
        oracle::check_trigger(
            config,
            &event,
            &output,
            oracle::Effects {
                executions: &oracle::queued(&ports.1),
                written: &ports.0.objects(),
                recorded: &oracle::recorded(&ports.1),
            },
        )
    {
        panic!("{violation}");
    }
});
