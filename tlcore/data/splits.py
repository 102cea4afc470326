"""How a flat folder dataset is split into train, validation and test, per class.

`by-file` (since the dataset edits): each file's split comes from a draw fixed by its path
relative to the dataset and the seed, so adding, removing or moving one image never moves
another. `shuffle` is the earlier method (a seeded shuffle per class), kept so that runs
trained with it are still evaluated on their own test images: a run records its method in
config.json (`split_method`); a run without one used `shuffle`.
"""
from __future__ import annotations

import hashlib
import os
import random
import unicodedata
from pathlib import Path

SPLIT_METHOD = "by-file"
SPLIT_METHODS = ("by-file", "shuffle")
# The default fractions held out per class and the seed (TrainConfig's defaults take these). A
# dataset with a train/ folder but no validation/ one holds out DEFAULT_VAL_SPLIT of train/.
DEFAULT_VAL_SPLIT = 0.2
DEFAULT_TEST_SPLIT = 0.1
DEFAULT_SEED = 42
SCORED_SPLITS = ("test", "validation")  # what an evaluation scores, in order of preference


def recorded_method(run_config: dict) -> str:
    """The split method a run was trained with, from its config.json."""
    return run_config.get("split_method") or "shuffle"


def of_run(run_config: dict) -> dict:
    """How a run split its dataset, from its config.json, as `data.scan`'s keyword arguments:
    val_split, test_split, seed and split_method."""
    opts = run_config.get("options") or {}
    return {"val_split": opts.get("val_split", DEFAULT_VAL_SPLIT), "test_split": opts.get("test_split", DEFAULT_TEST_SPLIT),
            "seed": opts.get("seed", DEFAULT_SEED), "split_method": recorded_method(run_config)}


def _file_draw(path: str, root: Path | None, seed: int) -> float:
    """A number in [0, 1) fixed by the file's path (relative to the dataset) and the seed."""
    rel = os.path.relpath(path, root) if root is not None else path
    rel = unicodedata.normalize("NFC", rel.replace(os.sep, "/"))
    digest = hashlib.sha1(f"{seed}|{rel}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


def stratified_split(files_by_class: dict[int, list[str]], val_split: float, test_split: float,
                     seed: int, root: Path | None = None,
                     method: str = SPLIT_METHOD) -> dict[str, list[tuple[str, int]]]:
    """{train, validation, test: [(file, label)]}, class by class.

    by-file: below test_split a file is test, below test_split + val_split validation, else
    train. A class that would get no validation (or test) image while it has enough gets one
    from train, and every class keeps an image to train on.
    """
    if method not in SPLIT_METHODS:
        raise ValueError(f"split method must be one of {SPLIT_METHODS}. Received: {method!r}")
    out: dict[str, list[tuple[str, int]]] = {s: [] for s in ("train", "validation", "test")}
    for label, files in sorted(files_by_class.items()):
        if method == "shuffle":
            test, val, train = _shuffled(files, val_split, test_split, f"{seed}:{label}")
        else:
            draws = sorted((_file_draw(f, root, seed), f) for f in files)
            test = [f for u, f in draws if u < test_split]
            val = [f for u, f in draws if test_split <= u < test_split + val_split]
            train = [f for u, f in draws if u >= test_split + val_split]
            if not train and (val or test):
                train.append((val or test).pop())
            if test_split > 0 and not test and len(train) >= 2:
                test.append(train.pop(0))
            if val_split > 0 and not val and len(train) >= 2:
                val.append(train.pop(0))
        out["test"] += [(f, label) for f in sorted(test)]
        out["validation"] += [(f, label) for f in sorted(val)]
        out["train"] += [(f, label) for f in sorted(train)]
    return out


def _shuffled(files: list[str], val_split: float, test_split: float, key: str):
    """The earlier method: a seeded shuffle, then round(n * fraction) images per split."""
    files = sorted(files)
    random.Random(key).shuffle(files)
    n = len(files)
    n_test = int(round(n * test_split)) if test_split > 0 else 0
    n_val = int(round(n * val_split)) if val_split > 0 else 0
    if val_split > 0 and n_val == 0 and n - n_test >= 2:
        n_val = 1
    if test_split > 0 and n_test == 0 and n - n_val >= 2:
        n_test = 1
    n_val = min(n_val, max(0, n - n_test - 1))
    return files[:n_test], files[n_test:n_test + n_val], files[n_test + n_val:]
