"""Measured backbone latency: ms per image at batch 1 and 32, cached per machine and size."""
from __future__ import annotations

import json

import pytest

from tlcore.cli import commands as cli
from tlcore.backbones import latency
from tlcore.core.errors import TLCoreError


@pytest.mark.slow
def test_measure_caches_per_machine_and_size(tlhome, monkeypatch, capfd):
    first = latency.measure(["mobilenetv3small"], 32)
    assert [r["name"] for r in first] == ["MobileNetV3Small"] and first[0]["cached"] is False
    assert first[0]["ms_batch1"] > 0 and first[0]["ms_batch32"] > 0
    monkeypatch.setattr(latency, "_time_backbone", lambda *a: pytest.fail("measured again"))
    again = latency.measure(["MobileNetV3Small"], 32)
    assert again[0]["cached"] is True and again[0]["ms_batch1"] == first[0]["ms_batch1"]
    assert latency.known(32)["MobileNetV3Small"]["ms_batch32"] == first[0]["ms_batch32"]
    assert "MobileNetV3Small" not in latency.known(64)  # another size is another measurement
    assert cli.main(["backbones", "--input-size", "32", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capfd.readouterr().out)}
    assert rows["MobileNetV3Small"]["ms_batch1"] == first[0]["ms_batch1"] and rows["VGG16"]["ms_batch1"] is None
    monkeypatch.setattr(latency, "machine_key", lambda: "another machine|tf 0")
    assert latency.known(32) == {}


def test_measure_checks_names_and_sizes_first(tlhome):
    with pytest.raises(TLCoreError, match="Did you mean MobileNetV2"):
        latency.measure(["MobileNetV2", "MobileNetV22"])
    with pytest.raises(TLCoreError):
        latency.measure(["MobileNetV2"], 8)
    assert not (tlhome / "latency.json").exists()
