"""What Keras does not load when tlcore imports it: its optional scikit-learn, pandas and IPython support.

Keras imports scikit-learn (for `keras.wrappers.SKLearnClassifier`) and pandas (to accept
DataFrames in `fit`) at start whenever they are installed; here they are, for the data audit
(cleanlab). That is about 1.8 s of every process that imports Keras on 2 cores, for features
tlcore never uses. While a Keras module's own top-level code runs, `import sklearn` and
`import pandas` therefore find nothing, and Keras takes the path it takes when they are not
installed. Everything else imports them as usual: the audit's `from sklearn ... import` works,
before or after Keras, and Keras itself still works with both once they are loaded elsewhere.

IPython likewise (installed with Jupyter): Keras' model file editor imports it at start to show
itself in notebooks, about 0.15 s. In a notebook IPython is loaded before Keras, so Keras finds it
there and nothing changes.
"""
from __future__ import annotations

import importlib.abc
import sys

SKIPPED = ("sklearn", "pandas", "IPython")


class _KerasOptionalImports(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name in SKIPPED and _keras_module_body(sys._getframe(1)):
            raise ModuleNotFoundError(f"No module named {name!r} (not loaded for Keras by tlcore)", name=name)
        return None


def _keras_module_body(frame) -> bool:
    """Whether the import statement being run is in a Keras module's top-level code."""
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame = frame.f_back
    return (frame is not None and frame.f_code.co_name == "<module>"
            and str(frame.f_globals.get("__name__", "")).startswith("keras."))


def install() -> None:
    """Put the finder first on `sys.meta_path` (once)."""
    if not any(isinstance(f, _KerasOptionalImports) for f in sys.meta_path):
        sys.meta_path.insert(0, _KerasOptionalImports())
