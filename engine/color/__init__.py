"""Colour drift corrected where it starts: toward a story line's anchor.

`anchor` finds what a take is held to (its environment's reference image,
the line's first scene, or the take it continues from) and its colour
statistics; `transfer` moves pixels' colours in CIELAB (Reinhard's or MKL's
transfer); `correct` applies that transfer to a finished take's frames,
keeps the original clip beside it and undoes it. Latent backends pull their
latents toward the anchor's latent statistics instead
(`engine.backends.diffusers.adain`).
"""
