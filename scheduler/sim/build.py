"""Building a run's workloads from its plan: the placement request of each workload (and of each capacity
provider in its strategy), RunTask calls put on the clock as they arrive (generated, or replayed from a
trace), and services with their desired counts over time, deployments, requests and auto scaling.

Every workload draws from its own seeded generators (``[seed, 1, k]`` for workload ``k``'s arrivals and
start-up times, ``[seed, 1, k, 1]`` for its task durations; ``[seed, 3, k, j]`` for its deployment ``j``;
``[seed, 4, k]`` for its requests), so adding one workload leaves the others' draws as they were. Durations
have a generator of their own so that arrival times can be drawn ahead in blocks (the stream lane,
``scheduler.sim.lane``) without changing which duration each task gets.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from scheduler.ecs.capacity import StrategySplitter
from scheduler.ecs.taskspec import Constraint, TaskSpec
from scheduler.sim import deployments, service_load
from scheduler.sim.autoscaling import clamp
from scheduler.sim.plan import RunTaskWorkload, ServiceWorkload, TraceArrivals, Workload
from scheduler.sim.startup import startup_sampler
from scheduler.sim.tasks import Request, Service
from scheduler.sim.workloads import arrival_times, desired_count_steps, duration_sampler, split_steps


class WorkloadBuilder:
    """Puts the plan's workloads on the clock; builds requests for later deployments too."""

    def __init__(self, sim: Any) -> None:
        """``sim`` is the engine (scheduler.sim.engine.Simulation), built far enough to hand over its parts."""
        self.sim = sim
        self.at = sim.at
        self.plan = sim.plan
        self.seed = sim.seed
        self.specs = sim.specs
        self.providers = sim.providers
        self.services = sim.service_scheduler

    def request(self, workload: Workload, spec: TaskSpec, rng: np.random.Generator, *,
                 service: Service | None = None, device_set: bool = False,
                 durations: np.random.Generator | None = None) -> Request:
        """The placement request of ``workload``'s tasks of ``spec``: start-up times drawn from ``rng``, task
        durations from ``durations`` (default ``rng``: a deployment's generator draws both)."""
        constraints = workload.constraints
        if device_set and Constraint("distinctInstance") not in constraints:
            # one block's tasks (one group) never share an instance: each instance has the block's chips once
            constraints = (*constraints, Constraint("distinctInstance"))
        if isinstance(workload, ServiceWorkload):
            duration_model, on_no_capacity = workload.task_duration, "fail"  # a service always waits
        else:
            duration_model, on_no_capacity = workload.duration, workload.on_no_capacity
        launch = workload.launch
        request = Request(workload=workload.name, spec=spec, group=self._group(workload, spec, service),
                          constraints=constraints, strategies=workload.strategies,
                          launch_type=launch.launch_type, on_no_capacity=on_no_capacity,
                          duration=duration_sampler(duration_model, rng if durations is None else durations),
                          service=service,
                          startup=startup_sampler(workload.startup, rng))
        if launch.launch_type is None and launch.strategy:
            request.splitter = StrategySplitter(list(launch.strategy))
            for item in launch.strategy:
                provider = self.providers[item.capacity_provider]
                request.variants[provider.name] = Request(
                    workload=request.workload, spec=spec, group=request.group, constraints=request.constraints,
                    strategies=request.strategies, launch_type=provider.launch_type,
                    capacity_providers=(provider.name,), on_no_capacity=request.on_no_capacity,
                    duration=request.duration, service=service, provider=provider.name,
                    startup=request.startup)
        return request

    def _group(self, workload: Workload, spec: TaskSpec, service: Service | None = None) -> str:
        if service is not None:
            return f"service:{service.name}"
        if isinstance(workload, ServiceWorkload):
            return f"service:{workload.name}"
        return workload.group or f"family:{spec.family}"

    def build(self) -> None:
        specs = self.specs
        for k, w in enumerate(self.plan.workloads):
            rng = np.random.default_rng([self.seed, 1, k])
            durations = np.random.default_rng([self.seed, 1, k, 1])
            # device sets: one task definition per device block (one ECS service per block for a service)
            start = w.start
            if isinstance(w, ServiceWorkload):
                self._service(w, k, rng, start, durations)
                continue
            requests = [self.request(w, specs[b.task_definition], rng, device_set=b.label is not None,
                                     durations=durations)
                        for b in w.blocks]
            stop = min(self.sim.duration, w.stop) if w.stop is not None else self.sim.duration
            if isinstance(w.arrivals, TraceArrivals):
                self._trace(w, w.arrivals, requests[0], rng, durations)
                continue
            times = arrival_times(w.arrivals, rng, start=start, stop=stop)
            if self.sim.lane is not None and w.name in self.sim.lane.runs:  # the stream lane takes the calls
                self.sim.lane.add(requests[0], times, w.max_calls, w.count)
                continue
            self._next_call(times, requests, w.count, w.max_calls, 0)

    def _service(self, w: ServiceWorkload, k: int, rng: np.random.Generator, start: float,
                 durations: np.random.Generator) -> None:
        """One Service per device block (one in all without device sets), the desired count split over them."""
        steps = [] if w.daemon else desired_count_steps(w.desired, start=start, stop=self.sim.duration)
        blocks = w.blocks
        for index, block in enumerate(blocks):
            label = block.label
            svc = Service(w.name if label is None else f"{w.name}-{label}", None, daemon=w.daemon, workload=w.name)
            svc.request = self.request(w, self.specs[block.task_definition], rng, service=svc,
                                        device_set=label is not None, durations=durations)
            deployments.configure(svc, w)
            self.services.services.append(svc)
            if label is None:  # validation refuses deployments with device sets
                for j, step in enumerate(w.deployments):
                    self.at(start + step.at, self._deploy, svc, w, k, step.task_definition, j)
            if svc.daemon:
                self.at(start, self.services.start_daemon, svc)
                continue
            if len(blocks) == 1 and (w.requests is not None or w.auto_scaling is not None):
                steps = self._service_load(w, k, svc, steps, start)
            for t, count in split_steps(steps, len(blocks), index):
                self.at(t, self.services.set_desired, svc, count)

    def _service_load(self, w: ServiceWorkload, k: int, svc: Service, steps: list[tuple[float, int]],
                            start: float) -> list[tuple[float, int]]:
        """Requests and Service Auto Scaling for ``svc`` (scheduler.sim.service_load): a tick every metric
        period from ``start``; returns the desired-count steps, brought into the scalable target's range."""
        load = service_load.build(w, np.random.default_rng([self.seed, 4, k]), start=start, stop=self.sim.duration)
        self.services.loads[svc.name] = load
        if load.scaler is not None:
            steps = [(t, clamp(n, load.scaler.config)) for t, n in steps]
        self.at(start + service_load.PERIOD_S, self.services.tick, svc, load)
        return steps

    def _next_call(self, times: Iterator[float], requests: list[Request], count: int, max_calls: int | None,
                            made: int) -> None:
        """The next RunTask call; with device sets, calls go to the blocks' task definitions in turn."""
        if max_calls is not None and made >= max_calls:
            return
        t = next(times, None)
        if t is None:
            return

        def call() -> None:
            self.sim.lifecycle.run_task(requests[made % len(requests)], count)
            self._next_call(times, requests, count, max_calls, made + 1)

        self.at(t, call)

    def _trace(self, workload: RunTaskWorkload, arrivals: TraceArrivals, request: Request,
                        rng: np.random.Generator, durations: np.random.Generator) -> None:
        frame = arrivals.table
        per_def: dict[str, Request] = {}
        for row in frame.itertuples(index=False):
            req = request
            name = row.task_definition
            if isinstance(name, str) and name:
                req = per_def.get(name) or per_def.setdefault(
                    name, self.request(workload, self.specs[name], rng, durations=durations))
            dur = row.duration
            fixed = float(dur) if dur is not None and not (isinstance(dur, float) and math.isnan(dur)) else None
            self.at(float(row.submit), self._submit_one, req, fixed)

    def _deploy(self, svc: Service, workload: ServiceWorkload, k: int, name: str, number: int) -> None:
        """UpdateService to the task definition ``name``: a rolling deployment (scheduler.sim.deployments)."""
        spec = self.specs[name]
        rng = np.random.default_rng([self.seed, 3, k, number])
        request = self.request(workload, spec, rng, service=svc)
        deployments.deploy(self.sim, svc, request, f"{spec.family}:{spec.revision or 1}")

    def _submit_one(self, request: Request, run_for: float | None) -> None:
        self.sim.submit(request, run_for=run_for)
