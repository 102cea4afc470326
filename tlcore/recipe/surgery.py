"""Model surgery: preprocessing baked in, cut, head; the assembled classifier.

A trained model is ``image (RGB 0-255) -> preprocessing layers -> backbone (cut) -> head``,
where `backbone` and `head` are nested Functional models, so that the head can be trained
alone on cached features and everything loads in plain Keras in safe mode. What trains in
which stage is not decided here but in `plan.py`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import DEFAULTS, POOLINGS, check_dense
from ..core.errors import OptionError, TLCoreError
from ..backbones.layers import is_batchnorm, layer_output, resolve_cut  # noqa: F401 (is_batchnorm: re-exported)
from ..data.outputs import activation, output_units
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)


def preprocessing_layers(mode: str) -> list:
    """Stock Keras layers doing what `keras.applications.<module>.preprocess_input` does.

    Args:
        mode: ``caffe``, ``tf``, ``torch`` or ``none`` (the backbone preprocesses itself).
    """
    import keras

    if mode == "none":
        return []
    if mode == "tf":
        return [keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess_tf", dtype="float32")]
    if mode == "torch":
        return [
            keras.layers.Rescaling(1 / 255.0, name="preprocess_scale", dtype="float32"),
            keras.layers.Normalization(mean=list(TORCH_MEAN), variance=[s * s for s in TORCH_STD],
                                       name="preprocess_torch", dtype="float32"),
        ]
    if mode == "caffe":
        kernel = np.zeros((1, 1, 3, 3), dtype="float32")
        for out_channel, in_channel in enumerate((2, 1, 0)):  # RGB -> BGR
            kernel[0, 0, in_channel, out_channel] = 1.0
        bias = -np.array(IMAGENET_MEAN_BGR, dtype="float32")
        layer = keras.layers.Conv2D(
            3, 1, name="preprocess_caffe", trainable=False, dtype="float32",
            kernel_initializer=keras.initializers.Constant(kernel),
            bias_initializer=keras.initializers.Constant(bias),
        )
        return [layer]
    raise TLCoreError(f"Unknown preprocessing {mode!r}: expected caffe, tf, torch or none.")


def preprocessing_param_count(mode: str) -> int:
    """Weights of `preprocessing_layers(mode)`, without building them: caffe's 1x1 convolution
    holds a 3x3 kernel and 3 biases; Rescaling and Normalization with given statistics hold none."""
    if mode not in ("caffe", "tf", "torch", "none"):
        raise TLCoreError(f"Unknown preprocessing {mode!r}: expected caffe, tf, torch or none.")
    return 3 * 3 + 3 if mode == "caffe" else 0


@dataclass(frozen=True)
class HeadSpec:
    pooling: str = DEFAULTS["pooling"]
    dense: tuple[int, ...] = ()
    dropout: float = DEFAULTS["dropout"]

    def check(self) -> None:
        if self.pooling not in POOLINGS:
            raise OptionError("pooling", f"must be one of {', '.join(POOLINGS)}. Received: {self.pooling!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise OptionError("dropout", f"must be at least 0 and below 1. Received: {self.dropout}")
        check_dense(self.dense)


def cut_backbone(backbone, cut=None, paths: dict[str, str] | None = None, default: int | None = None):
    """The backbone up to and including layer `cut` (name or index), as a Model named 'backbone'.

    Raises:
        TLCoreError: unknown layer, or a layer that is not a clean cut point.
    """
    import keras

    index = resolve_cut(backbone, cut, paths, default)
    output = layer_output(backbone, backbone.layers[index])
    return keras.Model(backbone.inputs, output, name="backbone"), index


def build_head(feature_shape, num_classes: int, spec: HeadSpec, mixed_precision: bool = False):
    """Pooling, optional dense layers, dropout, and the output (`outputs.output_units`)."""
    import keras

    spec.check()
    if num_classes < 2:
        raise TLCoreError(f"A classifier needs at least 2 classes. Received: {num_classes}")
    inputs = keras.Input(shape=tuple(feature_shape), name="features")
    x = inputs
    if len(feature_shape) == 3:
        if spec.pooling == "avg":
            x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
        elif spec.pooling == "max":
            x = keras.layers.GlobalMaxPooling2D(name="head_pool")(x)
        else:
            x = keras.layers.Flatten(name="head_flatten")(x)
    elif len(feature_shape) != 1:
        x = keras.layers.Flatten(name="head_flatten")(x)
    for i, units in enumerate(spec.dense, start=1):
        x = keras.layers.Dense(int(units), activation="relu", name=f"head_dense_{i}")(x)
        if spec.dropout:
            x = keras.layers.Dropout(spec.dropout, name=f"head_dropout_{i}")(x)
    if spec.dropout and not spec.dense:
        x = keras.layers.Dropout(spec.dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(output_units(num_classes), activation=activation(num_classes),
                                 name="predictions", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="head")


def head_param_count(feature_shape, num_classes: int, spec: HeadSpec) -> int:
    """Weights of `build_head(feature_shape, num_classes, spec)`, counted without Keras (all of
    them train).

    Raises:
        TLCoreError: a bad head or fewer than 2 classes, as `build_head` does.
    """
    spec.check()
    if num_classes < 2:
        raise TLCoreError(f"A classifier needs at least 2 classes. Received: {num_classes}")
    dims = [int(d) for d in feature_shape]
    width = dims[-1] if len(dims) == 3 and spec.pooling in ("avg", "max") else int(np.prod(dims))
    total = 0
    for units in [int(u) for u in spec.dense] + [output_units(num_classes)]:
        total += (width + 1) * units
        width = units
    return total


def assemble(backbone_cut, head, preprocessing: str, input_size: int):
    """image (RGB 0-255) -> preprocessing -> backbone -> head, as one Functional model."""
    import keras

    inputs = keras.Input(shape=(input_size, input_size, 3), name="image", dtype="float32")
    x = inputs
    for layer in preprocessing_layers(preprocessing):
        x = layer(x)
    features = backbone_cut(x)
    outputs = head(features)
    return keras.Model(inputs, outputs, name="classifier")


def feature_extractor(model):
    """image -> backbone features, sharing the layers of a model built by `assemble`."""
    import keras

    inputs = keras.Input(shape=model.input_shape[1:], name="image", dtype="float32")
    x = inputs
    for layer in model.layers:
        if layer.name.startswith("preprocess_"):
            x = layer(x)
    return keras.Model(inputs, model.get_layer("backbone")(x), name="features")


def parameter_counts(model) -> dict[str, int]:
    """Trainable and non-trainable parameters, counted as Keras counts them."""
    trainable = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
    non_trainable = int(sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))
    return {"trainable": trainable, "non_trainable": non_trainable, "total": trainable + non_trainable}


def build_model(config, source, num_classes: int):
    """The untrained classifier a TrainConfig describes, on a backbone from `source.load_source`."""
    backbone_cut, _ = cut_backbone(source.backbone, config.cut, source.paths, source.default_cut)
    head = build_head(backbone_cut.output.shape[1:], num_classes,
                      HeadSpec(config.pooling, tuple(config.dense), config.dropout))
    return assemble(backbone_cut, head, source.preprocessing, source.input_size)


MEMBER_PREFIX = "member_"  # the members of an ensemble model (`ensemble_model`)


def ensemble_model(models: list):
    """One functional model: the image in, each model applied, their outputs averaged."""
    import keras

    inputs = keras.Input(shape=models[0].input_shape[1:], name="image", dtype="float32")
    outputs = []
    for i, model in enumerate(models):
        model.name = f"{MEMBER_PREFIX}{i}"
        model.trainable = False
        outputs.append(model(inputs))
    return keras.Model(inputs, keras.layers.Average(name="average")(outputs), name="ensemble")


def members_of(model) -> list:
    """The member models of an ensemble built by `ensemble_model` (empty for any other model)."""
    return [layer for layer in model.layers if layer.name.startswith(MEMBER_PREFIX) and hasattr(layer, "layers")]
