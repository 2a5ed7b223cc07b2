"""Fault injection: each service's own throttling error, forced errors and conflicts."""

from __future__ import annotations

import json
import random
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, make_bucket, make_file_system

SFN_DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def fails_with(call: Any, code: str, status: int) -> dict:
    with pytest.raises(ClientError) as excinfo:
        call()
    response = excinfo.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    return response


def test_fsx_and_datasync_throttle_with_throttling_exception(aws, ctl):
    fsx, ds = aws("fsx"), aws("datasync")
    ctl.throttle("fsx", "DescribeDataRepositoryTasks", count=1)
    ctl.throttle("datasync", "ListTaskExecutions", count=1)
    fails_with(fsx.describe_data_repository_tasks, "ThrottlingException", 400)
    assert fsx.describe_data_repository_tasks()["DataRepositoryTasks"] == []
    fails_with(ds.list_task_executions, "ThrottlingException", 400)
    assert ds.list_task_executions()["TaskExecutions"] == []


def test_sdk_retries_absorb_a_short_throttle(aws, ctl):
    fsx = aws("fsx", retries=3)
    ctl.throttle("fsx", "DescribeDataRepositoryTasks", count=2)
    answer = fsx.describe_data_repository_tasks()
    assert answer["ResponseMetadata"]["RetryAttempts"] == 2


def test_sns_throttles_with_throttled_429(aws, ctl):
    sns = aws("sns")
    topic = sns.create_topic(Name="ferry-reports")["TopicArn"]
    ctl.throttle("sns", "Publish", count=1)
    fails_with(lambda: sns.publish(TopicArn=topic, Message="hi"), "Throttled", 429)
    assert sns.publish(TopicArn=topic, Message="hi")["MessageId"]


def test_after_lets_the_first_matching_requests_through(aws, ctl):
    sns = aws("sns")
    topic = sns.create_topic(Name="ferry-reports")["TopicArn"]
    ctl.add_fault(service="sns", operation="Publish", kind="error", code="InternalError",
                  status=500, count=2, after=1)
    assert sns.publish(TopicArn=topic, Message="first")["MessageId"]
    fails_with(lambda: sns.publish(TopicArn=topic, Message="second"), "InternalError", 500)
    fails_with(lambda: sns.publish(TopicArn=topic, Message="third"), "InternalError", 500)
    assert sns.publish(TopicArn=topic, Message="fourth")["MessageId"]
    [rule] = ctl.faults()
    assert (rule["after"], rule["hits"], rule["seen"]) == (1, 2, 3)


def test_s3_throttles_with_slow_down_503(aws, ctl):
    s3 = aws("s3")
    make_bucket(s3, "throttled", {"k": b"v"})
    ctl.throttle("s3", "GetObject", count=1)
    fails_with(lambda: s3.get_object(Bucket="throttled", Key="k"), "SlowDown", 503)
    assert s3.get_object(Bucket="throttled", Key="k")["Body"].read() == b"v"
    ctl.throttle("s3", "PutObject", count=1)
    fails_with(lambda: s3.put_object(Bucket="throttled", Key="k2", Body=b"v"), "SlowDown", 503)


def test_step_functions_throttle_with_throttling_exception(aws, ctl):
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(name="ferry", definition=SFN_DEFINITION,
                                       roleArn=ROLE)["stateMachineArn"]
    ctl.throttle("states", "StartExecution", count=1)
    fails_with(lambda: sfn.start_execution(stateMachineArn=machine, name="x"),
               "ThrottlingException", 400)
    assert sfn.start_execution(stateMachineArn=machine, name="x")["executionArn"]


def test_other_query_services_throttle_with_throttling(aws, ctl):
    sts = aws("sts")
    ctl.throttle("sts", "GetCallerIdentity", count=1)
    fails_with(sts.get_caller_identity, "Throttling", 400)
    assert sts.get_caller_identity()["Account"] == "123456789012"


def test_probability_is_reproducible_with_a_seed(aws, ctl):
    fsx = aws("fsx")
    ctl.throttle("fsx", "*", probability=0.3, seed=42)
    outcomes = []
    for _ in range(40):
        try:
            fsx.describe_data_repository_tasks()
            outcomes.append(False)
        except ClientError:
            outcomes.append(True)
    rng = random.Random(42)
    assert outcomes == [rng.random() < 0.3 for _ in range(40)]
    (rule,) = ctl.faults()
    assert rule["hits"] == sum(outcomes) and rule["seen"] == 40


def test_forced_fsx_conflict_targets_one_file_system(aws, ctl):
    fsx, s3 = aws("fsx"), aws("s3")
    make_bucket(s3, "repo")
    busy, free = make_file_system(fsx), make_file_system(fsx)
    ctl.conflict("fsx", count=2, file_system_id=busy)

    def create(fs: str) -> dict:
        return fsx.create_data_repository_task(Type="EXPORT_TO_REPOSITORY", FileSystemId=fs,
                                               Report={"Enabled": False})

    for _ in range(2):
        response = fails_with(lambda: create(busy), "DataRepositoryTaskExecuting", 400)
        assert "currently executing" in response["Error"]["Message"]
    assert create(free)["DataRepositoryTask"]["Lifecycle"] == "PENDING"
    assert create(busy)["DataRepositoryTask"]["Lifecycle"] == "PENDING"


def test_forced_datasync_conflict(aws, ctl):
    ds = aws("datasync")
    ctl.conflict("datasync", count=1)
    response = fails_with(lambda: ds.start_task_execution(
        TaskArn="arn:aws:datasync:us-east-1:111222333444:task/task-0123456789abcdef0"),
        "InvalidRequestException", 400)
    assert "already has" in response["Error"]["Message"]


def test_error_rules_carry_extra_members(aws, ctl):
    fsx = aws("fsx")
    ctl.add_fault(service="fsx", operation="CreateDataRepositoryTask", kind="error",
                  code="ServiceLimitExceeded", message="Too many tasks", count=1,
                  extra={"Limit": "TOTAL_IN_PROGRESS_COPY_BACKUPS"})
    response = fails_with(lambda: fsx.create_data_repository_task(
        Type="EXPORT_TO_REPOSITORY", FileSystemId="fs-0123456789abcdef0",
        Report={"Enabled": False}), "ServiceLimitExceeded", 400)
    assert response["Limit"] == "TOTAL_IN_PROGRESS_COPY_BACKUPS"


def test_rules_can_be_listed_and_removed(aws, ctl):
    rule = ctl.throttle("fsx", "DescribeDataRepositoryTasks")
    assert [r["id"] for r in ctl.faults()] == [rule]
    ctl.remove_fault(rule)
    assert ctl.faults() == []
    ctl.throttle("sns")
    ctl.clear_faults()
    assert ctl.faults() == []


def test_error_shape_is_json_1_1_with_type_and_message(emulator_url, ctl):
    request = urllib.request.Request(
        emulator_url + "/", method="POST",
        data=json.dumps({"TaskId": "task-0123456789abcdef0"}).encode(),
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSSimbaAPIService_v20180301.CancelDataRepositoryTask",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/fsx/"
                             "aws4_request, SignedHeaders=host, Signature=0",
        })
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 400
    assert excinfo.value.headers["Content-Type"] == "application/x-amz-json-1.1"
    body = json.loads(excinfo.value.read())
    assert body["__type"] == "DataRepositoryTaskNotFound"
    assert body["Message"]


def test_reset_clears_moto_and_the_extension(aws, ctl):
    s3 = aws("s3")
    make_bucket(s3, "gone-after-reset")
    ctl.throttle("sns")
    ctl.clock(mode="manual", step_seconds=99)
    ctl.reset()
    assert "gone-after-reset" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert ctl.faults() == []
    assert ctl.clock()["mode"] == "fast" and ctl.clock()["step_seconds"] == 0.2


def test_s3_rules_see_the_operation_named_by_x_id(emulator_url, aws, ctl):
    """The Rust SDK sends ``GET /bucket/key?x-id=GetObject``: a GetObject rule must match."""
    make_bucket(aws("s3"), "rusty", {"k": b"v"})
    ctl.throttle("s3", "GetObject", count=1)
    request = urllib.request.Request(
        emulator_url + "/rusty/k?x-id=GetObject", method="GET",
        headers={"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/s3/"
                                  "aws4_request, SignedHeaders=host, Signature=0"})
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 503
    assert b"<Code>SlowDown</Code>" in excinfo.value.read()
