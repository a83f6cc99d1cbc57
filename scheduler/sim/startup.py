"""Task start-up: how long a placed task stays PENDING before it is RUNNING, and each instance's image cache.

A placed task holds what it reserved from the moment of placement. The ECS agent first pulls the task's
images, slowly on an instance that has never pulled them and quickly once they are there (with the
default ``ECS_IMAGE_PULL_BEHAVIOR`` the agent still asks the registry for the tag's digest), then starts
the containers, which load what they serve (for a Neuron inference task: download, and load onto the
chips, a model of several GB). ``StartupSampler`` draws both durations per task from the workload's
seeded generator; ``ImageCache`` says whether an instance still has a task's images.

The cache follows the agent's automated image cleanup, with its defaults (ECS developer guide, "Automatic
Amazon ECS task and image cleanup"; agent configuration): a stopped task's containers are removed
``ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION`` (3 h) after it stops, which leaves its images unused; the
cleanup cycle runs every ``ECS_IMAGE_CLEANUP_INTERVAL`` (30 min) from the agent's start and deletes unused
images pulled at least ``ECS_IMAGE_MINIMUM_CLEANUP_AGE`` (1 h) before. The per-cycle limit
(``ECS_NUM_IMAGES_DELETE_PER_CYCLE``, 5) is not modelled: a task uses a few images, not dozens.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scheduler.sim.plan import Startup, TaskDuration
from scheduler.sim.workloads import duration_sampler

TASK_CLEANUP_WAIT_S = 3 * 3600.0   # ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION default
IMAGE_CLEANUP_INTERVAL_S = 1800.0  # ECS_IMAGE_CLEANUP_INTERVAL default
IMAGE_MINIMUM_AGE_S = 3600.0       # ECS_IMAGE_MINIMUM_CLEANUP_AGE default


def _zero() -> float:
    return 0.0


@dataclass
class StartupSampler:
    """Draws one task's image-pull and start durations (seconds) from a workload's ``startup`` model."""

    pull: Callable[[], float] = _zero
    pull_cached: Callable[[], float] = _zero
    start: Callable[[], float] = _zero

    def draw(self, cached: bool) -> tuple[float, float]:
        """(pull seconds, start seconds) for a task whose instance has (``cached``) or lacks its images."""
        return (self.pull_cached() if cached else self.pull()), self.start()


def startup_sampler(model: Startup | None, rng: np.random.Generator) -> StartupSampler | None:
    """The sampler of a workload's ``startup`` block; None when it has none (tasks start at placement)."""
    if model is None:
        return None

    def part(value: TaskDuration | None) -> Callable[[], float]:
        return _zero if value is None else duration_sampler(value, rng)

    return StartupSampler(part(model.image_pull), part(model.image_pull_cached), part(model.start))


@dataclass
class _Image:
    pulled_at: float
    in_use: int = 0
    unused_since: float = math.inf  # when its last container was removed (its last task stopped + 3 h)


@dataclass
class ImageCache:
    """The images each container instance holds, by row; evicted as the agent's cleanup would."""

    cleanup: bool = True
    images: dict[int, dict[str, _Image]] = field(default_factory=dict)
    agent_start: dict[int, float] = field(default_factory=dict)

    def register(self, row: int, now: float) -> None:
        """A new instance: its agent starts now, with no image."""
        self.images[row] = {}
        self.agent_start[row] = now

    def has(self, row: int, images: tuple[str, ...], now: float) -> bool:
        """Whether instance ``row`` holds every one of ``images`` at ``now``."""
        held = self.images.get(row, {})
        return all(name in held and not self._deleted(row, held[name], now) for name in images)

    def _deleted(self, row: int, image: _Image, now: float) -> bool:
        if not self.cleanup or image.in_use:
            return False
        eligible = max(image.unused_since, image.pulled_at + IMAGE_MINIMUM_AGE_S)
        if not math.isfinite(eligible):
            return False
        start = self.agent_start.get(row, 0.0)
        cycles = math.ceil((eligible - start) / IMAGE_CLEANUP_INTERVAL_S)
        return start + cycles * IMAGE_CLEANUP_INTERVAL_S <= now

    def acquire(self, row: int, images: tuple[str, ...], now: float) -> None:
        """A task on ``row`` starts using ``images`` (pulled now if the instance lacked them)."""
        held = self.images.setdefault(row, {})
        for name in images:
            image = held.get(name)
            if image is None or self._deleted(row, image, now):
                image = held[name] = _Image(pulled_at=now)
            image.in_use += 1
            image.unused_since = math.inf

    def release(self, row: int, images: tuple[str, ...], now: float) -> None:
        """A task on ``row`` that used ``images`` stopped now: its containers go after the cleanup wait."""
        held = self.images.get(row, {})
        for name in images:
            image = held.get(name)
            if image is None or image.in_use == 0:
                continue
            image.in_use -= 1
            if image.in_use == 0:
                image.unused_since = now + TASK_CLEANUP_WAIT_S

    def forget(self, row: int) -> None:
        """The instance left the cluster."""
        self.images.pop(row, None)
        self.agent_start.pop(row, None)


def task_images(spec: Any) -> tuple[str, ...]:
    """The distinct images a task definition's containers use (what the agent pulls)."""
    return tuple(sorted({c.image for c in spec.containers if c.image}))
