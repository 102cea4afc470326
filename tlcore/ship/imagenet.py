"""Classify with the untouched ImageNet model of a catalog backbone and its 1000 class names.

The class names ship with the package (imagenet_classes.json, in Keras' class-index order);
the weights follow the usual rules: `imagenet` (Keras' download and cache) or a weights file
saved with the top.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from ..core.errors import TLCoreError
from ..data.images import ImageProblem, load_image


@functools.lru_cache(maxsize=1)
def imagenet_classes() -> list[str]:
    return json.loads((Path(__file__).with_name("imagenet_classes.json")).read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=2)
def _classifier(name: str, weights: str):
    import keras

    from ..backbones.build import build_backbone
    from ..backbones.catalog import get_backbone
    from ..recipe.surgery import preprocessing_layers

    info = get_backbone(name)
    net = build_backbone(info.name, None, weights, include_top=True)
    inputs = keras.Input(shape=net.input_shape[1:], name="image")
    x = inputs
    for layer in preprocessing_layers(info.preprocessing):
        x = layer(x)
    return keras.Model(inputs, net(x), name=f"{info.name}_imagenet")


def imagenet_weights(weights) -> str:
    """The weights the ImageNet model classifies with: 'imagenet', or a weights file with the top.

    Raises:
        TLCoreError: `weights` is None or 'none' (the untouched model would be random).
    """
    if weights in (None, "", "none"):
        raise TLCoreError("The untouched ImageNet model needs pretrained weights, but there are no pretrained "
                          f"weights chosen (weights={weights!r}). Pass weights='imagenet', or a weights file "
                          "saved with the top (include_top=True).")
    return str(weights)


def classify(name: str, images, weights: str = "imagenet", top_k: int = 5) -> list[dict]:
    """[{image, top: [{label, probability}]}] from the 1000-class ImageNet model `name`.

    `images` are paths, streams or PIL images; unreadable ones get an `error`.
    """
    from ..data.outputs import predict_probabilities
    from .predict import top_labels

    model = _classifier(name, imagenet_weights(weights))
    size = int(model.input_shape[1])
    classes = imagenet_classes()
    out, arrays, where = [], [], []
    for i, img in enumerate(images):
        label = str(getattr(img, "name", img))
        try:
            arrays.append(load_image(img, size))
            where.append(len(out))
            out.append({"image": label, "top": []})
        except ImageProblem as exc:
            out.append({"image": label, "top": [], "error": str(exc)})
    if arrays:
        probs = predict_probabilities(model, np.stack(arrays), 1000)
        for j, p in zip(where, probs):
            out[j]["top"] = top_labels(p, classes, top_k)
    return out


def classify_files(name: str, paths, weights: str = "imagenet", top_k: int = 5, csv_path=None) -> list[dict]:
    """`tlcore predict --imagenet NAME`: `classify` over image files and folders (walked), like
    `predict.predict` for a run: same result rows, same --csv table."""
    from ..core.errors import OptionError
    from .predict import collect_images, write_csv

    if int(top_k) < 1:
        raise OptionError("top_k", f"must be 1 or more. Received: {top_k}")
    files = collect_images(paths)
    if not files:
        raise TLCoreError("No images found in what was given.")
    out = classify(name, [str(f) for f in files], weights, top_k)
    if csv_path:
        write_csv(out, csv_path, top_k)
    return out
