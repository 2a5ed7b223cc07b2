"""The local Lambda service answers as Lambda does when a function instance dies or hangs.

Fault tests rely on it: a killed instance must not leave its caller waiting. Each test runs
its own `Functions` (one function, short timeout), so killing instances here cannot disturb an
execution of another test.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Iterator

import pytest

from conftest import World
from ferry_local import processes
from ferry_local.lambdas import Functions, Invocation

NAME = "ferry-task-status"
EVENT = {"job": {"name": "probe", "kind": "fsx_export", "file_system_id": "fs-0123456789abcdef0"},
         "task": {"service": "fsx", "file_system_id": "fs-0123456789abcdef0",
                  "task_id": "task-0123456789abcdef0"}}


@pytest.fixture()
def functions(world: World) -> Iterator[Functions]:
    env = {f"AWS_ENDPOINT_URL_{s}": world.ferry.emulator.url for s in ("FSX", "DATASYNC")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_REGION="us-east-1", FERRY_LANE_TABLE="ferry-harness-lanes")
    log_dir = world.ferry.log_dir / "harness"
    log_dir.mkdir(exist_ok=True)
    with Functions(log_dir, env, names=(NAME,), timeouts={NAME: 2}) as f:
        yield f


def invoke_while_stopped(functions: Functions, then: str) -> Invocation:
    """Invokes with the instance stopped (SIGSTOP: it holds the event, never answers), then
    kills it (`then="kill"`) or leaves it to the function's timeout (`then="wait"`)."""
    # Stopped only once it polls for the next event: stopped before, it would never take the
    # event, so no timeout would start (a race the CI machine lost once).
    processes.wait_for(lambda: functions._instances[NAME].polling, 30,  # noqa: SLF001
                       interval=0.02, what=f"{NAME}'s instance polling for its next event")
    proc = functions._instances[NAME].proc  # noqa: SLF001 - the instance under test
    os.kill(proc.pid, signal.SIGSTOP)
    answer: list[Invocation] = []
    caller = threading.Thread(target=lambda: answer.append(functions.invoke(NAME, EVENT)))
    caller.start()
    try:
        if then == "kill":
            # The event is handed to the instance's pending poll at once; give it a moment.
            caller.join(0.5)
            os.kill(proc.pid, signal.SIGKILL)
        caller.join(30)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
    assert answer, "the caller got no answer"
    return answer[0]


def test_an_instance_killed_mid_invocation_is_answered_and_replaced(functions: Functions) -> None:
    answer = invoke_while_stopped(functions, then="kill")
    assert answer.error_type == "Runtime.ExitError"
    assert "Runtime exited with error: signal: killed" in (answer.error_message or "")
    # The next invocation runs on a new instance: the real function answers (the task does
    # not exist in the emulator).
    after = functions.invoke(NAME, EVENT)
    assert after.error_type == "NotFound", after
    assert functions.starts[NAME] == 2


def test_an_invocation_past_the_timeout_is_stopped(functions: Functions) -> None:
    answer = invoke_while_stopped(functions, then="wait")
    assert answer.error_type == "Sandbox.Timedout"
    assert "Task timed out after 2.00 seconds" in (answer.error_message or "")
    assert functions.invoke(NAME, EVENT).error_type == "NotFound"
    assert functions.starts[NAME] == 2


def test_a_timeout_given_for_a_while_applies_then_the_template_s_again(
        functions: Functions) -> None:
    with functions.timeout(NAME, 3):
        longer = invoke_while_stopped(functions, then="wait")
    assert "Task timed out after 3.00 seconds" in (longer.error_message or ""), longer
    # The timed-out instance is gone; a plain invocation starts the next one.
    assert functions.invoke(NAME, EVENT).error_type == "NotFound"
    after = invoke_while_stopped(functions, then="wait")
    assert "Task timed out after 2.00 seconds" in (after.error_message or ""), after
