"""Timing the same decisions several times on a shared machine, and keeping the fastest.

On a shared machine the same work runs at different speeds from one second to the next: on the 2-core
machine of the committed run, the same churn took up to 1.7x longer in one replay than in another with the
machine otherwise idle (the host's other load, not the code). So the placement figures replay the same churn
from the same saturated state several times, check that every replay decides exactly the same, and take
the fastest replay as the figure (``timeit``'s rule: the slower replays measure the interference), with the
median replay beside it. Samples are read from the wall clock (``time.perf_counter_ns``, no system call):
reading this thread's CPU clock is a system call of about a microsecond, which both adds to each sample and
disturbs the caches of the code it times.

A ratio of two such figures (cost per decision at 50,000 instances against 500) is another matter: the
fastest replay of each size comes from a different moment of the host's load, so the ratio of two fastest
replays moved between 1.2x and 2.2x for the same code. ``interleaved`` replays both sizes in turn chunk by
chunk, a few milliseconds each, so that both meet the same load; its rounds' ratios agreed within a few
percent where the fastest replays' ratios did not.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")
Replay = Callable[[], Iterator[int]]  # starts one replay of a churn; it yields each chunk's ns as it runs it
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


def interleaved(first: Replay, second: Replay, rounds: int) -> list[tuple[int, int]]:
    """Replay two streams in turn, chunk by chunk, ``rounds`` times: each call of ``first``/``second`` starts
    one replay and yields each chunk's ns as it runs it. Which of the two runs first alternates from chunk to
    chunk, so that neither always meets the caches as the other left them. Each round runs with the objects
    alive at its start frozen out of the cyclic garbage collector (as ``frozen``). Returns each round's total
    ns of ``first`` and of ``second``; both replays must yield the same number of chunks."""
    totals: list[tuple[int, int]] = []
    for _ in range(max(1, rounds)):
        totals.append(frozen(_round, first(), second()))
    return totals


def _round(a: Iterator[int], b: Iterator[int]) -> tuple[int, int]:
    """One round of ``interleaved``: both replays to their end, in turn."""
    ta = tb = 0
    k = 0
    while True:
        if k % 2 == 0:
            x, y = next(a, None), next(b, None)
        else:
            y = next(b, None)
            x = next(a, None)
        if x is None or y is None:
            if x is not None or y is not None:
                raise ValueError("interleaved replays must yield the same number of chunks")
            break
        ta += x
        tb += y
        k += 1
    return ta, tb


def chunk_sums(samples: Iterable[int], size: int) -> Iterator[int]:
    """The sum of each ``size`` samples in turn (and of the last, shorter run), yielded as soon as its last
    sample is in: a replay's chunks as ``interleaved`` takes them."""
    total = count = 0
    for dt in samples:
        total += dt
        count += 1
        if count == size:
            yield total
            total = count = 0
    if count:
        yield total
