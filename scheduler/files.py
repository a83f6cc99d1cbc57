"""Reading a file the user names (scenario, task definition, catalog, trace) without trusting it.

Only a regular file is read: a FIFO would block forever and a device such as /dev/zero or /dev/urandom
never ends, so both are refused before a byte is read (the file is opened non-blocking, then checked on
its open descriptor, so nothing can swap it in between). Every read is bounded by the caller's size
limit, also for a file that grows while it is read. The caller turns the problem into its own error,
naming the file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path


class UnreadableFile(Exception):
    """Why a file cannot be read, in words that follow its name in an error line (no file content)."""


_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_bounded(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path``, at most ``limit`` of them. Raises FileNotFoundError when
    there is no such file and UnreadableFile for anything else: not a regular file, larger than ``limit``
    bytes, a name the system refuses (too long, a NUL byte), no permission."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise UnreadableFile(f"cannot read the file: {exc.strerror or exc}") from None
    except ValueError as exc:  # a NUL byte in the name
        raise UnreadableFile(f"cannot read the file: {exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
            raise UnreadableFile(f"is {kind}, not a regular file")
        if info.st_size > limit:
            raise UnreadableFile(f"the file is {info.st_size:,} bytes; it may be at most {limit:,}")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    with os.fdopen(fd, "rb", buffering=0) as handle:
        chunks, size = [], 0
        try:
            while size <= limit:
                chunk = handle.read(limit + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        except OSError as exc:
            raise UnreadableFile(f"cannot read the file: {exc.strerror or exc}") from None
    if size > limit:
        raise UnreadableFile(f"the file is larger than {limit:,} bytes, the most it may be")
    return b"".join(chunks)
