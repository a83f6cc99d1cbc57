"""Results folders: safe names, no links followed, only the tool's files deleted, replaced whole, locked,
SIGTERM like Ctrl-C, Dask runs resent when a worker dies, reports byte-identical for the same seed."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.cli import main
from scheduler.output import MARKER, OutputError, safe_folder_name
from scheduler.results_folder import MAX_NAME_BYTES, locked

ROOT = Path(__file__).resolve().parents[1]
TASKDEFS = ROOT / "scenarios" / "taskdefs"
SCENARIO = ROOT / "scenarios" / "trn1-per-chip-services.yaml"
SHORT = ["--until", "10m"]


def run(out: Path, *extra: str, scenario: Path = SCENARIO) -> int:
    return main(["run", str(scenario), "--out", str(out), *SHORT, *extra])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links as their target text), by relative path."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            files[str(path.relative_to(folder))] = os.readlink(path).encode()
        elif path.is_file():
            files[str(path.relative_to(folder))] = path.read_bytes()
    return files


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("neuron-sim: ") and "Traceback" not in err, err
    return lines[0]


def no_staging_left(parent: Path) -> bool:
    return not [p for p in parent.rglob("*.neuron-sim-*")]


# --- 9: a safe folder name ---------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_a_folder_name_is_one_safe_stable_component(name: str) -> None:
    safe = safe_folder_name(name)
    assert safe == safe_folder_name(name)
    assert safe not in ("", ".", "..") and not safe.startswith(".")
    assert "/" not in safe and "\\" not in safe and "\0" not in safe and safe.isprintable()
    assert len(safe.encode("utf-8")) <= MAX_NAME_BYTES
    assert Path(safe).name == safe


def test_a_plain_name_is_kept_and_names_that_clean_alike_stay_apart() -> None:
    assert safe_folder_name("mixed-cluster") == "mixed-cluster"
    assert safe_folder_name("a/b") != safe_folder_name("a_b") == "a_b"
    assert safe_folder_name(".") != safe_folder_name("..")


@pytest.mark.parametrize("name", ["../../../escaped", "/absolute/name", ".", "..", "é" * 200, "a\\b"])
def test_without_out_the_scenario_name_never_leaves_results(name: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    text = SCENARIO.read_text().replace(" taskdefs/", f" {TASKDEFS}/")
    scenario = work / "s.yaml"
    scenario.write_text(_with_name(text, name))
    assert main(["run", str(scenario), *SHORT, "--no-report"]) == 0
    made = [p for p in (work / "results").iterdir()]
    assert len(made) == 1 and (made[0] / "summary.json").is_file()
    assert sorted(p.name for p in work.iterdir()) == ["results", "s.yaml"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def _with_name(text: str, name: str) -> str:
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("name:"):
            lines[i] = f"name: {json.dumps(name)}"
    return "\n".join(lines) + "\n"


# --- 8: --out unusable, a damaged folder for report, a full disk ------------------------------------------

@pytest.mark.parametrize("make", [
    lambda t: t / ("x" * 300),                        # a component longer than the file system takes
    lambda t: t / ("deep/" * 1000) / "out",            # a path longer than PATH_MAX
    lambda t: (t / "file.txt", (t / "file.txt").write_text("x"))[0] / "out",  # under a file
    lambda t: (t / "file.txt", (t / "file.txt").write_text("x"))[0],          # a file
    lambda t: t / "nul\0byte",
])
def test_an_unusable_out_is_one_line_and_exit_2(make, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = make(tmp_path)
    assert main(["run", str(SCENARIO), "--out", str(out), *SHORT, "--no-report"]) == 2
    one_error_line(capsys.readouterr().err)


def test_a_full_disk_during_the_simulation_keeps_the_earlier_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from scheduler.sim import metrics

    out = tmp_path / "out"
    assert run(out, "--no-report") == 0
    before = snapshot(out)
    capsys.readouterr()

    def full(self, rows):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(metrics.TaskTableWriter, "write", full)
    assert run(out, "--no-report") == 2
    assert "No space left on device" in one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before and no_staging_left(tmp_path)


def test_a_full_disk_while_writing_the_tables_keeps_the_earlier_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from scheduler import output

    out = tmp_path / "out"
    assert run(out, "--no-report") == 0
    before = snapshot(out)
    capsys.readouterr()
    real = output.write_json

    def full_at_the_summary(path: Path, payload: object) -> None:
        if path.name == "summary.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(path, payload)

    monkeypatch.setattr(output, "write_json", full_at_the_summary)
    assert run(out, "--seed", "9", "--no-report") == 2
    one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before and no_staging_left(tmp_path)


@pytest.mark.parametrize("damage", [
    lambda f: (f / "summary.json").write_text("{not json"),
    lambda f: (f / "summary.json").write_text("[1, 2]"),
    lambda f: (f / "tasks.parquet").write_bytes((f / "tasks.parquet").read_bytes()[:100]),
    lambda f: (f / "timeline.parquet").write_bytes(b"PAR1 truncated"),
])
def test_report_of_a_damaged_folder_is_one_line(damage, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run(out, "--no-report") == 0
    damage(out)
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    one_error_line(capsys.readouterr().err)
    assert not (out / "report.html").exists()


def test_report_of_a_damaged_sweep_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sw"
    assert main(["sweep", str(SCENARIO), "--out", str(out), *SHORT, "--workers", "1", "--no-report"]) == 0
    (out / "sweep.parquet").write_bytes(b"garbage")
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    one_error_line(capsys.readouterr().err)


# --- 10: links inside the results folder are never followed ------------------------------------------------

def test_a_linked_marker_is_refused_and_its_target_untouched(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    out = tmp_path / "out"
    out.mkdir()
    (out / MARKER).symlink_to(target)
    assert run(out) == 2
    assert "symbolic link" in one_error_line(capsys.readouterr().err)
    assert run(out, "--force") == 2
    assert target.read_text() == "keep"


def test_a_linked_partial_table_is_never_written_through(tmp_path: Path) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep")
    out = tmp_path / "out"
    assert run(out, "--no-report") == 0
    (out / ".tasks.parquet.partial").symlink_to(target)
    assert run(out, "--no-report", "--force") == 0
    assert target.read_text() == "keep"
    assert (out / ".tasks.parquet.partial").is_symlink()  # a user's entry: kept as it was


def test_a_linked_figures_folder_is_refused_by_report_and_run(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "cost.png").write_bytes(b"not ours")
    (elsewhere / "old.png").write_bytes(b"not ours either")
    out = tmp_path / "out"
    assert run(out) == 0
    for png in (out / "figures").iterdir():
        png.unlink()
    (out / "figures").rmdir()
    (out / "figures").symlink_to(elsewhere)
    capsys.readouterr()
    assert main(["report", str(out)]) == 2
    assert "symbolic link" in one_error_line(capsys.readouterr().err)
    assert run(out, "--force") == 2
    one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["cost.png", "old.png"]
    assert (elsewhere / "cost.png").read_bytes() == b"not ours"


def test_a_linked_summary_is_not_read_by_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run(out, "--no-report") == 0
    outside = tmp_path / "summary.json"
    outside.write_bytes((out / "summary.json").read_bytes())
    (out / "summary.json").unlink()
    (out / "summary.json").symlink_to(outside)
    assert main(["report", str(out)]) == 2
    assert "symbolic link" in one_error_line(capsys.readouterr().err)


# --- 11: only the tool's files are deleted --------------------------------------------------------------------

def test_report_refuses_a_foreign_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "theirs"
    folder.mkdir()
    (folder / "summary.json").write_text('{"scenario": "not ours"}')
    assert main(["report", str(folder)]) == 2
    assert "marker" in one_error_line(capsys.readouterr().err)
    assert sorted(p.name for p in folder.iterdir()) == ["summary.json"]


def test_force_keeps_a_users_files_and_figures(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out) == 0
    (out / "notes.txt").write_text("mine")
    (out / "figures" / "mine.png").write_bytes(b"my figure")
    assert run(out) == 0  # a marked folder: the user's files are kept beside the new run
    assert run(out, "--no-report") == 0  # the report's files go; the user's stay
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "figures" / "mine.png").read_bytes() == b"my figure"
    assert not (out / "report.html").exists() and sorted(p.name for p in (out / "figures").iterdir()) == ["mine.png"]
    listed = json.loads((out / MARKER).read_text())["files"]
    assert "notes.txt" not in listed and "figures/mine.png" not in listed and "summary.json" in listed


def test_report_removes_only_the_figures_it_wrote(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out) == 0
    listed = json.loads((out / MARKER).read_text())["files"]
    (out / "figures" / "mine.png").write_bytes(b"my figure")
    fake = out / "figures" / "stale.png"  # as if an earlier report had drawn a figure this one does not
    fake.write_bytes(b"old")
    (out / MARKER).write_text(json.dumps({"tool": "neuron-sim", "kind": "run",
                                          "files": [*listed, "figures/stale.png"]}))
    assert main(["report", str(out)]) == 0
    assert (out / "figures" / "mine.png").read_bytes() == b"my figure" and not fake.exists()


# --- 12: replaced whole: the old complete run or the new one ------------------------------------------------

def test_no_report_leaves_no_report_of_the_previous_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out) == 0
    assert run(out, "--no-report", "--seed", "5") == 0
    assert not (out / "report.html").exists() and not (out / "figures").exists()
    assert json.loads((out / "summary.json").read_text())["seed"] == 5


def test_ctrl_c_during_the_report_keeps_the_earlier_run_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    from scheduler.report import render

    out = tmp_path / "out"
    assert run(out) == 0
    before = snapshot(out)

    def interrupted(report):
        raise KeyboardInterrupt

    monkeypatch.setattr(render, "to_html", interrupted)
    monkeypatch.setattr("scheduler.report.to_html", interrupted)
    assert run(out, "--seed", "5") == 130
    assert snapshot(out) == before and no_staging_left(tmp_path)


def test_sigterm_while_writing_is_handled_like_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from scheduler import output

    out = tmp_path / "out"
    assert run(out, "--no-report") == 0
    before = snapshot(out)
    real = output.write_parquet

    def terminated(path: Path, frame: object) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        real(path, frame)

    monkeypatch.setattr(output, "write_parquet", terminated)
    assert run(out, "--seed", "5", "--no-report") == 143
    assert "SIGTERM" in capsys.readouterr().err
    assert snapshot(out) == before and no_staging_left(tmp_path)


LONG = f"""
name: long
duration: 60d
sample_interval: 10m
task_definitions: {{sidecar: {TASKDEFS / "cpu-sidecar.json"}}}
cluster: {{fleets: [{{instance_type: m6i.4xlarge, count: 100}}]}}
workloads:
  - {{name: jobs, kind: run_task, task_definition: sidecar, arrivals: {{type: poisson, rate: 20/s}},
      duration: {{type: exponential, mean: 2m}}}}
"""


def start_long_run(tmp_path: Path, out: Path) -> subprocess.Popen:
    """A run that takes minutes, started in a subprocess; returns once it streams its task table."""
    scenario = tmp_path / "long.yaml"
    scenario.write_text(LONG)
    proc = subprocess.Popen([sys.executable, "-m", "scheduler", "run", str(scenario), "--out", str(out),
                             "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # at most about two minutes
        if list(out.parent.glob(f".{out.name}.neuron-sim-*/.tasks.parquet.partial")) or proc.poll() is not None:
            break
        time.sleep(0.2)
    time.sleep(1.0)
    return proc


def test_sigkill_during_a_run_keeps_the_earlier_run_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out, "--no-report") == 0
    before = snapshot(out)
    proc = start_long_run(tmp_path, out)
    try:
        assert proc.poll() is None
        proc.kill()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert snapshot(out) == before
    assert not no_staging_left(tmp_path)  # the killed run's staging folder is still there ...
    assert run(out, "--no-report") == 0
    assert no_staging_left(tmp_path)  # ... until the next run into the folder


def test_sigterm_during_the_simulation_writes_partial_results_and_exits_143(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = start_long_run(tmp_path, out)
    try:
        proc.send_signal(signal.SIGTERM)
        _stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "partial" in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["partial"] is True and 0 < summary["sim_seconds"] < 60 * 86400
    assert not (out / ".tasks.parquet.partial").exists() and no_staging_left(tmp_path)


# --- 13: one run at a time in a folder ----------------------------------------------------------------------

def test_a_second_run_into_a_locked_folder_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert run(out, "--no-report") == 0
    before = snapshot(out)
    capsys.readouterr()
    with locked(out):  # as a run in progress holds it
        assert run(out, "--no-report", "--seed", "4") == 2
        assert "another neuron-sim" in one_error_line(capsys.readouterr().err)
        assert main(["report", str(out)]) == 2
        one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before and no_staging_left(tmp_path)


# --- a sweep refuses to replace an earlier sweep ----------------------------------------------------------

def test_a_sweep_refuses_an_earlier_sweeps_folder_before_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from scheduler import sweep

    out = tmp_path / "sw"
    args = ["sweep", str(SCENARIO), "--out", str(out), *SHORT, "--workers", "1", "--no-report"]
    assert main(args) == 0
    before = snapshot(out)
    capsys.readouterr()

    def must_not_run(*a, **k):
        raise AssertionError("the sweep ran before its folder was checked")

    with monkeypatch.context() as patch:
        patch.setattr(sweep, "run_sweep", must_not_run)
        assert main(args) == 2
    assert "earlier sweep" in one_error_line(capsys.readouterr().err)
    assert snapshot(out) == before
    assert run(out) == 2  # a run does not replace a sweep either ...
    assert main([*args, "--force"]) == 0  # ... unless told to
    with pytest.raises(OutputError, match="earlier sweep"):
        sweep.write_sweep(sweep.read_sweep(out), out)


# --- 16: the same seed gives byte-identical reports ----------------------------------------------------------

def test_the_same_seed_gives_byte_identical_folders_but_for_wall_seconds(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    assert run(first) == 0 and run(second) == 0
    a, b = snapshot(first), snapshot(second)
    assert sorted(a) == sorted(b) and "report.html" in a and "figures/cost.png" in a
    differ = sorted(name for name in a if a[name] != b[name])
    assert differ in ([], ["summary.json"])
    sa, sb = (json.loads(x["summary.json"]) for x in (a, b))
    sa.pop("wall_seconds"), sb.pop("wall_seconds")
    assert sa == sb
    assert "wall" not in a["report.md"].decode()


# --- 15: a Dask worker killed under a run ------------------------------------------------------------------

def test_a_run_whose_dask_worker_dies_is_resent_and_one_that_always_kills_it_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    distributed = pytest.importorskip("distributed")
    import dask

    from scheduler import sweep
    from scheduler.scenario import load_scenario

    marks = str(tmp_path)

    def fragile(scenario, run, until):
        import os

        from scheduler.sweep import run_one

        first = os.path.join(marks, f"run{run.run}")
        if run.run == 9 or (run.run == 1 and not os.path.exists(first)):
            open(first, "w").close()
            os._exit(1)  # the worker process dies under the run
        return run_one(scenario, run, until)

    shipped = {0: sweep.portable(load_scenario(SCENARIO))}
    runs = sweep.expand_runs([{}], [1], 3)
    doomed = [sweep.Run(run=9, point=0, replication=9, overrides={}, seed=1)]
    monkeypatch.setattr(sweep, "WORKER_ATTEMPTS", 2)  # fewer worker restarts: a small test
    # Dask's own retries off, so that the bound under test is the sweep's
    with dask.config.set({"distributed.scheduler.allowed-failures": 0, "logging.distributed": "critical"}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                     dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        tracker = sweep._Tracker(len(runs), None)
        rows = sweep._run_dask(shipped, runs, 60.0, None, client, tracker, task=fragile)
        failing = sweep._run_dask(shipped, doomed, 60.0, None, client, sweep._Tracker(1, None), task=fragile)
    assert sorted(rows) == [0, 1, 2] and tracker.count == 3
    assert all(row["status"] == sweep.OK for row in rows.values())
    assert failing[9]["status"] == sweep.FAILED and f"sent {sweep.WORKER_ATTEMPTS} times" in failing[9]["error"]
    # a resent run gives the row it would have given the first time
    assert {k: v for k, v in rows[1].items() if k != "wall_seconds"} == \
        {k: v for k, v in sweep.run_one(shipped[0], runs[1], 60.0).items() if k != "wall_seconds"}


def test_a_folder_marked_by_an_earlier_version_is_replaced_but_its_unknown_files_are_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run(out) == 0
    (out / MARKER).write_text("results of neuron-sim; safe to overwrite with another run\n")  # the old marker
    (out / "figures" / "cost.png").write_bytes(b"drawn by someone")  # a name it does not list: not deleted
    assert run(out, "--no-report", "--seed", "3") == 0
    assert json.loads((out / "summary.json").read_text())["seed"] == 3
    assert not (out / "report.html").exists()  # a name every version writes: the tool's
    assert (out / "figures" / "cost.png").read_bytes() == b"drawn by someone"
    assert json.loads((out / MARKER).read_text())["kind"] == "run"


def dies_under_some_runs(scenario: dict, run: object, until: float | None) -> dict:
    """A sweep task (imported by the pool's worker processes) whose worker dies under run 2 every time; the
    marks folder (through the environment) records each death. Runs 0 and 1 may be taken down with it when
    the pool breaks, and are sent again: which of them were in flight is up to the pool's timing."""
    from scheduler.sweep import run_one

    if run.run == 2:
        deaths = Path(os.environ["NEURON_SIM_TEST_MARKS"])
        (deaths / f"death-{len(list(deaths.glob('death-*')))}").touch()
        os._exit(1)
    return run_one(scenario, run, until)


def test_a_local_worker_that_dies_takes_no_other_run_with_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scheduler import sweep
    from scheduler.scenario import load_scenario

    monkeypatch.setenv("NEURON_SIM_TEST_MARKS", str(tmp_path))
    monkeypatch.setattr(sweep, "WORKER_ATTEMPTS", 2)  # fewer pools: a small test
    shipped = {0: sweep.portable(load_scenario(SCENARIO))}
    runs = sweep.expand_runs([{}], [1], 3)
    tracker = sweep._Tracker(len(runs), None)
    rows = sweep._run_local(shipped, runs, 60.0, 2, tracker, task=dies_under_some_runs)
    assert sorted(rows) == [0, 1, 2] and tracker.count == 3
    assert rows[0]["status"] == rows[1]["status"] == sweep.OK
    assert rows[2]["status"] == sweep.FAILED and "sent 2 times" in rows[2]["error"]
    assert len(list(tmp_path.glob("death-*"))) == 2  # sent once per attempt, never more


def test_force_never_replaces_a_users_file_that_bears_a_results_name(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    (out / "report.html").write_text("mine")
    assert run(out, "--force") == 2  # refused before the run: report.html is certain to be written
    assert "report.html" in capsys.readouterr().err and (out / "report.html").read_text() == "mine"
    (out / "report.html").unlink()
    assert run(tmp_path / "first") == 0
    figure = sorted((tmp_path / "first" / "figures").iterdir())[0].name
    (out / "figures" / figure).write_bytes(b"my figure")
    assert run(out, "--force") == 2  # found when the figures are known, before anything moves
    assert (out / "figures" / figure).read_bytes() == b"my figure" and not (out / "summary.json").exists()
