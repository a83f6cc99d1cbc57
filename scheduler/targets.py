"""Service-level targets a planner writes on the command line: ``wait_p99<60s,shortfall==0``.

A target is a comma-separated list of conditions, all of which must hold. A condition is a metric, an
optional workload in brackets, a comparison and a value:

    wait_p99 < 60s            the cluster's p99 wait (every workload pooled)
    wait_p99[llama] <= 2m     one workload's p99 wait
    shortfall[llama] == 0     one service's shortfall task-hours
    cost < $900, chip_utilization >= 60%

Metric names are the results' own (``wait_p99_s``, ``service_shortfall_task_hours``, ``cost_usd``, ...) or
the short names of ``ALIASES`` (``wait_p99``, ``shortfall``, ``cost``, ``failed``). A value is read in the
metric's unit: durations for waits (``60s``, ``2m``; a bare number is seconds), a share for utilization
(``60%`` or ``0.6``), dollars for cost (``$900`` or ``900``), plain numbers otherwise. Each condition names
the flat column of a sweep table it reads (``wait_p99_s[llama]``, see ``readable.workload_column``).

Only parsing and checking live here, so that ``sweep --target`` and a planner's search read targets alike.
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from scheduler.errors import NeuronSimError, show_value
from scheduler.readable import METRICS, REQUEST_METRICS, WORKLOAD_METRICS, metric_unit, workload_column
from scheduler.units import parse_duration

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne, "<": operator.lt, ">": operator.gt}
# short name -> (cluster-wide column, per-workload metric or None when there is none per workload)
ALIASES: dict[str, tuple[str | None, str | None]] = {
    **{f"wait_{q}": (f"wait_{q}_s", f"wait_{q}_s") for q in ("p50", "p95", "p99", "max")},
    **{f"startup_{q}": (f"startup_{q}_s", f"startup_{q}_s") for q in ("p50", "p95", "p99", "max")},
    "shortfall": ("service_shortfall_task_hours", "shortfall_task_hours"),
    "failed": ("tasks_failed", "tasks_failed"),
    "waiting": ("tasks_waiting_at_end", "tasks_waiting_at_end"),
    "cost": ("cost_usd", None),
    "utilization": ("chip_utilization", None),
    # a service's requests: per workload only (latency_p99[chat] < 2s)
    **{f"{kind}_{q}": (None, f"{kind}_{q}_s") for kind in ("latency", "ttft", "queue_wait")
       for q in ("p50", "p95", "p99", "max")},
    "dropped": (None, "requests_dropped"),
    "cost_per_million_tokens": (None, "cost_per_million_tokens_usd"),
}
_CONDITION = re.compile(r"^\s*(?P<metric>[A-Za-z_][A-Za-z0-9_]*)\s*(?:\[\s*(?P<workload>[^\]]*?)\s*\])?\s*"
                        r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>\S.*?)\s*$")
MAX_TARGET_CHARS = 2000


class TargetError(NeuronSimError):
    """A target that cannot be read, or that names what the scenario does not have."""


@dataclass(frozen=True)
class Condition:
    """One condition of a target: ``column op value`` (the value in the column's unit: seconds, a share,
    dollars, a count)."""

    text: str            # as the user wrote it
    metric: str          # the cluster-wide or per-workload metric (``wait_p99_s``, ``shortfall_task_hours``)
    workload: str | None
    op: str
    value: float

    @property
    def column(self) -> str:
        """The result column the condition reads: ``wait_p99_s`` or ``wait_p99_s[llama]``."""
        return self.metric if self.workload is None else workload_column(self.metric, self.workload)

    def holds(self, value: float | None) -> bool:
        """Whether ``value`` meets the condition; a missing value (no task had a wait, NaN) never does."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return OPERATORS[self.op](float(value), self.value)


@dataclass(frozen=True)
class Target:
    """Conditions that must all hold."""

    text: str
    conditions: tuple[Condition, ...]

    @property
    def columns(self) -> list[str]:
        return list(dict.fromkeys(c.column for c in self.conditions))

    def holds(self, values: Mapping[str, float | None]) -> bool:
        """Whether every condition holds for ``values`` (column -> value)."""
        return all(c.holds(values.get(c.column)) for c in self.conditions)

    def missed(self, values: Mapping[str, float | None]) -> list[str]:
        """The conditions ``values`` does not meet, as written."""
        return [c.text for c in self.conditions if not c.holds(values.get(c.column))]

    def check_workloads(self, kinds: Mapping[str, str], *, where: str = "--target",
                        with_requests: Collection[str] | None = None) -> None:
        """Refuse a condition on a workload the scenario does not have, shortfall of one that is not a
        REPLICA service (``kinds``: workload name -> run_task, service, daemon), or a request figure of one
        that receives no requests (``with_requests``: the services with ``requests:``; None skips the check)."""
        for c in self.conditions:
            if c.workload is None:
                continue
            if c.workload not in kinds:
                known = ", ".join(sorted(kinds)) or "none"
                raise TargetError(f"{c.text!r}: the scenario has no workload {show_value(c.workload)} "
                                  f"(its workloads: {known})", path=where)
            if c.metric == "shortfall_task_hours" and kinds[c.workload] != "service":
                raise TargetError(f"{c.text!r}: {c.workload} is a {kinds[c.workload].replace('_', ' ')} workload, "
                                  "not a REPLICA service: it has no shortfall", path=where)
            if with_requests is not None and c.metric in REQUEST_METRICS and c.workload not in with_requests:
                raise TargetError(f"{c.text!r}: {c.workload} receives no requests (it has no requests: block), "
                                  "so it has no request figures", path=where)


def parse_target(text: str, *, where: str = "--target") -> Target:
    """Read ``wait_p99<60s,shortfall[llama]==0``; anything unreadable is one :class:`TargetError` line."""
    if not isinstance(text, str) or not text.strip():
        raise TargetError("a target is one or more conditions such as wait_p99<60s,shortfall==0", path=where)
    if len(text) > MAX_TARGET_CHARS:
        raise TargetError(f"a target of {len(text):,} characters; at most {MAX_TARGET_CHARS:,}", path=where)
    conditions = tuple(_condition(part, where) for part in _split(text, where))
    return Target(text.strip(), conditions)


def parse_targets(texts: Sequence[str], *, where: str = "--target") -> Target | None:
    """Several ``--target`` options as one target (all their conditions); None when there is none."""
    if not texts:
        return None
    parts = [parse_target(t, where=where) for t in texts]
    return Target(",".join(p.text for p in parts), tuple(c for p in parts for c in p.conditions))


def _split(text: str, where: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += ch == "["
        depth -= ch == "]"
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    if any(not p.strip() for p in parts):
        raise TargetError(f"{text.strip()!r} has an empty condition (two commas, or one at an end)", path=where)
    return parts


def _condition(part: str, where: str) -> Condition:
    shown = part.strip()
    match = _CONDITION.match(part)
    if match is None:
        raise TargetError(f"cannot read {shown!r}: a condition is METRIC[WORKLOAD] OP VALUE with OP one of "
                          f"{' '.join(OPERATORS)}, such as wait_p99<60s or shortfall[llama]==0", path=where)
    name, workload, op, raw = match["metric"], match["workload"], match["op"], match["value"]
    if workload is not None and not workload:
        raise TargetError(f"{shown!r}: empty workload name in brackets", path=where)
    metric = _metric(name, workload, shown, where)
    return Condition(shown, metric, workload, op, _value(raw, metric_unit(metric), shown, where))


def _metric(name: str, workload: str | None, shown: str, where: str) -> str:
    if name in ALIASES:
        cluster, per_workload = ALIASES[name]
        if workload is None and cluster is None:
            raise TargetError(f"{shown!r}: {name} is a figure of one service's requests: name the service in "
                              f"brackets ({name}[<service>])", path=where)
        if workload is None:
            assert cluster is not None
            return cluster
        if per_workload is None:
            raise TargetError(f"{shown!r}: {name} is a figure of the whole cluster, not of one workload", path=where)
        return per_workload
    if workload is not None:
        if name in WORKLOAD_METRICS:
            return name
        if name == "service_shortfall_task_hours":
            return "shortfall_task_hours"
        raise TargetError(f"{shown!r}: {name} is not a per-workload metric; those are "
                          f"{', '.join(sorted({*ALIASES} - {'cost', 'utilization'}))} and "
                          f"{', '.join(WORKLOAD_METRICS)}", path=where)
    if name in REQUEST_METRICS:
        raise TargetError(f"{shown!r}: {name} is a figure of one service's requests: name the service in "
                          f"brackets ({name}[<service>])", path=where)
    if name in METRICS and name not in ("shortfall_task_hours",):
        return name
    names = sorted({*ALIASES, *METRICS} - {"shortfall_task_hours"})
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise TargetError(f"{shown!r}: unknown metric {name!r}; {hint}known: {', '.join(names)}", path=where)


def _value(raw: str, unit: str, shown: str, where: str) -> float:
    text = raw.strip()
    try:
        if unit == "s":
            value = float(text) if _is_number(text) else parse_duration(text)
        elif unit == "%":
            value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
        elif unit == "USD":
            value = float(text.removeprefix("$"))
        else:
            value = float(text)
    except (ValueError, TypeError):
        kind = {"s": "a duration such as 60s or 2m", "%": "a share such as 60% or 0.6",
                "USD": "an amount such as $900"}.get(unit, "a number")
        raise TargetError(f"{shown!r}: {show_value(text)} is not {kind}", path=where) from None
    if not math.isfinite(value):
        raise TargetError(f"{shown!r}: the value must be a finite number", path=where)
    return float(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
