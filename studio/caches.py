"""Streamlit caches around engine calls: the machine, built backbones, counts, scans, run models.

`st.cache_resource` objects are shared by every session: only read-only things are kept there
(a backbone built without weights for the layer table, a trained run's model for predictions).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from studio import state, text
from studio.i18n import _
from tlcore.core.errors import TLCoreError
from tlcore.data.splits import SPLIT_METHOD
from tlcore.recipe.config import DEFAULTS as CONFIG_DEFAULTS


@st.cache_resource(show_spinner=False)
def device_info() -> dict:
    """TensorFlow version, GPUs, mixed precision (imports TensorFlow once per server)."""
    from tlcore.training.device import describe

    return describe()


def device_info_if_loaded() -> dict | None:
    """The device info, but only if TensorFlow is imported already (the sidebar stays cheap)."""
    if "tensorflow" not in sys.modules:
        return None
    try:
        return device_info()
    except Exception:
        return None


@st.cache_resource(show_spinner=False, max_entries=16)
def catalog_facts(name: str, size: int):
    """The layer table and plan facts of a catalog backbone (`tlcore.backbones.tablestore.catalog_facts`):
    read from the shipped or cached table, built once (without weights) only when neither exists.
    Plain data, shared by every session."""
    from tlcore.backbones.tablestore import catalog_facts as load

    return load(name, size)


_PREBUILDING: set = set()


def prebuild(name: str, size: int) -> None:
    """Start reading or building `catalog_facts(name, size)` in a background thread (once per
    key), so the Layers page finds it ready: called as soon as a backbone is picked. The cache's
    own lock makes a page that asks meanwhile wait for this build instead of starting another."""
    import threading

    key = (str(name), int(size))
    if key in _PREBUILDING:
        return
    _PREBUILDING.add(key)

    def build():
        try:
            catalog_facts(*key)
        except Exception:  # the page that needs it reports the error itself
            _PREBUILDING.discard(key)

    threading.Thread(target=build, name=f"prebuild-{name}-{size}", daemon=True).start()


@st.cache_resource(show_spinner=False, max_entries=4)
def backbone_file_source(path: str, stamp: int, preprocessing: str):
    """Your own model loaded and flattened (`load_backbone_file`) and its layer table.

    Keyed by the file's modification stamp, so a replaced file loads again. Shared by every
    session and read-only: `tlcore.recipe.plan.make_plan` reads it without changing it.
    """
    from tlcore.backbones.layers import facts_of
    from tlcore.backbones.source import load_backbone_file

    source = load_backbone_file(path, preprocessing)
    return source, facts_of(source.backbone, source.paths, source.preprocessing, source.input_size,
                            source.default_cut)


@dataclass
class Chosen:
    """The backbone of the current selection: a catalog backbone's stored facts (never built when
    its table is known), or your own model file, loaded."""

    kind: str  # "catalog" or "file"
    label: str  # "MobileNetV2 at 96 px" or the file's name
    facts: Any  # tlcore.backbones.layers.BackboneFacts: what the table and the plan read
    table: list
    preprocessing: str
    input_size: int
    paths: dict
    default_cut: int  # the index training cuts at when no cut is chosen
    file: str | None = None
    name: str | None = None
    source: Any = None


def chosen_backbone() -> Chosen:
    """The backbone the selection names: a catalog backbone's facts (read, or built once), or
    your own model file loaded (once, cached).

    Raises:
        TLCoreError: an unknown backbone, or a model file that cannot be used.
    """
    from tlcore.backbones.assets import backbone_file_stamp
    from tlcore.backbones.catalog import get_backbone

    file = state.get("backbone_file")
    if file:
        source, facts = backbone_file_source(str(file), backbone_file_stamp(file),
                                             state.get("preprocessing") or "auto")
        table = facts.table
        default = source.default_cut if source.default_cut is not None else len(table) - 1
        return Chosen("file", Path(str(file)).name, facts, table, source.preprocessing,
                      int(source.input_size), dict(source.paths), int(default), str(file), None, source)
    info = get_backbone(state.get("backbone"))
    size = int(state.get("input_size") or info.default_input_size)
    facts = catalog_facts(info.name, size)
    return Chosen("catalog", f"{info.name} at {size} px", facts, facts.table, info.preprocessing, size, {},
                  len(facts.table) - 1, None, info.name)


@st.cache_data(show_spinner=False, max_entries=256)
def _plan(kind: str, key: tuple, options_json: str, num_classes: int) -> dict:
    import json

    from tlcore.recipe.config import TrainConfig
    from tlcore.recipe.plan import make_plan

    if kind == "file":
        path, stamp, preprocessing = key
        _source, facts = backbone_file_source(path, stamp, preprocessing)
    else:
        facts = catalog_facts(*key)
    config = TrainConfig.from_dict(json.loads(options_json))
    return make_plan(config, int(num_classes), facts).to_dict()


def chosen_plan(bb: Chosen, options: dict, num_classes: int) -> dict:
    """`tlcore.recipe.plan.make_plan` for the backbone `bb` and `options` (cached per choice), as
    `Plan.to_dict()`: the layers' roles per stage, counts, warnings.

    Raises:
        TLCoreError: a layer or pattern that names nothing, a bad cut, a bad head.
    """
    import json

    text = json.dumps(options, sort_keys=True, default=str)  # the whole config: its warnings need weights too
    if bb.kind == "file":
        from tlcore.backbones.assets import backbone_file_stamp

        key = (bb.file, backbone_file_stamp(bb.file), state.get("preprocessing") or "auto")
        return _plan("file", key, text, int(num_classes))
    return _plan("catalog", (bb.name, int(bb.input_size)), text, int(num_classes))


def _folder_stamp(path: str) -> tuple:
    p = Path(path)
    try:
        stamps = [p.stat().st_mtime_ns]
        for child in p.iterdir():
            stamps.append(child.stat().st_mtime_ns)
            if child.is_dir():
                stamps += [c.stat().st_mtime_ns for c in child.iterdir()]
        return (len(stamps), max(stamps))
    except OSError:
        return (0, 0)


@st.cache_data(show_spinner=False, max_entries=32, ttl=600)
def _scan(path: str, val_split: float, test_split: float, seed: int, stamp: tuple, split_method: str):
    from tlcore.data.pipeline import scan

    return scan(path, val_split, test_split, seed, split_method=split_method)


def scan(path: str, val_split: float | None = None, test_split: float | None = None, seed: int | None = None,
         split_method: str = SPLIT_METHOD):
    """`tlcore.data.pipeline.scan`, cached until the folder changes (or ten minutes pass); a
    split option not given is the engine's default."""
    val_split, test_split, seed = (CONFIG_DEFAULTS[k] if v is None else v for k, v in
                                   (("val_split", val_split), ("test_split", test_split), ("seed", seed)))
    return _scan(str(path), float(val_split), float(test_split), int(seed), _folder_stamp(str(path)), split_method)


def selected_dataset():
    """The scanned current dataset, or None (errors shown by the caller's guard)."""
    data = state.get("data")
    if not data:
        return None
    return scan(data, state.live("val_split"), state.live("test_split"), state.live("seed"))


@st.cache_resource(show_spinner=False, max_entries=8)
def run_model(run_dir: str, model_path: str, mtime_ns: int):
    """A run's model ready to classify (keyed by model file and mtime, so a newer model reloads)."""
    from tlcore.ship.predict import RunModel

    return RunModel(run_dir)


def load_run_model(run):
    path = run.model_path()
    if path is None:
        raise TLCoreError(_("Run {run} has no model yet (state {state}).").format(run=run.run_id, state=text.state_word(run.state())))
    return run_model(str(run.path), str(path), path.stat().st_mtime_ns)


def _file_stamp(path: str) -> int:
    try:
        return Path(path).stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_data(show_spinner=False, max_entries=64)
def _augmentation_preview(path: str, stamp: int, options_json: str, n: int, seed: int, side: int):
    import json

    from tlcore.data.augment import augmentation_preview
    from tlcore.data.images import thumbnail

    original = thumbnail(path, side)
    if original is None:
        return None, []
    return original, augmentation_preview(original, json.loads(options_json), n=n, seed=seed)


def augmentation_preview(path: str, options: dict, n: int = 5, seed: int = 0, side: int = 128):
    """(thumbnail, `n` augmented copies) of the image at `path` (`tlcore.data.augment.augmentation_preview`),
    cached per file, options and seed: the same seed gives the same copies, so a rerun that changes
    something else does not run the Keras layers again. (None, []) for an unreadable image."""
    import json

    return _augmentation_preview(str(path), _file_stamp(str(path)), json.dumps(options, sort_keys=True, default=str),
                                 int(n), int(seed), int(side))


_FROZEN_MODULES = [0]


def settle_heap() -> bool:
    """Once TensorFlow is loaded, move the objects alive now out of the garbage collector's sight
    (`gc.freeze`), again whenever more modules were imported since; True when it froze.

    Streamlit runs two full collections after every rerun (its post-script `gc.collect(2)`, and
    `keras.backend.clear_session()`'s own whenever Keras is imported): with TensorFlow's ~400,000
    objects in the server each took 0.15-0.25 s on 2 cores, on every widget change of every page.
    Frozen objects are never collected, so what is frozen is what the server keeps anyway: the
    imported modules (and the little alive at that moment)."""
    import gc

    if "tensorflow" not in sys.modules or len(sys.modules) == _FROZEN_MODULES[0]:
        return False
    _FROZEN_MODULES[0] = len(sys.modules)
    gc.collect()
    gc.freeze()
    return True


def keep_models_warm() -> bool:
    """Stop Streamlit from calling ``keras.backend.clear_session()`` after every run of the script
    (its `script_runner._clean_problem_modules`, meant for scripts that build a model on each run);
    once per process, True when it was installed now.

    That call clears TensorFlow's kernel cache (`context.clear_kernel_cache`), so the next call of every
    loaded model, shared by all sessions, built its kernels again: 0.3 s of CPU per call of a
    MobileNetV2 at 96 px, 1-2 s under load, instead of 15 ms; and it ran a full garbage collection.
    Keras' global state it also reset is per thread, and each run has a thread of its own. What else
    the function does (closing matplotlib's figures) still runs."""
    from streamlit.runtime.scriptrunner import script_runner

    if getattr(script_runner._clean_problem_modules, "_tlstudio", False):
        return False

    def clean_without_keras() -> None:
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is not None:
            try:
                plt.close("all")
            except Exception:  # as Streamlit's own: never stop a run for this
                pass

    clean_without_keras._tlstudio = True  # type: ignore[attr-defined]
    script_runner._clean_problem_modules = clean_without_keras
    return True
