"""Reads what template.yaml deploys, so local runs use the same inputs.

Only what the harness needs: a schedule's target `Input` (the execution input EventBridge
Scheduler sends), with the template's `!Sub`, `!If`, `!Ref` and conditions evaluated against
given parameters, and Scheduler's context attributes (`<aws.scheduler.scheduled-time>`, ...)
replaced as Scheduler replaces them at each invocation (EventBridge Scheduler user guide,
"Adding context attributes").
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Any, Mapping

import yaml

from . import paths
from .emulator_process import ACCOUNT, REGION


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (`!Sub x` is `{"Fn::Sub": x}`)."""


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "Condition":
        return {"Condition": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_Loader.add_multi_constructor("!", _tagged)


def load() -> dict[str, Any]:
    with open(paths.TEMPLATE, encoding="utf-8") as f:
        return yaml.load(f, Loader=_Loader)  # noqa: S506 - SafeLoader subclass


class Evaluator:
    """Evaluates the intrinsic functions a schedule input uses, for given parameter values
    (template defaults for the others)."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any]) -> None:
        self.template = template
        self.params: dict[str, Any] = {
            name: spec.get("Default", "")
            for name, spec in template.get("Parameters", {}).items()
        }
        unknown = set(parameters) - set(self.params)
        if unknown:
            raise KeyError(f"not parameters of template.yaml: {sorted(unknown)}")
        self.params.update({k: str(v) for k, v in parameters.items()})
        for name, value in parameters.items():
            # What CloudFormation checks before it deploys anything.
            pattern = template["Parameters"][name].get("AllowedPattern")
            if pattern and not re.fullmatch(pattern, str(value)):
                raise ValueError(f"{name}={value!r} does not match its AllowedPattern {pattern}")
        self.params.update({"AWS::Region": REGION, "AWS::AccountId": ACCOUNT,
                            "AWS::Partition": "aws", "AWS::StackName": "ferry-local"})

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any, local: Mapping[str, Any] | None = None) -> Any:
        local = local or {}
        if isinstance(node, list):
            return [self.value(n, local) for n in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: self.value(v, local) for k, v in node.items()}
        (key, arg), = node.items()
        if key == "Ref":
            if arg not in self.params:
                raise KeyError(f"!Ref {arg}: only parameters can be evaluated locally")
            return self.params[arg]
        if key == "Condition":
            return self.condition(arg)
        if key == "Fn::If":
            name, yes, no = arg
            return self.value(yes if self.condition(name) else no, local)
        if key == "Fn::Equals":
            a, b = (self.value(x, local) for x in arg)
            return str(a) == str(b)
        if key == "Fn::Not":
            return not self.value(arg[0], local)
        if key == "Fn::And":
            return all(self.value(x, local) for x in arg)
        if key == "Fn::Or":
            return any(self.value(x, local) for x in arg)
        if key == "Fn::Join":
            sep, items = arg
            values = self.value(items, local)
            return sep.join(str(v) for v in (values if isinstance(values, list) else [values]))
        if key == "Fn::Sub":
            text, variables = (arg, {}) if isinstance(arg, str) else arg
            bound = {k: self.value(v, local) for k, v in variables.items()}

            def substitute(match: re.Match[str]) -> str:
                name = match.group(1)
                if name.startswith("!"):
                    return "${" + name[1:] + "}"
                if name in bound:
                    return str(bound[name])
                if name in self.params:
                    return str(self.params[name])
                raise KeyError(f"!Sub: ${{{name}}} cannot be evaluated locally")

            return re.sub(r"\$\{([^}]+)\}", substitute, text)
        return {key: self.value(arg, local)}


def schedule_arn(logical_id: str) -> str:
    return f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/ferry-local-{logical_id}"


def schedule_input(logical_id: str, parameters: Mapping[str, Any],
                   scheduled_time: dt.datetime | None = None,
                   attempt: int = 1) -> dict[str, Any]:
    """The execution input the schedule `logical_id` of template.yaml sends, as JSON."""
    template = load()
    resource = template["Resources"].get(logical_id)
    if resource is None or resource.get("Type") != "AWS::Scheduler::Schedule":
        raise KeyError(f"{logical_id} is not a schedule of template.yaml")
    evaluator = Evaluator(template, parameters)
    condition = resource.get("Condition")
    if condition and not evaluator.condition(condition):
        raise ValueError(f"{logical_id} is not deployed with these parameters "
                         f"(condition {condition} is false)")
    text = evaluator.value(resource["Properties"]["Target"]["Input"])
    at = (scheduled_time or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    attributes = {
        "aws.scheduler.schedule-arn": schedule_arn(logical_id),
        "aws.scheduler.scheduled-time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws.scheduler.execution-id": str(uuid.uuid4()),
        "aws.scheduler.attempt-number": str(attempt),
    }
    for name, value in attributes.items():
        text = text.replace(f"<{name}>", value)
    leftover = re.search(r"<aws\.scheduler\.[a-z-]+>", text)
    if leftover:
        raise ValueError(f"{logical_id}: unknown context attribute {leftover.group(0)}")
    return json.loads(text)


def sweep_input() -> dict[str, Any]:
    """What the sweep schedule of template.yaml sends to submit."""
    return schedule_input("SweepSchedule", {})
