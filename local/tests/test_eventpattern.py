"""EventBridge content filtering as the local event router applies it (ferry_local.eventpattern).

Pure: no emulator, no functions. Each case follows an example or a rule of the EventBridge user
guide ("Content filtering in Amazon EventBridge event patterns").
"""

from __future__ import annotations

import pytest

from ferry_local import template
from ferry_local.emulator_process import DATASYNC_ACCOUNT
from ferry_local.eventpattern import EventPattern, PatternError, UnsupportedOperator

EXECUTION = ("arn:aws:datasync:us-east-1:111222333444:task/task-00000000000000001/execution/"
             "exec-0123456789abcdef0")
EVENT = {
    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718",
    "detail-type": "DataSync Task Execution State Change", "source": "aws.datasync",
    "account": "111222333444", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
    "resources": [EXECUTION], "detail": {"State": "SUCCESS"},
}


def matches(pattern: dict, event: dict = EVENT) -> bool:
    return EventPattern(pattern).matches(event)


def test_the_templates_rule_takes_datasync_ends_of_this_account_only() -> None:
    rule = template.event_rule("DataSyncEventRule", account=DATASYNC_ACCOUNT)
    assert rule.binary == "ferry-datasync-event"
    pattern = EventPattern(rule.pattern)
    assert pattern.matches(EVENT)
    assert pattern.matches({**EVENT, "detail": {"State": "ERROR"}})
    for state in ("QUEUED", "LAUNCHING", "PREPARING", "TRANSFERRING", "VERIFYING", "CANCELLING"):
        assert not pattern.matches({**EVENT, "detail": {"State": state}})
    other_account = EXECUTION.replace("111222333444", "999999999999")
    assert not pattern.matches({**EVENT, "resources": [other_account]})
    assert not pattern.matches({**EVENT, "source": "aws.fsx"})
    assert not pattern.matches({**EVENT, "detail-type": "DataSync Task State Change"})


def test_values_are_exact_and_a_list_is_any_of_them() -> None:
    assert matches({"source": ["aws.ec2", "aws.datasync"]})
    assert not matches({"source": ["AWS.DATASYNC"]})  # case-sensitive
    assert not matches({"source": []})
    assert matches({"n": [5]}, {"n": 5.0})  # numbers as numbers
    assert not matches({"n": ["5"]}, {"n": 5})
    assert not matches({"flag": [1]}, {"flag": True})
    assert matches({"flag": [True]}, {"flag": True})
    assert matches({"x": [None]}, {"x": None})
    assert matches({"x": [""]}, {"x": ""})


def test_every_field_must_match_and_unnamed_fields_do_not_matter() -> None:
    assert matches({"source": ["aws.datasync"], "detail": {"State": ["SUCCESS"]}})
    assert not matches({"source": ["aws.datasync"], "detail": {"State": ["ERROR"]}})
    assert matches({"detail": {"State": ["SUCCESS"]}})


def test_nested_objects_and_arrays_in_the_event() -> None:
    event = {"detail": {"tags": ["a", "b"], "items": [{"k": 1}, {"k": 2}]}}
    assert matches({"detail": {"tags": ["b"]}}, event)
    assert not matches({"detail": {"tags": ["c"]}}, event)
    assert matches({"detail": {"items": {"k": [2]}}}, event)
    assert not matches({"detail": {"items": {"k": [3]}}}, event)
    assert not matches({"detail": {"State": ["SUCCESS"]}}, {"detail": "SUCCESS"})


def test_prefix_suffix_and_ignoring_case() -> None:
    assert matches({"time": [{"prefix": "2026-01-01"}]})
    assert not matches({"time": [{"prefix": "2025"}]})
    assert matches({"resources": [{"prefix": "arn:aws:datasync:us-east-1:"}]})
    assert matches({"resources": [{"suffix": "abcdef0"}]})
    assert not matches({"resources": [{"suffix": ".png"}]})
    assert matches({"source": [{"prefix": {"equals-ignore-case": "AWS.Data"}}]})
    assert matches({"source": [{"suffix": {"equals-ignore-case": "SYNC"}}]})
    assert matches({"source": [{"equals-ignore-case": "AWS.DataSync"}]})
    assert not matches({"n": [{"prefix": "1"}]}, {"n": 12})  # strings only


def test_wildcard() -> None:
    assert matches({"resources": [{"wildcard": "arn:aws:datasync:*:task/*/execution/*"}]})
    assert not matches({"resources": [{"wildcard": "arn:aws:fsx:*"}]})
    assert matches({"f": [{"wildcard": "a\\*b"}]}, {"f": "a*b"})
    assert not matches({"f": [{"wildcard": "a\\*b"}]}, {"f": "axxb"})
    assert matches({"f": [{"wildcard": "dir/*.png"}]}, {"f": "dir/x.png"})


def test_anything_but() -> None:
    assert matches({"detail": {"State": [{"anything-but": "ERROR"}]}})
    assert not matches({"detail": {"State": [{"anything-but": ["SUCCESS", "ERROR"]}]}})
    assert matches({"n": [{"anything-but": [100, 200]}]}, {"n": 300})
    assert not matches({"n": [{"anything-but": 100}]}, {"n": 100})
    assert not matches({"detail": {"State": [{"anything-but": {"prefix": "SUC"}}]}})
    assert matches({"detail": {"State": [{"anything-but": {"suffix": "ING"}}]}})
    assert not matches({"detail": {"State": [{"anything-but": {"equals-ignore-case": "success"}}]}})
    assert not matches({"detail": {"State": [{"anything-but": {"wildcard": "S*S"}}]}})
    assert not matches({"detail": {"Other": [{"anything-but": "x"}]}})  # absent: no match


def test_exists() -> None:
    assert matches({"detail": {"State": [{"exists": True}]}})
    assert not matches({"detail": {"ErrorCode": [{"exists": True}]}})
    assert matches({"detail": {"ErrorCode": [{"exists": False}]}})
    assert not matches({"detail": {"State": [{"exists": False}]}})


def test_numeric() -> None:
    assert matches({"n": [{"numeric": ["=", 100]}]}, {"n": 100})
    assert matches({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5})
    assert not matches({"n": [{"numeric": [">", 0, "<=", 5]}]}, {"n": 5.5})
    assert matches({"n": [{"numeric": [">=", 1.5]}]}, {"n": 2})
    assert not matches({"n": [{"numeric": ["<", 10]}]}, {"n": "5"})
    assert not matches({"n": [{"numeric": ["=", 1]}]}, {"n": True})


def test_what_it_does_not_implement_is_refused_by_name() -> None:
    with pytest.raises(UnsupportedOperator, match="detail.ip: the operator 'cidr'"):
        EventPattern({"detail": {"ip": [{"cidr": "10.0.0.0/24"}]}})
    with pytest.raises(UnsupportedOperator, match=r"\$or"):
        EventPattern({"$or": [{"source": ["a"]}, {"source": ["b"]}]})
    with pytest.raises(UnsupportedOperator, match="anything-but"):
        EventPattern({"x": [{"anything-but": {"cidr": "10.0.0.0/24"}}]})


def test_malformed_patterns_are_refused() -> None:
    for bad in ({}, {"source": "aws.datasync"}, {"source": [["a"]]},
                {"x": [{"prefix": 1}]}, {"x": [{"prefix": "a", "suffix": "b"}]},
                {"x": [{"exists": "yes"}]}, {"x": [{"numeric": ["~", 1]}]},
                {"x": [{"numeric": [">", "1"]}]}, {"x": [{"anything-but": [{"prefix": "a"}]}]}):
        with pytest.raises(PatternError):
            EventPattern(bad)
