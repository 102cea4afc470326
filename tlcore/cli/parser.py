"""The command line's parser: every command, its arguments and their help (`cli` runs them).

Kept light: nothing here imports TensorFlow; `TrainConfig`'s fields become `train`'s flags. No
choice list or default is typed here: each comes from the module that owns it (`TrainConfig`,
export, tflite, predict, evaluate, search, demo, lr-find), or a function's own default (`_default`).
"""
from __future__ import annotations

import argparse
import inspect
from typing import Any

from ..core.console import RUN, RUNS_DIR, TTA_HELP
from ..core.errors import UsageError, flag


class _Parser(argparse.ArgumentParser):
    help_stream = None  # where --help goes: the real stdout while `main` sends fd 1 to stderr

    def __init__(self, *args, **kwargs):
        from ..core.console import HelpFormatter

        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # argparse would print usage and exit; we answer per contract
        raise UsageError(f"{self.prog}: {message}")

    def print_help(self, file=None):
        super().print_help(file or _Parser.help_stream)


def _add_config_options(p: argparse.ArgumentParser, data: bool = True) -> None:
    """Every `TrainConfig` option as a flag, derived from its field: name, type, choices, help.
    Defaults are left out (SUPPRESS), so only what the user gives reaches the options."""
    from ..recipe.config import DEFAULTS, OPTIONS

    S = argparse.SUPPRESS
    if data:
        p.add_argument("data", nargs="?", default=S, help="the dataset folder")
    for f in OPTIONS:
        meta = f.metadata
        if not meta.get("cli", True):
            continue
        default = DEFAULTS.get(f.name)
        shown = "" if default in (None, False, [], "") else f" (default: {default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": S,
                                  "help": (meta.get("help") or "") + shown.replace("%", "%%")}
        if meta.get("flag"):
            kwargs["action"] = "store_true"
        else:
            for key in ("type", "choices", "nargs"):
                if meta.get(key) is not None:
                    kwargs[key] = meta[key]
            if meta.get("nargs") == "+":
                kwargs["metavar"] = "PATTERN"
            elif not meta.get("choices") and meta.get("type") in (int, float):
                kwargs["metavar"] = "N" if meta["type"] is int else "X"
        p.add_argument(flag(f.name), **kwargs)


def _default(fn, name: str) -> Any:
    """The default of `fn`'s parameter `name`: the function owns it, the flag repeats it."""
    return inspect.signature(fn).parameters[name].default


def build_parser() -> argparse.ArgumentParser:
    from ..data.demo import make_demo_dataset
    from ..evaluation.evaluate import SPLITS
    from ..recipe.config import DEFAULTS
    from ..search.tune import METRICS, SCHEDULERS, run_search
    from ..ship.export import FORMATS, export_run
    from ..ship.predict import TTA_MODES, predict
    from ..ship.tflite import IO_TYPES, QUANTIZE
    from ..training.lrfind import lr_find

    parser = _Parser(prog="tlcore", description="Transfer learning and fine-tuning of image classifiers.",
                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def cmd(name, help):
        p = sub.add_parser(name, help=help, description=help, allow_abbrev=False)
        p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        p.add_argument("--verbose", action="store_true",
                       help="also show TensorFlow's start-up messages and an export's signature listing")
        return p

    p = cmd("backbones", "list every backbone of the catalog, with ms/image here where measured")
    p.add_argument("--measure", nargs="*", metavar="NAME", help="time these backbones (all when no name is "
                   "given) on this machine: ms per image at batch 1 and 32, median after warm-up; cached")
    p.add_argument("--input-size", dest="input_size", type=int, help="measure at this size (the backbone's default)")
    p = cmd("layers", "the layer table of a backbone, with clean cut points")
    p.add_argument("backbone", nargs="?", help="a catalog backbone name (see `tlcore backbones`)")
    p.add_argument("--backbone-file", dest="backbone_file", help="a saved model (.keras/.h5) or SavedModel folder")
    p.add_argument("--input-size", dest="input_size", type=int, help="input side in pixels (the backbone's default)")
    p = cmd("import", "copy a .zip or folder into the managed datasets folder")
    p.add_argument("source", help="a .zip file or a folder with one sub-folder per class")
    p.add_argument("--datasets-dir", dest="datasets_dir", help="where managed datasets live (the home's datasets/)")
    p.add_argument("--name", help="the dataset's name there (the source's name)")
    p = cmd("scan", "check a folder dataset: classes, counts per split, problems")
    p.add_argument("data", help="the dataset folder")
    p.add_argument("--val-split", dest="val_split", type=float, default=DEFAULTS["val_split"],
                   help="validation fraction (flat layout)")
    p.add_argument("--test-split", dest="test_split", type=float, default=DEFAULTS["test_split"],
                   help="test fraction (flat layout)")
    p.add_argument("--seed", type=int, default=DEFAULTS["seed"], help="seed of the split")

    p = cmd("train", "train a classifier: head on the frozen backbone, then fine-tuning")
    _add_config_options(p)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p.add_argument("--run-id", dest="run_id", help="the run folder's name (default: time, backbone, random)")
    p.add_argument("--resume", help="continue an interrupted or stopped run from its checkpoint")
    p.add_argument("--config", dest="config_file", help="repeat a run from its config.json")
    p.add_argument("--queue", action="store_true",
                   help="wait for the machine: one training at a time, first in first out")
    p.add_argument("--twin-from-scratch", dest="twin", action="store_true",
                   help="then train the same model from random weights, to compare (JSON gains twin)")
    p.add_argument("--seeds", type=int, default=1,
                   help="train N runs, seeds seed, seed+1, ... (one group); JSON gains seeds: mean and spread")
    p.add_argument("--ensemble", type=int, default=0, metavar="K",
                   help="with --seeds N: average the K runs best on validation into one model, a run of its own")
    p.add_argument("--stage1-dir", dest="stage1_dir", metavar="FOLDER",
                   help="share stage 1 in FOLDER with runs of the same stage-1 options (a search's trials "
                        "use its stage1/): the first trains and saves it, the others load it")
    p.add_argument("--auto", action="store_true",
                   help="choose every option not given here inside --budget: probe, learning-rate finder, "
                        "successive-halving search, k-fold when validation is small (JSON gains auto)")
    p.add_argument("--budget", help="with --auto: seconds, or with m/h, e.g. 90, 10m, 1h (default 10m)")
    p = cmd("plan", "what trains in each stage, layer by layer, with parameter counts; trains nothing")
    _add_config_options(p, data=False)
    p.add_argument("--classes", type=int, default=2, help="classes of the dataset (default 2)")
    p.add_argument("--config", dest="config_file", help="the options of a run's config.json")

    cmd("presets", "the classic recipes `train --preset NAME` applies")
    p = cmd("calibrate", "fit temperature scaling on the validation split and bake it into the model")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("explain", "Grad-CAM: where the model looked, as an overlay PNG")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("image", help="the image to explain")
    p.add_argument("--out", required=True, help="the overlay PNG to write")
    p.add_argument("--class", dest="label", help="explain this class (default: the predicted one)")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("demo-data", "make the built-in demo dataset (shapes on textures), offline")
    p.add_argument("out_dir", help="the folder to write (train/validation/test inside)")
    p.add_argument("--classes", type=int, default=_default(make_demo_dataset, "classes"), help="how many shapes")
    p.add_argument("--per-class", dest="per_class", type=int, default=_default(make_demo_dataset, "per_class"),
                   help="images per shape")
    p.add_argument("--seed", type=int, default=_default(make_demo_dataset, "seed"), help="seed of the drawing")
    p = cmd("lr-find", "learning-rate range test on a setup; suggests a rate")
    _add_config_options(p)
    p.add_argument("--stage", type=int, default=_default(lr_find, "stage"), choices=[1, 2],
                   help="1: the head alone; 2: fine-tuning")
    p.add_argument("--min-lr", dest="min_lr", type=float, default=_default(lr_find, "min_lr"),
                   help="the first rate tried")
    p.add_argument("--max-lr", dest="max_lr", type=float, default=_default(lr_find, "max_lr"),
                   help="the last rate tried")
    p.add_argument("--steps", type=int, default=_default(lr_find, "steps"), help="batches, one per rate")
    p = cmd("probe", "linear probes: validation accuracy of a linear classifier at each cut")
    _add_config_options(p)
    p.add_argument("--cuts", nargs="+", metavar="LAYER", help="layers to probe (default: block ends)")
    p = cmd("audit", "data health on backbone features: map, label issues, near-duplicates, outliers")
    _add_config_options(p)
    p = cmd("stop", "ask a running training (or a search's or an auto mode's folder: all its trials) to stop")
    p.add_argument("run_dir", help=RUN + " (or a search's folder)")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("evaluate", "score a run on its test split (or validation)")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("--data", help="another dataset with the same classes (default: the run's own)")
    p.add_argument("--split", choices=SPLITS, help="default: test, else validation")
    p.add_argument("--tta", default=_default(predict, "tta"), choices=TTA_MODES, help=TTA_HELP)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("predict", "classify images, folders of images or videos with a run's model (or --imagenet BACKBONE)")
    p.add_argument("run_dir", help=RUN + " (with --imagenet: the first image)")
    p.add_argument("images", nargs="*", help="image files, folders (walked) or video files")
    p.add_argument("--imagenet", metavar="BACKBONE", help="the untouched ImageNet model of BACKBONE, no run")
    p.add_argument("--weights", default="imagenet", help="with --imagenet: imagenet or a weights file with the top")
    p.add_argument("--top-k", dest="top_k", type=int, default=_default(predict, "top_k"), help="classes shown per image")
    p.add_argument("--csv", help="also write the results as a CSV table here")
    p.add_argument("--every", type=int, default=_default(predict, "every"), help="videos: classify every N-th frame (default 1: all)")
    p.add_argument("--smooth", type=float, metavar="SECONDS", default=_default(predict, "smooth"),
                   help="videos: a steady label: probabilities averaged over frames with this time constant "
                        "(e.g. 0.3), the label changing only after another class has led for a while; "
                        "each frame's top is then the smoothed ranking (default: off)")
    p.add_argument("--tta", default=_default(predict, "tta"), choices=TTA_MODES, help=TTA_HELP)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("export", "export a run's model (.keras, SavedModel, TFLite, ONNX, a bundle .zip) or the run as code")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="the file format (bundle: a .zip with models, labels and a model card; code: a script)")
    p.add_argument("--quantize", default=_default(export_run, "quantize"), choices=QUANTIZE,
                   help="TFLite: int8 is full-integer (calibrated on training images and augmented copies), "
                        "int8-mixed keeps the layers the quantization debugger flags in float when int8 agrees "
                        "with the float model on under 97%% of images, dynamic int8 weights only")
    p.add_argument("--io", default=_default(export_run, "io"), choices=IO_TYPES,
                   help="TFLite input/output type (int8/uint8 with --quantize int8)")
    p.add_argument("--include", help="bundle: comma-separated formats (default keras,tflite,onnx)")
    p.add_argument("--data", help="a folder of images to check the export on (and calibrate int8 on)")
    p.add_argument("--out", required=True, help="a file (keras, tflite, onnx, bundle, code) or a folder (savedmodel)")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("search", "hyperparameter search on Ray Tune: every trial a normal run")
    _add_config_options(p)
    p.add_argument("--space",
                   help="JSON file or object: option -> [choices] or {min, max, log, int} (required "
                        "unless --resume)")
    p.add_argument("--resume", metavar="SEARCH_DIR",
                   help="finish a stopped or killed search: its unfinished trials run (continue) now")
    p.add_argument("--trials", type=int, default=_default(run_search, "trials"), help="random points to try")
    p.add_argument("--grid", action="store_true", help="every combination of the choices once")
    p.add_argument("--seeds", type=int, default=_default(run_search, "seeds"), help="runs per point, seeds seed, seed+1, ...")
    p.add_argument("--metric", default=_default(run_search, "metric"), choices=METRICS,
                   help="what the search maximises (val_loss: minimises)")
    p.add_argument("--scheduler", default=_default(run_search, "scheduler"), choices=SCHEDULERS,
                   help="asha stops weak trials early")
    p.add_argument("--address", help="an existing Ray cluster (default: this machine)")
    p.add_argument("--max-concurrent", dest="max_concurrent", type=int,
                   help="trials at once (default: from cores and free memory: 1 here, where a trial uses "
                        "every core; one per GPU on a cluster; search.json's concurrency says why)")
    p.add_argument("--config", dest="config_file", help="the fixed options from a run's config.json")
    p.add_argument("--search-id", dest="search_id", help="the search's folder name (default: time and a suffix)")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("serve", "serve a run's model (or a bundle .zip) over HTTP: POST /predict, /health, /labels, /docs")
    p.add_argument("source", metavar="RUN_OR_BUNDLE", help=RUN + ", or a bundle .zip from `export --format bundle`")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=int, default=8000, help="0 takes any free port")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every route but /health (other "
                   "local users see it in the process list: prefer --token-file or the TLCORE_TOKEN variable)")
    p.add_argument("--token-file", dest="token_file", metavar="PATH",
                   help="read the token from this file (chmod 600); without --token or --token-file, the "
                        "TLCORE_TOKEN environment variable is the token if set")
    p.add_argument("--max-image-mb", dest="max_image_mb", type=float, default=20,
                   help="refuse an upload larger than this (413)")
    p.add_argument("--max-body", dest="max_body_mb", type=float, default=64, metavar="MB",
                   help="refuse a request whose whole body is larger than this many MB (413), counted as it "
                        "streams (default 64)")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("cache", "the cache of decoded images and backbone features (at most TLCORE_CACHE_MAX, "
                     "default 6G): size and entries, or --clear")
    p.add_argument("--clear", action="store_true", help="delete every entry")
    p = cmd("ensemble", "average finished runs into one model, saved and scored as a run of its own")
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="the member runs (2 or more; same classes, input size, test images)")
    p.add_argument("--best", type=int, metavar="K", help="only the K of them best on validation")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p.add_argument("--run-id", dest="run_id", help="the ensemble run's folder name")
    p.add_argument("--name", help="a label for the ensemble run")

    p = cmd("runs", "list the runs in the store, or delete some")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p.add_argument("--delete", nargs="+", metavar="RUN_ID", help="delete these runs first")
    p.add_argument("--prune", nargs="+", metavar="STATE", choices=["failed", "stopped", "interrupted"],
                   help="delete every run in these states (failed, stopped, interrupted) and list what "
                        "was removed")
    return parser
