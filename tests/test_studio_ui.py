"""studio/: the UI package's pure functions (words, formats, charts' positions, the selection's
recipes, and the check of a link's query parameters), without a browser."""
from __future__ import annotations

import pytest

from studio import charts, state, text
from tlcore.backbones.assets import weights_status
from tlcore.core.errors import TLCoreError


def test_parse_dense():
    assert text.parse_dense("") == ()
    assert text.parse_dense("1024, 256") == (1024, 256)
    assert text.parse_dense("512 128;64") == (512, 128, 64)
    for bad in ("abc", "0", "1.5", "-3"):
        with pytest.raises(TLCoreError):
            text.parse_dense(bad)


def test_epoch_progress_estimates_time_left():
    status = {"pid": 1, "stage": 2, "epoch": 3, "epochs_total": 4, "batch": 0, "batches_total": 10}
    first, seen = text.epoch_progress(status, [{"seconds": 20.0}], None, now=100.0)
    assert first["fraction"] == 0 and first["epoch_seconds_left"] == pytest.approx(20.0)
    assert "Stage 2 · fine-tuning · epoch 3/4 · batch 0/10" in first["text"]
    later, _ = text.epoch_progress(dict(status, batch=5), [], seen, now=105.0)  # 1 batch per second
    assert later["fraction"] == 0.5 and later["epoch_seconds_left"] == pytest.approx(5.0)
    assert later["run_seconds_left"] == pytest.approx(15.0)
    idle, _ = text.epoch_progress({"stage": None}, [], None, now=0.0)
    assert idle["text"].startswith("Preparing")


def test_time_left_is_estimated_per_stage():
    """At epoch 11 of 70 in stage 2, ten fast cached stage-1 epochs do not make the estimate tiny."""
    stage1 = [{"stage": 1, "epoch": i, "seconds": 0.1} for i in range(1, 11)]
    status = {"pid": 1, "stage": 2, "epoch": 12, "epochs_total": 70, "batch": 0, "batches_total": 10,
              "stage_epochs": {"1": 10, "2": 60}}
    metrics = stage1 + [{"stage": 2, "epoch": 11, "seconds": 1.5}]
    now, _ = text.epoch_progress(status, metrics, None, now=0.0)
    assert now["epoch_seconds_left"] == pytest.approx(1.5) and now["run_seconds_left"] == pytest.approx(1.5 * 59)
    assert "1 min" in now["text"]
    early, _ = text.epoch_progress(dict(status, stage=1, epoch=5), stage1[:4], None, now=0.0)
    assert early["stage_seconds_left"] == pytest.approx(0.1 * 6) and early["run_seconds_left"] is None
    assert "for stage 1, then stage 2" in early["text"]


def test_stage_boundaries():
    metrics = [{"stage": 1, "epoch": 1}, {"stage": 1, "epoch": 2}, {"stage": 2, "epoch": 3}]
    assert charts.stage_boundary(metrics) == 2.5
    assert charts.stage_boundary(metrics[:2]) is None
    assert charts.planned_boundary({"head_epochs": 2, "fine_tune_epochs": 3}) == 2.5
    assert charts.planned_boundary({"head_epochs": 0, "fine_tune_epochs": 3}) is None


def test_formatting():
    assert text.format_count(1838275) == "1,838,275"
    assert text.format_seconds(42) == "42 s" and text.format_seconds(130) == "2 min 10 s"
    assert text.format_seconds(4000) == "1 h 06 min"
    assert text.format_bytes(2048) == "2.0 KB" and text.format_percent(0.9081) == "90.8%"
    assert len(text.catalog_rows()) == 40


def test_presets_in_the_form():
    vgg = state.preset_form_options("vgg19-frozen", {"backbone": "MobileNetV2", "weights": "/w/mobilenet.h5"})
    assert vgg["backbone"] == "VGG19" and vgg["input_size"] == 224 and vgg["weights"] == "imagenet"
    assert vgg["cut"] is None and vgg["unfreeze_from"] is None and "preset" not in vgg
    two = state.preset_form_options("two-stage", {"backbone": "MobileNetV2", "weights": "/w/mobilenet.h5"})
    assert two["input_size"] is None and "weights" not in two  # same backbone: the weights file still fits
    own = state.preset_form_options("inception-mixed7", {"backbone_file": "/m/clf.keras"})
    assert not {"backbone", "input_size", "weights", "cut", "unfreeze_from"} & set(own)
    assert own["pooling"] == "flatten" and own["dense"] == [1024]


def test_quick_start_uses_imagenet_weights_only_when_on_this_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    options = state.quick_start_options()  # offline: a small network trained from scratch
    assert (options["backbone"], options["input_size"], options["weights"]) == ("MobileNetV2", 64, "none")
    assert options["unfreeze_from"] == "0" and options["train_bn"] and options["head_epochs"] == 0
    status = weights_status("MobileNetV2", 96)
    assert status["file"].endswith("_96_no_top.h5") and not status["cached"]  # one file per input size
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / status["file"]).write_bytes(b"weights")
    options = state.quick_start_options()
    assert (options["input_size"], options["weights"], options["cut"]) == (96, "imagenet", None)
    assert set(options) == set(state.QUICK_START_SCRATCH)  # switching recipes resets every option


# --- the selection in the URL ----------------------------------------------------------

def _home_with_things(tmp_path):
    home = tmp_path / "home"
    (home / "datasets" / "pets" / "cats").mkdir(parents=True)
    (home / "weights").mkdir()
    (home / "weights" / "m.weights.h5").write_bytes(b"w")
    (home / "models").mkdir()
    (home / "models" / "clf.keras").write_bytes(b"m")
    run = home / "runs" / "20000101-000000-run-0001"
    run.mkdir(parents=True)
    (run / "status.json").write_text("{}")
    return home, run


def test_url_params_round_trip_through_the_check(tmp_path):
    home, run = _home_with_things(tmp_path)
    chosen = {"data": str(home / "datasets" / "pets"), "backbone": "ResNet50", "input_size": 64,
              "weights": str(home / "weights" / "m.weights.h5"), "cut": "conv4_block6_out", "unfreeze_from": "120",
              "run_dir": str(run), "backbone_file": None, "preprocessing": None, "head_epochs": 3}
    params = state.url_params(chosen)
    assert params == {"data": str(home / "datasets" / "pets"), "backbone": "ResNet50", "input_size": "64",
                      "weights": str(home / "weights" / "m.weights.h5"), "cut": "conv4_block6_out",
                      "unfreeze_from": "120", "run_dir": str(run)}  # only the URL's keys, only what is set
    values, notices = state.selection_from_url(params, [home])
    assert notices == [] and values == {k: v for k, v in chosen.items() if k in params}
    own, notices = state.selection_from_url({"backbone_file": str(home / "models" / "clf.keras"),
                                             "preprocessing": "tf", "backbone": "mobilenetv2"}, [home])
    assert own == {"backbone_file": str(home / "models" / "clf.keras"), "preprocessing": "tf",
                   "backbone": "MobileNetV2"} and not notices


def test_url_values_outside_the_roots_gone_or_bad_are_dropped_with_a_notice(tmp_path):
    home, run = _home_with_things(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "datasets" / "link").symlink_to(outside, target_is_directory=True)
    cases = {
        "data": [str(outside), str(home / "datasets" / "link"), str(home / "datasets" / "deleted"),
                 str(home / "weights" / "m.weights.h5"), "/etc"],
        "backbone": ["NoSuchNet", "x" * 5000],
        "input_size": ["big", "8", "-1", "100000"],
        "weights": [str(home / "weights" / "gone.h5"), str(outside / "w.h5"), "/etc/passwd", "pretrained"],
        "backbone_file": [str(home / "weights" / "m.weights.h5"), str(home / "models" / "none.keras")],
        "preprocessing": ["magic"],
        "run_dir": [str(home / "datasets" / "pets"), str(home / "runs" / "gone"), str(outside)],
        "cut": ["bad\nname"],
    }
    for key, bad_values in cases.items():
        for bad in bad_values:
            values, notices = state.selection_from_url({key: bad}, [home])
            assert values == {} and len(notices) == 1, (key, bad, values)
            assert notices[0].startswith(f"The link's {state.URL_WORDS[key]} "), notices
    values, notices = state.selection_from_url({"backbone": "VGG19", "input_size": "16", "weights": "none",
                                                "colour": "red", "data": ""}, [home])
    assert values == {"backbone": "VGG19", "weights": "none"}  # VGG19 needs 32 px or more; unknown keys ignored
    assert len(notices) == 1 and "input size" in notices[0] and "at least 32" in notices[0]
    values, _ = state.selection_from_url({"run_dir": ["/elsewhere", str(run)]}, [home])
    assert values == {"run_dir": str(run)}  # a repeated key: the last value counts


def test_a_symlink_loop_in_a_link_is_a_notice_not_an_error(tmp_path):
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    values, notices = state.selection_from_url({"data": str(tmp_path / "loop" / "x")}, [tmp_path])
    assert values == {} and len(notices) == 1 and notices[0].startswith("The link's dataset")


def test_engine_errors_are_worded_with_the_pages_labels():
    from studio.text import error_words
    from tlcore.recipe.config import TrainConfig
    from tlcore.core.errors import OptionError, TLCoreError

    with pytest.raises(OptionError) as info:
        TrainConfig(backbone="MobileNetV2", batch_size=0).check(data=False)
    assert error_words(info.value) == "The batch size must be a whole number from 1 to 4096. Received: 0"
    assert error_words(OptionError("some_option", "is wrong.")) == "Some option is wrong."
    assert error_words(TLCoreError("plain words")) == "plain words"
