"""The request event loop of :mod:`scheduler.sim.requests` as plain functions over numpy arrays: one
definition, compiled by numba when it is installed (``pip install -e ".[fast]"``), else run as Python
(the same code, a few times slower). :func:`compiled` says which.

State, shared with :class:`scheduler.sim.requests.ServiceRequests`:

- ``out[p]``: requests in flight on task position ``p`` (plus ``GONE`` once the task stopped); ``id_of[p]``
  the task's index in the run's task list;
- a binary heap of slot completions ``(ht, hp, hj)`` = (finish time, position, request), ordered by time
  then request;
- ``qbuf``: the FIFO queue of waiting requests, a ring buffer;
- ``ints``/``floats``: the scalars, indexed by the ``I_*``/``F_*`` constants.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np

GONE = 1 << 40
I_NEXT, I_BUSY, I_ARRIVED, I_FINISHED, I_DROP_QUEUE, I_DROP_TIMEOUT, I_RR, I_ALIVE, I_NPOS, I_HSIZE, I_QHEAD, \
    I_QLEN = range(12)
F_CLOCK, F_BUSY_INTEGRAL, F_RESPONSE, F_TASK_INTEGRAL = range(4)
N_INTS, N_FLOATS = 12, 4


def _less(ht: np.ndarray, hj: np.ndarray, a: int, b: int) -> bool:
    return ht[a] < ht[b] or (ht[a] == ht[b] and hj[a] < hj[b])


def _swap(ht: np.ndarray, hp: np.ndarray, hj: np.ndarray, a: int, b: int) -> None:
    ht[a], ht[b] = ht[b], ht[a]
    hp[a], hp[b] = hp[b], hp[a]
    hj[a], hj[b] = hj[b], hj[a]


def heap_push(ht: np.ndarray, hp: np.ndarray, hj: np.ndarray, ints: np.ndarray, t: float, p: int, j: int) -> None:
    k = ints[I_HSIZE]
    ht[k], hp[k], hj[k] = t, p, j
    ints[I_HSIZE] = k + 1
    while k > 0:
        parent = (k - 1) // 2
        if not _less(ht, hj, k, parent):
            break
        _swap(ht, hp, hj, k, parent)
        k = parent


def heap_pop(ht: np.ndarray, hp: np.ndarray, hj: np.ndarray, ints: np.ndarray) -> None:
    """Remove the root (read it first); the heap keeps its order."""
    last = ints[I_HSIZE] - 1
    ints[I_HSIZE] = last
    ht[0], hp[0], hj[0] = ht[last], hp[last], hj[last]
    k = 0
    while True:
        left = 2 * k + 1
        if left >= last:
            break
        child = left
        if left + 1 < last and _less(ht, hj, left + 1, left):
            child = left + 1
        if not _less(ht, hj, child, k):
            break
        _swap(ht, hp, hj, k, child)
        k = child


def serve_queue(t: float, p: int, arrival: np.ndarray, service: np.ndarray, wait: np.ndarray, task: np.ndarray,
                out: np.ndarray, id_of: np.ndarray, ht: np.ndarray, hp: np.ndarray, hj: np.ndarray,
                qbuf: np.ndarray, ints: np.ndarray, cap: int, timeout: float) -> None:
    """Give the slots free on position ``p`` at ``t`` to the requests at the head of the queue (those that
    waited longer than ``timeout`` are dropped)."""
    size = len(qbuf)
    while ints[I_QLEN] > 0 and out[p] < cap:
        j = qbuf[ints[I_QHEAD]]
        ints[I_QHEAD] = (ints[I_QHEAD] + 1) % size
        ints[I_QLEN] -= 1
        if t - arrival[j] > timeout:
            ints[I_DROP_TIMEOUT] += 1
            continue
        out[p] += 1
        ints[I_BUSY] += 1
        wait[j] = t - arrival[j]
        task[j] = id_of[p]
        heap_push(ht, hp, hj, ints, t + service[j], p, j)


def advance(until: float, arrival: np.ndarray, service: np.ndarray, wait: np.ndarray, task: np.ndarray,
            out: np.ndarray, id_of: np.ndarray, ht: np.ndarray, hp: np.ndarray, hj: np.ndarray, qbuf: np.ndarray,
            ints: np.ndarray, floats: np.ndarray, cap: int, limit: int, timeout: float, lor: bool) -> None:
    """Play arrivals and slot completions before ``until`` (``limit`` < 0: no queue limit; ``timeout`` inf:
    none; ``lor``: least outstanding requests, else round robin)."""
    n = len(arrival)
    size = len(qbuf)
    start_clock = floats[F_CLOCK]
    clock = start_clock
    i = ints[I_NEXT]
    while True:
        ta = arrival[i] if i < n else math.inf
        tc = ht[0] if ints[I_HSIZE] > 0 else math.inf
        if ta >= until and tc >= until:
            break
        if tc <= ta:  # a slot frees
            p, j = hp[0], hj[0]
            heap_pop(ht, hp, hj, ints)
            floats[F_BUSY_INTEGRAL] += ints[I_BUSY] * (tc - clock)
            clock = tc
            ints[I_BUSY] -= 1
            out[p] -= 1
            floats[F_RESPONSE] += tc - arrival[j]
            ints[I_FINISHED] += 1
            if ints[I_QLEN] > 0 and out[p] < cap:
                serve_queue(tc, p, arrival, service, wait, task, out, id_of, ht, hp, hj, qbuf, ints, cap, timeout)
            continue
        floats[F_BUSY_INTEGRAL] += ints[I_BUSY] * (ta - clock)  # a request arrives
        clock = ta
        ints[I_ARRIVED] += 1
        while ints[I_QLEN] > 0 and ta - arrival[qbuf[ints[I_QHEAD]]] > timeout:
            ints[I_QHEAD] = (ints[I_QHEAD] + 1) % size
            ints[I_QLEN] -= 1
            ints[I_DROP_TIMEOUT] += 1
        chosen = -1
        npos = ints[I_NPOS]
        if ints[I_QLEN] == 0 and ints[I_ALIVE] > 0:
            if lor:
                least = cap
                for p in range(npos):
                    if out[p] < least:
                        least = out[p]
                        chosen = p
            else:
                for step in range(npos):
                    p = (ints[I_RR] + step) % npos
                    if out[p] < cap:
                        chosen = p
                        ints[I_RR] = p + 1
                        break
        if chosen >= 0:
            out[chosen] += 1
            ints[I_BUSY] += 1
            wait[i] = 0.0
            task[i] = id_of[chosen]
            heap_push(ht, hp, hj, ints, ta + service[i], chosen, i)
        elif limit >= 0 and ints[I_QLEN] >= limit:
            ints[I_DROP_QUEUE] += 1
        else:
            qbuf[(ints[I_QHEAD] + ints[I_QLEN]) % size] = i
            ints[I_QLEN] += 1
        i += 1
    ints[I_NEXT] = i
    if until > clock and until < math.inf:
        floats[F_BUSY_INTEGRAL] += ints[I_BUSY] * (until - clock)
        clock = until
    if until < math.inf and until > start_clock:
        floats[F_TASK_INTEGRAL] += ints[I_ALIVE] * (until - start_clock)
    floats[F_CLOCK] = clock


_compiled: dict[str, object] = {}


def compiled() -> bool:
    """Whether the loop runs compiled (numba installed)."""
    return importlib.util.find_spec("numba") is not None


def functions() -> tuple[object, object]:
    """``(advance, serve_queue)``: compiled when numba is installed, else the Python functions above."""
    if not _compiled:
        if compiled():
            from numba import njit
            from numba.extending import register_jitable

            for helper in (_less, _swap, heap_push, heap_pop, serve_queue):
                register_jitable(helper)  # compiled inside compiled callers; still plain Python when called from Python
            _compiled["advance"] = njit(cache=True, nogil=True)(advance)
            _compiled["serve_queue"] = njit(cache=True, nogil=True)(serve_queue)
        else:
            _compiled["advance"], _compiled["serve_queue"] = advance, serve_queue
    return _compiled["advance"], _compiled["serve_queue"]  # type: ignore[return-value]


def python_functions() -> tuple[object, object]:
    """The uncompiled loop (the same code, every helper in Python), for tests that compare the two."""
    return advance, serve_queue
