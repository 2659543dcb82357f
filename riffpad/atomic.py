"""Files that appear whole or not at all: written aside in the same folder, then renamed.

A DAW watching the takes folder, udev reading its rules, or a crash mid-write never sees
half a file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", *, perms: int | None = None
) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success fsync it and rename it to ``path``.

    The file gets ``perms``, or what a plain ``open`` would give (0666 less the umask);
    mkstemp's 0600 would hide takes from a DAW run as another user. On any exception the
    temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    fd, tmp = temp_beside(path, perms=perms)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise
    fsync_dir(path.parent)  # make the rename itself durable


def temp_beside(path: str | os.PathLike[str], *, perms: int | None = None) -> tuple[int, str]:
    """A new file ``.<name>.XXXXXXXX.tmp`` in ``path``'s folder: (open fd, its path).

    For writers that stream for a long time (``atomic_open`` for the rest); publish it with
    ``publish`` or remove it with ``discard``. Permissions as ``atomic_open`` gives them.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, perms if perms is not None else 0o666 & ~_umask())
    return fd, tmp


def publish(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> None:
    """Rename the finished (already fsynced and closed) ``tmp`` onto ``path``, durably."""
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)


def discard(tmp: str | os.PathLike[str]) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Flush a folder's entries (new names, renames) to disk; best effort."""
    with contextlib.suppress(OSError):
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def write_text(path: str | os.PathLike[str], text: str, *, perms: int | None = None) -> None:
    with atomic_open(path, "w", perms=perms) as fh:
        fh.write(text)
