"""``python -m benchmarks`` (and ``neuron-sim bench``): run the benchmarks, write results.json and report.md.

``--quick`` is the CI size (well under a minute on 2 cores); the default is the full run committed under
benchmarks/results/. ``--only`` runs one part and merges it into an existing results.json in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from benchmarks import machine, report
from benchmarks.placement_bench import PlacementConfig
from benchmarks.simulation_bench import SimulationConfig
from benchmarks.utilization_bench import UtilizationConfig

PARTS = ("placement", "simulation", "utilization")

FULL = {
    "placement": PlacementConfig(),
    "simulation": SimulationConfig(profile_duration="2h"),  # long enough that end-of-run views are small
    "utilization": UtilizationConfig(),
}
QUICK = {
    "placement": PlacementConfig(
        sizes=(500, 5_000),
        churn=3_000,
        row_path=500,
        reference_max=300,
        reference_budget_s=2.0,
        moto_max=300,
        moto_budget_s=2.0,
        profile_decisions=1_000,
        compiled_churn=20_000,
    ),
    "simulation": SimulationConfig(duration="10m", profile_duration="5m"),
    "utilization": UtilizationConfig(scale=1, seeds=2),
}


def run_suite(
    out: Path, configs: dict[str, Any], *, mode: str, only: str | None = None, log: Any = print
) -> dict[str, Any]:
    """Run the parts in ``configs`` (or just ``only``), merge into ``out``/results.json, render the report."""
    from benchmarks import placement_bench, simulation_bench, utilization_bench

    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    results: dict[str, Any] = {}
    if only is not None and path.exists():
        results = json.loads(path.read_text())
    results["machine"] = machine.describe()
    results["mode"] = mode
    results.setdefault("config", {})
    results.setdefault("wall_s", {})
    parts = [only] if only else [p for p in PARTS if p in configs]
    for part in parts:
        config = configs[part]
        results["config"][part] = asdict(config)
        log(f"{part}:")
        load_before = machine.load_average()
        t0 = time.perf_counter()
        if part == "placement":
            results["placement"], results["placement_profile"] = placement_bench.run(config, log)
            results["floor"] = placement_bench.floor()
            if config.compiled_churn and config.start_times and placement_bench.kernel.available():
                results["placement_start"] = placement_bench.start_times()
                log("  start-up: " + ", ".join(f"{k} {v:.2f}" for k, v in results["placement_start"].items()))
        elif part == "simulation":
            results["simulation"] = simulation_bench.run(config, log)
        else:
            results["utilization"] = utilization_bench.run(config, log)
        results["wall_s"][part] = round(time.perf_counter() - t0, 1)
        results.setdefault("load_average", {})[part] = {
            "before": load_before,
            "after": machine.load_average(),
        }
    results["scaling"] = report.scaling(results.get("placement") or [])
    results["targets"] = report.evaluate(results)
    results["notes"] = report.gap_notes(results)
    path.write_text(json.dumps(results, indent=2, default=float))
    report.render(results, out)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="neuron-sim bench",
        description="Measure placement throughput, simulation speed and chip utilization; write "
        "results.json, report.md and plots.",
    )
    parser.add_argument("--quick", action="store_true", help="CI-sized run (under a minute)")
    parser.add_argument(
        "--out", default="benchmarks/results", help="folder for results.json, report.md, PNGs"
    )
    parser.add_argument(
        "--only", choices=PARTS, help="run one part and merge it into an existing results.json"
    )
    parser.add_argument(
        "--sizes", help="placement cluster sizes, comma-separated (e.g. --only placement --sizes 5000 measures "
        "figures (a) compiled stream and (b) public place() at 5,000 instances alone)"
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    configs = dict(QUICK if args.quick else FULL)
    if args.sizes:
        try:
            sizes = tuple(int(x) for x in args.sizes.split(","))
        except ValueError:
            parser.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
        configs["placement"] = replace(configs["placement"], sizes=sizes,
                                       profile_size=sizes[0] if len(sizes) == 1 else configs["placement"].profile_size)
    run_suite(Path(args.out), configs, mode="quick" if args.quick else "full", only=args.only)
    print(f"wrote {Path(args.out) / 'results.json'} and report.md in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
