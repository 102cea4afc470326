"""tlcore.counts (temporary, until tlcore.plan): why no backbone weight trains in stage 2."""
from __future__ import annotations

from tlcore.counts import StageCounts, no_backbone_training_reason
from tlcore.layers import LayerInfo


def _table(n=6, cuts=(1, 3), params=(0, 10, 0, 20, 5, 7)):
    return [LayerInfo(i, f"l{i}", "BatchNormalization" if i == 4 else "Conv2D", [None, 2, 2, 1],
                      params[i], True, i in cuts, "b0" if i < 3 else "b1") for i in range(n)]


def test_no_backbone_training_reason():
    table = _table()
    counts = StageCounts(cut_index=3, unfreeze_index=5, feature_shape=(1,), stage1={}, stage2={},
                                head=7, backbone_trainable_stage2=0)
    assert "past the cut" in no_backbone_training_reason(counts, table)
    counts = StageCounts(2, 2, (1,), {}, {}, 7, 0)
    assert "hold no weights" in no_backbone_training_reason(counts, table)
    assert no_backbone_training_reason(StageCounts(3, 1, (1,), {}, {}, 7, 30), table) is None
