"""End to end: uploads and schedules → the real functions and state machine → emulated AWS →
the report a subscriber receives.

Every test drives Ferry the way AWS would (S3 notifications through SQS to `s3-trigger`,
EventBridge Scheduler inputs from template.yaml, StartExecution), runs the executions with the
deployed definition, and then checks three witnesses that do not depend on each other: the
execution (status, states taken), the emulated service (tasks and executions created, their
type, paths and counts, objects written) and the SNS report.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable

import pytest

from conftest import World, report_of, track
from ferry_local import template
from ferry_local.ferry import ROLE, Inbox, LocalFerry, unique


def upload(ferry: LocalFerry, bucket: str, keys: list[str]) -> None:
    s3 = ferry.client("s3")
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=f"contents of {key}\n".encode())


def new_tasks(ferry: LocalFerry, fs: str, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {t["TaskId"] for t in before}
    return [t for t in ferry.fsx_tasks(fs) if t["TaskId"] not in seen]


# ---------------------------------------------------------------------------------- uploads


def test_uploads_become_one_fsx_import(request, ferry: LocalFerry, world: World,
                                       reports: Inbox) -> None:
    prefix = f"incoming/{unique('batch')}/"
    keys = [f"{prefix}run-{i % 3}/sample-{i:03d}.h5" for i in range(45)]
    upload(ferry, world.data_bucket, keys)
    tasks_before = ferry.fsx_tasks(world.route_fs)

    messages = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    deliveries = ferry.deliver(messages, world.uploads_url, world.uploads_arn, batch_size=100)
    assert all(d.invocation.ok for d in deliveries), deliveries[0].invocation
    assert [f for d in deliveries for f in d.failed] == []

    runs = ferry.run_started()
    track(request, *runs)
    assert [r.input["job"]["kind"] for r in runs] == ["fsx_import"], "45 uploads, one job"
    run = runs[0].wait()
    assert run.status == "SUCCEEDED", run.describe()

    # More than FERRY_MAX_PATHS (32) files: collapsed into folders, never above the batch.
    paths = run.input["job"]["paths"]
    assert 1 <= len(paths) <= 32
    assert all(p.startswith(f"s3://{world.data_bucket}/{prefix}") for p in paths), paths
    assert all(any(f"s3://{world.data_bucket}/{k}".startswith(p) for p in paths) for k in keys)

    [task] = new_tasks(ferry, world.route_fs, tasks_before)
    assert task["Type"] == "IMPORT_METADATA_FROM_REPOSITORY"
    assert task["Lifecycle"] == "SUCCEEDED"
    assert task["Status"]["TotalCount"] == len(keys)
    assert run.started["task"]["task_id"] == task["TaskId"]

    report = report_of(reports, run)
    assert report["outcome"] == "succeeded"
    assert report["kind"] == "fsx_import"
    assert report["task_id"] == task["TaskId"]
    assert report["counts"] == {"total": 45, "succeeded": 45, "failed": 0}
    assert report["_subject"] == f"[Ferry] e2e-import SUCCEEDED on {world.route_fs}"


def test_uploads_become_one_datasync_run(request, ferry: LocalFerry, world: World,
                                         reports: Inbox) -> None:
    batch = unique("batch")
    keys = [f"outgoing/{batch}/part-{i:03d}.csv" for i in range(30)]
    upload(ferry, world.data_bucket, keys)

    messages = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    deliveries = ferry.deliver(messages, world.uploads_url, world.uploads_arn, batch_size=100)
    assert [f for d in deliveries for f in d.failed] == []
    runs = ferry.run_started()
    track(request, *runs)
    assert [r.input["job"]["kind"] for r in runs] == ["datasync"]
    run = runs[0].wait()
    assert run.status == "SUCCEEDED", run.describe()
    # Filters are relative to the source location (the route's source_prefix, outgoing/).
    assert sorted(run.input["job"]["includes"]) == sorted(
        "/" + k.removeprefix("outgoing/") for k in keys)

    execution_arn = run.started["task"]["task_execution_arn"]
    [execution] = [e for e in ferry.datasync_executions(world.route_task_arn)
                   if e["TaskExecutionArn"] == execution_arn]
    assert execution["Status"] == "SUCCESS"
    assert execution["FilesTransferred"] == len(keys)
    copied = ferry.client("s3").list_objects_v2(Bucket=world.archive_bucket,
                                                Prefix=f"archive/{batch}/")
    assert sorted(o["Key"] for o in copied.get("Contents", [])) == sorted(
        f"archive/{k.removeprefix('outgoing/')}" for k in keys)

    report = report_of(reports, run)
    assert report["outcome"] == "succeeded"
    assert report["datasync_task_arn"] == world.route_task_arn
    assert report["task_id"] == execution_arn
    assert report["counts"]["files_transferred"] == len(keys)
    assert report["counts"]["bytes_transferred"] == sum(
        len(f"contents of {k}\n") for k in keys)


def test_keys_a_filter_cannot_express_go_through_a_manifest(request, ferry: LocalFerry,
                                                            world: World,
                                                            reports: Inbox) -> None:
    # '|' separates DataSync filter patterns: such a key can only be named in a manifest.
    batch = unique("batch")
    keys = [f"outgoing/{batch}/metrics|v{i}.json" for i in range(3)]
    keys += [f"outgoing/{batch}/plain-{i}.csv" for i in range(2)]
    upload(ferry, world.data_bucket, keys)
    messages = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    deliveries = ferry.deliver(messages, world.uploads_url, world.uploads_arn, batch_size=100)
    assert [f for d in deliveries for f in d.failed] == []
    runs = ferry.run_started()
    track(request, *runs)
    assert len(runs) == 1
    job = runs[0].input["job"]
    assert "includes" not in job
    manifest_key = f"ferry-manifests/{runs[0].name}.csv"
    assert job["manifest"]["object_path"] == manifest_key
    body = ferry.client("s3").get_object(Bucket=world.data_bucket, Key=manifest_key)["Body"]
    # One path per line, relative to the source location (the route's source_prefix).
    assert sorted(body.read().decode().splitlines()) == sorted(
        k.removeprefix("outgoing/") for k in keys)
    run = runs[0].wait()
    assert run.status == "SUCCEEDED", run.describe()
    execution_arn = run.started["task"]["task_execution_arn"]
    [execution] = [e for e in ferry.datasync_executions(world.route_task_arn)
                   if e["TaskExecutionArn"] == execution_arn]
    assert execution["FilesTransferred"] == len(keys)
    copied = ferry.client("s3").list_objects_v2(Bucket=world.archive_bucket,
                                                Prefix=f"archive/{batch}/")
    assert sorted(o["Key"] for o in copied.get("Contents", [])) == sorted(
        f"archive/{k.removeprefix('outgoing/')}" for k in keys)
    assert report_of(reports, run)["counts"]["files_transferred"] == len(keys)


def test_duplicate_deliveries_start_one_task(request, ferry: LocalFerry, world: World,
                                             reports: Inbox) -> None:
    # Spaces and '+' arrive URL-encoded ('+' for a space, %2B for '+'): the task must count
    # the real objects, so the keys must be decoded on the way.
    prefix = f"incoming/{unique('dup')}/"
    keys = [f"{prefix}run a+b/file {i}.nc" for i in range(5)]
    upload(ferry, world.data_bucket, keys)
    executions_before = len(ferry.executions())
    tasks_before = ferry.fsx_tasks(world.route_fs)

    messages = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    # The function runs, but its answer is lost: the messages stay in the queue and come
    # back once their visibility timeout ends.
    first = ferry.deliver(messages, world.uploads_url, world.uploads_arn, delete=False)
    again = ferry.deliver(messages, world.uploads_url, world.uploads_arn)
    # S3 itself delivers at least once: the same records in new messages.
    sqs = ferry.client("sqs")
    for m in messages:
        sqs.send_message(QueueUrl=world.uploads_url, MessageBody=m["Body"])
    resent = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    twice = ferry.deliver(resent, world.uploads_url, world.uploads_arn)
    for d in first + again + twice:
        assert d.invocation.ok and d.failed == [], d.invocation

    assert len(ferry.executions()) == executions_before + 1, "one execution for one batch"
    runs = ferry.run_started()
    track(request, *runs)
    assert len(runs) == 1
    run = runs[0].wait()
    assert run.status == "SUCCEEDED", run.describe()
    assert sorted(run.input["job"]["paths"]) == sorted(
        f"s3://{world.data_bucket}/{k}" for k in keys)

    # Redelivered after the job ended: still the same execution name, still nothing new.
    late = ferry.deliver(messages, world.uploads_url, world.uploads_arn, delete=False)
    assert all(d.invocation.ok and d.failed == [] for d in late)
    assert len(ferry.executions()) == executions_before + 1

    [task] = new_tasks(ferry, world.route_fs, tasks_before)
    assert task["Status"]["TotalCount"] == len(keys), "every decoded key names a real object"
    assert report_of(reports, run)["outcome"] == "succeeded"


# ---------------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("schedule", ["FsxImportSchedule", "FsxExportSchedule",
                                      "FsxReleaseSchedule", "FsxAutoReleaseSchedule",
                                      "DataSyncRunSchedule"])
def test_a_scheduled_job_succeeds(request, schedule: str, ferry: LocalFerry, world: World,
                                  reports: Inbox,
                                  file_system: Callable[..., tuple[str, str]]) -> None:
    objects = {f"data/in-{i}.dat": f"object {i}\n" for i in range(6)}
    files = {f"results/out-{i}.nc": f"result {i}\n" for i in range(7)}
    bucket, fs = file_system(objects=objects, files=files)
    parameters: dict[str, Any] = {"ScheduleFileSystemId": fs,
                                  "ScheduleReportPath": world.report_path(bucket),
                                  "ReleaseDaysSinceLastAccess": 3, "AutoReleaseCapacityGiB": 7}
    task_arn = ""
    if schedule == "DataSyncRunSchedule":
        task_arn = ferry.datasync_task(unique("e2e-scheduled"), bucket, "/data",
                                       world.archive_bucket, f"/{unique('scheduled')}")
        parameters = {"ScheduleDataSyncTaskArn": task_arn}

    run = ferry.run_schedule(schedule, parameters)
    track(request, run)
    run.wait()
    assert run.status == "SUCCEEDED", run.describe()
    report = report_of(reports, run)
    assert report["outcome"] == "succeeded"
    assert report["job"] == run.input["job"]["name"]
    assert report["execution"] == run.name

    if schedule == "DataSyncRunSchedule":
        [execution] = ferry.datasync_executions(task_arn)
        assert execution["Status"] == "SUCCESS"
        assert execution["FilesTransferred"] == len(objects)
        assert report["counts"]["files_transferred"] == len(objects)
        return
    [task] = ferry.fsx_tasks(fs)
    assert task["Lifecycle"] == "SUCCEEDED"
    # template.yaml gives every FSx schedule but auto-release the report path.
    assert task["Report"] == ({"Enabled": False} if schedule == "FsxAutoReleaseSchedule" else
                              {"Enabled": True, "Path": world.report_path(bucket),
                               "Format": "REPORT_CSV_20191124", "Scope": "FAILED_FILES_ONLY"})
    expected = {
        # An import counts the linked repository's objects; the others the file system's
        # files (the objects it imported plus those only on the file system).
        "FsxImportSchedule": ("IMPORT_METADATA_FROM_REPOSITORY", len(objects)),
        "FsxExportSchedule": ("EXPORT_TO_REPOSITORY", len(objects) + len(files)),
        "FsxReleaseSchedule": ("RELEASE_DATA_FROM_FILESYSTEM", len(objects) + len(files)),
        "FsxAutoReleaseSchedule": ("AUTO_RELEASE_DATA", len(objects) + len(files)),
    }[schedule]
    assert (task["Type"], task["Status"]["TotalCount"]) == expected
    assert report["counts"]["total"] == expected[1]
    if schedule == "FsxExportSchedule":
        exported = ferry.client("s3").list_objects_v2(Bucket=bucket, Prefix="results/")
        assert sorted(o["Key"] for o in exported["Contents"]) == sorted(files)
    if schedule == "FsxReleaseSchedule":
        assert task["Paths"] == ["/"]
        assert task["ReleaseConfiguration"]["DurationSinceLastAccess"] == {"Unit": "DAYS",
                                                                           "Value": 3}
    if schedule == "FsxAutoReleaseSchedule":
        assert task["CapacityToRelease"] == 7
        assert report["counts"]["released_capacity"] == 7


def test_one_schedule_occurrence_delivered_twice_starts_one_task(
        request, ferry: LocalFerry, world: World, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    # EventBridge Scheduler delivers at least once; each delivery is a new execution (a new
    # name), with the same scheduled time in its input.
    _, fs = file_system(files={"results/a.nc": "a\n"})
    at = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.timezone.utc)
    parameters = {"ScheduleFileSystemId": fs}
    first = ferry.run_schedule("FsxExportSchedule", parameters, scheduled_time=at)
    track(request, first)
    first.wait()
    second = ferry.run_schedule("FsxExportSchedule", parameters, scheduled_time=at,
                                attempt=2)
    track(request, second)
    second.wait()
    assert first.name != second.name
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED"), second.describe()
    assert len(ferry.fsx_tasks(fs)) == 1, "the second delivery found the first one's task"
    assert first.started["task"] == second.started["task"]
    # The next occurrence is a new job.
    third = ferry.run_schedule("FsxExportSchedule", parameters,
                               scheduled_time=at + dt.timedelta(days=1))
    track(request, third)
    assert third.wait().status == "SUCCEEDED", third.describe()
    assert len(ferry.fsx_tasks(fs)) == 2
    assert {report_of(reports, r)["execution"] for r in (first, second, third)} == {
        first.name, second.name, third.name}


# ---------------------------------------------------------------------------------- problems


def test_a_busy_file_system_is_retried_until_free(request, ferry: LocalFerry, reports: Inbox,
                                                  file_system: Callable[..., tuple[str, str]],
                                                  ) -> None:
    _, fs = file_system(files={f"results/{i}.nc": f"{i}\n" for i in range(4)})
    ferry.ctl.hold(file_system_id=fs)  # tasks on fs stay EXECUTING until released

    def export(name: str) -> dict[str, Any]:
        return {"job": {"name": name, "kind": "fsx_export", "file_system_id": fs}}

    first = ferry.run(export(unique("e2e-first")))
    track(request, first)
    first.wait_until(lambda r: any(o["status"]["lifecycle"] == "EXECUTING"
                                   for o in r.outputs("GetStatus")),
                     what="the first task EXECUTING")
    second = ferry.run(export(unique("e2e-second")))
    track(request, second)
    second.wait_until(lambda r: r.count("StateRetried", "StartTask") >= 3,
                      what="StartTask retried three times")
    assert set(second.errors("StartTask")) == {"TaskConflict"}
    assert second.started is None, "no task while the file system is busy"
    assert len(ferry.fsx_tasks(fs)) == 1

    ferry.ctl.release(file_system_id=fs)
    first.wait()
    second.wait()
    assert (first.status, second.status) == ("SUCCEEDED", "SUCCEEDED"), second.describe()
    tasks = sorted(ferry.fsx_tasks(fs), key=lambda t: t["CreationTime"])
    assert [t["TaskId"] for t in tasks] == [first.started["task"]["task_id"],
                                            second.started["task"]["task_id"]]
    assert tasks[1]["CreationTime"] >= tasks[0]["EndTime"], "one task at a time"
    assert report_of(reports, second)["outcome"] == "succeeded"
    assert report_of(reports, first)["outcome"] == "succeeded"


def test_failed_files_are_digested_in_the_report(request, ferry: LocalFerry, reports: Inbox,
                                                 file_system: Callable[..., tuple[str, str]],
                                                 ) -> None:
    files = {f"out/{name}": "x\n" for name in
             ("ok-1.nc", "ok-2.nc", "@odd.nc", "comma,name.nc", "big.nc", "ok-3.nc")}
    bucket, fs = file_system(files=files)
    failing = [{"path": "out/@odd.nc", "error_code": "FileSizeTooLarge"},
               {"path": "out/comma,name.nc", "error_code": "S3AccessDenied"},
               {"path": "out/big.nc", "error_code": "FileSizeTooLarge"}]
    ferry.ctl.fsx_fail(fs, files=failing)
    # What an on-call email subscription would filter for.
    problems = ferry.subscribe(unique("e2e-problems"), {
        "format": ["text"], "status": ["FAILED", "TIMED_OUT", "COULD_NOT_START"]})

    report_path = f"s3://{bucket}/ferry-reports"
    run = ferry.run({"job": {"name": unique("e2e-failing"), "kind": "fsx_export",
                             "file_system_id": fs, "paths": ["out"],
                             "report": {"enabled": True, "path": report_path}}})
    track(request, run)
    run.wait()
    assert (run.status, run.error) == ("FAILED", "TransferFailed"), run.describe()

    [task] = ferry.fsx_tasks(fs)
    report = report_of(reports, run)
    assert report["outcome"] == "failed"
    assert report["counts"] == {"total": 6, "succeeded": 3, "failed": 3}
    digest = report["digest"]
    assert digest["failed"] == 3
    assert digest["by_error"] == {"FileSizeTooLarge": 2, "S3AccessDenied": 1}
    # '@' paths are triple-quoted in the CSV (and ',' paths quoted): unquoted in the digest.
    assert sorted((p["path"], p["error"]) for p in digest["paths"]) == sorted(
        (f["path"], f["error_code"]) for f in failing)
    assert digest["sources"] == [f"{report_path}/{task['TaskId']}/failures.csv"]
    assert "out/@odd.nc (FileSizeTooLarge)" in report["_text"]

    [text] = problems.wait_for(1)
    assert text.subject == report["_subject"]
    assert text.attributes["status"] == "FAILED"


def test_a_failed_datasync_run_reports_its_task_report(request, ferry: LocalFerry,
                                                       world: World, reports: Inbox,
                                                       file_system: Callable[..., tuple[str, str]],
                                                       ) -> None:
    objects = {f"src/f-{i}.bin": f"{i}\n" for i in range(5)}
    bucket, _ = file_system(objects=objects)
    task_arn = ferry.datasync_task(unique("e2e-failing"), bucket, "/src", world.archive_bucket,
                                   f"/{unique('failing')}")
    ferry.ctl.datasync_fail(task_arn, error_code="S3 Get Object Failed",
                            error_detail="Access denied reading the source object",
                            files_failed=2)
    run = ferry.run({"job": {
        "name": unique("e2e-ds-failing"), "kind": "datasync", "task_arn": task_arn,
        "task_report": {"bucket_arn": f"arn:aws:s3:::{bucket}", "subdirectory": "reports",
                        "bucket_access_role_arn": ROLE, "output_type": "STANDARD",
                        "report_level": "ERRORS_ONLY"}}})
    track(request, run)
    run.wait()
    assert (run.status, run.error) == ("FAILED", "TransferFailed"), run.describe()

    [execution] = ferry.datasync_executions(task_arn)
    assert execution["Status"] == "ERROR"
    report = report_of(reports, run)
    assert report["outcome"] == "failed"
    assert report["failure"] == {"error_code": "S3 Get Object Failed",
                                 "error_detail": "Access denied reading the source object"}
    digest = report["digest"]
    assert digest["failed"] == 2
    assert len(digest["paths"]) == 2
    task_id, exec_id = execution["TaskExecutionArn"].split("/")[1::2]
    assert all(s.startswith(f"s3://{bucket}/reports/Detailed-Reports/{task_id}/{exec_id}/")
               for s in digest["sources"]), digest["sources"]


@pytest.mark.parametrize("case", ["missing file system", "rejected by FSx", "invalid job"])
def test_a_job_that_cannot_start_is_reported(request, case: str, ferry: LocalFerry,
                                             reports: Inbox,
                                             file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(objects={"data/a.dat": "a\n"})
    name = unique("e2e-cannot")
    job, error_type, reason = {
        # A well-formed id of a file system that does not exist: FSx FileSystemNotFound.
        "missing file system": ({"kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0"},
                                "NotFound", "fs-0123456789abcdef0"),
        # Valid for Ferry, refused by the service: the import path is not the linked
        # repository (FSx BadRequest).
        "rejected by FSx": ({"kind": "fsx_import", "file_system_id": fs,
                             "paths": ["s3://another-bucket/data"]}, "InvalidJob",
                            "another-bucket"),
        # Refused by Ferry before any AWS call: export paths are relative to the root.
        "invalid job": ({"kind": "fsx_export", "file_system_id": fs, "paths": ["/mnt/fsx/a"]},
                        "InvalidJob", "job.paths"),
    }[case]
    run = ferry.run({"job": {"name": name, **job}})
    track(request, run)
    run.wait()
    assert (run.status, run.error) == ("FAILED", "CouldNotStart"), run.describe()
    assert run.errors("StartTask") == [error_type], "never retried"
    assert "NotifyCouldNotStart" in run.path
    assert ferry.fsx_tasks(fs) == []
    report = report_of(reports, run)
    assert report["outcome"] == "could_not_start"
    assert reason in report["reason"], report["reason"]
    assert "task_id" not in report


def test_a_task_past_its_timeout_is_cancelled(ferry: LocalFerry, reports: Inbox,
                                              timeout_run: Any) -> None:
    run, fs = timeout_run.run, timeout_run.fs
    run.wait(timeout=180)
    assert (run.status, run.error) == ("FAILED", "TimedOut"), run.describe()
    path = run.path
    assert path.index("MarkTimedOut") < path.index("CancelTask") < path.index("Notify")
    [task] = ferry.fsx_tasks(fs)
    assert task["Lifecycle"] == "CANCELED"
    assert run.outputs("CancelTask")[0]["status"]["full"]["cancel"] == "requested"
    report = report_of(timeout_run.inbox, run)
    assert report["outcome"] == "timed_out"
    assert report["lifecycle"] == "CANCELED"
    assert "TIMED OUT and was canceled" in report["_text"]
