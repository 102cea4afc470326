"""Which training recipe earns the default: accuracy and time of whole `tlcore train` processes.

Each run is ``python -m tlcore train DATA --backbone MobileNetV2 --input-size 160 --weights FILE
--seed S --json`` plus a recipe's options, in a fresh home (no feature cache carried over), timed
from the parent as a whole process. The grid is run in turns: for each (seed, dataset) cell every
recipe runs once, in an order rotated from cell to cell, so load from other work on the machine
spreads over the recipes; time is reported as each recipe's ratio to the default in the same cell
(the median over cells) beside the mean seconds. Results are appended to a JSON-lines file as they
come, so a grid stopped early keeps its finished cells; ``--summary`` prints the table from it.

    python -m benchmarks.datasets /tmp/bench-data                  # the datasets (shapes, textures, clutter, polygons)
    python -m benchmarks.pretrained                                # the weights file (see there)
    python -m benchmarks.recipes /tmp/bench-data --kinds shapes,clutter,polygons --seeds 0,1,2 \\
        --recipes default,head-only,augment-none --out /tmp/recipes.jsonl
    python -m benchmarks.recipes --summary /tmp/recipes.jsonl      # the markdown table

Not run by the tests (it takes an hour); docs/RECIPES.md records its results.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ["--backbone", "MobileNetV2", "--input-size", "160"]

# name -> the options added to the base command (the default recipe adds none)
RECIPES: dict[str, list[str]] = {
    "default": [],
    "head-only": ["--fine-tune-epochs", "0"],
    "head-only-30": ["--head-epochs", "30", "--fine-tune-epochs", "0"],
    "head-30-ft-5": ["--head-epochs", "30"],
    "head-20": ["--head-epochs", "20"],
    # the speed benchmark (benchmarks.bench --epochs 30): 30 cached head epochs, nothing else
    "speed-30": ["--head-epochs", "30", "--fine-tune-epochs", "0", "--augment", "none", "--early-stopping", "0"],
    "dropout-0.5": ["--dropout", "0.5"],
    "ft-10": ["--fine-tune-epochs", "10"],
    "augment-none": ["--augment", "none"],
    "augment-strong": ["--augment", "strong"],
    "unfreeze-block_14": ["--unfreeze-from", "block_14_expand"],
    "unfreeze-block_6": ["--unfreeze-from", "block_6_expand"],
    "lr-3e-3": ["--lr", "3e-3"],
    "ft-lr-1e-5": ["--fine-tune-lr", "1e-5"],
    "patience-0": ["--early-stopping", "0"],
    # the recipe options of issue 16 point 1 (branch `recipes`), where they exist
    "cosine-warmup": ["--schedule", "cosine", "--warmup-epochs", "1"],
    "adamw": ["--optimizer", "adamw", "--weight-decay", "1e-4"],
    "label-smoothing": ["--label-smoothing", "0.1"],
    "randaugment": ["--augment", "randaugment"],
    "mixup": ["--mixup", "0.2"],
}


def default_weights() -> Path:
    from benchmarks.pretrained import default_out

    return default_out()


def run_one(data: Path, weights: Path, seed: int, extra: list[str], timeout: float = 900) -> dict:
    """One whole `tlcore train` process in a fresh home: its JSON result plus wall seconds."""
    with tempfile.TemporaryDirectory(prefix="tlcore-recipe-") as home:
        env = dict(os.environ, TLCORE_HOME=home, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
        cmd = [sys.executable, "-m", "tlcore", "train", str(data), *BASE, "--weights", str(weights),
               "--seed", str(seed), *extra, "--json"]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=home)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds (user + system) of the process: less sensitive than wall time to other work
    cpu = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"error": " | ".join(tail)[:500], "wall": round(wall, 2), "cpu": cpu}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"test_accuracy": result.get("test_accuracy"), "val_accuracy": result.get("val_accuracy"),
            "epochs": result.get("epochs"), "train_seconds": result.get("seconds"), "wall": round(wall, 2), "cpu": cpu}


def run_grid(root: Path, kinds: list[str], seeds: list[int], recipes: list[str], weights: Path,
             out: Path) -> None:
    cells = [(seed, kind) for seed in seeds for kind in kinds]
    for i, (seed, kind) in enumerate(cells):
        order = recipes[i % len(recipes):] + recipes[:i % len(recipes)]
        for name in order:
            load = os.getloadavg()[0]
            record = {"recipe": name, "kind": kind, "seed": seed, "options": RECIPES[name],
                      "load_before": round(load, 2), **run_one(root / kind, weights, seed, RECIPES[name])}
            with open(out, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps(record), file=sys.stderr, flush=True)


def summary(path: Path, baseline: str = "default") -> str:
    """A markdown table: per recipe and dataset, mean test accuracy over seeds (min-max, n);
    mean wall and CPU seconds per run; the median ratio of wall time to the baseline's in the
    same cell (same dataset and seed), and the same for CPU time where it was recorded."""
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("test_accuracy") is not None]
    recipes = list(dict.fromkeys(r["recipe"] for r in rows))
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    by = {(r["recipe"], r["kind"], r["seed"]): r for r in rows}
    lines = ["| recipe | " + " | ".join(f"{k}: test acc (min-max, n)" for k in kinds)
             + " | mean acc | wall s/run | CPU s/run | wall vs default | CPU vs default |",
             "| --- |" + " --- |" * (len(kinds) + 5)]
    for name in recipes:
        cells, means, walls, cpus, ratios, cpu_ratios = [], [], [], [], [], []
        for kind in kinds:
            runs = [r for (n, k, _), r in by.items() if n == name and k == kind]
            accs = [r["test_accuracy"] for r in runs]
            if not accs:
                cells.append("-")
                continue
            mean = statistics.mean(accs)
            means.append(mean)
            cells.append(f"{mean:.3f} ({min(accs):.2f}-{max(accs):.2f}, {len(accs)})")
            for r in runs:
                walls.append(r["wall"])
                if r.get("cpu"):
                    cpus.append(r["cpu"])
                base = by.get((baseline, kind, r["seed"]))
                if base:
                    ratios.append(r["wall"] / base["wall"])
                    if r.get("cpu") and base.get("cpu"):
                        cpu_ratios.append(r["cpu"] / base["cpu"])

        def fmt(values, pattern):
            return pattern.format(statistics.median(values)) if values else "-"

        lines.append(f"| {name} | " + " | ".join(cells) + f" | {statistics.mean(means):.3f}"
                     + f" | {statistics.mean(walls):.0f} | " + (f"{statistics.mean(cpus):.0f}" if cpus else "-")
                     + f" | {fmt(ratios, '{:.2f}x')} | {fmt(cpu_ratios, '{:.2f}x')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Accuracy and time of training recipes, in turns.")
    parser.add_argument("root", nargs="?", type=Path, help="folder with one dataset per kind "
                        "(from python -m benchmarks.datasets)")
    parser.add_argument("--kinds", default="shapes,clutter,polygons", help="comma-separated datasets")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--recipes", default="default,head-only,augment-none",
                        help=f"comma-separated, from: {', '.join(RECIPES)}")
    parser.add_argument("--weights", type=Path, default=None, help="weights file (default: the one "
                        "benchmarks.pretrained writes)")
    parser.add_argument("--out", type=Path, default=Path("recipes.jsonl"), help="JSON lines, appended")
    parser.add_argument("--summary", type=Path, default=None, help="print the table of a JSON-lines file")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary(args.summary))
        return 0
    if args.root is None:
        parser.error("give the datasets folder (or --summary FILE)")
    recipes = args.recipes.split(",")
    unknown = [r for r in recipes if r not in RECIPES]
    if unknown:
        parser.error(f"unknown recipe(s) {unknown}; choose from {', '.join(RECIPES)}")
    weights = args.weights or default_weights()
    if not weights.exists():
        parser.error(f"no weights file {weights}: run python -m benchmarks.pretrained first")
    run_grid(args.root, args.kinds.split(","), [int(s) for s in args.seeds.split(",")], recipes,
             weights.resolve(), args.out)
    print(summary(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
