"""Hostile story files: every input ends in a clean load or exit 2 naming a path.

A hypothesis fuzzer mutates a valid ``kg_state.json`` over the classes an
attacker (or a broken tool) produces: encodings, nesting, numbers, duplicate
keys, non-finite floats, surrogates, control and markup characters, sizes,
and a folder or a link where the file should be. For each: ``load_story`` gives
a `Story` or a `StoryValidationError` whose problems name a JSON path with a
short message; ``storygraph validate`` and ``show`` exit 0 or 2, never with a
traceback; and whatever loads saves and loads again unchanged.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from kg.errors import StoryValidationError
from kg.example import example_story
from kg.store import dump_story, load_story, parse_story, save_story
from studio.cli import app
from tests.conftest import json_paths, set_at

runner = CliRunner()
MAX_MESSAGE = 400  # a problem's message stays short whatever the input held

BASE = json.loads(dump_story(example_story()))

# Pieces of text that mean something to a terminal, Rich, Markdown or HTML.
NASTY_TEXT = [
    "[bold red]x[/]",
    "[/]",
    "\x1b[2J\x1b]0;pwned\x07",
    "\x9b31m",
    "a\x00b",
    "\ud800",
    "<img src=x onerror=alert(1)>",
    "![x](http://127.0.0.1:9/p.png)",
    "$\\href{javascript:alert(1)}{x}$",
    ":red[**x**]",
    "\u202eevil",
    "x" * 5_000,
]


PATHS = [p for p in json_paths(BASE) if p]


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def hostile_texts(draw: st.DrawFn) -> str:
    """A kg_state.json text with one hostile change."""
    doc = json.loads(json.dumps(BASE))
    kind = draw(
        st.sampled_from(
            [
                "value",
                "nasty_text",
                "number",
                "duplicate_key",
                "non_finite",
                "nesting",
                "big_string",
                "raw",
            ]
        )
    )
    path = draw(st.sampled_from(PATHS))
    if kind == "value":
        set_at(doc, path, draw(_json_values))
    elif kind == "nasty_text":
        set_at(doc, path, draw(st.sampled_from(NASTY_TEXT)))
    elif kind == "number":
        set_at(doc, path, "@@NUMBER@@")
        text = json.dumps(doc, indent=2)
        number = draw(
            st.sampled_from(
                ["1" * 5000, "-" + "9" * 40, "1e999", "-1e400", "1.5e-400", "2"]
            )
        )
        return text.replace('"@@NUMBER@@"', number)
    elif kind == "non_finite":
        set_at(doc, path, "@@NF@@")
        value = draw(st.sampled_from(["NaN", "Infinity", "-Infinity"]))
        return json.dumps(doc, indent=2).replace('"@@NF@@"', value)
    elif kind == "nesting":
        set_at(doc, path, "@@NEST@@")
        depth = draw(st.sampled_from([40, 1_000, 100_000]))
        return json.dumps(doc, indent=2).replace('"@@NEST@@"', _nested(depth))
    elif kind == "big_string":
        set_at(doc, path, "x" * draw(st.sampled_from([2_001, 200_000, 5_000_000])))
    elif kind == "duplicate_key":
        text = json.dumps(doc, indent=2)
        key = draw(st.sampled_from(['"revision"', '"edges"', '"title"', '"id"']))
        head, sep, tail = text.partition(key + ":")
        if not sep:
            return text
        value = draw(st.sampled_from(["[]", "7", '"dup"']))
        return head + f"{key}: {value}, " + key + ":" + tail
    elif kind == "raw":
        text = json.dumps(doc, indent=2)
        cut = draw(st.integers(0, len(text)))
        junk = draw(st.text(max_size=20))
        return text[:cut] + junk + text[cut:]
    return json.dumps(doc, indent=2, ensure_ascii=draw(st.booleans()))


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _check_problems(exc: StoryValidationError) -> None:
    assert exc.problems, "a refused story names at least one problem"
    for json_path, message in exc.problems:
        assert json_path and isinstance(json_path, str)
        assert json_path == "$" or json_path[0] != "$" or json_path.startswith("$[")
        assert len(message) <= MAX_MESSAGE, message[:200]
        assert len(json_path) <= 200


def _write(story_dir: Path, data: bytes) -> None:
    story_dir.mkdir(parents=True, exist_ok=True)
    (story_dir / "kg_state.json").write_bytes(data)


def _loads_cleanly_or_names_a_path(story_dir: Path) -> None:
    try:
        story = load_story(story_dir)
    except StoryValidationError as exc:
        _check_problems(exc)
        result = runner.invoke(app, ["validate", str(story_dir)])
        assert result.exit_code == 2, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        return
    # accepted: it saves, and what is saved loads back unchanged
    text = dump_story(story)
    save_story(story, story_dir)
    again = load_story(story_dir)
    assert dump_story(again).replace(
        f'"revision": {again.revision}', f'"revision": {story.revision}'
    ) == dump_story(story)
    assert parse_story(text).title == story.title
    for command in (["validate", str(story_dir)], ["show", str(story_dir)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 0, result.output
        assert result.exception is None


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=hostile_texts(), encoding=st.sampled_from(["utf-8", "utf-16", "latin-1"]))
def test_fuzzed_state_loads_or_is_refused_by_path(
    tmp_path: Path, text: str, encoding: str
) -> None:
    story_dir = tmp_path / f"s{time.monotonic_ns()}"
    data = text.encode(encoding, "surrogatepass" if encoding == "utf-8" else "replace")
    _write(story_dir, data)
    _loads_cleanly_or_names_a_path(story_dir)


def _sub(old: str, new: str):  # noqa: ANN202 - a text change
    return lambda text: text.replace(old, new, 1)


@pytest.mark.parametrize(
    ("change", "path_part"),
    [
        (_sub('"revision": 1', '"revision": 1, "revision": 5'), "revision"),
        (_sub('"edges": [', '"edges": [], "edges": ['), "edges"),
        (_sub('"importance": 1.5', '"importance": NaN'), "importance"),
        (_sub('"importance": 1.5', '"importance": Infinity'), "importance"),
        (_sub('"seed": 11', '"seed": ' + "9" * 5000), "seed"),
        (_sub('"lighting": ""', '"lighting": "\\ud800"'), "lighting"),
        (_sub('"lighting": ""', '"lighting": "a\\u0000b"'), "lighting"),
        (_sub('"lighting": ""', '"lighting": "\\u001b[2J"'), "lighting"),
        (_sub('"motion": "', '"motion": "' + "m" * 3000), "motion"),
    ],
)
def test_damaging_values_are_refused_on_load(change, path_part: str) -> None:  # noqa: ANN001
    story = example_story()
    story.revision = 1
    text = dump_story(story)
    changed = change(text)
    assert changed != text, "the test's replacement must hit"
    with pytest.raises(StoryValidationError) as info:
        parse_story(changed)
    _check_problems(info.value)
    assert any(path_part in p for p, _ in info.value.problems), info.value.problems


def test_fifty_megabyte_value_is_refused_quickly_with_a_short_message(
    tmp_path: Path,
) -> None:
    doc = json.loads(json.dumps(BASE))
    doc["scenes"][0]["camera"] = "x" * 50_000_000
    _write(tmp_path, json.dumps(doc).encode())
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 2
    assert "scenes[0].camera" in result.output
    assert len(result.output) < 2_000


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xfe{\x00",
        b'{"title": "\xc3\x28"}',
        b"[" * 200_000,
        b"",
        b"null",
        b'"just a string"',
    ],
)
def test_malformed_bytes_exit_2(tmp_path: Path, data: bytes) -> None:
    _write(tmp_path, data)
    with pytest.raises(StoryValidationError) as info:
        load_story(tmp_path)
    _check_problems(info.value)
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert (
        result.exit_code == 2
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )


def test_folder_fifo_and_link_where_the_state_file_should_be(tmp_path: Path) -> None:
    (tmp_path / "a" / "kg_state.json").mkdir(parents=True)
    os.makedirs(tmp_path / "b")
    os.mkfifo(tmp_path / "b" / "kg_state.json")  # must not block the loader
    (tmp_path / "c").mkdir()
    save_story(example_story(), tmp_path / "real")
    os.symlink(tmp_path / "real" / "kg_state.json", tmp_path / "c" / "kg_state.json")
    for name, reason in (("a", "folder"), ("b", "regular file"), ("c", "link")):
        with pytest.raises(StoryValidationError) as info:
            load_story(tmp_path / name)
        assert reason in info.value.problems[0][1]
        result = runner.invoke(app, ["validate", str(tmp_path / name)])
        assert result.exit_code == 2, result.output


def test_cli_prints_user_text_literally(tmp_path: Path) -> None:
    story = example_story()
    story.title = "[bold red]Markup[/] and [/] $x$"
    story.scenes[0].title = "[link=http://x]click[/link]"
    save_story(story, tmp_path)
    for command in (["validate", str(tmp_path)], ["show", str(tmp_path)]):
        result = runner.invoke(app, command, color=True)
        assert result.exit_code == 0, result.output
    assert "[bold red]Markup[/]" in runner.invoke(app, ["show", str(tmp_path)]).output
    doc = json.loads((tmp_path / "kg_state.json").read_text())
    doc["scenes"][0]["motion"] = "\x1b]0;pwned\x07"
    (tmp_path / "kg_state.json").write_text(json.dumps(doc))
    result = runner.invoke(app, ["validate", str(tmp_path)], color=True)
    assert result.exit_code == 2
    assert "\x1b]0" not in result.output and "\x07" not in result.output


def test_graph_refuses_a_huge_story_and_draws_a_neighbourhood(tmp_path: Path) -> None:
    from kg.graph import DynamicSceneGraph
    from kg.schema import SceneNode, Story

    story = Story(title="Long")
    g = DynamicSceneGraph(story)
    for i in range(400):
        g.add_scene(
            SceneNode(id=f"s{i}", title=f"S {i}"), after=f"s{i - 1}" if i else None
        )
    save_story(story, tmp_path)
    out = tmp_path / "g.png"
    result = runner.invoke(app, ["graph", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 2 and "--around" in result.output
    assert not out.exists()
    result = runner.invoke(
        app, ["graph", str(tmp_path), "--out", str(out), "--around", "s200"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("title", ["t" * 300, "bad\x1b[31m", "nul\x00"])
def test_new_with_a_bad_title_names_the_option(tmp_path: Path, title: str) -> None:
    result = runner.invoke(app, ["new", str(tmp_path / "s"), "--title", title])
    assert result.exit_code == 2, result.output
    assert (
        "--title" in result.output
        and result.exception is None
        or isinstance(result.exception, SystemExit)
    )
    assert not (tmp_path / "s" / "kg_state.json").exists()
