"""The ECS cluster query language (CQL): parse a ``memberOf`` expression once, evaluate it on every
container instance at once.

``parse()`` turns an expression such as ``attribute:ecs.instance-type =~ inf2.* and not(task:group ==
database)`` into a ``Query`` (a small tree of predicates). ``Query.evaluate()`` answers it for all
instances of an ``InstanceTable`` as one boolean numpy mask. Subtrees that cannot change while tasks
come and go (everything except ``task:group`` and ``runningTasksCount``) are cached by the caller's
``static_cache`` dict under their canonical text, so the placement core pays for them once per cluster
change rather than once per placement.

The tokenizer and the recursive-descent parser are hand-written; every error is a ``QueryError`` with a
1-based column and what was expected there. The readings chosen where the ECS documentation is silent
(regex full match, case sensitivity, missing attributes, dates, versions) are in docs/cql.md.
"""

from __future__ import annotations

import difflib
import re
import string
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from functools import lru_cache
from typing import NoReturn, Protocol, runtime_checkable

import numpy as np

from scheduler.errors import QueryError

__all__ = [
    "BUILTIN_ATTRIBUTES",
    "DEFAULT_OPTIONS",
    "DYNAMIC_SUBJECTS",
    "MAX_EXPRESSION_LENGTH",
    "SUBJECTS",
    "CqlOptions",
    "InstanceTable",
    "Op",
    "Query",
    "parse",
    "validate_expression",
]

MAX_EXPRESSION_LENGTH = 2000  # PlacementConstraint.expression in the ECS API model
MAX_NAME_LENGTH = 128         # attribute names
MAX_NESTING = 100             # parentheses and `not`s; keeps the recursive parser far from Python's limit

BUILTIN_ATTRIBUTES = (
    "ecs.instance-type", "ecs.availability-zone", "ecs.os-type", "ecs.os-family",
    "ecs.cpu-architecture", "ecs.ami-id", "ecs.vpc-id", "ecs.subnet-id",
)
SUBJECTS = ("task:group", "agentConnected", "agentVersion", "ec2InstanceId", "registeredAt",
            "runningTasksCount")
DYNAMIC_SUBJECTS = frozenset({"task:group", "runningTasksCount"})  # change whenever a task starts or stops

_ATTRIBUTE_PREFIX = "attribute:"
_WORD_CHARS = frozenset(string.ascii_letters + string.digits + "._-:/*@\\+")
_NAME_CHARS = frozenset(string.ascii_letters + string.digits + "-_/\\.")
_BARE = re.compile(r"[A-Za-z0-9._\-:/*@\\+]+")
_KEYWORDS = frozenset({"and", "or", "not"})


@dataclass(frozen=True, slots=True)
class CqlOptions:
    """Readings of the points the ECS documentation leaves open (see docs/cql.md)."""

    regex_full_match: bool = True   # Java Pattern.matcher(s).matches(); False: find() anywhere
    case_sensitive: bool = True     # string equality, lists, ordering and regexes
    missing_attribute_negations_match: bool = False  # does `attribute:x != v` match instances without x?

    @property
    def tag(self) -> str:
        """A short label of the non-default choices ('' for the defaults)."""
        parts = []
        if not self.regex_full_match:
            parts.append("regex-find")
        if not self.case_sensitive:
            parts.append("case-insensitive")
        if self.missing_attribute_negations_match:
            parts.append("missing-negations-match")
        return ",".join(parts)


DEFAULT_OPTIONS = CqlOptions()


@runtime_checkable
class InstanceTable(Protocol):
    """What evaluation needs from the cluster: one column per subject, one row per container instance.

    An implementation may also offer ``attribute_codes(name) -> (codes, values)``: an int array of codes
    per instance and the value of each code (None = absent). When present it is used instead of
    ``attribute_column``, so per-value work (regex, case folding) runs once per distinct value.
    """

    def __len__(self) -> int: ...

    def attribute_column(self, name: str) -> np.ndarray:
        """dtype=object: the attribute's value per instance, None where the instance lacks it."""
        ...

    def subject_column(self, subject: str) -> np.ndarray:
        """'ec2InstanceId', 'agentVersion': object str arrays; 'agentConnected': bool;
        'registeredAt': float64 epoch seconds; 'runningTasksCount': int64."""
        ...

    def group_mask(self, group: str) -> np.ndarray:
        """bool: the instance runs at least one task of this task group."""
        ...


class Op(Enum):
    """A comparison operator; the value is its canonical spelling."""

    EQ = "=="
    NE = "!="
    GT = ">"
    GE = ">="
    LT = "<"
    LE = "<="
    EXISTS = "exists"
    NOT_EXISTS = "!exists"
    IN = "in"
    NOT_IN = "!in"
    MATCHES = "=~"
    NOT_MATCHES = "!~"


_SPELLINGS = {op.value: op for op in Op}
_TWO_CHAR_OPS = frozenset({"==", "!=", ">=", "<=", "=~", "!~"})
_WORD_OPS = {
    "equals": Op.EQ, "not_equals": Op.NE, "greater_than": Op.GT, "greater_than_equal": Op.GE,
    "less_than": Op.LT, "less_than_equal": Op.LE, "exists": Op.EXISTS, "not_exists": Op.NOT_EXISTS,
    "in": Op.IN, "not_in": Op.NOT_IN, "matches": Op.MATCHES, "not_matches": Op.NOT_MATCHES,
}
_POSITIVE = {Op.NE: Op.EQ, Op.NOT_IN: Op.IN, Op.NOT_MATCHES: Op.MATCHES, Op.NOT_EXISTS: Op.EXISTS}
_ORDERING = (Op.GT, Op.GE, Op.LT, Op.LE)
_EQUALITY = (Op.EQ, Op.NE, Op.IN, Op.NOT_IN)
_REGEX = (Op.MATCHES, Op.NOT_MATCHES)

# The documented table; task:group is narrowed to what group_mask can answer (see docs/cql.md).
_VALID_OPS: dict[str, tuple[Op, ...]] = {
    "agentConnected": (*_EQUALITY, *_REGEX),
    "ec2InstanceId": (*_EQUALITY, *_REGEX),
    "agentVersion": (Op.EQ, Op.NE, *_ORDERING),
    "registeredAt": (Op.EQ, Op.NE, *_ORDERING),
    "runningTasksCount": (Op.EQ, Op.NE, *_ORDERING),
    "task:group": _EQUALITY,
    _ATTRIBUTE_PREFIX: tuple(Op),
}


# ------------------------------------------------------------------------------------------ tokens
@dataclass(frozen=True, slots=True)
class _Token:
    kind: str    # word string regex op and or not ( ) [ ] , end
    text: str    # as written
    start: int   # 0-based offset into the expression
    value: str = ""  # the contents of a quoted string or regex

    def describe(self) -> str:
        if self.kind == "end":
            return "end of expression"
        shown = self.text if len(self.text) <= 40 else self.text[:37] + "..."
        return f"the quoted value {shown}" if self.kind == "string" else f"'{shown}'"


_UNEXPECTED_HINTS = {
    "=": "; use '==' to compare",
    "&": "; use '&&' or 'and'",
    "|": "; use '||' or 'or'",
    "~": "; use '=~' to match a regular expression",
}


class _Scanner:
    """Splits text[start:end] into tokens on demand; the parser switches it to regex mode after `=~`."""

    def __init__(self, text: str, start: int, end: int) -> None:
        self.text = text
        self.pos = start
        self.end = end
        self._peeked: _Token | None = None

    def fail(self, message: str, offset: int) -> NoReturn:
        raise QueryError(message, expression=self.text, column=offset + 1)

    def peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> _Token:
        token = self.peek()
        self._peeked = None
        return token

    def _skip_space(self) -> None:
        while self.pos < self.end and self.text[self.pos].isspace():
            self.pos += 1

    def _word_end(self, i: int) -> int:
        while i < self.end and self.text[i] in _WORD_CHARS:
            i += 1
        return i

    def _emit(self, kind: str, start: int, stop: int, value: str = "") -> _Token:
        self.pos = stop
        return _Token(kind, self.text[start:stop], start, value)

    def _scan(self) -> _Token:
        self._skip_space()
        start, text = self.pos, self.text
        if start >= self.end:
            return _Token("end", "", self.end)
        char = text[start]
        pair = text[start:start + 2] if start + 1 < self.end else char
        if pair in _TWO_CHAR_OPS:
            return self._emit("op", start, start + 2)
        if pair == "&&":
            return self._emit("and", start, start + 2)
        if pair == "||":
            return self._emit("or", start, start + 2)
        if char == "!":
            stop = self._word_end(start + 1)
            if text[start + 1:stop] in ("exists", "in"):
                return self._emit("op", start, stop)
            return self._emit("not", start, start + 1)
        if char in "<>":
            return self._emit("op", start, start + 1)
        if char in "()[],":
            return self._emit(char, start, start + 1)
        if char in "'\"":
            close = text.find(char, start + 1, self.end)
            if close < 0:
                self.fail(f"unterminated quoted value: no closing {char} for the quote opened here", start)
            return self._emit("string", start, close + 1, text[start + 1:close])
        if char in _WORD_CHARS:
            return self._emit("word", start, self._word_end(start))
        self.fail(f"unexpected character {char!r}{_UNEXPECTED_HINTS.get(char, '')}", start)

    def regex(self) -> _Token:
        """The argument of `=~`: a quoted string, or raw text up to whitespace, an unbalanced ')',
        or '&&' / '||' outside any group. Escapes and character classes are stepped over."""
        assert self._peeked is None
        self._skip_space()
        start, text = self.pos, self.text
        if start >= self.end or text[start] in "'\"),]":
            return self.next()
        i, depth, in_class = start, 0, False
        while i < self.end:
            char = text[i]
            if char == "\\":
                i += 2
                continue
            if in_class:
                in_class = char != "]"
                i += 1
                continue
            if char.isspace():
                break
            if char in "'\"":
                self.fail("a quote inside an unquoted regular expression; quote the whole regular "
                          "expression instead", i)
            if char == "[":
                in_class = True
                i += 1
                if text[i:i + 1] == "^":
                    i += 1
                if text[i:i + 1] == "]":  # a leading ']' is a literal member of the class
                    i += 1
                continue
            if char == "(":
                depth += 1
            elif char == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and text[i:i + 2] in ("&&", "||"):
                break
            i += 1
        stop = min(i, self.end)
        if stop == start:  # '&&' or '||' right after the operator: let the parser report it
            return self.next()
        return self._emit("regex", start, stop, text[start:stop])


# ------------------------------------------------------------------------------ value parsing
_INT = re.compile(r"[0-9]+")
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_VERSION = re.compile(r"v?([0-9]+(?:\.[0-9]+)*)")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
                   r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(Z|[+-][0-9]{2}:[0-9]{2})?)?")
_DAY = 86400.0
_MISSING = 2  # code of an instance that lacks the value (or whose value cannot be compared)
_BIG = 2 ** 62  # larger counts compare the same as this one: no instance runs that many tasks


def _version_key(text: str, *, strict: bool) -> tuple[int, ...] | None:
    """1.14.5 -> (1, 14, 5); trailing zeros dropped so 1.9 == 1.9.0. Instance-side values are read
    leniently (a suffix such as '-dev' is ignored); arguments must be plain dotted numbers."""
    match = _VERSION.fullmatch(text) if strict else _VERSION.match(text)
    if match is None:
        return None
    try:
        parts = [int(p) for p in match.group(1).split(".")]
    except ValueError:  # more digits than int() accepts
        return None
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def _date_interval(text: str) -> tuple[float, float] | None:
    """The span a date argument denotes, [start, end) in epoch seconds: a whole UTC day for
    2018-06-18, one second for 2018-06-18T22:28:28 (UTC unless an offset is given)."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    try:
        if hour is None:
            start = datetime(int(year), int(month), int(day), tzinfo=UTC).timestamp()
            return start, start + _DAY
        tz = UTC
        if zone not in (None, "Z"):
            offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            tz = timezone(offset if zone[0] == "+" else -offset)
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), tzinfo=tz)
        start = moment.timestamp()
    except (ValueError, OverflowError):
        return None
    return start, start + 1.0


def _java_class_operation(pattern: str) -> int | None:
    """Offset of a Java-only character-class construct: a nested class ``[a[b]]`` or an intersection
    ``[a-z&&[^m]]``. Python's re reads both as literal characters, so accepting them would quietly
    change the meaning."""
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if not in_class:
            if char == "[":
                in_class = True
                i += 1
                if pattern[i:i + 1] == "^":
                    i += 1
                if pattern[i:i + 1] == "]":
                    i += 1
                continue
        elif char == "]":
            in_class = False
        elif char == "[" or pattern.startswith("&&", i):
            return i
        i += 1
    return None


def _sign(a: object, b: object) -> int:
    return (a > b) - (a < b)  # type: ignore[operator]


def _format_value(value: str) -> str:
    if _BARE.fullmatch(value) and value not in _KEYWORDS:
        return value
    quote = '"' if "'" in value else "'"
    return f"{quote}{value}{quote}"


# ---------------------------------------------------------------------------------- the tree
class _Node:
    """One subtree: its canonical text, the subjects it reads, whether it is static, how to compute it."""

    __slots__ = ("key", "static", "subjects", "text")

    def __init__(self, text: str, subjects: frozenset[str], options: CqlOptions) -> None:
        self.text = text
        self.subjects = subjects
        self.static = not (subjects & DYNAMIC_SUBJECTS)
        self.key = text if options == DEFAULT_OPTIONS else f"cql[{options.tag}] {text}"

    def mask(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        if cache is None or not self.static:
            return self.compute(table, cache)
        hit = cache.get(self.key)
        if hit is None or len(hit) != len(table):
            hit = self.compute(table, None)
            hit.setflags(write=False)  # shared by every later placement until the cache is cleared
            cache[self.key] = hit
        return hit

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        raise NotImplementedError


class _And(_Node):
    __slots__ = ("children",)

    def __init__(self, children: list[_Node], options: CqlOptions) -> None:
        self.children = tuple(children)
        text = " and ".join(f"({c.text})" if isinstance(c, _Or) else c.text for c in children)
        super().__init__(text, frozenset().union(*(c.subjects for c in children)), options)

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        first, *rest = self.children
        out = np.array(first.mask(table, cache), dtype=bool)
        for child in rest:
            if not out.any():
                break
            np.logical_and(out, child.mask(table, cache), out=out)
        return out


class _Or(_Node):
    __slots__ = ("children",)

    def __init__(self, children: list[_Node], options: CqlOptions) -> None:
        self.children = tuple(children)
        text = " or ".join(c.text for c in children)
        super().__init__(text, frozenset().union(*(c.subjects for c in children)), options)

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        first, *rest = self.children
        out = np.array(first.mask(table, cache), dtype=bool)
        for child in rest:
            if out.all():
                break
            np.logical_or(out, child.mask(table, cache), out=out)
        return out


class _Not(_Node):
    __slots__ = ("child",)

    def __init__(self, child: _Node, options: CqlOptions) -> None:
        self.child = child
        super().__init__(f"not({child.text})", child.subjects, options)

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        return np.logical_not(self.child.mask(table, cache))


def _predicate_text(subject: str, op: Op, values: tuple[str, ...]) -> str:
    if op in (Op.EXISTS, Op.NOT_EXISTS):
        return f"{subject} {op.value}"
    if op in (Op.IN, Op.NOT_IN):
        return f"{subject} {op.value} [{', '.join(_format_value(v) for v in values)}]"
    return f"{subject} {op.value} {_format_value(values[0])}"


def _per_value(table: InstanceTable, attribute: str | None, subject: str,
               fn: Callable[[str], int]) -> np.ndarray:
    """fn applied once per distinct value of a string column; _MISSING where the value is absent."""
    codes_of = getattr(table, "attribute_codes", None) if attribute is not None else None
    if codes_of is not None:
        codes, values = codes_of(attribute)
        lookup = np.array([_MISSING if v is None else fn(v) for v in values], dtype=np.int8)
        return lookup[np.asarray(codes)] if len(lookup) else np.full(len(codes), _MISSING, np.int8)
    column = table.attribute_column(attribute) if attribute is not None else table.subject_column(subject)
    column = np.asarray(column, dtype=object)
    out = np.full(len(column), _MISSING, dtype=np.int8)
    present = np.not_equal(column, None)
    if present.any():
        uniques, inverse = np.unique(column[present].astype(str), return_inverse=True)
        out[present] = np.array([fn(u) for u in uniques.tolist()], dtype=np.int8)[inverse]
    return out


class _StringTest(_Node):
    """attribute:NAME and ec2InstanceId: equality, lists, regexes and existence on a string column."""

    __slots__ = ("attribute", "op", "options", "subject", "test")

    def __init__(self, subject: str, attribute: str | None, op: Op, values: tuple[str, ...],
                 matcher: Callable[[str], bool] | None, options: CqlOptions) -> None:
        self.subject, self.attribute, self.op, self.options = subject, attribute, op, options
        positive = _POSITIVE.get(op, op)
        if positive is Op.MATCHES:
            assert matcher is not None
            self.test: Callable[[str], int] = lambda s: int(matcher(s))
        elif positive is Op.EXISTS:
            self.test = lambda s: 1
        elif options.case_sensitive:
            wanted = frozenset(values)
            self.test = lambda s: int(s in wanted)
        else:
            folded = frozenset(v.casefold() for v in values)
            self.test = lambda s: int(s.casefold() in folded)
        super().__init__(_predicate_text(subject, op, values), frozenset({subject}), options)

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        codes = _per_value(table, self.attribute, self.subject, self.test)
        if self.op is Op.NOT_EXISTS:
            return codes == _MISSING
        positive = codes == 1
        if self.op not in _POSITIVE:
            return positive
        negated = ~positive
        if not self.options.missing_attribute_negations_match:
            negated &= codes != _MISSING
        return negated


def _apply_ordering(op: Op, signs: np.ndarray) -> np.ndarray:
    """signs: -1, 0, +1 for below, at, above the argument; anything else is not comparable."""
    if op is Op.EQ:
        return signs == 0
    if op is Op.NE:
        return (signs == -1) | (signs == 1)
    if op is Op.LT:
        return signs == -1
    if op is Op.LE:
        return (signs == -1) | (signs == 0)
    if op is Op.GT:
        return signs == 1
    return (signs == 0) | (signs == 1)  # GE


class _OrderedTest(_Node):
    """agentVersion, and ordering operators on attributes: compared once per distinct value."""

    __slots__ = ("op", "signs")

    def __init__(self, subject: str, op: Op, value: str, signs: Callable[[InstanceTable], np.ndarray],
                 options: CqlOptions) -> None:
        self.op, self.signs = op, signs
        super().__init__(_predicate_text(subject, op, (value,)), frozenset({subject}), options)

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        return _apply_ordering(self.op, self.signs(table))


class _IntervalTest(_Node):
    """runningTasksCount and registeredAt: the argument denotes a span [low, high) of a numeric column
    (one count; one second or one whole day), so `<=` means "before the span ends"."""

    __slots__ = ("high", "low", "op", "subject")

    def __init__(self, subject: str, op: Op, value: str, low: float, high: float,
                 options: CqlOptions) -> None:
        self.subject, self.op, self.low, self.high = subject, op, low, high
        super().__init__(_predicate_text(subject, op, (value,)), frozenset({subject}), options)

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        x = np.asarray(table.subject_column(self.subject))
        op, low, high = self.op, self.low, self.high
        if op is Op.EQ:
            return (x >= low) & (x < high)
        if op is Op.NE:
            return (x < low) | (x >= high)
        if op is Op.LT:
            return x < low
        if op is Op.LE:
            return x < high
        if op is Op.GT:
            return x >= high
        return x >= low  # GE; NaN compares false everywhere


class _ConnectedTest(_Node):
    __slots__ = ("op", "when_false", "when_true")

    def __init__(self, op: Op, values: tuple[str, ...], matcher: Callable[[str], bool] | None,
                 options: CqlOptions) -> None:
        self.op = op
        if matcher is not None:
            self.when_true, self.when_false = matcher("true"), matcher("false")
        else:
            self.when_true, self.when_false = "true" in values, "false" in values
        super().__init__(_predicate_text("agentConnected", op, values), frozenset({"agentConnected"}),
                         options)

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        connected = np.asarray(table.subject_column("agentConnected"), dtype=bool)
        positive = np.where(connected, self.when_true, self.when_false)
        return positive if self.op not in _POSITIVE else ~positive


class _GroupTest(_Node):
    """task:group: an instance's groups are the groups of the tasks it runs; `!=` and `!in` are the
    complement of `==` and `in`, so they hold on instances that run nothing (anti-affinity)."""

    __slots__ = ("groups", "op")

    def __init__(self, op: Op, values: tuple[str, ...], options: CqlOptions) -> None:
        self.op, self.groups = op, tuple(dict.fromkeys(values))
        super().__init__(_predicate_text("task:group", op, values), frozenset({"task:group"}), options)

    def compute(self, table: InstanceTable, cache: dict | None) -> np.ndarray:
        first, *rest = self.groups
        out = np.array(table.group_mask(first), dtype=bool)
        for group in rest:
            np.logical_or(out, table.group_mask(group), out=out)
        return out if self.op not in _POSITIVE else np.logical_not(out, out=out)


# ---------------------------------------------------------------------------------- the parser
_MEMBER_OF = re.compile(r"\s*memberof\s*\((.*)\)\s*", re.IGNORECASE | re.DOTALL)


class _Parser:
    """expr := and_expr {or and_expr}; and_expr := unary {and unary};
    unary := not unary | '(' expr ')' | subject operator [argument]."""

    def __init__(self, text: str, options: CqlOptions, start: int = 0, end: int | None = None) -> None:
        self.text = text
        self.options = options
        self.scan = _Scanner(text, start, len(text) if end is None else end)

    def fail(self, message: str, offset: int) -> NoReturn:
        self.scan.fail(message, offset)

    def parse(self) -> _Node:
        node = self._or(0)
        token = self.scan.peek()
        if token.kind == ")":
            self.fail("found ')' with no matching '('", token.start)
        if token.kind != "end":
            self.fail(f"expected 'and', 'or' or end of expression, found {token.describe()}", token.start)
        return node

    def _is(self, token: _Token, word: str) -> bool:
        return token.kind == word or (token.kind == "word" and token.text == word)

    def _or(self, depth: int, after: _Token | None = None) -> _Node:
        children = [self._and(depth, after)]
        while self._is(self.scan.peek(), "or"):
            children.append(self._and(depth, self.scan.next()))
        return children[0] if len(children) == 1 else _Or(self._flatten(children, _Or), self.options)

    def _and(self, depth: int, after: _Token | None) -> _Node:
        children = [self._unary(depth, after)]
        while self._is(self.scan.peek(), "and"):
            children.append(self._unary(depth, self.scan.next()))
        return children[0] if len(children) == 1 else _And(self._flatten(children, _And), self.options)

    @staticmethod
    def _flatten(children: list[_Node], kind: type[_And] | type[_Or]) -> list[_Node]:
        flat: list[_Node] = []
        for child in children:
            flat.extend(child.children if isinstance(child, kind) else (child,))
        return flat

    def _unary(self, depth: int, after: _Token | None) -> _Node:
        token = self.scan.peek()
        if depth >= MAX_NESTING:
            self.fail(f"expression nested too deeply (more than {MAX_NESTING} levels of parentheses "
                      "and 'not')", token.start)
        if self._is(token, "not"):
            self.scan.next()
            return _Not(self._unary(depth + 1, token), self.options)
        if token.kind == "(":
            self.scan.next()
            node = self._or(depth + 1, token)
            close = self.scan.next()
            if close.kind != ")":
                self.fail(f"expected 'and', 'or' or ')' to close the '(' at column {token.start + 1}, "
                          f"found {close.describe()}", close.start)
            return node
        if token.kind == "word" and token.text not in _KEYWORDS:
            return self._predicate()
        where = f" after '{after.text}'" if after is not None else ""
        self.fail(f"expected a subject, 'not' or '('{where}, found {token.describe()}", token.start)

    # ----------------------------------------------------------------------------- predicates
    def _predicate(self) -> _Node:
        subject_token = self.scan.next()
        subject, attribute = self._subject(subject_token)
        valid = _VALID_OPS[_ATTRIBUTE_PREFIX if attribute is not None else subject]
        op_token = self.scan.next()
        op = self._operator(op_token, subject, valid)
        if op in (Op.EXISTS, Op.NOT_EXISTS):
            values: tuple[_Token, ...] = ()
        elif op in (Op.IN, Op.NOT_IN):
            values = self._list(op_token)
        elif op in _REGEX:
            values = (self._regex_token(op_token),)
        else:
            values = (self._value(op_token),)
        return self._build(subject, attribute, op, values)

    def _subject(self, token: _Token) -> tuple[str, str | None]:
        word = token.text
        if word.startswith(_ATTRIBUTE_PREFIX):
            name = word[len(_ATTRIBUTE_PREFIX):]
            name_start = token.start + len(_ATTRIBUTE_PREFIX)
            if not name:
                self.fail("expected an attribute name after 'attribute:'", name_start)
            for i, char in enumerate(name):
                if char not in _NAME_CHARS:
                    self.fail(f"invalid character {char!r} in attribute name '{name}' (allowed: letters, "
                              "digits and - _ / \\ .)", name_start + i)
            if len(name) > MAX_NAME_LENGTH:
                self.fail(f"attribute name is {len(name)} characters long; the limit is {MAX_NAME_LENGTH}",
                          name_start)
            return word, name
        if word in SUBJECTS:
            return word, None
        after = self.scan.peek()
        if word.lower() == "memberof" and after.kind == "(":
            self.fail("'memberOf' is a placement constraint type, not part of the expression; write only "
                      "the expression inside memberOf(...)", token.start)
        hint = _suggest_subject(word)
        self.fail(f"unknown subject '{word}'" + (f" (did you mean '{hint}'?)" if hint else ""), token.start)

    def _operator(self, token: _Token, subject: str, valid: tuple[Op, ...]) -> Op:
        op: Op | None = None
        if token.kind == "op":
            op = _SPELLINGS.get(token.text)
        elif token.kind == "word":
            op = _WORD_OPS.get(token.text)
        if op is None:
            listed = ", ".join(o.value for o in valid)
            hint = ""
            if token.kind == "word" and token.text.lower() in _WORD_OPS:
                hint = f" (operators are lower case: '{token.text.lower()}')"
            self.fail(f"expected an operator after '{subject}' ({listed}), found {token.describe()}{hint}",
                      token.start)
        if op not in valid:
            listed = ", ".join(o.value for o in valid)
            self.fail(f"operator '{token.text}' cannot be used with {subject}; valid operators: {listed}",
                      token.start)
        return op

    def _value(self, after: _Token) -> _Token:
        token = self.scan.next()
        if token.kind == "string" or (token.kind == "word" and token.text not in _KEYWORDS):
            return token
        if token.kind == "word":
            self.fail(f"expected a value after '{after.text}', found the keyword '{token.text}' "
                      "(quote it to use it as a value)", token.start)
        self.fail(f"expected a value after '{after.text}', found {token.describe()}", token.start)

    def _list(self, after: _Token) -> tuple[_Token, ...]:
        opening = self.scan.next()
        if opening.kind != "[":
            self.fail(f"expected a list such as [a, b] after '{after.text}', found {opening.describe()}",
                      opening.start)
        items = [self._value(opening)]
        while True:
            token = self.scan.next()
            if token.kind == "]":
                return tuple(items)
            if token.kind != ",":
                self.fail(f"expected ',' or ']' in the list opened at column {opening.start + 1}, "
                          f"found {token.describe()}", token.start)
            items.append(self._value(token))

    def _regex_token(self, after: _Token) -> _Token:
        token = self.scan.regex()
        if token.kind == "string" or (token.kind == "regex" and token.text not in _KEYWORDS):
            return token
        self.fail(f"expected a regular expression after '{after.text}', found {token.describe()}",
                  token.start)

    def _matcher(self, token: _Token) -> Callable[[str], bool]:
        flags = 0 if self.options.case_sensitive else re.IGNORECASE
        body_start = token.start + (1 if token.kind == "string" else 0)
        java_only = _java_class_operation(token.value)
        if java_only is not None:
            self.fail(f"invalid regular expression '{token.value}': nested character classes and '&&' "
                      "intersections are Java-only and not supported here", body_start + java_only)
        try:
            with warnings.catch_warnings():
                # re warns that '||', '--', '~~' in a class may change meaning one day; Java reads
                # them literally, as re does today
                warnings.simplefilter("ignore", FutureWarning)
                pattern = re.compile(token.value, flags)
        except re.error as exc:
            offset = body_start + (exc.pos or 0)
            self.fail(f"invalid regular expression '{token.value}': {exc.msg}", offset)
        except (OverflowError, RecursionError, ValueError) as exc:
            self.fail(f"invalid regular expression '{token.value}': {exc}", body_start)
        run = pattern.fullmatch if self.options.regex_full_match else pattern.search
        return lambda s: run(s) is not None

    # ------------------------------------------------------------------------------- leaves
    def _build(self, subject: str, attribute: str | None, op: Op, tokens: tuple[_Token, ...]) -> _Node:
        opts = self.options
        values = tuple(t.value if t.kind in ("string", "regex") else t.text for t in tokens)
        matcher = self._matcher(tokens[0]) if op in _REGEX else None
        if subject == "task:group":
            return _GroupTest(op, values, opts)
        if subject == "agentConnected":
            if matcher is None:
                values = tuple(self._boolean(t, v) for t, v in zip(tokens, values, strict=True))
            return _ConnectedTest(op, values, matcher, opts)
        if op in _ORDERING or subject in ("agentVersion", "registeredAt", "runningTasksCount"):
            return self._ordered(subject, attribute, op, tokens[0], values[0])
        return _StringTest(subject, attribute, op, values, matcher, opts)

    def _boolean(self, token: _Token, value: str) -> str:
        if value.lower() not in ("true", "false"):
            self.fail(f"expected true or false for agentConnected, found {token.describe()}", token.start)
        return value.lower()

    def _ordered(self, subject: str, attribute: str | None, op: Op, token: _Token, value: str) -> _Node:
        if subject == "runningTasksCount":
            if not _INT.fullmatch(value):
                self.fail(f"expected a whole number for runningTasksCount, found {token.describe()}",
                          token.start)
            count = min(int(value), _BIG)
            return _IntervalTest(subject, op, str(int(value)), count, count + 1, self.options)
        if subject == "registeredAt":
            span = _date_interval(value)
            if span is None:
                self.fail("expected a date such as 2018-06-18, 2018-06-18T22:28:28, 2018-06-18T22:28:28Z "
                          f"or 2018-06-18T22:28:28+00:00 for registeredAt, found {token.describe()}",
                          token.start)
            return _IntervalTest(subject, op, value, *span, self.options)
        signs: Callable[[InstanceTable], np.ndarray]
        if subject == "agentVersion":
            wanted = _version_key(value, strict=True)
            if wanted is None:
                self.fail(f"expected a version such as 1.14.5 for agentVersion, found {token.describe()}",
                          token.start)

            def compare(s: str) -> int:
                key = _version_key(s, strict=False)
                return _MISSING if key is None else _sign(key, wanted)

            def signs(table: InstanceTable) -> np.ndarray:
                return _per_value(table, None, "agentVersion", compare)
        else:
            signs = self._attribute_ordering(attribute, value)
        return _OrderedTest(subject, op, value, signs, self.options)

    def _attribute_ordering(self, attribute: str | None, value: str) -> Callable[[InstanceTable], np.ndarray]:
        """Numbers compare as numbers (instances whose value is not a number do not match); anything
        else compares as text."""
        compare: Callable[[str], int]
        if _NUMBER.fullmatch(value):
            number = float(value)

            def compare(s: str) -> int:
                return _sign(float(s), number) if _NUMBER.fullmatch(s) else _MISSING
        elif self.options.case_sensitive:
            def compare(s: str) -> int:
                return _sign(s, value)
        else:
            folded = value.casefold()

            def compare(s: str) -> int:
                return _sign(s.casefold(), folded)
        return lambda table: _per_value(table, attribute, "", compare)


def _suggest_subject(word: str) -> str | None:
    by_lower = {s.lower(): s for s in SUBJECTS}
    lowered = word.lower()
    if lowered in by_lower:
        return by_lower[lowered]
    if lowered.startswith(_ATTRIBUTE_PREFIX):
        return _ATTRIBUTE_PREFIX + word[len(_ATTRIBUTE_PREFIX):]
    close = difflib.get_close_matches(lowered, list(by_lower), n=1, cutoff=0.75)
    if close:
        return by_lower[close[0]]
    if len(word) <= MAX_NAME_LENGTH and all(c in _NAME_CHARS for c in word):
        return _ATTRIBUTE_PREFIX + word
    return None


# ------------------------------------------------------------------------------------ queries
@dataclass(frozen=True, eq=False)
class Query:
    """A parsed expression. ``text`` is the expression as written; ``str(query)`` its canonical form."""

    text: str
    options: CqlOptions
    _root: _Node = field(repr=False)

    @property
    def canonical(self) -> str:
        return self._root.text

    @property
    def is_static(self) -> bool:
        """True when no part depends on task:group or runningTasksCount."""
        return self._root.static

    @property
    def subjects(self) -> frozenset[str]:
        return self._root.subjects

    def evaluate(self, table: InstanceTable, static_cache: dict | None = None) -> np.ndarray:
        """Which instances satisfy the expression, as a fresh bool array of len(table).

        With ``static_cache``, each maximal static subtree's mask is stored under its canonical text
        and reused until the caller clears the dict (it must when instances or attributes change)."""
        return np.array(self._root.mask(table, static_cache), dtype=bool)

    def __str__(self) -> str:
        return self._root.text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Query):
            return NotImplemented
        return (self.canonical, self.options) == (other.canonical, other.options)

    def __hash__(self) -> int:
        return hash((self.canonical, self.options))


def parse(expression: str, options: CqlOptions = DEFAULT_OPTIONS) -> Query:
    """Parse a cluster-query-language expression; raises QueryError with the column of the problem."""
    if not isinstance(expression, str):
        raise QueryError(f"expression must be a string, not {type(expression).__name__}")
    if not isinstance(options, CqlOptions):
        raise TypeError(f"options must be CqlOptions, not {type(options).__name__}")
    return _parse_cached(expression, options)


def validate_expression(expression: str, options: CqlOptions = DEFAULT_OPTIONS) -> None:
    """Raise QueryError if the expression does not parse."""
    parse(expression, options)


@lru_cache(maxsize=4096)
def _parse_cached(expression: str, options: CqlOptions) -> Query:
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise QueryError(f"expression is {len(expression)} characters long; the limit is "
                         f"{MAX_EXPRESSION_LENGTH}", expression=expression, column=MAX_EXPRESSION_LENGTH + 1)
    if not expression.strip():
        raise QueryError("empty expression: expected a subject such as attribute:ecs.instance-type",
                         expression=expression, column=1)
    wrapped = _MEMBER_OF.fullmatch(expression)
    if wrapped is not None:
        _reject_member_of(expression, options, wrapped)
    return Query(expression, options, _Parser(expression, options).parse())


def _reject_member_of(expression: str, options: CqlOptions, wrapped: re.Match[str]) -> NoReturn:
    inner = wrapped.group(1)
    column = len(expression) - len(expression.lstrip()) + 1
    message = "the memberOf(...) wrapper is not part of the expression; write only what is inside it"
    try:
        _Parser(expression, options, wrapped.start(1), wrapped.end(1)).parse()
    except QueryError as inner_error:
        raise QueryError(f"{message}; the inside also has an error at {inner_error.message}",
                         expression=expression, column=column) from None
    raise QueryError(f"{message}: {inner.strip()}", expression=expression, column=column)
