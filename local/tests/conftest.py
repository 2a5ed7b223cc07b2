"""Fixtures of the end-to-end tests (`make e2e`, part of `make test`).

One `LocalFerry` per session — the emulator (with the lane table), the real function binaries
behind the Lambda APIs, the runner state machine, the launcher that runs every runner execution
started and the event router that sends DataSync's events to datasync-event — with the
resources template.yaml's routes and schedules point at.
Tests do not reset the emulator (that would drop the state machine, topic and routes' bucket
the functions were configured with): each test makes its own file system, bucket and report
subscription, and `isolated` undoes what a test may leave behind (fault rules, held tasks,
upload notifications).

Fault tests (test_faults.py, issue 8): `ferry.ctl` adds emulator fault rules (`throttle`,
`add_fault`, `conflict`, `hold`), `ferry.functions.kill(name)` kills a function instance,
`ferry.functions.fail_responses(name, how)` crashes or times out the next invocation once its
work is done, `ferry.functions.crash_error_name` renames those errors, and
`ferry.functions.starts` counts instances; `ferry.drop_events`, `duplicate_events`,
`delay_events` and `reorder_events` disturb DataSync's events on their way to datasync-event.
`isolated` undoes all of them after each test.
"""

from __future__ import annotations

import pathlib
import signal
import sys
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from ferry_local import processes  # noqa: E402
from ferry_local.ferry import (  # noqa: E402
    DEPLOY_PARAMETERS, ROLE, Inbox, LocalFerry, Report, unique)
from ferry_local.statemachine import Run  # noqa: E402

#: Emulated seconds per task lifecycle step, and the shortened waits (real milliseconds).
STEP_SECONDS = 0.3
WAIT_MS = 300
RETRY_MS = 200
#: A runner that stopped is replaced this long after its last step (the sweep's condition);
#: the longest poll must be shorter (FERRY_POLL_MAX_SECONDS).
LEASE_SECONDS = 12
POLL_MAX_SECONDS = 10
#: How long a DataSync runner waits for its run's end event without news (real seconds).
DATASYNC_FALLBACK_SECONDS = 10


@dataclass
class World:
    """The session's resources behind s3-trigger's routes."""

    ferry: LocalFerry
    data_bucket: str
    archive_bucket: str
    route_fs: str
    route_task_arn: str
    uploads_url: str
    uploads_arn: str

    def report_path(self, bucket: str | None = None) -> str:
        return f"s3://{bucket or self.data_bucket}/ferry-reports"


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    with LocalFerry("e2e", step_seconds=STEP_SECONDS, wait_ms=WAIT_MS,
                    retry_ms=RETRY_MS, lease_seconds=LEASE_SECONDS) as ferry:
        data = ferry.bucket("ferry-e2e-data")
        archive = ferry.bucket("ferry-e2e-archive")
        uploads_url, uploads_arn = ferry.notify_uploads(data, "ferry-e2e-uploads")
        fs = ferry.file_system(data)
        task_arn = ferry.datasync_task("e2e-outgoing", data, "/outgoing", archive, "/archive")
        w = World(ferry, data, archive, fs, task_arn, uploads_url, uploads_arn)
        ferry.start_functions(routes=[
            {"name": "e2e-import", "bucket": data, "prefix": "incoming/",
             "job": {"name": "e2e-import", "kind": "fsx_import", "file_system_id": fs,
                     "report": {"enabled": True, "path": w.report_path()}}},
            {"name": "e2e-sync", "bucket": data, "prefix": "outgoing/",
             "source_prefix": "outgoing/",
             "manifest": {"bucket": data, "prefix": "ferry-manifests/",
                          "bucket_access_role_arn": ROLE},
             "job": {"name": "e2e-sync", "kind": "datasync", "task_arn": task_arn,
                     "options": {"verify_mode": "ONLY_FILES_TRANSFERRED"}}},
        ], env={"FERRY_POLL_MIN_SECONDS": "5", "FERRY_POLL_MAX_SECONDS": str(POLL_MAX_SECONDS),
                # Real seconds here (the runners' waits are shortened, not scaled): a DataSync
                # runner whose events are all lost checks itself this soon.
                "FERRY_DATASYNC_FALLBACK_POLL_SECONDS": str(DATASYNC_FALLBACK_SECONDS)})
        yield w


@pytest.fixture()
def ferry(world: World) -> LocalFerry:
    return world.ferry


@pytest.fixture(autouse=True)
def isolated(request: pytest.FixtureRequest) -> Iterator[None]:
    """After each test: no fault rules, no held file system or task of the test, nothing left
    in the upload queue, no execution of the test still running. And no DataSync call of the
    test was refused by the functions' IAM policies, unless the test took the refusal itself
    (`ferry.take_denied()`): a grant too narrow for what the code does fails here."""
    if "world" not in request.fixturenames:
        yield
        return
    w: World = request.getfixturevalue("world")
    before = set(w.ferry.ctl.state()["fsx"]["holds"])
    w.ferry.take_denied()
    yield
    if w.ferry.parameters != DEPLOY_PARAMETERS:
        w.ferry.grant(DEPLOY_PARAMETERS)
    denied = w.ferry.take_denied()
    w.ferry.ctl.clear_faults()
    if w.ferry.functions is not None:
        w.ferry.functions.clear_faults()
    if w.ferry.router is not None:
        w.ferry.router.clear_faults()
    w.ferry.client_attempts = 3
    for fs in set(w.ferry.ctl.state()["fsx"]["holds"]) - before:
        w.ferry.ctl.release(file_system_id=fs)
    w.ferry.drain(w.uploads_url)
    for run in getattr(request.node, "ferry_runs", []):
        run.abort()
    w.ferry.launch = True
    assert not denied, f"DataSync calls IAM refused (template.yaml's grants): {denied}"


def pytest_configure(config: pytest.Config) -> None:
    # SIGTERM (make killed, CI cancelled) unwinds like Ctrl-C, so the session's fixtures stop
    # the emulator and the functions (which would otherwise only get their parent-death
    # signal).
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


TIMEOUT_TEST = "test_a_task_past_its_timeout_is_cancelled_and_the_job_behind_it_expires"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The timeout test runs last; its execution starts with the session (see timeout_run).
    slow = [item for item in items if item.originalname == TIMEOUT_TEST]
    items[:] = [item for item in items if item not in slow] + slow
    config.stash[_TIMEOUT_SELECTED] = bool(slow)


_TIMEOUT_SELECTED = pytest.StashKey[bool]()


@dataclass
class TimeoutRun:
    """A job held past its timeout, and a job queued behind it past its own deadline."""

    job: str
    waiting: str
    fs: str
    inbox: Inbox


@pytest.fixture(scope="session", autouse=True)
def timeout_run(request: pytest.FixtureRequest) -> Iterator[TimeoutRun | None]:
    """The timeout test's execution, started when the session starts.

    A job's timeout is at least 60 s (job spec), and Ferry measures a task's age with the real
    clock against the task's creation time, so that test needs a minute of wall-clock time
    whatever the emulator's clock does. Started first, that minute overlaps the other tests
    (its runner only polls a held task on a file system of its own); the test itself, run
    last, checks the outcome. A second job, queued behind the first with the same timeout,
    waits in the lane past its own deadline: it ends timed out without running.
    """
    if not request.config.stash.get(_TIMEOUT_SELECTED, False):
        yield None
        return
    w: World = request.getfixturevalue("world")
    ferry = w.ferry
    bucket = ferry.bucket(unique("ferry-e2e-timeout"))
    fs = ferry.file_system(bucket)
    ferry.ctl.fsx_files(fs, {"results/slow.nc": "slow\n"})
    ferry.ctl.hold(file_system_id=fs)  # EXECUTING until released: it can only time out
    inbox = ferry.subscribe(unique("e2e-timeout-reports"), {"format": ["json", "text"]})
    # The export times out at 90 s; the job behind it, enqueued just after with 60 s, is past
    # its deadline long before the lane frees.
    job = submitted(ferry, {"name": unique("e2e-timeout"), "kind": "fsx_export",
                            "file_system_id": fs, "timeout_seconds": 90,
                            "poll": {"min_seconds": 5, "max_seconds": 10}})
    processes.wait_for(lambda: ferry.lane_jobs(f"fsx:{fs}")[job]["state"] == "running", 60,
                       interval=0.2, what="the held export running")
    waiting = submitted(ferry, {"name": unique("e2e-waiting"), "kind": "fsx_import",
                                "file_system_id": fs, "timeout_seconds": 60})
    try:
        yield TimeoutRun(job, waiting, fs, inbox)
    finally:
        ferry.ctl.release(file_system_id=fs)


@pytest.fixture()
def reports(ferry: LocalFerry) -> Inbox:
    """A subscriber of the report topic (both formats) created for this test."""
    return ferry.subscribe(unique("e2e-reports"), {"format": ["json", "text"]})


@pytest.fixture()
def file_system(ferry: LocalFerry) -> Callable[..., tuple[str, str]]:
    """`file_system(objects={key: body}, files={path: content})` → (bucket, fs id): a new
    bucket and a Lustre file system linked to it, with objects in the bucket and files only
    on the file system."""

    def make(objects: dict[str, str] | None = None,
             files: dict[str, str] | None = None) -> tuple[str, str]:
        bucket = ferry.bucket(unique("ferry-e2e"))
        s3 = ferry.client("s3")
        for key, body in (objects or {}).items():
            s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        fs = ferry.file_system(bucket)
        if files:
            ferry.ctl.fsx_files(fs, files)
        return bucket, fs

    return make


def failing_datasync_job(ferry: LocalFerry, world: World,
                         file_system: Callable[..., tuple[str, str]],
                         name: str) -> tuple[str, str, dict[str, Any]]:
    """A DataSync task from a new bucket's `src/` (five objects) to the archive whose next
    execution fails two files, and a job `name` of it whose detailed task report (errors only)
    goes under the bucket's `reports/`. Returns (bucket, task ARN, job)."""
    objects = {f"src/f-{i}.bin": f"{i}\n" for i in range(5)}
    bucket, _ = file_system(objects=objects)
    task_arn = ferry.datasync_task(unique(name), bucket, "/src", world.archive_bucket,
                                   f"/{unique(name)}")
    ferry.ctl.datasync_fail(task_arn, error_code="S3 Get Object Failed",
                            error_detail="Access denied reading the source object",
                            files_failed=2)
    job = {"name": unique(name), "kind": "datasync", "task_arn": task_arn,
           "task_report": {"bucket_arn": f"arn:aws:s3:::{bucket}", "subdirectory": "reports",
                           "bucket_access_role_arn": ROLE, "output_type": "STANDARD",
                           "report_level": "ERRORS_ONLY"}}
    return bucket, task_arn, job


def submitted(ferry: LocalFerry, job: dict[str, Any], **extra: Any) -> str:
    """Submits `job` (as a schedule or a person does); returns its job id."""
    answer = ferry.submit({"job": job, **extra})
    assert answer.ok, answer
    return answer.payload["job_id"]


def reports_of_job(inbox: Inbox, job_id: str, count: int = 2,
                   timeout: float = 30.0) -> list[Report]:
    """The report messages (any format) of the run that covered `job_id`, once there are
    `count` of them. A run's report lists its jobs (JSON) and names the run (both formats)."""

    def mine() -> list[Report]:
        inbox.poll(0)
        json_reports = [r for r in inbox.received if r.format == "json" and any(
            j["id"] == job_id for j in r.json.get("jobs", {}).get("listed", []))]
        runs = {r.json.get("run") for r in json_reports}
        subjects = {r.subject for r in json_reports}
        texts = [r for r in inbox.received if r.format == "text" and r.subject in subjects
                 and (any(run and f"Run:          {run}\n" in r.message for run in runs)
                      or None in runs)]
        found = json_reports + texts
        return found if len(found) >= count else []

    return processes.wait_for(mine, timeout, interval=0.1,
                              what=f"{count} report message(s) of job {job_id}")


def report_of(inbox: Inbox, job_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The JSON report of the run that covered `job_id` (its text twin must have been
    published too): exactly one."""
    mine = reports_of_job(inbox, job_id, 2, timeout)
    json_reports = [r for r in mine if r.format == "json"]
    assert len(json_reports) == 1, f"one report per run, got {len(json_reports)}"
    report = json_reports[0].json
    text = next(r for r in mine if r.format == "text")
    assert text.attributes["status"] == json_reports[0].attributes["status"] \
        == report["outcome"].upper()
    report["_text"] = text.message
    report["_subject"] = text.subject
    return report


def track(request: pytest.FixtureRequest, *runs: Run) -> None:
    """Runs `isolated` aborts if the test ends before they do."""
    existing = getattr(request.node, "ferry_runs", [])
    request.node.ferry_runs = existing + list(runs)
