"""Placement throughput: decisions per second and per-decision latency, core against reference and moto.

For each cluster size: build the stated mix (benchmarks.mix), fill it with the task stream until more than
half of the last 500 decisions fail (saturation), then run steady churn: release a random running task
(only while as many run as at saturation, so failed placements do not drain the cluster), place the next
task of the stream. Releases are not counted as decisions. From the moment of saturation:

- the core decides the churn through its class index (its normal path), then a stretch more through its
  per-row path (the algorithm before the class index), for a before/after in the same run;
- the plain reference (benchmarks.reference) replays the same churn from a copy of the saturated state,
  as long as its time budget allows, and every one of its decisions is compared with the core's;
- moto's backend gets a copy of the saturated CPU and memory figures and runs the CPU-only tasks of the
  same churn (its window of running tasks is kept short so the cluster stays saturated).

The headline ``*_per_s`` figures are the churn phase (steady state) for all three. Two figures per size:

- (a) ``compiled_*``: the same fill and churn as a stream of place/release decided in compiled code
  (``scheduler.placement.kernel``), from the same seeds, so its decisions are compared one by one with
  the core's; it runs a longer churn (``compiled_churn``) for the rate. Compiled code has no clock per
  decision: its p50/p99 are over chunks of ``COMPILED_CHUNK`` decisions (chunk time / chunk size);
- (b) ``core_*``: one public ``placer.place(...)`` call at a time from Python, deciding in compiled code
  (``Placer(compiled=True)``, when numba is installed); ``python_path_*`` is the same API with
  ``compiled=False`` (the readable reference path) over a stretch of the same churn. Each sample is the
  call as a user writes it between two reads of the wall clock (``_timed_place``; ``time.perf_counter_ns``
  is read without a system call, and one timed call of nothing, ``core_timer_us``, costs well under a
  microsecond); ``core_net_*`` are the figures with that taken off each sample.

Replays (``benchmarks.replays``, which says why): (a) and (b) replay the same churn ``repeats`` times, each
from the saturated state (``Run.fork``: a deep copy of the cluster, its running tasks and the tie-break
generator, with a placer of its own; for (a) the stream's arrays copied back in place), check that every
replay makes exactly the same decisions, and report the fastest replay as the figure with the median replay
beside it (``*_median_per_s``). The first tenth of each (b) replay is not timed: the copy's placer meets each
request there for the first time (as the fill had done before the churn), so the timed part is steady churn.
The core's churns run with the objects built so far frozen out of Python's cyclic garbage collector
(``replays.frozen``).

Scaling: the cost per decision at the largest size against the smallest. The 50,000-instance churns are
bound by memory and slow much more under the host's load than the 500-instance ones, so for each figure
((a), (b) and (b) on the user mix) the two sizes' churns are replayed in turn, chunk by chunk
(``replays.interleaved``, ``interleaved_rounds`` rounds), and the median round's ratio is the figure; the
fastest replays' ratio stays beside it.

``start_times`` measures what the compiled path adds to a process's start (one ``Placer(compiled=True)``
decision): cold (an empty cache, so every kernel function compiles) and warm (loaded from numba's
on-disk cache).
"""

from __future__ import annotations

import copy
import cProfile
import io
import os
import pstats
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.mix import CHAIN, Draw, build_cluster, draws, task_kinds
from benchmarks.moto_peer import MotoCluster
from benchmarks.reference import Decision, ReferencePlacer, core_decision
from benchmarks.replays import WARMUP_SHARE, Replay, chunk_sums, fastest, frozen, interleaved, replayed
from scheduler.placement import kernel
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure
from scheduler.placement.stream import CompiledStream

SATURATION_WINDOW = 500
SATURATION_FAIL_SHARE = 0.5
MOTO_WINDOW = 100  # moto tasks kept running during its churn (oldest stopped first)
COMPILED_CHUNK = 1_000  # decisions per timed call of the compiled churn
CORE_CHUNK = 1_000  # decisions per chunk of (b)'s replays when run in turn with another size's


@dataclass(frozen=True)
class PlacementConfig:
    sizes: tuple[int, ...] = (500, 5_000, 50_000)
    churn: int = 20_000
    row_path: int = 2_000  # churn decisions on the per-row path (before/after)
    reference_max: int = 2_000
    reference_budget_s: float = 10.0
    moto_max: int = 2_000
    moto_budget_s: float = 10.0
    profile_size: int | None = 5_000
    profile_decisions: int = 5_000
    compiled_churn: int = 200_000  # churn decisions of figure (a); 0 skips the compiled path
    start_times: bool = True  # measure the kernel's cold and warm start in fresh processes
    user_mix: bool = True  # (b) also on README's user mix (benchmarks.api_place), the "done when" mix
    repeats: int = 5  # replays of the churn from the saturated state, for (a) and (b): the fastest is the figure
    interleaved_rounds: int = 8  # the scaling: rounds of the smallest and largest sizes replayed in turn
    seed: int = 7

    @property
    def scaling_sizes(self) -> tuple[int, ...]:
        """The smallest and largest size, whose churns are replayed in turn for the scaling (none when there
        is one size or no round)."""
        small, large = min(self.sizes), max(self.sizes)
        return (small, large) if small != large and self.interleaved_rounds else ()


Sample = int  # wall-clock ns of one decision


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, Sample]:
    """Call ``fn``; its result and how long it took on the wall clock (ns)."""
    t0 = time.perf_counter_ns()
    out = fn(*args, **kwargs)
    return out, time.perf_counter_ns() - t0


def _timed_place(place: Any, spec: Any, constraints: Any, rng: Any, task_id: str) -> tuple[Any, Sample]:
    """One ``place(spec, constraints=..., strategies=CHAIN, rng=..., task_id=...)`` call timed as ``_timed``
    times a call, with the call written out as a user writes it: ``_timed``'s packing and unpacking of
    ``*args``/``**kwargs`` (about 0.3 us) is not part of the figure."""
    t0 = time.perf_counter_ns()
    out = place(spec, constraints=constraints, strategies=CHAIN, rng=rng, task_id=task_id)
    return out, time.perf_counter_ns() - t0


def timer_overhead(samples: int = 20_000) -> float:
    """Ns that ``_timed_place`` itself adds to a sample (median of timing a call of nothing, with the
    same arguments as a ``place`` call)."""
    def nothing(*args: Any, **kwargs: Any) -> None:
        return None

    return float(np.median([_timed_place(nothing, None, (), None, "t")[1] for _ in range(samples)]))


def _net(samples: list[Sample], tare: float) -> list[Sample]:
    """The samples less the timer's own cost (never below zero)."""
    return [max(int(s - tare), 0) for s in samples]


def _stats(samples: list[Sample]) -> dict[str, float]:
    if not samples:
        return {"per_s": 0.0, "p50_us": 0.0, "p99_us": 0.0, "decisions": 0}
    us = np.asarray(samples, np.float64) / 1e3
    return {
        "per_s": float(len(us) / us.sum() * 1e6),
        "p50_us": float(np.percentile(us, 50)),
        "p99_us": float(np.percentile(us, 99)),
        "decisions": len(us),
    }


def _take(live: list[str], u: float) -> str:
    """Remove and return the running task at fraction ``u`` of the list (swap with the last).

    Churn releases only while as many tasks run as at saturation, so that failed placements do not
    drain the cluster: each step is "release one if the cluster is full, place one"."""
    i = int(u * len(live))
    live[i], live[-1] = live[-1], live[i]
    return live.pop()


class Run:
    """One cluster size: the state, the core placer, the running tasks and the rest of the stream."""

    def __init__(self, n: int, seed: int) -> None:
        self.n = n
        self.state = build_cluster(n, np.random.default_rng([seed, n, 0]))
        # (b) as a user gets it with numba installed: the public API deciding in compiled code
        self.placer = Placer(self.state, compiled=kernel.available())
        self.kinds = task_kinds()
        self.stream = draws(self.kinds, np.random.default_rng([seed, n, 1]))
        self.plan_rng = np.random.default_rng([seed, n, 2])
        self.rng = np.random.default_rng([seed, n, 3])  # tie-breaks
        self.live: list[str] = []
        self.serial = 0
        self.saturated = 0  # tasks running when the fill stopped

    def fork(self) -> Run:
        """This run at this moment, for a replay: a deep copy of the cluster, its running tasks and the
        tie-break generator, with a placer of its own (its compiled index built). The same churn replayed
        on each fork makes the same decisions. The task stream and the plan's generator stay this run's
        (shared, not copied): draw plans from this run, then replay them on forks."""
        new = copy.copy(self)
        new.state, new.live, new.rng = copy.deepcopy((self.state, self.live, self.rng))
        new.placer = Placer(new.state, compiled=self.placer.compiled)
        new.placer.live()
        return new

    def place(self, d: Draw) -> tuple[object, Sample]:
        self.serial += 1
        task_id = f"t{self.serial}"
        out, dt = _timed_place(self.placer.place, d.spec, d.constraints, self.rng, task_id)
        if not isinstance(out, Failure) and out.ok:
            self.live.append(task_id)
        return out, dt

    def fill(self) -> dict[str, Any]:
        lat: list[Sample] = []
        window: list[bool] = []
        failed_in_window = 0
        t0 = time.perf_counter()
        while True:
            out, dt = self.place(next(self.stream))
            lat.append(dt)
            failed = isinstance(out, Failure)
            window.append(failed)
            failed_in_window += failed
            if len(window) > SATURATION_WINDOW:
                failed_in_window -= window.pop(0)
                if failed_in_window > SATURATION_FAIL_SHARE * SATURATION_WINDOW:
                    break
        return {
            **{f"fill_{k}": v for k, v in _stats(lat).items()},
            "fill_wall_s": time.perf_counter() - t0,
            "running_at_saturation": self._mark_saturation(),
        }

    def plan(self, count: int) -> list[tuple[float, Draw]]:
        us = self.plan_rng.random(count).tolist()
        return [(u, next(self.stream)) for u in us]

    def _mark_saturation(self) -> int:
        self.saturated = len(self.live)
        return self.saturated

    def churn(self, plan: list[tuple[float, Draw]], warm: int = 0
              ) -> tuple[list[Sample], list[Decision], list[bool]]:
        """Release/place along ``plan``: the samples of the decisions after the first ``warm``, and every
        decision and whether it failed. The outcomes are only kept during the loop and compared after it
        (a ``Placement`` or ``Failure`` is immutable, and a failure's words depend on its own details only),
        so that the benchmark's own work does not run between two timed calls."""
        lat, outs = [], []
        for j, out, dt in self._steps(plan):
            if j >= warm:
                lat.append(dt)
            outs.append(out)
        return lat, [core_decision(out) for out in outs], [isinstance(out, Failure) for out in outs]

    def chunks(self, plan: list[tuple[float, Draw]], warm: int, size: int) -> Iterator[int]:
        """``churn`` as ``replays.interleaved`` takes it: the summed samples of each ``size`` decisions after
        the first ``warm``, yielded as they are made."""
        return chunk_sums((dt for j, _, dt in self._steps(plan) if j >= warm), size)

    def _steps(self, plan: list[tuple[float, Draw]]) -> Iterator[tuple[int, object, Sample]]:
        """Release (while the cluster is full) and place along ``plan``: each step's index, outcome and
        sample."""
        for j, (u, d) in enumerate(plan):
            if len(self.live) >= self.saturated:
                self.placer.release(_take(self.live, u))
            out, dt = self.place(d)
            yield j, out, dt


def _reference_churn(
    ref: ReferencePlacer,
    live: list[str],
    rng: np.random.Generator,
    first_serial: int,
    plan: list[tuple[float, Draw]],
    expected: list[Decision],
    limit: int,
    budget_s: float,
    saturated: int,
) -> tuple[list[Sample], int]:
    lat: list[Sample] = []
    agree = 0
    serial = first_serial
    start = time.perf_counter()
    for (u, d), want in zip(plan[:limit], expected, strict=False):
        if len(live) >= saturated:
            ref.release(_take(live, u))
        serial += 1
        task_id = f"t{serial}"
        got, dt = _timed(
            ref.place, d.spec, task_id=task_id, constraints=d.constraints, strategies=CHAIN, rng=rng
        )
        lat.append(dt)
        agree += got == want
        if got.row is not None and got.started:
            live.append(task_id)
        if time.perf_counter() - start > budget_s:
            break
    return lat, agree


def _moto_churn(
    moto: MotoCluster, plan: list[tuple[float, Draw]], cpu_only: set[int], limit: int, budget_s: float
) -> tuple[list[Sample], int]:
    lat: list[Sample] = []
    running: list[str] = []
    placed = 0
    start = time.perf_counter()
    for _, d in plan:
        if d.kind not in cpu_only:
            continue
        family = moto.family(d.spec)
        arn, dt = _timed(moto.run_task, family)
        lat.append(dt)
        if arn is not None:
            placed += 1
            running.append(arn)
            if len(running) > MOTO_WINDOW:
                moto.stop_task(running.pop(0))
        if len(lat) >= limit or time.perf_counter() - start > budget_s:
            break
    return lat, placed


def profile_churn(run: Run, decisions: int, top: int = 14) -> list[dict[str, Any]]:
    """cProfile of the core over ``decisions`` churn steps (release + place, nothing else in the loop):
    the functions with the most own time, as shares of the core's own time."""
    plan = run.plan(decisions)
    placer, live, rng = run.placer, run.live, run.rng
    prof = cProfile.Profile()
    prof.enable()
    for u, d in plan:
        if len(live) >= run.saturated:
            placer.release(_take(live, u))
        run.serial += 1
        out = placer.place(
            d.spec, constraints=d.constraints, strategies=CHAIN, rng=rng, task_id=f"t{run.serial}"
        )
        if not isinstance(out, Failure) and out.ok:
            live.append(out.task_id)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO())
    rows = []
    for (file, line, func), (cc, _nc, tt, ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        if "benchmarks/" in file or "cProfile" in func:
            continue  # this loop, not the core
        where = re.sub(r"^.*?/(site-packages/|(?=scheduler/)|(?=benchmarks/))", "", file)  # no machine paths
        rows.append({"function": f"{where}:{line}({func})", "calls": cc, "own_s": tt, "cumulative_s": ct})
    rows.sort(key=lambda r: -r["own_s"])
    total = sum(r["own_s"] for r in rows)
    for r in rows:
        r["own_share"] = r["own_s"] / total if total else 0.0
    return rows[:top]


def compiled_size(n: int, config: PlacementConfig, fill_decisions: int, python: list[Decision],
                  log: Any = print) -> tuple[dict[str, Any], Replay]:
    """Figure (a): the same fill and churn in the compiled kernel, its rate, and how many of its decisions
    equal the core's (``python``: the core's churn decisions, in order); with a function that starts one more
    replay of the churn, chunk by chunk (``interleaved_scaling``)."""
    kinds = task_kinds()
    requests = [(k.spec, c, CHAIN) for k in kinds for c in ((), (k.constraint,))]
    stream = draws(kinds, np.random.default_rng([config.seed, n, 1]))
    churn = max(config.compiled_churn, len(python))
    ids = np.array([2 * d.kind + bool(d.constraints) for d in (next(stream) for _ in range(fill_decisions + churn))],
                   np.int64)
    us = np.random.default_rng([config.seed, n, 2]).random(churn)
    rng = np.random.default_rng([config.seed, n, 3])
    t0 = time.perf_counter()
    cs = CompiledStream(build_cluster(n, np.random.default_rng([config.seed, n, 0])), requests)
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    done, _, _ = cs.fill(ids, rng)
    fill_s = time.perf_counter() - t0
    saturated = cs.running
    saturated_state, saturated_rng = cs.snapshot(), copy.deepcopy(rng.bit_generator.state)

    def replay(rows: list[int] | None = None, tasks: list[int] | None = None) -> Iterator[int]:
        """One replay from saturation, chunk by chunk as it is iterated: each chunk's ns (and every
        decision's row and task slot appended to ``rows`` and ``tasks``, when given)."""
        cs.restore(saturated_state)
        rng.bit_generator.state = saturated_rng
        for at in range(0, churn, COMPILED_CHUNK):
            sl = slice(done + at, done + min(at + COMPILED_CHUNK, churn))
            t0 = time.perf_counter_ns()
            got_rows, got_tasks = cs.churn(ids[sl], us[at: at + COMPILED_CHUNK], rng, saturated)
            dt = time.perf_counter_ns() - t0
            if rows is not None and tasks is not None:
                rows += got_rows.tolist()
                tasks += got_tasks.tolist()
            yield dt

    def once(_: int) -> tuple[list[int], tuple[list[int], list[int]]]:
        """One whole replay: each chunk's ns, and every decision's (row, task slot)."""
        rows: list[int] = []
        tasks: list[int] = []
        return list(replay(rows, tasks)), (rows, tasks)

    replays, (rows, tasks) = replayed(once, config.repeats, f"(a) at {n:,} instances")
    agree = 0
    for j in range(min(len(rows), len(python))):
        row, chips, reason = cs.decision(int(ids[done + j]), rows[j], tasks[j])
        agree += Decision(row, chips, True, reason) == python[j]
    best, median = fastest([sum(r) for r in replays], churn)
    sizes = [min(COMPILED_CHUNK, churn - at) for at in range(0, churn, COMPILED_CHUNK)]
    per = np.asarray(replays[best]) / 1e3 / np.asarray(sizes)  # us per decision, chunk by chunk
    entry = {
        "compiled_per_s": churn / sum(replays[best]) * 1e9,
        "compiled_median_per_s": median,
        "compiled_replays": len(replays),
        "compiled_chunk_p50_us": float(np.percentile(per, 50)),
        "compiled_chunk_p99_us": float(np.percentile(per, 99)),
        "compiled_decisions": churn,
        "compiled_fill_decisions": done,
        "compiled_fill_per_s": done / fill_s if fill_s else 0.0,
        "compiled_setup_s": setup_s,
        "compiled_compared": len(python),
        "compiled_agree": agree,
        "compiled_fill_matches_core": done == fill_decisions,
    }
    log(f"    compiled (a): {entry['compiled_per_s']:,.0f}/s over {churn:,} churn decisions (fastest of "
        f"{len(replays)} replays; median {median:,.0f}/s); {agree:,} of {len(python):,} identical to the core")
    return entry, replay


def start_times() -> dict[str, float]:
    """Seconds a fresh process spends before its first compiled decision: cold (empty numba cache: every
    kernel function compiles) and warm (loaded from the cache), and the same process without the kernel."""
    script = (
        "import time; t0 = time.perf_counter()\n"
        "import numpy as np\n"
        "from benchmarks.mix import CHAIN, build_cluster, task_kinds\n"
        "from scheduler.placement.placer import Placer\n"
        "st = build_cluster(50, np.random.default_rng(0))\n"
        "k = task_kinds()[0]\n"
        "p = Placer(st, compiled=KERNEL)\n"
        "p.place(k.spec, strategies=CHAIN, rng=np.random.default_rng(1), task_id='a')\n"
        "p.release('a')\n"
        "print(time.perf_counter() - t0)\n"
    )
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for label, flag in (("python_only_start_s", "False"), ("cold_start_s", "True"), ("warm_start_s", "True")):
            done = subprocess.run([sys.executable, "-c", script.replace("KERNEL", flag)], env=env, check=True,
                                  capture_output=True, text=True)
            out[label] = float(done.stdout.strip().splitlines()[-1])
    out["cold_extra_s"] = out["cold_start_s"] - out["python_only_start_s"]
    out["warm_extra_s"] = out["warm_start_s"] - out["python_only_start_s"]
    return out


def run_size(n: int, config: PlacementConfig, log: Any = print) -> tuple[dict[str, Any], Run, dict[str, Replay]]:
    """One cluster size's figures, its run (for the profile) and, for the sizes of the scaling, by figure
    ("compiled" for (a), "core" for (b), "user_mix"), a function that starts one more replay of its churn
    from saturation, chunk by chunk."""
    run = Run(n, config.seed)
    chunked: dict[str, Replay] = {}
    entry: dict[str, Any] = {"instances": n}
    entry.update(run.fill())
    log(
        f"  {n:,} instances: saturated after {entry['fill_decisions']:,} decisions, "
        f"{entry['running_at_saturation']:,} tasks running ({entry['fill_per_s']:,.0f}/s while filling)"
    )
    plan = run.plan(config.churn)
    ref = ReferencePlacer.from_state(run.state)
    ref_live = list(run.live)
    ref_rng = copy.deepcopy(run.rng)
    ref_serial = run.serial
    t0 = time.perf_counter()
    moto = MotoCluster(run.state) if config.moto_max else None
    entry["moto_setup_s"] = time.perf_counter() - t0

    tare = timer_overhead()
    warm = int(len(plan) * WARMUP_SHARE)

    def once(_: int) -> tuple[tuple[list[Sample], int], tuple[list[Decision], list[bool]]]:
        """One replay on a fork: its samples and live classes after it, and its decisions."""
        fork = run.fork()
        lat, made, failed = frozen(fork.churn, plan, warm)
        classes = fork.state.classes()
        return (lat, classes.k - len(classes.free_slots)), (made, failed)

    replays, (decisions, failed) = replayed(once, config.repeats, f"(b) at {n:,} instances")
    best, median = fastest([sum(lat) for lat, _ in replays], len(plan) - warm)
    lat, live_classes = replays[best]
    if config.compiled_churn and kernel.available():
        compiled, chunked["compiled"] = compiled_size(n, config, entry["fill_decisions"], decisions, log)
        entry.update(compiled)
    if n in config.scaling_sizes:
        saturated = run.fork()  # the run moves on below (the Python and per-row paths)
        chunked["core"] = lambda: saturated.fork().chunks(plan, warm, CORE_CHUNK)
    core = _stats(lat)
    net = _stats(_net(lat, tare))
    cpu_only = {k for k, kind in enumerate(run.kinds) if kind.cpu_only}
    cpu_lat = [dt for dt, (_, d) in zip(lat, plan[warm:], strict=True) if d.kind in cpu_only]
    entry.update(
        {
            "core_per_s": core["per_s"],
            "core_median_per_s": median,
            "core_replays": len(replays),
            "core_p50_us": core["p50_us"],
            "core_p99_us": core["p99_us"],
            "core_decisions": core["decisions"],
            "core_timer_us": tare / 1e3,
            "core_net_per_s": net["per_s"],
            "core_net_p50_us": net["p50_us"],
            "core_net_p99_us": net["p99_us"],
            "churn_failure_share": float(np.mean(failed)),
            "core_cpu_only_per_s": _stats(cpu_lat)["per_s"],
            "classes": live_classes,
        }
    )
    log(f"    core: {core['per_s']:,.0f}/s (fastest of {len(replays)} replays; median {median:,.0f}/s), p50 "
        f"{core['p50_us']:.1f} us, p99 {core['p99_us']:.0f} us; net of the timer's own {tare:.0f} ns: "
        f"{net['per_s']:,.0f}/s")

    ref_lat, agree = _reference_churn(
        ref,
        ref_live,
        ref_rng,
        ref_serial,
        plan,
        decisions,
        config.reference_max,
        config.reference_budget_s,
        run.saturated,
    )
    r = _stats(ref_lat)
    entry.update(
        {
            "reference_per_s": r["per_s"],
            "reference_p50_us": r["p50_us"],
            "reference_p99_us": r["p99_us"],
            "reference_decisions": r["decisions"],
            "reference_agree": agree,
        }
    )
    log(
        f"    reference: {r['per_s']:,.1f}/s over {r['decisions']:,} decisions, "
        f"{agree:,} identical to the core"
    )

    if moto is not None:
        m_lat, m_placed = _moto_churn(moto, plan, cpu_only, config.moto_max, config.moto_budget_s)
        m = _stats(m_lat)
        entry.update(
            {
                "moto_per_s": m["per_s"],
                "moto_p50_us": m["p50_us"],
                "moto_p99_us": m["p99_us"],
                "moto_decisions": m["decisions"],
                "moto_placed": m_placed,
            }
        )
        log(f"    moto: {m['per_s']:,.1f}/s over {m['decisions']:,} CPU-only decisions")
    else:
        entry.update(
            {"moto_per_s": 0.0, "moto_p50_us": 0.0, "moto_p99_us": 0.0, "moto_decisions": 0, "moto_placed": 0}
        )

    if config.row_path:
        # the same public API on the Python path (the reference the kernel is held to), then per row
        compiled = run.placer.compiled
        run.placer.compiled = False
        run.state.attach(None)
        pp_lat = frozen(run.churn, run.plan(config.row_path))[0]
        pp = _stats(pp_lat)
        entry["python_path_net_per_s"] = _stats(_net(pp_lat, tare))["per_s"]
        entry.update({"python_path_per_s": pp["per_s"], "python_path_p50_us": pp["p50_us"],
                      "python_path_p99_us": pp["p99_us"], "python_path_decisions": pp["decisions"]})
        log(f"    Python path (compiled=False): {pp['per_s']:,.0f}/s")
        run.placer.by_class = False
        rp = _stats(run.churn(run.plan(config.row_path))[0])
        run.placer.by_class = True
        run.placer.compiled = compiled
        entry.update(
            {
                "row_path_per_s": rp["per_s"],
                "row_path_p50_us": rp["p50_us"],
                "row_path_p99_us": rp["p99_us"],
                "row_path_decisions": rp["decisions"],
            }
        )
        log(f"    per-row path (before the class index): {rp['per_s']:,.0f}/s")
    if config.user_mix:
        figures, chunked["user_mix"] = user_mix(n, config)
        entry.update(figures)
        log(f"    (b) on the user mix (ECS JSON task definitions, memberOf, [spread AZ, binpack memory]): "
            f"{entry['user_mix_per_s']:,.0f}/s, p50 {entry['user_mix_p50_us']:.1f} us; net of the timer: "
            f"{entry['user_mix_net_per_s']:,.0f}/s ({entry['user_mix_failure_share']:.0%} failed)")
    if n not in config.scaling_sizes:
        chunked.clear()  # nothing to replay in turn: let go of the streams and copies the replays hold
    return entry, run, chunked


def interleaved_scaling(small: Replay, large: Replay, rounds: int) -> list[float]:
    """Cost per decision of the largest size's churn against the smallest's, once per round of
    ``replays.interleaved`` (both replayed in turn, chunk by chunk, so that both meet the host as it is at
    that moment; both churns are equally long)."""
    return [large_ns / small_ns for small_ns, large_ns in interleaved(small, large, rounds)]


def user_mix(n: int, config: PlacementConfig) -> tuple[dict[str, Any], Replay]:
    """Figure (b) as a new user meets it (``benchmarks.api_place``: ``Cluster`` and ECS JSON task
    definitions, a mix of its own) at ``n`` instances, with the same churn length; and its chunked replay."""
    from benchmarks import api_place

    u = api_place.run(n, seed=config.seed, churn=config.churn, compiled=kernel.available(), repeats=config.repeats)
    figures = {"user_mix_per_s": u["churn_per_s"], "user_mix_median_per_s": u["median_per_s"],
               "user_mix_net_per_s": u["net_per_s"], "user_mix_p50_us": u["p50_us"],
               "user_mix_p99_us": u["p99_us"], "user_mix_failure_share": u["failed_share"]}
    return {**{k: float(v) for k, v in figures.items()}, "user_mix_instances": int(u["n"])}, u["replay_chunks"]


def run(config: PlacementConfig, log: Any = print) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """All sizes; returns the per-size entries and a profile of the core's churn at ``profile_size``."""
    entries = []
    profile: dict[str, Any] = {}
    chunked: dict[int, dict[str, Replay]] = {}
    for n in config.sizes:
        entry, state_run, chunked[n] = run_size(n, config, log)
        entries.append(entry)
        if config.profile_size == n and config.profile_decisions:
            profile = {
                "instances": n,
                "decisions": config.profile_decisions,
                "top": profile_churn(state_run, config.profile_decisions),
            }
    if config.scaling_sizes:
        small, large = config.scaling_sizes
        at_large = next(e for e in entries if e["instances"] == large)
        for figure, name in (("compiled", "(a)"), ("core", "(b)"), ("user_mix", "(b) on the user mix")):
            if figure in chunked[small] and figure in chunked[large]:
                ratios = interleaved_scaling(chunked[small][figure], chunked[large][figure],
                                             config.interleaved_rounds)
                at_large[f"{figure}_interleaved_ratios"] = ratios
                log(f"  {name} at {large:,} against {small:,} instances, replayed in turn chunk by chunk: median "
                    f"{float(np.median(ratios)):.2f}x over {len(ratios)} rounds ({min(ratios):.2f}x to "
                    f"{max(ratios):.2f}x)")
    return entries, profile


def floor(repeat: int = 200_000) -> dict[str, float]:
    """This machine's cost of the smallest steps a decision is made of, in microseconds."""
    small = np.zeros(256, np.int64)

    def nothing() -> None:
        return None

    def per_call(fn: Any) -> float:
        t0 = time.perf_counter()
        for _ in range(repeat):
            fn()
        return (time.perf_counter() - t0) / repeat * 1e6

    rng = np.random.default_rng(0)
    return {
        "python_call_us": per_call(nothing),
        "numpy_compare_256_us": per_call(lambda: small >= 5),
        "numpy_scalar_write_us": per_call(lambda: small.__setitem__(3, 1)),
        "generator_integers_us": per_call(lambda: rng.integers(17)),
    }
