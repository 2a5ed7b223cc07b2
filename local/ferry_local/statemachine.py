"""Runs executions of the real state machine definition locally. TEST AND DEMO INFRASTRUCTURE.

Each run is `statemachine/test/run-local.mjs --jsonl`: aws-local-stepfunctions (pinned) runs
`statemachine/ferry.asl.json` — the file template.yaml deploys — with its Lambda states invoked
through the Invoke API of `Functions`, its hand-over (StartNext) sent to the emulator's Step
Functions, and its callback state (AwaitEnd, `.waitForTaskToken`) waiting on a task token the
emulator keeps until someone answers it (SendTaskSuccess/Failure) or its heartbeat or timeout
runs out. Only Wait states, callback heartbeats and timeouts, and Retry pauses are shortened:
`time_scale` makes each wait, heartbeat and timeout that fraction of what was asked; without
it, every wait lasts `wait_ms` and heartbeats and timeouts their real seconds; Retry pauses
last `retry_ms`. Every state runs. Events stream back as they happen, so callers can show progress
or act at a given point of an execution (release a held task once StartTask has been answered
busy, say).
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import paths, processes

RUN_LOCAL = paths.STATEMACHINE_TEST / "run-local.mjs"


@dataclass
class Run:
    """One execution: its events so far and, once ended, its result."""

    name: str
    input: Any
    events: list[dict[str, Any]] = field(default_factory=list)
    status: str | None = None  # SUCCEEDED or FAILED once ended
    output: Any = None
    error: str | None = None
    cause: str | None = None
    stderr: str = ""
    #: Events Step Functions would keep in this execution's history (capped at 25,000).
    history_events: int = 0
    #: What an `on_event` callback raised (it is not called again; `wait` raises it).
    callback_error: Exception | None = None
    _done: threading.Event = field(default_factory=threading.Event, repr=False)
    _proc: subprocess.Popen[str] | None = field(default=None, repr=False)

    # -- reading the events

    @property
    def path(self) -> list[str]:
        """The states entered, in order."""
        return [e["state"] for e in self.events if e["type"] == "StateEntered"]

    def count(self, type_: str, state: str) -> int:
        return sum(1 for e in self.events if e["type"] == type_ and e.get("state") == state)

    def outputs(self, state: str) -> list[Any]:
        return [e.get("output") for e in self.events
                if e["type"] == "StateExited" and e.get("state") == state]

    def errors(self, state: str) -> list[str]:
        return [e.get("error", "") for e in self.events
                if e["type"] == "StateFailed" and e.get("state") == state]

    @property
    def started(self) -> dict[str, Any] | None:
        """StartTask's result (`{"task": handle, "next_poll_seconds"}`), once it returned."""
        out = self.outputs("StartTask")
        return out[-1].get("started") if out else None

    # -- waiting

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float = 300.0) -> "Run":
        if not self._done.wait(timeout):
            self.abort()
            raise TimeoutError(f"execution {self.name} did not end within {timeout:.0f}s; "
                               f"states so far: {self.path}")
        if self.callback_error is not None:
            raise RuntimeError(f"an on_event callback of {self.name} failed") \
                from self.callback_error
        return self

    def wait_until(self, predicate: Callable[["Run"], bool], timeout: float = 60.0,
                   what: str = "a condition") -> None:
        processes.wait_for(lambda: predicate(self) or (self.done and predicate(self)), timeout,
                           what=f"{what} in execution {self.name} (states: {self.path})")

    def abort(self) -> None:
        processes.stop(self._proc)

    def describe(self) -> str:
        tail = f"{self.error}: {self.cause}" if self.error else ""
        return f"{self.name}: {self.status} {tail}\n  states: {' → '.join(self.path)}"


class LocalStateMachine:
    """``sm.start(name, input, on_event=...)`` → `Run`; ``sm.run(...)`` waits for the end."""

    def __init__(self, lambda_url: str, wait_ms: int = 300, retry_ms: int = 200,
                 sfn_url: str | None = None, state_machine_arn: str | None = None,
                 time_scale: float | None = None) -> None:
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node is not on PATH (Node 20+ runs the state machine)")
        if not (paths.STATEMACHINE_TEST / "node_modules" / "aws-local-stepfunctions").is_dir():
            raise RuntimeError("statemachine/test/node_modules is missing: run "
                               "`npm ci --prefix statemachine/test`")
        self._node = node
        self.lambda_url = lambda_url
        self.sfn_url = sfn_url
        self.state_machine_arn = state_machine_arn
        self.time_scale = time_scale
        self.wait_ms = wait_ms
        self.retry_ms = retry_ms
        self._runs: list[Run] = []

    def start(self, name: str, input: Any,
              on_event: Callable[[Run, dict[str, Any]], None] | None = None,
              wait_ms: int | None = None, retry_ms: int | None = None) -> Run:
        run = Run(name=name, input=input)
        self._runs.append(run)
        ready: queue.Queue[BaseException | None] = queue.Queue()
        thread = threading.Thread(
            target=self._follow, name=f"run {name}",
            args=(run, on_event, self.wait_ms if wait_ms is None else wait_ms,
                  self.retry_ms if retry_ms is None else retry_ms, ready),
            daemon=True)
        thread.start()
        error = ready.get()
        if error is not None:
            raise error
        return run

    def run(self, name: str, input: Any, timeout: float = 300.0, **kwargs: Any) -> Run:
        return self.start(name, input, **kwargs).wait(timeout)

    def abort_all(self) -> None:
        for run in self._runs:
            run.abort()

    def _follow(self, run: Run, on_event: Callable[[Run, dict[str, Any]], None] | None,
                wait_ms: int, retry_ms: int, ready: "queue.Queue[BaseException | None]") -> None:
        # The node process is started from this thread, which waits for it (processes.py).
        try:
            args = [self._node, "--import", "./polyfill.mjs", str(RUN_LOCAL),
                    "--lambda", self.lambda_url, "--input-file", "-",
                    "--name", run.name, "--wait-ms", str(wait_ms), "--retry-ms", str(retry_ms),
                    "--jsonl"]
            if self.sfn_url:
                args += ["--sfn-endpoint", self.sfn_url]
            if self.state_machine_arn:
                args += ["--state-machine-arn", self.state_machine_arn]
            if self.time_scale is not None:
                args += ["--time-scale", str(self.time_scale)]
            run._proc = processes.spawn(
                args,
                env=dict(os.environ), cwd=paths.STATEMACHINE_TEST, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            # On standard input: an input can be longer than a command-line argument may be.
            assert run._proc.stdin is not None
            run._proc.stdin.write(json.dumps(run.input))
            run._proc.stdin.close()
        except BaseException as err:  # noqa: BLE001 - handed to the caller of start()
            ready.put(err)
            run._done.set()
            return
        ready.put(None)
        proc = run._proc
        stderr: list[str] = []
        drain = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
        drain.start()
        try:
            for line in proc.stdout or []:
                try:
                    event = json.loads(line)
                except ValueError:
                    stderr.append(line)
                    continue
                if event.get("type") == "Result":
                    run.history_events = int(event.get("history_events") or 0)
                    run.output = event.get("output")
                    run.error = event.get("error")
                    run.cause = event.get("cause")
                    run.status = event.get("status")
                    continue
                # When the harness read it (wall clock): how long a step took to be noticed.
                event["received_at"] = time.time()
                run.events.append(event)
                if on_event is not None and run.callback_error is None:
                    try:
                        on_event(run, event)
                    except Exception as err:  # noqa: BLE001 - raised again by wait()
                        run.callback_error = err
            proc.wait()
            drain.join(5)
        finally:
            run.stderr = "".join(stderr)
            if run.status is None:
                run.status = "ABORTED"
                run.error = run.error or "RunnerExited"
                run.cause = run.cause or f"run-local.mjs exited with {proc.poll()}: {run.stderr[-2000:]}"
            run._done.set()
