"""Checks on parsed input that recursive code cannot make safely: how deep it nests, how long its numbers are.

Scenario data and task-definition documents are walked by recursive code (pydantic-core, repr, copies).
Input nested thousands of levels deep raises RecursionError there, and an integer of thousands of digits
raises ValueError wherever it is printed; pydantic-core reports some of those on stderr as "Exception
ignored" tracebacks. Walking the input first, with a loop, refuses both at the field where they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

MAX_DEPTH = 64        # real scenarios and task definitions nest fewer than 10 levels
MAX_DIGITS = 1000     # no field takes an integer anywhere near this long; Python prints at most 4,300


def too_deep(value: object, limit: int = MAX_DEPTH) -> tuple[object, ...] | None:
    """The keys and indices leading to the first collection nested more than ``limit`` levels deep,
    or None when ``value`` nests at most that deep. Mappings, lists and tuples count as collections."""
    found = first_problem(value, max_depth=limit, max_digits=None)
    return None if found is None else found[0]


def first_problem(value: object, *, max_depth: int = MAX_DEPTH,
                  max_digits: int | None = MAX_DIGITS) -> tuple[tuple[object, ...], str] | None:
    """The path to, and a description of, the first place (depth first) where ``value`` nests more than
    ``max_depth`` levels or holds an integer (value or mapping key) of more than ``max_digits`` digits."""
    stack: list[tuple[object, tuple[object, ...]]] = [(value, ())]
    while stack:
        node, keys = stack.pop()
        if max_digits is not None and isinstance(node, int) and _digits(node) > max_digits:
            return keys, f"a number of about {_digits(node):,} digits; no field takes one so long"
        if isinstance(node, Mapping):
            if max_digits is not None:
                for key in node:
                    if isinstance(key, int) and _digits(key) > max_digits:
                        return keys, f"a key that is a number of about {_digits(key):,} digits"
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
