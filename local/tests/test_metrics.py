"""Metrics (issue 16): the functions' Embedded Metric Format lines, read from the real
binaries' standard output (what Lambda sends to CloudWatch Logs), each checked against the EMF
specification's rules, and the ones a run, a take, the sweep and an upload batch must emit."""

from __future__ import annotations

import json
from typing import Any, Callable

from conftest import World, submitted
from test_cli import ferry_cli
from ferry_local import processes
from ferry_local import template as ferry_template
from ferry_local.ferry import LocalFerry, lane_of_fs, unique

UNITS = {"Count", "Seconds", "Bytes"}
NAMESPACE_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._#:/-")


def emf_documents(ferry: LocalFerry, function: str) -> list[dict[str, Any]]:
    """Every EMF document the function wrote, each checked against the specification."""
    assert ferry.functions is not None
    docs = []
    for line in ferry.functions.log_path(function).read_text(errors="replace").splitlines():
        if not line.startswith("{") or '"_aws":' not in line:
            continue
        doc = json.loads(line)
        if "_aws" not in doc:
            continue
        check_emf(doc)
        docs.append(doc)
    return docs


def check_emf(doc: dict[str, Any]) -> None:
    aws = doc["_aws"]
    assert isinstance(aws["Timestamp"], int) and aws["Timestamp"] > 1_600_000_000_000
    for directive in aws["CloudWatchMetrics"]:
        namespace = directive["Namespace"]
        assert 1 <= len(namespace) <= 256 and set(namespace) <= NAMESPACE_CHARS, namespace
        for dimension_set in directive["Dimensions"]:
            assert len(dimension_set) <= 30
            for name in dimension_set:
                assert isinstance(doc[name], str) and len(doc[name]) <= 1024, name
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert metric["Unit"] in UNITS, metric
            value = doc[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100
            assert all(isinstance(v, (int, float)) for v in values), metric


def test_a_run_a_take_the_sweep_and_an_upload_batch_emit_their_metrics(
        world: World, ferry: LocalFerry, file_system: Callable[..., tuple[str, str]]) -> None:
    _, fs = file_system(files={"results/a.nc": "a\n", "results/b.nc": "b\n"})
    lane = lane_of_fs(fs)
    job = submitted(ferry, {"name": unique("metrics"), "kind": "fsx_export",
                            "file_system_id": fs, "paths": ["results"]})
    assert ferry.settle(lane, jobs=1)[job]["state"] == "succeeded"

    runs = [d for d in emf_documents(ferry, "ferry-notify") if d.get("Lane") == lane]
    [run] = runs
    assert run["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Lane", "Outcome"], ["Outcome"]]
    assert (run["Outcome"], run["Runs"], run["JobsPerRun"], run["Files"]) == (
        "succeeded", 1, 1, 2)
    assert run["RunDuration"] >= 0

    takes = [d for d in emf_documents(ferry, "ferry-lane") if d.get("Lane") == lane]
    waits = [d["JobWait"] for d in takes if "JobWait" in d]
    assert len(waits) == 1 and waits[0] >= 0, takes
    assert all(d["Backlog"] == 0 for d in takes)

    # Its runner released the lane with nothing left: the sweep passes it by (issue 24: the
    # sweep visits lanes with work only), so no metric of it.
    before = len(emf_documents(ferry, "ferry-submit"))
    ferry.sweep()
    swept = [d for d in emf_documents(ferry, "ferry-submit")[before:] if d.get("Lane") == lane]
    assert swept == [], "an idle lane is not visited"

    # A lane with a run in flight and a job waiting behind it is visited and measured.
    ferry.ctl.hold(file_system_id=fs)
    held = submitted(ferry, {"name": unique("metrics-held"), "kind": "fsx_export",
                             "file_system_id": fs, "paths": ["results"]})
    processes.wait_for(lambda: ferry.run_in_flight(lane) is not None
                       and ferry.run_in_flight(lane).get("state") == "started", 30,
                       what="the held run to start")
    waiting = submitted(ferry, {"name": unique("metrics-waiting"), "kind": "fsx_release",
                                "file_system_id": fs, "paths": ["results"],
                                "release": {"days_since_last_access": 0}})
    before = len(emf_documents(ferry, "ferry-submit"))
    ferry.sweep()
    swept = [d for d in emf_documents(ferry, "ferry-submit")[before:] if d.get("Lane") == lane]
    assert len(swept) == 1 and swept[0]["OldestPendingAge"] >= 0, swept
    assert swept[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Lane"], []]
    ferry.ctl.release(file_system_id=fs)
    settled = ferry.settle(lane, jobs=3)
    assert (settled[held]["state"], settled[waiting]["state"]) == ("succeeded", "succeeded")


def test_an_upload_batch_counts_what_it_queued_matched_nothing_or_ignored(
        world: World, ferry: LocalFerry) -> None:
    before = len(emf_documents(ferry, "ferry-s3-trigger"))
    s3 = ferry.client("s3")
    stray = f"elsewhere/{unique('m')}.h5"
    # No FSx path may hold a `..` segment: no job of the route could ever import it.
    refused = f"incoming/{unique('m')}/../escape.h5"
    s3.put_object(Bucket=world.data_bucket, Key=f"incoming/{unique('m')}/a.h5", Body=b"a")
    s3.put_object(Bucket=world.data_bucket, Key=stray, Body=b"b")
    s3.put_object(Bucket=world.data_bucket, Key=refused, Body=b"c")
    ferry.deliver_until_done(ferry.receive_uploads(world.uploads_url, 3), world.uploads_url,
                             world.uploads_arn)
    docs = emf_documents(ferry, "ferry-s3-trigger")[before:]
    assert docs, "one document per batch"
    names = ("UploadsQueued", "UploadsUnmatched", "UploadsIgnored", "UploadsRefused",
             "MessagesFailed")
    totals = {name: sum(d.get(name, 0) for d in docs) for name in names}
    assert totals == {"UploadsQueued": 1, "UploadsUnmatched": 1, "UploadsIgnored": 0,
                      "UploadsRefused": 1, "MessagesFailed": 0}, totals
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]] for d in docs)

    # The stray upload is recorded where an operator finds it (keys stay out of the logs).
    out = ferry_cli(ferry, "history", "--unmatched", "--since", "1h", "--json")
    assert out.returncode == 0, out.stderr
    dropped = [d for d in json.loads(out.stdout)["dropped"] if d["key"] == stray]
    assert len(dropped) == 1, out.stdout
    assert (dropped[0]["why"], dropped[0]["bucket"]) == ("matched no route", world.data_bucket)
    assert dropped[0]["message_id"]
    # The refused one too, with why (issue 24: recorded, acknowledged, never retried in vain).
    [gone] = [d for d in json.loads(out.stdout)["dropped"] if d["key"] == refused]
    assert gone["why"].startswith("refused: ") and "'..'" in gone["why"], gone
    text = ferry_cli(ferry, "history", "--unmatched")
    assert text.returncode == 0 and f"s3://{world.data_bucket}/{stray}" in text.stdout
    log = ferry.functions.log_path("ferry-s3-trigger").read_text()
    assert stray not in log and refused not in log


# Lambda's log levels, most detailed first (Lambda developer guide, "Log-level filtering").
LAMBDA_LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"]


def lambda_keeps(line: str, application_level: str) -> bool:
    """Lambda's filter for a function with LogFormat JSON: a JSON line's `level` decides, and
    "if the `level` value field is invalid or missing, Lambda assigns the log output the level
    INFO"; a line is sent when its level is at or above ApplicationLogLevel."""
    try:
        level = str(json.loads(line).get("level", "")).upper()
    except (ValueError, AttributeError):
        level = ""
    if level not in LAMBDA_LEVELS:
        level = "INFO"
    return LAMBDA_LEVELS.index(level) >= LAMBDA_LEVELS.index(application_level.upper())


def test_metrics_survive_every_log_level_the_template_allows(
        world: World, ferry: LocalFerry) -> None:
    # Issue 31, item 1: with ApplicationLogLevel at LogLevel, WARN and above dropped every
    # EMF line (no `level`: INFO to Lambda), and every metric and alarm went dark.
    assert ferry.functions is not None
    before = len(emf_documents(ferry, "ferry-s3-trigger"))
    test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent",
                             "Bucket": world.data_bucket})
    answer = ferry.functions.invoke("ferry-s3-trigger", {"Records": [
        {"messageId": "m-levels", "eventSource": "aws:sqs", "body": test_event}]})
    assert answer.ok, answer
    log = ferry.functions.log_path("ferry-s3-trigger").read_text(errors="replace")
    emf_lines = [line for line in log.splitlines() if line.startswith("{") and '"_aws":' in line]
    assert len(emf_lines) > before, "the batch wrote its metrics"

    template = ferry_template.load()
    globals_logging = template["Globals"]["Function"]["LoggingConfig"]
    globals_env = template["Globals"]["Function"]["Environment"]["Variables"]
    allowed = template["Parameters"]["LogLevel"]["AllowedValues"]
    assert allowed == LAMBDA_LEVELS
    for level in allowed:
        evaluator = ferry_template.Evaluator(template, {"LogLevel": level})
        for binary, function in ferry_template.functions(template).items():
            logging = {**globals_logging, **function["Properties"].get("LoggingConfig", {})}
            assert logging["LogFormat"] == "JSON", binary
            lambda_level = evaluator.value(logging["ApplicationLogLevel"])
            kept = [line for line in emf_lines if lambda_keeps(line, lambda_level)]
            assert kept == emf_lines, (
                f"LogLevel={level}: Lambda drops {binary}'s metric lines "
                f"(ApplicationLogLevel {lambda_level})")
            # The level still applies: the function filters its own lines at it.
            own = function["Properties"].get("Environment", {}).get("Variables", {})
            variables = {**globals_env, **own}
            assert evaluator.value(variables["FERRY_LOG_LEVEL"]) == level, binary
