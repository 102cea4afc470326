"""The ground floor: errors, console output, the home folder, atomic JSON, the bounded disk cache
and the run store. Imports nothing else of tlcore.
"""
