"""The steps of one training inside its run folder: build, fit stage by stage, record.

`train.train` makes the run folder and waits for the machine; `train_in_run` then builds
(the backbone, the run's record of what it trains on, the data, the model), fits each stage
with epochs left (`plan.apply_stage` says what trains) and records (best weights, model.keras,
the evaluation, the state). The steps share one `_Job`.
"""
from __future__ import annotations

import dataclasses
import shutil
import sys
from pathlib import Path

from ..core.errors import TLCoreError
from ..core.runs import Run, now_iso
from ..recipe.config import TrainConfig
from . import stage1
from .jobs import StopRequested
from .train import Checkpointer, _callbacks, chance_warning, save_atomic, streaming_warning, versions


def train_in_run(config: TrainConfig, run: Run, stop: StopRequested, resuming: bool, ds,
                 stage1_dir: str | None = None) -> dict:
    """Build, train stage by stage, record: the run's work once its folder exists and the
    machine is free. With `stage1_dir`, stage 1 is shared there with runs of the same stage-1
    options (`stage1.Stage1Store`)."""
    import keras

    from . import device

    keras.utils.set_random_seed(config.seed)
    dev = device.setup(config.mixed_precision, config.xla, config.deterministic)
    if dev["strategy_name"] == "MultiWorkerMirroredStrategy":
        stop.strategy = dev["strategy"]
    job = _build(_portable_backbone(config, run), run, stop, resuming, ds, dev)
    if stage1_dir and stage1.applies(job.config, resuming, job.multi_worker):
        job.stage1 = stage1.Stage1Store(stage1_dir, job.config, ds, job.source)
    state = _fit_stages(job)
    return _record(job, state)


@dataclasses.dataclass
class _Job:
    """What the steps of one training share: the run, its data, its model and what it reported."""

    config: TrainConfig
    run: Run
    stop: StopRequested
    resuming: bool
    ds: object  # data.pipeline.Dataset
    dev: dict
    source: object = None  # backbones.source.BackboneSource
    train: tuple = ()  # (x, y) arrays
    val: tuple = ()
    train_ds: object = None
    val_ds: object = None
    aug_opts: dict = dataclasses.field(default_factory=dict)
    one_hot: bool = False
    class_weights: dict | None = None
    plan: object = None  # recipe.plan.Plan
    model: object = None
    checkpoint: Checkpointer | None = None
    best: dict = dataclasses.field(default_factory=dict)
    warnings: list = dataclasses.field(default_factory=list)
    from_features: object = None  # scores from cached features, while the backbone stays as stage 1 left it
    held: dict | None = None  # the baselines' pooled stage-1 features (`baselines.held_features`)
    stage1: object = None  # stage1.Stage1Store: stage 1 shared with other runs

    @property
    def n_classes(self) -> int:
        return len(self.ds.classes)

    @property
    def multi_worker(self) -> bool:
        return self.dev["strategy_name"] == "MultiWorkerMirroredStrategy"

    def warn(self, text: str | None) -> None:
        """A warning of this run: in status.json, on stderr, and in the result."""
        if text and text not in self.warnings:
            self.warnings.append(text)
            self.run.write_status(warnings=self.warnings)
            print(f"warning: {text}", file=sys.stderr, flush=True)


def _portable_backbone(config: TrainConfig, run: Run) -> TrainConfig:
    """A SavedModel folder as backbone (TF-Hub style) is copied into the run, which then uses the copy."""
    if not (config.backbone_file and Path(config.backbone_file).is_dir()):
        return config
    copy = run.file("backbone_savedmodel")
    if not copy.exists():
        shutil.copytree(Path(config.backbone_file).expanduser(), copy)
    run.write_status(portable=False, note="This model contains a TFSMLayer: it loads only with "
                     "tlcore (or export it to SavedModel/TFLite, which carry it).")
    return dataclasses.replace(config, backbone_file=str(copy))


def _build(config: TrainConfig, run: Run, stop: StopRequested, resuming: bool, ds, dev: dict) -> _Job:
    """Step 1: the backbone, the run's record of what it trains on, the data and the model."""
    from ..backbones.source import load_source

    job = _Job(config, run, stop, resuming, ds, dev)
    with dev["strategy"].scope():  # every variable must be made inside the strategy's scope
        job.source = load_source(config)  # backbone (uncut), preprocessing, input size, provenance
    _record_start(job)
    _data(job)
    _model(job)
    return job


def _record_start(job: _Job) -> None:
    """labels.json and config.json with what was resolved; a resumed run checks its classes instead."""
    config, run, ds, source = job.config, job.run, job.ds, job.source
    classes = ds.classes
    if job.resuming:
        saved = run.labels()
        if saved and saved != classes:
            raise TLCoreError(f"The dataset's classes changed since the run started "
                              f"({saved} -> {classes}); it cannot be resumed.")
        return
    from ..core.jsonio import write_json

    write_json(run.file("labels.json"), classes)
    write_json(run.file("config.json"), {
        "options": config.to_dict(), "resolved": {
            "input_size": source.input_size, "preprocessing": source.preprocessing,
            "num_classes": len(classes), "layout": ds.layout, "data_root": str(ds.root),
            "backbone_source": source.provenance, "device": {
                k: v for k, v in job.dev.items() if k != "strategy"}},
        "seed": config.seed, "split_method": ds.split_method, "dataset_fingerprint": ds.fingerprint(),
        "dataset_counts": ds.counts(), "versions": versions(), "created_at": now_iso()})


def _data(job: _Job) -> None:
    """The decoded train and validation images and their tf.data pipelines."""
    from . import device
    from ..data.augment import augmentation_options
    from ..data.pipeline import class_weights, make_dataset, split_arrays
    from ..recipe import optimizer as recipe

    config, ds, n_classes, size = job.config, job.ds, job.n_classes, job.source.input_size
    # `ds` was scanned without decoding: split_arrays reads every file once and skips (and
    # reports) the unusable ones
    x_train, y_train, _, bad_train = split_arrays(ds, "train", size, config.resize)
    x_val, y_val, _, bad_val = split_arrays(ds, "validation", size, config.resize)
    skipped = bad_train + bad_val
    if skipped:
        job.run.write_status(skipped_files=skipped[:200])
    if len(x_train) == 0:
        raise TLCoreError("No training images could be read; see `tlcore scan` for the reasons.")
    job.train, job.val = (x_train, y_train), (x_val, y_val)
    job.aug_opts = augmentation_options(config.augment, **config.augment_overrides())
    job.one_hot = recipe.one_hot(config, n_classes)
    job.class_weights = class_weights(y_train, n_classes, config.class_weights)

    def val_ds(shard=None):
        return make_dataset(x_val, y_val, n_classes, config.batch_size, one_hot=job.one_hot, shard=shard)

    if not len(x_val):
        job.val_ds = None
    elif job.multi_worker:  # each worker reads its own rows of each batch (device.per_worker)
        job.val_ds = device.per_worker(job.dev["strategy"], val_ds)
    else:
        job.val_ds = val_ds()
    _train_dataset(job)


def _train_dataset(job: _Job) -> None:
    """The training images' pipeline (shuffled, augmented), made anew for each stage that reads
    images, so stage 2 starts the same whether or not stage 1 read them (or ran at all)."""
    from . import device
    from ..data.augment import augmentation_layers
    from ..data.pipeline import make_dataset
    from ..recipe import optimizer as recipe

    config, (x_train, y_train) = job.config, job.train
    augment = augmentation_layers(job.aug_opts, config.seed)
    mix = recipe.mixer(config.mixup, config.cutmix, config.seed)

    def train_ds(shard=None):
        return make_dataset(x_train, y_train, job.n_classes, config.batch_size, shuffle=True, augment=augment,
                            seed=config.seed, one_hot=job.one_hot, mix=mix, shard=shard)

    if job.multi_worker:  # each worker reads its own rows of each batch; class weights ride in the batches
        job.train_ds = device.per_worker(job.dev["strategy"], train_ds, job.class_weights)
    else:
        job.train_ds = train_ds()


def _model(job: _Job) -> None:
    """The plan and the model (built, or the checkpoint of a resumed run), the parameter counts
    per stage and the plan's warnings."""
    import keras

    from ..recipe.plan import apply_stage, make_plan
    from ..recipe.surgery import build_model, parameter_counts

    job.plan = make_plan(job.config, job.n_classes, job.source)
    with job.dev["strategy"].scope():
        if job.resuming:
            job.model = keras.models.load_model(str(job.run.model_path()), safe_mode=True, compile=False)
        else:
            job.model = build_model(job.config, job.source, job.n_classes)
    by_stage = {}
    for stage in (1, 2):  # what Keras counts once the plan is applied (equal to the plan's counts)
        apply_stage(job.model, job.plan, stage)
        by_stage[str(stage)] = parameter_counts(job.model)
    job.run.write_status(parameters_by_stage=by_stage, warnings=job.warnings)
    for text in job.plan.warnings:
        job.warn(text)
    job.warn(streaming_warning({"train": job.train[0], "validation": job.val[0]}))
    job.checkpoint = Checkpointer(job.model, job.run.file("checkpoint.keras"))


def _fit_stages(job: _Job) -> str:
    """Step 2: each stage with epochs left (a resumed run skips what it finished); "completed",
    or "stopped" when asked to stop."""
    config, run = job.config, job.run
    if job.ds.files.get("test") or job.ds.files.get("validation"):
        from ..evaluation.baselines import warm_up

        warm_up()  # scikit-learn loads while the epochs run, for the baselines at the end
    epochs_done = max((m["epoch"] for m in run.metrics()), default=0) if job.resuming else 0
    first = 0
    for stage, n_epochs, lr in ((1, config.head_epochs, config.lr), (2, config.fine_tune_epochs, config.stage2_lr)):
        last = first + n_epochs
        if n_epochs == 0 or epochs_done >= last:
            first = last
            continue
        if stage == 2 and epochs_done <= first:
            _hold_features(job)  # the frozen backbone's, before stage 2 changes it
        if stage == 1 and job.stage1 is not None:
            _shared_stage1(job, n_epochs, lr, first, epochs_done)
        else:
            _fit_stage(job, stage, n_epochs, lr, first, epochs_done)
        epochs_done = max((m["epoch"] for m in run.metrics()), default=epochs_done)
        if job.stop:
            return "stopped"
        first = last
    return "completed"


def _shared_stage1(job: _Job, n_epochs: int, lr: float, first: int, epochs_done: int) -> None:
    """Stage 1 from the shared store when a run with the same stage-1 options saved it, else
    trained here and saved for the next; one run at a time per key."""
    from ..recipe.plan import apply_stage
    from ..recipe.surgery import parameter_counts

    store, run = job.stage1, job.run
    with store.turn(job.stop):
        if job.stop:
            return
        info = store.load_into(job)
        if info is None:
            before = list(job.warnings)
            _fit_stage(job, 1, n_epochs, lr, first, epochs_done)
            if not job.stop:
                store.save(job, [w for w in job.warnings if w not in before])
            return
    apply_stage(job.model, job.plan, 1)
    run.write_status(stage=1, parameters=parameter_counts(job.model))
    records = info.get("metrics") or []
    for i, record in enumerate(records):
        run.append_metric(record)
        job.warn(chance_warning(records[:i + 1], job.n_classes, job.config))
    for text in info.get("warnings") or []:
        job.warn(text)
    changes = {"feature_cache": info["feature_cache"]} if info.get("feature_cache") else {}
    run.write_status(stage=1, epoch=max((m["epoch"] for m in records), default=0), epochs_total=job.config.epochs_total,
                     stage1_shared={"key": store.key, "trained_by": info.get("trained_by")}, **changes)


def _fit_stage(job: _Job, stage: int, n_epochs: int, lr: float, first: int, epochs_done: int) -> None:
    """One stage: the plan's trainable weights, the feature cache in stage 1 where it applies,
    compile, fit to epoch `first + n_epochs`."""
    from ..core.console import stderr_is_tty
    from ..recipe import features
    from ..recipe import optimizer as recipe
    from ..recipe.plan import apply_stage
    from ..recipe.surgery import parameter_counts

    config, run, model, checkpoint = job.config, job.run, job.model, job.checkpoint
    if stage == 1 and config.head_fit in ("logistic", "pixels"):  # one step, no epochs
        from .headfit import fit_stage

        return fit_stage(job, first, n_epochs)
    x_train, _ = job.train
    if stage == 2:  # seeded from the seed: the same start after stage 1 trained here or shared
        import keras

        keras.utils.set_random_seed(config.seed)
        _train_dataset(job)
    apply_stage(model, job.plan, stage)
    run.write_status(stage=stage, parameters=parameter_counts(model))
    fit_model, fit_train, fit_val = model, job.train_ds, job.val_ds
    copies = features.cache_copies(config, job.aug_opts, model, len(x_train)) \
        if stage == 1 and not job.multi_worker else 0
    if stage == 1 and config.feature_cache != "off" and config.image_recipe():
        job.warn(f"No feature cache in stage 1: {' and '.join(config.image_recipe())} change the images "
                 "themselves every epoch, so the backbone runs over every image of every epoch.")
    if copies:
        run.write_status(stage=1, feature_cache=f"computing ({copies} cop{'y' if copies == 1 else 'ies'})")
        fit_train, fit_val, job.from_features = features.stage1_datasets(
            model, job.source, config, job.ds, job.aug_opts, copies, job.train, job.val, job.n_classes,
            job.one_hot)
        fit_model = model.get_layer("head")
        checkpoint.hold = True
        run.write_status(feature_cache=f"on ({copies} cop{'y' if copies == 1 else 'ies'})")
    with job.dev["strategy"].scope():
        recipe.compile_stage(fit_model, config, lr, job.n_classes, n_epochs,
                             recipe.steps_per_epoch(len(x_train), config.batch_size))

    def on_epoch(record: dict) -> None:
        job.warn(chance_warning(run.metrics(), job.n_classes, config))

    repeated = {}
    if copies:  # the feature datasets repeat: one iterator for the stage (features.dataset)
        val_batch = features.VAL_BATCHES * config.batch_size
        repeated = {"steps_per_epoch": recipe.steps_per_epoch(len(x_train), config.batch_size),
                    "validation_steps": recipe.steps_per_epoch(len(job.val[0]), val_batch) if fit_val else None}
    fit_model.fit(fit_train, validation_data=fit_val, epochs=first + n_epochs,
                  initial_epoch=max(first, epochs_done), **repeated,
                  class_weight=None if job.multi_worker else job.class_weights,  # per_worker: in the batches
                  verbose=1 if stderr_is_tty() else 2, shuffle=False,
                  callbacks=_callbacks(run, job.stop, stage, config.epochs_total, job.best, config.early_stopping,
                                       checkpoint, on_epoch))
    checkpoint.hold = False
    if job.stop or (stage == 1 and config.fine_tune_epochs > 0):
        checkpoint.flush()  # a completed run saves model.keras at once instead
    if stage == 2:
        job.from_features = None


def _hold_features(job: _Job) -> None:
    """The baselines' pooled features of the frozen backbone (train sample, test), computed once
    through the stage-1 cache while the backbone is still as stage 1 left it; none without a
    test split, on a multi-worker cluster, or for a model without the backbone/head layout."""
    if job.held is not None or job.multi_worker or not job.ds.files.get("test"):
        return
    from ..data.pipeline import split_arrays
    from ..evaluation.baselines import held_features
    from ..recipe.features import stage1_key
    from ..recipe.surgery import feature_extractor

    config = job.config
    try:
        extractor = getattr(job.from_features, "extractor", None) or feature_extractor(job.model)
    except (ValueError, KeyError):
        return
    x_test = split_arrays(job.ds, "test", job.source.input_size, config.resize)[0]
    if not len(x_test):
        return
    x_train, y_train = job.train
    job.held = held_features(extractor, stage1_key(job.source, config, job.ds, job.model), x_train, y_train,
                             x_test, config.seed, config.batch_size)


def _record(job: _Job, state: str) -> dict:
    """Step 3: where a stop left off, the best weights back (early stopping), model.keras, the
    evaluation, the final warnings and state; the run's summary."""
    from ..evaluation.evaluate import evaluate_run, run_record

    config, run, ds = job.config, job.run, job.ds
    metrics = run.metrics()
    last_epoch = max((m["epoch"] for m in metrics), default=0)
    if state == "stopped":  # status, metrics and the summary agree on the last finished epoch
        now = run.raw_status()
        finished = [m for m in metrics if m["epoch"] == last_epoch]
        run.write_status(stopped_during={"epoch": now.get("epoch"), "batch": now.get("batch"),
                                         "batches_total": now.get("batches_total")},
                         epoch=last_epoch, stage=finished[0]["stage"] if finished else now.get("stage"),
                         batch=now.get("batches_total") if finished else 0)
    best = job.best
    if config.early_stopping and best.get("epoch") not in (None, last_epoch) and job.checkpoint.restore():
        # Early stopping restores the best weights of the whole run, across both stages.
        run.write_status(best_epoch=best["epoch"])
        if any(m["stage"] == 2 and m["epoch"] <= best["epoch"] for m in metrics):
            job.from_features = None
    save_atomic(job.model, run.file("model.keras"))
    val_acc = max((m["val_accuracy"] for m in metrics if m.get("val_accuracy") is not None), default=None)
    test_acc, ev = None, None
    if state == "completed" and (ds.files.get("test") or ds.files.get("validation")):
        from ..evaluation.baselines import RunBaselines

        fine_tuned = any(m["stage"] == 2 for m in metrics)
        if not fine_tuned:
            _hold_features(job)
        stage_before = run.raw_status().get("stage")
        run.write_status(stage="evaluate")
        x_train, y_train = job.train
        ev = evaluate_run(run.path, model=job.model, dataset=ds, probabilities=job.from_features,
                          baselines=RunBaselines(job.model, x_train, y_train, config.seed, job.held, fine_tuned))
        run.write_status(stage=stage_before)
        test_acc = ev["accuracy"] if ev["split"] == "test" else None
    honest, texts = run_record(ev, val_acc, len(job.val[1]))  # intervals and baselines (evaluation.evaluate)
    run.write_status(**honest)
    for text in texts:
        job.warn(text)
    job.warn(chance_warning(metrics, job.n_classes, config, final=True))
    run.write_status(state=state, ended_at=now_iso())
    return {"state": state, "epochs": len(metrics), "val_accuracy": val_acc, "test_accuracy": test_acc,
            "warnings": job.warnings}
