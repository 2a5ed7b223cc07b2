"""Reads what template.yaml deploys, so local runs use the same inputs.

Only what the harness needs, with the template's `!Sub`, `!If`, `!Ref` and conditions
evaluated against given parameters (defaults for the others) and the harness's own resources:

* a schedule's target `Input` (the execution input EventBridge Scheduler sends) and the function
  it invokes, with Scheduler's context attributes (`<aws.scheduler.scheduled-time>`, ...)
  replaced as Scheduler replaces them at each invocation (EventBridge Scheduler user guide,
  "Adding context attributes");
* each function's own environment variables (`Environment.Variables`);
* an EventBridge rule's `EventPattern` and the function its target invokes.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
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


#: `!Ref AWS::NoValue`: dropped from the list or mapping that holds it, as CloudFormation does.
NO_VALUE = object()


class Evaluator:
    """Evaluates the intrinsic functions a schedule input uses, for given parameter values
    (template defaults for the others). `resources` gives `!Ref` of some resources a value
    (logical id → what the harness made for it); `account` is `AWS::AccountId`."""

    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any],
                 resources: Mapping[str, str] | None = None, account: str = ACCOUNT) -> None:
        self.template = template
        self.resources = dict(resources or {})
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
        self.params.update({"AWS::Region": REGION, "AWS::AccountId": account,
                            "AWS::Partition": "aws", "AWS::StackName": "ferry-local"})

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any, local: Mapping[str, Any] | None = None) -> Any:
        local = local or {}
        if isinstance(node, list):
            return [v for v in (self.value(n, local) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {k: v for k, v in ((k, self.value(v, local)) for k, v in node.items())
                    if v is not NO_VALUE}
        (key, arg), = node.items()
        if key == "Ref":
            if arg == "AWS::NoValue":
                return NO_VALUE
            if arg in self.params:
                spec = self.template.get("Parameters", {}).get(arg, {})
                if spec.get("Type") == "CommaDelimitedList":
                    return str(self.params[arg]).split(",")
                return self.params[arg]
            if arg in self.resources:
                return self.resources[arg]
            raise KeyError(f"!Ref {arg}: only parameters and the harness's resources "
                           f"({', '.join(sorted(self.resources)) or 'none given'}) can be "
                           "evaluated locally")
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
        if key == "Fn::Split":
            sep, text = arg
            return str(self.value(text, local)).split(sep)
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


def _binary(resource: Mapping[str, Any]) -> str | None:
    """The binary a function resource runs (`Metadata.BuildProperties.Binary`), else None."""
    if resource.get("Type") != "AWS::Serverless::Function":
        return None
    return resource.get("Metadata", {}).get("BuildProperties", {}).get("Binary")


def functions(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """template.yaml's functions by binary name."""
    return {binary: resource for resource in template["Resources"].values()
            if (binary := _binary(resource))}


def deployed_binaries() -> set[str]:
    return set(functions(load()))


def function_statements(binary: str, parameters: Mapping[str, Any], service: str,
                        account: str = ACCOUNT) -> list[dict[str, Any]]:
    """The IAM statements template.yaml gives the function `binary` that name actions of
    `service` (`datasync`), evaluated for `parameters` (the others at their defaults) as
    CloudFormation would: `!If` picks its branch, `AWS::NoValue` drops a statement, lists are
    split and joined. `account` is `AWS::AccountId` (the account in the service's ARNs)."""
    template = load()
    evaluator = Evaluator(template, parameters, account=account)
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict) and set(node) == {"Fn::If"}:
            name, yes, no = node["Fn::If"]
            walk(yes if evaluator.condition(name) else no)
        elif isinstance(node, dict) and "Statement" in node:
            walk(node["Statement"])
        elif isinstance(node, dict) and "Effect" in node:
            actions = node["Action"] if isinstance(node["Action"], list) else [node["Action"]]
            if any(str(a).startswith(f"{service}:") for a in actions):
                found.append(evaluator.value(node))

    walk(functions(template)[binary].get("Properties", {}).get("Policies", []))
    return found


def function_environment(binary: str, resources: Mapping[str, str],
                         parameters: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The variables template.yaml sets on the function `binary` itself (its
    `Environment.Variables`; Globals' are the harness's business): `parameters` as given, the
    others at their defaults, `!Ref` of a resource from `resources` (logical id → local value)."""
    template = load()
    variables = functions(template)[binary].get("Properties", {}).get(
        "Environment", {}).get("Variables", {})
    evaluator = Evaluator(template, parameters or {}, resources)
    return {name: str(evaluator.value(value)) for name, value in variables.items()}


def _target_binary(template: Mapping[str, Any], arn: Any, what: str) -> str:
    """The binary of the function a target's `Arn` (`!GetAtt <Function>.Arn`) names."""
    logical_id = (arn.get("Fn::GetAtt") or [None])[0] if isinstance(arn, dict) else None
    binary = _binary(template["Resources"].get(logical_id or "", {}))
    if not binary:
        raise ValueError(f"{what}: the target {arn!r} is not `!GetAtt <Function>.Arn` of one "
                         "of the template's functions")
    return binary


@dataclass
class EventRule:
    """An `AWS::Events::Rule` of template.yaml: its pattern and the function it invokes."""

    logical_id: str
    pattern: dict[str, Any]
    binary: str


def event_rule(logical_id: str, account: str = ACCOUNT,
               resources: Mapping[str, str] | None = None) -> EventRule:
    """The rule `logical_id`, its `EventPattern` evaluated with `AWS::AccountId` = `account`
    (the account in the ARNs of the events it must match) and `!Ref` of the harness's
    `resources` (logical id → what the harness made for it). Its one target must receive the
    event as is (no Input, InputPath or InputTransformer): the local router sends nothing else."""
    template = load()
    resource = template["Resources"].get(logical_id)
    if resource is None or resource.get("Type") != "AWS::Events::Rule":
        raise KeyError(f"{logical_id} is not an event rule of template.yaml")
    props = resource["Properties"]
    pattern = props["EventPattern"]
    if isinstance(pattern, str):
        pattern = json.loads(pattern)
    targets = props.get("Targets", [])
    if len(targets) != 1 or {"Input", "InputPath", "InputTransformer"} & set(targets[0]):
        raise ValueError(f"{logical_id}: the local router sends each event, as is, to one "
                         "target")
    evaluator = Evaluator(template, {}, resources, account=account)
    return EventRule(logical_id, evaluator.value(pattern),
                     _target_binary(template, targets[0]["Arn"], logical_id))


def schedule_target(logical_id: str) -> str:
    """The binary of the function the schedule `logical_id` of template.yaml invokes."""
    template = load()
    resource = template["Resources"].get(logical_id, {})
    if resource.get("Type") != "AWS::Scheduler::Schedule":
        raise KeyError(f"{logical_id} is not a schedule of template.yaml")
    return _target_binary(template, resource["Properties"]["Target"]["Arn"], logical_id)


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
