"""Every `keras.applications` backbone as data: sizes, published scores, preprocessing.

The figures (size in MB, ImageNet top-1/top-5, parameters with the top, depth) are the
ones Keras publishes in its Applications table; `None` where Keras publishes none.
Preprocessing names what the model's own `keras.applications` module does to 0-255 RGB:
``caffe`` (RGB to BGR, minus ImageNet means), ``tf`` (to [-1, 1]), ``torch`` (to [0, 1],
then ImageNet mean and std) or ``none`` (the model does it itself).
"""
from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass

from ..core.errors import OptionError, TLCoreError


@dataclass(frozen=True)
class Backbone:
    name: str
    family: str
    default_input_size: int
    min_input_size: int
    params: int | None
    depth: int | None
    size_mb: float | None
    top1: float | None
    top5: float | None
    preprocessing: str

    def to_dict(self) -> dict:
        return asdict(self)


def _b(name, family, size, min_size, params_m, depth, size_mb, top1, top5, prep):
    params = int(round(params_m * 1e6)) if params_m is not None else None
    return Backbone(name, family, size, min_size, params, depth, size_mb, top1, top5, prep)


_ROWS = [
    _b("Xception", "xception", 299, 71, 22.9, 81, 88, 0.790, 0.945, "tf"),
    _b("VGG16", "vgg", 224, 32, 138.4, 16, 528, 0.713, 0.901, "caffe"),
    _b("VGG19", "vgg", 224, 32, 143.7, 19, 549, 0.713, 0.900, "caffe"),
    _b("ResNet50", "resnet", 224, 32, 25.6, 107, 98, 0.749, 0.921, "caffe"),
    _b("ResNet101", "resnet", 224, 32, 44.7, 209, 171, 0.764, 0.928, "caffe"),
    _b("ResNet152", "resnet", 224, 32, 60.4, 311, 232, 0.766, 0.931, "caffe"),
    _b("ResNet50V2", "resnet_v2", 224, 32, 25.6, 103, 98, 0.760, 0.930, "tf"),
    _b("ResNet101V2", "resnet_v2", 224, 32, 44.7, 205, 171, 0.772, 0.938, "tf"),
    _b("ResNet152V2", "resnet_v2", 224, 32, 60.4, 307, 232, 0.780, 0.942, "tf"),
    _b("InceptionV3", "inception_v3", 299, 75, 23.9, 189, 92, 0.779, 0.937, "tf"),
    _b("InceptionResNetV2", "inception_resnet_v2", 299, 75, 55.9, 449, 215, 0.803, 0.953, "tf"),
    _b("MobileNet", "mobilenet", 224, 32, 4.3, 55, 16, 0.704, 0.895, "tf"),
    _b("MobileNetV2", "mobilenet_v2", 224, 32, 3.5, 105, 14, 0.713, 0.901, "tf"),
    _b("MobileNetV3Small", "mobilenet_v3", 224, 32, 2.5, None, None, 0.681, None, "none"),
    _b("MobileNetV3Large", "mobilenet_v3", 224, 32, 5.4, None, None, 0.756, None, "none"),
    _b("DenseNet121", "densenet", 224, 32, 8.1, 242, 33, 0.750, 0.923, "torch"),
    _b("DenseNet169", "densenet", 224, 32, 14.3, 338, 57, 0.762, 0.932, "torch"),
    _b("DenseNet201", "densenet", 224, 32, 20.2, 402, 80, 0.773, 0.936, "torch"),
    _b("NASNetMobile", "nasnet", 224, 32, 5.3, 389, 23, 0.744, 0.919, "tf"),
    _b("NASNetLarge", "nasnet", 331, 32, 88.9, 533, 343, 0.825, 0.960, "tf"),
    _b("EfficientNetB0", "efficientnet", 224, 32, 5.3, 132, 29, 0.771, 0.933, "none"),
    _b("EfficientNetB1", "efficientnet", 240, 32, 7.9, 186, 31, 0.791, 0.944, "none"),
    _b("EfficientNetB2", "efficientnet", 260, 32, 9.2, 186, 36, 0.801, 0.949, "none"),
    _b("EfficientNetB3", "efficientnet", 300, 32, 12.3, 210, 48, 0.816, 0.957, "none"),
    _b("EfficientNetB4", "efficientnet", 380, 32, 19.5, 258, 75, 0.829, 0.964, "none"),
    _b("EfficientNetB5", "efficientnet", 456, 32, 30.6, 312, 118, 0.836, 0.967, "none"),
    _b("EfficientNetB6", "efficientnet", 528, 32, 43.3, 360, 166, 0.840, 0.968, "none"),
    _b("EfficientNetB7", "efficientnet", 600, 32, 66.7, 438, 256, 0.843, 0.970, "none"),
    _b("EfficientNetV2B0", "efficientnet_v2", 224, 32, 7.2, None, 29, 0.787, 0.943, "none"),
    _b("EfficientNetV2B1", "efficientnet_v2", 240, 32, 8.2, None, 34, 0.798, 0.950, "none"),
    _b("EfficientNetV2B2", "efficientnet_v2", 260, 32, 10.2, None, 42, 0.805, 0.951, "none"),
    _b("EfficientNetV2B3", "efficientnet_v2", 300, 32, 14.5, None, 59, 0.820, 0.958, "none"),
    _b("EfficientNetV2S", "efficientnet_v2", 384, 32, 21.6, None, 88, 0.839, 0.967, "none"),
    _b("EfficientNetV2M", "efficientnet_v2", 480, 32, 54.4, None, 220, 0.853, 0.974, "none"),
    _b("EfficientNetV2L", "efficientnet_v2", 480, 32, 119.0, None, 479, 0.857, 0.975, "none"),
    _b("ConvNeXtTiny", "convnext", 224, 32, 28.6, None, 109.42, 0.813, None, "none"),
    _b("ConvNeXtSmall", "convnext", 224, 32, 50.2, None, 192.29, 0.823, None, "none"),
    _b("ConvNeXtBase", "convnext", 224, 32, 88.5, None, 338.58, 0.853, None, "none"),
    _b("ConvNeXtLarge", "convnext", 224, 32, 197.7, None, 755.07, 0.863, None, "none"),
    _b("ConvNeXtXLarge", "convnext", 224, 32, 350.1, None, 1310.0, 0.867, None, "none"),
]

CATALOG: dict[str, Backbone] = {b.name: b for b in _ROWS}
_LOWER = {name.lower(): name for name in CATALOG}


def list_backbones(pattern: str = "*") -> list[Backbone]:
    """Backbones whose name matches a shell-style pattern (case-insensitive), e.g. ``"Eff*"``."""
    return [b for b in CATALOG.values() if fnmatch.fnmatch(b.name.lower(), pattern.lower())]


def get_backbone(name: str) -> Backbone:
    """The catalog record for `name` (case-insensitive).

    Raises:
        TLCoreError: the name is not in the catalog; the message lists what is.
    """
    key = _LOWER.get(str(name).lower())
    if key is None:
        from ..core.console import did_you_mean

        raise OptionError(
            "backbone",
            f"Unknown backbone {name!r}.{did_you_mean(name, CATALOG)} Choose one of: {', '.join(CATALOG)} "
            "(or give a saved model with {option:backbone_file})."
        )
    return CATALOG[key]


def inexact_match(name: str) -> tuple[str, list[str]] | None:
    """For a name that matches a catalog backbone only when case is ignored (``"mobilenet"``):
    (the backbone it means, the other names close to it, such as ``MobileNetV2``); None for an
    exact name or one that matches nothing (`get_backbone` says so)."""
    key = _LOWER.get(str(name).lower())
    if key is None or key == name:
        return None
    lower = str(name).lower()
    close = [n for n in CATALOG if n != key and n.lower().startswith(lower)]
    if not close:
        from ..core.console import closest

        close = [n for n in closest(name, CATALOG, n=4) if n != key][:3]
    return key, close
