"""tlcore.evaluate: the mistakes a run is surest of."""
from __future__ import annotations

from tlcore.evaluate import top_losses


def test_top_losses_are_the_most_confident_mistakes_first():
    ev = {"misclassified": [{"file": "a", "probability": 0.6, "loss": 0.9},
                            {"file": "b", "probability": 0.9, "loss": 2.3},
                            {"file": "c", "probability": 0.7, "loss": 1.2}]}
    assert [m["file"] for m in top_losses(ev, 2)] == ["b", "c"]
