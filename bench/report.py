#!/usr/bin/env python3
"""Merges the four benchmark parts into one JSON document and prints the summary.

    python3 bench/report.py --work DIR --criterion DIR --out bench/results/latest.json

DIR holds what bench/run.sh collected: machine.json, artifacts.json, coldstart.json, poll.json.
The coalescing figures are read from criterion's own output (`<criterion>/coalesce/<distribution>/
<records>/new/estimates.json`, times in ns). Every figure comes from this run's files; the bars
are DESIGN.md's targets, printed next to each figure (a benchmark reports, it never fails on a
figure).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

MIB = 1024 * 1024
BARS = {
    "cold_start_median_ms": 15.0,
    "peak_rss_mib": 20.0,
    "zip_bytes": 5 * MIB,
    "coalesce_10k_ms": 10.0,
    "poll_6h_percent": 10.0,
}
DISTRIBUTIONS = ["one-folder", "many-folders", "deep-tree"]
RECORDS = [1_000, 10_000, 100_000]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def coalescing(criterion: Path) -> list[dict]:
    rows = []
    for distribution in DISTRIBUTIONS:
        for records in RECORDS:
            estimates = criterion / "coalesce" / distribution / str(records) / "new" / "estimates.json"
            if not estimates.exists():
                raise SystemExit(f"report: {estimates} is missing (did the coalesce bench run?)")
            e = load(estimates)
            median = e["median"]
            rows.append({
                "distribution": distribution,
                "records": records,
                "median_ms": round(median["point_estimate"] / 1e6, 3),
                "median_ci95_ms": [round(median["confidence_interval"]["lower_bound"] / 1e6, 3),
                                   round(median["confidence_interval"]["upper_bound"] / 1e6, 3)],
                "mean_ms": round(e["mean"]["point_estimate"] / 1e6, 3),
            })
    return rows


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True, type=Path)
    parser.add_argument("--criterion", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    machine = load(args.work / "machine.json")
    artifacts = load(args.work / "artifacts.json")
    coldstart = load(args.work / "coldstart.json")
    poll = load(args.work / "poll.json")
    coalesce = {
        "method": "criterion (cargo bench -p ferry --bench coalesce), release profile on the host; "
                  "routing + coalescing of one SQS batch's objects into jobs (ferry::trigger::coalesce::plan)",
        "results": coalescing(args.criterion),
    }
    document = {
        "schema": "ferry.bench/1",
        "machine": machine,
        "bars": BARS,
        "artifacts": artifacts,
        "cold_start": coldstart,
        "coalescing": coalesce,
        "polling": poll,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")

    sizes = {a["function"]: a for a in artifacts["functions"]}
    print(f"Measured {machine['date']} on {machine['cpu']} ({machine['nproc']} CPUs), "
          f"{machine['rustc']}, commit {machine['git_commit']}, "
          f"load average {machine.get('load_average_1m_at_start', 'unknown')} at the start")
    print()
    print("| Function | Cold start min / median / max | Peak RSS | Zip (bootstrap) | Bars |")
    print("|---|---|---|---|---|")
    for f in coldstart["functions"]:
        c = f["cold_start_ms"]
        if f["function"] not in sizes:
            print(f"| {f['function']} | {c['min']:.1f} / {c['median']:.1f} / {c['max']:.1f} ms | "
                  f"{f['peak_rss_mib_max']:.1f} MiB | | included in every figure above (not subtracted) |")
            continue
        a = sizes[f["function"]]
        oks = [c["median"] <= BARS["cold_start_median_ms"],
               f["peak_rss_mib_max"] <= BARS["peak_rss_mib"],
               a["zip_bytes"] <= BARS["zip_bytes"]]
        print(f"| `{f['function']}` | {c['min']:.1f} / {c['median']:.1f} / {c['max']:.1f} ms | "
              f"{f['peak_rss_mib_max']:.1f} MiB | {a['zip_bytes'] / MIB:.2f} MiB "
              f"({a['bootstrap_bytes'] / MIB:.1f} MiB) | "
              f"{'all met' if all(oks) else ', '.join(n for n, ok in zip(['cold start', 'RSS', 'zip'], oks) if not ok) + ' MISSED'} |")
    print()
    print("| Coalescing (median) | 1,000 | 10,000 | 100,000 | 10,000 ≤ 10 ms |")
    print("|---|---|---|---|---|")
    by = {(r["distribution"], r["records"]): r for r in coalesce["results"]}
    for d in DISTRIBUTIONS:
        ten_k = by[(d, 10_000)]["median_ms"]
        print(f"| {d} | " + " | ".join(f"{by[(d, n)]['median_ms']:.2f} ms" for n in RECORDS)
              + f" | {verdict(ten_k <= BARS['coalesce_10k_ms'])} |")
    print()
    print("| Polling, task of | polls fixed 30 s / adaptive | transitions fixed / adaptive | % of fixed "
          "| Lambda invocations fixed / adaptive | worst detection delay |")
    print("|---|---|---|---|---|---|")
    for t in poll["tasks"]:
        fixed, a, lin = t["fixed_30s"], t["adaptive"], t["adaptive_linear_progress"]
        note = ""
        if t["task_seconds"] == 6 * 3600:
            note = f" ({verdict(t['transitions_percent_of_fixed'] <= BARS['poll_6h_percent'])}: ≤ 10 %)"
        print(f"| {t['task']} | {fixed['polls']} / {max(a['polls'], lin['polls'])} | "
              f"{fixed['transitions']} / {max(a['transitions'], lin['transitions'])} | "
              f"{t['transitions_percent_of_fixed']:.1f} %{note} | "
              f"{fixed['lambda_invocations']} / {max(a['lambda_invocations'], lin['lambda_invocations'])} | "
              f"{max(a['detection_delay_seconds'], lin['detection_delay_seconds'])} s |")
    print()
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
