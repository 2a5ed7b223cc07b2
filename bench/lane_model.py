"""v1 (one execution per upload batch) against v2 (one runner per lane): a model of both
scheduling policies on the same upload stream. A MODEL, not a measurement: `make bench`'s
`stream` section runs the real system (bench/stream.py); this puts v1, which the real system no
longer has, beside it.

    python3 bench/lane_model.py [--hours 2] [--rate 1.0] [--json out.json]

The stream: `rate` uploads per second for `hours` into one FSx file system, batched by the SQS
event source mapping's 30 s window; an import takes 60 s + 10 ms per file (DESIGN.md's figures,
the emulator's `fsx_task_seconds` knob in the benchmark). FSx runs one task at a time.

v1, as statemachine/ferry.asl.json was before lanes (git history): each batch becomes an
execution; its StartTask meets `TaskConflict` while another task runs and retries with Step
Functions' policy (IntervalSeconds 60, BackoffRate 1.5, MaxDelaySeconds 900, MaxAttempts 48,
JitterStrategy FULL: each wait uniform in [0, min(60 x 1.5^(n-1), 900)] seconds); after 48
retries the batch is reported "could not start" and its uploads are never imported. Its task
covers its own batch only.

v2: one runner per file system. When the file system frees it takes everything pending as one
run (one task over all of it); while jobs wait it checks the running task at least every
FERRY_BUSY_POLL_MAX_SECONDS (60), otherwise every fifth of the task's age within 15..600 s; a
run's bookkeeping (report, finish, take, start) costs `--overhead` seconds (2 by default).

Latency: from an upload to the end of the task that covered it.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from dataclasses import dataclass

WINDOW = 30.0
BASE, PER_FILE = 60.0, 0.01
# v1's TaskConflict retry (the removed ASL's StartTask Retry).
INTERVAL, BACKOFF, MAX_DELAY, MAX_ATTEMPTS = 60.0, 1.5, 900.0, 48
# v2's polling.
POLL_MIN, POLL_MAX, BUSY_MAX, AGE_FRACTION = 15.0, 600.0, 60.0, 0.2


@dataclass
class Result:
    policy: str
    uploads: int
    imported: int
    lost: int
    p50_seconds: float
    p95_seconds: float
    max_seconds: float
    fsx_tasks: int
    executions: int
    max_waiting_executions: int


def batches(hours: float, rate: float) -> list[tuple[float, list[float]]]:
    """(delivery time, upload times) per 30 s window."""
    uploads = [i / rate for i in range(int(hours * 3600 * rate))]
    out: dict[int, list[float]] = {}
    for t in uploads:
        out.setdefault(int(t // WINDOW), []).append(t)
    return [((w + 1) * WINDOW, ts) for w, ts in sorted(out.items())]


def duration(files: int) -> float:
    return BASE + PER_FILE * files


def summarize(policy: str, uploads: int, latencies: list[float], tasks: int, executions: int,
              max_waiting: int) -> Result:
    ordered = sorted(latencies)
    pick = (lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]) if ordered else (
        lambda q: float("nan"))
    return Result(policy, uploads, len(latencies), uploads - len(latencies),
                  round(statistics.median(ordered), 1) if ordered else float("nan"),
                  round(pick(0.95), 1), round(ordered[-1], 1) if ordered else float("nan"),
                  tasks, executions, max_waiting)


def v1(stream: list[tuple[float, list[float]]], seed: int) -> Result:
    rng = random.Random(seed)
    # Events: (time, order, batch index, attempt). The file system is busy until `free_at`.
    import heapq
    events = [(t, i, i, 0) for i, (t, _) in enumerate(stream)]
    heapq.heapify(events)
    free_at = 0.0
    latencies: list[float] = []
    tasks = 0
    waiting: set[int] = set()
    max_waiting = 0
    order = len(stream)
    while events:
        now, _, b, attempt = heapq.heappop(events)
        _, ts = stream[b]
        if now >= free_at:
            end = now + duration(len(ts))
            free_at = end
            tasks += 1
            latencies += [end - t for t in ts]
            waiting.discard(b)
            continue
        if attempt >= MAX_ATTEMPTS:
            waiting.discard(b)  # could not start: reported, never imported
            continue
        waiting.add(b)
        max_waiting = max(max_waiting, len(waiting))
        delay = rng.uniform(0, min(INTERVAL * BACKOFF ** attempt, MAX_DELAY))
        order += 1
        heapq.heappush(events, (now + delay, order, b, attempt + 1))
    uploads = sum(len(ts) for _, ts in stream)
    return summarize("v1: one execution per batch", uploads, latencies, tasks, len(stream),
                     max_waiting)


def v2(stream: list[tuple[float, list[float]]], overhead: float) -> Result:
    latencies: list[float] = []
    tasks = 0
    now = 0.0
    i = 0
    pending: list[float] = []
    while i < len(stream) or pending:
        # Idle lane: the next entry's kick starts the runner.
        if not pending:
            now = max(now, stream[i][0])
        while i < len(stream) and stream[i][0] <= now:
            pending += stream[i][1]
            i += 1
        run, pending = pending, []
        start = now + overhead
        end = start + duration(len(run))
        tasks += 1
        # The runner notices the end at its next status check.
        check = start + POLL_MIN
        while check < end:
            waiting = i < len(stream) and stream[i][0] <= check
            wait = min(max(AGE_FRACTION * (check - start), POLL_MIN), POLL_MAX)
            check += min(wait, BUSY_MAX) if waiting else wait
        latencies += [end - t for t in run]
        now = check
    uploads = sum(len(ts) for _, ts in stream)
    return summarize("v2: one runner per lane", uploads, latencies, tasks, tasks, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=2.0)
    parser.add_argument("--rate", type=float, default=1.0, help="uploads per second")
    parser.add_argument("--overhead", type=float, default=2.0,
                        help="v2 seconds between a task's end being seen and the next start")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    stream = batches(args.hours, args.rate)
    results = [v1(stream, args.seed), v2(stream, args.overhead)]
    print(f"{args.rate} upload/s for {args.hours} h into one file system; imports "
          f"{BASE:.0f} s + {PER_FILE * 1000:.0f} ms per file (a model, see the docstring)")
    print(f"{'policy':<30} {'lost':>7} {'p50 s':>8} {'p95 s':>8} {'max s':>8} {'tasks':>6} "
          f"{'executions':>10} {'max waiting':>11}")
    for r in results:
        print(f"{r.policy:<30} {r.lost / r.uploads:>7.1%} {r.p50_seconds:>8.0f} "
              f"{r.p95_seconds:>8.0f} {r.max_seconds:>8.0f} {r.fsx_tasks:>6} {r.executions:>10} "
              f"{r.max_waiting_executions:>11}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"hours": args.hours, "rate_per_second": args.rate,
                       "results": [r.__dict__ for r in results]}, out, indent=2)


if __name__ == "__main__":
    main()
