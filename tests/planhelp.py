"""Test helper: freeze a model built by `model.assemble` the way training does, through the plan.

`set_trainable(model, stage, unfreeze_from, train_bn, layer_index)` keeps the shape of the old
engine function the tests were written against: `unfreeze_from` is an index in the uncut
backbone (`layer_index`: name -> index there), None for "stage 2 has no epochs".
"""
from __future__ import annotations


def set_trainable(model, stage: int, unfreeze_from: int | None, train_bn: bool = False,
                  layer_index: dict | None = None) -> None:
    from tlcore.recipe.config import TrainConfig
    from tlcore.recipe.plan import apply_stage, make_plan
    from tlcore.backbones.source import BackboneSource

    backbone = model.get_layer("backbone")
    layers = backbone.layers
    start = None
    if unfreeze_from is not None:
        uncut = [layer_index.get(layer.name, i) if layer_index else i for i, layer in enumerate(layers)]
        start = next((i for i, u in enumerate(uncut) if u >= unfreeze_from), len(layers) - 1)
    units = int(model.output_shape[-1])
    config = TrainConfig(unfreeze_from=None if start is None else str(start), train_bn=bool(train_bn),
                         fine_tune_epochs=0 if start is None else 1, head_epochs=1)
    source = BackboneSource(backbone, "none", int(model.input_shape[1]))
    apply_stage(model, make_plan(config, 2 if units == 1 else units, source), stage)
