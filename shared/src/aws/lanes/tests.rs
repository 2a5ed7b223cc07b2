//! The lane table adapter: the exact items, keys and conditions each operation writes, and how
//! DynamoDB's condition failures become lane outcomes.

use aws_sdk_dynamodb as ddb;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{
    UpdateItemError, UpdateItemInput, UpdateItemOutput,
};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason, TransactWriteItem};
use aws_smithy_mocks::{Rule, mock};
use serde_json::json;
use std::sync::{Arc, Mutex};

use super::*;
use crate::aws::test_support::*;
use crate::domain::job::JobSpec;
use crate::lanes::JobSource;
use crate::lanes::record::{CancelRequest, RunJob};

const TABLE: &str = "ferry-lanes";

fn lanes(rules: &[&Rule]) -> AwsLanes {
    AwsLanes::from_client(mock_client_of!(ddb, rules), TABLE)
}

fn lane() -> LaneId {
    LaneId::parse(&format!("fsx:{FS}")).unwrap()
}

fn queued(n: u8) -> QueuedJob {
    let spec: JobSpec =
        serde_json::from_value(json!({"name": format!("j{n}"), "kind": "fsx_import",
        "file_system_id": FS, "paths": [format!("s3://ferry-data/incoming/{n}")]}))
        .unwrap();
    QueuedJob {
        id: JobId::derive(&JobSource::Uploads([n; 32]), &spec),
        lane: lane(),
        spec,
        collapse_root: Some("s3://ferry-data/incoming/".into()),
        source: "s3-trigger".into(),
        enqueued_at: 1_700_000_000_000 + u64::from(n),
        deadline: 1_700_086_400_000,
    }
}

fn run_of(jobs: &[QueuedJob]) -> RunRecord {
    RunRecord {
        id: RunId("run-1".into()),
        lane: lane(),
        state: RunState::Claimed,
        spec: jobs[0].spec.clone(),
        jobs: jobs
            .iter()
            .map(|j| RunJob {
                id: j.id.clone(),
                name: j.spec.name.clone(),
                source: j.source.clone(),
                enqueued_at: j.enqueued_at,
                state: JobState::Running,
            })
            .collect(),
        token: "ferry-token".into(),
        task: None,
        claimed_at: 1_700_000_001_000,
        deadline: 1_700_003_601_000,
        started_at: None,
        ended_at: None,
        cancel: None,
        canceled_outside: None,
    }
}

fn st(item: &HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_else(|| panic!("no {name} in {item:?}"))
}

fn transacted() -> TransactWriteItemsOutput {
    TransactWriteItemsOutput::builder().build()
}

/// A transaction cancelled with one reason code per item.
fn cancelled(codes: &[&str]) -> TransactWriteItemsError {
    let reasons = codes
        .iter()
        .map(|c| CancellationReason::builder().code(*c).build())
        .collect();
    TransactWriteItemsError::TransactionCanceledException(
        ddb::types::error::TransactionCanceledException::builder()
            .set_cancellation_reasons(Some(reasons))
            .build(),
    )
}

fn items(req: &TransactWriteItemsInput) -> &[TransactWriteItem] {
    req.transact_items()
}

#[tokio::test]
async fn enqueue_writes_the_job_its_queue_entry_its_locator_and_the_lane_once() {
    let job = queued(1);
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    assert_eq!(
        lanes(&[&rule]).enqueue(&job).await.unwrap(),
        Enqueued::Added
    );
    let req = last(&seen);
    let writes = items(&req);
    assert_eq!(writes.len(), 4);
    let put = |i: usize| writes[i].put().expect("a put");
    assert!(
        writes
            .iter()
            .all(|w| w.put().is_some_and(|p| p.table_name() == TABLE))
    );
    assert_eq!(st(put(0).item(), "pk"), format!("lane#fsx:{FS}"));
    assert_eq!(st(put(0).item(), "sk"), format!("job#{}", job.id));
    assert_eq!(st(put(0).item(), "job_state"), "pending");
    assert_eq!(
        put(0).condition_expression(),
        Some("attribute_not_exists(pk)")
    );
    assert_eq!(
        st(put(1).item(), "sk"),
        format!("pending#{:020}#{}", 1_700_000_000_001u64, job.id),
        "pending entries sort by enqueue time"
    );
    let stored: QueuedJob = serde_json::from_str(&st(put(1).item(), "doc_json")).unwrap();
    assert_eq!(stored, job);
    assert_eq!(st(put(2).item(), "pk"), format!("job#{}", job.id));
    assert_eq!(st(put(2).item(), "lane_key"), format!("fsx:{FS}"));
    assert_eq!(
        (st(put(3).item(), "pk"), st(put(3).item(), "sk")),
        ("lanes".into(), format!("fsx:{FS}"))
    );
}

#[tokio::test]
async fn a_job_enqueued_before_is_already_queued_and_a_conflict_is_retried() {
    let job = queued(1);
    let seen_before = mock!(ddb::Client::transact_write_items)
        .then_error(|| cancelled(&["ConditionalCheckFailed", "None", "None", "None"]));
    assert_eq!(
        lanes(&[&seen_before]).enqueue(&job).await.unwrap(),
        Enqueued::AlreadyQueued
    );
    assert_error_types(
        mock!(ddb::Client::transact_write_items),
        async |rule| lanes(&[rule]).enqueue(&job).await,
        vec![
            (
                cancelled(&["None", "TransactionConflict", "None", "None"]),
                "Throttled",
            ),
            (
                TransactWriteItemsError::ResourceNotFoundException(
                    ddb::types::error::ResourceNotFoundException::builder().build(),
                ),
                "NotFound",
            ),
            (
                TransactWriteItemsError::generic(code("ProvisionedThroughputExceededException")),
                "Throttled",
            ),
        ],
    )
    .await;
}

fn updated() -> UpdateItemOutput {
    UpdateItemOutput::builder().build()
}

fn condition_failed(old: &[(&str, AttributeValue)]) -> UpdateItemError {
    UpdateItemError::ConditionalCheckFailedException(
        ddb::types::error::ConditionalCheckFailedException::builder()
            .set_item(Some(
                old.iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
            ))
            .build(),
    )
}

#[tokio::test]
async fn the_lease_is_taken_only_when_free_expired_or_already_ours() {
    let (rule, seen) = capturing(mock!(ddb::Client::update_item), updated);
    let request = LeaseRequest {
        lane: lane(),
        owner: "runner-a".into(),
        now: 1_000,
        until: 61_000,
    };
    let leased = lanes(&[&rule]).acquire(&request).await.unwrap();
    assert_eq!(leased, Leased::Acquired);
    let req: UpdateItemInput = last(&seen);
    assert_eq!(req.table_name(), Some(TABLE));
    let item_key = req.key().unwrap();
    assert_eq!(
        (st(item_key, "pk"), st(item_key, "sk")),
        (format!("lane#fsx:{FS}"), "lane".into())
    );
    assert_eq!(
        req.condition_expression(),
        Some("attribute_not_exists(lease_owner) OR lease_until < :now OR lease_owner = :owner")
    );
    assert_eq!(
        req.update_expression(),
        Some("SET lease_owner = :owner, lease_until = :until")
    );
    let values = req.expression_attribute_values().unwrap();
    assert_eq!(values[":now"], AttributeValue::N("1000".into()));
    assert_eq!(values[":until"], AttributeValue::N("61000".into()));
    let held = mock!(ddb::Client::update_item).then_error(|| {
        condition_failed(&[
            ("lease_owner", AttributeValue::S("runner-b".into())),
            ("lease_until", AttributeValue::N("99000".into())),
        ])
    });
    assert_eq!(
        lanes(&[&held]).acquire(&request).await.unwrap(),
        Leased::HeldBy(Lease {
            owner: "runner-b".into(),
            until: 99_000
        })
    );
}

#[tokio::test]
async fn renewing_releasing_or_handing_over_a_lease_not_ours_is_lease_lost() {
    let lost = mock!(ddb::Client::update_item).then_error(|| condition_failed(&[]));
    let ports = lanes(&[&lost]);
    assert_eq!(error_type(ports.renew(&lane(), "a", 5).await), "LeaseLost");
    assert_eq!(error_type(ports.release(&lane(), "a").await), "LeaseLost");
    let to = LeaseRequest {
        lane: lane(),
        owner: "b".into(),
        now: 1,
        until: 5,
    };
    assert_eq!(error_type(ports.hand_over("a", &to).await), "LeaseLost");
    let (rule, seen) = capturing(mock!(ddb::Client::update_item), updated);
    lanes(&[&rule]).release(&lane(), "a").await.unwrap();
    assert_eq!(
        last(&seen).condition_expression(),
        Some("lease_owner = :owner AND attribute_not_exists(run_id)"),
        "a runner with a run in flight cannot give the lane up"
    );
}

#[tokio::test]
async fn a_claim_writes_the_run_and_points_the_lane_at_it_for_the_lease_holder_only() {
    let run = run_of(&[queued(1)]);
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    lanes(&[&rule]).claim("runner-a", &run).await.unwrap();
    let req = last(&seen);
    let writes = items(&req);
    let put = writes[0].put().unwrap();
    assert_eq!(st(put.item(), "sk"), "run#run-1");
    assert_eq!(st(put.item(), "run_state"), "claimed");
    assert_eq!(put.condition_expression(), Some("attribute_not_exists(pk)"));
    let update = writes[1].update().unwrap();
    assert_eq!(st(update.key(), "sk"), "lane");
    assert_eq!(
        update.condition_expression(),
        Some("lease_owner = :owner AND attribute_not_exists(run_id)")
    );
    let refused = mock!(ddb::Client::transact_write_items)
        .then_error(|| cancelled(&["None", "ConditionalCheckFailed"]));
    assert_eq!(
        error_type(lanes(&[&refused]).claim("runner-a", &run).await),
        "LeaseLost"
    );
}

#[tokio::test]
async fn jobs_are_taken_fifty_to_a_transaction_and_a_cancelled_one_is_named() {
    let jobs: Vec<QueuedJob> = (0..60).map(queued).collect();
    let run = run_of(&jobs);
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    let gone = lanes(&[&rule]).take_jobs(&run).await.unwrap();
    assert!(gone.is_empty());
    assert_eq!(rule.num_calls(), 2, "60 jobs: 50 then 10");
    let req = last(&seen);
    assert_eq!(items(&req).len(), 20);
    let delete = items(&req)[0].delete().unwrap();
    assert_eq!(
        st(delete.key(), "sk"),
        format!("pending#{:020}#{}", jobs[50].enqueued_at, jobs[50].id)
    );
    let update = items(&req)[1].update().unwrap();
    assert_eq!(
        update.condition_expression(),
        Some("job_state = :pending OR run_id = :run")
    );

    // The first transaction fails: job by job, the cancelled one (the second) is named.
    let two = run_of(&jobs[..2]);
    let rule = mock!(ddb::Client::transact_write_items)
        .sequence()
        .error(|| cancelled(&["None", "None", "None", "ConditionalCheckFailed"]))
        .output(transacted)
        .error(|| cancelled(&["None", "ConditionalCheckFailed"]))
        .build();
    let gone = lanes(&[&rule]).take_jobs(&two).await.unwrap();
    assert_eq!(gone, [jobs[1].id.clone()]);
}

#[tokio::test]
async fn finishing_ends_the_jobs_then_the_run_and_frees_the_lane() {
    let mut run = run_of(&[queued(1), queued(2)]);
    run.jobs[0].state = JobState::Succeeded;
    run.jobs[1].state = JobState::Failed;
    run.ended_at = Some(1_700_000_100_000);
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    lanes(&[&rule]).finish("runner-a", &run).await.unwrap();
    assert_eq!(rule.num_calls(), 2, "the jobs, then the run and the lane");
    let req = last(&seen);
    let run_update = items(&req)[0].update().unwrap();
    assert_eq!(st(run_update.key(), "sk"), "run#run-1");
    let values = run_update.expression_attribute_values().unwrap();
    assert_eq!(
        values[":expires"],
        AttributeValue::N((1_700_000_100 + 30 * 86_400).to_string())
    );
    let lane_update = items(&req)[1].update().unwrap();
    assert_eq!(lane_update.update_expression(), "REMOVE run_id");
    assert_eq!(
        lane_update.condition_expression(),
        Some("run_id = :run AND lease_owner = :owner")
    );
}

#[tokio::test]
async fn pending_jobs_are_read_oldest_first_consistently() {
    let job = queued(3);
    let (rule, seen) = capturing(mock!(ddb::Client::query), move || {
        let mut item = HashMap::new();
        item.insert(
            "doc_json".to_owned(),
            AttributeValue::S(serde_json::to_string(&queued(3)).unwrap()),
        );
        ddb::operation::query::QueryOutput::builder()
            .items(item)
            .build()
    });
    let pending = lanes(&[&rule]).pending(&lane(), 10).await.unwrap();
    assert_eq!(pending, [job]);
    let req = last(&seen);
    assert_eq!(
        req.key_condition_expression(),
        Some("pk = :pk AND begins_with(sk, :prefix)")
    );
    assert_eq!(req.consistent_read(), Some(true));
    assert_eq!(
        req.expression_attribute_values().unwrap()[":prefix"],
        AttributeValue::S("pending#".into())
    );
    assert_eq!(
        req.scan_index_forward(),
        None,
        "ascending: DynamoDB's default"
    );
}

#[tokio::test]
async fn every_lane_is_listed_by_its_partition_alone() {
    let (rule, seen) = capturing(mock!(ddb::Client::query), move || {
        let mut item = HashMap::new();
        item.insert("pk".to_owned(), AttributeValue::S("lanes".into()));
        item.insert("sk".to_owned(), AttributeValue::S(format!("fsx:{FS}")));
        ddb::operation::query::QueryOutput::builder()
            .items(item)
            .build()
    });
    assert_eq!(lanes(&[&rule]).lanes().await.unwrap(), [lane()]);
    let req = last(&seen);
    // DynamoDB refuses an empty key value, begins_with's prefix included.
    assert_eq!(req.key_condition_expression(), Some("pk = :pk"));
    assert_eq!(
        req.expression_attribute_values()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [":pk"]
    );
}

#[tokio::test]
async fn a_job_is_found_through_its_locator() {
    let job = queued(4);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let answer = |item: Vec<(&str, AttributeValue)>| {
        let seen = seen.clone();
        let item: HashMap<String, AttributeValue> =
            item.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        move |req: &ddb::operation::get_item::GetItemInput| {
            seen.lock().unwrap().push(req.clone());
            ddb::operation::get_item::GetItemOutput::builder()
                .set_item(Some(item.clone()))
                .build()
        }
    };
    let locator = mock!(ddb::Client::get_item)
        .match_requests(|r| r.key().unwrap()["sk"] == AttributeValue::S("job".into()))
        .then_compute_output(answer(vec![(
            "lane_key",
            AttributeValue::S(format!("fsx:{FS}")),
        )]));
    let record = mock!(ddb::Client::get_item)
        .match_requests(|r| r.key().unwrap()["sk"] != AttributeValue::S("job".into()))
        .then_compute_output(answer(vec![
            ("job_state", AttributeValue::S("running".into())),
            ("run_id", AttributeValue::S("run-7".into())),
            (
                "doc_json",
                AttributeValue::S(serde_json::to_string(&job).unwrap()),
            ),
        ]));
    let found = lanes(&[&locator, &record])
        .job(&job.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.job, found.state, found.run),
        (job.clone(), JobState::Running, Some(RunId("run-7".into())))
    );
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].key().unwrap()["pk"],
        AttributeValue::S(format!("job#{}", job.id))
    );
    assert_eq!(
        requests[1].key().unwrap()["pk"],
        AttributeValue::S(format!("lane#fsx:{FS}"))
    );
    assert!(requests.iter().all(|r| r.consistent_read() == Some(true)));
}

fn kept_report(run: &str, published_at: Millis) -> KeptReport {
    KeptReport {
        run: RunId(run.into()),
        lane: lane(),
        job: "imports".into(),
        kind: "fsx_import".into(),
        outcome: crate::notify::report::Outcome::Succeeded,
        reason: None,
        task_id: Some("task-0123456789abcdef0".into()),
        started_at: None,
        ended_at: None,
        duration_seconds: Some(42),
        counts: crate::domain::status::Counts::default(),
        jobs: 3,
        subject: "[Ferry] imports SUCCEEDED on fs-0123456789abcdef0".into(),
        text: "Job: imports\n".into(),
        published_at,
    }
}

#[tokio::test]
async fn a_report_is_kept_beside_its_run_and_expires_with_it() {
    let report = kept_report("run-1", 1_700_000_000_000);
    let (rule, seen) = capturing(mock!(ddb::Client::put_item), || {
        ddb::operation::put_item::PutItemOutput::builder().build()
    });
    lanes(&[&rule]).keep_report(&report).await.unwrap();
    let req = last(&seen);
    assert_eq!(req.table_name(), Some(TABLE));
    let item = req.item().unwrap();
    assert_eq!(
        (st(item, "pk"), st(item, "sk")),
        (format!("lane#fsx:{FS}"), "report#run-1".to_owned())
    );
    assert_eq!(
        item["expires_at"],
        AttributeValue::N((1_700_000_000 + RETENTION_SECONDS).to_string())
    );
    assert_eq!(req.condition_expression(), None, "a retry writes it again");
    let stored: KeptReport = serde_json::from_str(&st(item, "doc_json")).unwrap();
    assert_eq!(stored, report);
}

#[tokio::test]
async fn kept_reports_are_read_from_every_page_newest_first() {
    let page = |run: &str, at: Millis, next: Option<&str>| {
        let mut item = HashMap::new();
        item.insert(
            "doc_json".to_owned(),
            AttributeValue::S(serde_json::to_string(&kept_report(run, at)).unwrap()),
        );
        let mut out = ddb::operation::query::QueryOutput::builder().items(item);
        if let Some(sk) = next {
            out = out.last_evaluated_key("sk", AttributeValue::S(sk.into()));
        }
        out.build()
    };
    let first = mock!(ddb::Client::query)
        .match_requests(|r| r.exclusive_start_key().is_none())
        .then_output(move || page("run-old", 1_000, Some("report#run-old")));
    let (second, seen) = capturing(
        mock!(ddb::Client::query).match_requests(|r| r.exclusive_start_key().is_some()),
        move || page("run-new", 2_000, None),
    );
    let reports = lanes(&[&first, &second]).reports(&lane()).await.unwrap();
    let runs: Vec<&str> = reports.iter().map(|r| r.run.0.as_str()).collect();
    assert_eq!(runs, ["run-new", "run-old"]);
    let req = last(&seen);
    assert_eq!(
        req.expression_attribute_values().unwrap()[":prefix"],
        AttributeValue::S("report#".into())
    );
}

fn dropped_upload(n: usize) -> DroppedUpload {
    DroppedUpload {
        at: 1_700_000_000_000,
        why: "matched no route".into(),
        bucket: Some("ferry-data".into()),
        key: Some(format!("elsewhere/{n}.h5")),
        message_id: Some(format!("m-{n}")),
    }
}

#[tokio::test]
async fn dropped_uploads_are_written_25_to_a_call_and_unprocessed_ones_again() {
    use ddb::operation::batch_write_item::{BatchWriteItemInput, BatchWriteItemOutput};
    let uploads: Vec<DroppedUpload> = (0..30).map(dropped_upload).collect();
    // The first call leaves its first item unprocessed; every other call writes everything.
    let calls = Arc::new(Mutex::new(Vec::<BatchWriteItemInput>::new()));
    let seen = calls.clone();
    let rule = mock!(ddb::Client::batch_write_item)
        .match_requests(move |req| {
            seen.lock().unwrap().push(req.clone());
            true
        })
        .then_output({
            let calls = calls.clone();
            move || {
                let first = calls.lock().unwrap().len() == 1;
                let mut out = BatchWriteItemOutput::builder();
                if first {
                    let left = calls.lock().unwrap()[0].request_items().unwrap()[TABLE][0].clone();
                    out = out.unprocessed_items(TABLE, vec![left]);
                }
                out.build()
            }
        });
    lanes(&[&rule]).record_dropped(&uploads).await.unwrap();
    let calls = calls.lock().unwrap();
    let sizes: Vec<usize> = calls
        .iter()
        .map(|c| c.request_items().unwrap()[TABLE].len())
        .collect();
    assert_eq!(
        sizes,
        [25, 1, 5],
        "25, the unprocessed one again, then the rest"
    );
    let put = calls[0].request_items().unwrap()[TABLE][0]
        .put_request()
        .unwrap()
        .item();
    assert_eq!(
        st(put, "pk"),
        format!("dropped#{}", 1_700_000_000_000u64 / 3_600_000)
    );
    assert!(st(put, "sk").starts_with("00000001700000000000#"));
    let stored: DroppedUpload = serde_json::from_str(&st(put, "doc_json")).unwrap();
    assert_eq!(stored, uploads[0]);
    let keys: std::collections::BTreeSet<String> = calls[0].request_items().unwrap()[TABLE]
        .iter()
        .map(|w| st(w.put_request().unwrap().item(), "sk"))
        .collect();
    assert_eq!(
        keys.len(),
        25,
        "one sort key per upload, even in the same millisecond"
    );
}

#[tokio::test]
async fn dropped_uploads_still_unprocessed_after_every_attempt_are_an_error() {
    use ddb::operation::batch_write_item::BatchWriteItemOutput;
    let rule = mock!(ddb::Client::batch_write_item)
        .match_requests(|_| true)
        .then_output(|| {
            let left = WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .item("pk", AttributeValue::S("x".into()))
                        .build()
                        .unwrap(),
                )
                .build();
            BatchWriteItemOutput::builder()
                .unprocessed_items(TABLE, vec![left])
                .build()
        });
    let error = lanes(&[&rule])
        .record_dropped(&[dropped_upload(1)])
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "Throttled");
    assert_eq!(rule.num_calls(), BATCH_ATTEMPTS as usize);
}

#[tokio::test]
async fn dropped_uploads_are_read_hour_by_hour_from_since_to_now() {
    let hour = 3_600_000u64;
    let (rule, seen) = capturing(mock!(ddb::Client::query), move || {
        let mut item = HashMap::new();
        item.insert(
            "doc_json".to_owned(),
            AttributeValue::S(serde_json::to_string(&dropped_upload(1)).unwrap()),
        );
        ddb::operation::query::QueryOutput::builder()
            .items(item)
            .build()
    });
    let since = 1_700_000_000_000 - 2 * hour;
    let found = lanes(&[&rule])
        .dropped(since, 1_700_000_000_000)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 3, "three hours");
    assert_eq!(found.len(), 3);
    let last = last(&seen);
    assert_eq!(
        last.expression_attribute_values().unwrap()[":pk"],
        AttributeValue::S(format!("dropped#{}", 1_700_000_000_000u64 / hour))
    );
}

#[tokio::test]
async fn cancel_marks_are_kept_beside_the_run_so_a_stale_replace_cannot_drop_them() {
    let mut run = run_of(&[queued(1)]);
    run.cancel = Some(CancelRequest {
        by: "alice".into(),
        reason: "wrong folder".into(),
        at: 1_700_000_002_000,
    });
    run.canceled_outside = Some(1_700_000_003_000);
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    LaneRuns::update(&lanes(&[&rule]), &run).await.unwrap();
    let req = last(&seen);
    let update = items(&req)[0].update().unwrap();
    assert!(
        update
            .update_expression()
            .contains("cancel_json = if_not_exists(cancel_json, :cancel)")
    );
    assert!(
        update
            .update_expression()
            .contains("canceled_outside_at = if_not_exists(canceled_outside_at, :outside)")
    );

    // A record written from an earlier read (no cancel in it) reads back with the marks.
    let stale = run_of(&[queued(1)]);
    let rule = mock!(ddb::Client::get_item).then_output(move || {
        let mut item = HashMap::new();
        item.insert(
            "doc_json".to_owned(),
            AttributeValue::S(serde_json::to_string(&stale).unwrap()),
        );
        item.insert(
            "cancel_json".to_owned(),
            AttributeValue::S(
                r#"{"by":"alice","reason":"wrong folder","at":1700000002000}"#.into(),
            ),
        );
        item.insert(
            "canceled_outside_at".to_owned(),
            AttributeValue::N("1700000003000".into()),
        );
        ddb::operation::get_item::GetItemOutput::builder()
            .set_item(Some(item))
            .build()
    });
    let read = lanes(&[&rule])
        .run(&lane(), &RunId("run-1".into()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.cancel.unwrap().by, "alice");
    assert_eq!(read.canceled_outside, Some(1_700_000_003_000));
}
