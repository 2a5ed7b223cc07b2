"""A small client for the emulator's control API (standard library only). TEST INFRASTRUCTURE.

    from ferry_emulator.client import EmulatorControl
    ctl = EmulatorControl("http://127.0.0.1:PORT")
    ctl.reset()
    ctl.clock(mode="manual", step_seconds=60)
    ctl.fsx_fail("fs-0123abcd", files=[{"path": "@odd.nc", "error_code": "FileSizeTooLarge"}])
    ctl.advance(steps=2)
    ctl.durations(fsx_task_seconds=(60, 0.01))   # EXECUTING: 60 s + 10 ms per file
    ctl.events(after=0)                          # DataSync's EventBridge events since seq 0
    ctl.task_token(token)                        # a callback task's token: waiting, answered…

Command line (used by ``scripts/emulator.sh``)::

    python -m ferry_emulator.client health URL
    python -m ferry_emulator.client wait URL [TIMEOUT_SECONDS]
    python -m ferry_emulator.client reset URL
    python -m ferry_emulator.client env URL      # export lines for AWS SDK clients
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


class ControlError(RuntimeError):
    pass


KEEP: Any = object()  # EmulatorControl.durations: leave this setting as it is


def aws_env(url: str, region: str = "us-east-1") -> dict[str, str]:
    """Environment for an AWS SDK client talking to the emulator (dummy credentials)."""
    return {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }


class EmulatorControl:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            raise ControlError(f"{method} {path}: HTTP {err.code}: {detail}") from None

    # health and state
    def health(self) -> dict[str, Any]:
        return self._call("GET", "/_ferry/health")

    def state(self) -> dict[str, Any]:
        return self._call("GET", "/_ferry/state")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/_ferry/reset", {})

    # clock
    def clock(self, mode: str | None = None, step_seconds: float | None = None) -> dict[str, Any]:
        if mode is None and step_seconds is None:
            return self._call("GET", "/_ferry/clock")
        body: dict[str, Any] = {}
        if mode is not None:
            body["mode"] = mode
        if step_seconds is not None:
            body["step_seconds"] = step_seconds
        return self._call("POST", "/_ferry/clock", body)

    def advance(self, seconds: float = 0.0, steps: float = 0.0) -> dict[str, Any]:
        return self._call("POST", "/_ferry/clock/advance", {"seconds": seconds, "steps": steps})

    def config(self, **values: Any) -> dict[str, Any]:
        return self._call("POST", "/_ferry/config", values)

    def durations(self, fsx_task_seconds: Any = KEEP,
                  datasync_transfer_seconds: Any = KEEP) -> dict[str, Any]:
        """File-count-dependent phase durations (a benchmark knob, not an AWS fact): FSx
        EXECUTING / DataSync TRANSFERRING last ``base + per_file × files`` emulated seconds.
        Each is ``{"base": s, "per_file": s}`` or a ``(base, per_file)`` pair; ``None`` unsets
        it (one step again); left out, it is unchanged. Returns the emulator's config."""
        body: dict[str, Any] = {}
        for key, value in (("fsx_task_seconds", fsx_task_seconds),
                           ("datasync_transfer_seconds", datasync_transfer_seconds)):
            if value is KEEP:
                continue
            if isinstance(value, (tuple, list)) and len(value) == 2:
                value = {"base": value[0], "per_file": value[1]}
            body[key] = value
        return self.config(**body)

    # faults
    def add_fault(self, **rule: Any) -> int:
        return self._call("POST", "/_ferry/faults", rule)["id"]

    def throttle(self, service: str, operation: str = "*", probability: float = 1.0,
                 count: int | None = None, seed: int | None = None) -> int:
        rule: dict[str, Any] = {"service": service, "operation": operation,
                                "probability": probability}
        if count is not None:
            rule["count"] = count
        if seed is not None:
            rule["seed"] = seed
        return self._call("POST", "/_ferry/faults/throttle", rule)["id"]

    def conflict(self, service: str, count: int = 1, **target: str) -> int:
        return self._call("POST", "/_ferry/faults/conflict",
                          dict(target, service=service, count=count))["id"]

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/_ferry/faults")["rules"]

    def clear_faults(self) -> None:
        self._call("DELETE", "/_ferry/faults")

    def remove_fault(self, rule_id: int) -> None:
        self._call("DELETE", f"/_ferry/faults/{rule_id}")

    # tasks
    def fsx_fail(self, file_system_id: str, files: list[Any] | None = None, count: int = 0,
                 error_code: str | None = None, message: str | None = None,
                 tasks: int = 1) -> dict[str, Any]:
        body: dict[str, Any] = {"file_system_id": file_system_id, "files": files or [],
                                "count": count, "tasks": tasks}
        if error_code:
            body["error_code"] = error_code
        if message:
            body["message"] = message
        return self._call("POST", "/_ferry/fsx/fail", body)

    def fsx_files(self, file_system_id: str, files: dict[str, str] | list[str]) -> dict[str, Any]:
        return self._call("POST", "/_ferry/fsx/files",
                          {"file_system_id": file_system_id, "files": files})

    def datasync_fail(self, task_arn: str, error_code: str | None = None,
                      error_detail: str | None = None, phase: str = "TRANSFERRING",
                      files_failed: int = 0, executions: int = 1) -> dict[str, Any]:
        body: dict[str, Any] = {"task_arn": task_arn, "phase": phase,
                                "files_failed": files_failed, "executions": executions}
        if error_code:
            body["error_code"] = error_code
        if error_detail:
            body["error_detail"] = error_detail
        return self._call("POST", "/_ferry/datasync/fail", body)

    def hold(self, **target: str) -> list[str]:
        return self._call("POST", "/_ferry/hold", target)["held"]

    def release(self, **target: str) -> list[str]:
        return self._call("POST", "/_ferry/release", target)["released"]

    # IAM (ferry_emulator.iam)
    def register_policy(self, access_key: str, statements: list[dict[str, Any]],
                        principal: str | None = None) -> dict[str, Any]:
        """DataSync calls signed with `access_key` are checked against `statements`."""
        return self._call("POST", "/_ferry/iam", {"access_key": access_key,
                                                  "principal": principal or access_key,
                                                  "statements": statements})

    def iam(self) -> dict[str, Any]:
        """``{"keys": [...], "denied": [...]}``: the registered keys and every refusal."""
        return self._call("GET", "/_ferry/iam")

    # EventBridge events and Step Functions task tokens
    def events(self, after: int = 0, limit: int | None = None) -> dict[str, Any]:
        """The events published after sequence number `after`: ``{"events": [{"seq", "at",
        "event"}], "next": seq}`` (ask with ``after=next`` for what comes later)."""
        query = {"after": after} if limit is None else {"after": after, "limit": limit}
        return self._call("GET", f"/_ferry/events?{urllib.parse.urlencode(query)}")

    def task_tokens(self) -> dict[str, Any]:
        """Every task token the runners registered and every SendTask* call."""
        return self._call("GET", "/_ferry/task-tokens")

    def task_token(self, token: str) -> dict[str, Any]:
        return self._call("GET", f"/_ferry/task-tokens/{urllib.parse.quote(token, safe='')}")

    def register_task_token(self, token: str, execution: str, state: str) -> dict[str, Any]:
        return self._call("POST", "/_ferry/task-tokens",
                          {"token": token, "execution": execution, "state": state})

    def close_task_token(self, token: str, status: str = "timed_out", error: str | None = None,
                         cause: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status}
        if error is not None:
            body["error"] = error
        if cause is not None:
            body["cause"] = cause
        return self._call("POST", f"/_ferry/task-tokens/{urllib.parse.quote(token, safe='')}"
                                  "/close", body)

    def wait_ready(self, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                return self.health()
            except (OSError, ControlError) as err:
                last = err
                time.sleep(0.05)
        raise ControlError(f"emulator at {self.url} not ready after {timeout}s: {last}")


def _main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("health", "wait", "reset", "env"):
        print(__doc__, file=sys.stderr)
        return 2
    command, url = argv[0], argv[1]
    ctl = EmulatorControl(url)
    try:
        if command == "health":
            print(json.dumps(ctl.health()))
        elif command == "wait":
            ctl.wait_ready(float(argv[2]) if len(argv) > 2 else 30.0)
        elif command == "reset":
            ctl.reset()
        elif command == "env":
            for key, value in aws_env(url).items():
                print(f"export {key}={value}")
    except (OSError, ControlError) as err:
        print(f"ferry-emulator: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
