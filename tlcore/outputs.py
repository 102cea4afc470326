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


def targets(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Class indexes as the loss wants them: a float column for one sigmoid unit, else int64."""
    labels = np.asarray(labels)
    if output_units(num_classes) == 1:
        return labels.astype("float32").reshape(-1, 1)
    return labels.astype("int64")


def probabilities(outputs: np.ndarray, num_classes: int) -> np.ndarray:
    """One probability per class from the model's outputs (a sigmoid column becomes two)."""
    outputs = np.asarray(outputs, dtype="float32")
    if output_units(num_classes) == 1 and outputs.shape[-1] == 1:
        p = outputs[..., 0]
        return np.stack([1.0 - p, p], axis=-1)
    return outputs
