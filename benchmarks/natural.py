"""A benchmark dataset of real photographs, built from two Debian packages.

The recipe benchmark's generated datasets (benchmarks/datasets.py) are drawings, where ImageNet
features help little. This script builds a 6-class set of real photos from two packages of
Debian's archive, fetched with ``apt-get download`` (the package tool knows its archive) into a
temporary folder and unpacked with ``dpkg-deb``; nothing is installed:

- ``tuxpaint-stamps-default`` (GPL-2 or later, Tux Paint's stamps): photographs of birds, mammals, fish,
  fruit, vegetables and tools, cut out on a transparent background (composited here on white).
  Drawn stamps (``cartoon`` folders) and mirrored copies (``*_mirror.png``) are left out.
- ``gcompris-qt-data`` (GCompris' data; each photo's licence is in a README beside it: public
  domain, CC0, CC BY or CC BY-SA 4.0, mostly from Wikimedia Commons): whole photographs with
  their backgrounds (fish under water, tools, monuments, farm and world animals), read out of the
  Qt resource (``.rcc``) files the package ships.

Classes: ``bird``, ``mammal``, ``fish``, ``produce`` (fruit and vegetables), ``tool`` and
``landmark``; 39-82 distinct photos each with the package versions of 2026-12 (the same photo
twice is dropped by comparing thumbnails). The classes mix cut-outs on white with whole photos,
so the background alone does not tell them apart.

    python -m benchmarks.natural OUT [--per-class 35] [--classes bird,mammal,...] [--seed 0]

writes OUT/{train,validation,test}/<class>/*.jpg (60/20/20 per class, like benchmarks/datasets.py;
the longer side at most 256 px) and OUT/SOURCES.json (each image's package, member path and the
packages' versions). The same seed and package versions give the same files. Not run by the tests
(it needs the archive); tests/test_recipe_bench.py checks the writer and the resource reader.
"""
from __future__ import annotations

import argparse
import io
import json
import random
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

SPLITS = (0.6, 0.2, 0.2)
MAX_SIDE = 256
TUX = "tuxpaint-stamps-default"
GCOMPRIS = "gcompris-qt-data"
LICENCES = {
    TUX: "GPL-2 or later (Debian copyright file of tuxpaint-stamps)",
    GCOMPRIS: "per photo, in the README beside it: public domain, CC0-1.0, CC-BY, CC-BY-SA-4.0",
}
_STAMPS = "usr/share/tuxpaint/stamps/"
_RCC = "usr/share/gcompris-qt/rcc/"
_ACT = "gcompris/src/activities/"
_FARM = _ACT + "explore_farm_animals/resource/animals/"
_WORLD = _ACT + "explore_world_animals/resource/animals/"

# class -> where its photos are: (package, glob) for files, (package, rcc file, folder, names or None)
# for images inside a GCompris .rcc file (None: every image under the folder)
SOURCES: dict[str, list[tuple]] = {
    "bird": [(TUX, _STAMPS + "animals/birds/*.png"),
             (GCOMPRIS, "explore_farm_animals", _FARM, ("chicken", "duck", "owl")),
             (GCOMPRIS, "explore_world_animals", _WORLD, ("scarlet_macaw",))],
    "mammal": [(TUX, _STAMPS + "animals/mammals/**/*.png"),
               (GCOMPRIS, "explore_farm_animals", _FARM, ("cat", "cow", "dog", "horse", "pig", "sheep")),
               (GCOMPRIS, "explore_world_animals", _WORLD,
                ("bison", "giraffe", "hedgehog", "jaguar", "kangaroo", "koala", "lemur", "moose", "narwhal",
                 "panda", "polar_bear"))],
    "fish": [(TUX, _STAMPS + "animals/fish/*.png"),
             (GCOMPRIS, "categorization", _ACT + "categorization/resource/images/fishes/", None)],
    "produce": [(TUX, _STAMPS + "food/fruit/*.png"), (TUX, _STAMPS + "food/vegetables/*.png")],
    "tool": [(TUX, _STAMPS + "household/tools/*.png"),
             (GCOMPRIS, "categorization", _ACT + "categorization/resource/images/tools/", None)],
    "landmark": [(GCOMPRIS, "categorization", _ACT + "categorization/resource/images/monuments/", None),
                 (GCOMPRIS, "explore_monuments", _ACT + "explore_monuments/resource/", None)],
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def read_rcc(path) -> dict[str, bytes]:
    """The files inside a Qt resource file (.rcc, format versions 1-3): path -> bytes."""
    b = Path(path).read_bytes()
    if b[:4] != b"qres":
        raise ValueError(f"{path} is not a Qt resource file")
    version, tree, data, names = struct.unpack(">IIII", b[4:20])
    node_size = 14 if version == 1 else 22

    def name(offset: int) -> str:
        o = names + offset
        n = struct.unpack(">H", b[o:o + 2])[0]
        return b[o + 6:o + 6 + 2 * n].decode("utf-16-be")

    out: dict[str, bytes] = {}

    def walk(index: int, prefix: str) -> None:
        o = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", b[o:o + 6])
        here = name(name_offset) if index else ""
        if flags & 2:  # a directory: child count, first child's index
            count, first = struct.unpack(">II", b[o + 6:o + 14])
            for child in range(count):
                walk(first + child, f"{prefix}{here}/" if index else "")
            return
        p = data + struct.unpack(">I", b[o + 10:o + 14])[0]
        size = struct.unpack(">I", b[p:p + 4])[0]
        raw = b[p + 4:p + 4 + size]
        if flags & 1:  # qCompress: 4-byte length, then zlib
            raw = zlib.decompress(raw[4:])
        elif flags & 4:
            raise ValueError(f"{prefix}{here} in {path} is zstd-compressed, which this reader does not handle")
        out[prefix + here] = raw

    walk(0, "")
    return out


def fetch(packages, into: Path) -> dict[str, dict]:
    """Download each package with apt-get into `into` and unpack it there (nothing is installed)."""
    found = {}
    for package in packages:
        subprocess.run(["apt-get", "download", "-q", package], cwd=into, check=True,
                       stdout=subprocess.DEVNULL)
        debs = sorted(into.glob(f"{package}_*.deb"))
        if not debs:
            raise SystemExit(f"apt-get downloaded no {package} package into {into} (run apt-get update?)")
        root = into / package
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
        found[package] = {"root": root, "version": debs[-1].name.split("_")[1]}
    return found


def _accept_stamp(path: Path) -> bool:
    parts = path.parts
    return "cartoon" not in parts and not path.stem.endswith("_mirror")


def collect(roots: dict[str, Path], classes) -> dict[str, list[tuple[str, bytes]]]:
    """Per class: (source id, image bytes) for every photo its sources hold, in a fixed order."""
    rcc_cache: dict[tuple, dict] = {}
    found: dict[str, list] = {}
    for cls in classes:
        items = []
        for source in SOURCES[cls]:
            package = source[0]
            root = roots[package]
            if len(source) == 2:
                pattern = source[1]
                for path in sorted(root.glob(pattern)):
                    if _accept_stamp(path.relative_to(root)):
                        items.append((f"{package}:{path.relative_to(root)}", path.read_bytes()))
                continue
            _, rcc, folder, stems = source
            key = (package, rcc)
            if key not in rcc_cache:
                rcc_cache[key] = read_rcc(root / _RCC / f"{rcc}.rcc")
            for member in sorted(rcc_cache[key]):
                p = PurePosixPath(member)
                if not member.startswith(folder) or p.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                if stems is not None and p.stem not in stems:
                    continue
                items.append((f"{package}:{rcc}.rcc:{member}", rcc_cache[key][member]))
        found[cls] = items
    return found


def to_rgb(data: bytes, max_side: int = MAX_SIDE) -> Image.Image:
    """An RGB image, transparency composited on white, the longer side at most `max_side`."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    white.alpha_composite(rgba)
    rgb = white.convert("RGB")
    rgb.thumbnail((max_side, max_side), Image.LANCZOS)
    return rgb


def thumbnail(im: Image.Image) -> np.ndarray:
    return np.asarray(im.resize((16, 16), Image.BILINEAR), np.float32)


def distinct(items, max_difference: float = 5.0) -> list[tuple[str, Image.Image]]:
    """`items` decoded, dropping any image whose 16x16 thumbnail is within `max_difference` (mean
    absolute difference, 0-255) of an earlier one's: the same photo at two sizes, as in GCompris'
    two monument activities (those differ by 0.3-0.5; different photos here by 10 or more)."""
    kept, thumbs = [], []
    for source, data in items:
        im = to_rgb(data)
        t = thumbnail(im)
        if any(float(np.abs(t - other).mean()) <= max_difference for other in thumbs):
            continue
        kept.append((source, im))
        thumbs.append(t)
    return kept


def write_dataset(images: dict[str, list[tuple[str, Image.Image]]], out, per_class: int, seed: int = 0) -> dict:
    """OUT/{train,validation,test}/<class>/*.jpg: `per_class` images per class drawn with `seed`,
    split 60/20/20; refuses a class with fewer images than asked for."""
    out = Path(out)
    short = {c: len(v) for c, v in images.items() if len(v) < per_class}
    if short:
        raise SystemExit(f"too few images for --per-class {per_class}: {short}; ask for fewer")
    n_train = round(per_class * SPLITS[0])
    n_val = round(per_class * SPLITS[1])
    counts = {"train": 0, "validation": 0, "test": 0}
    manifest: dict[str, list] = {}
    for ci, cls in enumerate(images):
        chosen = list(images[cls])
        random.Random(f"{seed}:{cls}").shuffle(chosen)
        for i, (source, im) in enumerate(chosen[:per_class]):
            split = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
            folder = out / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            name = f"{cls}_{i:04d}.jpg"
            im.save(folder / name, quality=92)
            counts[split] += 1
            manifest.setdefault(cls, []).append({"file": f"{split}/{cls}/{name}", "source": source})
    return {"path": str(out.resolve()), "classes": list(images), "counts": counts, "images": manifest}


def build(out, per_class: int = 35, classes=None, seed: int = 0, work=None) -> dict:
    classes = list(classes or SOURCES)
    unknown = [c for c in classes if c not in SOURCES]
    if unknown:
        raise SystemExit(f"unknown class(es) {unknown}; choose from {', '.join(SOURCES)}")
    packages = sorted({s[0] for c in classes for s in SOURCES[c]})
    with tempfile.TemporaryDirectory(prefix="tlcore-natural-", dir=work) as tmp:
        fetched = fetch(packages, Path(tmp))
        raw = collect({p: f["root"] for p, f in fetched.items()}, classes)
        images = {c: distinct(items) for c, items in raw.items()}
    report = write_dataset(images, out, per_class, seed)
    report["available"] = {c: len(v) for c, v in images.items()}
    report["packages"] = {p: {"version": f["version"], "licence": LICENCES[p]} for p, f in fetched.items()}
    report["seed"] = seed
    (Path(out) / "SOURCES.json").write_text(json.dumps(report, indent=1))
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Build the natural-photo benchmark dataset from Debian packages.")
    parser.add_argument("out", type=Path, help="folder to write the dataset into")
    parser.add_argument("--per-class", type=int, default=35, help="images per class (split 60/20/20)")
    parser.add_argument("--classes", default=",".join(SOURCES), help="comma-separated classes")
    parser.add_argument("--seed", type=int, default=0, help="which photos each class draws")
    args = parser.parse_args(argv)
    report = build(args.out, args.per_class, args.classes.split(","), args.seed)
    print(json.dumps({k: v for k, v in report.items() if k != "images"}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
