"""Two-stage training into the run store: head on a frozen backbone, then fine-tuning.

`train()` checks the `config.TrainConfig` and the dataset, creates the run folder, then builds,
fits and saves, following the `plan.Plan` of what trains when and reporting through the run
store only (status heartbeat, metrics.jsonl, checkpoint), so the command line and the app
follow a run the same way. A stop file or SIGTERM ends it within a batch.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

from .. import __version__
from ..recipe.config import TrainConfig
from ..core.errors import TLCoreError
from .jobs import StopRequested, StoppedWhileQueued, heartbeat, machine_slot
from ..core.runs import Run, RunStore, now_iso

CHANCE_EPOCHS = 3  # epochs after which a loss still at chance earns a warning
CHANCE_TOLERANCE = 0.02


from ..recipe.optimizer import compile_model, make_optimizer  # noqa: F401  (their home is `recipe`)


class Checkpointer:
    """Keeps `checkpoint.keras` holding the best weights so far, without paying for a full save
    after every improving epoch: a save less than `min_interval` seconds after the previous one
    (or any while `hold` is set: stage 1 on cached features, cheap to redo) only remembers the
    weights of the part that trains, and `flush` (end of a stage, a stop) writes them. Cached
    head epochs take a tenth of a second while saving a whole model takes 0.5-3 s; a killed
    process loses at most `min_interval` seconds of checkpoints. `restore` puts the best weights
    back without reading the file."""

    def __init__(self, model, path: Path, min_interval: float = 10.0):
        self.model, self.path, self.min_interval = model, path, min_interval
        self.last = float("-inf")
        self.best = None  # (the part that trained, its weights at the best epoch)
        self.written = True
        self.hold = False

    def improved(self, part=None) -> None:
        part = self.model if part is None else part
        self.best, self.written = (part, part.get_weights()), False
        if not self.hold and time.monotonic() - self.last >= self.min_interval:
            self._write()

    def flush(self) -> None:
        if self.best is not None and not self.written:
            part, weights = self.best
            current = part.get_weights()
            part.set_weights(weights)
            full = self.model.get_weights()  # the whole model at its best, for `restore` after later stages
            try:
                self._write()
            finally:
                part.set_weights(current)
            self.best = (self.model, full)

    def restore(self) -> bool:
        if self.best is None:
            return False
        self.best[0].set_weights(self.best[1])
        return True

    def _write(self) -> None:
        save_atomic(self.model, self.path)
        self.last = time.monotonic()
        self.written = True


def _callbacks(run: Run, stop: StopRequested, stage: int, epochs_total: int, best: dict,
               patience: int, checkpoint: Checkpointer, on_epoch: Callable[[dict], None] | None = None):
    import keras

    class RunRecorder(keras.callbacks.Callback):
        """Writes status and metrics to the run store; saves the best checkpoint; honours stops."""

        def __init__(self):
            super().__init__()
            self.t0 = time.time()
            self.last_write = 0.0

        def on_train_begin(self, logs=None):
            self.batches_total = self.params.get("steps")

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()
            self.batches_done = 0
            run.write_status(stage=stage, epoch=epoch + 1, epochs_total=epochs_total, batch=0,
                             batches_total=self.batches_total)

        def on_train_batch_end(self, batch, logs=None):
            self.batches_done = batch + 1
            now = time.time()
            if now - self.last_write > 0.5 or batch + 1 == self.batches_total:
                run.write_status(batch=batch + 1, batches_total=self.batches_total)
                self.last_write = now
            if stop:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):
            logs = dict(logs or {})
            lr = logs.get("learning_rate")
            if lr is None:
                try:
                    lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
                except Exception:
                    lr = None
            record = {"stage": stage, "epoch": epoch + 1}
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                value = logs.get(key)
                record[key] = None if value is None else float(value)
            record["lr"] = None if lr is None else float(lr)
            record["seconds"] = round(time.time() - self.t0, 3)
            if stop and self.batches_total and self.batches_done < self.batches_total:
                return  # a partial epoch after a stop request is not a finished epoch
            run.append_metric(record)
            if on_epoch:
                on_epoch(record)
            score = record.get("val_loss")
            if score is None or best.get("val_loss") is None or score < best["val_loss"]:
                best.update(val_loss=score, epoch=epoch + 1)
                checkpoint.improved(self.model)  # the head alone on cached features

    cbs = [RunRecorder()]
    if patience:
        cbs.append(keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience,
                                                 restore_best_weights=True, start_from_epoch=0))
    cbs.append(keras.callbacks.TensorBoard(log_dir=str(run.file("tb")), write_graph=False,
                                           profile_batch=0))
    return cbs


def save_atomic(model, path: Path) -> None:
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(str(tmp))
    os.replace(tmp, path)


def versions() -> dict:
    import keras
    import tensorflow as tf

    return {"tlcore": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "python": platform.python_version()}


def train(config: TrainConfig, runs_dir: str | None = None, run_id: str | None = None,
          resume: str | None = None, queue: bool = False,
          announce: Callable[[Path], None] | None = None) -> dict:
    """Train one run; returns {run_dir, state, epochs, val_accuracy, test_accuracy, seconds}.

    Raises:
        TLCoreError: bad options or data, found before the run folder is made where possible;
            after that the run is marked failed with the reason, and the error re-raised.
    """
    from ..data.pipeline import scan
    from .device import cluster

    t_start = time.time()
    workers = cluster()
    scratch = None
    if workers:  # every worker runs this same command; only the chief writes the run store
        queue = False
        if not workers["chief"]:
            import tempfile

            scratch = tempfile.mkdtemp(prefix=f"tlcore-worker{workers['index']}-")
            runs_dir, run_id = scratch, None
    store = RunStore(runs_dir)
    if resume:
        run = store.get(resume)
        old = run.config()
        if not old:
            raise TLCoreError(f"{resume} has no config.json to resume from.")
        config = TrainConfig.from_dict(old["options"])
        if run.status().get("state") in ("running", "queued"):
            raise TLCoreError(f"Run {run.run_id} is still {run.status()['state']}; it cannot be resumed twice.")
        run.file("stop").unlink(missing_ok=True)
        if run.model_path() is None:
            raise TLCoreError(f"Run {run.run_id} has no checkpoint to resume from; start it again instead.")
    # every check that needs no TensorFlow, before a new run's folder exists
    config = config.resolved()
    from ..data.splits import SPLIT_METHOD, recorded_method

    split_method = recorded_method(old) if resume else SPLIT_METHOD
    ds = scan(config.data, config.val_split, config.test_split, config.seed, check_files=False,
              split_method=split_method)
    if not resume:
        run = store.create(run_id, hint=config.backbone or Path(config.backbone_file).stem)
    if announce:
        announce(run.path)
    stop = StopRequested(run)
    stop.install()
    status = {"state": "queued" if queue else "running", "pid": os.getpid(),
              "host": socket.gethostname(), "started_at": now_iso(), "ended_at": None,
              "stage": None, "epoch": 0, "epochs_total": config.head_epochs + config.fine_tune_epochs,
              "stage_epochs": {"1": config.head_epochs, "2": config.fine_tune_epochs},
              "batch": 0, "batches_total": None, "error": None, "traceback": None}
    if workers:
        status["workers"] = workers["workers"]
    if resume:
        status["resumed_at"] = now_iso()
        status.pop("started_at")
    else:  # what the run will do is readable at once, even while it waits in the queue
        from ..core.jsonio import write_json

        write_json(run.file("config.json"), {"options": config.to_dict(), "seed": config.seed,
                                             "split_method": SPLIT_METHOD,
                                             "created_at": now_iso()})
    run.write_status(**status)
    beat_stop = threading.Event()
    threading.Thread(target=heartbeat, args=(run, beat_stop), daemon=True).start()
    try:
        with machine_slot(run, queue, stop):
            run.write_status(state="running")
            result = _train_in_run(config, run, stop, bool(resume), ds)
    except StoppedWhileQueued:
        run.write_status(state="stopped", ended_at=now_iso())
        result = {"state": "stopped", "epochs": 0, "val_accuracy": None, "test_accuracy": None,
                  "warnings": []}
    except TLCoreError as exc:
        run.write_status(state="failed", ended_at=now_iso(), error=str(exc),
                         error_option=getattr(exc, "option", None))
        raise
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}".strip()
        failure = None
        if workers:
            from .device import worker_failure

            failure = worker_failure(exc)
            reason = failure or reason
        if isinstance(exc, KeyboardInterrupt):
            run.write_status(state="stopped", ended_at=now_iso(), error="interrupted by the user")
        else:
            run.write_status(state="failed", ended_at=now_iso(), error=reason.splitlines()[0][:500],
                             traceback=traceback.format_exc())
        if failure:
            raise TLCoreError(failure) from None
        raise
    finally:
        beat_stop.set()
        stop.uninstall()
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    result.update(run_dir=str(run.path), seconds=round(time.time() - t_start, 2))
    return {k: result.get(k) for k in ("run_dir", "state", "epochs", "val_accuracy", "test_accuracy",
                                       "seconds", "warnings")}


def _train_in_run(config: TrainConfig, run: Run, stop: StopRequested, resuming: bool, ds) -> dict:
    import keras

    from . import device
    from ..recipe import features
    from ..recipe import optimizer as recipe
    from ..data.pipeline import augmentation_layers, augmentation_options, class_weights, make_dataset, split_arrays
    from ..evaluation.evaluate import evaluate_run
    from ..recipe.surgery import build_model, parameter_counts
    from ..recipe.plan import apply_stage, make_plan
    from ..backbones.source import load_source

    keras.utils.set_random_seed(config.seed)
    dev = device.setup(config.mixed_precision, config.xla, config.deterministic)
    multi_worker = dev["strategy_name"] == "MultiWorkerMirroredStrategy"
    if multi_worker:
        stop.strategy = dev["strategy"]
    # `ds` was scanned without decoding: split_arrays reads every file once and skips (and
    # reports) the unusable ones
    classes = ds.classes
    n_classes = len(classes)
    if config.backbone_file and Path(config.backbone_file).is_dir():
        copy = run.file("backbone_savedmodel")  # a TF-Hub style folder travels with the run
        if not copy.exists():
            shutil.copytree(Path(config.backbone_file).expanduser(), copy)
        config = dataclasses.replace(config, backbone_file=str(copy))
        run.write_status(portable=False, note="This model contains a TFSMLayer: it loads only with "
                         "tlcore (or export it to SavedModel/TFLite, which carry it).")
    with dev["strategy"].scope():  # every variable must be made inside the strategy's scope
        source = load_source(config)  # backbone (uncut), preprocessing, input size, provenance
    size = source.input_size
    if not resuming:
        from ..core.jsonio import write_json

        write_json(run.file("labels.json"), classes)
        write_json(run.file("config.json"), {
            "options": config.to_dict(), "resolved": {
                "input_size": size, "preprocessing": source.preprocessing,
                "num_classes": n_classes, "layout": ds.layout, "data_root": str(ds.root),
                "backbone_source": source.provenance, "device": {
                    k: v for k, v in dev.items() if k != "strategy"}},
            "seed": config.seed, "split_method": ds.split_method, "dataset_fingerprint": ds.fingerprint(),
            "dataset_counts": ds.counts(), "versions": versions(), "created_at": now_iso()})
    else:
        saved = run.labels()
        if saved and saved != classes:
            raise TLCoreError(f"The dataset's classes changed since the run started "
                              f"({saved} -> {classes}); it cannot be resumed.")

    x_train, y_train, _, bad_train = split_arrays(ds, "train", size, config.resize)
    x_val, y_val, _, bad_val = split_arrays(ds, "validation", size, config.resize)
    skipped = bad_train + bad_val
    if skipped:
        run.write_status(skipped_files=skipped[:200])
    if len(x_train) == 0:
        raise TLCoreError("No training images could be read; see `tlcore scan` for the reasons.")
    aug_opts = augmentation_options(config.augment, **config.augment_overrides())
    one_hot = recipe.one_hot(config, n_classes)
    train_ds = make_dataset(x_train, y_train, n_classes, config.batch_size, shuffle=True,
                            augment=augmentation_layers(aug_opts, config.seed), seed=config.seed,
                            one_hot=one_hot, mix=recipe.mixer(config.mixup, config.cutmix, config.seed))
    val_ds = make_dataset(x_val, y_val, n_classes, config.batch_size, one_hot=one_hot) if len(x_val) else None
    if multi_worker:
        train_ds, val_ds = device.shard_by_data(train_ds), device.shard_by_data(val_ds)
    weights = class_weights(y_train, n_classes, config.class_weights)

    plan = make_plan(config, n_classes, source)
    with dev["strategy"].scope():
        if resuming:
            model = keras.models.load_model(str(run.model_path()), safe_mode=True, compile=False)
        else:
            model = build_model(config, source, n_classes)
    by_stage = {}
    for stage in (1, 2):  # what Keras counts once the plan is applied (equal to the plan's counts)
        apply_stage(model, plan, stage)
        by_stage[str(stage)] = parameter_counts(model)
    warnings: list[str] = []
    run.write_status(parameters_by_stage=by_stage, warnings=warnings)

    def warn(text: str | None) -> None:
        """A warning of this run: in status.json, on stderr, and in the result."""
        if text and text not in warnings:
            warnings.append(text)
            run.write_status(warnings=warnings)
            print(f"warning: {text}", file=sys.stderr, flush=True)

    for text in plan.warnings:
        warn(text)
    warn(streaming_warning({"train": x_train, "validation": x_val}))

    def on_epoch(record: dict) -> None:
        warn(chance_warning(run.metrics(), n_classes, config))

    done = [m for m in run.metrics()] if resuming else []
    epochs_done = max((m["epoch"] for m in done), default=0)
    total_epochs = config.head_epochs + config.fine_tune_epochs
    state = "completed"
    stages = [(1, config.head_epochs, config.lr), (2, config.fine_tune_epochs, config.stage2_lr)]
    best: dict = {}
    checkpoint = Checkpointer(model, run.file("checkpoint.keras"))
    first = 0
    from_features = None  # scores from cached features, while the backbone stays as stage 1 left it
    for stage, n_epochs, lr in stages:
        last = first + n_epochs
        if n_epochs == 0 or epochs_done >= last:
            first = last
            continue
        apply_stage(model, plan, stage)
        run.write_status(stage=stage, parameters=parameter_counts(model))
        fit_model, fit_train, fit_val = model, train_ds, val_ds
        copies = features.cache_copies(config, aug_opts, model, len(x_train)) if stage == 1 and not multi_worker else 0
        if stage == 1 and config.feature_cache != "off" and config.image_recipe():
            warn(f"No feature cache in stage 1: {' and '.join(config.image_recipe())} change the images "
                 "themselves every epoch, so the backbone runs over every image of every epoch.")
        if copies:
            run.write_status(stage=1, feature_cache=f"computing ({copies} cop{'y' if copies == 1 else 'ies'})")
            fit_train, fit_val, from_features = features.stage1_datasets(
                model, source, config, ds, aug_opts, copies, (x_train, y_train), (x_val, y_val), n_classes, one_hot)
            fit_model = model.get_layer("head")
            checkpoint.hold = True
            run.write_status(feature_cache=f"on ({copies} cop{'y' if copies == 1 else 'ies'})")
        with dev["strategy"].scope():
            recipe.compile_stage(fit_model, config, lr, n_classes, n_epochs,
                                 recipe.steps_per_epoch(len(x_train), config.batch_size))
        from ..core.console import stderr_is_tty

        verbose = 1 if stderr_is_tty() else 2
        fit_model.fit(fit_train, validation_data=fit_val, epochs=last,
                      initial_epoch=max(first, epochs_done),
                      class_weight=weights, verbose=verbose, shuffle=False,
                      callbacks=_callbacks(run, stop, stage, total_epochs, best, config.early_stopping,
                                           checkpoint, on_epoch))
        checkpoint.hold = False
        if stop or (stage == 1 and config.fine_tune_epochs > 0):
            checkpoint.flush()  # a completed run saves model.keras at once instead
        if stage == 2:
            from_features = None
        epochs_done = max((m["epoch"] for m in run.metrics()), default=epochs_done)
        if stop:
            state = "stopped"
            break
        first = last

    metrics = run.metrics()
    last_epoch = max((m["epoch"] for m in metrics), default=0)
    if state == "stopped":  # status, metrics and the summary agree on the last finished epoch
        now = run.raw_status()
        finished = [m for m in metrics if m["epoch"] == last_epoch]
        run.write_status(stopped_during={"epoch": now.get("epoch"), "batch": now.get("batch"),
                                         "batches_total": now.get("batches_total")},
                         epoch=last_epoch, stage=finished[0]["stage"] if finished else now.get("stage"),
                         batch=now.get("batches_total") if finished else 0)
    if config.early_stopping and best.get("epoch") not in (None, last_epoch) and checkpoint.restore():
        # Early stopping restores the best weights of the whole run, across both stages.
        run.write_status(best_epoch=best["epoch"])
        if any(m["stage"] == 2 and m["epoch"] <= best["epoch"] for m in metrics):
            from_features = None
    save_atomic(model, run.file("model.keras"))
    val_acc = max((m["val_accuracy"] for m in metrics if m.get("val_accuracy") is not None), default=None)
    test_acc = None
    if state == "completed" and (ds.files.get("test") or ds.files.get("validation")):
        stage_before = run.raw_status().get("stage")
        run.write_status(stage="evaluate")
        ev = evaluate_run(run.path, model=model, dataset=ds, probabilities=from_features)
        run.write_status(stage=stage_before)
        test_acc = ev["accuracy"] if ev["split"] == "test" else None
    warn(chance_warning(metrics, n_classes, config, final=True))
    run.write_status(state=state, ended_at=now_iso())
    return {"state": state, "epochs": len(metrics), "val_accuracy": val_acc, "test_accuracy": test_acc,
            "warnings": warnings}


def streaming_warning(splits: dict) -> str | None:
    """The run's warning when a split's decoded images were too large for the cache: they are
    decoded again from their files every epoch (slower, not stored). None otherwise."""
    from ..core import cache

    big = {name: rows for name, rows in splits.items() if getattr(rows, "streamed", False)}
    if not big:
        return None
    size = sum(rows.nbytes for rows in big.values())
    return (f"The decoded {' and '.join(big)} images ({size / 2 ** 30:.1f} GiB) exceed the cache's cap "
            f"({cache.ENV_MAX}={cache.max_bytes() / 2 ** 30:.1f} GiB): every epoch decodes them again from "
            f"their files, in parallel, which is slower. Raise {cache.ENV_MAX} (and have that much free "
            "disk) to decode them once.")


def chance_warning(metrics: list[dict], num_classes: int, config: TrainConfig, final: bool = False) -> str | None:
    """A warning when the loss sits at chance, ln(classes), within 2%: over the first 3 epochs
    (as soon as they are done), or at the end of the run (`final`). None otherwise.

    The validation loss is used where there is one, else the training loss.
    """
    chance = float(np.log(num_classes))
    losses = [m.get("val_loss") if m.get("val_loss") is not None else m.get("loss") for m in metrics]
    losses = [x for x in losses if x is not None]
    if final:
        accuracies = [m["val_accuracy"] for m in metrics if m.get("val_accuracy") is not None]
        if accuracies and len(accuracies) >= CHANCE_EPOCHS and max(accuracies) <= 1.25 / num_classes:
            return (f"The validation accuracy never rose clearly above chance (1/{num_classes}): best "
                    f"{max(accuracies):.2f} in {len(accuracies)} epochs. Likely cause: {_chance_cause(config)}")
        if not losses or abs(losses[-1] - chance) > CHANCE_TOLERANCE * chance:
            return None
        when = f"at the end of the run ({len(losses)} epochs)"
    else:
        if len(losses) != CHANCE_EPOCHS or any(abs(x - chance) > CHANCE_TOLERANCE * chance for x in losses):
            return None
        when = f"for the first {CHANCE_EPOCHS} epochs"
    return (f"The loss stayed at chance level, ln({num_classes}) = {chance:.3f}, {when}: the model "
            f"predicts no better than guessing. Likely cause: {_chance_cause(config)}")


def _chance_cause(config: TrainConfig) -> str:
    if config.weights in (None, "none") and not config.backbone_file and config.head_epochs > 0:
        return ("weights=none with a head-only stage: the head learns from the features of a random, "
                "frozen backbone, which carry almost nothing. Train from scratch (head_epochs 0, "
                "unfreeze_from 0, train_bn) or give pretrained weights.")
    if config.weights in (None, "none") and not config.backbone_file:
        hint = "" if config.preset == "scratch-small" else ", the scratch-small preset (a smaller network)"
        return ("random initial weights: from scratch a network often sits at chance for its first "
                f"epochs; if it stays there, it needs more epochs, more images{hint}, or pretrained "
                "weights.")
    return (f"the learning rate ({config.lr:g}) may be too high or too low for this setup (try "
            "`tlcore lr-find`), or the labels do not match the images.")
