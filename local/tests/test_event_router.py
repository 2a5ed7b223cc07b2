"""The event router (ferry_local.eventbridge): DataSync's events, through template.yaml's rule,
to a function, and the faults it injects on the way.

Most cases feed the router from an in-memory bus and record what it invokes (no emulator, no
functions); the last one reads the real emulator's events of a real DataSync execution.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Iterator

import pytest

from ferry_local import processes, template
from ferry_local.emulator_process import DATASYNC_ACCOUNT, Emulator
from ferry_local.eventbridge import EventRouter
from ferry_local.eventpattern import EventPattern
from ferry_local.ferry import DATASYNC_CHECK_SCHEDULE, DATASYNC_EVENT_RULE, ROLE
from ferry_local.lambdas import Invocation

TASK = "arn:aws:datasync:us-east-1:111222333444:task/task-00000000000000001"
#: Faults' seconds last this fraction of real seconds here.
SCALE = 0.05


class Bus:
    """Stands in for `EmulatorControl.events`: what the emulator would have published."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self._seq = itertools.count(1)

    def publish(self, execution: int, state: str) -> None:
        arn = f"{TASK}/execution/exec-{execution:017x}"
        self.published.append({"seq": next(self._seq), "at": time.time(), "event": {
            "version": "0", "id": f"id-{len(self.published)}",
            "detail-type": "DataSync Task Execution State Change", "source": "aws.datasync",
            "account": DATASYNC_ACCOUNT, "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
            "resources": [arn], "detail": {"State": state}}})

    def __call__(self, after: int) -> dict[str, Any]:
        found = [p for p in self.published if p["seq"] > after]
        return {"events": found, "next": found[-1]["seq"] if found else after}


@pytest.fixture()
def bus() -> Bus:
    return Bus()


@pytest.fixture()
def invoked() -> list[dict[str, Any]]:
    return []


@pytest.fixture()
def router(bus: Bus, invoked: list[dict[str, Any]]) -> Iterator[EventRouter]:
    rule = template.event_rule(DATASYNC_EVENT_RULE, account=DATASYNC_ACCOUNT)

    def invoke(event: dict[str, Any]) -> Invocation:
        invoked.append(event)
        return Invocation(payload={"woken": 1})

    r = EventRouter(bus, EventPattern(rule.pattern), invoke, time_scale=SCALE).start()
    yield r
    r.stop()


def executions_and_states(events: list[dict[str, Any]]) -> list[tuple[int, str]]:
    return [(int(e["resources"][0].rsplit("-", 1)[1], 16), e["detail"]["State"]) for e in events]


def wait_for(router: EventRouter, count: int, what: str) -> None:
    processes.wait_for(lambda: len(router.deliveries) >= count, 5, what=what)


def test_only_the_rules_events_reach_the_function_once_in_order(bus, router, invoked):
    for state in ("LAUNCHING", "PREPARING", "TRANSFERRING", "SUCCESS"):
        bus.publish(1, state)
    bus.publish(2, "ERROR")
    wait_for(router, 2, "two deliveries")
    time.sleep(0.2)
    assert executions_and_states(invoked) == [(1, "SUCCESS"), (2, "ERROR")]
    assert [r.fate for r in router.routed] == ["unmatched"] * 3 + ["routed"] * 2
    first = router.deliveries[0]
    assert first.invocation.payload == {"woken": 1}
    assert first.at <= first.read_at <= first.delivered_at <= first.answered_at
    assert (first.state, first.copy) == ("SUCCESS", 1)
    assert router.deliveries_of(f"{TASK}/execution/exec-{2:017x}")[0].state == "ERROR"


def test_dropped_events_never_arrive(bus, router, invoked):
    router.drop()
    bus.publish(1, "SUCCESS")
    processes.wait_for(lambda: router.routed, 5, what="the event read")
    time.sleep(0.2)
    assert invoked == []
    assert router.routed[0].fate == "dropped"


def test_a_seeded_fraction_is_dropped_the_same_way_each_time(bus, invoked):
    rule = template.event_rule(DATASYNC_EVENT_RULE, account=DATASYNC_ACCOUNT)
    for n in range(40):
        bus.publish(n, "SUCCESS")
    fates = []
    for _ in range(2):
        r = EventRouter(bus, EventPattern(rule.pattern), lambda e: Invocation(payload=None))
        r.drop(0.5, seed=7)
        r.start()
        processes.wait_for(lambda r=r: len(r.routed) == 40, 5, what="40 events read")
        r.stop()
        fates.append([e.fate for e in r.routed])
    assert fates[0] == fates[1]
    assert 5 < fates[0].count("dropped") < 35


def test_duplicates_arrive_one_after_the_other(bus, router, invoked):
    router.duplicate(3)
    bus.publish(1, "SUCCESS")
    bus.publish(2, "SUCCESS")
    wait_for(router, 6, "six deliveries")
    assert executions_and_states(invoked) == [(1, "SUCCESS")] * 3 + [(2, "SUCCESS")] * 3
    assert [d.copy for d in router.deliveries] == [1, 2, 3, 1, 2, 3]


def test_delayed_events_arrive_that_much_later_scaled(bus, router, invoked):
    router.delay(10)  # 10 deployed seconds: 0.5 s here
    bus.publish(1, "SUCCESS")
    wait_for(router, 1, "the delayed delivery")
    delivery = router.deliveries[0]
    assert delivery.delivered_at - delivery.read_at >= 10 * SCALE


def test_reordered_events_arrive_newest_first_and_a_lone_one_is_let_go(bus, router, invoked):
    router.reorder(batch=3, max_hold_seconds=20)  # held at most 1 s here
    for n in (1, 2, 3):
        bus.publish(n, "SUCCESS")
    wait_for(router, 3, "the batch")
    assert executions_and_states(invoked) == [(3, "SUCCESS"), (2, "SUCCESS"), (1, "SUCCESS")]
    bus.publish(4, "ERROR")
    wait_for(router, 4, "the lone event, after max_hold_seconds")
    lone = router.deliveries[3]
    assert lone.delivered_at - lone.read_at >= 20 * SCALE


def test_clearing_the_faults_lets_held_events_go(bus, router, invoked):
    router.reorder(batch=5)
    router.duplicate(2)
    bus.publish(1, "SUCCESS")
    bus.publish(2, "SUCCESS")
    processes.wait_for(lambda: len(router.routed) == 2, 5, what="two events read")
    time.sleep(0.2)
    assert invoked == []
    router.clear_faults()
    wait_for(router, 4, "the held events")
    assert executions_and_states(invoked) == [(2, "SUCCESS")] * 2 + [(1, "SUCCESS")] * 2
    bus.publish(3, "SUCCESS")
    wait_for(router, 5, "an event after the faults were cleared")
    assert executions_and_states(invoked[4:]) == [(3, "SUCCESS")]


def test_the_rule_and_the_check_schedule_reach_datasync_event_as_the_template_says():
    rule = template.event_rule(DATASYNC_EVENT_RULE, account=DATASYNC_ACCOUNT)
    assert rule.binary == template.schedule_target(DATASYNC_CHECK_SCHEDULE) \
        == "ferry-datasync-event"
    assert template.schedule_input(DATASYNC_CHECK_SCHEDULE, {}) == {"check": {}}


def test_faults_refuse_nonsense(router):
    for call in (lambda: router.drop(1.5), lambda: router.duplicate(0),
                 lambda: router.delay(-1), lambda: router.reorder(1)):
        with pytest.raises(ValueError):
            call()


def test_a_real_datasync_execution_sends_its_end_through_the_rule(tmp_path, invoked):
    with Emulator(tmp_path) as emulator:
        emulator.ctl.clock(mode="fast", step_seconds=0.1)
        s3, ds = emulator.client("s3"), emulator.client("datasync")
        for bucket in ("router-src", "router-dst"):
            s3.create_bucket(Bucket=bucket)
        s3.put_object(Bucket="router-src", Key="data/a.txt", Body=b"a")
        locations = [ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{b}", Subdirectory="/",
                                           S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
                     for b in ("router-src", "router-dst")]
        task = ds.create_task(SourceLocationArn=locations[0], DestinationLocationArn=locations[1],
                              Name="router")["TaskArn"]
        rule = template.event_rule(DATASYNC_EVENT_RULE, account=DATASYNC_ACCOUNT)
        router = EventRouter(emulator.ctl.events, EventPattern(rule.pattern),
                             lambda e: invoked.append(e) or Invocation(payload=None)).start()
        try:
            execution = ds.start_task_execution(TaskArn=task)["TaskExecutionArn"]
            wait_for(router, 1, "the execution's end event")
            time.sleep(0.2)
        finally:
            router.stop()
    assert [e["detail"]["State"] for e in invoked] == ["SUCCESS"]
    assert invoked[0]["resources"] == [execution]
    assert [r.event["detail"]["State"] for r in router.routed] == [
        "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "SUCCESS"]
