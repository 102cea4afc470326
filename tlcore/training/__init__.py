"""Running a training: devices and strategies, the machine's queue and processes, the two-stage
train loop that writes the run store, the learning-rate finder, and comparisons made of several
runs (the from-scratch twin).
"""
