"""The plan search's effort: simulations used against the full grid's, on 2-D problems of 300+ points.

    python -m benchmarks.plan_bench [--check] [--out DIR]

Each problem is a small scenario (Poisson jobs holding one Neuron chip, on two fixed fleets) searched
over two fleet counts (17 x 18 = 306 points) at 3 replications. ``--check`` also evaluates every grid
point with the same rule and reports whether the plan's answer is the grid's cheapest passing point
(slow: every point is simulated). Writes ``plan_bench.json`` into ``--out`` (default results/bench-plan).
Target: at most 10% of the grid's simulations.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARY = ["cluster.fleets.0.count=0..16", "cluster.fleets.1.count=0..17"]
PROBLEMS = [("12/h", 3, "wait_p99<10m"), ("20/h", 8, "wait_p99<5m"), ("30/h", 5, "wait_p95<15m,waiting==0")]


def scenario(rate: str, seed: int) -> dict:
    job = json.loads((ROOT / "scenarios" / "taskdefs" / "neuron-1chip-any.json").read_text())
    return {"name": "plan-bench", "seed": seed, "duration": "3h", "sample_interval": "30m",
            "task_definitions": {"job": job},
            "cluster": {"fleets": [{"instance_type": "trn1.2xlarge", "count": 1},
                                   {"instance_type": "inf2.8xlarge", "count": 1}]},
            "workloads": [{"name": "jobs", "kind": "run_task", "task_definition": "job",
                           "arrivals": {"type": "poisson", "rate": rate},
                           "duration": {"type": "exponential", "mean": "20m"}, "on_no_capacity": "wait"}]}


def main(argv: list[str] | None = None) -> int:
    from scheduler.plan import plan

    parser = argparse.ArgumentParser(prog="python -m benchmarks.plan_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="also evaluate the whole grid (default: no)")
    parser.add_argument("--out", type=Path, default=Path("results") / "bench-plan",
                        help="(default: results/bench-plan)")
    args = parser.parse_args(argv)
    rows = []
    for rate, seed, target in PROBLEMS:
        start = time.perf_counter()
        found = plan(scenario(rate, seed), VARY, target, replications=3, workers=1,
                     source=ROOT / "scenarios" / "plan-bench.yaml")
        row = {"rate": rate, "seed": seed, "target": target, "grid_points": found.grid_points,
               "grid_simulations": found.grid_simulations, "simulations": found.simulations,
               "share": round(found.simulations / found.grid_simulations, 4),
               "answer": found.best.label if found.best else None, "seconds": round(time.perf_counter() - start, 1)}
        if args.check:
            grid = plan(scenario(rate, seed), VARY, target, replications=3, workers=1, method="grid",
                        source=ROOT / "scenarios" / "plan-bench.yaml")
            cheapest = min((p.cost_usd[0] for p in grid.points if p.meets), default=None)
            row["grid_answer_cost_usd"] = cheapest
            row["same_answer"] = (found.best is None and cheapest is None) or (
                found.best is not None and cheapest is not None and abs(found.best.cost_usd[0] - cheapest) < 1e-6)
        rows.append(row)
        print(json.dumps(row))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan_bench.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
