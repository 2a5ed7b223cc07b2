"""IAM for the emulated DataSync (ferry_emulator.iam): the evaluator itself, then DataSync calls
signed with a registered key, allowed and refused as AWS would."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import ROLE, make_bucket
from ferry_emulator.iam import Request, allowed, check_policy

# moto's DataSync ARNs hold this account, whoever calls.
TASKS = "arn:aws:datasync:us-east-1:111222333444:task/*"
EXECUTIONS = "arn:aws:datasync:us-east-1:111222333444:task/*/execution/*"
LOCATIONS = "arn:aws:datasync:us-east-1:111222333444:location/*"


def st(action: Any, resource: Any, condition: dict[str, Any] | None = None,
       effect: str = "Allow") -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect, "Action": action, "Resource": resource}
    if condition:
        out["Condition"] = condition
    return out


def test_an_action_and_resource_match_with_wildcards_and_nothing_else_is_allowed() -> None:
    policy = [st(["datasync:Describe*"], [EXECUTIONS])]
    execution = "arn:aws:datasync:us-east-1:111222333444:task/task-1/execution/exec-1"
    assert allowed(policy, Request("datasync:DescribeTaskExecution", execution, {}))
    # Actions match case-insensitively ("Action element"); resources do not.
    assert allowed(policy, Request("DataSync:describetaskexecution", execution, {}))
    assert not allowed(policy, Request("datasync:CancelTaskExecution", execution, {}))
    assert not allowed(policy, Request("datasync:DescribeTaskExecution",
                                       "arn:aws:datasync:us-east-1:111222333444:task/task-1",
                                       {}))
    assert not allowed([], Request("datasync:DescribeTask", TASKS, {}))


def test_a_deny_wins_over_an_allow() -> None:
    policy = [st("datasync:*", "*"), st("datasync:UpdateTask", TASKS, effect="Deny")]
    task = "arn:aws:datasync:us-east-1:111222333444:task/task-1"
    assert allowed(policy, Request("datasync:DescribeTask", task, {}))
    assert not allowed(policy, Request("datasync:UpdateTask", task, {}))


def test_conditions_hold_all_together_and_an_absent_key_matches_only_null() -> None:
    tagged = {"Null": {"aws:ResourceTag/ferry:task-name": "false"}}
    task = "arn:aws:datasync:us-east-1:111222333444:task/task-1"
    policy = [st("datasync:UpdateTask", TASKS, tagged)]
    assert allowed(policy, Request("datasync:UpdateTask", task,
                                   {"aws:ResourceTag/ferry:task-name": "nightly"}))
    assert not allowed(policy, Request("datasync:UpdateTask", task, {}))
    both = {"Null": {"aws:ResourceTag/a": "false"}, "StringEquals": {"aws:RequestTag/b": "x"}}
    policy = [st("datasync:TagResource", TASKS, both)]
    assert allowed(policy, Request("datasync:TagResource", task,
                                   {"aws:ResourceTag/a": "1", "aws:RequestTag/b": "x"}))
    assert not allowed(policy, Request("datasync:TagResource", task, {"aws:ResourceTag/a": "1"}))
    assert not allowed(policy, Request("datasync:TagResource", task,
                                       {"aws:ResourceTag/a": "1", "aws:RequestTag/b": "y"}))
    # Values listed for one key are OR-ed; Like takes IAM's wildcards.
    like = [st("datasync:TagResource", TASKS, {"StringLike": {"aws:RequestTag/b": ["x", "z*"]}})]
    assert allowed(like, Request("datasync:TagResource", task, {"aws:RequestTag/b": "zed"}))
    assert not allowed(like, Request("datasync:TagResource", task, {"aws:RequestTag/b": "y"}))
    # StringNotEquals on an absent key is false too ("Condition element").
    unless = [st("datasync:TagResource", TASKS, {"StringNotEquals": {"aws:RequestTag/b": "x"}})]
    assert not allowed(unless, Request("datasync:TagResource", task, {}))


@pytest.mark.parametrize(("statement", "words"), [
    (st("datasync:X", "*", {"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}),
     "ForAnyValue:StringEquals is not evaluated"),
    ({"Effect": "Allow", "NotAction": "s3:*", "Resource": "*"}, "NotAction"),
    (st("datasync:X", {"Fn::Split": [",", "a,b"]}), "intrinsic function left unevaluated"),
    ({"Effect": "Maybe", "Action": "datasync:X", "Resource": "*"}, "Effect"),
])
def test_a_policy_it_cannot_evaluate_is_refused_not_ignored(statement: dict[str, Any],
                                                            words: str) -> None:
    with pytest.raises(ValueError, match=words):
        check_policy([statement])


# ----------------------------------------------------------------- through the emulator


@pytest.fixture()
def locations(ds: Any, s3: Any) -> tuple[str, str]:
    make_bucket(s3, "iam-src", {"a.txt": b"a"})
    make_bucket(s3, "iam-dst")
    return tuple(ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{b}",
                                       S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
                 for b in ("iam-src", "iam-dst"))


def as_key(emulator_url: str, key: str) -> Any:
    return boto3.client("datasync", endpoint_url=emulator_url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key="secret")


def denied(call: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call()
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    return raised.value.response["Error"]["Message"]


def test_a_registered_key_is_held_to_its_tag_scoped_policy(ctl: Any, ds: Any, emulator_url: str,
                                                           locations: tuple[str, str]) -> None:
    """The statements Ferry's template gives start-task and task-status under
    ManageDataSyncTasks, in short: create only tasks tagged ferry:task-name, update and start only
    those, start only executions tagged ferry:idempotency-key, describe only those."""
    name = {"Null": {"aws:ResourceTag/ferry:task-name": "false"}}
    ctl.register_policy("AKIASTARTTASK", [
        st("datasync:CreateTask", [TASKS, LOCATIONS],
           {"Null": {"aws:RequestTag/ferry:task-name": "false"}}),
        st("datasync:TagResource", TASKS, {"Null": {"aws:RequestTag/ferry:task-name": "false"}}),
        st("datasync:TagResource", EXECUTIONS,
           {"Null": {"aws:RequestTag/ferry:idempotency-key": "false"}}),
        st(["datasync:UpdateTask", "datasync:DescribeTask"], TASKS, name),
        st("datasync:StartTaskExecution", TASKS,
           {"Null": {"aws:ResourceTag/ferry:task-name": "false",
                     "aws:RequestTag/ferry:idempotency-key": "false"}}),
        st("datasync:DescribeTaskExecution", EXECUTIONS,
           {"Null": {"aws:ResourceTag/ferry:idempotency-key": "false"}}),
    ], principal="arn:aws:sts::123456789012:assumed-role/start-task/ferry-start-task")
    ferry = as_key(emulator_url, "AKIASTARTTASK")
    src, dst = locations
    # Untagged: refused, in AWS's words.
    message = denied(lambda: ferry.create_task(SourceLocationArn=src, DestinationLocationArn=dst,
                                               Name="plain"))
    assert message.startswith("User: arn:aws:sts::123456789012:assumed-role/start-task/"
                              "ferry-start-task is not authorized to perform: "
                              "datasync:CreateTask on resource: arn:aws:datasync:"), message
    mine = ferry.create_task(SourceLocationArn=src, DestinationLocationArn=dst, Name="mine",
                             Tags=[{"Key": "ferry:task-name", "Value": "mine"}])["TaskArn"]
    ferry.update_task(TaskArn=mine, Name="mine-2")
    theirs = ds.create_task(SourceLocationArn=src, DestinationLocationArn=dst,
                            Name="theirs")["TaskArn"]
    denied(lambda: ferry.update_task(TaskArn=theirs, Name="taken"))
    denied(lambda: ferry.describe_task(TaskArn=theirs))
    denied(lambda: ferry.start_task_execution(
        TaskArn=theirs, Tags=[{"Key": "ferry:idempotency-key", "Value": "k1"}]))
    # A start without Ferry's execution tag is refused even on Ferry's own task.
    denied(lambda: ferry.start_task_execution(TaskArn=mine))
    started = ferry.start_task_execution(
        TaskArn=mine, Tags=[{"Key": "ferry:idempotency-key", "Value": "k2"}])["TaskExecutionArn"]
    assert ferry.describe_task_execution(TaskExecutionArn=started)["Status"]
    # An execution someone else started on the same task cannot be read.
    ds.cancel_task_execution(TaskExecutionArn=started)
    ctl.advance(steps=5)
    other = ds.start_task_execution(TaskArn=mine)["TaskExecutionArn"]
    denied(lambda: ferry.describe_task_execution(TaskExecutionArn=other))
    # The test's own key is not checked; every refusal is recorded.
    assert ds.describe_task_execution(TaskExecutionArn=other)["Status"]
    refused = ctl.iam()["denied"]
    assert [(d["action"], d["resource"] == theirs) for d in refused] == [
        ("datasync:CreateTask", False), ("datasync:UpdateTask", True),
        ("datasync:DescribeTask", True), ("datasync:StartTaskExecution", True),
        ("datasync:StartTaskExecution", False), ("datasync:DescribeTaskExecution", False)]
    ctl.reset()
    assert ctl.iam() == {"keys": [], "denied": []}
