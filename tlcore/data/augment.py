"""Augmentation: the presets (none, light, strong) and finer options, Keras' own random layers
built from them (seeded), and the preview the Data page shows."""
from __future__ import annotations

import numpy as np

from ..core.errors import OptionError

AUGMENT_PRESETS = {
    "none": {},
    "light": {"flip": "horizontal", "rotation": 10.0, "zoom": 0.1},
    "strong": {"flip": "horizontal", "rotation": 40.0, "zoom": 0.2, "shift": 0.2, "shear": 0.2,
               "contrast": 0.2},
    "randaugment": {"randaugment": True},  # Keras RandAugment: 2 random ops per image
}

AUGMENTS = tuple(AUGMENT_PRESETS)

FLIPS = ("none", "horizontal", "vertical", "both")


def augmentation_options(preset: str = "none", **overrides) -> dict:
    """A preset's options with any explicit ones (not None) put over them."""
    if preset not in AUGMENT_PRESETS:
        raise OptionError("augment", f"must be one of {', '.join(AUGMENT_PRESETS)}. Received: {preset!r}")
    opts = dict(AUGMENT_PRESETS[preset])
    opts.update({k: v for k, v in overrides.items() if v is not None})
    if opts.get("flip") not in (None, *FLIPS, "horizontal_and_vertical"):  # Keras' own name of both
        raise OptionError("flip", f"must be one of {', '.join(FLIPS)}. Received: {opts['flip']!r}")
    for k in ("rotation", "zoom", "shift", "shear", "contrast"):
        if k not in opts:
            continue
        top = 360.0 if k == "rotation" else 1.0
        try:
            value = float(opts[k])
        except (TypeError, ValueError):
            value = float("nan")
        if not (0.0 <= value <= top):  # also refuses nan
            unit = " degrees" if k == "rotation" else " (a fraction of the image)"
            raise OptionError(k, f"must be from 0 to {top:g}{unit}. Received: {opts[k]}")
    return {k: v for k, v in opts.items() if v not in (None, 0, 0.0, "none")}


def augmentation_layers(options: dict, seed: int | None = None) -> list:
    """Keras preprocessing layers for the training split (rotation in degrees, others fractions)."""
    import keras

    layers = []
    flip = options.get("flip")
    if flip:
        mode = {"both": "horizontal_and_vertical"}.get(flip, flip)
        layers.append(keras.layers.RandomFlip(mode, seed=seed))
    if options.get("rotation"):
        layers.append(keras.layers.RandomRotation(float(options["rotation"]) / 360.0, seed=seed))
    if options.get("zoom"):
        layers.append(keras.layers.RandomZoom(float(options["zoom"]), seed=seed))
    if options.get("shift"):
        s = float(options["shift"])
        layers.append(keras.layers.RandomTranslation(s, s, seed=seed))
    if options.get("shear"):
        s = float(options["shear"])
        layers.append(keras.layers.RandomShear(s, s, seed=seed))
    if options.get("contrast"):
        layers.append(keras.layers.RandomContrast(float(options["contrast"]), seed=seed))
    if options.get("randaugment"):
        layers.append(keras.layers.RandAugment(value_range=(0, 255), seed=seed))
    return layers


def augmentation_preview(image: np.ndarray, options: dict, n: int = 6, seed: int = 0) -> list[np.ndarray]:
    """`n` augmented copies of one uint8 RGB image, with the layers training would use."""
    import keras

    layers = augmentation_layers(options, seed=seed)
    if not layers:
        return [image.copy() for _ in range(n)]
    batch = np.repeat(np.asarray(image, dtype="float32")[None], n, axis=0)
    x = batch
    for layer in layers:
        x = layer(x, training=True)
    out = np.clip(keras.ops.convert_to_numpy(x), 0, 255).astype("uint8")
    return list(out)
