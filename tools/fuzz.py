"""The long fuzzing campaign: run the targets of tests/fuzz_strategies.py for many examples each.

    python tools/fuzz.py --examples 100000 [--target scenario|taskdef|cql|cli|all] [--seed 0]

``scenario`` runs the scenario-file and scenario-mapping targets, ``taskdef`` the taskdef-file and
taskdef-document targets; a target's own name (``scenario-file``, ...) runs just that one. ``--examples`` is
per target. Each example runs under a wall-clock watchdog (a hang is a failure), with a hard backstop that
dumps every thread's stack and exits if even the watchdog cannot interrupt. The run prints, per target,
the examples run, how many inputs were accepted and refused, the seconds taken, and any failure with the
input that reproduces it (hypothesis shrinks it first). Exit code 1 when any target failed.
See docs/fuzzing.md.
"""

from __future__ import annotations

import argparse
import collections
import faulthandler
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import hypothesis  # noqa: E402
from fuzz_strategies import TARGETS, FuzzFailure, Hang, Target, describe, watchdog  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

GROUPS = {
    "scenario": ("scenario-file", "scenario-mapping"),
    "taskdef": ("taskdef-file", "taskdef-document"),
    "cql": ("cql",),
    "cli": ("cli",),
    "all": tuple(TARGETS),
}
HARD_BACKSTOP = 120.0  # seconds; only reached when the watchdog's signal cannot get through


@dataclass
class TargetRun:
    """What one target's campaign did."""

    target: str
    examples: int = 0
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: float = 0.0
    slowest: float = 0.0
    slowest_input: str = ""
    failure: str | None = None
    failing_input: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "examples": self.examples, "outcomes": dict(self.outcomes),
                "seconds": round(self.seconds, 1), "slowest_example_seconds": round(self.slowest, 3),
                "slowest_input": self.slowest_input,
                "failure": self.failure, "failing_input": self.failing_input}


def run_target(target: Target, examples: int, base_seed: int, chunk: int, folder: Path,
               current: Path) -> TargetRun:
    """Run ``examples`` examples of one target in chunks (fresh hypothesis runs with their own seeds)."""
    run = TargetRun(target.name)
    strategy = target.strategy()
    last_failing: list[Any] = []

    def body(case: Any) -> None:
        current.write_text(f"{target.name}\n{describe(case)}\n", encoding="utf-8", errors="backslashreplace")
        faulthandler.dump_traceback_later(HARD_BACKSTOP, exit=True)
        started = time.perf_counter()
        try:
            with watchdog(target.seconds):
                outcome = target.run(case, folder)
        except Hang as exc:
            last_failing[:] = [case]
            raise FuzzFailure(f"hang: {exc}") from None
        except BaseException:
            last_failing[:] = [case]
            raise
        finally:
            faulthandler.cancel_dump_traceback_later()
            took = time.perf_counter() - started
            if took > run.slowest:
                run.slowest, run.slowest_input = took, describe(case, 500)
        run.examples += 1
        run.outcomes[outcome] += 1

    started = time.perf_counter()
    done = 0
    while done < examples and run.failure is None:
        count = min(chunk, examples - done)
        test = settings(max_examples=count, database=None, deadline=None, derandomize=False,
                        suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink),
                        report_multiple_bugs=False, print_blob=True)(
            hypothesis_seed(base_seed * 1_000_003 + done)(given(strategy)(body)))
        before = run.examples
        try:
            test()
        except Exception as exc:  # the failure hypothesis shrank; body saw its input last
            run.failure = describe_exception(exc)
            run.failing_input = describe(last_failing[0], 20_000) if last_failing else None
        ran = run.examples - before
        done += max(ran, 1) if run.failure is None else ran
        print(f"  {target.name}: {run.examples:,} examples, {time.perf_counter() - started:,.0f} s",
              file=sys.stderr, flush=True)
    run.seconds = time.perf_counter() - started
    return run


def describe_exception(exc: BaseException, limit: int = 3000) -> str:
    """The exception's type and message, bounded, and where in neuron-sim it was raised."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text):,} characters)"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "/scheduler/" in f.filename]
    if frames:
        text += f"\n  raised at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}"
    return text


def machine() -> dict[str, str]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"platform": platform.platform(), "cpu": model, "cpus": str(os.cpu_count()),
            "python": platform.python_version(), "hypothesis": hypothesis.__version__, "commit": commit}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100_000, help="examples per target (default 100,000)")
    parser.add_argument("--target", default="all", choices=sorted({*GROUPS, *TARGETS}))
    parser.add_argument("--seed", type=int, default=0, help="base seed; the same seed draws the same inputs")
    parser.add_argument("--chunk", type=int, default=2_000,
                        help="examples per hypothesis run (default 2,000)")
    parser.add_argument("--summary", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args(argv)

    names = GROUPS.get(args.target, (args.target,))
    info = machine()
    print(f"fuzzing {', '.join(names)}: {args.examples:,} examples each, seed {args.seed}")
    print("machine: " + "; ".join(f"{k} {v}" for k, v in info.items()), flush=True)
    runs = []
    with tempfile.TemporaryDirectory(prefix="neuron-sim-fuzz-") as scratch:
        current = Path(scratch) / "current-case.txt"
        for name in names:
            run = run_target(TARGETS[name], args.examples, args.seed, args.chunk, Path(scratch) / name,
                             current)
            runs.append(run)
            outcomes = ", ".join(f"{n:,} {k}" for k, n in sorted(run.outcomes.items()))
            verdict = "FAILED" if run.failure else "ok"
            print(f"{name}: {verdict}: {run.examples:,} examples ({outcomes}) in {run.seconds:,.1f} s, "
                  f"slowest example {run.slowest:.2f} s", flush=True)
            if run.failure:
                print(f"  failure: {run.failure}\n  input: {run.failing_input}", flush=True)
    total = sum(r.examples for r in runs)
    failed = [r.target for r in runs if r.failure]
    print(f"total: {total:,} examples in {sum(r.seconds for r in runs):,.1f} s; "
          + (f"FAILED: {', '.join(failed)}" if failed else "no failures"))
    if args.summary:
        args.summary.write_text(json.dumps({"machine": info, "seed": args.seed,
                                            "examples_per_target": args.examples,
                                            "runs": [r.as_dict() for r in runs]}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
