"""`make bench`'s limits section (bench/limits.py), small: the take at a lane's cap and the sweep
over many registered lanes run on the real binaries and answer, so the section does not rot.
No timing assertions: the figures are the benchmark's (bench/results/limits.json)."""

from __future__ import annotations

import importlib.util
import pathlib

from ferry_local.ferry import LocalFerry

_spec = importlib.util.spec_from_file_location(
    "bench_limits", pathlib.Path(__file__).resolve().parents[2] / "bench" / "limits.py")
limits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(limits)


def test_the_take_at_the_cap_and_the_sweep_over_many_lanes_run() -> None:
    with LocalFerry("bench-limits-smoke") as ferry:
        ferry.launch = False
        ferry.start_functions()
        typical = limits.take_at_cap(ferry, 120, heavy=False)
        assert typical["run_jobs"] == 120, typical
        assert typical["peak_rss_mib"] > 0
        heavy = limits.take_at_cap(ferry, 0, heavy=True)
        assert heavy["run_jobs"] == 1 and heavy["backlog"] > 0, heavy
        idle = limits.sweep(ferry, 60, active=False)
        assert idle["kicked"] == 0
        active = limits.sweep(ferry, 60, active=True)
        assert active["kicked"] == 0 and active["lanes"] == 60
