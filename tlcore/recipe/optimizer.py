"""The training recipe from Keras' own parts: optimizer, learning-rate schedule, loss, MixUp/CutMix.

`compile_stage` compiles a model (or the head alone, on cached features) for one stage of a
`config.TrainConfig`: the optimizer (Adam, AdamW, RMSprop, SGD with momentum; `weight_decay` is
Keras' decoupled weight decay), the stage's learning rate as a constant or a Keras `CosineDecay`
(with linear warm-up; `onecycle` is CosineDecay shaped like a one-cycle policy: a warm-up over
3 tenths of the steps from lr/25 to lr, then cosine decay to lr/1e5), and the loss of the output
convention with label smoothing. `mixer` applies Keras' `MixUp` and `CutMix` layers to a batched
tf.data pipeline, seeded. Nothing here is hand-written where Keras has the piece.
"""
from __future__ import annotations

import math

from ..data.outputs import loss, soft_targets

ONECYCLE_WARMUP = 0.3  # fraction of a stage's steps spent warming up under `onecycle`
ONECYCLE_DIV = 25.0  # the warm-up starts at lr / 25 (fastai's and PyTorch's default)
ONECYCLE_FINAL = 1e-5  # and the decay ends at lr * 1e-5


def make_optimizer(name: str, lr, weight_decay: float | None = None):
    """A Keras optimizer; `lr` is a number or a Keras schedule."""
    import keras

    extra = {} if weight_decay is None else {"weight_decay": float(weight_decay)}
    if name == "adamw":
        return keras.optimizers.AdamW(learning_rate=lr, **extra)
    if name == "adam":
        return keras.optimizers.Adam(learning_rate=lr, **extra)
    if name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr, **extra)
    return keras.optimizers.SGD(learning_rate=lr, momentum=0.9, **extra)


def learning_rate(schedule: str, lr: float, epochs: int, steps_per_epoch: int, warmup_epochs: int = 0):
    """The stage's learning rate: `lr` itself (constant) or a Keras `CosineDecay` over the stage's
    `epochs * steps_per_epoch` optimizer steps."""
    import keras

    if schedule == "constant" or epochs <= 0:
        return float(lr)
    total = max(1, int(epochs) * max(1, int(steps_per_epoch)))
    if schedule == "onecycle":
        warmup = min(total - 1, int(round(ONECYCLE_WARMUP * total)))
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=lr / ONECYCLE_DIV, decay_steps=max(1, total - warmup), alpha=ONECYCLE_FINAL,
            warmup_target=float(lr), warmup_steps=warmup)
    warmup = min(total - 1, int(warmup_epochs) * max(1, int(steps_per_epoch)))
    if warmup <= 0:
        return keras.optimizers.schedules.CosineDecay(initial_learning_rate=float(lr), decay_steps=total)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0, decay_steps=max(1, total - warmup), warmup_target=float(lr),
        warmup_steps=warmup)


def one_hot(config, num_classes: int) -> bool:
    """Whether this run's targets are one-hot rows (see `outputs.soft_targets`)."""
    return soft_targets(num_classes, config.label_smoothing, bool(config.mixup or config.cutmix))


def compile_stage(model, config, lr: float, num_classes: int, epochs: int = 1, steps_per_epoch: int = 1) -> None:
    """Compile `model` for a stage of `epochs` epochs at base rate `lr` with the config's recipe."""
    rate = learning_rate(config.schedule, lr, epochs, steps_per_epoch, config.warmup_epochs)
    model.compile(optimizer=make_optimizer(config.optimizer, rate, config.weight_decay),
                  loss=loss(num_classes, config.label_smoothing, bool(config.mixup or config.cutmix)),
                  metrics=["accuracy"], jit_compile=bool(config.xla))


def compile_model(model, optimizer: str, lr: float, num_classes: int, xla: bool = False) -> None:
    """Compile with a constant rate and the plain loss (tools that train a few steps, like lr-find)."""
    model.compile(optimizer=make_optimizer(optimizer, lr), loss=loss(num_classes), metrics=["accuracy"],
                  jit_compile=bool(xla))


def steps_per_epoch(n_images: int, batch_size: int) -> int:
    return max(1, math.ceil(int(n_images) / int(batch_size)))


def mixer(mixup: float, cutmix: float, seed: int):
    """A function of a batched tf.data pipeline of (images, targets) that blends batches with Keras'
    `MixUp` (alpha `mixup`) and/or `CutMix` (alpha `cutmix`); with both, batches alternate. None when
    both are 0. Targets must be float rows (one-hot, or the sigmoid column)."""
    if not mixup and not cutmix:
        return None
    import keras
    import tensorflow as tf

    layers = []
    if mixup:
        layers.append(keras.layers.MixUp(alpha=float(mixup), seed=seed))
    if cutmix:
        layers.append(keras.layers.CutMix(factor=float(cutmix), seed=seed))

    def blend(layer, x, t):
        out = layer({"images": x, "labels": tf.cast(t, tf.float32)}, training=True)
        return tf.clip_by_value(out["images"], 0.0, 255.0), out["labels"]

    def apply(ds):
        if len(layers) == 1:
            return ds.map(lambda x, t: blend(layers[0], x, t))
        return ds.enumerate().map(lambda i, xt: tf.cond(
            i % 2 == 0, lambda: blend(layers[0], *xt), lambda: blend(layers[1], *xt)))

    return apply
