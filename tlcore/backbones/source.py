"""Where a run's backbone comes from: the catalog (with its weights) or a saved model file.

A saved `.keras` or `.h5` model is loaded in Keras' safe mode and flattened: layers inside
nested models (a classifier wrapping a whole MobileNetV2, say) become layers of one graph,
named by their path (`mobilenetv2_1.00_160/block_16_project`), so any clean cut point inside
is reachable and freezing works layer by layer. A SavedModel folder (TF-Hub style) is wrapped
with `TFSMLayer`: frozen and uncuttable.
"""
from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..core.errors import OptionError, TLCoreError

if TYPE_CHECKING:
    from .layers import LayerInfo

PREPROCESSING_CHOICES = ("auto", "none", "tf", "caffe", "torch")


@dataclass
class BackboneSource:
    backbone: object  # the uncut keras.Model, flat
    preprocessing: str
    input_size: int
    provenance: dict = field(default_factory=dict)
    paths: dict = field(default_factory=dict)  # layer name -> path inside nested models
    portable: bool = True  # False when the model needs this package (TFSMLayer)
    default_cut: int | None = None  # where to cut when none is given (a saved model's old head goes)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def load_source(config) -> BackboneSource:
    """Build the backbone a TrainConfig (or anything with the same fields) asks for."""
    from .build import build_backbone
    from .catalog import get_backbone

    if getattr(config, "backbone_file", None):
        return load_backbone_file(config.backbone_file, getattr(config, "preprocessing", None) or "auto")
    info = get_backbone(config.backbone)
    weights = config.weights
    backbone = build_backbone(info.name, config.input_size, weights)
    provenance = {"kind": "catalog", "name": info.name, "weights": weights or "none"}
    if weights not in (None, "none", "imagenet"):
        provenance.update(weights_file=Path(weights).name, weights_sha256=file_sha256(weights))
    size = int(backbone.input_shape[1])
    return BackboneSource(backbone, info.preprocessing, size, provenance)


def _load_saved(path: Path):
    import keras
    import zipfile

    with open(path, "rb") as f:
        head = f.read(8)
    if not (zipfile.is_zipfile(path) or head == b"\x89HDF\r\n\x1a\n"):
        raise TLCoreError(f"{path.name} is not a Keras model file (neither a .keras zip nor an HDF5 "
                          "file). Give a model saved with model.save(...).")
    try:
        return keras.models.load_model(str(path), safe_mode=True, compile=False)
    except Exception as exc:
        text = str(exc)
        if "lambda" in text.lower() or "safe_mode" in text or "unsafe" in text.lower():
            raise TLCoreError(
                f"{path.name} holds a Lambda layer (arbitrary Python code), which Keras' safe mode "
                "refuses to load, so the studio will not run it. Rebuild the model without Lambda "
                "layers (use stock Keras layers), or save only its weights and load them into the "
                "matching catalog backbone as a weights file.") from None
        if "Could not locate" in text or "Unknown layer" in text or "custom" in text.lower():
            raise TLCoreError(
                f"{path.name} uses custom layers this studio does not know, so it cannot be loaded "
                f"safely ({text.splitlines()[0][:200]}). Save a model made of stock Keras layers.") from None
        if "No model config" in text or "model_config" in text:
            raise OptionError("backbone_file", f"{path.name} holds weights only, not a model. Use "
                              "{option:backbone} NAME with {option:weights} PATH for a weights file of a catalog "
                              "backbone.") from None
        raise TLCoreError(f"{path.name} is not a Keras model file that loads: "
                          f"{text.splitlines()[0][:300] if text else type(exc).__name__}") from None


def flatten_model(model):
    """One Functional graph over the same layer objects, nested Functional models opened up.

    Keras only: the scripts of `tlcore export --format code` carry a copy of this function.

    Returns:
        (flat model, {layer name: path through the nested models},
         {layer name: the layer's output in the flat graph})

    Raises:
        ValueError: two layers at different places of the model share a name.
    """
    import re

    import keras

    paths: dict[str, str] = {}
    outputs: dict = {}

    def graph_of(m):
        inner = getattr(m, "_functional", None)  # a Sequential model keeps its graph there
        return inner if isinstance(m, keras.Sequential) and inner is not None else m

    def call(graph, inputs, prefix):
        graph = graph_of(graph)

        def op_fn(op):
            if isinstance(op, keras.Model) and op.layers and hasattr(graph_of(op), "_nodes_by_depth"):
                return lambda *args, **kwargs: call(op, args[0] if len(args) == 1 else list(args),
                                                    f"{prefix}{op.name}/")
            if isinstance(op, keras.layers.InputLayer):
                return op
            if op.name in paths and paths[op.name] != f"{prefix}{op.name}":
                raise ValueError(
                    f"Two layers of the saved model are both named {op.name!r} "
                    f"({paths[op.name]} and {prefix}{op.name}); layers need unique names. "
                    "Rename one (name=...) and save the model again.")
            paths[op.name] = f"{prefix}{op.name}"

            def run(*args, **kwargs):
                outputs[op.name] = op(*args, **kwargs)
                return outputs[op.name]

            return run

        return graph._run_through_graph(inputs, operation_fn=op_fn)

    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=f"{model.name}_input".replace("/", "_"))
              for t in model.inputs]
    flat_outputs = call(model, inputs[0] if len(inputs) == 1 else inputs, "")
    flat = keras.Model(inputs, flat_outputs, name=re.sub(r"[^A-Za-z0-9_.-]", "_", model.name))
    return flat, paths, outputs


_FAMILY_HINTS = [  # nested keras.applications model names -> their preprocessing
    (r"^mobilenetv2|^mobilenet_|^mobilenet$", "tf"), (r"^inception|^xception|^nasnet", "tf"),
    (r"^resnet\d+v2", "tf"), (r"^resnet\d+$|^vgg", "caffe"), (r"^densenet", "torch"),
    (r"^efficientnet|^convnext|^mobilenetv3|^MobilenetV3", "none"),
]


def guess_preprocessing(model) -> str:
    """The preprocessing a saved model needs before its own layers: `none` if it starts by
    rescaling itself, else that of a nested keras.applications model it wraps, else none."""
    import keras

    for layer in model.layers[:4]:
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            return "none"
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            for pattern, mode in _FAMILY_HINTS:
                if re.search(pattern, layer.name, re.IGNORECASE):
                    if mode != "none":
                        first = [l for l in layer.layers[:4]
                                 if isinstance(l, (keras.layers.Rescaling, keras.layers.Normalization))]
                        return "none" if first else mode
                    return mode
    return "none"


def load_backbone_file(path, preprocessing: str = "auto") -> BackboneSource:
    """A saved model (.keras, .h5, or a SavedModel folder) as an uncut, flat backbone."""
    p = Path(path).expanduser()
    if preprocessing not in PREPROCESSING_CHOICES:
        raise OptionError("preprocessing", f"must be one of {', '.join(PREPROCESSING_CHOICES)}. "
                          f"Received: {preprocessing!r}")
    if not p.exists():
        raise TLCoreError(f"Backbone file not found: {p}. Give a .keras or .h5 model file, or a "
                          "SavedModel folder.")
    provenance = {"kind": "file", "file": p.name, "sha256": file_sha256(p), "path": str(p.resolve())}
    if p.is_dir():
        return _savedmodel_source(p, preprocessing, provenance)
    if p.suffix.lower() not in (".keras", ".h5", ".hdf5"):
        raise OptionError("backbone_file", f"{p.name}: a backbone file must be a .keras or .h5 model (or a SavedModel "
                          "folder). For a weights-only file use {option:backbone} NAME with {option:weights} PATH.")
    model = _load_saved(p)
    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4 or model.inputs[0].shape[-1] != 3:
        raise TLCoreError(f"{p.name} must take one RGB image input (height, width, 3); it takes "
                          f"{[tuple(t.shape) for t in model.inputs]}.")
    height, width = model.inputs[0].shape[1:3]
    if height is None or width is None or height != width:
        raise TLCoreError(f"{p.name} must have a fixed square input size; it has {height}x{width}.")
    mode = guess_preprocessing(model) if preprocessing == "auto" else preprocessing
    try:
        flat, paths, _ = flatten_model(model)
    except ValueError as exc:
        if "unique names" not in str(exc):
            raise
        raise TLCoreError(f"{p.name}: {exc}") from None
    provenance["preprocessing"] = mode
    return BackboneSource(flat, mode, int(height), provenance, paths, default_cut=_last_spatial_cut(flat))


def _last_spatial_cut(model) -> int:
    """The last clean cut point with spatial (height, width, channels) output: the old head goes."""
    from .layers import cut_points, layer_output

    flags = cut_points(model)
    for i in range(len(model.layers) - 1, 0, -1):
        if flags[i] and len(layer_output(model, model.layers[i]).shape) == 4:
            return i
    return len(model.layers) - 1


def _savedmodel_source(folder: Path, preprocessing: str, provenance: dict) -> BackboneSource:
    import keras
    import tensorflow as tf

    if not (folder / "saved_model.pb").exists():
        raise TLCoreError(f"{folder} is not a SavedModel folder (no saved_model.pb).")
    try:
        loaded = tf.saved_model.load(str(folder))
        endpoint = "serving_default" if "serving_default" in loaded.signatures else next(iter(loaded.signatures))
        spec = loaded.signatures[endpoint].structured_input_signature[1]
        (_, tensor_spec), = spec.items()
        size = tensor_spec.shape[1]
    except (StopIteration, ValueError, OSError) as exc:
        raise TLCoreError(f"{folder} has no usable serving signature: {exc}") from None
    if size is None:
        raise TLCoreError(f"{folder}'s signature has no fixed input size; re-export it with one.")
    layer = keras.layers.TFSMLayer(str(folder), call_endpoint=endpoint, trainable=False, name="savedmodel")
    inputs = keras.Input(shape=(int(size), int(size), 3), name="image_in")
    out = layer(inputs)
    if isinstance(out, dict):
        out = next(iter(out.values()))
    model = keras.Model(inputs, out, name="savedmodel_backbone")
    mode = "none" if preprocessing == "auto" else preprocessing
    provenance.update(preprocessing=mode, kind="savedmodel")
    return BackboneSource(model, mode, int(size), provenance, portable=False)


def source_summary(source, table: Sequence[LayerInfo]) -> dict:
    """What the studio found in a loaded backbone file, in plain values.

    Returns:
        ``{layers, nested, input_size, preprocessing, default_cut, default_cut_name, portable,
        kind}``; ``nested`` counts layers that came from inside nested models.
    """
    default = source.default_cut if source.default_cut is not None else len(table) - 1
    return {"layers": len(table), "nested": sum("/" in row.name for row in table),
            "input_size": int(source.input_size), "preprocessing": source.preprocessing,
            "default_cut": int(default), "default_cut_name": table[default].name if table else None,
            "portable": bool(source.portable), "kind": source.provenance.get("kind", "file")}
