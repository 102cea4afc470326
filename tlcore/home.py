"""Where the studio keeps things: TLCORE_HOME with runs/, datasets/ and cache/."""
from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """The studio's home folder (`TLCORE_HOME`, default `~/.tlcore`)."""
    return Path(os.environ.get("TLCORE_HOME") or Path.home() / ".tlcore").expanduser()


def runs_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override).expanduser() if override else home() / "runs"


def datasets_dir(override: str | os.PathLike | None = None) -> Path:
    return Path(override).expanduser() if override else home() / "datasets"


def cache_dir() -> Path:
    return home() / "cache"


def data_roots() -> list[Path]:
    """Folders below which the server-side folder picker may read (`TLCORE_DATA_ROOTS`)."""
    raw = os.environ.get("TLCORE_DATA_ROOTS", "")
    roots = [Path(p).expanduser() for p in raw.split(os.pathsep) if p.strip()]
    return [r.resolve() for r in (roots or [home()])]
