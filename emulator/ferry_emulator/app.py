"""The WSGI application: Ferry's extension in front of moto's server. TEST INFRASTRUCTURE.

How a request is answered::

    /_ferry/...                        → the control API (ferry_emulator.control)
    any AWS request                    → tasks settled against the clock, then
        a fault rule fires?            → the injected error, in the service's protocol
        over one of AWS's size limits? → the service's error (ferry_emulator.limits: DynamoDB
                                         items and transactions, SNS and SQS messages,
                                         StartExecution's input)
        FSx data repository task/DRA   → ferry_emulator.fsx
        DataSync execution/tag op      → ferry_emulator.datasync
        DataSync Create*/DescribeTask  → moto, then its JSON answer completed by datasync
        Step Functions SendTask*       → ferry_emulator.task_tokens (the callback pattern)
        anything else                  → moto, untouched
    POST /moto-api/reset               → moto's reset, and the extension's state too

moto's application is ``DomainDispatcherApplication(create_backend_app)``, exactly what
``moto_server`` runs; the extension shares its process, so it reads moto's backends (file
systems, DataSync tasks and locations, S3 objects) directly.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from typing import Any, Callable, Iterable

from . import iam, limits
from .clock import Clock
from .datasync import DataSync
from .events import EventBus
from .faults import Faults
from .fsx import Fsx
from .task_tokens import OPERATIONS as TASK_TOKEN_OPS
from .task_tokens import TaskTokens
from .wire import ApiError, AwsRequest, Response, error_response, json_response, parse_request

FSX_OPS = {
    "CreateDataRepositoryTask", "DescribeDataRepositoryTasks", "CancelDataRepositoryTask",
    "CreateDataRepositoryAssociation", "DescribeDataRepositoryAssociations",
    "DeleteDataRepositoryAssociation",
}
DATASYNC_OPS = {
    "StartTaskExecution", "DescribeTaskExecution", "CancelTaskExecution", "ListTaskExecutions",
    "ListTagsForResource", "TagResource", "UntagResource",
}


class Emulator:
    """All of the extension's state, behind one lock."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.config: dict[str, Any] = {"invalid_paths": "reject"}
        self.faults = Faults()
        self.fsx = Fsx(self.config)
        self.bus = EventBus()
        self.datasync = DataSync(self.config, self.bus)
        self.tokens = TaskTokens()
        #: The policies of the callers whose DataSync calls are checked (ferry_emulator.iam).
        self.iam = iam.Policies()
        self.started_at = self.clock.now()
        #: DynamoDB's requests one at a time, size checks and moto's answer together: the checks
        #: read moto's tables (an item before and after an update), which another request
        #: could change in between (moto's tables are plain dicts, not thread-safe).
        self.dynamodb_lock = threading.Lock()
        # moto's own size checks refuse what AWS accepts (DynamoDB items, SNS messages to a
        # topic that allows more): ferry_emulator.limits checks sizes instead.
        limits.install_moto_fixes()

    def reset(self) -> None:
        with self.lock:
            self.clock.reset()
            self.config.clear()
            self.config["invalid_paths"] = "reject"
            self.faults.reset()
            self.fsx.reset()
            self.datasync.reset()
            self.bus.reset()
            self.tokens.reset()
            self.iam.reset()

    def settle(self) -> None:
        now, step = self.clock.now(), self.clock.step_seconds
        self.fsx.settle(now, step)
        self.datasync.settle(now, step)


class FerryApp:
    def __init__(self, moto_app: Callable[..., Iterable[bytes]], emulator: Emulator) -> None:
        self.moto_app = moto_app
        self.emulator = emulator
        from .control import Control  # noqa: PLC0415

        self.control = Control(emulator)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        path = environ.get("PATH_INFO", "")
        if path.startswith("/_ferry"):
            return self._send(start_response, self.control.handle(environ))
        if path.startswith("/moto-api/reset") and environ.get("REQUEST_METHOD") == "POST":
            self.emulator.reset()
            return self.moto_app(environ, start_response)

        req = parse_request(environ)
        em = self.emulator
        if req.service == "dynamodb":
            with em.dynamodb_lock:
                return self._dynamodb(req, environ, start_response)
        return self._answer(req, environ, start_response)

    def _dynamodb(self, req: AwsRequest, environ: dict[str, Any],
                  start_response: Callable[..., Any]):
        """A DynamoDB request under the DynamoDB lock, moto's answer read whole within it."""
        chunks = self._answer(req, environ, start_response)
        try:
            return [b"".join(chunks)]
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()

    def _answer(self, req: AwsRequest, environ: dict[str, Any],
                start_response: Callable[..., Any]):
        em = self.emulator
        with em.lock:
            try:
                em.settle()
                fault = em.faults.check(req)
                if fault is not None:
                    return self._send(start_response, error_response(fault, req))
                limits.check(req)
                if req.service == "datasync":
                    em.iam.check(req, iam.datasync_requests(req, em.datasync.tags))
                answer = self._extension(req)
            except ApiError as err:
                return self._send(start_response, error_response(err, req))
            except Exception:  # noqa: BLE001 (a bug here must not look like an AWS answer)
                traceback.print_exc(file=sys.stderr)
                code = {"fsx": "InternalServerError", "datasync": "InternalException"}.get(
                    req.service or "", "InternalFailure")
                err = ApiError(code, "Ferry emulator bug: see the emulator's log.", 500,
                               message_key="message" if req.service == "datasync" else "Message")
                return self._send(start_response, error_response(err, req))
            if answer is not None:
                return self._send(start_response, json_response(answer, req.service))
        if (req.service == "datasync" and em.datasync.wants_moto_answer(req)) or (
                req.service == "fsx" and req.operation == "DescribeFileSystems"):
            return self._complete_moto_answer(req, environ, start_response)
        return self.moto_app(environ, start_response)

    def _extension(self, req: AwsRequest) -> dict[str, Any] | None:
        em = self.emulator
        now, step = em.clock.now(), em.clock.step_seconds
        if req.service == "fsx" and req.operation in FSX_OPS:
            return em.fsx.handle(req, now, step)
        if req.service == "datasync" and req.operation in DATASYNC_OPS:
            return em.datasync.handle(req, now, step)
        if req.service == "states" and req.operation in TASK_TOKEN_OPS:
            return em.tokens.handle(req)
        return None

    def _complete_moto_answer(self, req: AwsRequest, environ: dict[str, Any],
                              start_response: Callable[..., Any]):
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None):
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        chunks = self.moto_app(environ, capture)
        try:
            body = b"".join(chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close:
                close()
        status = captured.get("status", "500 INTERNAL SERVER ERROR")
        if status.startswith("200"):
            try:
                payload = json.loads(body or b"{}")
                with self.emulator.lock:
                    service = self.emulator.fsx if req.service == "fsx" else \
                        self.emulator.datasync
                    payload = service.after_moto(req, payload, self.emulator.clock.now())
                body = json.dumps(payload).encode()
            except ValueError:
                pass
        headers = [(k, v) for k, v in captured.get("headers", [])
                   if k.lower() != "content-length"]
        headers.append(("Content-Length", str(len(body))))
        start_response(status, headers)
        return [body]

    @staticmethod
    def _send(start_response: Callable[..., Any], response: Response):
        status, headers, body = response
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests",
                  500: "Internal Server Error", 503: "Service Unavailable"}.get(status, "Error")
        start_response(f"{status} {reason}", headers + [("Content-Length", str(len(body)))])
        return [body]
