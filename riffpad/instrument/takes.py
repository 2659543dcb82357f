"""Write takes to the watched folder: `<timestamp>-<n>.wav`, `.png`, `.json`.

A DAW (or any folder watcher) may pick a file up the instant its name appears, so every
file is written aside under a dot-prefixed temporary name in the same folder, fsynced, and
only then given its final name with a hard link (which, like O_EXCL, fails instead of
replacing an existing file). Nothing is ever overwritten: a taken name moves the take to
the next ``n``.

Publish order: JSON, PNG, WAV. The JSON's link is the commit point: the WAV, the file a
DAW keys on, appears last, so a WAV is never visible without its record, even for an
instant and even after ``kill -9``. A crash after the commit leaves the rest of the take in
the writer's temporaries, named after the take; the next start links them into place
(``prepare``), so a committed take is never lost either. See docs/takes.md.
"""

from __future__ import annotations

import errno
import io
import itertools
import json
import logging
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile

from riffpad.atomic import fsync_dir
from riffpad.memory import release_free_memory

TEMP_PREFIX = ".riffpad-"
TEMP_SUFFIX = ".tmp"
# Link fallbacks: filesystems (FAT, some network mounts) without hard links.
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
EXTENSIONS = ("wav", "png", "json")
PUBLISH_ORDER = ("json", "png", "wav")  # the WAV a DAW keys on last
STEM = re.compile(r"\d{8}-\d{6}-\d+")  # 20261205-070102-3

log = logging.getLogger("riffpad.takes")


class TakeWriteError(Exception):
    """A take could not be written; nothing of it was left in the folder."""


@dataclass(frozen=True)
class TakeFiles:
    stem: str
    wav: Path
    png: Path
    json: Path


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    """16-bit PCM WAV: what every DAW imports."""
    buf = io.BytesIO()
    data = np.clip(np.asarray(audio, dtype=np.float32), -1.0, 1.0)
    soundfile.write(buf, data, int(sample_rate), format="WAV", subtype="PCM_16")
    return buf.getvalue()


def png_bytes(image) -> bytes:
    """Lossless PNG, with the image's EXIF (the engine's Riffusion spectrogram tags)."""
    buf = io.BytesIO()
    exif = image.getexif()
    image.save(buf, format="PNG", **({"exif": exif} if exif else {}))
    return buf.getvalue()


def json_bytes(meta: dict) -> bytes:
    return (json.dumps(meta, indent=2, sort_keys=False, default=_json_default) + "\n").encode()


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class TakeWriter:
    """Publishes takes atomically into ``folder``; see the module docstring.

    ``clock`` gives the wall-clock time used in the file name. ``write_file`` can be
    replaced (tests) to slow the write down or to fail like a full disk.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        clock: Callable[[], float] = time.time,
        fsync: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.clock = clock
        self.fsync = fsync
        self._n = itertools.count(1)
        self._temp_ids = itertools.count()
        self.completed: list[str] = []  # takes finished at prepare() for a crashed writer
        self.recorded: list[str] = []  # take WAVs given a recovered record at prepare()

    # -- setup ------------------------------------------------------------------------
    def prepare(self) -> list[Path]:
        """Create the folder, check it is writable, finish what a crashed writer left.

        Takes a dead writer had committed (their JSON published) are completed from its
        temporaries; its other temporaries are removed; a WAV without its record (left by
        a riffpad older than this order) gets one. Returns the temporary files removed.
        Raises TakeWriteError.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise TakeWriteError(f"cannot create the takes folder {self.folder}: {_why(e)}") from e
        if not os.access(self.folder, os.W_OK | os.X_OK):
            raise TakeWriteError(f"the takes folder {self.folder} is not writable")
        removed = self.remove_stale_temps()
        self.recorded = self.record_orphans()
        return removed

    def remove_stale_temps(self) -> list[Path]:
        """Complete the committed takes of dead writers, then drop their temporaries."""
        removed = []
        try:
            entries = sorted(self.folder.iterdir())
        except OSError:
            return removed
        stale = []
        for p in entries:
            name = p.name
            if not (name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)):
                continue
            try:
                pid = int(name[len(TEMP_PREFIX) :].split("-", 1)[0])
            except ValueError:
                continue
            if pid != os.getpid() and not _pid_alive(pid):
                stale.append(p)
        self.completed = self._roll_forward(stale)
        for p in stale:
            try:
                p.unlink()
                removed.append(p)
            except OSError:
                pass
        return removed

    def _roll_forward(self, stale: list[Path]) -> list[str]:
        """Link the PNG and WAV of every take whose JSON a dead writer had published."""
        done = []
        for stem, temps in self._committed(stale):
            linked = False
            for ext in PUBLISH_ORDER[1:]:
                final = self.folder / f"{stem}.{ext}"
                if ext in temps and not final.exists():
                    try:
                        _link_exclusive(temps[ext], final)
                        linked = True
                    except OSError as e:
                        log.warning("could not complete take %s: %s", stem, _why(e))
                        break
            if linked:
                log.warning("completed take %s, cut short by a crash", stem)
                done.append(stem)
        if done and self.fsync:
            fsync_dir(self.folder)
        return done

    def record_orphans(self) -> list[str]:
        """Give a record to each take WAV without one (a crash of an older riffpad that
        published the JSON last): what the WAV itself says, marked as recovered."""
        done = []
        try:
            wavs = sorted(self.folder.glob("*.wav"))
        except OSError:
            return done
        for wav in wavs:
            stem = wav.stem
            record = wav.with_suffix(".json")
            if not STEM.fullmatch(stem) or record.exists():
                continue
            meta: dict = {
                "take": stem,
                "files": {
                    ext: f"{stem}.{ext}"
                    for ext in EXTENSIONS
                    if ext == "json" or wav.with_suffix(f".{ext}").exists()
                },
                "recovered": "the record was lost in a crash; only the audio is known",
            }
            try:
                info = soundfile.info(str(wav))
                meta["audio"] = {
                    "sample_rate": info.samplerate,
                    "frames": info.frames,
                    "seconds": round(info.frames / info.samplerate, 4),
                }
            except Exception as e:  # unreadable: the record says so
                meta["audio"] = {"error": str(e)}
            try:
                tmp = self._write_temp("json", json_bytes(meta))
                try:
                    _link_exclusive(tmp, record)
                finally:
                    _unlink_quiet(tmp)
            except OSError as e:
                log.warning("take %s has no record and none could be written: %s", stem, _why(e))
                continue
            log.warning("take %s had no record: wrote a recovered one", stem)
            done.append(stem)
        return done

    def _committed(self, temps: list[Path]) -> list[tuple[str, dict[str, Path]]]:
        """(stem, {ext: temporary}) of the takes among ``temps`` whose record is out: the
        writer's JSON temporary is the published JSON (one file, two names)."""
        parts: dict[tuple[str, str], dict[str, Path]] = {}
        for p in temps:  # .riffpad-<pid>-<stem>.<ext>.tmp
            core = p.name[len(TEMP_PREFIX) : -len(TEMP_SUFFIX)]
            rest, _, ext = core.rpartition(".")
            pid, _, stem = rest.partition("-")
            if STEM.fullmatch(stem) and ext in EXTENSIONS:
                parts.setdefault((pid, stem), {})[ext] = p
        return [
            (stem, group)
            for (_, stem), group in parts.items()
            if "json" in group and _same_file(group["json"], self.folder / f"{stem}.json")
        ]

    def remove_own_temps(self) -> None:
        """Drop this process's temporaries (a hard quit mid-write), but those of a take
        already committed: the next start completes it. Signal-safe enough: listdir,
        stat and unlink."""
        prefix = f"{TEMP_PREFIX}{os.getpid()}-"
        try:
            names = os.listdir(self.folder)
        except OSError:
            return
        mine = [
            self.folder / name
            for name in names
            if name.startswith(prefix) and name.endswith(TEMP_SUFFIX)
        ]
        keep = {p for _, group in self._committed(mine) for p in group.values()}
        for p in mine:
            if p not in keep:
                _unlink_quiet(p)

    # -- writing ----------------------------------------------------------------------
    def write(self, audio: np.ndarray, sample_rate: int, image, meta: dict) -> TakeFiles:
        """Write one take and return its final paths. ``meta`` gets ``take`` and ``files``.

        Raises TakeWriteError (disk full, folder gone or not writable, ...) after removing
        everything of this take, temporary or published.
        """
        try:
            payloads = {"wav": wav_bytes(audio, sample_rate), "png": png_bytes(image)}
        except Exception as e:  # encoding failed: nothing touched the folder yet
            raise TakeWriteError(f"could not encode the take: {e}") from e
        when = self.clock()
        temps: dict[str, Path] = {}
        try:
            for ext in ("wav", "png"):
                temps[ext] = self._write_temp(ext, payloads[ext])
            return self._publish(when, temps, meta)
        except OSError as e:
            raise TakeWriteError(f"could not write a take to {self.folder}: {_why(e)}") from e
        finally:
            for p in temps.values():
                _unlink_quiet(p)
            del payloads
            release_free_memory()  # the encoded files, and what the last takes let go of

    def _temp_name(self, tag: str, ext: str) -> Path:
        return self.folder / f"{TEMP_PREFIX}{os.getpid()}-{tag}.{ext}{TEMP_SUFFIX}"

    def _write_temp(self, ext: str, data: bytes, tag: str | None = None) -> Path:
        path = self._temp_name(tag or str(next(self._temp_ids)), ext)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            self.write_file(fd, data)
            if self.fsync:
                os.fsync(fd)
        except BaseException:
            os.close(fd)
            _unlink_quiet(path)
            raise
        os.close(fd)
        return path

    @staticmethod
    def write_file(fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    def _publish(self, when: float, temps: dict[str, Path], meta: dict) -> TakeFiles:
        """Name the temporaries after a free stem, then link JSON, PNG, WAV in that order."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(when))
        while True:
            n = next(self._n)
            stem = f"{stamp}-{n}"
            final = {ext: self.folder / f"{stem}.{ext}" for ext in EXTENSIONS}
            if any(p.exists() for p in final.values()):
                continue
            # Temporaries named after the take: the next start can finish a committed one.
            for ext in ("wav", "png"):
                named = self._temp_name(stem, ext)
                os.rename(temps[ext], named)
                temps[ext] = named
            full = dict(meta)
            full["take"] = stem
            full["files"] = {ext: final[ext].name for ext in EXTENSIONS}
            temps["json"] = self._write_temp("json", json_bytes(full), tag=stem)
            published: list[Path] = []
            try:
                for ext in PUBLISH_ORDER:
                    _link_exclusive(temps[ext], final[ext])
                    published.append(final[ext])
            except FileExistsError:
                for p in reversed(published):  # another writer took this stem: move on
                    _unlink_quiet(p)
                _unlink_quiet(temps.pop("json"))  # its record names the lost stem
                continue
            except BaseException:
                for p in reversed(published):
                    _unlink_quiet(p)
                raise
            if self.fsync:
                fsync_dir(self.folder)
            return TakeFiles(stem, final["wav"], final["png"], final["json"])


def _link_exclusive(src: Path, dst: Path) -> None:
    """Give ``src`` the name ``dst``; FileExistsError rather than replacing ``dst``."""
    try:
        os.link(src, dst)
        return
    except OSError as e:
        if e.errno not in _NO_LINK:
            raise
    # No hard links here: reserve the name with O_EXCL, then replace the empty placeholder.
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.close(fd)
    try:
        os.replace(src, dst)
    except BaseException:
        _unlink_quiet(dst)
        raise


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _unlink_quiet(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _why(e: OSError) -> str:
    if e.errno == errno.ENOSPC:
        return "the disk is full"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied (folder not writable)"
    return e.strerror or str(e)
