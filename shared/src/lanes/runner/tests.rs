//! The runner's steps over the in-memory lane table (`FakeLanes`, built with `test-util`).

use serde_json::json;

use super::*;
use crate::domain::job::JobSpec;
use crate::fakes::FakeLanes;
use crate::lanes::record::Lease;
use crate::lanes::{JobId, JobSource};
use crate::ports::LaneQueue;

const FS: &str = "fs-0123456789abcdef0";
const MINUTE: Millis = 60_000;

fn lane() -> LaneId {
    LaneId::parse(&format!("fsx:{FS}")).unwrap()
}

fn at(minutes: u64) -> Timing {
    Timing {
        now: 1_700_000_000_000 + minutes * MINUTE,
        lease_ms: 15 * MINUTE,
    }
}

/// An upload job of `key` enqueued at minute `minute`, wanted for an hour.
fn upload(key: &str, minute: u64) -> QueuedJob {
    let spec: JobSpec = serde_json::from_value(json!({"name": "incoming", "kind": "fsx_import",
        "file_system_id": FS, "paths": [format!("s3://ferry-data/incoming/{key}")]}))
    .unwrap();
    let enqueued_at = at(minute).now;
    QueuedJob {
        id: JobId::derive(&JobSource::Uploads([key.len() as u8; 32]), &spec),
        lane: lane(),
        spec,
        collapse_root: Some("s3://ferry-data/incoming/".into()),
        source: "s3-trigger".into(),
        enqueued_at,
        deadline: enqueued_at + 60 * MINUTE,
    }
}

/// One take by `owner` at `timing`, with the default limits.
async fn take_as(
    fake: &FakeLanes,
    owner: &str,
    timing: Timing,
    run_id: &str,
) -> Result<Taken, FerryError> {
    take(fake, &Limits::default(), (&lane(), owner), timing, run_id).await
}

async fn enqueued(fake: &FakeLanes, jobs: &[QueuedJob]) {
    for job in jobs {
        fake.enqueue(job).await.unwrap();
    }
}

/// Enqueues `jobs`, kicks a runner and takes: the runner's name and its run.
async fn running(fake: &FakeLanes, jobs: &[QueuedJob], timing: Timing) -> (String, RunRecord) {
    enqueued(fake, jobs).await;
    let owner = runner(fake, timing).await;
    let taken = take_as(fake, &owner, timing, "r1").await.unwrap();
    (owner, taken.run.expect("a run"))
}

/// Kicks a runner at `timing` and returns its name.
async fn runner(fake: &FakeLanes, timing: Timing) -> String {
    match kick((fake, fake), &lane(), timing, "req-1").await.unwrap() {
        Kicked::Started { owner } => owner,
        other => panic!("expected a start, got {other:?}"),
    }
}

#[tokio::test]
async fn a_kick_starts_one_runner_holding_the_lease() {
    let fake = FakeLanes::new();
    let owner = runner(&fake, at(0)).await;
    assert!(owner.len() <= 80 && owner.starts_with("lane-"), "{owner}");
    assert_eq!(fake.runners().len(), 1);
    let input: RunnerInput = serde_json::from_str(&fake.runners()[0].1).unwrap();
    assert_eq!(
        input,
        RunnerInput {
            lane: lane(),
            owner: owner.clone(),
            generation: 0,
        }
    );
    let again = kick((&fake, &fake), &lane(), at(1), "req-2").await.unwrap();
    assert_eq!(
        again,
        Kicked::Running {
            owner: owner.clone()
        }
    );
    assert_eq!(
        fake.runners().len(),
        1,
        "a held lane starts no second runner"
    );
    // Once the lease expires (its runner died), a kick starts a new one.
    let later = kick((&fake, &fake), &lane(), at(20), "req-3")
        .await
        .unwrap();
    assert!(matches!(later, Kicked::Started { .. }), "{later:?}");
}

#[tokio::test]
async fn a_runner_that_cannot_start_gives_the_lease_back() {
    let fake = FakeLanes::new();
    fake.fail_next_runner_starts(1);
    assert!(kick((&fake, &fake), &lane(), at(0), "req-1").await.is_err());
    assert_eq!(fake.lease(&lane()), None);
    runner(&fake, at(0)).await;
}

#[tokio::test]
async fn a_take_merges_everything_pending_into_one_run() {
    let fake = FakeLanes::new();
    enqueued(
        &fake,
        &[
            upload("a/1.h5", 0),
            upload("b/22.h5", 1),
            upload("a/333.h5", 2),
        ],
    )
    .await;
    let owner = runner(&fake, at(3)).await;
    let taken = take_as(&fake, &owner, at(3), "r1").await.unwrap();
    let run = taken.run.expect("a run");
    assert!(!taken.adopted);
    assert_eq!(run.jobs.len(), 3);
    assert_eq!(run.id.0, "run-r1");
    assert_eq!(run.spec.paths.len(), 3);
    assert!(fake.pending(&lane(), 10).await.unwrap().is_empty());
    assert!(fake.jobs().iter().all(|(_, s)| *s == JobState::Running));
    // The same run is in flight: another take adopts it, nothing new is claimed.
    assert_adopts(&fake, &owner, at(4), &run).await;
}

/// A take by `owner` adopts `run`, the only run ever claimed: no second task.
async fn assert_adopts(fake: &FakeLanes, owner: &str, timing: Timing, run: &RunRecord) {
    let taken = take_as(fake, owner, timing, "another").await.unwrap();
    assert!(taken.adopted);
    assert_eq!(taken.run.map(|r| r.id), Some(run.id.clone()));
    assert_eq!(fake.runs().len(), 1);
}

#[tokio::test]
async fn a_take_by_a_runner_without_the_lease_is_refused() {
    let fake = FakeLanes::new();
    enqueued(&fake, &[upload("a", 0)]).await;
    runner(&fake, at(0)).await;
    let error = take_as(&fake, "someone-else", at(0), "r")
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "LeaseLost");
    assert!(fake.runs().is_empty());
}

#[tokio::test]
async fn jobs_past_their_deadline_end_timed_out_without_running() {
    let fake = FakeLanes::new();
    enqueued(&fake, &[upload("old", 0), upload("fresh", 70)]).await;
    let owner = runner(&fake, at(75)).await;
    let taken = take_as(&fake, &owner, at(75), "r").await.unwrap();
    assert_eq!(taken.expired.len(), 1);
    assert_eq!(taken.expired[0].id, upload("old", 0).id);
    let run = taken.run.unwrap();
    assert_eq!(run.jobs.len(), 1);
    assert_eq!(run.jobs[0].id, upload("fresh", 70).id);
    let states: Vec<JobState> = fake.jobs().into_iter().map(|(_, s)| s).collect();
    assert_eq!(states, [JobState::TimedOut, JobState::Running]);
}

#[tokio::test]
async fn a_finished_run_frees_the_lane_and_its_jobs_end_with_it() {
    let fake = FakeLanes::new();
    let (owner, run) = running(&fake, &[upload("a", 0), upload("bb", 0)], at(1)).await;
    let done = finish(
        &fake,
        (&lane(), &owner),
        &run.id,
        JobState::Succeeded,
        at(5),
    )
    .await
    .unwrap();
    assert_eq!(done.state, RunState::Done);
    assert!(fake.jobs().iter().all(|(_, s)| *s == JobState::Succeeded));
    // A retried finish changes nothing.
    let again = finish(&fake, (&lane(), &owner), &run.id, JobState::Failed, at(6))
        .await
        .unwrap();
    assert_eq!(again.state, RunState::Done);
    assert!(fake.jobs().iter().all(|(_, s)| *s == JobState::Succeeded));
    // Nothing pending: the runner gives the lane up.
    assert!(!release(&fake, (&lane(), &owner), at(6)).await.unwrap());
    assert_eq!(fake.lease(&lane()), None);
}

#[tokio::test]
async fn a_job_enqueued_while_the_lane_is_released_is_never_stranded() {
    let fake = FakeLanes::new();
    let owner = runner(&fake, at(0)).await;
    // The entry enqueues, its kick finds the lane held (before the release) ...
    enqueued(&fake, &[upload("late", 1)]).await;
    assert!(matches!(
        kick((&fake, &fake), &lane(), at(1), "req-9").await.unwrap(),
        Kicked::Running { .. }
    ));
    // ... so the release must see the job and keep the lane.
    assert!(release(&fake, (&lane(), &owner), at(1)).await.unwrap());
    assert_eq!(
        fake.lease(&lane()).map(|l| l.owner),
        Some(owner.clone()),
        "the runner took the lease back"
    );
    let taken = take_as(&fake, &owner, at(1), "r").await.unwrap();
    assert!(taken.run.is_some());
}

#[tokio::test]
async fn a_run_in_flight_keeps_the_lane_and_a_new_runner_adopts_it() {
    let fake = FakeLanes::new();
    let (first, run) = running(&fake, &[upload("a", 0)], at(0)).await;
    assert_eq!(
        error_type(release(&fake, (&lane(), &first), at(1)).await),
        "LeaseLost",
        "a runner with a run in flight cannot give the lane up"
    );
    // The first runner is stopped; its lease expires; the sweep starts a second.
    let kicked = sweep((&fake, &fake), at(30), "sweep-1").await.unwrap();
    let [(kicked_lane, Kicked::Started { owner: second })] = kicked.as_slice() else {
        panic!("expected one start, got {kicked:?}");
    };
    assert_eq!(kicked_lane, &lane());
    assert_eq!(
        error_type(take_as(&fake, &first, at(30), "x").await),
        "LeaseLost",
        "the stopped runner, were it to wake, stops"
    );
    assert_adopts(&fake, second, at(30), &run).await;
}

#[tokio::test]
async fn the_sweep_leaves_held_and_idle_lanes_alone() {
    let fake = FakeLanes::new();
    enqueued(&fake, &[upload("a", 0)]).await;
    runner(&fake, at(0)).await;
    assert!(
        sweep((&fake, &fake), at(5), "s").await.unwrap().is_empty(),
        "held"
    );
    let fake = FakeLanes::new();
    assert!(
        sweep((&fake, &fake), at(5), "s").await.unwrap().is_empty(),
        "no lane"
    );
}

#[tokio::test]
async fn a_hand_over_passes_the_lease_to_the_next_execution_once() {
    let fake = FakeLanes::new();
    let owner = runner(&fake, at(0)).await;
    let next = hand_over(&fake, (&lane(), &owner), 1, at(10))
        .await
        .unwrap();
    assert_ne!(next.owner, owner);
    assert_eq!((next.lane.clone(), next.generation), (lane(), 2));
    assert_eq!(
        fake.lease(&lane()),
        Some(Lease {
            owner: next.owner.clone(),
            until: at(10).now + 15 * MINUTE
        })
    );
    assert_eq!(
        hand_over(&fake, (&lane(), &next.owner), 2, at(10))
            .await
            .unwrap()
            .generation,
        3,
        "the next execution can hand over in turn"
    );
    assert_eq!(
        error_type(hand_over(&fake, (&lane(), &owner), 1, at(10)).await),
        "LeaseLost",
        "the old runner no longer holds the lane"
    );
}

fn error_type<T: std::fmt::Debug>(result: Result<T, FerryError>) -> &'static str {
    result.expect_err("expected an error").error_type()
}

#[tokio::test]
async fn a_full_lane_of_ten_thousand_pending_uploads_drains_in_runs_of_at_most_two_thousand() {
    let fake = FakeLanes::new();
    let jobs: Vec<QueuedJob> = (0..10_000u64)
        .map(|i| {
            let mut job = upload(&format!("d{:03}/f-{i:05}.h5", i % 300), 0);
            job.id = JobId::derive(&JobSource::Caller(format!("upload {i}")), &job.spec);
            job.enqueued_at += i;
            job
        })
        .collect();
    enqueued(&fake, &jobs).await;
    let owner = runner(&fake, at(1)).await;
    let limits = Limits::default();
    let mut sizes = Vec::new();
    for n in 0..10 {
        let timing = at(2 + n);
        let taken = take_as(&fake, &owner, timing, &format!("r{n}"))
            .await
            .unwrap();
        let Some(run) = taken.run else { break };
        assert!(run.jobs.len() <= MAX_JOBS_PER_RUN);
        assert!(!run.spec.paths.is_empty() && run.spec.paths.len() <= limits.max_paths);
        assert!(
            run.spec
                .paths
                .iter()
                .all(|p| p.starts_with("s3://ferry-data/incoming/")),
            "never above the route's prefix: {:?}",
            run.spec.paths
        );
        sizes.push(run.jobs.len());
        finish(
            &fake,
            (&lane(), &owner),
            &run.id,
            JobState::Succeeded,
            timing,
        )
        .await
        .unwrap();
    }
    assert_eq!(sizes, [2_000; 5], "oldest first, 2,000 to a run");
    assert!(
        fake.jobs()
            .iter()
            .all(|(_, state)| *state == JobState::Succeeded)
    );
    assert!(!release(&fake, (&lane(), &owner), at(20)).await.unwrap());
}
