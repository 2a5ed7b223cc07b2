"""DataSync's EventBridge events (GET /_ferry/events): shape, order, exactly once per change."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest

from conftest import ROLE, STEP, make_bucket
from ferry_emulator.client import EmulatorControl

EXEC_ARN = re.compile(r"^arn:aws:datasync:us-east-1:(\d{12}):task/task-[0-9a-f]{17}/execution/"
                      r"exec-[0-9a-f]{17}$")


@pytest.fixture()
def make_task(ds: Any, s3: Any) -> Any:
    make_bucket(s3, "src-bkt", {"data/a.txt": b"x" * 5, "data/b/c.txt": b"x" * 10})
    make_bucket(s3, "dst-bkt")

    def make(name: str = "ferry-events") -> str:
        src = ds.create_location_s3(S3BucketArn="arn:aws:s3:::src-bkt", Subdirectory="/data",
                                    S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
        dst = ds.create_location_s3(S3BucketArn="arn:aws:s3:::dst-bkt", Subdirectory="/copy",
                                    S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
        return ds.create_task(SourceLocationArn=src, DestinationLocationArn=dst,
                              Name=name)["TaskArn"]

    return make


def events(ctl: EmulatorControl, after: int = 0) -> list[dict[str, Any]]:
    return ctl.events(after)["events"]


def states(ctl: EmulatorControl, arn: str) -> list[str]:
    return [p["event"]["detail"]["State"] for p in events(ctl)
            if p["event"]["resources"] == [arn]]


def test_each_status_change_is_one_event_in_eventbridges_shape(ds, make_task, ctl):
    start = ctl.clock()["now"]
    arn = ds.start_task_execution(TaskArn=make_task())["TaskExecutionArn"]
    ctl.advance(steps=10)
    published = events(ctl)
    assert [p["event"]["detail"] for p in published] == [
        {"State": s} for s in ("LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS")]
    for i, p in enumerate(published):
        event = p["event"]
        assert set(event) == {"version", "id", "detail-type", "source", "account", "time",
                              "region", "resources", "detail"}
        assert event["version"] == "0"
        assert uuid.UUID(event["id"])
        assert event["detail-type"] == "DataSync Task Execution State Change"
        assert event["source"] == "aws.datasync"
        assert event["resources"] == [arn]
        account = EXEC_ARN.match(arn).group(1)
        assert (event["account"], event["region"]) == (account, "us-east-1")
        # The emulated instant of the change, to the second, in UTC.
        assert p["at"] == pytest.approx(start + i * STEP)
        assert event["time"] == dt.datetime.fromtimestamp(
            int(p["at"]), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len({p["event"]["id"] for p in published}) == 5
    assert [p["seq"] for p in published] == sorted(p["seq"] for p in published)


def test_events_appear_as_the_clock_moves_and_none_twice(ds, make_task, ctl):
    arn = ds.start_task_execution(TaskArn=make_task(),
                                  OverrideOptions={"VerifyMode": "NONE"})["TaskExecutionArn"]
    seen = []
    after = 0
    for _ in range(6):
        page = ctl.events(after)
        seen += [p["event"]["detail"]["State"] for p in page["events"]]
        after = page["next"]
        ds.describe_task_execution(TaskExecutionArn=arn)  # a request settles again
        ctl.advance(steps=1)
    assert seen == ["LAUNCHING", "PREPARING", "TRANSFERRING", "SUCCESS"]


def test_a_queued_execution_launches_after_the_first_ends_in_time_order(ds, make_task, ctl):
    task = make_task()
    first = ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    second = ds.start_task_execution(TaskArn=task, Includes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": "/b"}])["TaskExecutionArn"]
    ctl.advance(steps=20)  # both runs settled by one request
    published = events(ctl)
    order = [(p["event"]["resources"][0], p["event"]["detail"]["State"]) for p in published]
    assert order == [
        (first, "LAUNCHING"), (second, "QUEUED"), (first, "PREPARING"), (first, "TRANSFERRING"),
        (first, "VERIFYING"), (first, "SUCCESS"), (second, "LAUNCHING"), (second, "PREPARING"),
        (second, "TRANSFERRING"), (second, "VERIFYING"), (second, "SUCCESS")]
    assert [p["at"] for p in published] == sorted(p["at"] for p in published)


def test_changes_of_several_tasks_settled_together_come_in_time_order(ds, make_task, ctl):
    one = ds.start_task_execution(TaskArn=make_task("one"))["TaskExecutionArn"]
    ctl.advance(steps=0.5)
    two = ds.start_task_execution(TaskArn=make_task("two"))["TaskExecutionArn"]
    ctl.advance(steps=10)
    published = events(ctl)
    assert [p["at"] for p in published] == sorted(p["at"] for p in published)
    names = [p["event"]["resources"][0] for p in published]
    assert names == [one, two] * 5
    assert states(ctl, one) == states(ctl, two) == [
        "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"]


def test_cancelling_is_an_event_then_error(ds, make_task, ctl):
    task = make_task()
    running = ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    queued = ds.start_task_execution(TaskArn=task, Includes=[
        {"FilterType": "SIMPLE_PATTERN", "Value": "/b"}])["TaskExecutionArn"]
    ctl.advance(steps=1)
    ds.cancel_task_execution(TaskExecutionArn=queued)
    ds.cancel_task_execution(TaskExecutionArn=running)
    ctl.advance(steps=3)
    assert states(ctl, running) == ["LAUNCHING", "PREPARING", "CANCELLING", "ERROR"]
    assert states(ctl, queued) == ["QUEUED", "CANCELLING", "ERROR"]


def test_a_held_execution_publishes_nothing_until_released_and_each_change_once(
        ds, make_task, ctl):
    task = make_task()
    arn = ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    ctl.hold(task_arn=task)
    ctl.advance(steps=2)
    assert states(ctl, arn) == ["LAUNCHING", "PREPARING", "TRANSFERRING"]
    ctl.advance(steps=10)
    ds.describe_task_execution(TaskExecutionArn=arn)
    assert states(ctl, arn) == ["LAUNCHING", "PREPARING", "TRANSFERRING"]
    ctl.release(task_arn=task)
    ctl.release(task_arn=task)
    ctl.advance(steps=5)
    assert states(ctl, arn) == ["LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"]


def test_an_injected_failure_ends_in_an_error_event(ds, make_task, ctl):
    task = make_task()
    ctl.datasync_fail(task, error_code="S3AccessDenied", phase="PREPARING")
    arn = ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
    ctl.advance(steps=5)
    assert states(ctl, arn) == ["LAUNCHING", "PREPARING", "ERROR"]


def test_after_next_and_limit_page_and_a_reset_never_reuses_numbers(ds, make_task, ctl):
    ds.start_task_execution(TaskArn=make_task())
    ctl.advance(steps=10)
    everything = ctl.events(0)
    assert len(everything["events"]) == 5
    first = ctl.events(0, limit=2)
    assert [p["seq"] for p in first["events"]] == [p["seq"] for p in everything["events"][:2]]
    rest = ctl.events(first["next"])
    assert rest["events"] == everything["events"][2:]
    assert ctl.events(everything["next"]) == {"events": [], "next": everything["next"]}

    ctl.reset()
    assert ctl.events(0)["events"] == []
    ctl.clock(mode="manual", step_seconds=STEP)
    ds.start_task_execution(TaskArn=make_task())
    later = ctl.events(everything["next"])["events"]
    assert [p["event"]["detail"]["State"] for p in later] == ["LAUNCHING"]
    assert later[0]["seq"] > everything["next"]
