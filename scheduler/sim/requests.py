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
One compact event loop (arrivals and slot completions, a heap of completions; no simpy process per
request) advanced by the engine to the current time before every change of the task set
(:meth:`ServiceRequests.add_task`, :meth:`ServiceRequests.remove_task`) and at every metric period
(:meth:`ServiceRequests.period`). Everything random (arrival times, sizes) is drawn before the run from a
seeded generator, so a run is deterministic. Results are per-request arrays (wait, task), read with
:meth:`ServiceRequests.latencies`.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

Routing = Literal["least_outstanding_requests", "round_robin"]
_GONE = 1 << 40  # the outstanding count of a task that stopped: never the least, never has a free slot


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
    """The load balancer, queue and task slots of one service (see the module docstring)."""

    def __init__(self, config: RequestConfig, load: RequestLoad) -> None:
        self.config = config
        self.load = load
        n = len(load)
        self._arrival = load.arrival.tolist()
        self._service = load.service_time.tolist()
        self.wait = np.full(n, np.nan)             # seconds from arrival to a slot; NaN: not served
        self.task = np.full(n, -1, dtype=np.int32)  # the task (index into task_ids) that served it
        self.dropped_queue_full = 0
        self.dropped_timeout = 0
        self.task_ids: list[str] = []  # every task that ever took requests, in the order it became RUNNING
        self._next = 0                 # the next request to arrive
        self._queue: deque[int] = deque()
        self._completions: list[tuple[float, int, int]] = []  # (finish, slot position, request)
        self._out: list[int] = []      # per position: requests in flight, or _GONE
        self._id_of: list[int] = []    # per position: index into task_ids
        self._position: dict[str, int] = {}
        self._alive = 0
        self._rr = 0
        self._clock = 0.0
        self._busy = 0
        self._busy_integral = 0.0
        self._task_integral = 0.0
        self._arrived = 0
        self._response = 0.0
        self._finished = 0

    # ------------------------------------------------------------------ the task set
    def add_task(self, t: float, task_id: str) -> None:
        """A task became RUNNING at ``t``: it takes requests, starting with any that wait."""
        self.advance(t)
        self._position[task_id] = len(self._out)
        self._out.append(0)
        self._id_of.append(len(self.task_ids))
        self.task_ids.append(task_id)
        self._alive += 1
        self._serve_queue(t, len(self._out) - 1)

    def remove_task(self, t: float, task_id: str) -> None:
        """A task left RUNNING at ``t``: it takes no more requests (those it holds finish)."""
        position = self._position.pop(task_id, None)
        if position is None:
            return
        self.advance(t)
        self._out[position] += _GONE
        self._alive -= 1
        if len(self._out) > 2 * self._alive + 16:
            self._compact()

    @property
    def running(self) -> int:
        return self._alive

    # ------------------------------------------------------------------ the event loop
    def advance(self, until: float) -> None:
        """Play arrivals and completions up to ``until`` (events at ``until`` itself are left for later)."""
        arrival, service = self._arrival, self._service
        completions, out, queue = self._completions, self._out, self._queue
        n = len(arrival)
        cap = self.config.concurrency
        limit = self.config.queue_limit
        timeout = self.config.timeout
        lor = self.config.routing == "least_outstanding_requests"
        i = self._next
        clock, busy = self._clock, self._busy
        busy_integral = self._busy_integral
        wait, task, id_of = self.wait, self.task, self._id_of
        pop, push = heapq.heappop, heapq.heappush
        while True:
            ta = arrival[i] if i < n else math.inf
            tc = completions[0][0] if completions else math.inf
            if ta >= until and tc >= until:
                break
            if tc <= ta:  # a slot frees
                t, position, j = pop(completions)
                busy_integral += busy * (t - clock)
                clock = t
                busy -= 1
                out[position] -= 1
                self._response += t - arrival[j]
                self._finished += 1
                if queue and out[position] < cap:
                    self._busy, self._clock = busy, clock
                    self._serve_queue(t, position)
                    busy = self._busy
                continue
            # a request arrives
            busy_integral += busy * (ta - clock)
            clock = ta
            self._arrived += 1
            if queue and timeout is not None:
                while queue and ta - arrival[queue[0]] > timeout:
                    queue.popleft()
                    self.dropped_timeout += 1
            if not queue and self._alive:
                if lor:
                    least = min(out)
                    position = out.index(least) if least < cap else -1
                else:
                    position = self._round_robin()
                if position >= 0:
                    out[position] += 1
                    busy += 1
                    wait[i] = 0.0
                    task[i] = id_of[position]
                    push(completions, (ta + service[i], position, i))
                    i += 1
                    continue
            if limit is not None and len(queue) >= limit:
                self.dropped_queue_full += 1
            else:
                queue.append(i)
            i += 1
        busy_integral += busy * (until - clock) if until > clock and math.isfinite(until) else 0.0
        self._task_integral += self._alive * (until - self._clock) if math.isfinite(until) else 0.0
        self._next, self._busy, self._busy_integral = i, busy, busy_integral
        if math.isfinite(until):
            self._clock = max(clock, until)

    def _serve_queue(self, t: float, position: int) -> None:
        """Give the slots free on ``position`` at ``t`` to the requests at the head of the queue."""
        queue, out, cap, timeout = self._queue, self._out, self.config.concurrency, self.config.timeout
        arrival = self._arrival
        while queue and out[position] < cap:
            j = queue.popleft()
            if timeout is not None and t - arrival[j] > timeout:
                self.dropped_timeout += 1
                continue
            out[position] += 1
            self._busy += 1
            self.wait[j] = t - arrival[j]
            self.task[j] = self._id_of[position]
            heapq.heappush(self._completions, (t + self._service[j], position, j))

    def _round_robin(self) -> int:
        out, cap, m = self._out, self.config.concurrency, len(self._out)
        for step in range(m):
            position = (self._rr + step) % m
            if out[position] < cap:
                self._rr = position + 1
                return position
        return -1

    def _compact(self) -> None:
        """Forget stopped tasks with nothing in flight, so routing scans only live ones (positions renumbered)."""
        keep = [p for p, n in enumerate(self._out) if n < _GONE or n > _GONE]
        new = {old: k for k, old in enumerate(keep)}
        self._out = [self._out[p] for p in keep]
        self._id_of = [self._id_of[p] for p in keep]
        self._completions = [(t, new[p], j) for t, p, j in self._completions]
        heapq.heapify(self._completions)
        self._position = {tid: new[p] for tid, p in self._position.items()}
        self._rr = 0

    # ------------------------------------------------------------------ metrics
    def period(self, t: float) -> PeriodLoad:
        """Advance to ``t`` and return the figures since the previous call (one metric period)."""
        self.advance(t)
        figures = PeriodLoad(self._arrived, self._busy_integral, self._task_integral, self._response, self._finished)
        self._arrived, self._busy_integral, self._task_integral = 0, 0.0, 0.0
        self._response, self._finished = 0.0, 0
        return figures

    def cpu_percent(self, figures: PeriodLoad) -> float:
        """ECS's service CPUUtilization for a period: the average over RUNNING tasks of the busy fraction of
        their slots times ``busy_cpu_percent``; NaN (no datapoint) without RUNNING task time."""
        if figures.task_seconds <= 0:
            return math.nan
        busy = figures.busy_slot_seconds / (self.config.concurrency * figures.task_seconds)
        return self.config.busy_cpu_percent * min(1.0, busy)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def latencies(self) -> dict[str, np.ndarray]:
        """Per served request: queueing time, time to first token and end-to-end latency (seconds)."""
        served = ~np.isnan(self.wait)
        wait = self.wait[served]
        return {"arrival": self.load.arrival[served], "wait": wait,
                "ttft": wait + self.load.first_token_time[served], "e2e": wait + self.load.service_time[served],
                "output_tokens": self.load.output_tokens[served], "task": self.task[served]}
