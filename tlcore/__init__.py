"""tlcore: the engine of TL Studio, transfer learning and fine-tuning of image classifiers.

Importing tlcore is cheap: TensorFlow and Keras are imported by the functions that need them.
"""
from __future__ import annotations

__version__ = "0.1.0"

from .core import imports  # noqa: E402
from .core.errors import TLCoreError, UsageError  # noqa: E402

imports.install()  # Keras starts without scikit-learn and pandas (tlcore/core/imports.py)

__all__ = ["TLCoreError", "UsageError", "__version__"]
