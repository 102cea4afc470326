"""Learning-rate range test (Smith 2015, as fastai's lr_find): raise the rate exponentially
batch by batch, record the smoothed loss, stop when it explodes, suggest the steepest fall."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..core.errors import OptionError, TLCoreError


def suggest(lrs: list[float], losses: list[float]) -> float:
    """The rate where the smoothed loss falls fastest before its minimum (slope over a window
    of a tenth of the points, so early noise does not win); always inside the tested range."""
    lr_a, loss_a = np.asarray(lrs, dtype=float), np.asarray(losses, dtype=float)
    n = len(lr_a)
    if n < 7:
        return float(lr_a[int(np.argmin(loss_a))]) if n else 1e-3
    end = max(int(np.argmin(loss_a)) + 1, 7)
    w = max(2, n // 10)
    log_lr = np.log10(lr_a)
    best_i, best_slope = int(np.argmin(loss_a[:end])), 0.0
    for i in range(w, min(end, n - w)):
        slope = (loss_a[i + w] - loss_a[i - w]) / (log_lr[i + w] - log_lr[i - w])
        if slope < best_slope:
            best_i, best_slope = i, slope
    return float(lr_a[best_i])


def lr_find(config, stage: int = 1, min_lr: float = 1e-7, max_lr: float = 1.0, steps: int = 100,
            max_images: int = 512) -> dict:
    """Run the range test on the setup `config` (a TrainConfig) describes.

    Stage 1 trains only the head (on features computed once); stage 2 the unfrozen part too.
    Returns:
        {suggested_lr, lrs, losses, stage}
    """
    import keras

    from ..recipe import features
    from ..data.pipeline import scan, split_arrays
    from ..recipe.surgery import build_model, feature_extractor
    from ..data.outputs import loss_name, targets
    from ..recipe.plan import apply_stage, make_plan
    from ..backbones.source import load_source
    from ..data.mapped import DiskRows, NpyWriter

    if stage not in (1, 2):
        raise OptionError("stage", f"must be 1 or 2. Received: {stage}")
    if not (0 < min_lr < max_lr <= 10):
        raise OptionError("min_lr", "Need 0 < {option} < {option:max_lr} <= 10. " f"Received: {min_lr}, {max_lr}")
    if not 10 <= steps <= 1000:
        raise OptionError("steps", f"must be from 10 to 1000. Received: {steps}")
    config = config.resolved()  # a new config: the caller's is never changed
    if stage == 2 and config.fine_tune_epochs == 0:
        config = config.replace(fine_tune_epochs=1)  # only so that the plan unfreezes something
    keras.utils.set_random_seed(config.seed)
    ds = scan(config.data, config.val_split, config.test_split, config.seed)
    source = load_source(config)
    ds.files["train"] = ds.files["train"][:max_images] if len(ds.files["train"]) <= max_images else \
        [ds.files["train"][i] for i in np.random.default_rng(config.seed).choice(
            len(ds.files["train"]), max_images, replace=False)]
    x, y, _, _ = split_arrays(ds, "train", source.input_size, config.resize)
    if len(x) == 0:
        raise TLCoreError("No training images could be read.")
    n_classes = len(ds.classes)
    model = build_model(config, source, n_classes)
    head = model.get_layer("head")
    apply_stage(model, make_plan(config, n_classes, source), stage)
    with tempfile.TemporaryDirectory(prefix="tlcore-lrfind-") as tmp:
        if stage == 1:  # the sample's features go to a file as they are computed, read back by batch
            writer = NpyWriter(Path(tmp) / "features.npy")
            features.compute(feature_extractor(model), x, config.batch_size, out=writer)
            writer.close()
            data, net = DiskRows(writer.path), head
        else:  # the decoded images themselves, read by batch
            data, net = x, model
        return _range_test(net, data, targets(y, n_classes), loss_name(n_classes), config, stage,
                           min_lr, max_lr, steps)


def _range_test(net, data, target, loss, config, stage: int, min_lr: float, max_lr: float, steps: int) -> dict:
    """The test itself: `steps` batches of `data` (an array or `mapped.Rows`, read batch by batch)
    at exponentially rising rates."""
    from ..data.mapped import read_rows
    from ..recipe.optimizer import make_optimizer

    opt = make_optimizer(config.optimizer, min_lr)
    net.compile(optimizer=opt, loss=loss)
    rng = np.random.default_rng(config.seed)
    factor = (max_lr / min_lr) ** (1 / (steps - 1))
    lrs, losses, avg, best = [], [], 0.0, None
    for i in range(steps):
        lr = min_lr * factor ** i
        opt.learning_rate.assign(lr)
        idx = rng.choice(len(data), min(config.batch_size, len(data)), replace=False)
        value = net.train_on_batch(read_rows(data, idx).astype(np.float32), target[idx])
        value = float(value[0] if isinstance(value, (list, tuple)) else value)
        if not np.isfinite(value):
            break
        avg = 0.9 * avg + 0.1 * value
        smooth = avg / (1 - 0.9 ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        best = smooth if best is None else min(best, smooth)
        if i > 10 and smooth > 4 * best:
            break
    if not lrs:
        raise TLCoreError("The loss was not finite even at the smallest rate; check the data.")
    return {"suggested_lr": suggest(lrs, losses), "lrs": lrs, "losses": losses, "stage": stage}
