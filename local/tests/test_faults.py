"""Fault tests (issue 8): Ferry's main job when AWS and Lambda misbehave the ways they do.

Duplicate deliveries, a file system busy with a long export while a thousand uploads arrive,
10 % of every FSx, DataSync, SNS and Step Functions call throttled, a function instance that
dies or times out after doing its work, and SNS refusing to publish. Each test drives Ferry
the way AWS would (test_e2e.py's conventions) and checks what a user relies on: every job
ends as its transfer did, no task or execution is started twice, no upload is lost, and the
report reaches the subscriber.
"""

from __future__ import annotations

import datetime as dt
import random
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

from conftest import World, report_of, track
from ferry_local.ferry import Inbox, LocalFerry, Report, unique
from ferry_local.statemachine import Run

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


def reports_of(inbox: Inbox, run: Run, count: int, timeout: float = 20.0) -> list[Report]:
    """The first `count` messages `run` published (any format), once they are all there."""

    def mine() -> list[Report]:
        inbox.poll(0)
        return [r for r in inbox.received if r.attributes.get("job") == run.input["job"]["name"]
                and (r.json.get("execution") == run.name if r.format == "json"
                     else f"Execution:    {run.name}\n" in r.message)]

    from ferry_local import processes  # noqa: PLC0415

    return processes.wait_for(lambda: (found := mine()) and len(found) >= count and found,
                              timeout, interval=0.1,
                              what=f"{count} report message(s) of {run.name}")


def hitting_seed(probability: float) -> int:
    """A seed whose rule fires on its first matching request: every throttled service is
    throttled at least once, whatever order the calls come in, and still at `probability`
    overall."""
    return next(s for s in range(10_000) if random.Random(s).random() < probability)


# ------------------------------------------------------------------------ duplicate deliveries


def test_one_batch_delivered_five_times_starts_one_task_per_route(
        request, ferry: LocalFerry, world: World, reports: Inbox) -> None:
    # One S3 batch for both routes: FSx import (incoming/) and DataSync (outgoing/).
    batch = unique("five")
    fsx_keys = [f"incoming/{batch}/run-{i}.h5" for i in range(6)]
    ds_keys = [f"outgoing/{batch}/part-{i}.csv" for i in range(4)]
    upload(ferry, world.data_bucket, fsx_keys + ds_keys)
    executions_before = {e["executionArn"] for e in ferry.executions()}
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

    started = [e for e in ferry.executions() if e["executionArn"] not in executions_before]
    assert len(started) == 2, "one execution per route's job, however often the batch came"
    runs = ferry.run_started()
    track(request, *runs)
    assert sorted(r.input["job"]["kind"] for r in runs) == ["datasync", "fsx_import"]
    for run in runs:
        assert run.wait().status == "SUCCEEDED", run.describe()

    [task] = new_fsx_tasks(ferry, world.route_fs, tasks_before)
    assert task["Status"]["TotalCount"] == len(fsx_keys)
    [execution] = new_executions(ferry, world.route_task_arn, ds_before)
    assert execution["Status"] == "SUCCESS"
    assert execution["FilesTransferred"] == len(ds_keys)
    for run in runs:  # exactly one JSON report (and its text twin) per job
        report = report_of(reports, run)
        assert report["outcome"] == "succeeded"
        assert report["task_id"] in (task["TaskId"], execution["TaskExecutionArn"])


def test_one_datasync_schedule_occurrence_delivered_twice_starts_one_execution(
        request, ferry: LocalFerry, world: World, reports: Inbox) -> None:
    # The FSx schedule twice is test_e2e's; DataSync has no token, so the second delivery must
    # find the first one's execution by its idempotency tag.
    source = ferry.bucket(unique("ferry-e2e-twice"))
    upload(ferry, source, [f"data/in-{i}.dat" for i in range(3)])
    task_arn = ferry.datasync_task(unique("e2e-twice"), source, "/data", world.archive_bucket,
                                   f"/{unique('twice')}")
    parameters = {"ScheduleDataSyncTaskArn": task_arn}
    at = dt.datetime(2026, 11, 22, 2, 0, tzinfo=dt.timezone.utc)
    # Scheduler's duplicates come close together: the first run is still transferring.
    ferry.ctl.hold(task_arn=task_arn)
    try:
        first = ferry.run_schedule("DataSyncRunSchedule", parameters, scheduled_time=at)
        track(request, first)
        first.wait_until(lambda r: r.started is not None, what="the first execution started")
        second = ferry.run_schedule("DataSyncRunSchedule", parameters, scheduled_time=at,
                                    attempt=2)
        track(request, second)
        second.wait_until(lambda r: r.started is not None, what="the second StartTask")
    finally:
        ferry.ctl.release(task_arn=task_arn)
    assert second.started["task"] == first.started["task"], "found by its tag"
    assert (first.wait().status, second.wait().status) == ("SUCCEEDED", "SUCCEEDED"), \
        second.describe()
    [execution] = ferry.datasync_executions(task_arn)
    assert execution["Status"] == "SUCCESS"
    # Each execution reports, both on the one DataSync execution.
    for run in (first, second):
        assert report_of(reports, run)["task_id"] == execution["TaskExecutionArn"]


# ------------------------------------------------------------------------ a busy file system


def test_a_thousand_uploads_during_a_long_export_are_all_imported_after_it(
        request, ferry: LocalFerry, world: World, reports: Inbox) -> None:
    fs = world.route_fs
    export_dir = f"exports/{unique('long')}"
    ferry.ctl.fsx_files(fs, {f"{export_dir}/result-{i}.nc": f"{i}\n" for i in range(3)})
    ferry.ctl.hold(file_system_id=fs)  # the export stays EXECUTING until released
    tasks_before = ferry.fsx_tasks(fs)
    export = ferry.run({"job": {"name": unique("e2e-long-export"), "kind": "fsx_export",
                                "file_system_id": fs, "paths": [export_dir]}})
    track(request, export)
    export.wait_until(lambda r: any(o["status"]["lifecycle"] == "EXECUTING"
                                    for o in r.outputs("GetStatus")),
                      what="the export EXECUTING")

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

    # Conflict retries every second (the ASL's minutes, shortened): 48 attempts leave the
    # imports 48 s to get their turn once the export ends.
    imports = ferry.run_started(retry_ms=1000)
    track(request, *imports)
    assert imports and all(r.input["job"]["kind"] == "fsx_import" for r in imports)
    for run in imports:
        run.wait_until(lambda r: "TaskConflict" in r.errors("StartTask"), timeout=120,
                       what="StartTask refused while the export runs")
    assert [t["TaskId"] for t in new_fsx_tasks(ferry, fs, tasks_before)] == \
        [export.started["task"]["task_id"]], "nothing starts beside the export"

    ferry.ctl.release(file_system_id=fs)
    assert export.wait().status == "SUCCEEDED", export.describe()
    for run in imports:
        assert run.wait(timeout=180).status == "SUCCEEDED", run.describe()

    tasks = sorted(new_fsx_tasks(ferry, fs, tasks_before), key=lambda t: t["CreationTime"])
    export_task, import_tasks = tasks[0], tasks[1:]
    assert export_task["Type"] == "EXPORT_TO_REPOSITORY"
    assert len(import_tasks) == len(imports), "one import per execution, none twice"
    assert {t["TaskId"] for t in import_tasks} == {r.started["task"]["task_id"]
                                                   for r in imports}
    for before, after in zip(tasks, tasks[1:]):
        assert after["CreationTime"] >= before["EndTime"], "one task at a time"
    for task in import_tasks:
        assert task["Type"] == "IMPORT_METADATA_FROM_REPOSITORY"
        assert task["Lifecycle"] == "SUCCEEDED"
        assert 1 <= len(task["Paths"]) <= MAX_PATHS, task["Paths"]
    paths = [p for t in import_tasks for p in t["Paths"]]
    lost = [k for k in keys
            if not any(f"s3://{world.data_bucket}/{k}".startswith(p) for p in paths)]
    assert lost == [], f"{len(lost)} uploads in no import, e.g. {lost[:3]}"
    for run in imports:
        report = report_of(reports, run)
        assert report["outcome"] == "succeeded"
        assert report["counts"]["failed"] == 0


# ------------------------------------------------------------------------ throttling


def test_every_job_succeeds_with_a_tenth_of_all_calls_throttled(
        request, ferry: LocalFerry, world: World, reports: Inbox,
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
    executions_before = {e["executionArn"] for e in ferry.executions()}
    tasks_before = ferry.fsx_tasks(world.route_fs)
    ds_before = {e["TaskExecutionArn"] for e in ferry.datasync_executions(world.route_task_arn)}

    # Every operation of the four services Ferry's functions call, 10 % throttled. The
    # harness's own calls meet the same rules: it gets more attempts, so that what is tested
    # is Ferry's handling, not the bookkeeping's.
    ferry.client_attempts = 10
    rules = {service: ferry.ctl.throttle(service, "*", probability=0.1,
                                         seed=hitting_seed(0.1))
             for service in ("fsx", "datasync", "sns", "states")}

    # s3-trigger's StartExecution: a batch whose start stays throttled comes back, as SQS
    # redelivers it; the execution name keeps it to one execution.
    deliveries = ferry.deliver_until_done(messages, world.uploads_url, world.uploads_arn,
                                          batch_size=100)
    assert all(d.invocation.ok for d in deliveries)
    runs = ferry.run_started()
    assert len([e for e in ferry.executions() if e["executionArn"] not in executions_before]) \
        == len(runs) == 2
    runs += [ferry.run_schedule("FsxExportSchedule", {"ScheduleFileSystemId": fs,
                                                      "ScheduleReportPath":
                                                          world.report_path(bucket)}),
             ferry.run_schedule("DataSyncRunSchedule", {"ScheduleDataSyncTaskArn": task_arn})]
    track(request, *runs)
    for run in runs:
        assert run.wait().status == "SUCCEEDED", run.describe()

    fired = {r["service"]: r["hits"] for r in ferry.ctl.faults() if r["id"] in rules.values()}
    assert all(fired[s] >= 1 for s in rules), f"every service was throttled: {fired}"
    ferry.ctl.clear_faults()

    # No task or execution twice, despite retries at every level.
    assert len(new_fsx_tasks(ferry, world.route_fs, tasks_before)) == 1
    assert len(ferry.fsx_tasks(fs)) == 1
    assert len(new_executions(ferry, world.route_task_arn, ds_before)) == 1
    assert len(ferry.datasync_executions(task_arn)) == 1
    for run in runs:
        assert report_of(reports, run)["outcome"] == "succeeded"
    # The SDK's retries (5 attempts, SNS's Throttled included) absorbed the throttling: the
    # state machine never had to. At 10 %, five throttled attempts in a row is 1 in 100,000.
    surfaced = {state: errors for run in runs
                for state in ("StartTask", "GetStatus", "Notify")
                if (errors := run.errors(state))}
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
}


@pytest.mark.parametrize("case", list(CRASHES))
def test_a_function_that_dies_mid_flow_is_retried_and_starts_nothing_twice(
        request, case: str, ferry: LocalFerry, world: World, reports: Inbox,
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
    else:
        job = {"name": unique("e2e-crash"), "kind": "fsx_export", "file_system_id": fs}
    functions.crash_error_name = crash_name
    starts = dict(functions.starts)
    # The function does its work (the start, or the describe), then its answer is lost.
    functions.fail_responses(function, how)
    run = ferry.run({"job": job})
    track(request, run)
    assert run.wait().status == "SUCCEEDED", run.describe()

    assert [f for f, _, _ in functions.injected[-1:]] == [function]
    assert run.errors(state) == [error]
    assert run.count("StateRetried", state) == 1
    assert functions.starts[function] == starts[function] + 1, "a new instance took the retry"
    assert {n: c for n, c in functions.starts.items() if n != function} == \
        {n: c for n, c in starts.items() if n != function}
    if datasync:
        [execution] = ferry.datasync_executions(task_arn)
        assert execution["Status"] == "SUCCESS"
        assert run.started["task"]["task_execution_arn"] == execution["TaskExecutionArn"]
    else:
        [task] = ferry.fsx_tasks(fs)
        assert task["Lifecycle"] == "SUCCEEDED"
        assert run.started["task"]["task_id"] == task["TaskId"]
    assert report_of(reports, run)["outcome"] == "succeeded"


# ------------------------------------------------------------------------ SNS failures


@pytest.mark.parametrize("failures", [2, SDK_ATTEMPTS])
def test_a_failed_publish_is_retried_and_the_report_delivered_once(
        request, failures: int, ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    # SNS's InternalError (HTTP 500): fewer failures than the SDK's attempts are absorbed in
    # the function; as many fail the invocation, and the state machine's retry publishes.
    _, fs = file_system(files={"results/a.nc": "a\n"})
    rule = ferry.ctl.add_fault(service="sns", operation="Publish", kind="error",
                               code="InternalError", message="Injected SNS failure",
                               status=500, count=failures)
    run = ferry.run({"job": {"name": unique("e2e-publish"), "kind": "fsx_export",
                             "file_system_id": fs}})
    track(request, run)
    assert run.wait().status == "SUCCEEDED", run.describe()
    [fired] = [r for r in ferry.ctl.faults() if r["id"] == rule]
    assert fired["hits"] == failures
    assert run.errors("Notify") == ([] if failures < SDK_ATTEMPTS else ["AwsService"])
    report = report_of(reports, run)  # exactly one JSON report, and its text
    assert report["outcome"] == "succeeded"


def test_when_only_the_second_publish_fails_the_retry_sends_an_identical_report_again(
        request, ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    # notify publishes the JSON report, then the text. The text fails past the SDK's retries:
    # the state machine's retry publishes both again, so JSON subscribers get the report
    # twice. Ferry's reports are at least once, like SNS standard topics themselves; the two
    # copies are identical and name the execution, which is what a subscriber deduplicates on.
    _, fs = file_system(files={"results/a.nc": "a\n"})
    ferry.ctl.add_fault(service="sns", operation="Publish", kind="error", code="InternalError",
                        message="Injected SNS failure", status=500, count=SDK_ATTEMPTS,
                        after=1)
    run = ferry.run({"job": {"name": unique("e2e-second-publish"), "kind": "fsx_export",
                             "file_system_id": fs}})
    track(request, run)
    assert run.wait().status == "SUCCEEDED", run.describe()
    assert run.errors("Notify") == ["AwsService"]
    got = reports_of(reports, run, count=3)
    json_reports = [r for r in got if r.format == "json"]
    texts = [r for r in got if r.format == "text"]
    assert (len(json_reports), len(texts)) == (2, 1)
    assert json_reports[0].message == json_reports[1].message
    assert json_reports[0].attributes == json_reports[1].attributes
    assert json_reports[0].json["execution"] == run.name
