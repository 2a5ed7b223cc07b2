//! `s3-trigger` end to end through its real handler, with in-memory Step Functions, S3 and
//! lane table.

use std::path::Path;

use aws_lambda_events::sqs::SqsBatchResponse;
use ferry::FerryError;
use ferry::config::{ENV_ROUTES, ENV_STATE_MACHINE_ARN, FromEnvironment};
use ferry::domain::job::{JobKind, JobSpec, Limits};
use ferry::domain::validate::{MAX_FILTER_CHARS, filter_value_len};
use ferry::fakes::{FakeFailure, FakeLanes, FakeTrigger};
use ferry::handlers::s3_trigger::{self, TriggerOutput};
use ferry::lanes::record::JobState;
use ferry::trigger::config::TriggerConfig;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

fn config() -> TriggerConfig {
    let text = std::fs::read_to_string(root().join("config/routes.example.json")).unwrap();
    ferry_tests::trigger_config(&text)
}

fn fixture(case: &str) -> Value {
    let path = root().join(format!("events/s3-trigger/{case}.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// In-memory S3 and Step Functions (manifests, runner starts), and the lane table.
type Fakes = (FakeTrigger, FakeLanes);

fn fakes() -> Fakes {
    (FakeTrigger::new(), FakeLanes::new())
}

async fn invoke(
    fake: &Fakes,
    config: &TriggerConfig,
    payload: Value,
) -> Result<TriggerOutput, FerryError> {
    s3_trigger::handle(fake, config, LambdaEvent::new(payload, Context::default())).await
}

fn failures(output: TriggerOutput) -> Vec<String> {
    match output {
        TriggerOutput::Sqs(response) => response
            .batch_item_failures
            .into_iter()
            .map(|f| f.item_identifier)
            .collect(),
        other => panic!("expected an SQS batch response, got {other:?}"),
    }
}

/// The specs of the jobs queued, oldest first.
fn started_jobs(fake: &Fakes) -> Vec<JobSpec> {
    fake.1.jobs().into_iter().map(|(job, _)| job.spec).collect()
}

#[tokio::test]
async fn a_direct_notification_queues_one_job_per_route_with_decoded_keys_and_kicks_each_lane() {
    let fake = fakes();
    let output = invoke(&fake, &config(), fixture("s3-direct"))
        .await
        .unwrap();
    let TriggerOutput::Summary(summary) = output else {
        panic!("expected a summary")
    };
    assert_eq!(
        (summary.objects, summary.unmatched, summary.enqueued.len()),
        (6, 1, 2)
    );
    let jobs = started_jobs(&fake);
    assert_eq!(
        fake.0.executions().len(),
        2,
        "one runner per lane (the file system, the DataSync task)"
    );
    let import = jobs.iter().find(|j| j.kind == JobKind::FsxImport).unwrap();
    assert_eq!(
        import.paths,
        [
            "s3://ferry-data-repository/incoming/2026-11-21/100% done.txt",
            "s3://ferry-data-repository/incoming/2026-11-21/c++ results+final.csv",
            "s3://ferry-data-repository/incoming/2026-11-21/run 001/output.h5",
            "s3://ferry-data-repository/incoming/2026-11-21/日本語/データ.bin",
        ]
    );
    let sync = jobs.iter().find(|j| j.kind == JobKind::Datasync).unwrap();
    assert_eq!(sync.includes, ["/results/summary.csv"]);
    for job in jobs {
        job.validate(&Limits::default())
            .expect("every started job is valid");
    }
}

#[tokio::test]
async fn the_sqs_test_event_is_ignored_and_a_pipe_key_goes_to_a_manifest() {
    let fake = fakes();
    let output = invoke(&fake, &config(), fixture("sqs-batch"))
        .await
        .unwrap();
    assert!(failures(output).is_empty());
    let jobs = started_jobs(&fake);
    assert_eq!(jobs.len(), 2);
    let sync = jobs.iter().find(|j| j.kind == JobKind::Datasync).unwrap();
    assert!(
        sync.includes.is_empty(),
        "a '|' in a key cannot go in a filter"
    );
    let manifest = sync.manifest.as_ref().expect("manifest override");
    assert_eq!(manifest.bucket_arn, "arn:aws:s3:::ferry-data-repository");
    assert!(
        manifest
            .object_path
            .starts_with("ferry-manifests/outgoing-sync-")
    );
    let objects = fake.0.objects();
    assert_eq!(objects.len(), 1);
    assert_eq!(objects[0].1, manifest.object_path);
    assert_eq!(
        String::from_utf8(objects[0].2.clone()).unwrap(),
        "2026-11-21/metrics|v2.json\n2026-11-21/model.pt\n"
    );
}

#[tokio::test]
async fn uploads_that_start_nothing_are_recorded_with_their_keys_and_messages() {
    let fake = fakes();
    // s3-direct: one object outside every route; sqs-batch: the test event S3 sends.
    invoke(&fake, &config(), fixture("s3-direct"))
        .await
        .unwrap();
    invoke(&fake, &config(), fixture("sqs-batch"))
        .await
        .unwrap();
    let dropped = fake.1.dropped_uploads();
    type Seen<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Option<&'a str>);
    let seen: Vec<Seen> = dropped
        .iter()
        .map(|d| {
            (
                d.why.as_str(),
                d.bucket.as_deref(),
                d.key.as_deref(),
                d.message_id.as_deref(),
            )
        })
        .collect();
    let bucket = Some("ferry-data-repository");
    assert_eq!(
        seen,
        [
            // No message id: a direct event.
            (
                "matched no route",
                bucket,
                Some("unrouted/readme.txt"),
                None
            ),
            (
                "ignored: s3:TestEvent",
                bucket,
                None,
                Some("059f36b4-87a3-44ab-83d2-661970000000")
            ),
            (
                "ignored: ObjectRemoved:Delete",
                bucket,
                Some("incoming/batch-7/old.h5"),
                Some("059f36b4-87a3-44ab-83d2-661970000004")
            ),
        ]
    );
}

#[tokio::test]
async fn uploads_that_cannot_be_recorded_fail_their_messages_only() {
    let fake = fakes();
    fake.1.fail_next_record_dropped(1);
    let output = invoke(&fake, &config(), fixture("sqs-batch"))
        .await
        .unwrap();
    // Only the messages that carried something to record: the test event, the removal.
    assert_eq!(
        failures(output),
        [
            "059f36b4-87a3-44ab-83d2-661970000000",
            "059f36b4-87a3-44ab-83d2-661970000004"
        ]
    );
    assert_eq!(
        started_jobs(&fake).len(),
        2,
        "the other messages' jobs are queued"
    );
    // A direct event with something to record fails whole: Lambda retries it.
    let fake = fakes();
    fake.1.fail_next_record_dropped(1);
    let error = invoke(&fake, &config(), fixture("s3-direct"))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsService");
}

#[tokio::test]
async fn redelivering_the_same_batch_queues_nothing_new() {
    let fake = fakes();
    let config = config();
    for _ in 0..5 {
        let output = invoke(&fake, &config, fixture("sqs-many-records"))
            .await
            .unwrap();
        assert!(failures(output).is_empty());
    }
    assert_eq!(
        fake.1.jobs().len(),
        1,
        "one job for the batch, however often it arrives"
    );
    assert_eq!(
        fake.0.executions().len(),
        1,
        "one runner: later kicks find the lane held"
    );
    // Records in another order coalesce into the same job, hence the same job id.
    let mut shuffled = fixture("sqs-many-records");
    shuffled["Records"].as_array_mut().unwrap().reverse();
    invoke(&fake, &config, shuffled).await.unwrap();
    assert_eq!(fake.1.jobs().len(), 1);
}

#[tokio::test]
async fn a_poison_message_fails_alone() {
    let fake = fakes();
    let payload = fixture("sqs-with-poison");
    let poison_id = payload["Records"][1]["messageId"]
        .as_str()
        .unwrap()
        .to_owned();
    let output = invoke(&fake, &config(), payload).await.unwrap();
    assert_eq!(failures(output), [poison_id]);
    let jobs = started_jobs(&fake);
    assert_eq!(jobs.len(), 1);
    assert_eq!(
        jobs[0].paths,
        [
            "s3://ferry-data-repository/incoming/batch-8/a.h5",
            "s3://ferry-data-repository/incoming/batch-8/b.h5"
        ]
    );
}

#[tokio::test]
async fn a_failed_enqueue_fails_exactly_the_messages_behind_it() {
    let fake = fakes();
    // Routes are planned in order: the import job is enqueued first and fails.
    fake.1.fail_next_enqueues(1);
    let payload = fixture("sqs-batch");
    let output = invoke(&fake, &config(), payload.clone()).await.unwrap();
    let ids = |indices: &[usize]| -> Vec<String> {
        indices
            .iter()
            .map(|&i| {
                payload["Records"][i]["messageId"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        failures(output),
        ids(&[1, 2]),
        "the two messages with incoming/ objects"
    );
    assert_eq!(fake.1.jobs().len(), 1, "the DataSync job is still queued");
    // The redelivered messages queue the import; the DataSync job is not queued twice.
    let mut redelivered = payload.clone();
    redelivered["Records"] = json!([payload["Records"][1], payload["Records"][2]]);
    let output = invoke(&fake, &config(), redelivered).await.unwrap();
    assert!(failures(output).is_empty());
    assert_eq!(fake.1.jobs().len(), 2);
    assert!(
        fake.1
            .jobs()
            .iter()
            .all(|(_, state)| *state == JobState::Pending)
    );
}

#[tokio::test]
async fn a_failed_kick_fails_nothing_the_jobs_wait_for_the_sweep() {
    let fake = fakes();
    fake.0.fail_next_start(FakeFailure::Throttled);
    fake.0.fail_next_start(FakeFailure::Throttled);
    let output = invoke(&fake, &config(), fixture("sqs-batch"))
        .await
        .unwrap();
    assert!(
        failures(output).is_empty(),
        "the jobs are queued: acknowledge"
    );
    assert_eq!(fake.1.jobs().len(), 2);
    assert!(fake.0.executions().is_empty(), "no runner started");
    // The failed kicks gave their leases back: the next entry (or the sweep) starts runners.
    for (job, _) in fake.1.jobs() {
        assert_eq!(fake.1.lease(&job.lane), None, "{}", job.lane);
    }
}

#[tokio::test]
async fn a_manifest_that_cannot_be_written_fails_its_messages() {
    let fake = fakes();
    fake.0.fail_next_puts(1);
    let payload = fixture("sqs-batch");
    let output = invoke(&fake, &config(), payload.clone()).await.unwrap();
    assert_eq!(
        failures(output),
        [payload["Records"][3]["messageId"]
            .as_str()
            .unwrap()
            .to_owned()]
    );
    assert!(
        started_jobs(&fake)
            .iter()
            .all(|j| j.kind != JobKind::Datasync)
    );
}

#[tokio::test]
async fn a_direct_event_that_cannot_be_queued_is_an_error_not_ok() {
    let fake = fakes();
    fake.1.fail_next_enqueues(1);
    let error = invoke(&fake, &config(), fixture("eventbridge-object-created"))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "AwsService");
    // Retried by Lambda: now it is queued.
    let output = invoke(&fake, &config(), fixture("eventbridge-object-created"))
        .await
        .unwrap();
    let TriggerOutput::Summary(summary) = output else {
        panic!()
    };
    assert_eq!(summary.enqueued.len(), 1);
    assert_eq!(
        started_jobs(&fake)[0].paths,
        ["s3://ferry-data-repository/incoming/2026-11-21/eventbridge upload.h5"]
    );
}

#[tokio::test]
async fn an_sns_event_s3_sns_lambda_queues_its_uploads_and_a_bad_record_fails_the_invocation() {
    let fake = fakes();
    let output = invoke(&fake, &config(), fixture("sns-direct"))
        .await
        .unwrap();
    let TriggerOutput::Summary(summary) = output else {
        panic!("expected a summary: SNS has no batch response")
    };
    assert_eq!((summary.objects, summary.enqueued.len()), (1, 1));
    assert_eq!(
        started_jobs(&fake)[0].paths,
        ["s3://ferry-data-repository/incoming/2026-11-21/via sns/output.h5"]
    );
    // A record that cannot be read fails the whole invocation (Lambda retries it, then its
    // on-failure destination): never Ok with the upload dropped.
    let mut bad = fixture("sns-direct");
    bad["Records"][0]["Sns"]["Message"] = Value::from("{\"Records\": 3}");
    let error = invoke(&fakes(), &config(), bad).await.unwrap_err();
    assert_eq!(error.error_type(), "InvalidEvent");
    assert!(
        error.to_string().contains("Records[0].Sns.Message"),
        "{error}"
    );
}

/// A batch of `n` SQS messages, one S3 record each (as S3 sends them), with `key(i)`.
fn sqs_batch(n: usize, key: impl Fn(usize) -> String) -> Value {
    let records: Vec<Value> = (0..n)
        .map(|i| {
            let encoded = key(i).replace('%', "%25").replace('+', "%2B").replace(' ', "+");
            let body = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "ferry-data-repository"}, "object": {"key": encoded, "size": 1}}}]});
            json!({"messageId": format!("m{i}"), "eventSource": "aws:sqs", "body": body.to_string()})
        })
        .collect();
    json!({ "Records": records })
}

#[tokio::test]
async fn ten_thousand_records_become_few_jobs_that_obey_every_limit() {
    let config = config();
    type KeyOf = fn(usize) -> String;
    let distributions: [(&str, KeyOf); 4] = [
        ("one folder", |i| format!("incoming/one/part-{i:05}")),
        ("all different folders", |i| {
            format!("incoming/d{i:05}/file")
        }),
        ("deep tree", |i| {
            format!("incoming/{}/{}/{}/{}/f{i}", i % 3, i % 5, i % 7, i % 11)
        }),
        ("datasync", |i| {
            format!("outgoing/{}/{i:05}-{}.bin", i % 97, "x".repeat(40))
        }),
    ];
    for (label, key) in distributions {
        let fake = fakes();
        let output = invoke(&fake, &config, sqs_batch(10_000, key))
            .await
            .unwrap();
        assert!(failures(output).is_empty(), "{label}");
        let jobs = started_jobs(&fake);
        assert!(
            !jobs.is_empty() && jobs.len() <= 10_000usize.div_ceil(32),
            "{label}: {} jobs",
            jobs.len()
        );
        for job in jobs {
            assert!(job.paths.len() <= 32, "{label}");
            assert!(
                filter_value_len(&job.includes) <= MAX_FILTER_CHARS,
                "{label}"
            );
            job.validate(&Limits::default())
                .unwrap_or_else(|e| panic!("{label}: {e}"));
        }
    }
}

#[tokio::test]
async fn keys_with_every_kind_of_character_survive_the_round_trip() {
    let fake = fakes();
    let keys = [
        "incoming/space and+plus.h5",
        "incoming/percent%41literal",
        "incoming/ünïcödé/ファイル.dat",
        "incoming/quote\"and'apostrophe",
    ];
    let long = format!("incoming/{}", "k".repeat(1024 - "incoming/".len()));
    let all: Vec<String> = keys
        .iter()
        .map(|k| k.to_string())
        .chain([long.clone()])
        .collect();
    let output = invoke(&fake, &config(), sqs_batch(all.len(), |i| all[i].clone()))
        .await
        .unwrap();
    assert!(failures(output).is_empty());
    let paths = &started_jobs(&fake)[0].paths;
    for key in &all {
        assert!(
            paths.contains(&format!("s3://ferry-data-repository/{key}")),
            "{key} missing from {paths:?}"
        );
    }
    // One byte more than S3 allows is refused, alone.
    let too_long = format!("{long}k");
    let output = invoke(&fake, &config(), sqs_batch(1, |_| too_long.clone()))
        .await
        .unwrap();
    assert_eq!(failures(output), ["m0"]);
}

#[tokio::test]
async fn an_sqs_record_without_a_message_id_fails_the_whole_batch() {
    let fake = fakes();
    let payload = json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]});
    let error = invoke(&fake, &config(), payload).await.unwrap_err();
    assert_eq!(error.error_type(), "InvalidEvent");
}

#[test]
fn a_batch_item_failure_serializes_as_lambda_expects() {
    let mut batch = SqsBatchResponse::default();
    batch.add_failure("m1");
    let response = TriggerOutput::Sqs(batch);
    assert_eq!(
        serde_json::to_value(response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "m1"}]})
    );
}

#[test]
fn routes_that_overlap_stop_the_function_at_cold_start() {
    let routes = json!([
        {"name": "a", "bucket": "b-bucket", "prefix": "in/", "job": {"name": "a", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}},
        {"name": "b", "bucket": "b-bucket", "prefix": "in/deeper/", "job": {"name": "b", "kind": "fsx_import", "file_system_id": "fs-0123456789abcdef0"}}
    ])
    .to_string();
    let error = TriggerConfig::from_lookup(|name| match name {
        n if n == ENV_ROUTES => Some(routes.clone()),
        n if n == ENV_STATE_MACHINE_ARN => Some(ferry_tests::STATE_MACHINE.into()),
        _ => None,
    })
    .unwrap_err();
    assert_eq!(error.variable, ENV_ROUTES);
    assert!(error.problem.contains("overlaps"), "{error}");
    let missing = TriggerConfig::from_lookup(|_| None).unwrap_err();
    assert!(missing.to_string().contains("FERRY_ROUTES"), "{missing}");
}

/// One SQS message with one upload of `key`, with the sequencer S3 gave that upload.
fn upload(message_id: &str, key: &str, sequencer: &str) -> Value {
    let body = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "ferry-data-repository"},
               "object": {"key": key, "size": 1, "eTag": "0123456789abcdef0123456789abcdef", "sequencer": sequencer}}}]});
    json!({"Records": [{"messageId": message_id, "eventSource": "aws:sqs", "body": body.to_string()}]})
}

#[tokio::test]
async fn a_later_upload_that_coalesces_to_the_same_job_is_still_queued() {
    // Both batches collapse to the same import path once there are more files than the cap;
    // the second batch must not be mistaken for a redelivery of the first.
    let fake = fakes();
    let config = config();
    let batch = |first: usize, tag: &str| {
        let records: Vec<Value> = (first..first + 40)
            .map(|i| {
                upload(&format!("{tag}{i}"), &format!("incoming/run/f{i}"), "00AA")["Records"][0]
                    .clone()
            })
            .collect();
        json!({ "Records": records })
    };
    invoke(&fake, &config, batch(0, "a")).await.unwrap();
    invoke(&fake, &config, batch(40, "b")).await.unwrap();
    let jobs = started_jobs(&fake);
    assert_eq!(jobs.len(), 2, "the second batch is its own job");
    assert_eq!(
        jobs[0].paths, jobs[1].paths,
        "both jobs collapsed to the same paths"
    );
    assert_eq!(jobs[0].paths, ["s3://ferry-data-repository/incoming/run/"]);

    // The same key uploaded again (a new sequencer) is a new upload, not a redelivery.
    let fake = fakes();
    invoke(&fake, &config, upload("m1", "incoming/a.h5", "00AA"))
        .await
        .unwrap();
    invoke(&fake, &config, upload("m1", "incoming/a.h5", "00AA"))
        .await
        .unwrap();
    assert_eq!(fake.1.jobs().len(), 1, "a redelivery queues nothing");
    invoke(&fake, &config, upload("m2", "incoming/a.h5", "00BB"))
        .await
        .unwrap();
    assert_eq!(fake.1.jobs().len(), 2, "an overwrite queues a new import");
}

/// `batch` as SQS delivers it the `receives`th time: `ApproximateReceiveCount` and
/// `SentTimestamp` among each message's attributes (decimal strings, as Lambda's SQS event has
/// them), sent a minute ago.
fn delivered(batch: &Value, receives: u32) -> Value {
    let sent = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        - 60_000;
    let mut batch = batch.clone();
    for record in batch["Records"].as_array_mut().unwrap() {
        record["attributes"] = json!({"ApproximateReceiveCount": receives.to_string(),
                                      "SentTimestamp": sent.to_string()});
    }
    batch
}

/// The messages `range` of `batch`, as one invocation gets them.
fn regrouped(batch: &Value, range: std::ops::Range<usize>) -> Value {
    json!({"Records": batch["Records"].as_array().unwrap()[range].to_vec()})
}

fn summary_of(output: TriggerOutput) -> (Vec<String>, usize) {
    match output {
        TriggerOutput::Sqs(response) => (
            response
                .batch_item_failures
                .into_iter()
                .map(|f| f.item_identifier)
                .collect(),
            0,
        ),
        TriggerOutput::Summary(s) => (Vec::new(), s.uploads_already_queued),
    }
}

#[tokio::test]
async fn a_batch_redelivered_in_other_groupings_queues_no_upload_twice() {
    // Issue 25, mechanism 6: an invocation dies after its enqueue; SQS delivers the messages
    // again in other batches, whose jobs would have other ids.
    let fake = fakes();
    let config = config();
    let batch = sqs_batch(16, |i| {
        if i < 12 {
            format!("incoming/regroup/f{i:02}.h5")
        } else {
            format!("outgoing/regroup/p{i:02}.csv")
        }
    });
    let first = invoke(&fake, &config, delivered(&batch, 1)).await.unwrap();
    assert!(failures(first).is_empty());
    assert_eq!(fake.1.jobs().len(), 2, "one job per route");
    // The answer was lost: every message comes back, in three other groupings.
    let again = delivered(&batch, 2);
    for range in [0..5, 5..14, 14..16, 0..16] {
        let output = invoke(&fake, &config, regrouped(&again, range.clone()))
            .await
            .unwrap();
        assert!(failures(output).is_empty(), "{range:?}: acknowledged");
    }
    assert_eq!(
        fake.1.jobs().len(),
        2,
        "no upload is queued in a second job"
    );
    let covered: Vec<_> = fake.1.covered_uploads();
    assert_eq!(covered.len(), 2);
    assert_eq!(
        covered.iter().map(|(_, ids)| ids.len()).sum::<usize>(),
        16,
        "each job recorded the uploads it covers"
    );

    // Redelivered messages beside new ones: only the new uploads make a job.
    let fresh = sqs_batch(19, |i| format!("incoming/regroup/f{i:02}.h5"));
    let mut mixed = regrouped(&again, 0..12);
    for record in delivered(&fresh, 1)["Records"].as_array().unwrap()[16..].iter() {
        let mut record = record.clone();
        record["messageId"] = json!(format!("new-{}", record["messageId"].as_str().unwrap()));
        mixed["Records"].as_array_mut().unwrap().push(record);
    }
    let output = invoke(&fake, &config, mixed).await.unwrap();
    assert!(failures(output).is_empty());
    let jobs = started_jobs(&fake);
    assert_eq!(jobs.len(), 3);
    // Jobs enqueued within one millisecond sort by id: find the new one by what it covers.
    let new = |path: &String| path.ends_with("f16.h5");
    let with_new: Vec<_> = jobs.iter().filter(|j| j.paths.iter().any(new)).collect();
    assert_eq!(with_new.len(), 1);
    assert_eq!(
        with_new[0].paths,
        [16, 17, 18].map(|i| format!("s3://ferry-data-repository/incoming/regroup/f{i}.h5")),
        "the new job covers the new uploads only"
    );
}

#[tokio::test]
async fn a_redelivery_whose_lane_cannot_be_read_fails_its_messages_and_queues_nothing() {
    let fake = fakes();
    let config = config();
    let batch = sqs_batch(6, |i| format!("incoming/unread/f{i}.h5"));
    // A first delivery does not read the lane table: the failure stays armed.
    fake.1.fail_next_upload_reads(1);
    let output = invoke(&fake, &config, delivered(&regrouped(&batch, 0..3), 1))
        .await
        .unwrap();
    assert!(failures(output).is_empty());
    assert_eq!(fake.1.jobs().len(), 1);
    // The redelivery's read fails: its messages come back, nothing is queued.
    let again = delivered(&batch, 2);
    let output = invoke(&fake, &config, again.clone()).await.unwrap();
    assert_eq!(failures(output), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(fake.1.jobs().len(), 1);
    // Next time it reads: m3..m5 are queued, m0..m2 left out.
    let output = invoke(&fake, &config, again).await.unwrap();
    assert!(failures(output).is_empty());
    // Both jobs may carry the same enqueue millisecond (then they sort by id): compare as a set.
    let mut paths: Vec<Vec<String>> = started_jobs(&fake).into_iter().map(|j| j.paths).collect();
    paths.sort();
    let files = |range: [usize; 3]| {
        range
            .map(|i| format!("s3://ferry-data-repository/incoming/unread/f{i}.h5"))
            .to_vec()
    };
    assert_eq!(paths, [files([0, 1, 2]), files([3, 4, 5])]);
}

#[tokio::test]
async fn a_direct_event_retried_whole_needs_no_lookup() {
    // Direct S3 events carry no receive count: Lambda retries them whole (same grouping), and
    // the job id alone keeps them to one job; no lookup is needed, none is made.
    let fake = fakes();
    invoke(&fake, &config(), fixture("s3-direct"))
        .await
        .unwrap();
    fake.1.fail_next_upload_reads(1);
    let (failed, already) = summary_of(
        invoke(&fake, &config(), fixture("s3-direct"))
            .await
            .unwrap(),
    );
    assert_eq!((failed.len(), already), (0, 0));
    assert_eq!(fake.1.jobs().len(), 2);
}

/// `s3-trigger`'s environment with `vars`, as its cold start reads it.
fn environment(vars: &[(&'static str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let mut all = vec![
        (
            "FERRY_STATE_MACHINE_ARN",
            ferry_tests::STATE_MACHINE.to_owned(),
        ),
        ("FERRY_LANE_TABLE", ferry_tests::LANE_TABLE.to_owned()),
    ];
    all.extend(vars.iter().cloned());
    move |name: &str| {
        all.iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
    }
}

#[tokio::test]
async fn routes_in_an_s3_object_are_read_at_cold_start_and_checked_as_inline_ones() {
    // Issue 31, item 3: FERRY_ROUTES is an environment variable, and Lambda allows 4 KB for all
    // of them; routes past that live in an object.
    use ferry::ids::S3Url;
    use ferry::ports::PutObject;
    let text = std::fs::read_to_string(root().join("config/routes.example.json")).unwrap();
    let fake = fakes();
    let object = S3Url::parse("s3://ferry-config/routes.json", 100).unwrap();
    fake.0
        .put_object(&object, text.clone().into_bytes())
        .await
        .unwrap();
    let url = ("FERRY_ROUTES_URL", object.to_string());

    let loaded = s3_trigger::load(&fake.0, environment(std::slice::from_ref(&url)))
        .await
        .unwrap();
    assert_eq!(loaded.routes, config().routes, "the same routes as inline");
    let output = invoke(&fake, &loaded, fixture("s3-direct")).await.unwrap();
    let TriggerOutput::Summary(summary) = output else {
        panic!("expected a summary")
    };
    assert_eq!(summary.enqueued.len(), 2);

    // Inline routes win: a small deployment needs no object.
    let one = r#"[{"name": "only", "bucket": "b-1", "job": {"name": "n", "kind": "fsx_import",
        "file_system_id": "fs-0123456789abcdef0"}}]"#;
    let inline = s3_trigger::load(
        &fake.0,
        environment(&[url.clone(), (ENV_ROUTES, one.into())]),
    )
    .await
    .unwrap();
    assert_eq!(inline.routes.len(), 1);

    // What stops the cold start names the variable and the object.
    let missing = ("FERRY_ROUTES_URL", "s3://ferry-config/nope.json".to_owned());
    let error = s3_trigger::load(&fake.0, environment(&[missing]))
        .await
        .unwrap_err();
    assert_eq!(error.variable, "FERRY_ROUTES_URL");
    assert!(
        error.problem.contains("s3://ferry-config/nope.json"),
        "{error}"
    );
    let broken = S3Url::parse("s3://ferry-config/broken.json", 100).unwrap();
    fake.0
        .put_object(&broken, br#"[{"name": "x"}]"#.to_vec())
        .await
        .unwrap();
    let error = s3_trigger::load(
        &fake.0,
        environment(&[("FERRY_ROUTES_URL", broken.to_string())]),
    )
    .await
    .unwrap_err();
    assert_eq!(error.variable, "FERRY_ROUTES_URL");
    assert!(
        error.problem.starts_with("s3://ferry-config/broken.json: ")
            && error.problem.contains("bucket"),
        "{error}"
    );
    let huge = S3Url::parse("s3://ferry-config/huge.json", 100).unwrap();
    fake.0
        .put_object(&huge, vec![b' '; (1 << 20) + 1])
        .await
        .unwrap();
    let error = s3_trigger::load(
        &fake.0,
        environment(&[("FERRY_ROUTES_URL", huge.to_string())]),
    )
    .await
    .unwrap_err();
    assert!(error.problem.contains("1,048,576"), "{error}");
    for url in ["s3://ferry-config", "s3://ferry-config/dir/", "https://x/y"] {
        let error = s3_trigger::load(&fake.0, environment(&[("FERRY_ROUTES_URL", url.into())]))
            .await
            .unwrap_err();
        assert!(error.problem.contains("s3://bucket/key"), "{url}: {error}");
    }
    // Neither: the routes are required.
    let error = s3_trigger::load(&fake.0, environment(&[]))
        .await
        .unwrap_err();
    assert_eq!(error.variable, ENV_ROUTES);
}

/// The example routes' file system, linked by one association: `/other/` ↔ `s3://elsewhere/`
/// (the incoming-import route's `s3://ferry-data-repository/incoming/` is in no linked path),
/// or by one that links the route's prefix.
fn links_of_the_example(
    linked_path: &str,
) -> std::collections::HashMap<ferry::ids::FileSystemId, ferry::domain::links::Links> {
    use ferry::domain::links::{Association, Links};
    std::collections::HashMap::from([(
        ferry::ids::FileSystemId::parse("fs-0123456789abcdef0").unwrap(),
        Links::Associations {
            associations: vec![
                Association {
                    id: "dra-0000000000000001".into(),
                    file_system_path: "/other/".into(),
                    data_repository_path: linked_path.into(),
                    lifecycle: "AVAILABLE".into(),
                    auto_import: vec![],
                    auto_export: vec![],
                },
                Association {
                    id: "dra-0000000000000002".into(),
                    file_system_path: "/reports/".into(),
                    data_repository_path: "s3://ferry-data-repository/ferry-reports/".into(),
                    lifecycle: "AVAILABLE".into(),
                    auto_import: vec![],
                    auto_export: vec![],
                },
            ],
        },
    )])
}

#[tokio::test]
async fn a_route_outside_its_file_systems_links_queues_nothing_and_fails_its_messages_for_redelivery()
 {
    let config = config();
    let batch = sqs_batch(3, |i| {
        if i == 2 {
            "outgoing/2026/a.csv".to_owned()
        } else {
            format!("incoming/run-{i}/sample.h5")
        }
    });
    let fake = fakes();
    fake.0.set_links(links_of_the_example("s3://elsewhere/"));
    let output = invoke(&fake, &config, batch.clone()).await.unwrap();
    // The import route's two messages fail (redelivered, then dead-lettered for a redrive);
    // the DataSync upload is queued.
    assert_eq!(failures(output), ["m0", "m1"]);
    let queued = started_jobs(&fake);
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].kind, JobKind::Datasync);

    // Once the route's prefix is linked, the same messages queue their import.
    let fake = fakes();
    fake.0
        .set_links(links_of_the_example("s3://ferry-data-repository/incoming/"));
    let output = invoke(&fake, &config, batch.clone()).await.unwrap();
    assert!(failures(output).is_empty());
    assert_eq!(started_jobs(&fake).len(), 2);

    // Links that cannot be read check nothing: the uploads go through.
    let fake = fakes();
    fake.0.fail_links(FakeFailure::Throttled);
    let output = invoke(&fake, &config, batch).await.unwrap();
    assert!(failures(output).is_empty());
    assert_eq!(started_jobs(&fake).len(), 2);
}

#[tokio::test]
async fn a_misrouted_direct_event_is_an_error_naming_the_route_and_the_associations() {
    let config = config();
    let fake = fakes();
    fake.0.set_links(links_of_the_example("s3://elsewhere/"));
    let event = json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": "ferry-data-repository"}, "object": {"key": "incoming/a.h5", "size": 1}}}]});
    let error = invoke(&fake, &config, event).await.unwrap_err();
    let text = error.to_string();
    assert!(
        text.contains("route incoming-import: its tasks would fail: job.paths[0]: s3://ferry-data-repository/incoming is in no S3 path linked to fs-0123456789abcdef0")
            && text.contains("dra-0000000000000001 /other/ ↔ s3://elsewhere/"),
        "{text}"
    );
    assert!(started_jobs(&fake).is_empty());
}
