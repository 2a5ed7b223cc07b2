#!/usr/bin/env python3
"""Check what a real account would show and the validators cannot (issue 31), on SAM's
translation of template.yaml (`make validate` runs it; standard library only).

    python3 scripts/check-template.py build/template.translated.json
    python3 scripts/check-template.py --self-test   # the checker finds what it should

- Every function invoked asynchronously (a Scheduler schedule, an EventBridge rule, S3 or SNS
  through a Lambda permission) has an on-failure destination: after Lambda's two retries an
  asynchronous event is otherwise discarded, and Scheduler's own dead-letter queue only gets
  what it could not deliver (Lambda developer guide, "Asynchronous invocation").
- A KMS key that encrypts a retained resource is retained as well (DeletionPolicy and
  UpdateReplacePolicy): a retained table whose key is deleted can never be read again.
- A dashboard's name holds the region: dashboard names are unique per account, not per region.
- The docs name as many functions as the template deploys ("eight functions").
- samconfig.toml gives `sam build` and `sam deploy` the same Architecture: a guided deploy
  saves its answers to the deploy section, which `sam build` never reads.
- Each function's environment variables fit Lambda's 4 KB at their longest (Lambda developer
  guide, "Lambda quotas": "Aggregate size of all environment variables: 4 KB"): a string
  parameter passed to one needs a MaxLength; a resource's name or ARN counts 256 bytes, a
  pseudo parameter its longest.
- A regional service name (`logs.${AWS::Region}.…`, a `kms:ViaService`) ends in
  `${AWS::URLSuffix}`, not `amazonaws.com`: China's regions use amazonaws.com.cn.
- A queue that admits S3 notifications admits every bucket of the parameter naming them, which
  is a list: its aws:SourceArn condition, evaluated for two buckets, matches both (routes may
  name several buckets; a bucket the policy does not name is refused by SQS, silently).

Problems are printed one per line and make the exit status 1.
"""

from __future__ import annotations

import fnmatch
import json
import re
import sys
import tomllib
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[1]
ASYNC_PRINCIPALS = {"events.amazonaws.com", "s3.amazonaws.com", "sns.amazonaws.com"}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
           "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
# "the seven functions", "Seven Lambda functions": a count of all of them. Other counts ("the
# five functions it calls") name a subset and are followed by what picks them.
COUNT = re.compile(r"\b(?:the |The )?(" + "|".join(NUMBERS) + r"|"
                   + "|".join(n.capitalize() for n in NUMBERS)
                   + r") (?:Lambda )?functions\b(?! it calls)")
DOCS = ["README.md", "docs/*.md", "template.yaml"]


def walk(node: Any) -> Iterator[Any]:
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def referenced(node: Any) -> set[str]:
    """Logical ids `node` refers to (Ref, Fn::GetAtt, ${Id} or ${Id.Attr} in Fn::Sub)."""
    found: set[str] = set()
    for n in walk(node):
        if not isinstance(n, dict) or len(n) != 1:
            continue
        (key, value), = n.items()
        if key == "Ref" and isinstance(value, str):
            found.add(value)
        elif key == "Fn::GetAtt":
            found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
        elif key == "Fn::Sub":
            text = value if isinstance(value, str) else value[0]
            found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text))
    return found


def async_functions(resources: dict[str, Any]) -> dict[str, str]:
    """Function logical id -> who invokes it asynchronously."""
    functions = {k for k, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    found: dict[str, str] = {}
    for name, r in resources.items():
        props = r.get("Properties", {})
        if r["Type"] == "AWS::Scheduler::Schedule":
            for f in referenced(props.get("Target", {}).get("Arn")) & functions:
                found[f] = f"schedule {name}"
        elif r["Type"] == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                for f in referenced(target.get("Arn")) & functions:
                    found[f] = f"rule {name}"
        elif r["Type"] == "AWS::Lambda::Permission" and props.get("Principal") in ASYNC_PRINCIPALS:
            for f in referenced(props.get("FunctionName")) & functions:
                found[f] = f"{props['Principal']} ({name})"
    return found


def check(template: dict[str, Any], docs: dict[str, str]) -> list[str]:
    resources = template.get("Resources", {})
    problems = []
    destinations = {}
    for name, r in resources.items():
        if r["Type"] == "AWS::Lambda::EventInvokeConfig":
            props = r.get("Properties", {})
            on_failure = props.get("DestinationConfig", {}).get("OnFailure", {})
            for f in referenced(props.get("FunctionName")):
                destinations[f] = bool(on_failure.get("Destination"))
    for function, invoker in sorted(async_functions(resources).items()):
        if not destinations.get(function):
            problems.append(f"{function}: invoked asynchronously ({invoker}) with no on-failure "
                            "destination: an event that fails after Lambda's retries is lost")
    for name, r in resources.items():
        if r.get("DeletionPolicy") != "Retain":
            continue
        for key in sorted(referenced(r.get("Properties", {}))):
            k = resources.get(key, {})
            if k.get("Type") != "AWS::KMS::Key":
                continue
            for policy in ("DeletionPolicy", "UpdateReplacePolicy"):
                if k.get(policy) != "Retain":
                    problems.append(f"{key}: encrypts {name}, which is retained, but its {policy}"
                                    " is not Retain: the retained data could not be read again")
    for name, r in resources.items():
        if r["Type"] != "AWS::CloudWatch::Dashboard":
            continue
        dashboard = r.get("Properties", {}).get("DashboardName")
        if dashboard is not None and "AWS::Region" not in json.dumps(dashboard):
            problems.append(f"{name}: DashboardName {json.dumps(dashboard)} lacks the region: "
                            "dashboard names are unique per account")
    problems += environment_sizes(template)[0]
    problems += notification_sources(template)
    for name, r in resources.items():
        for node in walk(r):
            if isinstance(node, dict) and isinstance(node.get("Fn::Sub"), str) \
                    and "${AWS::Region}.amazonaws.com" in node["Fn::Sub"]:
                problems.append(f"{name}: {node['Fn::Sub']!r} hard-codes amazonaws.com: use "
                                "${AWS::URLSuffix} (amazonaws.com.cn in China)")
    deployed = sum(1 for r in resources.values() if r["Type"] == "AWS::Lambda::Function")
    for path, text in sorted(docs.items()):
        for number, line in counts(text):
            if number != deployed:
                problems.append(f"{path}:{line}: names {number} functions; the template deploys "
                                f"{deployed}")
    return problems


ENV_BYTES = 4096
# The longest each pseudo parameter can be; a resource's Ref or attribute counts RESOURCE_BYTES.
PSEUDO = {"AWS::StackName": 128, "AWS::Region": 20, "AWS::AccountId": 12,
          "AWS::Partition": 10, "AWS::URLSuffix": 20}
RESOURCE_BYTES = 256


def longest(value: Any, parameters: dict[str, Any], problems: list[str], where: str) -> int:
    """The most bytes `value` (a template value) can take once deployed."""
    if isinstance(value, (str, int, float, bool)):
        return len(str(value).encode())
    if not isinstance(value, dict) or len(value) != 1:
        return RESOURCE_BYTES
    (key, arg), = value.items()
    if key == "Ref":
        return reference(arg, parameters, problems, where)
    if key == "Fn::If":
        return max(longest(v, parameters, problems, where) for v in arg[1:])
    if key == "Fn::Sub":
        text, bound = (arg, {}) if isinstance(arg, str) else arg
        total = len(re.sub(r"\$\{[^}]+\}", "", text).encode())
        for name in re.findall(r"\$\{([^}!]+)\}", text):
            total += (longest(bound[name], parameters, problems, where) if name in bound
                      else reference(name.split(".")[0], parameters, problems, where))
        return total
    if key == "Fn::Join":
        sep, items = arg
        parts = items if isinstance(items, list) else [items]
        return sum(longest(p, parameters, problems, where) for p in parts) + len(sep) * len(parts)
    return RESOURCE_BYTES


def reference(name: str, parameters: dict[str, Any], problems: list[str], where: str) -> int:
    if name in PSEUDO:
        return PSEUDO[name]
    if name not in parameters:
        return RESOURCE_BYTES
    spec = parameters[name]
    if "AllowedValues" in spec:
        return max(len(str(v).encode()) for v in spec["AllowedValues"])
    if spec.get("Type") == "Number":
        return len(str(spec.get("MaxValue", 10**19)))
    if "MaxLength" not in spec:
        problems.append(f"{where}: parameter {name} has no MaxLength: its value could take the "
                        f"function past Lambda's {ENV_BYTES} bytes of environment variables")
        return 0
    return int(spec["MaxLength"]) * (4 if "Comma" in spec.get("Type", "") else 1)


def environment_sizes(template: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """Problems, and each function's environment at its longest, in bytes."""
    parameters = template.get("Parameters", {})
    problems: list[str] = []
    sizes = {}
    for name, r in template.get("Resources", {}).items():
        if r["Type"] != "AWS::Lambda::Function":
            continue
        variables = r.get("Properties", {}).get("Environment", {}).get("Variables", {})
        size = sum(len(k) + longest(v, parameters, problems, f"{name} {k}")
                   for k, v in variables.items())
        sizes[name] = size
        if size > ENV_BYTES:
            problems.append(f"{name}: environment variables take up to {size:,} bytes, past "
                            f"Lambda's {ENV_BYTES:,}: shorten a parameter's MaxLength")
    return problems, sizes


def architectures(config: dict[str, Any]) -> list[str]:
    """Each samconfig environment whose build and deploy Architecture differ or are missing."""
    problems = []
    for env, commands in sorted(config.items()):
        if not isinstance(commands, dict):
            continue
        found = {}
        for command in ("build", "deploy"):
            overrides = commands.get(command, {}).get("parameters", {}).get(
                "parameter_overrides", "")
            if isinstance(overrides, list):
                overrides = " ".join(overrides)
            match = re.search(r"(?:^|\s)Architecture=\"?([\w-]+)", overrides)
            found[command] = match.group(1) if match else None
        if found["build"] != found["deploy"] or found["build"] is None:
            problems.append(f"samconfig.toml [{env}]: Architecture {found['build']} for sam build, "
                            f"{found['deploy']} for sam deploy: set the same in both sections")
    return problems


def counts(text: str) -> Iterator[tuple[int, int]]:
    """Each "<number> functions" in `text`, with its line (a phrase may span two lines)."""
    flat = text.replace("\n", " ")
    for match in COUNT.finditer(flat):
        yield NUMBERS[match.group(1).lower()], text.count("\n", 0, match.start()) + 1


def read_docs() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for pattern in DOCS
            for p in sorted(ROOT.glob(pattern))}


SAMPLE_BUCKETS = ["ferry-data-a", "ferry-data-b"]


def notification_sources(template: dict[str, Any]) -> list[str]:
    """Queue policies admitting S3: their source condition must admit each of two buckets."""
    problems = []
    for name, r in template.get("Resources", {}).items():
        if r["Type"] != "AWS::SQS::QueuePolicy":
            continue
        for statement in r.get("Properties", {}).get("PolicyDocument", {}).get("Statement", []):
            if statement.get("Principal") != {"Service": "s3.amazonaws.com"}:
                continue
            condition = statement.get("Condition", {}).get("ArnLike", {}).get("aws:SourceArn")
            params = {p for p in referenced(condition)
                      if p in template.get("Parameters", {})}
            lists = [p for p in params
                     if template["Parameters"][p].get("Type") == "CommaDelimitedList"]
            if not lists:
                problems.append(f"{name}: admits S3 notifications from one bucket "
                                f"({', '.join(sorted(params)) or 'none named'} is no list)")
                continue
            arns = evaluate(condition, {p: SAMPLE_BUCKETS for p in lists})
            patterns = arns if isinstance(arns, list) else [arns]
            for bucket in SAMPLE_BUCKETS:
                arn = f"arn:aws:s3:::{bucket}"
                if not any(isinstance(p, str) and fnmatch.fnmatchcase(arn, p) for p in patterns):
                    problems.append(f"{name}: aws:SourceArn {patterns} does not admit {arn}")
    return problems


def evaluate(node: Any, values: dict[str, Any]) -> Any:
    """Fn::Join, Fn::Split and Ref to the given parameters; anything else is left unresolved."""
    if isinstance(node, list):
        out = []
        for item in node:
            value = evaluate(item, values)
            out += value if isinstance(value, list) and isinstance(item, dict) else [value]
        return out
    if not isinstance(node, dict) or len(node) != 1:
        return node
    (function, args), = node.items()
    if function == "Ref":
        return values.get(args, node)
    if function == "Fn::Join":
        parts = evaluate(args[1], values)
        if all(isinstance(p, str) for p in parts):
            return args[0].join(parts)
    if function == "Fn::Split":
        text = evaluate(args[1], values)
        if isinstance(text, str):
            return text.split(args[0])
    return node


def self_test() -> int:
    """A template and docs with one mistake of each kind: each must be found."""
    function = {"Type": "AWS::Lambda::Function", "Properties": {}}
    template = {"Parameters": {"Routes": {"Type": "String"},
                               "Big": {"Type": "String", "MaxLength": 4000}},
                "Resources": {
        "Env": {"Type": "AWS::Lambda::Function", "Properties": {"Environment": {"Variables": {
            "FERRY_ROUTES": {"Ref": "Routes"}, "BIG": {"Fn::Sub": "${Big}-${AWS::StackName}"}}}}},
        "Submit": function, "Events": function, "Quiet": function,
        "Schedule": {"Type": "AWS::Scheduler::Schedule",
                     "Properties": {"Target": {"Arn": {"Fn::GetAtt": ["Submit", "Arn"]}}}},
        "Rule": {"Type": "AWS::Events::Rule",
                 "Properties": {"Targets": [{"Arn": {"Fn::GetAtt": ["Events", "Arn"]}}]}},
        "EventsConfig": {"Type": "AWS::Lambda::EventInvokeConfig", "Properties": {
            "FunctionName": {"Ref": "Events"},
            "DestinationConfig": {"OnFailure": {"Destination": {"Fn::GetAtt": ["Dlq", "Arn"]}}}}},
        "Key": {"Type": "AWS::KMS::Key", "DeletionPolicy": "Retain"},
        "Table": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain", "Properties": {
            "SSESpecification": {"KMSMasterKeyId": {"Fn::GetAtt": ["Key", "Arn"]}}}},
        "Board": {"Type": "AWS::CloudWatch::Dashboard",
                  "Properties": {"DashboardName": {"Fn::Sub": "${AWS::StackName}-ferry"}}},
        "Key2": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Condition": {
            "kms:ViaService": {"Fn::Sub": "dynamodb.${AWS::Region}.amazonaws.com"}}}}},
        "QueuePolicy": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"PolicyDocument": {
            "Statement": [{"Principal": {"Service": "s3.amazonaws.com"}, "Condition": {
                "ArnLike": {"aws:SourceArn": {"Fn::Sub": "arn:aws:s3:::${Routes}"}}}}]}}}}}
    docs = {"README.md": "deploys the seven\nfunctions; the three functions it calls",
            "docs/a.md": "Four Lambda functions, one binary each."}
    problems = check(template, docs)
    problems += architectures({"default": {
        "build": {"parameters": {"parameter_overrides": "Architecture=arm64"}},
        "deploy": {"parameters": {"parameter_overrides": "LogLevel=WARN Architecture=x86_64"}}}})
    expected = ["samconfig.toml [default]: Architecture arm64 for sam build, x86_64",
                "Env FERRY_ROUTES: parameter Routes has no MaxLength",
                "Env: environment variables take up to 4,144 bytes",
                "Submit: invoked asynchronously (schedule Schedule)",
                "Key: encrypts Table, which is retained, but its UpdateReplacePolicy",
                "Board: DashboardName", "QueuePolicy: admits S3 notifications from one bucket",
                "Key2: 'dynamodb.${AWS::Region}.amazonaws.com' hard-codes amazonaws.com",
                "README.md:1: names 7 functions; the template deploys 4"]
    missed = [e for e in expected if not any(p.startswith(e) for p in problems)]
    if missed or len(problems) != len(expected):
        print(f"check-template self-test: missed {missed}; found {problems}")
        return 1
    print(f"check-template self-test: {len(expected)} planted mistakes found")
    return 0


def main() -> int:
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    problems = check(json.loads(Path(sys.argv[1]).read_text()), read_docs())
    with open(ROOT / "samconfig.toml", "rb") as f:
        problems += architectures(tomllib.load(f))
    for problem in problems:
        print(f"check-template: {problem}")
    if not problems:
        print("check-template: on-failure destinations, retained keys, the dashboard's name, "
              "the docs' function count, samconfig.toml's architecture, every function's "
              "environment (within 4 KB) and the buckets the upload queue admits agree")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
