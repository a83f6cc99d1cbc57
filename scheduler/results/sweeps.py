"""A finished sweep as a value: its parameters, its runs table and per-point summary, read back from a folder.

:class:`Sweep` is what ``neuron-sim sweep`` produces and what the report and notebooks read
(:func:`read_sweep` reads a sweep folder); :func:`point_labels` names grid points in a planner's words.
Running sweeps is :mod:`scheduler.sweep`'s job; this module only holds and reads their results.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from scheduler.errors import NeuronSimError
from scheduler.results.stats import CONFIDENCE
from scheduler.results.tables import FLEET, ID_COLUMNS, OK, STATUS_COLUMNS

FLEET_PATHS = ("cluster.fleets", "cluster.capacity_providers")  # swept paths the fleet label already says


class SweepError(NeuronSimError):
    """A sweep that cannot start: a malformed --set, no usable grid point, an unreachable cluster."""


@dataclass(frozen=True)
class Parameter:
    """A swept scenario field: its dotted path and the values it takes, in order.

    String values are read as YAML when applied ("4" is the number 4, "20/h" stays text), exactly as
    ``load_scenario`` reads overrides.
    """

    path: str
    values: tuple[Any, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path.strip():
            raise SweepError("a swept parameter needs a dotted field path such as cluster.fleets.0.count")
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise SweepError(f"parameter {self.path} has no values")
        if self.path in (*ID_COLUMNS, *STATUS_COLUMNS):
            raise SweepError(f"{self.path!r} is not a scenario field")


@dataclass
class Sweep:
    """A finished sweep: one row per run, and the per-point summary (long: one row per point and metric)."""

    scenario: str
    source: str
    parameters: tuple[Parameter, ...]
    replications: int
    executor: str
    runs: pd.DataFrame
    summary: pd.DataFrame
    base_seeds: tuple[int, ...] = ()
    until: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    notices: tuple[str, ...] = ()  # the scenario's readings worth one line to the user (not saved)

    @property
    def parameter_paths(self) -> list[str]:
        return [p.path for p in self.parameters]

    @property
    def failed(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] != OK]

    def describe(self) -> dict[str, Any]:
        """What the sweep was (for ``sweep.json``)."""
        return {
            "scenario": self.scenario, "source": self.source,
            "parameters": [{"path": p.path, "values": list(p.values)} for p in self.parameters],
            "replications": self.replications, "executor": self.executor,
            "base_seeds": list(self.base_seeds), "until": self.until,
            "runs": len(self.runs), "failed": int((self.runs["status"] != OK).sum()),
            "confidence": CONFIDENCE, **self.meta,
        }


def point_labels(sweep: Sweep) -> dict[int, str]:
    """Each grid point named by its fleet (``inf2.24xlarge x12, trn1.32xlarge x4``) and the values of the
    swept parameters the fleet does not already say (``device_mode=ecs-blind``); a sweep read from a folder
    without the fleet column is named by its parameters alone."""
    runs, paths = sweep.runs, sweep.parameter_paths
    labels: dict[int, str] = {}
    for point, group in runs.groupby("point", sort=True):
        fleets = group[FLEET].dropna() if FLEET in group.columns else pd.Series([], dtype=object)
        fleet = str(fleets.iloc[0]) if len(fleets) else None
        labels[int(point)] = point_label(fleet, [(p, group[p].iloc[0]) for p in paths])
    return labels


def point_label(fleet: str | None, values: Sequence[tuple[str, Any]]) -> str:
    """A point named by its fleet and the values of its parameters (path, value) that the fleet does not
    already say: ``inf2.24xlarge x12, trn1.32xlarge x4`` or ``asg: inf2.xlarge 0-60, target=60``."""
    shown = [(p, v) for p, v in values if fleet is None or not p.startswith(FLEET_PATHS)]
    parts = ([fleet] if fleet else []) + [f"{p.split('.')[-1]}={v}" for p, v in shown]
    return ", ".join(parts) or "as is"


def point_means(sweep: Sweep, columns: Sequence[str]) -> dict[int, dict[str, float]]:
    """Per grid point, the mean over its successful replications of each of ``columns`` (NaN when absent)."""
    table = sweep.summary
    out: dict[int, dict[str, float]] = {}
    for point in sorted(int(p) for p in sweep.runs["point"].unique()):
        mine = table[table["point"] == point].set_index("metric")["mean"]
        out[point] = {c: float(mine[c]) if c in mine.index else math.nan for c in columns}
    return out


def read_sweep(folder: str | Path) -> Sweep:
    """A sweep folder written by :func:`write_sweep`, read back."""
    folder = Path(folder)
    meta_file = folder / "sweep.json"
    if not meta_file.is_file():
        raise SweepError("not a sweep folder (no sweep.json)", file=str(folder))
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    parameters = tuple(Parameter(p["path"], tuple(p["values"])) for p in meta.get("parameters", []))
    known = {"scenario", "source", "parameters", "replications", "executor", "base_seeds", "until", "runs",
             "failed", "confidence"}  # the rest (a target and its cheapest point) stays in meta
    return Sweep(scenario=meta.get("scenario", folder.name), source=meta.get("source", ""),
                 parameters=parameters, replications=int(meta.get("replications", 1)),
                 executor=meta.get("executor", ""), runs=pd.read_parquet(folder / "sweep.parquet"),
                 summary=pd.read_parquet(folder / "sweep_summary.parquet"),
                 base_seeds=tuple(meta.get("base_seeds", ())), until=meta.get("until"),
                 meta={k: v for k, v in meta.items() if k not in known})
