"""A results folder replaced as a whole: locked, written beside itself, swapped in at the end.

A run, a sweep or a report never writes into the folder a reader sees while it works. It writes a fresh
*staging* folder beside it (``.<name>.neuron-sim-XXXX`` in the same parent), then exchanges the two in one
step, so that an interruption at any moment (Ctrl-C, SIGTERM, SIGKILL, a full disk) leaves either the
complete earlier results or the complete new ones; a staging folder left by a killed run is removed by
the next run into the same folder.

The marker ``.neuron-sim`` is the manifest: the kind of results (``run``, ``sweep``) and every file this
tool wrote there. Only those files are ever deleted or replaced: an unmarked folder that holds anything
is refused unless ``force``; in a folder that holds other files, the tool's files are moved in beside
them one by one (each file whole, the completion file last) and nothing else is touched. Nothing inside
a results folder is followed when it is a symbolic link: entries are inspected with ``lstat`` and opened
relative to a folder descriptor with ``O_NOFOLLOW``.

A lock (``flock`` on the folder) makes a second run into the same folder stop with one line.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

from scheduler.errors import NeuronSimError

try:  # POSIX only; elsewhere folders are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

MARKER = ".neuron-sim"
STAGING = ".neuron-sim-"  # staging folders: .<name>.neuron-sim-XXXX beside the folder, or inside it
MAX_NAME_BYTES = 100
# The files this tool writes, for folders marked before the marker listed them (a plain-text marker).
KNOWN_FILES = frozenset({
    "summary.json", "tasks.parquet", "timeline.parquet", "describe_tasks.json",
    "describe_container_instances.json", "events.json", "scaling_events.parquet",
    "capacity_reservation.parquet", "sweep.parquet", "sweep_summary.parquet", "sweep_summary.json",
    "sweep.json", "report.html", "report.md", "plan.parquet", "plan.json", "plan_cache.jsonl",
})
# moved in last: their presence says the folder is complete
COMPLETION_FILES = ("summary.json", "sweep.json", "plan.json")
# Results that another run may replace without --force: only a run replacing a run. A sweep (hours of
# work) or a folder of another kind is replaced only when the user says so.
# A plan replacing a plan loses nothing: it reads the earlier plan's cache of evaluated points first.
REPLACEABLE = frozenset({("run", "run"), ("snapshot", "snapshot"), ("device-sets", "device-sets"), ("plan", "plan")})
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
DIRECTORY = getattr(os, "O_DIRECTORY", 0)


class OutputError(NeuronSimError):
    """The results folder cannot be written."""


def safe_folder_name(name: str) -> str:
    """A folder name for a scenario ``name``: one path component, never ``.``/``..``/hidden, no NUL, no
    separators or characters Windows refuses, at most 100 bytes of UTF-8. Stable: the same name gives
    the same folder; a name that had to change gets a short hash of the original, so two names that
    clean to the same text keep apart."""
    out = []
    for ch in name:
        if ch in '/\\:*?"<>|' or (unicodedata.category(ch)[0] in "CZ" and ch != " "):
            out.append("_")
        else:
            out.append(ch)
    cleaned = "".join(out).strip(" .")
    if cleaned.startswith("-"):
        cleaned = "_" + cleaned[1:]
    changed = cleaned != name
    while len(cleaned.encode("utf-8")) > MAX_NAME_BYTES - 9:
        cleaned, changed = cleaned[:-1], True
    if not cleaned:
        cleaned, changed = "scenario", True
    if changed:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cleaned = f"{cleaned.rstrip(' .')}-{digest}"
    return cleaned


# --- the manifest -------------------------------------------------------------------------------------

class Manifest:
    """What the marker says: the kind of results and the files this tool wrote (relative, '/'-separated)."""

    def __init__(self, kind: str | None, files: frozenset[str], listed: bool) -> None:
        self.kind, self.files, self.listed = kind, files, listed

    @classmethod
    def read(cls, folder_fd: int, where: str) -> Manifest | None:
        """The manifest of the folder open as ``folder_fd``; None when it has no marker."""
        try:
            fd = os.open(MARKER, os.O_RDONLY | NOFOLLOW, dir_fd=folder_fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise OutputError(f"{MARKER} is a symbolic link; refusing to use the folder", file=where) from None
            raise
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OutputError(f"{MARKER} is not a regular file; refusing to use the folder", file=where)
            raw = os.read(fd, 1 << 20)
        finally:
            os.close(fd)
        try:
            data = json.loads(raw.decode("utf-8"))
            files = data["files"]
            if data.get("tool") != "neuron-sim" or not isinstance(files, list):
                raise ValueError
            clean = frozenset(f for f in files if isinstance(f, str) and _relative_ok(f))
            return cls(str(data.get("kind") or ""), clean, True)
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            # an earlier version's plain-text marker: it listed nothing, so only the known names are ours
            return cls(None, KNOWN_FILES, False)

    @staticmethod
    def text(kind: str, files: list[str]) -> str:
        return json.dumps({"tool": "neuron-sim", "kind": kind, "files": sorted(files),
                           "note": "results of neuron-sim: the files listed here were written by it"},
                          indent=2) + "\n"


def _relative_ok(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and "\0" not in name and all(p not in ("", ".", "..") for p in parts)


# --- descriptor-relative file operations (never follow a link inside a results folder) -----------------

def open_folder(name: str | os.PathLike, dir_fd: int | None = None, *, where: str = "") -> int:
    """A descriptor of a real folder (not a link to one)."""
    try:
        return os.open(name, os.O_RDONLY | DIRECTORY | NOFOLLOW, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise OutputError(f"{os.fsdecode(name)} is a symbolic link or not a folder; refusing to follow it",
                              file=where or None) from None
        raise


def write_file(folder_fd: int, name: str, data: bytes) -> None:
    """Write ``name`` in the folder whole: a new temporary file (never through a link), renamed over it."""
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o666, dir_fd=folder_fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.rename(tmp, name, src_dir_fd=folder_fd, dst_dir_fd=folder_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=folder_fd)
        raise


def remove_file(folder_fd: int, name: str) -> None:
    """Remove ``name`` (the link itself when it is one); missing is fine; folders are left alone."""
    with contextlib.suppress(FileNotFoundError, IsADirectoryError, PermissionError):
        if not stat.S_ISDIR(os.lstat(name, dir_fd=folder_fd).st_mode):
            os.unlink(name, dir_fd=folder_fd)


@contextlib.contextmanager
def subfolder(folder_fd: int, name: str, *, create: bool, where: str) -> Iterator[int]:
    """A descriptor of the real sub-folder ``name`` (created when asked); a link there is refused."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o777, dir_fd=folder_fd)
    fd = open_folder(name, folder_fd, where=where)
    try:
        yield fd
    finally:
        os.close(fd)


def update_manifest(folder: Path, added: list[str], removed: list[str]) -> None:
    """Add and remove files in a folder's manifest (a ``report`` written into finished results)."""
    fd = open_folder(folder, where=str(folder))
    try:
        manifest = Manifest.read(fd, str(folder))
        kind = (manifest.kind if manifest else None) or ("sweep" if "sweep.json" in os.listdir(fd) else "run")
        files = set(manifest.files if manifest and manifest.listed else _present_known(fd)) | set(added)
        write_file(fd, MARKER, Manifest.text(kind, sorted(files - set(removed))).encode())
    finally:
        os.close(fd)


def _present_known(folder_fd: int) -> set[str]:
    return {name for name in os.listdir(folder_fd) if name in KNOWN_FILES}


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest; None when it has no marker (results of something else, or nothing)."""
    fd = open_folder(folder, where=str(folder))
    try:
        return Manifest.read(fd, str(folder))
    finally:
        os.close(fd)


# --- locking --------------------------------------------------------------------------------------------

def _lock(fd: int, where: str) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise OutputError("another neuron-sim run, sweep or report is writing this folder; wait for it to end "
                          "or choose another --out", file=where) from None
    except OSError as exc:  # a file system without locks (some network mounts): go on unlocked
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise


def _same(fd: int, path: Path) -> bool:
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino)


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[int]:
    """Hold the lock of an existing results folder (``report`` uses it); yields the folder's descriptor."""
    fd = open_folder(folder, where=str(folder))
    try:
        _lock(fd, str(folder))
        yield fd
    finally:
        os.close(fd)


# --- the swap -------------------------------------------------------------------------------------------

_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2``); False where the system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd = -100
    result = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _walk(folder_fd: int, prefix: str = "") -> list[str]:
    """Every regular file under a staging folder, relative; links and other odd entries are refused."""
    files = []
    for name in sorted(os.listdir(folder_fd)):
        info = os.lstat(name, dir_fd=folder_fd)
        if stat.S_ISDIR(info.st_mode):
            with subfolder(folder_fd, name, create=False, where=name) as sub:
                files += _walk(sub, f"{prefix}{name}/")
        elif stat.S_ISREG(info.st_mode):
            files.append(prefix + name)
    return files


class ResultsFolder:
    """The folder a run or sweep replaces, for the time it takes: ``staging`` is where to write.

    ``with ResultsFolder(out, "run", force=...) as folder: ...write into folder.staging...;
    folder.commit()``. Leaving the block without ``commit()`` (an exception, Ctrl-C) discards the
    staging folder and leaves the earlier results as they were; an ``OSError`` inside the block (a full
    disk, a folder gone) becomes one :class:`OutputError` line.
    """

    def __init__(self, out: str | Path, kind: str, *, force: bool = False) -> None:
        self.kind, self.force = kind, force
        self.requested = Path(out)
        self.where = str(out)
        self.path = self.requested
        self.staging: Path = self.requested
        self._fd: int | None = None
        self._staging_fd: int | None = None
        self._manifest: Manifest | None = None
        self._in_place = False
        self._foreign: frozenset[str] = frozenset()  # entries of the folder neuron-sim did not write
        self._created = False
        self.committed = False

    # -- entering: check, lock, clean up, stage
    def __enter__(self) -> ResultsFolder:
        try:
            self._enter()
        except OutputError:
            self._release()
            raise
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
            self._release()
            raise OutputError(f"cannot use as a results folder: {_reason(exc)}", file=self.where) from None
        return self

    def _enter(self) -> None:
        path = self.requested
        if path.is_symlink():  # --out itself may be a link the user made: use what it points to
            path = path.resolve()
        path = Path(os.path.abspath(path))
        if path.name in ("", ".", ".."):
            raise OutputError("is not a folder name a run can replace", file=self.where)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        for _attempt in range(10):
            try:
                os.mkdir(path)
                self._created = True
            except FileExistsError:
                pass
            fd = open_folder(path, where=self.where)
            try:
                _lock(fd, self.where)
            except BaseException:
                os.close(fd)
                raise
            if _same(fd, path):  # still the folder at that name (not one a finished run swapped away)
                self._fd = fd
                break
            os.close(fd)
        else:
            raise OutputError("the folder keeps changing under this run", file=self.where)
        self._manifest = Manifest.read(self._fd, self.where)
        foreign = self._foreign_entries()
        self._check_replace(foreign)
        self._foreign = frozenset(foreign)
        self._refuse_clash(self._foreign & KNOWN_FILES)  # before the run: these names are certain to be written
        self._remove_stale_staging()
        self._in_place = (bool(foreign) or os.path.ismount(path) or not os.access(path.parent, os.W_OK)
                          or _holds_cwd(path))
        if self._in_place:
            self._check_targets(["figures/"])  # before the run, not after it: a linked figures/ is refused
        parent = path if self._in_place else path.parent
        prefix = STAGING if self._in_place else f".{path.name[:60]}{STAGING}"
        self.staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(self.staging, 0o777 & ~umask)  # mkdtemp makes 0700; results are an ordinary folder
        self._staging_fd = open_folder(self.staging, where=self.where)
        _lock(self._staging_fd, self.where)
        write_file(self._staging_fd, MARKER, Manifest.text(self.kind, []).encode())

    def _foreign_entries(self) -> list[str]:
        """Entries of the folder that are not this tool's files (links are never the tool's)."""
        assert self._fd is not None
        mine = self._manifest.files if self._manifest else frozenset()
        foreign = []
        for name in sorted(os.listdir(self._fd)):
            if name == MARKER or name.startswith(STAGING):
                continue
            info = os.lstat(name, dir_fd=self._fd)
            if stat.S_ISDIR(info.st_mode) and any(f.startswith(name + "/") for f in mine):
                with subfolder(self._fd, name, create=False, where=self.where) as sub:
                    foreign += [f"{name}/{entry}" for entry in sorted(os.listdir(sub))
                                if f"{name}/{entry}" not in mine
                                or not stat.S_ISREG(os.lstat(entry, dir_fd=sub).st_mode)]
            elif name not in mine or not stat.S_ISREG(info.st_mode):
                foreign.append(name)
        return foreign

    def _check_replace(self, foreign: list[str]) -> None:
        if foreign and self._manifest is None and not self.force:  # marked once, its other files are kept
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise OutputError(f"the folder holds files that are not neuron-sim results ({shown}); choose "
                              "another --out, or pass --force to write beside them (they are kept)",
                              file=self.where)
        manifest = self._manifest
        if manifest is None or self.force:
            return
        earlier = manifest.kind or ("sweep" if "sweep.json" in manifest.files & self._present() else "run")
        has_results = bool(self._present() & (manifest.files | KNOWN_FILES))
        if has_results and (earlier, self.kind) not in REPLACEABLE:
            raise OutputError(f"holds the results of an earlier {earlier}; pass --force to replace them, "
                              "or choose another --out", file=self.where)

    def _present(self) -> set[str]:
        assert self._fd is not None
        return set(os.listdir(self._fd))

    def _remove_stale_staging(self) -> None:
        """Staging folders of killed runs into this folder (beside it or inside it), unless in use."""
        assert self._fd is not None
        beside = f".{self.path.name[:60]}{STAGING}"
        for parent_fd, prefix, close in ((self._fd, STAGING, False), (None, beside, True)):
            if parent_fd is None:
                try:
                    parent_fd = open_folder(self.path.parent, where=self.where)
                except OutputError:
                    continue
            try:
                for name in os.listdir(parent_fd):
                    if name.startswith(prefix) and len(name) == len(prefix) + 8:
                        self._remove_staging(parent_fd, name)
            finally:
                if close:
                    os.close(parent_fd)

    def _remove_staging(self, parent_fd: int, name: str) -> None:
        try:
            fd = open_folder(name, parent_fd)
        except (OSError, OutputError):
            return
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return  # another process is still writing it
            if Manifest.read(fd, name) is None:
                return  # not a staging folder of this tool
        except OutputError:
            return
        finally:
            os.close(fd)
        with contextlib.suppress(OSError):
            shutil.rmtree(name, dir_fd=parent_fd)  # fd-based: never follows a link inside

    # -- leaving
    def keep(self, name: str, data: bytes) -> None:
        """Write ``name`` into the results folder itself now, not at commit, and list it in the marker: for a
        cache that must outlive an interrupted run (``plan_cache.jsonl``). The staging folder should hold
        the same file when committed."""
        assert self._fd is not None
        write_file(self._fd, name, data)
        listed = set(self._manifest.files) if self._manifest is not None else set()
        if name not in listed:
            listed.add(name)
            write_file(self._fd, MARKER, Manifest.text(self.kind, sorted(listed)).encode())
            self._manifest = Manifest(self.kind, frozenset(listed), True)

    def commit(self) -> Path:
        """Make the staged results the folder's, in one exchange (or file by file beside foreign files)."""
        assert self._staging_fd is not None and self._fd is not None
        try:
            files = [f for f in _walk(self._staging_fd) if f != MARKER and not f.startswith(".")]
            write_file(self._staging_fd, MARKER, Manifest.text(self.kind, files).encode())
            if self._in_place:
                self._commit_in_place(files)
            else:
                self._commit_swap()
        except OSError as exc:
            raise OutputError(f"cannot write results: {_reason(exc)}", file=self.where) from None
        self.committed = True
        return self.path

    def _commit_swap(self) -> None:
        old_is_empty = not self._present()
        if old_is_empty:
            os.rename(self.staging, self.path)  # over an empty folder: one step
        elif not _exchange(self.staging, self.path):
            aside = self.staging.with_name(self.staging.name + "-old")
            os.rename(self.path, aside)
            os.rename(self.staging, self.path)
            os.rename(aside, self.staging)
        if old_is_empty:
            return
        # the earlier results now sit at the staging name, and self._fd still points at them: delete the
        # files this tool wrote there; anything a user added meanwhile stays (and is said)
        self._delete_listed(self._fd, self._manifest.files if self._manifest else KNOWN_FILES)
        try:
            os.rmdir(self.staging)
        except OSError:
            print(f"neuron-sim: files added to the earlier results while this run worked were kept in "
                  f"{self.staging}", file=sys.stderr)

    def _check_targets(self, files: list[str]) -> None:
        """Every folder the files go into is a real folder (or absent), and no file lands on a folder."""
        assert self._fd is not None
        for name in files:
            head, _, leaf = name.rpartition("/")
            try:
                info = os.lstat(head or leaf, dir_fd=self._fd)
            except FileNotFoundError:
                continue
            if head and not stat.S_ISDIR(info.st_mode):
                raise OutputError(f"{head} is a symbolic link or not a folder; refusing to write through it",
                                  file=self.where)
            if not head and stat.S_ISDIR(info.st_mode):
                raise OutputError(f"{leaf} is a folder where neuron-sim writes a file; move it away",
                                  file=self.where)

    def _refuse_clash(self, clash: frozenset[str] | set[str]) -> None:
        """A file neuron-sim did not write is never replaced: one that bears a name of its results is refused."""
        if clash:
            shown = ", ".join(sorted(clash)[:3]) + (f" and {len(clash) - 3} more" if len(clash) > 3 else "")
            raise OutputError(f"holds {shown}, which neuron-sim did not write and would replace; move "
                              f"{'it' if len(clash) == 1 else 'them'} away or choose another --out", file=self.where)

    def _commit_in_place(self, files: list[str]) -> None:
        assert self._fd is not None and self._staging_fd is not None
        self._refuse_clash({f for f in files if (f in self._foreign or f.partition("/")[0] in self._foreign)
                            and _exists(self._fd, f)})
        self._check_targets(files)  # all checks before the first move
        order = sorted(files, key=lambda f: (f in COMPLETION_FILES, f))
        earlier = self._manifest.files if self._manifest else frozenset()  # an old marker: the known names
        # the earlier completion file goes first, so that no moment shows the old summary over new tables
        for name in COMPLETION_FILES:
            if name in earlier:
                remove_file(self._fd, name)
        for name in order:
            head, _, leaf = name.rpartition("/")
            if head:
                with subfolder(self._fd, head, create=True, where=self.where) as dst, \
                        subfolder(self._staging_fd, head, create=False, where=self.where) as src:
                    os.rename(leaf, leaf, src_dir_fd=src, dst_dir_fd=dst)
            else:
                os.rename(name, name, src_dir_fd=self._staging_fd, dst_dir_fd=self._fd)
        self._delete_listed(self._fd, earlier - set(files))
        os.rename(MARKER, MARKER, src_dir_fd=self._staging_fd, dst_dir_fd=self._fd)
        with contextlib.suppress(OSError):
            shutil.rmtree(self.staging.name, dir_fd=self._fd)

    def _delete_listed(self, folder_fd: int, files: frozenset[str] | set[str]) -> None:
        for name in sorted(files):
            head, _, leaf = name.rpartition("/")
            if not head:
                remove_file(folder_fd, name)
                continue
            try:
                with subfolder(folder_fd, head, create=False, where=self.where) as sub:
                    remove_file(sub, leaf)
                    empty = not os.listdir(sub)
                if empty:
                    os.rmdir(head, dir_fd=folder_fd)
            except (OSError, OutputError):
                continue
        remove_file(folder_fd, MARKER)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
                 ) -> None:
        try:
            if not self.committed and self._staging_fd is not None:
                parent = self.path if self._in_place else self.path.parent
                with contextlib.suppress(OSError, OutputError):
                    parent_fd = open_folder(parent)
                    try:
                        shutil.rmtree(self.staging.name, dir_fd=parent_fd)
                    finally:
                        os.close(parent_fd)
                if self._created and not self._present_safe():
                    with contextlib.suppress(OSError):
                        os.rmdir(self.path)  # the empty folder this run made to hold its lock
        finally:
            self._release()
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write results: {_reason(exc)}", file=self.where) from None

    def _present_safe(self) -> bool:
        try:
            return bool(self._present())
        except (OSError, AssertionError):
            return True

    def _release(self) -> None:
        for fd in (self._staging_fd, self._fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._staging_fd = self._fd = None


def _exists(folder_fd: int, name: str) -> bool:
    """Whether ``name`` (relative, perhaps in a subfolder) is there, links included."""
    try:
        os.lstat(name, dir_fd=folder_fd)
    except OSError:
        return False
    return True


def _holds_cwd(path: Path) -> bool:
    """Whether the working folder is ``path`` or inside it (then the folder is not swapped away under it)."""
    try:
        cwd = Path.cwd()
    except OSError:
        return False
    return cwd == path or path in cwd.parents


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__
