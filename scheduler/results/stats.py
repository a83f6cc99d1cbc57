"""Statistics over the runs of a sweep or plan: means with confidence intervals, per point and metric.

A sweep's and a plan's runs table (one row per run, see :mod:`scheduler.results.tables`) is summarized
per grid point and metric: runs, failed runs, values, mean, standard deviation and a 95% confidence
interval of the mean (Student's t, or the normal approximation without scipy). Sweeps, plans and reports
all compute through these functions.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from scheduler.results.tables import NOT_SUMMARIZED, OK

CONFIDENCE = 0.95


def uniform_column(column: pd.Series) -> pd.Series:
    """One type per parameter column: numbers stay numbers, anything mixed becomes text."""
    values = list(column)
    if all(isinstance(v, bool) for v in values):
        return column.astype(bool)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return pd.to_numeric(column)
    return column.map(lambda v: v if isinstance(v, str) else json.dumps(v, default=str)).astype(str)


def metric_columns(runs: pd.DataFrame, parameters: Sequence[str]) -> list[str]:
    """The numeric result columns of a runs table, in table order."""
    skip = set(NOT_SUMMARIZED) | set(parameters)
    return [c for c in runs.columns if c not in skip and pd.api.types.is_numeric_dtype(runs[c])
            and not pd.api.types.is_bool_dtype(runs[c])]


def confidence_interval(values: np.ndarray, confidence: float = CONFIDENCE
                        ) -> tuple[float, float, float, float]:
    """(mean, std, low, high) of the mean of ``values`` (NaNs dropped); Student's t, or the normal
    approximation when scipy is not installed. Fewer than two values give NaN bounds."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    n = len(values)
    if n == 0:
        return math.nan, math.nan, math.nan, math.nan
    mean = float(values.mean())
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = float(values.std(ddof=1))
    half = _quantile(confidence, n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def _quantile(confidence: float, dof: int) -> float:
    p = 0.5 + confidence / 2
    try:
        from scipy import stats
    except ImportError:
        from statistics import NormalDist

        return NormalDist().inv_cdf(p)
    return float(stats.t.ppf(p, dof))


def summarize(runs: pd.DataFrame, parameters: Sequence[str]) -> pd.DataFrame:
    """Per grid point and metric: runs, failed runs, n (runs with a value), mean, std, 95% CI."""
    columns = ["point", *parameters, "metric", "runs", "failed", "n", "mean", "std", "ci_low", "ci_high"]
    metrics = metric_columns(runs, parameters)
    records = []
    for point, group in runs.groupby("point", sort=True):
        ok = group[group["status"] == OK]
        head = {"point": int(point), **{p: group[p].iloc[0] for p in parameters}}
        for metric in metrics:
            values = ok[metric].to_numpy(dtype=float)
            mean, std, low, high = confidence_interval(values)
            records.append({**head, "metric": metric, "runs": len(group), "failed": len(group) - len(ok),
                            "n": int(np.isfinite(values).sum()), "mean": mean, "std": std,
                            "ci_low": low, "ci_high": high})
    frame = pd.DataFrame.from_records(records, columns=columns)
    for p in parameters:
        frame[p] = uniform_column(frame[p]) if len(frame) else frame[p]
    return frame


def wide_summary(summary: pd.DataFrame, parameters: Sequence[str],
                 metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per grid point with ``<metric>_mean``, ``<metric>_ci_low``, ``<metric>_ci_high`` columns."""
    table = summary if metrics is None else summary[summary["metric"].isin(list(metrics))]
    index = ["point", *parameters]
    head = table.drop_duplicates("point")[[*index, "runs", "failed"]].set_index("point")
    out = head
    for stat in ("mean", "ci_low", "ci_high"):
        pivot = table.pivot(index="point", columns="metric", values=stat)
        pivot.columns = [f"{m}_{stat}" for m in pivot.columns]
        out = out.join(pivot)
    order = [c for m in (metrics or dict.fromkeys(table["metric"])) for c in
             (f"{m}_mean", f"{m}_ci_low", f"{m}_ci_high") if c in out.columns]
    return out[[*parameters, "runs", "failed", *order]].reset_index()
