"""Fault rules: throttling and forced errors on chosen calls. TEST INFRASTRUCTURE.

A rule matches requests by signing name (``service``: ``fsx``, ``datasync``, ``sns``, ``states``,
``s3``, ``sqs``, ``sts``, ... or ``*``), operation (``CreateDataRepositoryTask``, ``Publish``,
``GetObject``, a list of them, or ``*``) and, optionally, request parameters that must be equal
(``{"FileSystemId": "fs-..."}``; JSON and query protocols only). A matching rule fires with
probability ``probability`` (drawn from its own ``random.Random(seed)``, so a seeded run is
reproducible) at most ``count`` times (unlimited when absent). Rules are checked in the order they
were added; the first that fires answers the request instead of the service. ``after: n`` lets
the rule's first ``n`` matching requests through untouched (fail the second of two calls that
cannot otherwise be told apart, say).

``kind: "throttle"`` answers with the service's own throttling error unless ``code``/``status``
say otherwise:

============  ============================  ======  ==============================================
service       code                          HTTP    source
============  ============================  ======  ==============================================
fsx           ThrottlingException           400     not modeled by FSx; the SDKs' standard retry
                                                    treats this code as throttling
datasync      ThrottlingException           400     same (DataSync models only
                                                    InvalidRequestException/InternalException)
states (SFN)  ThrottlingException           400     same
sns           Throttled                     429     botocore model: ``ThrottledException``,
                                                    ``code: Throttled``, ``httpStatusCode: 429``
s3            SlowDown                      503     S3 API reference, "Error responses"
sqs           RequestThrottled              400     botocore model (awsQueryCompatible)
sts and other query services  Throttling    400     the SDKs' throttling code list
other JSON    ThrottlingException           400
============  ============================  ======  ==============================================

``kind: "error"`` answers with ``code``, ``message`` and ``status`` (400 by default), e.g. a
forced ``DataRepositoryTaskExecuting`` conflict (see :func:`conflict_rule`).
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from .wire import ApiError, AwsRequest

THROTTLING = {
    "s3": ("SlowDown", "Please reduce your request rate.", 503),
    "sns": ("Throttled", "Rate exceeded", 429),
    "sqs": ("RequestThrottled", "Rate exceeded", 400),
}
JSON_THROTTLING = ("ThrottlingException", "Rate exceeded", 400)
QUERY_THROTTLING = ("Throttling", "Rate exceeded", 400)

#: FSx's own text for the error (API model, ``DataRepositoryTaskExecuting``).
FSX_CONFLICT_MESSAGE = (
    "An existing data repository task is currently executing on the file system. "
    "Wait until the existing task has completed, then create the new task."
)
#: DataSync has no modeled conflict error: a start it refuses is an InvalidRequestException
#: whose wording is not documented (this text is the emulator's).
DATASYNC_CONFLICT_MESSAGE = "{task} already has an execution that is queued or running."


@dataclass
class Rule:
    id: int
    service: str
    operations: list[str]
    kind: str = "throttle"
    probability: float = 1.0
    count: int | None = None
    seed: int | None = None
    code: str | None = None
    message: str | None = None
    status: int | None = None
    match: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    after: int = 0
    hits: int = 0
    seen: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id, "service": self.service, "operations": self.operations,
            "kind": self.kind, "probability": self.probability, "count": self.count,
            "seed": self.seed, "code": self.code, "message": self.message, "status": self.status,
            "match": self.match, "after": self.after, "hits": self.hits, "seen": self.seen,
        }

    def applies_to(self, req: AwsRequest) -> bool:
        if self.service not in ("*", req.service):
            return False
        if "*" not in self.operations and req.operation not in self.operations:
            return False
        return all(req.params.get(k) == v for k, v in self.match.items())

    def error_for(self, req: AwsRequest) -> ApiError:
        if self.kind == "throttle":
            if req.service in THROTTLING:
                code, message, status = THROTTLING[req.service]
            elif req.protocol == "query":
                code, message, status = QUERY_THROTTLING
            else:
                code, message, status = JSON_THROTTLING
        else:
            code, message, status = "InternalServerError", "Injected error", 400
        key = "message" if req.service == "datasync" else "Message"
        return ApiError(self.code or code, self.message or message, self.status or status,
                        extra=dict(self.extra), message_key=key)


class Faults:
    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._ids = itertools.count(1)

    def reset(self) -> None:
        self.rules.clear()

    def add(self, spec: dict[str, Any]) -> Rule:
        unknown = set(spec) - {
            "service", "operation", "operations", "kind", "probability", "count", "seed",
            "code", "message", "status", "match", "extra", "after",
        }
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        kind = spec.get("kind", "throttle")
        if kind not in ("throttle", "error"):
            raise ValueError("kind must be 'throttle' or 'error'")
        if kind == "error" and not spec.get("code"):
            raise ValueError("an error rule needs a code")
        ops = spec.get("operations", spec.get("operation", "*"))
        ops = [ops] if isinstance(ops, str) else list(ops)
        probability = float(spec.get("probability", 1.0))
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        count = spec.get("count")
        if count is not None and int(count) < 0:
            raise ValueError("count must be >= 0")
        after = int(spec.get("after") or 0)
        if after < 0:
            raise ValueError("after must be >= 0")
        rule = Rule(
            id=next(self._ids), service=spec.get("service", "*"), operations=ops, kind=kind,
            probability=probability, count=None if count is None else int(count),
            seed=spec.get("seed"), code=spec.get("code"), message=spec.get("message"),
            status=spec.get("status"), match=dict(spec.get("match") or {}),
            extra=dict(spec.get("extra") or {}), after=after,
        )
        rule.rng = random.Random(rule.seed)
        self.rules.append(rule)
        return rule

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def check(self, req: AwsRequest) -> ApiError | None:
        """The error to answer ``req`` with, if a rule fires."""
        for rule in self.rules:
            if not rule.applies_to(req):
                continue
            if rule.count is not None and rule.hits >= rule.count:
                continue
            rule.seen += 1
            if rule.seen <= rule.after:
                continue
            if rule.probability >= 1.0 or rule.rng.random() < rule.probability:
                rule.hits += 1
                return rule.error_for(req)
        return None


def conflict_rule(spec: dict[str, Any]) -> dict[str, Any]:
    """A forced-conflict rule: FSx ``DataRepositoryTaskExecuting`` on
    ``CreateDataRepositoryTask``, or DataSync ``InvalidRequestException`` on
    ``StartTaskExecution``; optionally only for one file system or task."""
    service = spec.get("service")
    count = spec.get("count", 1)
    if service == "fsx":
        match = {"FileSystemId": spec["file_system_id"]} if spec.get("file_system_id") else {}
        return {"service": "fsx", "operation": "CreateDataRepositoryTask", "kind": "error",
                "code": "DataRepositoryTaskExecuting", "message": FSX_CONFLICT_MESSAGE,
                "count": count, "match": match}
    if service == "datasync":
        task = spec.get("task_arn")
        match = {"TaskArn": task} if task else {}
        name = f"Task {task.rsplit('/', 1)[-1]}" if task else "The task"
        message = DATASYNC_CONFLICT_MESSAGE.format(task=name)
        return {"service": "datasync", "operation": "StartTaskExecution", "kind": "error",
                "code": "InvalidRequestException", "message": message, "count": count,
                "match": match}
    raise ValueError("service must be 'fsx' or 'datasync'")
