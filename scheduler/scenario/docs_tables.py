"""The docs tables derived from declarations in code: the ``faults:`` block of a scenario
(docs/scenarios.md) and summary.json's ``faults`` and declared figures (docs/outputs.md).

Each table sits in its docs file between ``<!-- generated: NAME -->`` and ``<!-- end generated -->``;
``python -m scheduler.scenario.docs_tables`` rewrites them from the fault kinds
(:mod:`scheduler.sim.faults`) and the figures (:mod:`scheduler.results.figures`), and a test checks that
the committed docs hold exactly what this module renders.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from collections.abc import Callable
from pathlib import Path

from scheduler.results.figure import figures
from scheduler.results.summary import Faults
from scheduler.sim.faults import REQUIRED, UNITS, FaultTarget, counter_names, kinds, params
from scheduler.sim.faults.mechanism import TASK_COUNTERS

END = "<!-- end generated -->"


def _default(value: object) -> str:
    if value is REQUIRED:
        return "—"
    if value is None:
        return "none"
    return "`[]`" if value == [] else f"`{value}`"


def fault_scenario_table() -> str:
    """docs/scenarios.md: each kind's key, then the fields the targeted kinds share, then each kind's own."""
    rows = ["| field | value | default | meaning |", "|---|---|---|---|"]
    ordered = sorted(kinds(), key=lambda k: (not k.many, k.order, k.key))
    for kind in ordered:
        names = ", ".join(name for name, _ in params(kind.plan))
        value = f"list of `{{{names}}}`" if kind.many else f"`{{{names}}}`"
        rows.append(f"| `{kind.key}` | {value} | {'`[]`' if kind.many else 'none'} | {kind.doc} |")
    shared = {name for name, _ in params(FaultTarget)}
    for name, p in params(FaultTarget):
        rows.append(f"| `{name}` | {UNITS[p.unit]} | {_default(p.default)} | {p.doc} |")
    for kind in ordered:
        for name, p in params(kind.plan):
            if name not in shared:
                rows.append(f"| `{name}` (`{kind.key}`) | {UNITS[p.unit]} | {_default(p.default)} | {p.doc} |")
    return "\n".join(rows)


def fault_summary_table() -> str:
    """docs/outputs.md: summary.json's ``faults``, each kind's counter then what they cost."""
    labels = {k.key: k.label for k in kinds()}
    rows = ["| field | meaning |", "|---|---|"]
    rows += [f"| `{key}` | {labels[key]} that struck (`faults.{key}` in the scenario) |" for key in counter_names()]
    docs = {f.name: f.metadata["doc"] for f in dataclasses.fields(Faults) if "doc" in f.metadata}
    rows += [f"| `{key}` | {docs[key]} |" for key in (*TASK_COUNTERS, "run_task_hours_lost")]
    return "\n".join(rows)


def figures_table() -> str:
    """docs/outputs.md: the figures declared one module each, or a sentence saying there are none."""
    declared = figures()
    if not declared:
        return "No figure is declared there in this version."
    rows = ["| field | unit | meaning |", "|---|---|---|"]
    rows += [f"| `{f.name}` | {f.unit or '-'} | {f.doc} |" for f in declared]
    return "\n".join(rows)


# (docs file, block name) -> its renderer
TABLES: dict[tuple[str, str], Callable[[], str]] = {
    ("docs/scenarios.md", "faults"): fault_scenario_table,
    ("docs/outputs.md", "faults"): fault_summary_table,
    ("docs/outputs.md", "figures"): figures_table,
}


def _block(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- generated: {re.escape(name)} [^\n]*-->\n)(.*?)(\n{re.escape(END)})", re.S)


def rendered(root: Path) -> dict[str, str]:
    """Each docs file under ``root`` with its generated blocks rendered anew."""
    out: dict[str, str] = {}
    for (file, name), render in TABLES.items():
        text = out.get(file) or (root / file).read_text(encoding="utf-8")
        pattern = _block(name)
        if not pattern.search(text):
            raise ValueError(f"{file}: no generated block named {name}")
        out[file] = pattern.sub(lambda m, render=render: m.group(1) + render() + m.group(3), text)
    return out


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated blocks of the docs under the current folder (``--check``: only say which differ)."""
    args = sys.argv[1:] if argv is None else argv
    root = Path.cwd()
    stale = []
    for file, text in rendered(root).items():
        if (root / file).read_text(encoding="utf-8") != text:
            stale.append(file)
            if "--check" not in args:
                (root / file).write_text(text, encoding="utf-8")
    for file in stale:
        print(f"{file}: {'out of date' if '--check' in args else 'updated'}")
    return 1 if stale and "--check" in args else 0


if __name__ == "__main__":
    raise SystemExit(main())
