"""Where a run's backbone comes from: the catalog (with its weights) or a saved model file."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TLCoreError


@dataclass
class BackboneSource:
    backbone: object  # the uncut keras.Model
    preprocessing: str
    input_size: int
    provenance: dict = field(default_factory=dict)


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_source(config) -> BackboneSource:
    """Build the backbone a TrainConfig (or anything with the same fields) asks for."""
    from .backbones import build_backbone
    from .catalog import get_backbone

    if getattr(config, "backbone_file", None):
        raise TLCoreError("--backbone-file is not supported yet; use --backbone NAME.")
    info = get_backbone(config.backbone)
    weights = config.weights
    backbone = build_backbone(info.name, config.input_size, weights)
    provenance = {"kind": "catalog", "name": info.name, "weights": weights or "none"}
    if weights not in (None, "none", "imagenet"):
        provenance.update(weights_file=Path(weights).name, weights_sha256=file_sha256(weights))
    size = int(backbone.input_shape[1])
    return BackboneSource(backbone, info.preprocessing, size, provenance)
