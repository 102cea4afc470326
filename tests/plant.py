"""Generated datasets with known problems for the health tests: colour classes of equal
luminance, a tiny saved backbone that keeps or drops colour, and planted problems.

Plant known problems in a split-layout dataset: wrong-class images, resized or re-encoded
copies across splits, noise images. Used by the audit tests and the measurement script."""
from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file())


def plant(root, wrong: int = 6, copies: int = 4, noise: int = 0, seed: int = 0) -> dict:
    """Move `wrong` train images into another class, copy `copies` train images (resized,
    re-encoded as JPEG, or lightly cropped) into validation/test, add `noise` noise images.

    Returns:
        {wrong: [new path], copies: [(original, copy)], noise: [path]} (absolute paths)
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    classes = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
    out: dict = {"wrong": [], "copies": [], "noise": []}
    for k in range(wrong):
        src_class = classes[k % len(classes)]
        dst_class = classes[(k + 1) % len(classes)]
        files = _images(root / "train" / src_class)
        src = files[int(rng.integers(len(files)))]
        dst = root / "train" / dst_class / f"moved_{k}{src.suffix}"
        shutil.move(str(src), dst)
        out["wrong"].append(str(dst.resolve()))
    targets = [s for s in ("validation", "test") if (root / s).is_dir()] or ["train"]
    for k in range(copies):
        cls = classes[k % len(classes)]
        files = [f for f in _images(root / "train" / cls) if not f.name.startswith("moved_")]
        src = files[len(files) // 2 + k]
        im = Image.open(src).convert("RGB")
        w, h = im.size
        split = targets[k % len(targets)]
        dst = root / split / cls / f"copy_{k}.jpg"
        kind = k % 3
        if kind == 0:
            im = im.resize((int(w * 1.5), int(h * 1.5)), Image.BICUBIC)
        elif kind == 2:
            im = im.crop((2, 2, w - 2, h - 2))
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=85)
        dst.write_bytes(buf.getvalue())
        out["copies"].append((str(src.resolve()), str(dst.resolve())))
    for k in range(noise):
        cls = classes[k % len(classes)]
        size = Image.open(_images(root / "train" / cls)[0]).size
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        dst = root / "train" / cls / f"noise_{k}.png"
        Image.fromarray(arr).save(dst)
        out["noise"].append(str(dst.resolve()))
    return out


# Equal luminance (mean of R, G, B is 100 for each): only colour tells them apart.
COLOURS = {"red": (200, 50, 50), "green": (50, 200, 50), "blue": (50, 50, 200)}


def _pattern_image(rng, colour, size=32) -> Image.Image:
    """A smooth random pattern (unique per image, survives resizing) tinted in `colour`."""
    cells = Image.fromarray((rng.uniform(0.35, 1.0, (4, 4)) * 255).astype("uint8"))
    shade = np.asarray(cells.resize((size, size), Image.BICUBIC), dtype=float)[..., None] / 255.0
    arr = shade * np.array(colour, dtype=float) + rng.normal(0, 3, (size, size, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype("uint8"))


def write_patterns(root: Path, counts=(24, 6, 6), seed=0) -> Path:
    rng = np.random.default_rng(seed)
    for split, n in zip(("train", "validation", "test"), counts):
        for c, colour in COLOURS.items():
            d = root / split / c
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                _pattern_image(rng, colour).save(d / f"{c}_{i}.png")
    return root


def hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and ".tlcore" not in p.parts}


def save_colour_model(path: Path, gray_after_colour: bool) -> Path:
    """input -> 'colour' (1x1 conv keeping R, G, B) -> 'gray' (their mean: colour gone) ->
    'smooth' (3x3 average pool) -> 'flat' (8x8 averages, flattened: keeps the layout)."""
    import keras

    inputs = keras.Input((32, 32, 3))
    colour = keras.layers.Conv2D(3, 1, name="colour", kernel_initializer=keras.initializers.Constant(np.eye(3).reshape(1, 1, 3, 3)))(inputs)
    gray = keras.layers.Conv2D(1, 1, name="gray", kernel_initializer=keras.initializers.Constant(1 / 3))(colour)
    x = gray if gray_after_colour else colour
    x = keras.layers.AveragePooling2D(3, strides=1, padding="same", name="smooth")(x)
    x = keras.layers.AveragePooling2D(8, name="pool")(x)
    out = keras.layers.Flatten(name="flat")(x)
    keras.Model(inputs, out).save(path)
    return path


