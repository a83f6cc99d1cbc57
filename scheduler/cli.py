"""The ``neuron-sim`` command line: catalog, validate, run, sweep, plan, report, bench, snapshot, device-sets, schema.

Bad input never shows a traceback: every NeuronSimError becomes one line on stderr and exit code 2, and so
does a missing optional extra (with the ``pip install`` that adds it). Every option's help states its
default. Tables print through :mod:`scheduler.readable`, as the report does, at most 120 columns wide;
``--json`` (run, sweep) puts only JSON on stdout and everything else on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from scheduler.catalog import catalog_rows, default_catalog, load_catalog
from scheduler.catalog.catalog import Catalog
from scheduler.errors import NeuronSimError, bounded, one_line
from scheduler.interrupts import Terminated, exit_code, terminate_as_interrupt
from scheduler.readable import duration_text

if TYPE_CHECKING:
    from scheduler.results import RunSummary
    from scheduler.sweep import Sweep

EXIT_OK = 0
EXIT_RUNS_FAILED = 1  # a sweep finished, but some of its runs failed
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130  # Ctrl-C; SIGTERM gives 143 (128 + signal number)
MAX_SEED = 2**63 - 1  # as a scenario's seed


def _catalog(args: argparse.Namespace) -> Catalog:
    return load_catalog(args.catalog) if getattr(args, "catalog", None) else default_catalog()


TABLE_WIDTH = 120  # columns a terminal table fits in


def _console(stderr: bool = False) -> Console:
    """A console at most TABLE_WIDTH columns wide (that width when output is piped)."""
    probe = Console(stderr=stderr)
    if probe.is_terminal and probe.width <= TABLE_WIDTH:
        return probe
    return Console(stderr=stderr, width=TABLE_WIDTH)


def cmd_catalog(args: argparse.Namespace) -> int:
    rows = catalog_rows(_catalog(args))
    if args.json:
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    table = Table(title="Instance catalog (registered CPU = vCPU x 1024; memory registered at 97.5% of nominal)")
    for col in ("type", "vCPU", "GiB", "chips", "cores/chip", "accelerator", "GPUs", "launch types",
                "topology", "$/h"):
        table.add_column(col, justify="right" if col in ("vCPU", "GiB", "chips", "cores/chip", "GPUs", "$/h")
                         else "left")
    for r in rows:
        price = "" if r["price_per_hour"] is None else f"{r['price_per_hour']:.4g}"
        if r.get("price_note"):
            price += "*"
        table.add_row(r["instance_type"], str(r["vcpus"]), f"{r['memory_gib']:g}", str(r["chips"]),
                      str(r["cores_per_chip"] or ""), r["accelerator"] or "", str(r.get("gpus", 0) or ""),
                      ", ".join("MI" if lt == "MANAGED_INSTANCES" else lt for lt in r["launch_types"]),
                      r.get("topology", ""), price)
    console = _console()
    console.print(table)
    console.print("MI = Managed Instances. * price is not a us-east-1 on-demand figure; "
                  "see `neuron-sim catalog --json` price_note")
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    from scheduler.ecs.taskdef import read_task_definition
    from scheduler.placement.fits import fits_table

    catalog = _catalog(args)
    result = read_task_definition(args.file)
    spec = result.spec
    report: dict = {
        "file": str(args.file),
        "valid": result.valid,
        "hint": result.hint,
        "errors": [{"path": i.path, "message": i.message, "rule": i.rule} for i in result.errors],
        "warnings": [{"path": i.path, "message": i.message, "rule": i.rule} for i in result.warnings],
        "family": spec.family if spec else None,
        "neuron_mode": spec.neuron_mode.value if spec else None,
        "device_paths": list(spec.device_paths) if spec else [],
        "cpu": spec.cpu if spec else None,
        "memory": spec.memory if spec else None,
        "gpus": spec.gpus if spec else None,
        "compatibilities": sorted(spec.compatibilities) if spec else [],
        "fits": fits_table(spec, catalog.values(), args.launch_type) if spec else {},
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_validation(report)
    return EXIT_OK if result.valid else EXIT_INVALID


def _print_validation(report: dict) -> None:
    out = _console()
    err = _console(stderr=True)
    # One line per issue, never wrapped (soft_wrap), so that grep and CI logs see whole lines.
    if report.get("hint"):
        err.print(one_line(f"{report['file']}: {report['hint']}"), markup=False, highlight=False, soft_wrap=True)
    for issue in report["errors"]:
        err.print(one_line(f"{report['file']}: {issue['path']}: {issue['message']} [{issue['rule']}]"),
                  markup=False, highlight=False, soft_wrap=True)
    for issue in report["warnings"]:
        err.print(one_line(f"{report['file']}: warning: {issue['path']}: {issue['message']} [{issue['rule']}]"),
                  markup=False, highlight=False, soft_wrap=True)
    if not report["valid"]:
        err.print(one_line(f"{report['file']}: INVALID ({len(report['errors'])} error(s))"), markup=False,
                  highlight=False, soft_wrap=True)
        return
    out.print(f"{report['file']}: valid task definition '{report['family']}'", markup=False)
    paths = ", ".join(report["device_paths"]) or "-"
    out.print(f"  neuron mode: {report['neuron_mode']}   device paths: {paths}", markup=False)
    out.print(f"  needs: {report['cpu']} CPU units, {report['memory']} MiB, {report['gpus']} GPU(s); "
              f"launch types: {', '.join(report['compatibilities'])}", markup=False)
    table = Table(title="Copies one empty instance runs at once (device-aware)")
    table.add_column("instance type")
    table.add_column("copies", justify="right")
    for name, n in report["fits"].items():
        table.add_row(name, str(n) if n else "[dim]0[/dim]")
    out.print(table)


def _until(text: str | None) -> float | None:
    """The --until option in seconds (None when not given)."""
    if text is None:
        return None
    from scheduler.units import parse_duration

    try:
        until = parse_duration(text)
    except ValueError as exc:
        raise NeuronSimError(str(exc), path="--until") from None
    _check_until(until, text)
    return until


def cmd_run(args: argparse.Namespace) -> int:
    from scheduler.output import TASK_SINK, ResultsFolder, json_text, safe_folder_name, write_run_files
    from scheduler.scenario import load_scenario
    from scheduler.sim.engine import Simulation

    until = _until(args.until)
    loaded = load_scenario(args.scenario, overrides=_run_overrides(args.set, until=args.until))
    _check_seed(args.seed)
    _print_notices(loaded)
    out = args.out or Path("results") / safe_folder_name(loaded.model.name)
    console = Console(stderr=True)
    # the run is written into a staging folder beside `out` and replaces it whole at the end: an
    # interruption before that leaves the earlier results as they were
    with ResultsFolder(out, "run", force=args.force) as folder:
        with _progress(console, _shown(loaded.model.name)) as tick:
            sim = Simulation(loaded, seed=args.seed, until=until, progress=tick,
                             task_sink=folder.staging / TASK_SINK, path=args.path)
            results = sim.run(handle_sigint=True)
        if args.path == "fast" and results.path != "fast":
            print(f"neuron-sim: notice: the plain path ran this scenario: {results.path_note}", file=sys.stderr)
        elif args.path == "fast" and results.plain_beside:  # some RunTask workloads ran beside the lane
            print(f"neuron-sim: notice: {results.path_note}", file=sys.stderr)
        write_run_files(results, folder.staging)
        report = None if args.no_report else _write_report(folder.staging)
        folder.commit()
    if args.json:
        sys.stdout.write(json_text(results.summary.to_json()))
    else:
        _print_summary(results.summary, out)
    _show_report(report, out, stderr=args.json)
    if results.summary.partial:
        print(_interrupted_line(results.summary, out), file=sys.stderr)
        return exit_code(sim.stopped_by)
    return EXIT_OK


def _interrupted_line(summary: RunSummary, out: Path) -> str:
    """What Ctrl-C or SIGTERM during a run leaves, in human time."""
    return (f"neuron-sim: interrupted after {duration_text(summary.sim_seconds)} of simulated time; the "
            f"results in {out}/ are partial (summary.json says \"partial\": true)")


def _run_overrides(texts: Sequence[str] | None, *, until: str | None = None) -> dict[str, str]:
    """``--set PATH=VALUE`` options of ``run``, read by the sweep's parser: one value each. ``--until``
    stands for the scenario's duration, so the scenario's limits (samples over the run) hold for it too."""
    from scheduler.sweep import parse_set

    overrides: dict[str, str] = {}
    for text in texts or []:
        parameter = parse_set(text)
        if len(parameter.values) != 1:
            raise NeuronSimError(f"run takes one value per --set, got {len(parameter.values)} in {text!r}; "
                                 "to try several, use `neuron-sim sweep` with the same --set", path="--set")
        if parameter.path in overrides:
            raise NeuronSimError(f"{parameter.path} is set twice", path="--set")
        overrides[parameter.path] = parameter.values[0]
    if until is not None:
        overrides["duration"] = until
    return overrides


def _print_notices(loaded: object) -> None:
    """Readings of the scenario worth one line on stderr (a bare number read as a rate per second)."""
    for notice in getattr(loaded, "notices", ()):
        print(f"neuron-sim: notice: {notice}", file=sys.stderr)


def _write_report(folder: Path) -> Path | None:
    """Write the report into a staging folder (locked by its :class:`ResultsFolder`); its HTML file."""
    from scheduler.report import build_report

    written = build_report(folder, lock=False)
    return next((f for f in written if f.suffix == ".html"), None)


def _show_report(html: Path | None, out: Path, *, stderr: bool = False) -> None:
    if html is not None:
        _console(stderr=stderr).print(f"report: {out / html.name}", markup=False, highlight=False, soft_wrap=True)


def _check_seed(seed: int | None) -> None:
    """--seed takes what a scenario's seed takes: 0 .. 2**63 - 1 (numpy refuses negative seeds)."""
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise NeuronSimError(f"a seed is an integer from 0 to 2**63 - 1, got {seed}", path="--seed")


def _check_until(seconds: float, text: str) -> None:
    """A run of 0 s is no run (and the engine refuses it): --until must be positive."""
    if seconds <= 0:
        raise NeuronSimError(f"must be longer than 0, such as 30m or 2d; got {text!r}", path="--until")


def cmd_sweep(args: argparse.Namespace) -> int:
    from scheduler.output import ResultsFolder, safe_folder_name
    from scheduler.scenario.compile import workload_kinds, workloads_with_requests
    from scheduler.sweep import RunProgress, apply_target, parse_set, run_sweep, write_sweep_files
    from scheduler.targets import parse_targets

    _check_seed(args.seed)
    until = _until(args.until)
    parameters = [parse_set(text) for text in args.set or []]
    target = parse_targets(args.target or [])
    name = args.scenario.stem
    base = _base_scenario(args.scenario, args.until)
    base_name = base.model.name
    if target is not None:  # a target naming a workload the scenario lacks stops here, before any run
        target.check_workloads(workload_kinds(base.model.workloads),
                             with_requests=workloads_with_requests(base.model.workloads))
    out = args.out or Path("results") / f"{safe_folder_name(base_name)}-sweep"
    # checked (and locked) before the runs: an earlier sweep's folder is refused without --force
    with ResultsFolder(out, "sweep", force=args.force) as folder:
        with RunProgress(Console(stderr=True), _shown(name)) as tick:
            sweep = run_sweep(args.scenario, parameters, replications=args.replications, executor=args.executor,
                              workers=args.workers, scheduler=args.scheduler, seed=args.seed, until=until,
                              progress=tick)
        _print_notices(sweep)
        if target is not None:
            apply_target(sweep, target)
        write_sweep_files(sweep, folder.staging)
        report = None if args.no_report else _write_report(folder.staging)
        folder.commit()
    if args.json:
        from scheduler.output import json_text

        sys.stdout.write(json_text({**sweep.describe(), "folder": str(out),
                                    "summary": sweep.summary.to_dict(orient="records")}))
    else:
        _print_sweep(sweep, out)
    _show_report(report, out, stderr=args.json)
    failed = sweep.failed
    if len(failed):
        first = failed.iloc[0]
        print(f"neuron-sim: {len(failed)} of {len(sweep.runs)} runs failed (the error column of "
              f"{out / 'sweep.parquet'} says why); run {first['run']}: {first['error']}", file=sys.stderr)
        return EXIT_RUNS_FAILED
    return EXIT_OK


def cmd_plan(args: argparse.Namespace) -> int:
    """The cheapest configuration in the ranges that meets every target; exit 1 when none does."""
    from scheduler.output import ResultsFolder, safe_folder_name
    from scheduler.plan import RunCache, plan
    from scheduler.plan.api import read_options
    from scheduler.plan.cache import CACHE_FILE
    from scheduler.plan.output import summary_lines, write_plan_files
    from scheduler.plan.space import check_space
    from scheduler.targets import parse_targets

    _check_seed(args.seed)
    until = _until(args.until)
    dims, choices = read_options(args.vary or [], args.choose or [])  # bad input: one line, before any run
    check_space(dims, choices)
    target = parse_targets(args.target or [])
    if target is None:
        raise NeuronSimError("a plan needs a --target such as 'wait_p99<60s,shortfall==0'", path="--target")
    base = _base_scenario(args.scenario, args.until)
    out = args.out or Path("results") / f"{safe_folder_name(base.model.name)}-plan"
    console = Console(stderr=True)
    with ResultsFolder(out, "plan", force=args.force) as folder:
        cache = RunCache.read(folder.path)
        with _plan_progress(console, _shown(args.scenario.stem)) as tick:
            def batch(_result: object, simulated: int) -> None:
                folder.keep(CACHE_FILE, cache.data())  # an interrupted plan resumes from what is here
                tick(simulated)

            result = plan(args.scenario, dims, target, choose=choices, replications=args.replications,
                          initial=args.initial, confidence=args.confidence, until=until, executor=args.executor,
                          workers=args.workers, scheduler=args.scheduler, seed=args.seed, cache=cache,
                          on_batch=batch)
        write_plan_files(result, folder.staging, source=args.scenario, cache=cache, out=out)
        folder.commit()
    for line in summary_lines(result):
        print(line)
    print(f"results: {out}/ (plan.parquet, plan.json, report.html"
          + (", plan_scenario.yaml)" if result.best is not None else ")"))
    return EXIT_OK if result.best is not None else EXIT_RUNS_FAILED


class _plan_progress:
    """A rich progress line over a plan's simulations (shown only on a terminal); the total is unknown
    until the search ends."""

    def __init__(self, console: Console, name: str) -> None:
        self.console, self.name, self.bar, self.task = console, name, None, None

    def __enter__(self):
        if self.console.is_terminal:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.bar = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), TimeElapsedColumn(),
                                console=self.console, transient=True)
            self.bar.start()
            self.task = self.bar.add_task(f"plan {self.name}: searching", total=None)
        return self.tick

    def tick(self, simulated: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, description=f"plan {self.name}: {simulated} simulations")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _base_scenario(path: Path, until: str | None) -> Any:
    """The scenario as written, read before any run starts: a file or --until it refuses stops the sweep here."""
    from scheduler.scenario import load_scenario

    return load_scenario(path, overrides=_run_overrides(None, until=until))


def _print_sweep(sweep: Sweep, out: Path) -> None:
    from scheduler.report.document import sweep_point_table, target_sentence

    block, same = sweep_point_table(sweep)
    title = (f"sweep of {_shown(sweep.scenario)}: {len(sweep.runs)} runs, {sweep.replications} per point, "
             "mean ± half the 95% CI")
    console = _console()
    # headers wrap at word ends (a workload's name above its metric) so the values keep their width
    headers = ["\n".join(line for piece in column.split(": ") for line in textwrap.wrap(piece, 10))
               for column in block.columns]
    console.print(_rich_table(title, headers, block.rows, label_width=max((len(r[0]) for r in block.rows), default=0)))
    if same:
        console.print(f"the same at every grid point: {same}", markup=False, highlight=False)
    sentence = target_sentence(sweep)
    if sentence:
        console.print(sentence, markup=False, highlight=False, soft_wrap=True)
    console.print(f"results in {out}/", markup=False, highlight=False, soft_wrap=True)


def _add_executor_options(p: argparse.ArgumentParser, workers: str) -> None:
    """--executor, --scheduler, --workers and --seed: how sweep and plan run their simulations."""
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="a local process pool or a Dask cluster (default: local)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler address, tcp://host:8786 (default: a new LocalCluster)")
    p.add_argument("--workers", type=int, help=f"{workers} (default: the CPU count)")
    p.add_argument("--seed", type=int, help="base seed instead of the scenario's (default: the scenario's seed)")


def _rich_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, first_left: int = 1,
                label_width: int = 0) -> Table:
    """A terminal table of already formatted cells: the first ``first_left`` columns are names, the rest
    values (right-aligned, never wrapped); ``label_width`` keeps the names at least that wide (up to 40)."""
    table = Table(title=title)
    for index, column in enumerate(columns):
        if index < first_left:
            keep = 0 < label_width <= 40  # short names keep their width: value columns shrink instead
            table.add_column(column, overflow="fold", no_wrap=keep, min_width=label_width if keep else None)
        else:
            table.add_column(column, justify="right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def cmd_report(args: argparse.Namespace) -> int:
    from scheduler.report import build_report

    for path in build_report(args.folder):
        print(path)
    return EXIT_OK


def _shown(name: object) -> str:
    """A scenario's name as the terminal shows it: control characters escaped (no escape sequence of a
    name reaches the terminal), rich markup taken literally, at most 200 characters."""
    from rich.markup import escape

    return escape(bounded(one_line(str(name)), 200))


class _progress:
    """A rich progress bar over simulated time, shown only on a terminal."""

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self.bar = None

    def __enter__(self):
        if not self.console.is_terminal:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                            TimeElapsedColumn(), console=self.console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task(f"simulating {self.name}", total=1.0)
        return self.tick

    def tick(self, now: float, until: float) -> None:
        if self.bar is not None and until > 0:
            self.bar.update(self.task, completed=min(1.0, now / until))

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_summary(summary: RunSummary, out: Path) -> None:
    from scheduler.readable import fmt, request_table, summary_rows, workload_table
    from scheduler.sim.faults import fault_rows

    title = (f"{_shown(summary.scenario)} (seed {summary.seed}, {summary.device_mode}, "
             f"{duration_text(summary.sim_seconds)} simulated)")
    rows = summary_rows(summary)
    rows += [(f"failed: {reason}", fmt(n)) for reason, n in summary.tasks.failed.items()]
    rows += [(f"waiting: {reason}", fmt(n)) for reason, n in summary.tasks.waiting_by_reason.items()]
    short = sum(summary.service_shortfall_task_hours.values())
    if short:
        rows.append(("service shortfall (task-hours)", fmt(float(short))))
    labels = {key: (label, unit) for key, label, unit in fault_rows()}
    for key, n in summary.fault_metrics().items():
        if n:
            label, unit = labels.get(key, (key.replace("_", " "), ""))
            rows.append((f"faults: {label}", fmt(n, unit)))
    console = _console()
    console.print(_rich_table(title, ("metric", "value"), rows))
    columns, per_workload = workload_table(summary)
    if per_workload:
        console.print(_rich_table("per workload: waits from submission to RUNNING (tasks still waiting count "
                                  "their wait so far)", columns, [(_shown(row[0]), *row[1:]) for row in per_workload]))
    columns, per_service = request_table(summary)
    if per_service:
        console.print(_rich_table("requests: latency end to end, time to first token (TTFT), queueing", columns,
                                  [(_shown(row[0]), *row[1:]) for row in per_service]))
    console.print(f"results in {out}/", markup=False, highlight=False, soft_wrap=True)


def cmd_snapshot(args: argparse.Namespace) -> int:
    from scheduler.scenario import load_scenario
    from scheduler.scenario.snapshot_export import snapshot_from_results

    scenario = load_scenario(args.scenario) if args.scenario else None
    out = args.out or Path(args.from_results).parent / f"{Path(args.from_results).resolve().name}-snapshot"
    catalog = scenario.catalog if scenario is not None else _catalog(args)
    written = snapshot_from_results(args.from_results, out, catalog, scenario=scenario, force=args.force)
    print(f"snapshot of {args.from_results} in {out}/ ({len(written)} files); a scenario starts from it with "
          "`snapshot: <this folder, relative to the scenario file>`")
    return EXIT_OK


def cmd_device_sets(args: argparse.Namespace) -> int:
    from scheduler.ecs.device_sets import DeviceSetError, constrained_instance_type, expand
    from scheduler.ecs.taskdef import read_task_definition
    from scheduler.output import write_device_sets

    result = read_task_definition(args.file)
    if result.spec is None:
        raise result.error()
    name = args.instance_type or constrained_instance_type(result.spec)
    if name is None:
        raise NeuronSimError("the task definition names no instance type (memberOf attribute:ecs.instance-type "
                             "== ...); give one", path="--instance-type")
    try:
        sets = expand(result.document, result.spec, _catalog(args).get(name))
    except DeviceSetError as exc:
        raise NeuronSimError(exc.message, file=str(args.file)) from None
    written = write_device_sets({s.family: s.document for s in sets}, args.out, force=args.force)
    for block, path in zip(sets, written, strict=True):
        print(f"{path}: {block.label}", flush=True)
    print(f"{len(sets)} task definitions for {name}; register each with "
          "`aws ecs register-task-definition --cli-input-json file://FILE`")
    return EXIT_OK


def cmd_schema(args: argparse.Namespace) -> int:
    from scheduler.scenario import scenario_json_schema

    print(json.dumps(scenario_json_schema(), indent=2))
    return EXIT_OK


def _version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    from importlib import metadata

    try:
        return metadata.version("neuron-sim")
    except metadata.PackageNotFoundError:
        from scheduler import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neuron-sim",
        description="Simulate Amazon ECS task placement for AWS Neuron (Trainium, Inferentia) workloads.",
        epilog="`neuron-sim COMMAND --help` says what each command takes and its defaults.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("catalog", help="print the instance catalog")
    p.add_argument("--json", action="store_true", help="machine-readable output (default: a table)")
    p.add_argument("--catalog", type=Path,
                   help="a CSV/YAML/JSON file that adds or overrides instance types (default: the bundled catalog)")
    p.set_defaults(func=cmd_catalog)

    p = sub.add_parser("validate", help="check a task definition as ECS would, and how many copies fit per type")
    p.add_argument("file", type=Path, help="task definition JSON (register-task-definition or describe output)")
    p.add_argument("--launch-type", choices=["EC2", "MANAGED_INSTANCES"],
                   help="count fits for this launch type only (default: any the task definition allows)")
    p.add_argument("--json", action="store_true", help="machine-readable output (default: text and a table)")
    p.add_argument("--catalog", type=Path,
                   help="a CSV/YAML/JSON file that adds or overrides instance types (default: the bundled catalog)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="simulate a scenario file and write its results folder")
    p.add_argument("scenario", type=Path, help="scenario YAML")
    p.add_argument("--out", type=Path, help="results folder (default: results/<scenario name>/)")
    p.add_argument("--set", action="append", metavar="PATH=VALUE",
                   help="set a scenario field for this run (dotted path, e.g. cluster.fleets.0.count=4); "
                        "repeatable (default: the file as it is)")
    p.add_argument("--seed", type=int, help="override the scenario's seed (default: the scenario's seed)")
    p.add_argument("--until", help="simulate only this long, e.g. 30m, 2d (default: the scenario's duration)")
    p.add_argument("--json", action="store_true",
                   help="print the run summary (summary.json) as JSON on stdout, nothing else "
                        "(default: a table)")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds other files; they are kept (default: refuse)")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html and report.md (default: write them)")
    p.add_argument("--path", choices=("auto", "fast", "plain"), default="auto",
                   help="engine path: fast runs RunTask streams in the compiled stream lane where it applies, "
                        "plain never; both give identical results (default: auto, fast where it pays)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("sweep", help="run a grid of scenario variants times replications, locally or on Dask")
    p.add_argument("scenario", type=Path, help="scenario YAML")
    p.add_argument("--set", action="append", metavar="PATH=V1,V2,...",
                   help="sweep a scenario field (dotted path, e.g. cluster.fleets.0.count=2,4,8); repeatable "
                        "(default: no parameter, replications of the file as it is)")
    p.add_argument("--target", action="append", metavar="CONDITIONS",
                   help="mark the grid points whose means meet every condition and name the cheapest, e.g. "
                        "'wait_p99<60s,shortfall==0' or 'wait_p99[llama]<60s,shortfall[llama]==0'; repeatable "
                        "(default: none)")
    p.add_argument("--replications", type=int, default=1, help="runs per grid point (default: 1)")
    _add_executor_options(p, "processes (local) or LocalCluster workers")
    p.add_argument("--until", help="simulate only this long, e.g. 30m, 2d (default: the scenario's duration)")
    p.add_argument("--out", type=Path, help="results folder (default: results/<scenario name>-sweep/)")
    p.add_argument("--json", action="store_true",
                   help="print sweep.json and the per-point summary as JSON on stdout, nothing else "
                        "(default: a table)")
    p.add_argument("--force", action="store_true",
                   help="replace an earlier sweep's results, or write beside other files; they are kept "
                        "(default: refuse)")
    p.add_argument("--no-report", action="store_true",
                   help="do not write report.html and report.md (default: write them)")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("plan", help="search the ranges for the cheapest configuration that meets every target")
    p.add_argument("scenario", type=Path, help="scenario YAML")
    p.add_argument("--vary", action="append", metavar="PATH=LO..HI",
                   help="an integer field to search, e.g. cluster.fleets.0.count=4..40; repeatable "
                        "(default: none; at least one is required)")
    p.add_argument("--choose", action="append", metavar="PATH=A,B,...",
                   help="a field taking one of these values, e.g. cluster.fleets.0.instance_type=inf2.24xlarge,"
                        "inf2.48xlarge; repeatable (default: none)")
    p.add_argument("--target", action="append", metavar="CONDITIONS",
                   help="conditions every answer meets, e.g. 'wait_p99[llama]<60s,shortfall[llama]==0'; repeatable "
                        "(default: none; one is required)")
    p.add_argument("--replications", type=int, default=5,
                   help="runs of a point near the boundary; others stop at --initial (default: 5)")
    p.add_argument("--initial", type=int, default=2, help="runs every point gets first (default: 2)")
    p.add_argument("--confidence", type=float, default=0.95,
                   help="level of the confidence bound a target is judged on (default: 0.95)")
    _add_executor_options(p, "processes (local) or LocalCluster workers, and points evaluated at once")
    p.add_argument("--until", help="simulate only this long, e.g. 1d (default: the scenario's duration)")
    p.add_argument("--out", type=Path, help="results folder (default: results/<scenario name>-plan/); an earlier "
                                            "plan's folder is replaced, its cached runs reused")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds other results or files; they are kept (default: refuse)")
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("report", help="write report.html and report.md for a run or sweep results folder")
    p.add_argument("folder", type=Path, help="a folder written by `neuron-sim run` or `neuron-sim sweep`")
    p.set_defaults(func=cmd_report)

    sub.add_parser("bench", help="run the benchmark suite into results/bench/: --quick, --out DIR, --only PART "
                                 "(see bench --help)")

    p = sub.add_parser("snapshot", help="turn a finished run into a cluster snapshot (AWS CLI describe outputs)")
    p.add_argument("--from-results", type=Path, required=True, metavar="DIR",
                   help="a folder written by `neuron-sim run`")
    p.add_argument("--out", type=Path, help="snapshot folder (default: DIR-snapshot/ beside DIR)")
    p.add_argument("--scenario", type=Path,
                   help="the scenario the run used: its task definitions and service settings are copied "
                        "(default: rebuilt from the tasks)")
    p.add_argument("--catalog", type=Path,
                   help="a CSV/YAML/JSON file that adds or overrides instance types (default: the bundled catalog)")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds other files (default: refuse)")
    p.set_defaults(func=cmd_snapshot)

    p = sub.add_parser("device-sets", help="write one task definition per aligned Neuron device block of an "
                                           "instance type, from one manual-mode task definition")
    p.add_argument("file", type=Path, help="task definition JSON naming one contiguous run of /dev/neuronN")
    p.add_argument("--instance-type", help="spread over this type's chips (default: the type the task "
                                           "definition's memberOf attribute:ecs.instance-type == constraint names)")
    p.add_argument("--out", type=Path, required=True, help="folder for the RegisterTaskDefinition JSON files")
    p.add_argument("--catalog", type=Path,
                   help="a CSV/YAML/JSON file that adds or overrides instance types (default: the bundled catalog)")
    p.add_argument("--force", action="store_true",
                   help="write into a folder that holds other files; they are kept (default: refuse)")
    p.set_defaults(func=cmd_device_sets)

    p = sub.add_parser("schema", help="print the JSON Schema of scenario files (to stdout)")
    p.set_defaults(func=cmd_schema)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    bench = argv[:1] == ["bench"]  # the suite parses its own options (argparse REMAINDER drops a leading --flag)
    args = None if bench else build_parser().parse_args(argv)
    try:
        with terminate_as_interrupt():
            return _dispatch(args, argv)
    except NeuronSimError as exc:
        print(f"neuron-sim: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt as exc:
        term = isinstance(exc, Terminated)
        print(f"neuron-sim: {'terminated (SIGTERM)' if term else 'interrupted'}", file=sys.stderr)
        return exit_code(signal.SIGTERM if term else signal.SIGINT)
    except BrokenPipeError:  # output piped into `head` and the like
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _dispatch(args: argparse.Namespace | None, argv: list[str]) -> int:
    if args is None:
        from benchmarks.__main__ import main as bench_main

        return int(bench_main(argv[1:]))
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
