"""SIGTERM handled as Ctrl-C is: ``timeout``, containers and batch schedulers stop a run with SIGTERM.

Inside a simulation the engine turns either signal into partial results; anywhere else in a command,
:func:`terminate_as_interrupt` makes SIGTERM raise :class:`Terminated` (a ``KeyboardInterrupt``), so the
same clean-up runs, and the command exits with 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM).
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class Terminated(KeyboardInterrupt):
    """The process got SIGTERM."""


def exit_code(signum: int | None) -> int:
    """The shell's convention: 128 + the signal number."""
    return 128 + int(signum if signum is not None else signal.SIGINT)


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """For the block: SIGTERM raises :class:`Terminated` (only in the main thread; elsewhere a no-op)."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
