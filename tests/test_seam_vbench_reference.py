"""Our VBench dimensions against VBench's own loops on the same features.

The reference functions below are VBench's code (``Vchitect/VBench``,
commit 45e79ec), reduced to the part after feature extraction:

- ``vbench/subject_consistency.py``, ``subject_consistency()``: for every
  frame ``i > 0``, ``(max(0, cos(f[i-1], f[i])) + max(0, cos(f[0], f[i]))) / 2``
  summed and divided by ``len(images) - 1``, over every frame ``load_video``
  returns; ``vbench/background_consistency.py`` runs the same loop on CLIP
  image features.
- ``vbench/dynamic_degree.py``, ``DynamicDegree.get_frames`` (every
  ``max(1, round(fps / 8))``-th frame), ``set_params`` (``thres = 6 * scale /
  256``, ``count_num = round(4 * count / 16)``) and ``check_move``.

Our observer must give the same numbers on the features it stores.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812 - VBench's spelling
from safetensors import safe_open

from kg.example import example_story
from kg.observation import ObservationRequest
from kg.schema import GenerationParams, Take, TakeFiles
from scoring import motion
from scoring.observer import Observer
from scoring.testing import tiny_clip, tiny_dino


def vbench_consistency_loop(features: torch.Tensor) -> float:
    """VBench's per-frame loop (subject_consistency.py), on ``[N, D]`` features."""
    video_sim = 0.0
    former = first = None
    for i in range(len(features)):
        image_features = F.normalize(features[i].unsqueeze(0), dim=-1, p=2)
        if i == 0:
            first = image_features
        else:
            sim_pre = max(0.0, F.cosine_similarity(former, image_features).item())
            sim_fir = max(0.0, F.cosine_similarity(first, image_features).item())
            video_sim += (sim_pre + sim_fir) / 2
        former = image_features
    return video_sim / (len(features) - 1)


def vbench_check_move(score_list: list[float], scale: int, count: int) -> bool:
    """VBench's DynamicDegree.set_params + check_move."""
    thres, count_num = 6.0 * (scale / 256.0), round(4 * (count / 16.0))
    moving = 0
    for score in score_list:
        if score > thres:
            moving += 1
        if moving >= count_num:
            return True
    return False


@pytest.fixture(scope="module")
def observed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vbench")
    rng = np.random.default_rng(3)
    n = 40  # more frames than the old 16-frame sample
    base = (rng.random((1, 40, 56, 3)) * 255).astype(np.uint8)
    shift = np.stack([np.roll(base[0], 2 * t, axis=1) for t in range(n)])
    story = example_story()
    scene = story.scenes[0]
    params = GenerationParams(
        backend="animatic", prompt="waves", seed=0, steps=1, guidance=1.0,
        width=56, height=40, num_frames=n, fps=8,
    )  # fmt: skip
    take = Take(index=1, params=params, files=TakeFiles(video="x.mp4"))
    request = ObservationRequest.of_take(tmp, story, scene.id, take, shift, None)
    obs = Observer(tiny_clip(device="cpu"), tiny_dino(device="cpu")).observe(request)
    with safe_open(str(tmp / obs.embeddings), "pt") as fh:
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    return obs.scores, tensors, n


def test_consistency_runs_on_every_frame_as_vbench(observed):
    scores, tensors, n = observed
    assert tensors["frame_indices"].tolist() == list(range(n))
    assert scores.subject_consistency == pytest.approx(
        vbench_consistency_loop(tensors["dino_image"]), abs=1e-6
    )
    assert scores.background_consistency == pytest.approx(
        vbench_consistency_loop(tensors["clip_image"]), abs=1e-6
    )


@pytest.mark.parametrize("fps", [4, 6, 8, 12, 24, 30])
@pytest.mark.parametrize("level", [3.0, 5.0, 6.5, 9.0, 13.0])
def test_dynamic_degree_decides_as_vbench_at_every_frame_rate(fps, level):
    frames = 49
    count = len(range(0, frames, motion.sample_step(fps)))
    assert motion.sample_step(fps) == max(1, round(fps / 8))  # get_frames
    rng = np.random.default_rng(int(fps * 10 + level))
    pairs = list(rng.uniform(0.5, 1.5, count - 1) * level)
    ours = motion.dynamic_degree(pairs, count, fps)
    # the flow runs at a 256-pixel short side: VBench's scale is 256 there
    assert ours == (1.0 if vbench_check_move(pairs, 256, count) else 0.0)
