"""How well and how fast: `edge bench` (model, pipeline, start-up) and `edge eval` (accuracy on labelled photos)."""
