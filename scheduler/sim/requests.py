"""Requests to an inference service: a load balancer in front of the service's RUNNING tasks.

What it models
--------------
Each request has an arrival time and a service time (from its size: for an LLM, time to first token
from its input tokens, then an inter-token latency per further output token; see :class:`ServiceTime`).
The service's RUNNING tasks each serve up to ``concurrency`` requests at once (their batch). A request
that finds a free slot goes at once to a task chosen by the routing rule:

- ``least_outstanding_requests``: the task with the fewest requests in flight (ties: the task that has
  been RUNNING longest), as an ALB target group with that algorithm routes;
- ``round_robin``: the next task in turn that has a free slot.

When every slot is busy the request waits in one first-come-first-served queue (at the load balancer) and
takes the first slot that frees, on whichever task. ``queue_limit`` drops a request that finds that many
already waiting; ``timeout`` drops a request that has waited that long without a slot. A request's
service time does not depend on how full its task's batch is (the default figures are per-request
latencies measured at the task definition's batch size). A task that stops finishes the requests it
holds (connection draining) and takes no new ones.

How it is driven
----------------
One compact event loop over arrays (arrivals and slot completions, a heap of completions; no simpy
process per request; :mod:`scheduler.sim.request_loop`, compiled by numba when installed), advanced by
the engine to the current time before every change of the task set
(:meth:`ServiceRequests.add_task`, :meth:`ServiceRequests.remove_task`) and at every metric period
(:meth:`ServiceRequests.period`). Everything random (arrival times, sizes) is drawn before the run from a
seeded generator, so a run is deterministic. Results are per-request arrays (wait, task), read with
:meth:`ServiceRequests.latencies`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from scheduler.sim import request_loop as loop

Routing = Literal["least_outstanding_requests", "round_robin"]


@dataclass(frozen=True)
class ServiceTime:
    """How long one request holds a slot, from its size.

    ``llm``: ``ttft = time_to_first_token + per_input_token x input_tokens`` (prefill and the first token),
    then ``inter_token_latency x (output_tokens - 1)`` for the rest. ``exponential``/``fixed``: a time that
    does not depend on size (mean ``mean`` seconds); the first token is the whole response."""

    kind: Literal["llm", "exponential", "fixed"] = "llm"
    time_to_first_token: float = 0.0
    per_input_token: float = 0.0
    inter_token_latency: float = 0.0
    mean: float = 1.0

    def draw(self, input_tokens: np.ndarray, output_tokens: np.ndarray,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(first token, whole response)`` service times in seconds, one per request."""
        n = len(input_tokens)
        if self.kind == "llm":
            ttft = self.time_to_first_token + self.per_input_token * input_tokens
            total = ttft + self.inter_token_latency * np.maximum(output_tokens - 1, 0)
            return ttft.astype(float), total.astype(float)
        total = rng.exponential(self.mean, n) if self.kind == "exponential" else np.full(n, self.mean)
        return total, total


@dataclass(frozen=True)
class RequestConfig:
    """How a service's tasks take requests."""

    concurrency: int = 1
    routing: Routing = "least_outstanding_requests"
    queue_limit: int | None = None
    timeout: float | None = None
    busy_cpu_percent: float = 100.0  # CPU a task with every slot busy uses, in percent of its reservation
    # memory (percent of the reservation) a task uses idle and with every slot busy (model weights, then the
    # KV cache of a full batch); None for both: MemoryUtilization is not modelled (no datapoint)
    idle_memory_percent: float | None = None
    busy_memory_percent: float | None = None


@dataclass
class RequestLoad:
    """The requests of one run, in arrival order: times (seconds), sizes (tokens) and service times."""

    arrival: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    first_token_time: np.ndarray  # service time to the first token
    service_time: np.ndarray      # service time of the whole response

    def __len__(self) -> int:
        return len(self.arrival)


@dataclass
class PeriodLoad:
    """What one metric period saw: the figures CloudWatch's one-minute datapoints are made of."""

    requests: int            # requests that arrived (ALB RequestCount)
    busy_slot_seconds: float  # integral of busy slots over the period
    task_seconds: float       # integral of RUNNING tasks over the period
    response_seconds: float   # sum of end-to-end latencies of the requests that finished
    finished: int


class ServiceRequests:
    """The load balancer, queue and task slots of one service (see the module docstring). The loop itself
    is :mod:`scheduler.sim.request_loop` (compiled when numba is installed)."""

    def __init__(self, config: RequestConfig, load: RequestLoad, *, compiled: bool = True) -> None:
        self.config = config
        self.load = load
        n = len(load)
        self._arrival = np.ascontiguousarray(load.arrival, dtype=float)
        self._service = np.ascontiguousarray(load.service_time, dtype=float)
        self.wait = np.full(n, np.nan)                    # seconds from arrival to a slot; NaN: not served
        self.task = np.full(n, -1, dtype=np.int64)        # the task (index into task_ids) that served it
        self.task_ids: list[str] = []  # every task that ever took requests, in the order it became RUNNING
        self._advance, self._serve = loop.functions() if compiled else loop.python_functions()
        self._out = np.zeros(8, dtype=np.int64)
        self._id_of = np.zeros(8, dtype=np.int64)
        slots = 8 * config.concurrency
        self._ht, self._hp, self._hj = np.zeros(slots), np.zeros(slots, dtype=np.int64), np.zeros(slots, dtype=np.int64)
        queue = n if config.queue_limit is None else min(n, config.queue_limit)
        self._qbuf = np.zeros(max(queue, 1), dtype=np.int64)
        self._ints = np.zeros(loop.N_INTS, dtype=np.int64)
        self._floats = np.zeros(loop.N_FLOATS)
        self._position: dict[str, int] = {}
        self._limit = -1 if config.queue_limit is None else int(config.queue_limit)
        self._timeout = math.inf if config.timeout is None else float(config.timeout)
        self._lor = config.routing == "least_outstanding_requests"
        self._last_period = {"arrived": 0, "finished": 0, "busy": 0.0, "tasks": 0.0, "response": 0.0}

    # ------------------------------------------------------------------ the task set
    def add_task(self, t: float, task_id: str) -> None:
        """A task became RUNNING at ``t``: it takes requests, starting with any that wait."""
        self.advance(t)
        ints = self._ints
        position = int(ints[loop.I_NPOS])
        if position == len(self._out):
            self._grow()
        self._position[task_id] = position
        self._out[position] = 0
        self._id_of[position] = len(self.task_ids)
        self.task_ids.append(task_id)
        ints[loop.I_NPOS] += 1
        ints[loop.I_ALIVE] += 1
        self._serve(t, position, self._arrival, self._service, self.wait, self.task, self._out, self._id_of,
                    self._ht, self._hp, self._hj, self._qbuf, ints, self.config.concurrency, self._timeout)

    def remove_task(self, t: float, task_id: str) -> None:
        """A task left RUNNING at ``t``: it takes no more requests (those it holds finish)."""
        position = self._position.pop(task_id, None)
        if position is None:
            return
        self.advance(t)
        self._out[position] += loop.GONE
        self._ints[loop.I_ALIVE] -= 1
        if self._ints[loop.I_NPOS] > 2 * self._ints[loop.I_ALIVE] + 16:
            self._compact()

    @property
    def running(self) -> int:
        return int(self._ints[loop.I_ALIVE])

    def _grow(self) -> None:
        size = 2 * len(self._out)
        self._out = np.concatenate([self._out, np.zeros(size - len(self._out), dtype=np.int64)])
        self._id_of = np.concatenate([self._id_of, np.zeros(size - len(self._id_of), dtype=np.int64)])
        slots = size * self.config.concurrency
        extra = slots - len(self._ht)
        self._ht = np.concatenate([self._ht, np.zeros(extra)])
        self._hp = np.concatenate([self._hp, np.zeros(extra, dtype=np.int64)])
        self._hj = np.concatenate([self._hj, np.zeros(extra, dtype=np.int64)])

    def _compact(self) -> None:
        """Forget stopped tasks with nothing in flight, so routing scans only the others (positions
        renumbered in the same order, so least-outstanding ties still go to the longest RUNNING)."""
        npos = int(self._ints[loop.I_NPOS])
        out = self._out[:npos]
        keep = np.flatnonzero(out != loop.GONE)
        new = np.full(npos, -1, dtype=np.int64)
        new[keep] = np.arange(len(keep))
        self._out[:len(keep)] = out[keep]
        self._id_of[:len(keep)] = self._id_of[:npos][keep]
        size = int(self._ints[loop.I_HSIZE])
        self._hp[:size] = new[self._hp[:size]]  # the heap order (time, request) is unchanged
        self._position = {tid: int(new[p]) for tid, p in self._position.items()}
        self._ints[loop.I_NPOS] = len(keep)
        self._ints[loop.I_RR] = 0

    # ------------------------------------------------------------------ the event loop
    def advance(self, until: float) -> None:
        """Play arrivals and completions before ``until`` (events at ``until`` itself are left for later)."""
        self._advance(float(until), self._arrival, self._service, self.wait, self.task, self._out, self._id_of,
                      self._ht, self._hp, self._hj, self._qbuf, self._ints, self._floats, self.config.concurrency,
                      self._limit, self._timeout, self._lor)

    # ------------------------------------------------------------------ metrics
    def period(self, t: float) -> PeriodLoad:
        """Advance to ``t`` and return the figures since the previous call (one metric period)."""
        self.advance(t)
        ints, floats, last = self._ints, self._floats, self._last_period
        now = {"arrived": int(ints[loop.I_ARRIVED]), "finished": int(ints[loop.I_FINISHED]),
               "busy": float(floats[loop.F_BUSY_INTEGRAL]), "tasks": float(floats[loop.F_TASK_INTEGRAL]),
               "response": float(floats[loop.F_RESPONSE])}
        figures = PeriodLoad(now["arrived"] - last["arrived"], now["busy"] - last["busy"], now["tasks"] - last["tasks"],
                             now["response"] - last["response"], now["finished"] - last["finished"])
        self._last_period = now
        return figures

    def cpu_percent(self, figures: PeriodLoad) -> float:
        """ECS's service CPUUtilization for a period: the average over RUNNING tasks of the busy fraction of
        their slots times ``busy_cpu_percent``; NaN (no datapoint) without RUNNING task time."""
        if figures.task_seconds <= 0:
            return math.nan
        busy = figures.busy_slot_seconds / (self.config.concurrency * figures.task_seconds)
        return self.config.busy_cpu_percent * min(1.0, busy)

    def memory_percent(self, figures: PeriodLoad) -> float:
        """ECS's service MemoryUtilization for a period: ``idle_memory_percent`` plus the busy fraction of the
        slots times (``busy_memory_percent`` - ``idle_memory_percent``), the one given standing for the
        other; NaN (no datapoint) when neither is given or without RUNNING task time."""
        idle, busy = self.config.idle_memory_percent, self.config.busy_memory_percent
        if (idle is None and busy is None) or figures.task_seconds <= 0:
            return math.nan
        idle = busy if idle is None else idle
        busy = idle if busy is None else busy
        fraction = min(1.0, figures.busy_slot_seconds / (self.config.concurrency * figures.task_seconds))
        return idle + (busy - idle) * fraction

    @property
    def queued(self) -> int:
        return int(self._ints[loop.I_QLEN])

    @property
    def arrived(self) -> int:
        return int(self._ints[loop.I_ARRIVED])

    @property
    def dropped_queue_full(self) -> int:
        return int(self._ints[loop.I_DROP_QUEUE])

    @property
    def dropped_timeout(self) -> int:
        return int(self._ints[loop.I_DROP_TIMEOUT])

    def outstanding(self) -> dict[str, int]:
        """Requests in flight per RUNNING task (for tests and reports)."""
        return {tid: int(self._out[p]) for tid, p in self._position.items()}

    def latencies(self) -> dict[str, np.ndarray]:
        """Per served request: queueing time, time to first token and end-to-end latency (seconds)."""
        served = ~np.isnan(self.wait)
        wait = self.wait[served]
        return {"arrival": self.load.arrival[served], "wait": wait,
                "ttft": wait + self.load.first_token_time[served], "e2e": wait + self.load.service_time[served],
                "output_tokens": self.load.output_tokens[served], "task": self.task[served]}
