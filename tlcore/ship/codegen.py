"""`tlcore export RUN --format code`: the run as one readable, standalone Keras training script.

The script uses keras, tensorflow, numpy and Pillow only. Its constants are this run's options
as config.json records them, with what tlcore resolved: the cut layer's name, the layers that
train in stage 2 (from `plan.make_plan`, the one owner of what trains when), the augmentation
options (`augment.augmentation_options`). It reads images with the studio's own `images.load_image`
(copied with what it calls, `_images_source`) and splits them as `data.scan` does (same sorting,
seed and rounding; the split functions copied too), and builds and trains the model
as `model.build_model` and `train` do, in the style of the Keras transfer-learning guide.

A run on a catalog backbone rebuilds it from `keras.applications` (`--weights PATH` for a weights
file); a run on a saved model file loads that file (`--backbone-file PATH`, by default the path
the run recorded), opens up its nested models as `source.flatten_model` does (copied into the
script) and cuts it at the same layer. The script's text lives in `codegen_template`.
"""
from __future__ import annotations

import os
import pprint
import re
from pathlib import Path

from ..core.errors import OptionError, TLCoreError
from ..core.runs import RunStore


def script_values(run_dir, runs_dir=None) -> dict:
    """The constants of the script: this run's options, resolved.

    Raises:
        TLCoreError: a run without options; a backbone file that is gone, changed since the run,
            or a SavedModel folder (which plain Keras cannot cut or train).
    """
    from ..recipe.config import TrainConfig
    from ..data.augment import augmentation_options
    from ..data.images import IMAGE_EXTENSIONS
    from ..backbones.layers import trainable_by_nature
    from ..recipe.plan import make_plan
    from ..backbones.source import load_source
    from ..data.splits import recorded_method

    run = RunStore(runs_dir).get(run_dir)
    cfg = run.config()
    options = cfg.get("options")
    if cfg.get("ensemble"):
        raise TLCoreError(f"Run {run.run_id} is an ensemble of other runs, not one training: export the script "
                          "of a member run (config.json's ensemble.members) instead.")
    if not options:
        raise TLCoreError(f"Run {run.run_id} has no config.json options to write as code.")
    config = TrainConfig.from_dict(options)
    if config.head_fit != "epochs":
        raise TLCoreError(f"Run {run.run_id}'s head was fitted by scikit-learn (head_fit {config.head_fit}), which the "
                          "script, Keras alone, does not do: export its model instead (--format onnx, savedmodel, "
                          "tflite or bundle).")
    resolved = cfg.get("resolved") or {}
    if config.backbone_file:
        recorded = _check_backbone_file(Path(config.backbone_file).expanduser(), resolved.get("backbone_source") or {})
    labels = run.labels()
    source = load_source(config if config.backbone_file else config.replace(weights="none"))
    plan = make_plan(config, len(labels), source)
    backbone = source.backbone
    keys = plan.trainable_keys.get(2, frozenset())
    train2, frozen_weights = [], []
    for layer in backbone.layers[: plan.cut_index + 1]:
        weights = list(layer.weights)
        if weights and any((layer.name, j) in keys for j in range(len(weights))):
            train2.append(layer.name)
            nature = trainable_by_nature(layer)  # what trains once the layer is switched on
            frozen_weights += [str(v.path) for j, v in enumerate(weights)
                               if id(v) in nature and (layer.name, j) not in keys]
    values = {
        "RUN_ID": run.run_id, "INPUT_SIZE": int(resolved.get("input_size") or source.input_size),
        "PREPROCESSING": resolved.get("preprocessing", source.preprocessing),
        "CUT_LAYER": backbone.layers[plan.cut_index].name,
        "CLASSES": labels, "POOLING": config.pooling, "DENSE": [int(u) for u in config.dense],
        "DROPOUT": float(config.dropout), "HEAD_EPOCHS": int(config.head_epochs),
        "FINE_TUNE_EPOCHS": int(config.fine_tune_epochs), "LR": float(config.lr),
        "FINE_TUNE_LR": float(config.stage2_lr), "OPTIMIZER": config.optimizer,
        "WEIGHT_DECAY": None if config.weight_decay is None else float(config.weight_decay),
        "SCHEDULE": config.schedule, "WARMUP_EPOCHS": int(config.warmup_epochs),
        "LABEL_SMOOTHING": float(config.label_smoothing), "MIXUP": float(config.mixup), "CUTMIX": float(config.cutmix),
        "BATCH_SIZE": int(config.batch_size),
        "AUGMENT": augmentation_options(config.augment, **config.augment_overrides()),
        "CLASS_WEIGHTS": config.class_weights, "EARLY_STOPPING": int(config.early_stopping),
        "SEED": int(config.seed), "VAL_SPLIT": float(config.val_split), "TEST_SPLIT": float(config.test_split),
        "SPLIT_METHOD": recorded_method(run.config()),
        "RESIZE": config.resize, "DETERMINISTIC": config.deterministic,
        "TRAIN_IN_STAGE_2": train2, "FROZEN_WEIGHTS": frozen_weights,
        "IMAGE_EXTENSIONS": sorted(IMAGE_EXTENSIONS),
        "RUN_VAL_ACCURACY": max((m["val_accuracy"] for m in run.metrics() if m.get("val_accuracy") is not None),
                                default=None),
        "RUN_TEST_ACCURACY": (run.evaluation() or {}).get("accuracy") if (run.evaluation() or {}).get("split") == "test" else None,
    }
    if config.backbone_file:
        values.update(BACKBONE_FILE=str(Path(config.backbone_file).expanduser()), BACKBONE_FILE_SHA256=recorded)
    else:
        weights = config.weights if config.weights in ("imagenet", "none", None) else str(config.weights)
        values.update(BACKBONE=config.backbone, WEIGHTS=weights or "none")
    return values


def _check_backbone_file(path: Path, provenance: dict) -> str:
    """The SHA-256 the run recorded for its backbone file, once the file is checked to be there,
    unchanged, and a model file (not a SavedModel folder)."""
    from ..backbones.source import file_sha256

    if path.is_dir() or provenance.get("kind") == "savedmodel":
        raise OptionError("format", "{option} code writes runs on a catalog backbone or a .keras/.h5 model file; this "
                          f"run's backbone is a SavedModel folder ({path.name}), which plain Keras wraps as a "
                          "frozen TFSMLayer it cannot cut. Export the model instead ({option} savedmodel or tflite).")
    if not path.is_file():
        raise TLCoreError(f"The run's backbone file {path} is gone: the script is written from its layers "
                          "(the cut, what trains in stage 2). Put the file back at that path and export again.")
    digest = file_sha256(path)
    recorded = provenance.get("sha256") or digest
    if digest != recorded:
        raise TLCoreError(f"The backbone file {path} changed since the run (its SHA-256 differs from the one "
                          "in config.json), so a script written from it would not rebuild this run. Put back "
                          "the file the run started from and export again.")
    return recorded


def render(values: dict) -> str:
    """The script's text for `script_values`.

    Every value from the run (names, paths, classes, numbers) goes into the script as a Python
    literal (`repr` through `pprint`), among the constants and nowhere else: never inside the
    docstring, a comment or an f-string, where a name that closes the docstring would be
    code. The placeholders are filled in one pass, so a value that looks like one stays text.
    """
    from .codegen_template import BACKBONES, SCRIPT

    kind = BACKBONES["file" if values.get("BACKBONE_FILE") else "catalog"]
    names = ("BACKBONE_FILE", "BACKBONE_FILE_SHA256") if values.get("BACKBONE_FILE") else ("BACKBONE", "WEIGHTS")
    consts = "\n".join(f"{k} = {pprint.pformat(values.get(k), width=100, compact=True, sort_dicts=False)}" for k in (
        "RUN_ID", "RUN_VAL_ACCURACY", "RUN_TEST_ACCURACY",
        *names, "INPUT_SIZE", "PREPROCESSING", "CUT_LAYER", "CLASSES", "POOLING", "DENSE",
        "DROPOUT", "HEAD_EPOCHS", "FINE_TUNE_EPOCHS", "LR", "FINE_TUNE_LR", "OPTIMIZER", "WEIGHT_DECAY", "SCHEDULE",
        "WARMUP_EPOCHS", "LABEL_SMOOTHING", "MIXUP", "CUTMIX", "BATCH_SIZE",
        "AUGMENT", "CLASS_WEIGHTS", "EARLY_STOPPING", "SEED", "VAL_SPLIT", "TEST_SPLIT", "SPLIT_METHOD", "RESIZE",
        "DETERMINISTIC", "TRAIN_IN_STAGE_2", "FROZEN_WEIGHTS", "IMAGE_EXTENSIONS"))
    started = ("It starts from the saved model in BACKBONE_FILE (--backbone-file).\n"
               if values.get("BACKBONE_FILE") else "")
    header = ('"""Train the model of a TL Studio run (RUN_ID below) with plain Keras.\n\n'
              f"Usage: python {{this file}} DATA {kind['usage']} [--epochs-scale X] [--out model.keras]\n\n"
              f"DATA is a folder with one sub-folder per class, or train/ validation/ test/ folders.\n{started}"
              "The run's validation and test accuracy are RUN_VAL_ACCURACY and RUN_TEST_ACCURACY below.\n"
              'Needs keras, tensorflow, numpy and Pillow only.\n"""\n')
    parts = {"CONSTANTS": consts, "SPLITS": _split_source(), "IMAGES": _images_source(),
             "RECIPE": _recipe_source(), "BACKBONE": kind["code"].replace("#FLATTEN#", _flatten_source()),
             "SOURCE_ARGUMENT": kind["argument"], "SOURCE": kind["source"]}
    return header + _PLACEHOLDER.sub(lambda m: parts[m.group(1)], SCRIPT)


_PLACEHOLDER = re.compile("#(" + "|".join(("CONSTANTS", "SPLITS", "IMAGES", "RECIPE", "BACKBONE",
                                           "SOURCE_ARGUMENT", "SOURCE")) + ")#")


def _recipe_source() -> str:
    """The studio's optimizer, schedule, loss and augmentation functions, copied as they are."""
    import inspect

    from ..data import augment as data
    from ..data import outputs
    from ..recipe import optimizer as recipe

    consts = "\n".join(f"{k} = {getattr(recipe, k)!r}" for k in ("ONECYCLE_WARMUP", "ONECYCLE_DIV", "ONECYCLE_FINAL"))
    functions = (recipe.make_optimizer, recipe.learning_rate, recipe.steps_per_epoch, outputs.output_units,
                 outputs.soft_targets, outputs.targets, outputs.loss, data.augmentation_layers, recipe.mixer)
    return consts + "\n\n\n" + "\n\n".join(inspect.getsource(f) for f in functions).rstrip("\n")


def _flatten_source() -> str:
    """The studio's own flattening of nested models (tlcore/backbones/source.py), copied as it is."""
    import inspect

    from ..backbones.source import flatten_model

    return inspect.getsource(flatten_model).rstrip("\n")


def _images_source() -> str:
    """The studio's one pixel path (`images.load_image`) and everything it calls in its module,
    copied as it is: the script reads an image exactly as training, predict and serve do."""
    from ..data import images

    return _module_imports(images) + "\n\n" + _closure_source(images, images.load_image)


def _module_imports(module) -> str:
    """The module's own top-level imports of the standard library and third parties (never tlcore's),
    so that the copied functions find every name they use."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))
    lines = [ast.unparse(node) for node in tree.body
             if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0
                                                  and node.module != "__future__")]
    return "\n".join(lines)


def _closure_source(module, *roots) -> str:
    """The source of `roots` and of every function, class and constant of `module` they use,
    constants first, then definitions in the module's order. Names imported into `module`
    (Image, np, Path, ...) are left to the script's own imports."""
    import inspect
    import types

    def names(code: types.CodeType) -> set[str]:
        out = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                out |= names(const)
        return out

    def used(obj) -> set[str]:
        if inspect.isclass(obj):
            return set().union(*(names(f.__code__) for f in vars(obj).values() if inspect.isfunction(f)))
        return names(obj.__code__)

    found: dict[str, object] = {}
    todo = list(roots)
    while todo:
        obj = todo.pop()
        for name in sorted(used(obj)):
            value = getattr(module, name, None)
            if name in found or value is None or name.startswith("__"):
                continue
            if (inspect.isfunction(value) or inspect.isclass(value)) and value.__module__ == module.__name__:
                found[name] = value
                todo.append(value)
            elif isinstance(value, (int, float, str, tuple, frozenset)) and not isinstance(value, bool):
                found[name] = value
    for root in roots:
        found[root.__name__] = root
    consts = [f"{k} = {v!r}" for k, v in found.items() if not callable(v)]
    defs = sorted((v for v in found.values() if callable(v)), key=lambda v: inspect.getsourcelines(v)[1])
    return "\n".join(sorted(consts)) + "\n\n\n" + "\n\n".join(inspect.getsource(v) for v in defs).rstrip("\n")


def _split_source() -> str:
    """The studio's own split functions (tlcore/data/splits.py), copied into the script as they are."""
    import inspect

    from ..data import splits

    return (f"SPLIT_METHODS = {splits.SPLIT_METHODS!r}\nDEFAULT_VAL_SPLIT = {splits.DEFAULT_VAL_SPLIT!r}  # of train/ "
            "without validation/\n\n\n") + "\n\n".join(
        inspect.getsource(f) for f in (splits._file_draw, splits._shuffled, splits.stratified_split)).rstrip("\n")


def script_text(run_dir, runs_dir=None) -> str:
    """The standalone training script of a run, as text (the Runs page shows it)."""
    return render(script_values(run_dir, runs_dir))


def write_script(run_dir, out, runs_dir=None) -> Path:
    out = Path(out).expanduser()
    text = render(script_values(run_dir, runs_dir))
    tmp = out.with_name(f".{out.name}.partial")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out
