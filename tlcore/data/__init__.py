"""Images and datasets: the one image decoder (paths, bytes, frames), folders and splits, the
tf.data pipeline and augmentation, managed datasets (import, edits, the demo set), and the output
convention (labels, targets, probabilities).
"""
