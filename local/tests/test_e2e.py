"""End to end: uploads, schedules and people → the real functions and the lane runner →
emulated AWS → the report a subscriber receives.

Every test drives Ferry the way AWS would (S3 notifications through SQS to `s3-trigger`,
EventBridge Scheduler inputs from template.yaml to `submit`, the runner executions those start,
run with the deployed definition by the harness's launcher), waits for the lane to settle, then
checks witnesses that do not depend on each other: the lane table (every job's end state), the
runner executions (states taken), the emulated service (tasks and executions created, their
type, paths and counts, objects written) and the SNS report.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Callable

import pytest

from conftest import (LEASE_SECONDS, World, failing_datasync_job, report_of, reports_of_job,
                      submitted)
from ferry_local import paths, processes, template
from ferry_local.ferry import ROLE, Inbox, LocalFerry, lane_of_fs, lane_of_task, unique


def upload(ferry: LocalFerry, bucket: str, keys: list[str]) -> None:
    s3 = ferry.client("s3")
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=f"contents of {key}\n".encode())


def new_tasks(ferry: LocalFerry, fs: str, before: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen = {t["TaskId"] for t in before}
    return [t for t in ferry.fsx_tasks(fs) if t["TaskId"] not in seen]


def new_jobs(after: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in after.items() if k not in before}


def outputs(ferry: LocalFerry, lane: str, state: str) -> list[Any]:
    """What `state` returned, across every runner of `lane`."""
    return [o for run in ferry.runners(lane) for o in run.outputs(state)]


# ---------------------------------------------------------------------------------- uploads


def test_uploads_become_one_fsx_import(ferry: LocalFerry, world: World,
                                       reports: Inbox) -> None:
    lane = lane_of_fs(world.route_fs)
    prefix = f"incoming/{unique('batch')}/"
    keys = [f"{prefix}run-{i % 3}/sample-{i:03d}.h5" for i in range(45)]
    upload(ferry, world.data_bucket, keys)
    tasks_before = ferry.fsx_tasks(world.route_fs)
    jobs_before = ferry.lane_jobs(lane)

    messages = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    deliveries = ferry.deliver(messages, world.uploads_url, world.uploads_arn, batch_size=100)
    assert all(d.invocation.ok for d in deliveries), deliveries[0].invocation
    assert [f for d in deliveries for f in d.failed] == []

    [(job_id, job)] = new_jobs(ferry.settle(lane), jobs_before).items()
    assert job["state"] == "succeeded"
    assert job["job"]["source"] == "s3-trigger route e2e-import"
    # More than FERRY_MAX_PATHS (32) files: collapsed into folders, never above the batch.
    paths = job["job"]["spec"]["paths"]
    assert 1 <= len(paths) <= 32
    assert all(p.startswith(f"s3://{world.data_bucket}/{prefix}") for p in paths), paths
    assert all(any(f"s3://{world.data_bucket}/{k}".startswith(p) for p in paths) for k in keys)

    [task] = new_tasks(ferry, world.route_fs, tasks_before)
    assert task["Type"] == "IMPORT_METADATA_FROM_REPOSITORY"
    assert task["Lifecycle"] == "SUCCEEDED"
    assert task["Status"]["TotalCount"] == len(keys)

    report = report_of(reports, job_id)
    assert report["outcome"] == "succeeded"
    assert report["kind"] == "fsx_import"
    assert report["task_id"] == task["TaskId"]
    assert report["counts"] == {"total": 45, "succeeded": 45, "failed": 0}
    assert report["jobs"]["total"] == 1
    assert report["run"] == job["run"]
    assert report["execution"] == ferry.runners(lane)[-1].name, "the runner that ran it"
    assert report["_subject"] == f"[Ferry] e2e-import SUCCEEDED on {world.route_fs}"
    assert f"Run:          {report['run']}\n" in report["_text"]


def test_uploads_become_one_datasync_run(ferry: LocalFerry, world: World,
                                         reports: Inbox) -> None:
    lane = lane_of_task(world.route_task_arn)
    batch = unique("batch")
    keys = [f"outgoing/{batch}/part-{i:03d}.csv" for i in range(30)]
    upload(ferry, world.data_bucket, keys)
    jobs_before = ferry.lane_jobs(lane)
    executions_before = {e["TaskExecutionArn"]
                         for e in ferry.datasync_executions(world.route_task_arn)}

    messages = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    deliveries = ferry.deliver(messages, world.uploads_url, world.uploads_arn, batch_size=100)
    assert [f for d in deliveries for f in d.failed] == []
    [(job_id, job)] = new_jobs(ferry.settle(lane), jobs_before).items()
    assert job["state"] == "succeeded"
    # Filters are relative to the source location (the route's source_prefix, outgoing/).
    assert sorted(job["job"]["spec"]["includes"]) == sorted(
        "/" + k.removeprefix("outgoing/") for k in keys)

    [execution] = [e for e in ferry.datasync_executions(world.route_task_arn)
                   if e["TaskExecutionArn"] not in executions_before]
    assert execution["Status"] == "SUCCESS"
    assert execution["FilesTransferred"] == len(keys)
    copied = ferry.client("s3").list_objects_v2(Bucket=world.archive_bucket,
                                                Prefix=f"archive/{batch}/")
    assert sorted(o["Key"] for o in copied.get("Contents", [])) == sorted(
        f"archive/{k.removeprefix('outgoing/')}" for k in keys)

    report = report_of(reports, job_id)
    assert report["outcome"] == "succeeded"
    assert report["datasync_task_arn"] == world.route_task_arn
    assert report["task_id"] == execution["TaskExecutionArn"]
    assert report["counts"]["files_transferred"] == len(keys)
    assert report["counts"]["bytes_transferred"] == sum(
        len(f"contents of {k}\n") for k in keys)


def test_keys_a_filter_cannot_express_go_through_a_manifest(ferry: LocalFerry, world: World,
                                                            reports: Inbox) -> None:
    # '|' separates DataSync filter patterns: such a key can only be named in a manifest.
    lane = lane_of_task(world.route_task_arn)
    batch = unique("batch")
    keys = [f"outgoing/{batch}/metrics|v{i}.json" for i in range(3)]
    keys += [f"outgoing/{batch}/plain-{i}.csv" for i in range(2)]
    upload(ferry, world.data_bucket, keys)
    jobs_before = ferry.lane_jobs(lane)
    executions_before = {e["TaskExecutionArn"]
                         for e in ferry.datasync_executions(world.route_task_arn)}
    messages = ferry.receive_uploads(world.uploads_url, objects=len(keys))
    deliveries = ferry.deliver(messages, world.uploads_url, world.uploads_arn, batch_size=100)
    assert [f for d in deliveries for f in d.failed] == []
    [(job_id, job)] = new_jobs(ferry.settle(lane), jobs_before).items()
    spec = job["job"]["spec"]
    assert "includes" not in spec
    manifest_key = spec["manifest"]["object_path"]
    assert manifest_key.startswith("ferry-manifests/e2e-sync-")
    body = ferry.client("s3").get_object(Bucket=world.data_bucket, Key=manifest_key)["Body"]
    # One path per line, relative to the source location (the route's source_prefix).
    assert sorted(body.read().decode().splitlines()) == sorted(
        k.removeprefix("outgoing/") for k in keys)
    assert job["state"] == "succeeded"
    [execution] = [e for e in ferry.datasync_executions(world.route_task_arn)
                   if e["TaskExecutionArn"] not in executions_before]
    assert execution["FilesTransferred"] == len(keys)
    copied = ferry.client("s3").list_objects_v2(Bucket=world.archive_bucket,
                                                Prefix=f"archive/{batch}/")
    assert sorted(o["Key"] for o in copied.get("Contents", [])) == sorted(
        f"archive/{k.removeprefix('outgoing/')}" for k in keys)
    assert report_of(reports, job_id)["counts"]["files_transferred"] == len(keys)


def test_duplicate_deliveries_queue_one_job_and_start_one_task(ferry: LocalFerry,
                                                               world: World,
                                                               reports: Inbox) -> None:
    # Spaces and '+' arrive URL-encoded ('+' for a space, %2B for '+'): the task must count
    # the real objects, so the keys must be decoded on the way.
    lane = lane_of_fs(world.route_fs)
    prefix = f"incoming/{unique('dup')}/"
    keys = [f"{prefix}run a+b/file {i}.nc" for i in range(5)]
    upload(ferry, world.data_bucket, keys)
    tasks_before = ferry.fsx_tasks(world.route_fs)
    jobs_before = ferry.lane_jobs(lane)

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

    [(job_id, job)] = new_jobs(ferry.settle(lane), jobs_before).items()
    assert sorted(job["job"]["spec"]["paths"]) == sorted(
        f"s3://{world.data_bucket}/{k}" for k in keys)
    # Redelivered after the job ended: the same job id, nothing new queued or started.
    late = ferry.deliver(messages, world.uploads_url, world.uploads_arn, delete=False)
    assert all(d.invocation.ok and d.failed == [] for d in late)
    assert new_jobs(ferry.settle(lane), jobs_before).keys() == {job_id}

    [task] = new_tasks(ferry, world.route_fs, tasks_before)
    assert task["Status"]["TotalCount"] == len(keys), "every decoded key names a real object"
    assert report_of(reports, job_id)["outcome"] == "succeeded"


# ---------------------------------------------------------------------------------- schedules


@pytest.mark.parametrize("schedule", ["FsxImportSchedule", "FsxExportSchedule",
                                      "FsxReleaseSchedule", "FsxAutoReleaseSchedule",
                                      "DataSyncRunSchedule"])
def test_a_scheduled_job_succeeds(schedule: str, ferry: LocalFerry, world: World,
                                  reports: Inbox,
                                  file_system: Callable[..., tuple[str, str]]) -> None:
    objects = {f"data/in-{i}.dat": f"object {i}\n" for i in range(6)}
    files = {f"results/out-{i}.nc": f"result {i}\n" for i in range(7)}
    bucket, fs = file_system(objects=objects, files=files)
    parameters: dict[str, Any] = {"ScheduleFileSystemId": fs, "AutoReleaseFileSystemId": fs,
                                  "ScheduleReportPath": world.report_path(bucket),
                                  "ReleaseDaysSinceLastAccess": 3, "AutoReleaseCapacityGiB": 7}
    lane = lane_of_fs(fs)
    if schedule == "DataSyncRunSchedule":
        task_arn = ferry.datasync_task(unique("e2e-scheduled"), bucket, "/data",
                                       world.archive_bucket, f"/{unique('scheduled')}")
        parameters = {"ScheduleDataSyncTaskArn": task_arn}
        lane = lane_of_task(task_arn)

    answer = ferry.run_schedule(schedule, parameters)
    assert answer.ok and answer.payload["enqueued"], answer
    job_id = answer.payload["job_id"]
    jobs = ferry.settle(lane, jobs=1)
    assert jobs[job_id]["state"] == "succeeded"
    assert jobs[job_id]["job"]["source"].startswith(
        f"schedule {template.schedule_arn(schedule)}@")
    report = report_of(reports, job_id)
    assert report["outcome"] == "succeeded"
    assert report["job"] == jobs[job_id]["job"]["spec"]["name"]

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


def test_the_auto_release_schedule_is_deployed_only_for_its_own_file_system() -> None:
    # AUTO_RELEASE_DATA is documented for Amazon File Cache: the example schedule no longer
    # follows ScheduleFileSystemId (it ran every 6 h on the schedules' Lustre file system).
    with pytest.raises(ValueError, match="HasAutoReleaseSchedule"):
        template.schedule_input("FsxAutoReleaseSchedule",
                                {"ScheduleFileSystemId": "fs-0123456789abcdef0"})
    job = template.schedule_input("FsxAutoReleaseSchedule",
                                  {"AutoReleaseFileSystemId": "fs-0123456789abcdef0"})["job"]
    assert (job["kind"], job["file_system_id"]) == ("fsx_auto_release", "fs-0123456789abcdef0")


def test_one_schedule_occurrence_delivered_twice_queues_one_job(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    # EventBridge Scheduler delivers at least once; each delivery has the same scheduled time.
    _, fs = file_system(files={"results/a.nc": "a\n"})
    lane = lane_of_fs(fs)
    at = dt.datetime(2026, 11, 22, 1, 0, tzinfo=dt.timezone.utc)
    parameters = {"ScheduleFileSystemId": fs}
    first = ferry.run_schedule("FsxExportSchedule", parameters, scheduled_time=at)
    second = ferry.run_schedule("FsxExportSchedule", parameters, scheduled_time=at, attempt=2)
    assert first.ok and second.ok, (first, second)
    assert first.payload["job_id"] == second.payload["job_id"]
    assert (first.payload["enqueued"], second.payload["enqueued"]) == (True, False)
    ferry.settle(lane, jobs=1)
    # Delivered again after the job ended: still the same job, nothing new.
    late = ferry.run_schedule("FsxExportSchedule", parameters, scheduled_time=at, attempt=3)
    assert late.ok and not late.payload["enqueued"]
    assert len(ferry.fsx_tasks(fs)) == 1
    # The next occurrence is a new job.
    third = ferry.run_schedule("FsxExportSchedule", parameters,
                               scheduled_time=at + dt.timedelta(days=1))
    assert third.ok and third.payload["enqueued"]
    jobs = ferry.settle(lane, jobs=2)
    assert sorted(j["state"] for j in jobs.values()) == ["succeeded", "succeeded"]
    assert len(ferry.fsx_tasks(fs)) == 2
    assert report_of(reports, first.payload["job_id"])["outcome"] == "succeeded"
    assert report_of(reports, third.payload["job_id"])["outcome"] == "succeeded"


def test_a_person_submits_a_job_once_per_id(ferry: LocalFerry, reports: Inbox,
                                            file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"scratch/a.nc": "a\n"})
    job = {"name": unique("e2e-release"), "kind": "fsx_release", "file_system_id": fs,
           "paths": ["scratch"], "release": {"days_since_last_access": 0}}
    first = ferry.submit({"job": job, "id": "alice-2026-11-30"})
    again = ferry.submit({"job": job, "id": "alice-2026-11-30"})
    assert first.ok and again.ok
    assert first.payload["job_id"] == again.payload["job_id"]
    assert not again.payload["enqueued"]
    refused = ferry.submit({"job": {**job, "paths": ["/mnt/fsx/scratch"]}})
    assert refused.error_type == "InvalidJob" and "job.paths[0]" in refused.error_message
    jobs = ferry.settle(lane_of_fs(fs), jobs=1)
    assert [j["state"] for j in jobs.values()] == ["succeeded"]
    [task] = ferry.fsx_tasks(fs)
    assert task["Type"] == "RELEASE_DATA_FROM_FILESYSTEM"
    assert report_of(reports, first.payload["job_id"])["outcome"] == "succeeded"


def tasks_named(ferry: LocalFerry, name: str) -> list[str]:
    """The DataSync tasks tagged ferry:task-name=`name` (every page of ListTasks)."""
    ds = ferry.client("datasync")
    found, token = [], None
    while True:
        page = ds.list_tasks(**({"NextToken": token} if token else {}))
        for task in page["Tasks"]:
            tags = ds.list_tags_for_resource(ResourceArn=task["TaskArn"])["Tags"]
            if {"Key": "ferry:task-name", "Value": name} in tags:
                found.append(task["TaskArn"])
        token = page.get("NextToken")
        if not token:
            return found


def test_a_task_block_creates_its_task_once_reuses_it_and_updates_it_when_it_changes(
        ferry: LocalFerry, world: World, reports: Inbox) -> None:
    """Issue 17: a datasync job may define its task instead of naming one."""
    ds = ferry.client("datasync")
    batch = unique("defined")
    upload(ferry, world.data_bucket, [f"defined/{batch}/part-{i}.csv" for i in range(3)])
    src = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{world.data_bucket}",
                                Subdirectory=f"/defined/{batch}",
                                S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
    dst = ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{world.archive_bucket}",
                                Subdirectory=f"/defined/{batch}",
                                S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
    name = unique("e2e-defined")
    task = {"name": name, "source_location_arn": src, "destination_location_arn": dst,
            "options": {"verify_mode": "ONLY_FILES_TRANSFERRED", "log_level": "BASIC"},
            "tags": {"team": "e2e"}}
    job = {"name": "e2e-defined", "kind": "datasync", "task": task}
    lane = f"datasync-task:{name}"

    def run(job: dict[str, Any], job_id: str) -> dict[str, Any]:
        submitted = ferry.submit({"job": job, "id": job_id})
        assert submitted.ok, submitted.error_message
        jobs = ferry.settle(lane, jobs=len(ferry.lane_jobs(lane)))
        assert jobs[submitted.payload["job_id"]]["state"] == "succeeded", jobs
        return report_of(reports, submitted.payload["job_id"])

    first = run(job, f"{batch}-1")
    [task_arn] = tasks_named(ferry, name)
    assert first["outcome"] == "succeeded"
    assert first["datasync_task_arn"] == task_arn
    assert first["counts"]["files_transferred"] == 3
    described = ds.describe_task(TaskArn=task_arn)
    assert (described["SourceLocationArn"], described["DestinationLocationArn"]) == (src, dst)
    tags = {t["Key"]: t["Value"] for t in ds.list_tags_for_resource(ResourceArn=task_arn)["Tags"]}
    assert tags["team"] == "e2e" and len(tags["ferry:task-definition"]) == 64
    digest = tags["ferry:task-definition"]

    # The same definition again: the same task, untouched.
    second = run(job, f"{batch}-2")
    assert tasks_named(ferry, name) == [task_arn]
    assert second["datasync_task_arn"] == task_arn

    # A changed definition: the same task, updated; a dropped tag is removed.
    changed = {**task, "options": {"verify_mode": "NONE", "log_level": "TRANSFER"}, "tags": {}}
    third = run({**job, "task": changed}, f"{batch}-3")
    assert tasks_named(ferry, name) == [task_arn]
    assert third["datasync_task_arn"] == task_arn
    options = ds.describe_task(TaskArn=task_arn)["Options"]
    assert (options["VerifyMode"], options["LogLevel"]) == ("NONE", "TRANSFER")
    tags = {t["Key"]: t["Value"] for t in ds.list_tags_for_resource(ResourceArn=task_arn)["Tags"]}
    assert tags["ferry:task-definition"] != digest and "team" not in tags

    # A definition that moves the task's locations cannot be applied: refused, not a second task.
    moved = {**task, "destination_location_arn": src, "source_location_arn": dst}
    refused = ferry.submit({"job": {**job, "task": moved}, "id": f"{batch}-4"})
    assert refused.ok
    jobs = ferry.settle(lane, jobs=4)
    assert jobs[refused.payload["job_id"]]["state"] == "failed", jobs
    report = report_of(reports, refused.payload["job_id"])
    assert report["outcome"] == "could_not_start"
    assert "job.task.source_location_arn" in report["reason"], report["reason"]
    assert tasks_named(ferry, name) == [task_arn]


# ---------------------------------------------------------------------------------- lanes


def test_uploads_in_waves_during_a_scheduled_export_become_one_import_after_it(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    # The demo's story: the file system is busy exporting; uploads keep arriving; when the
    # export ends, one import covers every wave, and each run sends one report.
    bucket, fs = file_system(files={f"results/r-{i}.nc": f"{i}\n" for i in range(3)})
    lane = lane_of_fs(fs)
    ferry.ctl.hold(file_system_id=fs)
    export = submitted(ferry, {"name": unique("e2e-export"), "kind": "fsx_export",
                               "file_system_id": fs, "paths": ["results"]})
    processes.wait_for(lambda: ferry.lane_jobs(lane)[export]["state"] == "running", 30,
                       interval=0.2, what="the export running")
    waves = []
    for wave in range(3):
        keys = [f"incoming/wave-{wave}/f-{i}.h5" for i in range(4)]
        upload(ferry, bucket, keys)
        waves.append(submitted(ferry, {"name": f"wave-{wave}", "kind": "fsx_import",
                                       "file_system_id": fs,
                                       "paths": [f"s3://{bucket}/incoming/wave-{wave}/"]}))
    jobs = ferry.lane_jobs(lane)
    assert [jobs[w]["state"] for w in waves] == ["pending"] * 3, "they wait for the export"
    # While jobs wait, the runner checks the export at least every FERRY_BUSY_POLL_MAX_SECONDS.
    processes.wait_for(lambda: any(o["status"]["full"]["waiting"]
                                   for o in outputs(ferry, lane, "GetStatus")), 30,
                       interval=0.2, what="a status check that saw the waiting jobs")
    assert all(o["status"]["next_poll_seconds"] <= 60 for o in outputs(ferry, lane, "GetStatus")
               if o["status"]["full"]["waiting"])
    ferry.ctl.release(file_system_id=fs)

    jobs = ferry.settle(lane, jobs=4)
    assert {j["state"] for j in jobs.values()} == {"succeeded"}
    tasks = sorted(ferry.fsx_tasks(fs), key=lambda t: t["CreationTime"])
    assert [t["Type"] for t in tasks] == ["EXPORT_TO_REPOSITORY",
                                          "IMPORT_METADATA_FROM_REPOSITORY"]
    assert tasks[1]["CreationTime"] >= tasks[0]["EndTime"], "one task at a time"
    assert sorted(tasks[1]["Paths"]) == sorted(f"s3://{bucket}/incoming/wave-{w}/"
                                               for w in range(3))
    assert tasks[1]["Status"]["TotalCount"] == 12
    assert len({jobs[w]["run"] for w in waves}) == 1, "the three waves ran as one run"
    report = report_of(reports, waves[0])
    assert report["jobs"]["total"] == 3
    assert sorted(j["id"] for j in report["jobs"]["listed"]) == sorted(waves)
    assert report_of(reports, export)["jobs"]["total"] == 1


def test_a_foreign_task_holding_the_file_system_is_waited_for(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    bucket, fs = file_system(objects={"data/a.dat": "a\n"},
                             files={f"results/{i}.nc": f"{i}\n" for i in range(4)})
    lane = lane_of_fs(fs)
    # A task Ferry did not start (someone's console click) holds the file system.
    ferry.ctl.hold(file_system_id=fs)
    foreign = ferry.client("fsx").create_data_repository_task(
        FileSystemId=fs, Type="EXPORT_TO_REPOSITORY", Report={"Enabled": False})
    foreign_id = foreign["DataRepositoryTask"]["TaskId"]
    job = submitted(ferry, {"name": unique("e2e-after-foreign"), "kind": "fsx_export",
                            "file_system_id": fs, "paths": ["results"]})
    processes.wait_for(lambda: sum(o["started"]["busy"] for o in outputs(ferry, lane, "StartTask"))
                       >= 3, 30, interval=0.2, what="three busy answers")
    assert [t["TaskId"] for t in ferry.fsx_tasks(fs)] == [foreign_id], "no task while busy"
    errors = [e for run in ferry.runners(lane) for e in run.errors("StartTask")]
    assert errors == [], "a busy file system is an answer, not an error"
    ferry.ctl.release(file_system_id=fs)
    jobs = ferry.settle(lane, jobs=1)
    assert jobs[job]["state"] == "succeeded"
    tasks = sorted(ferry.fsx_tasks(fs), key=lambda t: t["CreationTime"])
    assert tasks[0]["TaskId"] == foreign_id
    assert tasks[1]["CreationTime"] >= tasks[0]["EndTime"]
    assert report_of(reports, job)["outcome"] == "succeeded"


def test_a_url_request_of_a_principal_no_rule_names_is_refused_with_an_http_answer(
        ferry: LocalFerry) -> None:
    """The real binary, as the function URL delivers a request (events/submit/url-person.json:
    a caller of another account, whom the harness's policy does not name): answered 403 (an
    HTTP response, not a function error)."""
    functions = ferry.functions
    assert functions is not None
    body = {"job": {"name": unique("e2e-url"), "kind": "fsx_export",
                    "file_system_id": "fs-0123456789abcdef0"}}
    request = json.loads((paths.ROOT / "events/submit/url-person.json").read_text())
    request["body"] = json.dumps(body)
    answer = functions.invoke("ferry-submit", request)
    assert answer.ok, answer
    assert answer.payload["statusCode"] == 403, answer
    refusal = json.loads(answer.payload["body"])
    assert refusal["error_type"] == "AccessDenied"
    assert "no rule of the access policy names this principal" in refusal["message"]


def test_a_cancelled_pending_job_never_runs_and_a_cancelled_run_is_reported(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    bucket, fs = file_system(objects={"data/a.dat": "a\n"}, files={"results/a.nc": "a\n"})
    lane = lane_of_fs(fs)
    ferry.ctl.hold(file_system_id=fs)
    running = submitted(ferry, {"name": unique("e2e-running"), "kind": "fsx_export",
                                "file_system_id": fs})
    processes.wait_for(lambda: ferry.lane_jobs(lane)[running]["state"] == "running", 30,
                       interval=0.2, what="the export running")
    pending = submitted(ferry, {"name": unique("e2e-pending"), "kind": "fsx_import",
                                "file_system_id": fs})
    functions = ferry.functions
    assert functions is not None
    # People cancel through the submit function (the CLI calls the same code).
    answer = functions.invoke("ferry-submit", {"cancel": {"job": pending, "by": "alice",
                                                          "reason": "wrong folder"}})
    assert answer.ok and answer.payload == {"cancel": "while_pending"}, answer
    # Its report goes out at once, while the lane is still busy with the held export.
    pending_report = report_of(reports, pending)
    assert pending_report["outcome"] == "canceled"
    assert pending_report["reason"].startswith("cancelled at the request of alice (unverified) while it waited")
    assert pending_report["reason"].endswith(": wrong folder; it never ran")
    assert ferry.lane_jobs(lane)[running]["state"] == "running"
    answer = functions.invoke("ferry-submit", {"cancel": {"job": running, "by": "bob",
                                                          "reason": "no longer needed"}})
    assert answer.ok and answer.payload["cancel"] == "run_cancel_requested", answer
    unknown = functions.invoke("ferry-submit", {"cancel": {"by": "bob", "job": "job-" + "0" * 56}})
    assert unknown.error_type == "NotFound"
    jobs = ferry.settle(lane, jobs=2)
    assert (jobs[running]["state"], jobs[pending]["state"]) == ("canceled", "canceled")
    [task] = ferry.fsx_tasks(fs)
    assert (task["Type"], task["Lifecycle"]) == ("EXPORT_TO_REPOSITORY", "CANCELED")
    path = [s for run in ferry.runners(lane) for s in run.path]
    assert path.index("MarkCanceled") < path.index("CancelTask") < path.index("Notify")
    report = report_of(reports, running)
    assert report["outcome"] == "canceled"
    assert report["reason"] == "cancelled at the request of bob (unverified): no longer needed"
    assert len(reports_of_job(reports, pending, 2, 5)) == 2, "the pending job's report, once"
    ferry.ctl.release(file_system_id=fs)


@pytest.mark.parametrize("service", ["fsx", "datasync"])
def test_a_task_cancelled_outside_ferry_is_reported_canceled_not_failed(
        ferry: LocalFerry, world: World, reports: Inbox, service: str,
        file_system: Callable[..., tuple[str, str]]) -> None:
    """Issue 16: the console's (or the AWS CLI's) cancel is a cancel, said to come from outside."""
    if service == "fsx":
        _, fs = file_system(files={"results/a.nc": "a\n"})
        lane, target = lane_of_fs(fs), {"file_system_id": fs}
        job_spec = {"name": unique("e2e-outside"), "kind": "fsx_export", "file_system_id": fs}
    else:
        task_arn = ferry.datasync_task(unique("e2e-outside"), world.data_bucket, "/outside",
                                       world.archive_bucket, "/outside")
        lane, target = lane_of_task(task_arn), {"task_arn": task_arn}
        job_spec = {"name": unique("e2e-outside"), "kind": "datasync", "task_arn": task_arn}
    ferry.ctl.hold(**target)
    job = submitted(ferry, job_spec)

    def started() -> dict[str, Any] | None:
        run = ferry.run_in_flight(lane)
        return run["task"] if run and run.get("task") else None

    task = processes.wait_for(started, 30, interval=0.2, what="the task started")
    if service == "fsx":
        ferry.client("fsx").cancel_data_repository_task(TaskId=task["task_id"])
    else:
        ferry.client("datasync").cancel_task_execution(
            TaskExecutionArn=task["task_execution_arn"])
    jobs = ferry.settle(lane, jobs=1)
    assert jobs[job]["state"] == "canceled"
    report = report_of(reports, job)
    assert report["outcome"] == "canceled"
    assert report["reason"] == ("cancelled outside Ferry (the console, the AWS CLI or the API): "
                                "Ferry did not ask")
    path = [s for run in ferry.runners(lane) for s in run.path]
    assert "CancelTask" not in path, "Ferry did not cancel it again"
    ferry.ctl.release(**target)


def stop_the_runner_mid_export(ferry: LocalFerry, file_system: Callable[..., tuple[str, str]],
                               ) -> tuple[str, str, str, Any]:
    """An export submitted and EXECUTING, its runner stopped by hand (the file system released
    after): the file system, its lane, the job and the stopped runner."""
    _, fs = file_system(files={f"results/{i}.nc": f"{i}\n" for i in range(3)})
    lane = lane_of_fs(fs)
    ferry.ctl.hold(file_system_id=fs)
    job = submitted(ferry, {"name": unique("e2e-orphan"), "kind": "fsx_export",
                            "file_system_id": fs})
    processes.wait_for(lambda: any(o["status"]["lifecycle"] == "EXECUTING"
                                   for o in outputs(ferry, lane, "GetStatus")), 30,
                       interval=0.2, what="the export EXECUTING")
    [stopped] = ferry.runners(lane)
    ferry.stop_runner(stopped)
    ferry.ctl.release(file_system_id=fs)
    return fs, lane, job, stopped


def assert_adopted_and_reported_once(ferry: LocalFerry, reports: Inbox, fs: str, lane: str,
                                     job: str) -> Any:
    """The stopped runner's run finished by the runner that adopted it: one task, followed,
    one report. Returns the adopter."""
    jobs = ferry.settle(lane, jobs=1)
    assert jobs[job]["state"] == "succeeded"
    [task] = ferry.fsx_tasks(fs)
    assert task["Lifecycle"] == "SUCCEEDED", "the new runner followed the same task"
    adopter = ferry.runners(lane)[-1]
    assert adopter.outputs("Take")[0]["taken"]["adopted"] is True
    assert "StartTask" not in adopter.path and "Follow" in adopter.path
    reports_of_job(reports, job, count=2)
    report = report_of(reports, job)
    assert report["outcome"] == "succeeded"
    assert report["task_id"] == task["TaskId"]
    return adopter


def test_a_runner_stopped_by_hand_is_replaced_at_once_and_its_run_finished_once(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    fs, lane, job, stopped = stop_the_runner_mid_export(ferry, file_system)
    # Step Functions' status change event reaches submit through RunnerStoppedRule: the lease
    # passes to a replacement at once, long before it would expire.
    delivery = processes.wait_for(
        lambda: [d for d in ferry.stop_deliveries
                 if d[1]["detail"]["name"] == stopped.name], 30, interval=0.2,
        what="the stop event delivered")
    [(_, event, answer)] = delivery
    assert event["detail"]["status"] == "ABORTED"
    assert answer.ok, answer
    replacement = answer.payload["replaced"]
    assert replacement["kick"] == "started"
    adopter = assert_adopted_and_reported_once(ferry, reports, fs, lane, job)
    assert adopter.name == replacement["owner"]
    assert adopter.path[:3] == ["Entry", "Settle", "Init"], "it let the stopped steps end"


def test_a_runner_stopped_without_its_event_is_replaced_by_the_sweep_after_its_lease(
        ferry: LocalFerry, reports: Inbox,
        file_system: Callable[..., tuple[str, str]]) -> None:
    # EventBridge delivers Step Functions' events on a best-effort basis: the safety net.
    ferry.runner_stop_events = False
    try:
        fs, lane, job, stopped = stop_the_runner_mid_export(ferry, file_system)

        # Until its lease expires the lane is the stopped runner's: the sweep starts nothing.
        def kicked() -> list[Any]:
            swept = ferry.sweep()
            assert swept.ok, swept
            return [k for k in swept.payload["kicked"] if k[0] == lane]

        assert kicked() == []
        processes.wait_for(kicked, LEASE_SECONDS + 30, interval=1.0,
                           what="the sweep replacing the stopped runner")
    finally:
        ferry.runner_stop_events = True
    assert not [d for d in ferry.stop_deliveries if d[1]["detail"]["name"] == stopped.name]
    assert_adopted_and_reported_once(ferry, reports, fs, lane, job)


# ---------------------------------------------------------------------------------- problems


def test_failed_files_are_digested_in_the_report(ferry: LocalFerry, reports: Inbox,
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
    job = submitted(ferry, {"name": unique("e2e-failing"), "kind": "fsx_export",
                            "file_system_id": fs, "paths": ["out"],
                            "report": {"enabled": True, "path": report_path}})
    jobs = ferry.settle(lane_of_fs(fs), jobs=1)
    assert jobs[job]["state"] == "failed"

    [task] = ferry.fsx_tasks(fs)
    report = report_of(reports, job)
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


def test_a_failed_datasync_run_reports_its_task_report(ferry: LocalFerry, world: World,
                                                       reports: Inbox,
                                                       file_system: Callable[..., tuple[str, str]],
                                                       ) -> None:
    bucket, task_arn, spec = failing_datasync_job(ferry, world, file_system, "e2e-ds-failing")
    job = submitted(ferry, spec)
    jobs = ferry.settle(lane_of_task(task_arn), jobs=1)
    assert jobs[job]["state"] == "failed"

    [execution] = ferry.datasync_executions(task_arn)
    assert execution["Status"] == "ERROR"
    report = report_of(reports, job)
    assert report["outcome"] == "failed"
    assert report["failure"] == {"error_code": "S3 Get Object Failed",
                                 "error_detail": "Access denied reading the source object"}
    digest = report["digest"]
    assert digest["failed"] == 2
    assert len(digest["paths"]) == 2
    task_id, exec_id = execution["TaskExecutionArn"].split("/")[1::2]
    assert all(s.startswith(f"s3://{bucket}/reports/Detailed-Reports/{task_id}/{exec_id}/")
               for s in digest["sources"]), digest["sources"]


@pytest.mark.parametrize("case", ["missing file system", "rejected by FSx"])
def test_a_job_that_cannot_start_is_reported(case: str, ferry: LocalFerry, reports: Inbox,
                                             file_system: Callable[..., tuple[str, str]]) -> None:
    bucket, fs = file_system(objects={"data/a.dat": "a\n"})
    job, error_type, reason = {
        # A well-formed id of a file system that does not exist: FSx FileSystemNotFound.
        "missing file system": ({"kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0"},
                                "NotFound", "fs-0123456789abcdef0"),
        # Valid for Ferry, refused by the service: the import path is not the linked
        # repository (FSx BadRequest).
        "rejected by FSx": ({"kind": "fsx_import", "file_system_id": fs,
                             "paths": ["s3://another-bucket/data"]}, "InvalidJob",
                            "another-bucket"),
    }[case]
    if case == "rejected by FSx":
        # submit's preflight would refuse it (below); when it cannot read the file system's
        # links, the job goes through, with a warning, to the service's own refusal.
        ferry.ctl.throttle("fsx", "DescribeFileSystems", probability=1.0, count=50)
    answer = ferry.submit({"job": {"name": unique("e2e-cannot"), **job}})
    ferry.ctl.clear_faults()
    assert answer.ok, answer
    # Neither could be checked: no such file system, or its links unreadable.
    assert answer.payload["warning"].startswith(
        f"the data repository links of {job['file_system_id']} could not be read "
        f"({'NotFound' if case == 'missing file system' else 'Throttled'})"), answer.payload
    if case == "rejected by FSx":
        refused = ferry.submit({"job": {"name": unique("e2e-cannot"), **job}})
        assert refused.error_type == "InvalidJob", refused
        assert "job.paths[0]: s3://another-bucket/data is in no S3 path linked to" in \
            refused.error_message and f"ImportPath s3://{bucket}" in refused.error_message, refused
    job_id = answer.payload["job_id"]
    lane = lane_of_fs(job["file_system_id"])
    jobs = ferry.settle(lane)
    assert jobs[job_id]["state"] == "failed"
    errors = [e for run in ferry.runners(lane) for e in run.errors("StartTask")]
    assert errors[-1:] == [error_type], errors
    assert errors.count(error_type) == 1, "never retried"
    assert any("NotifyCouldNotStart" in run.path for run in ferry.runners(lane))
    assert ferry.fsx_tasks(fs) == []
    report = report_of(reports, job_id)
    assert report["outcome"] == "could_not_start"
    assert reason in report["reason"], report["reason"]
    assert "task_id" not in report


def test_a_task_past_its_timeout_is_cancelled_and_the_job_behind_it_expires(
        ferry: LocalFerry, timeout_run: Any) -> None:
    fs, inbox = timeout_run.fs, timeout_run.inbox
    lane = lane_of_fs(fs)
    jobs = ferry.settle(lane, timeout=180, jobs=2)
    assert jobs[timeout_run.job]["state"] == "timed_out"
    assert jobs[timeout_run.waiting]["state"] == "timed_out"
    path = [s for run in ferry.runners(lane) for s in run.path]
    assert path.index("MarkTimedOut") < path.index("CancelTask") < path.index("Notify")
    assert "NotifyExpired" in path
    [task] = ferry.fsx_tasks(fs)
    assert (task["Type"], task["Lifecycle"]) == ("EXPORT_TO_REPOSITORY", "CANCELED")
    report = report_of(inbox, timeout_run.job)
    assert report["outcome"] == "timed_out"
    assert report["lifecycle"] == "CANCELED"
    assert "TIMED OUT and was canceled" in report["_text"]
    # The job behind it never ran: its own report says so.
    [expired] = [r for r in reports_of_job(inbox, timeout_run.waiting, count=2)
                 if r.format == "json"]
    assert expired.json["outcome"] == "timed_out"
    assert "never ran" in expired.json["reason"]
    assert "task_id" not in expired.json


def test_routes_in_an_s3_object_are_read_when_s3_trigger_starts(
        ferry: LocalFerry, world: World, tmp_path: Any) -> None:
    # Issue 31, item 3: routes past Lambda's 4 KB of environment variables live in an object
    # (RoutesS3Url -> FERRY_ROUTES_URL), read by the real binary at cold start from the
    # emulator's S3.
    from ferry_local.lambdas import Functions
    assert ferry.functions is not None
    config = ferry.bucket(unique("ferry-config"))
    prefix = f"{unique('object-routes')}/"
    routes = [{"name": "from-object", "bucket": world.data_bucket, "prefix": prefix,
               "job": {"name": "object-import", "kind": "fsx_import",
                       "file_system_id": world.route_fs}}]
    ferry.client("s3").put_object(Bucket=config, Key="ferry/routes.json",
                                  Body=json.dumps(routes).encode())
    name = "ferry-s3-trigger"
    env = dict(ferry.functions._per_function[name])  # noqa: SLF001 - the harness's own env
    env["FERRY_ROUTES"] = ""
    env["FERRY_ROUTES_URL"] = f"s3://{config}/ferry/routes.json"
    common = ferry.functions._common  # noqa: SLF001
    lane = lane_of_fs(world.route_fs)
    before = ferry.lane_jobs(lane)
    event = {"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                          "s3": {"bucket": {"name": world.data_bucket},
                                 "object": {"key": f"{prefix}a.h5", "size": 1}}}]}
    for sub in ("object", "missing"):
        (tmp_path / sub).mkdir()
    with Functions(tmp_path / "object", common, {name: env}, names=(name,)) as functions:
        answer = functions.invoke(name, event)
        assert answer.ok, answer
        assert len(answer.payload["enqueued"]) == 1, answer.payload
        log = functions.log_path(name).read_text()
    assert "routes read" in log
    [job] = [j for i, j in ferry.lane_jobs(lane).items() if i not in before]
    assert job["job"]["spec"]["paths"] == [f"s3://{world.data_bucket}/{prefix}a.h5"]

    # A routes object that is not there stops the cold start, naming the variable and object.
    env["FERRY_ROUTES_URL"] = f"s3://{config}/ferry/missing.json"
    with pytest.raises(RuntimeError) as stopped:
        with Functions(tmp_path / "missing", common, {name: env}, names=(name,)):
            pass
    assert "FERRY_ROUTES_URL" in str(stopped.value)
    assert f"s3://{config}/ferry/missing.json" in str(stopped.value)
