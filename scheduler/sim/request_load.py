"""The requests one service receives in a run, drawn before the run: arrival times and sizes from a
generated process (the Poisson and diurnal processes of :mod:`scheduler.sim.workloads`, one definition
for RunTask calls and requests) or replayed from a trace, and their service times.

A replayed trace (a table of ``time`` offsets in seconds from its first request, ``input_tokens``,
``output_tokens``) is compressed in time by ``speed``, played from the service's start, again back to back
while ``repeat`` holds, and thinned by a diurnal ``envelope`` (each request kept with probability
``rate(t) / peak``)."""

from __future__ import annotations

import math

import numpy as np

from scheduler.sim.plan import Envelope, RequestTrace, ServiceRequests, TokenSizes
from scheduler.sim.requests import RequestLoad
from scheduler.sim.workloads import arrival_times, diurnal_rate


def build_load(block: ServiceRequests, rng: np.random.Generator, *, start: float, stop: float) -> RequestLoad:
    """The requests of one service's ``requests:`` block in [start, stop)."""
    arrivals = block.arrivals
    if isinstance(arrivals, RequestTrace):
        times, inputs, outputs = _replay(arrivals, rng, start=start, stop=stop)
    else:
        times = np.fromiter(arrival_times(arrivals, rng, start=start, stop=stop), dtype=float)
        inputs, outputs = _sizes(block.sizes, len(times), rng)
    first, total = block.service_time.draw(inputs, outputs, rng)
    return RequestLoad(times, inputs, outputs, first, total)


def _sizes(sizes: TokenSizes, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if sizes.distribution == "fixed":
        return np.full(n, sizes.input_tokens, dtype=np.int64), np.full(n, sizes.output_tokens, dtype=np.int64)
    inputs = np.maximum(1, np.rint(rng.exponential(max(sizes.input_tokens, 1), n))).astype(np.int64)
    outputs = np.maximum(1, np.rint(rng.exponential(sizes.output_tokens, n))).astype(np.int64)
    return inputs, outputs


def _replay(arrivals: RequestTrace, rng: np.random.Generator, *, start: float,
            stop: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    trace = arrivals.table
    offsets = np.asarray(trace["time"], dtype=float) / float(arrivals.speed)
    inputs = np.asarray(trace["input_tokens"], dtype=np.int64)
    outputs = np.asarray(trace["output_tokens"], dtype=np.int64)
    # one trace length: its span plus one mean gap, so a repeat does not put two requests at one instant
    span = float(offsets[-1]) + (float(offsets[-1]) / max(len(offsets) - 1, 1) if len(offsets) > 1 else 1.0)
    copies = max(1, math.ceil((stop - start) / span)) if arrivals.repeat else 1
    times = (start + offsets[None, :] + span * np.arange(copies)[:, None]).ravel()
    inputs, outputs = np.tile(inputs, copies), np.tile(outputs, copies)
    keep = times < stop
    envelope = arrivals.envelope
    if envelope is not None:
        factor = np.array([diurnal_rate(t, 1.0, envelope.trough, envelope.peak_at, envelope.period)
                           for t in times]) if len(times) < 1000 else _diurnal(times, envelope)
        keep &= rng.random(len(times)) < factor
    return times[keep], inputs[keep], outputs[keep]


def _diurnal(times: np.ndarray, envelope: Envelope) -> np.ndarray:
    """:func:`diurnal_rate` with peak 1, vectorised (the same sinusoid)."""
    phase = 2 * math.pi * (times - envelope.peak_at) / envelope.period
    return envelope.trough + (1.0 - envelope.trough) * (1 + np.cos(phase)) / 2
