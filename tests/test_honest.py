"""Honest numbers: Wilson intervals, the exact McNemar test, baselines beside every run, and where
they show (train and evaluate JSON and words, status.json, the Train, Evaluate and Runs pages)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datagen import write_split
from apphelp import open_page, plain

ROOT = Path(__file__).resolve().parents[1]


# --- the statistics against known values ---------------------------------------------

def test_wilson_matches_published_values_and_scipy():
    from scipy.stats import binomtest

    from tlcore.evaluation.stats import wilson

    # Brown, Cai & DasGupta (2001) / every textbook: 50 of 100 -> [0.4038, 0.5962]; 0 of 10 -> [0, 0.2775]
    assert wilson(50, 100) == pytest.approx([0.4038, 0.5962], abs=5e-5)
    assert wilson(0, 10) == pytest.approx([0.0, 0.2775], abs=5e-5)
    assert wilson(10, 10) == pytest.approx([0.7225, 1.0], abs=5e-5)
    for k, n in [(0, 1), (1, 1), (3, 7), (33, 46), (38, 46), (45, 46), (981, 1000), (0, 2000)]:
        ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx([ci.low, ci.high], abs=1e-9), (k, n)
    assert wilson(0, 0) is None


def test_wilson_names_the_bad_argument():
    from tlcore.core.errors import OptionError
    from tlcore.evaluation.stats import wilson

    with pytest.raises(OptionError, match="correct.*Received: 11"):
        wilson(11, 10)
    with pytest.raises(OptionError, match="n.*Received: -1"):
        wilson(0, -1)


def test_exact_mcnemar_matches_known_values_and_scipy():
    from scipy.stats import binomtest

    from tlcore.evaluation.stats import binomial_two_sided, mcnemar

    assert binomial_two_sided(1, 7) == pytest.approx(0.125)  # 2 * (1 + 7) / 2**7
    assert binomial_two_sided(2, 12) == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert binomial_two_sided(0, 0) == 1.0
    for k, n in [(0, 5), (5, 10), (3, 20), (17, 20), (40, 100)]:
        assert binomial_two_sided(k, n) == pytest.approx(binomtest(k, n, 0.5).pvalue, rel=1e-12), (k, n)
    # A right on 6 images B gets wrong, B right on 1 that A gets wrong, 10 where both agree
    a = [True] * 6 + [False] + [True] * 5 + [False] * 5
    b = [False] * 6 + [True] + [True] * 5 + [False] * 5
    result = mcnemar(a, b)
    assert (result["a_only"], result["b_only"], result["both"], result["neither"]) == (6, 1, 5, 5)
    assert result["p_value"] == pytest.approx(binomtest(6, 7, 0.5).pvalue)
    assert result["a_accuracy"] == pytest.approx(11 / 17) and result["b_accuracy"] == pytest.approx(6 / 17)


def test_compare_predictions_pairs_images_and_refuses_different_ones():
    from tlcore.evaluation.stats import compare_predictions

    truth = [(f"img{i}.png", "cat" if i % 2 else "dog") for i in range(30)]
    a = [{"file": f, "true": t, "predicted": t} for f, t in truth]  # all right
    b = [{"file": f, "true": t, "predicted": t if i >= 12 else "other"} for i, (f, t) in enumerate(truth)]
    same = compare_predictions(a, list(reversed(b)))  # the order of the lists does not matter
    assert same["same_images"] and (same["a_only"], same["b_only"]) == (12, 0)
    assert same["significant"] and same["p_value"] < 0.001
    close = compare_predictions(a, [dict(p, predicted="other") if i == 0 else p for i, p in enumerate(a)])
    assert close["same_images"] and not close["significant"] and close["p_value"] == 1.0
    other = compare_predictions(a, [dict(p, file="x" + p["file"]) for p in a])
    assert other == {"same_images": False, "only_a": 30, "only_b": 30}


def test_stratified_sample_keeps_every_class_and_the_limit():
    from tlcore.evaluation.baselines import stratified_sample

    labels = np.array([0] * 900 + [1] * 90 + [2] * 3 + [3] * 2007)
    keep = stratified_sample(labels, 200, seed=1)
    assert len(keep) == 200 and len(set(keep.tolist())) == 200
    counts = np.bincount(labels[keep], minlength=4)
    assert all(counts >= 1)
    assert abs(counts[0] - 60) <= 1 and abs(counts[3] - 134) <= 1  # each class keeps its share
    assert (stratified_sample(labels, 200, seed=1) == keep).all()
    assert len(stratified_sample(labels[:50], 200)) == 50


def test_a_baseline_beats_the_model_only_above_the_models_interval():
    from tlcore.evaluation.baselines import beats_model
    from tlcore.evaluation.stats import accuracy_interval

    lo, hi = accuracy_interval(0.80, 50)
    assert beats_model({"test_accuracy": hi + 0.01}, 0.80, 50)
    assert not beats_model({"test_accuracy": hi - 0.01}, 0.80, 50)  # better, but within the model's interval
    assert not beats_model({"test_accuracy": 0.99}, None, 50)


def test_fit_baselines_silently_scores_both_kinds():
    import warnings

    from tlcore.evaluation.baselines import fit_baselines

    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 40)
    x = rng.normal(size=(120, 5)) + y[:, None] * 3.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning the fit let through would fail here
        found = fit_baselines({"features": x[::2], "pixels": x[::2]}, y[::2], {"features": x[1::2], "pixels": x[1::2]},
                              y[1::2])
    assert [b["kind"] for b in found] == ["features", "pixels"]
    for b in found:
        assert b["test_accuracy"] > 0.9 and b["test_count"] == 60 and b["train_count"] == 60
        lo, hi = b["test_accuracy_interval"]
        assert lo <= b["test_accuracy"] <= hi
    assert fit_baselines({"pixels": x[:5]}, np.zeros(5), {"pixels": x[5:10]}, np.zeros(5)) == []


def test_the_command_line_prints_every_accuracy_with_its_interval_and_n():
    from tlcore.core.console import human_text

    text = human_text({"accuracy": 0.8, "accuracy_interval": [0.7, 0.88], "count": 50,
                       "baselines": [{"name": "SVM", "test_accuracy": 0.9, "test_accuracy_interval": [0.8, 0.95],
                                      "test_count": 50}]})
    assert "accuracy: 0.800 (95% interval 0.700-0.880, n=50)" in text
    assert "baseline: SVM: 0.900 (95% interval 0.800-0.950, n=50)" in text
    assert "accuracy_interval" not in text
    table = human_text([{"run_id": "a", "test_accuracy": 0.5, "test_accuracy_interval": [0.3, 0.7],
                         "test_count": 20}])
    assert "0.500 (95% interval 0.300-0.700, n=20)" in table and "test_accuracy_interval" not in table


def test_training_and_the_app_start_without_scikit_learn():
    code = ("import sys, tlcore, tlcore.training.train, tlcore.evaluation.evaluate, tlcore.evaluation.baselines, "
            "tlcore.cli.commands, studio.text, studio.components\n"
            "import keras\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"


# --- a training whose model a baseline beats ------------------------------------------

# A learning rate of 1e-9 for one epoch leaves the head as it was initialised: the model guesses,
# while the colours of these classes are trivial for a model on the raw pixels.
UNTRAINED = ["--backbone", "MobileNetV2", "--weights", "none", "--input-size", "32", "--head-epochs", "1",
             "--fine-tune-epochs", "0", "--lr", "1e-9", "--augment", "none", "--early-stopping", "0",
             "--batch-size", "8", "--seed", "0"]


@pytest.fixture(scope="module")
def guessing(tmp_path_factory):
    base = tmp_path_factory.mktemp("honest")
    data = write_split(base / "data", counts=(12, 6, 6))
    env = dict(os.environ, TLCORE_HOME=str(base / "home"), TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), *UNTRAINED, "--json"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    return type("Guessing", (), dict(base=base, home=base / "home", data=data, env=env, out=out,
                                     stderr=proc.stderr, run_dir=Path(out["run_dir"])))


@pytest.mark.slow
def test_train_json_has_intervals_baselines_and_the_warning(guessing):
    from tlcore.evaluation.baselines import beats_model
    from tlcore.evaluation.stats import wilson

    out = guessing.out
    assert out["test_count"] == 18 and out["val_count"] == 18
    for key, n in (("test_accuracy", out["test_count"]), ("val_accuracy", out["val_count"])):
        assert out[f"{key}_interval"] == pytest.approx(wilson(round(out[key] * n), n))
    assert {b["kind"] for b in out["baselines"]} == {"features", "pixels"}
    features = [b for b in out["baselines"] if b["kind"] == "features"][0]
    assert features["features"] == "frozen"  # head only: the stage-1 feature cache's own features
    for b in out["baselines"]:
        assert set(b) >= {"name", "test_accuracy", "test_accuracy_interval"}
        assert b["test_count"] == 18 and b["train_count"] == 36
    beaten = [b for b in out["baselines"] if beats_model(b, out["test_accuracy"], out["test_count"])]
    assert beaten, out  # a guessing model and colours a pixel model separates
    warned = [w for w in out["warnings"] if w.startswith("A baseline beats the model")]
    assert len(warned) == len(beaten) and all(b["name"] in w for b, w in zip(beaten, warned))
    assert "Warning" not in guessing.stderr  # scikit-learn's warnings are silenced
    status = json.loads((guessing.run_dir / "status.json").read_text())
    for key in ("test_accuracy_interval", "val_accuracy_interval", "baselines"):
        assert status[key] == out[key]
    assert set(warned) <= set(status["warnings"])
    ev = json.loads((guessing.run_dir / "evaluation.json").read_text())
    assert ev["baselines"] == out["baselines"] and ev["accuracy_interval"] == out["test_accuracy_interval"]


@pytest.mark.slow
def test_evaluate_reports_the_interval_and_the_recorded_baselines(guessing):
    proc = subprocess.run([sys.executable, "-m", "tlcore", "evaluate", str(guessing.run_dir), "--json"],
                          capture_output=True, text=True, env=guessing.env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ev = json.loads(proc.stdout)
    assert ev["accuracy_interval"][0] <= ev["accuracy"] <= ev["accuracy_interval"][1]
    assert ev["baselines"] == guessing.out["baselines"]
    words = subprocess.run([sys.executable, "-m", "tlcore", "evaluate", str(guessing.run_dir), "--split",
                            "validation"], capture_output=True, text=True, env=guessing.env, timeout=600)
    assert words.returncode == 0 and "(95% interval " in words.stdout and ", n=18)" in words.stdout
    again = json.loads((guessing.run_dir / "evaluation.json").read_text())
    assert again["split"] == "validation" and "baselines" not in again  # fitted and scored on test only


# --- the pages -------------------------------------------------------------------------

def _texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("markdown", "caption", "warning") for e in getattr(at, kind))


@pytest.fixture
def app_home(guessing, monkeypatch, tmp_path):
    """A copy of the guessing run's home (the evaluate test above rescored it on validation:
    put its test evaluation back), for the pages."""
    home = tmp_path / "home"
    shutil.copytree(guessing.home, home)
    run = home / "runs" / guessing.run_dir.name
    ev = json.loads((run / "evaluation.json").read_text())
    if ev["split"] != "test":
        subprocess.run([sys.executable, "-m", "tlcore", "evaluate", str(run), "--json"], capture_output=True,
                       env=dict(guessing.env, TLCORE_HOME=str(home)), timeout=600, check=True)
    monkeypatch.setenv("TLCORE_HOME", str(home))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    monkeypatch.delenv("TLCORE_DATA_ROOTS", raising=False)
    return home, run


SMALL = {"backbone": "MobileNetV2", "input_size": 32, "weights": "none"}


@pytest.mark.slow
def test_train_and_evaluate_pages_show_intervals_and_baselines(app_home, guessing):
    from tlcore.evaluation.baselines import beats_model
    from tlcore.evaluation.stats import wilson

    home, run = app_home
    out = guessing.out
    at = open_page("views/5_Train.py", timeout=90, data=str(guessing.data), run_dir=str(run), **SMALL)
    lo, hi = out["test_accuracy_interval"]
    assert f"95% interval {100 * lo:.1f}–{100 * hi:.1f}% · n = 18" in _texts(at)
    vlo, vhi = out["val_accuracy_interval"]
    assert f"95% interval {100 * vlo:.1f}–{100 * vhi:.1f}% · n = 18" in _texts(at)

    at = open_page("views/6_Evaluate.py", timeout=90, run_dir=str(run), **SMALL)
    assert f"95% interval {100 * lo:.1f}–{100 * hi:.1f}% · n = 18" in _texts(at)
    table = [d.value for d in at.dataframe if "model" in d.value.columns][0]
    assert list(table["model"])[0] == "This model" and len(table) == 1 + len(out["baselines"])
    for b in out["baselines"]:
        row = table[table["model"].str.startswith(f"Baseline: {b['name']}")].iloc[0]
        blo, bhi = wilson(round(b["test_accuracy"] * 18), 18)
        assert row["95% interval"] == f"{100 * blo:.1f}–{100 * bhi:.1f}% · n = 18"
    beaten = [b["name"] for b in out["baselines"] if beats_model(b, out["test_accuracy"], out["test_count"])]
    warned = [plain(w.value) for w in at.warning if "the model:" in plain(w.value) and "95% interval" in plain(w.value)]
    assert len(warned) == 1 and all(name in warned[0] for name in beaten)


@pytest.mark.slow
def test_runs_page_tests_two_runs_on_the_same_images(app_home):
    home, run = app_home
    ev = json.loads((run / "evaluation.json").read_text())
    flipped = home / "runs" / "20000101-000000-flipped-0001"  # right where the run is wrong, and back
    shutil.copytree(run, flipped)
    preds = [dict(p, predicted=p["true"]) for p in ev["predictions"]]
    (flipped / "evaluation.json").write_text(json.dumps({**ev, "predictions": preds}))
    elsewhere = home / "runs" / "20000101-000000-elsewhere-0002"
    shutil.copytree(run, elsewhere)
    (elsewhere / "evaluation.json").write_text(json.dumps(
        {**ev, "predictions": [dict(p, file=p["file"] + ".other") for p in ev["predictions"]]}))

    at = open_page("views/8_Runs.py", timeout=90)
    rows = at.dataframe[0].value
    assert "test 95% interval" in rows.columns and "val 95% interval" in rows.columns
    assert rows[rows["run"] == run.name].iloc[0]["test 95% interval"].endswith("· n = 18")
    at.multiselect(key="compare_runs").set_value([run.name, flipped.name]).run()
    wrong = sum(p["predicted"] != p["true"] for p in ev["predictions"])
    text = _texts(at)
    assert f"0 images only {run.name} got right, {wrong} only {flipped.name}" in text
    assert f"**{flipped.name}** is significantly more accurate on the same test images" in text
    at.multiselect(key="compare_runs").set_value([run.name, elsewhere.name]).run()
    assert "were scored on different test images" in _texts(at)
