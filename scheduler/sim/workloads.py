"""Workload shapes: when RunTask calls arrive, how long tasks run and how a service's desired count changes.

Each function takes the plan (:mod:`scheduler.sim.plan`) of one arrival process, duration distribution or
desired count and, where it draws, a seeded ``numpy.random.Generator``; nothing here touches simpy.
Arrival processes yield the times of successive calls, so the engine can schedule one callback per call
without a generator per task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from scheduler.ecs.device_sets import split_count
from scheduler.sim.plan import (
    BurstyArrivals,
    DesiredCount,
    DiurnalArrivals,
    DiurnalCount,
    EmpiricalDuration,
    ExponentialDuration,
    FixedCount,
    FixedDuration,
    GeneratedArrivals,
    IntervalArrivals,
    LognormalDuration,
    OnceArrivals,
    PoissonArrivals,
    Schedule,
    TaskDuration,
)

DurationSampler = Callable[[], float]
BATCH = 1024  # draws taken from the generator at a time: one numpy call per batch, not per task


def _batched(draw: Callable[[int], np.ndarray]) -> Iterator[float]:
    """An endless stream of floats, drawn ``BATCH`` at a time."""
    while True:
        yield from draw(BATCH).tolist()


def arrival_times(arrivals: GeneratedArrivals, rng: np.random.Generator, *, start: float,
                  stop: float) -> Iterator[float]:
    """Times of successive RunTask calls (or requests) in [start, stop) for one generated arrival process."""
    if isinstance(arrivals, OnceArrivals):
        at = start + arrivals.at
        for _ in range(arrivals.calls):
            if at < stop:
                yield at
        return
    if isinstance(arrivals, IntervalArrivals):
        every, jitter = arrivals.every, arrivals.jitter
        t = start
        while t < stop:
            yield t + (float(rng.uniform(0, jitter)) if jitter > 0 else 0.0)
            t += every
        return
    if isinstance(arrivals, PoissonArrivals):
        rate = arrivals.rate
        gaps = _batched(lambda n: rng.exponential(1.0 / rate, n))
        t = start
        while True:
            t += next(gaps)
            if t >= stop:
                return
            yield t
    if isinstance(arrivals, DiurnalArrivals):
        peak, trough = arrivals.peak_rate, arrivals.trough_rate
        period, peak_at = arrivals.period, arrivals.peak_at
        # Non-homogeneous Poisson by thinning (Lewis & Shedler) against the peak rate.
        gaps = _batched(lambda n: rng.exponential(1.0 / peak, n))
        coins = _batched(lambda n: rng.random(n))
        t = start
        while True:
            t += next(gaps)
            if t >= stop:
                return
            if next(coins) * peak <= diurnal_rate(t, peak, trough, peak_at, period):
                yield t
    if isinstance(arrivals, BurstyArrivals):
        yield from _bursty(arrivals, rng, start=start, stop=stop)
        return
    raise TypeError(f"not a generated arrival process: {type(arrivals).__name__}")


def _bursty(arrivals: BurstyArrivals, rng: np.random.Generator, *, start: float, stop: float) -> Iterator[float]:
    """Poisson at ``base_rate`` in quiet spells (mean ``mean_gap``) and at ``burst_rate`` in bursts (mean
    ``mean_burst``), both spell lengths exponential; starts quiet. Memorylessness lets each spell draw its
    own gaps from its start."""
    rates = (arrivals.base_rate, arrivals.burst_rate)
    means = (arrivals.mean_gap, arrivals.mean_burst)
    t, state = start, 0
    while t < stop:
        end = min(stop, t + float(rng.exponential(means[state])))
        if rates[state] > 0:
            count = int(rng.poisson(rates[state] * (end - t)))  # given the count, the times are uniform
            yield from np.sort(rng.uniform(t, end, count)).tolist()
        t, state = end, 1 - state


def diurnal_rate(t: float, peak: float, trough: float, peak_at: float, period: float) -> float:
    """A sinusoidal day: ``peak`` at ``peak_at``, ``trough`` half a period later."""
    phase = 2 * math.pi * (t - peak_at) / period
    return trough + (peak - trough) * (1 + math.cos(phase)) / 2


def duration_sampler(model: TaskDuration | None, rng: np.random.Generator) -> DurationSampler:
    """A function drawing one task duration (seconds) from a task duration model (None: runs for ever)."""
    if model is None:
        return lambda: math.inf
    if isinstance(model, FixedDuration):
        value = model.value
        return lambda: value
    if isinstance(model, ExponentialDuration):
        mean = model.mean
        return _batched(lambda n: rng.exponential(mean, n)).__next__
    if isinstance(model, LognormalDuration):
        mu, sigma = math.log(model.median), model.sigma
        return _batched(lambda n: rng.lognormal(mu, sigma, n)).__next__
    if isinstance(model, EmpiricalDuration):
        values = np.array(model.values, dtype=float)
        weights = None
        if model.weights:
            w = np.asarray(model.weights, dtype=float)
            w = w / w.max()  # first scaled to at most 1, so the sum stays finite for any finite weights
            weights = w / w.sum()
        return _batched(lambda n: rng.choice(values, size=n, p=weights)).__next__
    raise TypeError(f"not a task duration: {type(model).__name__}")


# --- a service's desired count over time --------------------------------------------------------------

def desired_count_steps(count: DesiredCount | None, *, start: float, stop: float) -> list[tuple[float, int]]:
    """``(time, desired count)`` for each change of a REPLICA service's desired count in [start, stop): a
    fixed count, a diurnal one, a schedule (offsets from ``start``) or a repeating schedule (the list again
    every ``repeat``). Consecutive equal counts are merged; the first entry may come after ``start`` (the
    count is 0 until then)."""
    steps: list[tuple[float, int]] = []
    if isinstance(count, Schedule):
        repeat = count.repeat
        cycles = 1 if repeat is None else max(1, math.ceil((stop - start) / repeat))
        for cycle in range(cycles):
            offset = start + (cycle * repeat if repeat is not None else 0.0)
            steps += [(offset + e.at, e.count) for e in count.steps if offset + e.at < stop]
    elif isinstance(count, DiurnalCount):
        steps = diurnal_count_steps(count, start=start, stop=stop)
    elif isinstance(count, FixedCount):
        steps = [(start, count.count)]
    return _merged(steps)


def diurnal_count(curve: DiurnalCount, t: float) -> int:
    """The desired count at ``t`` seconds into the run: the curve rounded to the nearest task."""
    return math.floor(diurnal_rate(t, curve.peak, curve.trough, curve.peak_at, curve.period) + 0.5)


def diurnal_count_steps(curve: DiurnalCount, *, start: float, stop: float) -> list[tuple[float, int]]:
    """The times the rounded diurnal count changes in [start, stop), found exactly: the curve crosses
    ``level + 0.5`` at phase +-arccos(...) in each period, and the count between two crossings is read at
    their midpoint."""
    peak, trough = float(curve.peak), float(curve.trough)
    period, peak_at = curve.period, curve.peak_at
    times = [start]
    if peak > trough:
        first = math.floor((start - peak_at) / period) - 1
        last = math.ceil((stop - peak_at) / period) + 1
        for level in range(int(trough), int(peak)):
            x = (level + 0.5 - trough) / (peak - trough)
            offset = math.acos(2 * x - 1) / (2 * math.pi) * period
            for n in range(first, last + 1):
                for t in (peak_at + n * period - offset, peak_at + n * period + offset):
                    if start < t < stop:
                        times.append(t)
    times.sort()
    ends = [*times[1:], stop]
    return _merged([(t, diurnal_count(curve, (t + end) / 2)) for t, end in zip(times, ends, strict=True)])


def split_steps(steps: list[tuple[float, int]], blocks: int, index: int) -> list[tuple[float, int]]:
    """Block ``index``'s share of each desired count when ``blocks`` services split it (see
    :func:`scheduler.ecs.device_sets.split_count`: evenly, the remainder to the first blocks)."""
    return _merged([(t, split_count(n, blocks)[index]) for t, n in steps])


def _merged(steps: list[tuple[float, int]]) -> list[tuple[float, int]]:
    out: list[tuple[float, int]] = []
    for t, n in steps:
        if out and out[-1][1] == n:
            continue
        out.append((t, n))
    return out
