"""Fuzzing neuron-sim's input boundaries: hypothesis strategies for the inputs and the checks on what
comes out.

Four kinds of input reach neuron-sim from outside: scenario files (YAML, plus the trace CSV and catalog
files they name), task-definition JSON, cluster-query-language expressions, and the command line. For
each there are structure-aware strategies, which start from the bundled scenarios and task definitions
and mutate them (wrong types, huge and negative numbers, NaN, unicode and control characters, very long
strings, 10,000-level nesting, lists where mappings go, typos in keys), and raw strategies (YAML alias
bombs, anchors and tags, empty files, BOMs, invalid UTF-8, CRLF, tabs, byte noise).

A *target* pairs a strategy with a check. The check states the contract: the input is accepted, or a
``NeuronSimError`` comes out whose one-line text names the file and the field; anything else (another
exception, a multi-line message, a message leaking Python internals, a hang) is a ``FuzzFailure``.
tests/test_fuzz.py runs every target for a few thousand cases in CI; tools/fuzz.py runs the long campaign
described in docs/fuzzing.md.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import re
import shutil
import signal
import string
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import yaml
from hypothesis import strategies as st

from scheduler.ecs import cql
from scheduler.ecs.taskdef import (
    Validation,
    load_task_definition,
    read_task_definition,
    validate_task_definition,
)
from scheduler.errors import NeuronSimError, QueryError, ScenarioError, TaskDefinitionError
from scheduler.scenario import load_scenario, scenario_from_mapping

REPO = Path(__file__).resolve().parents[1]
SCENARIO_DIR = REPO / "scenarios"
TASKDEF_DIR = SCENARIO_DIR / "taskdefs"

# --- failures and hangs -----------------------------------------------------------------------------


class FuzzFailure(AssertionError):
    """An outcome the contract does not allow."""


class Hang(BaseException):
    """Raised by :func:`watchdog` when one example runs too long (BaseException: nothing swallows it)."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread if the block runs longer than ``seconds`` (wall clock)."""
    if seconds <= 0 or not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum: int, frame: object) -> None:
        raise Hang(f"no result after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- markers that stand for values too big to show or to build eagerly -----------------------------


@dataclass(frozen=True)
class Deep:
    """``depth`` levels of nested lists (``[[[1]]]``) or mappings (``{a: {a: 1}}``)."""

    depth: int
    kind: str = "list"

    def build(self) -> Any:
        node: Any = 1
        for _ in range(self.depth):  # a loop, not recursion: 10,000 levels must not overflow here
            node = [node] if self.kind == "list" else {"a": node}
        return node

    def text(self) -> str:
        """Flow text that is both YAML and JSON."""
        if self.kind == "list":
            return "[" * self.depth + "1" + "]" * self.depth
        return '{"a": ' * self.depth + "1" + "}" * self.depth


@dataclass(frozen=True)
class BigInt:
    """An integer of ``digits`` decimal digits, beyond what ``str(int)`` may print (4,300 digits)."""

    digits: int
    negative: bool = False

    def build(self) -> int:
        value = 10**self.digits - 1  # arithmetic, because int("9" * 5000) is refused too
        return -value if self.negative else value

    def text(self) -> str:
        return ("-" if self.negative else "") + "9" * self.digits


@dataclass(frozen=True)
class Plain:
    """A scalar written unquoted, as a person types it: YAML 1.1 reads ``1:30`` as 90 and ``010`` as 8."""

    raw: str

    def build(self) -> Any:
        return yaml.safe_load(self.raw)

    def text(self) -> str:
        return self.raw


def materialize(tree: Any) -> Any:
    """The tree with every marker replaced by the value it stands for (markers are leaves)."""
    if isinstance(tree, Deep | BigInt | Plain):
        return tree.build()
    if isinstance(tree, dict):
        return {materialize(k): materialize(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [materialize(v) for v in tree]
    return tree


def _with_placeholders(tree: Any, splices: dict[str, str]) -> Any:
    if isinstance(tree, Deep | BigInt | Plain):
        key = f"FUZZSPLICE{len(splices)}X"
        splices[key] = tree.text()
        return key
    if isinstance(tree, dict):
        return {_with_placeholders(k, splices): _with_placeholders(v, splices) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_with_placeholders(v, splices) for v in tree]
    return tree


def _splice(text: str, splices: dict[str, str]) -> str:
    for key, raw in splices.items():
        text = re.sub(rf"(['\"]?){key}\1", lambda _m, raw=raw: raw, text)
    return text


def render_yaml(tree: Any, *, flow: bool = False, unicode: bool = True) -> str:
    splices: dict[str, str] = {}
    text = yaml.safe_dump(_with_placeholders(tree, splices), default_flow_style=flow, allow_unicode=unicode,
                          sort_keys=False, width=100)
    return _splice(text, splices)


def render_json(tree: Any, *, indent: int | None = 2, ascii_only: bool = True) -> str:
    splices: dict[str, str] = {}
    text = json.dumps(_with_placeholders(tree, splices), indent=indent, ensure_ascii=ascii_only,
                      allow_nan=True, default=str)
    return _splice(text, splices)


def encode(text: str) -> bytes:
    """UTF-8, keeping lone surrogates as the (invalid) bytes they would be: one more kind of bad input."""
    return text.encode("utf-8", "surrogatepass")


# --- the seeds: bundled, valid inputs ---------------------------------------------------------------


@cache
def scenario_seeds() -> dict[str, Any]:
    """The bundled scenarios, parsed, plus one that uses traces, inline task definitions and catalogs."""
    seeds = {p.name: yaml.safe_load(p.read_text(encoding="utf-8"))
             for p in sorted(SCENARIO_DIR.glob("*.yaml"))}
    seeds["trace-inline.yaml"] = TRACE_SCENARIO
    return seeds


@cache
def taskdef_seeds() -> dict[str, Any]:
    """Every bundled task definition that is JSON: valid ones, the warning cases and the invalid cases."""
    seeds = {}
    for path in sorted(TASKDEF_DIR.rglob("*.json")):
        try:
            seeds[str(path.relative_to(TASKDEF_DIR))] = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue  # invalid/not-json.json is raw text, covered by the raw strategies
    return seeds


INLINE_TASKDEF = {
    "family": "inline-cpu",
    "requiresCompatibilities": ["EC2"],
    "containerDefinitions": [{"name": "app", "image": "busybox", "cpu": 256, "memory": 512,
                              "essential": True}],
}

TRACE_SCENARIO: dict[str, Any] = {
    "name": "trace-inline",
    "seed": 3,
    "duration": "2h",
    "sample_interval": "5m",
    "device_mode": "ecs-blind",
    "catalog": "extra-catalog.yaml",
    "catalog_additions": [{"name": "inf2.xlarge", "price_per_hour": 0.7},
                          {"name": "lab.big", "vcpus": 8, "memory_mib": 32768}],
    "task_definitions": {"inline": INLINE_TASKDEF, "chip": "taskdefs/inf2-chip-0.json"},
    "cluster": {
        "fleets": [{"instance_type": "inf2.xlarge", "count": 2, "attributes": {"rack": 3}},
                   {"instance_type": "lab.big", "count": 1, "spot": True}],
        "capacity_providers": [{"name": "mi", "type": "MANAGED_INSTANCES", "scale_in_after": "disabled",
                                "instance_requirements": {"vCpuCount": {"min": 2}, "memoryMiB": {"min": 1024},
                                                          "allowedInstanceTypes": ["inf2.*"]}}],
    },
    "workloads": [
        {"kind": "run_task", "name": "replay", "task_definition": "chip", "launch_type": "EC2",
         "arrivals": {"type": "trace", "file": "traces/t.csv"}, "on_no_capacity": "wait"},
        {"kind": "run_task", "name": "burst", "task_definition": "inline", "launch_type": "EC2",
         "arrivals": {"type": "once", "at": "10m", "calls": 2}, "count": 3,
         "duration": {"type": "empirical", "values": ["1m", 90, "2m"], "weights": [1, 0, 2]},
         "placement_constraints": [{"type": "distinctInstance"}]},
        {"kind": "service", "name": "steps", "task_definition": "inline", "launch_type": "EC2",
         "schedule": [{"at": 0, "count": 1}, {"at": "1h", "count": 2}],
         "task_duration": {"type": "lognormal", "median": "20m", "sigma": 0.5}},
    ],
}

TRACE_CSV = "submit,duration,task_definition\n0,15m,chip\n12.5,600,\n30,1h,inline\n"
CATALOG_YAML = "- {name: lab.small, vcpus: 2, memory_mib: 4096, price_per_hour: 0.1}\n"

# --- values -----------------------------------------------------------------------------------------

HUGE_INTS = [10**400, -(10**400), 2**63, 2**63 - 1, -(2**63), 2**64, 10**20, 10**4000, BigInt(5000),
             BigInt(4301, negative=True)]
SPECIAL_FLOATS = [math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 1e-300, 1e-12, 0.0005, 0.1, 1.5]
# YAML 1.1 numbers that do not look like the number they are (base 60, octal)
YAML11_NUMBERS = [Plain("1:30"), Plain("1:30:00"), Plain("1:30.5"), Plain("010"), Plain("-07")]
NASTY_STRINGS = [
    "", " ", "\t", "\n", "\r\n", "a\nb", "\x00", "a\x00b", "\x1b[31mred\x1b[0m", "\u202egnp.exe", "\ufeff",
    "\u00a0", "\u2028", "\ud800", "🚀", "名前", "Ünïcödé", "٣", "²", "𝟗", "NaN", "nan", "Infinity", "-0",
    "1e999", "1e-999", "0x10", "0o7", "1_000", "+1", "~", "null", "yes", "no", "on", "true", "<<", "*", "&a",
    "!!str",
    "%", "'", '"', "{", "[", "}", "]", "\\", "${HOME}", "$(id)", "%s%n", "{0}", "a" * 300, "a" * 5000,
    "x" * 100_000, "9" * 5000, "-" + "9" * 4400, "1" + "0" * 400,
]
DOMAIN_STRINGS = [
    # durations and rates, valid and not
    "0", "0s", "1ms", "90s", "15m", "1h30m", "1.5h", "7d", "2w", "1 day 6 hours", ".5h", "1.h", "-1s", "-3/h",
    "5 parsecs", "1M", "1H", "1h-30m", "1e3s", "10/h", "2/m", "0.5/s", "0/h", "10 per hour", "3 per 15m",
    "7/1h30m", "10/5", "10/0h", "1/0s", "/h", "10/", "99999999999999999999w", "1" + "0" * 320 + "s",
    # ECS words
    "EC2", "MANAGED_INSTANCES", "FARGATE", "EXTERNAL", "ec2", "EC2_AUTOSCALING", "REPLICA", "DAEMON",
    "ENABLED", "DISABLED", "disabled", "awsvpc", "host", "bridge", "none", "ALL", "all", "NeuronDevice",
    "GPU", "InferenceAccelerator", "binpack", "spread", "random", "cpu", "memory", "instanceId",
    "attribute:ecs.availability-zone", "distinctInstance", "memberOf", "fail", "wait", "poisson", "interval",
    "diurnal", "once", "trace", "fixed", "exponential", "lognormal", "empirical", "run_task", "service",
    "device-aware", "ecs-blind", "topology-aware", "us-east-1a", "x86_64", "arm64", "tcp", "udp",
    # instance types
    "inf2.xlarge", "inf2.xlarg", "INF2.XLARGE", "inf1.6xlarge", "trn1.32xlarge", "trn2.48xlarge", "g5.xlarge",
    "c6i.2xlarge", "inf*", "*", "?", "inf2.*", "", "lab.big",
    # device paths and amounts
    "/dev/neuron0", "/dev/neuron15", "/dev/neuron16", "/dev/neuron-1", "/dev/neuron01", "/dev/neuron",
    "/dev/neuron" + "9" * 30, "/dev/neuron39", "/dev/neuron40", "/dev/neuron64", "/dev/neuron99999999999",
    "/dev/neuron" + "9" * 5000, "/dev/nvidia0", "1 vCPU", "0.5 vcpu", "0.1 vCPU", "2 GB", "2GB", "2048 MiB",
    "1.5 MiB", "0.125", "0.25", "0.3", "1e3",
    # expressions
    "attribute:ecs.instance-type =~ inf2.*", "attribute:ecs.instance-type == inf2.xlarge",
    "memberOf(attribute:a == b)", "task:group != x", "(", "attribute:a =~ (a*)*b",
    # file names, relative to the scenario's folder
    "taskdefs/inf2-chip-0.json", "taskdefs/neuron-managed.json", "taskdefs", "taskdefs/",
    "taskdefs/README.md", "taskdefs/invalid/not-json.json", "missing.json", "scenario.yaml", "traces/t.csv",
    "extra-catalog.yaml", "/dev/null", "/dev/zero", "/dev/urandom", "../../../../../../etc/hostname",
    "traces/missing.csv", "traces/fifo", "/etc/passwd",
    # below the shortest time step, or above the highest rate
    "0.5ms", "0.0001s", "1001/s", "3600001/h", "1000/s",
]
KEY_NOISE = ["", " ", "name ", "Name", "\x00", "ñame", "<<", "a" * 300, "type", "kind", "name", "count",
             "value"]


def _nested_json() -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
    return st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.text(max_size=5), inner,
                                                                         max_size=3)),
                        max_leaves=8)


def nasty_values(*, exotic: bool = False, bounded: bool = False) -> st.SearchStrategy[Any]:
    """Values that do not belong where they land. ``exotic`` adds non-JSON objects that YAML can make
    (dates, bytes, sets); ``bounded`` leaves out numbers big or small enough to make a valid scenario
    run for a very long time (the CLI ``run`` target simulates whatever loads)."""
    if bounded:
        numbers = st.one_of(st.sampled_from([-1, 0, 1, 2, 3, -0.0, 0.5, math.nan, math.inf, -math.inf,
                                             10**400,
                                             -(10**400), BigInt(5000), True, False, 1e-12, 1e308]),
                            st.integers(-3, 12), st.sampled_from(YAML11_NUMBERS))
        strings = st.one_of(st.sampled_from([s for s in NASTY_STRINGS if not re.fullmatch(r"[0-9.e+-]+", s)]),
                            st.text(alphabet=string.ascii_letters + " _-:/.*", max_size=12),
                            st.sampled_from([s for s in DOMAIN_STRINGS if not _fast(s)]))
    else:
        numbers = st.one_of(st.integers(), st.sampled_from(HUGE_INTS), st.sampled_from(SPECIAL_FLOATS),
                            st.floats(), st.booleans(), st.sampled_from(YAML11_NUMBERS))
        strings = st.one_of(st.sampled_from(NASTY_STRINGS), st.sampled_from(DOMAIN_STRINGS),
                            st.text(max_size=20),
                            st.text(alphabet=st.characters(codec="utf-8"), max_size=8))
    containers = st.one_of(  # copied: a mutation must not change the sample for later draws
        st.sampled_from([None, [], {}, [None], {"": None}, [[]], {"a": 1}, {1: 2}, {None: 1},
                         {True: "x"}]).map(copy.deepcopy),
        st.sampled_from([Deep(10_000), Deep(10_000, "map"), Deep(100), Deep(63), Deep(64, "map"),
                         Deep(1000)]),
        _nested_json(),
    )
    choices = [numbers, strings, containers]
    if exotic:
        # what yaml.safe_load makes besides JSON types: timestamps, !!binary and !!set
        choices.append(st.sampled_from([date(2020, 1, 1), datetime(1, 1, 1, 0, 0), b"\xff\x00", b"", {1, 2},
                                        {None: None}]).map(copy.deepcopy))
    return st.one_of(*choices)


def _fast(text: str) -> bool:
    """Durations or rates that make a short simulated span hold millions of events."""
    return (text in ("1ms", "0.5/s", "2/m", "99999999999999999999w", "1000/s", "/dev/zero", "/dev/urandom",
                     "/etc/passwd") or text.startswith("1" + "0" * 10))


def cql_expressions() -> st.SearchStrategy[str]:
    """Cluster-query-language text: grammar-aware expressions, mutations of them, and plain noise."""
    return st.one_of(_cql_grammar(), _cql_grammar().flatmap(_char_noise), st.text(max_size=60),
                     st.lists(st.sampled_from(_CQL_PIECES), max_size=30).map("".join))


_CQL_SUBJECTS = ["attribute:ecs.instance-type", "attribute:ecs.availability-zone", "attribute:team",
                 "attribute:x.y/z\\w", "attribute:", "attribute:" + "a" * 129, "attribute:a b", "task:group",
                 "agentConnected", "agentVersion", "ec2InstanceId", "registeredAt", "runningTasksCount",
                 "memberOf", "Attribute:ecs.os-type", "runningtaskscount", "instanceType", "not", "and"]
_CQL_OPS = ["==", "!=", ">", ">=", "<", "<=", "exists", "!exists", "in", "!in", "=~", "!~", "equals",
            "not_equals", "greater_than", "greater_than_equal", "less_than", "less_than_equal", "not_exists",
            "not_in", "matches", "not_matches", "=", "===", "~", "=!", "&", "|", "EQUALS", "In", "=>"]
_CQL_VALUES = ["inf2.xlarge", "inf2.*", "t2.micro", "us-east-1a", "true", "false", "TRUE", "1", "-1", "0",
               "1.5", "9" * 40, "1e5", "2018-06-18", "2018-06-18T22:28:28", "2018-06-18T22:28:28Z",
               "2018-06-18T22:28:28+05:30", "2018-13-40", "0000-01-01", "9999-12-31T23:59:59+99:99", "1.14.5",
               "v1.2", "1." * 40 + "1", "1.x", "and", "or", "not", "'quoted value'", '"double"', "'it''s'",
               "'a\nb'", "'", '"', "''", "i-0abc", "a@b", "a/b\\c", "*", "+"]
_CQL_REGEXES = ["inf2.*", "(c6i|m6i)\\..*", "(a*)*b", "[a-z&&[^m]]", "[[a]]", "a{1,2}", "(?i)INF2.*",
                "\\p{L}+", "(?<name>x)", "(?P<n>x)", "\\", "[", "(", ")", "a)", "a{99999999999}", "'.*'",
                '"[a-z]+"', "[]]", "[^]]x", "a||b", "x&&y", "\\d+", "(?=a)", "$^", ".{0,5000}", "a" * 100]
_CQL_PIECES = ["attribute:", "task:group", " and ", " or ", "not(", "not ", "&&", "||", "!", "==", "=~",
               " in ", "[", "]", ",", "(", ")", "'", '"', "agentVersion", "registeredAt", "runningTasksCount",
               "agentConnected", "ec2InstanceId", " exists", "!exists", "memberOf(", "inf2.*", "\\", " ",
               "\t", "\n", "\u00a0", "\u3000", "a", "1", "-", ".", "*", "{", "}", "\x00", "\ud800", "é"]


_CQL_WELL_FORMED = {  # subject -> (operators it takes, values that suit it)
    "attribute:ecs.instance-type": (("==", "!=", "in", "!in", "=~", "!~", "exists", "!exists"),
                                    ("inf2.xlarge", "'trn1.32xlarge'", "c6i.2xlarge", "t2.micro")),
    "attribute:team": ((">", ">=", "<", "<=", "==", "!="), ("3", "-1.5", "10", "abc", "'a b'")),
    "attribute:ecs.availability-zone": (("==", "in", "!in", "not_equals", "matches"),
                                        ("us-east-1a", "us-east-1*")),
    "task:group": (("==", "!=", "in", "!in"), ("a", "b", "service:web", "'family:x'")),
    "agentConnected": (("==", "!=", "in", "=~"), ("true", "false", "TRUE", "t.*")),
    "agentVersion": (("==", "!=", ">", ">=", "<", "<="), ("1.14.5", "1.9", "2", "1.9.0")),
    "ec2InstanceId": (("==", "!=", "in", "=~", "!~"), ("i-0a", "i-0.*", "'i-0c'")),
    "registeredAt": (("==", "!=", ">", ">=", "<", "<="), ("2018-06-18", "2020-09-13T12:26:40Z",
                                                          "2018-06-18T22:28:28+05:30")),
    "runningTasksCount": (("==", "!=", ">", ">=", "<", "<="), ("0", "1", "5", "9" * 30)),
}


@st.composite
def _cql_predicate(draw: st.DrawFn) -> str:
    """Mostly well-formed predicates (a subject with an operator and a value that suit it), some wild."""
    if draw(st.integers(0, 2)):
        subject = draw(st.sampled_from(sorted(_CQL_WELL_FORMED)))
        ops, values = _CQL_WELL_FORMED[subject]
        op = draw(st.sampled_from(ops))
        if op in ("exists", "!exists"):
            return f"{subject} {op}"
        if op in ("in", "!in"):
            items = draw(st.lists(st.sampled_from(values), min_size=1, max_size=3))
            return f"{subject} {op} [{', '.join(items)}]"
        return f"{subject} {op} {draw(st.sampled_from(values))}"
    subject = draw(st.sampled_from(_CQL_SUBJECTS))
    op = draw(st.sampled_from(_CQL_OPS))
    gap = draw(st.sampled_from([" ", "  ", "", "\t", "\n"]))
    if op in ("exists", "!exists", "not_exists"):
        return f"{subject}{gap or ' '}{op}"
    if op in ("in", "!in", "not_in", "In"):
        items = draw(st.lists(st.sampled_from(_CQL_VALUES), min_size=0, max_size=4))
        sep = draw(st.sampled_from([", ", ",", " , ", " "]))
        close = draw(st.sampled_from(["]", "]", ""]))
        return f"{subject} {op} [{sep.join(items)}{close}"
    if op in ("=~", "!~", "matches", "not_matches"):
        value = draw(st.one_of(st.sampled_from(_CQL_REGEXES),
                               st.text(alphabet="ab.*+?()[]{}|\\^$&-,0123456789",
                                                                      max_size=12)))
    else:
        value = draw(st.one_of(st.sampled_from(_CQL_VALUES), st.text(max_size=6)))
    return f"{subject}{gap}{op}{gap}{value}"


def _cql_grammar() -> st.SearchStrategy[str]:
    joiners = st.sampled_from([" and ", " or ", " && ", " || ", "&&", "||", " and ", " or ", " AND ", " and",
                               " ", " xor "])

    def extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(
            inner.map(lambda e: f"not {e}"), inner.map(lambda e: f"not({e})"), inner.map(lambda e: f"!({e})"),
            inner.map(lambda e: f"({e})"), inner.map(lambda e: f"(({e})"),
            inner.map(lambda e: f"memberOf({e})"),
            st.tuples(inner, joiners, inner).map("".join),
        )

    deep = st.tuples(st.integers(1, 150), _cql_predicate()).map(lambda p: "(" * p[0] + p[1] + ")" * p[0])
    long = st.tuples(st.integers(50, 120), _cql_predicate()).map(lambda p: " or ".join([p[1]] * p[0]))
    return st.one_of(st.recursive(_cql_predicate(), extend, max_leaves=6), deep, long)


@st.composite
def _char_noise(draw: st.DrawFn, text: str) -> str:
    chars = list(text)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(chars)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "swap-case"]))
        piece = draw(st.one_of(st.sampled_from(_CQL_PIECES), st.characters()))
        if action == "insert" or not chars:
            chars.insert(where, piece)
        elif action == "delete":
            del chars[min(where, len(chars) - 1)]
        elif action == "replace":
            chars[min(where, len(chars) - 1)] = piece
        else:
            i = min(where, len(chars) - 1)
            chars[i] = chars[i].swapcase()
    return "".join(chars)


def cql_options() -> st.SearchStrategy[cql.CqlOptions]:
    return st.builds(cql.CqlOptions, regex_full_match=st.booleans(), case_sensitive=st.booleans(),
                     missing_attribute_negations_match=st.booleans())


# --- structure-aware mutation -----------------------------------------------------------------------

TreePath = tuple[Any, ...]
MUTATIONS = ("replace", "replace", "replace", "delete", "add-key", "wrap", "unwrap", "duplicate",
             "transplant", "tweak", "tweak", "empty")


def _nodes(tree: Any) -> list[TreePath]:
    """Every node's path (keys and indices from the root), the root first."""
    paths: list[TreePath] = []
    stack: list[tuple[TreePath, Any]] = [((), tree)]
    while stack:
        path, node = stack.pop()
        paths.append(path)
        if isinstance(node, dict):
            stack.extend(((*path, k), v) for k, v in reversed(list(node.items())))
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in reversed(list(enumerate(node))))
    return paths


def _get(tree: Any, path: TreePath) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _set(tree: Any, path: TreePath, value: Any) -> Any:
    if not path:
        return value
    _get(tree, path[:-1])[path[-1]] = value
    return tree


def _typo(draw: st.DrawFn, key: str) -> str:
    kind = draw(st.sampled_from(["drop", "double", "case", "dash", "camel", "space", "unicode"]))
    if kind == "drop" and key:
        i = draw(st.integers(0, len(key) - 1))
        return key[:i] + key[i + 1:]
    if kind == "double" and key:
        i = draw(st.integers(0, len(key) - 1))
        return key[:i] + key[i] + key[i:]
    if kind == "case":
        return key.swapcase()
    if kind == "dash":
        return key.replace("_", "-") if "_" in key else key + "_"
    if kind == "camel":
        return re.sub(r"_(\w)", lambda m: m[1].upper(), key) if "_" in key else re.sub(
            r"([A-Z])", lambda m: "_" + m[1].lower(), key)
    if kind == "space":
        return f" {key}"
    return key.replace("a", "а")  # Cyrillic a


def _tweak(draw: st.DrawFn, node: Any, values: st.SearchStrategy[Any]) -> Any:
    if isinstance(node, bool):
        return not node
    if isinstance(node, int | float):
        how = draw(st.sampled_from(["neg", "big", "off-by-one", "string", "float", "zero"]))
        if how == "neg":
            return -node
        if how == "big":
            return node * 10 ** draw(st.integers(3, 400)) if isinstance(node, int) else node * 1e300
        if how == "off-by-one":
            return node + draw(st.sampled_from([-1, 1]))
        if how == "string":
            return str(node)
        if how == "float":
            return node / 2 + 0.5 if abs(node) < 1e300 else math.nan
        return 0
    if isinstance(node, str):
        how = draw(st.sampled_from(["chars", "negate", "unit", "upper", "pad", "repeat", "strip-last"]))
        if how == "chars":
            return draw(_char_noise(node))
        if how == "negate":
            return "-" + node
        if how == "unit":
            return node + draw(st.sampled_from(["s", "ms", "h", "/h", " per ", "x", "%", "e9", "0000"]))
        if how == "upper":
            return node.upper()
        if how == "pad":
            return f" {node}\t"
        if how == "repeat":
            return node * draw(st.integers(2, 50))
        return node[:-1]
    return draw(values)


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[Any], values: st.SearchStrategy[Any],
            max_mutations: int = 4) -> Any:
    """A seed tree with up to max_mutations structure-aware edits (may contain Deep/BigInt markers).
    None at all one time in ten: valid input must go through too, in all its encodings."""
    tree = draw(seeds)
    count = draw(st.integers(1, max_mutations)) if draw(st.integers(0, 9)) else 0
    for _ in range(count):
        paths = _nodes(tree)
        path = paths[draw(st.integers(0, len(paths) - 1))]
        node = _get(tree, path)
        parent = _get(tree, path[:-1]) if path else None
        action = draw(st.sampled_from(MUTATIONS))
        if action == "delete" and parent is not None:
            del parent[path[-1]]
        elif action == "add-key" and isinstance(node, dict):
            known = [k for k in node if isinstance(k, str)]
            if known and draw(st.booleans()):
                key = _typo(draw, draw(st.sampled_from(known)))
            else:
                key = draw(st.sampled_from(KEY_NOISE))
            node[key] = draw(values)
        elif action == "wrap":
            tree = _set(tree, path, [node])
        elif action == "unwrap" and isinstance(node, list | dict) and node:
            tree = _set(tree, path, next(iter(node)) if isinstance(node, list) else list(node.values()))
        elif action == "duplicate" and isinstance(parent, list):
            parent.insert(path[-1], copy.deepcopy(node))
        elif action == "transplant":
            donor = paths[draw(st.integers(0, len(paths) - 1))]
            tree = _set(tree, path, copy.deepcopy(_get(tree, donor)))
        elif action == "tweak":
            tree = _set(tree, path, _tweak(draw, node, values))
        elif action == "empty":
            empty = type(node)() if isinstance(node, str | list | dict | int | float) else None
            tree = _set(tree, path, empty)
        else:
            tree = _set(tree, path, draw(values))
    return tree


def _seed(seeds: Callable[[], dict[str, Any]]) -> st.SearchStrategy[Any]:
    return st.sampled_from(sorted(seeds())).map(lambda name: copy.deepcopy(seeds()[name]))


def scenario_trees(*, bounded: bool = False, exotic: bool = False) -> st.SearchStrategy[Any]:
    """Bundled scenarios, each with a few structure-aware mutations."""
    values = st.one_of(nasty_values(exotic=exotic, bounded=bounded), cql_expressions())
    return mutated(_seed(scenario_seeds), values)


def taskdef_trees(*, exotic: bool = False) -> st.SearchStrategy[Any]:
    """Bundled task definitions (sometimes in the describe-task-definition wrapper), mutated."""
    seeds = _seed(taskdef_seeds).flatmap(lambda doc: st.sampled_from([
        doc, {"taskDefinition": doc}, {"taskDefinition": doc, "tags": [{"key": "k", "value": "v"}]}]))
    values = st.one_of(nasty_values(exotic=exotic), cql_expressions())
    return mutated(seeds, values)


# --- raw text ---------------------------------------------------------------------------------------


def _alias_bomb(width: int, levels: int, embed: bool) -> str:
    lines = [f"a0: &a0 [{', '.join(['lol'] * width)}]"]
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * width)
        lines.append(f"a{level}: &a{level} [{refs}]")
    bomb = "\n".join(lines) + "\n"
    if embed:  # inside an otherwise valid scenario, referenced from a real field
        base = render_yaml(scenario_seeds()["mixed-cluster.yaml"])
        return bomb + base.replace("seed: 5", f"seed: 5\ndescription: *a{levels - 1}")
    return bomb


RAW_YAML = [
    "", " ", "\n\n", "# only a comment\n", "~", "null", "---", "...", "--- \n...\n", "[]", "{}", "42",
    '"text"', "- a\n- b\n", "a: &a [*a]\n", "&a {b: *a}\n", "a: *missing\n", "a: &x 1\nb: &x 2\nc: *x\n",
    "!!python/object/apply:os.system ['echo pwned']\n", "!!python/name:os.system\n",
    "a: !!python/tuple [1, 2]\n",
    "a: !!binary aGVsbG8=\n", "a: !!set {x, y}\n", "a: !!omap [{x: 1}]\n", "a: !!timestamp 2001-12-14\n",
    "a: !custom x\n", "%TAG !e! tag:example.com,2000:\n---\na: !e!foo 1\n", "%YAML 1.2\n---\na: 1\n",
    "%YAML 9.9\n---\na: 1\n", "a: 1\n---\nb: 2\n", "a: 1\na: 2\n", "? [1, 2]\n: x\n", "? {a: 1}\n: x\n",
    "a: b: c\n", "a:\n\t- b\n", "a: 'unterminated\n", "a: \"\\x\"\n", "a: \"\\ud800\"\n", "a: \x00\n",
    "a: \x85b\n", "\ufeff\ufeffa: 1\n", "<<: *x\n", "a: !!int 0x" + "f" * 5000 + "\n", "a: 1:2:3:4:5\n",
    "a: " + "1:" * 3000 + "1\n", "a: !!float 1e99999\n", "a: 0b" + "1" * 20000 + "\n",
    "k" * 2000 + ": 1\n", "a: " + "x" * 1_000_000 + "\n", "- " * 500 + "a\n",
]


@st.composite
def raw_yaml_text(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["fixed", "bomb", "deep-flow", "deep-block", "keys"]))
    if kind == "fixed":
        return draw(st.sampled_from(RAW_YAML))
    if kind == "bomb":
        return _alias_bomb(draw(st.integers(2, 12)), draw(st.integers(2, 12)), draw(st.booleans()))
    if kind == "deep-flow":
        return "a: " + Deep(draw(st.sampled_from([63, 64, 65, 1000, 10_000])), draw(st.sampled_from(
            ["list", "map"]))).text() + "\n"
    if kind == "deep-block":
        depth = draw(st.sampled_from([63, 64, 65, 200, 1500]))
        return "".join(" " * i + "a:\n" for i in range(depth)) + " " * depth + "1\n"
    return "".join(f"k{i}: {i}\n" for i in range(draw(st.sampled_from([10, 1000, 50_000]))))


_BYTE_PIECES = [b": ", b"- ", b"&a ", b"*a", b"{", b"}", b"[", b"]", b"'", b'"', b"\t", b"\r", b"\n", b"\x00",
                b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"!!", b"%", b"---", b"? ", b"#", b"|",
                b">", b"\\", b",", b"9" * 400, b"\xe2\x80\xa8"]


@st.composite
def byte_noise(draw: st.DrawFn, data: bytes) -> bytes:
    """A few byte-level edits: inserted syntax, invalid UTF-8, deletions, truncation."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(out)))
        action = draw(st.sampled_from(["insert", "insert", "delete", "flip", "truncate"]))
        if action == "insert":
            piece = st.one_of(st.sampled_from(_BYTE_PIECES), st.binary(min_size=1, max_size=4))
            out[where:where] = draw(piece)
        elif action == "delete":
            del out[where:where + draw(st.integers(1, 8))]
        elif action == "flip" and where < len(out):
            out[where] ^= 1 << draw(st.integers(0, 7))
        elif action == "truncate":
            del out[where:]
    return bytes(out)


@st.composite
def text_encodings(draw: st.DrawFn, text: str) -> bytes:
    """The text as a file might really hold it: UTF-8 with or without BOM, CRLF or CR, tabs, UTF-16."""
    kind = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "bom", "crlf", "cr", "tabs", "utf-16", "latin-1",
                                 "trailing-nul", "noise"]))
    if kind == "bom":
        return b"\xef\xbb\xbf" + encode(text)
    if kind == "crlf":
        return encode(text.replace("\n", "\r\n"))
    if kind == "cr":
        return encode(text.replace("\n", "\r"))
    if kind == "tabs":
        return encode(text.replace("  ", "\t"))
    if kind == "utf-16":
        return text.encode("utf-16", "surrogatepass")
    if kind == "latin-1":
        return text.encode("latin-1", "replace")
    if kind == "trailing-nul":
        return encode(text) + b"\x00"
    if kind == "noise":
        return draw(byte_noise(encode(text)))
    return encode(text)


# --- cases: what a target feeds to the code under test ----------------------------------------------


@dataclass(frozen=True)
class ScenarioFiles:
    """A scenario file and the files beside it that it may name."""

    scenario: bytes
    trace: bytes = TRACE_CSV.encode()
    catalog: bytes = CATALOG_YAML.encode()

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        taskdefs = folder / "taskdefs"
        if not taskdefs.exists():
            taskdefs.symlink_to(TASKDEF_DIR, target_is_directory=True)
        (folder / "traces").mkdir(exist_ok=True)
        (folder / "traces" / "t.csv").write_bytes(self.trace)
        if not (folder / "traces" / "fifo").exists():  # a name that must be refused, never opened for reading
            os.mkfifo(folder / "traces" / "fifo")
        (folder / "extra-catalog.yaml").write_bytes(self.catalog)
        path = folder / "scenario.yaml"
        path.write_bytes(self.scenario)
        return path


_CSV_LINES = ["submit,duration,task_definition", "0,15m,chip", "12.5,600,", "30,1h,inline", "-1,1m,chip",
              "1e999,1m,", "nan,1m,", ",,", "0,0,chip", "0,1m,nope", "5,5 parsecs,", "1,2,3,4", "\"a,b\",1,",
              "0,1m,chip\x00", "x" * 5000, "9" * 400 + ",1,", "time,len", "", "\ufeffsubmit,duration"]


@st.composite
def trace_files(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return TRACE_CSV.encode()
    lines = draw(st.lists(st.sampled_from(_CSV_LINES), max_size=6))
    return draw(text_encodings("\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))))


@st.composite
def catalog_files(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        return CATALOG_YAML.encode()
    rows = draw(mutated(st.just([{"name": "lab.small", "vcpus": 2, "memory_mib": 4096, "price_per_hour": 0.1,
                                  "chips": 0}]), nasty_values()))
    return draw(text_encodings(render_yaml(rows, flow=draw(st.booleans()))))


@st.composite
def scenario_files(draw: st.DrawFn, *, bounded: bool = False) -> ScenarioFiles:
    """Scenario files: mostly mutated bundled scenarios, some raw YAML; fuzzed trace and catalog files."""
    if draw(st.integers(0, 4)) == 0:
        text = draw(raw_yaml_text())
    else:
        tree = draw(scenario_trees(bounded=bounded))
        text = render_yaml(tree, flow=draw(st.booleans()), unicode=draw(st.booleans()))
    return ScenarioFiles(draw(text_encodings(text)), draw(trace_files()), draw(catalog_files()))


RAW_JSON = [
    "", " ", "null", "true", "1", '"text"', "[]", "{}", "[{}]", '{"containerDefinitions": []}', "{", "}",
    '{"family": "x",}', "{'family': 'x'}", '{"family": "x"} // comment', "NaN", "-Infinity", "1e999",
    "1" + "0" * 5000, '{"cpu": ' + "9" * 5000 + "}", '{"cpu": 1e-99999}', '{"a": 1, "a": 2}',
    '{"a": "\\ud800"}',
    '{"a": "\\u0000"}', "\x00", '{"family": "x"}\n{"family": "y"}', '{"taskDefinition": null}',
    '{"taskDefinition": []}', '{"taskDefinition": {}, "tags": "x"}', '{"taskDefinition": {}, "extra": 1}',
    "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000,
]


@st.composite
def taskdef_files(draw: st.DrawFn) -> bytes:
    """Task-definition JSON files: mutated bundled ones and raw JSON, in several encodings."""
    if draw(st.integers(0, 5)) == 0:
        text = draw(st.sampled_from(RAW_JSON))
    else:
        tree = draw(taskdef_trees())
        text = render_json(tree, indent=draw(st.sampled_from([None, 2])), ascii_only=draw(st.booleans()))
    return draw(text_encodings(text))


OVERRIDE_KEYS = ["seed", "name", "duration", "cluster.fleets.0.count", "cluster.fleets[0].count",
                 "workloads[0]",
                 "workloads.0.arrivals.rate", "workloads[99].name", "workloads.x", "cluster.fleets.².count",
                 "cluster.fleets.٣", "", ".", "..", "a..b", "seed.", "[0]", "seed.x", "name[0]", "cluster",
                 "new.key",
                 "task_definitions.inline.family", "workloads[0][0]", "cluster.fleets.-1",
                 "cluster.fleets.1e3",
                 "\x00", "a" * 300]
OVERRIDE_VALUES = ["4", "[a, b]", "{", "&a [*a]", "a: &a [*a]", "!!python/object:os.system x", "20/h", "",
                   " ",
                   "1: 2", "---\n---", "\t", "!!binary AA==", "~", "1e999", "9" * 5000, "[" * 100 + "]" * 100]


@st.composite
def scenario_mappings(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    """(already-parsed scenario data, overrides) for scenario_from_mapping; data may hold any object."""
    tree = draw(scenario_trees(exotic=True)) if draw(st.integers(0, 9)) else draw(nasty_values(exotic=True))
    keys = st.one_of(st.sampled_from(OVERRIDE_KEYS),
                     st.text(alphabet="abcdefghijklmnopqrstuvwxyz_.[]0123456789²",
                                                              max_size=24))
    values = st.one_of(st.sampled_from(OVERRIDE_VALUES), nasty_values(exotic=True))
    overrides = draw(st.one_of(st.just({}), st.dictionaries(keys, values, max_size=3)))
    return tree, overrides


@dataclass(frozen=True)
class CliCase:
    """One ``neuron-sim`` call: the command, the input file's bytes (or where it is missing), extra flags."""

    command: str
    data: bytes
    where: str = "file"  # file | missing | directory | fifo | device
    flags: tuple[str, ...] = ()


UNTILS = ["1m", "30s", "0", "0s", "1", "-1", "-1s", "5 parsecs", "1e999", "", " ", "1M", "\x00",
          "1h30m", "nan"]


@st.composite
def cli_cases(draw: st.DrawFn) -> CliCase:
    where = draw(st.sampled_from(["file"] * 8 + ["missing", "directory", "fifo", "device"]))
    if draw(st.booleans()):
        flags: tuple[str, ...] = draw(st.sampled_from([(), ("--json",), ("--launch-type", "EC2"),
                                                       ("--launch-type", "MANAGED_INSTANCES", "--json")]))
        return CliCase("validate", draw(taskdef_files()), where, flags)
    files = draw(scenario_files(bounded=True))
    # --until=VALUE: with a space, argparse would read "-1s" as an option and stop with its usage text
    flags = (f"--until={draw(st.sampled_from(UNTILS))}",)
    if draw(st.integers(0, 3)) == 0:
        flags += (f"--seed={draw(st.sampled_from([0, 1, -1, -(2**63), 2**63 - 1, 2**63, 2**64, 10**30]))}",)
    return CliCase("run", files.scenario, where, flags)


# --- checks -----------------------------------------------------------------------------------------

LEAKS = ("Traceback", "set_int_max_str_digits", "errors.pydantic.dev", "pydantic", "<class '",
         " object at 0x",
         "Input should be", "For further information",
         "root:x:0:0")  # the first line of /etc/passwd: a message quotes the field in error, not a file
# Messages quote the user's values, sometimes in full; this only catches a message that grows beyond the
# biggest value the strategies make (100,000 characters).
MAX_MESSAGE = 250_000
# Problems with no field to name (the whole file, or an override key that is not a path); every other
# error must name one.
WHOLE_FILE = ("the file is", "the top level must be", "not valid YAML", "scenario file not found",
              "is a directory", "is a FIFO", "is a character device", "cannot read the file",
              "the document is nested too deeply", "not UTF-8 text",
              "an override needs a dotted field path")


def _fail(what: str, detail: str) -> FuzzFailure:
    return FuzzFailure(f"{what}: {detail}")


def check_message(text: str, what: str) -> None:
    """One line of printable text (control characters, line separators and bidi overrides in a value are
    escaped, as repr does), of a sensible length, without Python internals in it."""
    if not text.isprintable():
        bad = next(c for c in text if not c.isprintable())
        raise _fail(what, f"message holds the unprintable character {bad!r}: {text[:300]!r}")
    if len(text) > MAX_MESSAGE:
        raise _fail(what, f"message is {len(text)} characters long: {text[:300]!r}...")
    for leak in LEAKS:
        if leak in text:
            raise _fail(what, f"message shows Python internals ({leak!r}): {text[:300]!r}")


def check_error(exc: NeuronSimError, file: str | None, what: str) -> None:
    """The error names the file (when there is one) and a field path, in one clean line."""
    text = str(exc)
    check_message(text, what)
    if file is not None:
        if exc.file != file or not text.startswith(file):
            raise _fail(what, f"error does not name the file {file!r}: {text[:300]!r}")
        if not exc.path and not exc.message.startswith(WHOLE_FILE):
            raise _fail(what, f"error names no field: {text[:300]!r}")


def check_scenario_file(files: ScenarioFiles, folder: Path) -> str:
    """load_scenario accepts the file or raises a ScenarioError naming file and field. Returns the outcome."""
    path = files.write(folder)
    try:
        load_scenario(path)
    except ScenarioError as exc:
        check_error(exc, str(path), "load_scenario")
        return "refused"
    return "accepted"


def check_scenario_mapping(data: Any, overrides: dict[str, Any], folder: Path) -> str:
    files = ScenarioFiles(b"")
    path = files.write(folder)
    label = str(folder / "inline.yaml")
    try:
        scenario_from_mapping(materialize(data), path=label, overrides=materialize(overrides) or None)
    except ScenarioError as exc:
        check_error(exc, label, "scenario_from_mapping")
        return "refused"
    finally:
        path.unlink()
    return "accepted"


def _check_validation(validation: Validation, file: str | None, what: str) -> str:
    if validation.file != file:
        raise _fail(what, f"Validation.file is {validation.file!r}, not {file!r}")
    if validation.valid != (validation.spec is not None):
        raise _fail(what, f"valid={validation.valid} but spec={validation.spec!r}")
    for issue in (*validation.errors, *validation.warnings):
        if not issue.path.startswith("$") or not issue.message or not issue.rule:
            raise _fail(what, f"issue without a JSON path, message or rule: {issue!r}")
        check_message(f"{file}: {issue.path}: {issue.message}", what)
    return "accepted" if validation.valid else "refused"


def check_taskdef_file(data: bytes, folder: Path) -> str:
    """read_task_definition never raises for bad input; every issue has a JSON path; load_task_definition
    raises TaskDefinitionError naming the file exactly when the file is invalid."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "taskdef.json"
    path.write_bytes(data)
    outcome = _check_validation(read_task_definition(path), str(path), "read_task_definition")
    try:
        load_task_definition(path)
    except TaskDefinitionError as exc:
        check_error(exc, str(path), "load_task_definition")
        if outcome == "accepted":
            raise _fail("load_task_definition", f"refuses a valid file: {exc}") from None
        return outcome
    if outcome == "refused":
        raise _fail("load_task_definition", "accepts a file read_task_definition refuses")
    return outcome


def check_taskdef_document(doc: Any) -> str:
    return _check_validation(validate_task_definition(materialize(doc), file="fuzz.json"), "fuzz.json",
                             "validate_task_definition")


class FuzzTable:
    """A small InstanceTable with short values (so even a backtracking regex finishes quickly)."""

    ATTRIBUTES: ClassVar[dict[str, list[str | None]]] = {
        "ecs.instance-type": ["inf2.xlarge", "trn1.32xlarge", None, "c6i.2xlarge"],
        "ecs.availability-zone": ["us-east-1a", "us-east-1b", "us-east-1a", None],
        "team": ["aaaaaaaaaaaaaaaa", "3", "-1.5", "10"],
    }

    def __len__(self) -> int:
        return 4

    def attribute_column(self, name: str) -> np.ndarray:
        column = np.empty(4, dtype=object)
        column[:] = self.ATTRIBUTES.get(name, [None] * 4)
        return column

    def subject_column(self, subject: str) -> np.ndarray:
        if subject == "agentConnected":
            return np.array([True, False, True, True])
        if subject == "registeredAt":
            return np.array([1.5e9, 1.6e9, math.nan, 0.0])
        if subject == "runningTasksCount":
            return np.array([0, 1, 5, 2**62], dtype=np.int64)
        column = np.empty(4, dtype=object)
        column[:] = (["i-0a", "i-0b", "i-0c", None] if subject == "ec2InstanceId"
                     else ["1.14.5", "1.9", "v2-dev", None])
        return column

    def group_mask(self, group: str) -> np.ndarray:
        return np.array([group == "a", group == "b", False, True])


def check_cql(expression: str, options: cql.CqlOptions) -> str:
    """parse gives a Query or a QueryError with a column inside the text; a Query's canonical form parses
    back to an equal query with the same answers."""
    try:
        query = cql.parse(expression, options)
    except QueryError as exc:
        check_message(str(exc), "cql.parse")
        if exc.column is None or not 1 <= exc.column <= len(expression) + 1:
            raise _fail("cql.parse", f"column {exc.column} is outside the expression "
                                     f"(length {len(expression)}): {exc}") from None
        return "refused"
    mask = query.evaluate(FuzzTable(), {})
    if mask.dtype != bool or mask.shape != (4,):
        raise _fail("Query.evaluate", f"returned {mask.dtype} {mask.shape}")
    if len(query.canonical) > cql.MAX_EXPRESSION_LENGTH:
        return "accepted"  # the canonical form spaces operators out; near the limit it may not fit again
    try:
        again = cql.parse(query.canonical, options)
    except QueryError as exc:
        raise _fail("cql canonical form", f"{query.canonical!r} does not parse back: {exc}") from None
    if again != query or not np.array_equal(again.evaluate(FuzzTable()), mask):
        raise _fail("cql canonical form", f"{query.canonical!r} parses back to {again.canonical!r}")
    return "accepted"


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str = field(repr=False)


def run_cli(argv: list[str]) -> CliResult:
    from scheduler.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return CliResult(code, out.getvalue(), err.getvalue())


def check_cli(case: CliCase, folder: Path) -> str:
    """Exit 0, or exit 2 with the error on stderr naming the file; never an exception."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".json" if case.command == "validate" else ".yaml"
    path = folder / f"input{suffix}"
    if path.is_dir() and not path.is_symlink():
        path.rmdir()
    else:  # a FIFO or a link left by an earlier case: writing to either would block or go elsewhere
        path.unlink(missing_ok=True)
    if case.where == "file":
        if case.command == "run":
            path = ScenarioFiles(case.data).write(folder)
        else:
            path.write_bytes(case.data)
    elif case.where == "directory":
        path.unlink(missing_ok=True)
        path.mkdir()
    elif case.where == "fifo":  # opening it for reading would wait for a writer forever
        path.unlink(missing_ok=True)
        os.mkfifo(path)
    elif case.where == "device":  # endless: reading it would fill the memory
        path.unlink(missing_ok=True)
        path.symlink_to("/dev/zero")
    else:
        path.unlink(missing_ok=True)
    argv = [case.command, str(path), *case.flags]
    out = folder / "results"
    if case.command == "run":
        argv += ["--out", str(out), "--no-report", "--force"]
    try:
        result = run_cli(argv)
    except SystemExit as exc:
        raise _fail(f"neuron-sim {case.command}", f"exited through SystemExit({exc.code})") from None
    finally:
        shutil.rmtree(out, ignore_errors=True)
    what = f"neuron-sim {case.command} (exit {result.code})"
    lines = result.stderr.splitlines()
    if "--json" in case.flags:  # validate --json: the verdict and every issue go to stdout as JSON
        report = json.loads(result.stdout)
        if result.code not in (0, 2) or report["valid"] != (result.code == 0) or report["file"] != str(path):
            raise _fail(what, f"the JSON report does not match the exit code: {result.stdout[:300]!r}")
        for issue in report["errors"]:
            check_message(f"{issue['path']}: {issue['message']}", what)
        return "accepted" if result.code == 0 else "refused"
    if result.code == 0:
        if not result.stdout.strip():
            raise _fail(what, "printed nothing")
        return "accepted"
    if result.code != 2 or not lines:
        raise _fail(what, f"expected exit 0, or 2 with a message; stderr: {result.stderr[:300]!r}")
    if case.command == "run":
        if len(lines) != 1:
            raise _fail(what, f"{len(lines)} lines on stderr, not one: {result.stderr[:400]!r}")
        text = lines[0].removeprefix("neuron-sim: ")
        check_message(text, what)
        if str(path) not in text and not text.startswith("--"):
            raise _fail(what, f"the message does not name the file: {text[:300]!r}")
    else:
        for line in lines:
            check_message(line, what)
            if not line.startswith(str(path)):
                raise _fail(what, f"a stderr line does not start with the file: {line[:300]!r}")
    return "refused"


# --- targets ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A strategy and the check that runs on what it draws (``folder`` is scratch space for files)."""

    name: str
    strategy: Callable[[], st.SearchStrategy[Any]]
    check: Callable[[Any, Path], str]
    seconds: float  # watchdog per example

    def run(self, case: Any, folder: Path) -> str:
        """``check`` the case, and fail it if Python reported an exception it could not raise: such an
        exception is an "Exception ignored in ..." traceback on the user's stderr."""
        stray: list[str] = []
        previous = sys.unraisablehook
        sys.unraisablehook = lambda u: stray.append(
            f"{type(u.exc_value).__name__}: {u.err_msg or 'Exception ignored'}")
        try:
            outcome = self.check(case, folder)
        finally:
            sys.unraisablehook = previous
        if stray:
            raise _fail(self.name, f"a traceback went to stderr: {stray[0]}")
        return outcome


TARGETS: dict[str, Target] = {
    t.name: t for t in (
        Target("scenario-file", lambda: scenario_files(), check_scenario_file, 10),
        Target("scenario-mapping", lambda: scenario_mappings(),
               lambda case, folder: check_scenario_mapping(case[0], case[1], folder), 10),
        Target("taskdef-file", lambda: taskdef_files(), check_taskdef_file, 10),
        Target("taskdef-document", lambda: taskdef_trees(exotic=True),
               lambda doc, folder: check_taskdef_document(doc), 10),
        Target("cql", lambda: st.tuples(cql_expressions(), cql_options()),
               lambda case, folder: check_cql(case[0], case[1]), 10),
        Target("cli", lambda: cli_cases(), check_cli, 30),
    )
}


def describe(case: Any, limit: int = 2000) -> str:
    """A readable, bounded description of a drawn case, for failure reports."""
    try:
        text = repr(case)
    except (ValueError, RecursionError) as exc:
        text = f"<unprintable {type(case).__name__}: {exc}>"
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"
