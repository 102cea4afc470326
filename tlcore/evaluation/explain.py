"""Grad-CAM: where in the image the features feeding the head pushed the model to its answer.

The map is taken at the backbone's output (the cut), the last convolutional features the
head sees, weighted by the gradient of the chosen class's probability, as in Selvaraju et
al. (2017).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..core.errors import OptionError, TLCoreError
from ..data.images import ImageProblem, open_rgb
from ..ship.predict import RunModel

# A perceptually ordered blue-cyan-green-yellow-red ramp (like "jet", without its dark ends).
_STOPS = np.array([[0.0, 48, 18, 160], [0.25, 30, 140, 230], [0.5, 60, 200, 90],
                   [0.75, 250, 210, 40], [1.0, 215, 30, 30]], dtype=np.float32)


def colormap(values: np.ndarray) -> np.ndarray:
    """uint8 RGB colours for values in [0, 1]."""
    v = np.clip(values, 0.0, 1.0)
    out = np.stack([np.interp(v, _STOPS[:, 0], _STOPS[:, c]) for c in (1, 2, 3)], axis=-1)
    return out.astype(np.uint8)


def gradcam(model, image: np.ndarray, class_index: int | None = None) -> tuple[np.ndarray, int, np.ndarray]:
    """(heatmap [h, w] in [0, 1] at feature resolution, class index, probabilities) for one image."""
    import tensorflow as tf

    from ..recipe.surgery import members_of

    members = members_of(model)
    if members:
        return _ensemble_gradcam(members, image, class_index)
    try:
        backbone, head = model.get_layer("backbone"), model.get_layer("head")
    except ValueError:
        if model.name == "pixels":  # training.pixelfit's model
            raise TLCoreError("A pixel model (head_fit pixels) reads the raw pixels, with no backbone: it has no "
                              "feature maps, so Grad-CAM has nothing to show for it.") from None
        raise TLCoreError("This model was not built by the studio (no backbone/head parts); "
                          "Grad-CAM needs a studio run.") from None
    x = tf.constant(np.asarray(image, dtype=np.float32)[None])
    for layer in model.layers:
        if layer.name.startswith("preprocess_"):
            x = layer(x)
    import keras

    final = head.get_layer("predictions")
    body = keras.Model(head.inputs, final.input)  # everything of the head before its output layer
    kernel, bias = (tf.cast(w, tf.float32) for w in (final.kernel, final.bias))
    with tf.GradientTape() as tape:
        feats = tf.cast(backbone(x, training=False), tf.float32)
        tape.watch(feats)
        logits = tf.matmul(tf.cast(body(feats, training=False), tf.float32), kernel) + bias
        if logits.shape[-1] == 1:  # sigmoid: class 1 scores z, class 0 scores -z
            logits = tf.concat([-logits, logits], axis=-1)
            probs = tf.sigmoid(logits)
        else:
            probs = tf.nn.softmax(logits)
        c = int(tf.argmax(probs[0])) if class_index is None else int(class_index)
        score = logits[:, c]  # the pre-activation score, as in the paper (no saturation)
    if len(feats.shape) != 4:
        raise TLCoreError("Grad-CAM needs spatial features: this run's cut ends after pooling. "
                          "Cut at a convolutional block instead.")
    grads = tape.gradient(score, feats)
    weights = tf.reduce_mean(grads, axis=(1, 2))
    cam = tf.nn.relu(tf.reduce_sum(feats * weights[:, None, None, :], axis=-1))[0].numpy()
    top = cam.max()
    cam = cam / top if top > 0 else cam
    return cam, c, probs[0].numpy()


def _ensemble_gradcam(members: list, image: np.ndarray, class_index: int | None):
    """An ensemble's Grad-CAM: the members' maps for the class the ensemble chose (its averaged
    probabilities), each at the first member's resolution, averaged and scaled to [0, 1]."""
    import tensorflow as tf

    x = tf.constant(np.asarray(image, dtype=np.float32)[None])
    outs = [np.asarray(m(x, training=False), dtype=np.float64)[0] for m in members]
    probs = np.mean([np.array([1.0 - o[0], o[0]]) if len(o) == 1 else o for o in outs], axis=0)
    c = int(np.argmax(probs)) if class_index is None else int(class_index)
    cams = [gradcam(m, image, c)[0] for m in members]
    shape = cams[0].shape
    cams = [cam if cam.shape == shape else
            tf.image.resize(cam[..., None], shape, method="bilinear").numpy()[..., 0] for cam in cams]
    cam = np.mean(cams, axis=0)
    top = cam.max()
    return (cam / top if top > 0 else cam), c, probs


def overlay(image: Image.Image, cam: np.ndarray, alpha: float = 0.45) -> Image.Image:
    """The heatmap stretched over `image` and blended on it."""
    heat = Image.fromarray((cam * 255).astype(np.uint8)).resize(image.size, Image.BILINEAR)
    colours = colormap(np.asarray(heat, dtype=np.float32) / 255.0)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    blended = (1 - alpha) * base + alpha * colours
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8))


def explain_image(rm: RunModel, source, label: str | None = None, max_side: int = 512) -> dict:
    """Grad-CAM for one image (path, stream or PIL image): {label, probability, overlay, heatmap}."""
    if label is not None and label not in rm.labels:
        raise OptionError("class", f"{label!r} is not one of the model's classes: {', '.join(rm.labels)}")
    try:
        x = rm.load(_rewound(source))  # the model's input, the one way predict reads it
        original = open_rgb(_rewound(source))  # the picture to draw on, at full size
    except ImageProblem as exc:
        raise TLCoreError(f"Cannot read the image: {exc}") from None
    cam, c, probs = gradcam(rm.model, x, None if label is None else rm.labels.index(label))
    if rm.resize == "stretch":
        scale = min(1.0, max_side / max(original.size))
        shown = original.resize((max(1, round(original.width * scale)), max(1, round(original.height * scale))))
    else:
        shown = Image.fromarray(x)
    return {"label": rm.labels[c], "probability": float(probs[c]), "overlay": overlay(shown, cam),
            "heatmap": cam}


def _rewound(source):
    if hasattr(source, "seek"):
        source.seek(0)
    return source


def explain(run_dir, image, out, label: str | None = None, runs_dir=None) -> dict:
    """Write the Grad-CAM overlay PNG; returns {image, label, probability, out}."""
    out = Path(out).expanduser()
    if out.suffix.lower() != ".png":
        raise OptionError("out", f"must be a .png file. Received: {out}")
    if not out.parent.is_dir():
        raise TLCoreError(f"The folder {out.parent} does not exist; create it first.")
    if not Path(image).is_file():
        raise TLCoreError(f"No such image: {image}")
    rm = RunModel(run_dir, runs_dir)
    result = explain_image(rm, Path(image), label)
    result["overlay"].save(out)
    return {"image": str(image), "label": result["label"], "probability": result["probability"],
            "out": str(out)}
