"""The stream lane: RunTask streams run in a compiled loop over columns, with no Python object per task.

On a device-aware cluster (``why_plain`` names what keeps a whole run plain), the calls, task starts and task
exits of every *stream workload* run in ``_lane_impl.step``: a RunTask workload with generated arrivals,
one task definition (no device sets), a request the compiled placement kernel decides and devices the
Neuron runtime accepts, with or without a start-up model (its tasks PENDING from placement while images are
pulled and containers start), with a launch type or a capacity provider strategy. Every other workload runs
on the plain path beside it (``stream_workloads`` says why, for each RunTask workload): services (REPLICA
and DAEMON), trace replays, device sets, host ports and the like place and stop their own tasks as SimTasks
through the same kernel arrays, and share the waiting room; so do a snapshot's tasks. Before Python stops
tasks on an instance (a fault, a Spot interruption, a capacity provider scaling in:
``Simulation.deregister`` and ``fail_chip``) the lane hands its tasks there to the plain path
(``Lane.adopt``). A run with no stream workload takes the plain path, the reference: for the same scenario
and seed both give byte-identical outputs.

How it keeps the plain path's order: simpy pops events by ``(time, priority, eid)`` and every
``Clock.at`` takes the next eid. The lane keeps its own heap of its events keyed ``(time, eid)`` and takes
eids from the same counter exactly where the plain path calls ``at`` (a RunTask call's tasks' starts, or
exits when they are RUNNING at placement, then the next call; a task's exit when it starts); it runs while
its next key is below simpy's next queued key, then puts one wake-up event on simpy's heap *with its next
key* (no eid of its own) and hands control back. A sample, the end of the run, and any Python event in
between therefore come exactly where they would.

What Python still does (rare, and correct first): a placement that fails (the task becomes a SimTask and
the plain lifecycle places, queues or fails it: a failed compiled decision draws and changes nothing, so
deciding again is exact), the GPU ids a task takes or gives back, a start-up model's draws and the image
cache (at the placement and the stop of each such task: its draws share the workload's generator with its
arrivals, so such a workload's arrival times are read one at a time, where the plain path reads them), a
waiting-room retry pass in which a head can be placed (or whose heads the kernel does not decide, or with a
daemon to retry), the reason of a waiting head whose failure changed, refilling the blocks of arrival
times and durations drawn ahead. A retry pass after a lane task's release is the loop's own event (taking
the eid ``WaitingRoom.kick`` would): while every class's head would fail again it tries them in the loop
(``_lane_impl._feasible``, the kernel's decision without taking a row) and Python has nothing to do.
At every hand-back the counters, levels and integrals the engine keeps are written back, and the task rows
of the tasks stopped since are appended in stop order (with the SLO tally and DescribeTasks' last 100).
"""

from __future__ import annotations

import contextlib
import dataclasses
import heapq
import itertools
import math
import types
from itertools import islice
from typing import Any

import numpy as np
import simpy

from scheduler.placement import kernel
from scheduler.placement.filters.resources import enis_taken
from scheduler.placement.state import Allocation, chips_of
from scheduler.sim import metrics
from scheduler.sim.clock import Interrupted
from scheduler.sim.metrics import TASK_COLUMNS
from scheduler.sim.plan import GeneratedArrivals, RunTaskWorkload
from scheduler.sim.runtime import start_refusal
from scheduler.sim.startup import task_images
from scheduler.sim.tasks import PENDING, PROVISIONING, RUNNING, STOPPED, Request, SimTask
from scheduler.sim.waiting import note_failure
from scheduler.views import identity

PATHS = ("auto", "fast", "plain")
BLOCK = 4096           # arrival times and durations drawn ahead per workload
# "auto" pays a cold compile (a minute or more on 2 cores, kernel included) only for runs expected to have at least
# this many tasks: the plain path runs about 10,000 tasks per second, the lane about 70,000
AUTO_MIN_TASKS = 500_000
# and a warm start (loading the cached loop and kernel, about 1 s) only for runs with at least this many: the bundled
# scenarios of a few thousand tasks run about 1 s faster on the plain path then
AUTO_WARM_MIN_TASKS = 20_000
INTEGRALS = tuple(f.name for f in dataclasses.fields(metrics.Integrals))  # in placement.state.Totals order
EXITED = ("STOPPED", "EssentialContainerExited", "Essential container in task exited")


def choose(sim: Any, path: str) -> tuple[str, str]:
    """("fast" or "plain", why) for this run: ``path`` is the scenario's or the caller's choice (auto, fast,
    plain); the lane runs only where it is exact (``why_plain`` says why not for the whole run,
    ``stream_workloads`` for each RunTask workload) and, for auto, worth it."""
    if path not in PATHS:
        raise ValueError(f"path must be one of {', '.join(PATHS)}, got {path!r}")
    if path == "plain":
        return "plain", "the plain path was asked for"
    why = why_plain(sim)
    if why is not None:
        return "plain", why
    streams = stream_workloads(sim)
    lane = [name for name, reason in streams.items() if reason is None]
    beside = ", ".join(f"{name} ({reason})" for name, reason in streams.items() if reason is not None)
    if not lane:
        return "plain", (f"no RunTask workload the stream lane runs: {beside}" if beside else
                         "no RunTask workload (services run on the plain path)")
    if path == "auto":
        warm = cache_is_warm()
        if expected_tasks(sim) < (AUTO_WARM_MIN_TASKS if warm else AUTO_MIN_TASKS):
            cost = "loading the stream lane's compiled code" if warm else "the stream lane's compile (not cached yet)"
            return "plain", f"a small run: {cost} would cost more than it saves"
    note = f"RunTask streams in the compiled stream lane: {', '.join(lane)}"
    return "fast", note + (f"; on the plain path beside it: {beside}" if beside else "")


def why_plain(sim: Any) -> str | None:
    """Why this whole run must take the plain path (None: the lane may run its stream workloads exactly)."""
    plan = sim.plan
    if not kernel.available():
        return kernel.INSTALL_HINT
    if plan.device_mode != "device-aware":
        return f"device_mode {plan.device_mode}"
    if not sim.placer.by_class:
        return "the placer's class index is off (the lane decides on it)"
    return None


def stream_workloads(sim: Any) -> dict[str, str | None]:
    """Each RunTask workload of the plan, in plan order, with why it runs on the plain path beside the lane
    (None: the lane runs it). Services are not listed: they always run on the plain path."""
    return {w.name: _why_beside(sim, w) for w in sim.plan.workloads if isinstance(w, RunTaskWorkload)}


def _why_beside(sim: Any, w: RunTaskWorkload) -> str | None:
    """Why the lane cannot run this RunTask workload's calls (None: it can)."""
    if not isinstance(w.arrivals, GeneratedArrivals):
        return "replays a trace"
    if len(w.blocks) != 1 or w.blocks[0].label is not None:
        return "uses device sets"
    spec = sim.specs[w.blocks[0].task_definition]
    if start_refusal(spec) is not None:
        return "has Neuron devices the runtime refuses at start"
    every = spec.constraints + tuple(w.constraints)
    try:
        kernel.check_supported(spec, every, tuple(w.strategies))
    except kernel.Unsupported as e:
        return str(e)
    return None


def expected_tasks(sim: Any) -> float:
    """A rough count of the tasks the lane's workloads will submit (for ``auto``: is a compile worth it?)."""
    from scheduler.sim import plan as p

    total = 0.0
    for w in sim.plan.workloads:
        # a service's tasks are few (its desired count); a workload beside the lane does not use its compile
        if not isinstance(w, RunTaskWorkload) or _why_beside(sim, w) is not None:
            continue
        span = max(0.0, (min(sim.duration, w.stop) if w.stop is not None else sim.duration) - w.start)
        a = w.arrivals
        if isinstance(a, p.PoissonArrivals):
            calls = a.rate * span
        elif isinstance(a, p.IntervalArrivals):
            calls = span / a.every
        elif isinstance(a, p.DiurnalArrivals):
            calls = (a.peak_rate + a.trough_rate) / 2 * span
        elif isinstance(a, p.BurstyArrivals):
            calls = a.base_rate * span
        elif isinstance(a, p.OnceArrivals):
            calls = a.calls
        else:  # a trace: never in the lane
            continue
        if w.max_calls is not None:
            calls = min(calls, w.max_calls)
        total += calls * w.count
    return total


LANE_SOURCES = ("scheduler.sim._lane_impl", *kernel.KERNEL_SOURCES)  # the loop compiles the kernel's code in


def cache_is_warm() -> bool:
    """Whether numba has cached the lane's loop for these sources (the kernel's marker mechanism: the
    lane's own marker, keyed by the lane's and the kernel's sources)."""
    return kernel.cache_is_warm("lane", LANE_SOURCES)


def functions(compiled: bool = True) -> dict[str, Any]:
    """The lane's loop and heap push, compiled now (or loaded from numba's cache) for the argument types the
    lane passes, so that a run's first event does not wait for them; with ``compiled`` False the loop
    uncompiled (its ``py_func``, calling the compiled helpers)."""
    kernel.functions()  # numba loaded the kernel's way (without its BLAS probe)
    from scheduler.sim import _lane_impl as li

    i64, f64 = np.zeros(1, np.int64), np.zeros(1, np.float64)
    i2, f2, g2 = np.zeros((1, 1), np.int64), np.zeros((1, 1), np.float64), np.zeros((1, 1), np.int32)
    flags = np.zeros(1, np.bool_)
    step = li.step.py_func
    if compiled:
        _drop_stale_loop(li.step)
        step = kernel.direct(li.step, i64, f64, i64, i64, f64, f64, i64, i64, i2, f2, i64, i64, i2, f2, f2, i2, i2,
                             i2, i2, i64, i64, i64, g2, f64, i64, i64, flags, i64, flags, 0, 0)
    fns = {"step": step, "heap_push": kernel.direct(li.heap_push, f64, i64, i64, i64, 0.0, 0, 0)}
    if compiled:
        kernel.mark_warm("lane", LANE_SOURCES, (li.step, li.heap_push))
    return fns


def _drop_stale_loop(step: Any) -> None:
    """Empty numba's cache index of the lane's loop when a kernel source is newer than it: numba checks only
    the loop's own file, yet the loop compiles the kernel's functions in, so an edited kernel (an editable
    install) would otherwise run in an old compiled loop."""
    import importlib.util
    import os

    try:
        index = step._cache._cache_file._index_path
    except AttributeError:  # a numba that keeps its cache elsewhere: nothing to check
        return
    if not os.path.exists(index):
        return
    for module in kernel.KERNEL_SOURCES:
        spec = importlib.util.find_spec(module)
        if spec and spec.origin and os.path.getmtime(spec.origin) > os.path.getmtime(index):
            with contextlib.suppress(OSError):  # a cache we cannot write is one we did not write either
                step._cache.flush()
            return


class _Wake(simpy.events.Event):
    """The lane's one event on simpy's heap, keyed with the lane's next key."""

    __slots__ = ()


@dataclasses.dataclass(slots=True)
class _Stopped:
    """A lane task among the last stopped (DescribeTasks' records): its ``TI`` and ``TF`` rows and GPU ids, made a
    SimTask when the run ends."""

    ti: list[int]
    tf: list[float]
    gpu_ids: tuple[str, ...]


class Lane:
    """The stream lane of one run (see the module docstring)."""

    def __init__(self, sim: Any, fns: dict[str, Any]) -> None:
        """``fns``: :func:`functions` (loaded before the run, as the engine is built)."""
        from scheduler.sim import _lane_impl as li

        self.li = li
        self.sim = sim
        self.env = sim.env
        self.lc = sim.lifecycle
        self.state = sim.state
        self.placer = sim.placer
        self.recorder = sim.recorder
        self.placer.compiled = True  # the lane decides on the kernel's arrays (the same decisions as Python's)
        # the RunTask workloads whose calls the lane runs (the others run on the plain path beside it)
        streams = stream_workloads(sim)
        self.runs = frozenset(name for name, why in streams.items() if why is None)
        self.beside = tuple(name for name, why in streams.items() if why is not None)
        self._step, self._push = fns["step"], fns["heap_push"]
        self.C = np.zeros(li.NC, np.int64)
        self.C[li.C_CALL_J] = -1
        self.C[li.C_PASS_K] = -1
        self.F = np.zeros(li.NF, np.float64)
        self.LIM = np.zeros(2, np.int64)
        self.L = self.state.totals_block  # the cluster totals, changed in place as record/free change them (_bind)
        self.A = np.zeros(len(INTEGRALS), np.float64)
        cap = 1024
        self.HT = np.zeros(cap, np.float64)
        self.HE = np.zeros(cap, np.int64)
        self.HP = np.zeros(cap, np.int64)
        self.TI = np.zeros((cap, li.NT), np.int64)
        self.TF = np.zeros((cap, li.NTF), np.float64)
        self.FREE = np.arange(cap - 1, -1, -1, dtype=np.int64)
        self.C[li.C_NFREE] = cap
        self.DONE = np.zeros(cap, np.int64)
        self.requests: list[Request] = []
        self.tasks_run: dict[str, int] = {}  # tasks the lane placed itself, by workload (rows it wrote)
        self.images: list[tuple[str, ...]] = []  # each workload's images (pulled by tasks with a start-up model)
        self._startup = False  # whether a workload has a start-up model (set by ``arm``)
        self.image_cache = sim.images
        self.times: list[Any] = []
        self.calls_left: list[int] = []
        self._counts: list[int] = []
        self._ended: list[int] = []
        self.W = np.zeros((0, li.NW), np.int64)
        self.AT = np.zeros((0, BLOCK), np.float64)
        self.DU = np.zeros((0, BLOCK), np.float64)
        self.VB = np.zeros((0, BLOCK), np.int64)
        self.variants: dict[int, list[str]] = {}  # a workload row with a capacity provider strategy: its providers
        self.gpu_ids: dict[int, tuple[str, ...]] = {}
        self.groups: list[str] = []
        self.G = np.zeros((0, 0), np.int32)
        self._gcols: list[np.ndarray] = []
        self._generation = -1
        self._rows_known = -1
        self.TOUCH = np.zeros(0, np.bool_)
        self.TL = np.zeros(0, np.int64)
        self.DAEMON = np.zeros(0, np.bool_)
        self.CLS = np.zeros((4, 2), np.int64)
        self.CD = np.zeros((4, li.ND), np.int64)
        self._heads: list[tuple[SimTask, Any]] = []
        self._known: dict[str, np.ndarray] = {}  # a head's task id -> the details the lane set its reason from
        self._passes = -1
        self.notes = 0  # waiting tasks' reasons set from a retry pass in the loop
        self._entries: dict[int, tuple[int, Request, Any]] = {}
        self._daemon_rows: set[int] = set()
        self.bits = (0, 0)
        self._chips_text: dict[int, str] = {}
        self._armed: _Wake | None = None  # the wake-up on simpy's heap, while the loop is not running

    # ------------------------------------------------------------------ building
    def add(self, request: Request, times: Any, max_calls: int | None, count: int) -> None:
        """A stream workload, built where the plain path's ``_next_call`` would put its first call on the clock
        (with a capacity provider strategy: its row, then one row per provider, the request a task is placed
        as when the strategy sends it there)."""
        j = len(self.requests)
        self.requests.append(request)
        self.images.append(task_images(request.spec))
        self.times.append(times)
        left = -1 if max_calls is None else max_calls
        if request.group not in self.groups:
            self.groups.append(request.group)
        self.calls_left.append(left)
        self._counts.append(count)
        if request.splitter is not None:
            self.variants[j] = list(request.variants)
            for variant in request.variants.values():  # never called: placed as, when the strategy says
                self.requests.append(variant)
                self.images.append(task_images(variant.spec))
                self.times.append(None)
                self.calls_left.append(0)
                self._counts.append(0)
                self._ended.append(1)
        if left == 0:
            self._ended.insert(j, 1)
            return
        t = next(times, None)
        self._ended.insert(j, 0 if t is not None else 1)
        if t is not None:
            now = self.env._now
            self._grow_heap()
            self._push(self.HT, self.HE, self.HP, self.C, now + max(0.0, t - now), next(self.env._eid), -1 - j)

    def arm(self) -> None:
        """The workloads are in: lay out their table and put the lane's wake-up on simpy's heap."""
        li = self.li
        n = len(self.requests)
        self.W = np.zeros((n, li.NW), np.int64)
        self.AT = np.zeros((n, BLOCK), np.float64)
        self.DU = np.zeros((n, BLOCK), np.float64)
        self.VB = np.zeros((n, BLOCK), np.int64)
        for j, names in self.variants.items():
            self.W[j, li.W_NVAR] = len(names)
        for j, req in enumerate(self.requests):
            spec = req.spec
            self.W[j, li.W_CPU] = spec.cpu
            self.W[j, li.W_MEM] = spec.memory
            self.W[j, li.W_GROW] = self.groups.index(req.group)
            self.W[j, li.W_COUNT] = self._counts[j]
            self.W[j, li.W_CALLS_LEFT] = self.calls_left[j]
            self.W[j, li.W_ENDED] = self._ended[j]
            self.W[j, li.W_STARTUP] = 1 if req.startup is not None else 0
        self._startup = any(req.startup is not None for req in self.requests)
        self._wake_at_head()

    # ------------------------------------------------------------------ simpy hand-over
    def _wake_at_head(self) -> None:
        if self.C[self.li.C_HEAP] == 0:
            return
        ev = self._armed = _Wake(self.env)
        ev.callbacks = [self._wake]
        ev._ok = True
        ev._value = None
        heapq.heappush(self.env._queue, (float(self.HT[0]), simpy.events.NORMAL, int(self.HE[0]), ev))

    def _disarm(self) -> bool:
        """Take the wake-up off simpy's heap (the heap's head is about to change from outside the loop); False
        when there is none (the loop is running: it puts its own when it yields, or the heap is empty)."""
        ev = self._armed
        if ev is None:
            return False
        queue = self.env._queue
        for k, item in enumerate(queue):
            if item[3] is ev:
                queue[k] = queue[-1]
                queue.pop()
                heapq.heapify(queue)
                break
        self._armed = None
        return True

    def _wake(self, event: Any) -> None:
        self._armed = None
        if self.sim.clock.interrupted:
            raise Interrupted
        li = self.li
        self._load()
        args = self._args()
        while True:
            code = self._step(*args)
            if code == li.ON_PLACE:  # fills columns in place: the same arrays
                self._placed(int(self.C[li.C_OUT_SLOT]))
            elif code == li.ON_STOP:
                slot = int(self.C[li.C_OUT_SLOT])
                self._stopped(slot)
                if self.C[li.C_OUT_KICK]:
                    self._released(slot)
                    args = self._args()
            elif code == li.NOTE:  # sets a waiting task's reason: the same arrays
                self._note(int(self.C[li.C_OUT_K]))
            elif code == li.PASS_PY:
                self._pass()
                args = self._args()
            elif code == li.REFILL_AT:  # in place too
                self._refill_arrivals(int(self.C[li.C_OUT_J]))
            elif code == li.REFILL_DU:
                self._refill_durations(int(self.C[li.C_OUT_J]))
            elif code == li.REFILL_VB:
                self._refill_variants(int(self.C[li.C_OUT_J]))
            elif code == li.GROW:
                self._grow()
                args = self._args()
            elif code == li.KICK:
                self._released(int(self.C[li.C_OUT_SLOT]))
                args = self._args()
            elif code == li.FAIL:
                self._store()
                self._fail(int(self.C[li.C_OUT_J]), int(self.C[li.C_OUT_ID]), float(self.F[li.F_OUT_RUN_FOR]))
                self._load()
                args = self._args()
            else:  # YIELD or IDLE
                self._store()
                if code == li.YIELD:
                    self._wake_at_head()
                return

    def _args(self) -> tuple:
        """The loop's arguments as they are now (again after anything that may replace an array: growing the
        columns, or Python's turn, which may rebuild the kernel's arrays)."""
        return (self.C, self.F, self.LIM, self.L, self.A, self.HT, self.HE, self.HP, self.TI, self.TF, self.FREE,
                self.DONE, self.W, self.AT, self.DU, self.VB, self.CLS, self.CD, self.R, self.X, self.Z, self.RUN,
                self.G, self.PRICE, self.CHIPS_ALL, self.GPU_REG, self.TOUCH, self.TL, self.DAEMON, self.bits[0],
                self.bits[1])

    def _load(self) -> None:
        """The engine's counters, levels and kernel arrays into the lane (Python may have changed any)."""
        li, C, lc, rec, env = self.li, self.C, self.lc, self.recorder, self.env
        C[li.C_EID] = next(env._eid)
        C[li.C_NEXT_ID] = lc._next_id
        C[li.C_SUBMITTED] = lc.submitted
        counts = lc.counts
        C[li.C_PROV], C[li.C_PEND], C[li.C_RUN], C[li.C_STOP] = (counts[PROVISIONING], counts[PENDING],
                                                                 counts[RUNNING], counts[STOPPED])
        C[li.C_COMPLETED] = lc.completed_count
        waiting = self.sim.waiting
        C[li.C_WAITING] = 1 if waiting.classes or waiting.freed_rows else 0
        C[li.C_PSCHED] = 1 if waiting._pass_scheduled else 0
        acc, A = rec.integrals, self.A
        for k, name in enumerate(INTEGRALS):
            A[k] = getattr(acc, name)
        self.F[li.F_LAST_T] = rec.last_t
        self.F[li.F_HELD_COST] = rec.held_chip_cost
        self.F[li.F_NOW] = env._now
        head = env._queue[0] if env._queue else (math.inf, 9, 0)
        self.F[li.F_LIMIT_T] = head[0]
        self.LIM[0], self.LIM[1] = head[1], head[2]
        self._bind()
        if self._daemon_rows or waiting.daemons:  # instances a daemon task waits on
            self.DAEMON[list(self._daemon_rows)] = False
            self._daemon_rows = set(waiting.daemons)
            self.DAEMON[list(self._daemon_rows)] = True
        self._classes()

    def _classes(self) -> None:
        """The waiting room's classes for a retry pass in the loop (``C_LPASS``): each head's kernel request
        and the failure details its reason was last set from by the lane (forgotten when Python runs a pass,
        which sets reasons on its own). The loop runs the pass only when every head is waiting and decided by
        the kernel, and no daemon waits on a freed instance."""
        li, C, waiting = self.li, self.C, self.sim.waiting
        if waiting.passes != self._passes:
            self._known.clear()
            self._passes = waiting.passes
        classes = waiting.classes
        n = len(classes)
        if len(self.CLS) < n:
            self.CLS = np.zeros((2 * n, 2), np.int64)
            self.CD = np.zeros((2 * n, li.ND), np.int64)
        heads = self._heads
        heads.clear()
        ok = n > 0 and not waiting.freed_rows
        if ok:
            for k, queue in enumerate(classes.values()):
                head = queue[0]
                if head.last_status != PROVISIONING:  # the pass drops it: Python's business
                    ok = False
                    break
                entry = self._entry(head.request)
                if entry is None:
                    ok = False
                    break
                self.CLS[k, li.CLS_SLOT] = entry.slot
                known = self._known.get(head.task_id)
                self.CLS[k, li.CLS_KNOWN] = known is not None
                if known is not None:
                    self.CD[k] = known
                heads.append((head, entry))
        C[li.C_NCLS] = n
        C[li.C_LPASS] = 1 if ok else 0

    def _entry(self, request: Request) -> Any:
        """The kernel's entry for a waiting task's request, as ``placer.place`` finds it (None: not decided by
        the kernel)."""
        if request.only is not None:
            return None
        cached = self._entries.get(id(request))
        if cached is not None and cached[0] == self._generation:
            return cached[2]
        entry = self._prepared(request)
        found = entry if entry.slot >= 0 else None
        self._entries[id(request)] = (self._generation, request, found)  # the request kept alive with its id
        return found

    def _prepared(self, request: Request) -> Any:
        """``Placer.prepared`` for a request, with the arguments ``placer.place`` gives it."""
        spec = request.spec
        cps = tuple(request.capacity_providers) if request.capacity_providers is not None else None
        return self.placer.prepared(spec, spec.constraints + tuple(request.constraints), tuple(request.strategies),
                                    request.group, request.launch_type, cps)

    def _note(self, k: int) -> None:
        """The head of class k failed with other details than its reason was set from (they are in the kernel's
        output): its reason now, as ``WaitingRoom.retry`` sets it."""
        head, entry = self._heads[k]
        live = self.state._live
        failure = entry.failures.get(live._details.tobytes()) or self.placer._compiled_failure(entry, live)
        note_failure(head, failure)
        self._known[head.task_id] = self.CD[k].copy()
        self.notes += 1

    def _pass(self) -> None:
        """The waiting room's retry pass, in Python (a head can be placed now, or the loop cannot try them)."""
        self._store()
        self.sim.waiting.retry()
        self._load()

    def _store(self) -> None:
        """The lane's counters and levels back into the engine; the rows of the tasks stopped since."""
        li, C, lc, rec, env = self.li, self.C, self.lc, self.recorder, self.env
        env._eid = itertools.count(int(C[li.C_EID]))
        env._now = float(self.F[li.F_NOW])
        lc._next_id = int(C[li.C_NEXT_ID])
        lc.submitted = int(C[li.C_SUBMITTED])
        counts = lc.counts
        counts[PROVISIONING], counts[PENDING], counts[RUNNING], counts[STOPPED] = (
            int(C[li.C_PROV]), int(C[li.C_PEND]), int(C[li.C_RUN]), int(C[li.C_STOP]))
        lc.completed_count = int(C[li.C_COMPLETED])
        self.sim.waiting._pass_scheduled = bool(C[li.C_PSCHED])
        acc = rec.integrals
        for k, name in enumerate(INTEGRALS):
            setattr(acc, name, float(self.A[k]))
        rec.last_t = float(self.F[li.F_LAST_T])
        rec.held_chip_cost = float(self.F[li.F_HELD_COST])
        rec.advance(rec.last_t)  # the level from last_t on: the totals as the lane left them (nothing to integrate)
        n = int(C[li.C_NTOUCH])
        if n:
            rows = self.TL[:n]
            self.state._dirty.update(rows.tolist())
            self.TOUCH[rows] = False
            C[li.C_NTOUCH] = 0
            spread = self.state._spread_counts
            for group in self.groups:  # derived from the group counts: recomputed when next asked for
                spread.pop(group, None)
        self.flush()

    def _bind(self) -> None:
        """The kernel's arrays, the state's columns and each workload's request slot, as they are now."""
        li, st = self.li, self.state
        live = self.placer.live()
        assert live is not None
        if live.generation != self._generation:
            for j, req in enumerate(self.requests):
                if j in self.variants:  # placed as one of its variants
                    self.W[j, li.W_SLOT] = -1
                    continue
                spec = req.spec
                entry = self._prepared(req)
                self.W[j, li.W_SLOT] = entry.slot
                self.W[j, li.W_GROUP] = live.groups.get(req.group, -1)
                if entry.slot >= 0:
                    self.W[j, li.W_ENI] = entry.enis
                    self.W[j, li.W_CHIPS] = entry.chips
                    self.W[j, li.W_GPUS] = entry.gpus if entry.gpus >= 0 else -1
                    if spec.gpu_fraction:
                        self.W[j, li.W_GPUS] = 1
            self._generation = live.generation
        self.R, self.X, self.Z = live.R, live.X, live.Z
        self.L = st.totals_block
        if live._rng is not self.sim.placement_rng:
            live.use_rng(self.sim.placement_rng)
        self.bits = (live._st, live._fn)
        self.RUN = st._running
        self.CHIPS_ALL = st._chips_all.view(np.int64)
        self.GPU_REG = st._gpu_reg
        cap = st._cap
        if len(self.TOUCH) != cap:
            self.TOUCH = np.zeros(cap, np.bool_)
            self.TL = np.zeros(cap, np.int64)
            self.DAEMON = np.zeros(cap, np.bool_)
            self.DAEMON[list(self._daemon_rows)] = True
        counts = st._group_counts
        if len(self._gcols) != len(self.groups) or any(counts.get(g) is not col
                                                       for g, col in zip(self.groups, self._gcols, strict=True)):
            self.G = np.zeros((len(self.groups), cap), np.int32)
            self._gcols = []
            for gi, g in enumerate(self.groups):
                old = counts.get(g)
                if old is not None:
                    self.G[gi, : len(old)] = old[:cap]
                counts[g] = self.G[gi]
                st._group_mv[g] = memoryview(self.G[gi])
                self._gcols.append(counts[g])
        if self._rows_known != len(st):
            n = len(st)
            self.PRICE = np.zeros(cap, np.float64)
            for row in range(n):
                self.PRICE[row] = self.sim._chip_price(row)
            insts = st.instances
            self._row_text = [(i.launch_type, i.capacity_provider, i.ec2_instance_id, i.instance_type.name,
                               i.availability_zone) for i in insts]
            self._rows_known = n

    # ------------------------------------------------------------------ what Python does
    def _placed(self, slot: int) -> None:
        """Python's share of a lane task's placement: its GPU ids, and with a start-up model what
        ``TaskLifecycle.try_start`` draws (image pull and container start, the image cache) and its start
        on the heap, with the eid the plain path's ``at`` takes there."""
        li = self.li
        if self.TI[slot, li.T_GPUS] != 0:
            self._gpu_take(slot)
        j = int(self.TI[slot, li.T_WORKLOAD])
        startup = self.requests[j].startup
        if startup is None:
            return
        row, now, images = int(self.TI[slot, li.T_ROW]), float(self.F[li.F_NOW]), self.images[j]
        pull, start = startup.draw(self.image_cache.has(row, images, now))
        self.image_cache.acquire(row, images, now)
        self.TF[slot, li.TF_PULLED] = now + pull
        t = now + pull + start
        C = self.C
        eid = int(C[li.C_EID])
        C[li.C_EID] = eid + 1
        self._push(self.HT, self.HE, self.HP, C, now + max(0.0, t - now), eid, li.STARTED + slot)

    def _stopped(self, slot: int) -> None:
        """Python's share of a lane task's stop: its GPU ids back, its images released (``TaskLifecycle.stop``)."""
        li = self.li
        if self.TI[slot, li.T_GPUS] != 0:
            self._gpu_give(slot)
        j = int(self.TI[slot, li.T_WORKLOAD])
        if self.requests[j].startup is not None:
            self.image_cache.release(int(self.TI[slot, li.T_ROW]), self.images[j], float(self.F[li.F_NOW]))

    def _gpu_take(self, slot: int) -> None:
        """``ClusterState.record``'s GPU ids: the first free ones of the row."""
        row, n = int(self.TI[slot, self.li.T_ROW]), int(self.TI[slot, self.li.T_GPUS])
        inst = self.state.instances[row]
        ids = tuple(inst.free_gpu_ids[:n])
        del inst.free_gpu_ids[:n]
        self.gpu_ids[slot] = ids

    def _gpu_give(self, slot: int) -> None:
        """``ClusterState.free``'s GPU ids: back, in the instance's order."""
        inst = self.state.instances[int(self.TI[slot, self.li.T_ROW])]
        ids = self.gpu_ids[slot]
        inst.free_gpu_ids.extend(ids)
        if len(inst.free_gpu_ids) > 1:
            order = {g: k for k, g in enumerate(inst.gpu_ids)}
            inst.free_gpu_ids.sort(key=order.__getitem__)

    def _released(self, slot: int) -> None:
        """``TaskLifecycle.stop``'s end for a task that held resources: a daemon waiting on its instance is
        retried next pass, and one retry pass is scheduled now (``WaitingRoom.kick``)."""
        self._store()
        self.sim.waiting.freed(int(self.TI[slot, self.li.T_ROW]))
        self.sim.waiting.kick()
        self._load()

    def _fail(self, j: int, number: int, run_for: float) -> None:
        """The compiled decision failed: the plain lifecycle submits the task (the same id and duration)."""
        self.lc._next_id = number - 1
        self.lc.submit(self.requests[j], run_for=run_for)

    def _refill_arrivals(self, j: int) -> None:
        """The next arrival times of workload j: a block drawn ahead, or one time when its start-up draws share
        the arrivals' generator (then each is drawn where the plain path draws it: after the call's tasks)."""
        li = self.li
        if self.requests[j].startup is not None:
            t = next(self.times[j], None)
            n = 0 if t is None else 1
            if n:
                self.AT[j, 0] = t
        else:
            block = np.fromiter(islice(self.times[j], BLOCK), np.float64)
            n = len(block)
            self.AT[j, :n] = block
        self.W[j, li.W_AT_I] = 0
        self.W[j, li.W_AT_N] = n
        if n == 0:
            self.W[j, li.W_ENDED] = 1

    def _refill_durations(self, j: int) -> None:
        li = self.li
        draw = self.requests[j].duration
        if isinstance(draw, types.MethodWrapperType) and isinstance(draw.__self__, types.GeneratorType):
            block = np.fromiter(islice(draw.__self__, BLOCK), np.float64, BLOCK)  # a batched generator's next
        else:
            block = np.array([draw() for _ in range(BLOCK)], np.float64)
        self.DU[j] = block
        self.W[j, li.W_DU_I] = 0
        self.W[j, li.W_DU_N] = BLOCK

    def _refill_variants(self, j: int) -> None:
        """The next block of a strategy's choices (it depends on nothing but the tasks it was asked for)."""
        li, splitter, names = self.li, self.requests[j].splitter, self.variants[j]
        assert splitter is not None
        self.VB[j] = [names.index(splitter.next()) for _ in range(BLOCK)]
        self.W[j, li.W_VB_I] = 0
        self.W[j, li.W_VB_N] = BLOCK

    def _grow_heap(self) -> None:
        if self.C[self.li.C_HEAP] < len(self.HT):
            return
        n = 2 * len(self.HT)
        for name in ("HT", "HE", "HP"):
            old = getattr(self, name)
            new = np.zeros(n, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def _grow(self) -> None:
        li = self.li
        self._grow_heap()
        if self.C[li.C_NFREE] == 0:
            cap = len(self.TI)
            n = 2 * cap
            TI = np.zeros((n, li.NT), np.int64)
            TI[:cap] = self.TI
            TF = np.zeros((n, li.NTF), np.float64)
            TF[:cap] = self.TF
            DONE = np.zeros(n, np.int64)
            DONE[:cap] = self.DONE
            self.TI, self.TF, self.DONE = TI, TF, DONE
            self.FREE = np.zeros(n, np.int64)
            self.FREE[: n - cap] = np.arange(n - 1, cap - 1, -1, dtype=np.int64)
            self.C[li.C_NFREE] = n - cap

    # ------------------------------------------------------------------ tasks handed to the plain path
    def adopt(self, row: int) -> None:
        """Hand the lane's tasks on instance ``row`` to the plain path, before Python stops tasks there (a lost
        or deregistered instance, a failed chip): each becomes the SimTask the plain path would hold, its
        allocation recorded in the cluster state (which the lane left as the plain path would have it), its
        next event moved to simpy's heap under the same key. The plain lifecycle then stops or ends it exactly
        as it would have, and the lane never sees it again."""
        li = self.li
        self.flush()  # stopped slots back on the free stack: every other slot holds a live task
        free = np.zeros(len(self.TI), np.bool_)
        free[self.FREE[: int(self.C[li.C_NFREE])]] = True
        slots = np.flatnonzero(~free & (self.TI[:, li.T_ROW] == row))
        if not len(slots):
            return
        armed = self._disarm()  # before a moved call takes its key on simpy's heap
        n = int(self.C[li.C_HEAP])
        HT, HE, HP = self.HT[:n], self.HE[:n], self.HP[:n]
        moved = np.isin(HP, slots) | np.isin(HP, slots + li.STARTED)
        tasks = {}
        for s in slots.tolist():
            task = tasks[s] = self._task(s, stopped=False)
            self._hold(task)
            self.lc.tasks[task.task_id] = task
            self.tasks_run[task.workload] = self.tasks_run.get(task.workload, 0) + 1
            self.gpu_ids.pop(s, None)
        for k in np.flatnonzero(moved).tolist():  # its start while PENDING, else its exit (none: it runs forever)
            p = int(HP[k])
            if p >= li.STARTED:
                self.sim.clock.at_key(float(HT[k]), int(HE[k]), self.lc._running, tasks[p - li.STARTED])
            else:
                self.sim.clock.at_key(float(HT[k]), int(HE[k]), self.lc._exit, tasks[p])
        keep = ~moved
        HT, HE, HP = HT[keep], HE[keep], HP[keep]
        order = np.lexsort((HE, HT))  # sorted by (time, eid) is a heap
        m = len(order)
        self.HT[:m], self.HE[:m], self.HP[:m] = HT[order], HE[order], HP[order]
        self.C[li.C_HEAP] = m
        nf = int(self.C[li.C_NFREE])
        self.FREE[nf: nf + len(slots)] = slots[::-1]
        self.C[li.C_NFREE] = nf + len(slots)
        if armed:
            self._wake_at_head()

    def _hold(self, task: SimTask) -> None:
        """What ``ClusterState.record`` keeps per task and the lane does not: its allocation, its place in the
        instance's tasks and chip holders."""
        assert task.request is not None and task.instance is not None
        st, spec, row = self.state, task.spec, task.instance
        mask = sum(1 << c for c in task.chips)
        st.allocations[task.task_id] = Allocation(task.task_id, row, spec.cpu, spec.memory, task.gpu_ids, mask,
                                                  (), (), task.group, enis_taken(spec))
        inst = st.instances[row]
        inst.tasks.add(task.task_id)
        for c in task.chips:
            inst.chip_holders[c] = task.task_id

    # ------------------------------------------------------------------ results
    def _chips(self, mask: int) -> str:
        text = self._chips_text.get(mask)
        if text is None:
            text = self._chips_text[mask] = ",".join(map(str, chips_of(mask)))
        return text

    def _task(self, slot: int, *, stopped: bool) -> SimTask:
        """The SimTask the plain path would hold for the task in ``slot`` (for DescribeTasks)."""
        return self._task_of(self.TI[slot].tolist(), self.TF[slot].tolist(), self.gpu_ids.get(slot, ()), stopped)

    def _task_of(self, ti: list[int], tf: list[float], gpu_ids: tuple[str, ...], stopped: bool) -> SimTask:
        """The SimTask of a task's ``TI`` and ``TF`` rows and GPU ids."""
        number, j, row, mask = ti[:4]
        created, stopped_at, run_for, started, pulled = tf
        req = self.requests[j]
        inst = self.state.instances[row]
        up = not math.isnan(started)
        task = SimTask(task_id=identity.task_id(number), spec=req.spec, group=req.group,
                       last_status=RUNNING if up else PENDING, launch_type=inst.launch_type, created_at=created,
                       workload=req.workload, request=req, run_for=run_for, started_by=None,
                       capacity_provider=inst.capacity_provider)
        task.placed_at = created
        task.instance = row
        task.chips = chips_of(mask)
        task.gpu_ids = gpu_ids
        task.ever_ran = True
        task.started_at = started if up else None
        if req.startup is not None:  # TaskLifecycle.try_start: the agent pulls from placement on
            task.pull_started_at, task.pull_stopped_at = created, pulled
        if stopped:
            task.last_status = task.desired_status = STOPPED
            task.stopped_at = stopped_at
            task.stop_code, task.stopped_reason = EXITED[1], EXITED[2]
        else:
            task.held = True
        return task

    def flush(self) -> None:
        """The rows of the tasks stopped since the last flush, in stop order (and their slots freed)."""
        li, C = self.li, self.C
        n = int(C[li.C_NDONE])
        if not n:
            return
        slots = self.DONE[:n].copy()
        C[li.C_NDONE] = 0
        recent = self.lc.recent_stopped  # read at the end of the run only: SimTasks built then (finish)
        last = slots[-recent.maxlen:]
        gpu_ids = self.gpu_ids
        for s, ti, tf in zip(last.tolist(), self.TI[last].tolist(), self.TF[last].tolist(), strict=True):
            recent.append(_Stopped(ti, tf, gpu_ids.get(s, ())))
        TI, TF = self.TI[slots], self.TF[slots]
        ids = [identity.task_id(v) for v in TI[:, li.T_ID].tolist()]
        js = TI[:, li.T_WORKLOAD].tolist()
        rows = TI[:, li.T_ROW].tolist()
        created = TF[:, li.TF_CREATED].tolist()
        ended = TF[:, li.TF_STOPPED].tolist()
        pulls: list[float | None] = [None] * n
        pulled = self.W[TI[:, li.T_WORKLOAD], li.W_STARTUP].astype(bool) if self._startup else None
        startup = pulled is not None and bool(pulled.any())
        if startup:  # placed at submission: a task's wait is its start-up
            started = TF[:, li.TF_STARTED].tolist()
            waits = (TF[:, li.TF_STARTED] - TF[:, li.TF_CREATED]).tolist()
            for k, pull in zip(np.flatnonzero(pulled).tolist(),
                               (TF[pulled, li.TF_PULLED] - TF[pulled, li.TF_CREATED]).tolist(), strict=True):
                pulls[k] = pull
        else:  # RUNNING at placement: no wait, no start-up
            started, waits = created, [0.0] * n
        reqs = self.requests
        text = self._row_text
        chips = [self._chips(m) for m in TI[:, li.T_CHIPS].tolist()]
        columns = {
            "task_id": ids, "family": [reqs[j].spec.family for j in js], "workload": [reqs[j].workload for j in js],
            "group": [reqs[j].group for j in js], "launch_type": [text[r][0] for r in rows],
            "capacity_provider": [text[r][1] for r in rows], "submit": created, "start": started, "end": ended,
            "final_state": [EXITED[0]] * n, "stop_code": [EXITED[1]] * n, "stop_reason": [EXITED[2]] * n,
            "instance_id": [text[r][2] for r in rows], "instance_type": [text[r][3] for r in rows],
            "availability_zone": [text[r][4] for r in rows], "chips": chips, "wait_s": waits, "placed": [True] * n,
            "startup_s": waits, "pull_s": pulls,
        }
        self._rows(columns, n)
        slo = self.sim.slo
        ran = self.tasks_run
        if not startup:
            by_count: dict[str, int] = {}  # a workload's variant rows count under its name
            for j, m in enumerate(np.bincount(TI[:, li.T_WORKLOAD], minlength=len(reqs)).tolist()):
                if m:
                    by_count[reqs[j].workload] = by_count.get(reqs[j].workload, 0) + m
            for name, m in by_count.items():  # placed at submission and RUNNING at once: no wait, no start-up
                slo.record_started(name, [0.0] * m, [0.0] * m)
                ran[name] = ran.get(name, 0) + m
        else:
            by_name: dict[str, list[float]] = {}
            for j, wait in zip(js, waits, strict=True):  # placed at submission: its wait is its start-up
                by_name.setdefault(reqs[j].workload, []).append(wait)
            for name, m in by_name.items():
                slo.record_started(name, m, m)
                ran[name] = ran.get(name, 0) + len(m)
        for s in slots.tolist():
            self.gpu_ids.pop(s, None)
        nf = int(C[li.C_NFREE])
        self.FREE[nf: nf + n] = slots
        C[li.C_NFREE] = nf + n

    def _rows(self, columns: dict[str, list], n: int) -> None:
        """Append rows to the recorder as ``task_row`` would one by one (a chunk to the sink at CHUNK_ROWS)."""
        rec = self.recorder
        done = 0
        while done < n:
            take = n - done
            if rec.sink is not None:
                take = min(take, max(1, metrics.CHUNK_ROWS - len(rec.rows["task_id"])))
            for c in TASK_COLUMNS:
                rec.rows[c].extend(columns[c][done: done + take])
            done += take
            if rec.sink is not None and len(rec.rows["task_id"]) >= metrics.CHUNK_ROWS:
                rec.flush()
        rec._appenders = [rec.rows[c].append for c in TASK_COLUMNS]

    def finish(self) -> list[SimTask]:
        """At the end of the run: every task still alive (the plain ones and the lane's), oldest first."""
        self.flush()
        li = self.li
        free = set(self.FREE[: int(self.C[li.C_NFREE])].tolist())
        recent = self.lc.recent_stopped
        for k, r in enumerate(recent):
            if isinstance(r, _Stopped):
                recent[k] = self._task_of(r.ti, r.tf, r.gpu_ids, True)
        mine = [self._task(s, stopped=False) for s in range(len(self.TI)) if s not in free]
        for task in mine:  # for anyone reading the state after the run
            self.tasks_run[task.workload] = self.tasks_run.get(task.workload, 0) + 1
            self._hold(task)
        both = list(self.lc.tasks.values()) + mine
        # as the plain path holds them: a snapshot's tasks first (in its order), then by creation
        both.sort(key=lambda t: (not t.seeded, 0 if t.seeded else int(t.task_id, 16)))
        self.lc.tasks = {t.task_id: t for t in both}
        return both
