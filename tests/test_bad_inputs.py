"""Bad input, faults and safe defaults.

A corpus of bad inputs, every one generated here in `tmp_path` (a few KB in all), each with
the exact outcome expected: the refusal or skip reason from `images.load_image`,
`images.check_image` (what `scan` lists), `data.scan`, `importer.import_dataset`, or the
command line's one JSON document; and that nothing was written outside the target folder.
Command-line checks run as real processes, several at a time (most fail before TensorFlow
loads); the few trainings use ResNet50 with random weights at 32 px.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import unicodedata
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from datagen import write_flat, write_split
from tlcore.data.pipeline import scan
from tlcore.core.errors import TLCoreError, flag
from tlcore.data.images import MAX_PIXELS, ImageProblem, check_image, load_image
from tlcore.data.importer import import_dataset

# Pillow warns (and the studio refuses) between MAX_PIXELS and twice that.
pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
FAST = ["--backbone", "ResNet50", "--weights", "none", "--input-size", "32", "--batch-size", "16",
        "--augment", "none", "--early-stopping", "0"]


# ============================================================================ helpers


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    """Whatever the engine writes in-process lands in this test's tmp_path."""
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path below `root` (links not followed) with its kind, size and modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = os.lstat(p)
            out[p.relative_to(root).as_posix()] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def changed(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def tl(*args, home: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run([sys.executable, "-m", "tlcore", *map(str, args)], capture_output=True,
                          text=True, encoding="utf-8", env=env, timeout=timeout)


def one_json(proc: subprocess.CompletedProcess):
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"stdout must be exactly one JSON line: {proc.stdout!r}\n{proc.stderr[-3000:]}"
    return json.loads(lines[0])


def run_states(home: Path, with_option: bool = False) -> list[tuple]:
    runs = home / "runs"
    if not runs.is_dir():
        return []
    out = []
    for d in sorted(p for p in runs.iterdir() if p.is_dir()):
        status = json.loads((d / "status.json").read_text(encoding="utf-8"))
        row = (status["state"], status.get("error"))
        out.append(row + (status.get("error_option"),) if with_option else row)
    return out


def _encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_by_hand(width: int, height: int, extra: bytes = b"", rows: int = 4) -> bytes:
    """An 8-bit RGB PNG header declaring `width`x`height`, with a few rows of real data:
    a decompression bomb when the size is enormous, yet only ~100 bytes on disk."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    raw = b"".join(b"\0" + b"\x80" * (3 * min(width, 64)) for _ in range(rows))
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + extra
            + _png_chunk(b"IDAT", zlib.compress(raw)) + _png_chunk(b"IEND", b""))


def _jpeg_with_size(width: int, height: int) -> bytes:
    data = bytearray(_encode(Image.new("RGB", (8, 8), RED), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _halves(width=32, height=16) -> Image.Image:
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[:, : width // 2] = RED
    arr[:, width // 2:] = BLUE
    return Image.fromarray(arr)


def _close(pixel, colour, tol=40) -> bool:
    return bool(np.all(np.abs(np.asarray(pixel, dtype=int) - np.array(colour)) <= tol))


# ============================================================================ the corpus

JPEG = _encode(_noise(64, 64), "JPEG", quality=90)
PNG = _encode(_noise(64, 64), "PNG")
NOT_AN_IMAGE = "not an image (Pillow cannot identify it)"
TRUNCATED = "cannot decode: truncated image file"
BOMB_LOAD = f"image too large: above the limit of {MAX_PIXELS} pixels"
BOMB_SCAN = "image too large: above the limit of 80000000 pixels"

# name -> (bytes, reason from load_image, reason from check_image / scan)
REFUSED = {
    "empty.jpg": (b"", "empty file", "empty file"),
    "zero_bytes.png": (b"", "empty file", "empty file"),
    "truncated.jpg": (JPEG[: len(JPEG) // 2], TRUNCATED, TRUNCATED),
    "truncated.png": (PNG[: len(PNG) // 2], TRUNCATED, TRUNCATED),
    "header_only.jpg": (JPEG[:200], "cannot open: Truncated File Read", "cannot open: Truncated File Read"),
    "text.jpg": (b"just some text, saved with the wrong name\n", NOT_AN_IMAGE, NOT_AN_IMAGE),
    "page.png": (b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n", NOT_AN_IMAGE, NOT_AN_IMAGE),
    "drawing.png": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>', NOT_AN_IMAGE,
                    NOT_AN_IMAGE),
    "bad_crc.png": (_png_by_hand(4, 4)[:29] + b"\0\0\0\0" + _png_by_hand(4, 4)[33:], NOT_AN_IMAGE,
                    NOT_AN_IMAGE),
    "bomb.png": (_png_by_hand(100_000, 100_000), BOMB_LOAD, BOMB_SCAN),
    "bomb_90mp.png": (_png_by_hand(10_000, 9_000),
                      f"image too large: 10000x9000 pixels is above the limit of {MAX_PIXELS}",
                      f"image too large: 10000x9000 pixels is above the limit of {MAX_PIXELS}"),
    "bomb.jpg": (_jpeg_with_size(60_000, 60_000), BOMB_LOAD, BOMB_SCAN),
}


def _text_chunk_bomb() -> bytes:
    """A 4x4 PNG whose zTXt comment inflates to 64 MiB (Pillow stops at MAX_TEXT_CHUNK)."""
    text = b"Comment\0\0" + zlib.compress(b"A" * (64 * 2 ** 20), 9)
    return _png_by_hand(4, 4, extra=_png_chunk(b"zTXt", text))


def _palette_with_transparency() -> bytes:
    im = Image.new("P", (8, 8), 0)
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * (254 * 3))
    for x in range(4, 8):
        for y in range(8):
            im.putpixel((x, y), 1)
    return _encode(im, "PNG", transparency=0)  # index 0 (left half) transparent


def _grey_alpha() -> bytes:
    arr = np.zeros((8, 8, 2), dtype=np.uint8)
    arr[:, 4:] = (60, 255)  # right half opaque dark grey, left half black but transparent
    return _encode(Image.fromarray(arr, "LA"), "PNG")


def _deep_png() -> bytes:
    arr = np.zeros((8, 8), dtype=np.uint16)
    arr[:, 4:] = 65535
    im = Image.fromarray(arr)
    assert im.mode == "I;16"
    return _encode(im, "PNG")


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (8, 8), c) for c in (RED, BLUE, GREEN)]
    return _encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to show
    return _encode(_halves(), "JPEG", quality=95, exif=exif)


def _garbage_exif_jpeg() -> bytes:
    data = _encode(Image.new("RGB", (8, 8), RED), "JPEG", quality=95)
    payload = b"Exif\0\0" + b"\xde\xad\xbe\xef" * 8
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def _check_one_pixel(a):
    return np.array_equal(a, np.broadcast_to((10, 200, 30), a.shape))


def _check_rotated(a):  # the stored left (red) half ends up on top
    return _close(a[2, 16], RED) and _close(a[29, 16], BLUE)


# name -> (bytes, check of the 32x32 RGB array load_image returns)
USABLE = {
    "one_pixel.png": (_encode(Image.new("RGB", (1, 1), (10, 200, 30)), "PNG"), _check_one_pixel),
    "sliver.png": (_encode(Image.new("RGB", (1, 300), BLUE), "PNG"), lambda a: _close(a[16, 16], BLUE, 0)),
    "animated.gif": (_animated_gif(), lambda a: _close(a[16, 16], RED, 5)),
    "deep_16bit.png": (_deep_png(), lambda a: np.all(a[:, :14] == 0) and np.all(a[:, 18:] == 255)),
    "cmyk.jpg": (_encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95),
                 lambda a: _close(a[16, 16], RED, 10)),
    "rotated.jpg": (_rotated_jpeg(), _check_rotated),
    "palette_transparent.png": (_palette_with_transparency(),
                                lambda a: _close(a[16, 2], WHITE, 0) and _close(a[16, 29], GREEN, 0)),
    "grey_alpha.png": (_grey_alpha(),
                       lambda a: _close(a[16, 2], WHITE, 0) and _close(a[16, 29], (60, 60, 60), 0)),
    "garbage_exif.jpg": (_garbage_exif_jpeg(), lambda a: _close(a[16, 16], RED, 10)),
    "SHOUTING.JPG": (_encode(Image.new("RGB", (8, 8), GREEN), "JPEG", quality=95),
                     lambda a: _close(a[16, 16], GREEN, 10)),
}


@pytest.fixture
def corpus(tmp_path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, (data, *_rest) in {**REFUSED, **USABLE}.items():
        (folder / name).write_bytes(data)
    return folder


def test_corpus_is_large_and_small():
    assert len(REFUSED) + len(USABLE) >= 20
    assert max(len(data) for data, *_ in {**REFUSED, **USABLE}.values()) < 10_000
    assert len(_text_chunk_bomb()) < 100_000


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused_image(corpus, tmp_path, name):
    _, load_reason, scan_reason = REFUSED[name]
    before = snapshot(tmp_path)
    with pytest.raises(ImageProblem) as info:
        load_image(corpus / name, 32)
    assert str(info.value) == load_reason
    assert check_image(corpus / name) == scan_reason
    assert changed(before, snapshot(tmp_path)) == []


@pytest.mark.parametrize("name", sorted(USABLE))
def test_usable_odd_image(corpus, name):
    _, check = USABLE[name]
    assert check_image(corpus / name) is None
    arr = load_image(corpus / name, 32)
    assert arr.shape == (32, 32, 3) and arr.dtype == np.uint8
    assert check(arr), arr[::8, ::8].tolist()


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_by_hand(100_000, 100_000))
    assert path.stat().st_size < 200
    t0 = time.perf_counter()
    with pytest.raises(ImageProblem, match="^image too large"):
        load_image(path, 32)
    assert time.perf_counter() - t0 < 2.0  # refused from the header, not decoded


def test_png_text_chunk_bomb_is_a_problem_not_a_crash(tmp_path):
    """A compressed text chunk that inflates past Pillow's MAX_TEXT_CHUNK raises ValueError
    from Image.open; it must be reported like any other unusable file."""
    path = tmp_path / "text_bomb.png"
    path.write_bytes(_text_chunk_bomb())
    reason = check_image(path)
    assert isinstance(reason, str) and "too large" in reason
    with pytest.raises(ImageProblem, match="too large"):
        load_image(path, 32)


# ============================================================================ scan and import


def _dataset_with_corpus(root: Path, corpus: Path) -> Path:
    """Two good classes of 12 images; every corpus file added to red/; litter, a nested
    zip, a stray file and symbolic links around them."""
    write_flat(root, classes=("red", "green"), n=16)
    for f in corpus.iterdir():
        shutil.copy(f, root / "red" / f.name)
    for litter in (".DS_Store", "Thumbs.db", "desktop.ini", "._red_0.png", ".hidden.png"):
        (root / "red" / litter).write_bytes(b"\0\x05\x16\x07 litter")
    (root / ".DS_Store").write_bytes(b"\0 litter")
    (root / "__MACOSX").mkdir()
    (root / "__MACOSX" / "._red_1.png").write_bytes(b"litter")
    with zipfile.ZipFile(root / "green" / "more.zip", "w") as zf:
        zf.writestr("inner/x.png", _encode(Image.new("RGB", (4, 4), GREEN), "PNG"))
    (root / "notes.txt").write_text("taken on holiday\n")
    (root / "green" / "readme.md").write_text("green things\n")
    outside = root.parent / "outside.png"
    outside.write_bytes(_encode(Image.new("RGB", (4, 4), GREEN), "PNG"))
    (root / "green" / "link.png").symlink_to(outside)
    return root


def _expected_scan_problems(prefix: str = "") -> list[dict]:
    problems = [{"file": f"{prefix}red/{name}", "reason": reasons[2]} for name, reasons in REFUSED.items()]
    problems += [
        {"file": "notes.txt", "reason": "file outside any class folder, skipped"},
        {"file": f"{prefix}green/link.png", "reason": "symbolic link, skipped"},
        {"file": f"{prefix}green/more.zip", "reason": "archive inside the dataset, not expanded"},
        {"file": f"{prefix}green/readme.md", "reason": "not an image file (extension .md)"},
    ]
    return sorted(problems, key=lambda p: p["file"])


def test_scan_lists_every_bad_file_once_and_ignores_litter(tmp_path, corpus):
    root = _dataset_with_corpus(tmp_path / "data", corpus)
    before = snapshot(tmp_path)
    ds = scan(root, val_split=0.2, test_split=0.1, seed=1)
    assert changed(before, snapshot(tmp_path)) == []  # scanning writes nothing
    assert ds.classes == ["green", "red"] and ds.layout == "folders"
    assert sorted(ds.problems, key=lambda p: p["file"]) == _expected_scan_problems()
    counts = ds.counts()
    assert sum(counts[s]["red"] for s in counts) == 16 + len(USABLE)
    assert sum(counts[s]["green"] for s in counts) == 16
    used = {Path(f).name for split in ds.files.values() for f, _ in split}
    assert set(USABLE) <= used and not used & set(REFUSED)
    assert not any(n.startswith(".") or n in ("Thumbs.db", "desktop.ini") for n in used)
    assert ds.warnings == []


def test_scan_lists_a_symlinked_class_folder(tmp_path):
    """A class folder that is a symbolic link is skipped: it must say so, as import does."""
    root = write_flat(tmp_path / "data", classes=("red", "green"), n=12)
    write_flat(tmp_path / "elsewhere", classes=("blue",), n=12)
    (root / "blue").symlink_to(tmp_path / "elsewhere" / "blue", target_is_directory=True)
    ds = scan(root)
    assert ds.classes == ["green", "red"]
    assert {"file": "blue/", "reason": "symbolic link, skipped"} in ds.problems or \
        {"file": "blue", "reason": "symbolic link, skipped"} in ds.problems, ds.problems


def test_import_folder_with_corpus_writes_only_the_dataset(tmp_path, corpus):
    src = _dataset_with_corpus(tmp_path / "src" / "holiday", corpus)
    before = snapshot(tmp_path)
    out = import_dataset(src)
    target = tmp_path / "home" / "datasets" / "holiday"
    assert out["path"] == str(target)
    assert out["classes"] == ["green", "red"]
    outside_target = {k: v for k, v in snapshot(tmp_path).items()
                      if not k.startswith("home/datasets/holiday/")}
    assert changed(before, outside_target) == ["home", "home/datasets", "home/datasets/holiday"]
    assert sorted(p.name for p in (tmp_path / "home" / "datasets").iterdir()) == ["holiday"]
    # Copy problems (link and archive are not copied), then what the scan of the copy found.
    copy_problems = [{"file": "green/link.png", "reason": "symbolic link, skipped"},
                     {"file": "green/more.zip", "reason": "archive inside the folder, not expanded"}]
    assert out["problems"][:2] == copy_problems
    scanned = [p for p in _expected_scan_problems()
               if p["file"] not in ("green/link.png", "green/more.zip")]
    assert sorted(out["problems"][2:], key=lambda p: p["file"]) == scanned
    copied = {p.relative_to(target).as_posix() for p in target.rglob("*")}
    assert not any(part.startswith(".") or part in ("Thumbs.db", "desktop.ini", "__MACOSX")
                   for c in copied for part in c.split("/"))


def test_import_zip_with_a_zip_inside(tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("x.png", _encode(Image.new("RGB", (4, 4), RED), "PNG"))
    archive = tmp_path / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for c, colour in (("cats", RED), ("dogs", BLUE)):
            for i in range(3):
                zf.writestr(f"pets/{c}/{i}.png", _encode(Image.new("RGB", (4, 4), colour), "PNG"))
        zf.writestr("pets/cats/nested.zip", inner.getvalue())
        zf.writestr("pets/dogs/.DS_Store", b"litter")
        zf.writestr("__MACOSX/pets/cats/._0.png", b"litter")
    before = snapshot(tmp_path)
    out = import_dataset(archive)
    assert out["problems"] == [{"file": "pets/cats/nested.zip",
                                "reason": "archive inside the archive, not expanded"}]
    assert out["classes"] == ["cats", "dogs"]
    assert {c: sum(out["counts"][s][c] for s in out["counts"]) for c in ("cats", "dogs")} == \
        {"cats": 3, "dogs": 3}
    target = tmp_path / "home" / "datasets" / "pets"
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*")) == [
        "cats", "cats/0.png", "cats/1.png", "cats/2.png", "dogs", "dogs/0.png", "dogs/1.png", "dogs/2.png"]
    rest = {k: v for k, v in snapshot(tmp_path).items() if not k.startswith("home/datasets/pets/")}
    assert changed(before, rest) == ["home", "home/datasets", "home/datasets/pets"]


def test_import_with_a_text_chunk_bomb_lists_it_and_keeps_nothing_half_done(tmp_path):
    src = write_flat(tmp_path / "src", classes=("red", "green"), n=4)
    (src / "red" / "text_bomb.png").write_bytes(_text_chunk_bomb())
    try:
        out = import_dataset(src)
    except BaseException:
        left = sorted(p.name for p in (tmp_path / "home" / "datasets").iterdir())
        assert left == [], f"a failed import left {left} behind"
        raise
    else:
        assert [p["file"] for p in out["problems"]] == ["red/text_bomb.png"]
        assert "too large" in out["problems"][0]["reason"]


@pytest.mark.parametrize("make, message", [
    (lambda d: write_flat(d, classes=("red",), n=5),
     "A classifier needs at least 2 classes with images; {root} has 1 (red). "
     "Add a folder of images per class."),
    (lambda d: [(d / c).mkdir(parents=True) for c in ("a", "b")],
     "A classifier needs at least 2 classes with images; {root} has 0 (none). "
     "Add a folder of images per class."),
    (lambda d: (d.mkdir(), (d / "x.png").write_bytes(PNG)),
     "{root} has no class folders. Put each class's images in its own sub-folder (DATA/cats/, "
     "DATA/dogs/), or use DATA/train/<class>/ and DATA/validation/<class>/."),
    (lambda d: (write_flat(d, classes=("red",), n=5), (d / "green").mkdir(),
                (d / "green" / "broken.png").write_bytes(PNG[:40])),
     "A classifier needs at least 2 classes with images; {root} has 1 (red). "
     "Add a folder of images per class."),
], ids=["one_class", "only_empty_classes", "no_class_folders", "second_class_all_broken"])
def test_datasets_that_cannot_train(tmp_path, make, message):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(TLCoreError) as info:
        scan(root)
    assert str(info.value) == message.format(root=root)


def test_missing_folder_and_file_as_data(tmp_path):
    with pytest.raises(TLCoreError) as info:
        scan(tmp_path / "nowhere")
    assert str(info.value) == (f"Dataset folder not found: {tmp_path / 'nowhere'}. Give a folder with "
                               "one sub-folder per class, or with train/ and validation/ folders.")
    (tmp_path / "data.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    with pytest.raises(TLCoreError) as info:
        scan(tmp_path / "data.zip")
    assert str(info.value) == (f"The dataset must be a folder, not a file: {tmp_path / 'data.zip'}. "
                               "Use `tlcore import` for a .zip.")


def test_empty_class_folder_is_a_warning(tmp_path):
    root = write_flat(tmp_path / "data", classes=("red", "green"), n=16)
    (root / "blue").mkdir()
    ds = scan(root)
    assert ds.classes == ["blue", "green", "red"]
    assert ds.warnings == ["Class 'blue' has no usable images."]
    assert ds.counts()["train"]["blue"] == 0


def test_class_with_one_image_and_a_validation_split(tmp_path):
    root = write_flat(tmp_path / "data", classes=("red", "green"), n=16)
    for f in sorted((root / "green").iterdir())[1:]:
        f.unlink()
    ds = scan(root, val_split=0.2, test_split=0.1)
    counts = ds.counts()
    assert (counts["train"]["green"], counts["validation"]["green"], counts["test"]["green"]) == (1, 0, 0)
    assert ds.warnings == [
        "Class 'green' has only 1 training images; aim for at least 20.",
        "Class 'green' has no validation images.",
        f"Classes are imbalanced (largest {counts['train']['red']} vs smallest 1 training images); "
        "class weights (--class-weights auto) compensate."]


def test_the_same_image_in_train_and_test_is_a_leak(tmp_path):
    root = write_split(tmp_path / "data", classes=("red", "green"), counts=(12, 4, 4))
    shutil.copy(root / "train" / "red" / "red_0.png", root / "test" / "red" / "copy_of_red_0.png")
    shutil.copy(root / "train" / "green" / "green_3.png", root / "validation" / "green" / "again.png")
    ds = scan(root)
    assert ("2 image(s) appear in more than one split (identical files): validation and test "
            "scores will look better than they are.") in ds.warnings


UNICODE_CLASSES = ["big dog", "crème brûlée", "고양이"]


def _unicode_dataset(root: Path, nfd: bool = False) -> Path:
    rng = np.random.default_rng(0)
    for k, name in enumerate(UNICODE_CLASSES):
        folder = root / (unicodedata.normalize("NFD", name) if nfd else name)
        folder.mkdir(parents=True)
        for i in range(8):
            arr = np.clip(np.array([RED, GREEN, BLUE][k], float) + rng.normal(0, 20, (16, 16, 3)), 0, 255)
            Image.fromarray(arr.astype(np.uint8)).save(folder / f"사진 {i}.png")
    return root


@pytest.mark.parametrize("nfd", [False, True], ids=["nfc", "nfd"])
def test_class_names_in_korean_accents_and_spaces(tmp_path, nfd):
    ds = scan(_unicode_dataset(tmp_path / "data", nfd))
    assert ds.classes == UNICODE_CLASSES
    assert set(ds.counts()["train"]) == set(UNICODE_CLASSES)
    assert ds.problems == []


# ============================================================================ the command line

SPLIT_DATA = "split"  # replaced by the path of a small split dataset
MISSING = "missing"   # a folder that does not exist
A_FILE = "a_file"     # a regular file given as the data folder

# id -> (arguments after `train DATA`, data, exit code, the exact error)
BAD_TRAIN_OPTIONS = {
    "batch_size_0": (["--batch-size", "0"], SPLIT_DATA, 1,
                     "--batch-size must be a whole number from 1 to 4096. Received: 0"),
    "batch_size_not_a_number": (["--batch-size", "many"], SPLIT_DATA, 2,
                                "tlcore train: argument --batch-size: invalid int value: 'many'"),
    "lr_negative": (["--lr", "-1"], SPLIT_DATA, 1, "--lr must be a positive number below 10. Received: -1.0"),
    "lr_nan": (["--lr", "nan"], SPLIT_DATA, 1, "--lr must be a positive number below 10. Received: nan"),
    "fine_tune_lr_50": (["--fine-tune-lr", "50"], SPLIT_DATA, 1,
                        "--fine-tune-lr must be a positive number below 10. Received: 50.0"),
    "dropout_1.5": (["--dropout", "1.5"], SPLIT_DATA, 1,
                    "--dropout must be at least 0 and below 1. Received: 1.5"),
    "input_size_10": (["--input-size", "10"], SPLIT_DATA, 1,
                      "ResNet50 needs an input size of at least 32 pixels. Received: input_size=10. "
                      "Its default is 224."),
    "input_size_huge": (["--input-size", "99999"], SPLIT_DATA, 1,
                        "--input-size 99999 is too large; use at most 2048 pixels."),
    "head_epochs_negative": (["--head-epochs", "-1"], SPLIT_DATA, 1,
                             "--head-epochs must be a whole number, 0 or more. Received: -1"),
    "nothing_to_train": (["--head-epochs", "0", "--fine-tune-epochs", "0"], SPLIT_DATA, 1,
                         "Nothing to train: --head-epochs and --fine-tune-epochs are both 0."),
    "dense_0": (["--dense", "0"], SPLIT_DATA, 1, "--dense units must be whole numbers from 1 to 65536. Received: 0"),
    "rotation_negative": (["--rotation", "-5"], SPLIT_DATA, 1, "--rotation must be from 0 to 360 degrees. Received: -5.0"),
    "optimizer_unknown": (["--optimizer", "adagrad"], SPLIT_DATA, 2,
                          "tlcore train: argument --optimizer: invalid choice: 'adagrad' "
                          "(choose from 'adam', 'adamw', 'rmsprop', 'sgd')"),
    "unknown_option": (["--frobnicate", "3"], SPLIT_DATA, 2, "tlcore: unrecognized arguments: --frobnicate 3"),
    "weights_missing": (["--weights", "no_such_file.h5"], SPLIT_DATA, 1,
                        "--weights must be imagenet, none, or a weights file. File not found: no_such_file.h5"),
    "run_id_bad": (["--run-id", "../escape"], SPLIT_DATA, 1,
                   "--run-id may use letters, digits, '.', '_' and '-' (up to 100). Received: '../escape'"),
    "preset_unknown": (["--preset", "nope"], SPLIT_DATA, 1,
                       "Unknown preset 'nope'. Choose one of: inception-mixed7, vgg19-frozen, "
                       "resnet50-layers165, two-stage, modern, scratch-small."),
    # Found once the run folder exists: the run is marked failed.
    "val_split_1.2": (["--val-split", "1.2"], SPLIT_DATA, 1,
                      "--val-split must be at least 0 and below 1. Received: 1.2"),
    "missing_data": ([], MISSING, 1, "Dataset folder not found: {data}. Give a folder with one sub-folder "
                                     "per class, or with train/ and validation/ folders."),
    "data_is_a_file": ([], A_FILE, 1, "The dataset must be a folder, not a file: {data}. "
                                      "Use `tlcore import` for a .zip."),
    "cut_no_such_layer": (["--cut", "no_such_layer"], SPLIT_DATA, 1,
                          "The backbone has no layer named 'no_such_layer' (given as --cut).*"),
    "cut_not_a_cut_point": (["--cut", "conv5_block3_1_relu"], SPLIT_DATA, 1,
                            "Layer 'conv5_block3_1_relu' (index 167) is not a clean cut point: some path "
                            "from the input to the output goes around it (it sits inside a branch). "
                            "Choose a layer marked cut_point in `tlcore layers`, such as the end of a block."),
    "unfreeze_from_99999": (["--unfreeze-from", "99999", "--fine-tune-epochs", "1"], SPLIT_DATA, 1,
                            "--unfreeze-from index 99999 is out of range: the backbone has 175 layers "
                            "(0 to 174, or -1 to -175 from the end)."),
}

# Out-of-range augmentation and seed values must be refused like the others, naming the option,
# not crash inside Keras after the run has started.
BAD_RANGE_OPTIONS = {
    "shift_5": ["--shift", "5"],
    "rotation_nan": ["--rotation", "nan"],
    "seed_negative": ["--seed", "-1"],
}


def _train_argv(case_args, data):
    return ["train", data, *FAST, "--head-epochs", "1", "--fine-tune-epochs", "0", *case_args, "--json"]


@pytest.fixture(scope="module")
def cli_results(tmp_path_factory):
    """Every bad command line run once, four at a time, each with a TLCORE_HOME of its own."""
    base = tmp_path_factory.mktemp("cli_bad")
    data = write_split(base / "data", classes=("red", "green"), counts=(6, 3, 3))
    (base / "a_file.txt").write_text("not a folder\n")
    paths = {SPLIT_DATA: data, MISSING: base / "nowhere", A_FILE: base / "a_file.txt"}
    jobs = {}
    for case, (args, which, _, _) in BAD_TRAIN_OPTIONS.items():
        jobs[case] = (_train_argv(args, paths[which]), base / case, paths[which])
    for case, args in BAD_RANGE_OPTIONS.items():
        jobs[case] = (_train_argv(args, data), base / case, data)
    jobs["garbage_weights"] = (_train_argv(["--weights", base / "garbage.h5"], data), base / "garbage_weights", data)
    (base / "garbage.h5").write_text("these are not weights\n")
    jobs["other_architecture_weights"] = (
        _train_argv(["--weights", _mobilenet_weights(base)], data), base / "other_arch", data)
    jobs["layers_missing_file"] = (["layers", "--backbone-file", base / "nothing.keras", "--json"],
                                   base / "layers_missing", data)
    jobs["scan_missing"] = (["scan", base / "nowhere", "--json"], base / "scan_missing", data)
    jobs["predict_no_run"] = (["predict", base / "no_run", data / "test", "--json"], base / "predict", data)
    jobs["no_command"] = (["--json"], base / "no_command", data)

    def run(item):
        case, (argv, home, _) = item
        before = snapshot(base / "data")
        proc = tl(*argv, home=home)
        return case, {"proc": proc, "home": home, "data": paths, "data_unchanged": snapshot(base / "data") == before}

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(run, jobs.items()))


def _mobilenet_weights(base: Path) -> Path:
    import keras

    path = base / "mobilenet_v2.weights.h5"
    keras.applications.MobileNetV2(input_shape=(32, 32, 3), include_top=False, weights=None).save_weights(path)
    return path


def _check_failure(result, code: int) -> dict:
    proc = result["proc"]
    assert proc.returncode == code, (proc.returncode, proc.stdout, proc.stderr[-3000:])
    out = one_json(proc)
    assert set(out) == {"error"} and out["error"]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.rstrip().splitlines()[-1] in (f"error: {out['error']}", f"usage error: {out['error']}")
    for state, error, option in run_states(result["home"], with_option=True):
        assert state == "failed"  # never left claiming to be running
        # the run store keeps the engine's words (the option's name); the CLI says the flag
        assert error == out["error"] or (option and error.replace(option, flag(option), 1) == out["error"])
    assert result["data_unchanged"]
    return out


@pytest.mark.parametrize("case", sorted(BAD_TRAIN_OPTIONS))
def test_bad_train_option(cli_results, case):
    _, which, code, message = BAD_TRAIN_OPTIONS[case]
    result = cli_results[case]
    out = _check_failure(result, code)
    expected = message.format(data=result["data"][which])
    if expected.endswith(".*"):
        assert out["error"].startswith(expected[:-2])
    else:
        assert out["error"] == expected
    if case not in ("val_split_1.2", "missing_data", "data_is_a_file",
                    "cut_no_such_layer", "cut_not_a_cut_point", "unfreeze_from_99999"):
        assert run_states(result["home"]) == []  # refused before any run folder was made


@pytest.mark.parametrize("case", sorted(BAD_RANGE_OPTIONS))
def test_out_of_range_augmentation_and_seed_are_refused(cli_results, case):
    option = BAD_RANGE_OPTIONS[case][0]
    out = _check_failure(cli_results[case], 1)
    assert out["error"].startswith(option), out["error"]
    assert not out["error"].startswith("internal error")


def test_weights_file_that_is_not_weights(cli_results):
    out = _check_failure(cli_results["garbage_weights"], 1)
    assert out["error"].startswith("The weights file garbage.h5 does not fit ResNet50 (without its top): ")
    assert out["error"].endswith("Use a file saved from keras.applications.ResNet50, or 'imagenet' / 'none'.")


def test_weights_file_of_another_architecture(cli_results):
    out = _check_failure(cli_results["other_architecture_weights"], 1)
    assert out["error"].startswith("The weights file mobilenet_v2.weights.h5 does not fit ResNet50 "
                                   "(without its top): ")


def test_other_commands_fail_cleanly(cli_results):
    out = _check_failure(cli_results["layers_missing_file"], 1)
    assert out["error"].startswith("Backbone file not found: ")
    out = _check_failure(cli_results["scan_missing"], 1)
    assert out["error"].startswith("Dataset folder not found: ")
    out = _check_failure(cli_results["predict_no_run"], 1)
    assert out["error"].startswith("No run at ")
    out = _check_failure(cli_results["no_command"], 2)
    assert "COMMAND" in out["error"] or "command" in out["error"]


# ============================================================================ two trainings at once


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two trainings started together in one home: Korean/accented/spaced class names, and a
    class of a single image with a validation split."""
    base = tmp_path_factory.mktemp("two_runs")
    home = base / "home"
    unicode_data = _unicode_dataset(base / "unicode")
    lonely = write_flat(base / "lonely", classes=("red", "green"), n=10)
    for f in sorted((lonely / "green").iterdir())[1:]:
        f.unlink()
    env = dict(os.environ, TLCORE_HOME=str(home), TF_CPP_MIN_LOG_LEVEL="2")
    procs = [subprocess.Popen([sys.executable, "-m", "tlcore", "train", str(d), *FAST,
                               "--head-epochs", "1", "--fine-tune-epochs", "0", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                              text=True, encoding="utf-8")
             for d in (unicode_data, lonely)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return {"home": home, "unicode": unicode_data, "lonely": lonely, "procs": results}


def test_two_trainings_at_once_get_their_own_folders(two_runs):
    outs = []
    for proc in two_runs["procs"]:
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "Traceback" not in proc.stderr
        outs.append(one_json(proc))
    assert [o["state"] for o in outs] == ["completed", "completed"]
    dirs = [Path(o["run_dir"]) for o in outs]
    assert dirs[0] != dirs[1] and all(d.parent == two_runs["home"] / "runs" for d in dirs)
    for d, data in zip(dirs, (two_runs["unicode"], two_runs["lonely"])):
        cfg = json.loads((d / "config.json").read_text(encoding="utf-8"))
        assert cfg["options"]["data"] == str(data)  # each run wrote its own config
        assert (d / "model.keras").exists()
    proc = tl("runs", "--json", home=two_runs["home"])
    assert proc.returncode == 0
    listed = one_json(proc)
    assert sorted(r["run_dir"] for r in listed) == sorted(map(str, dirs))
    assert {r["state"] for r in listed} == {"completed"}
    assert sorted(r["dataset"] for r in listed) == sorted([str(two_runs["unicode"]), str(two_runs["lonely"])])
    assert {r["backbone"] for r in listed} == {"ResNet50"}


def test_unicode_class_names_survive_training_and_prediction(two_runs):
    run = Path(one_json(two_runs["procs"][0])["run_dir"])
    assert json.loads((run / "labels.json").read_text(encoding="utf-8")) == UNICODE_CLASSES
    images = [two_runs["unicode"] / name / "사진 0.png" for name in UNICODE_CLASSES]
    proc = tl("predict", run, *images, "--top-k", "3", "--json", home=two_runs["home"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = one_json(proc)
    assert [r["image"] for r in out] == [str(p) for p in images]
    for r in out:
        assert sorted(t["label"] for t in r["top"]) == sorted(UNICODE_CLASSES)
        assert sum(t["probability"] for t in r["top"]) == pytest.approx(1.0, abs=1e-4)


def test_a_class_of_one_image_trains_with_a_warning(two_runs):
    run = Path(one_json(two_runs["procs"][1])["run_dir"])
    assert json.loads((run / "labels.json").read_text()) == ["green", "red"]
    counts = json.loads((run / "config.json").read_text())["dataset_counts"]
    assert counts["train"]["green"] == 1 and counts["validation"]["green"] == 0
    ev = json.loads((run / "evaluation.json").read_text())
    assert ev["labels"] == ["green", "red"]
    assert np.isfinite(ev["loss"]) and 0.0 <= ev["accuracy"] <= 1.0


def test_predict_reports_bad_files_one_by_one(two_runs, tmp_path):
    run = Path(one_json(two_runs["procs"][0])["run_dir"])
    good = two_runs["unicode"] / "고양이" / "사진 1.png"
    (tmp_path / "truncated.jpg").write_bytes(JPEG[: len(JPEG) // 2])
    (tmp_path / "text_bomb.png").write_bytes(_text_chunk_bomb())
    proc = tl("predict", run, good, tmp_path / "truncated.jpg", tmp_path / "text_bomb.png", "--json",
              home=two_runs["home"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = one_json(proc)
    assert [r["image"] for r in out] == [str(good), str(tmp_path / "truncated.jpg"),
                                         str(tmp_path / "text_bomb.png")]
    assert len(out[0]["top"]) == 3
    assert out[1] == {"image": str(tmp_path / "truncated.jpg"), "top": [], "error": TRUNCATED}
    assert out[2]["top"] == [] and "too large" in out[2]["error"]
