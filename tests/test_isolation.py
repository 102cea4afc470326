"""The suite never writes into the user's home: HOME, KERAS_HOME and TLCORE_HOME are temporary."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import conftest


def _inside(path, folder) -> bool:
    return Path(path).resolve().is_relative_to(Path(folder).resolve())


def test_homes_are_temporary_folders_outside_the_real_home(monkeypatch):
    tmp = conftest.SESSION_HOMES
    assert tmp.is_dir() and not _inside(tmp, conftest.REAL_HOME)
    for var in ("HOME", "KERAS_HOME", "TLCORE_HOME"):
        assert _inside(os.environ[var], tmp), var
    assert _inside(Path.home(), tmp) and _inside(os.path.expanduser("~"), tmp)
    from tlcore.backbones import build as backbones
    from tlcore.core import home

    assert _inside(backbones.keras_models_dir(), tmp)
    monkeypatch.delenv("TLCORE_HOME")
    assert _inside(home.home(), tmp)  # even its default, ~/.tlcore


def test_keras_read_the_temporary_keras_home():
    from keras.src.backend import config

    assert _inside(config.keras_home(), conftest.SESSION_HOMES)


def test_the_tlhome_fixture_still_gives_each_test_its_own_home(tlhome, tmp_path):
    from tlcore.core import home

    assert tlhome == tmp_path and home.home() == tmp_path


def test_processes_the_tests_start_inherit_the_temporary_homes():
    code = ("import json, os; from tlcore.backbones import build as backbones; from tlcore.core import home; "
            "print(json.dumps([os.path.expanduser('~'), str(backbones.keras_models_dir()), str(home.home())]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert all(_inside(p, conftest.SESSION_HOMES) for p in json.loads(out))
