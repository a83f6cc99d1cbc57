"""The compiled placement decision: classes of identical instances as dense arrays, in numba.

``LiveIndex`` is the decision engine behind ``Placer.place`` for the requests it supports (the Python path
decides the others and stays the reference; tests hold both to identical decisions):

- rows are grouped into classes keyed by (signature, free CPU, memory, GPUs, ENIs, chips); a hash maps a
  key to its class slot, and a placement or release moves one row between classes in O(1) (a class's rows
  are kept in no order, each with its position; "the k-th candidate row" is found by radix selection
  over the tied classes' rows). The free columns are ClusterState's own: the kernel writes them in place;
- each request's static eligibility (launch type, status, architecture, memberOf) is computed once per
  signature in Python by the filters and cached by request (until the instances change);
- one kernel call per decision scans only the classes of the signatures the request may run on, keeps the
  feasible ones, narrows them by the strategy chain, then breaks the tie among the rows left with
  ``rng.integers(total)`` drawn from the caller's own Generator exactly as numpy draws it;
- on failure the kernel leaves each resource step's survivors, the closest instance and what it lacks;
  the words are built in Python, the same as the Python pass builds them.

``placement.stream.CompiledStream`` runs the benchmark's fill and churn as a stream in compiled code.

numba is optional (``pip install -e ".[fast]"``): ``available()`` says whether it is installed. Compiled
code is cached on disk by numba (beside this package when writable, else in the user's cache directory),
so only the first run on a machine pays the compile; ``cache_is_warm()`` says, without importing numba,
whether that has happened (``Placer(compiled="auto")`` uses the kernel only then, or on large clusters).
"""

from __future__ import annotations

import ctypes
import hashlib
import importlib.util
import json
import os
import sys
from itertools import count
from pathlib import Path

import numpy as np

from scheduler.errors import install_command

INSTALL_HINT = f"the compiled placement kernel needs numba: {install_command('fast')}"
AUTO_MIN_INSTANCES = 10_000  # "auto" compiles a cold kernel only for clusters at least this large

# strategy codes in a chain, neuron and GPU modes (the same numbers as _kernel_impl)
S_NONE, S_RANDOM, S_BINPACK_CPU, S_BINPACK_MEM, S_BINPACK_GPU, S_BINPACK_CHIPS, S_SPREAD = range(7)
N_NONE, N_MANUAL, N_MANAGED = 0, 1, 2
G_NONE, G_COUNT, G_ALL, G_FRACTION = range(4)
# resource steps in the kernel's failure details, in the Python pass's order (ports never reach it)
RESOURCE_STEPS = ("cpu", "memory", "gpu", "eni", "neuron devices")
STRATEGY_CODES = {"cpu": S_BINPACK_CPU, "memory": S_BINPACK_MEM, "gpu": S_BINPACK_GPU,
                  "neuronDevices": S_BINPACK_CHIPS}
PARTITION_SCALE = 1000  # a GPU fraction as an integer code: 0.125 -> 125
LIVE_FUNCTIONS = ("build", "decide", "relocate")  # what Placer calls: warm when all three are cached
O_DETAILS = slice(16, 29)  # where the kernel leaves a failed decision's details in its index (_kernel_impl.O_BASE)
QUERY_FIELDS = 19  # fields per request in the kernel's request table (_kernel_impl.NQF)


def available() -> bool:
    """Whether numba is installed (the kernel compiles on first use)."""
    return importlib.util.find_spec("numba") is not None


_compiled: dict[str, object] = {}


def functions() -> dict[str, object]:
    """The compiled functions, compiling (or loading from the cache) on first call."""
    if not _compiled:
        if not available():
            raise ImportError(INSTALL_HINT)
        _skip_blas_probe()
        from scheduler.placement import _kernel_impl

        _compiled.update(_kernel_impl.FUNCTIONS)
    return _compiled


def _skip_blas_probe() -> None:
    """Load numba's numpy implementations without their BLAS probe, which imports all of ``scipy.linalg``
    (about 0.4 s of CPU, most of a warm start) only to choose how ``np.correlate``/``np.convolve`` of floats
    compile; the kernel calls neither (they then compile to numba's plain loop). Nothing changes when
    scipy.linalg or numba's implementations are already imported."""
    if "numba.np.arraymath" in sys.modules or "scipy.linalg" in sys.modules:
        return
    from numba.np import linalg

    probe = getattr(linalg, "ensure_blas", None)
    if probe is None:  # a numba without this probe: load as it is
        return

    def no_blas() -> None:
        raise ImportError("BLAS probe skipped by the placement kernel")

    linalg.ensure_blas = no_blas
    try:
        import numba.np.arraymath  # noqa: F401
    finally:
        linalg.ensure_blas = probe


# ---------------------------------------------------------------------- is the on-disk cache warm?
KERNEL_SOURCES = ("scheduler.placement._kernel_impl",)


def _source_digest(modules: tuple[str, ...]) -> str:
    """A digest of the compiled modules' sources (and numba, Python and the cache directory in use): a
    marker written for one version of them never says another is warm."""
    parts = []
    for module in modules:
        spec = importlib.util.find_spec(module)
        parts.append(Path(spec.origin).read_bytes() if spec and spec.origin else b"")
    numba_spec = importlib.util.find_spec("numba")
    numba_at = numba_spec.origin if numba_spec else ""
    key = b"|".join([*parts, str(numba_at).encode(), sys.version.encode(),
                     os.environ.get("NUMBA_CACHE_DIR", "").encode()])
    return hashlib.sha256(key).hexdigest()[:16]


def _marker_path(name: str, modules: tuple[str, ...]) -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "neuron-sim" / f"{name}-{_source_digest(modules)}.json"


def cache_is_warm(name: str = "kernel", modules: tuple[str, ...] = KERNEL_SOURCES) -> bool:
    """Whether the compiled code ``name`` (made from ``modules``' sources; default: this kernel) was
    compiled into numba's on-disk cache and every cache index it recorded is still there (read without
    importing numba: a small run that will not use compiled code pays nothing)."""
    try:
        files = json.loads(_marker_path(name, modules).read_text())["index_files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return bool(files) and all(os.path.exists(f) for f in files)


def mark_warm(name: str = "kernel", modules: tuple[str, ...] = KERNEL_SOURCES,
              dispatchers: tuple[object, ...] | None = None) -> None:
    """Record where numba caches ``dispatchers`` (default: the functions a Placer calls), whose index files
    appear once they are compiled, so that ``cache_is_warm(name, modules)`` can tell later."""
    if dispatchers is None:
        fns = functions()
        dispatchers = tuple(fns[n] for n in LIVE_FUNCTIONS)
    files = []
    for fn in dispatchers:
        cache = getattr(getattr(fn, "_cache", None), "_cache_file", None)
        path = getattr(cache, "_index_path", None)
        if path is not None:
            files.append(str(path))
    try:
        marker = _marker_path(name, modules)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"index_files": files}))
    except OSError:
        pass  # no writable cache directory: "auto" then decides by size only


# ---------------------------------------------------------------------- generators
_GENERATORS: dict[int, tuple[object, int, int]] = {}


def generator_addresses(rng: np.random.Generator | None) -> tuple[int, int]:
    """(state address, next_uint32 address) of a Generator's bit generator; (0, 0) for none."""
    if rng is None:
        return 0, 0
    hit = _GENERATORS.get(id(rng))
    if hit is None or hit[0] is not rng:
        if len(_GENERATORS) > 64:
            _GENERATORS.clear()
        c = rng.bit_generator.ctypes
        hit = (rng, c.state_address, ctypes.cast(c.next_uint32, ctypes.c_void_p).value)
        _GENERATORS[id(rng)] = hit
    return hit[1], hit[2]


def direct(fn, *args):
    """The compiled entry point of numba dispatcher ``fn`` for the types of ``args`` (compiled or loaded
    from the cache now): calling it skips the dispatcher's type resolution on every call (about 1 us of
    a 2-3 us call). ``fn`` itself where numba's JIT is disabled. Pass it only arguments of those types."""
    compile_ = getattr(fn, "compile", None)
    if compile_ is None:
        return fn
    from numba import typeof

    return compile_(tuple(typeof(a) for a in args))


def failure_details(key: bytes) -> tuple[list[int], int, int, list[str], tuple[int, int, int, int]]:
    """A failed decision's details from ``LiveIndex.failure_key()``: rows left after each kernel step, rows
    before them, the closest row, the names of the steps it fails, and (any Managed Instances, any Neuron,
    chips present, chips free) over the candidates."""
    o = np.frombuffer(key, np.int64).tolist()
    lacks = [name for f, name in enumerate(RESOURCE_STEPS) if o[8] >> f & 1]
    return o[1:6], o[6], o[7], lacks, (o[11], o[12], o[9], o[10])


class Unsupported(ValueError):
    """A request the kernel does not decide (the Python path does): host ports, topology-aware or ECS-blind
    devices, distinctInstance or dynamic memberOf, spread by instance, a restricted candidate set."""


def check_supported(spec, constraints, chain) -> None:
    """Raise Unsupported for a request the kernel cannot decide exactly as the Python path does."""
    from scheduler.ecs import cql
    from scheduler.ecs.taskspec import NeuronMode
    from scheduler.errors import QueryError
    from scheduler.placement import strategies as strat
    from scheduler.placement.filters.static import PER_INSTANCE_SUBJECTS

    if spec.tcp_ports or spec.udp_ports:
        raise Unsupported("host ports are decided on the Python path")
    if spec.neuron_mode is NeuronMode.TOPOLOGY:
        raise Unsupported("topology-aware chips are decided on the Python path")
    for c in constraints:
        if c.type != "memberOf":
            raise Unsupported(f"{c.type} depends on the tasks running: decided on the Python path")
        try:
            query = cql.parse(c.expression or "")
        except QueryError as e:
            raise Unsupported("an expression the Python path reports") from e
        if not query.is_static or query.subjects & PER_INSTANCE_SUBJECTS:
            raise Unsupported("a memberOf expression that changes with the tasks running")
    if not strat.classes_can_narrow(tuple(chain)):
        raise Unsupported("a strategy chain scored per instance")
    if len(chain) > 5:
        raise Unsupported("a strategy chain longer than five rules")


_GENERATIONS = count(1)


class LiveIndex:
    """The compiled class index of one ClusterState, kept up to date by every placement and release.

    ``state.version`` changes (instances, status, attributes) rebuild it on the next decision; requests
    are prepared once per version (``prepare``) and then decided by their slot (``decide``)."""

    def __init__(self, state) -> None:
        self.state = state
        self.fn = functions()
        self.version = -1
        self.generation = 0
        self._rng: np.random.Generator | None = None
        self._st = self._fn = 0  # the Generator's bit-generator state and next_uint32 addresses (0: none)
        self.build()
        # the types never change (int64 arrays, ints, a bool): call the compiled code directly
        self._decide = direct(self.fn["decide"], self.R, self.X, self.Z, 0, 0, 0, True)
        self._relocate = direct(self.fn["relocate"], self.R, self.X, self.Z, 0, 0, 0)

    # ------------------------------------------------------------------ building
    def build(self) -> None:
        from scheduler.placement import strategies as strat

        st = self.state
        ix = st.classes()
        n = len(st)
        self.nsig = len(ix.sig_rows)
        self.R = st._cols
        self.R[0, :n] = ix.row_sig[:n]
        self.X = self.fn["build"](self.R, n, self.nsig)
        self._details = memoryview(self.X[O_DETAILS])  # the failure details, read as bytes without numpy
        sig = ix.signature_columns()  # launch, type, n chips, all chips, registered GPUs
        from scheduler.placement.filters.resources import FRACTIONAL_GPU_TYPES

        part = np.array([round(FRACTIONAL_GPU_TYPES.get(t.name, 0.0) * PARTITION_SCALE) for t in st.types] or [0],
                        np.int64)
        self.sig_static = np.zeros((max(self.nsig, 1), 4), np.int64)
        if self.nsig:
            self.sig_static[:, 0] = sig[0]
            self.sig_static[:, 1] = sig[3].astype(np.int64)
            self.sig_static[:, 2] = part[sig[1]]
            self.sig_static[:, 3] = sig[4]
        self.attrs: list[str] = []
        self.attr_codes: list[np.ndarray] = []
        self.groups: dict[str, int] = {}
        self.nreq = 0
        self.nval = 1
        self.Z = self._layout(rcap=8, gcap=4)
        self.version = st.version
        self.generation = next(_GENERATIONS)  # unique across indexes: a placer's cached slots name one build
        mi = self._chain_codes(strat.MANAGED_INSTANCES_IMPLICIT)
        self.Z[self.Z[10]: self.Z[10] + 10] = mi

    def _layout(self, *, rcap: int, gcap: int, old: np.ndarray | None = None) -> np.ndarray:
        """A request buffer with room for ``rcap`` requests and ``gcap`` groups (copying ``old``'s)."""
        ns, na, nv = max(self.nsig, 1), len(self.attrs), self.nval
        nsf = 4 + na
        nqf = QUERY_FIELDS
        sizes = (ns * nsf, rcap * nqf, rcap * ns, max(na, 1) * gcap * nv, 10)
        Z = np.zeros(16 + sum(sizes), np.int64)
        Z[0:6] = (self.nsig, rcap, na, gcap, nv, nsf)
        at = 16
        for j, size in enumerate(sizes):
            Z[6 + j] = at
            at += size
        S = self._view(Z, 6, (ns, nsf))
        S[:, :4] = self.sig_static
        for a, codes in enumerate(self.attr_codes):
            S[:, 4 + a] = codes
        if old is not None:
            orcap, ona, ogcap, onv = old[1], old[2], old[3], old[4]
            self._view(Z, 7, (rcap, nqf))[:orcap] = self._view(old, 7, (orcap, nqf))
            self._view(Z, 8, (rcap, ns))[:orcap] = self._view(old, 8, (orcap, ns))
            if ona:
                self._view(Z, 9, (max(na, 1), gcap, nv))[:ona, :ogcap, :onv] = self._view(old, 9, (ona, ogcap, onv))
            Z[Z[10]: Z[10] + 10] = old[old[10]: old[10] + 10]
        return Z

    @staticmethod
    def _view(Z: np.ndarray, at: int, shape: tuple[int, ...]) -> np.ndarray:
        return Z[Z[at]: Z[at] + int(np.prod(shape))].reshape(shape)

    def _attr(self, name: str) -> int:
        if name not in self.attrs:
            codes = self.state.signature_codes(name).astype(np.int64) if self.nsig else np.zeros(1, np.int64)
            self.attrs.append(name)
            self.attr_codes.append(np.resize(codes, max(self.nsig, 1)))
            self.nval = max(self.nval, len(self.state.attribute_codes(name)[1]))
            self.Z = self._layout(rcap=int(self.Z[1]), gcap=int(self.Z[3]), old=self.Z)
            for group, g in self.groups.items():
                self._fill_spread(group, g)
        return self.attrs.index(name)

    def _group(self, group: str) -> int:
        g = self.groups.get(group)
        if g is None:
            g = self.groups[group] = len(self.groups)
            if g >= self.Z[3]:
                self.Z = self._layout(rcap=int(self.Z[1]), gcap=2 * int(self.Z[3]), old=self.Z)
            self._fill_spread(group, g)
        return g

    def _fill_spread(self, group: str, g: int) -> None:
        """Tasks of ``group`` per value of each spread attribute, as the rows say now."""
        st = self.state
        SP = self._view(self.Z, 9, (max(len(self.attrs), 1), int(self.Z[3]), self.nval))
        for a, name in enumerate(self.attrs):
            codes, values = st.attribute_codes(name)
            SP[a, g, :] = 0
            SP[a, g, : len(values)] = np.bincount(codes, weights=st.group_counts(group), minlength=len(values))

    def _chain_codes(self, chain) -> list[int]:
        codes, where = [S_NONE] * 5, [0] * 5
        for j, s in enumerate(chain):
            if s.type == "random":
                codes[j] = S_RANDOM
            elif s.type == "binpack":
                codes[j] = STRATEGY_CODES[s.field or "memory"]
            else:
                codes[j], where[j] = S_SPREAD, self._attr(s.field.removeprefix("attribute:"))
        return codes + where

    # ------------------------------------------------------------------ requests
    def prepare(self, spec, sig_ok: np.ndarray, chain, group: str) -> int:
        """A slot for a request whose static filters passed the signatures ``sig_ok`` (check it with
        ``check_supported`` first)."""
        from scheduler.ecs.taskspec import NeuronMode
        from scheduler.placement.devices import request_mask

        codes = self._chain_codes(chain)  # may add an attribute (a new layout) before the slot is taken
        g = self._group(group)
        r = self.nreq
        if r >= self.Z[1]:
            self.Z = self._layout(rcap=2 * int(self.Z[1]), gcap=int(self.Z[3]), old=self.Z)
        self.nreq += 1
        ns = max(self.nsig, 1)
        eligible = np.flatnonzero(sig_ok[: self.nsig])
        if spec.gpu_fraction:
            gmode, gneed = G_FRACTION, round(spec.gpu_fraction * PARTITION_SCALE)
        elif spec.gpus_all:
            gmode, gneed = G_ALL, 0
        elif spec.gpus:
            gmode, gneed = G_COUNT, spec.gpus
        else:
            gmode, gneed = G_NONE, 0
        nmode = {NeuronMode.NONE: N_NONE, NeuronMode.MANUAL: N_MANUAL, NeuronMode.MANAGED: N_MANAGED}[spec.neuron_mode]
        q = [spec.cpu, spec.memory, gmode, gneed, 1 if spec.network_mode == "awsvpc" else 0, nmode,
             request_mask(spec) if nmode == N_MANUAL else 0, g, len(eligible), *codes]
        Q = self._view(self.Z, 7, (int(self.Z[1]), QUERY_FIELDS))
        Q[r, : len(q)] = q
        self._view(self.Z, 8, (int(self.Z[1]), ns))[r, : len(eligible)] = eligible
        return r

    def use_rng(self, rng: np.random.Generator | None) -> None:
        """Break ties with ``rng`` from now on (its addresses are read once, not per decision)."""
        self._rng = rng
        self._st, self._fn = generator_addresses(rng)

    def decide(self, r: int, rng: np.random.Generator | None) -> int:
        """The row request ``r`` was placed on (its columns already taken), or -1 (see ``failure``)."""
        if rng is not self._rng:
            self.use_rng(rng)
        return self._decide(self.R, self.X, self.Z, r, self._st, self._fn, True)

    def failure_key(self) -> bytes:
        """The last failed decision's details as bytes (read them with ``failure_details``): equal keys,
        equal details."""
        return self._details.tobytes()

    def moved(self, row: int, group: str | None, delta: int) -> None:
        """Row ``row``'s free columns were changed by the Python side (``delta`` tasks of ``group``)."""
        if self.version != self.state.version:
            return  # rebuilt before the next decision
        self._relocate(self.R, self.X, self.Z, row, self.groups.get(group, -1), delta)

    def live_classes(self) -> int:
        return int(self.X[1] - self.X[2])
