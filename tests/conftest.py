"""Shared test set-up: quiet TensorFlow, throw-away homes, tiny generated datasets."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Before anything imports TensorFlow: keep its C++ logging to errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Before anything imports Keras (which reads KERAS_HOME once, at import): the whole session,
# and every process it starts, writes below one temporary folder, never in the user's home.
REAL_HOME = Path.home()
SESSION_HOMES = Path(tempfile.mkdtemp(prefix="tlcore-tests-"))
for _var, _sub in (("HOME", "home"), ("KERAS_HOME", "keras"), ("TLCORE_HOME", "tlcore")):
    (SESSION_HOMES / _sub).mkdir()
    os.environ[_var] = str(SESSION_HOMES / _sub)
atexit.register(shutil.rmtree, SESSION_HOMES, ignore_errors=True)

import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Distinct colours, one per class in order; names that match get their own colour.
PALETTE = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 220, 40), (200, 40, 200),
           (40, 210, 210), (128, 128, 128), (250, 140, 20)]
NAMED = {"red": PALETTE[0], "green": PALETTE[1], "blue": PALETTE[2], "yellow": PALETTE[3]}


def class_colour(name: str, index: int) -> tuple[int, int, int]:
    return NAMED.get(name, PALETTE[index % len(PALETTE)])


def noisy_image(rng: np.random.Generator, colour, size: int = 16, noise: float = 20.0) -> Image.Image:
    """A `size`x`size` RGB image of `colour` plus Gaussian noise (unique per call)."""
    arr = np.clip(np.array(colour, dtype=float) + rng.normal(0, noise, (size, size, 3)), 0, 255)
    return Image.fromarray(arr.astype("uint8"), mode="RGB")


@pytest.fixture
def tlhome(tmp_path, monkeypatch) -> Path:
    """TLCORE_HOME pointed at this test's tmp_path (runs/, datasets/, cache/ land there)."""
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def make_dataset(tmp_path):
    """Factory writing a tiny image dataset; returns its root folder.

    make_dataset(layout="flat", classes=("red", "green"), n=12) writes root/<class>/*.png;
    make_dataset(layout="split", counts={"train": 10, "validation": 4, "test": 4}) writes
    root/{train,validation,test}/<class>/*.png (a split with count 0 is not created;
    `split_names` renames folders, e.g. {"validation": "val"}). `n` may also be a dict
    class -> count. `ext` is ".png" or ".jpg"; `size` the side in pixels.
    """
    made = {"n": 0}

    def factory(layout: str = "flat", classes=("red", "green"), n=12, counts=None,
                size: int = 16, ext: str = ".png", root=None, seed: int = 0,
                split_names: dict | None = None) -> Path:
        if root is None:
            made["n"] += 1
            root = tmp_path / f"data{made['n']}"
        root = Path(root)
        rng = np.random.default_rng(seed)

        def write(folder: Path, cls: str, index: int, count: int, prefix: str) -> None:
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                im = noisy_image(rng, class_colour(cls, index), size)
                if ext.lower() in (".jpg", ".jpeg"):
                    im.save(folder / f"{prefix}{cls}_{i}{ext}", quality=95)
                else:
                    im.save(folder / f"{prefix}{cls}_{i}{ext}")

        if layout == "flat":
            for ci, cls in enumerate(classes):
                count = n[cls] if isinstance(n, dict) else n
                write(root / cls, cls, ci, count, "")
        elif layout == "split":
            counts = counts or {"train": 10, "validation": 4, "test": 4}
            names = {"train": "train", "validation": "validation", "test": "test"}
            names.update(split_names or {})
            for split, count in counts.items():
                if not count:
                    continue
                for ci, cls in enumerate(classes):
                    c = count[cls] if isinstance(count, dict) else count
                    write(root / names[split] / cls, cls, ci, c, f"{split}_")
        else:
            raise ValueError(f"layout must be 'flat' or 'split'. Received: {layout!r}")
        return root

    return factory
