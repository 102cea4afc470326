"""One source for every option: `TrainConfig`'s fields (and the modules that own a concept) give
every choice list and default; the command line, the app's widgets and the presets take them
from there, and nothing else in the code types a copy."""
from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest
from apphelp import open_page

from tlcore.recipe import config as cfg
from tlcore.recipe.config import DEFAULTS, OPTIONS, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
CHOICE_FIELDS = [f for f in OPTIONS if f.metadata.get("choices")]


def _actions(parser: argparse.ArgumentParser, command: str) -> dict[str, argparse.Action]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    return {a.dest: a for a in sub._actions}


def test_every_train_flag_takes_its_choices_and_default_from_the_field():
    from tlcore.cli.parser import build_parser

    actions = _actions(build_parser(), "train")
    for f in OPTIONS:
        if not f.metadata.get("cli", True):
            continue
        action = actions[f.name]
        assert action.default is argparse.SUPPRESS, f.name  # only what the user gives reaches the options
        if f.metadata.get("choices"):
            assert action.choices is f.metadata["choices"], f.name
        if DEFAULTS[f.name] not in (None, False, [], ""):
            assert f"(default: {DEFAULTS[f.name]})" in action.help, f.name


def test_the_owners_hold_the_choice_lists_the_config_and_parser_use():
    from tlcore.backbones import source
    from tlcore.cli.parser import build_parser
    from tlcore.data import augment, images, splits
    from tlcore.evaluation import evaluate
    from tlcore.search import tune
    from tlcore.ship import export, predict, tflite

    assert cfg.choices_of("resize") is images.RESIZE_MODES
    assert cfg.choices_of("flip") is augment.FLIPS
    assert cfg.choices_of("augment") == tuple(augment.AUGMENT_PRESETS)
    assert cfg.choices_of("preprocessing") is source.PREPROCESSING_CHOICES
    assert (DEFAULTS["val_split"], DEFAULTS["test_split"], DEFAULTS["seed"]) == \
        (splits.DEFAULT_VAL_SPLIT, splits.DEFAULT_TEST_SPLIT, splits.DEFAULT_SEED)
    parser = build_parser()
    exporting = _actions(parser, "export")
    assert exporting["format"].choices is export.FORMATS
    assert exporting["quantize"].choices is tflite.QUANTIZE
    assert exporting["io"].choices is tflite.IO_TYPES
    assert _actions(parser, "predict")["tta"].choices is predict.TTA_MODES
    assert _actions(parser, "evaluate")["tta"].choices is predict.TTA_MODES
    assert _actions(parser, "evaluate")["split"].choices is evaluate.SPLITS
    assert _actions(parser, "search")["metric"].choices is tune.METRICS
    assert _actions(parser, "search")["scheduler"].choices is tune.SCHEDULERS


def test_scan_flags_follow_the_config_defaults(monkeypatch):
    from tlcore.cli.parser import build_parser

    for name, value in (("val_split", 0.35), ("test_split", 0.05), ("seed", 7)):
        monkeypatch.setitem(DEFAULTS, name, value)
    scan = _actions(build_parser(), "scan")
    assert (scan["val_split"].default, scan["test_split"].default, scan["seed"].default) == (0.35, 0.05, 7)


def _literal(choices: tuple) -> re.Pattern:
    """A sequence of these strings written out in code: "a", "b", "c" (any quotes and spacing)."""
    items = [rf"""["']{re.escape(str(c))}["']""" for c in choices]
    return re.compile(r"\s*,\s*".join(items))


def _sources() -> list[Path]:
    files = [*(ROOT / "tlcore").rglob("*.py"), *(ROOT / "studio").rglob("*.py"), *(ROOT / "views").glob("*.py"),
             ROOT / "app.py"]
    return [p for p in files if p.name != "codegen_template.py"]  # the script's text is not code here


def test_no_choice_list_is_written_twice():
    from tlcore.search import tune
    from tlcore.ship import export, predict, tflite
    from tlcore.evaluation import evaluate

    lists = {f.name: f.metadata["choices"] for f in CHOICE_FIELDS if len(f.metadata["choices"]) > 2}
    lists.update(formats=export.FORMATS, quantize=tflite.QUANTIZE, io=tflite.IO_TYPES, tta=predict.TTA_MODES,
                 metric=tune.METRICS, scheduler=tune.SCHEDULERS, split=evaluate.SPLITS)
    texts = {p: p.read_text(encoding="utf-8") for p in _sources()}
    for name, choices in lists.items():
        pattern = _literal(choices)
        where = [f"{p.relative_to(ROOT)}:{t[:m.start()].count(chr(10)) + 1}"
                 for p, t in texts.items() for m in pattern.finditer(t)]
        assert len(where) <= 1, f"the choices of {name} are written out {len(where)} times: {where}"


def test_no_split_default_is_written_twice():
    pattern = re.compile(r"\b(val_split|test_split|seed)\b[^\n,)]{0,40}?[=:]\s*[^\n,)]*?\b(0\.2|0\.1|42)\b")
    owner = ROOT / "tlcore" / "data" / "splits.py"
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in _sources() if p != owner
             for m in pattern.finditer(p.read_text(encoding="utf-8"))]
    assert not found, found


def test_every_preset_is_a_set_of_options_the_config_accepts():
    from tlcore.recipe.presets import list_presets

    for preset in list_presets():
        options = {"backbone": "MobileNetV2", **preset.options}
        assert set(preset.options) <= set(cfg.OPTION_NAMES), preset.name
        TrainConfig.from_dict(options).check(data=False)  # choices and ranges, as for `tlcore train`


def test_quick_start_takes_everything_it_does_not_choose_from_the_config():
    pytest.importorskip("streamlit")
    from studio import state

    for key, value in state.QUICK_START.items():
        if key not in state.QUICK_START_CHOICES:
            assert value == DEFAULTS[key], key
    assert state.SCRATCH_KEYS is cfg.SCRATCH_KEYS


# --- the app's widgets ----------------------------------------------------------------------


def _widgets(at) -> dict:
    out = {}
    for kind in ("selectbox", "slider", "number_input", "toggle", "segmented_control", "text_input"):
        for w in getattr(at, kind):
            if w.key and w.key.startswith("w:"):
                out[w.key[2:]] = w
    return out


@pytest.fixture
def app_home(tmp_path, monkeypatch):
    pytest.importorskip("streamlit")
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    return tmp_path


def test_the_pages_widgets_show_the_config_choices_and_defaults(app_home, monkeypatch):
    # change defaults and a choice list in the config: the widgets must follow
    changed = {"val_split": 0.3, "test_split": 0.15, "seed": 5, "batch_size": 24, "early_stopping": 4,
               "optimizer": "sgd", "class_weights": "none", "dropout": 0.35, "head_epochs": 7}
    for name, value in changed.items():
        monkeypatch.setitem(DEFAULTS, name, value)
    field = cfg._FIELDS["resize"]
    wider = dataclasses.field(default=field.default, metadata={**field.metadata,
                                                               "choices": (*field.metadata["choices"], "wide")})
    wider.name = "resize"
    monkeypatch.setitem(cfg._FIELDS, "resize", wider)
    shown = {}
    for page in ("views/4_Data.py", "views/5_Train.py", "views/3_Layers.py"):
        at = open_page(page, timeout=90, backbone="MobileNetV2", input_size=32, weights="none")
        shown.update(_widgets(at))
    assert list(shown["resize"].options) == ["stretch", "pad", "crop", "wide"]
    for name in ("class_weights", "mixed_precision"):
        assert list(shown[name].options) == list(cfg.choices_of(name)), name
    # None means "not set" for these: the widget shows what is in effect (the augmentation preset's
    # value, no label, no weight decay, a tenth of the learning rate)
    in_effect = {"name", "weight_decay", "fine_tune_lr", *TrainConfig().augment_overrides()}
    checked = 0
    for name in cfg.OPTION_NAMES:
        if name in shown and name not in in_effect:
            assert shown[name].value == DEFAULTS[name], name
            checked += 1
    assert checked >= 12 and set(changed) <= set(shown), sorted(shown)


# --- errors name options; the command line says flags, the app labels --------------------


def test_an_error_naming_two_options_is_phrased_for_each_audience():
    pytest.importorskip("streamlit")
    from studio import text
    from tlcore.core.errors import OptionError, flag
    from tlcore.data.pipeline import scan

    with pytest.raises(OptionError) as info:
        scan(ROOT, val_split=0.5, test_split=0.45)
    exc = info.value
    assert exc.options == ["val_split", "test_split"]
    assert str(exc).startswith("val_split plus test_split must leave images to train on")
    assert exc.phrased(flag).startswith("--val-split plus --test-split must leave")
    words = text.error_words(exc)
    assert words.startswith("The validation share plus the test share must leave"), words
    assert "_split" not in words and "--" not in words


def test_the_app_has_a_word_for_every_option():
    pytest.importorskip("streamlit")
    from studio import text

    missing = [n for n in cfg.OPTION_NAMES if n not in text.OPTION_WORDS]
    assert not missing


# --- the pages' cut and unfreeze points come from the engine -------------------------------


def test_layer_points_resolve_default_and_pin():
    from tlcore.backbones.layers import LayerInfo
    from tlcore.recipe.plan import default_unfreeze_index, layer_points, pin_points

    table = [LayerInfo(index=i, name=f"l{i}", type="Conv2D", output_shape=(None, 4, 4, 8), params=10,
                       trainable=True, cut_point=i % 3 == 0, block=f"b{i // 3}") for i in range(10)]
    last_clean = max(i for i in range(10) if table[i].cut_point)
    p = layer_points(table, None, None, default_cut=6)
    assert (p.cut_index, p.unfreeze_index) == (6, default_unfreeze_index(10))
    assert (p.cut, p.unfreeze_from) == ("l6", f"l{default_unfreeze_index(10)}")
    assert layer_points(table, "nope", "nope", default_cut=6).cut_index == 6   # unknown: the default
    assert layer_points(table, "l4", "l2", default_cut=6).cut_index == 6       # not a clean cut point
    assert layer_points(table, "-4", "l2", default_cut=5).cut_index == 6       # index from the end
    assert layer_points(table, None, "l2", default_cut=5).cut_index == last_clean  # default not clean
    assert layer_points(table, None, "l2").unfreeze_index == 2
    assert pin_points(table, 9, 1).cut is None and pin_points(table, 9, 1, own=True).cut == "l9"


def test_a_failed_runs_reason_is_relabelled_too(tmp_path):
    pytest.importorskip("streamlit")
    from studio import text
    from tlcore.core.errors import OptionError
    from tlcore.core.runs import Run

    exc = OptionError("head_epochs", "Nothing to train: {option} and {option:fine_tune_epochs} are both 0.")
    run = Run(tmp_path / "r")
    run.path.mkdir()
    run.write_status(state="failed", error=str(exc), error_option=exc.option, error_template=exc.template)
    assert text.run_error_words(run.raw_status()) == "Nothing to train: Head epochs and Fine-tuning epochs are both 0."
    assert text.run_error_words({"error": "disk full"}) == "disk full"
