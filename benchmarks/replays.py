"""Timing the same decisions several times on a shared machine, and keeping the fastest.

On a shared machine the same work runs at different speeds from one second to the next: on the 2-core
machine of the committed run, the same churn took up to 1.7x longer in one replay than in another with the
machine otherwise idle (the host's other load, not the code). So the placement figures replay the same churn
from the same saturated state several times, check that every replay decides exactly the same, and take
the fastest replay as the figure (``timeit``'s rule: the slower replays measure the interference), with the
median replay beside it. Samples are read from the wall clock (``time.perf_counter_ns``, no system call):
reading this thread's CPU clock is a system call of about a microsecond, which both adds to each sample and
disturbs the caches of the code it times.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
WARMUP_SHARE = 0.1  # the untimed start of a replay on a copied cluster: its placer meets each request once


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


def fastest(totals_ns: list[float], decisions: int) -> tuple[int, float]:
    """Which of the replays of the same ``decisions`` took the least time (``totals_ns``: each replay's
    time), and the median replay's decisions/s."""
    median = float(np.median(totals_ns))
    return int(np.argmin(totals_ns)), decisions / median * 1e9 if median else 0.0


def same_decisions(first: Any, other: Any, what: str) -> None:
    """Replays of the same churn from the same state must decide the same (else their times compare
    different work): RuntimeError naming ``what`` when they do not."""
    if first != other:
        raise RuntimeError(f"{what}: a replay of the same churn made different decisions")


def replayed(once: Callable[[int], tuple[T, Any]], repeats: int, what: str) -> tuple[list[T], Any]:
    """``once(r)`` for replays r = 0, 1, ... (``repeats`` of them, at least one), each returning its timing and
    its decisions. Every replay must make the first one's decisions (``same_decisions``, naming ``what``);
    returns each replay's timing, and those decisions."""
    timings: list[T] = []
    first: Any = None
    for r in range(max(1, repeats)):
        timing, decisions = once(r)
        if r == 0:
            first = decisions
        else:
            same_decisions(first, decisions, what)
        timings.append(timing)
    return timings, first


def clock_tare(samples: int = 20_000) -> float:
    """Ns that two consecutive wall-clock reads are apart (median): what a sample's timer adds to it."""
    pc = time.perf_counter_ns
    return float(np.median([-pc() + pc() for _ in range(samples)]))
