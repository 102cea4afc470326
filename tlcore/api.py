"""The public Python API (`tlcore.plan`, `tlcore.train`, `tlcore.load_run`, `tlcore.runs`,
`tlcore.scan`, `tlcore.demo_data`, `Plan`; `Run` lives in `tlcore.run`): the command line's work, for
notebooks and scripts.

Every function calls the functions the command line calls (options through
`recipe.config.options_from` and `TrainConfig`, training through `training.train.train`,
scoring through `evaluation.evaluate.evaluate_run`, prediction through `ship.predict`), so a
run trained here is the run `tlcore train` makes with the same options, and every command
takes its `run_dir`. Nothing here imports TensorFlow until a function needs it.

In Jupyter, a training shows a progress bar per stage and a live chart of its curves (drawn by
`tlcore.notebook` from the run store), and plans, runs and evaluations render themselves as HTML.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .core.errors import OptionError
from .run import Evaluation, Explanation, PathLike, Run, train_here

__all__ = ["Evaluation", "Explanation", "Plan", "Run", "ScanReport", "demo_data", "load_run", "plan", "runs",
           "scan", "train"]


# --- plans --------------------------------------------------------------------------------

class Plan:
    """What trains in each stage of a run, layer by layer, with parameter counts (`tlcore plan`).

    Returned by `tlcore.plan`; renders in Jupyter as the layer table with each layer's role in
    stage 1 and stage 2 (`trains`, `inference_bn`, `frozen`, `cut`).

    Attributes:
        layers: one row per backbone layer: `index`, `name`, `type`, `params`, `stage1`, `stage2`.
        stages: per stage (1, 2): `epochs`, `lr`, `trainable`, `non_trainable`, `total`,
            `backbone_trainable`, and a `reason` when the backbone trains nothing.
        warnings: what training would warn about (a cut that leaves nothing to train, say).
        cut_index, unfreeze_index, feature_shape, head_params, output_units: as named.
    """

    def __init__(self, plan, config):
        self._plan = plan
        self.config = config  # the resolved TrainConfig the plan was made for

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(self._plan, name)

    def to_dict(self) -> dict:
        """The document `tlcore plan --json` prints."""
        return self._plan.to_dict()

    def roles(self, stage: int) -> list[str]:
        """Every backbone layer's role in `stage` (1 or 2), in layer order."""
        return self._plan.roles(stage)

    def __repr__(self) -> str:
        s1, s2 = self._plan.stages[1], self._plan.stages[2]
        return (f"Plan({self.config.backbone or self.config.backbone_file}, cut_index={self._plan.cut_index}, "
                f"stage 1 trains {s1['trainable']:,} of {s1['total']:,} parameters, "
                f"stage 2 {s2['trainable']:,})")

    def _repr_html_(self) -> str:
        from .notebook import plan_html

        return plan_html(self.to_dict())


def plan(backbone: str | None = None, backbone_file: PathLike | None = None, classes: int = 2,
         **options: Any) -> Plan:
    """What training would train in each stage, layer by layer, without training (`tlcore plan`).

    Args:
        backbone: a catalog backbone name (see `tlcore backbones`), e.g. `"MobileNetV2"`.
        backbone_file: instead of `backbone`, a saved model (.keras/.h5) or SavedModel folder.
        classes: classes of the dataset (two give one sigmoid unit).
        **options: any training option by `TrainConfig`'s field name (`cut`, `unfreeze_from`,
            `freeze`, `unfreeze`, `train_bn`, `head_epochs`, `preset`, `input_size`, ...).

    Returns:
        A `Plan`.

    Raises:
        TLCoreError: an unknown option (the error names the closest ones) or a bad value
            (`OptionError` names the option).

    Example:

    >>> p = tlcore.plan(backbone="MobileNetV2", input_size=96, unfreeze_from="block_13_expand")
    >>> p.stages[2]["trainable"] > p.stages[1]["trainable"]
    True
    """
    from .recipe.config import TrainConfig, options_from
    from .recipe.plan import make_plan

    given = _given(options, backbone=backbone, backbone_file=backbone_file)
    config = TrainConfig.from_dict(options_from(given)).resolved()  # resolved() checks, without data
    return Plan(make_plan(config, classes), config)


def train(data: PathLike | None = None, *, runs_dir: PathLike | None = None, run_id: str | None = None,
          config: PathLike | None = None, queue: bool = False, background: bool = False,
          progress: bool = True, seeds: int = 1, ensemble: int = 0, auto: bool = False,
          budget: float | str | None = None, **options: Any) -> Run:
    """Train a classifier: the head on the frozen backbone, then fine-tuning (`tlcore train`).

    Blocks until the run ends, showing a progress bar per stage (and, in a notebook, a live chart
    of the losses and accuracies). Interrupting it (Ctrl+C, the notebook's stop button) asks the
    run to stop within one batch; it then saves its model and the call returns the stopped run.

    Args:
        data: the dataset folder: one sub-folder per class, or `train/`, `validation/` and
            optionally `test/` with one sub-folder per class inside.
        runs_dir: where the run's folder goes (default: the home's `runs/`).
        run_id: the run folder's name (default: time, backbone and a random suffix).
        config: a run's config.json whose options to start from (`tlcore train --config`);
            `options` given here win.
        queue: wait for the machine's queue (one training at a time) as the app does.
        background: start the training in a process of its own, as the app does, and return
            at once (the run is queued or running; `run.wait()` follows it).
        progress: show progress while blocking (False: nothing is drawn).
        seeds: train this many runs, seeds `seed`, `seed` + 1, ... (`tlcore train --seeds N`);
            `run.result["seeds"]` then holds their mean and spread, and the Run is the first one.
        ensemble: with `seeds`, average the `ensemble` runs best on validation into one model
            (`tlcore train --ensemble K`); the Run is that ensemble run.
        auto: choose every option not given here inside `budget` (`tlcore train --auto`): the
            probe's cut, the learning-rate finder, a successive-halving search, k-fold choice on a
            small validation split; the result is the final run, whose `run.result["auto"]`
            holds `budget_s`, `used_s`, `trials`, `chosen` and `reason` (docs/RECIPES.md).
        budget: with `auto`: seconds, or text with m/h ("10m"); default 10 minutes.
        **options: any training option by `TrainConfig`'s field name: `backbone`, `weights`
            (imagenet, none or a weights file), `input_size`, `head_epochs`, `fine_tune_epochs`,
            `unfreeze_from`, `lr`, `seed`, `preset`, ... (`tlcore train --help` lists them all).

    Returns:
        The `Run`; after a blocking call `run.result` holds what `tlcore train --json` prints.

    Raises:
        TLCoreError: an unknown option (the error names the closest ones), a bad value
            (`OptionError` names the option) or a dataset that cannot be used, all before a run
            folder exists; a failure during training (the run then reads as failed).

    Example:

    >>> run = tlcore.train("shapes", backbone="MobileNetV2", weights="none", input_size=64,
    ...                    head_epochs=2, fine_tune_epochs=1)
    >>> run.evaluate()["accuracy"]
    """
    from .recipe.config import TrainConfig, options_from

    given = _given(options, data=None if data is None else str(data))
    if auto or budget is not None:
        if not auto or background or seeds != 1 or ensemble:
            raise OptionError("auto", "budget goes with auto=True, and auto mode blocks (no background=True) "
                                      "and trains its own runs (no seeds or ensemble).")
        import time

        from .search.auto import auto_train

        started = time.time()
        result = auto_train(given, budget, None if config is None else str(config),
                            runs_dir=None if runs_dir is None else str(runs_dir), run_id=run_id, queue=queue,
                            started=started)
        run = Run(result["run_dir"])
        run.result = result
        return run
    resolved = TrainConfig.from_dict(options_from(given, None if config is None else str(config)))
    if seeds != 1 or ensemble:
        from .training.seeds import check_seeds, train_seeds

        check_seeds(seeds, ensemble)
        if background:
            raise OptionError("background", "{option} starts one run; train several seeds blocking instead.")
        return train_here(resolved, runs_dir, run_id, queue, progress,
                          trainer=lambda cfg, **kw: train_seeds(cfg, seeds, ensemble=ensemble, **kw))
    if background:
        from .training.jobs import start_training

        return Run(start_training(resolved.to_dict(), None if runs_dir is None else str(runs_dir),
                                  run_id=run_id).path)
    return train_here(resolved, runs_dir, run_id, queue, progress)

def load_run(run_dir_or_id: PathLike, runs_dir: PathLike | None = None) -> Run:
    """A run of the store by its folder or id (`tlcore evaluate RUN` and every other command
    take the same).

    Raises:
        TLCoreError: no run there.
    """
    return Run(run_dir_or_id, runs_dir)


def runs(runs_dir: PathLike | None = None) -> list[Run]:
    """Every run of the store, newest first (`tlcore runs`)."""
    from .core.runs import RunStore

    store = RunStore(runs_dir)
    return [Run(r.path, runs_dir) for r in store.runs()]


# --- data ---------------------------------------------------------------------------------

class ScanReport(dict):
    """The dict `tlcore scan --json` prints: `layout`, `classes`, `counts` (per split and
    class), `problems`, `warnings`, `path`."""

    def _repr_html_(self) -> str:
        from .notebook import scan_html

        return scan_html(self)


SCAN_KEYS = ("layout", "classes", "counts", "problems", "warnings", "path")


def scan(data: PathLike, val_split: float | None = None, test_split: float | None = None,
         seed: int | None = None) -> ScanReport:
    """Check a folder dataset: its layout, classes, images per split and class, and problems
    (`tlcore scan`).

    Args:
        data: the dataset folder.
        val_split, test_split: fractions held out of a flat layout (one folder per class);
            default: training's defaults.
        seed: the seed of that split (default: training's).

    Returns:
        A `ScanReport`.
    """
    from .data.pipeline import scan as scan_folder
    from .recipe.config import DEFAULTS

    report = scan_folder(str(data), DEFAULTS["val_split"] if val_split is None else val_split,
                         DEFAULTS["test_split"] if test_split is None else test_split,
                         DEFAULTS["seed"] if seed is None else seed).report()
    return ScanReport({k: report[k] for k in SCAN_KEYS})


def demo_data(folder: PathLike, classes: int = 4, per_class: int = 150, seed: int = 0,
              exist_ok: bool = False) -> Path:
    """Write the offline demo dataset (shapes on textures) to `folder` (`tlcore demo-data`).

    Args:
        folder: a new or empty folder; `train/`, `validation/` and `test/` are written inside.
        classes: how many shapes (2 to 8).
        per_class: images per shape (10 to 5000).
        seed: the seed of the drawing.
        exist_ok: when `folder` already holds a dataset, return it unchanged instead of failing.

    Returns:
        The dataset's folder, to pass to `tlcore.train`.
    """
    from .data.demo import make_demo_dataset

    out = Path(folder).expanduser()
    if exist_ok and (out / "train").is_dir():
        return out.resolve()
    return Path(make_demo_dataset(out, classes, per_class, seed)["path"])


# --- helpers ------------------------------------------------------------------------------

def _given(options: dict, **named: Any) -> dict:
    """Keyword options checked against TrainConfig's fields (the error names the closest), with
    the named arguments that were given."""
    from .core.console import did_you_mean
    from .recipe.config import OPTION_NAMES

    for name in options:
        if name not in OPTION_NAMES:
            raise OptionError(name, f"is not a training option.{did_you_mean(name, OPTION_NAMES)} The options "
                              "are TrainConfig's fields (`tlcore train --help` lists them).")
    return {**{k: v for k, v in named.items() if v is not None}, **options}
