"""The windows of a long LTX-Video take (shared with LTX-2:
`engine.backends.diffusers.windows`)."""

from engine.backends.diffusers.windows import fuse_overlap, window_spans

__all__ = ["window_spans", "fuse_overlap"]
