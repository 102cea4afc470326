"""The output convention, in one place: two classes get one sigmoid unit (the probability of
the second label), more classes a softmax unit each. Labels, loss and probabilities follow."""
from __future__ import annotations

import weakref

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


def predict_probabilities(model, images: np.ndarray, num_classes: int, batch_size: int = 32) -> np.ndarray:
    """Call the model directly, batch by batch, through one tf.function traced once."""
    import tensorflow as tf

    fn = _serving_fn(model)
    n = len(images)
    out = []
    for start in range(0, n, batch_size):
        chunk = np.asarray(images[start:start + batch_size], dtype=np.float32)
        out.append(np.asarray(fn(tf.constant(chunk))))
    probs = np.concatenate(out, axis=0) if out else np.zeros((0, 1), dtype=np.float32)
    return probabilities(probs, num_classes).astype(np.float64)


# One compiled function per live model, owned by it: the dictionary holds the model weakly
# and the function reaches it only through a weak reference, so dropping the model (the
# app's model cache evicting it, say) frees the function and its traced graph too.
_FNS: "weakref.WeakKeyDictionary[object, object]" = weakref.WeakKeyDictionary()


def _serving_fn(model):
    import tensorflow as tf

    fn = _FNS.get(model)
    if fn is None:
        shape = [None, *model.input_shape[1:]]
        owner = weakref.ref(model)

        @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32)], reduce_retracing=True,
                     autograph=False)  # no source parsing: plain calls only (fast to trace in any thread)
        def fn(x):
            return tf.cast(owner()(x, training=False), tf.float32)

        _FNS[model] = fn
    return fn
