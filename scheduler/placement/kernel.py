"""The compiled placement decision: classes of identical instances as dense arrays, in numba.

The same decision as the Python path over classes (``Placer`` with ``by_class``), made in compiled code for
a stream of place and release operations (how the simulation makes them):

- rows are grouped into classes keyed by (signature, free CPU, memory, GPUs, ENIs, chips); a hash maps a
  key to its class slot, and reserve/release move one row between classes (O(1) plus a shift in the
  class's sorted row list, so that "the k-th candidate row" is found by bisection);
- each request's static eligibility (launch type, status, architecture, memberOf) is computed once per
  signature in Python by the filters and passed in as a table;
- a scan over the live classes keeps the feasible ones and narrows them by the strategy chain, then the
  tie among the rows left is broken with ``rng.integers(total)`` on the caller's numpy Generator, exactly
  as the Python path draws it (numba's Generator shares the bit generator's state and algorithm);
- on failure it returns the index of the resource filter that removed the last candidates; the words
  are built in Python (``filters.resources.RESOURCES``).

numba is optional (``pip install -e ".[fast]"``): ``available()`` says whether it is installed.
Compiled code is cached on disk (numba's cache: beside this file when writable, else the user's cache
directory), so only the first run on a machine pays the compile.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from scheduler.errors import install_command

INSTALL_HINT = f"the compiled placement kernel needs numba: {install_command('fast')}"

# strategy codes in a chain table
S_NONE, S_RANDOM, S_BINPACK_CPU, S_BINPACK_MEM, S_BINPACK_GPU, S_BINPACK_CHIPS, S_SPREAD = range(7)
# neuron modes in the request table
N_NONE, N_MANUAL, N_MANAGED = 0, 1, 2
# resource filter order in failure codes: index into filters.resources.RESOURCES order without ports
RESOURCE_STEPS = ("cpu", "memory", "gpu", "eni", "neuron devices")
MANAGED_LAUNCH = 1


def available() -> bool:
    """Whether numba is installed (the kernel compiles on first use)."""
    return importlib.util.find_spec("numba") is not None


_compiled: dict[str, object] = {}


def functions() -> dict[str, object]:
    """The compiled functions, compiling (or loading from the cache) on first call."""
    if not _compiled:
        if not available():
            raise ImportError(INSTALL_HINT)
        from scheduler.placement import _kernel_impl

        _compiled.update(_kernel_impl.FUNCTIONS)
    return _compiled


class Unsupported(ValueError):
    """A request the kernel does not decide (the Python path does): host ports, topology-aware or ECS-blind
    devices, GPU=ALL or fractional GPUs, distinctInstance or dynamic memberOf, spread by instance."""


STRATEGY_CODES = {("binpack", "cpu"): S_BINPACK_CPU, ("binpack", "memory"): S_BINPACK_MEM,
                  ("binpack", "gpu"): S_BINPACK_GPU, ("binpack", "neuronDevices"): S_BINPACK_CHIPS}


class CompiledStream:
    """A cluster (with no task yet) and a fixed set of requests, decided in compiled code.

    ``requests`` are (spec, constraints, strategies) triples; a request's group is ``family:<family>``.
    ``fill`` and ``churn`` run the benchmark's two phases in compiled code; ``decisions`` gives their
    outcome in the Python path's comparable form (row, chips) or the failure reason.
    """

    def __init__(self, state, requests, *, device_mode: str = "device-aware", max_tasks: int | None = None) -> None:
        from scheduler.placement import strategies as strat
        from scheduler.placement.devices import DeviceMode
        from scheduler.placement.filters import REASONS, Request
        from scheduler.placement.filters.pipeline import run_static
        from scheduler.placement.placer import PER_INSTANCE_SUBJECTS, Placer

        if DeviceMode(device_mode) is not DeviceMode.AWARE:
            raise Unsupported("the kernel decides device-aware placement only")
        if state.allocations:
            raise Unsupported("the kernel starts from a cluster that runs no task")
        fn = functions()
        n = len(state)
        ix = state.classes()
        sig_cols = ix.signature_columns()
        nsig = len(ix.sig_rows)
        self.R = np.zeros((7, n), np.int64)
        self.R[0] = ix.row_sig[:n]
        self.R[1], self.R[2], self.R[3] = state.cpu_free, state.mem_free, state.gpu_free
        self.R[4], self.R[5] = state.eni_free, state.chips_free.astype(np.int64)
        self.S = np.zeros((2, max(nsig, 1)), np.int64)
        self.S[0, :nsig] = sig_cols[0]
        self.S[1, :nsig] = sig_cols[3].astype(np.int64)
        attrs: list[str] = []
        groups: list[str] = []
        placer = Placer(state)
        self.reasons_static: list[str] = []
        q = np.full((len(requests), 18), 0, np.int64)
        qok = np.zeros((len(requests), max(nsig, 1)), bool)

        def chain_codes(chain) -> tuple[list[int], list[int]]:
            codes, where = [0] * 5, [0] * 5
            for j, s in enumerate(chain):
                if s.type == "random":
                    codes[j] = S_RANDOM
                elif s.type == "binpack":
                    codes[j] = STRATEGY_CODES[("binpack", s.field or "memory")]
                elif (s.field or "").startswith("attribute:"):
                    name = s.field.removeprefix("attribute:")
                    if name not in attrs:
                        attrs.append(name)
                    codes[j], where[j] = S_SPREAD, attrs.index(name)
                else:
                    raise Unsupported(f"spread by {s.field}: decided per instance, on the Python path")
            return codes, where

        for r, (spec, constraints, chain) in enumerate(requests):
            self._check(spec, constraints, PER_INSTANCE_SUBJECTS, strat, chain)
            group = f"family:{spec.family}"
            if group not in groups:
                groups.append(group)
            every = spec.constraints + tuple(constraints)
            req = Request(spec, state, DeviceMode.AWARE, None, None, group, every, placer.cql_options)
            sp = run_static(req)
            fail = sp.failed is not None or n == 0
            self.reasons_static.append(placer._static_failure(req, sp).reason if fail else "")
            qok[r, :nsig] = ix.signature_mask(sp.mask)[:-1] if n else False
            mode = {"none": N_NONE, "manual": N_MANUAL, "managed": N_MANAGED}[spec.neuron_mode.value]
            codes, where = chain_codes(chain)
            q[r, :8] = (spec.cpu, spec.memory, spec.gpus, 1 if spec.network_mode == "awsvpc" else 0, mode,
                        sum(1 << c for c in spec.chips) if mode == N_MANUAL else 0, groups.index(group),
                        0 if fail else -1)
            q[r, 8:13], q[r, 13:18] = codes, where
        mi_codes, mi_where = chain_codes(strat.MANAGED_INSTANCES_IMPLICIT)
        self.chain_mi = np.array(mi_codes + mi_where, np.int64)
        self.Q = q
        self.QS = np.ascontiguousarray(np.flatnonzero(qok.ravel()) % qok.shape[1], np.int64)
        self.QO = np.concatenate(([0], np.cumsum(qok.sum(axis=1)))).astype(np.int64)
        self.SA = np.zeros((len(attrs), max(nsig, 1)), np.int64)
        values = 1
        for a, name in enumerate(attrs):
            codes = state.signature_codes(name) if n else np.zeros(0, np.int64)
            self.SA[a, :nsig] = codes
            values = max(values, len(state.attribute_codes(name)[1]))
        self.SP = np.zeros((len(attrs), max(len(groups), 1), values), np.int64)
        self.max_tasks = max_tasks or 1 << 20
        self.T = np.zeros((8, self.max_tasks), np.int64)
        self.live = np.zeros(self.max_tasks, np.int64)
        self.C, self.idx, self.rows, self.free, self.M = fn["new_index"](self.R, self.S, n + 1)
        self.reasons = REASONS
        self._fn = fn

    @staticmethod
    def _check(spec, constraints, per_instance, strat, chain) -> None:
        from scheduler.ecs import cql
        from scheduler.ecs.taskspec import NeuronMode

        if spec.tcp_ports or spec.udp_ports:
            raise Unsupported("host ports are decided on the Python path")
        if spec.neuron_mode is NeuronMode.TOPOLOGY:
            raise Unsupported("topology-aware chips are decided on the Python path")
        if spec.gpus_all or spec.gpu_fraction:
            raise Unsupported("GPU=ALL and fractional GPUs are decided on the Python path")
        for c in spec.constraints + tuple(constraints):
            if c.type != "memberOf":
                raise Unsupported(f"{c.type} depends on the tasks running: decided on the Python path")
            query = cql.parse(c.expression or "")
            if not query.is_static or query.subjects & per_instance:
                raise Unsupported("a memberOf expression that changes with the tasks running")
        if not strat.classes_can_narrow(tuple(chain)):
            raise Unsupported("a strategy chain scored per instance")

    # ------------------------------------------------------------------ phases
    def _args(self) -> tuple:
        return (self.R, self.C, self.idx, self.rows, self.free, self.M, self.S, self.SA, self.SP, self.T,
                self.Q, self.QS, self.QO, self.chain_mi)

    def fill(self, reqs: np.ndarray, rng: np.random.Generator, window: int = 500,
             fail_share: float = 0.5) -> tuple[int, np.ndarray, np.ndarray]:
        """Place ``reqs`` until more than ``fail_share`` of the last ``window`` failed (the benchmark's
        saturation); returns how many were decided and their (row or code, task slot) outputs."""
        reqs = np.ascontiguousarray(reqs, np.int64)
        out_row = np.zeros(len(reqs), np.int64)
        out_task = np.zeros(len(reqs), np.int64)
        done = self._fn["run"](*self._args(), rng, reqs, np.zeros(len(reqs)), self.live, -1, window, fail_share,
                               out_row, out_task)
        return int(done), out_row[:done], out_task[:done]

    def churn(self, reqs: np.ndarray, us: np.ndarray, rng: np.random.Generator,
              saturated: int) -> tuple[np.ndarray, np.ndarray]:
        """Release a random live task (at fraction ``us[i]`` of the live list) while ``saturated`` run,
        then place ``reqs[i]``; the outputs per decision."""
        reqs = np.ascontiguousarray(reqs, np.int64)
        out_row = np.zeros(len(reqs), np.int64)
        out_task = np.zeros(len(reqs), np.int64)
        self._fn["run"](*self._args(), rng, reqs, np.ascontiguousarray(us, np.float64), self.live, saturated, 0,
                        0.0, out_row, out_task)
        return out_row, out_task

    @property
    def running(self) -> int:
        return int(self.M[2])

    def decision(self, request: int, row_or_code: int, task: int) -> tuple[int | None, tuple[int, ...], str | None]:
        """(row, chips, None) for a placement, (None, (), reason) for a failure, as the Python path says."""
        if task >= 0:
            chips = int(self.T[5, task])
            return row_or_code, tuple(i for i in range(chips.bit_length()) if chips >> i & 1), None
        if row_or_code <= -100:
            return None, (), self.reasons_static[request]
        return None, (), self.reasons[RESOURCE_STEPS[-1 - row_or_code]]

    def is_empty(self) -> bool:
        """No task running and every row back to its registered resources."""
        return self.M[2] == 0 and bool((self.T[0, : self.M[3]] < 0).all())
