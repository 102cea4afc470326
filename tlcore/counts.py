"""Parameter counts per training stage of the model training would build (temporary).

`stage_parameter_counts`, `StageCounts`, `no_backbone_training_reason` and
`default_unfreeze_index` will be replaced by `tlcore.plan`, the one owner of what trains
when; until then they live here, unchanged, for the app's layer view.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Sequence

from .layers import LayerInfo
from .model import HeadSpec

_SURGERY_LOCK = threading.Lock()


def default_unfreeze_index(n_layers: int) -> int:
    """The engine's default start of fine-tuning: the last third of the uncut backbone."""
    return (2 * int(n_layers)) // 3


@dataclass(frozen=True)
class StageCounts:
    """Parameters of the assembled model (preprocessing, cut backbone, head) in both stages."""

    cut_index: int
    unfreeze_index: int | None
    feature_shape: tuple
    stage1: dict
    stage2: dict
    head: int
    backbone_trainable_stage2: int

    def to_dict(self) -> dict:
        return {"cut_index": self.cut_index, "unfreeze_index": self.unfreeze_index,
                "feature_shape": list(self.feature_shape), "stage1": self.stage1,
                "stage2": self.stage2, "head": self.head,
                "backbone_trainable_stage2": self.backbone_trainable_stage2}


def stage_parameter_counts(backbone, cut=None, unfreeze_from=None, head: HeadSpec | None = None,
                           num_classes: int = 2, train_bn: bool = False,
                           preprocessing: str = "none", fine_tune_epochs: int = 1,
                           paths: dict[str, str] | None = None,
                           default_cut: int | None = None) -> StageCounts:
    """Trainable and non-trainable parameters of the model training would build, per stage.

    Delegates to `train.plan` (what training itself builds and counts) on an already built
    backbone. The backbone's layers are shared with the planned model, so their `trainable`
    flags are restored afterwards, under a lock: the app shares one built backbone between
    sessions.

    Args:
        backbone: the uncut backbone (`build_backbone(..., weights=None)` is enough).
        cut: layer name or index where the backbone ends (None: the last layer).
        unfreeze_from: layer name or index in the uncut backbone from which stage 2 trains
            (None: the engine's default, the last third).
        head: pooling, dense layers and dropout.
        num_classes: classes of the dataset (2 gives one sigmoid unit).
        train_bn: whether BatchNormalization layers train in stage 2.
        preprocessing: the backbone family's preprocessing (`Backbone.preprocessing`).
        fine_tune_epochs: stage 2's epochs; with 0 nothing unfreezes.
        paths: for a backbone loaded from a file, layer name -> path inside nested models
            (`BackboneSource.paths`), so `cut` and `unfreeze_from` may be given as paths.
        default_cut: where training cuts when `cut` is None (`BackboneSource.default_cut`).

    Raises:
        TLCoreError: unknown layer, a cut that is not a clean cut point, a bad head.
    """
    from .layers import resolve_layer
    from .model import parameter_counts
    from .source import BackboneSource
    from .train import TrainConfig, plan

    head = head or HeadSpec()
    config = TrainConfig(cut=cut, unfreeze_from=unfreeze_from, pooling=head.pooling,
                         dense=list(head.dense), dropout=head.dropout, train_bn=bool(train_bn),
                         fine_tune_epochs=int(fine_tune_epochs))
    source = BackboneSource(backbone, preprocessing, int(backbone.input_shape[1]), paths=dict(paths or {}),
                            default_cut=default_cut)
    if cut in (None, ""):
        cut_index = len(backbone.layers) - 1 if default_cut is None else int(default_cut)
    else:
        cut_index = resolve_layer(backbone, cut, "--cut", paths)
    with _SURGERY_LOCK:
        saved = [(layer, layer.trainable) for layer in backbone.layers]
        saved_top = backbone.trainable
        try:
            planned = plan(config, int(num_classes), source)
            head_trainable = parameter_counts(planned["model"].get_layer("head"))["trainable"]
            feature_shape = tuple(planned["model"].get_layer("head").input_shape[1:])
        finally:
            backbone.trainable = saved_top
            for layer, flag in saved:
                layer.trainable = flag
    stage1, stage2 = planned["stage1"], planned["stage2"]
    return StageCounts(cut_index=cut_index, unfreeze_index=planned["unfreeze_index"],
                       feature_shape=feature_shape, stage1=stage1, stage2=stage2, head=head_trainable,
                       backbone_trainable_stage2=stage2["trainable"] - head_trainable)


def no_backbone_training_reason(counts: StageCounts, table: Sequence[LayerInfo],
                                train_bn: bool = False) -> str | None:
    """Why no backbone weight trains in stage 2 (None when some do), in plain words."""
    if counts.backbone_trainable_stage2 > 0:
        return None
    if counts.unfreeze_index is None:
        return "Stage 2 has no epochs, so nothing is unfrozen."
    if counts.unfreeze_index > counts.cut_index:
        return (f"The unfreeze point (layer {counts.unfreeze_index}, "
                f"{table[counts.unfreeze_index].name}) lies past the cut (layer {counts.cut_index}, "
                f"{table[counts.cut_index].name}): every layer it would unfreeze has been cut away.")
    span = table[counts.unfreeze_index:counts.cut_index + 1]
    if all(row.params == 0 for row in span):
        return (f"The layers from {table[counts.unfreeze_index].name} to "
                f"{table[counts.cut_index].name} hold no weights (the cut layer itself, like "
                "InceptionV3's mixed7, is a concatenation).")
    if not train_bn and all(row.params == 0 or row.type == "BatchNormalization" for row in span):
        return ("The only layers with weights between the unfreeze point and the cut are "
                "BatchNormalization layers, which stay frozen.")
    return "None of the layers between the unfreeze point and the cut has trainable weights."
