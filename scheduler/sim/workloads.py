"""Workload shapes: when RunTask calls arrive, how long tasks run and how a service's desired count changes.

Each function takes the validated scenario model of one arrival process or duration distribution and a
seeded ``numpy.random.Generator``; nothing here touches simpy. Arrival processes yield the times of
successive calls, so the engine can schedule one callback per call without a generator per task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from scheduler.ecs.device_sets import split_count
from scheduler.units import parse_duration, parse_rate

DurationSampler = Callable[[], float]
BATCH = 1024  # draws taken from the generator at a time: one numpy call per batch, not per task


def _batched(draw: Callable[[int], np.ndarray]) -> Iterator[float]:
    """An endless stream of floats, drawn ``BATCH`` at a time."""
    while True:
        yield from draw(BATCH).tolist()


def _seconds(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else parse_duration(value)


def _rate(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else parse_rate(value)


def arrival_times(arrivals: Any, rng: np.random.Generator, *, start: float, stop: float) -> Iterator[float]:
    """Times of successive RunTask calls in [start, stop) for one arrival model (not ``trace``)."""
    kind = arrivals.type
    if kind == "once":
        at = start + _seconds(arrivals.at)
        for _ in range(int(getattr(arrivals, "calls", 1))):
            if at < stop:
                yield at
        return
    if kind == "interval":
        every = _seconds(arrivals.every)
        jitter = _seconds(getattr(arrivals, "jitter", 0) or 0)
        t = start
        while t < stop:
            yield t + (float(rng.uniform(0, jitter)) if jitter > 0 else 0.0)
            t += every
        return
    if kind == "poisson":
        rate = _rate(arrivals.rate)
        gaps = _batched(lambda n: rng.exponential(1.0 / rate, n))
        t = start
        while True:
            t += next(gaps)
            if t >= stop:
                return
            yield t
    if kind == "diurnal":
        peak, trough = _rate(arrivals.peak_rate), _rate(arrivals.trough_rate)
        period = _seconds(getattr(arrivals, "period", "1d"))
        peak_at = _seconds(getattr(arrivals, "peak_at", "14h"))
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
    if kind == "bursty":
        yield from _bursty(arrivals, rng, start=start, stop=stop)
        return
    raise ValueError(f"unknown arrival type {kind!r}")


def _bursty(arrivals: Any, rng: np.random.Generator, *, start: float, stop: float) -> Iterator[float]:
    """Poisson at ``base_rate`` in quiet spells (mean ``mean_gap``) and at ``burst_rate`` in bursts (mean
    ``mean_burst``), both spell lengths exponential; starts quiet. Memorylessness lets each spell draw its
    own gaps from its start."""
    rates = (_rate(arrivals.base_rate), _rate(arrivals.burst_rate))
    means = (_seconds(arrivals.mean_gap), _seconds(arrivals.mean_burst))
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


def duration_sampler(model: Any, rng: np.random.Generator) -> DurationSampler:
    """A function drawing one task duration (seconds) from a scenario's duration model."""
    if model is None:
        return lambda: math.inf
    if isinstance(model, int | float | str):
        value = _seconds(model)
        return lambda: value
    kind = model.type
    if kind == "fixed":
        value = _seconds(model.value)
        return lambda: value
    if kind == "exponential":
        mean = _seconds(model.mean)
        return _batched(lambda n: rng.exponential(mean, n)).__next__
    if kind == "lognormal":
        mu, sigma = math.log(_seconds(model.median)), float(model.sigma)
        return _batched(lambda n: rng.lognormal(mu, sigma, n)).__next__
    if kind == "empirical":
        values = np.array([_seconds(v) for v in model.values], dtype=float)
        weights = None
        if getattr(model, "weights", None):
            w = np.asarray(model.weights, dtype=float)
            w = w / w.max()  # first scaled to at most 1, so the sum stays finite for any finite weights
            weights = w / w.sum()
        return _batched(lambda n: rng.choice(values, size=n, p=weights)).__next__
    raise ValueError(f"unknown duration type {kind!r}")


# --- a service's desired count over time --------------------------------------------------------------

def desired_count_steps(service: Any, *, start: float, stop: float) -> list[tuple[float, int]]:
    """``(time, desired count)`` for each change of a REPLICA service's desired count in [start, stop), from
    its scenario model: a fixed ``desired_count``, a diurnal one, a ``schedule`` list (offsets from
    ``start``) or a repeating schedule (the list again every ``repeat``). Consecutive equal counts are
    merged; the first entry may come after ``start`` (the count is 0 until then)."""
    count = getattr(service, "desired_count", None)
    schedule = getattr(service, "schedule", None)
    steps: list[tuple[float, int]] = []
    if schedule is not None:
        repeat = getattr(schedule, "repeat", None)
        entries = schedule.steps if repeat is not None else schedule
        cycles = 1 if repeat is None else max(1, math.ceil((stop - start) / repeat))
        for cycle in range(cycles):
            offset = start + (cycle * repeat if repeat is not None else 0.0)
            steps += [(offset + _seconds(e.at), int(e.count)) for e in entries if offset + _seconds(e.at) < stop]
    elif getattr(count, "diurnal", None) is not None:
        steps = diurnal_count_steps(count.diurnal, start=start, stop=stop)
    elif count is not None:
        steps = [(start, int(count))]
    return _merged(steps)


def diurnal_count_steps(curve: Any, *, start: float, stop: float) -> list[tuple[float, int]]:
    """The times the rounded diurnal count ``curve.count_at(t)`` changes in [start, stop), found exactly:
    the curve crosses ``level + 0.5`` at phase +-arccos(...) in each period, and the count between two
    crossings is read at their midpoint."""
    peak, trough = float(curve.peak), float(curve.trough)
    period, peak_at = _seconds(curve.period), _seconds(curve.peak_at)
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
    return _merged([(t, curve.count_at((t + end) / 2)) for t, end in zip(times, ends, strict=True)])


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
