"""The Storyboard's scene editor: every field of a scene, save, revert, preview.

The editor's values are kept per scene in session state (namespace
``storyboard``), so switching scenes or pages, a failed validation or a
worker saving in between never loses what the user typed; the prompt preview
follows the typed values live. Save and Revert sit in a bar that stays in
view at the bottom of the window, the last save's confirmation beside them;
dialogue and sound are off, with the reason, on a backend without sound. On
one with sound a dialogue track can be stored for the scene
(`studio.voice_files`), and the editor warns when the dialogue (typed, or
the track) needs more time than the scene has (`kg.dialogue_time`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from kg.dialogue import MAX_DIALOGUE_TEXT
from kg.dialogue_time import dialogue_overrun, track_overrun
from kg.fields import MAX_PROMPT, MAX_SHORT_TEXT, MAX_TEXT, MAX_TITLE
from kg.schema import (
    CAMERA_MOVES,
    MAX_DIALOGUE_LINES,
    MAX_LINE_CHARS,
    MAX_SCENE_SECONDS,
    MAX_SOUND_EFFECTS,
    WEATHERS,
    DialogueLine,
    SceneNode,
)
from studio import services, voice_files
from studio.components.media import show_audio
from studio.literal import markdown_literal as md
from studio.palette import STATUS_TONES
from studio.session import forget_draft, remember_draft

__all__ = [
    "scene_editor",
    "editor_key",
    "field_values",
    "revert_edits",
    "show_scene",
    "has_unsaved",
    "EDITOR_NS",
]

EDITOR_NS = "storyboard"  # session-state namespace of the editor's drafts
# A select box holding None shows its placeholder ("Choose an option"), not the
# option's label: the editor holds "" for "no environment"/"environment default".
_NONE = ""
_OPTIONAL = ("environment_id", "weather")


_SHOWN_KEY = "storyboard.edit.shown"  # (story, scene) the widgets hold now


def editor_key(scene_id: str, field: str) -> str:
    """Session-state key of the editor widget of ``field`` (of ``scene_id``,
    the scene the editor shows).

    The editor shows one scene at a time and its widgets keep their keys from
    scene to scene, so choosing another scene updates the form in place in
    the browser instead of drawing a new one (`show_scene` swaps which
    scene's values they hold; every scene's typed values are kept as drafts).
    """
    return f"storyboard.edit.{field}"


def show_scene(folder: Path, scene_id: str) -> None:
    """Make the editor's widgets hold ``scene_id`` (call before `seed_draft`).

    When another scene (or story) was shown, its typed values are kept in
    its draft and the widgets' values are dropped, so seeding fills them
    with this scene's draft.
    """
    now = (str(folder), scene_id)
    shown = st.session_state.get(_SHOWN_KEY)
    if shown == now:
        return
    drafts = st.session_state.get(f"{EDITOR_NS}.drafts", {})
    held = {
        f: st.session_state[editor_key(scene_id, f)]
        for f in _FIELDS
        if editor_key(scene_id, f) in st.session_state
    }
    if shown is not None and held and tuple(shown) in drafts:
        drafts[tuple(shown)].update(held)
    for f in _FIELDS:
        st.session_state.pop(editor_key(scene_id, f), None)
    st.session_state[_SHOWN_KEY] = now


def has_unsaved(folder: Path, scene_id: str, field: str, saved: Any) -> bool:
    """Has the user typed into ``field`` of the scene without saving it?"""
    if st.session_state.get(_SHOWN_KEY) == (str(folder), scene_id):
        return st.session_state.get(editor_key(scene_id, field), saved) != saved
    slot = (str(folder), scene_id)
    draft = st.session_state.get(f"{EDITOR_NS}.drafts", {}).get(slot, {})
    base = st.session_state.get(f"{EDITOR_NS}.bases", {}).get(slot, {})
    return field in draft and draft[field] != base.get(field, saved)


def _scene_fields(
    values: dict[str, Any], characters: list[Any]
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The editor's values as scene fields (the "none" choices become None),
    and the problems of the typed dialogue (naming its lines)."""
    fields = {
        field: None if field in _OPTIONAL and value == _NONE else value
        for field, value in values.items()
        if field not in ("ambience", "effects")
    }
    # one line per window; an empty line keeps the window before's
    lines = str(fields.get("window_prompts", "")).rstrip().splitlines()
    fields["window_prompts"] = [line.strip() for line in lines]
    fields["dialogue"], problems = services.parse_dialogue(
        str(values.get("dialogue", "")), characters
    )
    effects = str(values.get("effects", "")).splitlines()
    fields["sound"] = {
        "ambience": str(values.get("ambience", "")).strip(),
        "effects": [e.strip() for e in effects if e.strip()],
    }
    return fields, problems


def field_values(scene: SceneNode, characters: list[Any]) -> dict[str, Any]:
    """A scene as the editor's widgets hold it."""
    return {
        "title": scene.title,
        "character_ids": list(scene.character_ids),
        "environment_id": scene.environment_id or _NONE,
        "pose": scene.pose,
        "motion": scene.motion,
        "weather": scene.weather or _NONE,
        "lighting": scene.lighting,
        "camera": scene.camera,
        "duration_s": float(scene.duration_s),
        "window_prompts": "\n".join(scene.window_prompts),
        "use_references": bool(scene.use_references),
        "seed": int(scene.seed),
        "prompt_override": scene.prompt_override or "",
        "negative_prompt": scene.negative_prompt,
        "dialogue": services.dialogue_text(scene.dialogue, characters),
        "ambience": scene.sound.ambience,
        "effects": "\n".join(scene.sound.effects),
    }


# Every key of `field_values`.
_FIELDS = (
    "title", "character_ids", "environment_id", "pose", "motion", "weather",
    "lighting", "camera", "duration_s", "window_prompts", "use_references",
    "seed", "prompt_override", "negative_prompt", "dialogue", "ambience",
    "effects",
)  # fmt: skip


def revert_edits(folder: Path, scene_id: str) -> None:
    """Drop the typed values of a scene: the editor shows the saved ones again."""
    forget_draft(EDITOR_NS, folder, scene_id, editor_key)


def _editor_widgets(view: services.StoryView, scene: SceneNode) -> dict[str, Any]:
    story = view.story
    k = scene.id
    chars = {c.id: c.name for c in story.characters}
    envs = {e.id: e.name for e in story.environments}
    values: dict[str, Any] = {}
    values["title"] = st.text_input(
        "Title", key=editor_key(k, "title"), max_chars=MAX_TITLE
    )
    values["character_ids"] = st.multiselect(
        "Characters",
        list(chars),
        format_func=lambda c: chars.get(c, c),
        key=editor_key(k, "character_ids"),
    )
    values["environment_id"] = st.selectbox(
        "Environment",
        [_NONE, *envs],
        format_func=lambda e: "— none —" if e == _NONE else envs.get(e, e),
        key=editor_key(k, "environment_id"),
    )
    values["use_references"] = st.checkbox(
        "Condition on reference images",
        key=editor_key(k, "use_references"),
        help="The reference images of its characters and environment (Cast) as "
        "keyframes placed before the clip, never as its first frame; stronger "
        "after a cut, weaker where the previous scene's tail is carried "
        "(Settings). Used by the ltx and ltx2 backends.",
    )
    st.caption(md(services.references_text(story, scene, values)))
    values["motion"] = st.text_input(
        "Motion",
        key=editor_key(k, "motion"),
        help="What happens; leads the prompt.",
        max_chars=MAX_TEXT,
    )
    values["pose"] = st.text_input(
        "Pose", key=editor_key(k, "pose"), max_chars=MAX_SHORT_TEXT
    )
    a, b = st.columns(2)
    values["weather"] = a.selectbox(
        "Weather",
        [_NONE, *WEATHERS],
        format_func=lambda w: "environment default" if w == _NONE else w,
        key=editor_key(k, "weather"),
    )
    values["camera"] = b.selectbox(
        "Camera", list(CAMERA_MOVES), key=editor_key(k, "camera")
    )
    values["lighting"] = st.text_input(
        "Lighting", key=editor_key(k, "lighting"), max_chars=MAX_SHORT_TEXT
    )
    a, b = st.columns(2)
    values["duration_s"] = a.number_input(
        "Duration (s)",
        step=0.5,
        format="%.2f",
        key=editor_key(k, "duration_s"),
        help=f"Up to {MAX_SCENE_SECONDS:.0f} s. Longer than the model's window "
        "(Settings) it is made as a long take, window by window.",
    )
    values["seed"] = b.number_input("Seed", step=1, key=editor_key(k, "seed"))
    windows = services.scene_windows(story, scene, values["duration_s"])
    values["window_prompts"] = st.text_area(
        f"Window prompts ({windows} window{'s' if windows != 1 else ''})",
        key=editor_key(k, "window_prompts"),
        max_chars=MAX_TEXT * 8,
        height=80,
        help="Optional, for a long take: one line per window saying what "
        "happens in it (it replaces the motion in that window's prompt). An "
        "empty line keeps the window before's; past the last line the last "
        "one goes on.",
    )
    silent = services.silent_backend_note(view)
    _sound_widgets(k, values, silent)
    _voice_widgets(view, scene, values, silent)
    values["prompt_override"] = st.text_area(
        "Prompt override",
        key=editor_key(k, "prompt_override"),
        max_chars=MAX_PROMPT,
        help="Left empty, the prompt is generated from the story graph.",
        height=80,
    )
    values["negative_prompt"] = st.text_area(
        "Negative prompt",
        key=editor_key(k, "negative_prompt"),
        height=68,
        max_chars=MAX_PROMPT,
    )
    return values


def _sound_widgets(k: str, values: dict[str, Any], silent: str | None) -> None:
    """Dialogue and sound: what backends with sound (ltx2) make with the picture;
    shown but off, with the reason, on a backend without sound (``silent``)."""
    if silent is not None:
        st.caption(md(silent))
    values["dialogue"] = st.text_area(
        "Dialogue",
        disabled=silent is not None,
        key=editor_key(k, "dialogue"),
        max_chars=MAX_DIALOGUE_TEXT,
        height=80,
        placeholder="Mara (quietly): Is anyone here?",
        help=f"One spoken line per row, in order: 'Name: words' or 'Name (how): "
        f"words', up to {MAX_DIALOGUE_LINES} lines of {MAX_LINE_CHARS} characters. "
        "Two characters with the same name: write the id of the one who speaks. "
        "A backslash keeps what would end a part: `\\:` `\\(` `\\)` in a name "
        "or a delivery, `\\n` for a line break in the words. The words reach "
        "the prompt in quotes; backends with sound (ltx2) speak them.",
    )
    a, b = st.columns(2)
    values["ambience"] = a.text_input(
        "Ambience",
        disabled=silent is not None,
        key=editor_key(k, "ambience"),
        max_chars=200,
        placeholder="rain on a tin roof",
        help="The scene's background sound, specific ('soft footsteps on tile').",
    )
    values["effects"] = b.text_area(
        "Sound effects",
        disabled=silent is not None,
        key=editor_key(k, "effects"),
        height=68,
        placeholder="a door creaks",
        help=f"One per row, up to {MAX_SOUND_EFFECTS}.",
    )


def _scene_seconds(
    view: services.StoryView, scene: SceneNode, values: dict[str, Any]
) -> float:
    """How long the scene as edited lasts."""
    if scene.num_frames is not None:
        return scene.num_frames / view.story.settings.fps
    try:
        return float(values.get("duration_s") or scene.duration_s)
    except (TypeError, ValueError):
        return float(scene.duration_s)


def _voice_widgets(
    view: services.StoryView,
    scene: SceneNode,
    values: dict[str, Any],
    silent: str | None,
) -> None:
    """The scene's dialogue track (upload, play, remove), and a warning when
    the dialogue needs more time than the scene has (`kg.dialogue_time`)."""
    if silent is not None:
        return  # nothing is spoken: the caption above says why
    folder = view.path
    seconds = _scene_seconds(view, scene, values)
    track = scene.dialogue_audio
    if track is None:
        typed, _ = services.parse_dialogue(
            str(values.get("dialogue", "")), view.story.characters
        )
        try:
            lines = [DialogueLine(**line) for line in typed]
        except ValueError:
            lines = []  # the problems are shown with the save bar
        overrun = dialogue_overrun(lines, seconds)
        if overrun:
            st.warning(md(overrun))
    st.markdown("**Dialogue track**")
    if track is not None:
        show_audio(st, folder, track, f"dialogue track of {scene.id}")
        try:
            length = voice_files.stored_seconds(folder, track)
        except services.StoryError as exc:
            st.warning(md(exc))
            length = None
        if length is not None:
            st.caption(
                md(
                    f"{track}: {length:.1f} s; the sound of every take is "
                    "this track and the picture is made to match it."
                )
            )
            longer = track_overrun(length, seconds)
            if longer:
                st.warning(md(longer))
        if st.button(
            "Remove the dialogue track", key=f"storyboard.voice.remove.{scene.id}"
        ):
            voice_files.remove_dialogue_audio(folder, scene.id)
            st.rerun()
        return
    upload = st.file_uploader(
        "Add a dialogue track (a recording or any TTS)",
        type=list(voice_files.AUDIO_TYPES),
        key=f"storyboard.voice.upload.{scene.id}",
        max_upload_size=voice_files.MAX_DIALOGUE_AUDIO_BYTES // (1024 * 1024),
        help="The scene's dialogue as sound: takes keep it as their sound and "
        "the picture is made to match it (ltx2).",
    )
    if upload is not None and st.button(
        "Store dialogue track", key=f"storyboard.voice.store.{scene.id}"
    ):
        try:
            voice_files.add_dialogue_audio(
                folder, scene.id, upload.name, upload.getvalue()
            )
        except services.StoryError as exc:
            st.error(md(exc))
            return
        st.rerun()


def _problem_list(problems: list[tuple[str, str]]) -> str:
    return "\n".join(f"- **{md(field)}**: {md(msg)}" for field, msg in problems)


def scene_editor(folder: Path, view: services.StoryView, scene: SceneNode) -> None:
    """The selected scene's editor: fields, save and revert, the prompt preview."""
    st.subheader(f"Scene · {scene.id}")
    status = services.live_statuses(folder).get(scene.id, scene.status)
    st.markdown(
        f"Status: :{STATUS_TONES[status]}[**{status}**]"
        + (f" · selected take {scene.selected_take}" if scene.selected_take else "")
    )
    values = _editor_widgets(view, scene)
    remember_draft(EDITOR_NS, folder, scene.id, values)
    characters = view.story.characters
    fields, typed = _scene_fields(values, characters)
    draft, problems = services.validate_scene(scene, fields)
    problems = typed + problems
    unsaved = values != field_values(scene, characters)
    if problems:
        st.error(
            "This scene cannot be saved yet; your values are kept, fix these:\n"
            + _problem_list(problems)
        )
    _save_bar(folder, scene.id, problems, unsaved)
    _prompt_preview(view, scene.id, draft)


# Kept in view at the bottom of the window while the fields above scroll by
# (`position: sticky` on the container Streamlit classes by its key); fixed
# text, no user text.
_SAVE_BAR_CSS = """<style>
.st-key-storyboard-savebar { position: sticky; bottom: 0; z-index: 10;
  background: var(--background-color, #fff); padding: 0.5rem 0;
  border-top: 1px solid rgba(49, 51, 63, 0.2); }
</style>"""
_SAVED_KEY = "storyboard.saved"  # (scene id, confirmation) of the last save
_SAVE_NOTE_KEY = "storyboard.save_note"  # (scene id, kind, text): once


def _save_bar(
    folder: Path,
    scene_id: str,
    problems: list,
    unsaved: bool,
) -> None:
    """Save and Revert, with the confirmation of the last save beside them.

    Save writes in its click callback, before the page runs, so the one run
    a click causes already shows the saved scene (no second run).
    """
    st.html(_SAVE_BAR_CSS)
    with st.container(key="storyboard-savebar"):
        save_col, revert_col = st.columns(2)
        save_col.button(
            "Save scene",
            key="storyboard.save",
            type="primary" if unsaved else "secondary",
            width="stretch",  # never disabled: a click right after typing must count
            on_click=_save,
            args=(folder, scene_id),
        )
        revert_col.button(
            "Revert",
            key="storyboard.revert",
            disabled=not unsaved,
            on_click=revert_edits,
            args=(folder, scene_id),
            width="stretch",
        )
        note = st.session_state.pop(_SAVE_NOTE_KEY, None)
        if note is not None and note[0] == scene_id:
            _, kind, text = note
            if kind == "error":
                st.error(text)
            else:
                st.toast(text)
        saved_id, saved = st.session_state.get(_SAVED_KEY, (None, ""))
        if unsaved and not problems:
            st.caption("Unsaved changes: the preview below shows them.")
        elif saved_id == scene_id and not unsaved:
            st.caption(f":green[:material/check:] {saved}")


def _save(folder: Path, scene_id: str) -> None:
    """Save's click callback: the scene as typed (the widgets' values), if valid.

    Problems are already listed above the buttons; a refused save leaves its
    reason for the run that follows.
    """
    try:
        view = services.story_view(folder)
        scene = view.scene(scene_id)
    except (services.StoryError, KeyError, OSError):
        return  # gone since the page was drawn: the run shows the story as it is
    characters = view.story.characters
    saved = field_values(scene, characters)
    values = {
        f: st.session_state.get(editor_key(scene_id, f), v) for f, v in saved.items()
    }
    fields, typed = _scene_fields(values, characters)
    _, problems = services.validate_scene(scene, fields)
    if typed or problems:
        return  # already shown above the buttons
    if values == saved:
        note = f"{scene_id}: nothing changed since the last save."
        st.session_state[_SAVE_NOTE_KEY] = (scene_id, "toast", note)
        return
    try:
        stale = services.save_scene(folder, scene_id, fields)
    except services.StoryValidationError as exc:
        text = "Not saved; your values are kept:\n" + _problem_list(exc.problems)
        st.session_state[_SAVE_NOTE_KEY] = (scene_id, "error", text)
        return
    except services.StoryError as exc:
        text = f"Not saved; your values are kept: {md(exc)}"
        st.session_state[_SAVE_NOTE_KEY] = (scene_id, "error", text)
        return
    msg = f"Saved {md(scene_id)}."
    if stale:
        msg += f" Now stale (generate again): {', '.join(md(s) for s in stale)}."
    st.session_state[_SAVED_KEY] = (scene_id, msg)  # shown beside the button


def _prompt_preview(
    view: services.StoryView, scene_id: str, draft: SceneNode | None
) -> None:
    prompt, memory = services.preview_prompt(view, scene_id, draft)
    with st.container(border=True):
        st.markdown("**Prompt preview**" + ("" if draft else " (last saved values)"))
        st.code(prompt.text, language=None, wrap_lines=True)
        note = f"{prompt.tokens} / {prompt.budget} tokens"
        if prompt.dropped:
            note += " · dropped to fit: " + ", ".join(p.kind for p in prompt.dropped)
        st.caption(note)
        if memory:
            st.markdown(
                "**Remembered** (still in story memory, not in this scene): "
                + ", ".join(f"{md(m.name)} ({m.salience:.2f})" for m in memory)
            )
        else:
            st.caption("Nothing else is remembered at this point of the story.")
