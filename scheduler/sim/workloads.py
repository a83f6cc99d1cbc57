"""Workload shapes: when RunTask calls arrive and how long tasks run.

Each function takes the validated scenario model of one arrival process or duration distribution and a
seeded ``numpy.random.Generator``; nothing here touches simpy. Arrival processes yield the times of
successive calls, so the engine can schedule one callback per call without a generator per task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

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
    raise ValueError(f"unknown arrival type {kind!r}")


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
