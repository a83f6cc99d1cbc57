"""How deeply parsed input nests: found with a loop, so input too deep for recursion is refused cleanly.

Scenario data and task-definition documents are walked by recursive code (pydantic-core, repr, copies).
Input nested thousands of levels deep would raise RecursionError there, and pydantic-core reports some
of those on stderr as it unwinds; checking the depth first gives an error at the field where it happens.
"""

from __future__ import annotations

from collections.abc import Mapping

MAX_DEPTH = 64  # real scenarios and task definitions nest fewer than 10 levels


def too_deep(value: object, limit: int = MAX_DEPTH) -> tuple[object, ...] | None:
    """The keys and indices leading to the first collection nested more than ``limit`` levels deep,
    or None when ``value`` nests at most that deep. Mappings, lists and tuples count as collections."""
    stack: list[tuple[object, tuple[object, ...]]] = [(value, ())]
    while stack:
        node, keys = stack.pop()
        if isinstance(node, Mapping):
            children: list[tuple[object, object]] = list(node.items())
        elif isinstance(node, list | tuple):
            children = list(enumerate(node))
        else:
            continue
        if len(keys) >= limit:
            return keys
        stack.extend((child, (*keys, key)) for key, child in reversed(children))
    return None
