"""EventBridge, locally: the emulator's events, through a rule of template.yaml, to a function.

TEST AND DEMO INFRASTRUCTURE. In AWS, DataSync puts a "DataSync Task Execution State Change"
event on the default bus at each status change of an execution; a rule whose `EventPattern`
matches it sends the event, as is, to the rule's target, a Lambda function invoked
asynchronously (EventBridge user guide, "Amazon EventBridge rules" and "Event bus targets").
Here `EventRouter` polls the emulator's events (`GET /_ferry/events`), matches each against the
rule's pattern (`eventpattern.EventPattern`) and invokes the function through the local Lambda
service, in the order the emulator published them, one at a time.

AWS promises less than that: DataSync's events "are emitted on a best-effort basis" (DataSync
user guide, "Monitoring events by using Amazon EventBridge"), and a function invoked
asynchronously may "receive the same event from Lambda multiple times" (Lambda developer guide,
"Invoking a Lambda function asynchronously"). Fault injection makes those happen on purpose:
drop events (all, or a seeded fraction), deliver each several times, late, or held back and
then delivered newest first. Seconds given to faults are deployed seconds: with a time scale
(LocalFerry's `time_scale`), they last that fraction of real seconds, as the runner's waits do.

Recorded for tests and the benchmark: every event read (`routed`, with what became of it) and
every delivery (`deliveries`: when the change happened on the emulator's clock, when it was
read, delivered and answered, and the function's answer).

Not emulated: Lambda's own retries of an asynchronous invocation that failed (up to two, minutes
apart) and the rule's RetryPolicy: a failed delivery is recorded, not retried.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .eventpattern import EventPattern
from .lambdas import Invocation

POLL_SECONDS = 0.05


@dataclass
class RoutedEvent:
    """One event read from the emulator. `fate`: "unmatched" (not the rule's), "dropped" (a
    fault), or "routed" (its deliveries are in `EventRouter.deliveries`)."""

    seq: int
    at: float  # the emulated instant of the change it reports (epoch seconds)
    event: dict[str, Any]
    read_at: float  # wall clock
    fate: str


@dataclass
class EventDelivery:
    """One invocation of the rule's function with an event (`copy` 2, 3, … for duplicates)."""

    seq: int
    at: float
    event: dict[str, Any]
    read_at: float
    copy: int
    delivered_at: float = 0.0
    answered_at: float = 0.0
    invocation: Invocation | None = None

    @property
    def resource(self) -> str:
        """The event's first resource (for DataSync: the execution ARN)."""
        return (self.event.get("resources") or [""])[0]

    @property
    def state(self) -> str | None:
        """`detail.State` (DataSync's status) of the event."""
        return (self.event.get("detail") or {}).get("State")


@dataclass
class _Faults:
    drop: float = 0.0
    rng: random.Random = field(default_factory=random.Random)
    copies: int = 1
    delay_seconds: float = 0.0
    reorder_batch: int = 0  # 0: in order
    max_hold_seconds: float | None = None


class EventRouter:
    """``EventRouter(events, pattern, invoke).start()``: `events(after)` reads the emulator's
    events after a sequence number (`EmulatorControl.events`), `invoke(event)` runs the rule's
    target; `time_scale` scales the faults' seconds."""

    def __init__(self, events: Callable[[int], dict[str, Any]], pattern: EventPattern,
                 invoke: Callable[[dict[str, Any]], Invocation],
                 time_scale: float | None = None) -> None:
        self._events = events
        self.pattern = pattern
        self._invoke = invoke
        self._scale = 1.0 if time_scale is None else time_scale
        self._after = 0
        self._lock = threading.Lock()
        self._faults = _Faults()
        self._held: list[EventDelivery] = []  # reorder: events held back, oldest first
        self._due: list[tuple[float, int, EventDelivery]] = []  # (due, order, delivery): a heap
        self._order = itertools.count()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.routed: list[RoutedEvent] = []
        self.deliveries: list[EventDelivery] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "EventRouter":
        self._thread = threading.Thread(target=self._run, name="event router", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)

    # ------------------------------------------------------------------ faults

    def drop(self, fraction: float = 1.0, seed: int | None = None) -> None:
        """Drops that fraction of the matching events (drawn from `random.Random(seed)`)."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("fraction must be between 0 and 1")
        with self._lock:
            self._faults.drop, self._faults.rng = fraction, random.Random(seed)

    def duplicate(self, copies: int = 2) -> None:
        """Delivers each matching event `copies` times in all, one after the other."""
        if copies < 1:
            raise ValueError("copies must be at least 1")
        with self._lock:
            self._faults.copies = copies

    def delay(self, seconds: float) -> None:
        """Delivers each matching event `seconds` (deployed seconds) after it was read."""
        if seconds < 0:
            raise ValueError("seconds must be >= 0")
        with self._lock:
            self._faults.delay_seconds = seconds

    def reorder(self, batch: int = 2, max_hold_seconds: float | None = None) -> None:
        """Holds matching events back until `batch` of them wait (or the oldest has waited
        `max_hold_seconds`, deployed seconds), then delivers them newest first."""
        if batch < 2:
            raise ValueError("batch must be at least 2")
        with self._lock:
            self._faults.reorder_batch, self._faults.max_hold_seconds = batch, max_hold_seconds

    def clear_faults(self) -> None:
        """Back to delivering every event once, in order, at once; held events go out now."""
        with self._lock:
            self._faults = _Faults()
            self._release(time.time())

    # ------------------------------------------------------------------ reading the records

    def deliveries_of(self, resource: str) -> list[EventDelivery]:
        """The deliveries of events about `resource` (an execution ARN), in delivery order."""
        return [d for d in list(self.deliveries) if d.resource == resource]

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stopping.wait(POLL_SECONDS):
            try:
                page = self._events(self._after)
            except Exception:  # noqa: BLE001 - the emulator is stopping, or busy: next poll
                continue
            now = time.time()
            for published in page["events"]:
                self._route(published, now)
            self._after = page["next"]
            with self._lock:
                if self._held and self._faults.max_hold_seconds is not None and (
                        now - self._held[0].read_at
                        >= self._faults.max_hold_seconds * self._scale):
                    self._release(now)
            self._deliver_due()

    def _route(self, published: dict[str, Any], now: float) -> None:
        event = published["event"]
        routed = RoutedEvent(published["seq"], published["at"], event, now, "routed")
        self.routed.append(routed)
        if not self.pattern.matches(event):
            routed.fate = "unmatched"
            return
        with self._lock:
            faults = self._faults
            if faults.drop and faults.rng.random() < faults.drop:
                routed.fate = "dropped"
                return
            copies = [EventDelivery(routed.seq, routed.at, event, now, n)
                      for n in range(1, faults.copies + 1)]
            if faults.reorder_batch:
                self._held.extend(copies)
                if len({d.seq for d in self._held}) >= faults.reorder_batch:
                    self._release(now)
            else:
                self._schedule(copies, now)

    def _release(self, now: float) -> None:
        """Schedules the held events, newest first (copies of one event stay together)."""
        held, self._held = self._held, []
        by_event: dict[int, list[EventDelivery]] = {}
        for delivery in held:
            by_event.setdefault(delivery.seq, []).append(delivery)
        self._schedule([d for seq in reversed(by_event) for d in by_event[seq]], now)

    def _schedule(self, deliveries: list[EventDelivery], now: float) -> None:
        due = now + self._faults.delay_seconds * self._scale
        for delivery in deliveries:
            heapq.heappush(self._due, (due, next(self._order), delivery))

    def _deliver_due(self) -> None:
        while True:
            with self._lock:
                if not self._due or self._due[0][0] > time.time():
                    return
                _, _, delivery = heapq.heappop(self._due)
            delivery.delivered_at = time.time()
            delivery.invocation = self._invoke(delivery.event)
            delivery.answered_at = time.time()
            self.deliveries.append(delivery)
