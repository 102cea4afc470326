"""Benchmark datasets of different difficulty, generated offline and deterministically.

Not the tests' datasets (tests/datagen.py) and not the app's demo (tlcore/data/demo.py), though they
reuse the demo's idea: objects drawn on varied backgrounds. Each kind has 6 classes; the images
vary in scale, position, rotation, colour, lighting, blur, noise and clutter, and are saved as
JPEG (quality 85-95), 128 px, so they are decoded and resized as photos would be.

- ``shapes``: one large filled shape per image (circle, square, triangle, star, cross, hexagon)
  on a textured background with a few strokes. Easy: the classes differ in outline.
- ``textures``: the whole image is one texture class (stripes, checks, dots, waves, grid,
  speckle) at a random scale, angle and palette, under a lighting gradient. Medium: periods and
  palettes overlap between classes.
- ``clutter``: the shapes of ``shapes``, smaller, at lower contrast, among 3-7 distractor
  objects (rings, ellipses, crescents, lines) that belong to no class, sometimes half hidden.
  Medium to hard: the object is small and the scene is busy.
- ``polygons``: regular polygons with 5, 6, 7 and 8 sides, a circle and a slightly squashed
  ellipse (aspect 0.8-0.88), outlined or filled, with clutter. Hard: the classes differ subtly.

    python -m benchmarks.datasets OUT [--kinds shapes,textures,clutter,polygons] [--per-class 50] [--seed 0]

writes OUT/<kind>/{train,validation,test}/<class>/*.jpg (60/20/20 per class).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 128
SPLITS = (0.6, 0.2, 0.2)
CLASSES = {
    "shapes": ("circle", "square", "triangle", "star", "cross", "hexagon"),
    "textures": ("stripes", "checks", "dots", "waves", "grid", "speckle"),
    "clutter": ("circle", "square", "triangle", "star", "cross", "hexagon"),
    "polygons": ("pentagon", "hexagon", "heptagon", "octagon", "circle", "ellipse"),
}
SIDES = {"pentagon": 5, "hexagon": 6, "heptagon": 7, "octagon": 8}


def _grid():
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    return yy, xx


def _rgb(rng) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _luma(rgb) -> float:
    return float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


def _contrasting(rng, background, at_least: float) -> tuple[int, int, int]:
    for _ in range(60):
        colour = _rgb(rng)
        if abs(_luma(colour) - _luma(background)) >= at_least:
            return colour
    return (20, 20, 20) if _luma(background) > 127 else (235, 235, 235)


def _background(rng) -> np.ndarray:
    """A float image: a base colour, one of five textures, a lighting gradient."""
    yy, xx = _grid()
    base = rng.integers(30, 225, size=3).astype(np.float32)
    kind = int(rng.integers(0, 5))
    if kind == 0:
        f, a = rng.uniform(0.04, 0.35), rng.uniform(0, math.pi)
        t = np.sin((xx * math.cos(a) + yy * math.sin(a)) * f)
    elif kind == 1:
        s = int(rng.integers(6, 28))
        t = ((xx // s + yy // s) % 2) * 2 - 1
    elif kind == 2:
        t = np.zeros((SIZE, SIZE), np.float32)
        for _ in range(5):
            cx, cy, r = *rng.uniform(0, SIZE, 2), rng.uniform(10, 50)
            t += np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r))
        t = t - t.mean()
    elif kind == 3:
        small = rng.normal(0, 1, (8, 8)).astype(np.float32)
        t = np.asarray(Image.fromarray(small).resize((SIZE, SIZE), Image.BICUBIC))
    else:
        t = np.zeros((SIZE, SIZE), np.float32)
    amp = rng.uniform(10, 45, size=3)
    arr = base + t[..., None] * amp
    g = rng.uniform(-0.4, 0.4, 2)  # lighting
    arr = arr * (1 + (g[0] * (xx / SIZE - 0.5) + g[1] * (yy / SIZE - 0.5)))[..., None]
    return arr


def _polygon(cx, cy, r, n, rot, inner=None, aspect=1.0):
    """Points of a regular polygon (or star, with `inner`), squashed by `aspect`, turned by `rot`."""
    steps = n * (2 if inner else 1)
    c, s = math.cos(rot), math.sin(rot)
    pts = []
    for i in range(steps):
        a = 2 * math.pi * i / steps
        rr = inner * r if inner and i % 2 else r
        x, y = rr * math.cos(a), rr * aspect * math.sin(a)
        pts.append((cx + x * c - y * s, cy + x * s + y * c))
    return pts


def _shape(d: ImageDraw.ImageDraw, shape: str, cx, cy, r, rot, colour, outline: int = 0):
    kw = {"outline": colour, "width": outline} if outline else {"fill": colour}
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], **kw)
    elif shape == "square":
        d.polygon(_polygon(cx, cy, r * 1.2, 4, rot), **kw)
    elif shape == "triangle":
        d.polygon(_polygon(cx, cy, r * 1.25, 3, rot), **kw)
    elif shape == "star":
        d.polygon(_polygon(cx, cy, r * 1.3, 5, rot, inner=0.45), **kw)
    elif shape == "cross":
        w = r * 0.35
        arm = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w),
               (-r, w), (-r, -w), (-w, -w)]
        c, s = math.cos(rot), math.sin(rot)
        d.polygon([(cx + x * c - y * s, cy + x * s + y * c) for x, y in arm], **kw)
    elif shape in SIDES:
        d.polygon(_polygon(cx, cy, r * 1.1, SIDES[shape], rot), **kw)
    elif shape == "hexagon":
        d.polygon(_polygon(cx, cy, r * 1.1, 6, rot), **kw)
    else:
        raise ValueError(shape)


def _distractors(d, rng, count: int, max_r: float):
    for _ in range(count):
        kind = int(rng.integers(0, 4))
        cx, cy = rng.uniform(0, SIZE, 2)
        r = rng.uniform(3, max_r)
        colour = _rgb(rng)
        if kind == 0:  # ring
            d.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=int(rng.integers(1, 4)))
        elif kind == 1:  # ellipse
            d.ellipse([cx - r, cy - r * 0.45, cx + r, cy + r * 0.45], fill=colour)
        elif kind == 2:  # crescent
            d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
            back = tuple(int(c) for c in rng.integers(0, 256, 3))
            d.ellipse([cx - r * 0.5, cy - r, cx + r * 1.5, cy + r], fill=back)
        else:  # line
            p = [tuple(rng.uniform(0, SIZE, 2)) for _ in range(2)]
            d.line(p, fill=colour, width=int(rng.integers(1, 4)))


def _finish(arr: np.ndarray, rng, noise: float, blur: float) -> Image.Image:
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    if rng.random() < blur:
        im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.4, 1.6))))
    out = np.asarray(im, np.float32) + rng.normal(0, rng.uniform(noise / 2, noise), (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _object_image(shape, rng, *, scale, contrast, clutter, occlude, noise, blur, outline_p=0.0,
                  aspect=None) -> Image.Image:
    bg = _background(rng)
    im = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    _distractors(d, rng, int(rng.integers(*clutter)), max_r=SIZE * scale[1] * 0.8)
    r = float(rng.uniform(*scale) * SIZE)
    margin = 1.35 * r
    cx, cy = (float(rng.uniform(margin, SIZE - margin)) for _ in range(2))
    rot = float(rng.uniform(0, 2 * math.pi))
    colour = _contrasting(rng, np.asarray(im, np.float32).mean((0, 1)), contrast)
    outline = int(max(2, r / 5)) if rng.random() < outline_p else 0
    if aspect is not None:
        a = float(rng.uniform(*aspect))
        pts = _polygon(cx, cy, r, 64, rot, aspect=a)
        d.polygon(pts, **({"outline": colour, "width": outline} if outline else {"fill": colour}))
    else:
        _shape(d, shape, cx, cy, r, rot, colour, outline)
    if rng.random() < occlude:  # a bar across part of the object
        w = r * rng.uniform(0.3, 0.6)
        x0 = cx + rng.choice([-1, 1]) * r * rng.uniform(0.4, 0.8)
        d.rectangle([x0 - w / 2, cy - 1.5 * r, x0 + w / 2, cy + 1.5 * r], fill=_rgb(rng))
    return _finish(np.asarray(im, np.float32), rng, noise, blur)


def _texture(name, rng) -> Image.Image:
    yy, xx = _grid()
    a = rng.uniform(0, math.pi)
    u = xx * math.cos(a) + yy * math.sin(a)
    v = -xx * math.sin(a) + yy * math.cos(a)
    period = rng.uniform(7, 24)
    if name == "stripes":
        t = (np.sin(2 * math.pi * u / period) > rng.uniform(-0.5, 0.5)).astype(np.float32)
    elif name == "checks":
        t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    elif name == "dots":
        ru = (u % period) - period / 2
        rv = (v % period) - period / 2
        t = (ru ** 2 + rv ** 2 < (period * rng.uniform(0.18, 0.32)) ** 2).astype(np.float32)
    elif name == "waves":
        amp = rng.uniform(3, 10)
        t = (np.sin(2 * math.pi * (u + amp * np.sin(2 * math.pi * v / (period * 2.5))) / period) > 0).astype(np.float32)
    elif name == "grid":
        w = rng.uniform(1.5, 3.5)
        t = (((u % period) < w) | ((v % period) < w)).astype(np.float32)
    else:  # speckle: random blobs, no period
        small = rng.random((int(SIZE / period * 2), int(SIZE / period * 2))).astype(np.float32)
        t = (np.asarray(Image.fromarray(small).resize((SIZE, SIZE), Image.BILINEAR)) > 0.5).astype(np.float32)
    c0 = np.array(_rgb(rng), np.float32)
    c1 = np.array(_contrasting(rng, c0, 50), np.float32)
    arr = c0 + t[..., None] * (c1 - c0)
    g = rng.uniform(-0.5, 0.5, 2)
    arr = arr * (1 + (g[0] * (xx / SIZE - 0.5) + g[1] * (yy / SIZE - 0.5)))[..., None]
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    _distractors(d, rng, int(rng.integers(0, 3)), max_r=14)
    return _finish(np.asarray(im, np.float32), rng, noise=14, blur=0.4)


def draw(kind: str, name: str, rng) -> Image.Image:
    if kind == "shapes":
        return _object_image(name, rng, scale=(0.16, 0.32), contrast=70, clutter=(1, 3), occlude=0.0,
                             noise=8, blur=0.3)
    if kind == "clutter":
        return _object_image(name, rng, scale=(0.10, 0.2), contrast=35, clutter=(3, 8), occlude=0.25,
                             noise=14, blur=0.4)
    if kind == "polygons":
        aspect = (0.8, 0.88) if name == "ellipse" else None
        shape = "circle" if name == "ellipse" else name
        return _object_image(shape, rng, scale=(0.14, 0.3), contrast=45, clutter=(1, 5), occlude=0.0,
                             noise=10, blur=0.3, outline_p=0.3, aspect=aspect)
    if kind == "textures":
        return _texture(name, rng)
    raise ValueError(f"unknown kind {kind!r}; choose from {', '.join(CLASSES)}")


def make(out_dir, kind: str, per_class: int = 50, seed: int = 0) -> dict:
    """Write OUT_DIR/{train,validation,test}/<class>/*.jpg; the same seed gives the same files."""
    out = Path(out_dir)
    names = CLASSES[kind]
    n_train = int(round(per_class * SPLITS[0]))
    n_val = int(round(per_class * SPLITS[1]))
    counts: dict = {"train": 0, "validation": 0, "test": 0}
    kind_id = list(CLASSES).index(kind)
    for ci, name in enumerate(names):
        rng = np.random.default_rng([int(seed), kind_id, ci])
        for i in range(per_class):
            split = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            im = draw(kind, name, rng)
            im.save(folder / f"{name}_{i:04d}.jpg", quality=int(rng.integers(85, 96)))
            counts[split] += 1
    return {"path": str(out.resolve()), "kind": kind, "classes": list(names), "counts": counts}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Generate the recipe benchmark's datasets.")
    parser.add_argument("out", type=Path, help="folder to write into (one sub-folder per kind)")
    parser.add_argument("--kinds", default=",".join(CLASSES), help="comma-separated kinds")
    parser.add_argument("--per-class", type=int, default=50, help="images per class")
    parser.add_argument("--seed", type=int, default=0, help="seed of the images")
    args = parser.parse_args(argv)
    report = [make(args.out / k, k, args.per_class, args.seed) for k in args.kinds.split(",")]
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
