"""The diffusers pipeline class LTX-Video runs on.

One home for the class, imported by the loader and by the tiny test builder
alike (`engine.backends.ltx.loading`, `engine.backends.ltx.tiny`).
"""

from __future__ import annotations

import logging

__all__ = ["pipeline_class"]


def pipeline_class() -> type:
    """diffusers' ``LTXI2VLongMultiPromptPipeline``: the pipeline whose
    components, prompt encoding and packing the windowed sampler
    (`engine.backends.ltx.extend`) uses; any supported checkpoint loads into it."""
    from diffusers.pipelines.ltx.pipeline_ltx_i2v_long_multi_prompt import (
        LTXI2VLongMultiPromptPipeline,
    )

    # It warns on every construction that ComfyUI parity wants another
    # scheduler; ours keeps LTX-Video's own schedule on purpose.
    logging.getLogger(
        "diffusers.pipelines.ltx.pipeline_ltx_i2v_long_multi_prompt"
    ).setLevel(logging.ERROR)
    return LTXI2VLongMultiPromptPipeline
