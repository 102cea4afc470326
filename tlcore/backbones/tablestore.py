"""Where the layer facts of catalog backbones come from without building them.

`catalog_facts(name, size)` returns a backbone's `layers.BackboneFacts` (its layer table and
what a plan needs) from, in this order: a table shipped with the package
(`tlcore/backbones/layer_tables/NAME-SIZE.json.gz`, one per catalog backbone at its default size), the
home's cache (`cache/layer-tables/NAME@SIZE-kerasVERSION.json`), or a build of the backbone
without weights, which it then caches. Every file records the Keras version it was made with;
a file of another version is ignored (Keras may name or shape layers differently), so the
backbone is built again. Reading a table needs neither TensorFlow nor a build.

`ship_tables()` writes the shipped files (`python scripts/layer_tables.py` after a Keras upgrade).
"""
from __future__ import annotations

import gzip
import json
from importlib.metadata import version
from pathlib import Path
from typing import Callable

from .layers import BackboneFacts, facts_of

SHIPPED = Path(__file__).with_name("layer_tables")
FORMAT = 1


def keras_version() -> str:
    """The installed Keras version (read from the package metadata: no import)."""
    return version("keras")


def shipped_path(name: str, size: int) -> Path:
    return SHIPPED / f"{name}-{int(size)}.json.gz"


def _home_path(name: str, size: int) -> Path:
    from ..core import home

    return home.cache_dir() / "layer-tables" / f"{name}@{int(size)}-keras{keras_version()}.json"


def _document(facts: BackboneFacts, name: str, size: int) -> dict:
    return {"format": FORMAT, "keras": keras_version(), "backbone": name, "size": int(size), **facts.to_json()}


def _read(path: Path, name: str, size: int, extra: dict) -> BackboneFacts | None:
    """The facts in `path`, or None when it is missing, unreadable, or of another Keras version."""
    try:
        raw = path.read_bytes()
        doc = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        if (doc.get("format"), doc.get("keras"), doc.get("backbone"), doc.get("size")) != \
                (FORMAT, keras_version(), name, int(size)):
            return None
        return BackboneFacts.from_json(doc, **extra)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def known_facts(name: str, size: int) -> BackboneFacts | None:
    """The facts of catalog backbone `name` at `size` if shipped or cached for this Keras, else None."""
    from .catalog import get_backbone

    info = get_backbone(name)
    extra = {"preprocessing": info.preprocessing, "input_size": int(size)}
    for path in (shipped_path(info.name, size), _home_path(info.name, size)):
        facts = _read(path, info.name, size, extra)
        if facts is not None:
            return facts
    return None


def catalog_facts(name: str, size: int, build: Callable | None = None) -> BackboneFacts:
    """The facts of catalog backbone `name` at `size`: shipped, cached, or built once and cached.

    Args:
        build: returns the built backbone (default: `build_backbone(name, size, weights=None)`).

    Raises:
        TLCoreError: an unknown backbone or a bad size (from the catalog or the build).
    """
    from .catalog import get_backbone

    info = get_backbone(name)
    facts = known_facts(info.name, size)
    if facts is not None:
        return facts
    if build is None:
        from .build import build_backbone

        def build():
            return build_backbone(info.name, size, weights=None)
    facts = facts_of(build(), None, info.preprocessing, int(size))
    path = _home_path(info.name, size)
    try:
        from ..core.jsonio import write_json

        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, _document(facts, info.name, size))
    except OSError:
        pass  # an unwritable home: built again next time
    return facts


def ship_tables(names: list[str] | None = None, folder: Path = SHIPPED) -> list[Path]:
    """Build every catalog backbone (or `names`) at its default size and write its facts, gzipped,
    to `folder`. Returns the files written."""
    import gc

    import keras

    from .build import build_backbone
    from .catalog import CATALOG

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or list(CATALOG):
        info = CATALOG[name]
        size = info.default_input_size
        facts = facts_of(build_backbone(name, size, weights=None), None, info.preprocessing, size)
        path = folder / shipped_path(name, size).name
        data = json.dumps(_document(facts, name, size), separators=(",", ":")).encode()
        path.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        written.append(path)
        keras.backend.clear_session()  # build_backbone names layers as in a fresh process anyway
        gc.collect()
    return written
