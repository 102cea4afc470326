"""`tlcore` / `python -m tlcore`: the command line, exactly as DESIGN.md's contract.

With --json a command prints one JSON document on stdout and nothing else: everything
TensorFlow, Keras or the engine would print goes to stderr. Exit 0 on success, 1 on
failure (one-line reason on stderr; `{"error": ...}` on stdout with --json), 2 on usage errors.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from typing import Any

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


TTA = ("none", "flip", "flip+crops")  # predict.TTA_MODES (not imported here: the parser stays light)
TTA_HELP = ("test-time augmentation: average the probabilities over the image and its mirror image "
            "(flip, 2 passes), plus a centre crop and its mirror image (flip+crops, 4 passes); the model "
            "is not changed")
RUN = "a run folder, or a run id in the runs folder"
RUNS_DIR = "the runs folder (default: the home's runs/)"


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
    p = cmd("stop", "ask a running training to stop (it saves its model)")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("evaluate", "score a run on its test split (or validation)")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("--data", help="another dataset with the same classes (default: the run's own)")
    p.add_argument("--split", choices=["test", "validation"], help="default: test, else validation")
    p.add_argument("--tta", default="none", choices=TTA, help=TTA_HELP)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("predict", "classify images or folders of images with a run's model")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("images", nargs="+", help="image files or folders (walked)")
    p.add_argument("--top-k", dest="top_k", type=int, default=5, help="classes shown per image")
    p.add_argument("--csv", help="also write the results as a CSV table here")
    p.add_argument("--tta", default="none", choices=TTA, help=TTA_HELP)
    p.add_argument("--runs-dir", dest="runs_dir", help=RUNS_DIR)
    p = cmd("export", "export a run's model as .keras, SavedModel or TFLite")
    p.add_argument("run_dir", help=RUN)
    p.add_argument("--format", required=True, choices=["keras", "savedmodel", "tflite"], help="the file format")
    p.add_argument("--quantize", default="none", choices=["none", "float16", "int8"], help="TFLite only")
    p.add_argument("--out", required=True, help="a file (keras, tflite) or a folder (savedmodel)")
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
    from .catalog import CATALOG
    from .latency import known, measure

    if a.measure is not None:
        def progress(i, n, name):
            if name:
                print(f"measuring {name} ({i + 1}/{n})", file=sys.stderr, flush=True)

        return measure(a.measure, a.input_size, on_progress=progress)
    times = known(a.input_size)
    return [{**b.to_dict(), "ms_batch1": times.get(b.name, {}).get("ms_batch1"),
             "ms_batch32": times.get(b.name, {}).get("ms_batch32")} for b in CATALOG.values()]


def _cmd_layers(a):
    from .backbones import build_backbone
    from .layers import layer_table

    if not a.backbone and not a.backbone_file:
        raise UsageError("tlcore layers: give a BACKBONE name or --backbone-file PATH")
    if a.backbone_file:
        from .source import load_backbone_file

        src = load_backbone_file(a.backbone_file)
        return [row.to_dict() for row in layer_table(src.backbone, src.paths)]
    model = build_backbone(a.backbone, a.input_size, weights=None)
    return [row.to_dict() for row in layer_table(model)]


def _cmd_import(a):
    from .importer import import_dataset

    return import_dataset(a.source, a.datasets_dir, a.name)


def _cmd_scan(a):
    from .data import scan

    report = scan(a.data, a.val_split, a.test_split, a.seed).report()
    return {k: report[k] for k in ("layout", "classes", "counts", "problems", "warnings", "path")}


_CONTROL = {"command", "json", "verbose", "runs_dir", "run_id", "resume", "config_file", "queue", "classes",
            "stage", "min_lr", "max_lr", "steps"}


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
        return train(TrainConfig(), runs_dir=a.runs_dir, resume=a.resume, queue=a.queue, announce=announce)
    config = TrainConfig.from_dict(train_options(a))
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
    from .runs import RunStore

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

    return predict(a.run_dir, a.images, a.top_k, a.csv, a.runs_dir, tta=a.tta)


def _cmd_export(a):
    from .export import export_run

    return export_run(a.run_dir, a.format, a.out, a.quantize, a.runs_dir)


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
            "scan": _cmd_scan, "train": _cmd_train, "plan": _cmd_plan, "presets": _cmd_presets, "calibrate": _cmd_calibrate, "explain": _cmd_explain, "lr-find": _cmd_lr_find, "demo-data": _cmd_demo_data, "stop": _cmd_stop, "evaluate": _cmd_evaluate,
            "predict": _cmd_predict, "export": _cmd_export, "runs": _cmd_runs, "cache": _cmd_cache}


# --- output -----------------------------------------------------------------------

def _human(result: Any) -> str:
    if isinstance(result, list) and result and set(result[0]) == {"name", "description", "options"}:
        import textwrap  # tlcore presets: readable in 80 columns

        return "\n\n".join(
            f"{p['name']}\n" + textwrap.fill(p["description"], 78, initial_indent="  ", subsequent_indent="  ")
            + "\n" + textwrap.fill(" ".join(_as_flags(p["options"])), 78, initial_indent="  options: ",
                                   subsequent_indent="    ")
            for p in result)
    if isinstance(result, dict) and {"layers", "stages", "warnings"} <= set(result):  # tlcore plan
        lines = [_human(result["layers"]), ""]
        for stage, info in result["stages"].items():
            lines.append(f"stage {stage}: {info['epochs']} epochs, {info['trainable']:,} trainable, "
                         f"{info['non_trainable']:,} non-trainable" + (f" ({info['reason']})" if info.get("reason") else ""))
        lines += [f"warning: {w}" for w in result["warnings"]]
        return "\n".join(lines)
    if isinstance(result, list):
        if result and isinstance(result[0], dict):
            keys = [k for k in result[0] if not isinstance(result[0][k], (list, dict))]
            rows = [[_cell(r.get(k)) for k in keys] for r in result]
            widths = [max(len(k), *(len(r[i]) for r in rows)) for i, k in enumerate(keys)]
            lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths))]
            lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows]
            extra = [k for k in result[0] if k not in keys]
            if extra == ["top"]:
                lines = [f"{r['image']}: " + (", ".join(f"{t['label']} {t['probability']:.3f}"
                                                        for t in r["top"]) or r.get("error", ""))
                         for r in result]
            return "\n".join(lines)
        return "\n".join(_cell(r) for r in result)
    if isinstance(result, dict):
        return "\n".join(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else _cell(v)}"
                         for k, v in result.items())
    return str(result)


def _as_flags(options: dict) -> list[str]:
    out = []
    for key, value in options.items():
        if value is False or value == []:
            continue
        name = "--" + key.replace("_", "-")
        out.append(name if value is True else f"{name} {' '.join(map(str, value)) if isinstance(value, list) else value}")
    return out


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send everything written to fd 1 (Python, Keras, TensorFlow's C++) to stderr meanwhile."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield os.fdopen(os.dup(saved), "w", encoding="utf-8")
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    want_json = "--json" in argv
    from .console import quiet_stderr

    with quiet_stderr("--verbose" not in argv), _stdout_to_stderr() as out:
        _Parser.help_stream = out
        try:
            code, payload = _run(argv)
        finally:
            _Parser.help_stream = None
        if payload is None:  # --help was printed
            pass
        elif want_json:
            out.write(json.dumps(payload, ensure_ascii=False, default=_json_default) + "\n")
        elif code == 0:
            out.write(_human(payload) + "\n")
        out.flush()
        out.close()
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
