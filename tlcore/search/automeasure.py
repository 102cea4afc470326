"""Auto mode's measurements before its search: the family (transfer or from scratch), the costs
of this machine (a training process's fixed part, the backbone's forward pass per size; cached per
machine in the home's auto-costs.json), the sizes worth trying, and the measured choices: the cut
by the linear probe, the learning rate by the range test, the unfreeze points from the plan."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from ..core import home
from ..core.errors import TLCoreError
from ..core.jsonio import read_json, write_json
from . import autoplan


def _family(options: dict, fixed: set) -> tuple[str, dict]:
    """transfer or scratch, and the options to start from: a pretrained backbone (given, or
    MobileNetV2 with ImageNet weights when they are on this machine) is transferred; weights none,
    or no weights to be had, trains small networks from scratch (scratch-small's options under the
    given ones)."""
    from ..recipe.presets import get_preset

    out = dict(options)
    if not out.get("backbone") and not out.get("backbone_file"):
        out["backbone"] = "MobileNetV2"
    weights = out.get("weights", "imagenet")
    if out.get("backbone_file") or (weights not in ("none", None) and weights != "imagenet"):
        return "transfer", out
    if weights == "imagenet":
        from ..backbones.assets import check_imagenet_weights

        try:
            check_imagenet_weights(out["backbone"], out.get("input_size"))
            return "transfer", out
        except TLCoreError:
            if "weights" in fixed:
                raise
    scratch = dict(get_preset("scratch-small").options)
    if "backbone" in fixed and out["backbone"] != scratch["backbone"]:
        scratch.pop("cut", None)
    scratch.update({k: out[k] for k in fixed if k in out})
    scratch.update({k: out[k] for k in ("data", "seed", "val_split", "test_split", "name") if k in out})
    scratch["weights"] = "none"
    return "scratch", scratch


def _process_seconds() -> float:
    """Seconds a new `tlcore train` process needs before it trains (Python, TensorFlow, Keras,
    tlcore's training): measured once per machine and cached in the home's auto-costs.json."""
    from ..backbones.latency import machine_key

    path = home.home() / "auto-costs.json"
    data = read_json(path, default={}) or {}
    key = machine_key()
    if isinstance(data.get(key), dict) and data[key].get("process_s"):
        return float(data[key]["process_s"])
    t0 = time.perf_counter()
    if "keras" not in sys.modules:  # this process pays the same imports now: time them here
        import importlib

        importlib.import_module("keras")
        importlib.import_module("tlcore.training.steps")
    else:
        subprocess.run([sys.executable, "-c", "import keras, tlcore.training.steps"], check=False,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    seconds = round(time.perf_counter() - t0, 2)
    data = read_json(path, default={}) or {}
    data.setdefault(key, {}).update(process_s=seconds, measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    write_json(path, data)
    return seconds


def _costs(config, sizes: list[int]) -> autoplan.Costs:
    """ms per image of the backbone at each size (the latency cache; a model file is timed here)."""
    ms = {}
    fixed_s = autoplan.quantize(1.5 * _process_seconds())  # first: it times this process's own imports
    if config.backbone:
        from ..backbones.latency import known

        for size in sizes:
            entry = known(int(size)).get(config.backbone)  # `tlcore backbones --measure`'s, when there
            ms[int(size)] = float(entry["ms_batch32"]) if entry else _forward_ms(config.backbone, int(size))
    else:
        import numpy as np

        from ..backbones.source import load_source

        source = load_source(config)
        x = np.zeros((32, source.input_size, source.input_size, 3), "float32")
        source.backbone.predict(x, verbose=0)
        t0 = time.perf_counter()
        source.backbone.predict(x, verbose=0)
        ms[int(source.input_size)] = autoplan.quantize(1000 * (time.perf_counter() - t0) / 32)
    return autoplan.Costs(ms, fixed_s)


def _forward_ms(name: str, size: int) -> float:
    """ms per image of `name`'s forward pass at `size`, batch 32, the quickest of three batches after a warm-up;
    cached per machine in the home's auto-costs.json (like the process time)."""
    from ..backbones.latency import machine_key

    path = home.home() / "auto-costs.json"
    key, entry = machine_key(), f"{name}@{size}"
    cached = ((read_json(path, default={}) or {}).get(key) or {}).get("ms_per_image", {}).get(entry)
    if cached:
        return float(cached)
    import numpy as np

    from ..backbones.build import build_backbone

    model = build_backbone(name, size, weights=None)
    x = np.random.default_rng(0).uniform(0, 255, (32, size, size, 3)).astype("float32")
    model.predict(x, batch_size=32, verbose=0)
    times = []
    for _ in range(3):  # the quickest of three batches: a moment of load elsewhere does not count
        t0 = time.perf_counter()
        model.predict(x, batch_size=32, verbose=0)
        times.append(time.perf_counter() - t0)
    ms = round(1000 * min(times) / 32, 2)
    data = read_json(path, default={}) or {}
    data.setdefault(key, {}).setdefault("ms_per_image", {})[entry] = ms
    write_json(path, data)
    return ms


def _sizes(kind: str, config, fixed: set) -> list[int]:
    from ..backbones.build import check_input_size

    if "input_size" in fixed or not config.backbone:
        return [int(config.resolved().input_size or 0)] if config.backbone else []
    default = check_input_size(config.backbone, None)
    out = []
    for size in (autoplan.SCRATCH_SIZES if kind == "scratch" else autoplan.TRANSFER_SIZES):
        if size > default:
            continue
        try:
            out.append(check_input_size(config.backbone, size))
        except TLCoreError:
            continue
    return out or [default]


# --- the measured choices before the search ---------------------------------------------

def _probe_cut(config, notes: list) -> str | None:
    from ..evaluation.probe import probe, suggest

    results = probe(config)
    best = suggest(results)
    if best is None:
        return None
    notes.append(f"cut {best['cut']}: the shallowest block end whose linear probe comes within 0.01 of the "
                 f"best ({best['val_accuracy']:.3f} validation accuracy, {len(results)} cuts probed)")
    return best["cut"]


def _find_lr(config, stage: int, notes: list) -> float:
    from ..training.lrfind import lr_find

    found = float(lr_find(config, stage=stage, steps=60, max_images=256)["suggested_lr"])
    lr = autoplan._round(min(max(found, 1e-5), 0.03))
    notes.append(f"learning rate around {lr:.2g}: the range test's steepest fall (stage {stage})")
    return lr


def _unfreeze_choices(config, n_classes: int) -> list[str]:
    """Three unfreeze points from the plan: the default one, half as deep, twice as deep."""
    from ..recipe.plan import make_plan

    plan = make_plan(config.replace(fine_tune_epochs=max(config.fine_tune_epochs, 1)), n_classes)
    cut, u = int(plan.cut_index), plan.unfreeze_index
    if u is None or u >= cut:  # a shallow cut (the probe's): two thirds of what is left
        u = (2 * cut) // 3
    if cut < 3:
        return []
    picks = [u, (u + cut) // 2, max(1, u - (cut - u))]
    names = []
    for i in picks:
        name = plan.layers[i].name
        if name not in names:
            names.append(name)
    return names


