"""Live classification of a stream of frames (webcam, video) and few-shot prototypes.
"""
