"""The Predict page's video, live and teach modes through AppTest (the browser test streams for real).

AppTest runs the app in this test process, where TensorFlow is usually loaded already: the live
view then must not load aiortc (that would crash the process) and says so, with the snapshot
camera instead. The tests set that state explicitly, so they do not depend on the test order.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tlcore.ship.video import write_video
from apphelp import plain

ROOT = Path(__file__).resolve().parents[1]
PREDICT = "views/7_Predict.py"


@pytest.fixture
def home(shared_run, tmp_path, monkeypatch):
    target = tmp_path / "runs" / Path(shared_run.run_dir).name
    shutil.copytree(shared_run.run_dir, target)
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    from studio import webrtc

    monkeypatch.setitem(webrtc._STATE, "loaded", False)
    monkeypatch.setitem(webrtc._STATE, "reason", "the test turned the live view off.")
    return tmp_path, str(target), shared_run


def _open(run_dir: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)
    at.session_state["run_dir"] = run_dir
    at.run()
    at.switch_page(PREDICT).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _texts(at: AppTest) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "info", "warning", "error")
                     for e in getattr(at, kind))


def test_live_without_webrtc_says_why_and_offers_snapshots(home):
    _, run_dir, _ = home
    at = _open(run_dir)
    at.button_group(key="predict_input").set_value("live").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No live video here" in plain(w.value) and "turned the live view off" in plain(w.value) for w in at.warning)
    assert len(at.get("camera_input")) == 1  # the snapshot fallback, open
    at.button_group(key="predict_mode").set_value("teach").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("No live video here" in plain(w.value) for w in at.warning)
    assert at.button(key="teach_save").disabled  # nothing recorded: no prototype to save yet


def test_a_video_file_gets_a_timeline_of_its_top_label(home, tmp_path):
    _, run_dir, shared = home
    files = sorted(Path(shared.data, "test").glob("*/*.png"))[::2]
    clip = write_video(tmp_path / "clip.mp4", [np.asarray(Image.open(f).convert("RGB").resize((64, 64)))
                                               for f in files], fps=10)
    at = _open(run_dir)
    at.button_group(key="predict_input").set_value("video").run()
    at.number_input(key="predict_every").set_value(2).run()
    at.file_uploader(key="predict_video").set_value(("clip.mp4", clip.read_bytes(), "video/mp4")).run()
    assert not at.exception, [e.value for e in at.exception]
    expected = len(range(0, len(files), 2))
    assert f"{expected} frames classified" in _texts(at)
    table = at.dataframe[0].value
    assert list(table["frame"]) == [str(i) for i in range(0, len(files), 2)]
    assert set(table["label"]) <= {"red", "green", "blue"}
    assert len(at.get("plotly_chart")) == 1

    at.file_uploader(key="predict_video").set_value(("junk.mp4", b"not a video" * 50, "video/mp4")).run()
    assert not at.exception
    assert any("Cannot read the video" in plain(e.value) for e in at.error)
