"""Where the studio keeps things, and which folders it may read.

One home folder, `TLCORE_HOME` (default ``~/.tlcore``), holds ``runs/``, ``datasets/``
(imported datasets), ``weights/`` and ``models/`` (uploaded files) and ``cache/``. Folders
outside it are read only below the roots listed in `TLCORE_DATA_ROOTS`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .errors import TLCoreError

PATH_KINDS = ("folder", "file", "any")


def home() -> Path:
    """The studio's home folder (`TLCORE_HOME`, default `~/.tlcore`)."""
    return Path(os.environ.get("TLCORE_HOME") or Path.home() / ".tlcore").expanduser()


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override).expanduser() if override else home() / "runs"


def datasets_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override).expanduser() if override else home() / "datasets"


def weights_dir() -> Path:
    """Where uploaded weights files are kept: ``TLCORE_HOME/weights``."""
    return home() / "weights"


def models_dir() -> Path:
    """Where uploaded backbone models are kept: ``TLCORE_HOME/models``."""
    return home() / "models"


def cache_dir() -> Path:
    return home() / "cache"


def data_roots() -> list[Path]:
    """Folders below which the server-side folder picker may read (`TLCORE_DATA_ROOTS`)."""
    raw = os.environ.get("TLCORE_DATA_ROOTS", "")
    roots = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    return [r.resolve() for r in (roots or [home()])]


def readable_roots() -> list[Path]:
    """Every folder whose contents a path from outside (a link, the folder picker) may name:
    the data roots, and the home with its runs, datasets, weights and models folders."""
    out: list[Path] = []
    for root in [*data_roots(), home(), runs_dir(), datasets_dir(), weights_dir(), models_dir()]:
        resolved = root.expanduser().resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def folder_size(path: str | os.PathLike) -> int:
    """Bytes in the files below `path` (links not followed); 0 when it does not exist."""
    total = 0
    for dirpath, _, filenames in os.walk(path):
        for f in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total


def resolve_under_roots(path: str | os.PathLike, roots: Sequence[str | os.PathLike] | None = None,
                        kind: str = "folder") -> Path:
    """`path` with symlinks resolved, if it lies inside one of `roots` and exists.

    Args:
        path: a path on the server (``~`` is expanded; a relative path is taken from the first root).
        roots: allowed roots (default `data_roots()`), resolved as well.
        kind: what `path` must be: ``"folder"``, ``"file"`` or ``"any"``.

    Raises:
        TLCoreError: outside every root (after resolving symlinks), missing, or of the wrong kind.
    """
    if kind not in PATH_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PATH_KINDS)}. Received: {kind!r}")
    allowed = [Path(r).expanduser().resolve() for r in (roots if roots is not None else data_roots())]
    text = str(path).strip()
    noun = "file" if kind == "file" else "folder" if kind == "folder" else "file or folder"
    if not text:
        raise TLCoreError(f"path is empty: give the path of a {noun} on the server.")
    if "\0" in text:
        raise TLCoreError(f"path cannot contain a NUL character. Received: {text!r}")
    raw = Path(text).expanduser()
    if not raw.is_absolute() and allowed:
        raw = allowed[0] / raw
    resolved = raw.resolve()
    shown = ", ".join(str(r) for r in allowed) or "none"
    if not any(resolved == r or resolved.is_relative_to(r) for r in allowed):
        raise TLCoreError(f"{text} is outside the folders this server may read ({shown}). "
                          "Ask the administrator to add its folder to TLCORE_DATA_ROOTS, "
                          "or upload it instead.")
    if not resolved.exists():
        raise TLCoreError(f"No such {noun} on the server: {resolved}")
    if kind == "folder" and not resolved.is_dir():
        raise TLCoreError(f"{resolved} is a file, not a folder; give the dataset's folder.")
    if kind == "file" and not resolved.is_file():
        raise TLCoreError(f"{resolved} is a folder, not a file; give the file's path.")
    return resolved
