"""A steady upload stream through the real system, with every timer scaled by one factor.
BENCHMARK AND TEST INFRASTRUCTURE (`make bench`'s `stream` section, bench/stream.py, and the
short forms in local/tests/test_stream.py).

What runs is Ferry as deployed, on the emulator: S3 uploads, their notifications through SQS to
the real `s3-trigger` (batched by the event source mapping's 30 s window), the lane table, the
real functions, the runner definition run by the launcher, the sweep schedule every 5 minutes.
Every timer is scaled by `time_scale` (0.05: one real second is 20 seconds of the stream):

| timer                                   | unscaled                     | how it is scaled           |
|-----------------------------------------|------------------------------|----------------------------|
| uploads                                 | `rate` per second            | sent `rate / scale` per real second |
| SQS batching window                     | 30 s                         | delivered every 30 x scale s |
| FSx import (emulator `fsx_task_seconds`) | 60 s + 10 ms per file        | base and per-file x scale  |
| DataSync transfer (`datasync_transfer_seconds`) | 120 s                 | x scale                    |
| task PENDING (one emulator step)        | 2 s                          | x scale                    |
| the runner's Wait states                | what task-status asks        | run-local.mjs --time-scale |
| sweep                                   | every 5 min                  | x scale                    |
| lease (runner-stopped only)             | 900 s                        | x scale                    |

What is not scaled: the functions read the wall clock. A task's age is therefore `scale` times
what it would be, so the adaptive wait (a fifth of the age, at least 15 s) stays at its 15 s
minimum; for tasks under 75 s that is what production computes too. Function and emulator
latencies (milliseconds of real time) count `1 / scale` times over: a conservative bias.

Latency of an upload: from its PutObject to the end of the first Ferry task that started after
it and whose paths cover its key (an FSx import imports what exists under its paths when it
starts), in unscaled seconds.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

from . import processes
from .ferry import LocalFerry, lane_of_fs, lane_of_task, sqs_event

DATA_BUCKET = "ferry-stream-data"
ARCHIVE_BUCKET = "ferry-stream-archive"
WINDOW_SECONDS = 30.0
SWEEP_SECONDS = 300.0
PENDING_SECONDS = 2.0


@dataclass
class Scenario:
    """One stream. Times in unscaled seconds."""

    name: str
    minutes: float
    rate: float  # uploads per second
    target: str = "fsx"  # or "datasync"
    #: (start, end) of a task Ferry did not start holding the file system.
    foreign: tuple[float, float] | None = None
    #: When to stop the runner by hand (each while a task runs, at or after that time).
    stop_runners_at: tuple[float, ...] = ()
    import_base: float = 60.0
    import_per_file: float = 0.01
    transfer_seconds: float = 120.0


SCENARIOS = {
    "fsx-steady": Scenario("fsx-steady", 120, 1.0),
    "fsx-foreign": Scenario("fsx-foreign", 120, 1.0, foreign=(45 * 60, 75 * 60)),
    "fsx-runner-stopped": Scenario("fsx-runner-stopped", 30, 1.0,
                                   stop_runners_at=(8 * 60, 14 * 60, 20 * 60)),
    "datasync-steady": Scenario("datasync-steady", 60, 0.5, target="datasync"),
}


@dataclass
class StreamResult:
    scenario: str
    time_scale: float
    minutes: float
    uploads: int
    imported: int
    lost: int
    p50_seconds: float | None
    p95_seconds: float | None
    max_seconds: float | None
    fsx_tasks: int | None = None
    datasync_executions: int | None = None
    task_conflict_retries: int = 0
    busy_answers: int = 0
    runner_executions: int = 0
    max_history_events: int = 0
    runs: int = 0
    reports: int = 0
    runs_with_two_tasks: int = 0
    #: fsx-foreign: seconds from the foreign task's end to Ferry's next task's start.
    start_after_foreign_seconds: float | None = None
    #: DataSync runs: from the end event's delivery to the runner's report step, in real
    #: seconds (the event's path is latency, not a timer: it is not scaled): p50, p95, max.
    detection_delay_seconds: dict[str, float] | None = None
    #: DataSync runs: state transitions from the task's start to its report (p50, max).
    transitions_per_run: dict[str, int] | None = None
    #: datasync-lengths: each run's length (unscaled s), detection delay and transitions.
    lengths: list[dict[str, Any]] | None = None
    #: fsx-runner-stopped: from each stop to the replacement's first Take (p50, p95, max):
    #: its settle wait in unscaled seconds, the rest (event delivery, submit, StartExecution)
    #: in real seconds, as the detection delay; and how each replacement came (submit on the
    #: status change event, or the sweep).
    runner_recovery_seconds: dict[str, float] | None = None
    replaced_by: list[str] | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Stream:
    """Runs one scenario; `run()` returns its result."""

    def __init__(self, scenario: Scenario, time_scale: float, log: Any = print) -> None:
        self.s = scenario
        self.k = time_scale
        self.log = log
        self._stop = threading.Event()
        self.uploads: list[tuple[str, float]] = []  # (key, real time)
        self._upload_lock = threading.Lock()
        self.delivery_errors: list[str] = []
        self.foreign_id: str | None = None
        self.foreign_end: float | None = None
        #: Each runner stopped by hand: (its name, when, real time).
        self.stopped: list[tuple[str, float]] = []

    # -- the run

    def run(self) -> StreamResult:
        s, k = self.s, self.k
        lease = 900 * k if s.stop_runners_at else 900
        with LocalFerry(f"stream-{s.name}", step_seconds=PENDING_SECONDS * k,
                        time_scale=k, lease_seconds=max(10, round(lease)),
                        busy_poll_max_seconds=60) as ferry:
            self.ferry = ferry
            ferry.ctl.config(
                fsx_task_seconds={"base": s.import_base * k, "per_file": s.import_per_file * k},
                datasync_transfer_seconds={"base": s.transfer_seconds * k, "per_file": 0.0})
            ferry.bucket(DATA_BUCKET)
            ferry.bucket(ARCHIVE_BUCKET)
            self.queue_url, self.queue_arn = ferry.notify_uploads(DATA_BUCKET, "stream-uploads")
            self.fs = ferry.file_system(DATA_BUCKET)
            self.task_arn = ferry.datasync_task("stream-outgoing", DATA_BUCKET, "/outgoing",
                                                ARCHIVE_BUCKET, "/archive")
            self.lane = lane_of_fs(self.fs) if s.target == "fsx" else lane_of_task(self.task_arn)
            self.inbox = ferry.subscribe("stream-reports", {"format": ["json"]})
            env = {}
            if s.stop_runners_at:
                # The lease must outlast the longest poll (config check): 900 s x scale.
                env["FERRY_POLL_MAX_SECONDS"] = str(max(5, round(lease) - 5))
            ferry.start_functions(routes=[
                {"name": "stream-import", "bucket": DATA_BUCKET, "prefix": "incoming/",
                 "job": {"name": "stream-import", "kind": "fsx_import",
                         "file_system_id": self.fs}},
                {"name": "stream-sync", "bucket": DATA_BUCKET, "prefix": "outgoing/",
                 "source_prefix": "outgoing/",
                 "job": {"name": "stream-sync", "kind": "datasync", "task_arn": self.task_arn}},
            ], env=env)
            self.t0 = time.time()
            threads = [threading.Thread(target=f, daemon=True, name=f.__name__)
                       for f in (self._upload_loop, self._deliver_loop, self._sweep_loop,
                                 self._events_loop)]
            for t in threads:
                t.start()
            end = self.t0 + s.minutes * 60 * k
            while time.time() < end:
                time.sleep(0.5)
                self._progress()
            self._stop.set()
            for t in threads:
                t.join(60)
            self._deliver_all()
            ferry.settle(self.lane, timeout=max(120.0, 600 * k + 60))
            while self.inbox.poll(1):  # ten messages a receive: until the queue is empty
                pass
            return self._result()

    def _progress(self) -> None:
        elapsed = (time.time() - self.t0) / self.k
        if int(elapsed) // 600 != int(elapsed - 0.5 / self.k) // 600:
            jobs = self.ferry.lane_jobs(self.lane)
            pending = sum(j["state"] == "pending" for j in jobs.values())
            self.log(f"  {self.s.name}: {elapsed / 60:5.1f} min, {len(self.uploads)} uploads, "
                     f"{pending} jobs pending, {len(self.ferry.runners())} runner executions")

    # -- the loops (real time)

    def _upload_loop(self) -> None:
        s3 = self.ferry.client("s3", attempts=10)
        prefix = "incoming" if self.s.target == "fsx" else "outgoing"
        interval = self.k / self.s.rate
        i = 0
        next_at = self.t0
        with ThreadPoolExecutor(4) as pool:
            while not self._stop.is_set():
                now = time.time()
                due = int((now - self.t0) / interval) + 1
                keys = []
                while i < due:
                    minute = int(i / self.s.rate // 60)
                    keys.append(f"{prefix}/m{minute:04d}/f-{i:07d}.dat")
                    i += 1
                if keys:
                    list(pool.map(lambda key: self._put(s3, key), keys))
                next_at += max(interval, 0.05)
                time.sleep(max(0.0, min(next_at, now + 0.2) - time.time()))

    def _put(self, s3: Any, key: str) -> None:
        at = time.time()
        s3.put_object(Bucket=DATA_BUCKET, Key=key, Body=b"x" * 64)
        with self._upload_lock:
            self.uploads.append((key, at))

    def _deliver_loop(self) -> None:
        window = WINDOW_SECONDS * self.k
        while not self._stop.wait(window):
            self._deliver_all()

    def _deliver_all(self) -> None:
        """What the event source mapping does when its window closes: every visible message,
        in batches of 100 (TriggerBatchSize), each acknowledged unless reported failed."""
        sqs = self.ferry.client("sqs", attempts=10)
        messages: list[dict[str, Any]] = []
        while True:
            got = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                      WaitTimeSeconds=0, VisibilityTimeout=60,
                                      AttributeNames=["All"]).get("Messages", [])
            messages += got
            if len(got) < 10:
                break
        assert self.ferry.functions is not None
        for start in range(0, len(messages), 100):
            batch = messages[start:start + 100]
            answer = self.ferry.functions.invoke("ferry-s3-trigger",
                                                 sqs_event(batch, self.queue_arn))
            failed = set() if not answer.ok else {
                f["itemIdentifier"] for f in answer.payload.get("batchItemFailures", [])}
            if not answer.ok:
                self.delivery_errors.append(f"{answer.error_type}: {answer.error_message}")
                continue
            done = [m for m in batch if m["MessageId"] not in failed]
            for chunk in range(0, len(done), 10):
                entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                           for n, m in enumerate(done[chunk:chunk + 10])]
                sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)

    def _sweep_loop(self) -> None:
        while not self._stop.wait(SWEEP_SECONDS * self.k):
            self.ferry.sweep()

    def _events_loop(self) -> None:
        """The scenario's interventions: a foreign task, a runner stopped by hand."""
        s, ferry = self.s, self.ferry
        if s.foreign is not None:
            start, end = s.foreign
            if self._stop.wait(max(0.0, self.t0 + start * self.k - time.time())):
                return
            # Wait for Ferry's task to end: the foreign one starts on a free file system.
            processes.wait_for(lambda: self._stop.is_set() or all(
                t["Lifecycle"] in ("SUCCEEDED", "FAILED", "CANCELED")
                for t in ferry.fsx_tasks(self.fs)), 600, interval=0.05, what="a free fs")
            ferry.ctl.hold(task_id=self._foreign_task())
            if self._stop.wait(max(0.0, self.t0 + end * self.k - time.time())):
                return
            ferry.ctl.release(task_id=self.foreign_id)
            processes.wait_for(lambda: self._foreign_ended(), 60, interval=0.05,
                               what="the foreign task's end")
        for at in s.stop_runners_at:
            if self._stop.wait(max(0.0, self.t0 + at * self.k - time.time())):
                return

            def running() -> Any:
                jobs = ferry.lane_jobs(self.lane).values()
                return any(j["state"] == "running" for j in jobs) and [
                    r for r in ferry.runners(self.lane) if not r.done]

            runners = processes.wait_for(running, 300, interval=0.05, what="a run in flight")
            # Before the stop: its status change event may be handled before stop_runner returns.
            self.stopped.append((runners[-1].name, time.time()))
            ferry.stop_runner(runners[-1])
            self.log(f"  {s.name}: stopped runner {runners[-1].name} by hand")

    def _foreign_task(self) -> str:
        created = self.ferry.client("fsx").create_data_repository_task(
            FileSystemId=self.fs, Type="EXPORT_TO_REPOSITORY", Report={"Enabled": False})
        self.foreign_id = created["DataRepositoryTask"]["TaskId"]
        self.log(f"  {self.s.name}: a foreign task {self.foreign_id} holds the file system")
        return self.foreign_id

    def _foreign_ended(self) -> bool:
        [task] = [t for t in self.ferry.fsx_tasks(self.fs) if t["TaskId"] == self.foreign_id]
        if task["Lifecycle"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            self.foreign_end = float(task["EndTime"])
            return True
        return False

    # -- the result


    def _tasks(self) -> list[dict[str, Any]]:
        """Ferry's tasks (FSx tasks or DataSync executions): (paths, start, end, ok)."""
        if self.s.target == "fsx":
            out = []
            for t in self.ferry.fsx_tasks(self.fs):
                if t["TaskId"] == self.foreign_id:
                    continue
                out.append({"id": t["TaskId"], "paths": t.get("Paths") or [""],
                            "start": float(t.get("StartTime") or t["CreationTime"]),
                            "end": float(t.get("EndTime") or 0),
                            "ok": t["Lifecycle"] == "SUCCEEDED"})
            return out
        out = []
        for e in self.ferry.datasync_executions(self.task_arn):
            includes = [r["Value"] for r in e.get("Includes", [])]
            patterns = [p for v in includes for p in v.split("|")] or ["/"]
            out.append({"id": e["TaskExecutionArn"], "patterns": patterns,
                        "start": float(e["StartTime"].timestamp()),
                        "end": float(e["StartTime"].timestamp()
                                     + (e.get("Result", {}).get("TotalDuration") or 0) / 1000),
                        "ok": e["Status"] == "SUCCESS"})
        return out

    def _covers(self, task: dict[str, Any], key: str) -> bool:
        if self.s.target == "fsx":
            url = f"s3://{DATA_BUCKET}/{key}"
            return any(url.startswith(p) for p in task["paths"])
        rel = "/" + key.removeprefix("outgoing/")
        return any(p == "/" or rel == p or (p.endswith("*") and rel.startswith(p[:-1]))
                   or rel.startswith(p.rstrip("/") + "/") for p in task["patterns"])

    def _result(self) -> StreamResult:
        s, k, ferry = self.s, self.k, self.ferry
        tasks = sorted(self._tasks(), key=lambda t: t["start"])
        latencies = []
        for key, at in self.uploads:
            task = next((t for t in tasks if t["start"] >= at and t["ok"]
                         and self._covers(t, key)), None)
            if task is not None:
                latencies.append((task["end"] - at) / k)
        latencies.sort()
        runners = ferry.runners()
        conflicts = sum(e == "TaskConflict" for r in runners for e in r.errors("StartTask"))
        busy = sum(bool(o["started"]["busy"]) for r in runners for o in r.outputs("StartTask"))
        jobs = ferry.lane_jobs(self.lane)
        runs = {j["run"] for j in jobs.values() if j["run"]}
        reported = {r.json.get("run") for r in self.inbox.received}
        result = StreamResult(
            scenario=s.name, time_scale=k, minutes=s.minutes, uploads=len(self.uploads),
            imported=len(latencies), lost=len(self.uploads) - len(latencies),
            p50_seconds=round(statistics.median(latencies), 1) if latencies else None,
            p95_seconds=round(latencies[min(len(latencies) - 1,
                                            int(0.95 * len(latencies)))], 1)
            if latencies else None,
            max_seconds=round(latencies[-1], 1) if latencies else None,
            task_conflict_retries=conflicts, busy_answers=busy,
            runner_executions=len(runners),
            max_history_events=max((r.history_events for r in runners), default=0),
            runs=len(runs), reports=len(runs & reported),
            # Each run starts one task (its token derives from the run id): any more is a
            # task started twice.
            runs_with_two_tasks=max(0, len(tasks) - len(runs)))
        if s.target == "fsx":
            result.fsx_tasks = len(tasks)
        else:
            result.datasync_executions = len(tasks)
            rows = [row for r in runners for row in followed(ferry, r)]
            result.detection_delay_seconds = spread([row["detection_delay_seconds"] for row in rows
                                                     if "detection_delay_seconds" in row])
            result.transitions_per_run = {
                k: int(v) for k, v in (spread([row["transitions"] for row in rows]) or {}).items()
                if k in ("p50", "max")}
        if self.stopped:
            self._recovery(result, runners)
        if self.foreign_end is not None:
            after = [t["start"] for t in tasks if t["start"] >= self.foreign_end]
            if after:
                result.start_after_foreign_seconds = round((min(after) - self.foreign_end) / k, 1)
        if self.delivery_errors:
            result.notes.append(f"{len(self.delivery_errors)} s3-trigger invocations failed "
                                f"(redelivered): {self.delivery_errors[0]}")
        unfinished = [j for j in jobs.values() if j["state"] != "succeeded"]
        if unfinished:
            result.notes.append(f"{len(unfinished)} jobs not succeeded: "
                                f"{sorted({j['state'] for j in unfinished})}")
        return result


    def _recovery(self, result: StreamResult, runners: list[Any]) -> None:
        """How soon each stopped runner's lane had a runner acting again: from the stop to the
        first Take of the first runner of the lane that started after it (unscaled seconds),
        and what started that runner."""
        recoveries, by = [], []
        replacements: set[str] = set()
        for _, _, answer in self.ferry.stop_deliveries:
            replaced = (answer.payload or {}).get("replaced") or {}
            if replaced.get("owner"):
                replacements.add(replaced["owner"])
        for name, at in self.stopped:
            takes = sorted((e["received_at"], r.name) for r in runners
                           if r.name != name and r.input.get("lane") == self.lane
                           for e in r.events[:40]
                           if e["type"] == "StateEntered" and e.get("state") == "Take"
                           and e["received_at"] > at)
            if not takes:
                result.notes.append(f"runner {name}: no runner acted after its stop")
                continue
            first_take, runner = takes[0]
            real = first_take - at
            settle = next((float(r.input.get("settle_seconds") or 0) for r in runners
                           if r.name == runner), 0.0)
            if settle:
                # The settle is a timer (scaled, counted in deployed seconds); the rest (the
                # event's delivery, submit, StartExecution, the launcher) is latency, counted
                # in real seconds, as the DataSync detection delay is.
                recoveries.append(settle + max(0.0, real - settle * self.k))
            else:
                recoveries.append(real / self.k)
            by.append("status change event" if runner in replacements else "sweep or kick")
        result.runner_recovery_seconds = spread(recoveries)
        result.replaced_by = by


def followed(ferry: LocalFerry, run: Any) -> list[dict[str, Any]]:
    """What following each DataSync run cost a runner execution: the transitions from the
    task's start (`Started`, or `Follow` for an adopted run) to its report (`Notify`), and how
    long after its end event's delivery the report step came (real seconds)."""
    out: list[dict[str, Any]] = []
    execution, entered = None, None
    for event in run.events:
        state, kind = event.get("state"), event["type"]
        if kind == "StateExited" and state in ("StartTask", "Follow"):
            task = ((event.get("output") or {}).get("started") or {}).get("task") or {}
            execution = task.get("task_execution_arn")
        if kind != "StateEntered":
            continue
        if state in ("Started", "Follow"):
            entered = 0
        elif state == "Notify" and entered is not None and execution:
            row: dict[str, Any] = {"transitions": entered}
            ends = [d.delivered_at for d in ferry.router.deliveries_of(execution)
                    if d.state in ("SUCCESS", "ERROR") and d.delivered_at]
            if ends:
                row["detection_delay_seconds"] = round(event["received_at"] - min(ends), 2)
            out.append(row)
            entered = None
        elif entered is not None:
            entered += 1
    return out


def spread(values: list[float]) -> dict[str, float] | None:
    """p50, p95 and max of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 2),
            "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 2),
            "max": round(ordered[-1], 2)}


#: datasync-lengths: one DataSync run of each length (unscaled seconds), one after the other.
LENGTHS = (60.0, 600.0, 3600.0, 6 * 3600.0)
#: The check's period (template.yaml DataSyncCheckExpression), unscaled.
CHECK_SECONDS = 300.0


def run_lengths(time_scale: float, log: Any = print) -> StreamResult:
    """DataSync runs of 1 minute to 6 hours, each followed by a runner that waits for its end
    event, with the check (every 5 minutes, scaled) heartbeating it as deployed."""
    k = time_scale
    with LocalFerry("stream-datasync-lengths", step_seconds=PENDING_SECONDS * k,
                    time_scale=k, busy_poll_max_seconds=60) as ferry:
        ferry.bucket(DATA_BUCKET)
        ferry.bucket(ARCHIVE_BUCKET)
        task_arn = ferry.datasync_task("lengths", DATA_BUCKET, "/lengths", ARCHIVE_BUCKET, "/lengths")
        lane = lane_of_task(task_arn)
        inbox = ferry.subscribe("lengths-reports", {"format": ["json"]})
        ferry.start_functions()
        ferry.start_datasync_checks(CHECK_SECONDS)
        rows = []
        for n, seconds in enumerate(LENGTHS):
            ferry.ctl.config(datasync_transfer_seconds={"base": seconds * k, "per_file": 0.0})
            answer = ferry.submit({"job": {"name": f"lengths-{n}", "kind": "datasync",
                                           "task_arn": task_arn, "timeout_seconds": 86400},
                                   "id": f"lengths-{n}"})
            assert answer.ok, answer
            ferry.settle(lane, timeout=seconds * k * 3 + 120, jobs=n + 1)
            runs = [row for r in ferry.runners(lane) for row in followed(ferry, r)]
            row = {"run_seconds": seconds, **runs[-1]}
            rows.append(row)
            log(f"  datasync-lengths: {seconds:g} s run: {row}")
        runners = ferry.runners(lane)
        delays = [r["detection_delay_seconds"] for r in rows if "detection_delay_seconds" in r]
        while inbox.poll(1):
            pass
        runs = {j["run"] for j in ferry.lane_jobs(lane).values() if j["run"]}
        reported = {r.json.get("run") for r in inbox.received}
        return StreamResult(
            scenario="datasync-lengths", time_scale=k, minutes=sum(LENGTHS) / 60,
            uploads=0, imported=0, lost=0, p50_seconds=None, p95_seconds=None,
            max_seconds=None, datasync_executions=len(ferry.datasync_executions(task_arn)),
            runner_executions=len(runners),
            max_history_events=max((r.history_events for r in runners), default=0),
            runs=len(runs), reports=len(runs & reported),
            detection_delay_seconds=spread(delays),
            transitions_per_run={k: int(v) for k, v in
                                 (spread([r["transitions"] for r in rows]) or {}).items()
                                 if k in ("p50", "max")},
            lengths=rows)


def run(name: str, time_scale: float, minutes: float | None = None,
        log: Any = print) -> StreamResult:
    scenario = SCENARIOS[name]
    if minutes is not None:
        scenario = Scenario(**{**asdict(scenario), "minutes": minutes})
        if scenario.foreign is not None:
            third = minutes * 60 / 3
            scenario.foreign = (third, 2 * third)
        if scenario.stop_runners_at:
            scenario.stop_runners_at = (minutes * 60 / 3,)
    log(f"stream {name}: {scenario.minutes:g} min at {scenario.rate:g} upload/s, "
        f"time scale {time_scale:g} ({scenario.minutes * 60 * time_scale:.0f} s of real time)")
    return Stream(scenario, time_scale, log).run()


if __name__ == "__main__":
    import sys
    print(json.dumps(run(sys.argv[1], float(sys.argv[2]),
                         float(sys.argv[3]) if len(sys.argv) > 3 else None).to_json(), indent=2))
