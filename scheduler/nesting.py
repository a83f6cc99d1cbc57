"""Checks on parsed input that recursive code cannot make safely: how deep it nests, how long its numbers
are, and whether its text is valid Unicode.

Scenario data and task-definition documents are walked by recursive code (pydantic-core, repr, copies).
Input nested thousands of levels deep raises RecursionError there, and an integer of thousands of digits
raises ValueError wherever it is printed; pydantic-core reports some of those on stderr as "Exception
ignored" tracebacks. JSON's escapes can also make a lone UTF-16 surrogate ("\\ud800"), a string that no
UTF-8 output (a terminal, a results file) can write. Walking the input first, with a loop, refuses all
three at the field where they are.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Mapping

MAX_DEPTH = 64        # real scenarios and task definitions nest fewer than 10 levels
MAX_DIGITS = 1000     # no field takes an integer anywhere near this long; Python prints at most 4,300
_SURROGATE = re.compile("[\ud800-\udfff]")


def too_deep(value: object, limit: int = MAX_DEPTH) -> tuple[object, ...] | None:
    """The keys and indices leading to the first collection nested more than ``limit`` levels deep,
    or None when ``value`` nests at most that deep. Mappings, lists and tuples count as collections."""
    found = first_problem(value, max_depth=limit, max_digits=None, text=False)
    return None if found is None else found[0]


def lone_surrogate(value: object) -> tuple[object, ...] | None:
    """The keys and indices leading to the first text (a value or a mapping key) that holds a lone UTF-16
    surrogate, or None. Check the depth first (``too_deep``): this walk has no depth limit."""
    found = first_problem(value, max_depth=sys.maxsize, max_digits=None, text=True)
    return None if found is None else found[0]


def _bad_text(text: str) -> str | None:
    found = _SURROGATE.search(text)
    if found is None:
        return None
    return (f"text holding a lone UTF-16 surrogate (\\u{ord(found.group()):04x}), which is not valid Unicode; "
            "\\u escapes of surrogates come in high-low pairs")


def first_problem(value: object, *, max_depth: int = MAX_DEPTH, max_digits: int | None = MAX_DIGITS,
                  text: bool = True) -> tuple[tuple[object, ...], str] | None:
    """The path to, and a description of, the first place (depth first) where ``value`` nests more than
    ``max_depth`` levels, holds an integer (value or mapping key) of more than ``max_digits`` digits or,
    with ``text``, a string (value or mapping key) with a lone UTF-16 surrogate."""
    stack: list[tuple[object, tuple[object, ...]]] = [(value, ())]
    while stack:
        node, keys = stack.pop()
        if max_digits is not None and isinstance(node, int) and _digits(node) > max_digits:
            return keys, f"a number of about {_digits(node):,} digits; no field takes one so long"
        if text and isinstance(node, str) and (problem := _bad_text(node)) is not None:
            return keys, problem
        if isinstance(node, Mapping):
            for key in node:
                if max_digits is not None and isinstance(key, int) and _digits(key) > max_digits:
                    return keys, f"a key that is a number of about {_digits(key):,} digits"
                if text and isinstance(key, str) and (problem := _bad_text(key)) is not None:
                    return keys, f"a key: {problem}"
            children: list[tuple[object, object]] = list(node.items())
        elif isinstance(node, list | tuple):
            children = list(enumerate(node))
        else:
            continue
        if len(keys) >= max_depth:
            return keys, f"nested more than {max_depth} levels deep"
        stack.extend((child, (*keys, key)) for key, child in reversed(children))
    return None


def _digits(number: int) -> int:
    """Decimal digits of ``number``, from its bit length (printing it may be impossible)."""
    return max(1, math.ceil(abs(number).bit_length() * math.log10(2)))
