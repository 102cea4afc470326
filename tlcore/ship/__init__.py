"""Using a trained run: prediction on files, arrays and videos (with a steady label over frames),
export (Keras, SavedModel, TFLite, ONNX, bundle, run-as-code script), the REST server and the
untouched ImageNet classifier.
"""
