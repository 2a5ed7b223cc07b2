"""Message and payload sizes moto 5.2.5 does not check as AWS does (ferry_emulator.limits): SNS
Publish and PublishBatch against the topic's MaximumMessageSize, SQS SendMessage and
SendMessageBatch against 1 MiB and the queue's, and StartExecution's input; all in UTF-8 bytes,
message attributes included. moto alone accepts every refused case here (it counts characters
and ignores attributes, or does not check at all)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from conftest import ROLE

SNS_DEFAULT = 262_144
SQS_MAX = 1_048_576


def refused(call: Any, code: str, status: int = 400) -> dict[str, Any]:
    with pytest.raises(ClientError) as excinfo:
        call()
    response = excinfo.value.response
    assert response["Error"]["Code"] == code
    assert response["ResponseMetadata"]["HTTPStatusCode"] == status
    return response


def attribute(value: str) -> dict[str, Any]:
    return {"DataType": "String", "StringValue": value}


# ------------------------------------------------------------------------------ SNS


@pytest.fixture()
def sns(aws: Any) -> Any:
    return aws("sns")


@pytest.fixture()
def topic(sns: Any) -> str:
    return sns.create_topic(Name="ferry-reports")["TopicArn"]


def test_sns_publish_is_at_most_262144_bytes_by_default(sns, topic):
    sns.publish(TopicArn=topic, Message="a" * SNS_DEFAULT)
    response = refused(lambda: sns.publish(TopicArn=topic, Message="a" * (SNS_DEFAULT + 1)),
                       "InvalidParameter")
    assert response["Error"]["Message"] == "Invalid parameter: Message too long"
    # Bytes, not characters: 131,073 "é" are 262,146 bytes.
    refused(lambda: sns.publish(TopicArn=topic, Message="é" * 131_073), "InvalidParameter")
    sns.publish(TopicArn=topic, Message="é" * 131_072)


def test_sns_counts_attribute_names_types_and_values(sns, topic):
    attributes = {"status": attribute("SUCCEEDED")}  # 6 + 6 + 9 bytes
    body = SNS_DEFAULT - 21
    sns.publish(TopicArn=topic, Message="a" * body, MessageAttributes=attributes)
    refused(lambda: sns.publish(TopicArn=topic, Message="a" * (body + 1),
                                MessageAttributes=attributes), "InvalidParameter")
    binary = {"blob": {"DataType": "Binary", "BinaryValue": b"\x00" * 100}}  # 4 + 6 + 100
    refused(lambda: sns.publish(TopicArn=topic, Message="a" * (SNS_DEFAULT - 109),
                                MessageAttributes=binary), "InvalidParameter")


def test_sns_follows_the_topics_maximum_message_size(sns):
    small = sns.create_topic(Name="small", Attributes={"MaximumMessageSize": "1024"})["TopicArn"]
    sns.publish(TopicArn=small, Message="a" * 1024)
    refused(lambda: sns.publish(TopicArn=small, Message="a" * 1025), "InvalidParameter")
    large = sns.create_topic(Name="large")["TopicArn"]
    sns.set_topic_attributes(TopicArn=large, AttributeName="MaximumMessageSize",
                             AttributeValue="1048576")
    sns.publish(TopicArn=large, Message="a" * 500_000)


def test_sns_publish_batch_is_at_most_the_topics_size_in_all(sns, topic):
    entries = [{"Id": str(i), "Message": "a" * 100_000} for i in range(2)]
    assert len(sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries)[
        "Successful"]) == 2
    entries.append({"Id": "2", "Message": "a" * 62_145,
                    "MessageAttributes": {"k": attribute("v")}})
    refused(lambda: sns.publish_batch(TopicArn=topic, PublishBatchRequestEntries=entries),
            "BatchRequestTooLong")


# ------------------------------------------------------------------------------ SQS


@pytest.fixture()
def sqs(aws: Any) -> Any:
    return aws("sqs")


@pytest.fixture()
def queue(sqs: Any) -> str:
    return sqs.create_queue(QueueName="uploads")["QueueUrl"]


def test_sqs_messages_are_at_most_1_mib_in_utf8_bytes(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="a" * SQS_MAX)
    response = refused(lambda: sqs.send_message(QueueUrl=queue, MessageBody="a" * (SQS_MAX + 1)),
                       "InvalidParameterValue")
    assert response["Error"]["Message"] == (
        "One or more parameters are invalid. Reason: Message must be shorter than 1048576 bytes.")
    refused(lambda: sqs.send_message(QueueUrl=queue, MessageBody="é" * 524_289),
            "InvalidParameterValue")


def test_sqs_counts_attributes_and_follows_the_queues_maximum(sqs):
    small = sqs.create_queue(QueueName="small",
                             Attributes={"MaximumMessageSize": "262144"})["QueueUrl"]
    attributes = {"kind": attribute("import")}  # 4 + 6 + 6 bytes
    sqs.send_message(QueueUrl=small, MessageBody="a" * (262_144 - 16),
                     MessageAttributes=attributes)
    response = refused(lambda: sqs.send_message(QueueUrl=small, MessageBody="a" * (262_144 - 15),
                                                MessageAttributes=attributes),
                       "InvalidParameterValue")
    assert "shorter than 262144 bytes" in response["Error"]["Message"]
    binary = {"raw": {"DataType": "Binary", "BinaryValue": base64.b64decode("AAEC")}}  # 3+6+3
    refused(lambda: sqs.send_message(QueueUrl=small, MessageBody="a" * (262_144 - 11),
                                     MessageAttributes=binary), "InvalidParameterValue")


def test_sqs_batches_are_at_most_1_mib_in_all(sqs, queue):
    entries = [{"Id": str(i), "MessageBody": "a" * 500_000} for i in range(2)]
    sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    entries.append({"Id": "2", "MessageBody": "é" * 24_289})  # 48,578 bytes: 1,048,578 in all
    response = refused(lambda: sqs.send_message_batch(QueueUrl=queue, Entries=entries),
                       "BatchRequestTooLong")
    assert "1048578 bytes" in response["Error"]["Message"]


# ------------------------------------------------------------------------------ Step Functions


def test_start_execution_input_is_at_most_262144_bytes(aws, ctl):
    sfn = aws("stepfunctions")
    machine = sfn.create_state_machine(
        name="ferry", roleArn=ROLE,
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
    )["stateMachineArn"]
    def text(pad: str) -> str:
        return json.dumps({"pad": pad}, ensure_ascii=False, separators=(",", ":"))

    largest = text("é" * 131_067)  # 262,144 bytes in 131,077 characters
    assert len(largest.encode()) == 262_144
    sfn.start_execution(stateMachineArn=machine, name="at", input=largest)
    response = refused(
        lambda: sfn.start_execution(stateMachineArn=machine, name="over",
                                    input=text("é" * 131_067 + "a")),
        "InvalidExecutionInput")
    assert "262145 bytes" in response["Error"]["Message"]
    names = [e["name"] for e in sfn.list_executions(stateMachineArn=machine)["executions"]]
    assert names == ["at"]
