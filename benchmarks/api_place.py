"""Figure (b) as a new user meets it: ``Cluster`` + ``cluster.placer.place(...)`` / ``release(...)`` on a mix
that is not the benchmark's own (its task definitions are ECS JSON, loaded as a user loads them).

A cluster of inf2/trn1/g5/m6i/c6i instances over three availability zones; Neuron (manual ``/dev/neuronN``),
GPU and CPU task definitions, each with a ``memberOf`` instance-type constraint, all placed with
``[spread attribute:ecs.availability-zone, binpack memory]``. Fill until placements fail, then churn
(release a random running task, place the next one). The same churn is replayed ``--repeats`` times from a
copy of the saturated cluster, every replay checked to decide the same, and the fastest replay is the figure
(``benchmarks.replays`` says why); its first tenth is not timed. Every ``place`` call is timed alone on the
wall clock; releases are timed apart. ``net`` figures take off the timer's own cost (a pair of clock reads,
measured in the run); the churn runs with the objects built so far frozen out of the cyclic GC.

    python -m benchmarks.api_place --sizes 500 5000 50000 [--compiled true|false|auto] [--repeats 5] [--profile]
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import pstats
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.replays import WARMUP_SHARE, chunk_sums, clock_tare, fastest, frozen, replayed
from scheduler import Cluster
from scheduler.ecs.taskdef import load_task_definition
from scheduler.ecs.taskspec import Strategy
from scheduler.placement.placer import Placer
from scheduler.placement.results import Failure

AZS = ("us-east-1a", "us-east-1b", "us-east-1c")
CHUNK = 1_000  # decisions per chunk of a replay run in turn with another (``replays.interleaved``)
CHAIN = (Strategy("spread", "attribute:ecs.availability-zone"), Strategy("binpack", "memory"))
# instance type, share of the cluster
FLEET = (("inf2.xlarge", 0.2), ("inf2.8xlarge", 0.1), ("trn1.32xlarge", 0.05), ("g5.xlarge", 0.1),
         ("g5.12xlarge", 0.05), ("m6i.xlarge", 0.2), ("m6i.4xlarge", 0.1), ("c6i.xlarge", 0.1),
         ("c6i.2xlarge", 0.1))


def _taskdef(family: str, cpu: int, memory: int, expression: str, *, devices: tuple[int, ...] = (),
             gpus: int = 0) -> dict:
    container: dict = {"name": family, "image": "public.ecr.aws/x/y:1", "essential": True,
                       "cpu": cpu, "memory": memory}
    if devices:
        container["linuxParameters"] = {"devices": [
            {"hostPath": f"/dev/neuron{d}", "containerPath": f"/dev/neuron{d}", "permissions": ["read", "write"]}
            for d in devices]}
    if gpus:
        container["resourceRequirements"] = [{"type": "GPU", "value": str(gpus)}]
    return {"family": family, "requiresCompatibilities": ["EC2"], "networkMode": "bridge",
            "placementConstraints": [{"type": "memberOf", "expression": expression}],
            "containerDefinitions": [container]}


def task_definitions() -> list[tuple[object, float]]:
    """(TaskSpec, weight) of the mix."""
    out = [
        (_taskdef("inf2-chip0", 2048, 8192, "attribute:ecs.instance-type == inf2.xlarge", devices=(0,)), 12),
        (_taskdef("inf2-8x", 8192, 30000, "attribute:ecs.instance-type == inf2.8xlarge", devices=(0,)), 4),
        (_taskdef("gpu-1", 2048, 8192, "attribute:ecs.instance-type =~ g5.*", gpus=1), 8),
        (_taskdef("gpu-4", 16384, 65536, "attribute:ecs.instance-type == g5.12xlarge", gpus=4), 2),
        (_taskdef("web", 512, 1024, "attribute:ecs.instance-type in [m6i.xlarge, m6i.4xlarge, c6i.xlarge]"), 25),
        (_taskdef("api", 1024, 2048, "attribute:ecs.instance-type =~ m6i.*"), 15),
        (_taskdef("batch", 4096, 4096, "attribute:ecs.instance-type =~ c6i.*"), 10),
    ]
    for k in range(0, 16, 4):
        out.append((_taskdef(f"trn1-chips{k}", 14336, 60000, "attribute:ecs.instance-type == trn1.32xlarge",
                             devices=(k, k + 1)), 1))
    return [(load_task_definition(doc), w) for doc, w in out]


def build(n: int, seed: int, compiled: bool | str) -> Cluster:
    c = Cluster("api-bench", seed=seed)
    c.placer = Placer(c.state, compiled=compiled)
    for t, share in FLEET:
        c.add_instances(t, max(1, round(n * share)), availability_zones=AZS)
    return c


def run(n: int, *, seed: int = 7, churn: int = 20_000, compiled: bool | str = True, profile: bool = False,
        repeats: int = 5) -> dict:
    """Fill, then replay the same churn ``repeats`` times from the saturated cluster (``benchmarks.replays``):
    the figures of the fastest replay, with the median replay's rate beside them, and ``replay_chunks``, which
    starts one more replay chunk by chunk (for ``replays.interleaved``)."""
    c = build(n, seed, compiled)
    kinds = task_definitions()
    specs = [s for s, _ in kinds]
    w = np.array([w for _, w in kinds], float)
    rng = np.random.default_rng([seed, n])
    tie = np.random.default_rng([seed, n, 1])
    placer = c.placer
    live: list[str] = []
    serial = 0
    window: list[bool] = []
    t0 = time.perf_counter_ns()
    while True:
        serial += 1
        out = placer.place(specs[rng.choice(len(specs), p=w / w.sum())], task_id=f"t{serial}", strategies=CHAIN,
                           rng=tie)
        if not isinstance(out, Failure):
            live.append(f"t{serial}")
        window.append(isinstance(out, Failure))
        if len(window) >= 500 and sum(window[-500:]) > 250:
            break
    fill_ns = time.perf_counter_ns() - t0
    saturated = len(live)
    picks = rng.choice(len(specs), size=churn, p=w / w.sum()).tolist()
    us = rng.random(churn).tolist()
    ids = [f"t{serial + 1 + k}" for k in range(churn)]
    warm = int(churn * WARMUP_SHARE)
    tare = clock_tare()
    saturated_at = (c, live, tie)

    def steps() -> Iterator[tuple[int, Any, int, int]]:
        """A new replay from a copy of the saturated cluster."""
        cluster, running, generator = copy.deepcopy(saturated_at)
        cluster.placer.live()  # the copy's compiled index (none on the Python path)
        return _steps(cluster.placer, running, generator, saturated, specs, picks, us, ids)

    def once(r: int) -> tuple[tuple[list[int], list[int]], list[int]]:
        prof = cProfile.Profile() if profile and r == 0 else None
        lat, rel, made = frozen(_churn, steps(), warm, prof)
        if prof:
            pstats.Stats(prof).sort_stats("tottime").print_stats(18)
        return (lat, rel), made

    replays, first = replayed(once, repeats, f"the user mix at {n:,} instances")
    best, median = fastest([sum(lat) for lat, _ in replays], churn - warm)
    lat, rel = replays[best]
    lat_us = np.array(lat) / 1e3
    net_us = np.maximum(lat_us - tare / 1e3, 0)
    return {"n": len(c.state), "fill": serial, "fill_per_s": serial / fill_ns * 1e9, "running": saturated,
            "churn_per_s": len(lat) / lat_us.sum() * 1e6, "median_per_s": median, "replays": len(replays),
            "p50_us": float(np.percentile(lat_us, 50)), "p99_us": float(np.percentile(lat_us, 99)),
            "failed_share": sum(row < 0 for row in first) / churn, "timer_us": tare / 1e3,
            "net_per_s": len(lat) / net_us.sum() * 1e6, "net_p50_us": float(np.median(net_us)),
            "release_per_s": len(rel) / max(sum(rel), 1) * 1e9, "compiled": placer.live() is not None,
            "replay_chunks": lambda: _chunks(steps(), warm, CHUNK)}


def _steps(placer: Placer, live: list[str], tie: np.random.Generator, saturated: int, specs: list,
           picks: list[int], us: list[float], ids: list[str]) -> Iterator[tuple[int, Any, int, int]]:
    """One replay: release a random running task while ``saturated`` run, place the next. Each step's index,
    outcome, ``place`` call timed alone (ns) and release timed apart (-1: none)."""
    pc = time.perf_counter_ns
    for j, (k, u, tid) in enumerate(zip(picks, us, ids, strict=True)):
        rel = -1
        if len(live) >= saturated:
            i = int(u * len(live))
            live[i], live[-1] = live[-1], live[i]
            t0 = pc()
            placer.release(live.pop())
            rel = pc() - t0
        t0 = pc()
        out = placer.place(specs[k], task_id=tid, strategies=CHAIN, rng=tie)
        dt = pc() - t0
        if not isinstance(out, Failure):
            live.append(tid)
        yield j, out, dt, rel


def _churn(steps: Iterator[tuple[int, Any, int, int]], warm: int, prof: cProfile.Profile | None
           ) -> tuple[list[int], list[int], list[int]]:
    """A whole replay of ``_steps``: each ``place`` after the first ``warm`` (ns), each release (ns), every
    decision's row (-1: failed)."""
    lat: list[int] = []
    rel: list[int] = []
    made: list[int] = []
    if prof:
        prof.enable()
    for j, out, dt, released in steps:
        if j >= warm:
            lat.append(dt)
        if released >= 0:
            rel.append(released)
        made.append(-1 if isinstance(out, Failure) else out.instance)
    if prof:
        prof.disable()
    return lat, rel, made


def _chunks(steps: Iterator[tuple[int, Any, int, int]], warm: int, size: int) -> Iterator[int]:
    """A replay of ``_steps`` as ``replays.interleaved`` takes it: the summed ``place`` times of each ``size``
    decisions after the first ``warm``, yielded as they are made."""
    return chunk_sums((dt for j, _, dt, _ in steps if j >= warm), size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[5000])
    ap.add_argument("--churn", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7, help="the committed benchmark run uses 7")
    ap.add_argument("--compiled", default="true", choices=("true", "false", "auto"))
    ap.add_argument("--repeats", type=int, default=5, help="replays of the churn; the fastest is the figure")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    compiled = {"true": True, "false": False, "auto": "auto"}[a.compiled]
    for n in a.sizes:
        r = run(n, seed=a.seed, churn=a.churn, compiled=compiled, profile=a.profile, repeats=a.repeats)
        print(f"n={r['n']:>6} compiled={r['compiled']} fill={r['fill']} ({r['fill_per_s']:,.0f}/s) "
              f"churn place {r['churn_per_s']:,.0f}/s (fastest of {r['replays']} replays; median "
              f"{r['median_per_s']:,.0f}/s) p50 {r['p50_us']:.1f} us p99 {r['p99_us']:.1f} us "
              f"(net of the timer's {r['timer_us']:.1f} us: {r['net_per_s']:,.0f}/s p50 {r['net_p50_us']:.1f} us) "
              f"failed {r['failed_share']:.0%}  release {r['release_per_s']:,.0f}/s")


if __name__ == "__main__":
    main()
