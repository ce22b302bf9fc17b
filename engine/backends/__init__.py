"""Video backends, one folder each; each registers itself when imported.

``engine.backend.get_backend(name)`` imports a backend's module on first use,
as its entry in the torch-free catalog (`engine.catalog`) names it:

- ``animatic/``: CPU storyboard clips from the scene's attributes, no weights;
- ``ltx/``: LTX-Video on diffusers (windowed sampler, tail latents, long takes);
- ``ltx2/``: LTX-2 on diffusers, video with synchronized sound;
- ``hosted/``: hosted APIs (Replicate, fal) through their official clients;
- ``diffusers/``: what the two LTX backends share (the loaded-model runtime,
  memory modes, GGUF, latent arithmetic, VAE frames in and out, loading
  helpers). It is not a backend and imports none.

Backends do not import each other (an import-linter contract).
"""
