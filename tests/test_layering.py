"""The layering contract (.importlinter), checked by import-linter: the engine never imports the UI,
plotly or streamlit, and a lower module of tlcore never imports a higher one, even inside a function."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tlcore", "studio", "benchmarks")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    """`lint-imports` (the venv's console script) over the project at `cwd`, without its cache."""
    script = Path(sys.executable).with_name("lint-imports")
    cmd = [str(script)] if script.exists() else [sys.executable, "-c",
                                                  "import sys; from importlinter.cli import lint_imports_command; "
                                                  "sys.exit(lint_imports_command())"]
    env = dict(os.environ, PYTHONPATH=str(cwd))
    return subprocess.run([*cmd, "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def project_copy(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def add_function(path: Path, body: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n\ndef _sneaky():\n" + body + "\n")


def test_the_import_contracts_hold():
    res = lint_imports(ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert " kept, 0 broken." in res.stdout


def test_streamlit_imported_inside_an_engine_function_breaks_the_contract(tmp_path):
    root = project_copy(tmp_path)
    assert lint_imports(root).returncode == 0  # the copy itself is clean
    add_function(root / "tlcore" / "jsonio.py", "    import streamlit\n    return streamlit")
    res = lint_imports(root)
    assert res.returncode == 1, res.stdout
    assert " kept, 1 broken" in res.stdout and "tlcore.jsonio -> streamlit" in res.stdout


def test_ray_imported_outside_search_breaks_the_contract(tmp_path):
    root = project_copy(tmp_path)
    add_function(root / "tlcore" / "train.py", "    from ray import tune\n    return tune")
    res = lint_imports(root)
    assert res.returncode == 1 and "tlcore.train -> ray" in res.stdout, res.stdout


@pytest.mark.parametrize("module, body, shown", [
    ("home.py", "    from .train import train\n    return train", "tlcore.home -> tlcore.train"),
    ("runs.py", "    from studio import text\n    return text", "tlcore.runs -> studio.text"),
])
def test_a_lower_module_importing_a_higher_one_breaks_the_contract(tmp_path, module, body, shown):
    root = project_copy(tmp_path)
    add_function(root / "tlcore" / module, body)
    res = lint_imports(root)
    assert res.returncode == 1 and shown in res.stdout, res.stdout


def test_engine_helpers_import_neither_streamlit_nor_tensorflow():
    modules = ("assets", "datasets", "importer", "home", "runs", "sweep", "layers", "plan", "config", "evaluate",
               "export", "calibrate", "source", "images", "data", "features", "imagenet")
    code = (f"import sys, importlib; [importlib.import_module('tlcore.' + m) for m in {modules!r}]; "
            "assert 'streamlit' not in sys.modules; assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=dict(os.environ))


def test_every_engine_module_is_short():
    long = {p.name: n for p in (ROOT / "tlcore").glob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, f"modules over 500 lines: {long}"


def test_only_the_engine_is_installed():
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert config["tool"]["setuptools"]["packages"] == ["tlcore"]  # not studio/, not benchmarks/


def test_keras_starts_without_sklearn_and_pandas_which_the_audit_still_imports():
    # Keras loads both at start when installed (about 1.8 s here); tlcore never uses that support.
    code = ("import sys, tlcore, keras\n"
            "assert 'sklearn' not in sys.modules and 'pandas' not in sys.modules, 'loaded with keras'\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "import pandas\n"
            "assert keras.ops.convert_to_numpy(keras.ops.ones(2)).sum() == 2\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
