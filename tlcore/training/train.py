"""Two-stage training into the run store: head on a frozen backbone, then fine-tuning.

`train()` checks the `config.TrainConfig` and the dataset, creates the run folder, then builds,
fits and saves, following the `plan.Plan` of what trains when and reporting through the run
store only (status heartbeat, metrics.jsonl, checkpoint), so the command line and the app
follow a run the same way. A stop file or SIGTERM ends it within a batch.
"""
from __future__ import annotations

import os
import platform
import shutil
import socket
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

from ..core import __version__
from ..recipe.config import TrainConfig
from ..core.errors import TLCoreError
from .jobs import StopRequested, StoppedWhileQueued, heartbeat, machine_slot
from ..core.runs import Run, RunStore, now_iso

CHANCE_EPOCHS = 3  # epochs after which a loss still at chance earns a warning
CHANCE_TOLERANCE = 0.02
HONEST_KEYS = ("val_accuracy_interval", "test_accuracy_interval", "val_count", "test_count", "baselines")


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

    from .tblog import EpochLog

    class RunRecorder(keras.callbacks.Callback):
        """Writes status and metrics to the run store; saves the best checkpoint; honours stops."""

        def __init__(self):
            super().__init__()
            self.t0 = time.time()
            self.last_write = 0.0

        def on_train_begin(self, logs=None):
            self.batches_total = self.params.get("steps")
            self.tb = EpochLog(run.file("tb"))  # TensorBoard's scalars, as Keras' callback writes them

        def on_train_end(self, logs=None):
            self.tb.close()

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
            self.tb.write(epoch, record)
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
          announce: Callable[[Path], None] | None = None, stage1_dir: str | None = None) -> dict:
    """Train one run; returns {run_dir, state, epochs, val_accuracy, test_accuracy, seconds, warnings,
    val_accuracy_interval, test_accuracy_interval, val_count, test_count, baselines}.

    `stage1_dir` (a search's trials): share stage 1 there with runs of the same stage-1 options
    (`stage1.Stage1Store`; the result is the same as without).

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
    if config.backbone and config.weights == "imagenet":  # on this machine, or reachable within 3 s
        from ..backbones.assets import check_imagenet_weights

        check_imagenet_weights(config.backbone, config.input_size)
    if config.backbone and not resume:  # cut, unfreeze point, patterns, head: from a stored layer table
        from ..backbones.tablestore import known_facts
        from ..recipe.plan import make_plan

        facts = known_facts(config.backbone, config.input_size)
        if facts is not None:  # else the run checks them once its backbone is built
            make_plan(config, len(ds.classes), facts)
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
            from .steps import train_in_run

            result = train_in_run(config, run, stop, bool(resume), ds, stage1_dir)
    except StoppedWhileQueued:
        run.write_status(state="stopped", ended_at=now_iso())
        result = {"state": "stopped", "epochs": 0, "val_accuracy": None, "test_accuracy": None,
                  "warnings": []}
    except TLCoreError as exc:
        run.write_status(state="failed", ended_at=now_iso(), error=str(exc),
                         error_option=getattr(exc, "option", None), error_template=getattr(exc, "template", None))
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
    recorded = run.raw_status()  # the intervals and baselines the run recorded at its end
    result.update({k: recorded.get(k) for k in HONEST_KEYS if k not in result})
    return {k: result.get(k) for k in ("run_dir", "state", "epochs", "val_accuracy", "test_accuracy",
                                       "seconds", "warnings", *HONEST_KEYS)}


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
