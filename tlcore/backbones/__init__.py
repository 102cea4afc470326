"""Pretrained networks: the catalog of keras.applications, building a backbone with its weights,
layer tables (shipped and computed), saved-model backbones, ImageNet weight files and measured speed.
"""
