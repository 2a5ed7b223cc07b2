//! The runner's steps over the in-memory lane table (`FakeLanes`, built with `test-util`).

use serde_json::json;

use super::run::{plan, settle};
use super::*;
use crate::domain::job::{JobSpec, Limits};
use crate::fakes::FakeLanes;
use crate::lanes::record::{
    CancelRequest, JobEnd, JobState, Lease, QueuedJob, RunId, RunRecord, RunState,
};
use crate::lanes::{JobId, JobSource, MAX_JOBS_PER_RUN};
use crate::ports::{LaneLease, LaneQueue, LaneRuns, LaneView};

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
    let taker = Taker {
        lane: &lane(),
        owner,
        generation: 0,
    };
    take(fake, &Limits::default(), taker, timing, run_id).await
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

/// A sweep at `timing` with all the time it needs.
async fn sweep_at(fake: &FakeLanes, timing: Timing, salt: &str) -> Result<Swept, FerryError> {
    sweep((fake, fake), (timing, Millis::MAX), salt, || timing.now).await
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
            settle_seconds: 0,
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
    assert_eq!(run.job_count, 3);
    assert_eq!(fake.members(&lane(), &run.id, 10).await.unwrap().len(), 3);
    assert_eq!(run.id.0, "run-r1");
    assert_eq!(run.spec.paths.len(), 3);
    assert!(
        fake.pending(&lane(), 10, usize::MAX)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(fake.jobs().iter().all(|(_, s)| *s == JobState::Running));
    // The same run is in flight: another take adopts it, nothing new is claimed.
    assert_adopts(&fake, &owner, at(4), &run).await;
}

/// A take by `owner` adopts `run`, the only run ever claimed: no second task.
async fn assert_adopts(fake: &FakeLanes, owner: &str, timing: Timing, run: &RunRecord) {
    let taken = take_as(fake, owner, timing, "another").await.unwrap();
    assert!(!taken.abandon);
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
    assert_eq!(taken.expired[0], upload("old", 0).id);
    let run = taken.run.unwrap();
    assert_eq!(run.job_count, 1);
    let members = fake.members(&lane(), &run.id, 10).await.unwrap();
    assert_eq!(members[0].id, upload("fresh", 70).id);
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

/// A `Release` retried after its first attempt gave the lease up (and stopped, or lost its
/// answer) looks for jobs as the first would have: a job whose kick found the lane still held
/// is taken now, not left to the lease's expiry and the sweep.
#[tokio::test]
async fn a_retried_release_whose_first_attempt_landed_still_takes_a_late_job() {
    let fake = FakeLanes::new();
    let owner = runner(&fake, at(0)).await;
    enqueued(&fake, &[upload("late", 1)]).await;
    assert!(matches!(
        kick((&fake, &fake), &lane(), at(1), "req-9").await.unwrap(),
        Kicked::Running { .. }
    ));
    // The first attempt's write landed; it stopped before looking.
    fake.release(&lane(), &owner).await.unwrap();
    assert!(release(&fake, (&lane(), &owner), at(1)).await.unwrap());
    assert_eq!(fake.lease(&lane()).map(|l| l.owner), Some(owner.clone()));

    // With the lane taken by another runner since, the retry stops and leaves it to that one.
    fake.release(&lane(), &owner).await.unwrap();
    let other = match kick((&fake, &fake), &lane(), at(2), "req-10")
        .await
        .unwrap()
    {
        Kicked::Started { owner } => owner,
        k => panic!("expected a start, got {k:?}"),
    };
    assert!(!release(&fake, (&lane(), &owner), at(2)).await.unwrap());
    assert_eq!(fake.lease(&lane()).map(|l| l.owner), Some(other));
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
    let swept = sweep_at(&fake, at(30), "sweep-1").await.unwrap();
    let kicked = swept.kicked;
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
        sweep_at(&fake, at(5), "s").await.unwrap().kicked.is_empty(),
        "held"
    );
    let fake = FakeLanes::new();
    assert!(
        sweep_at(&fake, at(5), "s").await.unwrap().kicked.is_empty(),
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
    assert!(next.owner.len() <= 80, "{}", next.owner);
    assert_eq!((next.lane.clone(), next.generation), (lane(), 2));
    // Retried later (the first answer lost): the same execution, the lease kept for it.
    let retried = hand_over(&fake, (&lane(), &owner), 1, at(11)).await;
    assert_eq!(
        retried.unwrap(),
        next,
        "a retry names the same next execution"
    );
    assert_eq!(
        fake.lease(&lane()),
        Some(Lease {
            owner: next.owner.clone(),
            until: at(11).now + 15 * MINUTE
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
        assert!(run.job_count <= MAX_JOBS_PER_RUN);
        assert!(!run.spec.paths.is_empty() && run.spec.paths.len() <= limits.max_paths);
        assert!(
            run.spec
                .paths
                .iter()
                .all(|p| p.starts_with("s3://ferry-data/incoming/")),
            "never above the route's prefix: {:?}",
            run.spec.paths
        );
        sizes.push(run.job_count);
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

/// Enqueues `jobs` and claims a run of them by hand (as a take does up to its claim): the
/// runner's name, the planned run and the jobs it plans to take.
async fn claimed(fake: &FakeLanes, jobs: &[QueuedJob], timing: Timing) -> (String, RunRecord) {
    enqueued(fake, jobs).await;
    let owner = runner(fake, timing).await;
    let planned = plan(
        jobs,
        &Limits::default(),
        &lane(),
        RunId("run-c".into()),
        timing.now,
    )
    .expect("a run");
    fake.claim(&owner, &planned.run).await.unwrap();
    (owner, planned.run)
}

#[tokio::test]
async fn a_job_cancelled_between_the_claim_and_its_taking_leaves_the_run_and_nothing_behind() {
    // Issue 24/25: the run goes on with the jobs it took, merged again; every job is either a
    // member of the run, or ended, or pending, never running outside any run.
    let fake = FakeLanes::new();
    let jobs = [upload("a/1", 0), upload("b/22", 0), upload("c/333", 0)];
    let (owner, run) = claimed(&fake, &jobs, at(1)).await;
    let end = JobEnd {
        state: JobState::Canceled,
        at: at(1).now,
        cancel: Some(CancelRequest {
            by: "arn:aws:iam::111122223333:user/ana".into(),
            reason: "wrong folder".into(),
            at: at(1).now,
        }),
    };
    fake.end_pending(&jobs[1..2], end).await.unwrap();
    let gone = fake.take_jobs(&run, &jobs).await.unwrap();
    assert_eq!(gone, [jobs[1].id.clone()]);
    let kept = vec![jobs[0].clone(), jobs[2].clone()];
    let settled = settle(&fake, &Limits::default(), (run, kept), &owner, at(1).now)
        .await
        .unwrap()
        .expect("a run of two");
    assert_eq!(settled.job_count, 2);
    assert_eq!(settled.spec.paths.len(), 2);
    assert!(!settled.spec.paths.iter().any(|p| p.contains("b/22")));
    assert_every_job_accounted_for(&fake).await;
}

/// Every job is pending, ended, or running as a member of the run in flight.
async fn assert_every_job_accounted_for(fake: &FakeLanes) {
    let in_flight = fake.lane(&lane()).await.unwrap().run;
    let members: Vec<JobId> = match &in_flight {
        Some(id) => fake
            .members(&lane(), id, usize::MAX)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect(),
        None => Vec::new(),
    };
    for (job, state) in fake.jobs() {
        if state == JobState::Running {
            assert!(members.contains(&job.id), "{} runs outside its run", job.id);
        }
    }
}

#[tokio::test]
async fn a_claim_that_died_halfway_through_taking_is_settled_by_its_adopter() {
    let fake = FakeLanes::new();
    let jobs = [upload("a/1", 0), upload("b/22", 0), upload("c/333", 0)];
    let (_, run) = claimed(&fake, &jobs, at(1)).await;
    // The first runner took one job, then died.
    fake.take_jobs(&run, &jobs[..1]).await.unwrap();
    let second = runner(&fake, at(30)).await;
    let taken = take_as(&fake, &second, at(30), "x").await.unwrap();
    let adopted = taken.run.expect("the run");
    assert!(taken.adopted);
    assert_eq!(adopted.adoptions, 1);
    assert_eq!(adopted.job_count, 1, "the run is the job it took");
    assert_eq!(adopted.spec.paths, jobs[0].spec.paths);
    assert_eq!(
        taken.backlog, 2,
        "the two it never took wait for the next run"
    );
    assert_every_job_accounted_for(&fake).await;
}

#[tokio::test]
async fn a_run_whose_runners_keep_stopping_is_abandoned_and_the_jobs_behind_it_still_expire() {
    let fake = FakeLanes::new();
    let (_, run) = running(&fake, &[upload("a", 0)], at(0)).await;
    // A job behind the run, past its deadline before the run ends.
    enqueued(&fake, &[upload("behind", 1)]).await;
    let mut minute = 0;
    for adoption in 1..=MAX_ADOPTIONS + 1 {
        // Each runner stops; its lease expires; the sweep's runner adopts the run.
        minute += 20;
        let owner = runner(&fake, at(minute)).await;
        let taken = take_as(&fake, &owner, at(minute), "x").await.unwrap();
        assert_eq!(taken.run.as_ref().map(|r| r.adoptions), Some(adoption));
        assert_eq!(
            taken.abandon,
            adoption > MAX_ADOPTIONS,
            "adoption {adoption}"
        );
        if minute >= 61 {
            assert!(
                fake.jobs()
                    .iter()
                    .any(|(j, s)| j.id == upload("behind", 1).id && *s == JobState::TimedOut),
                "the job behind the stuck run expired at minute {minute}"
            );
        }
        assert_eq!(taken.run.unwrap().id, run.id);
    }
}

#[tokio::test]
async fn a_continuation_adopts_the_run_it_was_handed_without_counting() {
    let fake = FakeLanes::new();
    let (owner, run) = running(&fake, &[upload("a", 0)], at(0)).await;
    let next = hand_over(&fake, (&lane(), &owner), 0, at(5)).await.unwrap();
    let taker = Taker {
        lane: &lane(),
        owner: &next.owner,
        generation: next.generation,
    };
    let taken = take(&fake, &Limits::default(), taker, at(5), "y")
        .await
        .unwrap();
    assert_eq!(taken.run.map(|r| (r.id, r.adoptions)), Some((run.id, 0)));
}

#[tokio::test]
async fn a_cancelled_pending_job_is_reported_by_reference() {
    let fake = FakeLanes::new();
    enqueued(&fake, &[upload("a", 0)]).await;
    let id = upload("a", 0).id;
    let cancel = cancel(&fake, &id, ("ana", "oops"), at(1).now)
        .await
        .unwrap();
    assert_eq!(cancel.done, Cancelled::WhilePending);
    let enqueued_at = cancel.enqueued_at;
    let report = cancel.report.expect("a report");
    assert_eq!((report.lane, report.jobs), (lane(), vec![id.clone()]));
    let record = fake.job(&id).await.unwrap().unwrap();
    assert_eq!(record.job.enqueued_at, enqueued_at);
    assert_eq!(record.cancel.map(|c| c.reason), Some("oops".into()));
    let ended = EndedPending {
        lane: lane(),
        jobs: vec![id.clone()],
    };
    report_canceled(&fake, &ended, enqueued_at).await.unwrap();
    let (name, input) = fake.runners().pop().unwrap();
    assert_eq!(name, canceled_name(&id, enqueued_at));
    assert!(name.len() <= 80, "{name}");
    assert!(input.len() < 200, "{input}");
}

/// A caller's id submitted again after the lane table forgot the first job (30 days) is the
/// same job id; cancelled again within Step Functions' 90 days of names, its report still
/// goes out: the name carries the enqueue, so only a repeat of the same cancel is refused.
#[tokio::test]
async fn a_job_id_enqueued_again_is_reported_when_cancelled_again() {
    let fake = FakeLanes::new();
    let ended = EndedPending {
        lane: lane(),
        jobs: vec![upload("a", 0).id],
    };
    let first = at(1).now;
    let again = first + 31 * 24 * 3_600_000;
    for enqueued_at in [first, first, again, again] {
        report_canceled(&fake, &ended, enqueued_at).await.unwrap();
    }
    let names: Vec<String> = fake.runners().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        names,
        [
            canceled_name(&ended.jobs[0], first),
            canceled_name(&ended.jobs[0], again)
        ]
    );
}

/// `n` lanes (DataSync tasks Ferry ensures, by name), each with one job queued at minute 0.
async fn lanes_with_a_job_each(fake: &FakeLanes, n: usize) -> Vec<LaneId> {
    let mut lanes = Vec::new();
    for i in 0..n {
        let spec: JobSpec = serde_json::from_value(json!({"name": "sync", "kind": "datasync",
            "task_arn": format!("arn:aws:datasync:us-east-1:111122223333:task/task-{i:017x}")}))
        .unwrap();
        let job = QueuedJob {
            id: JobId::derive(&JobSource::Caller(format!("j{i}")), &spec),
            lane: LaneId::of(&spec.clone().validate(&Limits::default()).unwrap()),
            spec,
            collapse_root: None,
            source: "submit".into(),
            enqueued_at: at(0).now,
            deadline: at(0).now + 600 * MINUTE,
        };
        lanes.push(job.lane.clone());
        fake.enqueue(&job).await.unwrap();
    }
    lanes
}

#[tokio::test]
async fn a_lane_that_fails_its_visit_does_not_keep_the_sweep_from_the_others() {
    // Issue 24, mechanism 5: one failed read used to abort the sweep and its metrics.
    let fake = FakeLanes::new();
    let lanes = lanes_with_a_job_each(&fake, 40).await;
    fake.fail_next_lane_reads(1);
    let swept = sweep_at(&fake, at(1), "s").await.unwrap();
    assert_eq!(swept.registered, 40);
    assert_eq!(swept.failed.len(), 1);
    assert_eq!(swept.kicked.len(), 39, "every other lane got its runner");
    assert_eq!(swept.oldest.len(), 39);
    assert!(
        swept.oldest.iter().all(|(_, age)| *age == 60),
        "a minute old"
    );
    assert!(lanes.contains(&swept.failed[0].0));
}

#[tokio::test]
async fn lanes_released_idle_are_passed_by_until_a_job_comes() {
    let fake = FakeLanes::new();
    enqueued(&fake, &[upload("a", 0)]).await;
    let (owner, run) = {
        let owner = runner(&fake, at(0)).await;
        let run = take_as(&fake, &owner, at(0), "r")
            .await
            .unwrap()
            .run
            .unwrap();
        (owner, run)
    };
    finish(
        &fake,
        (&lane(), &owner),
        &run.id,
        JobState::Succeeded,
        at(1),
    )
    .await
    .unwrap();
    assert!(!release(&fake, (&lane(), &owner), at(1)).await.unwrap());
    let swept = sweep_at(&fake, at(30), "s").await.unwrap();
    assert_eq!(
        (swept.registered, swept.oldest.len()),
        (1, 0),
        "idle: not visited"
    );
    // A job comes: the lane is visited again (and, its lease long gone, kicked).
    enqueued(&fake, &[upload("b", 31)]).await;
    let swept = sweep_at(&fake, at(32), "s").await.unwrap();
    assert_eq!(swept.oldest, [(lane(), 60)]);
    assert_eq!(swept.kicked.len(), 1);
}

#[tokio::test]
async fn an_idle_mark_never_hides_a_job_queued_during_the_release() {
    // The release reads the registration, gives the lease up and looks: a job queued after
    // the look renews the registration, so the mark (conditional on what was read) fails.
    let fake = FakeLanes::new();
    enqueued(&fake, &[upload("a", 0)]).await;
    let seen = fake.registration(&lane()).await.unwrap().unwrap().last_job;
    enqueued(&fake, &[upload("late", 1)]).await;
    assert!(
        !fake
            .mark_idle(&lane(), seen.as_ref(), at(1).now)
            .await
            .unwrap()
    );
    assert!(!fake.registration(&lane()).await.unwrap().unwrap().idle);
    let now_seen = fake.registration(&lane()).await.unwrap().unwrap().last_job;
    assert!(
        fake.mark_idle(&lane(), now_seen.as_ref(), at(1).now)
            .await
            .unwrap()
    );
}

#[tokio::test]
async fn a_sweep_out_of_time_leaves_the_rest_to_the_next_which_starts_elsewhere() {
    // Issue 24, mechanism 5: however many lanes, the sweep ends before its function's timeout;
    // the lanes it did not reach are the next sweep's.
    let fake = FakeLanes::new();
    lanes_with_a_job_each(&fake, 40).await;
    let ticks = std::sync::atomic::AtomicU64::new(0);
    let clock = || ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let first = sweep((&fake, &fake), (at(1), 10), "s", clock)
        .await
        .unwrap();
    assert_eq!((first.oldest.len(), first.unvisited), (10, 30));
    let visited: std::collections::BTreeSet<LaneId> =
        first.oldest.iter().map(|(l, _)| l.clone()).collect();
    // A sweep a few seconds later starts at another lane.
    let ticks = std::sync::atomic::AtomicU64::new(0);
    let clock = || ticks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let later = Timing {
        now: at(1).now + 17_000,
        ..at(1)
    };
    let second = sweep((&fake, &fake), (later, 10), "s", clock)
        .await
        .unwrap();
    let again: std::collections::BTreeSet<LaneId> =
        second.oldest.iter().map(|(l, _)| l.clone()).collect();
    assert!(
        again.difference(&visited).count() > 0,
        "the next sweep reaches other lanes"
    );
}

/// Issue 25: a runner stopped by hand, failed or timed out was replaced only after its lease
/// expired and a sweep came. Its status change event now passes the lease to a replacement at
/// once, which waits for the stopped runner's steps in flight to end and adopts the run.
#[tokio::test]
async fn a_stopped_runner_is_replaced_at_once_and_can_no_longer_act() {
    let fake = FakeLanes::new();
    let (stopped, run) = running(&fake, &[upload("a", 0)], at(0)).await;
    let replaced = replace((&fake, &fake), &lane(), &stopped, at(1))
        .await
        .unwrap();
    let Kicked::Started { owner } = replaced else {
        panic!("expected a start, got {replaced:?}");
    };
    assert_eq!(owner, replacement_name(&lane(), &stopped));
    assert!(owner.len() <= 80, "{owner}");
    assert_eq!(fake.lease(&lane()).map(|l| l.owner), Some(owner.clone()));
    let (name, input) = fake.runners().pop().unwrap();
    assert_eq!(name, owner);
    let input: RunnerInput = serde_json::from_str(&input).unwrap();
    assert_eq!(
        (input.generation, input.settle_seconds),
        (0, SETTLE_SECONDS)
    );
    assert_eq!(
        error_type(take_as(&fake, &stopped, at(1), "x").await),
        "LeaseLost",
        "the stopped runner cannot act any more"
    );
    let taken = take_as(&fake, &owner, at(2), "y").await.unwrap();
    assert!(taken.adopted);
    assert_eq!(taken.run.map(|r| (r.id, r.adoptions)), Some((run.id, 1)));

    // The same event delivered again finds the replacement holding the lane: nothing new.
    let again = replace((&fake, &fake), &lane(), &stopped, at(3))
        .await
        .unwrap();
    assert_eq!(
        again,
        Kicked::Running {
            owner: owner.clone()
        }
    );
    assert_eq!(fake.runners().len(), 2, "the kick and one replacement");

    // Found by the simulation (seed 0): the replacement stops too, its event lost; a late
    // copy of the first stop's event must not hand the lane back to that dead replacement
    // (whose name Step Functions answers as started) once its lease has expired.
    let late = replace((&fake, &fake), &lane(), &stopped, at(40))
        .await
        .unwrap();
    let Kicked::Started { owner: fresh } = late else {
        panic!("expected a fresh runner, got {late:?}");
    };
    assert_ne!(fresh, owner);
    assert_eq!(fake.lease(&lane()).map(|l| l.owner), Some(fresh));
}

#[tokio::test]
async fn a_stop_event_for_a_runner_that_no_longer_holds_the_lane_replaces_nothing() {
    let fake = FakeLanes::new();
    let (stopped, _) = running(&fake, &[upload("a", 0)], at(0)).await;
    // Its lease expired and the sweep started another runner before the event came.
    let swept = sweep_at(&fake, at(30), "sweep-1").await.unwrap();
    let [(_, Kicked::Started { owner: second })] = swept.kicked.as_slice() else {
        panic!("expected one start, got {:?}", swept.kicked);
    };
    let late = replace((&fake, &fake), &lane(), &stopped, at(31))
        .await
        .unwrap();
    assert_eq!(
        late,
        Kicked::Running {
            owner: second.clone()
        }
    );
    assert_eq!(fake.lease(&lane()).map(|l| l.owner), Some(second.clone()));
}
