"""numba code of the stream lane (see ``lane.py`` for the design; import only through it).

The loop runs RunTask calls, task starts (a start-up model's PENDING -> RUNNING) and task exits of stream
workloads over columns, in simpy's order: its own heap keyed ``(time, eid)`` (every lane event has simpy's
NORMAL priority), eids taken from one counter exactly where the plain path calls ``Clock.at``. It stops and
returns a code when the next lane event comes after simpy's next event (``limit``), or when Python must do
something (a failed placement, GPU ids, start-up draws and the image cache, a waiting room retry, a block of
draws to refill, a column to grow). All its state lives in the arrays passed in, so a call resumes where the
last one stopped. Written as plain Python over arrays: ``.py_func`` runs it uncompiled.

Arrays (owned by ``lane.Lane``):

- ``C`` int64 counters (``C_*``); ``F`` float64 scalars (``F_*``); ``L`` the cluster totals
  (``ClusterState.totals_block``, changed in place as ``record``/``free`` change them) and ``A`` the
  recorder's integrals of them, in ``placement.state.Totals`` order;
- ``HT``, ``HE``, ``HP``: the heap's times, eids and payloads. A payload ``p`` is ``PASS`` (the waiting room's
  retry pass: ``CLS``/``CD`` below) or one of three events:
  ``p < 0``: workload ``-1 - p``'s next RunTask call; ``0 <= p < STARTED``: the exit of the task in slot
  ``p`` (its run time ended: ``TaskLifecycle._exit``); ``p >= STARTED``: the task in slot ``p - STARTED``
  is up (PENDING -> RUNNING: ``TaskLifecycle._running``; only tasks of a workload with a start-up model have
  it). A task has at most one event on the heap: its start while PENDING, then its exit while RUNNING;
- ``TI[slot]``: id number, workload, row, chips mask, GPUs taken; ``TF[slot]``: created (= placed: a lane
  task is placed at submission), stopped, run for, started (RUNNING; NaN while PENDING), pull stopped
  (created + image pull; NaN without a start-up model); ``FREE`` the free slots (a stack); ``DONE`` the
  slots stopped since the last flush, in stop order;
- ``W[workload]``: kernel request slot (-1: Python decides every task), cpu, memory, ENIs, chips (-1: every
  chip of the row), GPUs (-1: every GPU of the row; != 0: Python takes the ids), kernel group, group-count
  row, count per call, calls left (-1: no limit), arrivals read, arrivals held, durations read, durations
  held, arrivals ended, start-up model (1: its tasks are PENDING from placement until Python's draws say;
  Python reads its arrivals one at a time, as the draws share their generator), variants, variants read,
  variants held; ``AT``/``DU`` the blocks of arrival times and durations drawn ahead. A workload with a
  capacity provider strategy has ``W_NVAR`` variant rows right after its own (one per provider: the request
  each task is placed as) and ``VB`` the block of its tasks' variants (0-based offsets after its row) drawn
  ahead from its strategy; a task takes its duration from the workload's row and everything else from its
  variant's (``TI``'s workload is the variant row);
- ``R``, ``X``, ``Z``: the placement kernel's arrays (ClusterState's own free columns); ``RUN`` the state's
  running-task counts; ``G[group row, row]`` its task-group counts; ``PRICE`` each row's price per chip;
  ``CLS[k]``/``CD[k]``: the waiting room's class k (its head's kernel request, whether ``CD[k]`` holds the
  failure details its reason was set from), built by Python at each hand-over; ``TOUCH``/``TL`` rows changed
  (for the Python class index); ``DAEMON`` rows a daemon task waits on (a release there is the waiting room's
  business: KICK).
"""

from __future__ import annotations

import math

from numba import njit

from scheduler.placement._kernel_impl import (
    O_BASE,
    O_STEP,
    Q_ATTR0,
    Q_CODE0,
    _decide,
    _popcount,
    _relocate,
    _scan,
    _scan_packed,
    _scan_sorted,
    _views,
    _zviews,
)

# counters
(C_EID, C_NEXT_ID, C_HEAP, C_NFREE, C_NDONE, C_SUBMITTED, C_PROV, C_PEND, C_RUN, C_STOP, C_COMPLETED, C_CALL_J,
 C_CALL_LEFT, C_OUT_J, C_OUT_SLOT, C_WAITING, C_NTOUCH, C_OUT_ID, C_PSCHED, C_LPASS, C_NCLS, C_PASS_K, C_OUT_K,
 C_OUT_KICK, C_PASSES) = range(25)
NC = 25
# the waiting room's classes as the lane sees them (``CLS[k]``: the kernel request slot of class k's head, 1 when
# ``CD[k]`` holds the failure details its head's reason was last set from) and the details' length
CLS_SLOT, CLS_KNOWN = 0, 1
ND = 13
PASS = -(1 << 40)  # a heap payload: the waiting room's retry pass (``WaitingRoom.retry``)
# float scalars: now, the recorder's last_t, simpy's next key (time; its priority and eid are in LIM)
F_NOW, F_LAST_T, F_LIMIT_T, F_OUT_RUN_FOR, F_HELD_COST = range(5)
NF = 5
# the cluster totals' indices in ``L`` (ClusterState.totals_block; a test holds them to placement.state's)
USED_CPU, USED_MEMORY, HELD_CHIPS = 1, 3, 5
NL = 6
# workload fields
(W_SLOT, W_CPU, W_MEM, W_ENI, W_CHIPS, W_GPUS, W_GROUP, W_GROW, W_COUNT, W_CALLS_LEFT, W_AT_I, W_AT_N, W_DU_I,
 W_DU_N, W_ENDED, W_STARTUP, W_NVAR, W_VB_I, W_VB_N) = range(19)
NW = 19
# task fields
T_ID, T_WORKLOAD, T_ROW, T_CHIPS, T_GPUS = range(5)
NT = 5
TF_CREATED, TF_STOPPED, TF_RUN_FOR, TF_STARTED, TF_PULLED = range(5)
NTF = 5
STARTED = 1 << 40  # a heap payload at or above: the task in slot ``payload - STARTED`` is up (see above)
# return codes. ON_PLACE: Python's share of a placement of the task in ``C[C_OUT_SLOT]`` (its GPU ids; with a
# start-up model its draws, the image cache, and pushing its start on the heap with the next eid). ON_STOP:
# Python's share of its stop (GPU ids back, images released), then the waiting room's turn as after KICK.
# KICK: a release that the waiting room handles (``WaitingRoom.freed`` and ``kick``). PASS_PY: the retry pass
# runs in Python (a head can be placed now, or the lane cannot try the classes). NOTE: the head of class
# ``C[C_OUT_K]`` failed with other details than its reason says (in X): Python sets its reason from them.
YIELD, IDLE, FAIL, ON_PLACE, ON_STOP, KICK, REFILL_AT, REFILL_DU, GROW, REFILL_VB, PASS_PY, NOTE = range(12)
NORMAL = 1  # simpy's priority of every lane event


@njit(cache=True)
def heap_push(HT, HE, HP, C, t, e, p):
    """Push (t, e) with payload p; the caller has room (``C[C_HEAP] < len(HT)``)."""
    i = C[C_HEAP]
    C[C_HEAP] = i + 1
    while i > 0:
        parent = (i - 1) >> 1
        if HT[parent] < t or (HT[parent] == t and HE[parent] < e):
            break
        HT[i] = HT[parent]
        HE[i] = HE[parent]
        HP[i] = HP[parent]
        i = parent
    HT[i] = t
    HE[i] = e
    HP[i] = p


@njit(cache=True)
def heap_pop(HT, HE, HP, C):
    """Remove the smallest key (its fields were read from index 0 by the caller)."""
    n = C[C_HEAP] - 1
    C[C_HEAP] = n
    if n == 0:
        return
    t = HT[n]
    e = HE[n]
    p = HP[n]
    i = 0
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and (HT[child + 1] < HT[child] or (HT[child + 1] == HT[child] and HE[child + 1] < HE[child])):
            child += 1
        if t < HT[child] or (t == HT[child] and e < HE[child]):
            break
        HT[i] = HT[child]
        HE[i] = HE[child]
        HP[i] = HP[child]
        i = child
    HT[i] = t
    HE[i] = e
    HP[i] = p


@njit(cache=True)
def _advance(L, A, F, t):
    """``Recorder.advance(t)`` before a change of the totals ``L`` at ``t``: each total's integral over
    [last_t, t) with the level it had (the same float operations in the same order)."""
    dt = t - F[F_LAST_T]
    if dt > 0:
        for k in range(NL):
            A[k] += L[k] * dt
        F[F_LAST_T] = t


@njit(cache=True)
def _touch(TOUCH, TL, C, row):
    if not TOUCH[row]:
        TOUCH[row] = True
        TL[C[C_NTOUCH]] = row
        C[C_NTOUCH] += 1


@njit(cache=True)
def _schedule(C, HT, HE, HP, now, t, payload):
    """``Clock.at(t, ...)`` called at ``now``: simpy's time is ``now + max(0, t - now)``; the eid is the next."""
    e = C[C_EID]
    C[C_EID] = e + 1
    heap_push(HT, HE, HP, C, now + max(0.0, t - now), e, payload)


@njit(cache=True)
def _exit(C, F, L, A, HT, HE, HP, TI, TF, DONE, R, X, xv, Z, zv, RUN, G, W, PRICE, TOUCH, TL, slot):
    """A lane task's run time ended: STOPPED (EssentialContainerExited), its resources given back."""
    now = F[F_NOW]
    row = TI[slot, T_ROW]
    j = TI[slot, T_WORKLOAD]
    chips = TI[slot, T_CHIPS]
    n = _popcount(chips)
    C[C_RUN] -= 1
    C[C_STOP] += 1
    _advance(L, A, F, now)
    L[USED_CPU] -= W[j, W_CPU]
    L[USED_MEMORY] -= W[j, W_MEM]
    L[HELD_CHIPS] -= n
    if n:  # Recorder.chips_released: price per chip x chips x seconds held (placed at submission)
        F[F_HELD_COST] += PRICE[row] * n * (now - TF[slot, TF_CREATED])
    R[1, row] += W[j, W_CPU]
    R[2, row] += W[j, W_MEM]
    R[3, row] += TI[slot, T_GPUS]
    R[4, row] += W[j, W_ENI]
    R[5, row] |= chips
    _relocate(R, X, xv, Z, zv, row, W[j, W_GROUP], -1)
    G[W[j, W_GROW], row] -= 1
    RUN[row] -= 1
    _touch(TOUCH, TL, C, row)
    TF[slot, TF_STOPPED] = now
    C[C_COMPLETED] += 1
    DONE[C[C_NDONE]] = slot
    C[C_NDONE] += 1


@njit(cache=True)
def _start(C, F, L, A, HT, HE, HP, TI, TF, FREE, R, X, xv, Z, zv, RUN, G, W, DU, PRICE, CHIPS_ALL, GPU_REG, TOUCH,
           TL, w, j, st, fn):
    """One task of workload ``w`` submitted now as request row ``j`` (``w`` itself, or one of its capacity
    provider variants; its id and duration taken): placed and RUNNING, or FAIL."""
    now = F[F_NOW]
    C[C_NEXT_ID] += 1
    run_for = DU[w, W[w, W_DU_I]]
    W[w, W_DU_I] += 1
    slot_r = W[j, W_SLOT]
    row = -1
    if slot_r >= 0:
        row = _decide(R, X, xv, Z, zv, slot_r, st, fn, True)
    if row < 0:  # Python builds the task and its Failure, and places, queues or fails it (nothing was drawn)
        C[C_OUT_J] = j
        C[C_OUT_ID] = C[C_NEXT_ID]
        F[F_OUT_RUN_FOR] = run_for
        return FAIL
    C[C_SUBMITTED] += 1
    chips = W[j, W_CHIPS]
    if chips < 0:
        chips = CHIPS_ALL[row]
    gpus = W[j, W_GPUS]
    if gpus < 0:
        gpus = GPU_REG[row]
    n = _popcount(chips)
    slot = FREE[C[C_NFREE] - 1]
    C[C_NFREE] -= 1
    TI[slot, T_ID] = C[C_NEXT_ID]
    TI[slot, T_WORKLOAD] = j
    TI[slot, T_ROW] = row
    TI[slot, T_CHIPS] = chips
    TI[slot, T_GPUS] = gpus
    TF[slot, TF_CREATED] = now
    TF[slot, TF_RUN_FOR] = run_for
    G[W[j, W_GROW], row] += 1
    RUN[row] += 1
    _touch(TOUCH, TL, C, row)
    _advance(L, A, F, now)
    L[USED_CPU] += W[j, W_CPU]
    L[USED_MEMORY] += W[j, W_MEM]
    L[HELD_CHIPS] += n
    if W[j, W_STARTUP]:  # PENDING while its images are pulled and its containers start: Python draws how long
        C[C_PEND] += 1
        TF[slot, TF_STARTED] = math.nan
        C[C_OUT_SLOT] = slot
        return ON_PLACE
    C[C_RUN] += 1
    TF[slot, TF_STARTED] = now
    TF[slot, TF_PULLED] = math.nan
    if math.isfinite(run_for):
        _schedule(C, HT, HE, HP, now, now + run_for, slot)
    if gpus != 0:
        C[C_OUT_SLOT] = slot
        return ON_PLACE
    return -1


@njit(cache=True)
def _feasible(X, xv, zv, r):
    """``_decide`` (with its explanation) without taking a row: whether request ``r`` would be placed now; when
    not, its failure details are in ``X`` as a failed decision leaves them."""
    q = zv[1][r]
    codes = q[Q_CODE0: Q_CODE0 + 5]
    attrs = q[Q_ATTR0: Q_ATTR0 + 5]
    n, _, _, step = _scan_sorted(X, xv, zv, q, r, codes, attrs, False)
    if n < 0:
        n, _, _, step = _scan_packed(X, xv, zv, q, r, codes, attrs, False)
    if n <= 0:
        n, _, _, step = _scan(X, xv, zv, q, r, codes, attrs, False, True)
    if n == 0:
        X[O_STEP] = step
        return False
    return True


@njit(cache=True)
def step(C, F, LIM, L, A, HT, HE, HP, TI, TF, FREE, DONE, W, AT, DU, VB, CLS, CD, R, X, Z, RUN, G, PRICE,
         CHIPS_ALL, GPU_REG, TOUCH, TL, DAEMON, st, fn):
    """Run lane events until the next one comes after simpy's next (YIELD), none is left (IDLE), or Python
    must act (the other codes); call again to resume."""
    xv = _views(X)
    zv = _zviews(Z)
    lim_t = F[F_LIMIT_T]
    lim_p = LIM[0]
    lim_e = LIM[1]
    while True:
        k = C[C_PASS_K]
        if k >= 0:  # inside the waiting room's retry pass: each class's head, as WaitingRoom.retry tries it
            while k < C[C_NCLS]:
                if _feasible(X, xv, zv, CLS[k, CLS_SLOT]):
                    C[C_PASS_K] = -1
                    return PASS_PY  # it would be placed: Python runs the pass (the heads before fail again)
                same = CLS[k, CLS_KNOWN] != 0
                if same:
                    for d in range(ND):
                        if CD[k, d] != X[O_BASE + d]:
                            same = False
                            break
                C[C_PASS_K] = k + 1
                if not same:
                    for d in range(ND):
                        CD[k, d] = X[O_BASE + d]
                    CLS[k, CLS_KNOWN] = 1
                    C[C_OUT_K] = k
                    return NOTE
                k += 1
            C[C_PASS_K] = -1
            C[C_PASSES] += 1
        j = C[C_CALL_J]
        if j >= 0:  # inside a RunTask call: its remaining tasks, then the next call
            while C[C_CALL_LEFT] > 0:
                if W[j, W_DU_I] >= W[j, W_DU_N]:
                    C[C_OUT_J] = j
                    return REFILL_DU
                if C[C_NFREE] == 0 or C[C_HEAP] >= len(HT):
                    return GROW
                jj = j
                if W[j, W_NVAR] > 0:  # a capacity provider strategy: the provider this task goes to
                    if W[j, W_VB_I] >= W[j, W_VB_N]:
                        C[C_OUT_J] = j
                        return REFILL_VB
                    jj = j + 1 + VB[j, W[j, W_VB_I]]
                    W[j, W_VB_I] += 1
                C[C_CALL_LEFT] -= 1
                code = _start(C, F, L, A, HT, HE, HP, TI, TF, FREE, R, X, xv, Z, zv, RUN, G, W, DU, PRICE, CHIPS_ALL,
                              GPU_REG, TOUCH, TL, j, jj, st, fn)
                if code >= 0:
                    return code
            if W[j, W_CALLS_LEFT] != 0 and W[j, W_ENDED] == 0:
                if W[j, W_AT_I] >= W[j, W_AT_N]:
                    C[C_OUT_J] = j
                    return REFILL_AT
                if C[C_HEAP] >= len(HT):
                    return GROW
                t = AT[j, W[j, W_AT_I]]
                W[j, W_AT_I] += 1
                _schedule(C, HT, HE, HP, F[F_NOW], t, -1 - j)
            C[C_CALL_J] = -1
        if C[C_HEAP] == 0:
            return IDLE
        t = HT[0]
        e = HE[0]
        if not (t < lim_t or (t == lim_t and (lim_p > NORMAL or (lim_p == NORMAL and e < lim_e)))):
            return YIELD
        p = HP[0]
        heap_pop(HT, HE, HP, C)
        F[F_NOW] = t
        if p >= STARTED:  # TaskLifecycle._running: its containers are up; its run time starts now
            slot = p - STARTED
            C[C_PEND] -= 1
            C[C_RUN] += 1
            TF[slot, TF_STARTED] = t
            run_for = TF[slot, TF_RUN_FOR]
            if math.isfinite(run_for):
                _schedule(C, HT, HE, HP, t, t + run_for, slot)  # room: its start was just popped
        elif p >= 0:
            _exit(C, F, L, A, HT, HE, HP, TI, TF, DONE, R, X, xv, Z, zv, RUN, G, W, PRICE, TOUCH, TL, p)
            C[C_OUT_SLOT] = p
            row = TI[p, T_ROW]
            # TaskLifecycle.stop's last step, WaitingRoom.kick: a retry pass now, unless one is scheduled
            kick = C[C_WAITING] != 0 and C[C_PSCHED] == 0
            if kick and C[C_LPASS] != 0 and not DAEMON[row]:
                _schedule(C, HT, HE, HP, t, t, PASS)  # room: the exit was just popped
                C[C_PSCHED] = 1
                kick = False
            C[C_OUT_KICK] = 1 if kick or DAEMON[row] else 0
            if TI[p, T_GPUS] != 0 or W[TI[p, T_WORKLOAD], W_STARTUP]:
                return ON_STOP
            if C[C_OUT_KICK]:
                return KICK
        elif p == PASS:
            C[C_PSCHED] = 0  # WaitingRoom.retry's first step
            if C[C_LPASS] == 0:
                return PASS_PY
            C[C_PASS_K] = 0
        else:
            j = -1 - p
            if W[j, W_CALLS_LEFT] > 0:
                W[j, W_CALLS_LEFT] -= 1
            C[C_CALL_J] = j
            C[C_CALL_LEFT] = W[j, W_COUNT]
