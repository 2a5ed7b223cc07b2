"""run-local.mjs runs callback states (`lambda:invoke.waitForTaskToken`) as Step Functions does,
against the real emulator's task tokens.

Each case runs a one-state definition shaped like ferry.asl.json's AwaitEnd (`--definition`)
with a stand-in function (a tiny Lambda Invoke API here) that answers the token the way a test
wants through the emulator's Step Functions API: SendTaskSuccess, SendTaskFailure, heartbeats,
or nothing. No Ferry binary is needed.
"""

from __future__ import annotations

import http.server
import json
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import pytest
from botocore.exceptions import ClientError

from ferry_local import paths, processes
from ferry_local.emulator_process import Emulator
from ferry_local.statemachine import RUN_LOCAL

DEFINITION = {
    "StartAt": "AwaitEnd",
    "States": {
        "AwaitEnd": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "${LaneFunctionArn}",
                "Payload": {"action": "await", "run.$": "$.run", "token.$": "$$.Task.Token",
                            "heartbeat_seconds.$": "$.status.await.heartbeat_seconds",
                            "timeout_seconds.$": "$.status.await.timeout_seconds"}},
            "HeartbeatSecondsPath": "$.status.await.heartbeat_seconds",
            "TimeoutSecondsPath": "$.status.await.timeout_seconds",
            "ResultPath": "$.woken",
            "Retry": [{"ErrorEquals": ["Boom"], "MaxAttempts": 1}],
            "Catch": [
                {"ErrorEquals": ["States.HeartbeatTimeout", "States.Timeout"],
                 "ResultPath": "$.woken", "Next": "Done"},
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failed", "Next": "Done"}],
            "Next": "Done"},
        "Done": {"Type": "Succeed"},
    },
}
#: Heartbeat and timeout, in the definition's seconds, and how fast the runner runs.
SCALE = 0.1


@dataclass
class StandIn:
    """The function the callback state invokes: `on_invoke(payload)` runs in a thread of its
    own after each invocation is answered; `fail` makes the next invocations function errors."""

    on_invoke: Callable[[dict[str, Any]], None] = lambda payload: None
    fail: int = 0
    payloads: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Bench:
    emulator: Emulator
    lambda_url: str
    stand_in: StandIn
    definition: str

    @property
    def sfn(self) -> Any:
        return self.emulator.client("stepfunctions", attempts=1)

    def start(self, heartbeat: int, timeout: int, *scale: str) -> subprocess.Popen[str]:
        node = shutil.which("node")
        assert node, "node is not on PATH"
        argv = [node, "--import", "./polyfill.mjs", str(RUN_LOCAL), "--definition",
                self.definition, "--lambda", self.lambda_url, "--sfn-endpoint",
                self.emulator.url, "--name", f"cb-{time.monotonic_ns()}", "--jsonl",
                "--retry-ms", "0", "--input", json.dumps({
                    "run": "run-1", "status": {"await": {"heartbeat_seconds": heartbeat,
                                                         "timeout_seconds": timeout}}})]
        argv += list(scale) or ["--time-scale", str(SCALE)]
        return subprocess.Popen(argv, cwd=paths.STATEMACHINE_TEST, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, heartbeat: int, timeout: int, *scale: str,
            status: str = "SUCCEEDED") -> dict[str, Any]:
        proc = self.start(heartbeat, timeout, *scale)
        out, err = proc.communicate(timeout=60)
        lines = [json.loads(line) for line in out.splitlines()]
        result = lines[-1]
        assert result["type"] == "Result", err
        assert result["status"] == status, (result, err)
        return result

    def token(self, n: int = -1) -> dict[str, Any]:
        return self.emulator.ctl.task_token(self.stand_in.payloads[n]["token"])


def serve(stand_in: StandIn) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802
            payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            stand_in.payloads.append(payload)
            failing = stand_in.fail > 0
            stand_in.fail -= 1
            body = json.dumps({"errorType": "Boom", "errorMessage": "no"} if failing
                              else {"awaiting": payload["run"]}).encode()
            self.send_response(200)
            if failing:
                self.send_header("X-Amz-Function-Error", "Unhandled")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            if not failing:
                threading.Thread(target=stand_in.on_invoke, args=(payload,), daemon=True).start()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("callback")) as emu:
        yield emu


@pytest.fixture()
def bench(emulator: Emulator, tmp_path: Any) -> Iterator[Bench]:
    definition = tmp_path / "definition.json"
    definition.write_text(json.dumps(DEFINITION))
    stand_in = StandIn()
    server = serve(stand_in)
    try:
        yield Bench(emulator, f"http://127.0.0.1:{server.server_port}", stand_in, str(definition))
    finally:
        server.shutdown()


def test_send_task_success_is_the_states_result(bench):
    def answer(payload: dict[str, Any]) -> None:
        for _ in range(2):
            time.sleep(0.05)
            bench.sfn.send_task_heartbeat(taskToken=payload["token"])
        bench.sfn.send_task_success(taskToken=payload["token"], output='{"state": "SUCCESS"}')

    bench.stand_in.on_invoke = answer
    result = bench.run(heartbeat=5, timeout=60)
    assert result["output"]["woken"] == {"state": "SUCCESS"}
    payload = bench.stand_in.payloads[0]
    assert payload["token"].startswith("AQ") and payload["token"] != "ferry-local-task-token"
    assert (payload["heartbeat_seconds"], payload["timeout_seconds"]) == (5, 60)
    token = bench.token()
    assert token["status"] == "succeeded"
    assert token["calls"] == {"SendTaskFailure": 0, "SendTaskHeartbeat": 2, "SendTaskSuccess": 1}
    assert token["state"] == "AwaitEnd"
    assert token["execution"].startswith(
        "arn:aws:states:us-east-1:000000000000:execution:ferry:cb-")
    # ExecutionStarted/Succeeded; AwaitEnd and Done entered and exited; the callback attempt's
    # Scheduled, Started, Submitted, Succeeded.
    assert result["history_events"] == 2 + 2 + 4 + 2


@pytest.mark.parametrize("scale", [(), ("--wait-ms", "0")], ids=["time-scale", "wait-ms"])
def test_no_heartbeat_in_time_is_a_heartbeat_timeout(bench, scale):
    began = time.monotonic()
    result = bench.run(2, 60, *scale)
    elapsed = time.monotonic() - began
    assert result["output"]["woken"]["Error"] == "States.HeartbeatTimeout"
    # Scaled like Waits with --time-scale; real seconds with --wait-ms.
    least = 2 * (SCALE if scale == () else 1)
    assert least <= elapsed < least + 5
    assert bench.token()["status"] == "timed_out"
    with pytest.raises(ClientError) as excinfo:
        bench.sfn.send_task_success(taskToken=bench.stand_in.payloads[0]["token"], output="{}")
    assert excinfo.value.response["Error"]["Code"] == "TaskTimedOut"


def test_heartbeats_keep_it_waiting_until_the_timeout(bench):
    def beat(payload: dict[str, Any]) -> None:
        while True:
            time.sleep(0.1)
            try:
                bench.sfn.send_task_heartbeat(taskToken=payload["token"])
            except ClientError:
                return  # timed out

    bench.stand_in.on_invoke = beat
    began = time.monotonic()
    result = bench.run(heartbeat=3, timeout=10)
    assert result["output"]["woken"]["Error"] == "States.Timeout"
    assert time.monotonic() - began >= 10 * SCALE
    assert bench.token()["calls"]["SendTaskHeartbeat"] >= 5


def test_send_task_failure_fails_the_state_with_its_error(bench):
    bench.stand_in.on_invoke = lambda p: bench.sfn.send_task_failure(
        taskToken=p["token"], error="Ferry.Gone", cause="the run went away")
    result = bench.run(heartbeat=5, timeout=60)
    assert result["output"]["failed"] == {"Error": "Ferry.Gone", "Cause": "the run went away"}


def test_a_function_error_fails_the_attempt_and_a_retry_gets_a_new_token(bench):
    bench.stand_in.fail = 1
    bench.stand_in.on_invoke = lambda p: bench.sfn.send_task_success(taskToken=p["token"],
                                                                     output='"woke"')
    result = bench.run(heartbeat=5, timeout=60)
    assert result["output"]["woken"] == "woke"
    first, second = bench.token(0), bench.token(1)
    assert first["token"] != second["token"]
    assert (first["status"], first["error"]) == ("failed", "Boom")
    assert second["status"] == "succeeded"
    assert result["history_events"] == 2 + 2 + 4 + 4 + 2


def test_a_limit_that_is_not_a_positive_integer_fails_the_execution(bench):
    # States.Runtime: not caught by the state's States.ALL catcher, as in Step Functions.
    result = bench.run(heartbeat=5, timeout=0, status="FAILED")
    assert result["error"] == "States.Runtime"
    assert bench.stand_in.payloads == []


def test_a_stopped_runner_closes_the_token_it_waits_on(bench):
    proc = bench.start(heartbeat=60, timeout=600)
    try:
        processes.wait_for(lambda: bench.stand_in.payloads, 10, what="the function invoked")
        token = bench.stand_in.payloads[0]["token"]
        processes.wait_for(lambda: bench.emulator.ctl.task_token(token)["status"] == "waiting",
                           5, what="the token registered")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        processes.stop(proc)
    assert bench.emulator.ctl.task_token(token)["status"] == "aborted"
    with pytest.raises(ClientError) as excinfo:
        bench.sfn.send_task_success(taskToken=token, output="{}")
    assert excinfo.value.response["Error"]["Code"] == "TaskTimedOut"
