//! Hostile input: oversized and deeply nested events, non-UTF-8 percent-encodings, keys at and
//! past S3's 1,024 bytes, 10,000-record batches, control characters and `..` in keys, and
//! malformed job specs. Each gets a clear error or correct handling; nothing panics, nothing
//! is silently dropped, no job reaches outside its route.
//!
//! `s3-trigger` outcomes are judged by the same oracle the fuzz targets use
//! (`fuzz/src/oracle.rs`): every object is in a queued job of its route, counted unmatched,
//! or behind a failed message.

#[path = "../../../fuzz/src/oracle.rs"]
mod oracle;

use std::sync::OnceLock;

use ferry::FerryError;
use ferry::config::{FromEnvironment, TaskConfig};
use ferry::fakes::{FakeLanes, FakeTasks, FakeTrigger};
use ferry::handlers::s3_trigger::{self, TriggerOutput, TriggerSummary};
use ferry::handlers::start_task::{self, StartTaskOutput};
use ferry::trigger::config::TriggerConfig;
use ferry::trigger::key::{KeyError, MAX_KEY_BYTES, decode_notification_key};
use lambda_runtime::{Context, LambdaEvent};
use proptest::prelude::*;
use serde_json::{Value, json};

fn config() -> &'static TriggerConfig {
    static CONFIG: OnceLock<TriggerConfig> = OnceLock::new();
    CONFIG.get_or_init(oracle::trigger_config)
}

/// Runs `s3-trigger` on `event` and holds the outcome to the oracle.
/// The in-memory S3 and Step Functions, and the lane table.
type Ports = (FakeTrigger, FakeLanes);

async fn trigger(event: Value) -> (Result<TriggerOutput, FerryError>, Ports) {
    let ports = (FakeTrigger::new(), FakeLanes::new());
    let output = s3_trigger::handle(
        &ports,
        config(),
        LambdaEvent::new(event.clone(), Context::default()),
    )
    .await;
    let queued = oracle::queued(&ports.1);
    let written = ports.0.objects();
    let recorded = oracle::recorded(&ports.1);
    let effects = oracle::Effects {
        executions: &queued,
        written: &written,
        recorded: &recorded,
    };
    if let Err(violation) = oracle::check_trigger(config(), &event, &output, effects) {
        panic!("{violation}");
    }
    (output, ports)
}

fn record(bucket: &str, encoded_key: &str) -> Value {
    json!({"eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
           "s3": {"bucket": {"name": bucket},
                  "object": {"key": encoded_key, "size": 1, "sequencer": "0055AED6DCD90281E5"}}})
}

/// An SQS batch with one S3 notification per message, ids `m0`, `m1`, ...
fn sqs(keys: &[(&str, String)]) -> Value {
    json!({"Records": keys.iter().enumerate().map(|(i, (bucket, key))| json!({
        "messageId": format!("m{i}"), "eventSource": "aws:sqs",
        "body": json!({"Records": [record(bucket, key)]}).to_string()
    })).collect::<Vec<_>>()})
}

fn failed_ids(output: &Result<TriggerOutput, FerryError>) -> Vec<String> {
    match output {
        Ok(TriggerOutput::Sqs(response)) => response
            .batch_item_failures
            .iter()
            .map(|f| f.item_identifier.clone())
            .collect(),
        other => panic!("expected an SQS batch response, got {other:?}"),
    }
}

fn summary(output: Result<TriggerOutput, FerryError>) -> TriggerSummary {
    match output {
        Ok(TriggerOutput::Summary(summary)) => summary,
        other => panic!("expected a summary, got {other:?}"),
    }
}

const DATA: &str = "ferry-data-repository";

#[tokio::test]
async fn a_six_megabyte_event_of_ten_thousand_records_is_handled_in_full() {
    // Lambda's synchronous payload limit is 6 MB: 10,000 records with keys of ~500 bytes.
    let records: Vec<Value> = (0..10_000)
        .map(|i| {
            let route = ["incoming/", "outgoing/", "export/", "release/", "nowhere/"][i % 5];
            record(
                DATA,
                &format!("{route}{}/{i:05}.h5", "d".repeat(480 + i % 7)),
            )
        })
        .collect();
    let event = json!({ "Records": records });
    let bytes = event.to_string().len();
    assert!(bytes > 6_000_000, "{bytes} bytes");
    let (output, fake) = trigger(event).await;
    let s = summary(output);
    assert_eq!(s.objects, 10_000);
    assert_eq!(s.unmatched, 2_000);
    // One job per FSx route (paths collapsed to the cap) and one DataSync manifest job.
    assert_eq!(s.enqueued.len(), 4, "{s:?}");
    assert_eq!(
        fake.0.objects().len(),
        1,
        "the DataSync batch needs a manifest"
    );
}

#[tokio::test]
async fn ten_thousand_messages_are_each_started_unmatched_refused_ignored_or_failed() {
    let mut keys: Vec<(&str, String)> = Vec::new();
    for i in 0..10_000 {
        let key = match i % 8 {
            0 => format!("incoming/run-{}/f{i}.nc", i % 13),
            1 => format!("outgoing/a+b/{i}"),
            2 => format!("export/x/{i}"),
            3 => format!("release/{i}"),
            4 => format!("sync/{i}"),
            5 => format!("elsewhere/{i}"),
            6 => format!("incoming/bad%FF{i}"), // not UTF-8: fails alone
            _ => format!("sync/a%7Cpipe{i}"),   // '|' and no manifest: refused, recorded
        };
        keys.push((DATA, key));
    }
    let (output, fake) = trigger(sqs(&keys)).await;
    let failed = failed_ids(&output);
    assert_eq!(failed.len(), 1_250, "exactly the unreadable keys");
    assert!(
        failed
            .iter()
            .all(|id| id[1..].parse::<usize>().unwrap() % 8 == 6)
    );
    let refused: Vec<usize> = refused_ids(&fake)
        .iter()
        .map(|id| id[1..].parse().unwrap())
        .collect();
    assert_eq!(
        refused.len(),
        1_250,
        "the inexpressible keys, recorded once each"
    );
    assert!(refused.iter().all(|i| i % 8 == 7));
    assert!(!fake.1.jobs().is_empty());
}

#[tokio::test]
async fn deeply_nested_json_is_a_clear_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    // What lambda_runtime does with the raw event: serde_json's recursion limit (128) holds.
    let e = serde_json::from_str::<Value>(&deep).unwrap_err();
    assert!(e.to_string().contains("recursion limit"), "{e}");
    // In an SQS body: that message alone fails, naming the field.
    let event = json!({"Records": [
        {"messageId": "deep", "eventSource": "aws:sqs", "body": deep},
        {"messageId": "fine", "eventSource": "aws:sqs",
         "body": json!({"Records": [record(DATA, "incoming/a")]}).to_string()},
    ]});
    let (output, fake) = trigger(event).await;
    assert_eq!(failed_ids(&output), ["deep"]);
    assert_eq!(fake.1.jobs().len(), 1);
    // Nesting within the limit, in a field Ferry does not read, is ignored.
    let mut nested = json!("leaf");
    for _ in 0..120 {
        nested = json!([nested]);
    }
    let mut event = json!({"Records": [record(DATA, "incoming/b")]});
    event["Records"][0]["s3"]["object"]["extra"] = nested.clone();
    let s = summary(trigger(event).await.0);
    assert_eq!(s.enqueued.len(), 1);
    // A job spec nested as deep is refused naming the field.
    let input = json!({"job": {"name": "n", "kind": "fsx_export",
                               "file_system_id": "fs-0123456789abcdef0", "tags": nested}});
    let e = start(input).await.unwrap_err();
    assert_eq!(e.error_type(), "InvalidJob");
    assert!(e.to_string().contains("job.tags: invalid type"), "{e}");
}

#[tokio::test]
async fn non_utf8_percent_encodings_fail_their_message_alone() {
    for bad in ["%FF%FE", "%C3", "%C0%AF", "%ED%A0%80", "a%F4%90%80%80"] {
        assert!(
            matches!(
                decode_notification_key(&format!("incoming/{bad}")),
                Err(KeyError::NotUtf8 { .. })
            ),
            "{bad}"
        );
        let keys = [
            (DATA, format!("incoming/{bad}")),
            (DATA, "incoming/ok".into()),
        ];
        let (output, fake) = trigger(sqs(&keys)).await;
        assert_eq!(failed_ids(&output), ["m0"], "{bad}");
        assert_eq!(fake.1.jobs().len(), 1);
        // A direct event cannot fail one record: the whole invocation errs (Lambda retries it)
        // with a message naming the field and the key.
        let direct = json!({"Records": [record(DATA, &format!("incoming/{bad}")),
                                        record(DATA, "incoming/ok")]});
        let e = trigger(direct).await.0.unwrap_err();
        assert_eq!(e.error_type(), "InvalidEvent");
        assert!(e.to_string().contains("Records[0].s3.object.key"), "{e}");
        assert!(e.to_string().contains("not UTF-8"), "{e}");
    }
    // Malformed escapes are not escapes: kept literally (WHATWG percent-decode).
    assert_eq!(decode_notification_key("a%zz%4").unwrap(), "a%zz%4");
}

/// The ids of the messages whose uploads were recorded refused.
fn refused_ids(ports: &Ports) -> Vec<String> {
    ports
        .1
        .dropped_uploads()
        .into_iter()
        .filter(|d| d.why.starts_with("refused: "))
        .filter_map(|d| d.message_id)
        .collect()
}

#[tokio::test]
async fn keys_of_1024_bytes_pass_and_longer_keys_fail_alone() {
    let at = |n: usize| format!("incoming/{}", "k".repeat(n - "incoming/".len()));
    let exact = at(MAX_KEY_BYTES);
    assert_eq!(exact.len(), 1024);
    // 1,024 bytes of two-byte characters, encoded to 3,072 characters.
    let wide = format!("incoming/{}", "é".repeat((MAX_KEY_BYTES - 9) / 2));
    assert!(wide.len() <= MAX_KEY_BYTES && wide.len() > MAX_KEY_BYTES - 2);
    let keys = [
        (DATA, exact.clone()),
        (DATA, oracle::form_encode(&wide)),
        (DATA, at(MAX_KEY_BYTES + 1)),
        (DATA, format!("outgoing/{}", "o".repeat(1015))),
        (DATA, format!("export/{}", "e".repeat(1017))),
    ];
    let (output, fake) = trigger(sqs(&keys)).await;
    assert_eq!(failed_ids(&output), ["m2"]);
    let jobs: Vec<Value> = oracle::queued(&fake.1)
        .into_iter()
        .map(|(_, i)| i)
        .collect();
    let import = jobs
        .iter()
        .find(|j| j["job"]["kind"] == "fsx_import")
        .unwrap();
    let paths = import["job"]["paths"].as_array().unwrap();
    assert!(paths.contains(&json!(format!("s3://{DATA}/{exact}"))));
    assert!(paths.contains(&json!(format!("s3://{DATA}/{wide}"))));
    let e = decode_notification_key(&at(MAX_KEY_BYTES + 1)).unwrap_err();
    assert_eq!(e, KeyError::TooLong { bytes: 1025 });
    assert!(e.to_string().contains("1024"), "{e}");
}

#[tokio::test]
async fn control_characters_in_keys_are_refused_alone_or_go_to_a_manifest() {
    for (encoded, name) in [
        ("%00", "NUL"),
        ("%0D", "CR"),
        ("%0A", "LF"),
        ("%C2%85", "NEL"),
    ] {
        let keys = [
            (DATA, format!("incoming/a{encoded}b")), // FSx paths cannot hold it
            (DATA, format!("outgoing/a{encoded}b")), // DataSync with a manifest: quoted there
            (DATA, format!("sync/a{encoded}b")),     // DataSync without one: refused alone
            (DATA, "incoming/fine".into()),
        ];
        let (output, fake) = trigger(sqs(&keys)).await;
        // Refused for good (no delivery could change it): recorded for people, acknowledged.
        assert!(failed_ids(&output).is_empty(), "{name}");
        let refused = refused_ids(&fake);
        assert_eq!(refused, ["m0", "m2"], "{name}");
        let written = fake.0.objects();
        assert_eq!(written.len(), 1, "{name}: the manifest");
        let decoded = decode_notification_key(&format!("a{encoded}b")).unwrap();
        let mut manifest = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(written[0].2.as_slice());
        let rows: Vec<csv::StringRecord> = manifest.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 1, "{name}");
        assert_eq!(&rows[0][0], decoded, "{name}");
    }
}

#[tokio::test]
async fn dot_segments_and_double_slashes_never_reach_outside_the_route() {
    let hostile = [
        "..",
        "../x",
        "a/../../x",
        "./x",
        "a/./x",
        "a//x",
        "/x",
        "%2e%2e/x",
        "%2E%2E%2Fx",
        "a/..",
        "a/%2e%2e/%2e%2e/etc/passwd",
        "..%2F..%2Fsecret",
    ];
    for rest in hostile {
        let mut keys: Vec<(&str, String)> = Vec::new();
        for prefix in ["incoming/", "outgoing/", "export/", "release/", "sync"] {
            keys.push((DATA, format!("{prefix}{rest}")));
        }
        // The oracle checks every started path, include and manifest line against its route.
        let (_, fake) = trigger(sqs(&keys)).await;
        let refused = refused_ids(&fake);
        for (i, (_, key)) in keys.iter().enumerate() {
            // No route takes a key with a `..` segment: FSx paths and DataSync refuse it.
            let decoded = decode_notification_key(key).unwrap();
            if decoded.split('/').any(|s| s == "..") {
                assert!(
                    refused.contains(&format!("m{i}")),
                    "{decoded:?}: {refused:?}"
                );
            }
        }
        for (_, input) in oracle::queued(&fake.1) {
            let text = input.to_string();
            assert!(
                !text.contains("/../") && !text.contains("\"../"),
                "{rest}: {text}"
            );
        }
        for (_, key, body) in fake.0.objects() {
            let body = String::from_utf8(body).unwrap();
            assert!(
                !body.split('/').any(|s| s.trim() == ".."),
                "{rest}: manifest {key}: {body}"
            );
        }
    }
}

async fn start(input: Value) -> Result<StartTaskOutput, FerryError> {
    let config = ferry_tests::laned(TaskConfig::from_lookup(|_| None).unwrap());
    start_task::handle(
        &(FakeTasks::new(), FakeLanes::new()),
        &config,
        LambdaEvent::new(input, Context::default()),
    )
    .await
}

#[tokio::test]
async fn hostile_job_specs_are_refused_naming_each_field() {
    let fs = "fs-0123456789abcdef0";
    let cases = [
        (
            json!({"job": {"name": "n", "kind": "fsx_export", "file_system_id": fs,
                           "paths": ["a".repeat(4097)]}}),
            "job.paths[0]",
        ),
        (
            json!({"job": {"name": "n", "kind": "fsx_export", "file_system_id": fs,
                           "paths": ["a/../../etc"]}}),
            "job.paths[0]",
        ),
        (
            json!({"job": {"name": "n", "kind": "fsx_export", "file_system_id": fs,
                           "paths": ["a\u{0}b"]}}),
            "job.paths[0]",
        ),
        (
            json!({"job": {"name": "n", "kind": "fsx_import", "file_system_id": fs,
                           "paths": ["s3://bucket/../other"]}}),
            "job.paths[0]",
        ),
        (
            json!({"job": {"name": "n", "kind": "fsx_export", "file_system_id": fs,
                           "tags": (0..10_000).map(|i| (format!("k{i}"), json!("v")))
                                              .collect::<serde_json::Map<_, _>>()}}),
            "job.tags",
        ),
        (
            json!({"job": {"name": "x".repeat(6_000_000), "kind": "fsx_export", "file_system_id": fs}}),
            "job.name",
        ),
        (
            json!({"job": {"name": "n", "kind": "datasync",
                           "task_arn": "arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718",
                           "includes": ["/a\nb"]}}),
            "job.includes[0]",
        ),
        (json!({"job": 7}), "job"),
        (json!([]), "input"),
        (
            json!({"job": {"name": "n", "kind": "fsx_export", "file_system_id": fs},
                "extra": true}),
            "extra: unknown field",
        ),
    ];
    for (input, field) in cases {
        let e = start(input).await.unwrap_err();
        assert_eq!(e.error_type(), "InvalidJob", "{field}: {e}");
        let message = e.to_string();
        assert!(
            message.contains(field),
            "{field}: {}",
            &message[..message.len().min(300)]
        );
        // What Lambda returns (and Step Functions keeps in the error's Cause) never echoes a
        // multi-megabyte input back.
        let diagnostic = lambda_runtime::Diagnostic::from(e);
        assert!(diagnostic.error_message.starts_with("invalid job: "));
        assert!(
            diagnostic.error_message.len() <= ferry::error::MAX_ERROR_MESSAGE_BYTES,
            "{field}: {} bytes",
            diagnostic.error_message.len()
        );
    }
}

/// Keys under each route's prefix, from arbitrary bytes.
fn arbitrary_keys() -> impl Strategy<Value = Vec<(usize, String)>> {
    prop::collection::vec(
        (
            0..oracle::ROUTE_KEYS.len(),
            prop::string::string_regex("[a-z./|* %+\u{e9}\n-]{0,24}").unwrap(),
        ),
        1..40,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any key, encoded as S3 encodes keys in notifications, decodes to itself.
    #[test]
    fn encoding_then_decoding_a_key_is_the_identity(key in "\\PC{1,200}") {
        prop_assert_eq!(decode_notification_key(&oracle::form_encode(&key)), Ok(key));
    }

    /// Any batch of keys under the routes: every object started, unmatched or failed alone.
    #[test]
    fn arbitrary_batches_lose_nothing(keys in arbitrary_keys()) {
        let keys: Vec<(&str, String)> = keys
            .into_iter()
            .map(|(route, rest)| {
                let (bucket, prefix) = oracle::ROUTE_KEYS[route];
                (bucket, oracle::form_encode(&format!("{prefix}{rest}")))
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (output, _) = runtime.block_on(trigger(sqs(&keys)));
        prop_assert!(output.is_ok());
    }
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("\\PC{0,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A DataSync execution state change (EventBridge events reference, AWS DataSync events).
fn datasync_state_change() -> Value {
    json!({"version": "0", "id": "6a7e8f0b-1c2d-4e3f-8a9b-0c1d2e3f4a5b",
           "detail-type": "DataSync Task Execution State Change", "source": "aws.datasync",
           "account": "111122223333", "time": "2026-11-30T03:12:44Z", "region": "us-east-1",
           "resources": ["arn:aws:datasync:us-east-1:111122223333:task/task-0a1b2c3d4e5f60718/execution/exec-0123456789abcdef0"],
           "detail": {"State": "SUCCESS"}})
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// `datasync-event` reads any event without panicking: one field replaced by anything is
    /// either still a state change of an execution, or refused as an invalid event that names
    /// what is wrong.
    #[test]
    fn any_datasync_event_is_read_or_refused_by_name(
        field in prop::sample::select(vec!["source", "detail-type", "resources", "detail", "id", "time"]),
        value in any_json(),
    ) {
        let mut event = datasync_state_change();
        event[field] = value;
        match ferry::handlers::datasync_event::state_change(event) {
            Ok((execution, state)) => {
                prop_assert!(execution.as_str().contains("/execution/"));
                prop_assert!(!state.is_empty());
            }
            Err(FerryError::InvalidEvent { message }) => {
                prop_assert!(
                    ["source", "detail", "resources", "State", "not an EventBridge DataSync event"]
                        .iter()
                        .any(|w| message.contains(w)),
                    "{}", message
                );
            }
            Err(other) => prop_assert!(false, "{other}"),
        }
    }
}

/// Found by `arbitrary_batches_lose_nothing` on CI (2026-12-07): a key that is also the folder of
/// another key (`incoming/é` and `incoming/é/a`), in one import batch.
#[tokio::test]
async fn a_key_that_is_also_a_folder_of_another_is_imported_too() {
    let (bucket, prefix) = oracle::ROUTE_KEYS[0];
    let keys: Vec<(&str, String)> = ["-", "é/a", "|", "%", "é"]
        .iter()
        .map(|rest| (bucket, oracle::form_encode(&format!("{prefix}{rest}"))))
        .collect();
    let (output, _) = trigger(sqs(&keys)).await;
    assert!(output.is_ok());
}
