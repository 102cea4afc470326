"""How good a run is and why: evaluation on a split, calibration, Grad-CAM, the linear probe per
cut and the data audit.
"""
