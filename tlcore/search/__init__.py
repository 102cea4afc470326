"""Searching over options with Ray Tune: Ray is imported only inside this package, and only by
the modules that run a search.
"""
