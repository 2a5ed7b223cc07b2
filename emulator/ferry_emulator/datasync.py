"""DataSync task executions, as AWS reports them. TEST INFRASTRUCTURE: Ferry's local emulator.

moto (5.2.5) keeps DataSync locations and tasks, and the emulator leaves those to it. moto's
executions, though, do not behave like AWS's: their first status is ``INITIALIZING`` (not an AWS
status), the status advances one step per ``DescribeTaskExecution`` call, a second start of a
running task is an error, and there is no ``ListTaskExecutions`` and no tagging. This module
replaces every execution operation:

* ``StartTaskExecution``, ``DescribeTaskExecution``, ``CancelTaskExecution``,
  ``ListTaskExecutions`` (DataSync API Reference, https://docs.aws.amazon.com/datasync/latest/userguide/API_Operations.html);
* ``ListTagsForResource``, ``TagResource``, ``UntagResource`` for every DataSync ARN (tasks and
  locations get the ``Tags`` they were created with);
* ``DescribeTask``/``ListTasks`` answers from moto are corrected: ``Status`` ``RUNNING`` and
  ``CurrentTaskExecutionArn`` while an execution runs, ``AVAILABLE`` otherwise;
* task-level ``Includes``, ``ManifestConfig``, ``TaskReportConfig`` and ``TaskMode`` of
  ``CreateTask``/``UpdateTask`` (which moto drops) are remembered and used by executions.

What is verified, and where
---------------------------
* Statuses (API model ``TaskExecutionStatus``): QUEUED, LAUNCHING, PREPARING, TRANSFERRING,
  VERIFYING, CANCELLING, SUCCESS, ERROR. DataSync User Guide, "Task statuses"
  (https://docs.aws.amazon.com/datasync/latest/userguide/understand-task-statuses.html):
  QUEUED when "another task execution is running"; LAUNCHING "is the first phase of a task
  execution if there is no other task running ... or if queueing isn't enabled"; VERIFYING "if
  your DataSync task is configured to perform a data integrity check" (so not with
  ``VerifyMode`` ``NONE``).
* Queueing: "Task queuing is enabled by default"; "You can queue multiple executions of the same
  task by using different filter settings for each task execution"; "If you want to remove a
  task execution from the queue yourself, cancel the execution" (User Guide, "Starting your
  task", https://docs.aws.amazon.com/datasync/latest/userguide/run-task.html). Queued
  executions run first in, first out.
* ``StartTime`` vs ``LaunchTime``: "For queued tasks, LaunchTime is typically later than
  StartTime" (API model, DescribeTaskExecution).
* ``ListTaskExecutions``: ``TaskArn`` optional, ``MaxResults`` 0–100, opaque ``NextToken``;
  entries ``TaskExecutionArn``, ``Status``, ``TaskMode``.
* Limits: ``Includes``/``Excludes`` at most one ``SIMPLE_PATTERN`` rule of ≤ 102,400 characters
  (no NUL); ``Tags`` ≤ 50, keys 1–256 of ``[a-zA-Z0-9\\s+=._:/-]``, values ≤ 256 of
  ``[a-zA-Z0-9\\s+=._:@/-]``; ``Options`` enums (all from the API model, checked against the
  pinned botocore's model).
* Filters (User Guide, "Filtering data transferred by DataSync",
  https://docs.aws.amazon.com/datasync/latest/userguide/filtering.html): patterns are relative
  to the location path, ``|``-separated, case-sensitive; ``/dir`` and ``/dir/`` match the folder
  and its content; ``*`` is a wildcard; in S3 ``/`` in keys acts as a folder separator.

Choices and simplifications (not verified against AWS)
------------------------------------------------------
* A start that cannot queue is an ``InvalidRequestException`` whose text (the emulator's) says
  the task "already has" an active execution: when ``TaskQueueing`` is ``DISABLED`` and an
  execution is active, or when an active or queued execution of the task has the same filters
  (``Includes``, ``Excludes``, ``ManifestConfig``).
* Cancelling (``CancelTaskExecution``) a queued or running execution makes it ``CANCELLING``,
  then ``ERROR`` one step later, with ``Result.ErrorDetail`` "Task execution was cancelled."
  and no ``ErrorCode``. Ferry assumes a cancelled run ends as ``ERROR`` (the API has no
  cancelled status); the exact ``Result`` AWS reports is unverified. Cancelling an execution
  that is already ``CANCELLING`` or has ended is an ``InvalidRequestException``.
* Counters come from moto's S3 when the source location is S3: the objects under the location's
  subdirectory, narrowed by the filters or the manifest (a CSV of paths relative to the
  location; the manifest is read from S3 when PREPARING starts; a missing manifest ends the run
  in ``ERROR``). With ``TransferMode`` ``CHANGED`` (the default), an object that exists in an S3
  destination with the same size is not transferred. Estimates appear once PREPARING is done;
  ``FilesTransferred``/``BytesTransferred`` grow linearly during TRANSFERRING; ``BytesWritten``
  and ``BytesCompressed`` equal ``BytesTransferred``; ``FilesVerified`` is the files transferred
  (``ONLY_FILES_TRANSFERRED``, the default) or all source files (``POINT_IN_TIME_CONSISTENT``).
  When both locations are S3, a successful transfer copies the objects. Other location types
  count zero files.
* Duration (a benchmark knob, not an AWS fact): by default every phase lasts one
  ``step_seconds`` of the clock. The emulator's config ``datasync_transfer_seconds``
  (``{"base": s, "per_file": s}``, emulated seconds, set through ``/_ferry/config``) models an
  execution whose duration grows with its file count, e.g. 60 s + 10 ms per file: TRANSFERRING
  then lasts ``base + per_file × files``, where files is what PREPARING listed to transfer
  (``EstimatedFilesToTransfer``, after filters, manifest and ``TransferMode``; injected failed
  files included). ``FilesTransferred``/``BytesTransferred`` grow linearly over that time and
  ``Result.TransferDuration`` reports it. LAUNCHING, PREPARING, VERIFYING and CANCELLING still
  last one step each; a held execution still stops at half progress, and a released one runs a
  whole TRANSFERRING phase again from its release. The duration is fixed when TRANSFERRING
  starts. DataSync publishes no such figures: pick them to match what you measured or want to
  stress.
* Injected failures (control API ``/_ferry/datasync/fail``) end the execution in ``ERROR`` after
  the chosen phase with ``Result.ErrorCode``/``ErrorDetail`` and ``FilesFailed``.
* EventBridge events: every status change of an execution (the first status, QUEUED or
  LAUNCHING, included; CANCELLING when cancelled) publishes one "DataSync Task Execution State
  Change" event (``source`` ``aws.datasync``, the execution ARN in ``resources``,
  ``detail.State`` the new status; DataSync User Guide, "Monitoring events by using Amazon
  EventBridge", https://docs.aws.amazon.com/datasync/latest/userguide/events.html) on the
  emulator's bus (:mod:`ferry_emulator.events`), exactly once and in the order of the emulated
  instants at which the changes happened (changes settled by one request are sorted by that
  instant; ties keep their causal order). ``time`` is that instant. Holding an execution
  changes no status and publishes nothing.
* Task reports: when the execution has a ``TaskReportConfig`` with an S3 destination, a summary
  is written to ``{Subdirectory}/Summary-Reports/{task-id}/{exec-id}/{exec-id}.summary-v1.json``
  and, for ``OutputType`` ``STANDARD``, a detailed report of the transferred files (failures,
  plus successes with ``SUCCESSES_AND_ERRORS``) to
  ``{Subdirectory}/Detailed-Reports/{task-id}/{exec-id}/{exec-id}.files-transferred-v1-00001-<hex>.json``
  (the layout Ferry's notify documents in ``shared/src/notify/datasync_report/mod.rs``; entries in
  Basic-mode shape). ``ReportResult.Status`` is ``SUCCESS`` once written.
* Messages of ``InvalidRequestException`` are the emulator's own; "not found" errors say
  "not found", as Ferry's adapter expects.
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import s3store
from .clock import phase_seconds
from .events import EventBus, aws_event
from .wire import ApiError, AwsRequest

TARGET_PREFIX = "FmrsService"
RUNNING = ("LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING")
ENDED = ("SUCCESS", "ERROR")
MAX_FILTER_CHARS = 102_400
MAX_LIST = 100

TASK_ARN = re.compile(r"^arn:aws[\w-]*:datasync:[a-z\-0-9]+:[0-9]{12}:task/task-[0-9a-f]{17}$")
#: DataSync's EventBridge event for an execution's status change (DataSync User Guide,
#: "Monitoring events by using Amazon EventBridge").
EVENT_SOURCE = "aws.datasync"
EVENT_DETAIL_TYPE = "DataSync Task Execution State Change"

EXEC_ARN = re.compile(
    r"^arn:aws[\w-]*:datasync:[a-z\-0-9]+:[0-9]{12}:task/task-[0-9a-f]{17}/execution/"
    r"exec-[0-9a-f]{17}$")
TAG_KEY = re.compile(r"^[a-zA-Z0-9\s+=._:/-]+$")
TAG_VALUE = re.compile(r"^[a-zA-Z0-9\s+=._:@/-]*$")
TOKEN = re.compile(r"^[a-zA-Z0-9=_-]+$")


def invalid(message: str) -> ApiError:
    return ApiError("InvalidRequestException", message, message_key="message")


def _options_enums() -> dict[str, list[str]]:
    import botocore.session  # noqa: PLC0415

    shape = botocore.session.get_session().get_service_model("datasync").shape_for("Options")
    return {name: list(member.enum) for name, member in shape.members.items()
            if getattr(member, "enum", None)}


@dataclass
class DsFailurePlan:
    error_code: str
    error_detail: str
    phase: str = "TRANSFERRING"
    files_failed: int = 0
    executions: int = 1


@dataclass
class Execution:
    arn: str
    task_arn: str
    account: str
    region: str
    options: dict[str, Any]
    includes: list[dict[str, str]] | None
    excludes: list[dict[str, str]] | None
    manifest: dict[str, Any] | None
    report_config: dict[str, Any] | None
    task_mode: str
    start_time: float
    status: str = "LAUNCHING"
    phase_since: float = 0.0
    launch_time: float | None = None
    end_time: float | None = None
    held: bool = False
    transfer_seconds: float | None = None  # TRANSFERRING's length; None: one step (config unset)
    plan: DsFailurePlan | None = None
    files: list[tuple[str, int]] = field(default_factory=list)  # (relative path, size)
    source_total: int = 0
    prepared: bool = False
    transferred_done: bool = False
    verified: int = 0
    durations: dict[str, float] = field(default_factory=dict)
    phase_status: dict[str, str] = field(default_factory=lambda: {
        "Prepare": "PENDING", "Transfer": "PENDING", "Verify": "PENDING"})
    error_code: str | None = None
    error_detail: str | None = None
    failed_files: dict[str, int] = field(default_factory=lambda: {
        "Prepare": 0, "Transfer": 0, "Verify": 0, "Delete": 0})
    report_status: str | None = None
    was_launched: bool = False

    @property
    def verify_mode(self) -> str:
        return self.options.get("VerifyMode", "ONLY_FILES_TRANSFERRED")

    def phase_length(self, step: float) -> float:
        """Emulated seconds the current phase lasts."""
        if self.status == "TRANSFERRING" and self.transfer_seconds is not None:
            return self.transfer_seconds
        return step

    def filter_key(self) -> str:
        return json.dumps([self.includes or [], self.excludes or [], self.manifest or {}],
                          sort_keys=True)

    def to_api(self, now: float, step: float) -> dict[str, Any]:
        files = len(self.files) - self.failed_files["Transfer"]
        size = sum(s for _, s in self.files)
        transferred_files = transferred_bytes = 0
        if self.transferred_done:
            transferred_files = files
            transferred_bytes = sum(s for _, s in self.files[:files]) if files > 0 else 0
        elif self.status == "TRANSFERRING":
            length = self.phase_length(step)
            fraction = (min(1.0, max(0.0, (now - self.phase_since) / length)) if length > 0
                        else 1.0)
            if self.held:
                fraction = min(fraction, 0.5)
            transferred_files = math.floor(max(files, 0) * fraction)
            transferred_bytes = math.floor(size * fraction)
        result: dict[str, Any] = {
            "PrepareStatus": self.phase_status["Prepare"],
            "TransferStatus": self.phase_status["Transfer"],
            "VerifyStatus": self.phase_status["Verify"],
        }
        for name in ("Prepare", "Transfer", "Verify", "Total"):
            if name in self.durations:
                result[f"{name}Duration"] = int(self.durations[name] * 1000)
        if self.error_code:
            result["ErrorCode"] = self.error_code
        if self.error_detail:
            result["ErrorDetail"] = self.error_detail
        out: dict[str, Any] = {
            "TaskExecutionArn": self.arn,
            "Status": self.status,
            "Options": self.options,
            "StartTime": round(self.start_time, 3),
            "EstimatedFilesToTransfer": len(self.files) if self.prepared else 0,
            "EstimatedBytesToTransfer": size if self.prepared else 0,
            "FilesTransferred": transferred_files,
            "BytesWritten": transferred_bytes,
            "BytesTransferred": transferred_bytes,
            "BytesCompressed": transferred_bytes,
            "Result": result,
            "FilesDeleted": 0,
            "FilesSkipped": 0,
            "FilesVerified": self.verified,
            "EstimatedFilesToDelete": 0,
            "TaskMode": self.task_mode,
            "FilesPrepared": len(self.files) if self.prepared else 0,
            "FilesListed": {"AtSource": self.source_total, "AtDestinationForDelete": 0},
            "FilesFailed": dict(self.failed_files),
        }
        if self.includes:
            out["Includes"] = self.includes
        if self.excludes:
            out["Excludes"] = self.excludes
        if self.manifest:
            out["ManifestConfig"] = self.manifest
        if self.report_config:
            out["TaskReportConfig"] = self.report_config
            out["ReportResult"] = {"Status": self.report_status or "PENDING"}
        if self.launch_time is not None:
            out["LaunchTime"] = round(self.launch_time, 3)
        if self.end_time is not None:
            out["EndTime"] = round(self.end_time, 3)
        return out


class DataSync:
    def __init__(self, config: dict[str, Any] | None = None,
                 bus: EventBus | None = None) -> None:
        self.config = config if config is not None else {}
        self.bus = bus if bus is not None else EventBus()
        self._enums: dict[str, list[str]] | None = None
        self.reset()

    def reset(self) -> None:
        self.executions: dict[str, Execution] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.task_extra: dict[str, dict[str, Any]] = {}
        self.plans: dict[str, list[DsFailurePlan]] = {}
        self.holds: set[str] = set()
        #: Status changes not yet published: (emulated instant, execution ARN, status).
        self._changes: list[tuple[float, str, str]] = []

    # ------------------------------------------------------------------ moto lookups

    @staticmethod
    def _backend(account: str, region: str):
        from moto.datasync.models import datasync_backends  # noqa: PLC0415

        return datasync_backends[account][region]

    def _task(self, req: AwsRequest, arn: Any):
        if not isinstance(arn, str) or not TASK_ARN.match(arn):
            raise invalid(f"Invalid TaskArn: {arn!r}.")
        task = self._backend(req.account, req.region).tasks.get(arn)
        if task is None:
            raise invalid(f"Task {arn} is not found.")
        return task

    def _execution(self, req: AwsRequest, arn: Any) -> Execution:
        if not isinstance(arn, str) or not EXEC_ARN.match(arn):
            raise invalid(f"Invalid TaskExecutionArn: {arn!r}.")
        found = self.executions.get(arn)
        if found is None or found.account != req.account or found.region != req.region:
            raise invalid(f"Task execution {arn} is not found.")
        return found

    # ------------------------------------------------------------------ dispatch

    def handle(self, req: AwsRequest, now: float, step: float) -> dict[str, Any] | None:
        try:
            return self._dispatch(req, now, step)
        finally:
            self._publish_changes()

    def _dispatch(self, req: AwsRequest, now: float, step: float) -> dict[str, Any] | None:
        op = req.operation
        if op == "StartTaskExecution":
            return self.start(req, now)
        if op == "DescribeTaskExecution":
            return self._execution(req, req.params.get("TaskExecutionArn")).to_api(now, step)
        if op == "CancelTaskExecution":
            return self.cancel(req, now)
        if op == "ListTaskExecutions":
            return self.list_executions(req)
        if op == "ListTagsForResource":
            return self.list_tags(req)
        if op == "TagResource":
            return self.tag(req)
        if op == "UntagResource":
            return self.untag(req)
        return None

    def wants_moto_answer(self, req: AwsRequest) -> bool:
        """Operations answered by moto whose answer the emulator completes (see
        :meth:`after_moto`)."""
        return req.operation in ("DescribeTask", "ListTasks") or (
            req.operation or "").startswith(("CreateLocation", "CreateTask", "UpdateTask"))

    def after_moto(self, req: AwsRequest, body: dict[str, Any],
                   now: float = 0.0) -> dict[str, Any]:
        op = req.operation or ""
        if op.startswith("CreateLocation") or op == "CreateTask":
            arn = body.get("LocationArn") or body.get("TaskArn")
            if arn and req.params.get("Tags"):
                self.tags[arn] = {t["Key"]: t.get("Value", "") for t in req.params["Tags"]}
        if op in ("CreateTask", "UpdateTask"):
            arn = body.get("TaskArn") or req.params.get("TaskArn")
            extra = self.task_extra.setdefault(arn, {})
            for key in ("Includes", "ManifestConfig", "TaskReportConfig", "TaskMode",
                        "Excludes", "Options"):
                if key in req.params:
                    extra[key] = req.params[key]
        if op == "DescribeTask":
            arn = body.get("TaskArn")
            active = self._active(arn)
            body["Status"] = "RUNNING" if active else "AVAILABLE"
            body.pop("CurrentTaskExecutionArn", None)
            if active:
                body["CurrentTaskExecutionArn"] = active.arn
            extra = self.task_extra.get(arn, {})
            for key in ("Includes", "ManifestConfig", "TaskReportConfig", "TaskMode"):
                if key in extra:
                    body[key] = extra[key]
            for key in [k for k, v in body.items() if v is None]:
                del body[key]
        if op == "ListTasks":
            for entry in body.get("Tasks", []):
                entry["Status"] = "RUNNING" if self._active(entry.get("TaskArn")) else "AVAILABLE"
        return body

    def _active(self, task_arn: str | None) -> Execution | None:
        for e in self.executions.values():
            if e.task_arn == task_arn and (e.status in RUNNING or
                                           (e.status == "CANCELLING" and e.was_launched)):
                return e
        return None

    # ------------------------------------------------------------------ start

    def _check_options(self, options: Any) -> dict[str, Any]:
        if options is None:
            return {}
        if not isinstance(options, dict):
            raise invalid("OverrideOptions must be an object.")
        if self._enums is None:
            self._enums = _options_enums()
        for name, value in options.items():
            allowed = self._enums.get(name)
            if allowed is not None and value not in allowed:
                raise invalid(f"1 validation error detected: Value '{value}' at "
                              f"'overrideOptions.{name[0].lower()}{name[1:]}' failed to satisfy "
                              f"constraint: Member must satisfy enum value set: {allowed}")
            if name == "BytesPerSecond" and (not isinstance(value, int) or value < -1 or
                                             value == 0):
                raise invalid("BytesPerSecond must be -1 or a positive number.")
        return options

    @staticmethod
    def _check_filter(name: str, rules: Any) -> list[dict[str, str]] | None:
        if rules is None:
            return None
        if not isinstance(rules, list) or len(rules) > 1:
            raise invalid(f"{name} holds at most one filter rule.")
        for rule in rules:
            if (rule or {}).get("FilterType", "SIMPLE_PATTERN") != "SIMPLE_PATTERN":
                raise invalid(f"{name}: FilterType must be SIMPLE_PATTERN.")
            value = (rule or {}).get("Value")
            if not isinstance(value, str) or not value or "\x00" in value:
                raise invalid(f"{name}: a filter Value is required.")
            if len(value) > MAX_FILTER_CHARS:
                raise invalid(f"{name}: the filter is {len(value)} characters long; at most "
                              f"{MAX_FILTER_CHARS} are allowed.")
        return rules or None

    @staticmethod
    def _check_tags(tags: Any) -> dict[str, str]:
        if tags is None:
            return {}
        if not isinstance(tags, list) or len(tags) > 50:
            raise invalid("Tags holds at most 50 tags.")
        out = {}
        for tag in tags:
            key, value = (tag or {}).get("Key"), (tag or {}).get("Value", "")
            if not isinstance(key, str) or not 1 <= len(key) <= 256 or not TAG_KEY.match(key):
                raise invalid(f"Invalid tag key: {key!r}.")
            if not isinstance(value, str) or len(value) > 256 or not TAG_VALUE.match(value):
                raise invalid(f"Invalid tag value for {key!r}.")
            out[key] = value
        return out

    def start(self, req: AwsRequest, now: float) -> dict[str, Any]:
        p = req.params
        task = self._task(req, p.get("TaskArn"))
        task_arn = task.arn
        extra = self.task_extra.get(task_arn, {})
        overrides = self._check_options(p.get("OverrideOptions"))
        options = {**(task.metadata.get("Options") or {}), **overrides}
        includes = self._check_filter("Includes", p.get("Includes", extra.get("Includes")))
        excludes = self._check_filter("Excludes",
                                      p.get("Excludes", task.metadata.get("Excludes")))
        manifest = p.get("ManifestConfig", extra.get("ManifestConfig"))
        report = p.get("TaskReportConfig", extra.get("TaskReportConfig"))
        tags = self._check_tags(p.get("Tags"))

        execution = Execution(
            arn=f"{task_arn}/execution/exec-{secrets.token_hex(9)[:17]}",
            task_arn=task_arn, account=req.account, region=req.region, options=options,
            includes=includes, excludes=excludes, manifest=manifest, report_config=report,
            task_mode=extra.get("TaskMode", "BASIC"), start_time=now, phase_since=now,
            held=task_arn in self.holds,
        )
        pending = [e for e in self.executions.values()
                   if e.task_arn == task_arn and e.status not in ENDED]
        if pending:
            if options.get("TaskQueueing", "ENABLED") == "DISABLED":
                raise invalid(f"Task {task_arn.rsplit('/', 1)[-1]} already has an active "
                              "execution and TaskQueueing is DISABLED.")
            same = [e for e in pending if e.filter_key() == execution.filter_key()]
            if same:
                raise invalid(f"Task {task_arn.rsplit('/', 1)[-1]} already has an execution "
                              f"with the same filters queued or running ({same[0].arn}).")
            status = "QUEUED"
        else:
            status = "LAUNCHING"
            execution.launch_time = now
            execution.was_launched = True
        queue = self.plans.get(task_arn)
        if queue:
            execution.plan = queue[0]
            queue[0].executions -= 1
            if queue[0].executions <= 0:
                queue.pop(0)
        self.executions[execution.arn] = execution
        self._enter(execution, status, now)
        if tags:
            self.tags[execution.arn] = tags
        return {"TaskExecutionArn": execution.arn}

    # ------------------------------------------------------------------ cancel / list

    def cancel(self, req: AwsRequest, now: float) -> dict[str, Any]:
        e = self._execution(req, req.params.get("TaskExecutionArn"))
        if e.status in ENDED or e.status == "CANCELLING":
            raise invalid(f"Sync task execution cannot be cancelled in its current status: "
                          f"{e.status}.")
        if e.status in RUNNING:
            self._close_phase(e, now)
        self._enter(e, "CANCELLING", now)
        e.phase_since = now
        return {}

    def list_executions(self, req: AwsRequest) -> dict[str, Any]:
        p = req.params
        task_arn = p.get("TaskArn")
        if task_arn is not None:
            self._task(req, task_arn)
        max_results = p.get("MaxResults")
        if max_results is not None and (not isinstance(max_results, int) or
                                        not 0 <= max_results <= MAX_LIST):
            raise invalid("MaxResults must be between 0 and 100.")
        found = [e for e in self.executions.values()
                 if e.account == req.account and e.region == req.region
                 and (task_arn is None or e.task_arn == task_arn)]
        start = _decode_token(p.get("NextToken"))
        size = max_results or MAX_LIST
        chunk = found[start:start + size]
        out: dict[str, Any] = {"TaskExecutions": [
            {"TaskExecutionArn": e.arn, "Status": e.status, "TaskMode": e.task_mode}
            for e in chunk]}
        if start + size < len(found):
            out["NextToken"] = _encode_token(start + size)
        return out

    # ------------------------------------------------------------------ tags

    def _resource(self, req: AwsRequest, arn: Any) -> str:
        if not isinstance(arn, str) or ":datasync:" not in arn:
            raise invalid(f"Invalid ResourceArn: {arn!r}.")
        if "/execution/" in arn:
            return self._execution(req, arn).arn
        backend = self._backend(req.account, req.region)
        if arn in backend.tasks or arn in backend.locations:
            return arn
        raise invalid(f"Resource {arn} is not found.")

    def list_tags(self, req: AwsRequest) -> dict[str, Any]:
        arn = self._resource(req, req.params.get("ResourceArn"))
        tags = [{"Key": k, "Value": v} for k, v in self.tags.get(arn, {}).items()]
        max_results = req.params.get("MaxResults") or MAX_LIST
        start = _decode_token(req.params.get("NextToken"))
        out: dict[str, Any] = {"Tags": tags[start:start + max_results]}
        if start + max_results < len(tags):
            out["NextToken"] = _encode_token(start + max_results)
        return out

    def tag(self, req: AwsRequest) -> dict[str, Any]:
        arn = self._resource(req, req.params.get("ResourceArn"))
        tags = self._check_tags(req.params.get("Tags"))
        merged = {**self.tags.get(arn, {}), **tags}
        if len(merged) > 50:
            raise invalid("A resource can have at most 50 tags.")
        self.tags[arn] = merged
        return {}

    def untag(self, req: AwsRequest) -> dict[str, Any]:
        arn = self._resource(req, req.params.get("ResourceArn"))
        for key in req.params.get("Keys") or []:
            self.tags.get(arn, {}).pop(key, None)
        return {}

    # ------------------------------------------------------------------ lifecycle

    def settle(self, now: float, step: float) -> None:
        by_task: dict[str, list[Execution]] = {}
        for e in self.executions.values():
            if e.status not in ENDED:
                by_task.setdefault(e.task_arn, []).append(e)
        for task_arn, execs in by_task.items():
            everything = [e for e in self.executions.values() if e.task_arn == task_arn]
            while True:
                changed = False
                for e in execs:
                    changed |= self._advance(e, now, step)
                occupied = any(e.status in RUNNING or (e.status == "CANCELLING" and
                                                       e.was_launched) for e in everything)
                queued = [e for e in execs if e.status == "QUEUED"]
                if not occupied and queued:
                    nxt = queued[0]
                    ends = [e.end_time for e in everything
                            if e.was_launched and e.end_time is not None]
                    at = max([nxt.phase_since] + ends)
                    if at <= now:
                        self._enter(nxt, "LAUNCHING", at)
                        nxt.launch_time = nxt.phase_since = at
                        nxt.was_launched = True
                        changed = True
                if not changed:
                    break
        self._publish_changes()

    def _enter(self, e: Execution, status: str, at: float) -> None:
        """Every status change goes through here: it is recorded for its EventBridge event."""
        e.status = status
        self._changes.append((at, e.arn, status))

    def _publish_changes(self) -> None:
        """Publishes the recorded changes, oldest first (a stable sort: changes at the same
        instant keep the order they happened in), each as DataSync's EventBridge event."""
        changes, self._changes = sorted(self._changes, key=lambda c: c[0]), []
        for at, arn, status in changes:
            self.bus.publish(aws_event(EVENT_SOURCE, EVENT_DETAIL_TYPE, arn, {"State": status},
                                       at), at)

    def _advance(self, e: Execution, now: float, step: float) -> bool:
        changed = False
        while e.status not in ENDED and e.status != "QUEUED":
            due = e.phase_since + e.phase_length(step)
            if now < due:
                break
            if e.status == "CANCELLING":
                self._end(e, "ERROR", due, detail="Task execution was cancelled.")
            elif e.status == "TRANSFERRING" and e.held:
                break
            else:
                self._leave(e, due)
            changed = True
        return changed

    def _close_phase(self, e: Execution, at: float) -> None:
        name = {"PREPARING": "Prepare", "TRANSFERRING": "Transfer",
                "VERIFYING": "Verify"}.get(e.status)
        if name:
            self.durations_add(e, name, at - e.phase_since)

    @staticmethod
    def durations_add(e: Execution, name: str, seconds: float) -> None:
        e.durations[name] = e.durations.get(name, 0.0) + max(0.0, seconds)

    def _leave(self, e: Execution, at: float) -> None:
        phase = e.status
        self._close_phase(e, at)
        plan = e.plan
        if plan is not None and plan.phase == phase:
            self._fail(e, at)
            return
        if phase == "LAUNCHING":
            self._enter(e, "PREPARING", at)
        elif phase == "PREPARING":
            problem = self._prepare(e)
            if problem:
                e.phase_status["Prepare"] = "ERROR"
                self._end(e, "ERROR", at, code=problem[0], detail=problem[1])
                return
            e.phase_status["Prepare"] = "SUCCESS"
            self._enter(e, "TRANSFERRING", at)
            e.transfer_seconds = phase_seconds(self.config.get("datasync_transfer_seconds"),
                                               len(e.files))
        elif phase == "TRANSFERRING":
            e.phase_status["Transfer"] = "SUCCESS"
            e.transferred_done = True
            self._copy(e)
            if e.verify_mode == "NONE":
                self._end(e, "SUCCESS", at)
                return
            self._enter(e, "VERIFYING", at)
        elif phase == "VERIFYING":
            e.phase_status["Verify"] = "SUCCESS"
            e.verified = (e.source_total if e.verify_mode == "POINT_IN_TIME_CONSISTENT"
                          else len(e.files))
            self._end(e, "SUCCESS", at)
            return
        e.phase_since = at

    def _fail(self, e: Execution, at: float) -> None:
        plan = e.plan
        assert plan is not None
        name = {"LAUNCHING": "Prepare", "PREPARING": "Prepare", "TRANSFERRING": "Transfer",
                "VERIFYING": "Verify"}[e.status]
        if e.status == "TRANSFERRING":
            e.failed_files["Transfer"] = min(plan.files_failed, len(e.files))
            e.transferred_done = True
        elif e.status == "VERIFYING":
            e.failed_files["Verify"] = min(plan.files_failed, len(e.files))
            e.verified = len(e.files) - e.failed_files["Verify"]
        e.phase_status[name] = "ERROR"
        self._end(e, "ERROR", at, code=plan.error_code, detail=plan.error_detail)

    def _end(self, e: Execution, status: str, at: float, code: str | None = None,
             detail: str | None = None) -> None:
        self._enter(e, status, at)
        e.end_time = at
        e.phase_since = at
        if code:
            e.error_code = code
        if detail:
            e.error_detail = detail
        e.durations["Total"] = at - (e.launch_time if e.launch_time is not None else e.start_time)
        if e.report_config:
            self._write_reports(e)

    # ------------------------------------------------------------------ data

    def _location(self, e: Execution, which: str):
        backend = self._backend(e.account, e.region)
        task = backend.tasks.get(e.task_arn)
        if task is None:
            return None
        loc = backend.locations.get(getattr(task, which))
        if loc is None or loc.typ != "S3" or not loc.uri.startswith("s3://"):
            return None
        bucket, _, sub = loc.uri[len("s3://"):].partition("/")
        sub = sub.strip("/")
        return bucket, (sub + "/" if sub else "")

    def _prepare(self, e: Execution) -> tuple[str, str] | None:
        """Lists what the execution will transfer; returns (code, detail) on failure."""
        e.prepared = True
        source = self._location(e, "source_location_arn")
        if source is None:
            return None
        bucket, prefix = source
        objects = [(key[len(prefix) - 1:] if prefix else "/" + key, size)
                   for key, size in s3store.list_objects(e.account, bucket, prefix) or []
                   if not key.endswith("/")]
        e.source_total = len(objects)
        if e.manifest:
            s3 = ((e.manifest.get("Source") or {}).get("S3")) or {}
            m_bucket = str(s3.get("S3BucketArn", "")).rsplit(":", 1)[-1]
            body = s3store.get_object(e.account, m_bucket, s3.get("ManifestObjectPath", ""))
            if body is None:
                return ("ManifestNotFound",
                        f"The manifest s3://{m_bucket}/{s3.get('ManifestObjectPath')} could not "
                        "be read.")
            listed = set()
            for line in body.decode("utf-8", "replace").splitlines():
                path = line.split(",", 1)[0].strip().strip('"')
                if path:
                    listed.add("/" + path.lstrip("/"))
            objects = [o for o in objects if o[0] in listed]
        else:
            inc = _patterns(e.includes)
            exc = _patterns(e.excludes)
            objects = [o for o in objects
                       if (not inc or any(_match(o[0], p) for p in inc))
                       and not any(_match(o[0], p) for p in exc)]
        if e.options.get("TransferMode", "CHANGED") == "CHANGED":
            dest = self._location(e, "destination_location_arn")
            if dest is not None:
                existing = dict(s3store.list_objects(e.account, dest[0], dest[1]) or [])
                objects = [o for o in objects
                           if existing.get(dest[1] + o[0].lstrip("/")) != o[1]]
        e.files = objects
        return None

    def _copy(self, e: Execution) -> None:
        source = self._location(e, "source_location_arn")
        dest = self._location(e, "destination_location_arn")
        if source is None or dest is None:
            return
        failed = e.failed_files["Transfer"]
        for rel, _size in e.files[:len(e.files) - failed]:
            body = s3store.get_object(e.account, source[0], source[1] + rel.lstrip("/"))
            if body is not None:
                s3store.put_object(e.account, dest[0], dest[1] + rel.lstrip("/"), body)

    def _write_reports(self, e: Execution) -> None:
        s3 = ((e.report_config or {}).get("Destination") or {}).get("S3") or {}
        bucket = str(s3.get("S3BucketArn", "")).rsplit(":", 1)[-1]
        if not bucket or not s3store.bucket_exists(e.account, bucket):
            e.report_status = "ERROR"
            return
        sub = (s3.get("Subdirectory") or "").strip("/")
        base = f"{sub}/" if sub else ""
        task_id = e.task_arn.rsplit("/", 1)[-1]
        exec_id = e.arn.rsplit("/", 1)[-1]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(e.end_time or 0))
        summary = {
            "TaskExecutionId": exec_id, "TaskArn": e.task_arn, "Result": e.status,
            "ErrorCode": e.error_code, "ErrorDetail": e.error_detail,
            "FilesTransferred": len(e.files) - e.failed_files["Transfer"],
            "FilesFailed": e.failed_files, "EndTime": stamp,
        }
        s3store.put_object(e.account, bucket,
                           f"{base}Summary-Reports/{task_id}/{exec_id}/{exec_id}.summary-v1.json",
                           json.dumps(summary).encode())
        if e.report_config.get("OutputType", "STANDARD") == "STANDARD":
            level = e.report_config.get("ReportLevel", "ERRORS_ONLY")
            failed = e.failed_files["Transfer"]
            entries = []
            for i, (rel, size) in enumerate(e.files):
                ok = i < len(e.files) - failed
                if ok and level != "SUCCESSES_AND_ERRORS":
                    continue
                entry = {
                    "RelativePath": rel,
                    "SrcMetadata": {"Type": "Regular", "ContentSize": size},
                    "Overwrite": "False",
                    "TransferTimestamp": stamp,
                    "TransferType": "CONTENT_AND_METADATA",
                    "TransferStatus": "SUCCESS" if ok else "FAILED",
                }
                if not ok:
                    entry["FailureReason"] = e.error_detail or "Transfer failed"
                    entry["FailureCode"] = e.error_code or "TransferFailed"
                entries.append(entry)
            key = (f"{base}Detailed-Reports/{task_id}/{exec_id}/{exec_id}.files-transferred-"
                   f"v1-00001-{secrets.token_hex(9)[:17]}.json")
            s3store.put_object(e.account, bucket, key, json.dumps(
                {"TaskExecutionId": exec_id, "Transferred": entries}).encode())
        e.report_status = "SUCCESS"

    # ------------------------------------------------------------------ control API

    def add_plan(self, spec: dict[str, Any]) -> dict[str, Any]:
        task_arn = spec.get("task_arn")
        if not task_arn:
            raise ValueError("task_arn is required")
        phase = spec.get("phase", "TRANSFERRING")
        if phase not in ("LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING"):
            raise ValueError("phase must be LAUNCHING, PREPARING, TRANSFERRING or VERIFYING")
        plan = DsFailurePlan(
            error_code=spec.get("error_code") or "TransferFailed",
            error_detail=spec.get("error_detail") or "Injected failure (emulator).",
            phase=phase, files_failed=int(spec.get("files_failed", 0)),
            executions=int(spec.get("executions", 1)))
        self.plans.setdefault(task_arn, []).append(plan)
        return {"task_arn": task_arn, "pending_plans": len(self.plans[task_arn])}

    def hold(self, spec: dict[str, Any], held: bool, now: float) -> list[str]:
        touched = []
        if spec.get("task_arn"):
            (self.holds.add if held else self.holds.discard)(spec["task_arn"])
        for e in self.executions.values():
            if e.status in ENDED:
                continue
            if e.arn == spec.get("execution_arn") or e.task_arn == spec.get("task_arn"):
                if e.held and not held and e.status == "TRANSFERRING":
                    e.phase_since = max(e.phase_since, now)
                e.held = held
                touched.append(e.arn)
        return touched

    def state(self, now: float, step: float) -> dict[str, Any]:
        return {
            "executions": [dict(e.to_api(now, step), TaskArn=e.task_arn, Held=e.held,
                                Tags=self.tags.get(e.arn, {}))
                           for e in self.executions.values()],
            "holds": sorted(self.holds),
            "pending_failure_plans": {k: len(v) for k, v in self.plans.items() if v},
        }


def _patterns(rules: list[dict[str, str]] | None) -> list[str]:
    return [p for r in rules or [] for p in r.get("Value", "").split("|") if p]


def _match(path: str, pattern: str) -> bool:
    """DataSync SIMPLE_PATTERN matching of one ``/``-rooted relative path (see the module
    docstring): ``*`` is a wildcard, a folder pattern matches its content."""
    body = pattern.rstrip("/") if len(pattern) > 1 else pattern
    regex = re.escape(body).replace(r"\*", ".*")
    if body.startswith("/"):
        return re.fullmatch(regex + r"(/.*)?", path) is not None
    return re.fullmatch(r"(.*/)?" + regex + r"(/.*)?", path) is not None


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset-{offset}".encode()).decode().rstrip("=")


def _decode_token(token: Any) -> int:
    if token is None:
        return 0
    if not isinstance(token, str) or not TOKEN.match(token):
        raise invalid("Invalid NextToken.")
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(text.removeprefix("offset-"))
    except ValueError:
        raise invalid("Invalid NextToken.") from None
