"""The bounded cache: TLCORE_CACHE_MAX, least recently used first, `tlcore cache [--clear]`."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from tlcore.core import cache
from tlcore.recipe import features
from tlcore.core.errors import TLCoreError

def _entry_bytes() -> int:
    """The size on disk of one cached array of 10 float32 (np.save adds a header)."""
    return 128 + 40


def _put(key: str) -> np.ndarray:
    time.sleep(0.02)  # distinct modification times, whatever the file system's clock grain
    return features.cached(key, lambda: np.full((1, 10), len(key), dtype=np.float32))


def _names() -> list[str]:
    return sorted(e["name"] for e in cache.cache_report()["entries"])


@pytest.mark.parametrize("text, expected", [("1024", 1024), ("500M", 500 * 2 ** 20), ("6G", 6 * 2 ** 30),
                                            ("6g", 6 * 2 ** 30), ("1.5K", 1536), ("2GiB", 2 * 2 ** 30),
                                            ("0", 0)])
def test_sizes_in_bytes_or_with_a_suffix(text, expected):
    assert cache.parse_size(text) == expected


@pytest.mark.parametrize("bad", ["lots", "-1", "5X", "1e9", ""])
def test_a_bad_cache_max_is_an_error_naming_the_variable(bad, tlhome, monkeypatch):
    monkeypatch.setenv("TLCORE_CACHE_MAX", bad or " ")
    with pytest.raises(TLCoreError, match=r"TLCORE_CACHE_MAX must be a size .*e\.g\. 500M, 6G.*Received"):
        cache.max_bytes()
    with pytest.raises(TLCoreError, match="TLCORE_CACHE_MAX"):  # before any work is done
        features.cached("k", lambda: pytest.fail("computed despite a bad TLCORE_CACHE_MAX"))


def test_default_cap_is_6g(tlhome, monkeypatch):
    monkeypatch.delenv("TLCORE_CACHE_MAX", raising=False)
    assert cache.max_bytes() == 6 * 2 ** 30


def test_least_recently_used_entries_go_first(tlhome, monkeypatch):
    one = _entry_bytes()
    monkeypatch.setenv("TLCORE_CACHE_MAX", str(3 * one))
    for key in ("a", "b", "c"):
        _put(key)
    assert _names() == ["features/a.npy", "features/b.npy", "features/c.npy"]
    time.sleep(0.02)
    again = features.cached("a", lambda: pytest.fail("a was cached: it must be read, not computed"))
    assert again.shape == (1, 10) and again[0, 0] == 1
    _put("d")  # one too many: b is now the least recently used
    assert _names() == ["features/a.npy", "features/c.npy", "features/d.npy"]
    _put("e")
    assert _names() == ["features/a.npy", "features/d.npy", "features/e.npy"]
    report = cache.cache_report()
    assert report["bytes"] == 3 * one <= report["max_bytes"]
    assert [e["name"] for e in report["entries"]] == ["features/e.npy", "features/d.npy", "features/a.npy"]


def test_an_entry_larger_than_the_cap_is_not_kept_and_evicts_nothing(tlhome, monkeypatch):
    monkeypatch.setenv("TLCORE_CACHE_MAX", "1K")
    _put("small")
    big = features.cached("big", lambda: np.zeros((1, 1000), dtype=np.float32))
    assert big.shape == (1, 1000)
    assert _names() == ["features/small.npy"]


def test_decoded_images_and_features_share_one_cap(tlhome, monkeypatch, make_dataset):
    from tlcore.data.pipeline import decode_images

    data = make_dataset(n=2, size=8)
    paths = sorted(str(p) for p in data.rglob("*.png"))
    images, ok, problems = decode_images(paths, 4)
    assert images.shape == (4, 4, 4, 3) and ok == [0, 1, 2, 3] and problems == []
    entries = cache.cache_report()["entries"]
    assert sorted(e["name"].rsplit(".", 1)[1] for e in entries) == ["json", "npy"]
    assert all(e["name"].startswith("images/") for e in entries)
    for e in entries:
        (tlhome / "cache" / e["name"]).unlink()
    _put("old")
    room = sum(e["bytes"] for e in entries) + 100
    monkeypatch.setenv("TLCORE_CACHE_MAX", str(room))  # room for the images only
    images, _, _ = decode_images(paths, 4)
    assert _names() == sorted(e["name"] for e in entries)  # the features entry made room
    again, _, _ = decode_images(paths, 4)  # read back from the cache
    np.testing.assert_array_equal(again, images)
    assert not list((tlhome / "cache").rglob(".*"))  # no temporary files left


def test_stale_temporary_files_are_removed(tlhome):
    folder = tlhome / "cache" / "features"
    folder.mkdir(parents=True)
    fresh, stale = folder / ".x.1.tmp.npy", folder / ".y.2.tmp.npy"
    fresh.write_bytes(b"1")
    stale.write_bytes(b"2")
    old = time.time() - 2 * cache.STALE_TEMP_SECONDS
    os.utime(stale, (old, old))
    cache.enforce()
    assert fresh.exists() and not stale.exists()
    assert cache.cache_report()["entries"] == []  # in-progress writes are not entries


def _cli(*args, env=None):
    res = subprocess.run([sys.executable, "-m", "tlcore", "cache", *args], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ, **(env or {})))
    return res.returncode, res.stdout, res.stderr


def test_cache_command_json_and_clear(tlhome, monkeypatch):
    monkeypatch.setenv("TLCORE_CACHE_MAX", "500M")
    for key in ("one", "two"):
        _put(key)
    code, out, _ = _cli("--json")
    assert code == 0
    report = json.loads(out)
    assert set(report) == {"path", "bytes", "max_bytes", "entries", "freed"}
    assert report["path"] == str(tlhome / "cache") and report["max_bytes"] == 500 * 2 ** 20
    assert [e["name"] for e in report["entries"]] == ["features/two.npy", "features/one.npy"]
    assert report["bytes"] == 2 * _entry_bytes() == sum(e["bytes"] for e in report["entries"])
    assert report["freed"] == 0
    for e in report["entries"]:
        assert e["last_used"].endswith("Z")
        when = dt.datetime.fromisoformat(e["last_used"].replace("Z", "+00:00"))
        assert abs((dt.datetime.now(dt.timezone.utc) - when).total_seconds()) < 120
    code, out, _ = _cli("--clear", "--json")
    assert code == 0
    cleared = json.loads(out)
    assert cleared["freed"] == report["bytes"] and cleared["bytes"] == 0 and cleared["entries"] == []
    assert not any(p.is_file() for p in (tlhome / "cache").rglob("*"))
    code, out, _ = _cli()
    assert code == 0 and "bytes: 0" in out


def test_cache_command_with_a_bad_cap_fails_per_contract(tlhome):
    code, out, err = _cli("--json", env={"TLCORE_CACHE_MAX": "6 gigs"})
    assert code == 1
    assert "TLCORE_CACHE_MAX" in json.loads(out)["error"] and "6 gigs" in json.loads(out)["error"]
    assert err.strip().splitlines()[-1].startswith("error: TLCORE_CACHE_MAX")
