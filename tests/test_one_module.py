"""A new fault kind, or a new summary figure, is one module and nothing else.

Each test writes a small module into tmp_path and puts that folder on the search path of the package the
kinds (``scheduler.sim.faults``) or the figures (``scheduler.results.figures``) are found in, as a module
of the package itself would be, in a fresh interpreter so that no other test sees it. Nothing else is
edited: the scenario schema validates the new kind from YAML (with the file, field path and what is wrong
on bad input, exit code 2), the compile step turns it into its plan class in seconds, the engine strikes
it, summary.json counts it, the terminal labels it and the docs tables list it; a new figure is computed,
written, read back, labelled and listed the same way. The committed docs hold exactly what the
declarations render.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd

from scheduler.scenario.docs_tables import rendered

ROOT = Path(__file__).resolve().parents[1]
TASKDEF = ROOT / "scenarios" / "taskdefs" / "inf2-chip-0.json"

REBOOTS = '''
"""Instance reboots (a kind written by a test): the instance reboots; its agent is away meanwhile."""

from dataclasses import dataclass, field

from scheduler.sim.faults import FaultKind, FaultTarget, param


@dataclass(frozen=True)
class Reboot(FaultTarget):
    """The instance reboots: no new placements there for `downtime`."""

    downtime: float = field(metadata=param("step", "How long the reboot takes.", "3m"))


class Reboots(FaultKind):
    key = "reboots"
    plan = Reboot
    label = "instance reboots"
    order = 60

    def type_problem(self, itype):
        return None if itype.chips else f"{itype.name} is not a Neuron instance"

    def strikable(self, state, row):
        return state.instances[row].agent_connected

    def hit(self, faults, entry, row):
        sim = faults.sim
        sim.state.set_agent_connected(row, False)
        sim.recorder.event(sim.now, "fault", f"{sim.state.instances[row].ec2_instance_id} rebooted for "
                           f"{entry.downtime:g} s")
        sim.at(sim.now + entry.downtime, back, sim, row)


def back(sim, row):
    if sim.state.instances[row].status != "INACTIVE":
        sim.state.set_agent_connected(row, True)
        sim.agent_reconnected(row)


KIND = Reboots()
'''

BUSIEST = '''
"""The most tasks running at one sample (a figure written by a test)."""

from scheduler.results.figure import Figure


def _busiest(run):
    cluster = run.cluster
    return int(cluster["running"].max()) if len(cluster) else 0


FIGURE = Figure("busiest_sample_tasks", int, "count", "most tasks running at one sample",
                "The most tasks RUNNING at one sample of the timeline.", _busiest)
'''

# run in a fresh interpreter: the folder joins the package's search path before anything scans it
PRELUDE = """
import importlib, sys
package = importlib.import_module(sys.argv[1])
package.__path__.append(sys.argv[2])
"""


def _python(tmp_path: Path, package: str, module: str, text: str, code: str) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "extra"
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(textwrap.dedent(text))
    return subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(code), package, str(folder)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)


def _scenario(tmp_path: Path, faults: str, name: str = "reboots") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"""\
name: {name}
seed: 3
duration: 4h
task_definitions:
  chip: {TASKDEF.as_posix()}
cluster:
  name: c
  fleets:
    - {{instance_type: inf2.xlarge, count: 3, launch_type: EC2}}
    - {{instance_type: m6i.xlarge, count: 1, launch_type: EC2}}
workloads:
  - name: batch
    kind: run_task
    task_definition: chip
    arrivals: {{type: poisson, rate: 6/h}}
    duration: {{type: fixed, value: 20m}}
faults:
{textwrap.indent(faults, "  ")}
""")
    return path


def test_a_new_fault_kind_is_one_module(tmp_path: Path) -> None:
    good = _scenario(tmp_path, "reboots: [{instance_type: inf2.xlarge, at: [1h, 2h]}]\n"
                               "instance_failures: [{at: [3h]}]")
    bad_unit = _scenario(tmp_path, "reboots: [{at: [1h], downtime: 15x}]", name="bad-unit")
    bad_type = _scenario(tmp_path, "reboots: [{instance_type: m6i.xlarge, at: [1h]}]", name="bad-type")
    neither = _scenario(tmp_path, "reboots: [{downtime: 5m}]", name="neither")
    out = tmp_path / "out"
    done = _python(tmp_path, "scheduler.sim.faults", "reboots", REBOOTS, f"""
        import json
        from scheduler.cli import main
        from scheduler.scenario import load_scenario
        from scheduler.scenario.docs_tables import fault_scenario_table, fault_summary_table
        plan = load_scenario({str(good)!r}).plan()
        print(json.dumps({{"plan": [[type(e).__name__, e.at, getattr(e, "downtime", None)] for e in plan.faults],
                          "scenario_doc": fault_scenario_table(), "summary_doc": fault_summary_table()}}))
        codes = [main(["run", path, "--out", {str(out)!r} + str(i), "--no-report"])
                 for i, path in enumerate([{str(bad_unit)!r}, {str(bad_type)!r}, {str(neither)!r}])]
        codes.append(main(["run", {str(good)!r}, "--out", {str(out)!r}, "--no-report"]))
        print(json.dumps(codes))
        """)
    assert done.returncode == 0, done.stderr
    first, *table, codes = done.stdout.splitlines()
    facts = json.loads(first)
    # validated from YAML and compiled into its plan class, durations in seconds, defaults resolved; the
    # entries in the kinds' order (the fault generator's draws)
    assert facts["plan"] == [["InstanceFailure", [10800.0], None], ["Reboot", [3600.0, 7200.0], 180.0]]
    # bad input: one line each, naming the file, the field path and what is wrong; exit code 2
    assert json.loads(codes) == [2, 2, 2, 0]
    errors = done.stderr.splitlines()
    assert len(errors) == 3 and "Traceback" not in done.stderr
    assert errors[0].startswith(f"neuron-sim: {tmp_path / 'bad-unit.yaml'}: faults.reboots[0].downtime: unknown unit")
    assert errors[1].endswith("faults.reboots[0].instance_type: m6i.xlarge is not a Neuron instance")
    assert "faults.reboots[0]" in errors[2] and "give mtbf" in errors[2]
    # struck (at its two times, on an inf2 instance), counted in summary.json and labelled in the terminal
    summary = json.loads((out / "summary.json").read_text())
    assert summary["faults"]["reboots"] == 2 and summary["faults"]["instance_failures"] == 1
    keys = list(summary["faults"])
    assert keys[:5] == ["instance_failures", "spot_interruptions", "chip_failures", "agent_disconnects",
                        "instance_retirements"]  # as summary.json has always had them
    assert keys[keys.index("tasks_stopped") - 1] == "reboots"  # the last kind's counter, before the costs
    events = json.loads((out / "events.json").read_text())
    rebooted = [e for e in (events if isinstance(events, list) else events["events"]) if "rebooted" in str(e)]
    assert len(rebooted) == 2 and all("for 180 s" in str(e) for e in rebooted)
    assert any("faults: instance reboots" in line and line.rstrip("│ ").endswith("2") for line in table)
    # listed in the docs tables
    assert "| `reboots` | list of `{instance_type, mtbf, at, downtime}` | `[]` | The instance reboots" in \
        facts["scenario_doc"]
    assert "| `downtime` (`reboots`) | duration >= 1ms | `3m` | How long the reboot takes. |" in facts["scenario_doc"]
    assert "| `reboots` | instance reboots that struck" in facts["summary_doc"]


def test_a_new_summary_figure_is_one_module(tmp_path: Path) -> None:
    scenario = _scenario(tmp_path, "chip_failures: [{at: [1h]}]", name="figure")
    out = tmp_path / "out"
    done = _python(tmp_path, "scheduler.results.figures", "busiest_sample_tasks", BUSIEST, f"""
        import json
        from scheduler.cli import main
        from scheduler.readable import metric_name, metric_unit
        from scheduler.results import ResultsError, RunSummary
        from scheduler.scenario.docs_tables import figures_table
        assert main(["run", {str(scenario)!r}, "--out", {str(out)!r}, "--no-report"]) == 0
        summary = RunSummary.read({str(out / "summary.json")!r})
        document = summary.to_json()
        document["tail_chips"] = 3
        try:
            RunSummary.from_json(document, file="x/summary.json")
            refused = ""
        except ResultsError as exc:
            refused = str(exc)
        print(json.dumps({{"value": summary.figures["busiest_sample_tasks"],
                          "metric": summary.metrics()["busiest_sample_tasks"],
                          "name": metric_name("busiest_sample_tasks"), "unit": metric_unit("busiest_sample_tasks"),
                          "doc": figures_table(), "refused": refused}}))
        """)
    assert done.returncode == 0, done.stderr
    *table, last = done.stdout.splitlines()
    facts = json.loads(last)
    timeline = pd.read_parquet(out / "timeline.parquet")
    peak = int(timeline.loc[timeline["instance_type"] == "*", "running"].max())
    assert peak > 0 and facts["value"] == facts["metric"] == peak  # computed from the run, read back
    keys = list(json.loads((out / "summary.json").read_text()))
    assert "busiest_sample_tasks" in keys[keys.index("instances_at_end") + 1:keys.index("extensions")]
    assert facts["refused"].startswith("x/summary.json: tail_chips: unknown field")  # only declared keys
    assert (facts["name"], facts["unit"]) == ("most tasks running at one sample", "count")
    assert any("most tasks running at one sample" in line and f"{peak} " in line for line in table)
    assert "| `busiest_sample_tasks` | count | The most tasks RUNNING at one sample of the timeline. |" in facts["doc"]


def test_the_committed_docs_hold_the_tables_the_declarations_render() -> None:
    for file, text in rendered(ROOT).items():
        assert (ROOT / file).read_text(encoding="utf-8") == text, (
            f"{file} is out of date: run `python -m scheduler.scenario.docs_tables` in the repository")
