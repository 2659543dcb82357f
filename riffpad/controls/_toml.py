"""Read TOML so that every error names the file, the line and what was expected.

tomllib reports syntax errors with a line number; semantic errors (an unknown control,
a value out of range) are found in the parsed dict, so their line is recovered by
scanning the file text for the offending table header and key.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib


class FileFormatError(ValueError):
    """A broken settings file. ``str()`` reads ``FILE:LINE: message``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.message = message
        where = f"{self.path}:{line}" if line else f"{self.path}"
        super().__init__(f"{where}: {message}")


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"""^\s*((?:"[^"]*"|'[^']*'|[A-Za-z0-9_\-]|\s*\.\s*)+?)\s*=""")


def _split_dotted(key: str) -> list[str]:
    """Split a TOML dotted key (``a."b.c".d``) into its parts, unquoted."""
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"|\'([^\']*)\'|([^.\s]+)', key)
    return [a or b or c for a, b, c in parts]


def find_line(text: str, path: tuple[str, ...]) -> int | None:
    """Line (1-based) where ``path`` (table names then key) is set in ``text``.

    Handles ``[a.b]`` headers followed by ``key = ...`` and dotted keys
    (``b.key = ...`` under ``[a]``). Falls back to the closest enclosing table's header
    line, then to None.
    """
    table: list[str] = []
    best: int | None = None
    best_depth = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(raw)
        if header:
            table = _split_dotted(header.group(1))
            full = tuple(table)
        else:
            key = _KEY.match(raw)
            if not key:
                continue
            full = (*table, *_split_dotted(key.group(1)))
        # The line sets the path itself, or a table/inline table that encloses it.
        if full == path[: len(full)] and len(full) > best_depth:
            best, best_depth = number, len(full)
    return best


def read_toml(
    path: Path | str, error: type[FileFormatError] = FileFormatError
) -> tuple[dict[str, Any], str]:
    """Parse ``path``; returns (data, text). Raises ``error`` naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(path, None, "no such file") from None
    except UnicodeDecodeError as exc:
        raise error(path, None, f"not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise error(path, None, f"cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", None) or str(exc)
        if line is None:  # tomllib before 3.14: "... (at line 3, column 7)"
            m = re.search(r"at line (\d+)", str(exc))
            line = int(m.group(1)) if m else None
            if line is None and "end of document" in str(exc):
                line = max(1, len(text.rstrip().splitlines()))
            msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(exc))
        raise error(path, line, f"invalid TOML: {msg}") from None
    except ValueError as exc:  # an integer beyond Python's digit limit: tomllib lets it escape
        line = next(
            (n for n, raw in enumerate(text.splitlines(), 1) if _LONG_NUMBER.search(raw)), None
        )
        raise error(
            path, line, f"invalid TOML: a number far too long to be a setting ({exc})"
        ) from None
    return data, text


_LONG_NUMBER = re.compile(r"[0-9_]{1000,}")


class Located:
    """A parsed TOML file that can raise errors (of its own ``error_cls``) pointing at one
    of its keys."""

    def __init__(
        self,
        path: Path | str,
        data: dict[str, Any],
        text: str,
        error_cls: type[FileFormatError] = FileFormatError,
    ) -> None:
        self.path = Path(path)
        self.data = data
        self.text = text
        self.error_cls = error_cls

    @classmethod
    def read(cls, path: Path | str, error_cls: type[FileFormatError] = FileFormatError):
        """Read and parse ``path``; every error, syntax or semantic, is an ``error_cls``."""
        return cls(path, *read_toml(path, error_cls), error_cls)

    def error(self, keys: tuple[str, ...], message: str) -> FileFormatError:
        return self.error_cls(self.path, find_line(self.text, keys), message)

    def check_header(self, format_: str, version: int) -> None:
        """The optional ``format`` and ``version`` keys, when present, must be these."""
        data = self.data
        if data.get("format", format_) != format_:
            raise self.error(
                ("format",), f'expected format = "{format_}", got {describe(data["format"])}'
            )
        if data.get("version", version) != version:
            raise self.error(
                ("version",), f"expected version = {version}, got {describe(data['version'])}"
            )


def check_number(fail, keys: tuple[str, ...], value: Any, lo, hi, *, integer: bool = False):
    """``value`` if it is a finite number (an integer when ``integer``) in ``lo .. hi``; else
    ``fail(keys, message)`` naming the key, the allowed range and what was found. The one
    number check of every settings file: nan, inf, huge and wrongly typed values all stop
    here, before any arithmetic can raise a bare ValueError or OverflowError."""
    kind = "an integer" if integer else "a number"
    numeric = isinstance(value, int) or (not integer and isinstance(value, float))
    if (
        isinstance(value, bool)
        or not numeric
        or (isinstance(value, float) and not math.isfinite(value))
        or not lo <= value <= hi
    ):
        raise fail(keys, f"{keys[-1]}: expected {kind} {lo} .. {hi}, got {describe(value)}")
    return value if integer else float(value)


def describe(value: Any) -> str:
    """Short, TOML-ish rendering of a value for error messages."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, int) and abs(value) >= 10**15:
        return f"an integer of {len(str(abs(value)))} digits"
    return repr(value)
