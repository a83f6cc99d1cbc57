"""numba code of the compiled placement kernel (see ``kernel.py`` for the design; import only through it).

Every argument is a plain int64 array or an integer, so that a call from Python costs about a microsecond
(numba's typed containers and numpy Generators cost several to tens of microseconds to pass in). Only the
entry points (``FUNCTIONS``) and the view builders use numba's runtime; the functions they call are compiled
without it (``_inner``): they allocate nothing and return no array, so they need no reference counting, which
otherwise costs an atomic increment and a decrement call per array argument on every call (about 40% of a
decision's time when measured).

- ``R[field, row]`` is ClusterState's own column block: 0 signature, 1 cpu, 2 memory, 3 gpus, 4 enis,
  5 free-chip mask, 6 class slot. Decisions write the free columns in place.
- ``X`` is the class index, one buffer: a header (``H_*``), the failure details of the last decision
  (``O_*``), then regions at offsets kept in the header: the class table ``C[slot, field]`` (``C_*``), the
  free-slot stack, an open-addressing hash from a class key to its slot, the per-signature lists of live
  classes in ascending free memory with each class's free resources beside them (``V``: a decision's scan
  reads them in order), a summary of each signature's classes (most free memory, cpu and GPUs, the union
  of free chips; dense, so that a scan passes over signatures without touching their classes), and a pool
  holding each class's rows (in no order: "the k-th candidate row", how ties are broken, is found by
  selection over the tied classes' rows).
- ``Z`` holds the requests and what they read, one buffer: a header (``Z_*``), the signature table
  ``S[signature, field]``, the request table ``Q[request, field]``, each request's eligible signatures
  ``QS[request, :]`` (the static filters' answer), spread counts ``SP[attribute, group, value]`` and the
  Managed Instances implicit chain.
- The tie-break draws ``rng.integers(0, total)`` exactly as numpy does (Lemire's bounded method over
  ``next_uint32``), through the caller's bit generator: its state address and its ``next_uint32``
  function address are passed as integers (0: no generator, take the lowest row).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

# X header
H_KCAP, H_USED, H_NFREE, H_HCAP, H_PCAP, H_PTOP, H_NROWS, H_NSIG = range(8)
H_OC, H_OF, H_OH, H_OP, H_OSC, H_OSN, H_OSO, H_COMPACTIONS = range(8, 16)
O_BASE = 16  # failure details: step, left after each of 5 steps, rows before, closest, lacks, or-all, or-free,
O_STEP, O_LEFT, O_BEFORE, O_CLOSEST, O_LACKS, O_ALL, O_FREE, O_MANAGED, O_NEURON = 16, 17, 22, 23, 24, 25, 26, 27, 28
H_OT = 29  # offset of the decision's scratch: the tied classes (KCAP), then a copy of their rows (FLAT)
H_OSV = 30  # offset of the per-signature class records (cpu, memory, gpus, enis, chips), beside SC
H_ORP = 31  # offset of each row's position in its class's row list
K_BEST, K_SIG, K_FLD = 32, 37, 42  # scratch of the chain: best key, a signature's spread scores, rule fields
H_OSM = 47  # offset of the per-signature summaries of their classes (``_sigsum``), beside SN
HDR = 48
NV = 5
NG = 4  # fields of a signature's summary (``_sigsum``)
FLAT = 512  # scratch beyond the rows and signatures
# bits of each rule's score in the packed key of the branch-free scan (spread counts, cpu units, MiB, GPUs,
# chips held): a chain of spreads and one binpack packs into one int64 when its widths add up to <= 61
W_SPREAD, W_CPU, W_MEM, W_GPU, W_CHIPS = 24, 21, 28, 8, 7
INFEASIBLE = np.int64(1) << 62
MEM_BITS = (np.int64(1) << W_MEM) - 1  # the memory score's bits in a key of ``_scan_sorted``
# class table fields
C_SIG, C_CPU, C_MEM, C_GPU, C_ENI, C_CHIPS, C_SIZE, C_FIRST, C_POS, C_OFF, C_CAP = range(11)
NCF = 11
# Z header
Z_NSIG, Z_RCAP, Z_NATTR, Z_GCAP, Z_NVAL, Z_NSF, Z_OS, Z_OQ, Z_OQS, Z_OSP, Z_OMI = range(11)
ZHDR = 16
# signature fields (then one per spread attribute)
S_LAUNCH, S_CHIPS, S_PART, S_GPUS = range(4)
NSF0 = 4
# request fields
(Q_CPU, Q_MEM, Q_GMODE, Q_GNEED, Q_ENI, Q_NMODE, Q_CHIPS, Q_GROUP, Q_NSIGS, Q_CODE0) = range(10)
Q_ATTR0 = Q_CODE0 + 5
NQF = Q_ATTR0 + 5  # kernel.QUERY_FIELDS (a test holds them equal)
# GPU modes
G_NONE, G_COUNT, G_ALL, G_FRACTION = range(4)
MANAGED_LAUNCH = 1
S_NONE, S_RANDOM, S_BINPACK_CPU, S_BINPACK_MEM, S_BINPACK_GPU, S_BINPACK_CHIPS, S_SPREAD = range(7)
N_NONE, N_MANUAL, N_MANAGED = 0, 1, 2
MIN_CAP = 4
RADIX_BITS = 6  # the k-th tied row's selection: rows kept per round by their next 6 bits
RADIX = 1 << RADIX_BITS
RANK_MAX = 16  # rows left that are ranked by counting
LINEAR_SEARCH = 8  # a signature's classes searched one by one for the memory asked for, before bisecting
# the functions below the entry points take the entry points' arrays and return none: compiled without the
# reference counting of numba's runtime (an atomic increment and a decrement call per array per call)
_inner = njit(cache=True, _nrt=False)
_inlined = njit(cache=True, _nrt=False, inline="always")  # moved rows: no call passing every view per move


@intrinsic
def _next_uint32(typingctx, fn, state):
    """Call a bit generator's ``next_uint32(void *state)`` given both addresses as integers."""
    sig = types.uint32(types.int64, types.int64)

    def codegen(context, builder, signature, args):
        ptr = ir.IntType(8).as_pointer()
        fnty = ir.FunctionType(ir.IntType(32), [ptr])
        f = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(f, [builder.inttoptr(args[1], ptr)])

    return sig, codegen


@intrinsic
def _prefetch(typingctx, arr, idx):
    """Ask the cache for the line holding ``arr[idx]`` (1-D): a hint, with no effect on any result (a
    prefetch of any address never faults)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        aty = signature.args[0]
        ary = context.make_array(aty)(context, builder, args[0])
        ptr = cgutils.get_item_pointer(context, builder, aty, ary, [args[1]], wraparound=False, boundscheck=False)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@_inner
def draw(st, fn, total):
    """numpy's ``Generator.integers(0, total)`` for 1 < total <= 2**32 - 1 (Lemire's bounded method)."""
    rng = np.uint64(total - 1)
    excl = rng + np.uint64(1)
    m = np.uint64(_next_uint32(fn, st)) * excl
    leftover = m & np.uint64(0xFFFFFFFF)
    if leftover < excl:
        threshold = (np.uint64(0xFFFFFFFF) - rng) % excl
        while leftover < threshold:
            m = np.uint64(_next_uint32(fn, st)) * excl
            leftover = m & np.uint64(0xFFFFFFFF)
    return np.int64(m >> np.uint64(32))


@njit(cache=True, inline="always")  # no call (and no reference counting of its arrays) per class
def _popcount(x):
    n = 0
    while x:
        x &= x - 1
        n += 1
    return n


@njit(cache=True)
def _views(X):
    k = X[H_KCAP]
    C = X[X[H_OC]: X[H_OC] + NCF * k].reshape((k, NCF))  # class-major: one class's fields together
    F = X[X[H_OF]: X[H_OF] + k]
    Hh = X[X[H_OH]: X[H_OH] + X[H_HCAP]]
    P = X[X[H_OP]: X[H_OP] + X[H_PCAP]]
    ns = X[H_NSIG]
    SC = X[X[H_OSC]: X[H_OSC] + max(X[H_NROWS], 1)]
    SN = X[X[H_OSN]: X[H_OSN] + ns]
    SO = X[X[H_OSO]: X[H_OSO] + ns + 1]
    nr = max(X[H_NROWS], 1)
    V = X[X[H_OSV]: X[H_OSV] + NV * nr].reshape((nr, NV))
    RP = X[X[H_ORP]: X[H_ORP] + nr]
    cand = X[X[H_OT]: X[H_OT] + k]
    flat = X[X[H_OT] + k: X[H_OT] + k + nr + max(ns, 1) + FLAT]
    return C, F, Hh, P, SC, SN, SO, V, RP, cand, flat


@njit(cache=True, inline="always")
def _sigsum(X):
    """``G[field, signature]``, a summary of each signature's classes: 0 the most free memory (-1: no class),
    1 the most free cpu (-1: no class), 2 the union of their free-chip masks, 3 the most free GPUs (-1: no
    class). Dense, so that a scan tells the signatures where no class can fit apart without touching their
    class records."""
    ns = max(X[H_NSIG], 1)
    return X[X[H_OSM]: X[H_OSM] + NG * ns].reshape((NG, ns))


@njit(cache=True)
def _zviews(Z):
    ns, rcap, na, gcap, nv, nsf = Z[Z_NSIG], Z[Z_RCAP], Z[Z_NATTR], Z[Z_GCAP], Z[Z_NVAL], Z[Z_NSF]
    S = Z[Z[Z_OS]: Z[Z_OS] + max(ns, 1) * nsf].reshape((max(ns, 1), nsf))
    Q = Z[Z[Z_OQ]: Z[Z_OQ] + rcap * NQF].reshape((rcap, NQF))
    QS = Z[Z[Z_OQS]: Z[Z_OQS] + rcap * max(ns, 1)].reshape((rcap, max(ns, 1)))
    SP = Z[Z[Z_OSP]: Z[Z_OSP] + max(na, 1) * gcap * nv].reshape((max(na, 1), gcap, nv))
    MI = Z[Z[Z_OMI]: Z[Z_OMI] + 10]
    return S, Q, QS, SP, MI


@_inner
def _hash(sig, cpu, mem, gpu, eni, chips):
    h = np.uint64(1469598103934665603)
    for v in (sig, cpu, mem, gpu, eni, chips):
        h = (h ^ np.uint64(v)) * np.uint64(1099511628211)
        h ^= h >> np.uint64(29)
    return h


@_inner
def _find(R, C, Hh, i):
    """The hash position of row i's key: its class's position, or the empty one where it would go."""
    mask = np.uint64(len(Hh) - 1)
    p = _hash(R[0, i], R[1, i], R[2, i], R[3, i], R[4, i], R[5, i]) & mask
    while True:
        c = Hh[p] - 1
        if c < 0:
            return np.int64(p)
        if (C[c, C_SIG] == R[0, i] and C[c, C_CPU] == R[1, i] and C[c, C_MEM] == R[2, i]
                and C[c, C_GPU] == R[3, i] and C[c, C_ENI] == R[4, i] and C[c, C_CHIPS] == R[5, i]):
            return np.int64(p)
        p = (p + np.uint64(1)) & mask


@_inner
def _unhash(C, Hh, c):
    """Remove class c from the hash (backward-shift deletion keeps linear probing exact)."""
    mask = np.uint64(len(Hh) - 1)
    p = _hash(C[c, C_SIG], C[c, C_CPU], C[c, C_MEM], C[c, C_GPU], C[c, C_ENI], C[c, C_CHIPS]) & mask
    while Hh[p] - 1 != c:
        p = (p + np.uint64(1)) & mask
    q = p
    while True:
        q = (q + np.uint64(1)) & mask
        d = Hh[q] - 1
        if d < 0:
            break
        home = _hash(C[d, C_SIG], C[d, C_CPU], C[d, C_MEM], C[d, C_GPU], C[d, C_ENI], C[d, C_CHIPS]) & mask
        # move d back to p when its home is not cyclically within (p, q]
        if (q > p and (home <= p or home > q)) or (q < p and (home <= p and home > q)):
            Hh[p] = Hh[q]
            p = q
    Hh[p] = 0


@_inner
def _compact(X, C, P, grow):
    """Lay the classes' row lists out again from the pool's start, with room to grow; class ``grow`` gets
    twice its size."""
    used = X[H_USED]
    tmp = X[X[H_OT]: X[H_OT] + X[H_KCAP] + X[H_NROWS] + 1]  # the decision's scratch (free while rows move)
    at = 0
    for c in range(used):
        if C[c, C_SIG] < 0:
            continue
        size = C[c, C_SIZE]
        off = C[c, C_OFF]
        for j in range(size):  # element by element: a slice copy allocates
            tmp[at + j] = P[off + j]
        at += size
    top = 0
    at = 0
    for c in range(used):
        if C[c, C_SIG] < 0:
            continue
        size = C[c, C_SIZE]
        cap = max(MIN_CAP, 2 * size if c == grow else size + size // 2 + 1)
        for j in range(size):
            P[top + j] = tmp[at + j]
        at += size
        C[c, C_OFF] = top
        C[c, C_CAP] = cap
        top += cap
    X[H_PTOP] = top
    X[H_COMPACTIONS] += 1


@_inlined
def _enter(R, X, xv, i):
    """Row i joins the class of its free columns (made when new): appended to the class's row list."""
    C, F, Hh, P, SC, SN, SO, V, RP, _, _ = xv
    p = _find(R, C, Hh, i)
    c = Hh[p] - 1
    if c < 0:
        if X[H_NFREE] > 0:
            X[H_NFREE] -= 1
            c = F[X[H_NFREE]]
        else:
            c = X[H_USED]
            X[H_USED] += 1
        Hh[p] = c + 1
        for f in range(6):
            C[c, f] = R[f, i]
        C[c, C_SIZE] = 0
        C[c, C_FIRST] = i
        s = R[0, i]
        base = SO[s]
        pos = SN[s]
        while pos > 0 and V[base + pos - 1, 1] > R[2, i]:  # a signature's classes by free memory
            SC[base + pos] = SC[base + pos - 1]
            for f in range(NV):
                V[base + pos, f] = V[base + pos - 1, f]
            C[SC[base + pos], C_POS] = pos
            pos -= 1
        SC[base + pos] = c
        for f in range(NV):
            V[base + pos, f] = R[1 + f, i]
        C[c, C_POS] = pos
        SN[s] += 1
        G = _sigsum(X)
        G[0, s] = V[base + SN[s] - 1, 1]
        G[1, s] = max(G[1, s], R[1, i])
        G[2, s] |= R[5, i]
        G[3, s] = max(G[3, s], R[3, i])
        if X[H_PTOP] + MIN_CAP > X[H_PCAP]:
            C[c, C_CAP] = 0
            C[c, C_OFF] = 0
            _compact(X, C, P, c)
        else:
            C[c, C_OFF] = X[H_PTOP]
            C[c, C_CAP] = MIN_CAP
            X[H_PTOP] += MIN_CAP
    size = C[c, C_SIZE]
    if size == C[c, C_CAP]:  # move the list to the pool's end with twice the room
        if X[H_PTOP] + 2 * size > X[H_PCAP]:
            _compact(X, C, P, c)
        else:
            off = X[H_PTOP]
            old = C[c, C_OFF]
            for j in range(size):
                P[off + j] = P[old + j]
            C[c, C_OFF] = off
            C[c, C_CAP] = 2 * size
            X[H_PTOP] += 2 * size
    P[C[c, C_OFF] + size] = i
    RP[i] = size
    C[c, C_SIZE] = size + 1
    if i < C[c, C_FIRST] or size == 0:
        C[c, C_FIRST] = i
    R[6, i] = c


@_inlined
def _leave(R, X, xv, i):
    """Row i leaves its class (the last row of the list takes its place; an emptied class is freed)."""
    C, F, Hh, P, SC, SN, SO, V, RP, _, _ = xv
    c = R[6, i]
    off = C[c, C_OFF]
    size = C[c, C_SIZE] - 1
    pos = RP[i]
    last = P[off + size]
    P[off + pos] = last
    RP[last] = pos
    C[c, C_SIZE] = size
    if size == 0:
        _unhash(C, Hh, c)
        s = C[c, C_SIG]
        base = SO[s]
        last = SN[s] - 1
        for j in range(C[c, C_POS], last):  # the order by free memory stays
            moved = SC[base + j + 1]
            SC[base + j] = moved
            for f in range(NV):
                V[base + j, f] = V[base + j + 1, f]
            C[moved, C_POS] = j
        SN[s] = last
        G = _sigsum(X)
        G[0, s] = V[base + last - 1, 1] if last > 0 else -1
        cpu = np.int64(-1)
        chips = np.int64(0)
        gpus = np.int64(-1)
        for j in range(base, base + last):
            cpu = max(cpu, V[j, 0])
            chips |= V[j, 4]
            gpus = max(gpus, V[j, 2])
        G[1, s] = cpu
        G[2, s] = chips
        G[3, s] = gpus
        C[c, C_SIG] = -1
        F[X[H_NFREE]] = c
        X[H_NFREE] += 1
    elif C[c, C_FIRST] == i:  # the lowest row left: the next lowest (rarely: 1 / size of the leaves)
        low = P[off]
        for j in range(1, size):
            low = min(low, P[off + j])
        C[c, C_FIRST] = low


@njit(cache=True)
def build(R, n, nsig):
    """The class index over rows ``0..n-1`` of ``R`` (whose row 0 holds each row's signature)."""
    k = n + 1
    hcap = 16
    while hcap < 2 * k:
        hcap *= 2
    pcap = 4 * n + 8 * k + 64
    nr = max(n, 1)
    sizes = (HDR, NCF * k, k, hcap, pcap, nr, max(nsig, 1), nsig + 1, NV * nr, k + nr + max(nsig, 1) + FLAT, nr,
             NG * max(nsig, 1))
    X = np.zeros(sum(sizes), np.int64)
    X[H_KCAP], X[H_HCAP], X[H_PCAP], X[H_NROWS], X[H_NSIG] = k, hcap, pcap, n, nsig
    at = HDR
    for j, h in enumerate((H_OC, H_OF, H_OH, H_OP, H_OSC, H_OSN, H_OSO, H_OSV, H_OT, H_ORP, H_OSM)):
        X[h] = at
        at += sizes[j + 1]
    xv = _views(X)
    C, SO = xv[0], xv[6]
    C[:, C_SIG] = -1
    G = _sigsum(X)
    G[0, :] = -1
    G[1, :] = -1
    G[2, :] = 0
    G[3, :] = -1
    for i in range(n):
        SO[R[0, i] + 1] += 1
    for s in range(nsig):
        SO[s + 1] += SO[s]
    for i in range(n):
        _enter(R, X, xv, i)
    return X


@njit(cache=True)
def relocate(R, X, Z, i, group, delta):
    """Row i's free columns changed outside the kernel (a task placed or released by the Python path, or
    any release): move it to the class of its new values; ``delta`` tasks of ``group`` (-1: none known)."""
    _relocate(R, X, _views(X), Z, _zviews(Z), i, group, delta)


@_inner
def _relocate(R, X, xv, Z, zv, i, group, delta):
    _leave(R, X, xv, i)
    _enter(R, X, xv, i)
    if group >= 0:
        S, _, _, SP, _ = zv
        s = R[0, i]
        for a in range(Z[Z_NATTR]):
            SP[a, group, S[s, NSF0 + a]] += delta


@njit(cache=True, inline="always")  # no call per class
def _tests(cpu, mem, gpu, eni, chips, need_cpu, need_mem, gmode, gneed, need_eni, nmode, need_chips,
           launch, all_chips, part, gpus_reg):
    """The five resource tests (cpu, memory, gpu, eni, neuron devices) of a request on one class."""
    if gmode == G_NONE:
        g_ok = True
    elif gmode == G_COUNT:
        g_ok = part == 0 and gpu >= gneed
    elif gmode == G_ALL:
        g_ok = part == 0 and gpus_reg > 0 and gpu == gpus_reg
    else:
        g_ok = part == gneed and gpu >= 1
    if nmode == N_MANAGED:  # every chip of a Managed Instances instance, none held
        n_ok = launch == MANAGED_LAUNCH and all_chips != 0 and chips == all_chips
    else:  # manual: the named chips are free (none named: nothing to test)
        n_ok = (chips & need_chips) == need_chips
    return cpu >= need_cpu, mem >= need_mem, g_ok, eni >= need_eni, n_ok


@njit(cache=True, inline="always")  # also read per signature by the scan
def _gpus_taken(S, q, s):
    """The GPUs request ``q`` takes on an instance of signature s (ALL: every registered one; a fraction: one)."""
    gmode = q[Q_GMODE]
    return q[Q_GNEED] if gmode == G_COUNT else (S[s, S_GPUS] if gmode == G_ALL else (1 if gmode == G_FRACTION else 0))


@_inner
def taken(S, q, s):
    """(chips, gpus) request ``q`` (its row of the request table) takes on an instance of signature s."""
    chips = q[Q_CHIPS] if q[Q_NMODE] == N_MANUAL else (S[s, S_CHIPS] if q[Q_NMODE] == N_MANAGED else 0)
    return chips, _gpus_taken(S, q, s)


@_inner
def _kth_row(C, P, cand, n, k, flat):
    """The k-th smallest row (0-based) among the rows of classes cand[:n] (each class's rows in no order),
    found without a branch that depends on the data in its passes (a selection by comparisons mispredicts
    about every other comparison: ~12 ns a row at 100 tied rows): the rows are copied into the scratch
    ``flat``, then a radix selection keeps the rows of the bucket of 64 (by the row's next 6 bits) that
    holds the k-th, until at most ``RANK_MAX`` are left, which are ranked by counting. Rows are distinct.
    ``flat`` needs the rows and 64 counters; with less room a selection bit by bit needs only the rows."""
    total = 0
    top = 0
    for t in range(n):
        c = cand[t]
        off = C[c, C_OFF]
        for j in range(C[c, C_SIZE]):
            v = P[off + j]
            flat[total + j] = v
            top |= v
        total += C[c, C_SIZE]
    sh = 0  # every row is below 1 << sh
    while (top >> sh) > 0:
        sh += 1
    m = total
    prefix = 0  # the high bits (above sh) the k-th row has
    if len(flat) >= total + RADIX:
        hist = flat[len(flat) - RADIX:]
        while m > RANK_MAX and sh > 0:
            step = min(sh, RADIX_BITS)
            sh -= step
            hist[:] = 0
            for t in range(m):
                hist[(flat[t] >> sh) & (RADIX - 1)] += 1
            b = 0
            while k >= hist[b]:
                k -= hist[b]
                b += 1
            prefix = (prefix << step) | b
            kept = 0
            for t in range(m):  # compacted in place (kept <= t)
                v = flat[t]
                flat[kept] = v
                kept += (v >> sh) == prefix
            m = kept
    else:
        while m > RANK_MAX and sh > 0:
            sh -= 1
            target = prefix << 1
            zeros = 0
            for t in range(m):
                zeros += (flat[t] >> sh) == target
            if k < zeros:
                prefix = target
            else:
                k -= zeros
                prefix = target | 1
            kept = 0
            for t in range(m):
                v = flat[t]
                flat[kept] = v
                kept += (v >> sh) == prefix
            m = kept
    row = flat[0]
    for t in range(m):  # the one with exactly k smaller
        v = flat[t]
        below = 0
        for u in range(m):
            below += flat[u] < v
        row = v if below == k else row
    return row


@_inner
def _scan(X, xv, zv, q, r, codes, attrs, mi_only, explain):
    """One pass over the classes of request r's signatures: the resource tests, the strategy chain's key
    (``codes``/``attrs``: its rules) and the running set of classes tied at the best key, kept in the
    scratch ``X[H_OT]``. Returns (tied classes, rows in them, whether every fitting class is Managed
    Instances, the first resource step that leaves no class). With ``explain`` the same pass also writes the
    failure details ``X[O_*]`` (rows left after each step, the closest row and what it lacks, ...).
    ``mi_only`` skips the signatures that are not Managed Instances."""
    need_cpu, need_mem, gmode, gneed, need_eni = q[Q_CPU], q[Q_MEM], q[Q_GMODE], q[Q_GNEED], q[Q_ENI]
    nmode, need_chips, group = q[Q_NMODE], q[Q_CHIPS], q[Q_GROUP]
    C, _, _, _, SC, SN, SO, V, _, cand, _ = xv
    S, _, QS, SP, _ = zv
    best = X[K_BEST: K_BEST + 5]
    sk = X[K_SIG: K_SIG + 5]
    fk = X[K_FLD: K_FLD + 5]
    nr = 0  # the rules that narrow (those before the first random or the end of the chain)
    while nr < 5 and codes[nr] != S_NONE and codes[nr] != S_RANDOM:
        code = codes[nr]
        fk[nr] = -1 if code == S_SPREAD else (0 if code == S_BINPACK_CPU else (
            1 if code == S_BINPACK_MEM else (2 if code == S_BINPACK_GPU else 4)))
        nr += 1
    n = 0
    total = 0
    o0 = o1 = o2 = o3 = False
    all_mi = True
    l0 = l1 = l2 = l3 = l4 = 0
    before = 0
    best_close = np.int64(1) << 62
    best_lacks = 0
    or_all = or_free = managed = neuron = 0
    for k in range(q[Q_NSIGS]):
        s = QS[r, k]
        count = SN[s]
        if count == 0:
            continue
        launch, all_chips, part, gpus_reg = S[s, S_LAUNCH], S[s, S_CHIPS], S[s, S_PART], S[s, S_GPUS]
        mi = launch == MANAGED_LAUNCH
        if mi_only and not mi:
            continue
        for j in range(nr):
            if fk[j] < 0:
                sk[j] = SP[attrs[j], group, S[s, NSF0 + attrs[j]]]
        if explain:
            or_all |= all_chips
            managed |= mi
            neuron |= all_chips != 0
        for p in range(SO[s], SO[s] + count):
            t0, t1, t2, t3, t4 = _tests(V[p, 0], V[p, 1], V[p, 2], V[p, 3], V[p, 4], need_cpu, need_mem, gmode,
                                        gneed, need_eni, nmode, need_chips, launch, all_chips, part, gpus_reg)
            a1 = t0 & t1
            a2 = a1 & t2
            a3 = a2 & t3
            o0 |= t0
            o1 |= a1
            o2 |= a2
            o3 |= a3
            if explain:
                c = SC[p]
                size = C[c, C_SIZE]
                before += size
                l0 += size * t0
                l1 += size * a1
                l2 += size * a2
                l3 += size * a3
                l4 += size * (a3 & t4)
                lacks = np.int64(1 - t0) | np.int64(1 - t1) << 1 | np.int64(1 - t2) << 2 \
                    | np.int64(1 - t3) << 3 | np.int64(1 - t4) << 4
                key = _popcount(lacks) << 40 | C[c, C_FIRST]  # fewest failed steps, then lowest row
                if key < best_close:
                    best_close, best_lacks = key, lacks
                or_free |= V[p, 4]
            if a3 & t4:
                all_mi &= mi
                cmp = -1 if n == 0 else 0
                for j in range(nr):
                    f = fk[j]
                    v = sk[j] if f < 0 else (_popcount(V[p, 4]) if f == 4 else V[p, f])
                    if cmp == 0:
                        if v > best[j]:
                            cmp = 1
                            break
                        if v < best[j]:
                            cmp = -1
                    best[j] = v
                if cmp <= 0:
                    c = SC[p]
                    if cmp < 0:
                        n = 0
                        total = 0
                    cand[n] = c
                    n += 1
                    total += C[c, C_SIZE]
    step = 0 if not o0 else (1 if not o1 else (2 if not o2 else (3 if not o3 else 4)))
    if explain:
        X[O_STEP] = step
        X[O_LEFT] = l0
        X[O_LEFT + 1] = l1
        X[O_LEFT + 2] = l2
        X[O_LEFT + 3] = l3
        X[O_LEFT + 4] = l4
        X[O_BEFORE] = before
        X[O_CLOSEST] = best_close & ((np.int64(1) << 40) - 1)
        X[O_LACKS] = best_lacks
        X[O_ALL] = or_all
        X[O_FREE] = or_free
        X[O_MANAGED] = managed
        X[O_NEURON] = neuron
    return n, total, all_mi, step


@_inner
def _scan_packed(X, xv, zv, q, r, codes, attrs, mi_only):
    """``_scan`` without branches per class, for a chain of spread rules and at most one binpack rule (the
    common ECS chains): each class's key (its rules' scores packed into one int64, the infeasible above
    them) is kept in scratch, the best key taken with a running minimum, then the classes holding it are
    collected in a second pass over the signatures whose minimum it is. Returns ``_scan``'s answer, or
    n = -1 when the chain or a score does not pack (the caller then runs ``_scan``)."""
    need_cpu, need_mem, gmode, gneed, need_eni = q[Q_CPU], q[Q_MEM], q[Q_GMODE], q[Q_GNEED], q[Q_ENI]
    nmode, need_chips, group = q[Q_NMODE], q[Q_CHIPS], q[Q_GROUP]
    C, _, _, _, SC, SN, SO, V, _, cand, flat = xv
    S, _, QS, SP, _ = zv
    nrows = max(X[H_NROWS], 1)
    KEY = flat[:nrows]
    SMIN = flat[nrows:]
    bf = -1  # the binpack rule's field in V (-1: none), its shift and width
    bshift = 0
    bwidth = 0
    shift = 0
    nr = 0
    while nr < 5 and codes[nr] != S_NONE and codes[nr] != S_RANDOM:
        nr += 1
    for j in range(nr - 1, -1, -1):  # widths from the last rule (lowest bits) up
        code = codes[j]
        if code == S_SPREAD:
            shift += W_SPREAD
        else:
            if bf >= 0:
                return -1, 0, False, 0
            bf = 0 if code == S_BINPACK_CPU else (1 if code == S_BINPACK_MEM else (2 if code == S_BINPACK_GPU else 4))
            bwidth = W_CPU if bf == 0 else (W_MEM if bf == 1 else (W_GPU if bf == 2 else W_CHIPS))
            bshift = shift
            shift += bwidth
    if shift > 61:
        return -1, 0, False, 0
    best = INFEASIBLE
    o0 = o1 = o2 = o3 = False
    all_mi = True
    bad = np.int64(0)
    for k in range(q[Q_NSIGS]):
        s = QS[r, k]
        count = SN[s]
        launch, all_chips, part, gpus_reg = S[s, S_LAUNCH], S[s, S_CHIPS], S[s, S_PART], S[s, S_GPUS]
        mi = launch == MANAGED_LAUNCH
        SMIN[k] = INFEASIBLE
        if count == 0 or (mi_only and not mi):
            continue
        sigkey = np.int64(0)
        sh = shift
        for j in range(nr):
            if codes[j] == S_SPREAD:
                sh -= W_SPREAD
                v = SP[attrs[j], group, S[s, NSF0 + attrs[j]]]
                bad |= v >> W_SPREAD
                sigkey |= v << sh
            else:
                sh -= bwidth
        smin = INFEASIBLE
        any_ok = False
        for p in range(SO[s], SO[s] + count):
            t0, t1, t2, t3, t4 = _tests(V[p, 0], V[p, 1], V[p, 2], V[p, 3], V[p, 4], need_cpu, need_mem, gmode,
                                        gneed, need_eni, nmode, need_chips, launch, all_chips, part, gpus_reg)
            a1 = t0 & t1
            a2 = a1 & t2
            a3 = a2 & t3
            ok = a3 & t4
            o0 |= t0
            o1 |= a1
            o2 |= a2
            o3 |= a3
            any_ok |= ok
            key = sigkey
            if bf >= 0:
                v = V[p, bf]
                if bf == 4:
                    v = _popcount(v)
                bad |= v >> bwidth
                key |= v << bshift
            key |= np.int64(1 - ok) << 62
            KEY[p] = key
            smin = min(smin, key)
        SMIN[k] = smin
        best = min(best, smin)
        all_mi &= mi or not any_ok
    step = 0 if not o0 else (1 if not o1 else (2 if not o2 else (3 if not o3 else 4)))
    if bad != 0:
        return -1, 0, False, 0
    if best == INFEASIBLE:
        return 0, 0, False, step
    n = 0
    for k in range(q[Q_NSIGS]):
        if SMIN[k] != best:
            continue
        s = QS[r, k]
        for p in range(SO[s], SO[s] + SN[s]):
            cand[n] = SC[p]
            n += KEY[p] == best
    total = 0
    for t in range(n):
        total += C[cand[t], C_SIZE]
    return n, total, all_mi, step


@_inner
def _scan_sorted(X, xv, zv, q, r, codes, attrs, mi_only):
    """``_scan`` for a chain of spread rules ending in binpack(memory), the ECS default shape: a signature's
    classes are kept in ascending free memory, so its best class is the first that fits at or above the
    memory asked for (found by bisection), and its ties follow it; a signature costs a bisection and a few
    tests, not a pass over its classes. The signatures are taken by level of their spread scores, lowest
    first: once a level has a fitting class, the higher levels cannot tie it and are not walked (unless
    their answer to "is every fitting class Managed Instances" is still needed). A signature whose summary
    shows no class with the GPUs or chips asked for is walked only until the failure's step cannot change.
    Only a failure tests every class with enough memory (and the others, for the cpu step, until one has
    the cpu). Returns ``_scan``'s answer, or n = -1 when the chain or a score does not pack (the caller
    then scans)."""
    need_cpu, need_mem, gmode, gneed, need_eni = q[Q_CPU], q[Q_MEM], q[Q_GMODE], q[Q_GNEED], q[Q_ENI]
    nmode, need_chips, group = q[Q_NMODE], q[Q_CHIPS], q[Q_GROUP]
    C, _, _, _, SC, SN, SO, V, _, cand, flat = xv
    S, _, QS, SP, MI = zv
    nr = 0
    while nr < 5 and codes[nr] != S_NONE and codes[nr] != S_RANDOM:
        nr += 1
    if nr == 0 or codes[nr - 1] != S_BINPACK_MEM or (nr - 1) * W_SPREAD + W_MEM > 61:
        return -1, 0, False, 0
    for j in range(nr - 1):
        if codes[j] != S_SPREAD:
            return -1, 0, False, 0
    track = False  # whether the caller reads all_mi (the request's chain is not the implicit one)
    for j in range(5):
        track |= codes[j] != MI[j] or (j < nr - 1 and attrs[j] != MI[5 + j])
    nsigs = q[Q_NSIGS]
    G = _sigsum(X)
    SK = flat[:nsigs]  # each signature's spread scores packed above the memory bits (-1: nothing to walk)
    bad = np.int64(0)
    for k in range(nsigs):
        s = QS[r, k]
        count = SN[s]
        SK[k] = -1
        if count == 0 or (mi_only and S[s, S_LAUNCH] != MANAGED_LAUNCH):
            continue
        sigkey = np.int64(0)
        sh = (nr - 1) * W_SPREAD + W_MEM
        for j in range(nr - 1):
            sh -= W_SPREAD
            v = SP[attrs[j], group, S[s, NSF0 + attrs[j]]]
            bad |= v >> W_SPREAD
            sigkey |= v << sh
        if G[0, s] >= need_mem and G[1, s] >= need_cpu:  # else no class has the memory, or none the cpu
            SK[k] = sigkey
    if bad != 0:
        return -1, 0, False, 0
    best = INFEASIBLE
    n = 0
    o0 = o1 = o2 = o3 = False
    all_mi = True
    level = np.int64(-1)
    while True:
        nxt = INFEASIBLE
        for k in range(nsigs):
            if SK[k] > level:
                nxt = min(nxt, SK[k])
        if nxt == INFEASIBLE:
            break
        found = n > 0  # a higher level, walked only for all_mi: a Managed Instances class changes nothing
        for k in range(nsigs):
            if SK[k] != nxt:
                continue
            s = QS[r, k]
            count = SN[s]
            launch, all_chips, part, gpus_reg = S[s, S_LAUNCH], S[s, S_CHIPS], S[s, S_PART], S[s, S_GPUS]
            mi = launch == MANAGED_LAUNCH
            if found and mi:
                continue
            # a signature where no class has the GPUs asked for free (the most free GPUs of its classes is
            # less), or the chips (the union of their free chips lacks one), can neither fit nor change the
            # failure's step once a class passed the steps before that one (the cpu and memory for the GPUs;
            # the cpu, memory, GPU and ENI steps for the chips): it is skipped then, and its walk stops there
            no_gpus = gmode != G_NONE and G[3, s] < _gpus_taken(S, q, s)
            no_chips = ((nmode == N_MANUAL and (G[2, s] & need_chips) != need_chips)
                        or (nmode == N_MANAGED and (all_chips == 0 or (G[2, s] & all_chips) != all_chips)))
            if (no_gpus and o1) or (no_chips and o3):
                continue
            base = SO[s]
            # the first class with the memory asked for: looked for class by class among the first few (the
            # lines the walk then reads; a bisection's dependent reads cost more at 50,000 instances, where
            # they miss the cache), by bisection beyond them (without branches: the sign bit of the
            # difference as a mask, which the compiler cannot turn into a jump)
            lo = base
            near = base + min(count, LINEAR_SEARCH)
            while lo < near and V[lo, 1] < need_mem:
                lo += 1
            if lo == near and near < base + count:
                left = base + count - near
                while left > 1:
                    half = left >> 1
                    lo += half & ((V[lo + half, 1] - need_mem) >> 63)
                    left -= half
                lo -= (V[lo, 1] - need_mem) >> 63
            m0 = np.int64(-1)
            # a class with more memory than the best key's cannot tie it: the walk stops there, unless this
            # signature's answer to "is every fitting class Managed Instances" is still needed
            bound = INFEASIBLE  # (nothing found yet: every class is tested, for the failure's step)
            if best != INFEASIBLE and not (track and all_mi and not mi):
                bound = best & MEM_BITS if nxt == best - (best & MEM_BITS) else -1  # -1: a higher level
            for p in range(lo, base + count):
                mem = V[p, 1]
                if m0 >= 0 and mem != m0:
                    break
                if m0 < 0 and mem > bound and (mem >> W_MEM) == 0:
                    break
                t0, _, t2, t3, t4 = _tests(V[p, 0], mem, V[p, 2], V[p, 3], V[p, 4], need_cpu, need_mem, gmode,
                                            gneed, need_eni, nmode, need_chips, launch, all_chips, part, gpus_reg)
                a2 = t0 & t2
                a3 = a2 & t3
                o1 |= t0
                o2 |= a2
                o3 |= a3
                if (no_gpus and o1) or (no_chips and o3):
                    break
                if a3 & t4:
                    if m0 < 0:  # the signature's best class
                        m0 = mem
                        all_mi &= mi
                        bad |= mem >> W_MEM
                        key = nxt | mem
                        if key > best:
                            break
                        if key < best:
                            best = key
                            n = 0
                    cand[n] = SC[p]
                    n += 1
        if n > 0 and not (track and all_mi):
            break
        level = nxt
    if bad != 0:
        return -1, 0, False, 0
    if n == 0:
        o0 = o1
        if not o0:  # the cpu step: any class at all with the cpu (those without the memory included)
            for k in range(nsigs):
                s = QS[r, k]
                if not (mi_only and S[s, S_LAUNCH] != MANAGED_LAUNCH):
                    o0 |= G[1, s] >= need_cpu
        step = 0 if not o0 else (1 if not o1 else (2 if not o2 else (3 if not o3 else 4)))
        return 0, 0, False, step
    total = 0
    for t in range(n):
        total += C[cand[t], C_SIZE]
    return n, total, all_mi, 4


@njit(cache=True)
def decide(R, X, Z, r, st, fn, explain):
    """One decision for request r, reserved in place: its row, or -1 when no row fits (``X[O_*]`` then
    holds the failed step and, with ``explain``, the explanation: each step's survivors, the closest row
    and what it lacks, from the same pass)."""
    return _decide(R, X, _views(X), Z, _zviews(Z), r, st, fn, explain)


@_inner
def _implicit_chain(q, MI, all_mi):
    """Whether the Managed Instances implicit chain replaces the request's (every fitting instance is
    Managed Instances and the request's chain is another)."""
    if not all_mi:
        return False
    same = True
    for j in range(10):
        same &= q[Q_CODE0 + j] == MI[j]
    return not same


@_inner
def _decide(R, X, xv, Z, zv, r, st, fn, explain):
    """``decide``: the decision on the fast scans (by free memory when the chain ends in binpack(memory),
    else one packed key, else the general pass); only a failure with ``explain`` runs the general pass for
    its explanation (the scans decide the same). Each scan has one call site (a smaller compile): the
    second round is the Managed Instances implicit chain."""
    Q, MI = zv[1], zv[4]
    q = Q[r]
    codes = q[Q_CODE0: Q_CODE0 + 5]
    attrs = q[Q_ATTR0: Q_ATTR0 + 5]
    mi_only = False
    while True:
        n, total, all_mi, step = _scan_sorted(X, xv, zv, q, r, codes, attrs, mi_only)
        if n < 0:
            n, total, all_mi, step = _scan_packed(X, xv, zv, q, r, codes, attrs, mi_only)
        if n < 0 or (n == 0 and explain):
            n, total, all_mi, step = _scan(X, xv, zv, q, r, codes, attrs, mi_only, explain and not mi_only)
        if mi_only:
            break
        if n == 0:
            X[O_STEP] = step
            return -1
        if not _implicit_chain(q, MI, all_mi):
            break
        codes = MI[0:5]
        attrs = MI[5:10]
        mi_only = True
    return _take_row(R, X, xv, Z, zv, q, n, total, codes, st, fn)


@_inner
def _take_row(R, X, xv, Z, zv, q, n, total, codes, st, fn):
    """The tie-break among the rows of the n tied classes (the seeded draw, else the lowest row), then the
    reservation: the row's free columns taken, the row moved to its new class, the spread counts."""
    C, _, _, P, _, _, _, _, _, cand, flat = xv
    S, _, _, SP, _ = zv
    if total > 1 and codes[0] != S_NONE and st != 0:
        row = _kth_row(C, P, cand, n, draw(st, fn, total), flat)
    else:
        row = C[cand[0], C_FIRST]
        for t in range(1, n):
            row = min(row, C[cand[t], C_FIRST])
    group = q[Q_GROUP]
    s = R[0, row]
    chips, gpus = taken(S, q, s)
    _leave(R, X, xv, row)
    R[1, row] -= q[Q_CPU]
    R[2, row] -= q[Q_MEM]
    R[3, row] -= gpus
    R[4, row] -= q[Q_ENI]
    R[5, row] &= ~chips
    _enter(R, X, xv, row)
    for a in range(Z[Z_NATTR]):
        SP[a, group, S[s, NSF0 + a]] += 1
    return row


@_inlined
def _prefetch_releases(R, X, RP, T, live, us, i, count):
    """While decision i runs, ask the cache for what the next releases read (random places in large arrays),
    each a step ahead of what it depends on: the live list's slot of release i + 4, the task record of
    release i + 3, the row's columns and position in its class of release i + 2, the class record of release
    i + 1 (its slot read from the row, asked for one decision before). Where a release falls depends on how
    many tasks run then, which the decisions in between change: each is asked for at two counts, ``count``
    (decision i places its task) and one less (it fails). When 80% of decisions place, one count guessed
    the release one, two and three ahead 81%, 66% and 55% of the time (measured at 50,000 instances); the
    two cover every case one ahead and about 96% and 90% two and three ahead. A wrong guess only wastes a
    hint. On the same decisions: 3.9% less time per decision at 50,000 instances, 2.8% less at 500."""
    n = len(us)
    for c in (count, count - 1):
        if i + 4 < n:
            _prefetch(live, int(us[i + 4] * c))
        if i + 3 < n:
            _prefetch(T[:, 0], live[int(us[i + 3] * c)])
        if i + 2 < n and (c == count or int(us[i + 2] * c) != int(us[i + 2] * count)):
            row = T[live[int(us[i + 2] * c)], 0]
            if row >= 0:
                for f in range(7):
                    _prefetch(R[f], row)
                _prefetch(RP, row)
        if i + 1 < n and (c == count or int(us[i + 1] * c) != int(us[i + 1] * count)):
            row = T[live[int(us[i + 1] * c)], 0]
            if row >= 0:
                at = X[H_OC] + R[6, row] * NCF
                _prefetch(X, at)
                _prefetch(X, at + NCF - 1)


@njit(cache=True)
def run(R, X, Z, T, live, reqs, us, saturated, window, fail_share, out_row, out_task, st, fn):
    """Decide ``reqs`` in order as a stream (the benchmark's figure (a)); returns how many were decided.

    - fill (``window`` > 0): place until more than ``fail_share`` of the last ``window`` decisions failed;
    - churn (``window`` = 0): before each placement, while at least ``saturated`` tasks run, release the
      live task at fraction ``us[i]`` of the live list (swapped with the last, as the Python loop does).

    ``T[task, field]`` (a task's fields in one cache line): 0 row, 1 cpu, 2 memory, 3 gpus, 4 enis, 5 chips,
    6 group; ``T[-1, 0]`` counts the live tasks and ``T[-1, 1]`` the tasks ever placed; ``T[-1, 2:5]`` are
    the cpu, memory and chips the live tasks hold (the cluster's used totals, kept as ``record``/``free``
    keep them). ``live[:T[-1, 0]]`` are the running task slots."""
    xv = _views(X)
    zv = _zviews(Z)
    S, Q = zv[0], zv[1]
    failed = np.zeros(max(window, 1), np.bool_)
    in_window = 0
    last = T.shape[0] - 1
    for i in range(len(reqs)):
        if window == 0 and saturated >= 0 and T[last, 0] >= saturated:
            j = int(us[i] * T[last, 0])
            end = T[last, 0] - 1
            t = live[j]
            live[j] = live[end]
            live[end] = t
            T[last, 0] = end
            row = T[t, 0]
            R[1, row] += T[t, 1]
            R[2, row] += T[t, 2]
            R[3, row] += T[t, 3]
            R[4, row] += T[t, 4]
            R[5, row] |= T[t, 5]
            _relocate(R, X, xv, Z, zv, row, T[t, 6], -1)
            T[t, 0] = -1
            T[last, 2] -= T[t, 1]
            T[last, 3] -= T[t, 2]
            T[last, 4] -= _popcount(T[t, 5])
            _prefetch_releases(R, X, xv[8], T, live, us, i, end + 1)
        r = reqs[i]
        if r < 0:  # no instance passes the request's static filters
            row = -1
            t = -100
        else:
            row = _decide(R, X, xv, Z, zv, r, st, fn, False)
            t = -1 - X[O_STEP]  # a failure: -1 - the step that left no row
        out_row[i] = row
        if row >= 0:
            t = T[last, 1]
            T[last, 1] += 1
            chips, gpus = taken(S, Q[r], R[0, row])
            T[t, 0] = row
            T[t, 1] = Q[r, Q_CPU]
            T[t, 2] = Q[r, Q_MEM]
            T[t, 3] = gpus
            T[t, 4] = Q[r, Q_ENI]
            T[t, 5] = chips
            T[t, 6] = Q[r, Q_GROUP]
            live[T[last, 0]] = t
            T[last, 0] += 1
            T[last, 2] += T[t, 1]
            T[last, 3] += T[t, 2]
            T[last, 4] += _popcount(chips)
        out_task[i] = t
        if window > 0:
            if i >= window:
                in_window -= failed[i % window]
            failed[i % window] = t < 0
            in_window += t < 0
            if i >= window and in_window > fail_share * window:
                return i + 1
    return len(reqs)


FUNCTIONS = {"build": build, "relocate": relocate, "decide": decide, "run": run, "draw": draw}
