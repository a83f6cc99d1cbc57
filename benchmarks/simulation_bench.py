"""Simulation speed: simulated tasks per wall-clock second, against a bare simpy loop, and peak memory.

The scenario (benchmarks/simulation.yaml) is about 1,000,000 RunTask tasks over one day on 5,000
container instances; the per-task table streams to a Parquet file, as ``neuron-sim run`` does for long
runs. After the simulation, the same process replays the very same arrivals and run times (read back
from that table) through a bare simpy loop with no placement and no bookkeeping: one callback per
arrival, one per exit, scheduled the way the engine schedules them. Both rates come from the same run,
per CPU-second of the process (so other load on the machine does not skew them; wall-clock rates are
kept beside them).

Peak memory is the process's peak resident set size when the simulation ends, so the measurement runs in
a fresh interpreter (``python -m benchmarks.simulation_bench``) rather than inside a process that has
already held other benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import simpy

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "benchmarks/simulation.yaml"  # relative to the project root, so results.json names no machine path


@dataclass(frozen=True)
class SimulationConfig:
    duration: str = "1d"  # 1d gives about 1,000,000 tasks
    fleet_scale: float = 1.0  # multiplies every fleet's count (tests shrink the cluster)
    scenario: str = SCENARIO
    profile_duration: str | None = "30m"  # a second, profiled run of this length: own time by area
    compare_plain: bool = True  # after the run ``neuron-sim run`` makes (path auto), the plain path's too


def scenario_path(config: SimulationConfig) -> Path:
    """The benchmark's scenario file: ``config.scenario`` as given, or under the project root if relative."""
    path = Path(config.scenario)
    return path if path.is_absolute() else ROOT / path


AREAS = (
    ("stream lane (compiled loop, kernel calls inside)", "scheduler.sim._lane_impl"),  # a built-in: by its name
    ("placement core", "scheduler/placement/"),
    ("simulation engine", "scheduler/sim/"),
    ("ECS views and query language", "scheduler/ecs/"),
    ("other neuron-sim", "scheduler/"),
    ("simpy", "simpy/"),
    ("numpy", "numpy/"),
    ("pandas / pyarrow", "pandas/"),
    ("pandas / pyarrow", "pyarrow/"),
)


@dataclass(frozen=True)
class BareRun:
    """What the bare simpy loop did: seconds of CPU and wall clock, tasks that arrived and that left."""

    cpu_s: float
    wall_s: float
    arrived: int
    left: int


def bare_simpy(submit: np.ndarray, run_for: np.ndarray, until: float) -> BareRun:
    """A simpy loop with the same arrivals and run times as a simulation, and nothing else."""
    order = np.argsort(submit, kind="stable")
    times = submit[order].tolist()
    runs = run_for[order].tolist()
    env = simpy.Environment()
    count = len(times)
    tally = [0, 0]  # arrived, left

    def leave(_event: simpy.Event) -> None:
        tally[1] += 1

    def arrive(k: int) -> None:
        tally[0] += 1
        if math.isfinite(runs[k]):
            env.timeout(runs[k]).callbacks.append(leave)
        if k + 1 < count:
            nxt = env.timeout(max(0.0, times[k + 1] - env.now))
            nxt.callbacks.append(lambda _e, j=k + 1: arrive(j))

    cpu, start = time.process_time(), time.perf_counter()
    if count:
        first = env.timeout(times[0])
        first.callbacks.append(lambda _e: arrive(0))
    env.run(until=until)
    return BareRun(time.process_time() - cpu, time.perf_counter() - start, tally[0], tally[1])


def _overrides(config: SimulationConfig, duration: str) -> dict[str, object]:
    overrides: dict[str, object] = {"duration": duration}
    if config.fleet_scale != 1.0:
        import yaml

        fleets = yaml.safe_load(scenario_path(config).read_text())["cluster"]["fleets"]
        for k, fleet in enumerate(fleets):
            overrides[f"cluster.fleets.{k}.count"] = max(1, round(fleet["count"] * config.fleet_scale))
    return overrides


def profile_by_area(config: SimulationConfig, duration: str, path: str = "auto") -> dict[str, float]:
    """Share of own time (cProfile) per part of the stack for a run of ``duration`` on engine ``path`` (the
    measured run's: a short run on auto might take the other)."""
    import cProfile
    import pstats

    from scheduler.scenario import load_scenario
    from scheduler.sim.engine import Simulation

    loaded = load_scenario(scenario_path(config), overrides=_overrides(config, duration))
    with tempfile.TemporaryDirectory() as tmp:
        sim = Simulation(loaded, task_sink=Path(tmp) / "tasks.parquet", path=path)
        prof = cProfile.Profile()
        prof.enable()
        sim.run()
        prof.disable()
    shares: dict[str, float] = {}
    for (file, _line, func), (_cc, _nc, own, _cum, _callers) in pstats.Stats(prof).stats.items():  # type: ignore[attr-defined]
        area = next((name for name, part in AREAS if part in f"{file}:{func}"), "Python runtime and other")
        shares[area] = shares.get(area, 0.0) + own
    total = sum(shares.values()) or 1.0
    return {k: v / total for k, v in sorted(shares.items(), key=lambda kv: -kv[1])}


def peak_rss_mib(status: Path = Path("/proc/self/status")) -> float:
    """This process's own peak resident memory, MiB: ``VmHWM`` of its address space where Linux gives it.

    Not ``getrusage``'s ``ru_maxrss`` there: in a process started by fork and exec, Linux keeps in it the
    peak of the address space the exec replaced, a copy of the parent's. A benchmark run that had just held
    a 50,000-instance cluster in the parent then read 1.6 GiB for a simulation that alone peaks under 0.5 GiB.
    """
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / (1024 if sys.platform == "darwin" else 1)


def measure(config: SimulationConfig) -> dict[str, Any]:
    """Run the scenario in this process and the bare loop after it; the figures as a dict."""
    import pyarrow.parquet as pq

    from scheduler.scenario import load_scenario
    from scheduler.sim.engine import Simulation

    t0 = time.perf_counter()
    loaded = load_scenario(scenario_path(config), overrides=_overrides(config, config.duration))
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        table = Path(tmp) / "tasks.parquet"
        sim = Simulation(loaded, task_sink=table)  # the path ``neuron-sim run`` takes (auto)
        c0, t0 = time.process_time(), time.perf_counter()
        results = sim.run()
        sim_cpu, sim_s = time.process_time() - c0, time.perf_counter() - t0
        peak_mib = peak_rss_mib()
        cols = pq.read_table(table, columns=["submit", "start", "end"]).to_pandas()
        plain_cpu = None
        if config.compare_plain and results.path != "plain":
            c0 = time.process_time()
            Simulation(loaded, task_sink=Path(tmp) / "plain.parquet", path="plain").run()
            plain_cpu = time.process_time() - c0
    summary = results.summary
    until = float(summary.sim_seconds)
    submit = cols["submit"].to_numpy(float)
    run_for = (cols["end"] - cols["start"]).to_numpy(float, copy=True)
    run_for[np.isnan(cols["start"].to_numpy(float))] = 0.0  # never placed: arrives, leaves at once
    run_for[np.isnan(cols["end"].to_numpy(float))] = math.inf  # still running at the end
    tasks = int(summary.tasks.submitted)
    bare = bare_simpy(submit, run_for, until)
    areas = profile_by_area(config, config.profile_duration, results.path) if config.profile_duration else {}
    return {
        "tasks": tasks,
        "tasks_placed": int(summary.tasks.placed),
        "instances": len(sim.state),
        "sim_seconds": until,
        "duration": config.duration,
        "load_s": load_s,
        "wall_s": sim_s,
        "cpu_s": sim_cpu,
        "path": results.path,
        "path_note": results.path_note,
        "sim_tasks_per_s": tasks / sim_cpu,
        "plain_tasks_per_s": tasks / plain_cpu if plain_cpu else None,
        "sim_tasks_per_wall_s": tasks / sim_s,
        "bare_simpy_wall_s": bare.wall_s,
        "bare_simpy_cpu_s": bare.cpu_s,
        "bare_simpy_tasks_per_s": bare.arrived / bare.cpu_s,
        "bare_simpy_tasks_per_wall_s": bare.arrived / bare.wall_s,
        "peak_rss_mib": peak_mib,
        "tasks_failed": summary.tasks.failed,
        "profile_duration": config.profile_duration,
        "profile_by_area": areas,
    }


def run(config: SimulationConfig, log: Any = print) -> dict[str, Any]:
    """``measure`` in a fresh interpreter (for an honest peak memory); returns its figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "simulation.json"
        cmd = [
            sys.executable,
            "-m",
            "benchmarks.simulation_bench",
            "--out",
            str(out),
            "--config",
            json.dumps(asdict(config)),
        ]
        done = subprocess.run(
            cmd, capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parent.parent
        )
        if done.returncode != 0:
            raise RuntimeError(f"the simulation benchmark failed:\n{done.stderr[-4000:]}")
        figures = json.loads(out.read_text())
    log(
        f"  simulation: {figures['tasks']:,} tasks in {figures['wall_s']:.1f} s = "
        f"{figures['sim_tasks_per_s']:,.0f} tasks/s (bare simpy {figures['bare_simpy_tasks_per_s']:,.0f}/s), "
        f"peak {figures['peak_rss_mib']:,.0f} MiB"
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--config", default="{}", help="SimulationConfig fields as JSON")
    args = parser.parse_args(argv)
    figures = measure(SimulationConfig(**json.loads(args.config)))
    Path(args.out).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
