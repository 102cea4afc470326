"""Measured backbone latency on this machine: milliseconds per image at batch 1 and batch 32.

`measure` builds each catalog backbone (random weights: the time does not depend on their
values), runs a compiled forward pass a few times to warm up, then takes the median of timed
passes. Results are kept in the home folder (`latency.json`), keyed by machine, TensorFlow
version, backbone and input size, so each is measured once; `known` reads them back.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

from ..core import home
from .catalog import CATALOG, get_backbone
from ..core.jsonio import read_json, write_json

BATCHES = (1, 32)
WARMUP = 2
REPEATS = {1: 10, 32: 3}


def machine_key() -> str:
    """This machine as the cache knows it: host, CPU model and cores, and the TensorFlow version."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{platform.node()}|{cpu}|{os.cpu_count()} cores|tf {_tf_version()}"


def _tf_version() -> str:
    try:
        from importlib.metadata import version

        for dist in ("tensorflow", "tensorflow-cpu"):
            try:
                return version(dist)
            except Exception:
                continue
    except Exception:
        pass
    return "unknown"


def _path():
    return home.home() / "latency.json"


def _entry_key(name: str, size: int) -> str:
    return f"{name}@{size}"


def known(input_size: int | None = None) -> dict[str, dict]:
    """{backbone name: {ms_batch1, ms_batch32, input_size, measured_at}} measured on this machine
    (with this TensorFlow) at `input_size` (each backbone's default when None)."""
    data = read_json(_path(), default={}) or {}
    mine = data.get(machine_key(), {}) if isinstance(data, dict) else {}
    out = {}
    for name, b in CATALOG.items():
        size = input_size or b.default_input_size
        entry = mine.get(_entry_key(name, size))
        if entry:
            out[name] = entry
    return out


def measure(names: list[str] | None = None, input_size: int | None = None, refresh: bool = False,
            on_progress: Callable[[int, int, str], None] | None = None) -> list[dict]:
    """Measure `names` (every catalog backbone when empty) at `input_size`; cached ones are read
    back unless `refresh`. Returns [{name, input_size, ms_batch1, ms_batch32, cached}].

    Raises:
        TLCoreError: an unknown backbone (with the closest names) or a bad input size.
    """
    from .build import check_input_size

    chosen = [get_backbone(n).name for n in names] if names else list(CATALOG)
    sizes = {n: check_input_size(n, input_size) for n in chosen}  # every check before any work
    key = machine_key()
    results = []
    for i, name in enumerate(chosen):
        if on_progress:
            on_progress(i, len(chosen), name)
        size = sizes[name]
        data = read_json(_path(), default={}) or {}
        entry = None if refresh else data.get(key, {}).get(_entry_key(name, size))
        cached = entry is not None
        if entry is None:
            entry = {"input_size": size, **_time_backbone(name, size),
                     "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            data = read_json(_path(), default={}) or {}  # another process may have added some meanwhile
            data.setdefault(key, {})[_entry_key(name, size)] = entry
            write_json(_path(), data)
        results.append({"name": name, "input_size": size, "ms_batch1": entry["ms_batch1"],
                        "ms_batch32": entry["ms_batch32"], "cached": cached})
    if on_progress:
        on_progress(len(chosen), len(chosen), "")
    return results


def _time_backbone(name: str, size: int) -> dict:
    import gc

    import numpy as np
    import tensorflow as tf

    from .build import build_backbone

    model = build_backbone(name, size, weights=None)
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    out = {}
    for batch in BATCHES:
        x = tf.constant(np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype("float32"))
        for _ in range(WARMUP):
            fn(x).numpy()
        times = []
        for _ in range(REPEATS[batch]):
            t0 = time.perf_counter()
            fn(x).numpy()
            times.append(time.perf_counter() - t0)
        out[f"ms_batch{batch}"] = round(1000 * statistics.median(times) / batch, 2)
    del fn, model
    gc.collect()
    return out


def catalog_report(measure_names: list[str] | None = None, input_size: int | None = None) -> list[dict]:
    """`tlcore backbones`: with `measure_names` (a list, empty for all) the measurements, with
    progress on stderr; without, the catalog with this machine's ms/image where known."""
    import sys

    if measure_names is not None:
        def progress(i: int, n: int, name: str) -> None:
            if name:
                print(f"measuring {name} ({i + 1}/{n})", file=sys.stderr, flush=True)

        return measure(measure_names, input_size, on_progress=progress)
    times = known(input_size)
    return [{**b.to_dict(), "ms_batch1": times.get(b.name, {}).get("ms_batch1"),
             "ms_batch32": times.get(b.name, {}).get("ms_batch32")} for b in CATALOG.values()]
