"""Test-time augmentation: the views, averaged probabilities, the cost reported, the model untouched."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tlcore.core.errors import OptionError
from tlcore.ship.predict import tta_count, tta_views


def test_views_are_the_image_its_mirror_and_centre_crops():
    x = np.random.default_rng(0).integers(0, 255, (3, 16, 16, 3)).astype("uint8")
    assert len(tta_views(x, "none")) == 1 and np.array_equal(tta_views(x, "none")[0], x)
    plain, mirror = tta_views(x, "flip")
    assert np.array_equal(mirror[:, :, ::-1], plain) and np.array_equal(plain, x)
    views = tta_views(x, "flip+crops")
    assert len(views) == tta_count("flip+crops") == 4 and all(v.shape == x.shape for v in views)
    assert np.allclose(views[3], views[2][:, :, ::-1]) and not np.allclose(views[2], x)
    with pytest.raises(OptionError, match="tta must be one of none, flip, flip\\+crops"):
        tta_views(x, "rotate")


def _sha(path):
    return hashlib.sha1(open(path, "rb").read()).hexdigest()


def test_tta_averages_the_views_and_never_changes_the_model(copy_run, shared_run):
    from tlcore.evaluation.evaluate import evaluate_run
    from tlcore.ship.predict import RunModel

    model_file = copy_run / "model.keras"
    before = _sha(model_file)
    rm = RunModel(copy_run)
    images = np.random.default_rng(1).integers(0, 255, (5, rm.input_size, rm.input_size, 3)).astype("uint8")
    expected = (rm.probabilities(images) + rm.probabilities(images[:, :, ::-1])) / 2
    np.testing.assert_allclose(rm.probabilities(images, tta="flip"), expected, rtol=1e-6)
    plain = evaluate_run(copy_run)
    flipped = evaluate_run(copy_run, tta="flip")
    assert plain["tta"]["views"] == 1 and flipped["tta"] == {**flipped["tta"], "mode": "flip", "views": 2}
    assert flipped["tta"]["seconds"] > 0 and flipped["count"] == plain["count"]
    assert json.loads((copy_run / "evaluation.json").read_text())["tta"]["mode"] == "flip"
    assert _sha(model_file) == before
    from tlcore.ship.predict import collect_images, predict

    files = collect_images([shared_run.data / "test"])[:4]
    got = predict(copy_run, files, top_k=1, tta="flip+crops")
    want = rm.probabilities(np.stack([rm.load(f) for f in files]), tta="flip+crops")
    assert [r["top"][0]["probability"] for r in got] == pytest.approx(want.max(axis=1).tolist(), rel=1e-5)
    env = dict(os.environ, TLCORE_HOME=str(shared_run.home))
    proc = subprocess.run([sys.executable, "-m", "tlcore", "evaluate", str(copy_run), "--tta", "flip", "--json"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["accuracy"] == flipped["accuracy"]
    assert _sha(model_file) == before
