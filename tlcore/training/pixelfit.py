"""`head_fit: pixels`: no backbone at all, the pixel baseline as a network.

On small greyscale sets (digits, shapes) a classical model on the raw pixels can beat every
network a pretrained backbone gives (`evaluation.baselines`). This fits that kind of model and
writes it as a Keras model of standard layers, so that it is a normal run: `predict`, `serve`,
the exports and the live view take it (Grad-CAM has no feature maps to show).

The pixels are the baselines' (`baselines.pixel_vectors`) of the images decoded at `SIZE` (32)
pixels: the image at 0-1, area-averaged to 16x16 in colour, and in grey (ITU-R 601 weights,
`tf.image.rgb_to_grayscale`'s) at 32x32; standardised. The classifier is a kernel logistic
regression: RBF similarities exp(-gamma |z - c|^2) to at most `MAX_CENTRES` training images (a
stratified sample; gamma = 1/d, scikit-learn's "scale" for standardised vectors), then a logistic
regression on them (`headfit.fit`, its strength chosen by cross-validation from `CS`). As layers,
each one ONNX and TFLite convert: the model takes 32x32 images (`predict` and the exports resize
to the model's input), Rescaling, a 2x2 average pooling (the area average), a fixed 1x1
convolution for grey, Rescaling by the standardisation's per-feature scale and offset, the
squared norm through Multiply and a Dense of constants, the cross term through a Dense of the
centres, Add, exponential, and the output Dense.
"""
from __future__ import annotations

import numpy as np

CS = (0.1, 0.3, 1.0, 3.0, 10.0)
SIZE = 32  # the model's input: the baselines' grey size, twice their colour size
MAX_CENTRES = 1000
GREY = (0.2989, 0.5870, 0.1140)


def fit(images, labels: np.ndarray, num_classes: int, class_weight: dict | None = None, seed: int = 0):
    """The fitted pixel model for images decoded at SIZE [n, 32, 32, 3] (0-255; an array or
    `mapped.Rows`): (keras model, {C, folds, fitted, centres})."""
    from ..evaluation.baselines import pixel_vectors, stratified_sample
    from . import headfit

    labels = np.asarray(labels, np.int64)
    x = pixel_vectors(images).astype(np.float64)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    z = (x - mean) / scale
    centres = z[stratified_sample(labels, MAX_CENTRES, seed)]
    gamma = 1.0 / z.shape[1]
    kernel = _similarity(z, centres, gamma)
    got = headfit.fit(kernel, labels, num_classes, class_weight, seed, cs=CS)
    model = build(mean, scale, centres, gamma, got["kernel"], got["bias"], num_classes)
    return model, {"C": got["C"], "folds": got["folds"], "fitted": got["fitted"], "centres": int(len(centres))}


def _similarity(z: np.ndarray, centres: np.ndarray, gamma: float) -> np.ndarray:
    sq = (z ** 2).sum(axis=1)[:, None] - 2 * z @ centres.T + (centres ** 2).sum(axis=1)[None, :]
    return np.exp(-gamma * np.maximum(sq, 0.0))


def build(mean, scale, centres, gamma: float, out_kernel, out_bias, num_classes: int):
    """The Keras model of the fitted pixel classifier (see the module doc)."""
    import keras

    from ..data.outputs import activation

    d, m = len(mean), len(centres)
    f32 = "float32"
    inputs = keras.Input(shape=(SIZE, SIZE, 3), name="image", dtype=f32)
    x = keras.layers.Rescaling(1.0 / 255.0, name="pixels_scale", dtype=f32)(inputs)
    colour = keras.layers.AveragePooling2D(SIZE // 16, name="pixels_colour", dtype=f32)(x)
    grey_layer = keras.layers.Conv2D(1, 1, use_bias=False, name="pixels_grey", dtype=f32)
    vector = keras.layers.Concatenate(name="pixels_vector", dtype=f32)(
        [keras.layers.Flatten(name="pixels_colour_flat", dtype=f32)(colour),
         keras.layers.Flatten(name="pixels_grey_flat", dtype=f32)(grey_layer(x))])
    scale = np.asarray(scale, np.float32)
    z = keras.layers.Rescaling(1.0 / scale, -np.asarray(mean, np.float32) / scale, name="pixels_standardise",
                               dtype=f32)(vector)
    squares = keras.layers.Multiply(name="pixels_square", dtype=f32)([z, z])
    norm_layer = keras.layers.Dense(m, use_bias=False, name="kernel_norm", dtype=f32)
    cross_layer = keras.layers.Dense(m, name="kernel_cross", dtype=f32)
    exponent = keras.layers.Add(name="kernel_exponent", dtype=f32)([norm_layer(squares), cross_layer(z)])
    similarity = keras.layers.Activation("exponential", name="kernel", dtype=f32)(exponent)
    out_layer = keras.layers.Dense(out_kernel.shape[1], activation=activation(num_classes), name="predictions",
                                   dtype=f32)
    model = keras.Model(inputs, out_layer(similarity), name="pixels")
    grey_layer.set_weights([np.asarray(GREY, np.float32).reshape(1, 1, 3, 1)])
    norm_layer.set_weights([np.full((d, m), -gamma, np.float32)])
    cross_layer.set_weights([(2 * gamma * np.asarray(centres).T).astype(np.float32),
                             (-gamma * (np.asarray(centres) ** 2).sum(axis=1)).astype(np.float32)])
    out_layer.set_weights([out_kernel, out_bias])
    return model
