"""The benchmark's upload streams (`make bench`'s `stream` section, local/ferry_local/stream.py),
short: the real system against a steady upload stream with every timer scaled, checked for what
must hold at any speed. No timing assertions: latencies are the benchmark's to measure
(bench/results/stream.json); here nothing may be lost, started twice, left unreported, or
retried into a file system that is busy.
"""

from __future__ import annotations

from typing import Any

import pytest

from ferry_local import stream

#: (scenario, unscaled minutes, time scale): a few minutes of stream each.
SHORT = [
    ("fsx-steady", 10, 0.05),
    ("fsx-foreign", 12, 0.05),
    # The lease is 900 s scaled (27 s real): the stopped runner is replaced within the run.
    ("fsx-runner-stopped", 30, 0.03),
    ("datasync-steady", 12, 0.05),
]


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    return {}


@pytest.mark.parametrize(("name", "minutes", "scale"), SHORT, ids=[s[0] for s in SHORT])
def test_a_short_stream_loses_nothing_and_starts_nothing_twice(name: str, minutes: float,
                                                               scale: float,
                                                               results: dict[str, Any]) -> None:
    result = stream.run(name, scale, minutes=minutes, log=lambda line: None)
    assert result.uploads > 0
    assert result.lost == 0, result
    assert result.imported == result.uploads
    assert result.task_conflict_retries == 0, "a busy file system is waited for, never retried"
    assert result.runs_with_two_tasks == 0, "one task per run"
    assert result.reports == result.runs, "every run reported"
    assert result.notes == [], result.notes
    assert result.max_history_events < 25_000
    if name == "fsx-foreign":
        assert result.busy_answers > 0, "the foreign task was waited for"
        assert result.start_after_foreign_seconds is not None
    if name == "fsx-runner-stopped":
        assert result.runner_executions >= 2, "the stopped runner was replaced"
    if name == "datasync-steady":
        assert result.datasync_executions and result.datasync_executions >= 1
    else:
        assert result.fsx_tasks and result.fsx_tasks >= 1
