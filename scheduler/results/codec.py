"""JSON <-> frozen dataclasses for the results contract: one mechanism, driven by each field's metadata.

A field of a contract dataclass is written under a JSON key: ``json_key(name)`` in its metadata, else
its own name with the class's ``PREFIX``. A part written flat (``flat(prefix)``) spreads its own fields
into its parent's object, each under the prefix plus its key (``wait_`` + ``p99_s``). ``omit`` leaves a
field out of the JSON when it holds its default (``partial`` only when true, ``snapshot`` only with one).
A mapping written spread (``spread()``) puts its items into its parent's object, each under its own key
(the fault counters: one per fault kind, whatever kinds there are); read back, it takes every key of the
object that no other field claims. Key order is field order, so the dataclasses fix the documents' layout.

Reading back checks every key and type: an unknown key, a missing key or a value of the wrong type is one
:class:`ResultsError` naming the file, the field path and what is wrong.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any, Union

from scheduler.errors import NeuronSimError, show_value


class ResultsError(NeuronSimError):
    """A results file (``summary.json``) that this version cannot read: an unknown or missing field, a value
    of the wrong type (written by another version of neuron-sim, or edited)."""


def json_key(key: str, *, omit: bool = False) -> dict[str, Any]:
    """Field metadata: written under ``key``; with ``omit``, left out while it holds its default."""
    return {"json": key, "omit": omit}


def flat(prefix: str = "", *, omit: bool = False) -> dict[str, Any]:
    """Field metadata: a part whose fields are written into the parent object, each key after ``prefix``."""
    return {"flat": prefix, "omit": omit}


def spread(types: Callable[[], Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Field metadata: a ``dict[str, X]`` whose items are written into the parent object, each under its own
    key. Read back, it holds every key of the object no other field claims (each must be an X); with
    ``types`` (the keys it may hold and the type of each, asked when reading) only those keys."""
    return {"spread": True, "types": types}


def omitted() -> dict[str, Any]:
    """Field metadata: written under its own name, left out while it holds its default."""
    return {"omit": True}


@dataclasses.dataclass(frozen=True)
class _Slot:
    name: str              # attribute
    key: str | None        # JSON key of a leaf; None for a flat part
    prefix: str            # a flat part's prefix
    kind: Any              # the resolved type
    omit: bool
    default: Any
    spread: bool = False
    types: Callable[[], Mapping[str, Any]] | None = None  # a spread mapping's keys and their types


@cache
def _slots(cls: type) -> tuple[_Slot, ...]:
    hints = typing.get_type_hints(cls)
    base = getattr(cls, "PREFIX", "")
    out = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        if meta.get("spread"):
            out.append(_Slot(f.name, None, "", hints[f.name], False, default, spread=True, types=meta.get("types")))
        elif "flat" in meta:
            out.append(_Slot(f.name, None, meta["flat"], hints[f.name], meta.get("omit", False), default))
        else:
            out.append(_Slot(f.name, meta.get("json", base + f.name), "", hints[f.name], meta.get("omit", False),
                             default))
    return tuple(out)


def to_json(obj: Any, prefix: str = "") -> dict[str, Any]:
    """A contract dataclass as its JSON object (dicts, lists, numbers, strings), keys in field order."""
    out: dict[str, Any] = {}
    for slot in _slots(type(obj)):
        value = getattr(obj, slot.name)
        if slot.omit and value == slot.default:
            continue
        if slot.spread:
            out.update({prefix + str(k): _plain(v) for k, v in value.items()})
        elif slot.key is None:
            out.update(to_json(value, prefix + slot.prefix))
        else:
            out[prefix + slot.key] = _plain(value)
    return out


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return to_json(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def keys(cls: type, prefix: str = "") -> list[str]:
    """Every JSON key an object of ``cls`` may have, in order (flat parts spread out)."""
    out: list[str] = []
    for slot in _slots(cls):
        if slot.spread:
            continue  # its keys are its items'
        out += keys(_strip_optional(slot.kind), prefix + slot.prefix) if slot.key is None else [prefix + slot.key]
    return out


def from_json(cls: type, data: Any, *, file: str | None = None, path: str = "") -> Any:
    """The ``cls`` object that ``data`` (parsed JSON) holds; anything else is one :class:`ResultsError`."""
    if not isinstance(data, Mapping):
        raise ResultsError(f"expected an object, got {show_value(data)}", file=file, path=path or None)
    used: set[str] = set()
    obj = _read(cls, data, "", used, file, path)
    unknown = [k for k in data if k not in used]
    if unknown:
        raise ResultsError("unknown field: this version of neuron-sim writes no such field (a file from another "
                           "version?)", file=file, path=_join(path, str(unknown[0])))
    return obj


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _read(cls: type, data: Mapping[str, Any], prefix: str, used: set[str], file: str | None, path: str) -> Any:
    values = {}
    spread = None
    for slot in _slots(cls):
        if slot.spread:
            spread = slot
            continue
        if slot.key is None:
            part = _strip_optional(slot.kind)
            if slot.omit and _all_keys(part, prefix + slot.prefix).isdisjoint(data):
                values[slot.name] = slot.default
                continue
            values[slot.name] = _read(part, data, prefix + slot.prefix, used, file, path)
            continue
        key = prefix + slot.key
        if key not in data:
            if slot.omit:
                values[slot.name] = slot.default
                continue
            raise ResultsError("missing field (a file from another version of neuron-sim?)", file=file,
                               path=_join(path, key))
        used.add(key)
        values[slot.name] = _value(slot.kind, data[key], file, _join(path, key))
    if spread is not None:
        _, item = typing.get_args(spread.kind)
        types = None if spread.types is None else spread.types()
        rest = [k for k in data if k not in used and k.startswith(prefix)
                and (types is None or k[len(prefix):] in types)]
        used.update(rest)
        values[spread.name] = {k[len(prefix):]: _value(item if types is None else types[k[len(prefix):]], data[k],
                                                       file, _join(path, k)) for k in rest}
    return cls(**values)


@cache
def _all_keys(cls: type, prefix: str) -> frozenset[str]:
    return frozenset(keys(cls, prefix))


def _strip_optional(kind: Any) -> Any:
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    if _is_union(kind) and len(args) == 1:
        return args[0]
    return kind


def _is_union(kind: Any) -> bool:
    return typing.get_origin(kind) in (Union, types.UnionType)


def _value(kind: Any, value: Any, file: str | None, path: str) -> Any:
    def wrong(expected: str) -> ResultsError:
        return ResultsError(f"expected {expected}, got {show_value(value)}", file=file, path=path)

    if _is_union(kind):
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _value(rest[0], value, file, path)
        raise TypeError(f"unsupported union {kind}")  # pragma: no cover - a contract class's mistake
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind):
        return from_json(kind, value, file=file, path=path)
    if origin in (dict, Mapping):
        if not isinstance(value, Mapping):
            raise wrong("an object")
        _, item = typing.get_args(kind)
        return {str(k): _value(item, v, file, _join(path, str(k))) for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list):
            raise wrong("a list")
        item = typing.get_args(kind)[0]
        return tuple(_value(item, v, file, f"{path}[{i}]") for i, v in enumerate(value))
    if kind is bool:
        if not isinstance(value, bool):
            raise wrong("true or false")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise wrong("a whole number")
        return value
    if kind is float:  # a number: an int stays an int, so the file reads back byte for byte
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise wrong("a number")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise wrong("text")
        return value
    raise TypeError(f"unsupported field type {kind}")  # pragma: no cover - a contract class's mistake
