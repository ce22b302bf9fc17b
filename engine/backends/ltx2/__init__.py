"""The ``ltx2`` backend: LTX-2 on diffusers, video with synchronized sound.

`backend` is built from:

- `tiny`: random-weight LTX-2 components built from configs in code, a tiny
  Gemma 3 text encoder and a tokenizer without files included;
- `loading`: model resolution (``tiny-random``, a local folder, a Hugging
  Face id in the local cache) and the latent upsampler when the folder has
  one;
- `audio`: audio latent arithmetic, the audio tail that matches a video tail,
  and decoding latents to a waveform;
- `sample`: the denoising loop over both streams with carried tail latents
  as conditioning;
- `references`: reference images as keyframe tokens before the clip, or as
  in-context references for an IC-LoRA;
- `loras`: the take's LoRA stack through diffusers' adapter API, checked
  against the model's layers before any weight is read;
- `supplied_audio`: a scene's dialogue track held in the audio stream (the
  makers' audio-to-video route).

Shared with ``ltx``: `engine.backends.diffusers`; its presets and rules: its
entry in `engine.catalog`.
"""
