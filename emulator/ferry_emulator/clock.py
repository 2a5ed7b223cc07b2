"""The emulator's clock: what "now" is for every emulated task. TEST INFRASTRUCTURE.

Two modes:

* ``fast`` (the default): now is wall-clock time (plus whatever was advanced by hand), so a task
  moves one lifecycle step every ``step_seconds`` (0.2 s by default) of real time. Good for
  demos and for code that polls.
* ``manual``: time stands still until a test advances it (``advance(seconds)`` or
  ``advance(steps=n)``). Tests that check a lifecycle use this: no sleeps, no races.

Every lifecycle step (FSx ``PENDING`` → ``EXECUTING`` → end, DataSync ``LAUNCHING`` →
``PREPARING`` → ``TRANSFERRING`` → ``VERIFYING`` → end, cancellation) takes ``step_seconds`` of
emulated time, except the main phase of a task when the emulator's config sets a
file-count-dependent duration for it (``fsx_task_seconds`` for FSx ``EXECUTING``,
``datasync_transfer_seconds`` for DataSync ``TRANSFERRING``: ``{"base": s, "per_file": s}``, the
phase lasting ``base + per_file × files`` emulated seconds; see :func:`phase_seconds`). Tasks are
settled lazily, on each request, against this clock: the times they report (``StartTime``,
``EndTime``, ...) are the emulated instants at which each step happened, not the instant the
emulator noticed.

Switching modes keeps time monotonic: ``manual`` freezes the current time, ``fast`` resumes from
the frozen time.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

DEFAULT_STEP_SECONDS = 0.2

# Config keys holding a file-count-dependent phase duration (see phase_seconds).
DURATION_KEYS = ("fsx_task_seconds", "datasync_transfer_seconds")


def check_phase_seconds(name: str, value: Any) -> dict[str, float]:
    """Validates a phase duration set through the control API: ``{"base": s, "per_file": s}``,
    both finite numbers >= 0 (emulated seconds). Raises ValueError naming the field."""
    if not isinstance(value, dict):
        raise ValueError(f'{name} must be an object {{"base": seconds, "per_file": seconds}} '
                         "(or null to unset it)")
    unknown = sorted(set(value) - {"base", "per_file"})
    if unknown:
        raise ValueError(f"{name}: unknown field(s) {', '.join(unknown)}; only base and "
                         "per_file are allowed")
    out: dict[str, float] = {}
    for field in ("base", "per_file"):
        if field not in value:
            raise ValueError(f"{name}.{field} is required")
        number = value[field]
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            raise ValueError(f"{name}.{field} must be a number of seconds, not {number!r}")
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{name}.{field} must be a finite number >= 0, not {number!r}")
        out[field] = float(number)
    return out


def phase_seconds(spec: dict[str, float] | None, files: int) -> float | None:
    """How long a task's main phase lasts for ``files`` files: ``base + per_file × files``
    emulated seconds, or None (one ``step_seconds``) when the config does not set it."""
    if spec is None:
        return None
    return spec["base"] + spec["per_file"] * files


class Clock:
    def __init__(self, step_seconds: float = DEFAULT_STEP_SECONDS) -> None:
        self._lock = threading.Lock()
        self.mode = "fast"
        self.step_seconds = step_seconds
        self._offset = 0.0  # fast mode: now = time.time() + offset
        self._frozen = 0.0  # manual mode: now = frozen

    def now(self) -> float:
        with self._lock:
            if self.mode == "manual":
                return self._frozen
            return time.time() + self._offset

    def set(self, mode: str | None = None, step_seconds: float | None = None) -> None:
        if mode not in (None, "fast", "manual"):
            raise ValueError("mode must be 'fast' or 'manual'")
        if step_seconds is not None and not step_seconds > 0:
            raise ValueError("step_seconds must be > 0")
        now = self.now()
        with self._lock:
            if mode == "manual" and self.mode != "manual":
                self._frozen = now
            elif mode == "fast" and self.mode != "fast":
                self._offset = now - time.time()
            if mode:
                self.mode = mode
            if step_seconds is not None:
                self.step_seconds = float(step_seconds)

    def advance(self, seconds: float = 0.0, steps: float = 0.0) -> float:
        delta = float(seconds) + float(steps) * self.step_seconds
        if delta < 0:
            raise ValueError("time cannot go backwards")
        with self._lock:
            if self.mode == "manual":
                self._frozen += delta
            else:
                self._offset += delta
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self.mode = "fast"
            self.step_seconds = DEFAULT_STEP_SECONDS
            self._offset = 0.0
            self._frozen = 0.0

    def describe(self) -> dict[str, float | str]:
        return {"mode": self.mode, "step_seconds": self.step_seconds, "now": self.now()}
