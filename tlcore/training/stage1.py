"""Stage 1 trained once for every run that shares it (a search's trials).

Runs whose stage-1 options (`TrainConfig.stage1_options`: everything but what only stage 2
reads) match, on the same data and backbone, train the same stage 1. Given a folder (a
search's ``stage1/``), the first such run trains stage 1 as usual and saves what it left there
under a key, the hash of those options: every variable of the model (weights, BatchNorm
statistics, the dropout layers' seed states), the best weights so far, the stage-1 epochs of
metrics.jsonl and stage 1's warnings. A later run with the same key loads them instead of
training, copies the epochs into its own metrics.jsonl and writes its checkpoint, so its record
reads as if it had trained stage 1 itself; stage 2 then starts from the same state in both
(`steps._fit_stage` re-seeds it and makes its training dataset anew), so the result equals the
run trained alone. An flock per key makes a run that wants a stage 1 another is training wait
for it rather than train it too (trials of a search may run at once, in other processes).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import time
from pathlib import Path

import numpy as np

from ..core.jsonio import read_json, write_json
from ..recipe.features import cache_key

LOCK_POLL_SECONDS = 0.2


def applies(config, resuming: bool, multi_worker: bool) -> bool:
    """Only a new, single-worker run with both stages shares its stage 1 (a run without stage 2
    is stage 1 alone: nothing to share)."""
    return not resuming and not multi_worker and config.head_epochs > 0 and config.fine_tune_epochs > 0


class Stage1Store:
    """One stage 1 in `root` (see the module doc); `key` names it."""

    def __init__(self, root: str | Path, config, ds, source):
        self.root = Path(root)
        self.key = cache_key(options=config.stage1_options(), data=ds.fingerprint(),
                             split_method=ds.split_method, source=source.provenance)
        self.folder = self.root / self.key

    @contextlib.contextmanager
    def turn(self, stop):
        """Hold this key's lock (waiting for a run training it); returns early if `stop` turns true."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{self.key}.lock", "a+") as lock:
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if stop:
                        yield
                        return
                    time.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def saved(self) -> dict | None:
        info = read_json(self.folder / "stage1.json")
        return info if info and (self.folder / "variables.npz").exists() else None

    def save(self, job, warnings: list[str]) -> None:
        """What stage 1 left in `job` (a run that just trained it to its end)."""
        best = job.checkpoint.best
        if best is not None and best[0] is not job.model:
            return  # the best weights are of a part only (not flushed): nothing whole to share
        tmp = self.root / f".{self.key}.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        np.savez(tmp / "variables.npz", *[np.asarray(v) for v in job.model.variables])
        if best is not None:
            np.savez(tmp / "best.npz", *best[1])
        status = job.run.raw_status()
        write_json(tmp / "stage1.json", {
            "key": self.key, "trained_by": job.run.run_id, "best": dict(job.best),
            "metrics": [m for m in job.run.metrics() if m.get("stage") == 1],
            "feature_cache": status.get("feature_cache"), "warnings": warnings,
            "variables": len(job.model.variables)})
        try:
            os.replace(tmp, self.folder)
        except OSError:  # there already (another process without the lock's protection): keep that one
            shutil.rmtree(tmp, ignore_errors=True)

    def load_into(self, job) -> dict | None:
        """Put the saved stage 1's model state into `job`; its stage1.json, or None (nothing
        changed) when there is none or it does not fit this model."""
        info = self.saved()
        if info is None:
            return None
        with np.load(self.folder / "variables.npz") as f:
            values = [f[f"arr_{i}"] for i in range(len(f.files))]
        variables = job.model.variables
        if len(values) != len(variables) or any(tuple(v.shape) != a.shape for v, a in zip(variables, values)):
            return None
        for v, a in zip(variables, values):
            v.assign(a)
        job.best.clear()
        job.best.update(info.get("best") or {})
        if (self.folder / "best.npz").exists():
            with np.load(self.folder / "best.npz") as f:
                job.checkpoint.best = (job.model, [f[f"arr_{i}"] for i in range(len(f.files))])
            job.checkpoint.written = False
            job.checkpoint.flush()
        return info
