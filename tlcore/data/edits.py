"""Edits of a managed dataset: move images to another class or split, or into the trash; undo.

Every action is a move inside the dataset folder: into another class folder, another split
folder, or the hidden ``.tlcore/trash/<action>/`` (which the scan ignores). Each action is
one line of ``.tlcore/changes.jsonl`` with its moves, so Undo moves the files back exactly
(same bytes, same names). Nothing is deleted until `empty_trash`. Only datasets inside the
studio's datasets folder are edited; any other folder is read-only (import a copy to edit).
No edit follows a symbolic link anywhere in the dataset's path (`datasets.no_links`): not the
dataset folder, a split or class folder, a file, ``.tlcore`` or its trash; paths read back from
the log must stay inside the dataset.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from pathlib import Path

from ..core import home
from ..core.errors import TLCoreError
from .datasets import no_links

META = ".tlcore"
LOG = "changes.jsonl"
TRASH = "trash"
_SPLIT_FOLDERS = {"train": "train", "training": "train", "validation": "validation", "val": "validation",
                  "valid": "validation", "test": "test", "testing": "test"}


def is_managed(root, datasets_dir=None) -> bool:
    """Whether `root` lies inside the studio's datasets folder (so the studio may edit it)."""
    base = home.datasets_dir(datasets_dir).expanduser().resolve()
    path = Path(root).expanduser().resolve()
    return path != base and path.is_relative_to(base)


class DatasetEditor:
    """Moves, excludes and undoes, logged in ``ROOT/.tlcore/changes.jsonl``.

    Args:
        root: the dataset folder as scanned (`Dataset.root`).
        datasets_dir: the datasets folder (default: the home's).

    Raises:
        TLCoreError: the folder is not a managed dataset.
    """

    def __init__(self, root, datasets_dir=None):
        no_links(root)
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise TLCoreError(f"Dataset folder not found: {self.root}")
        if not is_managed(self.root, datasets_dir):
            raise TLCoreError(
                f"{self.root} is not in the studio's datasets folder ({home.datasets_dir(datasets_dir)}), "
                "so it is read-only here. Import a copy (tlcore import FOLDER) and edit the copy.")
        self.meta = self.root / META
        self.log_path = self.meta / LOG

    # --- where a file sits -------------------------------------------------------------
    def _rel(self, path) -> Path:
        p = Path(path)
        p = p if p.is_absolute() else self.root / p
        try:
            rel = p.resolve().relative_to(self.root) if not p.is_symlink() else p.relative_to(self.root)
        except ValueError:
            raise TLCoreError(f"{path} is not inside the dataset {self.root}.") from None
        if rel.parts and rel.parts[0] == META:
            raise TLCoreError(f"{path} is in the trash; use Undo to bring it back.")
        if not no_links(self.root, rel).is_file():
            raise TLCoreError(f"No such image in the dataset: {rel}")
        return rel

    def layout(self) -> str:
        """``split`` when the dataset has a train/ folder, else ``folders``."""
        for d in self.root.iterdir():
            if d.is_dir() and _SPLIT_FOLDERS.get(d.name.lower()) == "train":
                return "split"
        return "folders"

    def _split_folder(self, split: str) -> str:
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and _SPLIT_FOLDERS.get(d.name.lower()) == split:
                return d.name
        return split

    # --- actions ------------------------------------------------------------------------
    def move(self, files, to_class: str | None = None, to_split: str | None = None) -> dict:
        """Move images into class `to_class` and/or split `to_split` (split layout only).

        Raises:
            TLCoreError: nothing to do, a bad class name, a split in the flat layout.
        """
        from .datasets import check_name

        if not to_class and not to_split:
            raise TLCoreError("Say where to move the images: another class or another split.")
        split_layout = self.layout() == "split"
        if to_split:
            if to_split not in ("train", "validation", "test"):
                raise TLCoreError(f"to_split must be train, validation or test. Received: {to_split!r}")
            if not split_layout:
                raise TLCoreError("Moving to another split needs train/validation/test folders; in "
                                  "this dataset (one folder per class) the split comes from each file.")
        if to_class:
            to_class = check_name(to_class, "class")
        plan = []
        for f in self._unique(files):
            rel = self._rel(f)
            parts = list(rel.parts)
            if split_layout:
                if len(parts) < 3:
                    raise TLCoreError(f"{rel} is not inside a split and class folder.")
                if to_split:
                    parts[0] = self._split_folder(to_split)
                if to_class:
                    parts[1] = to_class
            else:
                if len(parts) < 2:
                    raise TLCoreError(f"{rel} is not inside a class folder.")
                if to_class:
                    parts[0] = to_class
            target = Path(*parts)
            if target != rel:
                plan.append((rel, target))
        return self._apply("move", plan, {"to_class": to_class, "to_split": to_split})

    def exclude(self, files) -> dict:
        """Move images into the trash (``.tlcore/trash/<action>/``), kept until `empty_trash`."""
        action_id = _new_id()
        plan = [(rel, Path(META) / TRASH / action_id / rel) for rel in map(self._rel, self._unique(files))]
        return self._apply("exclude", plan, {}, action_id)

    def undoable(self) -> list[dict]:
        """Actions Undo can still reverse, oldest first: moves and exclusions not undone yet,
        except exclusions whose files went with an emptied trash."""
        entries = self.history()
        undone = {e.get("undoes") for e in entries if e.get("action") == "undo"}
        out = []
        for entry in entries:
            if entry.get("action") == "empty_trash":
                out = [e for e in out if e.get("action") != "exclude"]
            elif entry.get("action") in ("move", "exclude") and entry.get("id") not in undone:
                out.append(entry)
        return out

    def undo(self) -> dict | None:
        """Undo the latest action not yet undone; None when there is none.

        Raises:
            TLCoreError: a file to restore is gone or its old place is taken (nothing is moved then).
        """
        pending = self.undoable()
        if not pending:
            return None
        entry = pending[-1]
        plan = [(Path(m["to"]), Path(m["from"])) for m in reversed(entry["moves"])]
        for a, b in plan:  # the log is a file in the dataset: its paths are checked like any other
            no_links(self.root, a)
            no_links(self.root, b)
        missing = [str(a) for a, _ in plan if not (self.root / a).is_file()]
        if missing:
            raise TLCoreError(f"Cannot undo: {len(missing)} file(s) are no longer where this action put "
                              f"them: {', '.join(missing[:3])}")
        taken = [str(b) for _, b in plan if (self.root / b).exists()]
        if taken:
            raise TLCoreError(f"Cannot undo: another file now sits at {', '.join(taken[:3])}; "
                              "move it away first.")
        return self._apply("undo", plan, {"undoes": entry["id"]}, exact=True)

    def history(self) -> list[dict]:
        """Every logged action, oldest first."""
        if self._linked(META, LOG) or not self.log_path.is_file():  # a linked log is not read
            return []
        out = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # an unfinished last line
        return out

    def trash_files(self) -> list[Path]:
        if self._linked(META, TRASH):
            return []
        folder = self.meta / TRASH
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []

    def empty_trash(self) -> int:
        """Delete the trash for good; returns how many files went. Their actions cannot be undone."""
        import shutil

        folder = no_links(self.root, META, TRASH)  # a linked .tlcore or trash would delete elsewhere
        files = self.trash_files()
        shutil.rmtree(folder, ignore_errors=True)
        self._log({"id": _new_id(), "action": "empty_trash", "files": len(files), "moves": []})
        return len(files)

    # --- the mechanics ------------------------------------------------------------------
    def _linked(self, *parts) -> bool:
        try:
            no_links(self.root, *parts)
        except TLCoreError:
            return True
        return False

    @staticmethod
    def _unique(files) -> list:
        files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
        if not files:
            raise TLCoreError("No images given.")
        return list(dict.fromkeys(str(f) for f in files))

    def _free(self, target: Path, taken: set) -> Path:
        """`target`, or `name-1.ext`, `name-2.ext`... if that place is taken."""
        candidate, n = target, 0
        while (self.root / candidate).exists() or candidate in taken:
            n += 1
            candidate = target.with_name(f"{target.stem}-{n}{target.suffix}")
        return candidate

    def _apply(self, action: str, plan: list[tuple[Path, Path]], extra: dict, action_id: str | None = None,
               exact: bool = False) -> dict:
        """Do the moves; log the ones done, even when one fails midway (never lose an image)."""
        done, taken, error = [], set(), None
        for src, dst in plan:  # every path checked first: a tampered log or a link changes nothing
            no_links(self.root, src)
            no_links(self.root, dst)
        for src, dst in plan:
            dst = dst if exact else self._free(dst, taken)
            taken.add(dst)
            try:
                no_links(self.root, src)
                no_links(self.root, dst)
                (self.root / dst).parent.mkdir(parents=True, exist_ok=True)
                if (self.root / dst).exists():
                    raise OSError(f"{dst} exists")
                os.rename(self.root / src, self.root / dst)
            except (OSError, TLCoreError) as exc:
                error = f"Moved {len(done)} of {len(plan)} image(s); {src} could not be moved: {exc}"
                break
            done.append({"from": str(src), "to": str(dst)})
        entry = {"id": action_id or _new_id(), "action": action, "moves": done, **extra}
        if done:
            self._log(entry)
        if error:
            raise TLCoreError(error)
        return entry

    def _log(self, entry: dict) -> None:
        no_links(self.root, META, LOG)
        self.meta.mkdir(exist_ok=True)
        entry = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **entry}
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _new_id() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
