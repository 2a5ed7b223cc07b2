"""FSx for Lustre data repository tasks (and a minimal data repository association). TEST
INFRASTRUCTURE: Ferry's local emulator, not FSx.

moto (5.2.5) implements FSx file systems and backups but no data repository tasks. This module
answers, for file systems created through moto's ``CreateFileSystem``:

* ``CreateDataRepositoryTask``   — FSx API Reference, API_CreateDataRepositoryTask
  (https://docs.aws.amazon.com/fsx/latest/APIReference/API_CreateDataRepositoryTask.html)
* ``DescribeDataRepositoryTasks`` — API_DescribeDataRepositoryTasks
  (https://docs.aws.amazon.com/fsx/latest/APIReference/API_DescribeDataRepositoryTasks.html)
* ``CancelDataRepositoryTask``   — API_CancelDataRepositoryTask
  (https://docs.aws.amazon.com/fsx/latest/APIReference/API_CancelDataRepositoryTask.html)
* ``CreateDataRepositoryAssociation`` / ``DescribeDataRepositoryAssociations`` /
  ``DeleteDataRepositoryAssociation`` — only what is needed to link a file system path to S3
  (created ``AVAILABLE`` at once; no import on create; ``S3.AutoImportPolicy`` and
  ``S3.AutoExportPolicy`` are kept and answered, not acted on).
* ``DescribeFileSystems`` (moto's, completed): a file system created with ``ImportPath``
  answers its ``LustreConfiguration.DataRepositoryConfiguration`` as FSx does.

The task shape follows API_DataRepositoryTask and API_CompletionReport (same reference) and the
botocore model of ``fsx`` 2018-03-01 shipped with the pinned botocore, which carries the same
documentation and the constraints quoted below.

What is verified, and where
---------------------------
* Request constraints (API reference / model): ``Type`` one of EXPORT_TO_REPOSITORY,
  IMPORT_METADATA_FROM_REPOSITORY, RELEASE_DATA_FROM_FILESYSTEM, AUTO_RELEASE_DATA;
  ``FileSystemId`` ``^(fs-[0-9a-f]{8,})$`` (11–21 chars); ``Paths`` ≤ 100 items, each ≤ 4096
  chars of ``[^\\u0000\\u0085\\u2028\\u2029\\r\\n]``; ``Report`` required with ``Enabled``;
  ``Report.Format`` only ``REPORT_CSV_20191124``, ``Report.Scope`` only ``FAILED_FILES_ONLY``,
  ``Report.Path`` 3–4357 chars and "must be located within the file system's ExportPath";
  ``ClientRequestToken`` 1–63 chars of ``[A-za-z0-9_.-]``; ``Tags`` ≤ 50, keys 1–128, values
  ≤ 256; ``CapacityToRelease`` 1–2147483647; ``ReleaseConfiguration.DurationSinceLastAccess``
  Unit ``DAYS``, Value ≥ 0.
* Paths: export paths are relative to the file system root ("If the mount point is /mnt/fsx
  and /mnt/fsx/path1 is a directory ... the path to provide is path1"); import paths are
  ``s3://bucket-name/prefix`` (prefix optional); release paths are relative and "/" releases
  everything.
* Errors: CreateDataRepositoryTask → BadRequest, UnsupportedOperation, FileSystemNotFound,
  IncompatibleParameterError ("a second request is received with the same client request token
  but different parameters settings"), ServiceLimitExceeded, InternalServerError,
  DataRepositoryTaskExecuting ("An existing data repository task is currently executing on the
  file system"); Describe → BadRequest, FileSystemNotFound, DataRepositoryTaskNotFound; Cancel →
  BadRequest, UnsupportedOperation, DataRepositoryTaskNotFound, DataRepositoryTaskEnded ("the
  task has already ended"). Cancel works "if that task is in either the PENDING or EXECUTING
  state". ``IncompatibleParameterError`` carries its required ``Parameter`` member.
* Task shape: ``TaskId`` ``^(task-[0-9a-f]{17,})$``; ``Lifecycle`` PENDING, EXECUTING, FAILED,
  SUCCEEDED, CANCELED, CANCELING; ``CreationTime``/``StartTime``/``EndTime`` timestamps (epoch
  seconds on the awsJson wire); ``ResourceARN``; ``Status`` {TotalCount, SucceededCount,
  FailedCount, LastUpdatedTime, ReleasedCapacity} ("When the task is complete, TotalCount
  equals the sum of SucceededCount plus FailedCount"); ``FailureDetails.Message`` (1–256 chars)
  "populated only when Lifecycle is set to FAILED"; ``Report`` echoed.
* Describe: ``TaskIds`` ≤ 50; ``Filters`` ≤ 3 named file-system-id, task-lifecycle,
  data-repository-association-id, file-cache-id, ≤ 20 values each; ``MaxResults`` ≥ 1; the
  response list holds at most 50 tasks; ``NextToken`` is base64 (the model's pattern).
* Completion report: delivered to ``{path}/task-{id}/failures.csv`` (API_CompletionReport);
  "The report's file name is report.csv for import tasks and failures.csv for export or release
  tasks"; columns FilePath, FileStatus, ErrorCode; RFC 4180 encoding where "Paths starting with
  any of the following characters are contained in single quotation marks: @ + - =", whose
  examples show ``@filename.txt`` becoming ``\"\"\"@filename.txt\"\"\"``; example rows
  ``dir1/myLargeFile,failed,FileSizeTooLarge`` (FSx for Lustre User Guide, "Working with task
  completion reports", https://docs.aws.amazon.com/fsx/latest/LustreGuide/task-completion-report.html).

Choices and simplifications (not verified against AWS)
------------------------------------------------------
* Report folder: task ids already start with ``task-``; the documented ``{path}/task-{id}/``
  would give ``task-task-…``. The emulator writes to ``{Report.Path}/{TaskId}/`` (one
  ``task-``). Ferry's notify looks in both. Lines end with CRLF (RFC 4180); no header row (the
  guide's example has none). Reports are written only for tasks that end FAILED.
* Invalid paths (absolute export path, ``..`` segment, import path not ``s3://`` or outside the
  linked repository) are rejected with ``BadRequest`` by default. The API reference also says
  "If a path that you provide isn't valid, the task fails": set the emulator's config
  ``invalid_paths`` to ``fail_task`` to get a task that ends FAILED instead.
* A file system "has a data repository" when it was created with
  ``LustreConfiguration.ImportPath`` (moto keeps the configuration as sent) or has a data
  repository association; otherwise CreateDataRepositoryTask is a ``BadRequest`` ("will fail if
  a data repository is not linked"). Without ``ExportPath`` the export path is FSx's documented
  default, ``s3://import-bucket/FSxLustre<creation timestamp>``, the timestamp being when the
  emulator first saw the file system.
* ``DataRepositoryTaskExecuting`` is raised while another task of the file system is PENDING,
  EXECUTING or CANCELING (files in flight finish while cancelling).
* Idempotency: a token seen before with the same request (every parameter but the token)
  returns the task it created, whatever its state, before any conflict check; a different
  request with that token is ``IncompatibleParameterError`` (Parameter ``ClientRequestToken``).
* Counting rule (what a task "processes"), evaluated when it starts EXECUTING:
  - the file system's files are the objects under its linked repository (``ImportPath``, or each
    association's ``DataRepositoryPath`` mapped to its ``FileSystemPath``) and under its export
    path, plus files written through the control API (``/_ferry/fsx/files``);
  - import: the objects under each ``s3://`` path (default: the whole linked repository);
  - export and release: the file system's files under each path (default / "/": all of them);
  - auto-release: ``ReleasedCapacity`` = ``CapacityToRelease``.
  A successful export writes the control-API files it covered to the export path in S3.
* Progress: while EXECUTING, SucceededCount grows linearly over the phase; a held task stops at
  half.
* Duration (a benchmark knob, not an AWS fact): by default every lifecycle step lasts one
  ``step_seconds`` of the clock. The emulator's config ``fsx_task_seconds``
  (``{"base": s, "per_file": s}``, emulated seconds, set through ``/_ferry/config``) models a
  task whose duration grows with its file count, e.g. an import taking 60 s + 10 ms per file:
  EXECUTING then lasts ``base + per_file × TotalCount`` (the files counted when the task starts
  EXECUTING, planned failures included; an invalid-path task counts 0 files), and
  SucceededCount grows linearly over that time. PENDING and CANCELING still last one step; a
  held task still stops at half progress, and a released one runs a whole EXECUTING phase again
  from its release. The duration is fixed when the task starts EXECUTING; changing the config
  later affects only tasks that start later. FSx publishes no such figures: pick them to match
  what you measured or want to stress.
* ``FailureDetails.Message`` wording is the emulator's own.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from . import s3store
from .clock import phase_seconds
from .s3store import S3Url
from .wire import ApiError, AwsRequest

TARGET_PREFIX = "AWSSimbaAPIService_v20180301"

TYPES = (
    "EXPORT_TO_REPOSITORY",
    "IMPORT_METADATA_FROM_REPOSITORY",
    "RELEASE_DATA_FROM_FILESYSTEM",
    "AUTO_RELEASE_DATA",
)
BUSY = ("PENDING", "EXECUTING", "CANCELING")
ENDED = ("SUCCEEDED", "FAILED", "CANCELED")
FILTER_NAMES = ("file-system-id", "task-lifecycle", "data-repository-association-id",
                "file-cache-id")

MAX_PATHS = 100
MAX_PATH_CHARS = 4096
MAX_PAGE = 50
MAX_DRA_PAGE = 25

FS_ID = re.compile(r"^fs-[0-9a-f]{8,}$")
TASK_ID = re.compile(r"^task-[0-9a-f]{17,}$")
TOKEN = re.compile(r"^[A-za-z0-9_.-]{1,63}$")  # sic: the model's own [A-za-z...] range
FORBIDDEN = re.compile("[\u0000\u0085\u2028\u2029\r\n]")
TAG_TEXT = re.compile(r"^[\w\s.:/=+\-@]*$")
BASE64 = re.compile(r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")

DEFAULT_ERROR_CODE = "S3AccessDenied"


def bad(message: str) -> ApiError:
    return ApiError("BadRequest", message)


@dataclass
class FailurePlan:
    """Files the next task(s) of a file system fail (control API ``/_ferry/fsx/fail``)."""

    files: list[tuple[str, str]]
    count: int = 0
    error_code: str = DEFAULT_ERROR_CODE
    message: str | None = None
    tasks: int = 1


@dataclass
class Task:
    task_id: str
    arn: str
    account: str
    region: str
    fs_id: str
    type: str
    paths: list[str] | None
    report: dict[str, Any]
    tags: list[dict[str, str]]
    capacity_to_release: int | None
    release_configuration: dict[str, Any] | None
    creation_time: float
    lifecycle: str = "PENDING"
    phase_since: float = 0.0
    start_time: float | None = None
    end_time: float | None = None
    last_updated: float | None = None
    files: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    plan: FailurePlan | None = None
    invalid_path: str | None = None
    held: bool = False
    exec_seconds: float | None = None  # EXECUTING's length; None: one step (config unset)
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    released_capacity: int | None = None
    failure_message: str | None = None
    report_key: str | None = None

    def phase_length(self, step: float) -> float:
        """Emulated seconds the current lifecycle phase lasts."""
        if self.lifecycle == "EXECUTING" and self.exec_seconds is not None:
            return self.exec_seconds
        return step

    def progress(self, now: float, step: float) -> tuple[int, int]:
        """(succeeded, failed) so far."""
        if self.lifecycle != "EXECUTING":
            return self.succeeded, self.failed
        length = self.phase_length(step)
        fraction = min(1.0, max(0.0, (now - self.phase_since) / length)) if length > 0 else 1.0
        if self.held:
            fraction = min(fraction, 0.5)
        ok = self.total - len(self.failures)
        return math.floor(ok * fraction), math.floor(len(self.failures) * fraction)

    def to_api(self, now: float, step: float) -> dict[str, Any]:
        succeeded, failed = self.progress(now, step)
        status: dict[str, Any] = {}
        if self.lifecycle != "PENDING":
            status = {"TotalCount": self.total, "SucceededCount": succeeded,
                      "FailedCount": failed}
            updated = now if self.lifecycle == "EXECUTING" else self.last_updated
            if updated is not None:
                status["LastUpdatedTime"] = round(updated, 3)
        if self.released_capacity is not None:
            status["ReleasedCapacity"] = self.released_capacity
        out: dict[str, Any] = {
            "TaskId": self.task_id,
            "Lifecycle": self.lifecycle,
            "Type": self.type,
            "CreationTime": round(self.creation_time, 3),
            "ResourceARN": self.arn,
            "FileSystemId": self.fs_id,
            "Report": self.report,
        }
        if self.start_time is not None:
            out["StartTime"] = round(self.start_time, 3)
        if self.end_time is not None:
            out["EndTime"] = round(self.end_time, 3)
        if self.tags:
            out["Tags"] = self.tags
        if self.paths is not None:
            out["Paths"] = self.paths
        if status:
            out["Status"] = status
        if self.lifecycle == "FAILED" and self.failure_message:
            out["FailureDetails"] = {"Message": self.failure_message[:256]}
        if self.capacity_to_release is not None:
            out["CapacityToRelease"] = self.capacity_to_release
        if self.release_configuration is not None:
            out["ReleaseConfiguration"] = self.release_configuration
        return out


@dataclass
class Association:
    association_id: str
    arn: str
    fs_id: str
    fs_path: str
    data_path: str
    creation_time: float
    request: dict[str, Any]
    tags: list[dict[str, str]]

    def to_api(self) -> dict[str, Any]:
        out = {
            "AssociationId": self.association_id,
            "ResourceARN": self.arn,
            "FileSystemId": self.fs_id,
            "Lifecycle": "AVAILABLE",
            "FileSystemPath": self.fs_path,
            "DataRepositoryPath": self.data_path,
            "BatchImportMetaDataOnCreate": bool(self.request.get("BatchImportMetaDataOnCreate")),
            "ImportedFileChunkSize": self.request.get("ImportedFileChunkSize", 1024),
            "CreationTime": round(self.creation_time, 3),
        }
        if self.request.get("S3"):
            out["S3"] = self.request["S3"]
        if self.tags:
            out["Tags"] = self.tags
        return out


@dataclass
class Repository:
    """One link between the file system and S3: ``fs_path`` ('' = root) ↔ ``data``; exports
    of files under ``fs_path`` go to ``export``."""

    fs_path: str
    data: S3Url
    export: S3Url


class Fsx:
    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.tasks: dict[str, Task] = {}  # by TaskId, in creation order
        self.tokens: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.associations: dict[str, Association] = {}
        self.assoc_tokens: dict[tuple[str, str, str], tuple[str, str]] = {}
        self.first_seen: dict[str, float] = {}
        self.local_files: dict[str, dict[str, bytes]] = {}
        self.plans: dict[str, list[FailurePlan]] = {}
        self.holds: set[str] = set()

    # ------------------------------------------------------------------ moto lookups

    @staticmethod
    def _file_system(account: str, region: str, fs_id: str):
        from moto.fsx.models import fsx_backends  # noqa: PLC0415

        return fsx_backends[account][region].file_systems.get(fs_id)

    @staticmethod
    def _tag_in_moto(account: str, region: str, arn: str, tags: list[dict[str, str]]) -> None:
        """So that FSx ``ListTagsForResource`` (moto's) lists the task's tags."""
        if tags:
            from moto.fsx.models import fsx_backends  # noqa: PLC0415

            fsx_backends[account][region].tagger.tag_resource(arn, tags)

    def repositories(self, account: str, region: str, fs: Any, now: float) -> list[Repository]:
        dras = [a for a in self.associations.values()
                if a.fs_id == fs.file_system_id and a.arn.split(":")[4] == account]
        repos = []
        for a in dras:
            url = S3Url.parse(a.data_path)
            if url:
                repos.append(Repository(a.fs_path.strip("/"), url, url))
        if repos:
            return repos
        lustre = fs.lustre_configuration or {}
        imported = S3Url.parse(lustre.get("ImportPath") or "")
        if imported is None:
            return []
        exported = S3Url.parse(lustre.get("ExportPath") or "")
        if exported is None:
            seen = self.first_seen.setdefault(fs.file_system_id, now)
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(seen))
            exported = S3Url(imported.bucket, f"FSxLustre{stamp}")
        return [Repository("", imported, exported)]

    def after_moto(self, req: AwsRequest, body: dict[str, Any], now: float) -> dict[str, Any]:
        """``DescribeFileSystems``: moto echoes ``LustreConfiguration`` as it was sent; FSx
        answers a file system linked the older way (created with ``ImportPath``) with its
        ``DataRepositoryConfiguration`` (API_DataRepositoryConfiguration: ``ImportPath``,
        ``ExportPath`` — FSx's default when none was given —, ``AutoImportPolicy`` (default
        ``NONE``), ``ImportedFileChunkSize`` (default 1,024 MiB), ``Lifecycle``)."""
        for described in body.get("FileSystems") or []:
            lustre = described.get("LustreConfiguration")
            if not isinstance(lustre, dict) or not lustre.get("ImportPath"):
                continue
            fs = self._file_system(req.account, req.region, described.get("FileSystemId"))
            if fs is None:
                continue
            [repo] = self.repositories(req.account, req.region, fs, now)[:1] or [None]
            lustre["DataRepositoryConfiguration"] = {
                "Lifecycle": "AVAILABLE",
                "ImportPath": lustre.pop("ImportPath"),
                "ExportPath": lustre.pop("ExportPath", None) or (str(repo.export) if repo else
                                                                  None),
                "ImportedFileChunkSize": lustre.pop("ImportedFileChunkSize", 1024),
                "AutoImportPolicy": lustre.pop("AutoImportPolicy", "NONE"),
            }
        return body

    def fs_files(self, account: str, fs_id: str, repos: list[Repository]) -> dict[str, str]:
        """The file system's files: relative path → where it comes from (an S3 URL or
        ``local``)."""
        files: dict[str, str] = {}
        for repo in repos:
            for source in dict.fromkeys([repo.data, repo.export]):
                prefix = source.key_prefix()
                for key, _size in s3store.list_objects(account, source.bucket, prefix) or []:
                    rel = key[len(prefix):]
                    if rel and not rel.endswith("/"):
                        files.setdefault(_join(repo.fs_path, rel), f"s3://{source.bucket}/{key}")
        for path in self.local_files.get(fs_id, {}):
            files.setdefault(path, "local")
        return files

    # ------------------------------------------------------------------ dispatch

    def handle(self, req: AwsRequest, now: float, step: float) -> dict[str, Any] | None:
        op = req.operation
        if op == "CreateDataRepositoryTask":
            return self.create_task(req, now, step)
        if op == "DescribeDataRepositoryTasks":
            return self.describe_tasks(req, now, step)
        if op == "CancelDataRepositoryTask":
            return self.cancel_task(req, now, step)
        if op == "CreateDataRepositoryAssociation":
            return self.create_association(req, now)
        if op == "DescribeDataRepositoryAssociations":
            return self.describe_associations(req)
        if op == "DeleteDataRepositoryAssociation":
            return self.delete_association(req)
        return None

    # ------------------------------------------------------------------ create

    def create_task(self, req: AwsRequest, now: float, step: float) -> dict[str, Any]:
        p = req.params
        account, region = req.account, req.region
        token = p.get("ClientRequestToken")
        if token is not None and (not isinstance(token, str) or not TOKEN.match(token)):
            raise bad("ClientRequestToken must be 1-63 characters of [A-Za-z0-9_.-].")
        fingerprint = json.dumps({k: v for k, v in p.items() if k != "ClientRequestToken"},
                                 sort_keys=True)
        if token is not None:
            seen = self.tokens.get((account, region, token))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise ApiError(
                        "IncompatibleParameterError",
                        "A request with this client request token was received before with "
                        "different parameters.",
                        extra={"Parameter": "ClientRequestToken"},
                    )
                return {"DataRepositoryTask": self.tasks[seen[1]].to_api(now, step)}

        task_type = p.get("Type")
        if task_type not in TYPES:
            raise bad(f"Type must be one of {', '.join(TYPES)}.")
        fs_id = p.get("FileSystemId")
        if not isinstance(fs_id, str) or not 11 <= len(fs_id) <= 21 or not FS_ID.match(fs_id):
            raise bad("FileSystemId must match ^(fs-[0-9a-f]{8,})$.")
        report = p.get("Report")
        if not isinstance(report, dict) or not isinstance(report.get("Enabled"), bool):
            raise bad("Report is required, with Enabled.")
        paths = p.get("Paths")
        self._check_path_shapes(paths)
        tags = self._check_tags(p.get("Tags"))
        capacity = p.get("CapacityToRelease")
        if capacity is not None and (not isinstance(capacity, int) or
                                     not 1 <= capacity <= 2147483647):
            raise bad("CapacityToRelease must be between 1 and 2147483647.")
        if task_type == "AUTO_RELEASE_DATA" and capacity is None:
            raise bad("CapacityToRelease is required for AUTO_RELEASE_DATA tasks.")
        if task_type != "AUTO_RELEASE_DATA" and capacity is not None:
            raise bad("CapacityToRelease is only valid for AUTO_RELEASE_DATA tasks.")
        release = p.get("ReleaseConfiguration")
        if release is not None:
            if task_type != "RELEASE_DATA_FROM_FILESYSTEM":
                raise bad("ReleaseConfiguration is only valid for RELEASE_DATA_FROM_FILESYSTEM "
                          "tasks.")
            duration = (release or {}).get("DurationSinceLastAccess") or {}
            if duration.get("Unit", "DAYS") != "DAYS" or not isinstance(
                    duration.get("Value", 0), int) or duration.get("Value", 0) < 0:
                raise bad("DurationSinceLastAccess needs Unit DAYS and a Value >= 0.")

        fs = self._file_system(account, region, fs_id)
        if fs is None:
            raise ApiError("FileSystemNotFound", f"File system {fs_id} does not exist.")
        if fs.file_system_type != "LUSTRE":
            raise ApiError("UnsupportedOperation",
                           "Data repository tasks are only supported on FSx for Lustre.")
        repos = self.repositories(account, region, fs, now)
        if not repos:
            raise bad(f"File system {fs_id} is not linked to a data repository.")
        self._check_report(report, repos)
        invalid = self._invalid_path(task_type, paths or [], repos)
        if invalid and self.config.get("invalid_paths", "reject") == "reject":
            raise bad(invalid)

        busy = [t for t in self.tasks.values()
                if t.fs_id == fs_id and t.account == account and t.lifecycle in BUSY]
        if busy:
            raise ApiError("DataRepositoryTaskExecuting",
                           "An existing data repository task is currently executing on the "
                           f"file system ({busy[0].task_id}). Wait until the existing task has "
                           "completed, then create the new task.")

        task_id = "task-" + secrets.token_hex(9)[:17]
        task = Task(
            task_id=task_id,
            arn=f"arn:aws:fsx:{region}:{account}:task/{task_id}",
            account=account, region=region, fs_id=fs_id, type=task_type,
            paths=list(paths) if paths is not None else None, report=dict(report), tags=tags,
            capacity_to_release=capacity, release_configuration=release,
            creation_time=now, phase_since=now, invalid_path=invalid,
            held=fs_id in self.holds,
        )
        queue = self.plans.get(fs_id)
        if queue:
            task.plan = queue[0]
            queue[0].tasks -= 1
            if queue[0].tasks <= 0:
                queue.pop(0)
        self.tasks[task_id] = task
        if token is not None:
            self.tokens[(account, region, token)] = (fingerprint, task_id)
        self._tag_in_moto(account, region, task.arn, tags)
        return {"DataRepositoryTask": task.to_api(now, step)}

    @staticmethod
    def _check_path_shapes(paths: Any) -> None:
        if paths is None:
            return
        if not isinstance(paths, list) or not all(isinstance(x, str) for x in paths):
            raise bad("Paths must be a list of strings.")
        if len(paths) > MAX_PATHS:
            raise bad(f"Paths has {len(paths)} items; at most {MAX_PATHS} are allowed.")
        for path in paths:
            if len(path) > MAX_PATH_CHARS:
                raise bad(f"A path is {len(path)} characters long; at most {MAX_PATH_CHARS} "
                          "are allowed.")
            if FORBIDDEN.search(path):
                raise bad("Paths cannot contain NUL, CR, LF, U+0085, U+2028 or U+2029.")

    @staticmethod
    def _check_tags(tags: Any) -> list[dict[str, str]]:
        if tags is None:
            return []
        if not isinstance(tags, list) or not 1 <= len(tags) <= 50:
            raise bad("Tags must hold 1 to 50 tags.")
        for tag in tags:
            key, value = (tag or {}).get("Key"), (tag or {}).get("Value")
            if not isinstance(key, str) or not 1 <= len(key) <= 128 or not TAG_TEXT.match(key):
                raise bad(f"Invalid tag key: {key!r}.")
            if not isinstance(value, str) or len(value) > 256 or not TAG_TEXT.match(value):
                raise bad(f"Invalid tag value for {key!r}.")
        return [{"Key": t["Key"], "Value": t["Value"]} for t in tags]

    @staticmethod
    def _check_report(report: dict[str, Any], repos: list[Repository]) -> None:
        if not report["Enabled"]:
            return
        path, fmt, scope = report.get("Path"), report.get("Format"), report.get("Scope")
        if not path or not fmt or not scope:
            raise bad("An enabled Report needs Path, Format and Scope.")
        if fmt != "REPORT_CSV_20191124":
            raise bad("Report.Format must be REPORT_CSV_20191124.")
        if scope != "FAILED_FILES_ONLY":
            raise bad("Report.Scope must be FAILED_FILES_ONLY.")
        if not 3 <= len(path) <= 4357 or FORBIDDEN.search(path):
            raise bad("Report.Path must be 3-4357 characters without control characters.")
        url = S3Url.parse(path)
        if url is None or not any(r.export.contains(url) for r in repos):
            where = ", ".join(str(r.export) for r in repos)
            raise bad(f"Report.Path {path} must be located within the file system's export "
                      f"path ({where}).")

    @staticmethod
    def _invalid_path(task_type: str, paths: list[str], repos: list[Repository]) -> str | None:
        for path in paths:
            if task_type == "IMPORT_METADATA_FROM_REPOSITORY":
                url = S3Url.parse(path)
                if url is None:
                    return f"Import path {path!r} must be an S3 URL (s3://bucket/prefix)."
                if not any(r.data.contains(url) or url.contains(r.data) for r in repos):
                    return f"Import path {path} is not in the file system's data repository."
                segments = url.prefix.split("/")
            else:
                if path.startswith("s3://"):
                    return f"Path {path!r} must be a file system path, not an S3 URL."
                if path.startswith("/") and not (
                        task_type in ("RELEASE_DATA_FROM_FILESYSTEM", "AUTO_RELEASE_DATA")
                        and path == "/"):
                    return (f"Path {path!r} must be relative to the file system root "
                            "(projects/a, not /mnt/fsx/projects/a).")
                segments = path.split("/")
            if ".." in segments:
                return f"Path {path!r} cannot contain a '..' segment."
        return None

    # ------------------------------------------------------------------ describe

    def describe_tasks(self, req: AwsRequest, now: float, step: float) -> dict[str, Any]:
        p = req.params
        account, region = req.account, req.region
        ids = p.get("TaskIds")
        filters = p.get("Filters") or []
        if ids is not None:
            if not isinstance(ids, list) or len(ids) > 50:
                raise bad("TaskIds holds at most 50 task IDs.")
            for task_id in ids:
                if not isinstance(task_id, str) or not TASK_ID.match(task_id):
                    raise bad(f"Invalid task ID: {task_id!r}.")
        if not isinstance(filters, list) or len(filters) > 3:
            raise bad("Filters holds at most 3 filters.")
        for f in filters:
            if (f or {}).get("Name") not in FILTER_NAMES:
                raise bad(f"Invalid filter name: {(f or {}).get('Name')!r}.")
            if len((f or {}).get("Values") or []) > 20:
                raise bad("A filter holds at most 20 values.")
        max_results = p.get("MaxResults")
        if max_results is not None and (not isinstance(max_results, int) or max_results < 1):
            raise bad("MaxResults must be an integer greater than zero.")

        tasks = [t for t in self.tasks.values() if t.account == account and t.region == region]
        if ids:
            known = {t.task_id for t in tasks}
            missing = [i for i in ids if i not in known]
            if missing:
                raise ApiError("DataRepositoryTaskNotFound",
                               f"Data repository task(s) not found: {', '.join(missing)}.")
            tasks = [t for t in tasks if t.task_id in ids]
        for f in filters:
            name, values = f["Name"], f.get("Values") or []
            if name == "file-system-id":
                for fs_id in values:
                    if self._file_system(account, region, fs_id) is None and not any(
                            t.fs_id == fs_id for t in tasks):
                        raise ApiError("FileSystemNotFound", f"File system {fs_id} does not exist.")
                tasks = [t for t in tasks if t.fs_id in values]
            elif name == "task-lifecycle":
                tasks = [t for t in tasks if t.lifecycle in values]
            elif name == "data-repository-association-id":
                tasks = [t for t in tasks if any(self._task_in_association(t, v) for v in values)]
            elif name == "file-cache-id":
                tasks = []  # no Amazon File Cache in the emulator
        return _page(tasks, p.get("NextToken"), min(max_results or MAX_PAGE, MAX_PAGE),
                     "DataRepositoryTasks", lambda t: t.to_api(now, step))

    def _task_in_association(self, task: Task, association_id: str) -> bool:
        a = self.associations.get(association_id)
        if a is None or a.fs_id != task.fs_id:
            return False
        if not task.paths:
            return True
        if task.type == "IMPORT_METADATA_FROM_REPOSITORY":
            link = S3Url.parse(a.data_path)
            return any((u := S3Url.parse(p)) and link and (link.contains(u) or u.contains(link))
                       for p in task.paths)
        root = a.fs_path.strip("/")
        return any(p == "/" or _under(p.strip("/"), root) or _under(root, p.strip("/"))
                   for p in task.paths)

    # ------------------------------------------------------------------ cancel

    def cancel_task(self, req: AwsRequest, now: float, step: float) -> dict[str, Any]:
        task_id = req.params.get("TaskId")
        if not isinstance(task_id, str) or not TASK_ID.match(task_id):
            raise bad(f"Invalid task ID: {task_id!r}.")
        task = self.tasks.get(task_id)
        if task is None or task.account != req.account or task.region != req.region:
            raise ApiError("DataRepositoryTaskNotFound",
                           f"Data repository task {task_id} was not found.")
        if task.lifecycle in ENDED:
            raise ApiError("DataRepositoryTaskEnded",
                           f"Data repository task {task_id} has already ended "
                           f"({task.lifecycle}).")
        if task.lifecycle in ("PENDING", "EXECUTING"):
            # Files in flight finish; nothing new starts (API_CancelDataRepositoryTask).
            task.succeeded, task.failed = task.progress(now, step)
            task.lifecycle = "CANCELING"
            task.phase_since = now
            task.last_updated = now
        return {"Lifecycle": task.lifecycle, "TaskId": task.task_id}

    # ------------------------------------------------------------------ lifecycle

    def settle(self, now: float, step: float) -> None:
        for task in self.tasks.values():
            while True:
                due = task.phase_since + task.phase_length(step)
                if task.lifecycle == "PENDING" and now >= due:
                    self._start(task, due)
                elif task.lifecycle == "EXECUTING" and not task.held and now >= due:
                    self._finish(task, due)
                elif task.lifecycle == "CANCELING" and now >= due:
                    task.lifecycle = "CANCELED"
                    task.end_time = task.last_updated = due
                else:
                    break

    def _start(self, task: Task, at: float) -> None:
        task.lifecycle = "EXECUTING"
        task.start_time = task.phase_since = task.last_updated = at
        if task.invalid_path:
            task.exec_seconds = phase_seconds(self.config.get("fsx_task_seconds"), 0)
            return
        fs = self._file_system(task.account, task.region, task.fs_id)
        repos = self.repositories(task.account, task.region, fs, at) if fs else []
        if task.type == "IMPORT_METADATA_FROM_REPOSITORY":
            files: dict[str, str] = {}
            urls = [S3Url.parse(p) for p in task.paths] if task.paths else [r.data for r in repos]
            for url in urls:
                if url is None:
                    continue
                base = url.prefix.rstrip("/")
                for key, _ in s3store.list_objects(task.account, url.bucket, base) or []:
                    if base and key != base and not key.startswith(url.key_prefix()):
                        continue
                    for repo in repos:
                        if repo.data.bucket == url.bucket and key.startswith(
                                repo.data.key_prefix()) and not key.endswith("/"):
                            files[_join(repo.fs_path, key[len(repo.data.key_prefix()):])] = key
                            break
            task.files = sorted(files)
        else:
            everything = self.fs_files(task.account, task.fs_id, repos)
            wanted = [p.strip("/") for p in (task.paths or [])]
            task.files = sorted(f for f in everything
                                if not wanted or any(_under(f, w) for w in wanted))
        plan = task.plan
        if plan is not None:
            failures = [(path, code or plan.error_code) for path, code in plan.files]
            named = {path for path, _ in failures}
            spare = [f for f in task.files if f not in named]
            failures += [(f, plan.error_code) for f in spare[:plan.count]]
            task.failures = failures
        task.total = len(set(task.files) | {path for path, _ in task.failures})
        task.exec_seconds = phase_seconds(self.config.get("fsx_task_seconds"), task.total)

    def _finish(self, task: Task, at: float) -> None:
        task.end_time = task.last_updated = at
        if task.invalid_path:
            task.lifecycle = "FAILED"
            task.failure_message = task.invalid_path
            return
        task.failed = len(task.failures)
        task.succeeded = task.total - task.failed
        if task.type == "AUTO_RELEASE_DATA":
            task.released_capacity = task.capacity_to_release
        if task.plan is None:
            task.lifecycle = "SUCCEEDED"
            if task.type == "EXPORT_TO_REPOSITORY":
                self._export_local_files(task)
            return
        task.lifecycle = "FAILED"
        verb = {"EXPORT_TO_REPOSITORY": "export", "IMPORT_METADATA_FROM_REPOSITORY": "import",
                }.get(task.type, "release")
        message = task.plan.message or (
            f"{task.failed} of {task.total} files failed to {verb}."
            + (" See the task completion report for details." if task.report.get("Enabled")
               else ""))
        task.failure_message = message
        if task.report.get("Enabled"):
            self._write_report(task)

    def _export_local_files(self, task: Task) -> None:
        local = self.local_files.get(task.fs_id) or {}
        fs = self._file_system(task.account, task.region, task.fs_id)
        if not local or fs is None:
            return
        repos = self.repositories(task.account, task.region, fs, task.end_time or 0.0)
        for path in task.files:
            if path not in local:
                continue
            for repo in repos:
                if _under(path, repo.fs_path):
                    rel = path[len(repo.fs_path):].lstrip("/") if repo.fs_path else path
                    s3store.put_object(task.account, repo.export.bucket,
                                       repo.export.key_prefix() + rel, local[path])
                    break

    def _write_report(self, task: Task) -> None:
        url = S3Url.parse(task.report.get("Path") or "")
        if url is None:
            return
        name = "report.csv" if task.type == "IMPORT_METADATA_FROM_REPOSITORY" else "failures.csv"
        key = f"{url.key_prefix()}{task.task_id}/{name}"
        rows = [(path, "failed", code) for path, code in task.failures]
        if s3store.put_object(task.account, url.bucket, key, completion_report_csv(rows)):
            task.report_key = f"s3://{url.bucket}/{key}"

    # ------------------------------------------------------------------ associations

    def create_association(self, req: AwsRequest, now: float) -> dict[str, Any]:
        p = req.params
        account, region = req.account, req.region
        token = p.get("ClientRequestToken")
        fingerprint = json.dumps({k: v for k, v in p.items() if k != "ClientRequestToken"},
                                 sort_keys=True)
        if token is not None:
            seen = self.assoc_tokens.get((account, region, token))
            if seen is not None:
                if seen[0] != fingerprint:
                    raise ApiError("IncompatibleParameterError",
                                   "Client request token reused with different parameters.",
                                   extra={"Parameter": "ClientRequestToken"})
                return {"Association": self.associations[seen[1]].to_api()}
        fs_id = p.get("FileSystemId")
        fs = self._file_system(account, region, fs_id) if isinstance(fs_id, str) else None
        if fs is None:
            raise ApiError("FileSystemNotFound", f"File system {fs_id} does not exist.")
        if (fs.lustre_configuration or {}).get("ImportPath"):
            raise bad("Data repository associations are not supported on file systems "
                      "created with ImportPath.")
        data = p.get("DataRepositoryPath")
        if S3Url.parse(data or "") is None:
            raise bad("DataRepositoryPath must be s3://bucket[/prefix].")
        fs_path = p.get("FileSystemPath") or "/"
        if not fs_path.startswith("/") or ".." in fs_path.split("/"):
            raise bad("FileSystemPath must start with '/' and cannot contain '..'.")
        tags = self._check_tags(p.get("Tags"))
        assoc_id = "dra-" + secrets.token_hex(9)[:17]
        a = Association(assoc_id, f"arn:aws:fsx:{region}:{account}:association/{fs_id}/{assoc_id}",
                        fs_id, fs_path, data, now, dict(p), tags)
        self.associations[assoc_id] = a
        if token is not None:
            self.assoc_tokens[(account, region, token)] = (fingerprint, assoc_id)
        self._tag_in_moto(account, region, a.arn, tags)
        return {"Association": a.to_api()}

    def describe_associations(self, req: AwsRequest) -> dict[str, Any]:
        p = req.params
        found = [a for a in self.associations.values()
                 if a.arn.split(":")[3] == req.region and a.arn.split(":")[4] == req.account]
        ids = p.get("AssociationIds")
        if ids:
            missing = [i for i in ids if i not in {a.association_id for a in found}]
            if missing:
                raise ApiError("DataRepositoryAssociationNotFound",
                               f"Association(s) not found: {', '.join(missing)}.")
            found = [a for a in found if a.association_id in ids]
        for f in p.get("Filters") or []:
            if f.get("Name") == "file-system-id":
                found = [a for a in found if a.fs_id in (f.get("Values") or [])]
        max_results = p.get("MaxResults") or MAX_DRA_PAGE
        return _page(found, p.get("NextToken"), min(max_results, MAX_DRA_PAGE), "Associations",
                     lambda a: a.to_api())

    def delete_association(self, req: AwsRequest) -> dict[str, Any]:
        assoc_id = req.params.get("AssociationId")
        a = self.associations.get(assoc_id)
        if a is None:
            raise ApiError("DataRepositoryAssociationNotFound",
                           f"Association {assoc_id} was not found.")
        del self.associations[assoc_id]
        return {"AssociationId": assoc_id, "Lifecycle": "DELETING",
                "DeleteDataInFileSystem": bool(req.params.get("DeleteDataInFileSystem"))}

    # ------------------------------------------------------------------ control API

    def add_plan(self, spec: dict[str, Any]) -> dict[str, Any]:
        fs_id = spec.get("file_system_id")
        if not fs_id:
            raise ValueError("file_system_id is required")
        files = []
        for item in spec.get("files") or []:
            if isinstance(item, str):
                files.append((item, spec.get("error_code") or DEFAULT_ERROR_CODE))
            else:
                files.append((item["path"], item.get("error_code") or spec.get("error_code")
                              or DEFAULT_ERROR_CODE))
        plan = FailurePlan(files=files, count=int(spec.get("count", 0)),
                           error_code=spec.get("error_code") or DEFAULT_ERROR_CODE,
                           message=spec.get("message"), tasks=int(spec.get("tasks", 1)))
        if not plan.files and plan.count <= 0:
            raise ValueError("give files, or count > 0")
        self.plans.setdefault(fs_id, []).append(plan)
        return {"file_system_id": fs_id, "pending_plans": len(self.plans[fs_id])}

    def add_local_files(self, spec: dict[str, Any]) -> dict[str, Any]:
        fs_id = spec.get("file_system_id")
        if not fs_id:
            raise ValueError("file_system_id is required")
        files = spec.get("files") or {}
        if isinstance(files, list):
            files = {path: "" for path in files}
        store = self.local_files.setdefault(fs_id, {})
        for path, content in files.items():
            store[path.strip("/")] = content.encode() if isinstance(content, str) else content
        return {"file_system_id": fs_id, "files": len(store)}

    def hold(self, spec: dict[str, Any], held: bool, now: float) -> list[str]:
        touched = []
        if spec.get("file_system_id"):
            (self.holds.add if held else self.holds.discard)(spec["file_system_id"])
        for task in self.tasks.values():
            if task.lifecycle in ENDED:
                continue
            if task.task_id == spec.get("task_id") or task.fs_id == spec.get("file_system_id"):
                if task.held and not held and task.lifecycle == "EXECUTING":
                    task.phase_since = max(task.phase_since, now)
                task.held = held
                touched.append(task.task_id)
        return touched

    def state(self, now: float, step: float) -> dict[str, Any]:
        return {
            "tasks": [dict(t.to_api(now, step), Account=t.account, Region=t.region,
                           Held=t.held, ReportObject=t.report_key)
                      for t in self.tasks.values()],
            "associations": [a.to_api() for a in self.associations.values()],
            "holds": sorted(self.holds),
            "pending_failure_plans": {k: len(v) for k, v in self.plans.items() if v},
        }


def completion_report_csv(rows: list[tuple[str, str, str]]) -> bytes:
    """FSx's completion report: ``FilePath,FileStatus,ErrorCode`` rows, RFC 4180, with paths
    that start with ``@ + - =`` wrapped in quotes first (so ``@a`` is written ``\"\"\"@a\"\"\"``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    for path, status, code in rows:
        if path[:1] in ("@", "+", "-", "="):
            path = f'"{path}"'
        writer.writerow([path, status, code])
    return buf.getvalue().encode("utf-8")


def _join(root: str, rel: str) -> str:
    root = root.strip("/")
    return f"{root}/{rel}" if root else rel


def _under(path: str, directory: str) -> bool:
    directory = directory.strip("/")
    return not directory or path == directory or path.startswith(directory + "/")


def _page(items: list[Any], token: Any, size: int, key: str, render) -> dict[str, Any]:
    start = 0
    if token is not None:
        if not isinstance(token, str) or not BASE64.match(token):
            raise bad("Invalid NextToken.")
        try:
            start = int(json.loads(base64.b64decode(token))["offset"])
        except (ValueError, KeyError, TypeError):
            raise bad("Invalid NextToken.") from None
    chunk = items[start:start + size]
    out: dict[str, Any] = {key: [render(i) for i in chunk]}
    if start + size < len(items):
        out["NextToken"] = base64.b64encode(
            json.dumps({"offset": start + size}).encode()).decode()
    return out
