"""Ferry's real function binaries behind the Lambda Invoke API. TEST AND DEMO INFRASTRUCTURE.

A small Lambda service: the Invoke API (`POST /2015-03-31/functions/{name}/invocations`, what
run-local.mjs and the harness call) in front of the Lambda Runtime API (what
`lambda_runtime` in each binary polls), and one instance (process) of each binary,
`target/debug/ferry-*`, built beforehand. What Lambda does and this does too:

* each function runs with its own environment (template.yaml's variables, pointed at the
  emulator) and its own Timeout and MemorySize, read from template.yaml;
* an instance takes one invocation at a time; invocations wait for it in order;
* an instance that exits is replaced by a new one, and the invocation it was running is
  answered `Runtime.ExitError` ("Runtime exited with error: signal: killed"); one that runs
  past the function's Timeout is killed and answered `Sandbox.Timedout` (Lambda developer
  guide, "Troubleshoot invocation issues"). Both come back as function errors (HTTP 200 with
  `X-Amz-Function-Error: Unhandled`), as from Lambda's Invoke API. run-local.mjs names a
  function error by its errorType, as Step Functions' lambda:invoke does for a function's own
  errors; the Step Functions developer guide ("Handle Lambda service exceptions") says these two
  reach a state machine as `Lambda.Unknown` instead. No document settles which, so the state
  machine retries both, and tests choose: `Functions.crash_error_name = "Lambda.Unknown"`
  answers crashes and timeouts under the guide's name.

Payload limits, as Lambda's ("For synchronous invocations, the maximum payload size is 6 MB":
API reference, Invoke, https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html; Lambda
developer guide, "Lambda quotas", "Invocation payload (request and response)"): an Invoke request
body over 6,291,456 bytes is refused, before any instance sees it, with the Invoke API's
`RequestTooLargeException`, HTTP 413 (API reference, Invoke, Errors: "The request payload
exceeded the Invoke request body JSON input quota"; message as Lambda words it). A function's
response over 6,291,556 bytes (the limit Lambda's own error names: 6 MiB and 100 bytes, and what
it measurably accepts) is answered to the caller as Lambda does, the function error
`Function.ResponseSizeTooLarge` ("Response payload size exceeded maximum allowed payload size
(6291556 bytes)."; HTTP 200 with `X-Amz-Function-Error: Unhandled`), and to the runtime with
HTTP 413 `RequestEntityTooLarge` (lambda_runtime logs it and takes the next event). Step
Functions' lambda:invoke reports the first as `Lambda.RequestTooLargeException` and the second
under its errorType, as run-local.mjs does; under Step Functions both are moot, its 256 KiB
quota binds first.

Fault injection for tests: `kill(name)` kills an instance now; `fail_responses(name, how,
count)` lets the next invocations do their work (AWS calls included) and then loses their
answer: the instance crashes as it answers (`how="crash"`: killed, `Runtime.ExitError`) or
times out (`how="timeout"`: answered `Sandbox.Timedout` at once, as if the Timeout had passed,
and killed). Either way the caller never learns what was done, and a new instance serves what
comes next (`starts` counts them; `injected` lists what fired).

Why not `cargo lambda watch` (cargo-lambda 1.9.2, which `make build` uses): it serves the same
two APIs, but an invocation whose function process dies is never answered (the caller waits
forever), and its `--timeout` also ends the functions' own idle polls of the Runtime API with a
408 that `lambda_runtime` panics on. Fault tests (issue 8) kill instances mid-flow and need
Lambda's answer instead. Running the binaries directly also means no `cargo run` (and no wait
for the shared target/ lock) during a test, and one environment per function.
"""

from __future__ import annotations

import http.server
import json
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

from . import paths, processes, template
from .emulator_process import ACCOUNT, REGION

RUNTIME_PREFIX = "/2018-06-01/runtime"
#: The largest synchronous Invoke request body Lambda accepts ("6 MB"; its error says "limit
#: 6291456 bytes").
MAX_REQUEST_BYTES = 6_291_456
#: The largest function response Lambda returns: the figure its Function.ResponseSizeTooLarge
#: names (6 MiB + 100 bytes), which is also what it accepts (see the module docstring).
MAX_RESPONSE_BYTES = 6_291_556


@dataclass
class Invocation:
    """The answer of one Invoke call: `payload` on success, else `error_type`/`error_message`
    (the function's error, or Lambda's when the instance crashed or timed out)."""

    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None


@dataclass
class _Request:
    """One invocation inside the service."""

    function: str
    body: bytes
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    instance: int | None = None  # the instance running it
    deadline: float = 0.0  # time.monotonic() when it times out
    answer: tuple[bytes, bool] | None = None  # (body, is a function error)
    done: threading.Event = field(default_factory=threading.Event)

    def finish(self, body: bytes, error: bool) -> bool:
        """Records the first answer; later ones (a response after a timeout) are ignored."""
        if self.done.is_set():
            return False
        self.answer = (body, error)
        self.done.set()
        return True


@dataclass
class _Instance:
    number: int
    proc: subprocess.Popen[bytes]
    ready: threading.Event = field(default_factory=threading.Event)
    #: Its `next` poll is waiting for an invocation: one queued now is handed to it (and its
    #: timeout starts) even if the process is stopped.
    polling: bool = False


@dataclass
class FunctionConfig:
    timeout: int
    memory: int


def template_configs() -> dict[str, FunctionConfig]:
    """Timeout and MemorySize of each binary, as template.yaml deploys it."""
    t = template.load()
    glob = t.get("Globals", {}).get("Function", {})
    configs = {}
    for binary, resource in template.functions(t).items():
        props = resource.get("Properties", {})
        configs[binary] = FunctionConfig(
            timeout=int(props.get("Timeout", glob.get("Timeout", 3))),
            memory=int(props.get("MemorySize", glob.get("MemorySize", 128))))
    return configs


class Functions:
    """``Functions(log_dir, common_env, per_function_env).start()``; ``invoke(name, payload)``.

    `common_env` is given to every function (AWS endpoints, credentials, region); entries of
    `per_function_env` (keyed by binary name) only to that function. `timeouts` overrides
    template.yaml's Timeout of some functions (seconds).
    """

    def __init__(self, log_dir: pathlib.Path, common_env: Mapping[str, str],
                 per_function_env: Mapping[str, Mapping[str, str]] | None = None,
                 names: tuple[str, ...] = paths.FUNCTIONS,
                 timeouts: Mapping[str, int] | None = None) -> None:
        self.log_dir = log_dir
        self.names = names
        self._common = dict(common_env)
        self._per_function = {k: dict(v) for k, v in (per_function_env or {}).items()}
        configs = template_configs()
        missing = [n for n in names if n not in configs]
        if missing:
            raise RuntimeError(f"not functions of template.yaml: {missing}")
        self.configs = {n: configs[n] for n in names}
        for name, seconds in (timeouts or {}).items():
            self.configs[name].timeout = seconds
        self._queues: dict[str, queue.Queue[_Request]] = {n: queue.Queue() for n in names}
        self._instances: dict[str, _Instance] = {}
        self._running: dict[str, _Request] = {}  # request id → request, while an instance has it
        self._numbers = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        #: Instances started per function (1 each at start; more after a crash or a kill).
        self.starts: dict[str, int] = {name: 0 for name in names}
        #: The errorType crashes and timeouts are answered with instead of Lambda's own
        #: (`Runtime.ExitError`, `Sandbox.Timedout`); see the module docstring.
        self.crash_error_name: str | None = None
        #: Pending `fail_responses` faults per function: [how, remaining].
        self._faults: dict[str, list[Any]] = {}
        #: Faults that fired: (function, how, request id).
        self.injected: list[tuple[str, str, str]] = []
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "Functions":
        missing = [n for n in self.names if not paths.binary(n).is_file()]
        if missing:
            raise RuntimeError(f"not built: {', '.join(missing)} (run `cargo build --workspace "
                               f"--bins --locked`, or `make build` for FERRY_PROFILE=lambda, "
                               f"first; looked for {paths.binary(missing[0])})")
        self._server = _Server(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._spawn_thread(self._server.serve_forever, "lambda-api")
        with self._lock:
            for name in self.names:
                self._instances[name] = self._spawn(name)
        # Every instance asks for its first event before the run starts: the first invocation
        # does not pay for process start-up, and a function that fails at cold start (bad
        # configuration) is reported here, with its log.
        for name in self.names:
            instance = self._instances[name]
            processes.wait_for(lambda i=instance, n=name: self._initialised(n, i), 30,
                               what=f"{name} to start (log {self.log_path(name)})")
        self._spawn_thread(self._supervise, "lambda-supervisor")
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            instances = list(self._instances.values())
            self._instances.clear()
        for instance in instances:
            processes.stop(instance.proc)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for thread in self._threads:
            thread.join(5)

    def __enter__(self) -> "Functions":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_path(self, name: str) -> pathlib.Path:
        return self.log_dir / f"{name}.log"

    @contextmanager
    def timeout(self, name: str, seconds: int) -> Iterator[None]:
        """Within: invocations of `name` that start time out after `seconds`, not its Timeout.
        For a test whose subject is not time, run where the emulator is slower than the
        service (moto's DynamoDB writes one request at a time)."""
        with self._lock:
            before = self.configs[name].timeout
            self.configs[name].timeout = seconds
        try:
            yield
        finally:
            with self._lock:
                self.configs[name].timeout = before

    def pid(self, name: str) -> int:
        """The process id of `name`'s instance now (its peak memory is in /proc/<pid>/status)."""
        with self._lock:
            return self._instances[name].proc.pid

    def _spawn_thread(self, target: Any, name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _spawn(self, name: str) -> _Instance:
        self._numbers += 1
        number = self._numbers
        config = self.configs[name]
        env = {
            # Only what a Lambda execution environment has: nothing of the caller's AWS
            # configuration (profiles, real credentials) reaches a function.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": f"{self.url}/rt/{name}/{number}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory),
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "RUST_LOG": os.environ.get("FERRY_LOCAL_RUST_LOG", "info"),
            "NO_COLOR": "1",
            **self._common,
            **self._per_function.get(name, {}),
        }
        with open(self.log_path(name), "ab") as log:
            proc = processes.spawn([str(paths.binary(name))], env=env, cwd=paths.ROOT,
                                   stdout=log)
        self.starts[name] += 1
        return _Instance(number, proc)

    def _initialised(self, name: str, instance: _Instance) -> bool:
        if instance.ready.is_set():
            return True
        if instance.proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {instance.proc.returncode} at start-up; log "
                               f"{self.log_path(name)}:\n"
                               f"{self.log_path(name).read_text()[-3000:]}")
        return False

    def _supervise(self) -> None:
        # Replacement instances are started from this thread, which lives as long as they do
        # (processes.py: the parent-death signal follows the thread that forked).
        while not self._stopping.wait(0.05):
            now = time.monotonic()
            with self._lock:
                if self._stopping.is_set():
                    return
                for request in list(self._running.values()):
                    if now >= request.deadline:
                        self._time_out(request)
                for name, instance in list(self._instances.items()):
                    code = instance.proc.poll()
                    if code is None:
                        continue
                    how = f"signal: {_signal_name(-code)}" if code < 0 else f"exit status {code}"
                    for request in [r for r in self._running.values()
                                    if r.instance == instance.number]:
                        # Lambda's answer when the runtime process dies mid-invocation.
                        self._answer_error(request, self.crash_error_name
                                           or "Runtime.ExitError",
                                           f"RequestId: {request.id} Error: Runtime exited "
                                           f"with error: {how}")
                    with open(self.log_path(name), "a") as log:
                        log.write(f"\n[ferry_local] instance {instance.number} ended ({how}); "
                                  "starting a new one\n")
                    self._instances[name] = self._spawn(name)

    def _time_out(self, request: _Request) -> None:
        """Lambda stops a function at its Timeout: the instance is killed (and replaced)."""
        timeout = self.configs[request.function].timeout
        self._answer_error(request, self.crash_error_name or "Sandbox.Timedout",
                           f"RequestId: {request.id} Error: Task timed out after "
                           f"{timeout:.2f} seconds")
        instance = self._instances.get(request.function)
        if instance is not None and instance.number == request.instance:
            instance.proc.kill()

    def _answer_error(self, request: _Request, error_type: str, message: str) -> None:
        self._running.pop(request.id, None)
        request.finish(json.dumps({"errorType": error_type, "errorMessage": message}).encode(),
                       error=True)

    # ------------------------------------------------------------------ the two APIs

    def _next(self, name: str, number: int) -> _Request | None:
        """Runtime API `next`: blocks until there is an invocation for this instance."""
        with self._lock:
            instance = self._instances.get(name)
            if instance is None or instance.number != number:
                return None
            instance.ready.set()
            instance.polling = True
        while not self._stopping.is_set():
            try:
                request = self._queues[name].get(timeout=0.5)
            except queue.Empty:
                if instance.proc.poll() is not None:
                    return None
                continue
            with self._lock:
                if instance.proc.poll() is not None or self._instances.get(name) is not instance:
                    self._queues[name].put(request)  # a live instance takes it
                    return None
                request.instance = number
                request.deadline = time.monotonic() + self.configs[name].timeout
                self._running[request.id] = request
                instance.polling = False
            return request
        return None

    def _too_large(self, request_id: str) -> bool:
        """Answers the invocation as Lambda answers a response over MAX_RESPONSE_BYTES (a
        function error); False when it was not waiting for an answer."""
        return self._complete(request_id, json.dumps({
            "errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": "Response payload size exceeded maximum allowed payload size "
                            f"({MAX_RESPONSE_BYTES} bytes).",
        }).encode(), error=True)

    def _complete(self, request_id: str, body: bytes, error: bool) -> bool:
        with self._lock:
            request = self._running.pop(request_id, None)
        return request is not None and request.finish(body, error)

    def _intercept(self, request_id: str) -> bool:
        """Applies a pending `fail_responses` fault to the answer of `request_id`; True when
        the answer must not reach the caller."""
        with self._lock:
            request = self._running.get(request_id)
            if request is None:
                return False
            fault = self._faults.get(request.function)
            if not fault or fault[1] <= 0:
                return False
            if fault[2] is not None and not fault[2](_payload(request.body)):
                return False
            fault[1] -= 1
            how = fault[0]
            self.injected.append((request.function, how, request_id))
            if how == "timeout":
                # As if the answer had come after the Timeout: answered Sandbox.Timedout, and
                # the instance is killed before it can take another invocation.
                self._time_out(request)
                return True
            instance = self._instances.get(request.function)
            if instance is not None and instance.number == request.instance:
                # Killed as it answers: the supervisor sees the exit and answers
                # Runtime.ExitError for the request it was running.
                instance.proc.kill()
            return True

    def _invoke(self, name: str, body: bytes) -> _Request:
        request = _Request(name, body)
        self._queues[name].put(request)
        request.done.wait()
        return request

    # ------------------------------------------------------------------ use

    def invoke(self, name: str, payload: Any, timeout: float = 300.0) -> Invocation:
        """Invokes `name` synchronously (RequestResponse) through the Invoke API."""
        request = urllib.request.Request(
            f"{self.url}/2015-03-31/functions/{name}/invocations",
            data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
                function_error = response.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as err:
            detail = err.read().decode("utf-8", "replace")
            return Invocation(error_type=err.headers.get("X-Amzn-ErrorType", f"HTTP{err.code}"),
                              error_message=detail)
        parsed = json.loads(body) if body else None
        if function_error:
            parsed = parsed if isinstance(parsed, dict) else {}
            return Invocation(error_type=parsed.get("errorType", "Unhandled"),
                              error_message=parsed.get("errorMessage"))
        return Invocation(payload=parsed)

    def fail_responses(self, name: str, how: str = "crash", count: int = 1,
                       when: Any = None) -> None:
        """The next `count` invocations of `name` (those whose payload `when(payload)` accepts,
        when given) run, AWS calls and all, but their answer is lost: the instance crashes as
        it answers (`how="crash"`) or times out (`how="timeout"`). See the module docstring."""
        if how not in ("crash", "timeout"):
            raise ValueError("how must be 'crash' or 'timeout'")
        if name not in self.configs:
            raise ValueError(f"not a function of this service: {name}")
        with self._lock:
            self._faults[name] = [how, count, when]

    def clear_faults(self) -> None:
        """Drops pending `fail_responses` faults and restores Lambda's crash error names."""
        with self._lock:
            self._faults.clear()
        self.crash_error_name = None

    def kill(self, name: str) -> int:
        """Kills the running instance of `name` (SIGKILL, as a crashed execution environment);
        a new one is started. Returns the killed process id."""
        with self._lock:
            proc = self._instances[name].proc
        proc.kill()
        proc.wait()
        return proc.pid


#: How Lambda words a runtime's death by signal ("Runtime exited with error: signal: killed").
_SIGNALS = {signal.SIGKILL: "killed", signal.SIGTERM: "terminated",
            signal.SIGSEGV: "segmentation fault", signal.SIGABRT: "aborted",
            signal.SIGINT: "interrupt"}


def _signal_name(number: int) -> str:
    try:
        return _SIGNALS.get(signal.Signals(number), signal.Signals(number).name)
    except ValueError:
        return str(number)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # An instance killed mid-request resets its connection: expected, not worth a trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _handler(service: Functions) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        # Keep-alive, as lambda_runtime's client expects of the Runtime API.
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # the functions' own logs say what happened

        def _reply(self, status: int, body: bytes = b"", headers: Mapping[str, str] = {},
                   ) -> None:  # noqa: B006 - never mutated
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _not_found(self) -> None:
            self._reply(404, json.dumps({"message": f"no route {self.command} {self.path}"})
                        .encode(), {"X-Amzn-ErrorType": "ResourceNotFoundException"})

        def do_GET(self) -> None:  # noqa: N802
            route = _runtime_route(self.path)
            if route is None or route[2] != "invocation/next":
                return self._not_found()
            name, number, _ = route
            request = service._next(name, number)
            if request is None:
                # Stopping, or an instance that was replaced: it gets no more events.
                try:
                    return self._reply(410, b'{"message": "instance ended"}')
                except OSError:
                    return None
            config = service.configs[name]
            deadline_ms = int((time.time() + config.timeout) * 1000)
            try:
                self._reply(200, request.body, {
                    "Lambda-Runtime-Aws-Request-Id": request.id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn":
                        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
                    "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-"
                                               f"{uuid.uuid4().hex[:24]};Sampled=0",
                })
            except OSError:
                pass  # the instance died: the supervisor answers Runtime.ExitError

        def do_POST(self) -> None:  # noqa: N802
            body = self._body()
            parts = self.path.strip("/").split("/")
            if (len(parts) == 4 and parts[:2] == ["2015-03-31", "functions"]
                    and parts[3] == "invocations"):
                name = parts[2]
                if name not in service.configs:
                    return self._reply(404, json.dumps(
                        {"Type": "User", "message": f"Function not found: {name}"}).encode(),
                        {"X-Amzn-ErrorType": "ResourceNotFoundException"})
                if len(body) > MAX_REQUEST_BYTES:
                    return self._reply(413, json.dumps({
                        "Type": "User",
                        "message": f"{len(body)} byte payload is too large for the "
                                   f"RequestResponse invocation type (limit "
                                   f"{MAX_REQUEST_BYTES} bytes)"}).encode(),
                        {"X-Amzn-ErrorType": "RequestTooLargeException"})
                request = service._invoke(name, body)
                answer, error = request.answer or (b"", True)
                headers = {"X-Amz-Executed-Version": "$LATEST"}
                if error:
                    headers["X-Amz-Function-Error"] = "Unhandled"
                return self._reply(200, answer, headers)
            route = _runtime_route(self.path)
            if route is None:
                return self._not_found()
            _, _, what = route
            if what.startswith("invocation/") and what.endswith(("/response", "/error")):
                request_id = what.split("/")[1]
                if what.endswith("/response") and service._intercept(request_id):
                    try:
                        return self._reply(202, b'{"status": "OK"}')
                    except OSError:
                        return None  # killed as it answered
                if what.endswith("/response") and len(body) > MAX_RESPONSE_BYTES:
                    service._too_large(request_id)
                    return self._reply(413, json.dumps({
                        "errorMessage": "Exceeded maximum allowed payload size "
                                        f"({MAX_RESPONSE_BYTES} bytes).",
                        "errorType": "RequestEntityTooLarge"}).encode())
                if service._complete(request_id, body, error=what.endswith("/error")):
                    return self._reply(202, b'{"status": "OK"}')
                return self._reply(400, b'{"message": "unknown or already answered request"}')
            if what == "init/error":
                return self._reply(202, b'{"status": "OK"}')  # the process exits next
            return self._not_found()

    return Handler


def _runtime_route(path: str) -> tuple[str, int, str] | None:
    """`/rt/{function}/{instance}/2018-06-01/runtime/{what}` → (function, instance, what)."""
    parts = path.split("?", 1)[0].strip("/").split("/", 3)
    if len(parts) < 4 or parts[0] != "rt" or not parts[2].isdigit():
        return None
    rest = "/" + parts[3]
    if not rest.startswith(RUNTIME_PREFIX + "/"):
        return None
    return parts[1], int(parts[2]), rest[len(RUNTIME_PREFIX) + 1:]


def _payload(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError:
        return None
