"""The waiting room: tasks in PROVISIONING that wait for capacity, and how they are retried.

It has simpy's resource shape (``BaseResource._trigger_put`` calling ``_do_put`` for each waiting put
until one cannot proceed): when capacity changes, one retry pass (coalesced: at most one scheduled at a
time) offers each waiting task to ``try_start`` (the ``_do_put`` hook, the engine's placement). Tasks
wait in one first-in-first-out queue per request class (the same request object: same task definition,
constraints and strategy), so when the head of a class fails the rest of the class is not tried: it asks
for the same and fails the same way.

Daemon tasks wait apart, by instance row: each can only ever start on its own instance, so it is retried
only when that instance frees something or reconnects, not on every change in the cluster. Tasks waiting
for a capacity provider to launch instances are also listed by provider, for the provider's scaling.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any, Protocol

from scheduler.placement.results import Failure

PROVISIONING = "PROVISIONING"


class WaitingTask(Protocol):
    """A task as the waiting room sees it (the engine's SimTask)."""

    task_id: str
    last_status: str
    request: Any
    waiting_reason: str | None
    waiting_code: str | None


def note_failure(task: WaitingTask, failure: Failure) -> None:
    """Remember why ``task`` could not be placed: the reason as shown, and its ECS code alone."""
    task.waiting_reason = str(failure)
    task.waiting_code = failure.reason


class WaitingRoom:
    """Waiting tasks by request class, daemon tasks by instance, and provisioning tasks by provider."""

    def __init__(self, try_start: Callable[[Any], Failure | None],
                 schedule_now: Callable[[Callable[[], None]], None]) -> None:
        self.try_start = try_start        # place one task now: None when it was placed (or stopped at start)
        self.schedule_now = schedule_now  # run a function at the current time, after the current event
        self.classes: OrderedDict[int, deque[Any]] = OrderedDict()
        self.daemons: dict[int, list[Any]] = {}
        self.freed_rows: set[int] = set()
        self.by_provider: dict[str, dict[str, Any]] = {}
        self._pass_scheduled = False
        self.passes = 0  # retry passes run (the stream lane: reasons it did not set since)

    # --- tasks come in ---------------------------------------------------------------------------

    def add_provider(self, name: str) -> None:
        self.by_provider[name] = {}

    def wait(self, task: WaitingTask) -> None:
        """Queue ``task`` behind the others of its request class."""
        self.classes.setdefault(id(task.request), deque()).append(task)

    def wait_on_instance(self, row: int, task: WaitingTask) -> None:
        """A daemon task waits for its own instance."""
        self.daemons.setdefault(row, []).append(task)

    def wait_for_provider(self, provider: str, task: WaitingTask) -> None:
        """A task waits (in its class) for ``provider`` to launch capacity."""
        self.by_provider[provider][task.task_id] = task
        self.wait(task)

    def provisioning(self) -> int:
        """Tasks waiting for capacity providers (ECS's PROVISIONING quota counts these)."""
        return sum(len(w) for w in self.by_provider.values())

    def for_provider(self, provider: str) -> list[Any]:
        """Tasks waiting for ``provider``, oldest first."""
        return list(self.by_provider.get(provider, {}).values())

    def left(self, task: WaitingTask) -> None:
        """``task`` was placed or stopped: no provider waits on it any more (queues drop it lazily)."""
        if task.request is not None and task.request.provider is not None:
            self.by_provider[task.request.provider].pop(task.task_id, None)

    # --- capacity changes ------------------------------------------------------------------------

    def freed(self, row: int) -> None:
        """Instance ``row`` freed something (or reconnected): its waiting daemon task is retried next pass."""
        if row in self.daemons:
            self.freed_rows.add(row)

    def kick(self) -> None:
        """Capacity changed: schedule one retry pass now, unless one is already scheduled."""
        if (self.classes or self.freed_rows) and not self._pass_scheduled:
            self._pass_scheduled = True
            self.schedule_now(self.retry)

    def retry(self) -> None:
        """One retry pass: daemons on the instances that freed something, then each class from its head."""
        self._pass_scheduled = False
        self.passes += 1
        self._retry_daemons()
        for key in list(self.classes):
            waiting = self.classes[key]
            while waiting:
                task = waiting[0]
                if task.last_status != PROVISIONING:
                    waiting.popleft()
                    continue
                failure = self.try_start(task)
                if failure is not None:
                    note_failure(task, failure)
                    break  # the rest of this class asks for the same and fails the same way
                waiting.popleft()
            if not waiting:
                del self.classes[key]

    def _retry_daemons(self) -> None:
        """The cost follows the changes, not the number of instances."""
        rows, self.freed_rows = sorted(self.freed_rows), set()
        for row in rows:
            waiting = self.daemons.pop(row, None)
            if not waiting:
                continue
            still = []
            for task in waiting:
                if task.last_status != PROVISIONING:
                    continue
                failure = self.try_start(task)
                if failure is not None:
                    task.waiting_reason = str(failure)
                    still.append(task)
            if still:
                self.daemons[row] = still
