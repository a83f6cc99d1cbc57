"""Timing the same decisions several times on a shared machine, and keeping the fastest.

On a shared machine the same work runs at different speeds from one second to the next: on the 2-core
machine of the committed run, the same churn took up to 1.7x longer in one replay than in another with the
machine otherwise idle (the host's other load, not the code). So the placement figures replay the same churn
from the same saturated state several times, check that every replay decides exactly the same, and take
for each stretch of 1,000 consecutive decisions its fastest replay (``timeit``'s rule, stretch by stretch:
the slower replays of the same work measure the interference), with the median whole replay beside it.
Samples are read from the wall clock (``time.perf_counter_ns``, no system call): reading this thread's CPU
clock is a system call of about a microsecond, which both adds to each sample and
disturbs the caches of the code it times.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

WARMUP_SHARE = 0.1  # the untimed start of a replay on a copied cluster: its placer meets each request once
STRETCH = 1_000  # consecutive decisions whose fastest replay a figure takes
MOST_REPLAYS = 25


def rounds(least: int, spread_s: float, most: int = MOST_REPLAYS) -> Iterator[int]:
    """Replay numbers 0, 1, ...: at least ``least``, then more while fewer than ``spread_s`` seconds have passed
    since the first began (at most ``most``), so that a short replay is repeated across several of the host's
    slow and fast phases, not only within one."""
    start = time.perf_counter()
    r = 0
    while r < max(1, least) or (r < most and time.perf_counter() - start < spread_s):
        yield r
        r += 1


def frozen(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` with every object alive now moved out of the cyclic garbage collector's sight
    (``gc.freeze``): otherwise a full collection, set off by the benchmark's own growing lists of samples
    and decisions, lands in one random ``place`` call and traverses the whole heap."""
    gc.collect()
    gc.freeze()
    try:
        return fn(*args)
    finally:
        gc.unfreeze()


def fastest(replays: list[list[int]], stretch: int = STRETCH) -> tuple[list[int], float]:
    """The samples of the fastest replay of each stretch of ``stretch`` consecutive samples, and the median
    replay's total (ns). Every replay holds the same decisions in the same order, so each stretch is the
    same work in every replay: its fastest time is the code's (the interference of the host comes and goes
    within a replay, in phases longer than a stretch and shorter than a replay)."""
    times = np.asarray(replays, np.int64)
    if times.ndim != 2 or not times.size:
        raise ValueError("replays must be equally long, non-empty lists of samples")
    starts = np.arange(0, times.shape[1], stretch)
    pick = np.add.reduceat(times, starts, axis=1).argmin(axis=0)  # per stretch: the fastest replay
    out = np.concatenate([times[r, at: at + stretch] for r, at in zip(pick.tolist(), starts.tolist(), strict=True)])
    return out.tolist(), float(np.median(times.sum(axis=1)))


def same_decisions(first: Any, other: Any, what: str) -> None:
    """Replays of the same churn from the same state must decide the same (else their times compare
    different work): RuntimeError naming ``what`` when they do not."""
    if first != other:
        raise RuntimeError(f"{what}: a replay of the same churn made different decisions")


def clock_tare(samples: int = 20_000) -> float:
    """Ns that two consecutive wall-clock reads are apart (median): what a sample's timer adds to it."""
    pc = time.perf_counter_ns
    return float(np.median([-pc() + pc() for _ in range(samples)]))
