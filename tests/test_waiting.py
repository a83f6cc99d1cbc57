"""The waiting room (scheduler.sim.waiting): one queue per request class retried from its head, one pass
per change however often it is asked for, and daemon tasks retried only on their own instance."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.placement.results import Failure
from scheduler.sim.waiting import WaitingRoom


@dataclass(eq=False)
class Req:
    provider: str | None = None


@dataclass(eq=False)
class Task:
    task_id: str
    request: Req
    last_status: str = "PROVISIONING"
    waiting_reason: str | None = None
    waiting_code: str | None = None


@dataclass
class World:
    """Capacity as a number of free slots; each placement takes one."""

    free: int = 0
    tried: list[str] = field(default_factory=list)
    scheduled: list[Callable[[], None]] = field(default_factory=list)

    def try_start(self, task: Task) -> Failure | None:
        self.tried.append(task.task_id)
        if self.free <= 0:
            return Failure("RESOURCE:CPU")
        self.free -= 1
        task.last_status = "RUNNING"
        return None

    def room(self) -> WaitingRoom:
        return WaitingRoom(self.try_start, self.scheduled.append)


def test_a_failed_head_stands_for_its_class_and_other_classes_are_still_tried() -> None:
    world = World()
    room = world.room()
    a, b = Req(), Req()
    for k in range(5):
        room.wait(Task(f"a{k}", a))
    room.wait(Task("b0", b))
    room.retry()
    assert world.tried == ["a0", "b0"]  # one try per class
    world.free, world.tried = 3, []
    room.retry()
    assert world.tried == ["a0", "a1", "a2", "a3", "b0"]  # a3 fails for its class (a4 untried); then b0


def test_kicks_are_coalesced_into_one_pass() -> None:
    world = World()
    room = world.room()
    room.wait(Task("t", Req()))
    for _ in range(10):
        room.kick()
    assert len(world.scheduled) == 1
    world.scheduled.pop()()
    room.kick()
    assert len(world.scheduled) == 1  # after a pass, the next change schedules the next


def test_a_daemon_task_is_retried_only_when_its_instance_frees_something() -> None:
    world = World(free=0)
    room = world.room()
    room.wait_on_instance(7, Task("d", Req()))
    room.retry()
    assert world.tried == []
    room.freed(3)  # another instance: nothing waits there
    room.retry()
    assert world.tried == []
    world.free = 1
    room.freed(7)
    room.retry()
    assert world.tried == ["d"] and room.daemons == {}


def test_tasks_waiting_for_a_provider_are_listed_until_they_leave() -> None:
    room = World().room()
    room.add_provider("asg")
    tasks = [Task(f"t{k}", Req("asg")) for k in range(3)]
    for task in tasks:
        room.wait_for_provider("asg", task)
    assert room.provisioning() == 3 and room.for_provider("asg") == tasks
    room.left(tasks[1])
    assert room.for_provider("asg") == [tasks[0], tasks[2]]


@settings(max_examples=100, deadline=None)
@given(classes=st.lists(st.integers(1, 6), min_size=1, max_size=5), free=st.integers(0, 30))
def test_a_pass_places_as_many_as_fit_and_keeps_the_order_within_each_class(classes: list[int], free: int) -> None:
    world = World(free=free)
    room = world.room()
    queued = []
    for c, n in enumerate(classes):
        req = Req()
        for k in range(n):
            queued.append(Task(f"{c}-{k}", req))
            room.wait(queued[-1])
    room.retry()
    placed = [t for t in queued if t.last_status == "RUNNING"]
    assert len(placed) == min(free, len(queued))
    for c, n in enumerate(classes):  # within a class, the placed ones are its oldest
        states = [t.last_status for t in queued if t.task_id.startswith(f"{c}-")]
        assert states == sorted(states, key=lambda s: s != "RUNNING")
        assert len(states) == n
