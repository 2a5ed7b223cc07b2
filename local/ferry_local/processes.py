"""Child processes that never outlive the harness. TEST AND DEMO INFRASTRUCTURE.

Every process the harness starts (the emulator, the function binaries, each local state
machine run) gets its own session, so a Ctrl-C in the terminal
reaches only the harness, which then stops them in order; and a parent-death signal, so they
are terminated even when the harness itself is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from typing import IO, Any, Sequence

_PR_SET_PDEATHSIG = 1  # linux/prctl.h

try:
    _libc: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux: no parent-death signal, cleanup still runs
    _libc = None


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. The signal fires when the *thread* that forked
    # the child ends; the harness forks from threads that live as long as the child.
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(argv: Sequence[str], *, env: dict[str, str], cwd: str | os.PathLike[str],
          stdout: IO[Any] | int | None, stderr: IO[Any] | int | None = subprocess.STDOUT,
          stdin: int | None = subprocess.DEVNULL, text: bool = False) -> subprocess.Popen[Any]:
    return subprocess.Popen(
        list(argv), env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr, text=text,
        start_new_session=True, preexec_fn=_die_with_parent,
    )


def stop(proc: subprocess.Popen[Any] | None, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `timeout`; reaps the process."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
    except ProcessLookupError:
        pass


def wait_for(predicate: Any, timeout: float, interval: float = 0.05,
             what: str = "condition") -> Any:
    """Polls `predicate` until it returns something truthy; raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
