#!/usr/bin/env python3
"""Check template.yaml's dashboard and metric alarms against the metrics the code emits
(`make validate` runs it on SAM's translation; standard library only).

    python3 scripts/check-dashboard.py build/template.translated.json
    python3 scripts/check-dashboard.py --self-test   # the checker finds what it should

The metric names are the string constants of shared/src/metrics.rs; the dimensions the ones
its callers pass (`("Lane", ...)`, `("Outcome", ...)`). For each AWS::CloudWatch::Dashboard, the
body (its Fn::Sub resolved with parameter defaults) must be JSON with metric widgets whose every
metric, and every SEARCH expression's MetricName, is one the code emits, in the stack's
namespace, with known dimensions; each alarm on that namespace must watch an emitted metric.
Problems are printed one per line and make the exit status 1.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONSTANT = re.compile(r'^pub const ([A-Z_]+): &str = "([^"]+)";', re.M)
NOT_METRICS = {"NAMESPACE", "ENV_NAMESPACE"}
SEARCH_NAME = re.compile(r'MetricName=\\?"([^"\\]+)\\?"')
SEARCH_SCHEMA = re.compile(r"SEARCH\('\{\"([^\"]+)\",([^}]*)\}")


def emitted() -> tuple[set[str], set[str]]:
    source = (ROOT / "shared/src/metrics.rs").read_text()
    names = {value for const, value in CONSTANT.findall(source) if const not in NOT_METRICS}
    callers = "".join(p.read_text() for p in (ROOT / "shared/src").rglob("*.rs"))
    dimensions = set(re.findall(r'\(\s*"([A-Z][A-Za-z]+)",\s*&', callers))
    return names, dimensions


def resolve(value: object, parameters: dict[str, str]) -> str:
    """A Fn::Sub (string or [string, map]) with pseudo parameters, parameter defaults and the
    map's values (each itself a Fn::Sub) substituted."""
    if isinstance(value, str):
        return value
    if not isinstance(value, dict) or "Fn::Sub" not in value:
        raise ValueError(f"expected a string or Fn::Sub, got {value!r:.80}")
    sub = value["Fn::Sub"]
    text, names = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
    known = {"AWS::Region": "us-east-1", "AWS::StackName": "ferry-check",
             "AWS::AccountId": "111122223333", **parameters}
    known.update({k: resolve(v, parameters) for k, v in names.items()})

    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in known:
            raise ValueError(f"${{{name}}} is neither a parameter nor a pseudo parameter")
        return known[name]

    return re.sub(r"\$\{([^}!]+)\}", one, text)


def check(template: dict) -> list[str]:
    names, dimensions = emitted()
    parameters = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
    namespace = resolve({"Fn::Sub": "Ferry/${AWS::StackName}"}, parameters)
    problems: list[str] = []
    resources = template.get("Resources", {})
    dashboards = [(k, r) for k, r in resources.items() if r.get("Type") == "AWS::CloudWatch::Dashboard"]
    if not dashboards:
        problems.append("no AWS::CloudWatch::Dashboard in the template")
    for logical, resource in dashboards:
        try:
            body = json.loads(resolve(resource["Properties"]["DashboardBody"], parameters))
        except (ValueError, KeyError) as e:
            problems.append(f"{logical}: DashboardBody: {e}")
            continue
        widgets = body.get("widgets") or []
        if not widgets:
            problems.append(f"{logical}: no widgets")
        for i, widget in enumerate(widgets):
            where = f"{logical}: widgets[{i}]"
            props = widget.get("properties", {})
            if widget.get("type") != "metric":
                problems.append(f"{where}: type {widget.get('type')!r}, expected metric")
                continue
            for key in ("title", "region", "metrics"):
                if not props.get(key):
                    problems.append(f"{where}: properties.{key} missing")
            for j, row in enumerate(props.get("metrics", [])):
                problems += check_row(f"{where}.metrics[{j}]", row, namespace, names, dimensions)
    for logical, resource in resources.items():
        props = resource.get("Properties", {})
        if resource.get("Type") != "AWS::CloudWatch::Alarm" or "Namespace" not in props:
            continue
        try:
            alarm_namespace = resolve(props["Namespace"], parameters)
        except ValueError as e:
            problems.append(f"{logical}: Namespace: {e}")
            continue
        if alarm_namespace == namespace and props.get("MetricName") not in names:
            problems.append(f"{logical}: MetricName {props.get('MetricName')!r} is not emitted")
    return problems


def check_row(where: str, row: list, namespace: str, names: set[str],
              dimensions: set[str]) -> list[str]:
    if row and isinstance(row[0], dict) and "expression" in row[0]:
        expression = row[0]["expression"]
        schema = SEARCH_SCHEMA.search(expression)
        found = SEARCH_NAME.findall(expression)
        problems = []
        if not schema or schema.group(1) != namespace:
            problems.append(f"{where}: SEARCH not over {{\"{namespace}\",...}}: {expression}")
        else:
            problems += [f"{where}: unknown dimension {d!r}" for d in
                         schema.group(2).split(",") if d and d not in dimensions]
        if not found:
            problems.append(f"{where}: SEARCH names no MetricName: {expression}")
        problems += [f"{where}: metric {n!r} is not emitted" for n in found if n not in names]
        return problems
    plain = [x for x in row if not isinstance(x, dict)]
    if len(plain) < 2 or len(plain) % 2:
        return [f"{where}: expected [namespace, name, (dimension, value)...], got {row}"]
    problems = []
    if plain[0] != namespace:
        problems.append(f"{where}: namespace {plain[0]!r}, expected {namespace!r}")
    if plain[1] not in names:
        problems.append(f"{where}: metric {plain[1]!r} is not emitted")
    problems += [f"{where}: unknown dimension {d!r}" for d in plain[2::2] if d not in dimensions]
    return problems


def self_test() -> int:
    """A dashboard and an alarm with one mistake of each kind: each must be found."""
    sub = {"Fn::Sub": ["""{"widgets": [{"type": "metric", "properties": {"title": "t",
        "region": "${AWS::Region}", "metrics": [["${Ns}", "Bytez"], ["Other", "Bytes"],
        ["${Ns}", "Bytes", "Colour", "red"],
        [{"expression": "SEARCH('{\\"${Ns}\\",Lane} MetricName=\\"Backlogg\\"', 'Sum', 300)"}],
        [{"expression": "SEARCH('{\\"${Ns}\\",Lane} MetricName=\\"Backlog\\"', 'Sum', 300)"}]]}}]}""",
        {"Ns": {"Fn::Sub": "Ferry/${AWS::StackName}"}}]}
    template = {"Resources": {
        "D": {"Type": "AWS::CloudWatch::Dashboard", "Properties": {"DashboardBody": sub}},
        "A": {"Type": "AWS::CloudWatch::Alarm", "Properties": {
            "Namespace": {"Fn::Sub": "Ferry/${AWS::StackName}"}, "MetricName": "Nope"}}}}
    problems = check(template)
    expected = ["metric 'Bytez' is not emitted", "namespace 'Other'",
                "unknown dimension 'Colour'", "metric 'Backlogg' is not emitted",
                "A: MetricName 'Nope' is not emitted"]
    missed = [e for e in expected if not any(e in p for p in problems)]
    if missed or len(problems) != len(expected):
        print(f"check-dashboard self-test: missed {missed}; found {problems}")
        return 1
    print(f"check-dashboard self-test: {len(expected)} planted mistakes found")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(json.loads(Path(sys.argv[1]).read_text()))
    for problem in problems:
        print(f"check-dashboard: {problem}")
    if not problems:
        print("check-dashboard: dashboard and alarms read only metrics the code emits")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
