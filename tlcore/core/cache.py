"""The home's cache folder (`TLCORE_HOME/cache/`: decoded images, backbone features), bounded.

Every file below the cache folder is an entry, named by its path there
(`features/<key>.npy`, `images/<key>.npz`); its modification time is its last use, and a
read touches it (`touch`). After each write, `enforce()` deletes the least recently used
entries until the total is at most `TLCORE_CACHE_MAX`: bytes, or with a K, M, G or T suffix
in powers of 1024 (`500M`, `6G`); default 6G. Files whose names start with a dot are writes
in progress: left alone, unless an hour old (the litter of a killed process).
"""
from __future__ import annotations

import datetime as _dt
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from . import home
from .errors import TLCoreError

ENV_MAX = "TLCORE_CACHE_MAX"
DEFAULT_MAX = "6G"
STALE_TEMP_SECONDS = 3600.0
_UNITS = {"": 1, "K": 2 ** 10, "M": 2 ** 20, "G": 2 ** 30, "T": 2 ** 40}
_SIZE_RE = re.compile(r"^(\d+(?:\.\d*)?)([KMGT]?)(?:I?B)?$")


@dataclass(frozen=True)
class _Entry:
    path: Path
    name: str
    bytes: int
    used_ns: int

    def to_dict(self) -> dict:
        used = _dt.datetime.fromtimestamp(self.used_ns / 1e9, _dt.timezone.utc)
        return {"name": self.name, "bytes": self.bytes,
                "last_used": used.isoformat(timespec="seconds").replace("+00:00", "Z")}


def parse_size(text: str) -> int:
    """'500M' -> 524288000; plain digits are bytes; K, M, G, T count in powers of 1024.

    Raises:
        TLCoreError: not a size; the message names TLCORE_CACHE_MAX and shows the value.
    """
    match = _SIZE_RE.match(str(text).strip().upper().replace(" ", ""))
    if not match:
        raise TLCoreError(f"{ENV_MAX} must be a size in bytes, or with a K, M, G or T suffix "
                          f"(e.g. 500M, 6G). Received: {ENV_MAX}={text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def max_bytes() -> int:
    """The cap on the cache folder, from TLCORE_CACHE_MAX (default 6G)."""
    return parse_size(os.environ.get(ENV_MAX) or DEFAULT_MAX)


def touch(path: str | os.PathLike) -> None:
    """Record a use of the entry at `path` (it becomes the most recently used)."""
    try:
        os.utime(path)
    except OSError:
        pass


def enforce(limit: int | None = None) -> int:
    """Delete least recently used entries until the cache holds at most `limit` bytes.

    Args:
        limit: bytes; default `max_bytes()`.

    Returns:
        The bytes deleted.
    """
    limit = max_bytes() if limit is None else int(limit)
    entries, stale = _scan()
    for path in stale:
        path.unlink(missing_ok=True)
    total = sum(e.bytes for e in entries)
    freed = 0
    for entry in sorted(entries, key=lambda e: e.used_ns):
        if total <= limit:
            break
        entry.path.unlink(missing_ok=True)
        total -= entry.bytes
        freed += entry.bytes
    return freed


def clear() -> int:
    """Delete everything in the cache folder; returns the bytes deleted."""
    root = home.cache_dir()
    freed = 0
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = Path(dirpath) / name
            try:
                freed += path.lstat().st_size
                path.unlink()
            except FileNotFoundError:
                pass
        for name in dirnames:
            try:
                (Path(dirpath) / name).rmdir()
            except OSError:
                pass  # a folder a writer has just filled again
    return freed


def cache_report(clear_all: bool = False) -> dict:
    """What `tlcore cache` prints: {path, bytes, max_bytes, entries, freed}.

    `entries` are [{name, bytes, last_used}], most recently used first (`last_used` ISO 8601
    UTC); `freed` is what `clear_all` deleted (0 without it).

    Raises:
        TLCoreError: TLCORE_CACHE_MAX is not a size.
    """
    limit = max_bytes()
    freed = clear() if clear_all else 0
    entries, _ = _scan()
    entries.sort(key=lambda e: (-e.used_ns, e.name))
    return {"path": str(home.cache_dir()), "bytes": sum(e.bytes for e in entries), "max_bytes": limit,
            "entries": [e.to_dict() for e in entries], "freed": freed}


def _scan() -> tuple[list[_Entry], list[Path]]:
    """(entries, temporary files older than STALE_TEMP_SECONDS)."""
    root = home.cache_dir()
    entries: list[_Entry] = []
    stale: list[Path] = []
    old = time.time() - STALE_TEMP_SECONDS
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue  # deleted meanwhile
            if name.startswith("."):
                if st.st_mtime < old:
                    stale.append(path)
                continue
            entries.append(_Entry(path, path.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    return entries, stale
