"""Every page of the studio through streamlit.testing.v1.AppTest: empty, and with a finished run.

The finished run is trained once per module with the engine itself (MobileNetV2 without
pretrained weights at 32 px, one epoch per stage) on a tiny generated dataset, in a run
store under a temporary TLCORE_HOME.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from datagen import COLOURS, write_split

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["pages/1_Home.py", "pages/2_Backbone.py", "pages/3_Layers.py", "pages/4_Data.py",
         "pages/5_Train.py", "pages/6_Evaluate.py", "pages/7_Predict.py", "pages/8_Runs.py"]
SMALL = {"backbone": "MobileNetV2", "input_size": 32, "weights": "none"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A completed two-stage run in its own home, and the dataset it was trained on."""
    from tlcore.train import TrainConfig, train

    base = tmp_path_factory.mktemp("studio")
    home = base / "home"
    data = write_split(base / "data", counts=(4, 2, 2))
    sigterm = signal.getsignal(signal.SIGTERM)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TLCORE_HOME", str(home))
        result = train(TrainConfig(data=str(data), backbone="MobileNetV2", weights="none", input_size=32,
                                   head_epochs=1, fine_tune_epochs=1, batch_size=4, augment="none",
                                   early_stopping=0), runs_dir=str(home / "runs"))
    signal.signal(signal.SIGTERM, sigterm)  # train() installs its own stop handler
    assert result["state"] == "completed"
    return SimpleNamespace(home=home, data=data, run_dir=result["run_dir"],
                           run_id=Path(result["run_dir"]).name)


@pytest.fixture
def studio_home(finished, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(finished.home))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    monkeypatch.delenv("TLCORE_DATA_ROOTS", raising=False)
    return finished


def open_page(page: str, **state) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success", "title",
                                  "subheader") for e in getattr(at, kind)]
    parts += [f"{m.label}: {m.value}" for m in at.metric]
    return "\n".join(str(p) for p in parts)


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def png_bytes(colour=(220, 40, 40), size=24, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour, float) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def fake_run(home: Path, run_id: str, **status) -> Path:
    path = home / "runs" / run_id
    path.mkdir(parents=True)
    (path / "status.json").write_text(json.dumps({"host": socket.gethostname(), **status}))
    (path / "config.json").write_text(json.dumps({"options": {"backbone": "MobileNetV2", "data": "/nowhere",
                                                              "head_epochs": 1, "fine_tune_epochs": 1}}))
    return path


# --- empty state -------------------------------------------------------------------

@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_empty(page, tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = open_page(page, **SMALL)
    assert not at.error, [e.value for e in at.error]
    assert at.title, "every page has a title"
    shown = texts(at)
    expected = {"pages/1_Home.py": "Mixed precision", "pages/2_Backbone.py": "Your choice",
                "pages/3_Layers.py": "Trainable, stage 2", "pages/4_Data.py": "No dataset chosen yet",
                "pages/5_Train.py": "Choose a dataset first", "pages/6_Evaluate.py": "No trained model yet",
                "pages/7_Predict.py": "No trained model yet", "pages/8_Runs.py": "No runs yet"}[page]
    assert expected in shown
    assert "no run yet" in "\n".join(m.value for m in at.sidebar.markdown)


def test_password_is_asked_before_any_page(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert [t.value for t in at.title] == ["TL Studio"] and not at.metric
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert "Wrong password." in [e.value for e in at.error]
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert not at.exception and "Mixed precision" in texts(at)


def test_a_page_file_run_on_its_own_only_points_to_the_app(tmp_path, monkeypatch):
    """Streamlit also serves files in pages/ directly; without app.py (password, sidebar) they refuse."""
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    at = AppTest.from_file(str(ROOT / "pages" / "5_Train.py"), default_timeout=60).run()
    assert not at.exception and not at.title and not at.button
    assert any("Open TL Studio from its start page" in i.value for i in at.info)


# --- with a finished run ------------------------------------------------------------

def test_home_shows_machine_and_selection(studio_home):
    at = open_page(PAGES[0], data=str(studio_home.data), run_dir=studio_home.run_dir, **SMALL)
    assert metric(at, "GPUs") in ("CPU only", "1", "2", "3", "4", "8")
    assert "MobileNetV2 · 32 px · no pretraining" in texts(at)
    assert studio_home.run_id in texts(at)
    assert studio_home.run_id in "\n".join(m.value for m in at.sidebar.markdown)


def test_backbone_catalog_choice_and_weights_file(studio_home):
    at = open_page(PAGES[1], **SMALL)
    table = at.dataframe[0].value
    assert len(table) == 40 and {"Top-1 accuracy", "Parameters (M)", "Depth", "Input size"} <= set(table.columns)
    at.selectbox(key="w:backbone").select("ResNet50").run()
    assert at.session_state["backbone"] == "ResNet50"
    assert at.number_input(key="w:input_size").value == 224  # the new backbone's default size
    at.selectbox(key="w:backbone").select("MobileNetV2").run()
    at.number_input(key="w:input_size").set_value(32).run()
    at.radio(key="w:weights_kind").set_value("file").run()
    at.file_uploader[0].set_value(("broken.weights.h5", b"not weights", "application/octet-stream")).run()
    saved = studio_home.home / "weights" / "broken.weights.h5"
    assert saved.exists() and at.session_state["weights"] == str(saved)
    at.button[0].click().run()  # "Check that it fits"
    assert not at.exception
    assert any("does not fit MobileNetV2" in e.value for e in at.error)
    at.radio(key="w:weights_kind").set_value("none").run()
    assert at.session_state["weights"] == "none"


def test_backbone_says_whether_imagenet_weights_are_cached(studio_home, monkeypatch, tmp_path):
    from tlcore.backbones import imagenet_weights_file

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    at = open_page(PAGES[1], **{**SMALL, "weights": "imagenet"})
    fname = imagenet_weights_file("MobileNetV2")
    assert any("Not on this machine yet" in i.value and fname in i.value for i in at.info)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / fname).write_bytes(b"weights")
    at.run()
    assert any("Already on this machine" in s.value for s in at.success)


def test_layers_counts_match_the_engine(studio_home):
    from tlcore.backbones import build_backbone
    from tlcore.model import HeadSpec, assemble, build_head, cut_backbone, parameter_counts, set_trainable

    at = open_page(PAGES[2], data=str(studio_home.data), **SMALL)
    backbone = build_backbone("MobileNetV2", 32, weights=None)
    cut, _ = cut_backbone(backbone, None)
    model = assemble(cut, build_head(cut.output.shape[1:], 3, HeadSpec()), "tf", 32)
    set_trainable(model, 2, (2 * len(backbone.layers)) // 3, False,
                  {layer.name: i for i, layer in enumerate(backbone.layers)})
    expected = parameter_counts(model)
    assert metric(at, "Trainable, stage 2") == f"{expected['trainable']:,}"
    assert metric(at, "Non-trainable, stage 2") == f"{expected['non_trainable']:,}"
    recorded = json.loads((Path(studio_home.run_dir) / "status.json").read_text())["parameters"]
    assert metric(at, "Trainable, stage 2") == f"{recorded['trainable']:,}"  # what training really trained
    assert len(at.get("plotly_chart")) == 1
    assert len(at.dataframe[0].value) == len(backbone.layers)

    # Unfreeze past the cut: nothing of the backbone trains, and the page says so.
    at.select_slider(key="w:cut_index").set_value(10).run()
    at.select_slider(key="w:unfreeze_index").set_value(100).run()
    assert not at.exception
    assert any("No backbone weight will train in stage 2" in w.value for w in at.warning)
    assert metric(at, "Trainable, stage 2") == metric(at, "Trainable, stage 1 (head)")
    assert at.session_state["cut"] == backbone.layers[10].name

    # The head designer changes the count; a bad dense spec is an error, not a traceback.
    at.text_input(key="w:dense_text").input("64").run()
    assert at.session_state["dense"] == [64]
    at.text_input(key="w:dense_text").input("64, lots").run()
    assert any("whole numbers" in e.value for e in at.error) and not at.exception
    at.text_input(key="w:layer_search").input("project_BN").run()
    assert all("project_BN" in name for name in at.dataframe[0].value["name"])


def test_data_page_scan_upload_and_server_folder(studio_home, monkeypatch, tmp_path):
    at = open_page(PAGES[3], data=str(studio_home.data), **SMALL)
    assert metric(at, "Classes") == "3" and metric(at, "Train images") == "12"
    assert any("training images" in w.value for w in at.warning)  # tiny classes are flagged
    assert len(at.get("plotly_chart")) == 1
    assert len(at.get("image")) >= 3  # a row of samples per class

    # A zip with a path leading outside is imported without it.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, colour in list(COLOURS.items())[:2]:
            for i in range(3):
                zf.writestr(f"shapes/{name}/{i}.png", png_bytes(colour, seed=i))
        zf.writestr("../evil.png", png_bytes())
    at.file_uploader(key="upload_zip").set_value(("shapes.zip", buf.getvalue(), "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Imported **shapes**" in s.value for s in at.success)
    imported = studio_home.home / "datasets" / "shapes"
    assert at.session_state["data"] == str(imported) and imported.is_dir()
    assert not (studio_home.home / "datasets" / "evil.png").exists()
    assert metric(at, "Classes") == "2"

    # An uploaded folder keeps its relative paths.
    files = [(f"flat/{c}/{i}.png", png_bytes(COLOURS[c], seed=i), "image/png")
             for c in ("red", "blue") for i in range(4)]
    at.file_uploader(key="upload_folder").set_value(files).run()
    at.button[0].click().run()  # "Import this folder"
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["data"] == str(studio_home.home / "datasets" / "flat")

    # The server folder must lie inside the data roots, symlinks resolved.
    outside = tmp_path / "outside"
    write_split(outside, counts=(2, 1, 1))
    link = studio_home.home / "sneaky"
    link.symlink_to(outside, target_is_directory=True)
    use = lambda: [b for b in at.button if b.label == "Use this folder"][0]  # noqa: E731
    at.text_input[0].input(str(link))
    use().click().run()
    assert any("outside the folders this server may read" in e.value for e in at.error)
    assert at.session_state["data"] == str(studio_home.home / "datasets" / "flat")
    monkeypatch.setenv("TLCORE_DATA_ROOTS", str(tmp_path))
    at.text_input[0].input(str(outside))
    use().click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["data"] == str(outside.resolve())


def test_train_page_shows_a_finished_run(studio_home):
    at = open_page(PAGES[4], data=str(studio_home.data), run_dir=studio_home.run_dir, **SMALL)
    assert any("badge[" in m.value and "completed" in m.value for m in at.markdown)
    assert metric(at, "Epochs") == "2"
    assert metric(at, "Test accuracy").endswith("%")
    assert len(at.get("plotly_chart")) == 1
    assert at.number_input(key="w:head_epochs").value == 10  # TrainConfig's defaults
    assert at.number_input(key="w:batch_size").value == 32


def test_train_page_errors_in_plain_words(studio_home, monkeypatch):
    failed = fake_run(studio_home.home, "20000101-000000-failed-0001", state="failed",
                      error="Dataset folder not found: /gone.", started_at="2000-01-01T00:00:00Z")
    try:
        at = open_page(PAGES[4], data=str(studio_home.data), run_dir=str(failed),
                       **{**SMALL, "weights": "/no/such/file.weights.h5"})
        assert any("The training failed: Dataset folder not found: /gone." in e.value for e in at.error)
        start = [b for b in at.button if "Start" in b.label][0]
        start.click().run()
        assert not at.exception
        assert any("File not found: /no/such/file.weights.h5" in e.value for e in at.error)
    finally:
        shutil.rmtree(failed)


def test_reload_reattaches_to_a_live_run_and_shows_the_queue(studio_home):
    from tlcore.runs import now_iso

    common = dict(pid=os.getpid(), updated_at=now_iso(), epochs_total=4, batches_total=10)
    running = fake_run(studio_home.home, "29990101-000000-running-0001", state="running", stage=1, epoch=1,
                       batch=4, started_at="2999-01-01T00:00:00Z", **common)
    queued = fake_run(studio_home.home, "29990101-000001-queued-0002", state="queued", stage=None, epoch=0,
                      batch=0, started_at="2999-01-01T00:00:01Z", **common)
    try:
        at = open_page(PAGES[4], data=str(studio_home.data), **SMALL)  # no run_dir: a fresh session
        assert at.session_state["run_dir"] == str(running)
        assert any(b.label == "Stop" for b in at.button)
        assert "Stage 1 · training the head · epoch 1/4 · batch 4/10" in at.get("progress")[0].proto.text
        queue = at.dataframe[0].value
        assert list(queue["run"]) == [queued.name]
        [b for b in at.button if b.label == "Stop"][0].click().run()
        assert (running / "stop").exists()
    finally:
        shutil.rmtree(running)
        shutil.rmtree(queued)


def test_evaluate_shows_the_stored_evaluation(studio_home):
    at = open_page(PAGES[5], run_dir=studio_home.run_dir, **SMALL)
    ev = json.loads((Path(studio_home.run_dir) / "evaluation.json").read_text())
    assert metric(at, "Accuracy") == f"{100 * ev['accuracy']:.1f}%"
    assert metric(at, "Images scored") == str(ev["count"])
    per_class = at.dataframe[0].value
    assert sorted(per_class["class"]) == ["blue", "green", "red"]
    assert len(at.get("plotly_chart")) == 1  # the confusion matrix
    assert f"Misclassified images** ({len(ev['misclassified'])})" in texts(at)
    at.button[0].click().run()  # evaluate again
    assert not at.exception and not at.error


def test_predict_shows_top_k_for_each_image(studio_home):
    at = open_page(PAGES[6], run_dir=studio_home.run_dir, **SMALL)
    at.file_uploader(key="predict_images").set_value([
        ("red.png", png_bytes(COLOURS["red"]), "image/png"),
        ("broken.png", b"not an image", "image/png")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1
    assert any("Cannot read this image" in e.value for e in at.error)
    top = [m.value for m in at.markdown if " · " in m.value and "%" in m.value]
    assert top and top[0].split("**")[1] in ("red", "green", "blue")


def test_runs_lists_exports_repeats_and_deletes(studio_home):
    copy = studio_home.home / "runs" / "20000101-000000-copy-0003"
    shutil.copytree(studio_home.run_dir, copy)
    at = open_page(PAGES[7], run_dir=studio_home.run_dir, **SMALL)
    runs = at.dataframe[0].value
    assert studio_home.run_id in list(runs["run"]) and copy.name in list(runs["run"])
    assert len(at.get("plotly_chart")) == 1

    [b for b in at.button if b.label == "Prepare the file"][0].click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    download = at.get("download_button")
    assert download and f"{studio_home.run_id}.keras" in str(download[0].proto)

    at.selectbox(key="w:runs_run").select(str(copy)).run()
    at.checkbox(key=f"sure_{copy.name}").check().run()
    [b for b in at.button if b.label == "Delete run"][0].click().run()
    assert not at.exception and not copy.exists()

    at.checkbox(key="sure_cache").check().run()
    [b for b in at.button if b.label == "Clear the cache"][0].click().run()
    assert not at.exception and not any((studio_home.home / "cache").iterdir())

    at.selectbox(key="w:runs_run").select(studio_home.run_dir).run()
    [b for b in at.button if b.label == "Load its settings"][0].click().run()
    assert not at.exception
    assert at.session_state["head_epochs"] == 1 and at.session_state["batch_size"] == 4
    assert [t.value for t in at.title] == ["Train"]
    assert at.number_input(key="w:head_epochs").value == 1
