"""tlcore.core.home: the home folder's parts, and which folders the server may read."""
from __future__ import annotations

import pytest

from tlcore.core import home
from tlcore.core.errors import TLCoreError


def test_resolve_under_roots_follows_symlinks(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "ok").mkdir(parents=True)
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    assert home.resolve_under_roots(root / "ok", [root]) == (root / "ok").resolve()
    assert home.resolve_under_roots("ok", [root]) == (root / "ok").resolve()  # relative to the first root
    for bad in (root / "link", root / "ok" / ".." / ".." / "outside", "/"):
        with pytest.raises(TLCoreError, match="outside the folders"):
            home.resolve_under_roots(bad, [root])
    with pytest.raises(TLCoreError, match="No such folder"):
        home.resolve_under_roots(root / "missing", [root])
    (root / "file.txt").write_text("x")
    with pytest.raises(TLCoreError, match="not a folder"):
        home.resolve_under_roots(root / "file.txt", [root])


def test_resolve_under_roots_checks_the_kind(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f.h5").write_bytes(b"x")
    assert home.resolve_under_roots(tmp_path / "f.h5", [tmp_path], "file") == (tmp_path / "f.h5").resolve()
    assert home.resolve_under_roots(tmp_path / "d", [tmp_path], "any") == (tmp_path / "d").resolve()
    with pytest.raises(TLCoreError, match="not a file"):
        home.resolve_under_roots(tmp_path / "d", [tmp_path], "file")
    with pytest.raises(TLCoreError, match="No such file"):
        home.resolve_under_roots(tmp_path / "missing.h5", [tmp_path], "file")


def test_readable_roots_are_the_data_roots_and_the_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TLCORE_DATA_ROOTS", str(tmp_path / "data"))
    roots = home.readable_roots()
    assert roots[0] == (tmp_path / "data").resolve() and (tmp_path / "home").resolve() in roots
    assert home.folder_size(tmp_path / "nowhere") == 0
