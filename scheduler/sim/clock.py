"""The clock: simpy's event heap, with a scheduled function call as its one kind of event.

``at(t, fn, *args)`` puts one :class:`_Call` on the heap (cheaper than a Timeout plus a closure, and no
generator per task); simpy pops events in ``(time, priority, id)`` order, so calls at the same time run in
the order they were scheduled. A run stops early between two events, never inside one, when
``interrupted`` is set (Ctrl-C or SIGTERM): :meth:`Clock.run` then says so.
"""

from __future__ import annotations

import heapq
import signal
from collections.abc import Callable
from typing import Any

import simpy

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)  # both end a run early with partial results


class Interrupted(Exception):
    """Raised between two events when the run was asked to stop."""


class Clock:
    """Simulated time and the calls scheduled in it."""

    def __init__(self) -> None:
        self.env = simpy.Environment()
        self.interrupted = False

    @property
    def now(self) -> float:
        return self.env._now

    def at(self, t: float, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` at simulated time ``t`` (now, if ``t`` has passed)."""
        _Call(self, max(0.0, t - self.env._now), fn, args)

    def at_key(self, t: float, eid: int, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` at ``t`` under event id ``eid``, taken from simpy's counter earlier (a call the
        stream lane scheduled, moved to simpy's heap: it keeps its place among the others)."""
        heapq.heappush(self.env._queue, (t, simpy.events.NORMAL, eid, _Call(self, None, fn, args)))

    def run(self, until: float) -> bool:
        """Run the calls up to ``until``; False when the run was interrupted first."""
        try:
            self.env.run(until=until)
        except Interrupted:
            return False
        return True


class _Call(simpy.events.Event):
    """A scheduled function call: one event on simpy's heap."""

    __slots__ = ("args", "clock", "fn")

    def __init__(self, clock: Clock, delay: float | None, fn: Callable[..., None], args: tuple) -> None:
        """Scheduled ``delay`` from now (None: the caller puts it on the heap)."""
        self.env = clock.env
        self.callbacks = [_dispatch]
        self._value = None
        self._ok = True
        self.clock, self.fn, self.args = clock, fn, args
        if delay is not None:
            clock.env.schedule(self, simpy.events.NORMAL, delay)


def _dispatch(event: _Call) -> None:
    if event.clock.interrupted:  # stop between two events, never inside one
        raise Interrupted
    event.fn(*event.args)
