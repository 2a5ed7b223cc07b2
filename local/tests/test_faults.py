"""Fault tests (issue 8): Ferry's main job when AWS and Lambda misbehave the ways they do.

Duplicate deliveries, a file system busy with a long export while a thousand uploads arrive,
10 % of every FSx, DataSync, SNS, Step Functions and DynamoDB call throttled, a function
instance that dies or times out after doing its work, and SNS refusing to publish. Each test
drives Ferry the way AWS would (test_e2e.py's conventions) and checks what a user relies on:
every job ends as its transfer did, no task or execution is started twice, no upload is lost,
and the report reaches the subscriber.
"""

from __future__ import annotations

import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from conftest import World, report_of, reports_of_job, submitted
from ferry_local import processes
from ferry_local.ferry import Inbox, LocalFerry, lane_of_fs, lane_of_task, unique

#: Ferry's SDK attempts per AWS call (shared/src/aws/retry.rs, MAX_ATTEMPTS).
SDK_ATTEMPTS = 5
#: FERRY_MAX_PATHS in the harness (template.yaml's default).
MAX_PATHS = 32


def upload(ferry: LocalFerry, bucket: str, keys: list[str], threads: int = 1) -> None:
    s3 = ferry.client("s3")

    def put(key: str) -> None:
        s3.put_object(Bucket=bucket, Key=key, Body=f"contents of {key}\n".encode())

    if threads == 1:
        for key in keys:
            put(key)
        return
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(put, keys))


def new_fsx_tasks(ferry: LocalFerry, fs: str, before: list[dict[str, Any]]
                  ) -> list[dict[str, Any]]:
    seen = {t["TaskId"] for t in before}
    return [t for t in ferry.fsx_tasks(fs) if t["TaskId"] not in seen]


def new_executions(ferry: LocalFerry, task_arn: str, before: set[str]) -> list[dict[str, Any]]:
    return [e for e in ferry.datasync_executions(task_arn) if e["TaskExecutionArn"] not in before]


def new_jobs(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in after.items() if k not in before}


def errors(ferry: LocalFerry, lane: str, state: str) -> list[str]:
    """The errors `state` met, across every runner of `lane`."""
    return [e for run in ferry.runners(lane) for e in run.errors(state)]


def hitting_seed(probability: float) -> int:
    """A seed whose rule fires on its first matching request: every throttled service is
    throttled at least once, whatever order the calls come in, and still at `probability`
    overall."""
    return next(s for s in range(10_000) if random.Random(s).random() < probability)


# ------------------------------------------------------------------------ duplicate deliveries


def test_one_batch_delivered_five_times_queues_one_job_per_route(
        ferry: LocalFerry, world: World, reports: Inbox) -> None:
    # One S3 batch for both routes: FSx import (incoming/) and DataSync (outgoing/).
    batch = unique("five")
    fsx_keys = [f"incoming/{batch}/run-{i}.h5" for i in range(6)]
    ds_keys = [f"outgoing/{batch}/part-{i}.csv" for i in range(4)]
    upload(ferry, world.data_bucket, fsx_keys + ds_keys)
    fsx_lane, ds_lane = lane_of_fs(world.route_fs), lane_of_task(world.route_task_arn)
    jobs_before = {**ferry.lane_jobs(fsx_lane), **ferry.lane_jobs(ds_lane)}
    tasks_before = ferry.fsx_tasks(world.route_fs)
    ds_before = {e["TaskExecutionArn"] for e in ferry.datasync_executions(world.route_task_arn)}

    messages = ferry.receive_uploads(world.uploads_url, objects=len(fsx_keys + ds_keys))
    sqs = ferry.client("sqs")
    deliveries = []
    # Three deliveries whose answers are lost (the messages come back after the visibility
    # timeout), then S3's own duplicates: the same records in new messages, twice.
    for _ in range(3):
        deliveries += ferry.deliver(messages, world.uploads_url, world.uploads_arn,
                                    batch_size=100, delete=False)
    for _ in range(2):
        for m in messages:
            sqs.send_message(QueueUrl=world.uploads_url, MessageBody=m["Body"])
    resent = ferry.receive_uploads(world.uploads_url, objects=2 * len(fsx_keys + ds_keys))
    deliveries += ferry.deliver(resent[:len(messages)], world.uploads_url, world.uploads_arn,
                                batch_size=100)
    deliveries += ferry.deliver(resent[len(messages):], world.uploads_url, world.uploads_arn,
                                batch_size=100)
    deliveries += ferry.deliver(messages, world.uploads_url, world.uploads_arn, batch_size=100)
    assert len(deliveries) == 6  # the batch, five more times
    for d in deliveries:
        assert d.invocation.ok and d.failed == [], d.invocation
    assert ferry.queue_depth(world.uploads_url) == 0, "every delivered message was deleted"

    jobs = new_jobs({**ferry.settle(fsx_lane), **ferry.settle(ds_lane)}, jobs_before)
    assert sorted(j["job"]["spec"]["kind"] for j in jobs.values()) == ["datasync", "fsx_import"], \
        "one job per route, however often the batch came"
    assert {j["state"] for j in jobs.values()} == {"succeeded"}
    [task] = new_fsx_tasks(ferry, world.route_fs, tasks_before)
    assert task["Status"]["TotalCount"] == len(fsx_keys)
    [execution] = new_executions(ferry, world.route_task_arn, ds_before)
    assert execution["Status"] == "SUCCESS"
    assert execution["FilesTransferred"] == len(ds_keys)
    for job_id in jobs:  # exactly one JSON report (and its text twin) per run
        report = report_of(reports, job_id)
        assert report["outcome"] == "succeeded"
        assert report["task_id"] in (task["TaskId"], execution["TaskExecutionArn"])


def test_a_batch_whose_answer_was_lost_comes_back_regrouped_and_queues_each_upload_once(
        ferry: LocalFerry, world: World, reports: Inbox) -> None:
    # Issue 25, mechanism 6: the first invocation queues the job and dies before answering;
    # SQS delivers the messages again, in other batches, whose jobs would have other ids.
    batch = unique("regroup")
    keys = [f"incoming/{batch}/run-{i}.h5" for i in range(8)]
    upload(ferry, world.data_bucket, keys)
    lane = lane_of_fs(world.route_fs)
    jobs_before = ferry.lane_jobs(lane)
    tasks_before = ferry.fsx_tasks(world.route_fs)

    messages = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    [first] = ferry.deliver(messages, world.uploads_url, world.uploads_arn, batch_size=100,
                            delete=False)
    assert first.invocation.ok and first.failed == [], first.invocation
    # The visibility timeout ends (at once, here): the emulated SQS counts the second receive.
    sqs = ferry.client("sqs")
    for m in messages:
        sqs.change_message_visibility(QueueUrl=world.uploads_url,
                                      ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    again = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in again} == {"2"}
    deliveries = ferry.deliver(again, world.uploads_url, world.uploads_arn, batch_size=3)
    assert len(deliveries) >= 3, "three other groupings"
    for d in deliveries:
        assert d.invocation.ok and d.failed == [], d.invocation
    assert ferry.queue_depth(world.uploads_url) == 0, "every message acknowledged"

    jobs = new_jobs(ferry.settle(lane), jobs_before)
    assert len(jobs) == 1, f"one job, not one per grouping: {sorted(jobs)}"
    assert {j["state"] for j in jobs.values()} == {"succeeded"}
    [task] = new_fsx_tasks(ferry, world.route_fs, tasks_before)
    assert task["Status"]["TotalCount"] == len(keys)
    [job_id] = jobs
    assert report_of(reports, job_id)["outcome"] == "succeeded"


def test_one_datasync_schedule_occurrence_delivered_twice_starts_one_execution(
        ferry: LocalFerry, world: World, reports: Inbox) -> None:
    # Scheduler's duplicates come close together: the first job is still transferring.
    source = ferry.bucket(unique("ferry-e2e-twice"))
    upload(ferry, source, [f"data/in-{i}.dat" for i in range(3)])
    task_arn = ferry.datasync_task(unique("e2e-twice"), source, "/data", world.archive_bucket,
                                   f"/{unique('twice')}")
    lane = lane_of_task(task_arn)
    parameters = {"ScheduleDataSyncTaskArn": task_arn}
    at = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.timezone.utc)
    ferry.ctl.hold(task_arn=task_arn)
    try:
        first = ferry.run_schedule("DataSyncRunSchedule", parameters, scheduled_time=at)
        processes.wait_for(lambda: ferry.datasync_executions(task_arn), 30, interval=0.2,
                           what="the first execution started")
        second = ferry.run_schedule("DataSyncRunSchedule", parameters, scheduled_time=at,
                                    attempt=2)
    finally:
        ferry.ctl.release(task_arn=task_arn)
    assert first.ok and second.ok, (first, second)
    assert second.payload["job_id"] == first.payload["job_id"]
    assert second.payload["enqueued"] is False
    jobs = ferry.settle(lane, jobs=1)
    assert [j["state"] for j in jobs.values()] == ["succeeded"]
    [execution] = ferry.datasync_executions(task_arn)
    assert execution["Status"] == "SUCCESS"
    assert report_of(reports, first.payload["job_id"])["task_id"] == \
        execution["TaskExecutionArn"]


# ------------------------------------------------------------------------ a busy file system


def test_a_thousand_uploads_during_a_long_export_are_all_imported_after_it(
        ferry: LocalFerry, world: World, reports: Inbox) -> None:
    fs = world.route_fs
    lane = lane_of_fs(fs)
    export_dir = f"exports/{unique('long')}"
    ferry.ctl.fsx_files(fs, {f"{export_dir}/result-{i}.nc": f"{i}\n" for i in range(3)})
    ferry.ctl.hold(file_system_id=fs)  # the export stays EXECUTING until released
    tasks_before = ferry.fsx_tasks(fs)
    jobs_before = ferry.lane_jobs(lane)
    export = submitted(ferry, {"name": unique("e2e-long-export"), "kind": "fsx_export",
                               "file_system_id": fs, "paths": [export_dir]})
    processes.wait_for(lambda: ferry.lane_jobs(lane)[export]["state"] == "running", 30,
                       interval=0.2, what="the export running")

    # 1,000 uploads over 50 folders (a batch of 100 names more folders than a task's path
    # cap), arriving while the export runs, delivered as they come in the event source
    # mapping's batches (template.yaml's TriggerBatchSize default, 100). Uploading them all
    # first would also do, but moto's SQS slows down with every message a queue holds.
    batch = unique("busy")
    keys = [f"incoming/{batch}/d{i % 50:02d}/f-{i:04d}.nc" for i in range(1000)]
    deliveries = []
    for start in range(0, len(keys), 100):
        upload(ferry, world.data_bucket, keys[start:start + 100], threads=4)
        messages = ferry.receive_uploads(world.uploads_url, objects=100)
        deliveries += ferry.deliver(messages, world.uploads_url, world.uploads_arn,
                                    batch_size=100)
    assert sum(d.objects for d in deliveries) == len(keys)
    assert all(d.invocation.ok and d.failed == [] for d in deliveries), \
        [d.invocation for d in deliveries if not d.invocation.ok]
    assert ferry.queue_depth(world.uploads_url) == 0, "no upload left behind"
    waiting = new_jobs(ferry.lane_jobs(lane), jobs_before)
    del waiting[export]
    assert len(waiting) == 10 and {j["state"] for j in waiting.values()} == {"pending"}
    assert [t["Type"] for t in new_fsx_tasks(ferry, fs, tasks_before)] == \
        ["EXPORT_TO_REPOSITORY"], "nothing starts beside the export"
    assert errors(ferry, lane, "StartTask") == [], "no conflict, no retry: the jobs wait"

    ferry.ctl.release(file_system_id=fs)
    jobs = new_jobs(ferry.settle(lane, timeout=180), jobs_before)
    assert {j["state"] for j in jobs.values()} == {"succeeded"}
    tasks = sorted(new_fsx_tasks(ferry, fs, tasks_before), key=lambda t: t["CreationTime"])
    assert [t["Type"] for t in tasks] == ["EXPORT_TO_REPOSITORY",
                                          "IMPORT_METADATA_FROM_REPOSITORY"], \
        "the ten waiting jobs ran as one import after the export"
    assert tasks[1]["CreationTime"] >= tasks[0]["EndTime"], "one task at a time"
    assert 1 <= len(tasks[1]["Paths"]) <= MAX_PATHS, tasks[1]["Paths"]
    lost = [k for k in keys
            if not any(f"s3://{world.data_bucket}/{k}".startswith(p) for p in tasks[1]["Paths"])]
    assert lost == [], f"{len(lost)} uploads in no import, e.g. {lost[:3]}"
    assert tasks[1]["Status"]["TotalCount"] == len(keys)
    report = report_of(reports, next(iter(waiting)))
    assert report["outcome"] == "succeeded"
    assert report["jobs"]["total"] == 10
    assert report["counts"]["failed"] == 0


# ------------------------------------------------------------------------ throttling


def test_every_job_succeeds_with_a_tenth_of_all_calls_throttled(
        ferry: LocalFerry, world: World, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    batch = unique("throttled")
    fsx_keys = [f"incoming/{batch}/sample-{i}.h5" for i in range(5)]
    ds_keys = [f"outgoing/{batch}/part-{i}.csv" for i in range(5)]
    upload(ferry, world.data_bucket, fsx_keys + ds_keys)
    messages = ferry.receive_uploads(world.uploads_url, objects=len(fsx_keys + ds_keys))
    bucket, fs = file_system(files={f"results/out-{i}.nc": f"{i}\n" for i in range(4)})
    source = ferry.bucket(unique("ferry-e2e-throttled"))
    upload(ferry, source, [f"data/in-{i}.dat" for i in range(3)])
    task_arn = ferry.datasync_task(unique("e2e-throttled"), source, "/data",
                                   world.archive_bucket, f"/{unique('throttled')}")
    lanes = [lane_of_fs(world.route_fs), lane_of_task(world.route_task_arn), lane_of_fs(fs),
             lane_of_task(task_arn)]
    jobs_before = {k: v for lane in lanes for k, v in ferry.lane_jobs(lane).items()}
    tasks_before = ferry.fsx_tasks(world.route_fs)
    ds_before = {e["TaskExecutionArn"] for e in ferry.datasync_executions(world.route_task_arn)}

    # Every operation of the five services Ferry's functions call, 10 % throttled. The
    # harness's own calls meet the same rules: it gets more attempts, so that what is tested
    # is Ferry's handling, not the bookkeeping's.
    ferry.client_attempts = 10
    rules = {service: ferry.ctl.throttle(service, "*", probability=0.1,
                                         seed=hitting_seed(0.1))
             for service in ("fsx", "datasync", "sns", "states", "dynamodb")}

    # s3-trigger's enqueue: a batch whose enqueue stays throttled comes back, as SQS
    # redelivers it; the job id keeps it to one job.
    deliveries = ferry.deliver_until_done(messages, world.uploads_url, world.uploads_arn,
                                          batch_size=100)
    assert all(d.invocation.ok for d in deliveries)
    scheduled = [ferry.run_schedule("FsxExportSchedule",
                                    {"ScheduleFileSystemId": fs,
                                     "ScheduleReportPath": world.report_path(bucket)}),
                 ferry.run_schedule("DataSyncRunSchedule", {"ScheduleDataSyncTaskArn": task_arn})]
    assert all(a.ok for a in scheduled), scheduled
    jobs = new_jobs({k: v for lane in lanes for k, v in ferry.settle(lane).items()}, jobs_before)
    assert len(jobs) == 4 and {j["state"] for j in jobs.values()} == {"succeeded"}, jobs

    fired = {r["service"]: r["hits"] for r in ferry.ctl.faults() if r["id"] in rules.values()}
    assert all(fired[s] >= 1 for s in rules), f"every service was throttled: {fired}"
    ferry.ctl.clear_faults()

    # No task or execution twice, despite retries at every level.
    assert len(new_fsx_tasks(ferry, world.route_fs, tasks_before)) == 1
    assert len(ferry.fsx_tasks(fs)) == 1
    assert len(new_executions(ferry, world.route_task_arn, ds_before)) == 1
    assert len(ferry.datasync_executions(task_arn)) == 1
    for job_id in jobs:
        assert report_of(reports, job_id)["outcome"] == "succeeded"
    # The SDK's retries (5 attempts, SNS's Throttled included) absorbed the throttling: the
    # state machine never had to. At 10 %, five throttled attempts in a row is 1 in 100,000.
    surfaced = {(lane, state): found for lane in lanes
                for state in ("Take", "StartTask", "GetStatus", "Notify", "Finish")
                if (found := errors(ferry, lane, state))}
    assert surfaced == {}, f"throttling reached the state machine: {surfaced}"


# ------------------------------------------------------------------------ crashed functions


CRASHES = {
    # (function, how, crash_error_name, the state that sees it, the name it sees)
    "start-task killed after creating the FSx task":
        ("ferry-start-task", "crash", None, "StartTask", "Runtime.ExitError"),
    "start-task timed out after starting the DataSync execution":
        ("ferry-start-task", "timeout", None, "StartTask", "Sandbox.Timedout"),
    "task-status killed mid-poll, named as the Step Functions guide says":
        ("ferry-task-status", "crash", "Lambda.Unknown", "GetStatus", "Lambda.Unknown"),
    "lane killed after claiming the run":
        ("ferry-lane", "crash", None, "Take", "Runtime.ExitError"),
}


@pytest.mark.parametrize("case", list(CRASHES))
def test_a_function_that_dies_mid_flow_is_retried_and_starts_nothing_twice(
        case: str, ferry: LocalFerry, world: World, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    function, how, crash_name, state, error = CRASHES[case]
    functions = ferry.functions
    assert functions is not None
    bucket, fs = file_system(objects={f"data/in-{i}.dat": f"{i}\n" for i in range(3)},
                             files={f"results/out-{i}.nc": f"{i}\n" for i in range(3)})
    datasync = "DataSync" in case
    if datasync:
        task_arn = ferry.datasync_task(unique("e2e-crash"), bucket, "/data",
                                       world.archive_bucket, f"/{unique('crash')}")
        job = {"name": unique("e2e-crash"), "kind": "datasync", "task_arn": task_arn}
        lane = lane_of_task(task_arn)
    else:
        job = {"name": unique("e2e-crash"), "kind": "fsx_export", "file_system_id": fs}
        lane = lane_of_fs(fs)
    functions.crash_error_name = crash_name
    starts = dict(functions.starts)
    # The function does its work (the start, the describe, the claim), then its answer is lost.
    # Only this test's lane: other lanes' runners (the timeout test's) keep calling too.
    functions.fail_responses(function, how, when=lambda p: isinstance(p, dict) and (
        p.get("lane") == lane or (p.get("runner") or {}).get("lane") == lane))
    job_id = submitted(ferry, job)
    jobs = ferry.settle(lane, jobs=1)
    assert jobs[job_id]["state"] == "succeeded"

    assert [f for f, _, _ in functions.injected[-1:]] == [function]
    assert errors(ferry, lane, state) == [error]
    assert sum(r.count("StateRetried", state) for r in ferry.runners(lane)) == 1
    assert functions.starts[function] == starts[function] + 1, "a new instance took the retry"
    assert {n: c for n, c in functions.starts.items() if n != function} == \
        {n: c for n, c in starts.items() if n != function}
    if function == "ferry-lane":
        [runner] = ferry.runners(lane)
        assert [o["taken"]["adopted"] for o in runner.outputs("Take")][:1] == [True], \
            "the retried take found the run the lost answer had claimed"
    if datasync:
        [execution] = ferry.datasync_executions(task_arn)
        assert execution["Status"] == "SUCCESS"
    else:
        [task] = ferry.fsx_tasks(fs)
        assert task["Lifecycle"] == "SUCCEEDED"
    assert report_of(reports, job_id)["outcome"] == "succeeded"


# ------------------------------------------------------------------------ SNS failures


@pytest.mark.parametrize("failures", [2, SDK_ATTEMPTS])
def test_a_failed_publish_is_retried_and_the_report_delivered_once(
        failures: int, ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    # SNS's InternalError (HTTP 500): fewer failures than the SDK's attempts are absorbed in
    # the function; as many fail the invocation, and the runner's retry publishes.
    _, fs = file_system(files={"results/a.nc": "a\n"})
    name = unique("e2e-publish")
    # Only this job's report: other lanes' runners publish meanwhile.
    rule = ferry.ctl.add_fault(service="sns", operation="Publish", kind="error",
                               code="InternalError", message="Injected SNS failure",
                               status=500, count=failures,
                               match={"Subject": f"[Ferry] {name} SUCCEEDED on {fs}"})
    job_id = submitted(ferry, {"name": name, "kind": "fsx_export", "file_system_id": fs})
    assert ferry.settle(lane_of_fs(fs), jobs=1)[job_id]["state"] == "succeeded"
    [fired] = [r for r in ferry.ctl.faults() if r["id"] == rule]
    assert fired["hits"] == failures
    assert errors(ferry, lane_of_fs(fs), "Notify") == \
        ([] if failures < SDK_ATTEMPTS else ["AwsService"])
    report = report_of(reports, job_id)  # exactly one JSON report, and its text
    assert report["outcome"] == "succeeded"


def test_when_only_the_second_publish_fails_the_retry_sends_an_identical_report_again(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    # notify publishes the JSON report, then the text. The text fails past the SDK's retries:
    # the runner's retry publishes both again, so JSON subscribers get the report twice.
    # Ferry's reports are at least once, like SNS standard topics themselves; the two copies
    # are identical and name the run, which is what a subscriber deduplicates on.
    _, fs = file_system(files={"results/a.nc": "a\n"})
    name = unique("e2e-second-publish")
    ferry.ctl.add_fault(service="sns", operation="Publish", kind="error", code="InternalError",
                        message="Injected SNS failure", status=500, count=SDK_ATTEMPTS,
                        after=1, match={"Subject": f"[Ferry] {name} SUCCEEDED on {fs}"})
    job_id = submitted(ferry, {"name": name, "kind": "fsx_export", "file_system_id": fs})
    jobs = ferry.settle(lane_of_fs(fs), jobs=1)
    assert jobs[job_id]["state"] == "succeeded"
    assert errors(ferry, lane_of_fs(fs), "Notify") == ["AwsService"]
    got = reports_of_job(reports, job_id, count=3)
    json_reports = [r for r in got if r.format == "json"]
    texts = [r for r in got if r.format == "text"]
    assert (len(json_reports), len(texts)) == (2, 1)
    assert json_reports[0].message == json_reports[1].message
    assert json_reports[0].attributes == json_reports[1].attributes
    assert json_reports[0].json["run"] == jobs[job_id]["run"]
