"""Sigma schedules stepped exactly as the model makers list them.

``FlowMatchEulerDiscreteScheduler.set_timesteps`` reshapes even explicit
sigma lists with the checkpoint's scheduler config: ``use_dynamic_shifting``
time-shifts them by ``mu`` (and refuses to run without one), ``shift``
shifts them statically, ``shift_terminal`` stretches them to end at that
value, and the Karras/exponential/beta options convert them. The makers step
their lists as given: Lightricks/LTX-2 ``ltx_pipelines`` feeds
``DISTILLED_SIGMA_VALUES`` and ``STAGE_2_DISTILLED_SIGMA_VALUES`` straight to
its Euler loop, and diffusers' own LTX-2 docs rebuild the scheduler with
``use_dynamic_shifting=False, shift_terminal=None`` before stage 2;
LTX-Video's reference inference steps its linear-quadratic schedule
unshifted. `exact_scheduler` is that rebuild: a private copy of the
pipeline's scheduler whose configuration leaves a given list alone, so the
sigmas that reach the transformer are the list, whatever folder it came from
(the pipeline's own scheduler is never changed).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = ["exact_scheduler", "UNSHIFTED"]

# The configuration under which set_timesteps leaves explicit sigmas alone.
UNSHIFTED = {
    "use_dynamic_shifting": False,
    "shift": 1.0,
    "shift_terminal": None,
    "use_karras_sigmas": False,
    "use_exponential_sigmas": False,
    "use_beta_sigmas": False,
    "invert_sigmas": False,
}


def exact_scheduler(
    scheduler: Any, sigmas: Sequence[float], device: torch.device | str
) -> tuple[Any, torch.Tensor]:
    """A copy of ``scheduler`` set to step ``sigmas`` exactly, and its timesteps.

    >>> from diffusers import FlowMatchEulerDiscreteScheduler
    >>> shifting = FlowMatchEulerDiscreteScheduler(
    ...     use_dynamic_shifting=True, shift_terminal=0.1
    ... )
    >>> copy, timesteps = exact_scheduler(shifting, [1.0, 0.5, 0.25], "cpu")
    >>> [round(float(s), 4) for s in copy.sigmas]
    [1.0, 0.5, 0.25, 0.0]
    >>> shifting.config.use_dynamic_shifting  # the pipeline's own is untouched
    True
    """
    config = dict(scheduler.config)
    config.update({k: v for k, v in UNSHIFTED.items() if k in config})
    copy = type(scheduler).from_config(config)
    values = np.asarray(sigmas, dtype=np.float32)
    copy.set_timesteps(sigmas=values.tolist(), device=device)
    return copy, copy.timesteps
