"""Tiny generated image datasets for the tests (no network, a few KB each)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40)}


def _image(rng, colour, size=24) -> Image.Image:
    base = np.array(colour, dtype=float)
    arr = np.clip(base + rng.normal(0, 25, (size, size, 3)), 0, 255).astype("uint8")
    return Image.fromarray(arr)


def write_split(root: Path, classes=("red", "green", "blue"), counts=(10, 4, 4), seed=0, ext=".png") -> Path:
    """root/{train,validation,test}/<class>/*.png"""
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "validation", "test"), counts):
        for c in classes:
            d = Path(root) / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _image(rng, COLOURS[c]).save(d / f"{c}_{i}{ext}")
    return Path(root)


def write_flat(root: Path, classes=("red", "green"), n=12, seed=0, ext=".png") -> Path:
    """root/<class>/*.png"""
    rng = np.random.default_rng(seed)
    for c in classes:
        d = Path(root) / c
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            _image(rng, COLOURS[c]).save(d / f"{c}_{i}{ext}")
    return Path(root)
