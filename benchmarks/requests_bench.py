"""Request simulation speed: requests simulated per second of wall-clock time for one day of a
100-request/s LLM service (issue: "a day of a 100-request/s service simulates in seconds").

Two measurements, each in this process:

- ``loop``: the request loop alone (:class:`scheduler.sim.requests.ServiceRequests`), 8.64 million
  Poisson requests over a fixed set of RUNNING tasks, advanced once per one-minute metric period as the
  engine does; the request load is drawn before the clock starts.
- ``run``: a whole ``Simulation`` of a scenario with that service (a fixed fleet of inf2.xlarge, Service
  Auto Scaling on CPU), from loading to results: drawing the requests, the engine, the summary.

``python -m benchmarks.requests_bench [--hours 24] [--rate 100]`` prints the figures as JSON. The
first call compiles the loop with numba when it is installed (cached on disk afterwards); the warm-up
outside the clock takes that compile out of the figures.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from scheduler.scenario import scenario_from_mapping
from scheduler.sim import request_loop
from scheduler.sim.engine import Simulation
from scheduler.sim.requests import RequestConfig, RequestLoad, ServiceRequests, ServiceTime

TASKDEF = Path(__file__).resolve().parents[1] / "scenarios" / "taskdefs" / "inf2-chip-0.json"


def _load(rate: float, seconds: float, seed: int) -> RequestLoad:
    rng = np.random.default_rng(seed)
    arrival = np.cumsum(rng.exponential(1 / rate, int(rate * seconds * 1.05) + 10))
    arrival = arrival[arrival < seconds]
    inputs = np.maximum(1, np.rint(rng.exponential(500, len(arrival)))).astype(np.int64)
    outputs = np.maximum(1, np.rint(rng.exponential(100, len(arrival)))).astype(np.int64)
    first, total = ServiceTime("llm", 0.05, 0.0004, 0.03).draw(inputs, outputs, rng)
    return RequestLoad(arrival, inputs, outputs, first, total)


def loop_rate(rate: float, seconds: float, tasks: int = 50, seed: int = 1) -> dict[str, Any]:
    _warm_up()
    load = _load(rate, seconds, seed)
    model = ServiceRequests(RequestConfig(concurrency=8), load)
    start, cpu = time.perf_counter(), time.process_time()
    for k in range(tasks):
        model.add_task(0.0, f"task-{k}")
    t = 60.0
    while t <= seconds:
        model.period(t)
        t += 60.0
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"requests": len(load), "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "requests_per_wall_second": round(len(load) / wall), "requests_per_cpu_second": round(len(load) / cpu)}


def run_rate(rate: float, seconds: float, tmp: Path) -> dict[str, Any]:
    _warm_up()
    (tmp / "td.json").write_text(TASKDEF.read_text())
    data = {
        "name": "requests-bench", "seed": 1, "duration": seconds, "sample_interval": "5m",
        "task_definitions": {"td": "td.json"},
        "cluster": {"name": "bench", "fleets": [{"instance_type": "inf2.xlarge", "count": 80}]},
        "workloads": [{
            "name": "chat", "kind": "service", "task_definition": "td", "desired_count": 40,
            "requests": {"arrivals": {"type": "poisson", "rate": rate},
                         "sizes": {"input_tokens": 500, "output_tokens": 100, "distribution": "exponential"},
                         "concurrency": 8},
            "auto_scaling": {"min_capacity": 10, "max_capacity": 80, "target_tracking": [
                {"metric": "ECSServiceAverageCPUUtilization", "target": 60}]},
        }],
    }
    start, cpu = time.perf_counter(), time.process_time()
    result = Simulation(scenario_from_mapping(data, path=tmp / "bench.yaml")).run()
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    arrived = result.summary.workloads["chat"].requests.arrived
    return {"requests": arrived, "wall_seconds": round(wall, 3), "cpu_seconds": round(cpu, 3),
            "requests_per_wall_second": round(arrived / wall), "requests_per_cpu_second": round(arrived / cpu),
            "latency_p99_s": result.summary.workloads["chat"].requests.latency.p99_s}


def _warm_up() -> None:
    small = _load(10.0, 60.0, 0)
    model = ServiceRequests(RequestConfig(), small)
    model.add_task(0.0, "warm")
    model.period(60.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (default: 24)")
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second (default: 100)")
    args = parser.parse_args(argv)
    import tempfile

    seconds = args.hours * 3600
    with tempfile.TemporaryDirectory() as tmp:
        figures = {"compiled": request_loop.compiled(), "rate": args.rate, "hours": args.hours,
                   "loop": loop_rate(args.rate, seconds), "run": run_rate(args.rate, seconds, Path(tmp))}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
