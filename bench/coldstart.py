#!/usr/bin/env python3
"""Cold start and peak memory of each function's release binary.

For every function this starts `target/lambda/<bin>/bootstrap` the way Lambda does: a fresh
process with the Lambda environment variables, talking to a Lambda Runtime API served here
(`GET /2018-06-01/runtime/invocation/next` answers one fixture from `events/`; the function
then posts `/invocation/{id}/response` or `/error`). A run's cold start is the time from just
before the process is spawned to the moment its response POST has been read. The process is
then killed. Its peak RSS is `VmHWM` from `/proc/<pid>/status`, read after the response and
before the kill: the high-water mark of the function's own address space. (`wait4`'s
`ru_maxrss` would not do: Linux carries the pre-exec high-water mark over `exec`, so a child of
this Python process would report Python's own ~25 MiB.) `wait4` does give the CPU time (user +
system) the process used until it was killed, which is reported too: it is less sensitive than
wall-clock time to other work on a shared machine.

The functions' AWS calls go, through `AWS_ENDPOINT_URL`, to a stub in this script that answers
each operation at once with a fixed, valid response (plain HTTP on 127.0.0.1, so no TLS
handshake and no network latency). Every figure is a full handler run: the SDK builds, signs
and sends its requests and parses the responses; the HTTPS client is set up as in production,
which includes loading the machine's CA certificates (no `SSL_CERT_FILE`/`SSL_CERT_DIR` is
set, as on Lambda). The run fails if a function answers with an error or makes other AWS calls
than expected.

Runs are interleaved (run 1 of every function, then run 2, ...) so that noise from other work on
the machine spreads over all functions alike. One warm-up round is run first and discarded (it
pulls the binaries into the page cache). The harness's own cost (spawn, Python HTTP server) is
measured with `null_runtime.c`, a minimal Runtime API client in C that does nothing else; its
figures are reported as the floor included in every other figure.

Standard library only (and a C compiler for the floor). Usage:
    python3 bench/coldstart.py [--lambda-dir target/lambda] [--runs 30] [--json out.json]
    python3 bench/coldstart.py --lambda-dir before=DIR1 --lambda-dir after=DIR2   # A/B, interleaved
    python3 bench/coldstart.py --only ferry-s3-trigger --env SSL_CERT_FILE=/path/to/bundle.pem
    python3 bench/coldstart.py --smoke   # make test: one run each, no figures

`--smoke` runs every function once (no warm-up, no floor) on the binaries the tests use
(FERRY_PROFILE as in local/ferry_local/paths.py: `target/<profile>/<bin>`, or
`target/lambda/<bin>/bootstrap` for `lambda`) and fails as a measuring run would: an error
answer or an AWS call the stub does not expect. `make test` runs it, so a function that starts
calling something new breaks the tests the day it does, not the next `make bench`.
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_PREFIX = "/2018-06-01/runtime"
RUN_TIMEOUT_SECONDS = 10.0

STATE_MACHINE_ARN = "arn:aws:states:us-east-1:111122223333:stateMachine:ferry"
TOPIC_ARN = "arn:aws:sns:us-east-1:111122223333:ferry-reports"


@dataclass
class Case:
    """One function, the fixture it is invoked with and what a full run must call."""

    function: str  # binary name, `ferry-<dir>`
    fixture: str  # path under events/
    memory_mb: int  # MemorySize in template.yaml
    expected_calls: list[str]  # AWS operations the handler makes for this fixture, sorted
    env: dict[str, str] = field(default_factory=dict)


LANES = {"FERRY_LANE_TABLE": "ferry-lanes"}


def cases() -> list[Case]:
    routes = (ROOT / "config/routes.example.json").read_text()
    return [
        # A deployment that names its file systems (FileSystemIds): IAM grants them.
        Case("ferry-start-task", "events/start-task/fsx-export.json", 128,
             ["fsx:CreateDataRepositoryTask"], {"FERRY_FILE_SYSTEMS": "listed", **LANES}),
        Case("ferry-task-status", "events/task-status/fsx.json", 128,
             ["fsx:DescribeDataRepositoryTasks"], LANES),
        Case("ferry-cancel-task", "events/cancel-task/fsx.json", 128,
             ["fsx:CancelDataRepositoryTask", "fsx:DescribeDataRepositoryTasks"], LANES),
        # A finished DataSync job without failed files: two SNS publishes, no report to read.
        Case("ferry-notify", "events/notify/succeeded-datasync.json", 512,
             ["sns:Publish", "sns:Publish"], {"FERRY_TOPIC_ARN": TOPIC_ARN, **LANES}),
        # Five uploads to the two example routes: one FSx import job, and one DataSync job whose
        # key with `|` needs a manifest (S3 PutObject); each queued (a transaction) in its lane,
        # whose lease is taken (UpdateItem) and runner started (StartExecution). The batch's
        # two ignored uploads (a folder marker, a key no route matches) are recorded
        # (BatchWriteItem): uploads that start nothing stay visible. The FSx route is checked
        # against its file system's links first (the file system, then its associations).
        Case("ferry-s3-trigger", "events/s3-trigger/sqs-batch.json", 256,
             sorted(["fsx:DescribeFileSystems", "fsx:DescribeDataRepositoryAssociations",
                     "s3:PutObject", "dynamodb:BatchWriteItem",
                     "dynamodb:TransactWriteItems", "dynamodb:TransactWriteItems",
                     "dynamodb:UpdateItem", "dynamodb:UpdateItem",
                     "sfn:StartExecution", "sfn:StartExecution"]),
             {"FERRY_ROUTES": routes, "FERRY_STATE_MACHINE_ARN": STATE_MACHINE_ARN, **LANES}),
        # A scheduled job: checked against its file system's links to S3 (the file system,
        # then its associations), queued, the lane's lease taken, a runner started.
        Case("ferry-submit", "events/submit/schedule.json", 128,
             sorted(["fsx:DescribeFileSystems", "fsx:DescribeDataRepositoryAssociations",
                     "dynamodb:TransactWriteItems", "dynamodb:UpdateItem",
                     "sfn:StartExecution"]),
             {"FERRY_STATE_MACHINE_ARN": STATE_MACHINE_ARN, **LANES}),
        # A take on an empty lane: the lease renewed, the lane and its queue read.
        Case("ferry-lane", "events/lane/take.json", 128,
             ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:UpdateItem"], LANES),
        # A DataSync execution's end event with no runner waiting: the token looked for (an
        # UpdateItem that finds none), then the wake noted (a second UpdateItem).
        Case("ferry-datasync-event", "events/datasync-event/execution-succeeded.json", 128,
             ["dynamodb:UpdateItem", "dynamodb:UpdateItem"], LANES),
    ]


# --- the AWS stub -------------------------------------------------------------------------

FSX_TASK = {
    "TaskId": "task-0123456789abcdef0",
    "Lifecycle": "EXECUTING",
    "Type": "EXPORT_TO_REPOSITORY",
    "CreationTime": 1763690400.0,
    "StartTime": 1763690410.0,
    "FileSystemId": "fs-0123456789abcdef0",
    "Paths": ["projects/climate/output"],
    "Status": {"TotalCount": 1000, "SucceededCount": 400, "FailedCount": 0,
               "LastUpdatedTime": 1763690500.0},
    "Report": {"Enabled": True, "Path": "s3://ferry-data-repository/ferry-reports",
               "Format": "REPORT_CSV_20191124", "Scope": "FAILED_FILES_ONLY"},
}

JSON_RESPONSES = {
    "AWSSimbaAPIService_v20180301.CreateDataRepositoryTask":
        ("fsx:CreateDataRepositoryTask", {"DataRepositoryTask": {**FSX_TASK, "Lifecycle": "PENDING"}}),
    "AWSSimbaAPIService_v20180301.DescribeDataRepositoryTasks":
        ("fsx:DescribeDataRepositoryTasks", {"DataRepositoryTasks": [FSX_TASK]}),
    "AWSSimbaAPIService_v20180301.CancelDataRepositoryTask":
        ("fsx:CancelDataRepositoryTask", {"Lifecycle": "CANCELING", "TaskId": FSX_TASK["TaskId"]}),
    # A file system linked by one association covering it whole (submit's preflight).
    "AWSSimbaAPIService_v20180301.DescribeFileSystems":
        ("fsx:DescribeFileSystems", {"FileSystems": [{"FileSystemId": FSX_TASK["FileSystemId"],
                                                      "FileSystemType": "LUSTRE",
                                                      "LustreConfiguration": {}}]}),
    "AWSSimbaAPIService_v20180301.DescribeDataRepositoryAssociations":
        ("fsx:DescribeDataRepositoryAssociations",
         {"Associations": [{"AssociationId": "dra-0123456789abcdef0", "Lifecycle": "AVAILABLE",
                            "FileSystemId": FSX_TASK["FileSystemId"], "FileSystemPath": "/",
                            "DataRepositoryPath": "s3://ferry-data-repository/"}]}),
    "AWSStepFunctions.StartExecution":
        ("sfn:StartExecution", {"executionArn": STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:") + ":bench",
                                "startDate": 1763690400.0}),
    # The lane table: every write succeeds, every read finds an empty lane.
    "DynamoDB_20120810.TransactWriteItems": ("dynamodb:TransactWriteItems", {}),
    "DynamoDB_20120810.UpdateItem": ("dynamodb:UpdateItem", {}),
    "DynamoDB_20120810.GetItem": ("dynamodb:GetItem", {}),
    "DynamoDB_20120810.Query": ("dynamodb:Query", {"Items": [], "Count": 0, "ScannedCount": 0}),
    "DynamoDB_20120810.BatchWriteItem": ("dynamodb:BatchWriteItem", {"UnprocessedItems": {}}),
}

SNS_PUBLISH_XML = (
    '<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
    "<PublishResult><MessageId>{id}</MessageId></PublishResult>"
    "<ResponseMetadata><RequestId>{id}</RequestId></ResponseMetadata></PublishResponse>"
)


def read_body(handler: http.server.BaseHTTPRequestHandler) -> bytes:
    """The request body, by Content-Length or chunked transfer encoding."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else b""


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the SDK and the runtime client expect
    # Each reply is one write with Nagle off: otherwise a second request on a kept-alive
    # connection waits out the client's delayed ACK (40 ms on Linux), a harness artifact.
    disable_nagle_algorithm = True

    def log_message(self, *args) -> None:  # no access log on stderr
        pass

    def reply(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        lines = [f"HTTP/1.1 {status} {self.responses[status][0]}",
                 f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        self.wfile.write("\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body)


class Run:
    """The state of the current run, shared by the two servers."""

    def __init__(self, event: bytes, function_arn: str) -> None:
        self.request_id = str(uuid.uuid4())
        self.event = event
        self.function_arn = function_arn
        self.served = False
        self.done = threading.Event()
        self.reaped = threading.Event()
        self.started_ns = 0  # just before the spawn
        self.finished_ns: int | None = None  # the response (or error) POST was read
        self.outcome: str | None = None  # "response", "error", "init_error"
        self.body = b""
        self.calls: list[str] = []
        self.lock = threading.Lock()


class AwsStub(Quiet):
    def do_POST(self) -> None:
        body = read_body(self)
        run = self.server.run
        target = self.headers.get("X-Amz-Target")
        if target in JSON_RESPONSES:
            name, payload = JSON_RESPONSES[target]
            self.record(run, name)
            version = "1.0" if target.startswith(("AWSStepFunctions", "DynamoDB")) else "1.1"
            self.reply(200, json.dumps(payload).encode(), f"application/x-amz-json-{version}")
            return
        form = parse_qs(body.decode("utf-8", "replace"))
        if form.get("Action") == ["Publish"]:
            self.record(run, "sns:Publish")
            xml = SNS_PUBLISH_XML.format(id=uuid.uuid4()).encode()
            self.reply(200, xml, "text/xml")
            return
        self.unknown(run, f"POST {self.path} target={target}")

    def do_PUT(self) -> None:
        read_body(self)
        self.record(self.server.run, "s3:PutObject")
        self.reply(200, b"", "application/xml", {"ETag": '"d41d8cd98f00b204e9800998ecf8427e"'})

    def do_GET(self) -> None:
        self.unknown(self.server.run, f"GET {self.path}")

    def record(self, run: Run | None, name: str) -> None:
        if run is not None:
            with run.lock:
                run.calls.append(name)

    def unknown(self, run: Run | None, what: str) -> None:
        self.record(run, f"unexpected:{what}")
        body = json.dumps({"__type": "UnknownOperationException", "message": what}).encode()
        self.reply(400, body, "application/x-amz-json-1.1")


class RuntimeApi(Quiet):
    def do_GET(self) -> None:
        run = self.server.run
        if self.path != f"{RUNTIME_PREFIX}/invocation/next" or run is None:
            self.reply(404, b"{}", "application/json")
            return
        with run.lock:
            first = not run.served
            run.served = True
        if not first:
            # The function asks for its next invocation: there is none. Hold the request until
            # the run is over (the process is killed), as Lambda does between invocations.
            run.reaped.wait(RUN_TIMEOUT_SECONDS * 2)
            self.close_connection = True
            return
        deadline_ms = int(time.time() * 1000) + 30_000
        self.reply(200, run.event, "application/json", {
            "Lambda-Runtime-Aws-Request-Id": run.request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": run.function_arn,
            "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=0",
        })

    def do_POST(self) -> None:
        body = read_body(self)
        now = time.perf_counter_ns()
        run = self.server.run
        outcome = None
        if run is not None:
            if self.path == f"{RUNTIME_PREFIX}/invocation/{run.request_id}/response":
                outcome = "response"
            elif self.path == f"{RUNTIME_PREFIX}/invocation/{run.request_id}/error":
                outcome = "error"
            elif self.path == f"{RUNTIME_PREFIX}/init/error":
                outcome = "init_error"
        if outcome is None:
            self.reply(404, b"{}", "application/json")
            return
        self.reply(202, b'{"status":"OK"}', "application/json")
        if run.finished_ns is None:
            run.finished_ns, run.outcome, run.body = now, outcome, body
            run.done.set()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """One per run and role: a late request from a killed process never reaches the next run."""

    daemon_threads = True
    allow_reuse_address = True
    run: Run | None = None

    def handle_error(self, request, client_address) -> None:
        # A killed function resets its connections; that is the end of a run, not an error.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def serve(handler: type, run: Run) -> Server:
    server = Server(("127.0.0.1", 0), handler)
    server.run = run
    threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
    return server


# --- runs ---------------------------------------------------------------------------------


@dataclass
class Sample:
    ms: float  # exec -> response POST, wall clock
    peak_rss_kib: int
    cpu_ms: float  # user + system time of the process, until it was killed


def lambda_env(function: str, memory_mb: int, home: str) -> dict[str, str]:
    """The variables Lambda sets for a `provided.al2023` function, plus dummy credentials."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": home,  # empty, like Lambda's: no ~/.aws profile files to read
        "LAMBDA_TASK_ROOT": "/var/task",
        "LAMBDA_RUNTIME_DIR": "/var/runtime",
        "_HANDLER": "bootstrap",
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/11/22/[$LATEST]0123456789abcdef0123456789abcdef",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "AWS_LAMBDA_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "INFO"),
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AWS_SESSION_TOKEN": "bench-session-token",
    }


def vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a live process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for process {pid}")


def run_once(binary: str, env: dict[str, str], event: bytes, function: str,
             log: str) -> tuple[Run, int, float]:
    """One cold start: (the run, peak RSS in KiB, CPU time in ms until killed)."""
    run = Run(event, f"arn:aws:lambda:us-east-1:111122223333:function:{function}")
    runtime, stub = serve(RuntimeApi, run), serve(AwsStub, run)
    env = {**env,
           "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.server_port}",
           "AWS_ENDPOINT_URL": f"http://127.0.0.1:{stub.server_port}"}
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    run.started_ns = time.perf_counter_ns()
    pid = os.posix_spawn(binary, [binary], env, file_actions=actions)
    finished = run.done.wait(RUN_TIMEOUT_SECONDS)
    hwm_kib = vm_hwm_kib(pid)
    os.kill(pid, signal.SIGKILL)
    _, _, rusage = os.wait4(pid, 0)
    run.reaped.set()  # release a held `next` request
    for server in (runtime, stub):
        server.shutdown()
        server.server_close()
    if not finished:
        run.outcome = "timeout"
    return run, hwm_kib, (rusage.ru_utime + rusage.ru_stime) * 1000


def summary(samples: list[Sample]) -> dict:
    def spread(values: list[float]) -> dict:
        return {"min": round(min(values), 2), "median": round(statistics.median(values), 2),
                "max": round(max(values), 2)}

    rss = [s.peak_rss_kib for s in samples]
    return {
        "runs": len(samples),
        "cold_start_ms": spread([s.ms for s in samples]),
        "cpu_ms": spread([s.cpu_ms for s in samples]),
        "peak_rss_kib": {"min": min(rss), "median": int(statistics.median(rss)), "max": max(rss)},
        "peak_rss_mib_max": round(max(rss) / 1024, 2),
    }


def build_null_runtime(workdir: str) -> str | None:
    """Compiles bench/null_runtime.c (the harness floor); None when no C compiler is found."""
    out = os.path.join(workdir, "null_runtime")
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if not cc:
            continue
        try:
            subprocess.run([cc, "-O2", "-o", out, str(ROOT / "bench/null_runtime.c")],
                           check=True, capture_output=True)
            return out
        except (OSError, subprocess.CalledProcessError):
            continue
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lambda-dir", action="append",
                        help="where the <bin>/bootstrap files are (default: target/lambda); give "
                             "LABEL=DIR several times to compare builds, runs interleaved")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--only", action="append", help="only these functions (binary names)")
    parser.add_argument("--smoke", action="store_true",
                        help="one run of each function on the tests' binaries, no figures")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="one more environment variable for every function, e.g. "
                             "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    for assignment in args.env:
        if "=" not in assignment or assignment.startswith("="):
            parser.error(f"--env {assignment!r}: expected NAME=VALUE")
    builds = [d.split("=", 1) if "=" in d else ("", d)
              for d in args.lambda_dir or [str(ROOT / "target/lambda")]]
    # Cargo's own layout (`target/<profile>/<bin>`) unless the binaries are make build's.
    args.cargo_layout = False
    if args.smoke:
        target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
        profile = os.environ.get("FERRY_PROFILE", "debug")
        builds = [("", str(target / profile))]
        args.cargo_layout = profile != "lambda"

    with tempfile.TemporaryDirectory(prefix="ferry-coldstart-") as workdir:
        return measure(args, builds, workdir)


def smoke(jobs: list, workdir: str) -> int:
    """One run of each job: its answer and its AWS calls checked, nothing measured."""
    for job in jobs:
        if run_checked(job, workdir) is None:
            return 1
    print(f"coldstart smoke: {len(jobs)} functions answered their fixture with the AWS calls "
          "the benchmark expects")
    return 0


def run_checked(job: tuple, workdir: str) -> tuple | None:
    """One run of `job` (run, peak RSS, CPU ms); `None`, with the function's log printed, when
    it answered with an error or made other AWS calls than expected."""
    label, binary, env, event, case = job
    log = os.path.join(workdir, "run.log")
    run, peak_rss, cpu_ms = run_once(binary, env, event, label, log)
    problem = None
    if run.outcome != "response":
        problem = f"ended with {run.outcome}: {run.body[:500]!r}"
    elif case is not None and sorted(run.calls) != sorted(case.expected_calls):
        problem = f"made AWS calls {sorted(run.calls)}, expected {case.expected_calls}"
    if problem:
        tail = Path(log).read_text(errors="replace")[-2000:] if os.path.exists(log) else ""
        print(f"coldstart: {label} {problem}\n--- its log:\n{tail}", file=sys.stderr)
        return None
    return run, peak_rss, cpu_ms


def measure(args: argparse.Namespace, builds: list, workdir: str) -> int:
    """Runs every job `args.runs` times (after one discarded warm-up round) and reports."""
    selected = [c for c in cases() if not args.only or c.function in args.only]
    unknown = sorted(set(args.only or []) - {c.function for c in cases()})
    if unknown:
        print(f"coldstart: no such function: {', '.join(unknown)}", file=sys.stderr)
        return 2

    jobs = []  # (label, binary, env, event, case or None)
    for case in selected:
        for build, directory in builds:
            binary = (os.path.join(directory, case.function) if args.cargo_layout
                      else os.path.join(directory, case.function, "bootstrap"))
            if not os.access(binary, os.X_OK):
                print(f"coldstart: {binary} is missing: run `make build` first", file=sys.stderr)
                return 1
            env = lambda_env(case.function, case.memory_mb, workdir)
            env.update(case.env)
            env.update(a.split("=", 1) for a in args.env)
            label = f"{build}:{case.function}" if build else case.function
            jobs.append((label, binary, env, (ROOT / case.fixture).read_bytes(), case))
    if args.smoke:
        return smoke(jobs, workdir)
    null_runtime = build_null_runtime(workdir)
    if null_runtime:
        env = lambda_env("null-runtime", 128, workdir)
        jobs.append(("null-runtime (harness floor)", null_runtime, env, b"{}", None))
    else:
        print("coldstart: no C compiler: the harness floor is not measured", file=sys.stderr)

    samples: dict[str, list[Sample]] = {label: [] for label, *_ in jobs}
    for round_ in range(args.runs + 1):  # round 0 is the discarded warm-up
        for job in jobs:
            checked = run_checked(job, workdir)
            if checked is None:
                return 1
            run, peak_rss, cpu_ms = checked
            label = job[0]
            if round_ > 0:
                elapsed_ms = (run.finished_ns - run.started_ns) / 1e6
                samples[label].append(Sample(elapsed_ms, peak_rss, cpu_ms))

    results = []
    for label, binary, env, event, case in jobs:
        entry = {"function": label, **summary(samples[label])}
        if case is not None:
            entry.update({"fixture": case.fixture, "memory_mb": case.memory_mb,
                          "aws_calls": case.expected_calls,
                          "binary_bytes": os.path.getsize(binary)})
        results.append(entry)
    doc = {
        "method": ("exec of target/lambda/<bin>/bootstrap -> its response POST to a local Lambda "
                   "Runtime API (bench/coldstart.py); AWS calls answered by an in-process stub over "
                   "plain HTTP on 127.0.0.1 (no network, no TLS); one warm-up round discarded; runs "
                   "interleaved; peak RSS = VmHWM from /proc/<pid>/status after the response; "
                   "CPU = user + system time of the process until it was killed"),
        "runs": args.runs,
        "extra_env": args.env,
        "functions": results,
    }
    width = max(len(r["function"]) for r in results)
    print(f"{'':<{width}}  {'cold start, ms':^23}  {'CPU ms':>6}  {'peak RSS':>8}")
    print(f"{'function':<{width}}  {'min':>7} {'median':>7} {'max':>7}  {'median':>6}  {'MiB':>8}  AWS calls")
    for r in results:
        c = r["cold_start_ms"]
        print(f"{r['function']:<{width}}  {c['min']:>7.2f} {c['median']:>7.2f} {c['max']:>7.2f}  "
              f"{r['cpu_ms']['median']:>6.1f}  {r['peak_rss_mib_max']:>8.2f}  "
              f"{', '.join(r.get('aws_calls', []))}")
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
