"""LTX-2 on diffusers: video with synchronized audio, both carried across joins.

The ``ltx2`` backend (`engine.backends.ltx2`) is built from these parts:

- `engine.ltx2.tiny`: random-weight LTX-2 components built from configs in
  code, a tiny Gemma 3 text encoder and a tokenizer without files included.
- `engine.ltx2.loading`: model resolution (``tiny-random``, a local folder,
  a Hugging Face id in the local cache), the latent upsampler when the folder
  has one, and GGUF transformers.
- `engine.ltx2.audio`: audio latent arithmetic, the audio tail that matches a
  video tail, and decoding latents to a waveform.
- `engine.ltx2.sample`: the denoising loop over both streams with carried
  tail latents as conditioning, window by window.
"""
