"""The story graph redrawn while a story generates (``storygraph run --live``).

After every finished scene the graph (status colours, salience fade, CLIP
scores) is written to ``<story>/graph.png``; when a display is available it is
also shown in a window that updates in place.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kg.graph import DynamicSceneGraph, generation_order, neighbourhood
from kg.store import load_story
from studio.graph_image import MAX_DRAWN_SCENES, draw_story_graph

__all__ = ["LiveGraph", "display_available"]

log = logging.getLogger(__name__)

AROUND_SCENES = 60  # scenes drawn around the latest one in a very large story


def display_available() -> bool:
    """True when a window can be opened (X11 or Wayland display set)."""
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LiveGraph:
    """Redraws ``<story>/graph.png`` on demand, and a window when asked.

    `update` may run on the job runner's thread (drawing uses a bare
    matplotlib Figure); `refresh_window` must run on the main thread.
    """

    def __init__(self, story_dir: str | os.PathLike[str], window: bool = False) -> None:
        self.story_dir = Path(story_dir)
        self.png = self.story_dir / "graph.png"
        self.window = window
        self.redraws = 0
        self._shown = 0
        self._figure = None

    def update(self, scene_id: object = None, *_: object) -> Path:
        """Draw the story as it is on disk now; returns the PNG path.

        Takes the runner's ``on_scene_end`` arguments: a story too large to
        draw whole is drawn around the scene that just ended (or the first).
        """
        graph = DynamicSceneGraph(load_story(self.story_dir))
        scenes = None
        if len(graph) > MAX_DRAWN_SCENES:
            center = scene_id if scene_id in graph else generation_order(graph)[0]
            scenes = neighbourhood(graph, str(center), AROUND_SCENES)
        draw_story_graph(graph, self.png, scenes)
        self.redraws += 1
        return self.png

    def refresh_window(self) -> None:
        """Show the latest PNG in a window (main thread; no-op without one)."""
        if not self.window or self.redraws == self._shown:
            return
        self._shown = self.redraws
        try:
            import matplotlib.image as mpimg
            import matplotlib.pyplot as plt

            if self._figure is None:
                plt.ion()
                self._figure = plt.figure("StoryGraph: " + self.story_dir.name)
            self._figure.clf()
            ax = self._figure.add_subplot()
            ax.imshow(mpimg.imread(self.png))
            ax.axis("off")
            plt.pause(0.001)
        except Exception as exc:  # a window is a convenience; the PNG is the output
            log.warning("cannot show the live graph window (%s); see %s", exc, self.png)
            self.window = False
