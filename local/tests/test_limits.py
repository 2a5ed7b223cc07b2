"""The heaviest jobs end to end (issue 24): the real functions, the deployed runner definition
and the emulator, each enforcing AWS's hard limits as AWS does (a state over 256 KiB fails its
execution with States.DataLimitExceeded, beyond any Catch; an item over 400 KB or a
transaction over 100 actions or 4 MB is refused). A lane of jobs each as heavy as a job may be
drains: every job runs, is reported and ends; no runner fails; a heavier job is refused at the
edge naming its heaviest field.
"""

from __future__ import annotations

from typing import Any, Callable

from conftest import report_of, submitted
from ferry_local import processes
from ferry_local.emulator_process import ACCOUNT
from ferry_local.ferry import Inbox, LocalFerry, lane_of_fs, unique

#: A job's budget as JSON (shared/src/budget.rs: SPEC_BYTES).
SPEC_BYTES = 327_680


def heavy_export(fs: str, i: int) -> dict[str, Any]:
    """An export of 22 paths of 4,000 CJK characters (264 KB of JSON): valid, so heavy that two
    never share a run, and heavier than a Step Functions state may be (256 KiB): a runner whose
    state carried the spec would fail beyond any Catch."""
    paths = [f"heavy/{i}/{p:02}" + "\u6587" * 4_000 for p in range(22)]
    return {"name": "heaviest-export", "kind": "fsx_export", "file_system_id": fs,
            "paths": paths}


def test_a_lane_of_the_heaviest_jobs_drains_every_job_reported_no_runner_failed(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"heavy/keep.nc": "x\n"})
    jobs = []
    for i in range(4):
        # The longest occurrence a schedule may send: the job's source, kept with the job and
        # listed in its report.
        occurrence = (f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/heavy@{i}-"
                      + "\U0001F600" * 900)
        jobs.append(submitted(ferry, heavy_export(fs, i), occurrence=occurrence))
    settled = ferry.settle(lane_of_fs(fs), jobs=4, timeout=240)
    assert [settled[j]["state"] for j in jobs] == ["succeeded"] * 4
    tasks = ferry.fsx_tasks(fs)
    assert len(tasks) == 4, "each run alone: two of these would pass the spec budget"
    for job in jobs:
        report = report_of(reports, job, timeout=60)
        assert report["outcome"] == "succeeded"
        assert report["jobs"]["total"] == 1
    runners = ferry.runners(lane_of_fs(fs))
    assert runners and all(r.status == "SUCCEEDED" for r in runners), \
        [r.describe() for r in runners]
    # No state came near the quota: the runner carries references, never the spec.
    for runner in runners:
        for event in runner.events:
            if event["type"] == "StateExited":
                assert len(str(event.get("output"))) < 64 * 1024, event["state"]


def test_a_job_heavier_than_its_budget_is_refused_at_the_edge_naming_its_field(
        ferry: LocalFerry, file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system()
    job = {"name": unique("too-heavy"), "kind": "fsx_export", "file_system_id": fs,
           "paths": [f"d{p:02}/" + "\u6587" * 4_090 for p in range(32)]}
    refused = ferry.submit({"job": job})
    assert refused.error_type == "InvalidJob", refused
    assert "job.paths: weighs 392,865 bytes as JSON" in refused.error_message
    assert f"{SPEC_BYTES:,}" in refused.error_message
    assert ferry.lane_jobs(lane_of_fs(fs)) == {}, "nothing queued"


def test_a_run_of_the_most_jobs_with_the_longest_sources_ends_with_one_report(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    """A run of 1,999 jobs (a run covers at most 2,000), each from a schedule occurrence of 900
    emoji: their sources alone weigh 7 MB, which neither the runner's state nor the run's record
    could hold; the run's jobs are member items, and the state a reference."""
    _, fs = file_system(files={"big/keep.nc": "x\n"})
    lane = lane_of_fs(fs)
    release = {"kind": "fsx_release", "file_system_id": fs, "paths": ["big"],
               "release": {"days_since_last_access": 0}}
    ferry.ctl.hold(file_system_id=fs)
    first = submitted(ferry, {"name": unique("holder"), **release})
    processes.wait_for(lambda: (ferry.run_in_flight(lane) or {}).get("state") == "started", 60,
                       what="the first run to start")
    jobs = []
    for i in range(1_999):
        occurrence = (f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/many@{i}-"
                      + "\U0001F600" * 900)
        jobs.append(submitted(ferry, {"name": "many", **release}, occurrence=occurrence))
    # The take of the 1,999 (8 pages of 1 MB, 61 transactions of 155 KB) lasted 15 to over
    # 30 s in moto on this machine: past the lane's 30 s Timeout, which is sized for DynamoDB.
    # A take cut short is recovered (its run settled to what it took, the rest taken next:
    # a_claim_that_died_halfway_through_taking_is_settled_by_its_adopter, in
    # shared/src/lanes/runner/tests.rs), but its run is then split, and this test is about the
    # bytes of the largest run, not time.
    with ferry.functions.timeout("ferry-lane", 180):
        ferry.ctl.release(file_system_id=fs)
        settled = ferry.settle(lane, jobs=2_000, timeout=600, interval=5)
    assert {settled[j]["state"] for j in [first, *jobs]} == {"succeeded"}
    assert len(ferry.fsx_tasks(fs)) == 2, "the holder's run, then one run of the 1,999"
    report = report_of(reports, jobs[0], timeout=120)
    assert report["jobs"]["total"] == 1_999
    assert len(report["jobs"]["listed"]) == 100, "the first 100 listed, the rest counted"
    runners = ferry.runners(lane)
    assert all(r.status == "SUCCEEDED" for r in runners), [r.describe() for r in runners]
