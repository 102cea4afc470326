"""Shared test set-up: quiet TensorFlow, throw-away homes, tiny generated datasets."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# Before anything imports TensorFlow: keep its C++ logging to errors only.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Before anything imports Keras (which reads KERAS_HOME once, at import): the whole session,
# and every process it starts, writes below one temporary folder, never in the user's home.
REAL_HOME = Path.home()
SESSION_HOMES = Path(tempfile.mkdtemp(prefix="tlcore-tests-"))
for _var, _sub in (("HOME", "home"), ("KERAS_HOME", "keras"), ("TLCORE_HOME", "tlcore")):
    (SESSION_HOMES / _sub).mkdir()
    os.environ[_var] = str(SESSION_HOMES / _sub)
atexit.register(shutil.rmtree, SESSION_HOMES, ignore_errors=True)
# The check that ImageNet weights can be downloaded probes a closed loopback port, never the
# network (`tlcore.backbones.assets.weights_reachable`).
os.environ["TLCORE_WEIGHTS_PROBE"] = "127.0.0.1:9"

import sys  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Distinct colours, one per class in order; names that match get their own colour.
PALETTE = [(220, 40, 40), (40, 200, 60), (40, 60, 220), (230, 220, 40), (200, 40, 200),
           (40, 210, 210), (128, 128, 128), (250, 140, 20)]
NAMED = {"red": PALETTE[0], "green": PALETTE[1], "blue": PALETTE[2], "yellow": PALETTE[3]}


def class_colour(name: str, index: int) -> tuple[int, int, int]:
    return NAMED.get(name, PALETTE[index % len(PALETTE)])


def noisy_image(rng: np.random.Generator, colour, size: int = 16, noise: float = 20.0) -> Image.Image:
    """A `size`x`size` RGB image of `colour` plus Gaussian noise (unique per call)."""
    arr = np.clip(np.array(colour, dtype=float) + rng.normal(0, noise, (size, size, 3)), 0, 255)
    return Image.fromarray(arr.astype("uint8"), mode="RGB")


@pytest.fixture
def tlhome(tmp_path, monkeypatch) -> Path:
    """TLCORE_HOME pointed at this test's tmp_path (runs/, datasets/, cache/ land there)."""
    monkeypatch.setenv("TLCORE_HOME", str(tmp_path))
    return tmp_path


@pytest.fixture
def make_dataset(tmp_path):
    """Factory writing a tiny image dataset; returns its root folder.

    make_dataset(layout="flat", classes=("red", "green"), n=12) writes root/<class>/*.png;
    make_dataset(layout="split", counts={"train": 10, "validation": 4, "test": 4}) writes
    root/{train,validation,test}/<class>/*.png (a split with count 0 is not created;
    `split_names` renames folders, e.g. {"validation": "val"}). `n` may also be a dict
    class -> count. `ext` is ".png" or ".jpg"; `size` the side in pixels.
    """
    made = {"n": 0}

    def factory(layout: str = "flat", classes=("red", "green"), n=12, counts=None,
                size: int = 16, ext: str = ".png", root=None, seed: int = 0,
                split_names: dict | None = None) -> Path:
        if root is None:
            made["n"] += 1
            root = tmp_path / f"data{made['n']}"
        root = Path(root)
        rng = np.random.default_rng(seed)

        def write(folder: Path, cls: str, index: int, count: int, prefix: str) -> None:
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                im = noisy_image(rng, class_colour(cls, index), size)
                if ext.lower() in (".jpg", ".jpeg"):
                    im.save(folder / f"{prefix}{cls}_{i}{ext}", quality=95)
                else:
                    im.save(folder / f"{prefix}{cls}_{i}{ext}")

        if layout == "flat":
            for ci, cls in enumerate(classes):
                count = n[cls] if isinstance(n, dict) else n
                write(root / cls, cls, ci, count, "")
        elif layout == "split":
            counts = counts or {"train": 10, "validation": 4, "test": 4}
            names = {"train": "train", "validation": "validation", "test": "test"}
            names.update(split_names or {})
            for split, count in counts.items():
                if not count:
                    continue
                for ci, cls in enumerate(classes):
                    c = count[cls] if isinstance(count, dict) else count
                    write(root / names[split] / cls, cls, ci, c, f"{split}_")
        else:
            raise ValueError(f"layout must be 'flat' or 'split'. Received: {layout!r}")
        return root

    return factory


# One trained run for the whole session, for the tests that only read a run (predict, evaluate,
# export, explain, the app's Predict and Evaluate pages). Trained through the command line, so
# its JSON and stderr can be checked too. ResNet50 with random weights still gives
# image-dependent features at small sizes (MobileNets do not), and the cut at conv4_block6_out
# keeps a 4 x 4 map for Grad-CAM. A test that changes a run works on a copy (`copy_run`).
SHARED_RUN_OPTIONS = ["--backbone", "ResNet50", "--weights", "none", "--input-size", "64",
                      "--cut", "conv4_block6_out", "--unfreeze-from", "conv4_block6_1_conv",
                      "--head-epochs", "5", "--fine-tune-epochs", "1", "--lr", "0.01", "--seed", "3",
                      "--pooling", "max", "--batch-size", "8", "--augment", "none", "--early-stopping", "0"]


def session_folder(tmp_path_factory, name: str) -> Path:
    """A folder of the whole test session, the same for every pytest-xdist worker (the parent of
    the workers' own base folders), so a worker may build once what the others then read."""
    base = tmp_path_factory.getbasetemp()
    return (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / name


def trained_once(tmp_path_factory, name: str, counts: tuple, options: list[str]):
    """`tlcore train` on a split dataset of `counts` (train, validation, test images per class)
    with `options`, once per test session: whichever xdist worker asks first trains, the others
    wait on a file lock and read what it left (the command's exit code, stdout and stderr).

    Returns:
        {base, home, data, out (the train JSON), proc, run_dir}
    """
    import json
    import subprocess
    from types import SimpleNamespace

    from filelock import FileLock

    from datagen import write_split

    base = session_folder(tmp_path_factory, name)
    done = base / "train-command.json"  # written last: its presence means the run is complete
    with FileLock(f"{base}.lock"):
        if not done.exists():
            shutil.rmtree(base, ignore_errors=True)  # what a worker that failed half-way left
            data = write_split(base / "data", counts=counts)
            env = dict(os.environ, TLCORE_HOME=str(base / "home"))
            proc = subprocess.run([sys.executable, "-m", "tlcore", "train", str(data), *options, "--json"],
                                  capture_output=True, text=True, env=env, timeout=900)
            assert proc.returncode == 0, proc.stderr[-3000:]
            done.write_text(json.dumps({"args": proc.args, "returncode": proc.returncode, "stdout": proc.stdout,
                                        "stderr": proc.stderr}))
    record = json.loads(done.read_text())
    proc = subprocess.CompletedProcess(record["args"], record["returncode"], record["stdout"], record["stderr"])
    out = json.loads(proc.stdout)
    return SimpleNamespace(base=base, home=base / "home", data=base / "data", out=out, proc=proc,
                           run_dir=out["run_dir"])


@pytest.fixture(scope="session")
def shared_run(tmp_path_factory):
    """{base, home, data, out (the train JSON), proc, run_dir}: see SHARED_RUN_OPTIONS."""
    return trained_once(tmp_path_factory, "shared-run", (12, 6, 4), SHARED_RUN_OPTIONS)


# A completed two-stage run that only the app's pages read (their tables, panels, charts): MobileNetV2
# without pretrained weights at 32 px, one epoch per stage, on 4 / 2 / 2 images of 3 classes. A module
# copies it into a home of its own before its pages write there.
SMALL_RUN_OPTIONS = ["--backbone", "MobileNetV2", "--weights", "none", "--input-size", "32", "--head-epochs", "1",
                     "--fine-tune-epochs", "1", "--batch-size", "4", "--augment", "none", "--early-stopping", "0"]


@pytest.fixture(scope="session")
def small_two_stage_run(tmp_path_factory):
    """{base, home, data, out, proc, run_dir}: see SMALL_RUN_OPTIONS. Read it, never change it."""
    return trained_once(tmp_path_factory, "small-two-stage-run", (4, 2, 2), SMALL_RUN_OPTIONS)


@pytest.fixture
def copy_run(shared_run, tmp_path):
    """A copy of the shared run that a test may change (calibrate it, say)."""
    target = tmp_path / "runs" / Path(shared_run.run_dir).name
    shutil.copytree(shared_run.run_dir, target)
    return target


# `-m "not slow"` is the quick subset (under 3 minutes on 2 cores): a test is slow when it drives
# the browser, or trains a model, itself (marked in its file) or through one of these fixtures, or
# builds every backbone of the catalog (`built`).
TRAINING_FIXTURES = {"shared_run", "copy_run", "small_two_stage_run", "trained", "run", "finished", "studio_home",
                     "cam_run", "cli_results", "two_runs", "queue_setup", "colours", "built"}


# The files that take longest (each over a minute on 2 cores), heaviest first. `-n 2 --dist loadfile`
# hands whole files to the workers in collection order (see `pytest_configure`), so these run
# first and the end of the session is made of short files that even out the two workers.
HEAVY_FIRST = ("test_auto.py", "test_browser.py", "test_train.py", "test_search_reuse.py", "test_insight.py",
               "test_api.py", "test_multiworker.py", "test_examples.py", "test_ship.py",
               "test_live_browser.py", "test_search.py", "test_seeds.py", "test_recipe.py", "test_app.py",
               "test_bad_inputs.py", "test_readme.py", "test_features.py", "test_hardening.py", "test_quantize.py")


def pytest_configure(config):
    # pytest-xdist (3.7 on) hands out files by their number of tests, most first, unless told not
    # to: that left the few-but-long tests (test_train.py, test_multiworker.py) for the end. Keep
    # the collection order (HEAVY_FIRST) unless the command line asks for xdist's own.
    if hasattr(config.option, "loadscopereorder") and "--loadscope-reorder" not in config.invocation_params.args:
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("browser") or TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
    rank = {name: i for i, name in enumerate(HEAVY_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order stays
