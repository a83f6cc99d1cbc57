"""``python -m benchmarks`` (and ``neuron-sim bench``): run the benchmarks, write results.json and report.md.

``--quick`` is the CI size (well under a minute on 2 cores); the default is the full run. Both write to
results/bench/ (ignored by git) unless ``--out`` says otherwise; the committed full run lives in
benchmarks/results/, and only a full run may write there. ``--only`` runs one part and merges it into an
existing results.json in ``--out``. The parts need the ``bench`` extra (scipy, moto) only when they run:
``--help`` works after a plain install, and a missing extra is one line with the install command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from benchmarks import machine
from scheduler.errors import install_command

PARTS = ("placement", "simulation", "utilization")
DEFAULT_OUT = Path("results") / "bench"   # ignored by git
COMMITTED = Path(__file__).resolve().parent / "results"  # the committed full run
# optional modules each part imports, and the extra that installs them
NEEDS = {"placement": ("moto",), "simulation": (), "utilization": ("scipy",)}
EXTRA = "bench"


def full_configs(parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """The committed full run's configuration of each of ``parts`` (only their modules are imported)."""
    made: dict[str, Any] = {}
    if "placement" in parts:
        from benchmarks.placement_bench import PlacementConfig

        made["placement"] = PlacementConfig()
    if "simulation" in parts:
        from benchmarks.simulation_bench import SimulationConfig

        made["simulation"] = SimulationConfig(profile_duration="2h")  # long enough that end-of-run views are small
    if "utilization" in parts:
        from benchmarks.utilization_bench import UtilizationConfig

        made["utilization"] = UtilizationConfig()
    return made


def quick_configs(parts: tuple[str, ...] = PARTS) -> dict[str, Any]:
    """The CI-sized configuration of each of ``parts`` (only their modules are imported)."""
    made: dict[str, Any] = {}
    if "placement" in parts:
        from benchmarks.placement_bench import PlacementConfig

        made["placement"] = PlacementConfig(
            sizes=(500, 5_000),
            churn=3_000,
            row_path=500,
            reference_max=300,
            reference_budget_s=2.0,
            moto_max=300,
            moto_budget_s=2.0,
            profile_decisions=1_000,
            compiled_churn=20_000,
            repeats=2,
            interleaved_rounds=2,
        )
    if "simulation" in parts:
        from benchmarks.simulation_bench import SimulationConfig

        made["simulation"] = SimulationConfig(duration="10m", profile_duration="5m")
    if "utilization" in parts:
        from benchmarks.utilization_bench import UtilizationConfig

        made["utilization"] = UtilizationConfig(scale=1, seeds=2)
    return made


def run_suite(
    out: Path, configs: dict[str, Any], *, mode: str, only: str | None = None, log: Any = print
) -> dict[str, Any]:
    """Run the parts in ``configs`` (or just ``only``), merge into ``out``/results.json, render the report."""
    from benchmarks import report

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
            from benchmarks import placement_bench

            results["placement"], results["placement_profile"] = placement_bench.run(config, log)
            results["floor"] = placement_bench.floor()
            if config.compiled_churn and config.start_times and placement_bench.kernel.available():
                results["placement_start"] = placement_bench.start_times()
                log("  start-up: " + ", ".join(f"{k} {v:.2f}" for k, v in results["placement_start"].items()))
        elif part == "simulation":
            from benchmarks import simulation_bench

            results["simulation"] = simulation_bench.run(config, log)
        else:
            from benchmarks import utilization_bench

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


def missing_modules(parts: list[str]) -> list[str]:
    """The optional modules the given parts need that are not installed."""
    from importlib.util import find_spec

    return sorted({m for part in parts for m in NEEDS[part] if find_spec(m) is None})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuron-sim bench",
        description="Measure placement throughput, simulation speed and chip utilization; write "
        f"results.json, report.md and plots into {DEFAULT_OUT}/ (ignored by git) unless --out says otherwise. "
        f"The placement and utilization parts need the optional dependencies: {install_command(EXTRA)}.",
    )
    parser.add_argument("--quick", action="store_true",
                        help="CI-sized run, under a minute (default: the full run, which takes much longer)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT,
        help=f"folder for results.json, report.md and PNGs (default: {DEFAULT_OUT}/); only a full run may "
        "write to the committed benchmarks/results/",
    )
    parser.add_argument(
        "--only", choices=PARTS,
        help="run one part and merge it into an existing results.json in --out (default: every part)",
    )
    parser.add_argument(
        "--sizes", type=cluster_sizes,
        help="placement cluster sizes, comma-separated, e.g. --only placement --sizes 5000 measures figures (a) "
        "compiled stream and (b) public place() at 5,000 instances alone (default: 500,5000,50000; 500,5000 with "
        "--quick)"
    )
    return parser


def cluster_sizes(text: str) -> tuple[int, ...]:
    """``--sizes``: distinct instance counts of at least one, comma-separated."""
    try:
        sizes = tuple(int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"a cluster needs at least one instance, got {text!r}")
    if len(set(sizes)) != len(sizes):
        raise argparse.ArgumentTypeError(f"each size once, got {text!r}")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.quick and out.resolve() == COMMITTED.resolve():
        print(f"neuron-sim bench: --out {out}: a quick run does not replace the committed full run in "
              f"benchmarks/results/; leave --out out (default {DEFAULT_OUT}/) or name another folder", file=sys.stderr)
        return 2
    parts = [args.only] if args.only else list(PARTS)
    missing = missing_modules(parts)
    if missing:
        print(f"neuron-sim bench: needs {' and '.join(missing)}: {install_command(EXTRA)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    configs = quick_configs(tuple(parts)) if args.quick else full_configs(tuple(parts))
    if args.sizes and "placement" in configs:
        sizes = args.sizes
        configs["placement"] = replace(configs["placement"], sizes=sizes,
                                       profile_size=sizes[0] if len(sizes) == 1 else configs["placement"].profile_size)
    run_suite(out, configs, mode="quick" if args.quick else "full", only=args.only)
    print(f"wrote {out / 'results.json'} and report.md in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
