"""What moto serves untouched behind the extension, and the control API's own contract."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from conftest import ROLE, make_bucket
from ferry_emulator.client import ControlError

DEFINITION = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})


def test_s3_sns_sqs_sts_and_step_functions_work(aws, emulator_url, ctl):
    s3, sns, sqs, sts, sfn = (aws(s) for s in ("s3", "sns", "sqs", "sts", "stepfunctions"))
    make_bucket(s3, "plain", {"a/b c.txt": b"hello"})
    assert s3.get_object(Bucket="plain", Key="a/b c.txt")["Body"].read() == b"hello"
    listed = s3.list_objects_v2(Bucket="plain", Prefix="a/")
    assert [o["Key"] for o in listed["Contents"]] == ["a/b c.txt"]

    queue = sqs.create_queue(QueueName="reports")["QueueUrl"]
    assert queue.startswith(emulator_url.replace("127.0.0.1", "localhost")) or \
        queue.startswith(emulator_url)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    topic = sns.create_topic(Name="ferry")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "true"})
    sns.publish(TopicArn=topic, Message="report", Subject="[Ferry] done",
                MessageAttributes={"status": {"DataType": "String",
                                              "StringValue": "SUCCEEDED"}})
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)["Messages"]
    assert messages[0]["Body"] == "report"

    assert sts.get_caller_identity()["Account"] == "123456789012"

    machine = sfn.create_state_machine(name="ferry", definition=DEFINITION,
                                       roleArn=ROLE)["stateMachineArn"]
    started = sfn.start_execution(stateMachineArn=machine, name="job-1", input="{}")
    assert started["executionArn"].endswith(":job-1")


def test_fsx_file_systems_are_moto_s(aws, ctl):
    fsx = aws("fsx")
    fs = fsx.create_file_system(FileSystemType="LUSTRE", StorageCapacity=1200,
                                SubnetIds=["subnet-0123456789abcdef0"],
                                LustreConfiguration={"ImportPath": "s3://x"})["FileSystem"]
    listed = fsx.describe_file_systems()["FileSystems"]
    assert [f["FileSystemId"] for f in listed] == [fs["FileSystemId"]]


def test_health_and_clock_control(ctl):
    health = ctl.health()
    assert health["status"] == "ok" and health["moto"] == "5.2.5"
    before = ctl.clock()["now"]
    after = ctl.advance(seconds=30)["now"]
    assert after == pytest.approx(before + 30)
    assert ctl.advance(steps=2)["now"] == pytest.approx(after + 20)
    with pytest.raises(ControlError):
        ctl.clock(mode="sideways")
    with pytest.raises(ControlError):
        ctl.advance(seconds=-1)


def test_control_api_rejects_bad_requests(emulator_url, ctl):
    with pytest.raises(ControlError, match="404"):
        ctl._call("GET", "/_ferry/nope")
    with pytest.raises(ControlError, match="file_system_id"):
        ctl._call("POST", "/_ferry/fsx/fail", {"count": 1})
    with pytest.raises(ControlError, match="kind"):
        ctl.add_fault(service="fsx", kind="explode")
    request = urllib.request.Request(emulator_url + "/_ferry/faults", data=b"[1, 2",
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request, timeout=10)
    assert excinfo.value.code == 400
