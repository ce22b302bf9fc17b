"""What the LTX-Video and LTX-2 backends share on diffusers.

- `runtime`: loaded pipelines held in the model cache, per family;
- `memory`: memory modes (offload, fp8, tiling) applied to a pipeline;
- `gguf`: GGUF transformers, written and read, architecture checked;
- `latents`: causal-VAE frame arithmetic, input checks, tail latents;
- `frames`: a frame encoded to a latent, latents decoded in chunks;
- `loading`: a model's source, the device and dtype, a folder's tokenizer.
"""
