"""EventBridge event patterns: does an event match a rule? TEST AND DEMO INFRASTRUCTURE.

The harness routes the emulator's events to Ferry's functions through the rules of
template.yaml (ferry.py's event router); this module decides which events a rule's
`EventPattern` selects, as the EventBridge user guide describes it ("Amazon EventBridge event
patterns" and "Content filtering in Amazon EventBridge event patterns",
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns-content-based-filtering.html):

* a pattern is a JSON object with the event's structure; every field it names must match (AND);
  fields it does not name are not looked at;
* a field's value is a nested object (matched against the event's object there) or an array of
  matchers, any of which may match (OR);
* when the event's field is an array, the field matches if any of its elements does (arrays of
  objects too, for nested patterns);
* matchers: a value (string, number, boolean, null: equal, case-sensitive; numbers compared as
  numbers), `{"prefix": s}`, `{"suffix": s}` (each also as `{"equals-ignore-case": s}`),
  `{"equals-ignore-case": s}`, `{"wildcard": "a*b"}` (`*` any characters, `\\*` a star),
  `{"anything-but": value | [values] | {"prefix" | "suffix" | "equals-ignore-case" |
  "wildcard": s}}`, `{"exists": true | false}` and `{"numeric": ["=", 5]}` / `[">", 0, "<=",
  5]`. Only `{"exists": false}` matches a field that is absent.

Not implemented (a pattern using one raises UnsupportedOperator naming it): `cidr`, `$or`, and
anything else the guide may add. Not checked either: EventBridge's own limits on patterns
(sizes, the numeric range ±1e9).
"""

from __future__ import annotations

import operator as op
import re
from typing import Any

#: Matchers whose operand is a string, optionally given as `{"equals-ignore-case": s}`.
_STRING_OPERATORS = ("prefix", "suffix", "equals-ignore-case", "wildcard")
_NUMERIC_OPERATORS = {"=": op.eq, "<": op.lt, "<=": op.le, ">": op.gt, ">=": op.ge}
_ABSENT = object()


class PatternError(ValueError):
    """The pattern is not a valid EventBridge pattern."""


class UnsupportedOperator(PatternError):
    """The pattern uses an operator this module does not implement."""


class EventPattern:
    """``EventPattern(pattern).matches(event)``; the pattern is checked once, here."""

    def __init__(self, pattern: dict[str, Any]) -> None:
        _check_object(pattern, "")
        self.pattern = pattern

    def matches(self, event: Any) -> bool:
        return _object_matches(self.pattern, event)


# ---------------------------------------------------------------------- checking the pattern

def _check_object(pattern: Any, where: str) -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise PatternError(f"{where or 'the pattern'}: must be a non-empty JSON object")
    for key, value in pattern.items():
        path = f"{where}.{key}" if where else key
        if key.startswith("$"):
            raise UnsupportedOperator(f"{path}: {key} is not implemented by the local router")
        if isinstance(value, dict):
            _check_object(value, path)
        elif isinstance(value, list):
            for matcher in value:
                _check_matcher(matcher, path)
        else:
            raise PatternError(f"{path}: a pattern's values are arrays or objects, not "
                               f"{value!r}")


def _check_matcher(matcher: Any, path: str) -> None:
    if not isinstance(matcher, dict):
        if isinstance(matcher, list):
            raise PatternError(f"{path}: nested arrays are not matchers")
        return
    if len(matcher) != 1:
        raise PatternError(f"{path}: a matcher object has one operator, not {sorted(matcher)}")
    (operator, operand), = matcher.items()
    if operator in _STRING_OPERATORS:
        _string_operand(operator, operand, path)
    elif operator == "anything-but":
        _check_anything_but(operand, path)
    elif operator == "exists":
        if not isinstance(operand, bool):
            raise PatternError(f"{path}: exists takes true or false")
    elif operator == "numeric":
        _check_numeric(operand, path)
    else:
        raise UnsupportedOperator(f"{path}: the operator {operator!r} is not implemented by the "
                                  "local router")


def _string_operand(operator: str, operand: Any, path: str) -> tuple[str, bool]:
    """(the string, ignore case?) of a string operator's operand."""
    if (isinstance(operand, dict) and list(operand) == ["equals-ignore-case"]
            and operator in ("prefix", "suffix")):
        operand, ignore_case = operand["equals-ignore-case"], True
    else:
        ignore_case = operator == "equals-ignore-case"
    if not isinstance(operand, str):
        raise PatternError(f"{path}: {operator} takes a string")
    return operand, ignore_case


def _check_anything_but(operand: Any, path: str) -> None:
    if isinstance(operand, dict):
        if len(operand) != 1 or next(iter(operand)) not in _STRING_OPERATORS:
            raise UnsupportedOperator(f"{path}: anything-but {operand!r} is not implemented by "
                                      "the local router")
        operator = next(iter(operand))
        _string_operand(operator, operand[operator], path)
    elif isinstance(operand, list):
        if any(isinstance(v, (dict, list)) for v in operand):
            raise PatternError(f"{path}: anything-but lists hold plain values")


def _check_numeric(operand: Any, path: str) -> None:
    if not isinstance(operand, list) or len(operand) not in (2, 4):
        raise PatternError(f"{path}: numeric takes [op, n] or [op, n, op, n]")
    for name, number in zip(operand[::2], operand[1::2]):
        if name not in _NUMERIC_OPERATORS or not _is_number(number):
            raise PatternError(f"{path}: numeric {operand!r}: operators are "
                               f"{', '.join(_NUMERIC_OPERATORS)}, operands numbers")


# ---------------------------------------------------------------------- matching

def _object_matches(pattern: dict[str, Any], event: Any) -> bool:
    if isinstance(event, list):
        return any(_object_matches(pattern, element) for element in event)
    fields = event if isinstance(event, dict) else {}
    return all(_field_matches(value, fields.get(key, _ABSENT)) for key, value in pattern.items())


def _field_matches(pattern: Any, value: Any) -> bool:
    if isinstance(pattern, dict):
        return _object_matches(pattern, {} if value is _ABSENT else value)
    if value is _ABSENT:
        return any(m == {"exists": False} for m in pattern)
    values = value if isinstance(value, list) else [value]
    return any(_matcher_matches(m, v) for m in pattern for v in values)


def _matcher_matches(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    (operator, operand), = matcher.items()
    if operator in _STRING_OPERATORS:
        return _string_matches(operator, operand, value)
    if operator == "anything-but":
        return not _anything_but_excludes(operand, value)
    if operator == "exists":
        return operand  # the field is there: see _field_matches for the absent case
    return _is_number(value) and _numeric_matches(operand, value)


def _equal(expected: Any, value: Any) -> bool:
    if _is_number(expected) and _is_number(value):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def _string_matches(operator: str, operand: Any, value: Any) -> bool:
    text, ignore_case = _string_operand(operator, operand, "")
    if not isinstance(value, str):
        return False
    if ignore_case:
        text, value = text.casefold(), value.casefold()
    if operator == "prefix":
        return value.startswith(text)
    if operator == "suffix":
        return value.endswith(text)
    if operator == "wildcard":
        return re.fullmatch(_wildcard_regex(text), value, re.DOTALL) is not None
    return value == text


def _wildcard_regex(pattern: str) -> str:
    """`*` is any run of characters; `\\*` and `\\\\` stand for `*` and `\\`."""
    parts = re.split(r"(\\\\|\\\*|\*)", pattern)
    return "".join(".*" if p == "*" else re.escape(p[1:] if p in ("\\*", "\\\\") else p)
                   for p in parts)


def _anything_but_excludes(operand: Any, value: Any) -> bool:
    if isinstance(operand, dict):
        (operator, text), = operand.items()
        return _string_matches(operator, text, value)
    excluded = operand if isinstance(operand, list) else [operand]
    return any(_equal(e, value) for e in excluded)


def _numeric_matches(operand: list[Any], value: float) -> bool:
    return all(_NUMERIC_OPERATORS[name](float(value), float(n))
               for name, n in zip(operand[::2], operand[1::2]))


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
