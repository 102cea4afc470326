"""The ground floor: errors, console output, the home folder, atomic JSON, the bounded disk cache
and the run store. Imports nothing else of tlcore.
"""

__version__ = "0.1.0"  # tlcore's version (`tlcore.__version__`), here so every layer may read it
