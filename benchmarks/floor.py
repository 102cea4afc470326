"""`tlcore train` against its floor and the tutorials' recipe, as whole processes, in turns.

    python -m benchmarks.floor DATA --weights FILE [--epochs 30] [--rounds 3] [--size 160]
        [--backbone MobileNetV2] [--no-tutorial]

DATA has train/, validation/ and test/ folders. Each round runs, in a fresh home, `tlcore train
DATA --head-epochs E --fine-tune-epochs 0 --augment none` (30 frozen-backbone head epochs by
default, the issue's setting), the floor process (import TensorFlow/Keras, build the backbone from
the weights, read every image once, one batched forward pass: `benchmarks.bench._FLOOR`) and the
tutorials' script (`benchmarks.bench._TUTORIAL`). Running them in turns, round after round,
spreads a shared machine's load over all three. Prints each process's wall and CPU seconds and
the medians' ratios: CPU time (user + system of the process) is the robust figure on a busy machine.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks import bench


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.floor", description=__doc__.splitlines()[0])
    p.add_argument("data", type=Path, help="a dataset with train/, validation/ and test/ folders")
    p.add_argument("--weights", required=True, help="the backbone's weights file (or none)")
    p.add_argument("--epochs", type=int, default=30, help="head epochs (default 30)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of the three processes (default 3)")
    p.add_argument("--size", type=int, default=160, help="input size (default 160)")
    p.add_argument("--backbone", default="MobileNetV2", help="catalog backbone (default MobileNetV2)")
    p.add_argument("--batch-size", dest="batch_size", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--no-tutorial", action="store_true", help="leave out the (slow) tutorials' recipe")
    a = p.parse_args(argv)
    data = a.data.expanduser().resolve()
    if a.weights != "none":
        a.weights = str(Path(a.weights).expanduser().resolve())
    rows: dict[str, list[tuple]] = {"tlcore train": [], "floor": [], "tutorial": []}
    for _ in range(a.rounds):
        work = Path(tempfile.mkdtemp(prefix="tlcore-floor-"))
        try:
            home = work / "home"
            ours = bench.train_process(data, home, work, a, "tlcore train", "--head-epochs", str(a.epochs),
                                       "--fine-tune-epochs", "0")
            rows["tlcore train"].append((ours["wall"], ours["cpu"], ours["result"].get("test_accuracy")))
            floor = bench.floor_process(data, home, work, a)
            rows["floor"].append((floor["wall"], floor["cpu"], None))
            if not a.no_tutorial:
                tut = bench.tutorial_process(data, home, work, a)
                rows["tutorial"].append((tut["wall"], tut["cpu"], tut["test_accuracy"]))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def median(name: str, i: int) -> float:
        return statistics.median(r[i] for r in rows[name])

    print(f"{'process':<14} {'wall s':<24} {'CPU s':<24} test accuracy")
    for name, runs in rows.items():
        if runs:
            print(f"{name:<14} {', '.join(f'{r[0]:.1f}' for r in runs):<24} "
                  f"{', '.join(f'{r[1]:.1f}' for r in runs):<24} "
                  f"{', '.join('-' if r[2] is None else f'{r[2]:.3f}' for r in runs)}")
    print(f"tlcore train / floor: wall {median('tlcore train', 0) / median('floor', 0):.2f}x, "
          f"CPU {median('tlcore train', 1) / median('floor', 1):.2f}x")
    if rows["tutorial"]:
        print(f"tutorial / tlcore train: wall {median('tutorial', 0) / median('tlcore train', 0):.2f}x, "
              f"CPU {median('tutorial', 1) / median('tlcore train', 1):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
