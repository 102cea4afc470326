"""The command line: the argument parser and the commands (`tlcore`, `python -m tlcore`).
"""
