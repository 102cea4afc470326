"""tlcore: the engine of TL Studio, transfer learning and fine-tuning of image classifiers.

The public API (docs/API.md), the command line's work as Python calls::

    import tlcore

    data = tlcore.demo_data("shapes", exist_ok=True)
    print(tlcore.plan(backbone="MobileNetV2", unfreeze_from="block_13_expand").stages)
    run = tlcore.train(data, backbone="MobileNetV2", weights="none", input_size=64,
                       head_epochs=2, fine_tune_epochs=1)
    run.evaluate()["accuracy"], run.predict(["shape.png"])

Importing tlcore is cheap: TensorFlow and Keras are imported by the functions that need them.
"""
from __future__ import annotations

from .core import __version__  # noqa: E402

from .core import imports  # noqa: E402
from .core.errors import OptionError, TLCoreError, UsageError  # noqa: E402

imports.install()  # Keras starts without scikit-learn and pandas (tlcore/core/imports.py)

from .api import (Evaluation, Explanation, Plan, Run, ScanReport, demo_data, load_run, plan,  # noqa: E402
                  runs, scan, train)

__all__ = ["Evaluation", "Explanation", "OptionError", "Plan", "Run", "ScanReport", "TLCoreError",
           "UsageError", "__version__", "demo_data", "load_run", "plan", "runs", "scan", "train"]
