"""The story knowledge graph, the lowest layer: the story and nothing else.

The schema of ``kg_state.json`` and its bounded fields, strict JSON and
crash-safe persistence, the story folder's layout and paths confined to it,
the scene graph with memory decay, story lines, the prompt generator, story
edits without a user interface, the window rules of long takes, the weights
lookup and the observation contract between the engine and scoring.

This package imports no torch and nothing of presentation (matplotlib, rich,
Streamlit): drawing, colours and escaping for a screen live in ``studio``.
"""

from kg.errors import (
    CycleError,
    StoryConflictError,
    StoryError,
    StoryLockedError,
    StoryValidationError,
    UnsafePathError,
)
from kg.graph import (
    DynamicSceneGraph,
    ancestor_path,
    continuity_predecessor,
    continuous_descendants,
    generation_order,
    mark_stale_descendants,
)
from kg.memory import EntityMemory, remembered, salience_timeline, story_memory
from kg.prompt import ScenePrompt, build_prompt
from kg.schema import (
    Character,
    Environment,
    GenerationParams,
    SceneEdge,
    SceneNode,
    Scores,
    Settings,
    Story,
    Take,
    TakeFiles,
    TakeRef,
)
from kg.store import load_story, save_story, update_story

__all__ = [
    "Character",
    "CycleError",
    "DynamicSceneGraph",
    "EntityMemory",
    "Environment",
    "GenerationParams",
    "SceneEdge",
    "SceneNode",
    "ScenePrompt",
    "Scores",
    "Settings",
    "Story",
    "StoryConflictError",
    "StoryError",
    "StoryLockedError",
    "StoryValidationError",
    "Take",
    "TakeFiles",
    "TakeRef",
    "UnsafePathError",
    "ancestor_path",
    "build_prompt",
    "continuity_predecessor",
    "continuous_descendants",
    "generation_order",
    "load_story",
    "mark_stale_descendants",
    "remembered",
    "salience_timeline",
    "save_story",
    "story_memory",
    "update_story",
]
