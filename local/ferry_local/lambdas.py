"""Ferry's real function binaries behind the Lambda Invoke API. TEST AND DEMO INFRASTRUCTURE.

`cargo lambda watch --only-lambda-apis` (cargo-lambda, pinned in .tools/venv) is the Lambda
control plane: it serves the Invoke API (`POST /2015-03-31/functions/{name}/invocations`) that
the state machine runner and the harness call, and the Runtime API the functions poll
(`{url}/.rt/{name}/2018-06-01/runtime/invocation/next`). The harness runs the binaries itself
(`target/debug/ferry-*`, built beforehand), one instance per function, instead of letting
`cargo lambda watch` start them with `cargo run`:

* each function gets its own environment, as in template.yaml (FERRY_ROUTES only for
  s3-trigger, FERRY_TOPIC_ARN only for notify), pointed at the emulator;
* no `cargo` runs during a test or demo: on a checkout shared with other builds, `cargo run`
  waits for the target/ lock, and its per-binary feature resolution can rebuild the library;
* the harness owns the processes: it can kill an instance mid-flow (fault tests) and starts a
  new one when an instance exits, as Lambda starts a new execution environment.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from . import paths, processes


@dataclass
class Invocation:
    """The answer of one Invoke call: `payload` on success, else `error_type`/`error_message`
    (the function's error, or the Lambda service's when the function never answered)."""

    payload: Any = None
    error_type: str | None = None
    error_message: str | None = None

    @property
    def ok(self) -> bool:
        return self.error_type is None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Functions:
    """``Functions(log_dir, common_env, per_function_env).start()``; ``invoke(name, payload)``.

    `common_env` is given to every function (AWS endpoints, credentials, region); entries of
    `per_function_env` (keyed by binary name) only to that function.
    """

    def __init__(self, log_dir: pathlib.Path, common_env: Mapping[str, str],
                 per_function_env: Mapping[str, Mapping[str, str]] | None = None,
                 names: tuple[str, ...] = paths.FUNCTIONS) -> None:
        self.log_dir = log_dir
        self.names = names
        self._common = dict(common_env)
        self._per_function = {k: dict(v) for k, v in (per_function_env or {}).items()}
        self._apis: subprocess.Popen[bytes] | None = None
        self._instances: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        #: Instances started per function (1 each at start; more after a crash or a kill).
        self.starts: dict[str, int] = {name: 0 for name in names}
        self.url = ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "Functions":
        missing = [n for n in self.names if not paths.binary(n).is_file()]
        if missing:
            raise RuntimeError(f"not built: {', '.join(missing)} (run `cargo build --workspace "
                               f"--bins --locked` first; looked in {paths.binary('').parent})")
        if not paths.CARGO_LAMBDA.is_file():
            raise RuntimeError(f"{paths.CARGO_LAMBDA} is missing (run scripts/install-tools.sh)")
        self._start_apis()
        self._supervisor = threading.Thread(target=self._supervise, name="functions",
                                            daemon=True)
        self._supervisor.start()
        # Wait for every instance to ask for its first event, so the first invocation of the
        # run does not pay for process start-up (and a function that fails at cold start, e.g.
        # on bad configuration, is reported here with its log).
        for name in self.names:
            processes.wait_for(lambda n=name: self._polling(n), 30,
                               what=f"{name} to start (log {self.log_path(name)})")
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        with self._lock:
            for proc in self._instances.values():
                processes.stop(proc)
            self._instances.clear()
        processes.stop(self._apis)
        self._apis = None

    def __enter__(self) -> "Functions":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_path(self, name: str) -> pathlib.Path:
        return self.log_dir / f"{name}.log"

    def _start_apis(self) -> None:
        log_path = self.log_dir / "cargo-lambda-watch.log"
        # cargo lambda takes the port as given (0 means its default, 9000): pick a free one,
        # and pick again in the unlikely case another process took it in between.
        for _ in range(5):
            port = free_port()
            with open(log_path, "ab") as log:
                self._apis = processes.spawn(
                    [str(paths.CARGO_LAMBDA), "lambda", "watch", "--only-lambda-apis",
                     "--invoke-address", "127.0.0.1", "--invoke-port", str(port)],
                    env={**os.environ, "NO_COLOR": "1"}, cwd=paths.ROOT, stdout=log)
            began = time.monotonic()
            while self._apis.poll() is None and time.monotonic() - began < 30:
                if _listening(port):
                    self.url = f"http://127.0.0.1:{port}"
                    return
                time.sleep(0.05)
            processes.stop(self._apis)
        raise RuntimeError(f"cargo lambda watch did not start (log {log_path}):\n"
                           f"{log_path.read_text()[-2000:]}")

    def _spawn(self, name: str) -> subprocess.Popen[bytes]:
        env = {
            # Only what a Lambda execution environment would have: nothing of the caller's
            # AWS configuration (profiles, real credentials) can leak into a function.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": f"{self.url}/.rt/{name}",
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
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
        return proc

    def _supervise(self) -> None:
        # Spawned from this thread, which lives as long as the instances (see processes.py).
        while not self._stopping.is_set():
            with self._lock:
                for name in self.names:
                    proc = self._instances.get(name)
                    if proc is None or proc.poll() is not None:
                        if proc is not None:
                            with open(self.log_path(name), "a") as log:
                                log.write(f"\n[ferry_local] instance exited with "
                                          f"{proc.returncode}; starting a new one\n")
                        self._instances[name] = self._spawn(name)
            self._stopping.wait(0.1)

    def _polling(self, name: str) -> bool:
        with self._lock:
            proc = self._instances.get(name)
        if proc is None:
            return False
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode} at start-up; log "
                               f"{self.log_path(name)}:\n{self.log_path(name).read_text()[-3000:]}")
        # lambda_runtime connects to the Runtime API once it is initialised.
        return self._connected(proc.pid)

    def _connected(self, pid: int) -> bool:
        port = int(self.url.rsplit(":", 1)[1])
        try:
            inodes = {os.readlink(f"/proc/{pid}/fd/{fd}")
                      for fd in os.listdir(f"/proc/{pid}/fd")}
        except OSError:
            return False
        sockets = {i[len("socket:["):-1] for i in inodes if i.startswith("socket:[")}
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                lines = pathlib.Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[9] in sockets:
                    return True
        return False

    # ------------------------------------------------------------------ use

    def invoke(self, name: str, payload: Any, timeout: float = 60.0) -> Invocation:
        """Invokes `name` synchronously (RequestResponse), as the Lambda API does."""
        request = urllib.request.Request(
            f"{self.url}/2015-03-31/functions/{name}/invocations",
            data=json.dumps(payload).encode(), method="POST",
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
                status = response.status
                function_error = response.headers.get("X-Amz-Function-Error")
        except urllib.error.HTTPError as err:
            body, status, function_error = err.read(), err.code, "Unhandled"
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = body.decode("utf-8", "replace")
        if status == 200 and not function_error and not (
                isinstance(parsed, dict) and "errorType" in parsed):
            return Invocation(payload=parsed)
        if isinstance(parsed, dict) and "errorType" in parsed:
            return Invocation(error_type=parsed["errorType"],
                              error_message=parsed.get("errorMessage"))
        return Invocation(error_type="Lambda.Unknown", error_message=f"HTTP {status}: {parsed}")

    def kill(self, name: str) -> int:
        """Kills the running instance of `name` (SIGKILL, as a crashed execution environment);
        the supervisor starts a new one. Returns the killed pid."""
        with self._lock:
            proc = self._instances[name]
            proc.kill()
            proc.wait()
            return proc.pid
