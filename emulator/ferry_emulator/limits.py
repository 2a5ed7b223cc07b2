"""AWS's hard size limits that moto 5.2.5 does not enforce as AWS does. TEST INFRASTRUCTURE.

Every AWS request passes :func:`check` before the extension or moto answers it; a request over
a limit is refused in the service's own protocol, with the service's own error, and moto never
sees it. The limits, one home each:

* DynamoDB items and transactions: :mod:`ferry_emulator.dynamodb`.
* SNS ``Publish``: "the combined size of the message body and message attributes" against the
  topic's ``MaximumMessageSize`` (262,144 bytes unless the topic sets it, 1,024 to 1,048,576);
  over it, "Amazon SNS returns an InvalidParameter error" (SNS Developer Guide, "Publishing large
  messages with Amazon SNS",
  https://docs.aws.amazon.com/sns/latest/dg/large-message-payloads.html; API reference, Publish:
  "messages must be UTF-8 encoded strings ... at most 256 KiB in size (262,144 bytes, not
  262,144 characters)"; MessageAttributeValue: "All parts of the message attribute, including
  name, type, and value, are included in the message size restriction"). moto counts the body's
  characters against 262,144 and ignores attributes and the topic's setting; its own check is
  moved to 1,048,576 (:func:`install_moto_fixes`), the most a topic allows, so that this one
  binds. Answer: HTTP 400 ``InvalidParameter`` "Invalid parameter: Message too long" (moto's
  wording).
  ``PublishBatch``: "The combined size of all messages in the batch, including each message's
  body and attributes, must not exceed the topic's MaximumMessageSize" (API reference,
  PublishBatch), else ``BatchRequestTooLong`` (the model's error for it).
* SQS ``SendMessage``: since 2025 a message may be 1 MiB (API reference, SendMessage:
  "The maximum size is 1 MiB or 1,048,576 bytes"; CreateQueue: ``MaximumMessageSize`` 1,024 to
  1,048,576, default 1,048,576), attributes included ("All parts of the message attribute,
  including Name, Type, and Value, are part of the message size restriction (1 MiB or 1,048,576
  bytes)": API reference, MessageAttributeValue), against the queue's ``MaximumMessageSize``.
  moto counts the body's characters only. Answer: ``InvalidParameterValue`` "One or more
  parameters are invalid. Reason: Message must be shorter than N bytes." (the wording SQS
  answers, and moto's). ``SendMessageBatch``: "The maximum allowed individual message size and
  the maximum total payload size (the sum of the individual lengths of all of the batched
  messages) are both 1 MiB" (API reference), else ``BatchRequestTooLong``; a message over the
  queue's maximum refuses the whole batch (moto's behaviour; strict: the reference does not say
  whether it is one failed entry instead). Message system attributes are not counted ("The size
  of a message system attribute doesn't count towards the total size of a message": API
  reference, SendMessage). Only the JSON protocol (every current SDK's) is checked.
* Step Functions ``StartExecution``: ``input`` "Length constraints apply to the payload size, and
  are expressed as bytes in UTF-8 encoding ... Maximum length of 262144" (API reference,
  StartExecution). moto checks only that it is JSON. The reference names no error for the size:
  ``InvalidExecutionInput`` ("The provided JSON input data is not valid"), the error it names for
  the input. (``SendTaskSuccess``'s ``output`` is checked by :mod:`ferry_emulator.task_tokens`.)
"""

from __future__ import annotations

import base64
from typing import Any, Callable

from . import dynamodb
from .wire import ApiError, AwsRequest

#: Step Functions: an execution's input, a state's or a task's payload (262,144 bytes of UTF-8).
MAX_STATES_PAYLOAD_BYTES = 262_144
#: SNS: a topic's MaximumMessageSize unless it sets one, and the most it may set.
SNS_DEFAULT_MESSAGE_BYTES = 262_144
SNS_MAX_MESSAGE_BYTES = 1_048_576
#: SQS: the largest message, and the largest SendMessageBatch (the sum of its messages).
SQS_MAX_MESSAGE_BYTES = 1_048_576


def install_moto_fixes() -> None:
    """Moves moto's own size checks out of the way of these (idempotent): DynamoDB's
    (:func:`ferry_emulator.dynamodb.install_moto_fixes`) and SNS's 262,144 characters, which would
    refuse what a topic with a larger MaximumMessageSize accepts."""
    from moto.sns import models as sns_models  # noqa: PLC0415 (moto is heavy)

    dynamodb.install_moto_fixes()
    sns_models.MAXIMUM_MESSAGE_LENGTH = SNS_MAX_MESSAGE_BYTES


def _utf8(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def _attribute_size(name: str, value: dict[str, Any]) -> int:
    """A message attribute's size: its name, data type and value (binary: raw bytes)."""
    size = _utf8(name) + _utf8(value.get("DataType", ""))
    if value.get("StringValue") is not None:
        size += _utf8(value["StringValue"])
    if value.get("BinaryValue") is not None:
        size += len(base64.b64decode(value["BinaryValue"]))
    return size


def message_size(body: Any, attributes: dict[str, dict[str, Any]]) -> int:
    """An SNS or SQS message's size: its body in UTF-8 and its attributes."""
    return _utf8(body or "") + sum(_attribute_size(n, v) for n, v in attributes.items())


# ---------------------------------------------------------------------------------- SNS (query)


def _query_attributes(params: dict[str, str], prefix: str) -> dict[str, dict[str, Any]]:
    """`{prefix}MessageAttributes.entry.N.Name` / `.Value.DataType|StringValue|BinaryValue`
    (awsQuery's flattened map) → {name: {"DataType", "StringValue"|"BinaryValue"}}."""
    entries: dict[str, dict[str, Any]] = {}
    head = f"{prefix}MessageAttributes.entry."
    for key, value in params.items():
        if not key.startswith(head):
            continue
        number, _, field = key[len(head):].partition(".")
        entries.setdefault(number, {})[field.removeprefix("Value.")] = value
    return {e["Name"]: e for e in entries.values() if "Name" in e}


def _topic_limit(req: AwsRequest, topic_arn: str | None) -> int:
    """The topic's MaximumMessageSize (moto keeps what CreateTopic/SetTopicAttributes set)."""
    from moto.sns.models import sns_backends  # noqa: PLC0415 (moto is heavy)

    topic = sns_backends[req.account][req.region].topics.get(topic_arn or "")
    configured = getattr(topic, "maximum_message_size", None)
    return int(configured) if configured else SNS_DEFAULT_MESSAGE_BYTES


def _sns_publish(req: AwsRequest) -> None:
    p = req.params
    if p.get("PhoneNumber"):
        return  # SMS has its own rules
    size = message_size(p.get("Message"), _query_attributes(p, ""))
    if size > _topic_limit(req, p.get("TopicArn")):
        raise ApiError("InvalidParameter", "Invalid parameter: Message too long")


def _sns_publish_batch(req: AwsRequest) -> None:
    p = req.params
    numbers = {k.split(".")[2] for k in p if k.startswith("PublishBatchRequestEntries.member.")}
    total = 0
    for number in numbers:
        prefix = f"PublishBatchRequestEntries.member.{number}."
        total += message_size(p.get(f"{prefix}Message"), _query_attributes(p, prefix))
    if total > _topic_limit(req, p.get("TopicArn")):
        raise ApiError("BatchRequestTooLong",
                       "The length of all the batch messages put together is more than the limit.")


# ---------------------------------------------------------------------------------- SQS (JSON)


def _queue_limit(req: AwsRequest) -> int:
    from moto.sqs.models import sqs_backends  # noqa: PLC0415

    name = str(req.params.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
    queue = sqs_backends[req.account][req.region].queues.get(name)
    configured = getattr(queue, "maximum_message_size", None)
    return int(configured) if configured else SQS_MAX_MESSAGE_BYTES


def _too_long_for(limit: int) -> ApiError:
    return ApiError("InvalidParameterValue", "One or more parameters are invalid. Reason: "
                                             f"Message must be shorter than {limit} bytes.")


def _sqs_send_message(req: AwsRequest) -> None:
    limit = _queue_limit(req)
    p = req.params
    if message_size(p.get("MessageBody"), p.get("MessageAttributes") or {}) > limit:
        raise _too_long_for(limit)


def _sqs_send_message_batch(req: AwsRequest) -> None:
    limit = _queue_limit(req)
    sizes = [message_size(e.get("MessageBody"), e.get("MessageAttributes") or {})
             for e in req.params.get("Entries") or []]
    if sum(sizes) > SQS_MAX_MESSAGE_BYTES:
        raise ApiError("BatchRequestTooLong",
                       f"Batch requests cannot be longer than {SQS_MAX_MESSAGE_BYTES} bytes. "
                       f"You have sent {sum(sizes)} bytes.")
    if any(size > limit for size in sizes):
        raise _too_long_for(limit)


# ---------------------------------------------------------------------------------- Step Functions


def _states_start_execution(req: AwsRequest) -> None:
    given = req.params.get("input")
    if isinstance(given, str) and _utf8(given) > MAX_STATES_PAYLOAD_BYTES:
        raise ApiError("InvalidExecutionInput",
                       f"Invalid State Machine Execution Input: {_utf8(given)} bytes of UTF-8, "
                       f"over the maximum of {MAX_STATES_PAYLOAD_BYTES}.", message_key="message")


CHECKS: dict[tuple[str, str], Callable[[AwsRequest], None]] = {
    ("sns", "Publish"): _sns_publish,
    ("sns", "PublishBatch"): _sns_publish_batch,
    ("sqs", "SendMessage"): _sqs_send_message,
    ("sqs", "SendMessageBatch"): _sqs_send_message_batch,
    ("states", "StartExecution"): _states_start_execution,
}


def check(req: AwsRequest) -> None:
    """Raises the service's error (ApiError) when `req` passes one of AWS's size limits."""
    if req.service == "dynamodb":
        dynamodb.check(req)
        return
    run = CHECKS.get((req.service or "", req.operation or ""))
    if run is None or (req.service == "sqs" and req.protocol != "json"):
        return
    try:
        run(req)
    except (KeyError, TypeError, ValueError):
        return  # a request this cannot read: moto answers it (with its own error)
