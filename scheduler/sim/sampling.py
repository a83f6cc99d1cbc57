"""One timeline sample, read from the cluster state as it is at one instant (no engine involved).

A sample is a row per (instance type, capacity provider) of the live instances and a ``*`` row for the
whole cluster with the task counts by state. Free chips are *stranded* on an instance that can take none
of the scenario's Neuron tasks now (asked of the placer, per instance with free chips).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from scheduler.ecs.taskspec import TaskSpec
from scheduler.placement.placer import Placer
from scheduler.placement.state import ClusterState
from scheduler.sim.metrics import RESOURCE_COLUMNS
from scheduler.sim.tasks import PENDING, PROVISIONING, RUNNING, STOPPED


def sample(state: ClusterState, placer: Placer, neuron_specs: Sequence[TaskSpec], t: float,
           counts: Mapping[str, int], submitted: int) -> tuple[list[dict], float]:
    """The timeline rows at time ``t`` and the number of stranded chips then. ``counts`` are the tasks by
    state; ``submitted`` counts tasks seeded from a snapshot too."""
    st = state
    n = len(st)
    rows: list[dict] = []
    stranded_chips = 0.0
    if n:
        providers = [i.capacity_provider or "" for i in st.instances]
        cp_names = sorted(set(providers))
        cp_code = np.fromiter((cp_names.index(p) for p in providers), np.int64, n)
        codes = st.type_code.astype(np.int64) * len(cp_names) + cp_code
        k = len(st.type_names) * len(cp_names)
        live = st.launch_code >= 0
        live &= np.fromiter((i.status != "INACTIVE" for i in st.instances), bool, n)
        chips_all = np.where(live, np.bitwise_count(st.chips_all), 0).astype(np.int64)
        chips_free = np.where(live, np.bitwise_count(st.chips_free), 0).astype(np.int64)
        stranded = stranded_per_instance(st, placer, neuron_specs, chips_free)

        def per_key(values: np.ndarray) -> np.ndarray:
            return np.bincount(codes, weights=np.where(live, values, 0), minlength=k)

        per = {
            "instances": per_key(np.ones(n)),
            "chips_total": per_key(chips_all),
            "chips_held": per_key(chips_all - chips_free),
            "chips_stranded": per_key(stranded),
            "cpu_total": per_key(st.cpu_registered),
            "cpu_used": per_key(st.cpu_registered - st.cpu_free),
            "memory_total": per_key(st.mem_registered),
            "memory_used": per_key(st.mem_registered - st.mem_free),
            "gpus_total": per_key(st.gpu_registered),
            "gpus_used": per_key(st.gpu_registered - st.gpu_free),
            "running": per_key(st.running),
        }
        seen = np.bincount(codes, weights=live, minlength=k)
        for code in np.flatnonzero(seen).tolist():
            name = st.type_names[code // len(cp_names)]
            row = {"time": t, "instance_type": name, "capacity_provider": cp_names[code % len(cp_names)] or None}
            row.update({key: int(col[code]) for key, col in per.items()})
            rows.append(row)
        stranded_chips = float(stranded.sum())
    active = int(sum(1 for i in st.instances if i.status != "INACTIVE"))
    totals = {key: sum(r[key] for r in rows) for key in RESOURCE_COLUMNS}
    rows.append({"time": t, "instance_type": "*", "capacity_provider": None, "instances": active, **totals,
                 "running": counts[RUNNING], "pending": counts[PENDING], "provisioning": counts[PROVISIONING],
                 "submitted": submitted, "stopped": counts[STOPPED]})
    return rows, stranded_chips


def stranded_per_instance(state: ClusterState, placer: Placer, neuron_specs: Sequence[TaskSpec],
                          chips_free: np.ndarray) -> np.ndarray:
    """Free chips on instances that can take none of the scenario's Neuron tasks now."""
    has_free = (chips_free > 0) & state.schedulable
    if not has_free.any():
        return np.zeros(len(state), np.int64)
    usable = np.zeros(len(state), bool)
    for spec in neuron_specs:
        usable |= placer.feasible(spec, only=np.flatnonzero(has_free))
    return np.where(has_free & ~usable, chips_free, 0)
