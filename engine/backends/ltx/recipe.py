"""What an LTX-Video take records of how it was stepped (`kg.take.SamplingRecipe`).

The windowed sampler (`engine.backends.ltx.extend`) steps LTX-Video's own
linear-quadratic sigmas (``linear_quadratic_schedule`` of diffusers'
``LTXConditionPipeline``, as LTX-Video's reference inference) exactly in
every window, with CFG at the request's guidance.
"""

from __future__ import annotations

from engine.backend import GenerationRequest
from engine.catalog import checkpoint_kind
from kg.take import SamplingRecipe, StageRecipe

__all__ = ["sampling_recipe"]


def sampling_recipe(
    request: GenerationRequest, model: str, join_strength: float | None
) -> SamplingRecipe:
    """The recipe of a take: its kind, every window's sigmas and guidance, and
    the strength a carried tail held at the join (None: nothing carried)."""
    from diffusers.pipelines.ltx.pipeline_ltx_condition import (
        linear_quadratic_schedule,
    )

    sigmas = [round(float(s), 6) for s in linear_quadratic_schedule(request.steps)]
    return SamplingRecipe(
        checkpoint_kind=checkpoint_kind(model),
        kind_source="the model's name (the loader refuses a folder whose "
        "configs and weights disagree)",
        stages=[
            StageRecipe(
                name="every window",
                width=request.width,
                height=request.height,
                sigmas=sigmas,
                guidance=request.guidance,
            )
        ],
        join_strength=join_strength,
    )
