"""IAM for the emulated DataSync: a call its caller's policy does not allow is refused, as AWS
refuses it. TEST INFRASTRUCTURE: moto enforces no IAM by default, so without this a grant
that is too narrow (or a tag condition the code does not meet) would pass every local test
and fail on the first real deployment.

How it is used: the harness gives each function its own access key and registers that key's
policy (the function's statements in template.yaml, evaluated for the deployment's
parameters) with ``POST /_ferry/iam``. A DataSync request signed with a registered key is
checked; any other key (the tests' own ``testing`` calls) is not, as before.

Evaluation (IAM user guide, "Policy evaluation logic", for identity-based policies alone: no
resource policy, boundary, session policy or SCP): an explicit Deny wins, else an Allow whose
Action, Resource and Condition all match, else the request is implicitly denied. Wildcards
``*`` and ``?`` match in actions (case-insensitively) and resources. Conditions: the operators
Ferry's template uses and a few neighbours (``StringEquals``, ``StringNotEquals``,
``StringLike``, ``StringNotLike``, ``ArnLike``, ``ArnEquals``, ``Bool``, ``Null``); a key that is
absent from the request makes every operator but ``Null`` false ("If the key that you specify
in a policy condition is not present in the request context, the values do not match", IAM
user guide, "Condition element"). A policy using anything else is refused when registered,
never silently ignored.

What a DataSync call is checked for (Service Authorization Reference, "Actions, resources, and
condition keys for AWS DataSync"): its action on its resources, with ``aws:ResourceTag/<k>``
from the resource's tags, ``aws:RequestTag/<k>`` and ``aws:TagKeys`` from the request, and
``aws:RequestedRegion``; a resource-creating call with ``Tags`` is also checked for
``datasync:TagResource`` ("If tags are specified in the resource-creating action, users must
also have explicit permissions to use the datasync:TagResource action", DataSync user guide,
"Permissions for tagging DataSync resources during creation"). Not modelled: ``iam:PassRole``
for manifest and report roles, and the other services (FSx, S3, DynamoDB, SNS, Step Functions).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from .wire import ApiError, AwsRequest

OPERATORS = {"StringEquals", "StringNotEquals", "StringLike", "StringNotLike", "ArnLike",
             "ArnEquals", "Bool", "Null"}


@dataclass(frozen=True)
class Request:
    """One authorization: an action on a resource, with its condition context."""

    action: str
    resource: str
    context: Mapping[str, Any]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM's `*` (any run, `/` included) and `?` (one character); nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def check_policy(statements: Any) -> list[dict[str, Any]]:
    """The statements, if this module can evaluate every one of them; else ValueError."""
    if not isinstance(statements, list):
        raise ValueError("statements: expected a list of IAM statements")
    for i, st in enumerate(statements):
        where = f"statement {i} ({st.get('Sid', 'no Sid') if isinstance(st, dict) else st!r})"
        if not isinstance(st, dict) or st.get("Effect") not in ("Allow", "Deny"):
            raise ValueError(f"{where}: Effect must be Allow or Deny")
        for key in ("NotAction", "NotResource", "Principal", "NotPrincipal"):
            if key in st:
                raise ValueError(f"{where}: {key} is not evaluated here")
        for key in ("Action", "Resource"):
            values = _as_list(st.get(key))
            if not values or not all(isinstance(v, str) for v in values):
                raise ValueError(f"{where}: {key} must be a string or a list of strings, "
                                 f"got {st.get(key)!r} (an intrinsic function left unevaluated?)")
        for operator, keys in (st.get("Condition") or {}).items():
            if operator not in OPERATORS:
                raise ValueError(f"{where}: condition operator {operator} is not evaluated here")
            if not isinstance(keys, dict):
                raise ValueError(f"{where}: {operator} must map condition keys to values")
    return statements


def _condition(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    present = key in context
    if operator == "Null":
        return all(str(w).lower() == ("false" if present else "true") for w in _as_list(wanted))
    if not present:
        return False
    values = [str(v) for v in _as_list(context[key])]
    wanted_values = [str(w) for w in _as_list(wanted)]
    if operator in ("StringEquals", "ArnEquals"):
        return any(v in wanted_values for v in values)
    if operator == "StringNotEquals":
        return all(v not in wanted_values for v in values)
    if operator in ("StringLike", "ArnLike"):
        return any(_glob(w, v) for v in values for w in wanted_values)
    if operator == "StringNotLike":
        return not any(_glob(w, v) for v in values for w in wanted_values)
    if operator == "Bool":
        return any(v.lower() == w.lower() for v in values for w in wanted_values)
    raise ValueError(f"condition operator {operator}")  # check_policy refused it already


def _matches(statement: Mapping[str, Any], request: Request) -> bool:
    if not any(_glob(a, request.action, case=False) for a in _as_list(statement["Action"])):
        return False
    if not any(_glob(r, request.resource) for r in _as_list(statement["Resource"])):
        return False
    # Every operator, and every key under it, must hold ("Condition element": AND between
    # them; the values listed for one key are OR-ed).
    return all(_condition(operator, key, wanted, request.context)
               for operator, keys in (statement.get("Condition") or {}).items()
               for key, wanted in keys.items())


def allowed(statements: list[dict[str, Any]], request: Request) -> bool:
    matching = [st for st in statements if _matches(st, request)]
    if any(st["Effect"] == "Deny" for st in matching):
        return False
    return any(st["Effect"] == "Allow" for st in matching)


class Policies:
    """Registered policies by access key id."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict[str, Any]] = {}
        #: Every refusal: {"key", "principal", "action", "resource"} (for the tests).
        self.denied: list[dict[str, str]] = []

    def reset(self) -> None:
        self.by_key.clear()
        self.denied.clear()

    def register(self, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict) or not isinstance(spec.get("access_key"), str):
            raise ValueError('expected {"access_key", "principal", "statements"}')
        entry = {"principal": str(spec.get("principal") or spec["access_key"]),
                 "statements": check_policy(spec.get("statements"))}
        self.by_key[spec["access_key"]] = entry
        return {"access_key": spec["access_key"], "statements": len(entry["statements"])}

    def check(self, req: AwsRequest, requests: list[Request]) -> None:
        """Raises AccessDeniedException for the first of `requests` the caller may not make."""
        entry = self.by_key.get(req.access_key or "")
        if entry is None:
            return
        for request in requests:
            if not allowed(entry["statements"], request):
                self.denied.append({"key": req.access_key or "", "principal": entry["principal"],
                                    "action": request.action, "resource": request.resource})
                # The wording AWS uses for an implicit deny by identity-based policies.
                raise ApiError(
                    "AccessDeniedException",
                    f"User: {entry['principal']} is not authorized to perform: "
                    f"{request.action} on resource: {request.resource} because no "
                    "identity-based policy allows the "
                    f"{request.action} action", 400)


# ---------------------------------------------------------------------------- DataSync


def datasync_requests(req: AwsRequest, tags: Mapping[str, Mapping[str, str]]) -> list[Request]:
    """What one DataSync call is authorized as: its action on each resource it touches (the
    Service Authorization Reference's resource types for it), with the condition context.
    `tags` are the emulator's tags by ARN. A task not created yet is named in its source
    location's account (moto's DataSync ARNs hold an account of their own)."""
    op = req.operation or ""
    p = req.params if isinstance(req.params, dict) else {}
    action = f"datasync:{op}"
    base: dict[str, Any] = {"aws:RequestedRegion": req.region}
    request_tags = {}
    if isinstance(p.get("Tags"), list):
        request_tags = {str(t.get("Key")): str(t.get("Value", "")) for t in p["Tags"]
                        if isinstance(t, dict)}
    asked = {**base, **{f"aws:RequestTag/{k}": v for k, v in request_tags.items()}}
    if request_tags:
        asked["aws:TagKeys"] = list(request_tags)

    def on(arn: Any, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        held = tags.get(arn, {}) if isinstance(arn, str) else {}
        return {**asked, **{f"aws:ResourceTag/{k}": v for k, v in held.items()},
                **(extra or {})}

    source = str(p.get("SourceLocationArn") or "")
    account = source.split(":")[4] if source.count(":") >= 5 else req.account
    pending_task = f"arn:aws:datasync:{req.region}:{account}:task/task-pending"
    if op in ("ListTasks", "ListTaskExecutions", "ListLocations", "ListAgents"):
        return [Request(action, "*", base)]
    if op == "CreateTask":
        out = [Request(action, pending_task, on(None))]
        out += [Request(action, p[k], on(None)) for k in
                ("SourceLocationArn", "DestinationLocationArn") if isinstance(p.get(k), str)]
        if request_tags:
            out.append(Request("datasync:TagResource", pending_task, on(None)))
        return out
    if op == "StartTaskExecution":
        task = str(p.get("TaskArn"))
        out = [Request(action, task, on(task))]
        if request_tags:
            out.append(Request("datasync:TagResource", f"{task}/execution/exec-pending",
                               on(None)))
        return out
    if op in ("DescribeTask", "UpdateTask", "DeleteTask"):
        return [Request(action, str(p.get("TaskArn")), on(p.get("TaskArn")))]
    if op in ("DescribeTaskExecution", "CancelTaskExecution", "UpdateTaskExecution"):
        arn = p.get("TaskExecutionArn")
        return [Request(action, str(arn), on(arn))]
    if op in ("TagResource", "ListTagsForResource"):
        return [Request(action, str(p.get("ResourceArn")), on(p.get("ResourceArn")))]
    if op == "UntagResource":
        keys = [str(k) for k in p.get("Keys") or []] if isinstance(p.get("Keys"), list) else []
        return [Request(action, str(p.get("ResourceArn")),
                        on(p.get("ResourceArn"), {"aws:TagKeys": keys}))]
    # Locations and the rest: their own ARN when they name one, else "*".
    arn = next((v for k, v in p.items() if k.endswith("Arn") and isinstance(v, str)), "*")
    return [Request(action, arn, on(arn))]


__all__ = ["OPERATORS", "Policies", "Request", "allowed", "check_policy", "datasync_requests"]
