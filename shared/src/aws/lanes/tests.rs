//! The lane table adapter: the exact items, keys and conditions each operation writes, and how
//! DynamoDB's condition failures become lane outcomes.

use aws_sdk_dynamodb as ddb;
use aws_sdk_dynamodb::operation::transact_write_items::{
    TransactWriteItemsError, TransactWriteItemsInput, TransactWriteItemsOutput,
};
use aws_sdk_dynamodb::operation::update_item::{
    UpdateItemError, UpdateItemInput, UpdateItemOutput,
};
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, PutRequest, TransactWriteItem, WriteRequest,
};
use aws_smithy_mocks::{Rule, mock};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::queue::UPLOAD_IDS_PER_ITEM;
use super::*;
use crate::aws::test_support::*;
use crate::domain::job::JobSpec;
use crate::ids::UploadId;
use crate::lanes::JobSource;
use crate::lanes::record::{
    CancelRequest, DroppedUpload, Enqueued, JobState, KeptReport, Lease, LeaseRequest, Leased,
    QueuedJob, Registered, RunJob, RunRecord,
};
use crate::ports::{
    KeepReports, LaneLease, LaneQueue, LaneRuns, LaneView, QueuedUploads, ReadRuns, RecordDropped,
};

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
    let mut run = RunRecord::claimed(
        (RunId("run-1".into()), lane()),
        (jobs[0].spec.clone(), jobs.len()),
        (1_700_000_001_000, 1_700_003_601_000),
    );
    run.token = "ferry-token".into();
    run
}

/// The member record a run keeps of `job`, as a Query returns it.
fn member_item(job: &QueuedJob) -> HashMap<String, AttributeValue> {
    HashMap::from([(
        "doc_json".to_owned(),
        AttributeValue::S(serde_json::to_string(&RunJob::of(job)).unwrap()),
    )])
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
    let (rule, seen) = capturing(mock!(ddb::Client::update_item), updated);
    lanes(&[&rule]).hand_over("a", &to).await.unwrap();
    assert_eq!(
        last(&seen).condition_expression(),
        Some("lease_owner = :owner OR lease_owner = :to"),
        "a retried hand-over whose first attempt landed goes on"
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
async fn jobs_are_taken_within_a_transactions_limits_and_a_cancelled_one_is_named() {
    // Three actions a job: 33 jobs (99 actions) to a transaction.
    let jobs: Vec<QueuedJob> = (0..60).map(queued).collect();
    let run = run_of(&jobs);
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    let gone = lanes(&[&rule]).take_jobs(&run, &jobs).await.unwrap();
    assert!(gone.is_empty());
    assert_eq!(rule.num_calls(), 2, "60 jobs: 33 then 27");
    let req = last(&seen);
    assert_eq!(items(&req).len(), 27 * 3);
    let delete = items(&req)[0].delete().unwrap();
    assert_eq!(
        st(delete.key(), "sk"),
        format!("pending#{:020}#{}", jobs[33].enqueued_at, jobs[33].id)
    );
    let update = items(&req)[1].update().unwrap();
    assert_eq!(
        update.condition_expression(),
        Some("job_state = :pending OR run_id = :run")
    );
    let member = items(&req)[2].put().unwrap();
    assert_eq!(
        st(member.item(), "sk"),
        format!("member#run-1#{:020}#{}", jobs[33].enqueued_at, jobs[33].id)
    );

    // The first transaction fails: job by job, the cancelled one (the second) is named.
    let two = run_of(&jobs[..2]);
    let rule = mock!(ddb::Client::transact_write_items)
        .sequence()
        .error(|| {
            cancelled(&[
                "None",
                "None",
                "None",
                "None",
                "ConditionalCheckFailed",
                "None",
            ])
        })
        .output(transacted)
        .error(|| cancelled(&["None", "ConditionalCheckFailed", "None"]))
        .build();
    let gone = lanes(&[&rule]).take_jobs(&two, &jobs[..2]).await.unwrap();
    assert_eq!(gone, [jobs[1].id.clone()]);
}

#[tokio::test]
async fn heavy_jobs_are_taken_a_few_to_a_transaction_within_four_megabytes() {
    // Issue 24, mechanism 4: jobs of 300 KB each (their queue entry and item hold it twice),
    // 50 to a transaction would weigh 30 MB; six of them (3.6 MB) fit in one.
    let jobs: Vec<QueuedJob> = (0..12)
        .map(|n| {
            let mut job = queued(n);
            job.spec.paths = (0..25)
                .map(|p| {
                    format!(
                        "s3://ferry-data/incoming/{n}/{p}/{}",
                        "\u{6587}".repeat(4000)
                    )
                })
                .collect();
            job
        })
        .collect();
    assert!(jobs[0].weight() > 290_000);
    let run = run_of(&jobs);
    let (rule, seen) = capturing_all(mock!(ddb::Client::transact_write_items), transacted);
    lanes(&[&rule]).take_jobs(&run, &jobs).await.unwrap();
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "12 heavy jobs: two transactions");
    for req in &calls {
        let weight: usize = req
            .transact_items()
            .chunks(3)
            .map(|_| 2 * (jobs[0].weight() + 4096))
            .sum();
        assert!(weight <= crate::budget::TRANSACTION_BYTES, "{weight}");
        assert!(req.transact_items().len() <= crate::budget::TRANSACTION_ACTIONS);
    }
}

#[tokio::test]
async fn finishing_ends_the_members_jobs_then_the_run_and_frees_the_lane() {
    let jobs = [queued(1), queued(2)];
    let mut run = run_of(&jobs);
    run.ended_at = Some(1_700_000_100_000);
    let members = mock!(ddb::Client::query).then_output(move || {
        ddb::operation::query::QueryOutput::builder()
            .items(member_item(&queued(1)))
            .items(member_item(&queued(2)))
            .build()
    });
    let (rule, seen) = capturing_all(mock!(ddb::Client::transact_write_items), transacted);
    lanes(&[&members, &rule])
        .finish("runner-a", &run, JobState::Succeeded)
        .await
        .unwrap();
    assert_eq!(rule.num_calls(), 2, "the jobs, then the run and the lane");
    let calls = seen.lock().unwrap().clone();
    let first = &calls[0];
    assert_eq!(items(first).len(), 2);
    let job_update = items(first)[0].update().unwrap();
    assert_eq!(st(job_update.key(), "sk"), format!("job#{}", jobs[0].id));
    // Only a job still running in this run ends: one already ended keeps its state.
    assert_eq!(
        job_update.condition_expression(),
        Some("run_id = :run AND job_state = :running")
    );
    let req = calls[1].clone();
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
    let pending = lanes(&[&rule])
        .pending(&lane(), 10, usize::MAX)
        .await
        .unwrap();
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
    let listed = lanes(&[&rule]).lanes(1_700_000_000_000).await.unwrap();
    assert_eq!(
        listed,
        [Registered {
            lane: lane(),
            idle: false,
            last_job: None
        }]
    );
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
async fn a_report_is_kept_beside_its_run_and_indexed_by_lane_and_day_and_expires_with_it() {
    let report = kept_report("run-1", 1_700_000_000_000);
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    lanes(&[&rule]).keep_report(&report).await.unwrap();
    let req = last(&seen);
    let puts: Vec<_> = items(&req).iter().map(|i| i.put().unwrap()).collect();
    let keys: Vec<(String, String)> = puts
        .iter()
        .map(|p| (st(p.item(), "pk"), st(p.item(), "sk")))
        .collect();
    assert_eq!(
        keys,
        [
            (format!("lane#fsx:{FS}"), "report#run-1".to_owned()),
            (
                format!("lane#fsx:{FS}"),
                "reported#00000001700000000000#run-1".to_owned()
            ),
            (
                "history#19675".to_owned(),
                "00000001700000000000#run-1".to_owned()
            ),
        ]
    );
    for put in &puts {
        assert_eq!(
            put.item()["expires_at"],
            AttributeValue::N((1_700_000_000 + RETENTION_SECONDS).to_string())
        );
        assert_eq!(put.condition_expression(), None, "a retry writes it again");
    }
    let stored: KeptReport = serde_json::from_str(&st(puts[0].item(), "doc_json")).unwrap();
    assert_eq!(stored, report);
    let summary: KeptReport = serde_json::from_str(&st(puts[2].item(), "doc_json")).unwrap();
    assert_eq!(
        summary.text, "",
        "the indexes keep the summary, not the text"
    );
}

#[tokio::test]
async fn history_reads_only_what_it_lists_newest_first() {
    // Issue 24, mechanism 5: 50 of the last 30 days' reports, not all of them.
    let day = 86_400_000;
    let now = 1_700_000_000_000;
    let page = |runs: &[(&str, Millis)]| {
        let mut out = ddb::operation::query::QueryOutput::builder();
        for (run, at) in runs {
            let mut item = HashMap::new();
            item.insert(
                "doc_json".to_owned(),
                AttributeValue::S(serde_json::to_string(&kept_report(run, *at)).unwrap()),
            );
            out = out.items(item);
        }
        out.build()
    };
    let today = format!("history#{}", now / day);
    let (first, seen) = capturing_all(
        mock!(ddb::Client::query).match_requests(move |r| {
            r.expression_attribute_values().unwrap()[":pk"] == AttributeValue::S(today.clone())
        }),
        move || page(&[("run-b", now - 10), ("run-a", now - 20)]),
    );
    let (older, older_seen) = capturing_all(mock!(ddb::Client::query), move || {
        page(&[("run-z", now - day)])
    });
    let reports = lanes(&[&first, &older])
        .history(None, (now - 30 * day, now), 3)
        .await
        .unwrap();
    let runs: Vec<&str> = reports.iter().map(|r| r.run.0.as_str()).collect();
    assert_eq!(runs, ["run-b", "run-a", "run-z"]);
    let req = seen.lock().unwrap()[0].clone();
    assert_eq!(req.scan_index_forward(), Some(false), "newest first");
    assert_eq!(req.limit(), Some(3));
    let older_req = older_seen.lock().unwrap()[0].clone();
    assert_eq!(older_req.limit(), Some(1), "only what is still wanted");
    assert_eq!(
        older_seen.lock().unwrap().len(),
        1,
        "the days before are not read once the list is full"
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
async fn dropped_uploads_are_read_newest_hour_first_and_only_as_many_as_wanted() {
    let hour = 3_600_000u64;
    let now = 1_700_000_000_000u64;
    let (rule, seen) = capturing_all(mock!(ddb::Client::query), move || {
        let mut item = HashMap::new();
        item.insert(
            "doc_json".to_owned(),
            AttributeValue::S(serde_json::to_string(&dropped_upload(1)).unwrap()),
        );
        ddb::operation::query::QueryOutput::builder()
            .items(item)
            .build()
    });
    let since = now - 2 * hour;
    let found = lanes(&[&rule]).dropped((since, now), 10).await.unwrap();
    assert_eq!(rule.num_calls(), 3, "three hours");
    assert_eq!(found.len(), 3);
    let calls = seen.lock().unwrap().clone();
    assert_eq!(
        calls[0].expression_attribute_values().unwrap()[":pk"],
        AttributeValue::S(format!("dropped#{}", now / hour)),
        "the newest hour first"
    );
    assert_eq!(calls[0].scan_index_forward(), Some(false));
    // Two wanted, one found an hour: two hours read, the second asked for one.
    let (rule, seen) = capturing_all(mock!(ddb::Client::query), move || {
        let mut item = HashMap::new();
        item.insert(
            "doc_json".to_owned(),
            AttributeValue::S(serde_json::to_string(&dropped_upload(2)).unwrap()),
        );
        ddb::operation::query::QueryOutput::builder()
            .items(item)
            .build()
    });
    let found = lanes(&[&rule]).dropped((since, now), 2).await.unwrap();
    assert_eq!((found.len(), rule.num_calls()), (2, 2));
    assert_eq!(seen.lock().unwrap()[1].limit(), Some(1));
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

#[tokio::test]
async fn the_start_mark_is_kept_beside_the_run_first_one_standing() {
    use crate::ports::NoteRuns;
    let run = run_of(&[queued(1)]);
    let (rule, seen) = capturing(mock!(ddb::Client::update_item), || {
        ddb::operation::update_item::UpdateItemOutput::builder()
            .attributes("start_attempted_at", n(1_700_000_000_500))
            .build()
    });
    let standing = lanes(&[&rule])
        .mark_start(&run, 1_700_000_009_000)
        .await
        .unwrap();
    assert_eq!(standing, 1_700_000_000_500, "an earlier mark stands");
    let req = last(&seen);
    assert_eq!(
        req.update_expression(),
        Some("SET start_attempted_at = if_not_exists(start_attempted_at, :now)")
    );
    assert_eq!(
        req.condition_expression(),
        Some("attribute_exists(pk) AND run_state <> :done"),
        "only a run in flight"
    );
    let gone = mock!(ddb::Client::update_item).then_error(|| condition_failed(&[]));
    let error = lanes(&[&gone]).mark_start(&run, 1).await.unwrap_err();
    assert_eq!(error.error_type(), "NotFound");

    // A record written from an earlier read (no mark in it) reads back with the mark.
    let stale = run_of(&[queued(1)]);
    let rule = mock!(ddb::Client::get_item).then_output(move || {
        let mut item = HashMap::new();
        item.insert(
            "doc_json".to_owned(),
            AttributeValue::S(serde_json::to_string(&stale).unwrap()),
        );
        item.insert(
            "start_attempted_at".to_owned(),
            AttributeValue::N("1700000000500".into()),
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
    assert_eq!(read.start_attempted, Some(1_700_000_000_500));
}

/// The heaviest job that validation lets in: export paths of CJK characters up to the spec
/// budget, from a schedule occurrence of 1,024 four-byte characters, with the longest route
/// prefix to collapse within.
fn heaviest_job() -> QueuedJob {
    let mut job = queued(1);
    job.spec.kind = crate::domain::job::JobKind::FsxExport;
    job.spec.paths.clear();
    let path = |i: usize, len: usize| format!("{i:03}{}", "\u{6587}".repeat(len));
    let mut i = 0;
    while crate::budget::json_bytes(&job.spec) + 4_096 * 3 + 8 < crate::budget::SPEC_BYTES {
        job.spec.paths.push(path(i, 4_093));
        i += 1;
    }
    // Small paths to the brim, measured once a batch: each weighs at most 16 bytes as JSON
    // (quotes, comma, digits, one character), so a batch of `room / 16` never overshoots.
    loop {
        let room =
            crate::budget::SPEC_BYTES.saturating_sub(crate::budget::json_bytes(&job.spec) + 20);
        if room < 16 {
            break;
        }
        for _ in 0..room / 16 {
            job.spec.paths.push(path(i, 1));
            i += 1;
        }
    }
    while crate::budget::json_bytes(&job.spec) + 20 < crate::budget::SPEC_BYTES {
        job.spec.paths.push(path(i, 1));
        i += 1;
    }
    job.source = format!("schedule {}", "\u{1F600}".repeat(1_024));
    job.collapse_root = Some(format!("s3://ferry-data/{}/", "\u{6587}".repeat(4_000)));
    assert!(crate::budget::json_bytes(&job.spec) <= crate::budget::SPEC_BYTES);
    job
}

#[tokio::test]
async fn the_heaviest_job_and_run_each_fit_one_item() {
    // Issue 24, mechanism 2: every item the lane table holds within DynamoDB's 400 KB,
    // measured as DynamoDB counts (names and values, UTF-8).
    let job = heaviest_job();
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    lanes(&[&rule]).enqueue(&job).await.unwrap();
    let enqueue = last(&seen);
    let mut largest = 0;
    for put in items(&enqueue).iter().filter_map(|w| w.put()) {
        let bytes = item_bytes(put.item());
        largest = largest.max(bytes);
        assert!(bytes <= crate::budget::ITEM_BYTES, "{bytes}");
    }
    // The job's item once cancelled while pending: its record and who asked, at most (the
    // longest `by` a cancel takes, as an unverified caller's is recorded).
    let longest_by = "\u{1F600}".repeat(crate::lanes::intake::MAX_BY_CHARS);
    let cancel = CancelRequest {
        by: crate::lanes::intake::recorded_by(
            &longest_by,
            crate::lanes::intake::Caller::Unverified,
        ),
        reason: "\u{1F600}".repeat(1_024),
        at: 1,
    };
    let job_item = items(&enqueue)[0].put().unwrap().item().clone();
    let mut cancelled = job_item;
    cancelled.insert("cancel_json".into(), json(&cancel));
    cancelled.insert("expires_at".into(), n(u64::MAX));
    assert!(item_bytes(&cancelled) <= crate::budget::ITEM_BYTES);

    // The run that merges it: its record with a cancel asked, and the cancel's copy beside.
    let mut run = run_of(std::slice::from_ref(&job));
    run.spec = job.spec.clone();
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    lanes(&[&rule]).claim("runner-a", &run).await.unwrap();
    let claim = last(&seen);
    let mut record = items(&claim)[0].put().unwrap().item().clone();
    run.cancel = Some(cancel.clone());
    run.canceled_outside = Some(u64::MAX);
    run.task = Some(
        serde_json::from_value(json!({"service": "fsx", "file_system_id": FS,
                                      "task_id": "task-0123456789abcdef0"}))
        .unwrap(),
    );
    record.insert("doc_json".into(), json(&run));
    record.insert("cancel_json".into(), json(&cancel));
    record.insert("canceled_outside_at".into(), n(u64::MAX));
    record.insert("adoptions".into(), n(u64::from(u32::MAX)));
    record.insert("expires_at".into(), n(u64::MAX));
    let bytes = item_bytes(&record);
    largest = largest.max(bytes);
    assert!(bytes <= crate::budget::ITEM_BYTES, "{bytes}");
    eprintln!(
        "largest item: {largest} bytes of {}",
        crate::budget::ITEM_BYTES
    );
}

#[test]
fn item_sizes_are_counted_as_dynamodb_counts_them() {
    // Developer Guide, "Item sizes and formats": names and values; a number about one byte
    // per two digits plus one; a list or map 3 bytes plus one a member.
    let item: Item = HashMap::from([
        ("pk".to_owned(), s("é")),
        ("n".to_owned(), n(12_345)),
        (
            "l".to_owned(),
            AttributeValue::L(vec![s("ab"), AttributeValue::Bool(true)]),
        ),
    ]);
    assert_eq!(
        item_bytes(&item),
        (2 + 2) + (1 + 4) + (1 + 3 + (1 + 2) + (1 + 1))
    );
}

#[tokio::test]
async fn an_item_over_400_kb_is_refused_before_dynamodb_sees_it() {
    // Never reached through the budgets upstream; checked before every put all the same.
    let mut job = queued(1);
    job.spec.paths = vec![format!("s3://ferry-data/incoming/{}", "x".repeat(420_000))];
    let rule = mock!(ddb::Client::transact_write_items).then_output(transacted);
    let error = lanes(&[&rule]).enqueue(&job).await.unwrap_err();
    assert_eq!(error.error_type(), "TooLarge");
    assert!(error.to_string().contains("409,600"), "{error}");
    assert_eq!(rule.num_calls(), 0, "nothing sent");
}

/// The most uploads one invocation can carry: Lambda's 6 MB payload over the smallest S3
/// record `s3-trigger` reads (`{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"abc"},
/// "object":{"key":"k"}}}` and its separator, about 90 bytes), rounded well up.
const MOST_UPLOADS: usize = crate::budget::LAMBDA_SYNC_BYTES / 64;

fn upload_ids(count: usize) -> Vec<UploadId> {
    (0..count)
        .map(|i| {
            let mut id = [0xA5; UploadId::BYTES];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            UploadId(id)
        })
        .collect()
}

#[tokio::test]
async fn a_job_and_the_uploads_it_covers_are_one_transaction_within_every_limit() {
    // Issue 25, mechanism 6: the ids are written with the job, or not at all; the heaviest job
    // with the most uploads an invocation can carry still fits one transaction.
    let job = heaviest_job();
    let ids = upload_ids(MOST_UPLOADS);
    let (rule, seen) = capturing(mock!(ddb::Client::transact_write_items), transacted);
    assert_eq!(
        lanes(&[&rule]).enqueue_covering(&job, &ids).await.unwrap(),
        Enqueued::Added
    );
    let req = last(&seen);
    let puts: Vec<_> = items(&req).iter().filter_map(|w| w.put()).collect();
    let parts = MOST_UPLOADS.div_ceil(UPLOAD_IDS_PER_ITEM);
    assert_eq!(
        puts.len(),
        4 + parts,
        "the job's four items and {parts} of uploads"
    );
    let mut total = 0;
    let mut stored = Vec::new();
    for (part, put) in puts[4..].iter().enumerate() {
        let item = put.item();
        assert_eq!(st(item, "pk"), format!("lane#fsx:{FS}"));
        assert_eq!(
            st(item, "sk"),
            format!("uploads#{:020}#{}#{part}", job.enqueued_at, job.id)
        );
        assert_eq!(put.condition_expression(), None);
        let Some(AttributeValue::B(blob)) = item.get("upload_ids") else {
            panic!("no upload_ids in part {part}")
        };
        stored.extend_from_slice(blob.as_ref());
        assert_eq!(
            item["expires_at"],
            n(job.enqueued_at / 1000 + 15 * 86_400),
            "kept while SQS could deliver the message again"
        );
    }
    assert_eq!(stored, ids.iter().flat_map(|id| id.0).collect::<Vec<_>>());
    for put in &puts {
        let bytes = item_bytes(put.item());
        assert!(bytes <= crate::budget::ITEM_BYTES, "{bytes}");
        total += bytes;
    }
    assert!(total <= crate::budget::TRANSACTION_BYTES, "{total}");
    eprintln!(
        "heaviest enqueue: {total} bytes of {} in {} actions",
        crate::budget::TRANSACTION_BYTES,
        puts.len()
    );

    // Past what any invocation carries, the enqueue is refused before DynamoDB sees it.
    let rule = mock!(ddb::Client::transact_write_items).then_output(transacted);
    let error = lanes(&[&rule])
        .enqueue_covering(&job, &upload_ids(3 * MOST_UPLOADS))
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "TooLarge");
    assert!(error.to_string().contains("the enqueue of job"), "{error}");
    assert_eq!(rule.num_calls(), 0);
}

#[tokio::test]
async fn queued_uploads_are_read_from_the_time_asked_every_page_consistently() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let (rule, seen) = capturing_all(mock!(ddb::Client::query), move || {
        let call = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let ids: Vec<u8> = upload_ids(3)[call..call + 2]
            .iter()
            .flat_map(|id| id.0)
            .collect();
        let item = HashMap::from([(
            "upload_ids".to_owned(),
            AttributeValue::B(ddb::primitives::Blob::new(ids)),
        )]);
        let page = ddb::operation::query::QueryOutput::builder().items(item);
        if call == 0 {
            page.last_evaluated_key("pk", AttributeValue::S("next".into()))
                .build()
        } else {
            page.build()
        }
    });
    let found = lanes(&[&rule])
        .queued_uploads(&lane(), 1_700_000_000_000)
        .await
        .unwrap();
    assert_eq!(found, upload_ids(3).into_iter().collect());
    let calls = seen.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "every page");
    let first = &calls[0];
    assert_eq!(first.consistent_read(), Some(true));
    assert_eq!(
        first.key_condition_expression(),
        Some("pk = :pk AND sk BETWEEN :from AND :to")
    );
    let values = first.expression_attribute_values().unwrap();
    assert_eq!(values[":pk"], AttributeValue::S(format!("lane#fsx:{FS}")));
    assert_eq!(
        values[":from"],
        AttributeValue::S(format!("uploads#{:020}", 1_700_000_000_000u64))
    );
    assert_eq!(values[":to"], AttributeValue::S("uploads#~".into()));
    assert!(calls[1].exclusive_start_key().is_some());

    // A stored list that is not whole ids is an error, never a guess.
    let rule = mock!(ddb::Client::query).then_output(|| {
        let item = HashMap::from([(
            "upload_ids".to_owned(),
            AttributeValue::B(ddb::primitives::Blob::new(vec![1; 17])),
        )]);
        ddb::operation::query::QueryOutput::builder()
            .items(item)
            .build()
    });
    let error = lanes(&[&rule])
        .queued_uploads(&lane(), 0)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("whole number"), "{error}");
}
