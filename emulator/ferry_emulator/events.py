"""The events AWS services would put on the default EventBridge bus. TEST INFRASTRUCTURE.

Only what Ferry listens to: DataSync's "DataSync Task Execution State Change" events
(:mod:`ferry_emulator.datasync` publishes one per status change of an execution). EventBridge
itself (rules, targets, retries) is not emulated here: the local harness reads the events
through the control API (``GET /_ferry/events?after=<seq>``) and routes them through the
template's rule to the function, with its own fault injection (``local/ferry_local``).

The event's envelope is EventBridge's (EventBridge user guide, "Amazon EventBridge events":
``version`` "0", ``id``, ``detail-type``, ``source``, ``account``, ``time``, ``region``,
``resources``, ``detail``; ``time`` in RFC 3339 UTC to the second, e.g.
"2017-12-22T18:43:48Z"). DataSync's events and their states are in the DataSync user guide,
"Monitoring events by using Amazon EventBridge", which also says "Events are emitted on a
best-effort basis": the emulator emits every change, and the harness's router can lose,
repeat, delay or reorder them.

Sequence numbers start at 1 and never restart, not even on a reset (which drops the stored
events): a reader polling with ``after`` then never mistakes new events for old ones.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any


@dataclass
class Published:
    """One event as the control API lists it: its sequence number, the emulated instant of the
    change it reports (epoch seconds, sub-second) and the event itself."""

    seq: int
    at: float
    event: dict[str, Any]

    def describe(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "event": self.event}


def rfc3339(at: float) -> str:
    """EventBridge's ``time``: UTC, seconds precision, ``Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def aws_event(source: str, detail_type: str, arn: str, detail: dict[str, Any],
              at: float) -> dict[str, Any]:
    """An event about the resource ``arn``, in EventBridge's envelope; account and region are
    the resource's own (its ARN's fields 5 and 4)."""
    fields = arn.split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": fields[4],
        "time": rfc3339(at),
        "region": fields[3],
        "resources": [arn],
        "detail": detail,
    }


class EventBus:
    """Published events, in order; read with :meth:`after`."""

    def __init__(self) -> None:
        self._last_seq = 0
        self.events: list[Published] = []

    def reset(self) -> None:
        """Drops the stored events; sequence numbers go on from where they were."""
        self.events = []

    def publish(self, event: dict[str, Any], at: float) -> int:
        self._last_seq += 1
        self.events.append(Published(self._last_seq, at, event))
        return self._last_seq

    def after(self, seq: int, limit: int | None = None) -> dict[str, Any]:
        """Events whose sequence number is above ``seq`` (at most ``limit``), and ``next``: the
        ``after`` to ask with next time."""
        found = [p for p in self.events if p.seq > seq][:limit]
        return {"events": [p.describe() for p in found],
                "next": found[-1].seq if found else seq}
