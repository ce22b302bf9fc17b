"""Video backends, one module each; every module registers itself on import.

``engine.backend.get_backend(name)`` imports the built-in ones on demand:
``animatic`` (CPU storyboard, no weights) and ``ltx`` (LTX-Video on diffusers).
"""
