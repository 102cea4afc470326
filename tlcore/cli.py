"""`tlcore` / `python -m tlcore`: the command line, exactly as DESIGN.md's contract.

With --json a command prints one JSON document on stdout and nothing else: everything
TensorFlow, Keras or the engine would print goes to stderr. Exit 0 on success, 1 on
failure (one-line reason on stderr; `{"error": ...}` on stdout with --json), 2 on usage errors.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from .console import RUN, RUNS_DIR, TTA, TTA_HELP, human_text, stdout_to_stderr
from .errors import OptionError, TLCoreError, UsageError, flag


class _Parser(argparse.ArgumentParser):
    help_stream = None  # where --help goes: the real stdout while `main` sends fd 1 to stderr

    def __init__(self, *args, **kwargs):
        from .console import HelpFormatter

        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message):  # argparse would print usage and exit; we answer per contract
        raise UsageError(f"{self.prog}: {message}")

    def print_help(self, file=None):
        super().print_help(file or _Parser.help_stream)


def _add_config_options(p: argparse.ArgumentParser, data: bool = True) -> None:
    """Every `TrainConfig` option as a flag, derived from its field: name, type, choices, help.
    Defaults are left out (SUPPRESS), so only what the user gives reaches the options."""
    from .config import DEFAULTS, OPTIONS

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




def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--val-split", dest="val_split", type=float, default=0.2, help="validation fraction (flat layout)")
    p.add_argument("--test-split", dest="test_split", type=float, default=0.1, help="test fraction (flat layout)")
    p.add_argument("--seed", type=int, default=42, help="seed of the split")

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
    p.add_argument("--classes", type=int, default=4, help="how many shapes")
    p.add_argument("--per-class", dest="per_class", type=int, default=150, help="images per shape")
    p.add_argument("--seed", type=int, default=0, help="seed of the drawing")
    p = cmd("lr-find", "learning-rate range test on a setup; suggests a rate")
    _add_config_options(p)
    p.add_argument("--stage", type=int, default=1, choices=[1, 2], help="1: the head alone; 2: fine-tuning")
    p.add_argument("--min-lr", dest="min_lr", type=float, default=1e-7, help="the first rate tried")
    p.add_argument("--max-lr", dest="max_lr", type=float, default=1.0, help="the last rate tried")
    p.add_argument("--steps", type=int, default=100, help="batches, one per rate")
    p = cmd("probe", "linear probes: validation accuracy of a linear classifier at each cut")
    _add_config_options(p)
    p.add_argument("--cuts", nargs="+", metavar="LAYER", help="layers to probe (default: block ends)")
    p = cmd("audit", "data health on backbone features: map, label issues, near-duplicates, outliers")
    _add_config_options(p)
    p = cmd("stop", "ask a running training (or a search's folder: all its trials) to stop")
    p.add_argument("run_dir", help=RUN + " (or a search's folder)")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("evaluate", "score a run on its test split (or validation)")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("--data", help="another dataset with the same classes (default: the run's own)")
    p.add_argument("--split", choices=["test", "validation"], help="default: test, else validation")
    p.add_argument("--tta", default="none", choices=TTA, help=TTA_HELP)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("predict", "classify images or folders of images with a run's model (or --imagenet BACKBONE)")
    p.add_argument("run_dir", help="the run (with --imagenet: the first image)")
    p.add_argument("images", nargs="*", help="image files or folders (walked)")
    p.add_argument("--imagenet", metavar="BACKBONE", help="the untouched ImageNet model of BACKBONE, no run")
    p.add_argument("--weights", default="imagenet", help="with --imagenet: imagenet or a weights file with the top")
    p.add_argument("--top-k", dest="top_k", type=int, default=5, help="classes shown per image")
    p.add_argument("--csv", help="also write the results as a CSV table here")
    p.add_argument("--tta", default="none", choices=TTA, help=TTA_HELP)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("export", "export a run's model (.keras, SavedModel, TFLite, ONNX, a bundle .zip) or the run as code")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("--format", required=True, choices=["keras", "savedmodel", "tflite", "onnx", "bundle", "code"],
                   help="the file format (code: the run as a training script)")
    p.add_argument("--quantize", default="none", choices=["none", "float16", "dynamic", "int8"],
                   help="TFLite: int8 is full-integer (calibrated on training images), dynamic int8 weights only")
    p.add_argument("--io", default="float32", choices=["float32", "int8", "uint8"],
                   help="TFLite input/output type (int8/uint8 with --quantize int8)")
    p.add_argument("--include", help="bundle: comma-separated formats (default keras,tflite,onnx)")
    p.add_argument("--data", help="a folder of images to check the export on (and calibrate int8 on)")
    p.add_argument("--out", required=True, help="a file, or a folder for savedmodel")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("search", "hyperparameter search on Ray Tune: every trial a normal run")
    _add_config_options(p)
    p.add_argument("--space", required=True,
                   help="JSON file or object: option -> [choices] or {min, max, log, int}")
    p.add_argument("--trials", type=int, default=8, help="random points to try (default 8)")
    p.add_argument("--grid", action="store_true", help="every combination of the choices once")
    p.add_argument("--seeds", type=int, default=1, help="runs per point, seeds seed, seed+1, ...")
    p.add_argument("--metric", default="val_accuracy", choices=["val_accuracy", "val_loss"],
                   help="what the search maximises (val_loss: minimises)")
    p.add_argument("--scheduler", default="none", choices=["none", "asha"],
                   help="asha stops weak trials early")
    p.add_argument("--address", help="an existing Ray cluster (default: this machine)")
    p.add_argument("--max-concurrent", dest="max_concurrent", type=int,
                   help="trials at once (default: 1 here, one per GPU on a cluster)")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p.add_argument("--config", dest="config_file", help="the fixed options from a run's config.json")
    p.add_argument("--search-id", dest="search_id", help="the search's folder name (default: time and a suffix)")
    p = cmd("serve", "serve a run's model (or a bundle .zip) over HTTP: POST /predict, /health, /labels, /docs")
    p.add_argument("source", metavar="RUN_OR_BUNDLE", help="a run folder or id, or a bundle .zip")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=int, default=8000, help="0 takes any free port")
    p.add_argument("--token", help="require 'Authorization: Bearer TOKEN' on every route but /health")
    p.add_argument("--max-image-mb", dest="max_image_mb", type=float, default=20,
                   help="refuse larger uploads (413)")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("cache", "the cache of decoded images and backbone features (at most TLCORE_CACHE_MAX, "
                     "default 6G): size and entries, or --clear")
    p.add_argument("--clear", action="store_true", help="delete every entry")
    p = cmd("runs", "list the runs in the store, or delete some")
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p.add_argument("--delete", nargs="+", metavar="RUN_ID", help="delete these runs first")
    return parser


# --- commands ---------------------------------------------------------------------

def _cmd_backbones(a):
    from .latency import catalog_report

    return catalog_report(a.measure, a.input_size)


def _cmd_layers(a):
    from .backbones import build_backbone, check_input_size
    from .catalog import get_backbone
    from .layers import cached_layer_table, layer_table

    if not a.backbone and not a.backbone_file:
        raise UsageError("tlcore layers: give a BACKBONE name or --backbone-file PATH")
    if a.backbone_file:
        from .source import load_backbone_file

        src = load_backbone_file(a.backbone_file)
        return [row.to_dict() for row in layer_table(src.backbone, src.paths)]
    name = get_backbone(a.backbone).name
    size = check_input_size(name, a.input_size)
    return [row.to_dict() for row in cached_layer_table(name, size, lambda: build_backbone(name, size, weights=None))]


def _cmd_import(a):
    from .importer import import_dataset

    return import_dataset(a.source, a.datasets_dir, a.name)


def _cmd_scan(a):
    from .data import scan

    report = scan(a.data, a.val_split, a.test_split, a.seed).report()
    return {k: report[k] for k in ("layout", "classes", "counts", "problems", "warnings", "path")}


_CONTROL = {"command", "json", "verbose", "runs_dir", "run_id", "resume", "config_file", "queue", "twin", "classes",
            "stage", "min_lr", "max_lr", "steps", "cuts", "space", "trials", "grid", "seeds", "metric",
            "scheduler", "address", "max_concurrent", "search_id"}


def train_options(a: argparse.Namespace) -> dict:
    """TrainConfig fields from defaults < --preset < --config file < explicit options, then the
    from-scratch default for --weights none (`config.resolve_options`)."""
    from .config import resolve_options

    given = {k: v for k, v in vars(a).items() if k not in _CONTROL}
    options: dict[str, Any] = {}
    if getattr(a, "config_file", None):
        from .jsonio import read_json

        cfg = read_json(a.config_file)
        if not isinstance(cfg, dict) or not isinstance(cfg.get("options", cfg), dict):
            raise TLCoreError(f"--config {a.config_file}: not a readable config.json.")
        options.update(cfg.get("options", cfg))  # a recorded preset is already applied there
    options.update(given)
    return resolve_options(options, set(options), preset="preset" in given)


def _cmd_train(a):
    from .config import TrainConfig
    from .train import train

    def announce(path):
        print(f"run_dir: {path}", file=sys.stderr, flush=True)

    if a.resume:
        if a.twin:
            raise UsageError("tlcore train: --twin-from-scratch starts new runs; it does not go with --resume")
        return train(TrainConfig(), runs_dir=a.runs_dir, resume=a.resume, queue=a.queue, announce=announce)
    config = TrainConfig.from_dict(train_options(a))
    if a.twin:
        from .twin import train_with_twin

        return train_with_twin(config, runs_dir=a.runs_dir, run_id=a.run_id, queue=a.queue, announce=announce)
    return train(config, runs_dir=a.runs_dir, run_id=a.run_id, queue=a.queue, announce=announce)


def _cmd_plan(a):
    from .config import TrainConfig
    from .plan import make_plan

    config = TrainConfig.from_dict(train_options(a))
    return make_plan(config.resolved(), a.classes).to_dict()  # resolved() checks, without data here


def _cmd_demo_data(a):
    from .demo import make_demo_dataset

    return make_demo_dataset(a.out_dir, a.classes, a.per_class, a.seed)


def _cmd_lr_find(a):
    from .config import TrainConfig
    from .lrfind import lr_find

    return lr_find(TrainConfig.from_dict(train_options(a)), a.stage, a.min_lr, a.max_lr, a.steps)


def _cmd_probe(a):
    from .config import TrainConfig
    from .probe import probe

    return probe(TrainConfig.from_dict(train_options(a)), a.cuts)


def _cmd_audit(a):
    from .audit import audit
    from .config import TrainConfig

    return audit(TrainConfig.from_dict(train_options(a)))


def _cmd_explain(a):
    from .explain import explain

    return explain(a.run_dir, a.image, a.out, a.label, a.runs_dir)


def _cmd_calibrate(a):
    from .calibrate import calibrate_run

    return calibrate_run(a.run_dir, a.runs_dir)


def _cmd_presets(a):
    from .presets import list_presets

    return [p.to_dict() for p in list_presets()]


def _cmd_stop(a):
    from pathlib import Path

    from .runs import RunStore

    if (Path(a.run_dir) / "search.json").exists():
        from .search import request_stop

        return request_stop(a.run_dir)

    run = RunStore(a.runs_dir).get(a.run_dir)
    state = run.state()
    if state in ("queued", "running"):
        run.request_stop()
        return {"run_dir": str(run.path), "stop_requested": True, "state": state}
    return {"run_dir": str(run.path), "stop_requested": False, "state": state}


def _cmd_evaluate(a):
    from .evaluate import evaluate_run

    return evaluate_run(a.run_dir, a.data, a.split, a.runs_dir, tta=a.tta)


def _cmd_predict(a):
    from .predict import predict

    if a.imagenet:
        from .imagenet import classify_files

        return classify_files(a.imagenet, [a.run_dir, *a.images], a.weights, a.top_k, a.csv)
    if not a.images:
        raise UsageError("tlcore predict: give a RUN_DIR and at least one IMAGE_OR_FOLDER (or --imagenet BACKBONE)")
    return predict(a.run_dir, a.images, a.top_k, a.csv, a.runs_dir, tta=a.tta)


_SILENT = object()  # a command that printed its JSON itself (serve, once it is ready)
_STDOUT: list = []  # the real stdout while a command runs


def _cmd_serve(a):
    from .serve import serve

    def ready(info):
        if a.json:
            _STDOUT[-1].write(json.dumps(info) + "\n")
            _STDOUT[-1].flush()
        print(f"Serving {a.source} on {info['url']} (docs: {info['url']}/docs); Ctrl+C stops it.",
              file=sys.stderr, flush=True)

    serve(a.source, a.host, a.port, a.token, a.max_image_mb, a.runs_dir, ready)
    return _SILENT


def _cmd_export(a):
    from .export import export_run

    return export_run(a.run_dir, a.format, a.out, a.quantize, a.runs_dir, a.io, a.include, a.data)


def _cmd_search(a):
    from .search import run_search

    return run_search(train_options(a), a.space, a.trials, a.grid, a.seeds, a.metric, a.scheduler,
                      a.address, a.max_concurrent, a.runs_dir, a.search_id)


def _cmd_cache(a):
    from .cache import cache_report

    return cache_report(clear_all=a.clear)


def _cmd_runs(a):
    from .runs import RunStore

    store = RunStore(a.runs_dir)
    for rid in a.delete or []:
        store.delete(rid)
    return [r.summary() for r in store.runs()]


COMMANDS = {"backbones": _cmd_backbones, "layers": _cmd_layers, "import": _cmd_import,
            "scan": _cmd_scan, "train": _cmd_train, "plan": _cmd_plan, "presets": _cmd_presets, "calibrate": _cmd_calibrate, "explain": _cmd_explain, "lr-find": _cmd_lr_find, "probe": _cmd_probe, "audit": _cmd_audit, "demo-data": _cmd_demo_data, "stop": _cmd_stop, "evaluate": _cmd_evaluate,
            "predict": _cmd_predict, "export": _cmd_export, "serve": _cmd_serve, "runs": _cmd_runs, "cache": _cmd_cache,
            "search": _cmd_search}


# --- output -----------------------------------------------------------------------

def _human(result: Any) -> str:
    if isinstance(result, dict) and {"embedding", "label_issues"} <= set(result):  # tlcore audit
        from .audit import report_text

        return report_text(result)
    return human_text(result)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    want_json = "--json" in argv
    from .console import quiet_stderr

    with quiet_stderr("--verbose" not in argv), stdout_to_stderr() as out:
        _Parser.help_stream = out
        _STDOUT[:] = [out]
        try:
            code, payload = _run(argv)
        finally:
            _Parser.help_stream = None
        if payload is None or payload is _SILENT:  # --help was printed, or the command printed itself
            pass
        elif want_json:
            out.write(json.dumps(payload, ensure_ascii=False, default=_json_default) + "\n")
        elif code == 0:
            out.write(_human(payload) + "\n")
        out.flush()
        out.close()
    if "tensorflow" in sys.modules and os.environ.get("TF_CONFIG"):
        from .device import cluster

        if cluster():  # everything is written; TensorFlow's multi-worker teardown would wait ~30 s for peers
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


def _json_default(obj):
    from .jsonio import _default

    return _default(obj)


def _run(argv: list[str]) -> tuple[int, Any]:
    try:
        args = build_parser().parse_args(argv)
        return 0, COMMANDS[args.command](args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0), None
    except UsageError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return 2, {"error": str(exc)}
    except TLCoreError as exc:
        text = exc.phrased(flag(exc.option)) if isinstance(exc, OptionError) else str(exc)
        print(f"error: {text}", file=sys.stderr)
        return 1, {"error": text}
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 1, {"error": "interrupted"}
    except Exception as exc:  # a bug: still one line and a JSON answer, traceback to stderr
        import traceback

        traceback.print_exc(file=sys.stderr)
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        reason = f"internal error ({type(exc).__name__}): {first}"
        print(f"error: {reason}", file=sys.stderr)
        return 1, {"error": reason}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
