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

from ..core.console import human_text, stdout_to_stderr
from ..core.errors import OptionError, TLCoreError, UsageError, flag
from .parser import _Parser, build_parser


# --- commands ---------------------------------------------------------------------

def _cmd_backbones(a):
    from ..backbones.latency import catalog_report

    return catalog_report(a.measure, a.input_size)


def _cmd_layers(a):
    from ..backbones.build import build_backbone, check_input_size
    from ..backbones.catalog import get_backbone
    from ..backbones.layers import cached_layer_table, layer_table

    if not a.backbone and not a.backbone_file:
        raise UsageError("tlcore layers: give a BACKBONE name or --backbone-file PATH")
    if a.backbone_file:
        from ..backbones.source import load_backbone_file

        src = load_backbone_file(a.backbone_file)
        return [row.to_dict() for row in layer_table(src.backbone, src.paths)]
    name = get_backbone(a.backbone).name
    size = check_input_size(name, a.input_size)
    return [row.to_dict() for row in cached_layer_table(name, size, lambda: build_backbone(name, size, weights=None))]


def _cmd_import(a):
    from ..data.importer import import_dataset

    return import_dataset(a.source, a.datasets_dir, a.name)


def _cmd_scan(a):
    from ..api import scan

    return dict(scan(a.data, a.val_split, a.test_split, a.seed))


_CONTROL = {"command", "json", "verbose", "runs_dir", "run_id", "resume", "config_file", "queue", "twin", "classes",
            "stage", "min_lr", "max_lr", "steps", "cuts", "space", "trials", "grid", "seeds", "metric",
            "scheduler", "address", "max_concurrent", "search_id", "ensemble", "stage1_dir", "auto", "budget"}


def train_options(a: argparse.Namespace) -> dict:
    """TrainConfig fields from defaults < --preset < --config file < explicit options, then the
    from-scratch default for --weights none (`config.options_from`, as the Python API does)."""
    from ..recipe.config import options_from

    given = {k: v for k, v in vars(a).items() if k not in _CONTROL}
    return options_from(given, getattr(a, "config_file", None))


def backbone_note(a: argparse.Namespace) -> str | None:
    """The warning for a --backbone that matched a catalog name only when case is ignored."""
    from ..backbones.catalog import inexact_match

    match = inexact_match(a.backbone) if isinstance(getattr(a, "backbone", None), str) else None
    if match is None:
        return None
    chosen, close = match
    also = f"; close names: {', '.join(close)}" if close else ""
    return (f"--backbone {a.backbone} means {chosen} (names match whatever their case){also}. "
            "Give the exact name to choose another.")


def _cmd_train(a):
    result = _train(a)
    note = backbone_note(a)  # printed on stderr before the command ran; kept with the result too
    if note and isinstance(result, dict):
        result["warnings"] = [note, *(result.get("warnings") or [])]
    return result


def _train(a):
    from ..recipe.config import TrainConfig
    from ..training.train import train

    def announce(path):
        print(f"run_dir: {path}", file=sys.stderr, flush=True)

    if a.auto or a.budget is not None:
        if not a.auto:
            raise UsageError("tlcore train: --budget goes with --auto")
        if a.resume or a.twin or a.seeds != 1 or a.ensemble:
            raise UsageError("tlcore train: --auto starts new runs; it does not go with --resume, "
                             "--twin-from-scratch, --seeds or --ensemble")
        from ..search.auto import auto_train, process_started

        given = {k: v for k, v in vars(a).items() if k not in _CONTROL}
        return auto_train(given, a.budget, a.config_file, runs_dir=a.runs_dir, run_id=a.run_id, queue=a.queue,
                          announce=announce, started=process_started())
    if a.resume:
        if a.twin or a.seeds != 1 or a.ensemble:
            raise UsageError("tlcore train: --twin-from-scratch, --seeds and --ensemble start new runs; they do "
                             "not go with --resume")
        return train(TrainConfig(), runs_dir=a.runs_dir, resume=a.resume, queue=a.queue, announce=announce)
    if a.twin and (a.seeds != 1 or a.ensemble):
        raise UsageError("tlcore train: --twin-from-scratch trains one run and its twin; it does not go with "
                         "--seeds or --ensemble")
    if a.ensemble and a.seeds == 1:
        raise UsageError(f"tlcore train: --ensemble {a.ensemble} averages runs of different seeds: give --seeds N "
                         f"too (N >= {a.ensemble}).")
    config = TrainConfig.from_dict(train_options(a))
    if a.seeds != 1:
        from ..training.seeds import train_seeds

        return train_seeds(config, a.seeds, runs_dir=a.runs_dir, run_id=a.run_id, queue=a.queue,
                           announce=announce, ensemble=a.ensemble)
    if a.twin:
        from ..training.twin import train_with_twin

        return train_with_twin(config, runs_dir=a.runs_dir, run_id=a.run_id, queue=a.queue, announce=announce)
    return train(config, runs_dir=a.runs_dir, run_id=a.run_id, queue=a.queue, announce=announce,
                 stage1_dir=getattr(a, "stage1_dir", None))


def _cmd_plan(a):
    from ..recipe.config import TrainConfig
    from ..recipe.plan import make_plan

    config = TrainConfig.from_dict(train_options(a))
    return make_plan(config.resolved(), a.classes).to_dict()  # resolved() checks, without data here


def _cmd_demo_data(a):
    from ..data.demo import make_demo_dataset

    return make_demo_dataset(a.out_dir, a.classes, a.per_class, a.seed)


def _cmd_lr_find(a):
    from ..recipe.config import TrainConfig
    from ..training.lrfind import lr_find

    return lr_find(TrainConfig.from_dict(train_options(a)), a.stage, a.min_lr, a.max_lr, a.steps)


def _cmd_probe(a):
    from ..recipe.config import TrainConfig
    from ..evaluation.probe import probe

    return probe(TrainConfig.from_dict(train_options(a)), a.cuts)


def _cmd_audit(a):
    from ..evaluation.audit import audit
    from ..recipe.config import TrainConfig

    return audit(TrainConfig.from_dict(train_options(a)))


def _cmd_explain(a):
    from ..evaluation.explain import explain

    return explain(a.run_dir, a.image, a.out, a.label, a.runs_dir)


def _cmd_calibrate(a):
    from ..evaluation.calibrate import calibrate_run

    return calibrate_run(a.run_dir, a.runs_dir)


def _cmd_presets(a):
    from ..recipe.presets import list_presets

    return [p.to_dict() for p in list_presets()]


def _cmd_stop(a):
    from pathlib import Path

    from ..run import Run

    if (Path(a.run_dir) / "auto.json").exists():  # an auto mode's folder: its search and its final run
        from ..search.auto import stop_auto

        stop_auto(a.run_dir)
        return {"auto_dir": a.run_dir, "stop_requested": True}
    if (Path(a.run_dir) / "search.json").exists():
        from ..search.record import request_stop

        return request_stop(a.run_dir)

    return Run(a.run_dir, a.runs_dir).stop()


def _cmd_evaluate(a):
    from ..evaluation.evaluate import evaluate_run

    return evaluate_run(a.run_dir, a.data, a.split, a.runs_dir, tta=a.tta)


def _cmd_predict(a):
    from ..ship.predict import predict

    if a.imagenet:
        from ..ship.imagenet import classify_files

        return classify_files(a.imagenet, [a.run_dir, *a.images], a.weights, a.top_k, a.csv)
    if not a.images:
        raise UsageError("tlcore predict: give a RUN_DIR and at least one IMAGE_OR_FOLDER (or --imagenet BACKBONE)")
    return predict(a.run_dir, a.images, a.top_k, a.csv, a.runs_dir, a.every, tta=a.tta, smooth=a.smooth)


_SILENT = object()  # a command that printed its JSON itself (serve, once it is ready)
_STDOUT: list = []  # the real stdout while a command runs


def _cmd_serve(a):
    from pathlib import Path

    from ..core.runs import RunStore
    from ..ship.limits import resolve_token

    token = resolve_token(a.token, a.token_file)  # its checks first: two tokens, an unreadable or empty file
    source = Path(a.source).expanduser()
    if not (source.is_file() and source.suffix.lower() == ".zip"):
        try:
            RunStore(a.runs_dir).get(a.source)
        except TLCoreError:
            raise TLCoreError(f"Nothing to serve at {a.source}: give a run folder (as printed by `tlcore train`), "
                              "a run id from `tlcore runs`, or a bundle .zip from `tlcore export --format "
                              "bundle`.") from None
    from ..ship.serve import serve

    def ready(info):
        if a.json:
            _STDOUT[-1].write(json.dumps(info) + "\n")
            _STDOUT[-1].flush()
        print(f"Serving {a.source} on {info['url']} (docs: {info['url']}/docs); Ctrl+C stops it.",
              file=sys.stderr, flush=True)

    serve(a.source, a.host, a.port, token, a.max_image_mb, a.runs_dir, ready, max_body_mb=a.max_body_mb)
    return _SILENT


def _cmd_export(a):
    from ..ship.export import export_run

    return export_run(a.run_dir, a.format, a.out, a.quantize, a.runs_dir, a.io, a.include, a.data)


def _cmd_search(a):
    from ..search.tune import resume_search, run_search

    if a.resume:
        return resume_search(a.resume, a.max_concurrent)
    if not a.space:
        raise UsageError("search needs --space SPACE.json (option -> choices), or --resume SEARCH_DIR "
                         "to finish an earlier search.")
    return run_search(train_options(a), a.space, a.trials, a.grid, a.seeds, a.metric, a.scheduler,
                      a.address, a.max_concurrent, a.runs_dir, a.search_id)


def _cmd_cache(a):
    from ..core.cache import cache_report

    report = cache_report(clear_all=a.clear)
    if not a.clear and not a.json:  # words: "freed" only means something after --clear
        report.pop("freed", None)
    return report


def _cmd_ensemble(a):
    from ..training.ensemble import best_runs, build_ensemble

    if a.best is not None and not 2 <= a.best <= len(a.runs):
        raise UsageError(f"tlcore ensemble: --best must be from 2 to the {len(a.runs)} runs given. Received: {a.best}")
    members = best_runs(a.runs, a.best) if a.best else a.runs
    return build_ensemble(members, runs_dir=a.runs_dir, run_id=a.run_id, name=a.name,
                          announce=lambda path: print(f"run_dir: {path}", file=sys.stderr, flush=True))


def _cmd_runs(a):
    from ..core.runs import RunStore

    store = RunStore(a.runs_dir)
    for rid in a.delete or []:
        store.delete(rid)
    if a.prune:
        removed = store.prune(a.prune)
        if not a.json:
            print(f"removed {len(removed)} {' or '.join(a.prune)} run(s)", file=sys.stderr)
        return {"removed": [{k: r[k] for k in ("run_id", "run_dir", "state", "error")} for r in removed]}
    return [r.summary() for r in store.runs()]


COMMANDS = {"backbones": _cmd_backbones, "layers": _cmd_layers, "import": _cmd_import,
            "scan": _cmd_scan, "train": _cmd_train, "plan": _cmd_plan, "presets": _cmd_presets, "calibrate": _cmd_calibrate, "explain": _cmd_explain, "lr-find": _cmd_lr_find, "probe": _cmd_probe, "audit": _cmd_audit, "demo-data": _cmd_demo_data, "stop": _cmd_stop, "evaluate": _cmd_evaluate,
            "predict": _cmd_predict, "export": _cmd_export, "serve": _cmd_serve, "runs": _cmd_runs, "cache": _cmd_cache, "ensemble": _cmd_ensemble,
            "search": _cmd_search}


# --- output -----------------------------------------------------------------------

def _human(result: Any) -> str:
    if isinstance(result, dict) and set(result) == {"removed"}:  # tlcore runs --prune
        return human_text(result["removed"]) if result["removed"] else "nothing to remove"
    if isinstance(result, dict) and {"embedding", "label_issues"} <= set(result):  # tlcore audit
        from ..evaluation.audit import report_text

        return report_text(result)
    return human_text(result)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    want_json = "--json" in argv
    from ..core.console import quiet_stderr, quiet_warnings

    quiet = "--verbose" not in argv
    with quiet_stderr(quiet), quiet_warnings(quiet), stdout_to_stderr() as out:
        _Parser.help_stream = out
        _STDOUT[:] = [out]
        try:
            code, payload = _run(argv)
        finally:
            _Parser.help_stream = None
        if payload is None or payload is _SILENT:  # --help was printed, or serve printed its own JSON
            pass
        elif want_json:
            out.write(json.dumps(payload, ensure_ascii=False, default=_json_default) + "\n")
        elif code == 0:
            out.write(_human(payload) + "\n")
        out.flush()
        out.close()
    if "tensorflow" in sys.modules and os.environ.get("TF_CONFIG"):
        from ..training.device import cluster

        if cluster():  # everything is written; TensorFlow's multi-worker teardown would wait ~30 s for peers
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    return code


def _json_default(obj):
    from ..core.jsonio import _default

    return _default(obj)


def _run(argv: list[str]) -> tuple[int, Any]:
    try:
        args = build_parser().parse_args(argv)
        note = backbone_note(args)
        if note:
            print(f"warning: {note}", file=sys.stderr, flush=True)
        return 0, COMMANDS[args.command](args)
    except SystemExit as exc:  # --help
        return int(exc.code or 0), None
    except UsageError as exc:
        print(f"usage error: {exc}", file=sys.stderr)
        return 2, {"error": str(exc)}
    except TLCoreError as exc:
        text = exc.phrased(flag) if isinstance(exc, OptionError) else str(exc)
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
