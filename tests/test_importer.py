"""tlcore.data.importer: zips and folders become managed datasets, safely and atomically."""
from __future__ import annotations

import io
import os
import stat
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from tlcore.data import importer
from tlcore.core.errors import TLCoreError
from tlcore.data.importer import import_dataset


@pytest.fixture(autouse=True)
def _home(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))


def png(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)).save(buf, "PNG")
    return buf.getvalue()


def classes(prefix: str = "") -> list[tuple[str, bytes]]:
    """Two classes of two tiny images each."""
    return [(f"{prefix}{c}/{i}.png", png(k * 2 + i)) for k, c in enumerate(("cats", "dogs"))
            for i in range(2)]


def make_zip(path: Path, entries, compression=zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return path


def symlink_entry(name: str, kind: int = stat.S_IFLNK) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (kind | 0o644) << 16
    return info


def patch_headers(path: Path, change) -> None:
    """Rewrite each entry's name bytes (same length) and flags in local and central headers."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        offsets, pos = [i.header_offset for i in zf.infolist()], zf.start_dir

    def fix(at: int, flag_at: int, len_at: int, name_at: int) -> int:
        (n,) = struct.unpack_from("<H", data, at + len_at)
        (flags,) = struct.unpack_from("<H", data, at + flag_at)
        name, flags = change(bytes(data[at + name_at:at + name_at + n]), flags)
        data[at + name_at:at + name_at + n] = name
        struct.pack_into("<H", data, at + flag_at, flags)
        return n

    for off in offsets:
        fix(off, 6, 26, 30)
    while data[pos:pos + 4] == b"PK\x01\x02":
        n = fix(pos, 8, 28, 46)
        extra, comment = struct.unpack_from("<HH", data, pos + 30)
        pos += 46 + n + extra + comment
    path.write_bytes(bytes(data))


def tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture
def dsdir(tmp_path) -> Path:
    return tmp_path / "home" / "datasets"


# --- zips -----------------------------------------------------------------------------------

def test_zip_single_top_folder_is_unwrapped_and_litter_dropped(tmp_path, dsdir):
    src = make_zip(tmp_path / "pets.zip", classes("pets/") + [
        ("__MACOSX/pets/cats/._0.png", b"junk"), ("pets/cats/._1.png", b"junk"),
        ("pets/.DS_Store", b"junk"), ("pets/dogs/Thumbs.db", b"junk"),
        ("pets/desktop.ini", b"junk"), ("pets/.git/config", b"junk"), ("pets/", b"")])
    out = import_dataset(src)  # default datasets_dir comes from TLCORE_HOME
    assert out["path"] == str(dsdir / "pets")
    assert leftovers(dsdir) == ["pets"]
    assert tree(dsdir / "pets") == ["cats", "cats/0.png", "cats/1.png", "dogs", "dogs/0.png",
                                    "dogs/1.png"]
    assert out["classes"] == ["cats", "dogs"]
    assert sum(sum(c.values()) for c in out["counts"].values()) == 4
    assert set(out["counts"]) == {"train", "validation", "test"}
    assert out["problems"] == []
    assert isinstance(out["warnings"], list) and out["warnings"]  # tiny classes
    assert (dsdir / "pets/cats/0.png").read_bytes() == png(0)


def test_zip_split_layout_top_folder_is_kept(tmp_path, dsdir):
    entries = classes("train/") + classes("validation/")
    out = import_dataset(make_zip(tmp_path / "s.zip", entries), dsdir)
    assert leftovers(dsdir / "s") == ["train", "validation"]
    assert out["counts"]["validation"] == {"cats": 2, "dogs": 2}
    wrapped = import_dataset(make_zip(tmp_path / "w.zip", [("x/y/" + n, d) for n, d in entries]),
                             dsdir)
    assert leftovers(Path(wrapped["path"])) == ["train", "validation"]


def test_zip_without_top_folder(tmp_path, dsdir):
    out = import_dataset(make_zip(tmp_path / "flat.zip", classes()), dsdir)
    assert tree(dsdir / "flat") == ["cats", "cats/0.png", "cats/1.png", "dogs", "dogs/0.png",
                                    "dogs/1.png"]
    assert out["classes"] == ["cats", "dogs"]


def test_existing_name_gets_a_suffix(tmp_path, dsdir):
    src = make_zip(tmp_path / "pets.zip", classes())
    paths = [import_dataset(src, dsdir)["path"] for _ in range(3)]
    assert paths == [str(dsdir / n) for n in ("pets", "pets-2", "pets-3")]
    assert leftovers(dsdir) == ["pets", "pets-2", "pets-3"]


@pytest.mark.parametrize("name, expected", [
    ("../evil", "_evil"), ("a/b\\c", "a_b_c"), ("...hidden", "hidden"), ("..", "dataset"),
    ("Cafe\u0301", "Caf\u00e9"), ("  my data ", "my data")])
def test_name_is_sanitised(tmp_path, dsdir, name, expected):
    out = import_dataset(make_zip(tmp_path / "x.zip", classes()), dsdir, name=name)
    assert out["path"] == str(dsdir / expected)
    assert leftovers(dsdir) == [expected]
    assert leftovers(tmp_path) == ["home", "x.zip"]


def test_default_name_from_zip_stem_is_sanitised(tmp_path, dsdir):
    out = import_dataset(make_zip(tmp_path / ".Cafe\u0301.zip", classes()), dsdir)
    assert out["path"] == str(dsdir / "Caf\u00e9")


def test_unsafe_entries_are_skipped_and_listed(tmp_path, dsdir):
    bad = ["../evil.png", "cats/../../evil2.png", "/abs.png", "C:/win.png", "c:evil.png",
           "cats\\..\\..\\evil3.png", "..\\evil4.png", "cats/D:/x.png"]
    src = make_zip(tmp_path / "bad.zip", classes() + [(n, png(9)) for n in bad])
    out = import_dataset(src, dsdir)
    assert out["problems"] == [
        {"file": "../evil.png", "reason": "path leads outside the folder (..), skipped"},
        {"file": "cats/../../evil2.png", "reason": "path leads outside the folder (..), skipped"},
        {"file": "/abs.png", "reason": "absolute path, skipped"},
        {"file": "C:/win.png", "reason": "drive letter in path, skipped"},
        {"file": "c:evil.png", "reason": "drive letter in path, skipped"},
        {"file": "cats\\..\\..\\evil3.png", "reason": "path leads outside the folder (..), skipped"},
        {"file": "..\\evil4.png", "reason": "path leads outside the folder (..), skipped"},
        {"file": "cats/D:/x.png", "reason": "drive letter in path, skipped"},
    ]
    assert tree(dsdir) == ["bad", "bad/cats", "bad/cats/0.png", "bad/cats/1.png", "bad/dogs",
                           "bad/dogs/0.png", "bad/dogs/1.png"]
    assert leftovers(tmp_path) == ["bad.zip", "home"]
    assert not Path("/abs.png").exists()


def test_backslash_separators_are_folders(tmp_path, dsdir):
    entries = [(n.replace("/", "\\"), d) for n, d in classes()]
    out = import_dataset(make_zip(tmp_path / "win.zip", entries), dsdir)
    assert out["problems"] == []
    assert tree(dsdir / "win") == ["cats", "cats/0.png", "cats/1.png", "dogs", "dogs/0.png",
                                   "dogs/1.png"]


def test_links_devices_fifos_and_encrypted_entries_are_skipped(tmp_path, dsdir):
    src = make_zip(tmp_path / "odd.zip", classes() + [
        (symlink_entry("cats/link.png"), b"/etc/passwd"),
        (symlink_entry("dogs/fifo.png", stat.S_IFIFO), b""),
        (symlink_entry("dogs/dev.png", stat.S_IFCHR), b""),
        (symlink_entry("dogs/blk", stat.S_IFBLK), b""),
        ("cats/secret.png", png(7))])
    patch_headers(src, lambda name, flags: (name, flags | 0x1 if name == b"cats/secret.png" else flags))
    out = import_dataset(src, dsdir)
    special = "special file (device, pipe or socket), skipped"
    assert out["problems"] == [
        {"file": "cats/link.png", "reason": "symbolic link, skipped"},
        {"file": "dogs/fifo.png", "reason": special},
        {"file": "dogs/dev.png", "reason": special},
        {"file": "dogs/blk", "reason": special},
        {"file": "cats/secret.png", "reason": "encrypted (password-protected), skipped"}]
    assert leftovers(dsdir / "odd/cats") == ["0.png", "1.png"]
    assert leftovers(dsdir / "odd/dogs") == ["0.png", "1.png"]


def test_nested_archives_are_not_expanded(tmp_path, dsdir):
    inner = make_zip(tmp_path / "inner.zip", classes()).read_bytes()
    nested = ["cats/more.zip", "dogs/more.tar.gz", "x.7z", "dogs/y.RAR", "z.tgz"]
    out = import_dataset(make_zip(tmp_path / "n.zip", classes() + [(n, inner) for n in nested]),
                         dsdir)
    assert out["problems"] == [{"file": n, "reason": "archive inside the archive, not expanded"}
                               for n in nested]
    assert tree(dsdir / "n") == ["cats", "cats/0.png", "cats/1.png", "dogs", "dogs/0.png",
                                 "dogs/1.png"]


def test_utf8_names_without_flag_are_repaired(tmp_path, dsdir):
    src = make_zip(tmp_path / "u.zip", classes() + [("cats/\u00e9t\u00e9.png", png(5))])
    patch_headers(src, lambda name, flags: (name, flags & ~0x800))
    with zipfile.ZipFile(src) as zf:  # what Python alone would make of it
        assert "cats/\u00e9t\u00e9.png".encode().decode("cp437") in zf.namelist()
        assert "cats/\u00e9t\u00e9.png" not in zf.namelist()
    out = import_dataset(src, dsdir)
    assert leftovers(dsdir / "u/cats") == ["0.png", "1.png", "\u00e9t\u00e9.png"]
    assert out["problems"] == []


def test_cp437_names_stay_cp437(tmp_path, dsdir):
    src = make_zip(tmp_path / "dos.zip", classes() + [("cats/caf#.png", png(5))])
    patch_headers(src, lambda name, flags: (name.replace(b"#", b"\x82"), flags))
    import_dataset(src, dsdir)
    assert leftovers(dsdir / "dos/cats") == ["0.png", "1.png", "caf\u00e9.png"]


def test_nfd_names_become_nfc_and_clashes_are_listed(tmp_path, dsdir):
    nfd, nfc = "cats/Re\u0301sume\u0301/a.png", "cats/R\u00e9sum\u00e9/a.png"
    out = import_dataset(make_zip(tmp_path / "mac.zip", classes() + [(nfd, png(5)), (nfc, png(6))]),
                         dsdir)
    assert leftovers(dsdir / "mac/cats") == ["0.png", "1.png", "R\u00e9sum\u00e9"]
    assert (dsdir / "mac" / nfc).read_bytes() == png(5)
    assert out["problems"] == [{"file": nfc, "reason": "another file or folder has the same name, "
                                "skipped"}]


def test_file_and_folder_name_clash_is_listed(tmp_path, dsdir):
    out = import_dataset(make_zip(tmp_path / "c.zip", classes() + [("cats/0.png/x.png", png(5))]),
                         dsdir)
    assert out["problems"] == [{"file": "cats/0.png/x.png",
                                "reason": "another file or folder has the same name, skipped"}]
    assert (dsdir / "c/cats/0.png").read_bytes() == png(0)


# --- bad sources --------------------------------------------------------------------------------

def test_missing_source(tmp_path, dsdir):
    with pytest.raises(TLCoreError, match=r"Nothing to import: .*nope\.zip does not exist\. Give"):
        import_dataset(tmp_path / "nope.zip", dsdir)
    assert leftovers(dsdir) == []


def test_source_neither_folder_nor_zip(tmp_path, dsdir):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(TLCoreError, match="is neither a folder nor a .zip file"):
        import_dataset(tmp_path / "notes.txt", dsdir)
    assert leftovers(dsdir) == []


def test_truncated_zip(tmp_path, dsdir):
    data = make_zip(tmp_path / "ok.zip", classes()).read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[:len(data) // 2])
    with pytest.raises(TLCoreError, match=r"cut\.zip is not a valid zip file \(damaged"):
        import_dataset(tmp_path / "cut.zip", dsdir)
    assert leftovers(dsdir) == []


def test_corrupt_entry_leaves_nothing_behind(tmp_path, dsdir):
    src = make_zip(tmp_path / "crc.zip", classes() + [("dogs/z.png", b"HELLO-CONTENT")],
                   zipfile.ZIP_STORED)
    src.write_bytes(src.read_bytes().replace(b"HELLO-CONTENT", b"JELLO-CONTENT"))
    with pytest.raises(TLCoreError, match=r"crc\.zip is damaged and cannot be unpacked \(Bad CRC"):
        import_dataset(src, dsdir)
    assert leftovers(dsdir) == []


def test_unwritable_datasets_folder(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(TLCoreError, match=r"Cannot write in the datasets folder .*file/datasets"):
        import_dataset(make_zip(tmp_path / "p.zip", classes()), tmp_path / "file" / "datasets")


def test_unusable_dataset_leaves_nothing_behind(tmp_path, dsdir):
    src = make_zip(tmp_path / "one.zip", [("cats/0.png", png(0))])
    with pytest.raises(TLCoreError, match=r"Nothing was imported from .*one\.zip: A classifier "
                                          r"needs at least 2 classes"):
        import_dataset(src, dsdir)
    assert leftovers(dsdir) == []


# --- limits -------------------------------------------------------------------------------------

@pytest.fixture
def no_extraction(monkeypatch):
    """Fails the test if any entry is opened: limits must be checked before extracting."""
    real_open = zipfile.ZipFile.open

    def refuse(self, name, mode="r", *args, **kwargs):
        if mode == "r":
            raise AssertionError("an entry was extracted")
        return real_open(self, name, mode, *args, **kwargs)
    monkeypatch.setattr(zipfile.ZipFile, "open", refuse)


def test_too_many_files(tmp_path, dsdir, monkeypatch, no_extraction):
    monkeypatch.setattr(importer, "MAX_FILES", 3)
    with pytest.raises(TLCoreError, match=r"holds 4 files, above the limit of 3 \(MAX_FILES\); "
                                          "it looks like a zip bomb"):
        import_dataset(make_zip(tmp_path / "many.zip", classes()), dsdir)
    assert leftovers(dsdir) == []


def test_too_many_bytes(tmp_path, dsdir, monkeypatch, no_extraction):
    monkeypatch.setattr(importer, "MAX_TOTAL_BYTES", 100)
    with pytest.raises(TLCoreError, match=r"big\.zip unpacks to .* above the limit of 100 bytes "
                                          r"\(MAX_TOTAL_BYTES\); it looks like a zip bomb"):
        import_dataset(make_zip(tmp_path / "big.zip", classes()), dsdir)
    assert leftovers(dsdir) == []


def test_compression_ratio(tmp_path, dsdir, no_extraction):
    src = make_zip(tmp_path / "bomb.zip", classes() + [("cats/zeros.png", bytes(2 * 1024 ** 2))])
    with pytest.raises(TLCoreError, match=r"cats/zeros\.png in bomb\.zip is compressed \d+ to 1, "
                                          r"above the limit of 200 \(MAX_RATIO\); it looks like a zip bomb"):
        import_dataset(src, dsdir)
    assert leftovers(dsdir) == []


def test_high_ratio_allowed_for_small_entries(tmp_path, dsdir):
    out = import_dataset(make_zip(tmp_path / "z.zip", classes() + [("notes.txt", bytes(512 * 1024))]),
                         dsdir)
    assert (dsdir / "z/notes.txt").stat().st_size == 512 * 1024
    assert out["problems"] == [{"file": "notes.txt", "reason": "file outside any class folder, skipped"}]


def test_not_enough_disk_space(tmp_path, dsdir, monkeypatch, no_extraction):
    monkeypatch.setattr(importer.shutil, "disk_usage", lambda path: shutil_usage(free=10))
    with pytest.raises(TLCoreError, match=r"Not enough free disk space: the dataset needs .* but "
                                          r"only 10 bytes is free"):
        import_dataset(make_zip(tmp_path / "d.zip", classes()), dsdir)
    assert leftovers(dsdir) == []


def shutil_usage(free: int):
    import shutil
    return shutil._ntuple_diskusage(10 ** 12, 10 ** 12 - free, free)


def fake_open(payload: bytes):
    def open_(self, info, *args, **kwargs):
        return io.BytesIO(payload)
    return open_


def test_streaming_stops_at_total_limit(tmp_path, dsdir, monkeypatch):
    src = make_zip(tmp_path / "lie.zip", [("cats/a.png", b"12345"), ("dogs/b.png", b"12345")])
    monkeypatch.setattr(importer, "MAX_TOTAL_BYTES", 15)
    monkeypatch.setattr(zipfile.ZipFile, "open", fake_open(b"x" * 20))
    with pytest.raises(TLCoreError, match=r"lie\.zip unpacks to more than the limit of 15 bytes "
                                          r"\(MAX_TOTAL_BYTES\); it looks like a zip bomb"):
        import_dataset(src, dsdir)
    assert leftovers(dsdir) == []


def test_streaming_stops_past_declared_size(tmp_path, dsdir, monkeypatch):
    src = make_zip(tmp_path / "lie.zip", [("cats/a.png", b"12345"), ("dogs/b.png", b"12345")])
    monkeypatch.setattr(zipfile.ZipFile, "open", fake_open(b"x" * 20))
    with pytest.raises(TLCoreError, match=r"cats/a\.png in lie\.zip unpacks to more than its "
                                          r"declared 5 bytes; it looks like a zip bomb"):
        import_dataset(src, dsdir)
    assert leftovers(dsdir) == []


def test_entries_are_streamed_in_chunks(tmp_path, dsdir, monkeypatch):
    big = bytes(range(256)) * 4
    src = make_zip(tmp_path / "s.zip", classes() + [("cats/big.bin", big)])
    reads: list[int] = []
    real_open = zipfile.ZipFile.open

    class Spy:
        def __init__(self, f):
            self.f = f

        def read(self, n=-1):
            reads.append(n)
            return self.f.read(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    monkeypatch.setattr(importer, "CHUNK_BYTES", 100)
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, *a, **k: Spy(real_open(self, *a, **k)))
    import_dataset(src, dsdir)
    assert set(reads) == {100} and len(reads) > 10
    assert (dsdir / "s/cats/big.bin").read_bytes() == big


# --- folders ------------------------------------------------------------------------------------

def write_tree(root: Path, entries) -> None:
    for name, data in entries:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def test_folder_import(tmp_path, dsdir):
    src = tmp_path / "src"
    write_tree(src, classes("pets/") + [
        ("pets/.DS_Store", b"j"), ("pets/cats/._0.png", b"j"), ("pets/Thumbs.db", b"j"),
        ("pets/desktop.ini", b"j"), ("pets/.hidden/x.png", png(3)), ("pets/__MACOSX/x", b"j"),
        ("pets/dogs/Re\u0301x.png", png(4)), ("pets/cats/more.zip", b"PK"),
        ("outside.png", png(5))])
    (src / "pets/cats/link.png").symlink_to(tmp_path / "outside.png")
    (src / "pets/dogs/linkdir").symlink_to(src / "pets/cats", target_is_directory=True)
    os.mkfifo(src / "pets/dogs/pipe.png")
    (src / "outside.png").unlink()  # the link above is now broken, still skipped as a link
    before = tree(src)
    out = import_dataset(src, dsdir)
    assert out["path"] == str(dsdir / "src")
    assert tree(dsdir / "src") == ["cats", "cats/0.png", "cats/1.png", "dogs", "dogs/0.png",
                                   "dogs/1.png", "dogs/R\u00e9x.png"]
    assert sorted(out["problems"], key=lambda p: p["file"]) == [
        {"file": "pets/cats/link.png", "reason": "symbolic link, skipped"},
        {"file": "pets/cats/more.zip", "reason": "archive inside the folder, not expanded"},
        {"file": "pets/dogs/linkdir", "reason": "symbolic link, skipped"},
        {"file": "pets/dogs/pipe.png", "reason": "special file (device, pipe or socket), skipped"}]
    assert out["classes"] == ["cats", "dogs"]
    assert tree(src) == before  # the source is untouched
    assert leftovers(dsdir) == ["src"]


def test_folder_nfc_clash_is_listed(tmp_path, dsdir):
    src = tmp_path / "d"
    write_tree(src, classes() + [("cats/Re\u0301x.png", png(4)), ("cats/R\u00e9x.png", png(5))])
    out = import_dataset(src, dsdir, name="named")
    assert leftovers(dsdir / "named/cats") == ["0.png", "1.png", "R\u00e9x.png"]
    assert out["problems"] == [{"file": "cats/R\u00e9x.png",
                                "reason": "another file or folder has the same name, skipped"}]


def test_folder_holding_the_datasets_folder_is_refused(tmp_path, dsdir):
    write_tree(tmp_path / "home", classes())
    with pytest.raises(TLCoreError, match="contains the datasets folder"):
        import_dataset(tmp_path / "home")
    assert leftovers(dsdir) == []


def test_folder_not_enough_disk_space(tmp_path, dsdir, monkeypatch):
    write_tree(tmp_path / "f", classes())
    monkeypatch.setattr(importer.shutil, "disk_usage", lambda path: shutil_usage(free=3))
    with pytest.raises(TLCoreError, match="Not enough free disk space"):
        import_dataset(tmp_path / "f", dsdir)
    assert leftovers(dsdir) == []


# --- property: nothing is ever written outside the target ---------------------------------------

SENTINEL = "zz_tlcore_importer_sentinel"
_component = st.one_of(
    st.sampled_from(["..", ".", "", "a", "b", "C:", "c:", "z:x", "\u00e9", "e\u0301", "\u65e5\u672c",
                     " ", "...", "x.png", "~", SENTINEL, "cats", ".hid"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=3))
_name = st.lists(st.one_of(_component, st.sampled_from(["/", "\\", "//"])), min_size=1,
                 max_size=12).map("".join).filter(bool)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(_name, min_size=1, max_size=6))
def test_random_names_never_escape_the_target(names):
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        datasets = sandbox.joinpath(*"abcdefghijklmnop") / "datasets"  # deeper than any ../ run
        src = make_zip(sandbox / "src.zip", classes() + [(n, b"data") for n in names])
        try:
            out = import_dataset(src, datasets, name="t")
        except TLCoreError:
            out = None
        target = datasets / "t"
        files = [p for p in sandbox.rglob("*") if not p.is_dir()]
        assert all(p == src or p.is_relative_to(target) for p in files), files
        assert leftovers(datasets) == (["t"] if out else [])
        assert not any(p.is_symlink() for p in sandbox.rglob("*"))
        if out:
            for p in target.rglob("*"):
                assert p.resolve().is_relative_to(target.resolve())
    assert not Path("/" + SENTINEL).exists() and not Path("/a").exists()


# --- uploads (relative names from a browser) ------------------------------------------

def test_safe_relative_parts_refuses_escapes():
    assert importer.safe_relative_parts("pets/cats/a.png") == ("pets", "cats", "a.png")
    assert importer.safe_relative_parts("./pets//cats/./a.png") == ("pets", "cats", "a.png")
    assert importer.safe_relative_parts("pets\\cats\\a.png") == ("pets", "cats", "a.png")
    for bad in ("../a.png", "pets/../../a.png", "/etc/passwd", "C:/x/a.png", "a\0.png", "", "./"):
        assert importer.safe_relative_parts(bad) is None, bad
    assert importer.safe_relative_parts("ko/고양이/a.png") == ("ko", "고양이", "a.png")


def test_write_uploaded_files_keeps_paths_and_refuses_dotdot(tmp_path):
    problems = importer.write_uploaded_files(
        [("pets/cats/a.png", b"1"), ("pets/dogs/b.png", b"2"), ("../evil.png", b"x"),
         ("pets/cats/a.png", b"again")], tmp_path / "up")
    assert (tmp_path / "up/pets/cats/a.png").read_bytes() == b"1"
    assert (tmp_path / "up/pets/dogs/b.png").read_bytes() == b"2"
    assert not (tmp_path / "evil.png").exists()
    assert [p["file"] for p in problems] == ["../evil.png", "pets/cats/a.png"]
    assert importer.upload_folder_name(["pets/cats/a.png", "pets/dogs/b.png"]) == "pets"
    assert importer.upload_folder_name(["cats/a.png", "dogs/b.png"]) == "dataset"
