#!/usr/bin/env python3
"""`make bench`'s limits section (issue 24): what the reads that used to grow for ever cost now,
on the real binaries against the local emulator.

* take at the cap: a lane holding 2,000 pending jobs (the most one run covers) of a typical
  size, and one of the heaviest jobs a job may be (300 KB each: the 16 MiB read budget stops
  the take first); the lane function's `take` is invoked as the runner does, and the peak RSS of
  its process (VmHWM, /proc) is read after it, beside its time.
* the sweep over 10,000 registered lanes: every lane idle (its runner released it: only the
  registry is read), and every lane with a live runner and a pending job (each lane visited:
  two reads); the submit function's `{"sweep": {}}` is timed, against its 30 s timeout.

    .tools/emulator-venv/bin/python bench/limits.py [--jobs 2000] [--lanes 10000] [--json PATH]

Jobs and registrations are written straight into the lane table (its layout is
shared/src/aws/lanes.rs's): enqueueing 10,000 lanes through `submit` would measure moto, not
the sweep. The figures are the emulator's (moto in one Python process): DynamoDB answers in
milliseconds, so the sweep's time here is an upper bound of AWS's.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from typing import Any

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "local"))

from ferry_local.ferry import LANE_TABLE, LocalFerry, lane_of_fs  # noqa: E402

OWNER = "lane-bench-holder"
DAY = 86_400


def vm_hwm_kib(pid: int) -> int:
    """The process's peak resident set size (VmHWM), KiB."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for {pid}")


def job_id(i: int, salt: str) -> str:
    import hashlib  # noqa: PLC0415
    return "job-" + hashlib.sha256(f"{salt}/{i}".encode()).hexdigest()[:56]


def queued(lane: str, fs: str, i: int, salt: str, paths: list[str], now_ms: int,
           kind: str = "fsx_export", root: str | None = None) -> dict[str, Any]:
    return {"id": job_id(i, salt), "lane": lane,
            "spec": {"version": 1, "name": "bench-job", "kind": kind,
                     "file_system_id": fs, "paths": paths},
            "collapse_root": root, "source": f"s3-trigger route incoming ({i})",
            "enqueued_at": now_ms + i, "deadline": now_ms + i + 3_600_000}


def write(ddb: Any, items: list[dict[str, Any]]) -> None:
    """BatchWriteItem, 25 at a time, unprocessed items again."""
    for start in range(0, len(items), 25):
        requests = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
        while requests:
            left = ddb.batch_write_item(RequestItems={LANE_TABLE: requests})
            requests = left.get("UnprocessedItems", {}).get(LANE_TABLE, [])


def pending_items(lane: str, job: dict[str, Any]) -> list[dict[str, Any]]:
    doc = {"S": json.dumps(job, ensure_ascii=False, separators=(",", ":"))}
    pk = {"S": f"lane#{lane}"}
    return [
        {"pk": pk, "sk": {"S": f"job#{job['id']}"}, "job_state": {"S": "pending"}, "doc_json": doc},
        {"pk": pk, "sk": {"S": f"pending#{job['enqueued_at']:020}#{job['id']}"}, "doc_json": doc},
        {"pk": {"S": f"job#{job['id']}"}, "sk": {"S": "job"}, "lane_key": {"S": lane}},
    ]


def hold(ddb: Any, lane: str, until_ms: int) -> dict[str, Any]:
    return {"pk": {"S": f"lane#{lane}"}, "sk": {"S": "lane"},
            "lease_owner": {"S": OWNER}, "lease_until": {"N": str(until_ms)}}


def take_at_cap(ferry: LocalFerry, jobs: int, heavy: bool) -> dict[str, Any]:
    fs = ferry.file_system(ferry.bucket(f"bench-take-{int(heavy)}-{int(time.time())}"))
    lane = lane_of_fs(fs)
    ddb = ferry.client("dynamodb")
    now_ms = int(time.time() * 1000)
    items = [hold(ddb, lane, now_ms + 3_600_000)]
    count = 60 if heavy else jobs
    root = "s3://bench-data/incoming/"
    for i in range(count):
        if heavy:
            paths = [f"d{i}/{p:02}" + "\u6587" * 4_000 for p in range(25)]
            job = queued(lane, fs, i, f"{fs}-heavy", paths, now_ms)
        else:
            # Upload imports, as s3-trigger queues them: two keys each under the route's prefix,
            # which a run's paths collapse within (so one run takes 2,000 of them).
            paths = [f"{root}d{i % 40:02}/f{i:05}-{p}.h5" for p in range(2)]
            job = queued(lane, fs, i, f"{fs}-typical", paths, now_ms, "fsx_import", root)
        items.extend(pending_items(lane, job))
    write(ddb, items)
    pid = ferry.functions.pid("ferry-lane")
    before = vm_hwm_kib(pid)
    started = time.time()
    answer = ferry.functions.invoke(
        "ferry-lane", {"action": "take", "lane": lane, "owner": OWNER, "generation": 0})
    seconds = time.time() - started
    if not answer.ok:
        raise RuntimeError(f"take failed: {answer.error_type}: {answer.error_message}")
    run = answer.payload["run"]
    return {"case": "heaviest jobs (300 KB each)" if heavy else "upload imports (2 keys each)",
            "pending": count, "run_jobs": run["jobs"] if run else 0,
            "backlog": answer.payload["backlog"], "take_seconds": round(seconds, 2),
            "peak_rss_mib_before": round(before / 1024, 1),
            "peak_rss_mib": round(vm_hwm_kib(pid) / 1024, 1),
            "memory_size_mib": ferry.functions.configs["ferry-lane"].memory}


def sweep(ferry: LocalFerry, lanes: int, active: bool) -> dict[str, Any]:
    """`lanes` registrations (idle, or each with a live lease and a pending job), then a sweep."""
    ddb = ferry.client("dynamodb")
    now_ms = int(time.time() * 1000)
    salt = f"sweep-{int(active)}-{now_ms}"
    items = []
    for n in range(lanes):
        fs = f"fs-{n:08x}{now_ms % 65536:04x}"
        lane = lane_of_fs(fs)
        registration = {"pk": {"S": "lanes"}, "sk": {"S": lane},
                        "last_job": {"S": job_id(n, salt)},
                        "expires_at": {"N": str(now_ms // 1000 + 31 * DAY)}}
        if active:
            items.append(hold(ddb, lane, now_ms + 3_600_000))
            items.extend(pending_items(lane, queued(lane, fs, n, salt, ["a"], now_ms)))
        else:
            registration["idle_since"] = {"N": str(now_ms)}
        items.append(registration)
    write(ddb, items)
    started = time.time()
    answer = ferry.functions.invoke("ferry-submit", {"sweep": {}})
    seconds = time.time() - started
    if not answer.ok:
        raise RuntimeError(f"sweep failed: {answer.error_type}: {answer.error_message}")
    return {"case": "every lane with a live runner and a pending job" if active
            else "every lane idle", "lanes": lanes, "sweep_seconds": round(seconds, 2),
            "kicked": len(answer.payload.get("kicked", [])),
            "visited": answer.payload.get("visited"), "unvisited": answer.payload.get("unvisited"),
            "timeout_seconds": ferry.functions.configs["ferry-submit"].timeout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2_000)
    parser.add_argument("--lanes", type=int, default=10_000)
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from stream import machine  # noqa: PLC0415 (bench/stream.py: the date, CPU, commit)

    results: dict[str, Any] = {
        "machine": machine(),
        "method": "bench/limits.py: the real (debug) binaries against the emulator; jobs and "
                  "registrations written straight into the lane table; peak RSS is the lane "
                  "function's VmHWM after the take; the sweep is submit's {\"sweep\": {}}",
        "take": [], "sweep": []}
    with LocalFerry("bench-limits") as ferry:
        ferry.launch = False  # runners would take the jobs: only the measured calls run
        ferry.start_functions()
        for heavy in (False, True):
            results["take"].append(take_at_cap(ferry, args.jobs, heavy))
            print(json.dumps(results["take"][-1]), flush=True)
    for active in (False, True):
        # A table of its own for each: the registry is one partition.
        with LocalFerry(f"bench-limits-sweep-{int(active)}") as ferry:
            ferry.launch = False
            ferry.start_functions()
            results["sweep"].append(sweep(ferry, args.lanes, active))
            print(json.dumps(results["sweep"][-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
