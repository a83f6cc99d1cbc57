"""botocore's ECS service model as the API contract: check request and response payloads against it.

``validate_input`` runs botocore's own ``ParamValidator`` (unknown keys, types, required members, minimums)
and adds what botocore leaves to the service: enum values, maximums, and booleans given where a number is
expected (``True`` is an ``int`` to Python). ``validate_output`` checks a response payload, such as an
ECS-shaped DescribeTasks view, against the operation's output shape with one walker that does all of it;
``validate_cli_output`` does the same for a file saved from ``aws ecs describe-... --output json``.
Every finding is an :class:`~scheduler.errors.Issue` whose path reads like ``$.containerDefinitions[0].cpu``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape
from botocore.validate import ParamValidator

from scheduler.errors import Issue, one_line, show_value

# Rule ids of shape findings; the task-definition rules use the same ids for the same kinds of fault.
UNKNOWN_KEY = "unknown-key"
WRONG_TYPE = "wrong-type"
MISSING_REQUIRED = "missing-required"
OUT_OF_RANGE = "out-of-range"
BAD_ENUM = "bad-enum"
SHAPE = "shape"

_BOTOCORE_RULES = {
    "unknown field": UNKNOWN_KEY,
    "invalid type": WRONG_TYPE,
    "invalid type for document": WRONG_TYPE,
    "missing required field": MISSING_REQUIRED,
    "invalid range": OUT_OF_RANGE,
    "invalid length": OUT_OF_RANGE,
}

_TYPE_NAMES = {
    "<class 'int'>": "integer", "<class 'str'>": "string", "<class 'bool'>": "boolean",
    "<class 'float'>": "number", "<class 'decimal.Decimal'>": "number", "<class 'dict'>": "object",
    "<class 'list'>": "array", "<class 'tuple'>": "array",
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_MAP_KEY_SUFFIX = re.compile(r"^(?P<path>.*) \(key: (?P<key>.*)\)$", re.DOTALL)


@cache
def ecs_service_model() -> ServiceModel:
    """The ECS service model bundled with the installed botocore (loaded once)."""
    return botocore.session.get_session().get_service_model("ecs")


def operation_model(operation: str) -> OperationModel:
    """One ECS operation's model, e.g. ``"RegisterTaskDefinition"``; ``ValueError`` if ECS has none."""
    model = ecs_service_model()
    if operation not in model.operation_names:
        raise ValueError(f"ECS has no operation {operation!r}")
    return model.operation_model(operation)


def validate_input(operation: str, params: Any, *, root: str = "$") -> list[Issue]:
    """Check request parameters the way the AWS CLI would, plus enums and maximums.

    ``root`` prefixes every path, for payloads that sit inside a larger document.
    """
    shape = operation_model(operation).input_shape
    if shape is None:
        return [] if not params else [Issue(root, f"{operation} takes no input", UNKNOWN_KEY)]
    report = ParamValidator().validate(params, shape)
    issues = [_issue_from_botocore(report, error, root) for error in getattr(report, "_errors", [])]
    if report.has_errors() and not issues:  # a botocore without the structured error list
        issues = [Issue(root, line, SHAPE) for line in report.generate_report().splitlines()]
    _walk(params, shape, root, issues, full=False)
    return issues


def validate_output(operation: str, payload: Any, *, root: str = "$") -> list[Issue]:
    """Check a response payload against the operation's output shape.

    Unknown keys, types, enum values, required members, minimums and maximums. Timestamps may be
    ``datetime`` objects, epoch seconds, or ISO-8601 strings, as SDKs and the CLI print them.
    """
    shape = operation_model(operation).output_shape
    issues: list[Issue] = []
    if shape is None:
        if payload:
            issues.append(Issue(root, f"{operation} returns no output", UNKNOWN_KEY))
        return issues
    _walk(payload, shape, root, issues, full=True)
    return issues


# The AWS CLI commands whose ``--output json`` a cluster snapshot is made of, and the operation each prints.
CLI_OUTPUTS = {
    "describe-container-instances": "DescribeContainerInstances",
    "describe-tasks": "DescribeTasks",
    "describe-services": "DescribeServices",
    "describe-task-definition": "DescribeTaskDefinition",
    "describe-capacity-providers": "DescribeCapacityProviders",
}


def validate_cli_output(command: str, payload: Any, *, root: str = "$") -> list[Issue]:
    """Check what ``aws ecs <command> --output json`` printed against the operation's output shape.

    The CLI prints the output shape as it is (timestamps as ISO-8601 strings), without the SDK's
    ``ResponseMetadata``; a saved file that still has it (from an SDK) is accepted.
    """
    if isinstance(payload, Mapping) and "ResponseMetadata" in payload:
        payload = {k: v for k, v in payload.items() if k != "ResponseMetadata"}
    return validate_output(CLI_OUTPUTS[command], payload, root=root)


def check_shape(value: Any, shape: Shape, *, root: str = "$") -> list[Issue]:
    """Check ``value`` against one shape of the model (any member), with every check the walker has."""
    issues: list[Issue] = []
    _walk(value, shape, root, issues, full=True)
    return issues


def member_path(path: str, key: object) -> str:
    """``$.a`` + ``b`` -> ``$.a.b``; keys that are not identifiers go in brackets: ``$.a["b c"]``."""
    text = str(key)
    if _IDENTIFIER.fullmatch(text):
        return f"{path}.{text}"
    escaped = one_line(text.replace("\\", "\\\\").replace('"', '\\"'))
    return f'{path}["{escaped}"]'


def _botocore_name_to_path(name: str, root: str) -> str:
    # botocore names look like ".containerDefinitions[0].cpu" (structures) or "tags[1]" (documents).
    if not name:
        return root
    if name.startswith((".", "[")):
        return root + name
    return f"{root}.{name}"


def _issue_from_botocore(report: Any, error: tuple[str, str, dict[str, Any]], root: str) -> Issue:
    reason, name, details = error
    if reason == "invalid type":  # botocore prints '8080' and 8080 alike; say which types they are
        wanted = " or ".join(dict.fromkeys(_TYPE_NAMES.get(t, t) for t in details["valid_types"]))
        message = (f"Invalid type for parameter {name.lstrip('.') or 'input'}: expected {wanted}, "
                   f"got {_type_word(details['param'])} {show_value(details['param'])}")
    else:
        message = one_line(report._format_error(error) or f"{reason} at {name or 'input'}")
    rule = _BOTOCORE_RULES.get(reason, SHAPE)
    key_match = _MAP_KEY_SUFFIX.match(name)
    if key_match:  # a map key that breaks the key shape: point at the key
        path = member_path(_botocore_name_to_path(key_match["path"], root), key_match["key"])
    else:
        path = _botocore_name_to_path(name, root)
    if reason == "unknown field":
        path = member_path(path, details["unknown_param"])
    elif reason == "missing required field":
        path = member_path(path, details["required_name"])
    return Issue(one_line(path), message, rule)  # botocore names hold map keys as written


def _type_word(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _is_timestamp(value: object) -> bool:
    if isinstance(value, dt.datetime):
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == value  # NaN is not a time
    if isinstance(value, str):
        try:
            dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
        return True
    return False


_SCALAR_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "long": (int,),
    "boolean": (bool,),
    "double": (int, float),
    "float": (int, float),
    "blob": (bytes, bytearray, str),
}

_NUMERIC = frozenset({"integer", "long", "double", "float"})
_INT_BITS = {"integer": 32, "long": 64}  # the API's Integer and Long are Java int and long


def _walk(value: Any, shape: Shape, path: str, issues: list[Issue], *, full: bool) -> None:
    """Check ``value`` against ``shape``. With ``full=False`` only what botocore's validator skips."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, Mapping):
            if full:
                issues.append(Issue(path, f"expected an object, got {_type_word(value)}", WRONG_TYPE))
            return
        members = shape.members
        if full:
            for name in shape.required_members:
                if name not in value:
                    issues.append(Issue(member_path(path, name), f"missing required member {name!r}",
                                        MISSING_REQUIRED))
        for key, item in value.items():
            if key in members:
                _walk(item, members[key], member_path(path, key), issues, full=full)
            elif full:
                issues.append(Issue(member_path(path, key), f"unknown key {key!r} in {shape.name}",
                                    UNKNOWN_KEY))
        return
    if kind == "list":
        if not isinstance(value, list | tuple):
            if full:
                issues.append(Issue(path, f"expected an array, got {_type_word(value)}", WRONG_TYPE))
            return
        _check_bounds(len(value), shape, path, issues, full=full, what="length")
        for index, item in enumerate(value):
            _walk(item, shape.member, f"{path}[{index}]", issues, full=full)
        return
    if kind == "map":
        if not isinstance(value, Mapping):
            if full:
                issues.append(Issue(path, f"expected an object, got {_type_word(value)}", WRONG_TYPE))
            return
        for key, item in value.items():
            _walk(key, shape.key, member_path(path, key), issues, full=full)
            _walk(item, shape.value, member_path(path, key), issues, full=full)
        return
    if kind == "timestamp":
        if full and not _is_timestamp(value):
            issues.append(Issue(path, f"expected a timestamp, got {_type_word(value)} {show_value(value)}",
                                WRONG_TYPE))
        return
    _walk_scalar(value, shape, path, issues, full=full)


def _walk_scalar(value: Any, shape: Shape, path: str, issues: list[Issue], *, full: bool) -> None:
    kind = shape.type_name
    expected = _SCALAR_TYPES.get(kind)
    if expected is None:
        return
    if kind in _NUMERIC and isinstance(value, bool):
        # botocore lets True through as an int; the service does not.
        issues.append(Issue(path, f"expected {kind}, got boolean {value}", WRONG_TYPE))
        return
    if not isinstance(value, expected):
        if full:
            issues.append(Issue(path, f"expected {kind}, got {_type_word(value)} {show_value(value)}",
                                WRONG_TYPE))
        return
    if kind == "string":
        enum = getattr(shape, "enum", None) or []
        if enum and value not in enum:
            issues.append(Issue(path, f"{show_value(value)} is not one of {', '.join(enum)}", BAD_ENUM))
        _check_bounds(len(value), shape, path, issues, full=full, what="length")
    elif kind in _NUMERIC:
        if isinstance(value, float) and value != value:
            issues.append(Issue(path, f"expected {kind}, got NaN", WRONG_TYPE))
            return
        bits = _INT_BITS.get(kind)
        if bits is not None and not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            issues.append(Issue(path, f"{show_value(value)} does not fit the {bits}-bit {kind} that ECS reads",
                                OUT_OF_RANGE))
            return
        _check_bounds(value, shape, path, issues, full=full, what="value")


def _check_bounds(amount: float, shape: Shape, path: str, issues: list[Issue], *, full: bool,
                  what: str) -> None:
    low = shape.metadata.get("min")
    high = shape.metadata.get("max")
    if full and low is not None and amount < low:  # botocore reports minimums on input
        issues.append(Issue(path, f"{what} {show_value(amount)} is below the minimum {low}", OUT_OF_RANGE))
    if high is not None and amount > high:
        issues.append(Issue(path, f"{what} {show_value(amount)} is above the maximum {high}", OUT_OF_RANGE))
