"""Step Functions task tokens: SendTaskSuccess/Failure/Heartbeat against tokens the local runner
registers (boto3, awsJson 1.0), and the control API the runner uses."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ferry_emulator.client import ControlError, EmulatorControl

EXECUTION = "arn:aws:states:us-east-1:123456789012:execution:ferry:run-1"


@pytest.fixture()
def sfn(aws: Any) -> Any:
    return aws("stepfunctions")


@pytest.fixture()
def token(ctl: EmulatorControl) -> str:
    value = "AQCEAAAAKgAAAA" + "x" * 100
    ctl.register_task_token(value, EXECUTION, "AwaitEnd")
    return value


def code(excinfo: pytest.ExceptionInfo) -> str:
    response = excinfo.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]["Code"]


def raw_call(url: str, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A request boto3 would refuse to send (its own validation): the emulator's answer."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers={
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"AWSStepFunctions.{operation}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/states/"
                         "aws4_request, SignedHeaders=host, Signature=0"})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_an_unknown_token_is_invalid_for_every_operation(sfn, ctl):
    for call in (lambda: sfn.send_task_success(taskToken="nope", output="{}"),
                 lambda: sfn.send_task_failure(taskToken="nope", error="E"),
                 lambda: sfn.send_task_heartbeat(taskToken="nope")):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert code(excinfo) == "InvalidToken"
    calls = ctl.task_tokens()["calls"]
    assert [(c["operation"], c["error"]) for c in calls] == [
        ("SendTaskSuccess", "InvalidToken"), ("SendTaskFailure", "InvalidToken"),
        ("SendTaskHeartbeat", "InvalidToken")]


def test_success_gives_the_output_and_closes_the_task(sfn, ctl, token):
    assert ctl.task_token(token)["status"] == "waiting"
    answer = sfn.send_task_success(taskToken=token, output='{"state": "SUCCESS", "n": [1, 2]}')
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    record = ctl.task_token(token)
    assert record["status"] == "succeeded"
    assert record["output"] == {"state": "SUCCESS", "n": [1, 2]}
    assert (record["execution"], record["state"]) == (EXECUTION, "AwaitEnd")
    # The task has ended: every later call is told so.
    for call in (lambda: sfn.send_task_success(taskToken=token, output="{}"),
                 lambda: sfn.send_task_failure(taskToken=token),
                 lambda: sfn.send_task_heartbeat(taskToken=token)):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert code(excinfo) == "TaskTimedOut"
    assert ctl.task_token(token)["calls"] == {
        "SendTaskFailure": 1, "SendTaskHeartbeat": 1, "SendTaskSuccess": 2}
    assert ctl.task_token(token)["output"] == {"state": "SUCCESS", "n": [1, 2]}


def test_failure_gives_error_and_cause(sfn, ctl, token):
    sfn.send_task_failure(taskToken=token, error="Ferry.Failed", cause="the run broke")
    record = ctl.task_token(token)
    assert (record["status"], record["error"], record["cause"]) == (
        "failed", "Ferry.Failed", "the run broke")


def test_heartbeats_move_the_heartbeat_clock_and_are_counted(sfn, ctl, token):
    registered = ctl.task_token(token)
    assert registered["last_heartbeat"] == registered["registered_at"]
    time.sleep(0.01)
    assert sfn.send_task_heartbeat(taskToken=token)["ResponseMetadata"]["HTTPStatusCode"] == 200
    sfn.send_task_heartbeat(taskToken=token)
    record = ctl.task_token(token)
    assert record["status"] == "waiting"
    assert record["last_heartbeat"] > registered["last_heartbeat"]
    assert record["calls"]["SendTaskHeartbeat"] == 2


def test_a_token_the_runner_closed_answers_task_timed_out(sfn, ctl, token):
    closed = ctl.close_task_token(token, "timed_out", error="States.HeartbeatTimeout")
    assert closed["status"] == "timed_out"
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken=token, output="{}")
    assert code(excinfo) == "TaskTimedOut"


def test_an_answer_that_came_first_wins_over_a_close(sfn, ctl, token):
    sfn.send_task_success(taskToken=token, output='"done"')
    assert ctl.close_task_token(token, "timed_out")["status"] == "succeeded"
    assert ctl.task_token(token)["output"] == "done"


def test_output_must_be_json_of_at_most_262144_bytes(sfn, ctl, token):
    for bad in ("not json", '"' + "a" * 262_143 + '"'):
        with pytest.raises(ClientError) as excinfo:
            sfn.send_task_success(taskToken=token, output=bad)
        assert code(excinfo) == "InvalidOutput"
    assert ctl.task_token(token)["status"] == "waiting"
    largest = '"' + "é" * 131_071 + '"'  # 262,144 bytes in UTF-8
    sfn.send_task_success(taskToken=token, output=largest)
    assert ctl.task_token(token)["status"] == "succeeded"


def test_length_constraints_are_validation_errors(sfn, ctl, emulator_url, token):
    status, body = raw_call(emulator_url, "SendTaskHeartbeat", {"taskToken": ""})
    assert (status, body["__type"]) == (400, "ValidationException")
    status, body = raw_call(emulator_url, "SendTaskSuccess",
                            {"taskToken": "t" * 2049, "output": "{}"})
    assert (status, body["__type"]) == (400, "ValidationException")
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_failure(taskToken=token, error="E" * 257)
    assert code(excinfo) == "ValidationException"
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_failure(taskToken=token, cause="c" * 32_769)
    assert code(excinfo) == "ValidationException"
    sfn.send_task_failure(taskToken=token, error="E" * 256, cause="c" * 32_768)
    assert ctl.task_token(token)["status"] == "failed"


def test_fault_rules_reach_the_callback_api(sfn, ctl, token):
    ctl.throttle("states", "SendTaskSuccess", count=1)
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_success(taskToken=token, output="{}")
    assert code(excinfo) == "ThrottlingException"
    sfn.send_task_success(taskToken=token, output="{}")
    assert ctl.task_token(token)["status"] == "succeeded"


def test_the_control_api_refuses_what_the_runner_must_not_do(ctl, token):
    with pytest.raises(ControlError, match="already registered"):
        ctl.register_task_token(token, EXECUTION, "AwaitEnd")
    with pytest.raises(ControlError, match="HTTP 404"):
        ctl.task_token("never-registered")
    with pytest.raises(ControlError, match="status must be"):
        ctl.close_task_token(token, "succeeded")
    listed = ctl.task_tokens()["tokens"]
    assert [t["token"] for t in listed] == [token]


def test_a_reset_forgets_every_token(sfn, ctl, token):
    ctl.reset()
    with pytest.raises(ClientError) as excinfo:
        sfn.send_task_heartbeat(taskToken=token)
    assert code(excinfo) == "InvalidToken"
