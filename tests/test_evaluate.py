"""tlcore.evaluation.evaluate: the mistakes a run is surest of."""
from __future__ import annotations

from tlcore.evaluation.evaluate import top_losses


def test_top_losses_are_the_most_confident_mistakes_first():
    ev = {"misclassified": [{"file": "a", "probability": 0.6, "loss": 0.9},
                            {"file": "b", "probability": 0.9, "loss": 2.3},
                            {"file": "c", "probability": 0.7, "loss": 1.2}]}
    assert [m["file"] for m in top_losses(ev, 2)] == ["b", "c"]


def test_predictions_list_every_scored_image_so_correct_cells_have_images_too():
    import numpy as np

    from tlcore.evaluation.evaluate import score

    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    out = score(probs, np.array([0, 0, 1, 1]), ["cat", "dog"], ["a", "b", "c", "d"])
    assert [(p["file"], p["true"], p["predicted"]) for p in out["predictions"]] == [
        ("a", "cat", "cat"), ("b", "cat", "dog"), ("c", "dog", "dog"), ("d", "dog", "cat")]
    assert [round(p["probability"], 2) for p in out["predictions"]] == [0.9, 0.7, 0.8, 0.6]
    cells = {}
    for p in out["predictions"]:
        cells[(p["true"], p["predicted"])] = cells.get((p["true"], p["predicted"]), 0) + 1
    assert [[cells.get((t, q), 0) for q in out["labels"]] for t in out["labels"]] == out["confusion_matrix"]
