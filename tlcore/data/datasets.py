"""The datasets the studio manages: the datasets folder (list, delete, sizes), the demo
dataset, webcam datasets made of snaps, and samples of a scanned dataset to show.

A webcam dataset is a flat folder of class folders under ``datasets/``, each snap stored as
``<class>/<n>.png`` exactly as training will read it.

Nothing here or in `edits` follows a symbolic link inside a managed dataset (`no_links`): a
link named like a class folder or ``.tlcore`` would otherwise make a snap, a move, the trash
or a deletion reach files outside the dataset.
"""
from __future__ import annotations

import os
import re
import shutil
import threading
import unicodedata
from pathlib import Path

from ..core import home
from ..core.errors import TLCoreError

DEMO_NAME = "demo-shapes"
SPLIT_WORDS = ("train", "training", "validation", "valid", "val", "test", "testing")
_SNAP = re.compile(r"^(\d+)\.png$")


def no_links(root: str | os.PathLike, *parts: str | os.PathLike) -> Path:
    """``root/parts...`` once neither `root` nor any part of the path below it is a symbolic link
    (parts that do not exist yet are fine); it must stay inside `root` (no absolute path, no ``..``).

    Raises:
        TLCoreError: a link on the way, or a path leading outside `root`.
    """
    base = Path(root).expanduser()
    rel = Path(*parts) if parts else Path()
    if rel.is_absolute() or ".." in rel.parts:
        raise TLCoreError(f"{rel} leads outside the dataset {base.name}; nothing was changed.")
    current = base
    for part in ("",) + rel.parts:
        current = current / part if part else current
        if current.is_symlink():
            raise TLCoreError(f"{current} is a symbolic link; the studio does not follow links inside a dataset "
                              "(one could lead its edits outside it). Replace the link with the real folder or "
                              "file, or remove it. Nothing was changed.")
    return current


def list_datasets(datasets_dir=None) -> list[dict]:
    """Imported datasets: ``[{name, path, bytes, modified}]``, newest first."""
    root = home.datasets_dir(datasets_dir)
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if p.is_dir() and not p.name.startswith(".") and not p.is_symlink():
            out.append({"name": p.name, "path": str(p), "bytes": home.folder_size(p),
                        "modified": p.stat().st_mtime})
    return sorted(out, key=lambda d: d["modified"], reverse=True)


def delete_dataset(path: str | os.PathLike, datasets_dir=None) -> None:
    """Delete an imported dataset; only folders directly inside the datasets folder.

    Raises:
        TLCoreError: the folder is not an imported dataset.
    """
    root = home.datasets_dir(datasets_dir).resolve()
    target = Path(path)
    if target.is_symlink() or target.resolve().parent != root or not target.is_dir():
        raise TLCoreError(f"{path} is not an imported dataset in {root}; only those can be deleted.")
    shutil.rmtree(target)


def dataset_size(counts: dict) -> int:
    """Images in a `Dataset.counts()` result, over every split and class."""
    return int(sum(sum(per_class.values()) for per_class in counts.values()))


def sample_files(ds, per_class: int = 6, split: str = "train") -> dict[str, list[str]]:
    """Up to `per_class` image paths of each class (from `split`, else any split)."""
    out: dict[str, list[str]] = {c: [] for c in ds.classes}
    for s in (split, "train", "validation", "test"):
        for path, label in ds.files.get(s, []):
            bucket = out[ds.classes[label]]
            if len(bucket) < per_class and path not in bucket:
                bucket.append(path)
    return out


# --- the demo dataset and webcam datasets ------------------------------------------

def demo_dataset_path(datasets_dir=None) -> Path:
    """Where the demo dataset lives: ``datasets/demo-shapes``."""
    return home.datasets_dir(datasets_dir) / DEMO_NAME


def ensure_demo_dataset(datasets_dir=None, classes: int = 4, per_class: int = 150) -> dict:
    """The demo dataset (`demo.make_demo_dataset`), made on first use; ``{path, created}``.

    It is written to a hidden folder first and renamed into place, so a half-made demo never
    shows up as a dataset (and a second click while the first is busy finds it complete).
    """
    from .demo import make_demo_dataset

    target = demo_dataset_path(datasets_dir)
    if target.is_dir() and any(target.iterdir()):
        return {"path": str(target), "created": False}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{DEMO_NAME}-{os.getpid()}-{threading.get_ident()}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        make_demo_dataset(tmp, classes=classes, per_class=per_class)
        if target.is_dir() and not any(target.iterdir()):
            target.rmdir()
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target.is_dir() and any(target.iterdir())):
                raise TLCoreError(f"Cannot create the demo dataset at {target}.") from None
            return {"path": str(target), "created": False}  # made meanwhile by another session
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"path": str(target), "created": True}


def check_name(name: str, what: str = "class") -> str:
    """A class or dataset name usable as one folder name (NFC, trimmed).

    Raises:
        TLCoreError: empty, hidden, a path, too long, or (for a class) a split folder's name,
            which would make the dataset read as train/validation/test folders.
    """
    text = _nfc(str(name or "")).strip()
    if not text:
        raise TLCoreError(f"Type a {what} name first.")
    if len(text) > 64:
        raise TLCoreError(f"A {what} name has at most 64 characters. Received: {len(text)}")
    if any(c in text for c in "/\\\0:*?\"<>|") or text.startswith(".") or text != text.strip("."):
        raise TLCoreError(f"A {what} name cannot contain / \\ : * ? \" < > | or start or end with a dot. "
                          f"Received: {text!r}")
    if what == "class" and text.lower() in SPLIT_WORDS:
        raise TLCoreError(f"{text!r} is the name of a split folder; a class called that would make the "
                          "dataset read as train/validation/test folders. Choose another name.")
    return text


def webcam_dataset(name: str = "webcam", datasets_dir=None) -> Path:
    """The managed folder of a webcam dataset, ``datasets/<name>`` (made by its first class)."""
    return home.datasets_dir(datasets_dir) / check_name(name, "dataset")


def add_class(root: str | os.PathLike, name: str) -> Path:
    """Create class folder `name` in a webcam dataset (nothing happens if it exists)."""
    folder = no_links(root, check_name(name, "class"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def dataset_classes(root: str | os.PathLike) -> list[str]:
    """Class folders of a flat dataset, sorted (as training orders them)."""
    p = Path(root)
    if not p.is_dir():
        return []
    return sorted(c.name for c in p.iterdir() if c.is_dir() and not c.name.startswith("."))


def snaps(root: str | os.PathLike, class_name: str) -> list[Path]:
    """The snaps of one class, in the order they were taken (1.png, 2.png, ...)."""
    folder = no_links(root, check_name(class_name, "class"))
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), f) for f in folder.iterdir() if (m := _SNAP.match(f.name))]
    return [f for _, f in sorted(found)]


def snap_counts(root: str | os.PathLike) -> dict[str, int]:
    """Snaps per class of a webcam dataset."""
    return {c: len(snaps(root, c)) for c in dataset_classes(root)}


def save_snap(root: str | os.PathLike, class_name: str, data: bytes) -> Path:
    """Store one camera snap (JPEG or any image) as the class's next ``<n>.png``.

    The image is read the studio's way (EXIF orientation applied, RGB), so the file on disk
    is exactly what training will see.

    Raises:
        TLCoreError: not an image, or an unknown class.
    """
    import io

    from .images import ImageProblem, open_rgb

    folder = no_links(root, check_name(class_name, "class"))
    if not folder.is_dir():
        raise TLCoreError(f"No class {class_name!r} in {Path(root).name}; add it first.")
    try:
        image = open_rgb(io.BytesIO(data))
    except ImageProblem as exc:
        raise TLCoreError(f"The snap is not a usable image: {exc}") from None
    existing = [int(m.group(1)) for f in folder.iterdir() if (m := _SNAP.match(f.name))]
    n = max(existing, default=0) + 1
    while True:
        target = folder / f"{n}.png"
        try:
            with open(target, "xb") as f:
                image.save(f, format="PNG")
            return target
        except FileExistsError:
            n += 1


def delete_snap(root: str | os.PathLike, path: str | os.PathLike) -> None:
    """Delete one snap; only ``<class>/<n>.png`` files directly inside the dataset `root`.

    Raises:
        TLCoreError: anything else.
    """
    no_links(root)
    base, target = Path(root).resolve(), Path(path)
    if target.is_symlink() or target.parent.is_symlink() or not _SNAP.match(target.name) or target.resolve().parent.parent != base \
            or not target.is_file():
        raise TLCoreError(f"{path} is not a snap of the dataset {base.name}; nothing deleted.")
    target.unlink()


def delete_class(root: str | os.PathLike, class_name: str) -> int:
    """Delete a class folder of a webcam dataset with its snaps; returns how many snaps went.

    Raises:
        TLCoreError: the class holds files that are not snaps (it is not a webcam class).
    """
    folder = no_links(root, check_name(class_name, "class"))
    if not folder.is_dir():
        return 0
    others = [f.name for f in folder.iterdir() if not _SNAP.match(f.name)]
    if others:
        raise TLCoreError(f"{class_name} holds other files too ({', '.join(others[:3])}); delete it by hand.")
    gone = len(snaps(root, class_name))
    shutil.rmtree(folder)
    return gone


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)
