"""A small complete story: two characters, two environments, a branch."""

from __future__ import annotations

from kg.graph import DynamicSceneGraph
from kg.schema import Character, Environment, SceneNode, Story

__all__ = ["example_story", "blank_story", "synthetic_story"]

_FIXED_TIME = "2026-01-01T00:00:00+00:00"  # so the example is byte-stable


def blank_story(title: str) -> Story:
    return Story(title=title)


def example_story(title: str = "The Lighthouse Keeper's Daughter") -> Story:
    """Mara and the keeper on a stormy coast; the story branches at the cliff."""
    story = Story(
        title=title,
        description="A storm, a failing light and a choice at the cliff edge.",
        created_at=_FIXED_TIME,
        characters=[
            Character(
                id="mara",
                name="Mara",
                description="a young woman back from the city",
                visual_attributes=["long red hair", "yellow oilskin coat"],
                importance=1.5,
            ),
            Character(
                id="keeper",
                name="the old keeper",
                description="a bearded man in a navy wool sweater",
                visual_attributes=["white beard", "navy sweater", "brass lantern"],
            ),
        ],
        environments=[
            Environment(
                id="harbour",
                name="the harbour",
                description="small fishing boats moored along a stone quay",
                lighting="late afternoon light",
                default_weather="overcast",
            ),
            Environment(
                id="lighthouse",
                name="the lighthouse",
                description="a white stone tower on a black cliff above the sea",
                lighting="dusk, blue hour",
                default_weather="storm",
            ),
        ],
    )
    g = DynamicSceneGraph(story)
    g.add_scene(
        SceneNode(
            id="arrival",
            title="Arrival at the harbour",
            character_ids=["mara"],
            environment_id="harbour",
            motion="Mara steps off a ferry onto the quay",
            pose="holding a small suitcase",
            camera="pan_right",
            seed=11,
        )
    )
    g.add_scene(
        SceneNode(
            id="meeting",
            title="The keeper waits",
            character_ids=["mara", "keeper"],
            environment_id="harbour",
            motion="the keeper raises his lantern in greeting",
            pose="Mara walks towards him",
            camera="zoom_in",
            weather="rain",
            seed=12,
        ),
        after="arrival",
    )
    g.add_scene(
        SceneNode(
            id="climb",
            title="The climb",
            character_ids=["mara", "keeper"],
            environment_id="lighthouse",
            motion="both climb the cliff path into the wind",
            pose="heads bowed against the rain",
            camera="tilt_up",
            seed=13,
        ),
        after="meeting",
    )
    g.add_scene(
        SceneNode(
            id="lamp-room",
            title="The light goes out",
            character_ids=["keeper"],
            environment_id="lighthouse",
            motion="the great lamp flickers and dies",
            pose="the keeper stares at the dark lens",
            lighting="darkness, lantern glow",
            camera="static",
            seed=14,
        ),
        after="climb",
    )
    g.add_scene(
        SceneNode(
            id="cliff-edge",
            title="Alone at the cliff edge",
            character_ids=["mara"],
            environment_id="lighthouse",
            motion="Mara lifts the brass lantern towards a ship in the storm",
            pose="standing at the edge, coat whipping in the wind",
            camera="zoom_out",
            weather="storm",
            seed=15,
        ),
        after="climb",
        transition="cut",
    )
    g.add_scene(
        SceneNode(
            id="dawn",
            title="Dawn over the harbour",
            character_ids=["mara"],
            environment_id="harbour",
            motion="fishing boats return through calm water",
            pose="Mara watches from the quay",
            lighting="golden dawn light",
            weather="clear",
            camera="pan_left",
            seed=16,
        ),
        after="cliff-edge",
    )
    return story


def synthetic_story(n_scenes: int, motion_chars: int = 0) -> Story:
    """A story of ``n_scenes`` for scale checks and benchmarks.

    The example's cast on a main line with a cut branch every 10 scenes;
    ``motion_chars`` pads each scene's motion to that length (at most the
    schema's limit).
    """
    story = example_story(f"Synthetic {n_scenes}")
    story.scenes, story.edges = [], []
    graph = DynamicSceneGraph(story)
    chars = [c.id for c in story.characters]
    envs = [e.id for e in story.environments]
    main_prev: str | None = None
    for i in range(n_scenes):
        motion = f"beat {i} of the story"
        if motion_chars > len(motion):
            motion += (" and the wind rises" * (motion_chars // 19 + 1))[
                : motion_chars - len(motion)
            ]
        scene = SceneNode(
            id=f"s{i:05d}",
            title=f"Scene {i}",
            character_ids=[chars[i % len(chars)]] if i % 3 else list(chars),
            environment_id=envs[(i // 4) % len(envs)],
            motion=motion,
            seed=i,
        )
        if i and i % 10 == 0 and main_prev is not None:
            graph.add_scene(scene, after=f"s{i - 5:05d}", transition="cut")
        else:
            graph.add_scene(scene, after=main_prev)
            main_prev = scene.id
    return story
