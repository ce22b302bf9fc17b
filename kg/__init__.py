"""Story knowledge graph: schema, graph with memory decay, persistence, prompts.

This package imports no torch.
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
