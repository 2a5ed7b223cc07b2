"""Step Functions task tokens: the callback pattern's API. TEST INFRASTRUCTURE.

moto stores state machines and executions but runs no states. Ferry's local runner
(``statemachine/test/run-local.mjs``) runs them, and for a Task state whose resource ends in
``.waitForTaskToken`` it makes a fresh token per attempt, registers it here (control API
``POST /_ferry/task-tokens``), invokes the function, then polls the token
(``GET /_ferry/task-tokens/<token>``) until someone answers it through the Step Functions API,
or until its heartbeat or timeout runs out (then it closes the token:
``POST /_ferry/task-tokens/<token>/close``).

This module answers that API (awsJson 1.0, ``X-Amz-Target: AWSStepFunctions.<Operation>``, the
signing name ``states``), before moto:

* ``SendTaskSuccess`` (Step Functions API Reference, API_SendTaskSuccess,
  https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html):
  ``taskToken`` 1–2048 characters and ``output`` required; ``output`` must be JSON of at most
  262,144 bytes (UTF-8), else ``InvalidOutput``; the task's result is that JSON.
* ``SendTaskFailure`` (API_SendTaskFailure): ``error`` ≤ 256 and ``cause`` ≤ 32,768
  characters, both optional; the task fails with them.
* ``SendTaskHeartbeat`` (API_SendTaskHeartbeat): "resets the Heartbeat clock" and "does not in
  itself create an event in the execution history".
* Errors, HTTP 400: a token Step Functions never issued is ``InvalidToken`` ("The provided token
  is not valid"); a token whose task already ended (answered, failed, timed out, or its
  execution stopped) is ``TaskTimedOut``; a length constraint broken is ``ValidationException``.
  Success is HTTP 200 with ``{}``.

Choices (not verified against AWS): an ``output`` over 262,144 bytes is ``InvalidOutput`` (the
reference states the limit as a length constraint and names no error for it); messages are the
emulator's own. ``last_heartbeat`` and every recorded call are wall-clock epoch seconds, not the
emulator's clock: the runner enforces HeartbeatSeconds and TimeoutSeconds in real time.

Every call is recorded, unknown tokens included, so tests and the benchmark can count
heartbeats, duplicate answers and stale ones (``GET /_ferry/task-tokens``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from .wire import ApiError, AwsRequest

OPERATIONS = {"SendTaskSuccess", "SendTaskFailure", "SendTaskHeartbeat"}
MAX_TOKEN = 2048
MAX_OUTPUT_BYTES = 262_144
MAX_ERROR = 256
MAX_CAUSE = 32_768
#: Statuses a task's token can end in. The runner closes tokens as ``timed_out`` (heartbeat or
#: timeout), ``failed`` (the function it invoked failed) or ``aborted`` (the execution stopped).
CLOSED = ("succeeded", "failed", "timed_out", "aborted")


def _validation(field_name: str, constraint: str) -> ApiError:
    return ApiError("ValidationException",
                    f"1 validation error detected: Value at '{field_name}' failed to satisfy "
                    f"constraint: {constraint}")


@dataclass
class TaskToken:
    """One token the runner issued: which execution and state wait for it, and its outcome."""

    token: str
    execution: str
    state: str
    registered_at: float
    status: str = "waiting"
    output: Any = None
    error: str | None = None
    cause: str | None = None
    last_heartbeat: float = 0.0
    closed_at: float | None = None
    #: API calls naming this token, per operation, answered or refused (TaskTimedOut).
    calls: dict[str, int] = field(default_factory=lambda: dict.fromkeys(sorted(OPERATIONS), 0))

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "token": self.token, "execution": self.execution, "state": self.state,
            "status": self.status, "registered_at": self.registered_at,
            "last_heartbeat": self.last_heartbeat, "closed_at": self.closed_at,
            "calls": dict(self.calls)}
        if self.status == "succeeded":
            out["output"] = self.output
        if self.status in ("failed", "timed_out", "aborted"):
            out["error"], out["cause"] = self.error, self.cause
        return out


class TaskTokens:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.tokens: dict[str, TaskToken] = {}
        #: Every API call: {"operation", "token", "at", "error"} (error None when it succeeded).
        self.calls: list[dict[str, Any]] = []

    # ------------------------------------------------------------------ control API

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        token = body.get("token")
        if not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN:
            raise ValueError(f"token must be a string of 1 to {MAX_TOKEN} characters")
        if token in self.tokens:
            raise ValueError("token already registered: tokens are unique per task attempt")
        now = time.time()
        self.tokens[token] = TaskToken(token, str(body.get("execution", "")),
                                       str(body.get("state", "")), now, last_heartbeat=now)
        return self.tokens[token].describe()

    def get(self, token: str) -> TaskToken:
        found = self.tokens.get(token)
        if found is None:
            raise KeyError(f"no such task token: {token[:40]}")
        return found

    def close(self, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """The runner ends a task itself. A token already closed is left as it is (an answer
        that came first wins): the answer says which outcome the task has."""
        status = body.get("status")
        if status not in ("timed_out", "failed", "aborted"):
            raise ValueError("status must be 'timed_out', 'failed' or 'aborted'")
        found = self.get(token)
        if found.status == "waiting":
            self._end(found, status, error=body.get("error"), cause=body.get("cause"))
        return found.describe()

    def describe(self) -> dict[str, Any]:
        return {"tokens": [t.describe() for t in self.tokens.values()], "calls": list(self.calls)}

    # ------------------------------------------------------------------ Step Functions API

    def handle(self, req: AwsRequest) -> dict[str, Any]:
        op, p = req.operation or "", req.params
        error = None
        try:
            self._answer(self._check(op, p), op, p)
            return {}
        except ApiError as err:
            error = err.code
            raise
        finally:
            self._record(op, p.get("taskToken"), error)

    def _check(self, op: str, p: dict[str, Any]) -> TaskToken:
        token = p.get("taskToken")
        if not isinstance(token, str) or not token:
            raise _validation("taskToken", "Member must have length greater than or equal to 1")
        if len(token) > MAX_TOKEN:
            raise _validation("taskToken",
                              f"Member must have length less than or equal to {MAX_TOKEN}")
        if op == "SendTaskSuccess":
            self._check_output(p.get("output"))
        if op == "SendTaskFailure":
            for name, limit in (("error", MAX_ERROR), ("cause", MAX_CAUSE)):
                if p.get(name) is not None and len(str(p[name])) > limit:
                    raise _validation(name, f"Member must have length less than or equal to "
                                            f"{limit}")
        found = self.tokens.get(token)
        if found is None:
            raise ApiError("InvalidToken", "The provided token is not valid.")
        if found.status != "waiting":
            raise ApiError("TaskTimedOut", "The task of this token has already ended.")
        return found

    @staticmethod
    def _check_output(output: Any) -> None:
        if output is None:
            raise _validation("output", "Member must not be null")
        if not isinstance(output, str) or len(output.encode()) > MAX_OUTPUT_BYTES:
            raise ApiError("InvalidOutput", f"The output must be JSON of at most "
                                            f"{MAX_OUTPUT_BYTES} bytes.")
        try:
            json.loads(output)
        except ValueError:
            raise ApiError("InvalidOutput", "Invalid Output: the output is not JSON.") from None

    def _answer(self, found: TaskToken, op: str, p: dict[str, Any]) -> None:
        if op == "SendTaskSuccess":
            self._end(found, "succeeded", output=json.loads(p["output"]))
        elif op == "SendTaskFailure":
            self._end(found, "failed", error=p.get("error"), cause=p.get("cause"))
        else:
            found.last_heartbeat = time.time()

    @staticmethod
    def _end(found: TaskToken, status: str, output: Any = None, error: str | None = None,
             cause: str | None = None) -> None:
        found.status, found.output, found.error, found.cause = status, output, error, cause
        found.closed_at = time.time()

    def _record(self, op: str, token: Any, error: str | None) -> None:
        token = token if isinstance(token, str) else None
        self.calls.append({"operation": op, "token": token, "at": time.time(), "error": error})
        if token in self.tokens:
            self.tokens[token].calls[op] += 1
