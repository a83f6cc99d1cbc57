"""The command line's conventions, as a new user meets them: --help with defaults, --version, --json,
--set on run, readable tables that fit 120 columns, one-line install hints for missing extras, and
errors that recognise a file of another kind."""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks import __main__ as bench_main
from scheduler import cli
from scheduler.cli import main
from scheduler.ecs import near_miss
from scheduler.ecs.taskdef import validate_task_definition
from scheduler.readable import duration_text, fmt, interval_text, number_text
from scheduler.results import RunSummary
from scheduler.scenario import load_scenario
from scheduler.sweep import Parameter, Sweep, summarize

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "scenarios"
TASKDEF = SCENARIOS / "taskdefs" / "inf2-chip-0.json"
SCIENTIFIC = re.compile(r"\d[eE][+-]?\d")


# --- help, version -----------------------------------------------------------------------------------

def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _options_without_default(parser: argparse.ArgumentParser) -> list[str]:
    return [a.option_strings[0] for a in parser._actions
            if a.option_strings and not a.required  # a required option has no default to state
            and not isinstance(a, argparse._HelpAction | argparse._VersionAction)
            and "default" not in (a.help or "")]


def test_every_option_of_every_command_states_its_default() -> None:
    commands = _subparsers(cli.build_parser())
    commands["bench"] = bench_main.build_parser()
    missing = {name: _options_without_default(p) for name, p in commands.items()}
    assert {name: opts for name, opts in missing.items() if opts} == {}
    assert set(commands) >= {"catalog", "validate", "run", "sweep", "report", "bench", "schema"}


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert re.fullmatch(r"neuron-sim \d+\.\d+\.\d+\S*\n", capsys.readouterr().out)


# --- run: --json, --set, the table ------------------------------------------------------------------

def test_run_json_prints_exactly_the_summary_and_set_changes_a_field(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    scenario = str(SCENARIOS / "diurnal-inf2.yaml")
    assert main(["run", scenario, "--until", "2h", "--out", str(tmp_path / "a"), "--json", "--no-report"]) == 0
    first = json.loads(capsys.readouterr().out)  # the whole of stdout is one JSON document
    assert first == json.loads((tmp_path / "a" / "summary.json").read_text())
    assert main(["run", scenario, "--until", "2h", "--out", str(tmp_path / "b"), "--json", "--set",
                 "cluster.fleets.0.count=2"]) == 0
    captured = capsys.readouterr()
    second = json.loads(captured.out)
    assert "report:" in captured.err and (tmp_path / "b" / "report.html").is_file()
    instances = json.loads((tmp_path / "b" / "describe_container_instances.json").read_text())
    assert len(instances["containerInstances"]) == 2
    assert second["instance_hours"] == pytest.approx(first["instance_hours"] / 4)  # 8 instances -> 2


def test_run_set_takes_one_value_and_names_the_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", str(SCENARIOS / "diurnal-inf2.yaml"), "--set", "cluster.fleets.0.count=2,4",
                 "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and "--set" in err and "neuron-sim sweep" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()
    assert main(["run", str(SCENARIOS / "diurnal-inf2.yaml"), "--set", "cluster.fleets.0.cuont=2",
                 "--out", str(tmp_path / "y")]) == 2
    assert "cuont" in capsys.readouterr().err


LARGE_SUMMARY = RunSummary.from_json({**RunSummary("big", 1, "device-aware", 0.0).to_json(), **{
    "sim_seconds": 14 * 86400.0,
    "tasks_submitted": 2119, "tasks_placed": 2100, "tasks_completed": 2050, "tasks_running_at_end": 50,
    "tasks_waiting_at_end": 19, "wait_p50_s": 12.5, "wait_p95_s": 4853.2, "wait_p99_s": 1.508e6,
    "chip_utilization": 0.6071, "cpu_utilization": 0.3, "memory_utilization": 0.25,
    "stranded_chip_hours": 12345.678, "instance_hours": 6477.3, "cost_usd": 96390.2,
    "wall_seconds": 0.000123, "tasks_failed": {"RESOURCE:CPU": 3}, "tasks_stopped": 12_300_000,
}})


def test_the_run_table_uses_the_reports_labels_and_units_and_fits_120_columns(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli._print_summary(LARGE_SUMMARY, tmp_path)
    out = capsys.readouterr().out
    assert not SCIENTIFIC.search(out), out
    assert max(len(line) for line in out.splitlines()) <= cli.TABLE_WIDTH
    for text in ("14 d simulated", "tasks submitted", "2,119", "17.5 d", "60.7%", "$96,390.20",
                 "cost over 14 d", "6,477", "12,346", "12,300,000", "failed: RESOURCE:CPU"):
        assert text in out, text
    assert "cost_usd" not in out and "wait_p99_s" not in out


def test_an_interrupted_run_says_how_far_it_got_in_human_time() -> None:
    assert cli._interrupted_line(RunSummary("s", 1, "device-aware", 963600.0), Path("out")).startswith(
        "neuron-sim: interrupted after 11.2 d of simulated time")


# --- sweep: the table, --json -----------------------------------------------------------------------

def _synthetic_sweep() -> Sweep:
    """Three grid points x three replications of a long parameter path; cost the same everywhere."""
    path = "cluster.capacity_providers.0.auto_scaling.max_size"
    rows = []
    for point, size in enumerate((4, 40, 400)):
        for rep in range(3):
            rows.append({"run": point * 3 + rep, "point": point, "replication": rep, "run_seed": rep,
                         path: size, "status": "ok", "error": None, "sim_seconds": 7 * 86400.0,
                         "wait_p99_s": 1.5e6 / (point + 1) + 600 * rep,
                         "chip_utilization": 0.6 + 0.1 * point + 0.01 * rep,
                         "cost_usd": 96390.25, "tasks_failed": 1000 * point + rep})
    runs = pd.DataFrame(rows)
    return Sweep(scenario="synthetic", source="synthetic.yaml", parameters=(Parameter(path, (4, 40, 400)),),
                 replications=3, executor="local", runs=runs, summary=summarize(runs, [path]))


def test_the_sweep_table_reads_like_the_report_and_fits_120_columns(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    cli._print_sweep(_synthetic_sweep(), tmp_path)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert not SCIENTIFIC.search(out), out
    assert max(len(line) for line in lines) <= cli.TABLE_WIDTH
    assert "p99 wait" in out and "(s)" not in out and "wait_p99_s" not in out
    assert "17.4 ± 0.017 d" in out and "61.0% ± 2.5%" in out  # t(2) = 4.303: 4.303 * 0.01 / sqrt(3)
    data = [line for line in lines if re.match(r"│ max_size=\d", line)]  # no fleet column: named by the value
    assert len(data) == 3  # one line per grid point: nothing wraps
    assert "$96,390.25" not in "".join(data)  # the same at every point: said once, below the table
    assert "the same at every grid point: cost over 7 d: $96,390.25" in out


def test_sweep_json_is_the_only_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["sweep", str(SCENARIOS / "static-paths-blind.yaml"), "--set",
                 "device_mode=device-aware,ecs-blind", "--workers", "1", "--out", str(tmp_path / "s"),
                 "--json", "--no-report"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["runs"] == 2 and doc["folder"] == str(tmp_path / "s")
    failed = {r["device_mode"]: r["mean"] for r in doc["summary"] if r["metric"] == "tasks_failed"}
    assert failed == {"device-aware": 0, "ecs-blind": 3}  # README's example: the two modes differ


# --- the shared formatter ---------------------------------------------------------------------------

@given(st.floats(min_value=1e-6, max_value=1e15) | st.floats(min_value=-1e15, max_value=-1e-6))
def test_number_text_never_uses_an_exponent_and_keeps_four_significant_digits(value: float) -> None:
    text = number_text(value)
    assert not SCIENTIFIC.search(text) and "e" not in text.lower()
    assert float(text.replace(",", "")) == pytest.approx(value, rel=5e-4)


@given(st.floats(min_value=0, max_value=1e12))
def test_duration_text_is_a_number_and_a_unit_without_exponent(seconds: float) -> None:
    number, unit = duration_text(seconds).split(" ")
    per = {"s": 1, "min": 60, "h": 3600, "d": 86400}[unit]
    assert not SCIENTIFIC.search(number)
    assert float(number.replace(",", "")) * per == pytest.approx(seconds, rel=5e-3, abs=1e-6)


def test_intervals_only_where_values_vary() -> None:
    assert interval_text(764.27, 764.27, 764.27, "USD") == "$764.27"
    assert interval_text(764.27, math.nan, math.nan, "USD") == "$764.27"
    assert interval_text(764.27, 760.0, 768.54, "USD") == "$764.27 ± $4.27"
    assert interval_text(4853.0, 4000.0, 5706.0, "s") == "80.9 ± 14 min"
    assert fmt(0.607, "%") == "60.7%" and fmt(4853.0, "s") == "80.9 min" and fmt(6477, "") == "6,477"


# --- optional extras --------------------------------------------------------------------------------

def _without(modules: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing ``modules`` fails, as after a plain install."""
    hide = "; ".join(f"sys.modules[{m!r}] = None" for m in modules)
    return subprocess.run([sys.executable, "-c", f"import sys; {hide}; {code}"], capture_output=True, text=True,
                          check=False, cwd=ROOT)


def test_bench_help_works_without_the_bench_extra_and_a_run_prints_the_install_line(tmp_path: Path) -> None:
    hidden = ("scipy", "moto", "distributed", "dask")
    helped = _without(hidden, "from scheduler.cli import main; sys.exit(main(['bench', '--help']))")
    assert helped.returncode == 0, helped.stderr
    assert "results/bench/" in helped.stdout and "default" in helped.stdout
    ran = _without(hidden, "from scheduler.cli import main; sys.exit(main(['bench', '--quick']))")
    assert ran.returncode == 2 and "Traceback" not in ran.stderr
    assert ran.stderr.strip().splitlines() == ['neuron-sim bench: needs moto and scipy: pip install -e ".[bench]"']
    # one part needs only its own extra: the simulation part runs without scipy and moto
    alone = _without(hidden, "from scheduler.cli import main; sys.exit(main(['bench', '--quick', '--only', "
                             f"'simulation', '--out', {str(tmp_path / 'b')!r}]))")
    assert alone.returncode == 0 and "Traceback" not in alone.stderr, alone.stderr
    assert json.loads((tmp_path / "b" / "results.json").read_text())["simulation"]


def test_a_dask_sweep_without_dask_prints_the_install_line(tmp_path: Path) -> None:
    argv = ["sweep", str(SCENARIOS / "static-paths-blind.yaml"), "--executor", "dask", "--out", str(tmp_path / "d")]
    proc = _without(("distributed", "dask"), f"from scheduler.cli import main; sys.exit(main({argv!r}))")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and 'pip install -e ".[dask]"' in proc.stderr


def test_a_quick_bench_never_replaces_the_committed_results(capsys: pytest.CaptureFixture[str]) -> None:
    committed = ROOT / "benchmarks" / "results"
    before = {p.name: p.stat().st_mtime_ns for p in committed.iterdir()}
    assert bench_main.main(["--quick", "--out", str(committed)]) == 2
    assert "committed full run" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in committed.iterdir()} == before
    assert bench_main.build_parser().parse_args([]).out == Path("results") / "bench"


# --- near misses ------------------------------------------------------------------------------------

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n    - name: a\n      image: nginx\n"
CFN_YAML = ("AWSTemplateFormatVersion: '2010-09-09'\nResources:\n  TD:\n    Type: AWS::ECS::TaskDefinition\n"
            "    Properties:\n      Family: !Ref Name\n      ContainerDefinitions: []\n")
CFN_TEMPLATE = {"Resources": {"TD": {"Type": "AWS::ECS::TaskDefinition", "Properties": {
    "Family": "x", "ContainerDefinitions": [{"Name": "a", "Image": "nginx", "Memory": 512}]}}}}
CFN_PROPERTIES = {"Family": "x", "ContainerDefinitions": [{"Name": "a", "Image": "nginx", "Memory": 512}]}
TF_CONTAINERS = [{"name": "a", "image": "nginx", "memory": 512}]
TF_HCL = 'resource "aws_ecs_task_definition" "x" {\n  family = "x"\n}\n'

WRONG_FOR_VALIDATE = {
    "pod.yaml": (POD, "Kubernetes Pod manifest"),
    "template.yaml": (CFN_YAML, "CloudFormation template"),
    "template.json": (json.dumps(CFN_TEMPLATE), "CloudFormation template"),
    "properties.json": (json.dumps(CFN_PROPERTIES), "PascalCase"),
    "containers.json": (json.dumps(TF_CONTAINERS), "Terraform's container_definitions"),
    "main.tf": (TF_HCL, "Terraform aws_ecs_task_definition"),
    "scenario.yaml": ((SCENARIOS / "diurnal-inf2.yaml").read_text(), "neuron-sim scenario"),
}


@pytest.mark.parametrize("name", sorted(WRONG_FOR_VALIDATE))
def test_validate_names_a_file_of_another_kind_first(name: str, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    text, phrase = WRONG_FOR_VALIDATE[name]
    path = tmp_path / name
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    first = capsys.readouterr().err.splitlines()[0]
    assert first.startswith(f"{path}: this is ") and phrase in first and "not an ECS task definition" in first


@pytest.mark.parametrize("name", [*sorted(set(WRONG_FOR_VALIDATE) - {"scenario.yaml"}), "taskdef.json"])
def test_run_names_a_file_of_another_kind(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, phrase = WRONG_FOR_VALIDATE.get(name, (TASKDEF.read_text(), "an ECS task definition"))
    path = tmp_path / name
    path.write_text(text)
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and phrase in err[0] and "not a neuron-sim scenario" in err[0]
    assert "neuron-sim validate" in err[0] and not (tmp_path / "out").exists()


def test_a_scenario_naming_a_kubernetes_manifest_as_task_definition_says_so(tmp_path: Path) -> None:
    (tmp_path / "pod.yaml").write_text(POD)
    scenario = (SCENARIOS / "diurnal-inf2.yaml").read_text().replace("taskdefs/inf2-chip-0.json", "pod.yaml")
    (tmp_path / "s.yaml").write_text(scenario)
    with pytest.raises(Exception, match=r"task_definitions\.inf2-chip: .*Kubernetes Pod manifest") as info:
        load_scenario(tmp_path / "s.yaml")
    assert type(info.value).__name__ == "ScenarioError"


@pytest.mark.parametrize("number", ["005", "020"])
def test_the_corpus_cloudformation_resources_get_the_hint(number: str) -> None:
    data = json.loads(next((ROOT / "tests" / "corpus").glob(f"{number}_*.json")).read_text())
    result = validate_task_definition(data["task_definition"])
    assert not result.valid and result.hint and "CloudFormation" in result.hint
    assert str(result.error()).startswith("$: this is a CloudFormation")


def test_real_task_definitions_and_scenarios_are_not_mistaken_for_other_kinds() -> None:
    for path in sorted((SCENARIOS / "taskdefs").glob("*.json")):
        assert near_miss.recognise(json.loads(path.read_text())) == near_miss.TASK_DEFINITION, path
        assert validate_task_definition(json.loads(path.read_text())).hint is None
    for path in sorted(SCENARIOS.glob("*.yaml")):
        assert near_miss.recognise_text(path.read_text()) == near_miss.SCENARIO, path
        load_scenario(path)


# --- scenario mistakes ------------------------------------------------------------------------------

def _scenario(tmp_path: Path, arrivals: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(f"""name: s
duration: 10m
task_definitions:
  a: {TASKDEF}
cluster:
  fleets:
    - instance_type: inf2.xlarge
      count: 1
workloads:
  - name: w
    kind: run_task
    task_definition: a
    {arrivals}
    duration: 5m
""")
    return path


def test_a_misspelt_required_key_shows_the_did_you_mean_first(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    path = _scenario(tmp_path, "arival: {type: poisson, rate: 10/h}")
    assert main(["run", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "workloads[0].arival: unknown key 'arival'; did you mean 'arrivals'?" in err
    knd = _scenario(tmp_path, "arrivals: {type: poisson, rate: 10/h}").read_text()
    knd = knd.replace("kind: run_task", "knd: run_task")
    (tmp_path / "knd.yaml").write_text(knd)
    assert main(["run", str(tmp_path / "knd.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "workloads[0]: needs a 'kind' key saying which kind it is; did you mean 'kind' for 'knd'?" in (
        capsys.readouterr().err)


def test_a_bare_number_rate_prints_one_notice_and_a_rate_with_a_unit_none(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bare = load_scenario(_scenario(tmp_path, "arrivals: {type: poisson, rate: 10}"))
    assert len(bare.notices) == 1 and "rate: 10 is read as 10 per second (36,000 per hour)" in bare.notices[0]
    assert load_scenario(_scenario(tmp_path, "arrivals: {type: poisson, rate: 10/h}")).notices == ()
    assert main(["run", str(_scenario(tmp_path, "arrivals: {type: poisson, rate: 0.01}")), "--out",
                 str(tmp_path / "o"), "--no-report", "--json"]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)
    assert [line for line in captured.err.splitlines() if "notice" in line] == [
        f"neuron-sim: notice: {tmp_path / 's.yaml'}: rate: 0.01 is read as 0.01 per second (36 per hour); "
        "write 0.01/s to say so, or 0.01/m, 0.01/h"]


# --- README's "Using it" ----------------------------------------------------------------------------

def readme_commands() -> list[list[str]]:
    """The neuron-sim commands of README's "Using it" block, as argument lists (comments and redirections
    dropped)."""
    import shlex

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("## Using it", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = []
    for line in block.splitlines():
        line = line.split("#", 1)[0].split(">", 1)[0].strip()
        if line:
            words = shlex.split(line)
            assert words[0] == "neuron-sim", line
            commands.append(words[1:])
    return commands


def test_every_readme_command_parses_and_names_files_that_exist() -> None:
    commands = readme_commands()
    assert len(commands) >= 8
    for argv in commands:
        if argv[0] == "bench":
            bench_main.build_parser().parse_args(argv[1:])
            continue
        args = cli.build_parser().parse_args(argv)
        for name in ("file", "scenario"):
            if getattr(args, name, None) is not None:
                assert (ROOT / getattr(args, name)).is_file(), argv


def test_readme_commands_that_need_no_extra_work_after_a_plain_install(tmp_path: Path) -> None:
    """With the optional modules hidden: the cheap commands run; bench and a Dask sweep print one line
    with the install command and exit 2."""
    hidden = ("scipy", "moto", "distributed", "dask", "jupyterlab")
    for argv in readme_commands():
        if argv[0] in ("catalog", "validate", "schema") or (argv[0] == "bench" and "--quick" in argv):
            proc = _without(hidden, f"from scheduler.cli import main; sys.exit(main({argv!r}))")
            if argv[0] == "bench":
                assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
                assert 'pip install -e ".[bench]"' in proc.stderr
            else:
                assert proc.returncode == 0 and proc.stdout and not proc.stderr, (argv, proc.stderr)


def test_a_scenario_name_with_escape_sequences_never_reaches_the_terminal_raw(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = "a\x1b[31mRED\x1b]0;PWN\x07[bold]x"
    scenario = tmp_path / "esc.yaml"
    text = (SCENARIOS / "static-paths-blind.yaml").read_text()
    shutil.copytree(SCENARIOS / "taskdefs", tmp_path / "taskdefs")
    scenario.write_text(text.replace("name: static-paths-blind", f"name: {json.dumps(name)}"))
    assert main(["run", str(scenario), "--until", "10m", "--out", str(tmp_path / "o"), "--no-report"]) == 0
    captured = capsys.readouterr()
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.out + captured.err
    assert "\\x1b[31mRED" in captured.out and "[bold]x" in captured.out  # shown escaped, markup taken literally


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_until_is_held_to_the_scenarios_limits(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               command: str) -> None:
    # static-paths-blind samples every minute: 800 days would be 1,152,000 samples, past the 1,000,000 limit
    argv = [command, str(SCENARIOS / "static-paths-blind.yaml"), "--until", "800d", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "samples" in err[0] and "static-paths-blind.yaml" in err[0]
    assert not (tmp_path / "o").exists()


def test_run_prints_the_warnings_of_its_task_definitions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(SCENARIOS / "taskdefs", tmp_path / "taskdefs")
    scenario = tmp_path / "warned.yaml"
    scenario.write_text((SCENARIOS / "static-paths-blind.yaml").read_text())
    plain = main(["run", str(scenario), "--until", "10m", "--out", str(tmp_path / "a"), "--no-report"])
    assert plain == 0 and "warning" not in capsys.readouterr().err  # no warned task definition, no line
    text = scenario.read_text()
    first = next(line for line in text.splitlines() if line.strip().endswith(".json"))
    key = first.split(":")[0].strip()
    scenario.write_text(text.replace(first, f"  {key}: taskdefs/warning/duplicate-key.json"))
    capsys.readouterr()
    main(["run", str(scenario), "--until", "10m", "--out", str(tmp_path / "b"), "--no-report"])
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(lines) == 1 and "duplicate-key" in lines[0] and f"task_definitions.{key}" in lines[0]
