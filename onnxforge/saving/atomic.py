"""Crash-safe file writes: a reader sees the old file or the new one, never a torn mix.

The new content goes to a temporary file in the target's own folder (``os.replace`` is only atomic
within one filesystem), is flushed and fsynced, then renamed over the target; the folder is fsynced so
the rename itself survives a power cut. A process killed mid-write leaves the old file untouched plus a
temporary file whose name carries the writer's pid; the next write to the same target removes such
leftovers once their writer is gone (:func:`remove_stale_temps` does it for targets whose names vary).
"""
from __future__ import annotations

__all__ = ["atomic_write", "temp_files_for", "remove_stale_temps"]

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Union

#: What :func:`atomic_write` accepts as content: the bytes themselves, or a function that writes them.
Content = Union[bytes, bytearray, memoryview, Callable[[BinaryIO], object]]

_TMP_SUFFIX = ".onnxforge-tmp"


def _temp_prefix(target: Path) -> str:
    # Hidden, named after the target, so leftovers are easy to recognise and to match to their target.
    return f".{target.name}."


def temp_files_for(path: str | os.PathLike[str]) -> list[Path]:
    """The temporary files that writes to ``path`` have left next to it (normally none).

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> temp_files_for(os.path.join(d, "model.onnx"))
        []
    """
    target = Path(path)
    prefix = _temp_prefix(target)
    try:
        names = os.listdir(target.parent)
    except FileNotFoundError:
        return []
    return sorted(target.parent / n for n in names if n.startswith(prefix) and n.endswith(_TMP_SUFFIX))


def _writer_alive(pid: int) -> bool:
    if pid == os.getpid():
        # Another thread of this process may be writing right now; its own error path cleans up.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError, AttributeError, ValueError):
        # Alive under another user, or a platform where signal 0 means something else: keep the file.
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike[str], targets: Callable[[str], bool]) -> list[Path]:
    """Delete temporary files in ``folder`` left by dead writers to any target whose name ``targets`` accepts.

    :func:`atomic_write` cleans up after earlier writes to the *same* target by itself; this is for
    writers whose targets change name every time (``save(external_data=True)`` writes its data file
    under a fresh name), whose leftovers no later write to the same name would ever match.

    Returns:
        The files removed.

    Example:
        >>> import tempfile
        >>> remove_stale_temps(tempfile.mkdtemp(), lambda name: name.endswith(".data"))
        []
    """
    folder = Path(folder)
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return []
    removed = []
    for name in names:
        if not (name.startswith(".") and name.endswith(_TMP_SUFFIX)):
            continue
        # ".{target}.{pid}.{token}.onnxforge-tmp"
        parts = name[1:-len(_TMP_SUFFIX)].rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or not targets(parts[0]):
            continue
        if not _writer_alive(int(parts[1])):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
                removed.append(folder / name)
    return removed


def _remove_stale_temps(target: Path) -> None:
    """Delete leftovers of writers to ``target`` that died mid-write (SIGKILL, power cut)."""
    remove_stale_temps(target.parent, lambda name: name == target.name)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename durable. Not possible on Windows (no O_DIRECTORY); the rename is still atomic.
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    try:
        fd = os.open(folder, flags)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | os.PathLike[str], data: Content) -> Path:
    """Write ``data`` to ``path`` so that ``path`` holds either its old content or all of the new.

    Args:
        path: The file to create or replace. Its folder must exist. A symlink at ``path`` is replaced by
            a regular file (the link's target is left alone).
        data: The new content: ``bytes`` (or any buffer), or a callable that receives the open binary
            file object and writes to it (for content too large to build in memory first).

    Returns:
        The written path.

    Raises:
        TypeError: If ``data`` is neither bytes-like nor callable.
        Exception: Whatever writing raised; the temporary file is removed first and ``path`` is left
            as it was.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "weights.bin")
        >>> _ = atomic_write(p, b"v1")
        >>> _ = atomic_write(p, lambda f: f.write(b"v2"))
        >>> open(p, "rb").read()
        b'v2'
    """
    if not (isinstance(data, (bytes, bytearray, memoryview)) or callable(data)):
        raise TypeError(
            "atomic_write expects bytes or a callable that writes to a binary file object. "
            f"Received: data of type {type(data).__name__}"
        )
    target = Path(path)
    folder = target.parent
    if not folder.is_dir():
        # Named here: the open() below would report the hidden temporary file, not the caller's path.
        raise FileNotFoundError(errno.ENOENT, f"Cannot write {os.fspath(target)!r}: its folder "
                                f"{os.fspath(folder)!r} does not exist (create it first, as with Keras)",
                                os.fspath(target))
    _remove_stale_temps(target)

    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None

    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        tmp = folder / f"{_temp_prefix(target)}{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}"
        try:
            # 0o666 lets the umask decide, as a plain open() would; mkstemp would force 0o600.
            fd = os.open(tmp, flags, 0o666)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as f:
            if callable(data):
                data(f)
            else:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            # Replacing a file keeps its permissions, as an in-place write would.
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        # BaseException too: a KeyboardInterrupt mid-write must not leave litter either.
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(folder)
    return target
