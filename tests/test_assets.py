"""tlcore.backbones.assets: uploaded weights files and model files, kept apart and never overwritten."""
from __future__ import annotations

import pytest

from tlcore.backbones import assets
from tlcore.core.errors import TLCoreError


def test_save_weights_file_never_overwrites(tmp_path):
    first = assets.save_weights_file("../../m.weights.h5", b"a", tmp_path)
    second = assets.save_weights_file("m.weights.h5", b"b", tmp_path)
    assert first == tmp_path / "m.weights.h5" and second == tmp_path / "m-2.weights.h5"
    assert first.read_bytes() == b"a"
    with pytest.raises(TLCoreError, match="must end in"):
        assets.save_weights_file("notes.txt", b"a", tmp_path)
    with pytest.raises(TLCoreError, match="empty"):
        assets.save_weights_file("x.h5", b"", tmp_path)
    assert [p.name for p in assets.list_weights_files(tmp_path)][0] in ("m.weights.h5", "m-2.weights.h5")


def test_save_model_file_keeps_models_apart_from_weights(tmp_path):
    first = assets.save_model_file("../clf.keras", b"a", tmp_path)
    second = assets.save_model_file("clf.keras", b"b", tmp_path)
    assert first == tmp_path / "clf.keras" and second == tmp_path / "clf-2.keras"
    with pytest.raises(TLCoreError, match="weights only"):
        assets.save_model_file("m.weights.h5", b"a", tmp_path)
    with pytest.raises(TLCoreError, match="must end in"):
        assets.save_model_file("model.zip", b"a", tmp_path)
    with pytest.raises(TLCoreError, match="empty"):
        assets.save_model_file("m.h5", b"", tmp_path)
    assert {p.name for p in assets.list_model_files(tmp_path)} == {"clf.keras", "clf-2.keras"}
