"""numba code of the compiled placement kernel (see ``kernel.py`` for the design; import only through it).

Array layouts (all int64):
- ``R[field, row]``: 0 signature, 1 cpu, 2 memory, 3 gpus, 4 enis, 5 free-chip mask, 6 class slot;
- ``C[field, slot]``: 0 signature (-1: free slot), 1 cpu, 2 memory, 3 gpus, 4 enis, 5 chips, 6 size, 7 lowest row,
  8 position in its signature's class list;
- ``SC[SO[signature]:][:SN[signature]]``: the live class slots of each signature (room for as many as it
  has rows), so that a request scans only the classes of the signatures it may run on
  (``QS[QO[r]:QO[r + 1]]``);
- ``S[field, signature]``: 0 launch code, 1 all-chips mask;
- ``SA[attribute, signature]``: the code of each spread attribute;
- ``Q[request, field]``: 0 cpu, 1 memory, 2 gpus, 3 enis, 4 neuron mode, 5 chip mask, 6 group,
  7 static failure code (-1 none), 8..12 strategy codes, 13..17 spread attribute per strategy;
- ``QS``/``QO``: the signatures each request may run on (the static filters' answer), flattened;
- ``SP[attribute, group, value]``: tasks of a group per attribute value (spread counts);
- ``T[field, task]``: 0 row, 1 cpu, 2 memory, 3 gpus, 4 enis, 5 chips, 6 group, 7 request;
- ``M``: 0 slots used, 1 free slots on the stack, 2 live tasks, 3 tasks ever placed.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict, List

KEY = types.UniTuple(types.int64, 6)
MANAGED_LAUNCH = 1
S_NONE, S_RANDOM, S_BINPACK_CPU, S_BINPACK_MEM, S_BINPACK_GPU, S_BINPACK_CHIPS, S_SPREAD = range(7)
N_NONE, N_MANUAL, N_MANAGED = 0, 1, 2


@njit(cache=True)
def _popcount(x: int) -> int:
    n = 0
    while x:
        x &= x - 1
        n += 1
    return n


@njit(cache=True)
def new_index(R, S, kcap):
    """Build the class arrays, the key -> slot hash, the per-class sorted rows and the per-signature
    class lists from ``R``."""
    C = np.zeros((9, kcap), np.int64)
    C[0, :] = -1
    cdict = Dict.empty(key_type=KEY, value_type=types.int64)
    rows = List.empty_list(types.int64[:])
    SO = np.zeros(S.shape[1] + 1, np.int64)
    for i in range(R.shape[1]):
        SO[R[0, i] + 1] += 1
    SO = np.cumsum(SO)
    SC = np.zeros(max(R.shape[1], 1), np.int64)
    SN = np.zeros(S.shape[1], np.int64)
    free = np.zeros(kcap, np.int64)
    M = np.zeros(4, np.int64)
    idx = (cdict, SC, SN, SO)
    for i in range(R.shape[1]):
        _enter(R, C, idx, rows, free, M, i)
    return C, idx, rows, free, M


@njit(cache=True)
def _enter(R, C, idx, rows, free, M, i):
    cdict, SC, SN, SO = idx
    key = (R[0, i], R[1, i], R[2, i], R[3, i], R[4, i], R[5, i])
    if key in cdict:
        c = cdict[key]
    else:
        if M[1] > 0:
            M[1] -= 1
            c = free[M[1]]
        else:
            c = M[0]
            M[0] += 1
            rows.append(np.empty(4, np.int64))
        cdict[key] = c
        C[0, c] = key[0]
        C[1, c] = key[1]
        C[2, c] = key[2]
        C[3, c] = key[3]
        C[4, c] = key[4]
        C[5, c] = key[5]
        C[6, c] = 0
        C[7, c] = i
        s = key[0]
        SC[SO[s] + SN[s]] = c
        C[8, c] = SN[s]
        SN[s] += 1
    arr = rows[c]
    size = C[6, c]
    if size == len(arr):
        bigger = np.empty(2 * len(arr), np.int64)
        bigger[:size] = arr[:size]
        rows[c] = bigger
        arr = bigger
    pos = np.searchsorted(arr[:size], i)
    for j in range(size, pos, -1):
        arr[j] = arr[j - 1]
    arr[pos] = i
    C[6, c] = size + 1
    if pos == 0:
        C[7, c] = i
    R[6, i] = c


@njit(cache=True)
def _leave(R, C, idx, rows, free, M, i):
    cdict, SC, SN, SO = idx
    c = R[6, i]
    arr = rows[c]
    size = C[6, c]
    pos = np.searchsorted(arr[:size], i)
    for j in range(pos, size - 1):
        arr[j] = arr[j + 1]
    size -= 1
    C[6, c] = size
    if size == 0:
        del cdict[(C[0, c], C[1, c], C[2, c], C[3, c], C[4, c], C[5, c])]
        s = C[0, c]
        last = SN[s] - 1
        moved = SC[SO[s] + last]
        SC[SO[s] + C[8, c]] = moved
        C[8, moved] = C[8, c]
        SN[s] = last
        C[0, c] = -1
        free[M[1]] = c
        M[1] += 1
    elif pos == 0:
        C[7, c] = arr[0]


@njit(cache=True)
def _kth_row(C, rows, cand, n, k):
    """The k-th smallest row (0-based) among the rows of classes cand[:n] (each class's rows are sorted):
    a copy and a partial sort when they are few, else a bisection on the row number."""
    if n == 1:
        return rows[cand[0]][k]
    total = 0
    lo = C[7, cand[0]]
    hi = lo
    for t in range(n):
        c = cand[t]
        total += C[6, c]
        lo = min(lo, C[7, c])
        hi = max(hi, rows[c][C[6, c] - 1])
    if total <= 512:
        flat = np.empty(total, np.int64)
        at = 0
        for t in range(n):
            size = C[6, cand[t]]
            flat[at: at + size] = rows[cand[t]][:size]
            at += size
        return np.partition(flat, k)[k]
    while lo < hi:  # the smallest row r with more than k candidate rows <= r
        mid = (lo + hi) // 2
        count = 0
        for t in range(n):
            c = cand[t]
            count += np.searchsorted(rows[c][: C[6, c]], mid, side="right")
        if count > k:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True)
def _score(C, SA, SP, group, c, code, attr):
    if code == S_BINPACK_CPU:
        return C[1, c]
    if code == S_BINPACK_MEM:
        return C[2, c]
    if code == S_BINPACK_GPU:
        return C[3, c]
    if code == S_BINPACK_CHIPS:
        return _popcount(C[5, c])
    return SP[attr, group, SA[attr, C[0, c]]]


@njit(cache=True)
def place(R, C, idx, rows, free, M, S, SA, SP, T, Q, QS, QO, chain_mi, r, rng, cand, scores):
    """One decision for request ``r``: the task's slot in T and its row, or -1 and a failure code
    (-1 - resource step, or -100 - static code)."""
    q = Q[r]
    if q[7] >= 0:
        return -1, -100 - q[7]
    SC, SN, SO = idx[1], idx[2], idx[3]
    c_cpu, c_mem, c_gpu, c_eni, c_chips = C[1], C[2], C[3], C[4], C[5]
    need_cpu, need_mem, need_gpu, need_eni, mode, need_chips = q[0], q[1], q[2], q[3], q[4], q[5]
    n = 0
    for k in range(QO[r], QO[r + 1]):
        s = QS[k]
        base = SO[s]
        if mode == N_MANAGED:  # every chip of a Managed Instances instance, none held
            if S[0, s] != MANAGED_LAUNCH or S[1, s] == 0:
                continue
            want, need = S[1, s], S[1, s]
        else:  # manual: the named chips are free (need 0: no chip)
            want, need = need_chips, need_chips
        for j in range(SN[s]):
            c = SC[base + j]
            ok = ((c_cpu[c] >= need_cpu) & (c_mem[c] >= need_mem) & (c_gpu[c] >= need_gpu)
                  & (c_eni[c] >= need_eni) & ((c_chips[c] & want) == need))
            cand[n] = c
            n += ok
    if n == 0:
        return -1, -1 - _failed_step(C, Q, QS, QO, SC, SN, SO, r)
    if n == 1 and C[6, cand[0]] == 1:
        row = C[7, cand[0]]
    else:
        all_mi = True
        for t in range(n):
            if S[0, C[0, cand[t]]] != MANAGED_LAUNCH:
                all_mi = False
                break
        row = -1
        drawn = False
        for j in range(5):
            code = chain_mi[j] if all_mi else q[8 + j]
            attr = chain_mi[5 + j] if all_mi else q[13 + j]
            if code == S_NONE:
                break
            if code == S_RANDOM:
                total = 0
                for t in range(n):
                    total += C[6, cand[t]]
                row = C[7, cand[0]] if total == 1 else _kth_row(C, rows, cand, n, rng.integers(0, total))
                drawn = True
                break
            if n == 1:
                continue
            for t in range(n):
                scores[t] = _score(C, SA, SP, q[6], cand[t], code, attr)
            best = scores[:n].min()
            m = 0
            for t in range(n):
                cand[m] = cand[t]
                m += scores[t] == best
            n = m
        if not drawn:
            total = 0
            for t in range(n):
                total += C[6, cand[t]]
            has_chain = (chain_mi[0] if all_mi else q[8]) != S_NONE
            if total > 1 and has_chain:
                row = _kth_row(C, rows, cand, n, rng.integers(0, total))
            else:
                row = C[7, cand[0]]
                for t in range(1, n):
                    row = min(row, C[7, cand[t]])
    return _reserve(R, C, idx, rows, free, M, S, SA, SP, T, q, r, row), row


@njit(cache=True)
def _failed_step(C, Q, QS, QO, SC, SN, SO, r):
    """The first resource step after which no row is left (the Python pass's explanation): rows left
    after cpu, memory, gpu, eni and neuron devices, counted cumulatively."""
    q = Q[r]
    c_cpu, c_mem, c_gpu, c_eni, c_size = C[1], C[2], C[3], C[4], C[6]
    left0 = left1 = left2 = left3 = 0
    for i in range(QO[r], QO[r + 1]):
        s = QS[i]
        for j in range(SN[s]):
            c = SC[SO[s] + j]
            size = c_size[c]
            ok = c_cpu[c] >= q[0]
            left0 += size * ok
            ok &= c_mem[c] >= q[1]
            left1 += size * ok
            ok &= c_gpu[c] >= q[2]
            left2 += size * ok
            ok &= c_eni[c] >= q[3]
            left3 += size * ok
    if left0 == 0:
        return 0
    if left1 == 0:
        return 1
    if left2 == 0:
        return 2
    if left3 == 0:
        return 3
    return 4


@njit(cache=True)
def _reserve(R, C, idx, rows, free, M, S, SA, SP, T, q, r, row):
    s = R[0, row]
    chips = 0
    if q[4] == N_MANUAL:
        chips = q[5]
    elif q[4] == N_MANAGED:
        chips = S[1, s]
    _leave(R, C, idx, rows, free, M, row)
    R[1, row] -= q[0]
    R[2, row] -= q[1]
    R[3, row] -= q[2]
    R[4, row] -= q[3]
    R[5, row] &= ~chips
    _enter(R, C, idx, rows, free, M, row)
    for a in range(SA.shape[0]):
        SP[a, q[6], SA[a, s]] += 1
    t = M[3]
    M[3] += 1
    T[0, t] = row
    T[1, t] = q[0]
    T[2, t] = q[1]
    T[3, t] = q[2]
    T[4, t] = q[3]
    T[5, t] = chips
    T[6, t] = q[6]
    T[7, t] = r
    return t


@njit(cache=True)
def release(R, C, idx, rows, free, M, SA, SP, T, t):
    """Give back everything task slot ``t`` holds."""
    row = T[0, t]
    s = R[0, row]
    _leave(R, C, idx, rows, free, M, row)
    R[1, row] += T[1, t]
    R[2, row] += T[2, t]
    R[3, row] += T[3, t]
    R[4, row] += T[4, t]
    R[5, row] |= T[5, t]
    _enter(R, C, idx, rows, free, M, row)
    for a in range(SA.shape[0]):
        SP[a, T[6, t], SA[a, s]] -= 1
    T[0, t] = -1


@njit(cache=True)
def run(R, C, idx, rows, free, M, S, SA, SP, T, Q, QS, QO, chain_mi, rng, reqs, us,
        live, saturated, window, fail_share, out_row, out_task):
    """Decide ``reqs`` in order; returns how many were decided. One entry point for both phases of the
    benchmark, so that a process loads one compiled function from the cache:

    - fill (``window`` > 0): place until more than ``fail_share`` of the last ``window`` decisions failed;
    - churn (``window`` = 0): before each placement, while at least ``saturated`` tasks run, release the
      live task at fraction ``us[i]`` of the live list (swapped with the last, as the Python loop does).

    ``live[:M[2]]`` are the running task slots, in the order the Python loop keeps them."""
    cand = np.empty(C.shape[1], np.int64)
    scores = np.empty(C.shape[1], np.int64)
    failed = np.zeros(max(window, 1), np.bool_)
    in_window = 0
    for i in range(len(reqs)):
        if window == 0 and saturated >= 0 and M[2] >= saturated:
            j = int(us[i] * M[2])
            last = M[2] - 1
            t = live[j]
            live[j] = live[last]
            live[last] = t
            M[2] = last
            release(R, C, idx, rows, free, M, SA, SP, T, t)
        t, row = place(R, C, idx, rows, free, M, S, SA, SP, T, Q, QS, QO, chain_mi, reqs[i], rng, cand, scores)
        out_row[i] = row
        out_task[i] = t
        if t >= 0:
            live[M[2]] = t
            M[2] += 1
        if window > 0:
            if i >= window:
                in_window -= failed[i % window]
            failed[i % window] = t < 0
            in_window += t < 0
            if i >= window and in_window > fail_share * window:
                return i + 1
    return len(reqs)


FUNCTIONS = {"new_index": new_index, "place": place, "release": release, "run": run}
