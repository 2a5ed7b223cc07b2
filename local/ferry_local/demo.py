"""`make demo`: Ferry's main job, end to end, on this machine. DEMO (the AWS side is emulated).

    python -m ferry_local.demo [--files 300] [--step-seconds 1.0] [--quiet]

1. Starts the local emulator and creates what a deployment of template.yaml works with: the
   data bucket (its ObjectCreated notifications to an SQS queue), an archive bucket, an FSx for
   Lustre file system linked to the data bucket, a DataSync task from the data bucket to the
   archive, the report topic with a subscriber queue (filter policy `format=text`, what an
   email subscription gets), the lane table and the runner state machine.
2. Starts the function binaries, configured as the template configures them, and the event
   router that sends DataSync's events to datasync-event as the template's rule does.
3. Runs the scheduled export of template.yaml as EventBridge Scheduler would (submit); the
   file system's lane runner starts it (the emulator fails three files, to show the digest).
4. While the export runs, uploads arrive in three waves; the real `s3-trigger` queues each
   wave's import in the file system's lane (and the DataSync files in the DataSync task's
   lane, whose runner transfers them at once).
5. When the export ends, the runner takes everything pending: the three waves become one FSx
   import, with one report listing the three jobs. The export's report ends with the command
   that reruns its three failed files; `ferry retry --failed-only` runs it (one export of
   exactly those files, its report naming the run it reruns). Then the scheduled release.
6. A person submits a DataSync job whose `task` block defines its task: Ferry creates the
   task, runs it, and on a changed definition updates the same task (no second one).
7. The `ferry` CLI along the way: `ferry status` while the export runs and the waves wait,
   `ferry watch` on the export's run; Alice (role hpc-users) asking for a release through
   submit's function URL, refused by the access policy (`ferry whoami` shows her rules); an
   import outside its file system's data repository associations, refused before it is
   queued with the associations named; a
   person's long export submitted with `ferry submit`, then cancelled with `ferry cancel`
   (its report names the caller the URL verified, and why); `ferry history` at the end.
8. Prints each completion report as the subscriber receives it, and stops everything.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import signal
import sys
import threading
import time
from typing import Any, Callable

import subprocess

from . import function_url, paths, processes
from .ferry import ROLE, LocalFerry, Report
from .statemachine import Run

DATA_BUCKET = "ferry-data-repository"
ARCHIVE_BUCKET = "ferry-archive"
REPORT_PREFIX = "ferry-reports"
#: The report each run sends, as (job, status): the export is made to fail three files, and
#: `ferry retry --failed-only` reruns them (same job name); the three waves of uploads are one
#: import; the snapshot job runs twice (its task created, then updated). The teardown's
#: `ferry drain` export (`drain-<file system>`) is added once the file system is known.
EXPECTED = collections.Counter({
    ("incoming-import", "SUCCEEDED"): 1, ("outgoing-sync", "SUCCEEDED"): 1,
    ("scheduled-export", "FAILED"): 1, ("scheduled-export", "SUCCEEDED"): 1,
    ("scheduled-release", "SUCCEEDED"): 1, ("outgoing-snapshot", "SUCCEEDED"): 2,
    ("long-export", "CANCELED"): 1, ("late-export", "CANCELED"): 1})
EXPECTED_REPORTS = sum(EXPECTED.values()) + 1
SNAPSHOT_LANE = "datasync-task:outgoing-snapshot"


class Console:
    """Progress lines with the time since start; reports as boxes. One writer at a time."""

    def __init__(self, quiet: bool) -> None:
        self.began = time.monotonic()
        self.quiet = quiet
        self._lock = threading.Lock()

    def line(self, what: str, text: str) -> None:
        with self._lock:
            print(f"{time.monotonic() - self.began:6.1f}s  {what:<22} {text}", flush=True)

    def progress(self, what: str, text: str) -> None:
        if not self.quiet:
            self.line(what, text)

    def report(self, report: Report) -> None:
        with self._lock:
            rule = "─" * 78
            print(f"\n┌{rule}\n│ SNS → subscriber queue, {time.monotonic() - self.began:.1f}s: "
                  f"{report.subject}\n│ attributes: {json.dumps(report.attributes)}\n├{rule}")
            for text_line in report.message.splitlines():
                print(f"│ {text_line}")
            print(f"└{rule}\n", flush=True)


class Follow:
    """Turns lane runners' events into progress lines: runs taken, tasks, lifecycle, counts."""

    def __init__(self, console: Console, names: dict[str, str]) -> None:
        self.console = console
        #: Lane key → what to call it.
        self.names = names
        self._last: dict[str, tuple[Any, ...]] = {}

    def __call__(self, run: Run, event: dict[str, Any]) -> None:
        kind, state = event["type"], event.get("state", "")
        lane = run.input.get("lane", "") if isinstance(run.input, dict) else ""
        output = event.get("output") or {}

        def say(text: str) -> None:
            self.console.progress(self.names.get(lane, lane), text)

        if kind == "ExecutionStarted":
            say(f"runner {run.name[:32]}… holds the lane")
        elif kind == "StateExited" and state == "Take":
            taken = output.get("taken", {})
            if taken.get("run"):
                run_ = taken["run"]
                spec = run_["spec"]
                say(f"took run {run_['id'][:12]}…: {run_['jobs']} job(s) merged → "
                    f"{spec['kind']}{_scope(spec)}")
        elif kind == "StateRetried":
            say(f"{state} retried (attempt {event.get('attempt')})")
        elif kind == "StateFailed" and state in TASK_STATES:
            say(f"{state} failed: {event.get('error')}")
        elif kind == "StateExited" and state == "StartTask":
            started = output.get("started", {})
            task = started.get("task") or {}
            if started.get("busy"):
                say("file system busy: waiting")
            else:
                label = task.get("task_id") or task.get("task_execution_arn", "?").rsplit("/", 1)[-1]
                say(f"→ StartTask: {label}")
        elif kind == "StateExited" and state in ("GetStatus", "CancelTask"):
            status = output.get("status", {}).get("full", {})
            counts = _counts(status.get("counts", {}))
            waiting = "  (jobs waiting: next check within 60 s)" if status.get("waiting") else ""
            key = (status.get("lifecycle"), counts, bool(waiting))
            if key != self._last.get(run.name):
                self._last[run.name] = key
                say(f"  {status.get('lifecycle', '?'):<13} {counts}{waiting}")
        elif kind == "StateEntered" and state in ("Notify", "NotifyCouldNotStart",
                                                   "NotifyLostTrack", "NotifyExpired"):
            say(f"→ {state}: one report for the run")
        elif kind == "StateEntered" and state == "Idle":
            say("nothing pending: lane released")


TASK_STATES = ("Take", "StartTask", "GetStatus", "CancelTask", "Notify", "Finish",
               "NotifyCouldNotStart", "NotifyLostTrack")


def _scope(job: dict[str, Any]) -> str:
    for field, what in (("paths", "paths"), ("includes", "include patterns")):
        values = job.get(field) or []
        if len(values) > 3:
            return f", {len(values)} {what}"
        if values:
            return f", {what} {' '.join(values)}"
    return ""


def _counts(counts: dict[str, Any]) -> str:
    if "total" in counts:
        return f"files {counts.get('succeeded', 0)}/{counts['total']}" + (
            f", {counts['failed']} failed" if counts.get("failed") else "")
    if counts.get("estimated_files_to_transfer"):  # DataSync, once PREPARING has counted
        return (f"files {counts.get('files_transferred', 0)}/"
                f"{counts['estimated_files_to_transfer']}, "
                f"{counts.get('bytes_transferred', 0):,} bytes")
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ferry_local.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=300,
                        help="files to upload, at least 3 (default 300)")
    parser.add_argument("--step-seconds", type=float, default=1.0,
                        help="emulated seconds per task lifecycle step (default 1.0)")
    parser.add_argument("--quiet", action="store_true", help="only the reports")
    args = parser.parse_args(argv)
    if args.files < 3 or args.step_seconds <= 0:
        parser.error("--files must be at least 3 and --step-seconds above 0")
    # SIGTERM (make killed, CI cancelled) unwinds like Ctrl-C: everything started is stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    console = Console(args.quiet)
    try:
        return demo(console, args.files, args.step_seconds)
    except KeyboardInterrupt:
        console.line("interrupted", "stopped everything the demo started")
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def demo(console: Console, files: int, step_seconds: float) -> int:
    print("Ferry demo: schedules and uploads → s3-trigger / submit → a lane per file system\n"
          "and DataSync task → one runner per lane → FSx / DataSync → SNS reports.\n"
          "AWS is played by the local emulator (test infrastructure: moto + Ferry's FSx and\n"
          "DataSync extension; DynamoDB is moto's), Lambda by a small local Lambda service\n"
          "running the real function binaries, Step Functions by aws-local-stepfunctions\n"
          "running statemachine/ferry.asl.json for every runner execution started.\n",
          flush=True)
    # Waits are shortened (every state still runs): half an emulated lifecycle step per poll.
    with LocalFerry("demo", step_seconds=step_seconds, wait_ms=int(step_seconds * 500),
                    retry_ms=200) as ferry:
        console.line("emulator", f"{ferry.emulator.url} (logs in {ferry.log_dir})")
        s3 = ferry.client("s3")
        ferry.bucket(DATA_BUCKET)
        ferry.bucket(ARCHIVE_BUCKET)
        uploads_url, uploads_arn = ferry.notify_uploads(DATA_BUCKET, "ferry-uploads")
        fs = ferry.file_system(DATA_BUCKET)
        task_arn = ferry.datasync_task("outgoing-to-archive", DATA_BUCKET, "/outgoing",
                                       ARCHIVE_BUCKET, "/archive")
        inbox = ferry.subscribe("ferry-reports-inbox", {"format": ["text"]})
        console.line("created", f"bucket {DATA_BUCKET} (ObjectCreated → SQS ferry-uploads), "
                                f"bucket {ARCHIVE_BUCKET}")
        console.line("", f"FSx for Lustre {fs} linked to s3://{DATA_BUCKET}")
        console.line("", f"DataSync {task_arn.rsplit('/', 1)[1]}: s3://{DATA_BUCKET}/outgoing "
                         f"→ s3://{ARCHIVE_BUCKET}/archive")
        console.line("", "SNS ferry-reports → SQS ferry-reports-inbox "
                         "(filter policy {\"format\": [\"text\"]})")
        console.line("", "DynamoDB lane table, Step Functions runner (statemachine/ferry.asl.json)")

        report_path = f"s3://{DATA_BUCKET}/{REPORT_PREFIX}"
        routes = [
            {"name": "incoming-import", "bucket": DATA_BUCKET, "prefix": "incoming/",
             "job": {"name": "incoming-import", "kind": "fsx_import", "file_system_id": fs,
                     "report": {"enabled": True, "path": report_path},
                     "timeout_seconds": 7200}},
            {"name": "outgoing-sync", "bucket": DATA_BUCKET, "prefix": "outgoing/",
             "source_prefix": "outgoing/",
             "job": {"name": "outgoing-sync", "kind": "datasync", "task_arn": task_arn,
                     "options": {"transfer_mode": "CHANGED",
                                 "verify_mode": "ONLY_FILES_TRANSFERRED"}}},
        ]
        ferry.on_runner_event = Follow(console, {f"fsx:{fs}": f"lane {fs}",
                                                 f"datasync:{task_arn}": "lane DataSync",
                                                 SNAPSHOT_LANE: "lane snapshot"})
        functions = ferry.start_functions(routes=routes)
        console.line("functions", f"{len(functions.names)} binaries (target/debug/ferry-*) behind "
                                  f"the Lambda Invoke and Runtime APIs at {functions.url}")

        printer = _ReportPrinter(inbox, console)
        printer.start()
        try:
            _export_then_waves(ferry, console, s3, files, (uploads_url, uploads_arn),
                               (fs, task_arn), report_path)
            _retried(ferry, console, printer, fs)
            _release(ferry, console, fs, report_path)
            _defined_task(ferry, console)
            _refused_by_the_policy(ferry, console, fs)
            _misrouted(ferry, console)
            _cancelled_by_a_person(ferry, console, fs)
            _drained_before_teardown(ferry, console, fs)
            received = printer.wait(EXPECTED_REPORTS, timeout=60)
        finally:
            printer.stop()
        outcomes = collections.Counter((r.attributes.get("job"), r.attributes.get("status"))
                                       for r in received)
        expected = EXPECTED + collections.Counter({(f"drain-{fs}", "SUCCEEDED"): 1})
        if outcomes != expected:
            console.line("unexpected", f"reports {outcomes}, expected {expected} (logs in "
                                       f"{ferry.log_dir})")
            return 1
        imports = [r for r in received if r.attributes.get("job") == "incoming-import"]
        if len(imports) != 1 or "Jobs:         3 (incoming-import x3)" not in imports[0].message:
            console.line("unexpected", "the three waves did not become one import")
            return 1
        _cli(ferry, console, "history", "--since", "1h")
        console.line("done", f"{len(received)} reports received, as expected; stopping the "
                             "functions and the emulator")
    return 0


def _export_then_waves(ferry: LocalFerry, console: Console, s3: Any, files: int,
                       queue: tuple[str, str], lanes: tuple[str, str],
                       report_path: str) -> None:
    fs, task_arn = lanes
    parameters = {"ScheduleFileSystemId": fs, "ScheduleReportPath": report_path}
    results = {f"results/2026/run-{i:02d}/output-{j}.nc": f"result {i}.{j}\n"
               for i in range(5) for j in range(8)}
    results["@scratch/notes.txt"] = "a file name FSx quotes in its report\n"
    ferry.ctl.fsx_files(fs, results)
    failing = [{"path": "results/2026/run-03/output-7.nc", "error_code": "FileSizeTooLarge"},
               {"path": "results/2026/run-04/output-2.nc", "error_code": "S3AccessDenied"},
               {"path": "@scratch/notes.txt", "error_code": "PathSizeTooLong"}]
    ferry.ctl.fsx_fail(fs, files=failing)
    console.line("file system", f"{len(results)} result files written on {fs}; the emulator "
                                f"will fail {len(failing)} of the next task's files (fault "
                                "injection, to show the failure digest)")
    # The export runs until the waves are in (the emulator holds it EXECUTING).
    ferry.ctl.hold(file_system_id=fs)
    console.line("Scheduler", "EventBridge Scheduler: FsxExportSchedule (template.yaml) → submit")
    answer = ferry.run_schedule("FsxExportSchedule", parameters)
    if not answer.ok:
        raise RuntimeError(f"submit refused the export: {answer.error_message}")
    lane = f"fsx:{fs}"
    processes.wait_for(lambda: any(j["state"] == "running" for j in ferry.lane_jobs(lane).values()),
                       60, interval=0.2, what="the export running")

    day = time.strftime("%Y-%m-%d")
    per_wave = max(1, files * 2 // 9)
    for wave in range(3):
        keys = [f"incoming/wave-{wave}/run-{i % 4:02d}/sample-{i:04d}.h5" for i in range(per_wave)]
        if wave == 1:
            keys += [f"outgoing/{day}/result-{i:04d}.csv" for i in range(files - 3 * per_wave)]
        _upload(ferry, console, s3, keys, queue, f"wave {wave + 1}")
        pending = [j for j in ferry.lane_jobs(lane).values() if j["state"] == "pending"]
        console.line("lane table", f"{len(pending)} import job(s) pending in lane {fs}, "
                                   "behind the export")
        time.sleep(1.0)
    _cli(ferry, console, "status")
    run = ferry.run_in_flight(lane)
    console.line("file system", "the export finishes (the emulator lets it go)")
    ferry.ctl.release(file_system_id=fs)
    if run:
        _cli(ferry, console, "watch", run["id"], "--interval", "1", check=False)
    ferry.settle(lane, timeout=180)
    ferry.settle(f"datasync:{task_arn}", timeout=120)


def _retried(ferry: LocalFerry, console: Console, printer: "_ReportPrinter", fs: str) -> None:
    """The failed export's report ends with the command that reruns its three failed files;
    the person runs it: one new export of exactly those files, whose report names the run it
    reruns (docs/cli.md, `ferry retry`)."""
    failed = printer.find(lambda r: r.attributes.get("job") == "scheduled-export"
                          and r.attributes.get("status") == "FAILED", timeout=60)
    command = next((line.split(None, 1)[1] for line in failed.message.splitlines()
                    if line.startswith("Retry:")), None)
    if command is None or not command.endswith("--failed-only"):
        raise RuntimeError(f"the failed export's report gives no retry command:\n{failed.message}")
    args = command.split()[1:]
    _cli(ferry, console, *args, "--wait", "--interval", "1")
    ferry.settle(f"fsx:{fs}", timeout=120)


def _upload(ferry: LocalFerry, console: Console, s3: Any, keys: list[str],
            queue: tuple[str, str], wave: str) -> None:
    queue_url, queue_arn = queue
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=DATA_BUCKET, Key=k,
                                              Body=f"{k}\n".encode() * 64), keys))
    imports = sum(k.startswith("incoming/") for k in keys)
    console.line("uploaded", f"{wave}: {imports} objects to incoming/ (→ FSx import)"
                 + (f", {len(keys) - imports} to outgoing/ (→ DataSync)"
                    if len(keys) > imports else ""))
    messages = ferry.receive_uploads(queue_url, objects=len(keys))
    # template.yaml TriggerBatchSize's maximum: one batch per wave, fewest jobs.
    deliveries = ferry.deliver(messages, queue_url, queue_arn, batch_size=1000)
    for d in deliveries:
        if not d.invocation.ok:
            raise RuntimeError(f"s3-trigger failed: {d.invocation.error_type}: "
                               f"{d.invocation.error_message}")
    console.line("s3-trigger", f"{len(messages)} SQS messages ({sum(d.objects for d in deliveries)}"
                               f" S3 records) → queued in their lanes, "
                               f"{sum(len(d.failed) for d in deliveries)} returned to the queue")


def _release(ferry: LocalFerry, console: Console, fs: str, report_path: str) -> None:
    parameters = {"ScheduleFileSystemId": fs, "ScheduleReportPath": report_path}
    console.line("Scheduler", "EventBridge Scheduler: FsxReleaseSchedule (template.yaml) → submit")
    answer = ferry.run_schedule("FsxReleaseSchedule", parameters)
    if not answer.ok:
        raise RuntimeError(f"submit refused the release: {answer.error_message}")
    ferry.settle(f"fsx:{fs}", timeout=120)


def _defined_task(ferry: LocalFerry, console: Console) -> None:
    """A job that defines its DataSync task: created on the first run, updated on a change."""
    ds = ferry.client("datasync")
    locations = [ds.create_location_s3(S3BucketArn=f"arn:aws:s3:::{bucket}", Subdirectory=path,
                                       S3Config={"BucketAccessRoleArn": ROLE})["LocationArn"]
                 for bucket, path in ((DATA_BUCKET, "/outgoing"), (ARCHIVE_BUCKET, "/snapshots"))]
    task = {"name": "outgoing-snapshot", "source_location_arn": locations[0],
            "destination_location_arn": locations[1],
            "options": {"verify_mode": "ONLY_FILES_TRANSFERRED", "log_level": "BASIC"}}
    job = {"name": "outgoing-snapshot", "kind": "datasync", "task": task}
    for run, (label, spec) in enumerate([
            ("a DataSync job with a task block (no task ARN)", job),
            ("the same job, its task's log_level now TRANSFER",
             {**job, "task": {**task, "options": {**task["options"], "log_level": "TRANSFER"}}}),
    ], start=1):
        console.line("person", f"submit: {label}")
        answer = ferry.submit({"job": spec, "id": f"outgoing-snapshot-{run}"})
        if not answer.ok:
            raise RuntimeError(f"submit refused the snapshot: {answer.error_message}")
        ferry.settle(SNAPSHOT_LANE, timeout=120, jobs=run)
        tasks = [t["TaskArn"] for t in ds.list_tasks()["Tasks"]
                 if {"Key": "ferry:task-name", "Value": "outgoing-snapshot"}
                 in ds.list_tags_for_resource(ResourceArn=t["TaskArn"])["Tags"]]
        log_level = ds.describe_task(TaskArn=tasks[0])["Options"].get("LogLevel")
        console.line("DataSync", f"{len(tasks)} task tagged ferry:task-name=outgoing-snapshot "
                                 f"({tasks[0].rsplit('/', 1)[1]}, LogLevel {log_level}): "
                                 + ("created by the runner, then run" if run == 1 else
                                    "the same task, updated in place (UpdateTask), then run"))


def _cancelled_by_a_person(ferry: LocalFerry, console: Console, fs: str) -> None:
    """A long export a person submits with the CLI, and an export queued behind it; that one
    is cancelled while pending (its report comes at once), then the export while it runs."""
    ferry.ctl.hold(file_system_id=fs)
    lane = f"fsx:{fs}"
    jobs = {}
    for name, kind in (("long-export", "fsx_export"), ("late-export", "fsx_export")):
        job_file = ferry.log_dir / f"{name}.json"
        job_file.write_text(json.dumps({"name": name, "kind": kind,
                                        "file_system_id": fs, "paths": ["results"]}))
        out = _cli(ferry, console, "submit", str(job_file), "--id", f"{name}-1")
        jobs[name] = out.split()[1]
        processes.wait_for(lambda: (ferry.run_in_flight(lane) or {}).get("task"), 60,
                           interval=0.2, what="the long export started")
    _cli(ferry, console, "cancel", jobs["late-export"], "--reason", "not needed after all")
    _cli(ferry, console, "cancel", jobs["long-export"], "--reason", "wrong folder, resubmitting")
    ferry.settle(lane, timeout=120)
    ferry.ctl.release(file_system_id=fs)


def _drained_before_teardown(ferry: LocalFerry, console: Console, fs: str) -> None:
    """A cluster's last step: `ferry drain` exports one run's results through the lane and
    exits 0 only once they are all in S3 and the lane has no work left
    (docs/space-and-teardown.md)."""
    _cli(ferry, console, "drain", fs, "results/2026/run-01", "--id", "demo-teardown",
         "--interval", "1", "--timeout", "120")


def _refused_by_the_policy(ferry: LocalFerry, console: Console, fs: str) -> None:
    """Alice (role hpc-users) asks for a release through submit's function URL, signed with her
    credentials: the access policy lets hpc-users export and import only, so submit refuses it
    naming her rules, and nothing is queued (docs/access.md)."""
    job_file = ferry.log_dir / "alice-release.json"
    job_file.write_text(json.dumps({"name": "alice-release", "kind": "fsx_release",
                                    "file_system_id": fs, "paths": ["results"],
                                    "release": {"days_since_last_access": 1}}))
    console.line("alice", "signed in as role hpc-users; her requests go to submit's URL")
    _cli(ferry, console, "whoami", key="ASIALOCALALICE")
    _cli(ferry, console, "submit", str(job_file), key="ASIALOCALALICE", check=False)


def _misrouted(ferry: LocalFerry, console: Console) -> None:
    """A job outside its file system's data repository associations is refused before it is
    queued, naming the path, the rule and the associations (docs/job-spec.md, "Checked
    against the file system's links to S3")."""
    fsx = ferry.client("fsx")
    fs = fsx.create_file_system(
        FileSystemType="LUSTRE", StorageCapacity=1200, SubnetIds=["subnet-0123456789abcdef0"],
        LustreConfiguration={"DeploymentType": "PERSISTENT_2"})["FileSystem"]["FileSystemId"]
    for path, s3 in [("/projects/", {"AutoImportPolicy": {"Events": ["NEW", "CHANGED"]}}),
                     ("/results/", {"AutoExportPolicy": {"Events": ["NEW", "CHANGED"]}})]:
        fsx.create_data_repository_association(
            FileSystemId=fs, FileSystemPath=path,
            DataRepositoryPath=f"s3://{DATA_BUCKET}{path}", S3=s3)
    console.line("created", f"FSx for Lustre {fs} linked by two associations: /projects/ "
                            "(automatic import) and /results/ (automatic export)")
    job_file = ferry.log_dir / "misrouted-import.json"
    job_file.write_text(json.dumps({"name": "misrouted-import", "kind": "fsx_import",
                                    "file_system_id": fs,
                                    "paths": [f"s3://{DATA_BUCKET}/incoming/batch-7"]}))
    _cli(ferry, console, "submit", str(job_file), check=False)


def _cli(ferry: LocalFerry, console: Console, *args: str, check: bool = True,
         key: str | None = None) -> str:
    """Runs the `ferry` CLI against the emulator (as the harness identity `key`, by default
    the operator) and shows what it printed."""
    console.line("person", "$ ferry " + " ".join(a if " " not in a else f"'{a}'" for a in args))
    env = ferry.cli_env()
    if key is not None:
        env.update(function_url.identity_env(key))
    done = subprocess.run([str(paths.cli()), *args], env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    with console._lock:  # noqa: SLF001 - one writer at a time
        for line in done.stdout.rstrip().splitlines():
            print(f"          {line}", flush=True)
        if not check and done.returncode != 0:
            for line in done.stderr.rstrip().splitlines():
                print(f"          {line}", flush=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"ferry {args[0]} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class _ReportPrinter:
    """Prints reports as the subscriber queue receives them, while the executions run."""

    def __init__(self, inbox: Any, console: Console) -> None:
        self.inbox = inbox
        self.console = console
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="reports", daemon=True)
        self._lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                for report in self.inbox.poll(wait_seconds=1):
                    self.console.report(report)

    def find(self, match: Callable[[Report], bool], timeout: float) -> Report:
        """The first report received that `match`es, waiting for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((r for r in list(self.inbox.received) if match(r)), None)
            if found is not None:
                return found
            time.sleep(0.1)
        raise RuntimeError(f"no such report within {timeout:.0f} s")

    def wait(self, count: int, timeout: float) -> list[Report]:
        deadline = time.monotonic() + timeout
        while len(self.inbox.received) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        if len(self.inbox.received) < count:
            raise RuntimeError(f"expected {count} reports, received {len(self.inbox.received)}")
        return list(self.inbox.received)


if __name__ == "__main__":
    sys.exit(main())
