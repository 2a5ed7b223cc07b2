"""DataSync task executions against the running emulator (boto3, awsJson 1.1)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, STEP, make_bucket

SOURCE = {
    "data/a.txt": b"x" * 5,
    "data/b/c.txt": b"x" * 10,
    "data/b/d.tmp": b"x" * 3,
    "outside/e.txt": b"x" * 7,
}
ALL = ("QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "CANCELLING",
       "SUCCESS", "ERROR")


@pytest.fixture()
def task_arn(ds: Any, s3: Any) -> str:
    make_bucket(s3, "src-bkt", SOURCE)
    make_bucket(s3, "dst-bkt")
    src = ds.create_location_s3(S3BucketArn="arn:aws:s3:::src-bkt", Subdirectory="/data",
                                S3Config={"BucketAccessRoleArn": ROLE},
                                Tags=[{"Key": "side", "Value": "source"}])["LocationArn"]
    dst = ds.create_location_s3(S3BucketArn="arn:aws:s3:::dst-bkt", Subdirectory="/copy",
                                S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
    return ds.create_task(SourceLocationArn=src, DestinationLocationArn=dst, Name="ferry-test",
                          Tags=[{"Key": "team", "Value": "data"}])["TaskArn"]


def describe(ds: Any, arn: str) -> dict:
    return ds.describe_task_execution(TaskExecutionArn=arn)


def status(ds: Any, arn: str) -> str:
    return describe(ds, arn)["Status"]


def error_code(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def test_statuses_follow_aws_and_counters_come_from_s3(ds, s3, task_arn, ctl):
    arn = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    assert arn.startswith(task_arn + "/execution/exec-")
    first = describe(ds, arn)
    assert first["Status"] == "LAUNCHING"
    assert first["StartTime"] == first["LaunchTime"]
    assert "EndTime" not in first

    seen = [first["Status"]]
    for _ in range(4):
        ctl.advance(steps=1)
        seen.append(status(ds, arn))
    assert seen == ["LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"]
    assert "INITIALIZING" not in seen

    done = describe(ds, arn)
    assert done["EstimatedFilesToTransfer"] == 3
    assert done["EstimatedBytesToTransfer"] == 18
    assert done["FilesTransferred"] == 3
    assert done["BytesTransferred"] == done["BytesWritten"] == 18
    assert done["FilesVerified"] == 3
    assert done["FilesListed"]["AtSource"] == 3
    assert done["Result"]["PrepareStatus"] == "SUCCESS"
    assert done["Result"]["TransferStatus"] == "SUCCESS"
    assert done["Result"]["VerifyStatus"] == "SUCCESS"
    assert done["Result"]["TransferDuration"] == int(STEP * 1000)
    assert done["Result"]["TotalDuration"] == int(4 * STEP * 1000)
    assert "ErrorCode" not in done["Result"]
    assert (done["EndTime"] - done["StartTime"]).total_seconds() == pytest.approx(4 * STEP)
    copied = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="dst-bkt")["Contents"])
    assert copied == ["copy/a.txt", "copy/b/c.txt", "copy/b/d.tmp"]

    # TransferMode CHANGED (the default): nothing changed, nothing to transfer.
    again = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    ctl.advance(steps=4)
    assert describe(ds, again)["EstimatedFilesToTransfer"] == 0


def test_transfer_progress_is_reported_while_transferring(ds, task_arn, ctl):
    arn = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    ctl.advance(steps=2.5)
    mid = describe(ds, arn)
    assert mid["Status"] == "TRANSFERRING"
    assert mid["EstimatedBytesToTransfer"] == 18
    assert mid["BytesTransferred"] == 9


def test_verify_mode_none_skips_verifying(ds, task_arn, ctl):
    arn = ds.start_task_execution(TaskArn=task_arn,
                                  OverrideOptions={"VerifyMode": "NONE"})["TaskExecutionArn"]
    ctl.advance(steps=3)
    done = describe(ds, arn)
    assert done["Status"] == "SUCCESS"
    assert done["FilesVerified"] == 0
    assert done["Options"]["VerifyMode"] == "NONE"


def test_includes_excludes_and_manifest_narrow_the_transfer(ds, s3, task_arn, ctl):
    # TransferMode ALL: each run counts what it selects, whatever earlier runs copied.
    every = {"TransferMode": "ALL"}
    inc = ds.start_task_execution(TaskArn=task_arn, OverrideOptions=every, Includes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": "/b"}])["TaskExecutionArn"]
    exc = ds.start_task_execution(TaskArn=task_arn, OverrideOptions=every, Excludes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": "*.tmp"}])["TaskExecutionArn"]
    s3.put_object(Bucket="src-bkt", Key="manifests/m.csv", Body=b"a.txt\nb/d.tmp\n")
    man = ds.start_task_execution(TaskArn=task_arn, OverrideOptions=every, ManifestConfig={
        "Action": "TRANSFER", "Format": "CSV", "Source": {"S3": {
            "ManifestObjectPath": "manifests/m.csv", "BucketAccessRoleArn": ROLE,
            "S3BucketArn": "arn:aws:s3:::src-bkt"}}})["TaskExecutionArn"]
    ctl.advance(steps=20)
    assert describe(ds, inc)["EstimatedFilesToTransfer"] == 2
    assert describe(ds, exc)["EstimatedFilesToTransfer"] == 2
    assert describe(ds, man)["EstimatedFilesToTransfer"] == 2
    assert describe(ds, inc)["Includes"] == [{"FilterType": "SIMPLE_PATTERN", "Value": "/b"}]


def test_a_missing_manifest_ends_in_error(ds, task_arn, ctl):
    arn = ds.start_task_execution(TaskArn=task_arn, ManifestConfig={
        "Action": "TRANSFER", "Format": "CSV", "Source": {"S3": {
            "ManifestObjectPath": "nope.csv", "BucketAccessRoleArn": ROLE,
            "S3BucketArn": "arn:aws:s3:::src-bkt"}}})["TaskExecutionArn"]
    ctl.advance(steps=3)
    done = describe(ds, arn)
    assert done["Status"] == "ERROR"
    assert done["Result"]["PrepareStatus"] == "ERROR"
    assert done["Result"]["ErrorCode"]


def test_second_start_with_other_filters_is_queued(ds, task_arn, ctl):
    first = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    second = ds.start_task_execution(TaskArn=task_arn, Includes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": "/a.txt"}])["TaskExecutionArn"]
    assert status(ds, second) == "QUEUED"
    assert "LaunchTime" not in describe(ds, second)
    listed = ds.list_task_executions(TaskArn=task_arn)["TaskExecutions"]
    assert [(e["TaskExecutionArn"], e["Status"]) for e in listed] == [
        (first, "LAUNCHING"), (second, "QUEUED")]
    task = ds.describe_task(TaskArn=task_arn)
    assert task["Status"] == "RUNNING" and task["CurrentTaskExecutionArn"] == first

    ctl.advance(steps=4)
    assert status(ds, first) == "SUCCESS"
    queued = describe(ds, second)
    assert queued["Status"] == "LAUNCHING"
    assert queued["LaunchTime"] == describe(ds, first)["EndTime"]
    assert queued["LaunchTime"] > queued["StartTime"]
    ctl.advance(steps=4)
    assert status(ds, second) == "SUCCESS"
    task = ds.describe_task(TaskArn=task_arn)
    assert task["Status"] == "AVAILABLE" and "CurrentTaskExecutionArn" not in task


def test_same_filters_or_disabled_queueing_cannot_start(ds, task_arn, ctl):
    ds.start_task_execution(TaskArn=task_arn)
    with pytest.raises(ClientError) as excinfo:
        ds.start_task_execution(TaskArn=task_arn)
    assert error_code(excinfo) == "InvalidRequestException"
    assert "already has" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        ds.start_task_execution(TaskArn=task_arn, OverrideOptions={"TaskQueueing": "DISABLED"},
                                Includes=[{"FilterType": "SIMPLE_PATTERN", "Value": "/b"}])
    assert error_code(excinfo) == "InvalidRequestException"
    assert "already has" in excinfo.value.response["Error"]["Message"]


def test_cancel_running_and_queued_executions(ds, task_arn, ctl):
    running = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    queued = ds.start_task_execution(TaskArn=task_arn, Includes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": "/b"}])["TaskExecutionArn"]
    third = ds.start_task_execution(TaskArn=task_arn, Includes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": "/a.txt"}])["TaskExecutionArn"]
    ctl.advance(steps=1)
    ds.cancel_task_execution(TaskExecutionArn=queued)
    ds.cancel_task_execution(TaskExecutionArn=running)
    assert status(ds, running) == "CANCELLING"
    with pytest.raises(ClientError) as excinfo:
        ds.cancel_task_execution(TaskExecutionArn=running)
    assert error_code(excinfo) == "InvalidRequestException"
    ctl.advance(steps=1)
    for arn in (running, queued):
        done = describe(ds, arn)
        assert done["Status"] == "ERROR"
        assert "cancel" in done["Result"]["ErrorDetail"]
    assert "LaunchTime" not in describe(ds, queued)
    assert status(ds, third) == "LAUNCHING"
    with pytest.raises(ClientError) as excinfo:
        ds.cancel_task_execution(TaskExecutionArn=running)
    assert error_code(excinfo) == "InvalidRequestException"


def test_tags_of_executions_tasks_and_locations(ds, task_arn, ctl):
    arn = ds.start_task_execution(TaskArn=task_arn, Tags=[
        {"Key": "ferry:idempotency-key", "Value": "ferry-0123abcd"},
        {"Key": "job", "Value": "nightly"}])["TaskExecutionArn"]
    tags = ds.list_tags_for_resource(ResourceArn=arn)["Tags"]
    assert {"Key": "ferry:idempotency-key", "Value": "ferry-0123abcd"} in tags
    ds.tag_resource(ResourceArn=arn, Tags=[{"Key": "extra", "Value": "1"}])
    ds.untag_resource(ResourceArn=arn, Keys=["job"])
    assert {t["Key"] for t in ds.list_tags_for_resource(ResourceArn=arn)["Tags"]} == {
        "ferry:idempotency-key", "extra"}
    page = ds.list_tags_for_resource(ResourceArn=arn, MaxResults=1)
    assert len(page["Tags"]) == 1 and page["NextToken"]
    assert ds.list_tags_for_resource(ResourceArn=task_arn)["Tags"] == [
        {"Key": "team", "Value": "data"}]
    src = ds.describe_task(TaskArn=task_arn)["SourceLocationArn"]
    assert ds.list_tags_for_resource(ResourceArn=src)["Tags"] == [
        {"Key": "side", "Value": "source"}]
    with pytest.raises(ClientError) as excinfo:
        ds.start_task_execution(TaskArn=task_arn, Includes=[
            {"FilterType": "SIMPLE_PATTERN", "Value": "/b"}], Tags=[{"Key": "bad*key",
                                                                      "Value": "v"}])
    assert error_code(excinfo) == "InvalidRequestException"


def test_list_task_executions_paginates(ds, task_arn, ctl):
    arns = []
    for i in range(5):
        arns.append(ds.start_task_execution(TaskArn=task_arn, Includes=[
            {"FilterType": "SIMPLE_PATTERN", "Value": f"/f{i}"}])["TaskExecutionArn"])
    seen = []
    for page in ds.get_paginator("list_task_executions").paginate(
            TaskArn=task_arn, PaginationConfig={"PageSize": 2}):
        assert len(page["TaskExecutions"]) <= 2
        seen += [e["TaskExecutionArn"] for e in page["TaskExecutions"]]
    assert seen == arns
    assert [e["TaskExecutionArn"] for e in ds.list_task_executions()["TaskExecutions"]] == arns
    with pytest.raises(ClientError) as excinfo:
        ds.list_task_executions(TaskArn=task_arn, MaxResults=101)
    assert error_code(excinfo) == "InvalidRequestException"


def test_injected_failure_ends_in_error_and_writes_the_task_report(ds, s3, task_arn, ctl):
    ctl.datasync_fail(task_arn, error_code="S3 Get Object Failed",
                      error_detail="Access denied reading the source object", files_failed=1)
    make_bucket(s3, "reports-bkt")
    arn = ds.start_task_execution(TaskArn=task_arn, TaskReportConfig={
        "Destination": {"S3": {"S3BucketArn": "arn:aws:s3:::reports-bkt",
                               "Subdirectory": "ferry", "BucketAccessRoleArn": ROLE}},
        "OutputType": "STANDARD", "ReportLevel": "ERRORS_ONLY"})["TaskExecutionArn"]
    ctl.advance(steps=3)
    done = describe(ds, arn)
    assert done["Status"] == "ERROR"
    assert done["Result"]["ErrorCode"] == "S3 Get Object Failed"
    assert done["Result"]["ErrorDetail"] == "Access denied reading the source object"
    assert done["Result"]["TransferStatus"] == "ERROR"
    assert done["FilesFailed"]["Transfer"] == 1
    assert done["FilesTransferred"] == 2
    assert done["ReportResult"]["Status"] == "SUCCESS"

    task_id, exec_id = arn.split("/")[1], arn.split("/")[3]
    prefix = f"ferry/Detailed-Reports/{task_id}/{exec_id}/"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="reports-bkt", Prefix=prefix)["Contents"]]
    assert len(keys) == 1 and keys[0].startswith(f"{prefix}{exec_id}.files-transferred-v1-")
    report = json.loads(s3.get_object(Bucket="reports-bkt", Key=keys[0])["Body"].read())
    assert report["TaskExecutionId"] == exec_id
    assert [e["TransferStatus"] for e in report["Transferred"]] == ["FAILED"]

    nxt = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    ctl.advance(steps=4)
    assert status(ds, nxt) == "SUCCESS"


def test_held_execution_stays_transferring_until_released(ds, task_arn, ctl):
    ctl.hold(task_arn=task_arn)
    arn = ds.start_task_execution(TaskArn=task_arn)["TaskExecutionArn"]
    ctl.advance(steps=30)
    assert status(ds, arn) == "TRANSFERRING"
    ctl.release(task_arn=task_arn)
    ctl.advance(steps=2)
    assert status(ds, arn) == "SUCCESS"


def test_request_errors(ds, task_arn):
    with pytest.raises(ClientError) as excinfo:
        ds.describe_task_execution(
            TaskExecutionArn=task_arn + "/execution/exec-0123456789abcdef0")
    assert error_code(excinfo) == "InvalidRequestException"
    assert "not found" in excinfo.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as excinfo:
        ds.start_task_execution(TaskArn=task_arn, OverrideOptions={"VerifyMode": "SOMETIMES"})
    assert error_code(excinfo) == "InvalidRequestException"
    with pytest.raises(ClientError) as excinfo:
        ds.start_task_execution(TaskArn=task_arn, Includes=[
            {"FilterType": "SIMPLE_PATTERN", "Value": "/x" * 51201}])
    assert error_code(excinfo) == "InvalidRequestException"
    with pytest.raises(ClientError) as excinfo:
        ds.start_task_execution(
            TaskArn="arn:aws:datasync:us-east-1:111222333444:task/task-0123456789abcdef0")
    assert error_code(excinfo) == "InvalidRequestException"


def test_every_reported_status_is_an_api_status(ds, task_arn, ctl):
    arns = [ds.start_task_execution(TaskArn=task_arn, Includes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": f"/f{i}"}])["TaskExecutionArn"]
        for i in range(3)]
    for _ in range(14):
        for arn in arns:
            assert status(ds, arn) in ALL
        ctl.advance(steps=1)
    assert [status(ds, a) for a in arns] == ["SUCCESS"] * 3
