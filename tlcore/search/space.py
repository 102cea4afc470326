"""A search's space, without Ray: option name -> a list of choices or {min, max, log, int},
read from a JSON file or object and checked against the training options (`load_space`), and the
points drawn from it, every combination or seeded random ones (`points`)."""
from __future__ import annotations

import itertools
import json
import math
import os
import random
from pathlib import Path

from ..core.errors import OptionError


def load_space(space) -> dict:
    """A space from a dict, a JSON text or a JSON file's path, checked: known options only,
    non-empty choice lists, ranges with numbers min < max."""
    from ..recipe.config import OPTION_NAMES, OPTIONS

    if isinstance(space, (str, os.PathLike)) and not str(space).lstrip().startswith("{"):
        path = Path(space).expanduser()
        if not path.is_file():
            raise OptionError("space", f"must be a JSON file or a JSON object. No file at {path}.")
        try:
            space = json.loads(path.read_text())
        except (ValueError, OSError) as exc:
            raise OptionError("space", f"could not be read as JSON ({path}): {exc}") from None
    elif isinstance(space, str):
        try:
            space = json.loads(space)
        except ValueError as exc:
            raise OptionError("space", f"is not valid JSON: {exc}") from None
    if not isinstance(space, dict) or not space:
        raise OptionError("space", 'must be a JSON object of option name to choices, e.g. '
                                   '{"lr": [0.001, 0.0003], "dropout": {"min": 0.1, "max": 0.5}}.')
    kinds = {f.name: f.metadata.get("type") for f in OPTIONS}
    out = {}
    for name, spec in space.items():
        key = str(name).replace("-", "_").lstrip("_")
        if key not in OPTION_NAMES or key in ("data", "name"):
            import difflib

            near = difflib.get_close_matches(key, OPTION_NAMES, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise OptionError("space", f"names an option that train does not have: {name!r}.{hint}")
        if isinstance(spec, list):
            if not spec:
                raise OptionError("space", f"gives no choice for {name!r}: list at least one value.")
            out[key] = list(spec)
        elif isinstance(spec, dict):
            unknown = set(spec) - {"min", "max", "log", "int"}
            lo, hi = spec.get("min"), spec.get("max")
            if unknown or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi)) \
                    or not lo < hi:
                raise OptionError("space", f"range for {name!r} needs numbers min < max (and optional "
                                           f'"log", "int"). Received: {spec!r}')
            if kinds.get(key) not in (int, float):
                raise OptionError("space", f"{name!r} is not a number option; list its choices instead.")
            if spec.get("log") and lo <= 0:
                raise OptionError("space", f"a log range for {name!r} needs min > 0. Received: {lo}")
            out[key] = {"min": lo, "max": hi, "log": bool(spec.get("log")),
                        "int": bool(spec.get("int")) or kinds.get(key) is int}
        else:
            raise OptionError("space", f"{name!r} must map to a list of choices or a range object. "
                                       f"Received: {spec!r}")
    return out


def points(space: dict, trials: int = 8, grid: bool = False, seed: int = 0) -> list[dict]:
    """The points to run: every combination of the choices (grid), or `trials` random draws."""
    if grid:
        ranges = [k for k, v in space.items() if isinstance(v, dict)]
        if ranges:
            raise OptionError("grid", f"needs lists of choices; {', '.join(ranges)} is a range. "
                                      "Give a list, or search at random with --trials.")
        keys = list(space)
        combos = [dict(zip(keys, values)) for values in itertools.product(*(space[k] for k in keys))]
        if len(combos) > 500:
            raise OptionError("grid", f"would run {len(combos)} points; keep a grid under 500.")
        return combos
    if int(trials) < 1:
        raise OptionError("trials", f"must be at least 1. Received: {trials}")
    rng = random.Random(seed)
    out = []
    for _ in range(int(trials)):
        point = {}
        for key, spec in space.items():
            if isinstance(spec, list):
                point[key] = rng.choice(spec)
                continue
            lo, hi = spec["min"], spec["max"]
            if spec["log"]:
                value = math.exp(rng.uniform(math.log(lo), math.log(hi)))
            else:
                value = rng.uniform(lo, hi)
            point[key] = int(round(value)) if spec["int"] else float(f"{value:.6g}")
        out.append(point)
    return out
