"""The output convention, in one place: two classes get one sigmoid unit (the probability of
the second label), more classes a softmax unit each. Labels, loss and probabilities follow."""
from __future__ import annotations

import numpy as np


def output_units(num_classes: int) -> int:
    """Units of the output layer for `num_classes` classes (1 for two classes)."""
    return 1 if int(num_classes) == 2 else int(num_classes)


def activation(num_classes: int) -> str:
    return "sigmoid" if output_units(num_classes) == 1 else "softmax"


def loss_name(num_classes: int) -> str:
    return "binary_crossentropy" if output_units(num_classes) == 1 else "sparse_categorical_crossentropy"


def targets(labels: np.ndarray, num_classes: int, one_hot: bool = False) -> np.ndarray:
    """Class indexes as the loss wants them: a float column for one sigmoid unit, else int64, or
    with `one_hot` (label smoothing, MixUp/CutMix: soft targets) one float row per image."""
    labels = np.asarray(labels)
    if output_units(num_classes) == 1:
        return labels.astype("float32").reshape(-1, 1)
    if one_hot:
        return np.eye(int(num_classes), dtype="float32")[labels.astype("int64")]
    return labels.astype("int64")


def soft_targets(num_classes: int, label_smoothing: float = 0.0, mixing: bool = False) -> bool:
    """Whether the targets are one-hot rows: label smoothing or MixUp/CutMix with a softmax output
    (one sigmoid unit takes a soft target as it is)."""
    return output_units(num_classes) > 1 and (bool(label_smoothing) or bool(mixing))


def loss(num_classes: int, label_smoothing: float = 0.0, mixing: bool = False):
    """The loss of the convention: Keras' own, with `label_smoothing` where asked."""
    import keras

    if output_units(num_classes) == 1:
        if not label_smoothing:
            return "binary_crossentropy"
        return keras.losses.BinaryCrossentropy(label_smoothing=float(label_smoothing))
    if soft_targets(num_classes, label_smoothing, mixing):
        return keras.losses.CategoricalCrossentropy(label_smoothing=float(label_smoothing))
    return "sparse_categorical_crossentropy"


def probabilities(outputs: np.ndarray, num_classes: int) -> np.ndarray:
    """One probability per class from the model's outputs (a sigmoid column becomes two)."""
    outputs = np.asarray(outputs, dtype="float32")
    if output_units(num_classes) == 1 and outputs.shape[-1] == 1:
        p = outputs[..., 0]
        return np.stack([1.0 - p, p], axis=-1)
    return outputs
