"""A built-in demo dataset, made offline and deterministically: shapes on textured backgrounds.

Objects vary in scale, position, rotation and colour, sit on varied textures with noise and
distractor strokes, so the classes are learnable but not trivially separable. The same seed
gives byte-identical files.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..core.errors import OptionError, TLCoreError

SHAPES = ("circle", "square", "triangle", "star", "cross", "hexagon", "ring", "heart")
SIZE = 96
SPLIT_FRACTIONS = (0.7, 0.15, 0.15)


def _polygon(cx, cy, r, n, rot, inner=None):
    pts = []
    steps = n * (2 if inner else 1)
    for i in range(steps):
        a = rot + 2 * math.pi * i / steps
        rr = inner * r if inner and i % 2 else r
        pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
    return pts


def _background(rng: np.random.Generator) -> Image.Image:
    kind = rng.integers(0, 3)
    base = rng.integers(40, 215, size=3)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    if kind == 0:  # stripes
        f, a = rng.uniform(0.05, 0.3), rng.uniform(0, math.pi)
        t = np.sin((xx * math.cos(a) + yy * math.sin(a)) * f)[..., None]
    elif kind == 1:  # checks
        s = int(rng.integers(6, 20))
        t = (((xx // s + yy // s) % 2) * 2 - 1)[..., None]
    else:  # smooth blobs
        t = np.zeros((SIZE, SIZE, 1), np.float32)
        for _ in range(4):
            cx, cy, r = rng.uniform(0, SIZE, 2).tolist() + [rng.uniform(10, 40)]
            t[..., 0] += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        t = t - t.mean()
    amp = rng.integers(15, 50, size=3)
    arr = base + t * amp + rng.normal(0, 6, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _luma(rgb) -> float:
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def _contrasting(rng: np.random.Generator, background) -> tuple[int, int, int]:
    """A random colour whose brightness differs from the background's by at least 70 of 255:
    any hue, but the object never melts into its background."""
    for _ in range(50):
        colour = rng.integers(0, 256, 3)
        if abs(_luma(colour) - _luma(background)) >= 70:
            break
    else:
        colour = np.where(_luma(background) > 127, rng.integers(0, 60, 3), rng.integers(196, 256, 3))
    return tuple(int(c) for c in colour)


def _draw(shape: str, rng: np.random.Generator) -> Image.Image:
    im = _background(rng)
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(1, 4))):  # distractor strokes
        pts = [tuple(rng.uniform(0, SIZE, 2)) for _ in range(2)]
        d.line(pts, fill=tuple(int(c) for c in rng.integers(0, 256, 3)), width=int(rng.integers(1, 4)))
    r = float(rng.uniform(0.16, 0.34) * SIZE)
    margin = 1.3 * r  # the widest shape (the star) reaches 1.3 r from its centre: always whole
    cx, cy = (float(rng.uniform(margin, SIZE - margin)) for _ in range(2))
    rot = float(rng.uniform(0, 2 * math.pi))
    colour = _contrasting(rng, np.asarray(im, dtype=np.float32).mean((0, 1)))
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "ring":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=max(3, int(r / 3)))
    elif shape == "square":
        d.polygon(_polygon(cx, cy, r * 1.2, 4, rot), fill=colour)
    elif shape == "triangle":
        d.polygon(_polygon(cx, cy, r * 1.2, 3, rot), fill=colour)
    elif shape == "hexagon":
        d.polygon(_polygon(cx, cy, r * 1.1, 6, rot), fill=colour)
    elif shape == "star":
        d.polygon(_polygon(cx, cy, r * 1.3, 5, rot, inner=0.45), fill=colour)
    elif shape == "cross":
        w = r * 0.35
        arm = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w), (-r, w), (-r, -w), (-w, -w)]
        c, s = math.cos(rot), math.sin(rot)
        d.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in arm], fill=colour)
    elif shape == "heart":
        pts = [(16 * math.sin(t) ** 3, -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)))
               for t in np.linspace(0, 2 * math.pi, 60)]
        c, s = math.cos(rot / 4), math.sin(rot / 4)
        k = r / 17
        d.polygon([(cx + k * (x * c - y * s), cy + k * (x * s + y * c)) for x, y in pts], fill=colour)
    if rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5))))
    arr = np.asarray(im, dtype=np.float32) + rng.normal(0, 8, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_demo_dataset(out_dir, classes: int = 4, per_class: int = 150, seed: int = 0) -> dict:
    """Write OUT_DIR/{train,validation,test}/<shape>/*.png; returns {path, classes, counts}.

    Raises:
        TLCoreError: bad counts, or OUT_DIR exists and is not empty.
    """
    if not 2 <= int(classes) <= len(SHAPES):
        raise OptionError("classes", f"must be from 2 to {len(SHAPES)}. Received: {classes}")
    if not 10 <= int(per_class) <= 5000:
        raise OptionError("per_class", f"must be from 10 to 5000. Received: {per_class}")
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TLCoreError(f"{out} exists and is not empty; choose a new folder for the demo dataset.")
    names = list(SHAPES[: int(classes)])
    n_train = int(round(per_class * SPLIT_FRACTIONS[0]))
    n_val = int(round(per_class * SPLIT_FRACTIONS[1]))
    counts: dict[str, dict[str, int]] = {"train": {}, "validation": {}, "test": {}}
    try:
        for ci, name in enumerate(names):
            rng = np.random.default_rng([int(seed), ci])
            for i in range(int(per_class)):
                split = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
                folder = out / split / name
                folder.mkdir(parents=True, exist_ok=True)
                _draw(name, rng).save(folder / f"{name}_{i:04d}.png", optimize=False)
                counts[split][name] = counts[split].get(name, 0) + 1
    except OSError as exc:
        raise TLCoreError(f"Cannot write the demo dataset to {out}: {exc.strerror or exc}") from None
    return {"path": str(out.resolve()), "classes": names, "counts": counts}
