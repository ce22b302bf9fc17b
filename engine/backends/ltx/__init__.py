"""The ``ltx`` backend: LTX-Video on diffusers (`backend`), built from:

- `extend`: the windowed sampler on diffusers' long-video pipeline: carried
  tail latents as conditioning tokens at a scene join, long takes window by
  window;
- `loading`: model resolution (``tiny-random``, a local folder, or a Hugging
  Face id from the local cache) and config/checkpoint checks;
- `pipeline`: the diffusers pipeline class it runs on;
- `tiny`: random-weight components built from configs in code.

Shared with ``ltx2``: `engine.backends.diffusers` (runtime, latents, frames,
memory modes, GGUF); its presets and rules: its entry in `engine.catalog`.
"""
