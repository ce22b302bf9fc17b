"""Scoring takes: encoders, metrics and the observer that writes scores back.

CLIP (open_clip) and DINOv2 (transformers) encoders loaded lazily, the
VBench-style metrics and CLIPScore (``scoring.metrics``), optical-flow motion
metrics (``scoring.motion``), which frames are scored, cached reference-image
features, the `Observer` that scores a take and stores its embeddings, and
random-weight encoders for tests (``scoring.testing``).

Imports ``kg``, never ``engine``: the observer has the shape of the engine's
``TakeObserver`` protocol. Nothing here imports Streamlit.
"""
