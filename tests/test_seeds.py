"""Runs over several seeds (`--seeds N`), the ensemble of runs (`--ensemble K`, `tlcore ensemble`),
and the baselines' features taken from the stage-1 feature cache."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from datagen import write_flat, write_split


# --- the baselines' features: the frozen backbone's, through the stage-1 cache ----------

class _Extractor:
    """Stands in for a backbone: counts the images it sees; features [n, 2, 2, 3] from the pixels."""

    def __init__(self):
        self.seen = 0

    def __call__(self, x):
        self.seen += len(x)
        return np.repeat(np.asarray(x, np.float32)[:, :2, :2, :3], 1, axis=0)


def test_held_features_read_the_stage1_cache_and_compute_only_what_is_missing(tlhome, monkeypatch):
    from tlcore.evaluation import baselines
    from tlcore.recipe import features

    extractor = _Extractor()

    def fake_compute(ex, images, batch_size=32, augment=None, copies=1, seed=0, out=None):
        feats = ex(np.asarray(images))
        if out is not None:
            out.append(feats)
            return None
        return feats[None]

    monkeypatch.setattr(features, "compute", fake_compute)
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 255, (30, 4, 4, 3)).astype(np.uint8)
    y_train = np.repeat([0, 1, 2], 10)
    x_test = rng.integers(0, 255, (9, 4, 4, 3)).astype(np.uint8)
    key = {"source": "fake", "cut": None}
    # stage 1 cached the training split's features (values unlike the extractor's, to tell them apart)
    cached_train = np.full((30, 2, 2, 3), 7.0, np.float32) + np.arange(30, dtype=np.float32)[:, None, None, None]
    features.cached(features.cache_key(split="train", copies=1, augment={}, **key), make=lambda: cached_train[None])
    held = baselines.held_features(extractor, key, x_train, y_train, x_test, seed=0)
    assert extractor.seen == 9  # the test images only: the training split's came from the cache
    assert np.allclose(held["train"], cached_train.mean(axis=(1, 2)))
    assert np.allclose(held["test"], x_test[:, :2, :2, :3].astype(np.float32).mean(axis=(1, 2)))
    assert list(held["keep"]) == list(range(30)) and held["fine_tuned"] is False
    # the test features are cached now, under the stage-1 key: a second call computes nothing
    again = baselines.held_features(extractor, key, x_train, y_train, x_test, seed=0)
    assert extractor.seen == 9 and np.allclose(again["test"], held["test"])

    # a sample (more training images than max_train) with no cache entry: only the sample is computed
    other = {"source": "other", "cut": None}
    sample = baselines.held_features(extractor, other, x_train, y_train, x_test, seed=1, max_train=6)
    assert len(sample["keep"]) == 6 and extractor.seen == 9 + 6 + 9
    assert sorted(np.bincount(y_train[sample["keep"]])) == [2, 2, 2]
    assert np.allclose(sample["train"], x_train[sample["keep"], :2, :2, :3].astype(np.float32).mean(axis=(1, 2)))


# --- seeds and the ensemble, end to end ------------------------------------------------

TINY = ["--backbone", "MobileNetV2", "--weights", "none", "--input-size", "32", "--head-epochs", "2",
        "--fine-tune-epochs", "0", "--augment", "none", "--batch-size", "8", "--seed", "3"]


def _cli(args, env, timeout=900):
    proc = subprocess.run([sys.executable, "-m", "tlcore", *map(str, args), "--json"], capture_output=True,
                          text=True, env=env, timeout=timeout)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.strip() else None), proc.stderr


@pytest.fixture(scope="module")
def grouped(tmp_path_factory):
    base = tmp_path_factory.mktemp("seeds")
    data = write_split(base / "data", counts=(8, 4, 4))
    env = dict(os.environ, TLCORE_HOME=str(base / "home"), TF_CPP_MIN_LOG_LEVEL="2")
    code, out, err = _cli(["train", data, *TINY, "--seeds", "2", "--ensemble", "2"], env)
    assert code == 0, err[-3000:]
    return type("Grouped", (), dict(base=base, data=data, env=env, out=out, stderr=err))


@pytest.mark.slow
def test_seeds_report_mean_and_spread_and_tag_one_group(grouped):
    seeds = grouped.out["seeds"]
    assert seeds["n"] == 2 and seeds["seeds"] == [3, 4]
    runs = seeds["runs"]
    assert [r["seed"] for r in runs] == [3, 4] and all(r["state"] == "completed" for r in runs)
    tests = [r["test_accuracy"] for r in runs]
    assert seeds["test_accuracy_mean"] == pytest.approx(statistics.fmean(tests))
    assert seeds["test_accuracy_std"] == pytest.approx(statistics.pstdev(tests))
    assert (seeds["test_accuracy_min"], seeds["test_accuracy_max"]) == (min(tests), max(tests))
    vals = [r["val_accuracy"] for r in runs]
    assert seeds["val_accuracy_mean"] == pytest.approx(statistics.fmean(vals))
    for r in runs:
        status = json.loads((Path(r["run_dir"]) / "status.json").read_text())
        config = json.loads((Path(r["run_dir"]) / "config.json").read_text())
        assert status["group"]["id"] == seeds["group"] and config["seed"] == r["seed"]
        assert r["test_accuracy_interval"][0] <= r["test_accuracy"] <= r["test_accuracy_interval"][1]
    from tlcore.core.runs import RunStore
    from tlcore.evaluation.stats import over_seeds

    listed = [s for s in (r.summary() for r in RunStore(grouped.base / "home" / "runs").runs())
              if s["group"] == seeds["group"]]
    assert len(listed) == 3  # the two seed runs and their ensemble
    again = over_seeds([{"seed": None, "test_accuracy": s["test_accuracy"], "val_accuracy": s["val_accuracy"]}
                        for s in listed if s["run_dir"] in {r["run_dir"] for r in runs}])
    assert again["test_accuracy_mean"] == pytest.approx(seeds["test_accuracy_mean"])


@pytest.mark.slow
def test_the_ensemble_averages_its_members_probabilities(grouped):
    from tlcore.data.pipeline import scan, split_arrays
    from tlcore.ship.predict import RunModel

    out = grouped.out
    members = [m["run_dir"] for m in out["ensemble"]["members"]]
    assert sorted(members) == sorted(r["run_dir"] for r in out["seeds"]["runs"])
    ens = RunModel(out["run_dir"])
    ds = scan(str(grouped.data), check_files=False)
    images, labels, _, _ = split_arrays(ds, "test", ens.input_size, ens.resize)
    mean = np.mean([RunModel(m).probabilities(images) for m in members], axis=0)
    probs = ens.probabilities(images)
    assert probs.shape == mean.shape and np.abs(probs - mean).max() < 1e-5
    assert out["test_accuracy"] == pytest.approx(float((probs.argmax(axis=1) == labels).mean()))
    assert out["test_count"] == len(labels) and out["test_accuracy_interval"] is not None
    assert out["val_accuracy"] is not None and out["val_count"] == 12
    assert {b["kind"] for b in out["baselines"]} == {"features", "pixels"}
    ev = json.loads((Path(out["run_dir"]) / "evaluation.json").read_text())
    assert ev["split"] == "test" and ev["accuracy"] == out["test_accuracy"]


@pytest.mark.slow
def test_predict_export_and_gradcam_take_the_ensemble(grouped, tmp_path):
    run_dir = grouped.out["run_dir"]
    image = next((grouped.data / "test" / "red").iterdir())
    code, pred, err = _cli(["predict", run_dir, image], grouped.env)
    assert code == 0, err[-2000:]
    top = pred[0]["top"][0]
    from tlcore.ship.predict import RunModel

    rm = RunModel(run_dir)
    probs = rm.probabilities(rm.load(image)[None])[0]
    assert top["label"] == rm.labels[int(probs.argmax())] and top["probability"] == pytest.approx(float(probs.max()), abs=1e-5)
    code, exported, err = _cli(["export", run_dir, "--format", "tflite", "--out", tmp_path / "m.tflite"], grouped.env)
    assert code == 0, err[-2000:]
    assert exported["top1_agreement"] == 1.0 and (tmp_path / "m.tflite").stat().st_size > 0
    code, cam, err = _cli(["explain", run_dir, image, "--out", tmp_path / "cam.png"], grouped.env)
    assert code == 0, err[-2000:]
    assert cam["label"] == top["label"] and (tmp_path / "cam.png").stat().st_size > 0


@pytest.mark.slow
def test_serve_onnx_and_the_live_view_take_the_ensemble(grouped, tmp_path):
    from tlcore.ship.export import export_run
    from tlcore.ship.predict import RunModel
    from tlcore.ship.serve import Classifier

    run_dir = grouped.out["run_dir"]
    image = next((grouped.data / "test" / "green").iterdir())
    rm = RunModel(run_dir)
    want = rm.probabilities(rm.load(image)[None])[0]
    served = Classifier(run_dir)  # what `tlcore serve` classifies with
    got = served.probabilities(served.load(image.read_bytes())[None])[0]
    assert served.labels == rm.labels and np.allclose(got, want, atol=1e-5)
    from PIL import Image

    from tlcore.live.classifier import Classifier as LiveModel

    live = LiveModel.of_run(rm).warm_up()  # the live view's, on a camera frame
    frame = np.asarray(Image.open(image).convert("RGB"))
    assert np.allclose(live.probabilities(live.prepare(frame)[None])[0], want, atol=1e-5)
    exported = export_run(run_dir, "onnx", tmp_path / "m.onnx")
    assert exported["top1_agreement"] == 1.0 and exported["max_probability_difference"] < 1e-4


@pytest.mark.slow
def test_ensemble_command_refuses_what_it_cannot_average(grouped):
    run = grouped.out["seeds"]["runs"][0]["run_dir"]
    code, out, err = _cli(["ensemble", run, run], grouped.env)
    assert code == 1 and "named twice" in out["error"]
    code, out, err = _cli(["ensemble", run], grouped.env)
    assert code == 1 and "2 runs or more" in out["error"]


def test_seed_options_that_do_not_fit_are_refused_before_any_run(tmp_path):
    env = dict(os.environ, TLCORE_HOME=str(tmp_path / "home"), TF_CPP_MIN_LOG_LEVEL="2")
    split = write_split(tmp_path / "split", counts=(2, 1, 1))
    flat = write_flat(tmp_path / "flat", n=6)
    code, out, _ = _cli(["train", split, *TINY, "--seeds", "2", "--ensemble", "3"], env)
    assert code == 1 and "--ensemble 3" in out["error"] and "--seeds 2" in out["error"]
    code, out, _ = _cli(["train", split, *TINY, "--ensemble", "2"], env)
    assert code == 2 and "--seeds" in out["error"]
    code, out, _ = _cli(["train", split, *TINY, "--seeds", "0"], env)
    assert code == 1 and "--seeds must be a whole number of 1 or more" in out["error"]
    code, out, _ = _cli(["train", flat, *TINY, "--seeds", "2", "--ensemble", "2"], env)
    assert code == 1 and "test/ folders" in out["error"]
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())


@pytest.mark.slow
def test_runs_page_shows_each_seed_group_with_its_spread(grouped, monkeypatch):
    from apphelp import open_page, plain

    monkeypatch.setenv("TLCORE_HOME", str(grouped.base / "home"))
    monkeypatch.delenv("TLSTUDIO_PASSWORD", raising=False)
    monkeypatch.delenv("TLCORE_DATA_ROOTS", raising=False)
    at = open_page("views/8_Runs.py", timeout=90)
    seeds = grouped.out["seeds"]
    shown = plain("\n".join(str(e.value) for kind in ("markdown", "caption") for e in getattr(at, kind)))
    assert "Over seeds" in [s.value for s in at.subheader]
    mean, std = 100 * seeds["test_accuracy_mean"], 100 * seeds["test_accuracy_std"]
    assert f"2 runs, seeds 3–4** · test accuracy {mean:.1f}% ± {std:.1f} points" in shown
    assert Path(grouped.out["run_dir"]).name in shown  # its ensemble, with its interval
    for r in seeds["runs"]:
        assert f"{Path(r['run_dir']).name} (seed {r['seed']}" in shown


def test_the_python_api_checks_seeds_like_the_command_line(tmp_path, tlhome):
    import tlcore

    data = write_split(tmp_path / "data", counts=(2, 1, 1))
    with pytest.raises(tlcore.OptionError) as err:
        tlcore.train(data, seeds=0, backbone="MobileNetV2", weights="none", input_size=32)
    assert err.value.option == "seeds"
    with pytest.raises(tlcore.OptionError) as err:
        tlcore.train(data, seeds=2, ensemble=3, backbone="MobileNetV2", weights="none", input_size=32)
    assert err.value.option == "ensemble"
    with pytest.raises(tlcore.OptionError) as err:
        tlcore.train(data, seeds=2, background=True, backbone="MobileNetV2", weights="none", input_size=32)
    assert err.value.option == "background"
    assert not (tlhome / "runs").exists() or not any((tlhome / "runs").iterdir())
