//! One contract for the two lane tables (issue 29): `FakeLanes` (what every unit test and the
//! simulation run on) and `AwsLanes` (DynamoDB) must answer the lane ports alike, or a test on
//! the fake proves nothing about the real table.
//!
//! [`contract`] walks a lane through its life with the ports alone: enqueue once per id, the
//! pending jobs oldest first, the lease held by one runner, a run claimed, its jobs taken and
//! finished, pending jobs ended without a run, uploads recorded with their job, uploads that
//! start nothing. `fake_lanes_keep_the_lane_contract` runs it here;
//! `aws_lanes_keep_the_lane_contract` runs it on a real table and is ignored unless one is
//! named: `local/tests/test_lane_contract.py` runs it against the emulator's DynamoDB (moto),
//! on the table the harness creates with `template.yaml`'s key schema.

use ferry::FerryError;
use ferry::aws::AwsLanes;
use ferry::domain::job::JobSpec;
use ferry::fakes::FakeLanes;
use ferry::ids::UploadId;
use ferry::lanes::record::{
    DroppedUpload, Enqueued, JobEnd, JobState, Lease, LeaseRequest, Leased, QueuedJob, RunId,
    RunRecord, RunState,
};
use ferry::lanes::{JobId, JobSource, LaneId};
use ferry::ports::{LaneLease, LaneQueue, LaneRuns, LaneView, QueuedUploads, RecordDropped};
use ferry::runtime::now_millis;
use ferry_tests::submitted_job;
use serde_json::json;

/// A lane of its own for each walk: a shared table may hold others.
fn file_system() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("fs-{:017x}", nanos & 0xf_ffff_ffff_ffff_ffff)
}

/// An export of `out/<name>` on `fs`, queued at `at` by a caller who named it `name`.
fn job(fs: &str, name: &str, at: u64) -> QueuedJob {
    let spec: JobSpec = serde_json::from_value(json!({
        "name": name, "kind": "fsx_export", "file_system_id": fs, "paths": [format!("out/{name}")]
    }))
    .unwrap();
    let mut job = submitted_job(spec, |valid| {
        JobId::derive(&JobSource::Caller(name.to_owned()), valid)
    });
    job.enqueued_at = at;
    job.deadline = at + 3_600_000;
    job
}

fn run_of(lane: &LaneId, id: &str, jobs: &[&QueuedJob], now: u64) -> RunRecord {
    ferry_tests::claimed_run(lane.clone(), id, jobs[0].spec.clone(), jobs.len(), now)
}

fn ids(jobs: &[QueuedJob]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id.clone()).collect()
}

async fn state_of<L: LaneView>(lanes: &L, job: &QueuedJob) -> (JobState, Option<RunId>) {
    let record = lanes
        .job(&job.id)
        .await
        .unwrap()
        .expect("the job is in the table");
    (record.state, record.run)
}

/// The lane ports' contract, walked on `lanes`: one lane through its life.
async fn contract<L>(lanes: &L)
where
    L: LaneView + LaneQueue + LaneLease + LaneRuns + QueuedUploads + RecordDropped,
{
    let fs = file_system();
    let now = now_millis();
    let (a, b) = (job(&fs, "a", now), job(&fs, "b", now + 1));
    queue(lanes, &a, &b, now).await;
    lease(lanes, &a.lane, now).await;
    run(lanes, &a, &b, now).await;
    ends(lanes, &fs, now).await;
}

/// Enqueued once per id; pending oldest first; the lane registered.
async fn queue<L: LaneView + LaneQueue>(lanes: &L, a: &QueuedJob, b: &QueuedJob, now: u64) {
    let lane = &a.lane;
    assert_eq!(lanes.enqueue(a).await.unwrap(), Enqueued::Added);
    assert_eq!(lanes.enqueue(a).await.unwrap(), Enqueued::AlreadyQueued);
    assert_eq!(lanes.enqueue(b).await.unwrap(), Enqueued::Added);
    let pending = lanes.pending(lane, 10, usize::MAX).await.unwrap();
    assert_eq!(ids(&pending), [a.id.clone(), b.id.clone()]);
    assert_eq!(&pending[0], a, "a job reads back as it was queued");
    assert_eq!(lanes.pending(lane, 1, usize::MAX).await.unwrap().len(), 1);
    assert_eq!(lanes.pending_count(lane, 10).await.unwrap(), 2);
    assert_eq!(state_of(lanes, a).await, (JobState::Pending, None));
    assert!(lanes.registration(lane).await.unwrap().is_some());
    assert!(
        lanes
            .lanes(now)
            .await
            .unwrap()
            .iter()
            .any(|r| &r.lane == lane)
    );
}

/// One runner holds the lease; another is refused; only the holder renews it. The lease is
/// left with `r1` until `now` + 120 s.
async fn lease<L: LaneView + LaneLease>(lanes: &L, lane: &LaneId, now: u64) {
    let request = |owner: &str, until: u64| LeaseRequest {
        lane: lane.clone(),
        owner: owner.to_owned(),
        now,
        until,
    };
    assert_eq!(
        lanes.acquire(&request("r1", now + 60_000)).await.unwrap(),
        Leased::Acquired
    );
    assert_eq!(
        lanes.acquire(&request("r2", now + 60_000)).await.unwrap(),
        Leased::HeldBy(Lease {
            owner: "r1".into(),
            until: now + 60_000
        })
    );
    let lost = lanes.renew(lane, "r2", now + 120_000).await.unwrap_err();
    assert!(matches!(lost, FerryError::LeaseLost { .. }), "{lost:?}");
    lanes.renew(lane, "r1", now + 120_000).await.unwrap();
    let held = lanes.lane(lane).await.unwrap().lease.expect("a lease");
    assert_eq!((held.owner.as_str(), held.until), ("r1", now + 120_000));
}

/// A run: claimed by the lease's holder only, one at a time; its jobs taken, then finished;
/// the lease then given up and taken by another runner.
async fn run<L: LaneView + LaneLease + LaneRuns>(
    lanes: &L,
    a: &QueuedJob,
    b: &QueuedJob,
    now: u64,
) {
    let lane = &a.lane;
    let run = run_of(lane, "run-contract-1", &[a, b], now);
    assert!(lanes.claim("r2", &run).await.is_err(), "not the holder");
    lanes.claim("r1", &run).await.unwrap();
    let second = run_of(lane, "run-contract-2", &[a], now);
    assert!(lanes.claim("r1", &second).await.is_err(), "a run in flight");
    assert_eq!(lanes.lane(lane).await.unwrap().run, Some(run.id.clone()));
    assert_eq!(lanes.run(lane, &run.id).await.unwrap(), Some(run.clone()));
    // Taken, then taken again (an adopted run): none left out, and nothing changes.
    for _ in 0..2 {
        let left_out = lanes.take_jobs(&run, &[a.clone(), b.clone()]).await;
        assert!(left_out.unwrap().is_empty());
        assert_eq!(
            state_of(lanes, a).await,
            (JobState::Running, Some(run.id.clone()))
        );
        assert_eq!(lanes.pending_count(lane, 10).await.unwrap(), 0);
        let members = lanes.members(lane, &run.id, 10).await.unwrap();
        assert_eq!(
            members.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
            [a.id.clone(), b.id.clone()]
        );
    }
    // Finished as the runner finishes it: the record given with its end.
    let mut ended = run.clone();
    ended.ended_at = Some(now + 10);
    lanes
        .finish("r1", &ended, JobState::Succeeded)
        .await
        .unwrap();
    assert_eq!(state_of(lanes, b).await.0, JobState::Succeeded);
    assert_eq!(lanes.lane(lane).await.unwrap().run, None);
    let done = lanes
        .run(lane, &run.id)
        .await
        .unwrap()
        .expect("the run is kept");
    assert_eq!(
        (done.state, done.ended_at),
        (RunState::Done, Some(now + 10))
    );
    // Finished again once done: the lane has no run in flight to finish (LeaseLost: the
    // runner's step was overtaken), and nothing changes.
    let again = lanes.finish("r1", &ended, JobState::Failed).await;
    assert!(
        matches!(again, Err(FerryError::LeaseLost { .. })),
        "{again:?}"
    );
    assert_eq!(state_of(lanes, b).await.0, JobState::Succeeded);

    lanes.release(lane, "r1").await.unwrap();
    let request = LeaseRequest {
        lane: lane.clone(),
        owner: "r2".into(),
        now,
        until: now + 60_000,
    };
    assert_eq!(lanes.acquire(&request).await.unwrap(), Leased::Acquired);
}

/// A pending job ended without a run, once; uploads recorded with the job that covers them;
/// uploads that start nothing kept for people.
async fn ends<L: LaneView + LaneQueue + LaneRuns + QueuedUploads + RecordDropped>(
    lanes: &L,
    fs: &str,
    now: u64,
) {
    let c = job(fs, "c", now + 2);
    let lane = &c.lane;
    lanes.enqueue(&c).await.unwrap();
    let end = JobEnd {
        state: JobState::TimedOut,
        at: now + 3,
        cancel: None,
    };
    assert_eq!(
        lanes
            .end_pending(std::slice::from_ref(&c), end.clone())
            .await
            .unwrap(),
        std::slice::from_ref(&c.id)
    );
    assert!(
        lanes
            .end_pending(std::slice::from_ref(&c), end)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(state_of(lanes, &c).await.0, JobState::TimedOut);
    assert_eq!(lanes.pending_count(lane, 10).await.unwrap(), 0);

    // Uploads recorded with the job that covers them, found by a redelivery.
    let d = job(fs, "d", now + 4);
    let uploads = [UploadId([7; 16]), UploadId([9; 16])];
    assert_eq!(
        lanes.enqueue_covering(&d, &uploads).await.unwrap(),
        Enqueued::Added
    );
    assert_eq!(
        lanes.enqueue_covering(&d, &uploads).await.unwrap(),
        Enqueued::AlreadyQueued
    );
    let found = lanes.queued_uploads(lane, now).await.unwrap();
    assert!(uploads.iter().all(|u| found.contains(u)), "{found:?}");
    assert!(
        lanes
            .queued_uploads(lane, now + 5)
            .await
            .unwrap()
            .is_empty()
    );

    // Uploads that start nothing, kept for people.
    let dropped = DroppedUpload {
        at: now,
        why: "matched no route".into(),
        bucket: Some("bucket".into()),
        key: Some(format!("{fs}/key")),
        message_id: Some("m1".into()),
    };
    lanes
        .record_dropped(std::slice::from_ref(&dropped))
        .await
        .unwrap();
    let kept = lanes.dropped((now, now + 1), 1_000).await.unwrap();
    assert!(kept.contains(&dropped), "{kept:?}");
}

#[tokio::test]
async fn fake_lanes_keep_the_lane_contract() {
    contract(&FakeLanes::new()).await;
}

#[tokio::test]
#[ignore = "needs a lane table: local/tests/test_lane_contract.py runs it on the emulator's"]
async fn aws_lanes_keep_the_lane_contract() {
    let table = std::env::var("FERRY_LANE_TABLE").expect("FERRY_LANE_TABLE names the table");
    let aws = ferry::runtime::load_aws_config().await;
    contract(&AwsLanes::new(&aws, &table)).await;
}
