"""`tlcore train --seeds N`: the same training N times with seeds seed, seed+1, ..., each a normal
run tagged as one group (status.json `group: {id, kind: "seeds", index, n, seed}`), and what they
say together: the mean and spread over seeds of the test and validation accuracy
(`evaluation.stats.over_seeds`). With `--ensemble K`, the K runs best on validation become one
model (`ensemble.build_ensemble`).
"""
from __future__ import annotations

import dataclasses
import secrets
import time
from pathlib import Path
from typing import Callable

from ..core.errors import OptionError
from ..core.runs import Run
from ..evaluation.stats import over_seeds
from ..recipe.config import TrainConfig
from .train import train

RUN_FIELDS = ("run_dir", "seed", "state", "val_accuracy", "test_accuracy", "val_accuracy_interval",
              "test_accuracy_interval", "val_count", "test_count")


def check_seeds(seeds: int, ensemble: int = 0) -> None:
    """Raises OptionError for a count below 1, or an ensemble larger than the runs it averages."""
    if int(seeds) != seeds or seeds < 1:
        raise OptionError("seeds", f"{{option}} must be a whole number of 1 or more. Received: {seeds!r}")
    if ensemble and (int(ensemble) != ensemble or ensemble < 2):
        raise OptionError("ensemble", f"{{option}} must be 2 or more (the runs it averages). Received: {ensemble!r}")
    if ensemble and ensemble > seeds:
        raise OptionError("ensemble", f"{{option}} {ensemble} averages the best {ensemble} runs, but "
                          f"{{option:seeds}} {seeds} trains only {seeds}: give {{option:seeds}} {ensemble} or more.")


def train_seeds(config: TrainConfig, seeds: int, runs_dir=None, run_id: str | None = None, queue: bool = False,
                announce: Callable[[Path], None] | None = None, ensemble: int = 0) -> dict:
    """Train `config` with seeds config.seed ... config.seed + seeds - 1, one run after another
    (a run that does not complete, stopped or failed, ends the group there).

    Returns the first run's result (the run of `config.seed`, what `tlcore train` returns) with
    `seeds`: {group, n, seeds, runs: [{run_dir, seed, state, val_accuracy, test_accuracy, ...}],
    test_accuracy_mean, _std, _min, _max, val_accuracy_mean, _std, _min, _max, seconds}; with
    `ensemble` K, the ensemble run's result instead, with `seeds` and `ensemble` (its members).
    `run_id` names the runs RUN_ID-seedS.
    """
    check_seeds(seeds, ensemble)
    config = config.resolved()
    if ensemble:
        _check_fixed_split(config)
    group = f"seeds-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(2)}"
    t0 = time.time()
    results = []
    for index in range(seeds):
        seed = config.seed + index

        def tagged(path: Path, index=index, seed=seed) -> None:
            Run(path).write_status(group={"id": group, "kind": "seeds", "index": index, "n": seeds, "seed": seed})
            if announce:
                announce(path)

        result = train(dataclasses.replace(config, seed=seed), runs_dir=runs_dir,
                       run_id=f"{run_id}-seed{seed}" if run_id else None, queue=queue, announce=tagged)
        results.append({**result, "seed": seed})
        if result.get("state") != "completed":
            break
    summary = {"group": group, **over_seeds([{k: r.get(k) for k in RUN_FIELDS} for r in results]),
               "seconds": round(time.time() - t0, 2)}
    first = dict(results[0])
    first.pop("seed", None)
    if not ensemble or len(results) < seeds:
        return {**first, "seeds": summary}
    from .ensemble import build_ensemble, best_runs

    built = build_ensemble(best_runs([r["run_dir"] for r in results], ensemble), runs_dir=runs_dir,
                           run_id=f"{run_id}-ensemble" if run_id else None, announce=announce, group=group)
    return {**built, "seeds": summary}


def _check_fixed_split(config: TrainConfig) -> None:
    """An ensemble of seed runs needs every run to hold out the same test images: on a flat
    dataset (one folder per class) the seed draws the split, so each run would test on images
    another trained on."""
    from ..data.pipeline import scan

    ds = scan(config.data, config.val_split, config.test_split, config.seed, check_files=False)
    if ds.layout != "split" or not ds.files.get("test"):
        raise OptionError("ensemble", "{option} over {option:seeds} needs a dataset with train/ and test/ "
                          "folders: on a folder per class the seed also draws the split, so every run would "
                          "hold out other test images, some of which another run trained on. Split the dataset "
                          "into train/, validation/ and test/ folders first.")
