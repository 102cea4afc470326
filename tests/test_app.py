"""Every page of the studio through streamlit.testing.v1.AppTest: empty, and with a finished run.

The finished run is the session's small two-stage run (conftest.py: MobileNetV2 without
pretrained weights at 32 px, one epoch per stage, on a tiny generated dataset), copied into
a run store under this module's own TLCORE_HOME. Its features end 1 x 1, so Grad-CAM has no map there;
`cam_run` (ResNet50 at 64 px cut at conv4_block6_out, 4 x 4 features) is the run for maps.
Where a page would start training processes (compare, sweep), `fake_starts` stands in for
`tlcore.training.jobs.start_training` and writes completed runs.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import socket
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from datagen import COLOURS, write_split
import apphelp
from apphelp import plain

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["views/1_Home.py", "views/2_Backbone.py", "views/3_Layers.py", "views/4_Data.py",
         "views/5_Train.py", "views/6_Evaluate.py", "views/7_Predict.py", "views/8_Runs.py",
         "views/0_Quick_start.py", "views/9_Search.py"]
QUICK, SWEEP = PAGES[8], PAGES[9]
SMALL = {"backbone": "MobileNetV2", "input_size": 32, "weights": "none"}


@pytest.fixture(scope="module")
def finished(tmp_path_factory, small_two_stage_run):
    """A completed two-stage run (the session's small one, conftest.py) copied into a home of this
    module's own, and the dataset it was trained on."""
    home = tmp_path_factory.mktemp("studio") / "home"
    run_dir = home / "runs" / Path(small_two_stage_run.run_dir).name
    shutil.copytree(small_two_stage_run.run_dir, run_dir)
    return SimpleNamespace(home=home, data=small_two_stage_run.data, run_dir=str(run_dir), run_id=run_dir.name)


@pytest.fixture(scope="module")
def cam_run(finished, shared_run):
    """The session's run (ResNet50 at 64 px cut at conv4_block6_out: 4 x 4 features for
    Grad-CAM; MobileNetV2 at 32 px ends 1 x 1), copied into this module's home."""
    target = finished.home / "runs" / Path(shared_run.run_dir).name
    if not target.exists():
        shutil.copytree(shared_run.run_dir, target)
    return str(target)


@pytest.fixture
def studio_home(finished, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(finished.home))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    monkeypatch.delenv("TLCORE_DATA_ROOTS", raising=False)
    return finished


def open_page(page: str, **state) -> AppTest:
    return apphelp.open_page(None if page == PAGES[0] else page, **state)


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
    assert not at.error, [plain(e.value) for e in at.error]
    assert at.title, "every page has a title"
    shown = texts(at)
    expected = {"views/1_Home.py": "Mixed precision", "views/2_Backbone.py": "Your choice",
                "views/3_Layers.py": "Trainable, stage 2", "views/4_Data.py": "No dataset chosen yet",
                "views/5_Train.py": "Choose a dataset first", "views/6_Evaluate.py": "No trained model yet",
                "views/7_Predict.py": "No trained model yet", "views/8_Runs.py": "No runs yet",
                "views/0_Quick_start.py": "No dataset yet", "views/9_Search.py": "Choose a dataset first"}[page]
    assert expected in shown
    assert "no run yet" in "\n".join(m.value for m in at.sidebar.markdown)


def test_password_is_asked_before_any_page(tmp_path, monkeypatch):
    from studio import access

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    now = [1000.0]
    monkeypatch.setattr(access, "_now", lambda: now[0])  # the wrong password's wait passes at once
    access.THROTTLE.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert [t.value for t in at.title] == ["TL Studio"] and not at.metric
    at.text_input[0].input("wrong")
    at.button[0].click().run()
    assert any(e.value.startswith("Wrong password.") for e in at.error)
    now[0] += access.MAX_DELAY
    at.text_input[0].input("s3cret")
    at.button[0].click().run()
    assert not at.exception and "Mixed precision" in texts(at)


def test_a_page_file_run_on_its_own_only_points_to_the_app(tmp_path, monkeypatch):
    """A page file run without app.py (password, sidebar) refuses and points to the app."""
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.setenv("TLSTUDIO_PASSWORD", "s3cret")
    at = AppTest.from_file(str(ROOT / "views" / "5_Train.py"), default_timeout=60).run()
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
    next(b for b in at.button if b.label == "Check that it fits").click().run()
    assert not at.exception
    assert any("does not fit MobileNetV2" in plain(e.value) for e in at.error)
    at.radio(key="w:weights_kind").set_value("none").run()
    assert at.session_state["weights"] == "none"


def test_random_weights_switch_the_train_page_to_the_from_scratch_plan_and_back(studio_home):
    at = open_page(PAGES[1], **SMALL)
    at.radio(key="w:weights_kind").set_value("imagenet").run()
    at.session_state["head_epochs"], at.session_state["fine_tune_epochs"] = 4, 2
    at.radio(key="w:weights_kind").set_value("none").run()
    plan = {k: at.session_state[k] for k in ("head_epochs", "fine_tune_epochs", "unfreeze_from", "train_bn",
                                             "early_stopping")}
    assert plan == {"head_epochs": 0, "fine_tune_epochs": 6, "unfreeze_from": "0", "train_bn": True,
                    "early_stopping": 0}  # the 4 + 2 epochs, all of them from scratch
    at.switch_page(PAGES[4]).run()
    assert at.number_input(key="w:head_epochs").value == 0 and at.number_input(key="w:fine_tune_epochs").value == 6
    at.switch_page(PAGES[1]).run()
    at.radio(key="w:weights_kind").set_value("imagenet").run()
    assert (at.session_state["head_epochs"], at.session_state["fine_tune_epochs"], at.session_state["train_bn"]) == \
        (10, 5, False)


def test_backbone_says_whether_imagenet_weights_are_cached(studio_home, monkeypatch, tmp_path):
    from tlcore.backbones.build import imagenet_weights_file

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    at = open_page(PAGES[1], **{**SMALL, "weights": "imagenet"})
    fname = imagenet_weights_file("MobileNetV2")
    assert any("Not on this machine yet" in i.value and fname in i.value for i in at.info)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / fname).write_bytes(b"weights")
    at.run()
    assert any("Already on this machine" in s.value for s in at.success)


def _plan_for(classes=3, **options):
    from tlcore.recipe.config import TrainConfig
    from tlcore.recipe.plan import make_plan

    config = TrainConfig(backbone="MobileNetV2", input_size=32, weights="none", **options)
    return make_plan(config, classes)


def test_layers_counts_match_the_engine(studio_home):
    at = open_page(PAGES[2], data=str(studio_home.data), **SMALL)
    plan = _plan_for()
    for stage, label in (("1", "Trainable, stage 1 (head)"), ("2", "Trainable, stage 2")):
        assert metric(at, label) == f"{plan.stages[int(stage)]['trainable']:,}"
    assert metric(at, "Non-trainable, stage 2") == f"{plan.stages[2]['non_trainable']:,}"
    # what training really trained, per stage (the finished run used the same choices)
    recorded = json.loads((Path(studio_home.run_dir) / "status.json").read_text())["parameters_by_stage"]
    assert metric(at, "Trainable, stage 1 (head)") == f"{recorded['1']['trainable']:,}"
    assert metric(at, "Trainable, stage 2") == f"{recorded['2']['trainable']:,}"
    assert len(at.get("vega_lite_chart")) == 1  # the parameters per layer (Vega-Lite: loads fast)
    table = at.dataframe[0].value
    assert len(table) == len(plan.layers)
    assert list(table["stage 2"]) == [{"trains": "trains", "inference_bn": "BatchNorm, inference",
                                       "frozen": "frozen", "cut": "cut away"}[r.stage2] for r in plan.layers]

    # A pattern typed in the box: the counts and roles follow the plan for the same options.
    at.text_input(key="w:freeze_text").input("block_15*, re:Conv_1/").run()
    assert not at.exception and at.session_state["freeze"] == ["block_15*", "re:Conv_1/"]
    plan = _plan_for(freeze=["block_15*", "re:Conv_1/"])
    assert metric(at, "Trainable, stage 2") == f"{plan.stages[2]['trainable']:,}"
    roles = dict(zip(at.dataframe[0].value["name"], at.dataframe[0].value["stage 2"]))
    assert roles["block_15_project"] == "frozen" and roles["Conv_1"] == "frozen"
    # A pattern that matches nothing: the engine's error, shown, not a traceback.
    at.text_input(key="w:unfreeze_text").input("blok_16_project").run()
    assert not at.exception and any("block_16_project" in plain(e.value) for e in at.error)
    at.text_input(key="w:unfreeze_text").input("").run()
    at.text_input(key="w:freeze_text").input("").run()
    assert not at.error

    # Unfreeze past the cut: nothing of the backbone trains, and the page says so.
    at.select_slider(key="w:cut_index").set_value(10).run()
    at.select_slider(key="w:unfreeze_index").set_value(100).run()
    assert not at.exception
    assert any("No backbone weight will train in stage 2" in plain(w.value) for w in at.warning)
    assert metric(at, "Trainable, stage 2") == metric(at, "Trainable, stage 1 (head)")
    assert at.session_state["cut"] == plan.layers[10].name

    # The head designer changes the count; a bad dense spec is an error, not a traceback.
    at.text_input(key="w:dense_text").input("64").run()
    assert at.session_state["dense"] == [64]
    at.text_input(key="w:dense_text").input("64, lots").run()
    assert any("whole numbers" in plain(e.value) for e in at.error) and not at.exception
    at.text_input(key="w:layer_search").input("project_BN").run()
    assert all("project_BN" in name for name in at.dataframe[0].value["name"])


def test_data_page_scan_upload_and_server_folder(studio_home, monkeypatch, tmp_path):
    at = open_page(PAGES[3], data=str(studio_home.data), **SMALL)
    assert metric(at, "Classes") == "3" and metric(at, "Train images") == "12"
    assert any("training images" in plain(w.value) for w in at.warning)  # tiny classes are flagged
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
    assert any("outside the folders this server may read" in plain(e.value) for e in at.error)
    assert at.session_state["data"] == str(studio_home.home / "datasets" / "flat")
    monkeypatch.setenv("TLCORE_DATA_ROOTS", str(tmp_path))
    at.text_input[0].input(str(outside))
    use().click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
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
        assert any("The training failed: Dataset folder not found: /gone." in plain(e.value) for e in at.error)
        start = [b for b in at.button if "Start" in b.label][0]
        start.click().run()
        assert not at.exception
        assert any("File not found: /no/such/file.weights.h5" in plain(e.value) for e in at.error)
    finally:
        shutil.rmtree(failed)


def test_reload_reattaches_to_a_live_run_and_shows_the_queue(studio_home):
    from tlcore.core.runs import now_iso

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
    assert [c.key for c in at.get("plotly_chart")] == ["confusion", "reliability"]
    assert f"Top losses ({len(ev['misclassified'])} misclassified)" in texts(at)
    at.button[0].click().run()  # evaluate again
    assert not at.exception and not at.error


def test_evaluate_cell_lists_its_images_correct_ones_too(studio_home):
    ev = json.loads((Path(studio_home.run_dir) / "evaluation.json").read_text())
    cm = ev["confusion_matrix"]
    t, p = max(((i, j) for i in range(len(cm)) for j in range(len(cm))), key=lambda c: cm[c[0]][c[1]])
    at = open_page(PAGES[5], run_dir=studio_home.run_dir, _cell=(studio_home.run_id, ev["split"], t, p),
                   **SMALL)
    n = cm[t][p]
    assert f"True {ev['labels'][t]}, predicted {ev['labels'][p]}: {n} image{'s' if n != 1 else ''}" in \
        [h.value for h in at.subheader]
    assert len([c for c in at.checkbox if c.key.startswith("cell_pick_")]) == min(n, 24)
    assert any("read-only" in i.value for i in at.info)  # the test dataset lies outside the home


def test_predict_shows_top_k_for_each_image(studio_home):
    at = open_page(PAGES[6], run_dir=studio_home.run_dir, **SMALL)
    at.file_uploader(key="predict_images").set_value([
        ("red.png", png_bytes(COLOURS["red"]), "image/png"),
        ("broken.png", b"not an image", "image/png")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1
    assert any("Cannot read this image" in plain(e.value) for e in at.error)
    top = [m.value for m in at.markdown if " · " in m.value and "%" in m.value]
    assert top and top[0].split("**")[1] in ("red", "green", "blue")


def test_runs_lists_exports_repeats_and_deletes(studio_home):
    copy = studio_home.home / "runs" / "20000101-000000-copy-0003"
    shutil.copytree(studio_home.run_dir, copy)
    at = open_page(PAGES[7], run_dir=studio_home.run_dir, **SMALL)
    runs = at.dataframe[0].value
    assert studio_home.run_id in list(runs["run"]) and copy.name in list(runs["run"])
    assert len(at.get("plotly_chart")) == 1

    assert at.selectbox(key="export_format").value == "bundle"  # the default download has the labels
    codes = [c.value for c in at.code]
    assert f"tlcore serve {studio_home.run_dir} --port 8000" in codes and any("curl" in c for c in codes)
    at.selectbox(key="export_format").select("keras").run()
    [b for b in at.button if b.label == "Prepare the file"][0].click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    download = at.get("download_button")
    assert download and f"{studio_home.run_id}.keras" in str(download[0].proto)
    at.toggle(key=f"code_{studio_home.run_id}").set_value(True).run()
    assert not at.exception and any("def build_model" in c.value and "CUT_LAYER" in c.value for c in at.code)

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


# --- insight, your own backbone, demo and quick start --------------------------------

def jpeg_bytes(colour=(220, 40, 40), size=48, seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = np.clip(np.array(colour, float) + rng.normal(0, 20, (size, size, 3)), 0, 255).astype("uint8")
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    return buf.getvalue()


def frame_with(at: AppTest, column: str):
    """The page's one dataframe that has `column`."""
    found = [d.value for d in at.dataframe if column in d.value.columns]
    assert len(found) == 1, [list(d.value.columns) for d in at.dataframe]
    return found[0]


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} in {[b.label for b in at.button]}"
    return found[0]


def fake_starts(monkeypatch, home: Path, val_accuracy=lambda options: 0.5) -> list[dict]:
    """Replace tlcore.training.jobs.start_training: each call makes a completed run with one epoch."""
    from tlcore.core.runs import Run

    started: list[dict] = []

    def start_training(options, runs_dir=None):
        started.append(dict(options))
        path = home / "runs" / f"29990101-{len(started):06d}-fake"
        path.mkdir(parents=True)
        (path / "status.json").write_text(json.dumps({"state": "completed", "host": socket.gethostname(),
                                                      "started_at": f"2999-01-01T00:00:{len(started):02d}Z"}))
        (path / "config.json").write_text(json.dumps({"options": options}))
        acc = val_accuracy(options)
        (path / "metrics.jsonl").write_text(json.dumps({"stage": 1, "epoch": 1, "loss": 1.0, "accuracy": acc,
                                                        "val_loss": 1.0, "val_accuracy": acc}) + "\n")
        return Run(path)

    monkeypatch.setattr("tlcore.training.jobs.start_training", start_training)
    return started


def own_model(path: Path, lam: bool = False) -> Path:
    """A small saved classifier wrapping a nested model (optionally with a Lambda layer)."""
    import keras

    inner_in = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="inner_conv")(inner_in)
    inner = keras.Model(inner_in, keras.layers.ReLU(name="inner_relu")(x), name="inner")
    inputs = keras.Input((32, 32, 3), name="img")
    x = keras.layers.Rescaling(1 / 255.0, name="rescale")(inputs)
    if lam:
        x = keras.layers.Lambda(lambda t: t * 2.0, name="double")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(inner(x))
    keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="old_head")(x), name="clf").save(path)
    return path


def test_quick_start_recommends_a_small_fast_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # no ImageNet weights on this "machine"
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = open_page(QUICK)  # a fresh session: nothing chosen yet
    assert not at.error, [plain(e.value) for e in at.error]
    # offline: a small MobileNetV2 trained from scratch, and how to get transfer learning instead
    assert [at.session_state[k] for k in ("backbone", "input_size", "weights", "cut", "unfreeze_from")] == \
        ["MobileNetV2", 64, "none", "block_6_expand_relu", "0"]
    assert at.session_state["train_bn"] and at.session_state["fine_tune_epochs"] == 45
    assert any("nothing can be transferred" in i.value and "mobilenet_v2" in i.value for i in at.info)
    assert "trained from scratch" in texts(at)
    start = [b for b in at.button if b.label == "Start training"][0]
    assert start.disabled  # no data yet
    links = " ".join(str(link.proto.page) for link in at.get("page_link"))
    assert all(page in links for page in ("data", "backbone", "layers", "train", "predict", "evaluate")), links

    button(at, "Use the demo dataset").click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    demo = tmp_path / "home" / "datasets" / "demo-shapes"
    assert at.session_state["data"] == str(demo)
    assert sorted(p.name for p in (demo / "train").iterdir()) == ["circle", "square", "star", "triangle"]
    assert "600 images in 4 classes" in texts(at)
    assert not [b for b in at.button if b.label == "Start training"][0].disabled


def test_quick_start_with_a_finished_run_predicts_with_gradcam(studio_home):
    at = open_page(QUICK, data=str(studio_home.data), run_dir=studio_home.run_dir, **SMALL)
    shown = texts(at)
    assert "3 classes" in shown and "Your selection: **MobileNetV2 · 32 px · no pretraining**" in shown
    assert metric(at, "Epochs") == "2" and metric(at, "Best validation accuracy").endswith("%")
    at.file_uploader(key="qs_images").set_value([("red.png", png_bytes(COLOURS["red"]), "image/png")]).run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    assert len(at.get("plotly_chart")) == 2  # the training curves and the top-k bars
    # MobileNetV2 at 32 px ends in 1 x 1 features: the page says why there is no map rather than tint the image.
    assert any("features at this run's cut are 1 × 1" in c.value for c in at.caption)
    button(at, "Use the recommended settings").click().run()
    assert at.session_state["input_size"] == 64 and at.session_state["head_epochs"] == 0
    assert at.session_state["cut"] == "block_6_expand_relu" and at.session_state["rotation"] == 180.0


def test_predict_shows_gradcam_and_imagenet_mode(studio_home, cam_run, monkeypatch, tmp_path):
    at = open_page(PAGES[6], run_dir=cam_run, **SMALL)
    image = np.full((40, 60, 3), 30, np.uint8)
    image[5:35, 35:58] = COLOURS["red"]  # an object on one side
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    at.file_uploader(key="predict_images").set_value([("red.png", buf.getvalue(), "image/png")]).run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    images = at.get("image")
    assert len(images) == 2 and "Grad-CAM · " in str(images[1].proto)  # the picture and its heatmap
    cam = list(at.session_state["_gradcam"].values())[0]
    assert cam["overlay"].size == (60, 40) and cam["shape"] == (4, 4) and not cam["flat"]
    assert cam["label"] in ("red", "green", "blue")
    at.toggle(key="predict_gradcam").set_value(False).run()
    assert len(at.get("image")) == 1

    # A run whose features are 1 x 1 says so instead of a flat map.
    at.selectbox(key="w:predict_run").select(studio_home.run_dir).run()
    at.toggle(key="predict_gradcam").set_value(True).run()
    assert len(at.get("image")) == 1
    assert any("features at this run's cut are 1 × 1" in c.value for c in at.caption)

    # A webcam snap is classified like a dropped image.
    at.toggle(key="predict_camera_on").set_value(True).run()
    at.camera_input(key="predict_camera").set_value(("snap.jpg", jpeg_bytes(COLOURS["blue"]), "image/jpeg")).run()
    assert not at.exception and len(at.get("plotly_chart")) == 2

    # ImageNet mode: with weights None it says what to choose; offline it names the file to copy.
    at.segmented_control(key="predict_mode").set_value("imagenet").run()
    assert any("no pretrained weights chosen" in plain(e.value) for e in at.error) and not at.exception
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    at.session_state["weights"] = "imagenet"
    at.run()
    at.file_uploader(key="predict_images").set_value([("red.png", png_bytes(COLOURS["red"]), "image/png")]).run()
    assert not at.exception
    assert any("Could not download the ImageNet weights" in plain(e.value) and "_224.h5" in plain(e.value) for e in at.error), \
        [plain(e.value) for e in at.error]


def test_evaluate_shows_calibration_top_losses_gradcam_and_calibrates(studio_home, cam_run, monkeypatch, tmp_path):
    home = tmp_path / "home"
    copy = home / "runs" / Path(cam_run).name
    shutil.copytree(cam_run, copy)
    ev = json.loads((copy / "evaluation.json").read_text())
    if not ev["misclassified"]:  # make sure there is a mistake to show
        f = sorted((Path(studio_home.data) / "test" / "red").iterdir())[0]
        ev["misclassified"] = [{"file": str(f), "true": "red", "predicted": "blue", "probability": 0.6, "loss": 1.6}]
        (copy / "evaluation.json").write_text(json.dumps(ev))
    monkeypatch.setenv("TLCORE_HOME", str(home))
    at = open_page(PAGES[5], run_dir=str(copy), **SMALL)
    assert metric(at, "Calibration error (ECE)") == f"{ev['ece']:.3f}"
    charts = at.get("plotly_chart")
    assert len(charts) == 2  # the confusion matrix and the reliability diagram
    assert "perfectly calibrated" in str(charts[1].proto)
    worst = max(ev["misclassified"], key=lambda m: m["loss"])
    assert f"predicted **{worst['predicted']}**" in texts(at) and f"loss {worst['loss']:.2f}" in texts(at)
    before = len(at.get("image"))
    button(at, "Grad-CAM").click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    assert len(at.get("image")) == before + 1

    button(at, "Calibrate (temperature scaling)").click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    assert float(metric(at, "Temperature T")) > 0
    assert float(metric(at, "Val log-loss after")) <= float(metric(at, "Val log-loss before")) + 1e-9
    assert json.loads((copy / "calibration.json").read_text())["temperature"] > 0
    assert any("Calibrated: **T = " in m.value for m in at.markdown)


def test_train_presets_fill_the_form_and_edits_win(studio_home):
    at = open_page(PAGES[4], data=str(studio_home.data), **SMALL)
    assert at.selectbox(key="w:preset_choice").value == "—"  # no preset until one is chosen
    at.selectbox(key="w:preset_choice").select("vgg19-frozen").run()
    assert not at.exception
    assert [at.session_state[k] for k in ("backbone", "head_epochs", "optimizer", "weights", "preset")] == \
        ["VGG19", 20, "rmsprop", "imagenet", "vgg19-frozen"]
    assert at.number_input(key="w:head_epochs").value == 20
    assert any("include_top=False, all frozen" in c.value for c in at.caption)
    at.number_input(key="w:head_epochs").set_value(2).run()
    assert at.session_state["head_epochs"] == 2 and at.session_state["backbone"] == "VGG19"
    assert at.selectbox(key="w:preset_choice").value == "vgg19-frozen"
    at.switch_page(PAGES[1]).run()  # the Backbone page shows what the preset chose
    assert at.selectbox(key="w:backbone").value == "VGG19" and at.number_input(key="w:input_size").value == 224


def test_train_finds_a_learning_rate_and_uses_it(studio_home):
    at = open_page(PAGES[4], data=str(studio_home.data), **SMALL)
    button(at, "Find learning rate").click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    result = at.session_state["_lr_find"]
    assert 1e-7 <= result["suggested_lr"] <= 1.0 and len(result["lrs"]) >= 11
    chart = at.get("plotly_chart")[0]
    assert '"type":"log"' in chart.proto.spec.replace(" ", "")
    [b for b in at.button if b.label.startswith("Use this rate")][0].click().run()
    assert at.session_state["lr"] == pytest.approx(result["suggested_lr"])
    assert at.number_input(key="w:lr").value == pytest.approx(result["suggested_lr"])


def test_train_also_from_scratch_queues_both_and_runs_overlays_them(studio_home, monkeypatch, tmp_path):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    started = fake_starts(monkeypatch, tmp_path)
    at = open_page(PAGES[4], data=str(studio_home.data), **{**SMALL, "weights": "imagenet"})
    button(at, "Also train from scratch (compare)").click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    assert len(started) == 2
    assert started[0]["weights"] == "imagenet" and started[1]["weights"] == "none"
    assert started[1]["head_epochs"] == 0 and started[1]["fine_tune_epochs"] == 15
    assert started[1]["name"].endswith("(from scratch)")
    pair = at.session_state["_compare_pair"]
    at.switch_page(PAGES[7]).run()
    assert at.multiselect(key="compare_runs").value == pair
    differ = frame_with(at, "option")  # next to the curves: what changed between the two
    rows = {r["option"]: r for r in differ.to_dict("records")}
    assert rows["weights"][pair[0]] == "imagenet" and rows["weights"][pair[1]] == "none"
    assert rows["fine_tune_epochs"][pair[1]] == "15" and "data" not in rows and "backbone" not in rows
    # With weights None there is nothing to compare against.
    at.session_state["weights"] = "none"
    at.switch_page(PAGES[4]).run()
    assert button(at, "Also train from scratch (compare)").disabled


def test_search_starts_a_grid_and_opens_the_best_run(studio_home, monkeypatch, tmp_path):
    from searchfake import write_search

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    started = []

    def start_search(base, space, grid=True, trials=8, seeds=1, metric="val_accuracy", scheduler="none",
                     runs_dir=None):
        started.append({"base": base, "space": space, "grid": grid, "seeds": seeds, "scheduler": scheduler})
        return write_search(tmp_path, "s1", space, seeds=range(42, 42 + seeds),
                            score=lambda o, seed: 0.9 if o["cut"] == "block_16_project_BN" else 0.4 + seed / 1000)

    monkeypatch.setattr("tlcore.search.tune.start_search", start_search)
    at = open_page(SWEEP, data=str(studio_home.data), **SMALL)
    assert not at.error, [plain(e.value) for e in at.error]
    cuts = [m for m in at.multiselect if m.label.startswith("Cut after")][0]
    assert len(cuts.value) == 1
    target = [o for o in cuts.options if o.endswith(" · block_16_project_BN")][0]
    cuts.select(target).run()
    at.number_input(key="search_seeds").set_value(2).run()
    button(at, "Start 4 runs").click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    assert started[0]["grid"] and started[0]["seeds"] == 2 and len(started[0]["space"]["cut"]) == 2
    assert set(started[0]["space"]) == {"cut", "unfreeze_from", "lr", "dropout", "batch_size"}
    assert started[0]["base"]["data"] == str(studio_home.data)
    points = frame_with(at, "spread (std)")
    assert list(points["runs"]) == [2, 2]
    trials = frame_with(at, "seed")
    assert len(trials) == 4 and set(trials["state"]) == {"completed"}
    # lr, dropout and batch size have one choice each: only cut and unfreeze vary, a heatmap shows them
    assert ['"type":"heatmap"' in c.proto.spec.replace(" ", "") for c in at.get("plotly_chart")] == [True]
    best = button(at, "Open the best run (90.0%)")
    best.click().run()
    chosen = [r for r in (tmp_path / "runs").iterdir()
              if json.loads((r / "config.json").read_text())["options"]["cut"] == "block_16_project_BN"]
    assert at.session_state["run_dir"] in {str(r) for r in chosen}
    assert any("The current run is" in s.value for s in at.success)


def test_search_page_shows_other_spaces_as_parallel_coordinates(studio_home, monkeypatch, tmp_path):
    from searchfake import write_search

    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    write_search(tmp_path, "lr1", {"cut": ["out_relu"], "lr": [0.01, 0.001], "dropout": [0.2, 0.5]},
                 score=lambda o, seed: 0.5 + o["lr"] * 10)
    at = open_page(SWEEP, data=str(studio_home.data), **SMALL)
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    assert ['"type":"parcoords"' in c.proto.spec.replace(" ", "") for c in at.get("plotly_chart")] == [True]
    assert len(frame_with(at, "seed")) == 4 and not any("spread (std)" in d.value.columns for d in at.dataframe)
    assert button(at, "Open the best run (60.0%)")


def test_data_demo_button_and_webcam_snaps(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = open_page(PAGES[3], **SMALL)
    assert "New here? Start with the demo dataset." in texts(at)  # offered first to a newcomer

    root = tmp_path / "datasets" / "webcam"
    at.text_input(key="cam_new_class").input("mug")
    button(at, "Add class").click().run()
    at.text_input(key="cam_new_class").input("train")
    button(at, "Add class").click().run()
    assert any("name of a split folder" in plain(e.value) for e in at.error)
    at.text_input(key="cam_new_class").input("pen")
    button(at, "Add class").click().run()
    assert sorted(p.name for p in root.iterdir()) == ["mug", "pen"]
    assert at.button(key="cam_use").disabled  # no snaps yet

    at.segmented_control(key="cam_class").set_value("mug").run()
    at.toggle(key="cam_on").set_value(True).run()
    for seed in (1, 2):
        at.camera_input(key="cam_snap").set_value(("snap.jpg", jpeg_bytes(seed=seed), "image/jpeg")).run()
        assert not at.exception, [e.value for e in at.exception]
    assert sorted(p.name for p in (root / "mug").iterdir()) == ["1.png", "2.png"]
    assert Image.open(root / "mug" / "1.png").mode == "RGB"
    at.segmented_control(key="cam_class").set_value("pen").run()
    assert not any((root / "pen").iterdir())  # switching class does not file the last snap again
    at.camera_input(key="cam_snap").set_value(("snap.jpg", jpeg_bytes(COLOURS["blue"], seed=3), "image/jpeg")).run()
    at.camera_input(key="cam_snap").set_value(("snap.jpg", jpeg_bytes(COLOURS["blue"], seed=4), "image/jpeg")).run()
    assert "**pen**: 2 snaps" in texts(at)
    button(at, "Delete").click().run()  # the first shown snap of pen
    assert [p.name for p in (root / "pen").iterdir()] == ["2.png"]

    use = at.button(key="cam_use")
    assert not use.disabled
    use.click().run()
    assert not at.exception and at.session_state["data"] == str(root)
    assert metric(at, "Classes") == "2"


def test_own_model_as_backbone(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    at = open_page(PAGES[1], **SMALL)
    at.segmented_control(key="w:backbone_kind").set_value("file").run()
    assert any("No model yet" in i.value for i in at.info)

    # Refused: a Lambda layer, and a file that is no model; neither is kept.
    lam = own_model(tmp_path / "lam.keras", lam=True).read_bytes()
    at.file_uploader(key="model_upload").set_value(("lam.keras", lam, "application/octet-stream")).run()
    assert any("Lambda layer" in plain(e.value) for e in at.error) and not at.exception
    at.file_uploader(key="model_upload").set_value(("junk.h5", b"not a model", "application/octet-stream")).run()
    assert any("junk.h5 is not a Keras model file" in plain(e.value) for e in at.error)
    assert not list((tmp_path / "home" / "models").iterdir())
    assert at.session_state["backbone_file"] is None

    data = own_model(tmp_path / "clf.keras").read_bytes()
    at.file_uploader(key="model_upload").set_value(("clf.keras", data, "application/octet-stream")).run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    saved = tmp_path / "home" / "models" / "clf.keras"
    assert at.session_state["backbone_file"] == str(saved) and saved.exists()
    assert metric(at, "Input size") == "32 px" and metric(at, "Preprocessing") == "none"
    assert "your own model" in "\n".join(m.value for m in at.sidebar.markdown)

    at.switch_page(PAGES[2]).run()  # Layers: the flattened model, nested layers named by path
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    names = list(at.dataframe[0].value["name"])
    assert "inner/inner_conv" in names and "old_head" in names
    assert at.session_state["cut"] == "inner/inner_relu"  # the default cut drops the old head
    assert metric(at, "Trainable, stage 1 (head)") == "5"  # 4 pooled features -> one sigmoid unit

    # Train passes the file instead of a catalog backbone.
    started = fake_starts(monkeypatch, tmp_path / "home")
    data = write_split(tmp_path / "data", counts=(2, 1, 1))
    at.session_state["data"] = str(data)
    at.switch_page(PAGES[4]).run()
    assert "your own model `clf.keras`" in texts(at)
    assert button(at, "Also train from scratch (compare)").disabled
    button(at, "Start training").click().run()
    assert not at.exception and not at.error, [plain(e.value) for e in at.error]
    options = started[0]
    assert options["backbone"] is None and options["backbone_file"] == str(saved)
    assert options["cut"] == "inner/inner_relu" and options["preprocessing"] == "auto"


# --- the selection in the URL (a reload, a bookmark, a shared link) ---------------------------

def sidebar_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown)


def test_the_selection_survives_a_reload_through_the_url(studio_home, monkeypatch):
    monkeypatch.setenv("TLCORE_DATA_ROOTS", str(Path(studio_home.data).parent))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(data=str(studio_home.data), backbone="MobileNetV2", input_size="32", weights="none",
                           run_dir=studio_home.run_dir)
    at.run()
    assert not at.exception and not at.toast, [t.value for t in at.toast]
    assert [at.session_state[k] for k in ("data", "backbone", "input_size", "weights", "run_dir")] == \
        [str(studio_home.data), "MobileNetV2", 32, "none", studio_home.run_dir]
    assert (at.session_state["head_epochs"], at.session_state["train_bn"]) == (0, True)  # the from-scratch plan
    shown = sidebar_text(at)
    assert "MobileNetV2 · 32 px · no pretraining" in shown and studio_home.data.name in shown
    assert studio_home.run_id in shown

    at.switch_page(PAGES[2]).run()  # Layers chooses an unfreeze point; the URL follows
    assert not at.exception
    assert at.query_params["unfreeze_from"] == at.session_state["unfreeze_from"]
    assert at.query_params["input_size"] == "32" and at.query_params["run_dir"] == studio_home.run_dir

    again = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)  # F5: a new session, the same URL
    again.query_params.update(at.query_params)
    again.run()
    assert not again.exception and not again.toast
    assert again.session_state["unfreeze_from"] == at.session_state["unfreeze_from"]
    assert again.session_state["input_size"] == 32 and "MobileNetV2 · 32 px" in sidebar_text(again)


def test_a_link_to_what_is_gone_or_not_allowed_is_dropped_with_a_notice(studio_home, tmp_path):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params.update(data=str(studio_home.data),  # outside the readable roots (TLCORE_DATA_ROOTS unset)
                           backbone="NoSuchNet", input_size="lots", weights=str(tmp_path / "gone.weights.h5"),
                           run_dir=str(studio_home.home / "runs" / "deleted-run"), cut="block_1_expand")
    at.run()
    assert not at.exception and not at.error
    notices = [t.value for t in at.toast]
    assert len(notices) == 5, notices
    assert any("dataset" in n and "outside the folders this server may read" in n for n in notices)
    assert any("backbone `NoSuchNet`" in n for n in notices) and any("input size `lots`" in n for n in notices)
    assert at.session_state["cut"] == "block_1_expand"  # kept: the Layers page falls back if it is unknown
    assert "data" not in at.session_state and "run_dir" not in at.query_params
    assert "_no dataset yet_" in sidebar_text(at) and "MobileNetV2" in sidebar_text(at)
