"""One service's request load and Service Auto Scaling, driven once per CloudWatch metric period.

The engine builds a :class:`ServiceLoad` for a service with ``requests:`` or ``auto_scaling:`` and calls
:meth:`ServiceLoad.tick` every :data:`~scheduler.sim.autoscaling.METRIC_PERIOD_S` (60 s) from the service's
start. A tick plays the period's requests (:class:`~scheduler.sim.requests.ServiceRequests`), turns them
into the period's CloudWatch datapoints and hands them to the
:class:`~scheduler.sim.autoscaling.ServiceScaler`, whose answer (a new desired count, or None) the engine
applies. Without requests the scaler sees no datapoints (INSUFFICIENT_DATA: it never scales).

The metrics (docs/modelling.md, "Requests"): ``CPUUtilization`` = the average over RUNNING tasks of the
busy fraction of their slots x ``busy_cpu_percent``; ``RequestCountPerTarget`` = requests that arrived in
the period / RUNNING tasks at its end (ALB divides by healthy targets); ``RequestCount`` the period's
requests; ``TargetResponseTime`` the mean end-to-end latency of the requests that finished in it.
``MemoryUtilization`` = ``idle_memory_percent`` + busy fraction x (``busy_memory_percent`` -
``idle_memory_percent``) when the service gives either (else a missing datapoint).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from scheduler.results.summary import Percentiles, RequestFigures, WorkloadSummary
from scheduler.results.tables import SERVICE_LOAD_COLUMNS
from scheduler.sim.autoscaling import (
    CPU,
    MEMORY,
    METRIC_PERIOD_S,
    REQUEST_COUNT,
    REQUESTS_PER_TARGET,
    RESPONSE_TIME,
    ServiceScaler,
)
from scheduler.sim.plan import ServiceWorkload
from scheduler.sim.request_load import build_load
from scheduler.sim.requests import ServiceRequests


class ServiceLoad:
    """What the engine keeps per service with requests or auto scaling."""

    def __init__(self, name: str, requests: ServiceRequests | None, scaler: ServiceScaler | None) -> None:
        self.name = name
        self.requests = requests
        self.scaler = scaler
        self.periods: list[dict[str, Any]] = []  # one row per metric period

    def tick(self, t: float, running: int, desired: int) -> int | None:
        """The metric period ending at ``t``: its datapoints, then the scaler's decision (if any)."""
        metrics: dict[str, float] = {}
        row: dict[str, Any] = {"time": t, "service": self.name, "desired": desired, "running": running}
        if self.requests is not None:
            figures = self.requests.period(t)
            metrics = {
                CPU: self.requests.cpu_percent(figures),
                MEMORY: self.requests.memory_percent(figures),
                REQUEST_COUNT: float(figures.requests),
                REQUESTS_PER_TARGET: figures.requests / running if running else math.nan,
                RESPONSE_TIME: figures.response_seconds / figures.finished if figures.finished else math.nan,
            }
            row.update({"requests": figures.requests, "queued": self.requests.queued,
                        "cpu_utilization": metrics[CPU], "memory_utilization": metrics[MEMORY],
                        "requests_per_target": metrics[REQUESTS_PER_TARGET]})
        new = None
        if self.scaler is not None:
            new = self.scaler.observe(t, metrics, running, desired)
        row["desired_after"] = desired if new is None else new
        self.periods.append(row)
        return new

    # ------------------------------------------------------------------ results
    def summary(self, figures: WorkloadSummary, *, instance_hours: float, cost_usd: float,
                sim_seconds: float) -> WorkloadSummary:
        """The service's ``figures`` with its scaling activities and request figures added."""
        activities = len(self.scaler.decisions) if self.scaler is not None else None
        if self.requests is None:
            return replace(figures, scaling_activities=activities)
        r = self.requests
        served = r.latencies()
        tokens = float(served["output_tokens"].sum())
        requests = RequestFigures(
            arrived=r.arrived,  # requests that arrived before the run ended
            served=len(served["wait"]),
            dropped=int(r.dropped_queue_full + r.dropped_timeout),
            dropped_queue_full=int(r.dropped_queue_full),
            dropped_timeout=int(r.dropped_timeout),
            queued_at_end=int(r.queued),
            latency=Percentiles.of(served["e2e"]),
            ttft=Percentiles.of(served["ttft"]),
            queue_wait=Percentiles.of(served["wait"]),
            output_tokens_per_second=round(tokens / sim_seconds, 6) if sim_seconds > 0 else None,
            per_instance_hour=round(len(served["wait"]) / instance_hours, 6) if instance_hours else None,
            cost_per_million_tokens_usd=round(cost_usd / tokens * 1e6, 6) if tokens else None,
        )
        return replace(figures, scaling_activities=activities, requests=requests)

    def timeline(self) -> list[dict[str, Any]]:
        """Per metric period: load, tasks and the latency percentiles of the requests that arrived in it."""
        rows = [dict(row) for row in self.periods]
        if self.requests is None or not rows:
            return rows
        served = self.requests.latencies()  # in arrival order
        ends = np.array([row["time"] for row in rows])
        bounds = np.searchsorted(served["arrival"], ends, side="left")  # period k: arrivals in [end[k-1], end[k])
        lows = np.concatenate([[0], bounds[:-1]])
        for row, low, high in zip(rows, lows, bounds, strict=True):
            for key, name in (("e2e", "latency"), ("ttft", "ttft")):
                values = served[key][low:high]
                p50, p99 = np.percentile(values, (50, 99)) if len(values) else (math.nan, math.nan)
                row[f"{name}_p50_s"], row[f"{name}_p99_s"] = float(p50), float(p99)
        return rows


PERIOD_S = METRIC_PERIOD_S


def build(workload: ServiceWorkload, rng: np.random.Generator, *, start: float, stop: float) -> ServiceLoad:
    """The :class:`ServiceLoad` of a service workload with ``requests:`` and/or ``auto_scaling:``."""
    block = workload.requests
    requests = None
    if block is not None:
        load = build_load(block, rng, start=start + block.start, stop=stop)
        requests = ServiceRequests(block.config, load)
    scaler = ServiceScaler(workload.auto_scaling) if workload.auto_scaling is not None else None
    return ServiceLoad(workload.name, requests, scaler)


def tables(loads: Iterable[ServiceLoad]) -> dict[str, pd.DataFrame]:
    """``service_load``: one row per service and metric period (empty when no service has one)."""
    rows = [row for load in loads for row in load.timeline()]
    return {"service_load": pd.DataFrame(rows, columns=list(SERVICE_LOAD_COLUMNS))} if rows else {}

