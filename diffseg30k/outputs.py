"""Output folders every command writes: checked up front, one writer at a time, write failures as one line.

- :class:`OutputError` is the one-line error of an output that cannot be written (the CLI prints it
  without a traceback and exits 2); :func:`output_error` turns an ``OSError`` (read-only file system,
  disk full, a path under a regular file, ...) into one.
- :func:`check_output_dir` refuses an impossible output folder before any work is done.
- :func:`output_lock` is the one-writer-per-folder lock: a ``.NAME.lock`` file *beside* the output
  (never in a cache folder, so runs with different caches still see each other), held with ``fcntl``.
- :func:`printable` escapes file names that are not valid UTF-8 for messages and JSON records.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

#: errno values that mean "this output cannot be written" rather than a bug.
OUTPUT_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR, errno.EACCES,
                 errno.EPERM, errno.EEXIST, errno.ENAMETOOLONG, errno.EFBIG}

#: errno values of a disk that takes no more data: never the fault of one item of the work.
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class OutputError(ValueError):
    """An output that cannot be written; the message names the path and what is wrong."""


class OutputBusy(OutputError):
    """Another run holds the output folder's lock."""


def printable(path: str | os.PathLike) -> str:
    """``path`` as text safe to print or store as UTF-8: undecodable bytes become ``\\xNN`` escapes."""
    text = os.fspath(path)
    if isinstance(text, bytes):
        return text.decode("utf-8", "backslashreplace")
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return os.fsencode(text).decode("utf-8", "backslashreplace")


def output_error(err: OSError, path: str | os.PathLike | None = None) -> OutputError:
    """A one-line :class:`OutputError` for an ``OSError`` met while writing (``path``: the output)."""
    where = printable(err.filename if err.filename is not None else (path or "output"))
    reason = {errno.ENOSPC: "disk full (no space left on device)", errno.EDQUOT: "disk quota exceeded",
              errno.EROFS: "read-only file system",
              errno.ENOTDIR: "a part of the path is a file, not a folder",
              errno.EACCES: "permission denied", errno.EPERM: "operation not permitted"
              }.get(err.errno, err.strerror or str(err))
    return OutputError(f"{where}: cannot write ({reason})")


def _first_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(path.anchor or ".")


def check_output_dir(path: str | os.PathLike, what: str = "output folder", create: bool = False) -> Path:
    """Refuse an output folder that cannot be written, with one line naming it; returns the path.

    Checks: a usable name (not ``.``'s empty name, not the root), not an existing file, no regular
    file among its parents, the nearest existing folder writable and not on a read-only file system.
    ``create`` makes the folder (and its parents).
    """
    path = Path(path)
    resolved = path.resolve()
    if not resolved.name:
        raise OutputError(f"{path}: cannot be used as the {what} (give a folder name, e.g. ./out)")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{printable(path)}: exists and is a file, not a folder (the {what} must be "
                          "a folder)")
    base = _first_existing(resolved)
    if not base.is_dir():
        raise OutputError(f"{printable(path)}: cannot create the {what}: {printable(base)} is a file, "
                          "not a folder")
    with contextlib.suppress(OSError, AttributeError):
        if os.statvfs(base).f_flag & os.ST_RDONLY:
            raise OutputError(f"{printable(path)}: cannot write the {what} ({printable(base)} is on a "
                              "read-only file system)")
    if not os.access(base, os.W_OK | os.X_OK):
        raise OutputError(f"{printable(path)}: cannot write the {what} (permission denied on "
                          f"{printable(base)})")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise output_error(err, path) from err
    return path


def lock_path(output: str | os.PathLike) -> Path:
    """The lock file of an output folder: ``.NAME.lock`` beside it."""
    output = Path(output).resolve()
    return output.with_name(f".{output.name}.lock")


@contextlib.contextmanager
def output_lock(output: str | os.PathLike, command: str, wait: bool = False) -> Iterator[Path]:
    """Hold the one-writer lock of ``output`` for the block.

    ``wait=False`` raises :class:`OutputBusy` at once when another run holds it; ``wait=True`` waits
    for it (saying so on stderr). The lock file is removed on release.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield Path(output)
        return
    path = lock_path(output)
    check_output_dir(output, "output folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise output_error(err, output) from err
    while True:
        try:
            handle = open(path, "a+")  # noqa: SIM115 - held for the whole block
        except OSError as err:
            raise output_error(err, path) from err
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            if not wait:
                handle.close()
                raise OutputBusy(f"{printable(output)}: is being written by another run ({holder}; lock "
                                 f"{printable(path)}); wait for it to finish or use another output folder"
                                 ) from None
            print(f"waiting for {holder} to finish writing {printable(output)} ...", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:  # the holder we waited for may have removed the file: lock the one now at the path
            same = os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
        time.sleep(0.01)
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"{command}, pid {os.getpid()}")
        handle.flush()
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()
        handle.close()


@contextlib.contextmanager
def shared_output_lock(output: str | os.PathLike, command: str) -> Iterator[None]:
    """:func:`output_lock` for a job of several processes (``accelerate launch``): the main process
    checks the folder and holds the lock, and every process raises its error (no rank left waiting)."""
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    state = PartialState()
    with contextlib.ExitStack() as stack:
        message: list[str | None] = [None]
        if state.is_main_process:
            try:
                check_output_dir(output, "output folder")
                stack.enter_context(output_lock(output, command))
            except OutputError as err:
                message = [str(err)]
        if state.num_processes > 1:
            broadcast_object_list(message)
        if message[0]:
            raise (OutputBusy if "another run" in message[0] else OutputError)(message[0])
        yield
