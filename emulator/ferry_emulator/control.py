"""The control API under ``/_ferry/`` (same port as the AWS endpoints). TEST INFRASTRUCTURE.

JSON in, JSON out; errors are ``{"error": "..."}`` with HTTP 400 (404 for an unknown route).
The Python client :mod:`ferry_emulator.client` wraps every route.

==========================  ======  ==========================================================
route                       method  body → answer
==========================  ======  ==========================================================
/_ferry/health              GET     → {"status": "ok", "moto": version, "clock": {...}}
/_ferry/reset               POST    resets moto's backends and all extension state; the clock
                                    goes back to fast mode with 0.2 s steps
/_ferry/clock               GET     → {"mode", "step_seconds", "now"}
/_ferry/clock               POST    {"mode": "fast"|"manual", "step_seconds": s}
/_ferry/clock/advance       POST    {"seconds": s} and/or {"steps": n} (n × step_seconds)
/_ferry/config              GET/POST {"invalid_paths": "reject"|"fail_task",
                                    "fsx_task_seconds": {"base": s, "per_file": s} | null,
                                    "datasync_transfer_seconds": {"base": s, "per_file": s} |
                                    null} → the config; keys left out are unchanged, null
                                    unsets a duration (back to one step). The durations make
                                    FSx EXECUTING / DataSync TRANSFERRING last base + per_file ×
                                    files emulated seconds (a benchmark knob, not an AWS fact)
/_ferry/faults              GET     → {"rules": [...]} with hit counts
/_ferry/faults              POST    a rule (see ferry_emulator.faults) → {"id": n}
/_ferry/faults              DELETE  removes every rule
/_ferry/faults/<id>         DELETE  removes one rule
/_ferry/faults/throttle     POST    {"service", "operation", "probability", "count", "seed"}
/_ferry/faults/conflict     POST    {"service": "fsx"|"datasync", "count", "file_system_id" |
                                    "task_arn"} → a forced-conflict rule
/_ferry/fsx/fail            POST    {"file_system_id", "files": [{"path", "error_code"}],
                                    "count": n, "error_code", "message", "tasks": 1}: the next
                                    task(s) of the file system fail those files
/_ferry/fsx/files           POST    {"file_system_id", "files": {"path": "content"} | [paths]}:
                                    files that exist only on the file system
/_ferry/datasync/fail       POST    {"task_arn", "error_code", "error_detail", "phase",
                                    "files_failed", "executions": 1}
/_ferry/hold                POST    {"file_system_id" | "task_id" | "task_arn" |
                                    "execution_arn"}: keep tasks in EXECUTING / TRANSFERRING
/_ferry/release             POST    same keys: let them finish (one step after release)
/_ferry/iam                 POST    {"access_key", "principal", "statements"}: DataSync calls
                                    signed with that key are checked against those IAM
                                    statements (ferry_emulator.iam) → {"access_key",
                                    "statements": n}
/_ferry/iam                 GET     → {"keys": [...], "denied": [{"key", "principal",
                                    "action", "resource"}]}: every refusal so far
/_ferry/state               GET     every task, execution, hold and plan (for debugging)
/_ferry/events              GET     ?after=<seq>&limit=<n> → {"events": [{"seq", "at", "event"}],
                                    "next": seq}: the EventBridge events published after
                                    <seq> (DataSync execution status changes; see
                                    ferry_emulator.events), oldest first
/_ferry/task-tokens         GET     → {"tokens": [...], "calls": [{"operation", "token", "at",
                                    "error"}]}: every task token and every SendTask* call
/_ferry/task-tokens         POST    {"token", "execution", "state"}: a token the local runner
                                    issued (ferry_emulator.task_tokens) → the token's record
/_ferry/task-tokens/<t>     GET     → {"token", "execution", "state", "status": "waiting" |
                                    "succeeded" | "failed" | "timed_out" | "aborted", "output"
                                    | "error"/"cause", "last_heartbeat", "registered_at",
                                    "closed_at", "calls": {operation: n}}; 404 when unknown
/_ferry/task-tokens/<t>/close  POST {"status": "timed_out" | "failed" | "aborted", "error",
                                    "cause"}: the runner ends the task; a later SendTask* call
                                    answers TaskTimedOut. A token already answered keeps its
                                    outcome → the token's record (which outcome won)
==========================  ======  ==========================================================
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs

from .clock import DURATION_KEYS, check_phase_seconds
from .faults import conflict_rule
from .wire import Response

JSON = [("Content-Type", "application/json")]
TOKENS = "/_ferry/task-tokens"


def _ok(payload: Any) -> Response:
    return 200, list(JSON), json.dumps(payload, default=str).encode()


def _error(message: str, status: int = 400) -> Response:
    return status, list(JSON), json.dumps({"error": message}).encode()


class Control:
    def __init__(self, emulator) -> None:  # noqa: ANN001 (app.Emulator; avoids a cycle)
        self.em = emulator

    def handle(self, environ: dict[str, Any]) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "").rstrip("/")
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
        except ValueError as err:
            return _error(f"invalid JSON body: {err}")
        em = self.em
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        try:
            with em.lock:
                em.settle()
                if path == "/_ferry/events" and method == "GET":
                    return _ok(em.bus.after(int(query.get("after", 0)),
                                            int(query["limit"]) if "limit" in query else None))
                if path == TOKENS or path.startswith(TOKENS + "/"):
                    return self._tokens(method, path[len(TOKENS):], body)
                return self._route(method, path, body)
        except (ValueError, KeyError, TypeError) as err:
            return _error(str(err))

    def _tokens(self, method: str, rest: str, body: dict[str, Any]) -> Response:
        """``/_ferry/task-tokens[/<token>[/close]]``: tokens are URL path segments (the local
        runner's are base64url)."""
        tokens = self.em.tokens
        if rest == "" and method == "POST":
            return _ok(tokens.register(body))
        if rest == "" and method == "GET":
            return _ok(tokens.describe())
        token, close = (rest[1:-len("/close")], True) if rest.endswith("/close") else \
            (rest[1:], False)
        if token not in tokens.tokens:
            return _error(f"no such task token: {token[:40]}", 404)
        if close and method == "POST":
            return _ok(tokens.close(token, body))
        if not close and method == "GET":
            return _ok(tokens.get(token).describe())
        return _error(f"no route {method} {TOKENS}{rest[:60]}", 404)

    def _route(self, method: str, path: str, body: dict[str, Any]) -> Response:
        em = self.em
        clock = em.clock
        if path == "/_ferry/health":
            import moto  # noqa: PLC0415

            return _ok({"status": "ok", "moto": moto.__version__, "clock": clock.describe()})
        if path == "/_ferry/reset" and method == "POST":
            from moto.moto_api._internal.models import moto_api_backend  # noqa: PLC0415

            moto_api_backend.reset()
            em.reset()
            return _ok({"reset": True})
        if path == "/_ferry/clock":
            if method == "POST":
                clock.set(body.get("mode"), body.get("step_seconds"))
                em.settle()
            return _ok(clock.describe())
        if path == "/_ferry/clock/advance" and method == "POST":
            clock.advance(body.get("seconds", 0.0), body.get("steps", 0.0))
            em.settle()
            return _ok(clock.describe())
        if path == "/_ferry/config":
            if method == "POST":
                value = body.get("invalid_paths")
                if value is not None and value not in ("reject", "fail_task"):
                    raise ValueError("invalid_paths must be 'reject' or 'fail_task'")
                # Check everything before changing anything: a refused body changes nothing.
                durations = {key: None if body[key] is None else
                             check_phase_seconds(key, body[key])
                             for key in DURATION_KEYS if key in body}
                if value is not None:
                    em.config["invalid_paths"] = value
                for key, spec in durations.items():
                    if spec is None:
                        em.config.pop(key, None)
                    else:
                        em.config[key] = spec
            return _ok(dict(em.config))
        if path == "/_ferry/faults":
            if method == "GET":
                return _ok({"rules": [r.describe() for r in em.faults.rules]})
            if method == "POST":
                return _ok({"id": em.faults.add(body).id})
            if method == "DELETE":
                em.faults.reset()
                return _ok({"rules": []})
        if path == "/_ferry/faults/throttle" and method == "POST":
            return _ok({"id": em.faults.add(dict(body, kind="throttle")).id})
        if path == "/_ferry/faults/conflict" and method == "POST":
            return _ok({"id": em.faults.add(conflict_rule(body)).id})
        if path.startswith("/_ferry/faults/") and method == "DELETE":
            removed = em.faults.remove(int(path.rsplit("/", 1)[1]))
            return _ok({"removed": removed}) if removed else _error("no such rule", 404)
        if path == "/_ferry/fsx/fail" and method == "POST":
            return _ok(em.fsx.add_plan(body))
        if path == "/_ferry/fsx/files" and method == "POST":
            return _ok(em.fsx.add_local_files(body))
        if path == "/_ferry/datasync/fail" and method == "POST":
            return _ok(em.datasync.add_plan(body))
        if path in ("/_ferry/hold", "/_ferry/release") and method == "POST":
            held = path.endswith("hold")
            keys = ("file_system_id", "task_id", "task_arn", "execution_arn")
            if not any(body.get(k) for k in keys):
                raise ValueError(f"give one of {', '.join(keys)}")
            now = clock.now()
            touched = em.fsx.hold(body, held, now) + em.datasync.hold(body, held, now)
            em.settle()
            return _ok({"held" if held else "released": touched})
        if path == "/_ferry/iam" and method == "POST":
            return _ok(em.iam.register(body))
        if path == "/_ferry/iam" and method == "GET":
            return _ok({"keys": sorted(em.iam.by_key), "denied": list(em.iam.denied)})
        if path == "/_ferry/state" and method == "GET":
            now, step = clock.now(), clock.step_seconds
            return _ok({"clock": clock.describe(), "config": dict(em.config),
                        "fsx": em.fsx.state(now, step), "datasync": em.datasync.state(now, step),
                        "faults": [r.describe() for r in em.faults.rules]})
        return _error(f"no route {method} {path}", 404)
