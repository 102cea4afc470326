"""What the studio's caches keep between reruns (studio/caches.py), so a widget change stays cheap."""
from __future__ import annotations

import gc
import os
import sys
import types

import numpy as np

from datagen import write_flat
from studio import caches


def test_augmentation_preview_is_computed_once_per_file_options_and_seed(tmp_path, monkeypatch):
    import tlcore.data.augment

    calls = []

    def fake(image, options, n=6, seed=0):
        calls.append((options, n, seed))
        return [np.full_like(image, seed) for _ in range(n)]

    monkeypatch.setattr(tlcore.data.augment, "augmentation_preview", fake)
    caches._augmentation_preview.clear()
    path = str(next((write_flat(tmp_path, n=1) / "red").iterdir()))
    light = {"flip": "horizontal", "rotation": 10.0}

    original, copies = caches.augmentation_preview(path, light, n=3, seed=0)
    assert original.shape == (128, 128, 3) and len(copies) == 3
    again, same = caches.augmentation_preview(path, dict(reversed(light.items())), n=3, seed=0)  # a rerun
    assert len(calls) == 1 and np.array_equal(again, original)

    caches.augmentation_preview(path, light, n=3, seed=1)  # "New samples"
    caches.augmentation_preview(path, {"flip": "horizontal"}, n=3, seed=0)  # other options
    assert len(calls) == 3
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file replaced
    caches.augmentation_preview(path, light, n=3, seed=0)
    assert len(calls) == 4
    assert caches.augmentation_preview(str(tmp_path / "gone.png"), light) == (None, [])


def test_settle_heap_freezes_once_tensorflow_is_loaded_and_again_after_new_imports(monkeypatch):
    monkeypatch.setattr(caches, "_FROZEN_MODULES", [0])
    gc.unfreeze()  # an AppTest earlier in this process may have frozen its heap
    try:
        monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
        assert caches.settle_heap() is False and gc.get_freeze_count() == 0  # nothing heavy loaded yet

        monkeypatch.setitem(sys.modules, "tensorflow", sys.modules.get("tensorflow") or types.ModuleType("tf"))
        assert caches.settle_heap() is True and gc.get_freeze_count() > 0
        assert caches.settle_heap() is False  # nothing new: the next reruns pay nothing

        monkeypatch.setitem(sys.modules, "some_new_module", types.ModuleType("some_new_module"))
        assert caches.settle_heap() is True
    finally:
        gc.unfreeze()
