"""Prediction's compiled functions belong to their model: dropping the model frees both."""
from __future__ import annotations

import gc
import json
import weakref
from pathlib import Path

import numpy as np
from PIL import Image

N_MODELS = 20


def _tiny_run(root: Path, i: int) -> Path:
    """A run folder holding a tiny 8x8 classifier, its labels and config (as training leaves one)."""
    import keras

    run = root / f"run{i:02d}"
    run.mkdir(parents=True)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.save(str(run / "model.keras"))
    (run / "labels.json").write_text(json.dumps(["a", "b", "c"]))
    (run / "config.json").write_text(json.dumps({"options": {"resize": "stretch"}}))
    (run / "status.json").write_text(json.dumps({"state": "completed"}))
    return run


def test_dropped_models_and_their_compiled_functions_are_freed(tmp_path):
    from tlcore.data import outputs
    from tlcore.ship import predict as predict_module
    from tlcore.ship.predict import RunModel, predict

    image = tmp_path / "x.png"
    Image.fromarray(np.full((8, 8, 3), 128, dtype=np.uint8)).save(image)
    gc.collect()
    functions_before = len(outputs._FNS)  # other tests' live models, in this worker
    refs = []
    for i in range(N_MODELS):
        run = _tiny_run(tmp_path / "runs", i)
        rm = RunModel(run)
        probs = rm.probabilities(rm.load(image)[None])
        assert probs.shape == (1, 3) and abs(probs.sum() - 1) < 1e-5
        assert predict(run, [image], top_k=2)[0]["top"][0]["label"] in ("a", "b", "c")
        refs.append(weakref.ref(rm.model))
        del rm
    gc.collect()
    alive = sum(ref() is not None for ref in refs)
    bound = predict_module._load_model_cached.cache_info().maxsize  # the loaded-model cache's bound
    assert alive <= bound, f"{alive} of {N_MODELS} models still alive; the bound is {bound}"
    predict_module._load_model_cached.cache_clear()
    gc.collect()
    assert sum(ref() is not None for ref in refs) == 0
    # their compiled functions went with them (the weak keys left are other tests' models)
    assert len(outputs._FNS) <= functions_before
