"""File-count-dependent phase durations (config ``fsx_task_seconds``,
``datasync_transfer_seconds``): a benchmark knob, not an AWS fact.

Times are compared after the awsJson wire's millisecond rounding. The manual clock adds whole
and dyadic seconds to its frozen instant, which is exact in floating point, so "still running
one second before the end" and "ended at the end" are exact, not approximate.
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import ROLE, STEP, make_bucket, make_file_system
from ferry_emulator.client import ControlError

NO_REPORT = {"Enabled": False}
MS = 1e-3 + 1e-9  # both instants are rounded to the millisecond on the wire


def seconds(value: Any) -> float:
    return value.timestamp()


# ---------------------------------------------------------------------------- FSx


def fsx_import(fsx: Any, s3: Any, files: int) -> tuple[str, dict]:
    make_bucket(s3, "bench", {f"incoming/f{i:03}.nc": b"x" for i in range(files)})
    fs = make_file_system(fsx, "s3://bench", "s3://bench")
    task = fsx.create_data_repository_task(
        Type="IMPORT_METADATA_FROM_REPOSITORY", FileSystemId=fs, Report=NO_REPORT,
        Paths=["s3://bench/incoming"])["DataRepositoryTask"]
    return fs, task


def describe_task(fsx: Any, task_id: str) -> dict:
    return fsx.describe_data_repository_tasks(TaskIds=[task_id])["DataRepositoryTasks"][0]


def test_fsx_task_seconds_make_executing_last_base_plus_per_file(fsx, s3, ctl):
    files, base, per_file = 40, 60.0, 0.25
    duration = base + per_file * files  # 70 s, 7 steps of the test clock
    config = ctl.durations(fsx_task_seconds={"base": base, "per_file": per_file})
    assert config["fsx_task_seconds"] == {"base": base, "per_file": per_file}
    _, task = fsx_import(fsx, s3, files)
    created = seconds(task["CreationTime"])

    ctl.advance(steps=1)  # PENDING still lasts one step
    running = describe_task(fsx, task["TaskId"])
    assert running["Lifecycle"] == "EXECUTING"
    start = seconds(running["StartTime"])
    assert start == pytest.approx(created + STEP, abs=MS)
    assert running["Status"]["TotalCount"] == files
    assert running["Status"]["SucceededCount"] == 0

    ctl.advance(seconds=duration / 2)
    half = describe_task(fsx, task["TaskId"])
    assert half["Lifecycle"] == "EXECUTING"
    assert half["Status"]["SucceededCount"] == files // 2
    assert half["Status"]["FailedCount"] == 0

    ctl.advance(seconds=duration / 2 - 1)
    late = describe_task(fsx, task["TaskId"])
    assert late["Lifecycle"] == "EXECUTING"
    assert late["Status"]["SucceededCount"] == int(files * (duration - 1) / duration)
    assert "EndTime" not in late

    ctl.advance(seconds=1)
    done = describe_task(fsx, task["TaskId"])
    assert done["Lifecycle"] == "SUCCEEDED"
    assert seconds(done["EndTime"]) == pytest.approx(start + duration, abs=MS)
    assert done["Status"] == {"TotalCount": files, "SucceededCount": files, "FailedCount": 0,
                              "LastUpdatedTime": done["EndTime"]}


def test_fsx_duration_counts_planned_failures_and_fails_at_the_end(fsx, s3, ctl):
    ctl.durations(fsx_task_seconds=(30, 1))  # a (base, per_file) pair works too
    make_bucket(s3, "bench", {f"f{i}.nc": b"x" for i in range(6)})
    fs = make_file_system(fsx, "s3://bench", "s3://bench")
    ctl.fsx_fail(fs, files=[{"path": "ghost.nc", "error_code": "S3ObjectNotFound"}], count=1)
    task = fsx.create_data_repository_task(Type="EXPORT_TO_REPOSITORY", FileSystemId=fs,
                                           Report=NO_REPORT)["DataRepositoryTask"]
    ctl.advance(steps=1)
    start = seconds(describe_task(fsx, task["TaskId"])["StartTime"])
    ctl.advance(seconds=30 + 7 - 1)  # 6 files and one planned failure: 7 files
    assert describe_task(fsx, task["TaskId"])["Lifecycle"] == "EXECUTING"
    ctl.advance(seconds=1)
    done = describe_task(fsx, task["TaskId"])
    assert done["Lifecycle"] == "FAILED"
    assert seconds(done["EndTime"]) == pytest.approx(start + 37, abs=MS)
    assert done["Status"]["TotalCount"] == 7 and done["Status"]["FailedCount"] == 2


def test_fsx_default_is_one_step_and_null_unsets(fsx, s3, ctl):
    assert ctl.config() == {"invalid_paths": "reject"}  # unset by default
    ctl.durations(fsx_task_seconds=(600, 1))
    assert ctl.durations(fsx_task_seconds=None) == {"invalid_paths": "reject"}
    _, task = fsx_import(fsx, s3, 40)
    created = seconds(task["CreationTime"])
    ctl.advance(steps=1.5)
    assert describe_task(fsx, task["TaskId"])["Status"]["SucceededCount"] == 20
    ctl.advance(steps=0.5)
    done = describe_task(fsx, task["TaskId"])
    assert done["Lifecycle"] == "SUCCEEDED"
    assert seconds(done["EndTime"]) == pytest.approx(created + 2 * STEP, abs=MS)


def test_zero_durations_end_the_phase_as_it_starts(fsx, s3, ds, task_arn, ctl):
    ctl.durations(fsx_task_seconds=(0, 0), datasync_transfer_seconds=(0, 0))
    _, task = fsx_import(fsx, s3, 4)
    arn = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    ctl.advance(steps=1)
    done = describe_task(fsx, task["TaskId"])
    assert done["Lifecycle"] == "SUCCEEDED" and done["StartTime"] == done["EndTime"]
    assert done["Status"]["SucceededCount"] == 4
    ctl.advance(steps=1)  # LAUNCHING, PREPARING: 2 steps; TRANSFERRING takes no time
    moved = ds.describe_task_execution(TaskExecutionArn=arn)
    assert moved["Status"] == "VERIFYING" and moved["FilesTransferred"] == 40
    assert moved["Result"]["TransferDuration"] == 0


def test_fsx_held_and_cancelled_tasks_with_a_duration(fsx, s3, ctl):
    ctl.durations(fsx_task_seconds={"base": 100, "per_file": 0})
    fs, task = fsx_import(fsx, s3, 10)
    ctl.hold(file_system_id=fs)
    ctl.advance(steps=1, seconds=500)
    held = describe_task(fsx, task["TaskId"])
    assert held["Lifecycle"] == "EXECUTING"
    assert held["Status"]["SucceededCount"] == 5  # stops half way, as without a duration
    ctl.release(file_system_id=fs)
    ctl.advance(seconds=99)
    assert describe_task(fsx, task["TaskId"])["Lifecycle"] == "EXECUTING"
    ctl.advance(seconds=1)  # a released task runs a whole EXECUTING phase from its release
    assert describe_task(fsx, task["TaskId"])["Lifecycle"] == "SUCCEEDED"

    second = fsx.create_data_repository_task(
        Type="IMPORT_METADATA_FROM_REPOSITORY", FileSystemId=fs,
        Report=NO_REPORT)["DataRepositoryTask"]
    ctl.advance(steps=1, seconds=30)
    fsx.cancel_data_repository_task(TaskId=second["TaskId"])
    ctl.advance(steps=1)  # CANCELING still lasts one step
    done = describe_task(fsx, second["TaskId"])
    assert done["Lifecycle"] == "CANCELED"
    assert done["Status"]["SucceededCount"] == 3  # 30 % of 10 files when cancelled


# ---------------------------------------------------------------------------- DataSync


@pytest.fixture()
def task_arn(ds: Any, s3: Any) -> str:
    make_bucket(s3, "src-bkt", {f"data/f{i:03}.txt": b"x" * 4 for i in range(40)}
                | {"outside/e.txt": b"x"})
    make_bucket(s3, "dst-bkt")
    src = ds.create_location_s3(S3BucketArn="arn:aws:s3:::src-bkt", Subdirectory="/data",
                                S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
    dst = ds.create_location_s3(S3BucketArn="arn:aws:s3:::dst-bkt", Subdirectory="/copy",
                                S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
    return ds.create_task(SourceLocationArn=src, DestinationLocationArn=dst,
                          Name="bench")["TaskArn"]


def test_datasync_transfer_seconds_make_transferring_last_base_plus_per_file(ds, task_arn,
                                                                              ctl):
    files, base, per_file = 40, 20.0, 0.5
    duration = base + per_file * files  # 40 s
    ctl.durations(datasync_transfer_seconds={"base": base, "per_file": per_file})
    arn = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    started = seconds(ds.describe_task_execution(TaskExecutionArn=arn)["StartTime"])

    ctl.advance(steps=2)  # LAUNCHING and PREPARING: one step each
    moving = ds.describe_task_execution(TaskExecutionArn=arn)
    assert moving["Status"] == "TRANSFERRING"
    assert moving["EstimatedFilesToTransfer"] == files
    assert moving["FilesTransferred"] == 0

    ctl.advance(seconds=duration / 2)
    half = ds.describe_task_execution(TaskExecutionArn=arn)
    assert half["Status"] == "TRANSFERRING"
    assert half["FilesTransferred"] == files // 2
    assert half["BytesTransferred"] == half["BytesWritten"] == files * 4 // 2

    ctl.advance(seconds=duration / 2 - 1)
    assert ds.describe_task_execution(TaskExecutionArn=arn)["Status"] == "TRANSFERRING"
    ctl.advance(seconds=1)
    verifying = ds.describe_task_execution(TaskExecutionArn=arn)
    assert verifying["Status"] == "VERIFYING"  # still one step
    assert verifying["FilesTransferred"] == files
    assert verifying["Result"]["TransferDuration"] == int(duration * 1000)

    ctl.advance(steps=1)
    done = ds.describe_task_execution(TaskExecutionArn=arn)
    assert done["Status"] == "SUCCESS"
    assert seconds(done["EndTime"]) == pytest.approx(started + 3 * STEP + duration, abs=MS)
    assert done["Result"]["TotalDuration"] == int((3 * STEP + duration) * 1000)
    assert done["FilesTransferred"] == done["FilesVerified"] == files


def test_datasync_duration_uses_the_files_left_after_filters_and_failures(ds, task_arn, ctl):
    ctl.durations(datasync_transfer_seconds=(5, 1))
    ctl.datasync_fail(task_arn, error_code="S3 Get Object Failed", files_failed=2)
    arn = ds.start_task_execution(TaskArn=task_arn, Includes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": "/f00*"}])["TaskExecutionArn"]  # 10 files
    ctl.advance(steps=2, seconds=5 + 10 - 1)
    assert ds.describe_task_execution(TaskExecutionArn=arn)["Status"] == "TRANSFERRING"
    ctl.advance(seconds=1)
    done = ds.describe_task_execution(TaskExecutionArn=arn)
    assert done["Status"] == "ERROR"  # the injected failure ends the longer phase
    assert done["Result"]["TransferDuration"] == 15000
    assert done["FilesTransferred"] == 8 and done["FilesFailed"]["Transfer"] == 2


def test_datasync_default_is_one_step(ds, task_arn, ctl):
    arn = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    ctl.advance(steps=2.5)
    assert ds.describe_task_execution(TaskExecutionArn=arn)["FilesTransferred"] == 20
    ctl.advance(steps=1.5)
    done = ds.describe_task_execution(TaskExecutionArn=arn)
    assert done["Status"] == "SUCCESS"
    assert done["Result"]["TransferDuration"] == int(STEP * 1000)


def test_datasync_held_and_cancelled_executions_with_a_duration(ds, task_arn, ctl):
    ctl.durations(datasync_transfer_seconds={"base": 100, "per_file": 0})
    ctl.hold(task_arn=task_arn)
    arn = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    ctl.advance(steps=2, seconds=500)
    held = ds.describe_task_execution(TaskExecutionArn=arn)
    assert held["Status"] == "TRANSFERRING" and held["FilesTransferred"] == 20
    ctl.release(task_arn=task_arn)
    ctl.advance(seconds=99)
    assert ds.describe_task_execution(TaskExecutionArn=arn)["Status"] == "TRANSFERRING"
    ctl.advance(seconds=1)
    assert ds.describe_task_execution(TaskExecutionArn=arn)["Status"] == "VERIFYING"
    ctl.advance(steps=1)

    second = ds.start_task_execution(TaskArn=task_arn,
                                     OverrideOptions={"TransferMode": "ALL"})["TaskExecutionArn"]
    ctl.advance(steps=2, seconds=50)
    ds.cancel_task_execution(TaskExecutionArn=second)
    assert ds.describe_task_execution(TaskExecutionArn=second)["Status"] == "CANCELLING"
    ctl.advance(steps=1)  # CANCELLING still lasts one step
    done = ds.describe_task_execution(TaskExecutionArn=second)
    assert done["Status"] == "ERROR" and "cancel" in done["Result"]["ErrorDetail"]
    assert done["Result"]["TransferDuration"] == 50000


# ---------------------------------------------------------------------------- control API


@pytest.mark.parametrize("body,needle", [
    ({"fsx_task_seconds": 60}, "fsx_task_seconds must be an object"),
    ({"fsx_task_seconds": [60, 0.01]}, "fsx_task_seconds must be an object"),
    ({"fsx_task_seconds": {"base": 60}}, "fsx_task_seconds.per_file is required"),
    ({"fsx_task_seconds": {"per_file": 0.01}}, "fsx_task_seconds.base is required"),
    ({"fsx_task_seconds": {"base": -1, "per_file": 0}}, "fsx_task_seconds.base must be"),
    ({"fsx_task_seconds": {"base": "60", "per_file": 0}}, "fsx_task_seconds.base must be a"),
    ({"fsx_task_seconds": {"base": 1, "per_file": True}}, "fsx_task_seconds.per_file must be"),
    ({"fsx_task_seconds": {"base": 1, "per_file": 0, "max": 9}}, "fsx_task_seconds: unknown"),
    ({"fsx_task_seconds": {"base": float("inf"), "per_file": 0}},
     "fsx_task_seconds.base must be a finite number"),
    ({"fsx_task_seconds": {"base": 0, "per_file": float("nan")}},
     "fsx_task_seconds.per_file must be a finite number"),
    ({"fsx_task_seconds": None, "datasync_transfer_seconds": "slow"},
     "datasync_transfer_seconds must be an object"),
    ({"datasync_transfer_seconds": {"base": 0, "per_file": -0.5}},
     "datasync_transfer_seconds.per_file must be"),
    ({"datasync_transfer_seconds": {"base": 0}}, "datasync_transfer_seconds.per_file is"),
])
def test_bad_durations_are_refused_naming_the_field(ctl, body, needle):
    with pytest.raises(ControlError) as excinfo:
        ctl.config(**body)
    assert "HTTP 400" in str(excinfo.value)
    assert needle in str(excinfo.value)
    assert ctl.config() == {"invalid_paths": "reject"}


def test_a_refused_body_changes_nothing(ctl):
    with pytest.raises(ControlError, match="datasync_transfer_seconds.base"):
        ctl.durations(fsx_task_seconds=(60, 0.01), datasync_transfer_seconds=(-1, 0))
    assert ctl.config() == {"invalid_paths": "reject"}


def test_durations_are_kept_set_one_at_a_time_and_cleared_by_reset(ctl):
    ctl.durations(fsx_task_seconds=(60, 0.01))
    config = ctl.durations(datasync_transfer_seconds={"base": 30, "per_file": 0.002})
    assert config == {"invalid_paths": "reject",
                      "fsx_task_seconds": {"base": 60.0, "per_file": 0.01},
                      "datasync_transfer_seconds": {"base": 30.0, "per_file": 0.002}}
    assert ctl.config(invalid_paths="fail_task")["fsx_task_seconds"] == {"base": 60.0,
                                                                         "per_file": 0.01}
    assert ctl.state()["config"]["datasync_transfer_seconds"]["per_file"] == 0.002
    ctl.reset()
    assert ctl.config() == {"invalid_paths": "reject"}
