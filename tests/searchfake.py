"""A finished search as `tlcore search` leaves it (search.json and one completed run per
trial), without Ray or training: for the page tests."""
from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path


def write_search(home: Path, search_id: str, space: dict, score, seeds=(42,), grid: bool = True) -> str:
    """`score(options, seed)` gives each trial's validation accuracy; returns the search folder."""
    keys = list(space)
    points = [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
    folder = home / "searches" / search_id
    folder.mkdir(parents=True)
    for index, point in enumerate(points):
        for seed in seeds:
            run = home / "runs" / f"{search_id}-p{index}-s{seed}"
            run.mkdir(parents=True)
            (run / "status.json").write_text(json.dumps({"state": "completed", "host": socket.gethostname(),
                                                         "started_at": f"2999-01-01T00:00:{index:02d}Z"}))
            (run / "config.json").write_text(json.dumps({"options": {
                "backbone": "MobileNetV2", **point, "seed": seed, "name": f"search:{search_id}:{index}:{seed}"}}))
            acc = score(point, seed)
            (run / "metrics.jsonl").write_text(json.dumps({"stage": 2, "epoch": 1, "val_accuracy": acc,
                                                           "val_loss": 1 - acc}) + "\n")
    record = {"search_id": search_id, "search_dir": str(folder), "state": "completed", "space": space,
              "grid": grid, "seeds": list(seeds), "metric": "val_accuracy", "scheduler": "none", "address": None,
              "base": {}, "points": points, "runs_dir": str(home / "runs"), "pid": None}
    (folder / "search.json").write_text(json.dumps(record))
    return str(folder)
