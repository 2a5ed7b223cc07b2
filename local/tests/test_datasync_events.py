"""DataSync runs end the moment DataSync says so (issue 18), end to end: the emulator's DataSync
publishes its execution state changes, the harness routes them through template.yaml's rule to
the real `datasync-event` function, which completes the task token the real runner (AwaitEnd)
left in the lane table.

- An end event that arrives wakes the runner at once: noticed within 5 s (real seconds: the
  event's path does not scale with the emulated clock), one status check after the wait and no
  poll in between.
- With every event dropped, the run still ends: through the check (`{"check": {}}`), and with
  no check either, through the fallback (FERRY_DATASYNC_FALLBACK_POLL_SECONDS, 10 s here).
- Duplicate and out-of-order events change nothing; an event for an execution Ferry does not
  follow is ignored.
"""

from __future__ import annotations

import time
from typing import Any

from conftest import DATASYNC_FALLBACK_SECONDS, World, report_of, submitted
from ferry_local import processes
from ferry_local.ferry import LocalFerry, lane_of_task, unique
from ferry_local.statemachine import Run

#: The fallback the session's functions run with (conftest), in real seconds.
FALLBACK_SECONDS = DATASYNC_FALLBACK_SECONDS
#: How soon an end event must be noticed (issue 18).
DETECTION_SECONDS = 5.0


def held_run(ferry: LocalFerry, world: World, name: str) -> tuple[str, str, Run]:
    """A DataSync job whose execution the emulator holds (TRANSFERRING) and whose runner waits
    in AwaitEnd: (job id, lane, the runner's execution)."""
    task_arn = ferry.datasync_task(unique(name), world.data_bucket, f"/{name}",
                                   world.archive_bucket, f"/{name}")
    lane = lane_of_task(task_arn)
    ferry.ctl.hold(task_arn=task_arn)
    job = submitted(ferry, {"name": unique(name), "kind": "datasync", "task_arn": task_arn})
    processes.wait_for(lambda: ferry.runners(lane), 30, interval=0.1, what="a runner")
    [runner] = ferry.runners(lane)
    runner.wait_until(lambda r: waiting(r), 60, what="the runner waiting in AwaitEnd")
    return job, lane, runner


def waiting(run: Run) -> bool:
    """The runner is in AwaitEnd (entered, not left)."""
    entered = run.count("StateEntered", "AwaitEnd")
    return entered > 0 and entered > run.count("StateExited", "AwaitEnd") + len(run.errors("AwaitEnd"))


def after_last_wait(run: Run) -> list[str]:
    path = run.path
    last = len(path) - 1 - path[::-1].index("AwaitEnd")
    return path[last:]


def entered_at(run: Run, state: str) -> float:
    return next(e["received_at"] for e in run.events
                if e["type"] == "StateEntered" and e.get("state") == state)


def end_delivery(ferry: LocalFerry, execution: str, state: str = "SUCCESS") -> Any:
    found = [d for d in ferry.router.deliveries_of(execution) if d.state == state]
    assert found, f"no {state} event delivered for {execution}"
    return found[0]


def execution_of(run: Run) -> str:
    return run.started["task"]["task_execution_arn"]


def test_an_end_event_wakes_the_waiting_runner_with_no_poll_between(
        world: World, ferry: LocalFerry, reports: Any) -> None:
    job, lane, runner = held_run(ferry, world, "ev-wake")
    polls = runner.count("StateEntered", "GetStatus")
    time.sleep(1.0)
    assert runner.count("StateEntered", "GetStatus") == polls, "no poll while it waits"
    released = time.time()
    ferry.ctl.release(task_arn=lane.removeprefix("datasync:"))
    jobs = ferry.settle(lane, jobs=1)
    assert jobs[job]["state"] == "succeeded"
    assert after_last_wait(runner)[:6] == [
        "AwaitEnd", "CountAwait", "GetStatus", "CountPoll", "IsDone", "Notify"], runner.path
    delivery = end_delivery(ferry, execution_of(runner))
    assert delivery.invocation is not None and delivery.invocation.payload["woke"] == "runner"
    noticed = entered_at(runner, "Notify") - delivery.delivered_at
    print(f"noticed {noticed:.2f} s after the event was delivered")
    assert 0 <= noticed <= DETECTION_SECONDS, f"noticed {noticed:.2f} s after the event"
    assert entered_at(runner, "Notify") - released <= DETECTION_SECONDS + 5
    assert report_of(reports, job)["outcome"] == "succeeded"


def test_with_every_event_dropped_the_check_then_the_fallback_end_the_run(
        world: World, ferry: LocalFerry, reports: Any) -> None:
    ferry.drop_events()
    # The check: the execution ended without its event reaching anyone; the check wakes it.
    job, lane, runner = held_run(ferry, world, "ev-check")
    ferry.ctl.release(task_arn=lane.removeprefix("datasync:"))
    processes.wait_for(lambda: ferry.datasync_executions(lane.removeprefix("datasync:"))[0]
                       ["Status"] == "SUCCESS", 30, interval=0.1, what="the execution ended")
    assert waiting(runner), "no event came: the runner still waits"
    checked = ferry.datasync_check()
    assert checked.ok and checked.payload["woken"] >= 1, checked
    assert ferry.settle(lane, jobs=1)[job]["state"] == "succeeded"

    # The fallback: no event, no check; the wait times out and the runner checks itself.
    job, lane, runner = held_run(ferry, world, "ev-fallback")
    started = time.time()
    ferry.ctl.release(task_arn=lane.removeprefix("datasync:"))
    jobs = ferry.settle(lane, jobs=1, timeout=FALLBACK_SECONDS * 4)
    assert jobs[job]["state"] == "succeeded"
    took = time.time() - started
    assert took <= FALLBACK_SECONDS * 3, f"ended {took:.1f} s after the execution did"
    assert any("HeartbeatTimeout" in e for e in runner.errors("AwaitEnd")), runner.events[-30:]
    assert report_of(reports, job)["outcome"] == "succeeded"


def test_duplicate_and_out_of_order_events_change_nothing(
        world: World, ferry: LocalFerry, reports: Any) -> None:
    ferry.duplicate_events(copies=3)
    ferry.reorder_events(batch=2)
    job, lane, runner = held_run(ferry, world, "ev-dup")
    ferry.ctl.release(task_arn=lane.removeprefix("datasync:"))
    jobs = ferry.settle(lane, jobs=1)
    assert jobs[job]["state"] == "succeeded"
    execution = execution_of(runner)
    ferry.clear_event_faults()
    processes.wait_for(lambda: len([d for d in ferry.router.deliveries_of(execution)
                                    if d.state == "SUCCESS"]) >= 3, 30, interval=0.1,
                       what="every copy delivered")
    answers = [d.invocation.payload["woke"] for d in ferry.router.deliveries_of(execution)
               if d.invocation is not None and d.invocation.ok]
    assert answers.count("runner") <= 1, answers
    assert all(a in ("runner", "noted", "stale") for a in answers), answers
    assert runner.count("StateEntered", "StartTask") == 1
    assert len(ferry.datasync_executions(lane.removeprefix("datasync:"))) == 1
    assert report_of(reports, job)["outcome"] == "succeeded"


def test_an_event_for_an_execution_ferry_does_not_follow_is_ignored(
        world: World, ferry: LocalFerry) -> None:
    task_arn = ferry.datasync_task(unique("ev-foreign"), world.data_bucket, "/foreign",
                                   world.archive_bucket, "/foreign")
    execution = ferry.client("datasync").start_task_execution(
        TaskArn=task_arn)["TaskExecutionArn"]
    processes.wait_for(lambda: any(d.state == "SUCCESS" and d.answered_at
                                   for d in ferry.router.deliveries_of(execution)),
                       60, interval=0.1, what="the foreign execution's end event handled")
    [delivery] = [d for d in ferry.router.deliveries_of(execution) if d.state == "SUCCESS"]
    assert delivery.invocation is not None and delivery.invocation.ok, delivery.invocation
    assert delivery.invocation.payload["woke"] == "unknown"
