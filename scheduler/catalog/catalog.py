"""The instance catalog: the bundled ``instances.csv`` plus a user file, validated, looked up by name.

A user file (CSV, YAML or JSON) adds instance types or overrides bundled ones. A CSV has the bundled
columns (any subset; a blank cell means "not given"); YAML and JSON hold a list of objects with the same
keys (``instance_type`` may stand for ``name``). A row for a type that already exists only needs the
fields that change. Every problem becomes a ``CatalogError`` naming the file, the row and the field.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from scheduler import yaml11
from scheduler.catalog.model import LAUNCH_EC2, LAUNCH_MANAGED, InstanceType
from scheduler.errors import CatalogError, show_name
from scheduler.files import UnreadableFile, read_bounded

FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(InstanceType))
REQUIRED_FOR_NEW: tuple[str, ...] = ("name", "vcpus", "memory_mib")
MAX_FILE_BYTES = 10 * 1024 * 1024  # a catalog file of thousands of instance types is well under 1 MiB
MAX_PRICE_PER_HOUR = 1_000_000.0  # dollars; the dearest EC2 instance costs a few hundred an hour
MAX_CHIPS = 40  # chip sets are bitmasks packed beside a type code in 64 bits; today's maximum is 16

LAUNCH_TYPES = frozenset({LAUNCH_EC2, LAUNCH_MANAGED})
CPU_ARCHITECTURES = ("x86_64", "arm64")
CPU_MANUFACTURERS = ("intel", "amd", "amazon-web-services")
ACCELERATOR_MANUFACTURERS = ("amazon-web-services", "amd", "nvidia", "xilinx", "habana")
GENERATIONS = ("current", "previous")

_NAME = re.compile(r"[a-z0-9][a-z0-9-]*\.[a-z0-9-]+")
_TOPOLOGY = re.compile(r"(none|single)|(line|ring):(\d+)|torus2d:(\d+)x(\d+)")
_BUNDLED = "instances.csv (bundled)"


# --- topology strings -------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, slots=True)
class TopologySpec:
    """A parsed topology string: ``none``, ``single``, ``line:N``, ``ring:N`` or ``torus2d:RxC``."""

    kind: str
    dims: tuple[int, ...] = ()

    @property
    def chips(self) -> int:
        if self.kind == "none":
            return 0
        if self.kind == "single":
            return 1
        count = 1
        for d in self.dims:
            count *= d
        return count

    def __str__(self) -> str:
        if self.kind in ("none", "single"):
            return self.kind
        if self.kind == "torus2d":
            return f"torus2d:{self.dims[0]}x{self.dims[1]}"
        return f"{self.kind}:{self.dims[0]}"


@lru_cache(maxsize=256)
def parse_topology(text: str) -> TopologySpec:
    """Parse a topology string; raises ``ValueError`` saying what a valid one looks like."""
    m = _TOPOLOGY.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"must be none, single, line:N, ring:N or torus2d:RxC, got {text!r}")
    if m.group(1):
        return TopologySpec(m.group(1))
    if m.group(2):
        n = int(m.group(3))
        least = 2 if m.group(2) == "line" else 3
        if n < least:
            raise ValueError(f"{m.group(2)}:N needs N >= {least}, got {text!r}")
        return TopologySpec(m.group(2), (n,))
    rows, cols = int(m.group(4)), int(m.group(5))
    if rows < 2 or cols < 2:
        raise ValueError(f"torus2d:RxC needs R >= 2 and C >= 2, got {text!r}")
    return TopologySpec("torus2d", (rows, cols))


# --- the catalog ------------------------------------------------------------------------------------

_RAISE: Any = object()
Record = dict[str, Any]


class Catalog(Mapping[str, InstanceType]):
    """An immutable mapping from instance-type name to ``InstanceType``, in catalog order."""

    __slots__ = ("_types",)

    def __init__(self, types: Iterable[InstanceType] = ()) -> None:
        table: dict[str, InstanceType] = {}
        for itype in types:
            table[itype.name] = itype
        self._types: Mapping[str, InstanceType] = MappingProxyType(table)

    def __reduce__(self) -> tuple:
        # a mappingproxy does not pickle; the types do (sweeps ship catalogs to worker processes)
        return (Catalog, (tuple(self._types.values()),))

    def get(self, name: str, default: Any = _RAISE) -> InstanceType:  # type: ignore[override]
        """The type called ``name``; unknown names raise ``CatalogError`` unless a default is given."""
        itype = self._types.get(name) or self._types.get(name.strip().lower())
        if itype is not None:
            return itype
        if default is not _RAISE:
            return default
        close = difflib.get_close_matches(name.strip().lower(), list(self._types), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `neuron-sim catalog` lists known types"
        raise CatalogError(f"unknown instance type {name!r}{hint}")

    def __getitem__(self, name: str) -> InstanceType:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name, None) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._types)

    def __len__(self) -> int:
        return len(self._types)

    def __repr__(self) -> str:
        return f"Catalog({len(self)} instance types)"

    def names(self) -> tuple[str, ...]:
        return tuple(self._types)

    def match(self, pattern: str) -> list[InstanceType]:
        """Types whose name matches an EC2 wildcard pattern (``inf*``, ``c6i.*``, ``m6*.*``, exact names).

        ``*`` matches any run of characters, including dots; every other character is literal, so
        ``trn1.*`` matches trn1.2xlarge but not trn1n.32xlarge. Matching ignores case.
        """
        regex = _wildcard(pattern.strip().lower())
        return [itype for name, itype in self._types.items() if regex.fullmatch(name)]

    def with_types(self, types: Iterable[InstanceType]) -> Catalog:
        """A new catalog with ``types`` added, replacing same-named ones in place."""
        return Catalog([*self._types.values(), *types])


@lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("*")))


# --- loading ----------------------------------------------------------------------------------------

def load_catalog(extra: str | Path | None = None) -> Catalog:
    """The bundled catalog, plus the types in ``extra`` (CSV, YAML or JSON) added or overridden."""
    base = _bundled_catalog()
    if extra is None:
        return base
    path = Path(extra)
    label = str(path)
    records = _read_user_file(path, label)
    seen: dict[str, str] = {}
    types: list[InstanceType] = []
    known = dict(base.items())
    for where, record in records:
        itype = _build(record, known, label, where, user_file=path.name)
        if itype.name in seen:
            raise CatalogError(f"instance type {itype.name!r} appears twice (first at {seen[itype.name]})",
                               file=label, path=where)
        seen[itype.name] = where
        known[itype.name] = itype
        types.append(itype)
    return base.with_types(types)


@cache
def default_catalog() -> Catalog:
    """The bundled catalog, loaded once."""
    return load_catalog()


@cache
def _bundled_catalog() -> Catalog:
    text = resources.files("scheduler.catalog").joinpath("instances.csv").read_text(encoding="utf-8")
    records = _csv_records(text, _BUNDLED)
    return Catalog(_build(record, {}, _BUNDLED, where) for where, record in records)


def _read_user_file(path: Path, label: str) -> list[tuple[str, Record]]:
    try:
        text = read_bounded(path, MAX_FILE_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise CatalogError("catalog file not found", file=label) from None
    except UnreadableFile as exc:
        raise CatalogError(f"cannot read catalog file: {exc}", file=label) from None
    except UnicodeDecodeError as exc:
        raise CatalogError(f"cannot read catalog file: not UTF-8 text (byte {exc.start})", file=label) from None
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            return _csv_records(text, label)
        except csv.Error as exc:  # a NUL byte, a field over the csv module's size limit
            raise CatalogError(f"not valid CSV: {exc}", file=label) from None
    if suffix in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
            for line, column, why in yaml11.surprises(text):  # read, but not as it looks: refused
                raise CatalogError(why, file=label, path=f"line {line}, column {column}")
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}" if mark is not None else None
            raise CatalogError(f"not valid YAML: {getattr(exc, 'problem', None) or exc}",
                               file=label, path=where) from None
        except (ValueError, OverflowError, LookupError, AttributeError, TypeError, RecursionError) as exc:
            # raised while PyYAML builds values: int("x"), !!bool x, !!timestamp x, deep nesting
            raise CatalogError(f"not valid YAML: {_parse_problem(exc)}", file=label) from None
    elif suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogError(f"not valid JSON: {exc.msg}", file=label, path=f"line {exc.lineno}") from None
        except (ValueError, RecursionError) as exc:
            raise CatalogError(f"not valid JSON: {_parse_problem(exc)}", file=label) from None
    else:
        kind = suffix or "(none)"
        raise CatalogError(f"unsupported file type {kind!r}; use .csv, .yaml, .yml or .json", file=label)
    if not isinstance(data, list):
        raise CatalogError("must be a list of instance-type objects", file=label)
    records = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise CatalogError("must be an object with instance-type fields", file=label, path=f"[{i}]")
        records.append((f"[{i}]", {str(k): v for k, v in item.items()}))
    return records


def _parse_problem(exc: BaseException) -> str:
    """Words for what a YAML or JSON parser raises besides its own errors."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if "digits" in str(exc):  # int() refuses numbers of more than sys.get_int_max_str_digits() digits
        return "a number has thousands of digits"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__  # e.g. an impossible date


def _csv_records(text: str, label: str) -> list[tuple[str, Record]]:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    if not header:
        raise CatalogError("empty CSV: needs a header row with at least the 'name' column", file=label)
    records = []
    for row in reader:
        where = f"line {reader.line_num}"
        if None in row:
            raise CatalogError("more cells than header columns", file=label, path=where)
        # A blank cell means "not given": defaults for a new type, unchanged for an override.
        records.append((where, {k: v for k, v in row.items() if v is not None and v.strip() != ""}))
    return records


# --- one row -> InstanceType ------------------------------------------------------------------------

def _build(record: Record, known: Mapping[str, InstanceType], label: str, where: str,
           user_file: str | None = None) -> InstanceType:
    def fail(field: str, message: str) -> CatalogError:
        return CatalogError(f"{field}: {message}", file=label, path=where)

    if "instance_type" in record and "name" not in record:
        record = {("name" if k == "instance_type" else k): v for k, v in record.items()}
    for number, key in enumerate(record, 1):
        if key not in FIELDS:
            if show_name(key) is None:  # not a name: perhaps a line of some other file; do not echo it
                raise CatalogError(f"field {number} is not a field name ({', '.join(FIELDS[:3])}, ...)",
                                   file=label, path=where)
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise fail(key, f"unknown field{hint}")
    if "name" not in record or record["name"] is None:
        raise fail("name", "is required")
    values: dict[str, Any] = {}
    for key, raw in record.items():
        try:
            values[key] = _PARSERS[key](raw)
        except ValueError as exc:
            raise fail(key, str(exc)) from None
    name = values["name"]
    base = known.get(name)
    if base is None:
        for key in REQUIRED_FOR_NEW:
            if key not in values:
                raise fail(key, f"is required for a new instance type ({name!r} is not in the catalog)")
        merged = _defaults(values, fail) | values
        if "source" not in values:
            merged["source"] = f"user file {user_file} {where}" if user_file else ""
    else:
        merged = {f: getattr(base, f) for f in FIELDS} | values
        if "source" not in values and user_file:
            changed = ", ".join(k for k in values if k != "name") or "nothing"
            merged["source"] = f"{base.source}; {changed} from {user_file} {where}"
    _check_consistency(merged, fail)
    return InstanceType(**merged)


def _defaults(values: Record, fail: Callable[[str, str], CatalogError]) -> Record:
    chips = values.get("chips", 0)
    if "topology" in values:
        topology = values["topology"]
    elif chips <= 1:
        topology = "single" if chips == 1 else "none"
    else:
        raise fail("topology", f"is required when chips > 1 (line:{chips}, ring:{chips} or torus2d:RxC)")
    return _FIELD_DEFAULTS | {
        "family": values["name"].split(".", 1)[0],
        "chips": 0, "cores_per_chip": 0, "accelerator": None, "accelerator_memory_gib": 0.0, "gpus": 0,
        "launch_types": LAUNCH_TYPES, "price_per_hour": None, "topology": topology,
    }


def _check_consistency(v: Record, fail: Callable[[str, str], CatalogError]) -> None:
    family = v["name"].split(".", 1)[0]
    if v["family"] != family:
        raise fail("family", f"must be the part of the name before the dot ({family!r}), got {v['family']!r}")
    chips = v["chips"]
    if chips > MAX_CHIPS:
        raise fail("chips", f"must be at most {MAX_CHIPS}, got {chips}")
    if chips > 0 and v["cores_per_chip"] == 0:
        raise fail("cores_per_chip", "must be positive when the type has Neuron chips")
    if chips == 0 and v["cores_per_chip"] != 0:
        raise fail("cores_per_chip", "must be 0 when the type has no Neuron chips")
    spec = parse_topology(v["topology"])
    if spec.chips != chips:
        want = "chips = 0" if spec.kind == "none" else f"{spec.chips} chip{'s' if spec.chips != 1 else ''}"
        raise fail("topology", f"{spec} needs {want}, but chips is {chips}")
    override = v["registered_memory_override"]
    if override is not None and override > v["memory_mib"]:
        raise fail("registered_memory_override", f"must not exceed memory_mib ({v['memory_mib']})")


# --- field parsers: raw value (CSV text or YAML/JSON scalar) -> typed value, ValueError on bad input --

def _show(value: object) -> str:
    """repr, shortened; also for values repr cannot print (ints of thousands of digits, deep nesting)."""
    try:
        text = repr(value)
    except ValueError:
        return "a number too long to show"
    except RecursionError:
        return f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= 60 else text[:57] + "..."


def _int(raw: Any, least: int, message: str) -> int:
    if isinstance(raw, bool):
        raise ValueError(message)
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, str) and re.fullmatch(r"\s*[+-]?[0-9]{1,18}\s*", raw):  # longer: beyond any machine
        value = int(raw)
    else:
        raise ValueError(f"{message}, got {_show(raw)}")
    if value < least:
        raise ValueError(f"{message}, got {_show(value)}")
    return value


def _positive_int(raw: Any) -> int:
    return _int(raw, 1, "must be a positive integer")


def _count(raw: Any) -> int:
    return _int(raw, 0, "must be a non-negative integer")


def _number(raw: Any) -> float:
    if isinstance(raw, bool):
        raise ValueError(f"must be a non-negative number, got {_show(raw)}")
    try:
        value = float(raw)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an int beyond any float
        raise ValueError(f"must be a non-negative number, got {_show(raw)}") from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"must be a non-negative number, got {_show(raw)}")
    return value


def _price(raw: Any) -> float:
    value = _number(raw)
    if value > MAX_PRICE_PER_HOUR:
        raise ValueError(f"must be at most {MAX_PRICE_PER_HOUR:,.0f} (dollars per hour), got {_show(raw)}; "
                         "costs are sums of prices times hours and must stay finite")
    return value


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def parse_optional(raw: Any) -> Any:
        return None if raw is None or (isinstance(raw, str) and raw.strip() == "") else parse(raw)
    return parse_optional


def _text(raw: Any) -> str:
    if not isinstance(raw, str):
        raise ValueError(f"must be text, got {_show(raw)}")
    return raw.strip()


def _name(raw: Any) -> str:
    name = _text(raw)
    if not _NAME.fullmatch(name):
        raise ValueError(f"must look like family.size in lowercase (e.g. 'c6i.large'), got {name!r}")
    return name


def _family(raw: Any) -> str:
    family = _text(raw)
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", family):
        raise ValueError(f"must be a lowercase family such as 'trn1', got {family!r}")
    return family


def _one_of(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse_choice(raw: Any) -> str:
        value = _text(raw)
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value
    return parse_choice


def _launch_types(raw: Any) -> frozenset[str]:
    if isinstance(raw, str):
        items = [part.strip() for part in raw.split("|")]
    elif isinstance(raw, list | tuple | set | frozenset):
        items = [str(part).strip() for part in raw]
    else:
        raise ValueError(f"must be EC2 and/or MANAGED_INSTANCES separated by '|', got {_show(raw)}")
    unknown = [item for item in items if item not in LAUNCH_TYPES]
    if unknown or not items:
        raise ValueError(f"must be EC2 and/or MANAGED_INSTANCES separated by '|', got {_show(raw)}")
    return frozenset(items)


def _topology(raw: Any) -> str:
    return str(parse_topology(_text(raw)))


def _note(raw: Any) -> str:
    return "" if raw is None else _text(raw)


_FIELD_DEFAULTS: Record = {
    f.name: f.default for f in dataclasses.fields(InstanceType) if f.default is not dataclasses.MISSING
}

_PARSERS: dict[str, Callable[[Any], Any]] = {
    "name": _name,
    "family": _family,
    "vcpus": _positive_int,
    "memory_mib": _positive_int,
    "chips": _count,
    "cores_per_chip": _count,
    "accelerator": _optional(_text),
    "accelerator_memory_gib": _number,
    "gpus": _count,
    "launch_types": _launch_types,
    "price_per_hour": _optional(_price),
    "price_note": _note,
    "topology": _topology,
    "cpu_architecture": _one_of(CPU_ARCHITECTURES),
    "cpu_manufacturer": _one_of(CPU_MANUFACTURERS),
    "accelerator_manufacturer": _optional(_one_of(ACCELERATOR_MANUFACTURERS)),
    "max_enis": _positive_int,
    "generation": _one_of(GENERATIONS),
    "registered_memory_override": _optional(_positive_int),
    "source": _note,
}


# --- rows for `neuron-sim catalog --json` -----------------------------------------------------------

def catalog_rows(catalog: Catalog) -> list[dict[str, Any]]:
    """One JSON-ready object per instance type, in catalog order."""
    rows = []
    for itype in catalog.values():
        gib = itype.memory_mib / 1024
        rows.append({
            "instance_type": itype.name,
            "family": itype.family,
            "vcpus": itype.vcpus,
            "memory_gib": int(gib) if gib.is_integer() else gib,
            "memory_mib": itype.memory_mib,
            "chips": itype.chips,
            "device_paths": list(itype.device_paths),
            "cores_per_chip": itype.cores_per_chip,
            "neuron_cores": itype.neuron_cores,
            "accelerator": itype.accelerator,
            "accelerator_memory_gib": itype.accelerator_memory_gib,
            "gpus": itype.gpus,
            "launch_types": sorted(itype.launch_types),
            "price_per_hour": itype.price_per_hour,
            "price_note": itype.price_note,
            "topology": itype.topology,
            "registered_cpu": itype.registered_cpu,
            "registered_memory_mib": itype.registered_memory_mib(),
            "max_enis": itype.max_enis,
        })
    return rows
