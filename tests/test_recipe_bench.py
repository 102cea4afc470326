"""The recipe benchmark's own pieces (not its measurements): its datasets and its table."""
from __future__ import annotations

import json

from benchmarks import datasets, recipes


def test_each_kind_writes_six_classes_split_60_20_20_and_the_same_seed_the_same_bytes(tmp_path):
    from tlcore.data.pipeline import scan

    for kind in datasets.CLASSES:
        info = datasets.make(tmp_path / kind, kind, per_class=5, seed=3)
        assert info["counts"] == {"train": 18, "validation": 6, "test": 6}
        ds = scan(tmp_path / kind)
        assert sorted(ds.classes) == sorted(datasets.CLASSES[kind])
    again = datasets.make(tmp_path / "again", "polygons", per_class=5, seed=3)
    other = datasets.make(tmp_path / "other", "polygons", per_class=5, seed=4)
    first = tmp_path / "polygons" / "test" / "ellipse" / "ellipse_0004.jpg"
    assert (tmp_path / "again" / "test" / "ellipse" / "ellipse_0004.jpg").read_bytes() == first.read_bytes()
    assert (tmp_path / "other" / "test" / "ellipse" / "ellipse_0004.jpg").read_bytes() != first.read_bytes()
    assert again["classes"] == other["classes"]


def test_summary_averages_seeds_per_dataset_and_times_each_recipe_against_the_default_in_its_cell(tmp_path):
    rows = [
        {"recipe": "default", "kind": "a", "seed": 0, "test_accuracy": 0.8, "wall": 100},
        {"recipe": "default", "kind": "a", "seed": 1, "test_accuracy": 0.6, "wall": 50},
        {"recipe": "fast", "kind": "a", "seed": 0, "test_accuracy": 0.9, "wall": 50},
        {"recipe": "fast", "kind": "a", "seed": 1, "test_accuracy": 0.5, "wall": 25},
        {"recipe": "fast", "kind": "b", "seed": 0, "error": "boom", "wall": 3},
    ]
    path = tmp_path / "r.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    table = recipes.summary(path).splitlines()
    assert table[0].startswith("| recipe | a: test acc")
    assert "b:" not in table[0]  # a failed run is left out, not counted as 0
    default, fast = table[2], table[3]
    assert default.startswith("| default | 0.700 (0.60-0.80, 2) |") and default.endswith("| 75 | - | 1.00x | - |")
    assert fast.startswith("| fast | 0.700 (0.50-0.90, 2) |") and fast.endswith("| 38 | - | 0.50x | - |")


# --- the natural-photo dataset's pieces (benchmarks/natural.py); building it needs the archive ---

def _rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A Qt resource file (format 2) holding `files` (path -> (bytes, compressed)) under one folder."""
    import struct
    import zlib

    folder = {p.split("/")[0] for p in files}
    assert len(folder) == 1
    names, name_offsets = b"", {}
    for n in [*folder, *(p.split("/")[1] for p in files)]:
        name_offsets[n] = len(names)
        names += struct.pack(">HI", len(n), 0) + n.encode("utf-16-be")
    data, nodes = b"", []
    nodes.append(struct.pack(">IHII", 0, 2, 1, 1) + b"\0" * 8)  # root: 1 child at index 1
    nodes.append(struct.pack(">IHII", name_offsets[next(iter(folder))], 2, len(files), 2) + b"\0" * 8)
    for path, (raw, compressed) in files.items():
        payload = struct.pack(">I", len(raw)) + zlib.compress(raw) if compressed else raw
        nodes.append(struct.pack(">IHHHI", name_offsets[path.split("/")[1]], 1 if compressed else 0, 0, 0, len(data))
                     + b"\0" * 8)
        data += struct.pack(">I", len(payload)) + payload
    tree = b"".join(nodes)
    header = 4 + 16
    return (b"qres" + struct.pack(">IIII", 2, header, header + len(tree), header + len(tree) + len(data))
            + tree + data + names)


def test_the_resource_reader_returns_each_file_with_its_path_plain_or_compressed(tmp_path):
    from benchmarks import natural

    path = tmp_path / "a.rcc"
    path.write_bytes(_rcc({"img/fish1.webp": (b"plain bytes", False), "img/README": (b"licence " * 20, True)}))
    assert natural.read_rcc(path) == {"img/fish1.webp": b"plain bytes", "img/README": b"licence " * 20}
    (tmp_path / "b.rcc").write_bytes(b"not a resource file")
    import pytest

    with pytest.raises(ValueError, match="not a Qt resource file"):
        natural.read_rcc(tmp_path / "b.rcc")


def test_natural_writer_splits_60_20_20_draws_by_seed_drops_repeats_and_puts_cut_outs_on_white(tmp_path):
    import io

    import numpy as np
    import pytest
    from PIL import Image

    from benchmarks import natural
    from tlcore.data.pipeline import scan

    def png(seed: int, size=(40, 30), alpha=False) -> bytes:
        """A smooth random picture (a 4x4 grid of colours, enlarged): resizing keeps its thumbnail."""
        small = np.random.default_rng(seed).integers(0, 256, (4, 4, 3), dtype=np.uint8)
        im = Image.fromarray(small).resize(size, Image.BICUBIC)
        if alpha:
            im.putalpha(0)  # fully transparent: must come out white
        buf = io.BytesIO()
        im.save(buf, "PNG")
        return buf.getvalue()

    items = {"a": [(f"a{i}", png(i)) for i in range(6)] + [("a0-smaller", png(0, (20, 15)))],
             "b": [(f"b{i}", png(100 + i, alpha=i == 0)) for i in range(5)] + [("big", png(7, (600, 400)))]}
    images = {c: natural.distinct(v) for c, v in items.items()}
    assert [s for s, _ in images["a"]] == [f"a{i}" for i in range(6)]  # the same photo smaller: dropped
    assert len(images["b"]) == 6 and dict(images["b"])["big"].size == (natural.MAX_SIDE, 171)
    white = dict(images["b"])["b0"]
    assert white.mode == "RGB" and np.asarray(white).min() == 255

    report = natural.write_dataset(images, tmp_path / "d", per_class=5, seed=1)
    assert report["counts"] == {"train": 6, "validation": 2, "test": 2}
    assert sorted(scan(tmp_path / "d").classes) == ["a", "b"]
    again = natural.write_dataset(images, tmp_path / "e", per_class=5, seed=1)
    other = natural.write_dataset(images, tmp_path / "f", per_class=5, seed=2)
    assert again["images"] == report["images"]
    assert other["images"] != report["images"]  # another seed draws other photos or another order
    with pytest.raises(SystemExit, match="too few images"):
        natural.write_dataset(images, tmp_path / "g", per_class=7)
