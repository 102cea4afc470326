"""`tlcore train --twin-from-scratch`: a run and then its from-scratch twin, as the app's
"Also train from scratch (compare)" starts them (`sweep.from_scratch` makes the twin's options)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..recipe.config import TrainConfig
from .sweep import from_scratch
from .train import train


def twin_config(config: TrainConfig) -> TrainConfig:
    """The from-scratch twin of a (resolved) config: same architecture and data, random weights.

    Raises:
        TLCoreError: a backbone file (it keeps its own weights) or weights that are none already.
    """
    from ..core.errors import OptionError

    if config.backbone_file:
        raise OptionError("twin_from_scratch", "{option} needs a catalog backbone: a backbone file "
                          "({option:backbone_file}) keeps its own weights, so there is no from-scratch twin to train.")
    if config.weights in (None, "none"):
        raise OptionError("twin_from_scratch", "{option}: the weights are none already, so this run trains "
                          "from scratch itself. Give {option:weights} imagenet or a weights file.")
    return TrainConfig.from_dict(from_scratch(config.to_dict())).resolved()


def train_with_twin(config: TrainConfig, runs_dir=None, run_id: str | None = None, queue: bool = False,
                    announce: Callable[[Path], None] | None = None) -> dict:
    """Train `config`, then its twin; the first run's result with twin: {run_dir, state,
    val_accuracy, test_accuracy, their intervals and counts}. The twin is checked before the first run starts."""
    twin = twin_config(config.resolved())
    result = train(config, runs_dir=runs_dir, run_id=run_id, queue=queue, announce=announce)
    if result.get("state") != "completed":
        return {**result, "twin": None}
    other = train(twin, runs_dir=runs_dir, queue=queue, announce=announce)
    return {**result, "twin": {k: other.get(k) for k in ("run_dir", "state", "val_accuracy", "test_accuracy",
                                                         "val_accuracy_interval", "test_accuracy_interval",
                                                         "val_count", "test_count")}}
