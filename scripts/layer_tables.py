"""Write the layer tables shipped in tlcore/backbones/layer_tables/ (every catalog backbone at its default
size), for the installed Keras. Run after a Keras upgrade: `python scripts/layer_tables.py [NAMES...]`.
Tables of another Keras version are ignored by the loader (the backbone is built instead)."""
from __future__ import annotations

import sys
import time

from tlcore.backbones.tablestore import ship_tables

if __name__ == "__main__":
    start = time.perf_counter()
    for path in ship_tables(sys.argv[1:] or None):
        print(f"{path.name}: {path.stat().st_size / 1024:.0f} KiB", flush=True)
    print(f"done in {time.perf_counter() - start:.0f} s")
