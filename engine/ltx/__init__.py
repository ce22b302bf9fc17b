"""LTX-Video on diffusers: tiny test models, presets, latent arithmetic, loading.

The ``ltx`` backend (`engine.backends.ltx`) is built from these parts:

- `engine.ltx.latents`: causal-VAE frame arithmetic, input checks, tail
  latents and whether carried latents fit the next scene.
- `engine.ltx.extend`: the windowed sampler on diffusers' long-video
  pipeline and its helpers: carried tail latents as conditioning tokens at a
  scene join, long takes window by window, chunked decoding.
- `engine.ltx.presets`: quality presets (steps, guidance) per checkpoint kind.
- `engine.ltx.tiny`: random-weight components built from configs in code.
- `engine.ltx.loading`: model resolution (``tiny-random``, a local folder, or a
  Hugging Face id from the local cache) and config/checkpoint checks.
"""
