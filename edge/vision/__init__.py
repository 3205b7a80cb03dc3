"""Seeing faces: boxes, the detectors (Haar, BlazeFace), the motion gate and search windows, the tracker,
the expression model and the per-frame face pipeline."""
