"""Files that are not what they claim, or never end, and a delete that follows a link.

One test per class, each over several variants:

- a FIFO in place of every file kind a story holds (``kg_state.json``, a take's
  mp4, a frame, a reference image, a sound, tail latents, embeddings): every
  page and command that reads it finishes with a named error;
- decompression bombs (PNG and JPEG headers claiming far more pixels than the
  file holds) as take frames and reference images, through the Storyboard,
  Screening and Cast pages and the engine;
- lying and odd ``.wav`` headers, and a long sound, through ``read_wav`` and
  the dataset export;
- a crafted GGUF header, refused before any reader is built;
- a take record that lies about its clip (frames, rate), a clip longer than
  a scene, and clips that cannot play: the film and timelines trust the file;
- partial films of a killed ``film``;
- a symbolic link in the stories root, deleted through the library and the
  Stories page, its target intact; Duplicate of a story holding links and
  special files, and one that fails half-way.

A read that blocks on a FIFO would hang the test: each such read runs in a
daemon thread joined with a deadline (a guard, not a synchronisation), and
the FIFO is opened for writing afterwards so nothing stays blocked.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import signal
import socket
import struct
import threading
import wave
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from engine.backend import BackendError
from engine.continuity import load_tail_latents, plan_continuity
from engine.dataset.options import ExportOptions
from engine.dataset.write import export_dataset
from engine.film import FilmCancelledError, FilmRefusedError, assemble_film, plan_film
from engine.film.timeline import render_timeline
from engine.references import ReferenceFileError, chosen_references, read_references
from engine.sound import read_wav, write_wav
from engine.video import decode_clips, read_png, read_video, write_video
from kg.errors import StoryError, StoryFileError, StoryValidationError
from kg.store import load_story, update_story
from studio import services
from studio.testing import page_test, shown_text
from studio.views.storyboard import SELECTED_KEY
from tests.conftest import generate_small_example

GUARD_S = 60.0  # far beyond any of these reads; only a blocked one gets near


# Helpers -------------------------------------------------------------------------


def finishes(fn: Callable[[], Any], *fifos: Path) -> Any:
    """``fn()``'s result (or the exception it raised, returned) when it ends
    within `GUARD_S`; a failure naming it when it blocks."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            box["value"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(GUARD_S)
    if thread.is_alive():
        for fifo in fifos:  # let the blocked reader go
            with contextlib.suppress(OSError):
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{getattr(fn, '__name__', fn)} blocked on a FIFO")
    return box["value"]


def make_fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path):
        path.unlink()
    os.mkfifo(path)
    return path


def bomb_png(width: int = 50_000, height: int = 50_000) -> bytes:
    """A 100-byte PNG whose header claims ``width`` x ``height`` RGB pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def bomb_jpeg(width: int = 60_000, height: int = 60_000) -> bytes:
    """A small JPEG whose frame header (SOF0) is patched to claim a huge size."""
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "blue").save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    at = data.index(b"\xff\xc0") + 5  # marker, length, precision
    data[at : at + 4] = struct.pack(">HH", height, width)
    return bytes(data)


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "red").save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example story generated once (animatic, 96x64 at 8 fps)."""
    return generate_small_example(tmp_path_factory.mktemp("master") / "story")


@pytest.fixture
def story(master: Path, outputs: Path) -> Path:
    """A fresh copy of the generated story in the outputs root."""
    folder = outputs / "lighthouse"
    shutil.copytree(master, folder)
    return folder


def take_file(folder: Path, scene: str, kind: str) -> Path:
    rel = getattr(load_story(folder).scene(scene).selected.files, kind)
    return folder / rel


def page(name: str, folder: Path, scene: str | None = None):  # noqa: ANN201
    at = page_test(name, folder)
    if scene is not None:
        at.session_state[SELECTED_KEY] = scene
    return at


def page_finishes(name: str, folder: Path, *fifos: Path, scene: str | None = None):  # noqa: ANN201
    at = finishes(lambda: page(name, folder, scene).run(), *fifos)
    assert not isinstance(at, BaseException), at
    assert not at.exception, at.exception
    return at


def stories(root: Path) -> list[str]:
    """Every entry of the outputs root but the studio's last-story marker."""
    return sorted(p.name for p in root.iterdir() if p.name != ".studio-last-story")


def command_finishes(args: list[str], *fifos: Path):  # noqa: ANN201 - a Result
    """``storygraph ARGS`` run in-process, guarded like `finishes`."""
    from typer.testing import CliRunner

    from studio.cli import app

    result = finishes(lambda: CliRunner().invoke(app, args), *fifos)
    assert not isinstance(result, BaseException), result
    return result


def set_take_file(folder: Path, scene: str, kind: str, rel: str) -> Path:
    def mutate(st) -> None:  # noqa: ANN001
        setattr(st.scene(scene).selected.files, kind, rel)

    update_story(folder, mutate)
    return folder / rel


def add_reference(folder: Path, rel: str, character: str = "mara") -> None:
    def mutate(st) -> None:  # noqa: ANN001
        for c in st.characters:
            if c.id == character:
                c.reference_images = [rel]

    update_story(folder, mutate)


# FIFOs -------------------------------------------------------------------------


KINDS = ["state", "clip", "frame", "reference", "sound", "latents", "embeddings"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_fifo_anywhere_in_a_story_never_blocks(story: Path, kind: str) -> None:
    if kind == "state":
        fifo = make_fifo(story / "kg_state.json")
        err = finishes(lambda: load_story(story), fifo)
        assert isinstance(err, StoryValidationError) and "FIFO" in str(err)
        entries = finishes(services.list_stories, fifo)
        assert "FIFO" in entries[0].error
        at = page_finishes("stories", story, fifo)
        assert "FIFO" in shown_text(at)
        for name in ("storyboard", "screening", "cast"):  # the story open before
            text = shown_text(page_finishes(name, story, fifo))
            assert "cannot be opened" in text and "FIFO" in text, name
        for args in (["validate"], ["show"], ["film"], ["export"]):
            result = command_finishes([*args, str(story)], fifo)
            assert result.exit_code != 0 and "FIFO" in result.output, args
        err = finishes(lambda: services.duplicate_story(story, "copy"), fifo)
        assert isinstance(err, (StoryError, OSError))
        assert not any(
            p.name.startswith((".copy", "copy")) for p in story.parent.iterdir()
        )
    elif kind == "clip":
        fifo = make_fifo(take_file(story, "meeting", "video"))
        err = finishes(lambda: plan_film(load_story(story), story), fifo)
        assert isinstance(err, FilmRefusedError)
        assert "meeting" in str(err) and "take 1" in str(err) and "FIFO" in str(err)
        err = finishes(lambda: read_video(fifo), fifo)
        assert isinstance(err, StoryFileError) and "FIFO" in str(err)
        text = shown_text(page_finishes("storyboard", story, fifo, scene="meeting"))
        assert "clip of take 1" in text and "FIFO" in text
        assert "FIFO" in shown_text(page_finishes("screening", story, fifo))
        for args in (["film"], ["timeline", "--format", "otio"]):
            result = command_finishes([*args, str(story)], fifo)
            assert result.exit_code != 0 and "FIFO" in result.output, args
            assert "take 1" in result.output, args
        summary = finishes(
            lambda: export_dataset(story, story / "dataset" / "x", ExportOptions()),
            fifo,
        )
        assert not isinstance(summary, BaseException), summary
    elif kind == "frame":
        fifo = make_fifo(take_file(story, "arrival", "last_frame"))
        err = finishes(lambda: read_png(fifo), fifo)
        assert isinstance(err, StoryFileError) and "FIFO" in str(err)
        plan = finishes(
            lambda: plan_continuity(
                story,
                load_story(story),
                "meeting",
                supports_latent=False,
                backend_name="animatic",
                width=96,
                height=64,
            ),
            fifo,
        )
        assert not isinstance(plan, BaseException), plan
        assert plan.previous_last_frame is None and "no last frame" in plan.note
        text = shown_text(page_finishes("storyboard", story, fifo, scene="arrival"))
        assert "last frame of take 1" in text and "FIFO" in text
        assert "FIFO" in shown_text(page_finishes("screening", story, fifo))
    elif kind == "reference":
        add_reference(story, "references/mara/face.png")
        fifo = make_fifo(story / "references/mara/face.png")
        chosen = chosen_references(load_story(story), "arrival", continuous=False)
        err = finishes(lambda: read_references(story, chosen, 96, 64), fifo)
        assert isinstance(err, ReferenceFileError) and "FIFO" in str(err)
        assert finishes(lambda: services.reference_thumbnail(fifo), fifo) is None
        assert "Cannot be shown" in shown_text(page_finishes("cast", story, fifo))
    elif kind == "sound":
        fifo = make_fifo(
            set_take_file(story, "arrival", "audio", "scenes/arrival/take-1.wav")
        )
        err = finishes(lambda: read_wav(fifo), fifo)
        assert isinstance(err, StoryFileError) and "FIFO" in str(err)
        text = shown_text(page_finishes("storyboard", story, fifo, scene="arrival"))
        assert "sound of take 1" in text and "FIFO" in text
        out = story / "dataset" / "x"
        summary = finishes(lambda: export_dataset(story, out, ExportOptions()), fifo)
        assert not isinstance(summary, BaseException), summary
        assert any("FIFO" in s.detail for s in summary.late_skips), summary.late_skips
        result = command_finishes(["export", str(story), "--out", str(out)], fifo)
        assert result.exit_code == 0 and "FIFO" in result.output, result.output
    elif kind == "latents":
        rel = "scenes/arrival/take-1.latents.safetensors"
        fifo = make_fifo(set_take_file(story, "arrival", "tail_latents", rel))
        err = finishes(lambda: load_tail_latents(fifo), fifo)
        assert isinstance(err, StoryFileError) and "FIFO" in str(err)
        update_story(
            story, lambda st: setattr(st.settings, "continuity_mode", "latent")
        )
        plan = finishes(
            lambda: plan_continuity(
                story,
                load_story(story),
                "meeting",
                supports_latent=True,
                backend_name="ltx",
                width=96,
                height=64,
            ),
            fifo,
        )
        assert not isinstance(plan, BaseException), plan
        assert plan.used == "frame" and "no tail latents" in plan.note
    else:
        rel = "scenes/arrival/take-1.embeddings.safetensors"
        fifo = make_fifo(set_take_file(story, "arrival", "embeddings", rel))
        copy = finishes(lambda: services.duplicate_story(story, "copy"), fifo)
        assert not isinstance(copy, BaseException), copy
        assert any("embeddings" in s and "FIFO" in s for s in copy.left_out)
        page_finishes("storyboard", story, fifo, scene="arrival")
        page_finishes("insights", story, fifo)


# Decompression bombs --------------------------------------------------------------


@pytest.mark.parametrize(
    "bomb",
    [bomb_png(), bomb_png(9_000, 6_000), bomb_jpeg()],
    ids=["png-50000x50000", "png-9000x6000", "jpeg-60000x60000"],
)
def test_bombs_are_refused_before_decoding(story: Path, bomb: bytes) -> None:
    # as the last frame of a take: engine, Storyboard and Screening
    last = take_file(story, "arrival", "last_frame")
    last.write_bytes(bomb)
    with pytest.raises(StoryFileError, match="megapixel"):
        read_png(last)
    plan = plan_continuity(
        story,
        load_story(story),
        "meeting",
        supports_latent=False,
        backend_name="animatic",
        width=96,
        height=64,
    )
    assert plan.previous_last_frame is None and "megapixel" in plan.note
    text = shown_text(page_finishes("storyboard", story, scene="arrival"))
    assert "last frame of take 1" in text and "megapixel" in text
    # as a first frame: the Screening filmstrip says so and shows the rest
    take_file(story, "meeting", "first_frame").write_bytes(bomb)
    at = page_finishes("screening", story)
    assert "first frame of take 1" in shown_text(at) and "megapixel" in shown_text(at)
    assert len(at.get("image")) == 6  # 4 scenes, two frames each, two refused

    # as a reference image: generation, the observer's cache, Cast, uploads
    add_reference(story, "references/mara/face.png")
    ref = story / "references/mara/face.png"
    ref.parent.mkdir(parents=True)
    ref.write_bytes(bomb)
    chosen = chosen_references(load_story(story), "arrival", continuous=False)
    with pytest.raises(ReferenceFileError, match="megapixel"):
        read_references(story, chosen, 96, 64)
    from scoring.references import load_image

    with pytest.raises(StoryFileError, match="megapixel"):
        load_image(ref)
    assert services.reference_thumbnail(ref) is None
    assert "Cannot be shown" in shown_text(page_finishes("cast", story))
    name = "bomb.jpg" if bomb[:2] == b"\xff\xd8" else "bomb.png"
    with pytest.raises(StoryError, match="megapixel|too many pixels"):
        services.add_reference_image(story, "mara", name, bomb)


# Sound files -------------------------------------------------------------------------


def _wav(path: Path, *, channels: int = 1, width: int = 2, rate: int = 8_000,
         frames: int = 8_000) -> bytes:  # fmt: skip
    buf = io.BytesIO()
    with wave.open(buf, "wb") as fh:
        fh.setnchannels(channels)
        fh.setsampwidth(width)
        fh.setframerate(rate)
        fh.writeframes(b"\x00" * (frames * channels * width))
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _patch(path: Path, marker: bytes, offset: int, fmt: str, value: int) -> None:
    data = bytearray(path.read_bytes())
    at = data.index(marker) + offset
    data[at : at + struct.calcsize(fmt)] = struct.pack(fmt, value)
    path.write_bytes(bytes(data))


def test_odd_and_long_sounds_never_crash_or_bloat_export(story: Path) -> None:
    wav = set_take_file(story, "arrival", "audio", "scenes/arrival/take-1.wav")
    refused = {
        "8-bit": lambda: _wav(wav, width=1),
        "24-bit": lambda: _wav(wav, width=3),
        "no channels": lambda: (_wav(wav), _patch(wav, b"fmt ", 10, "<H", 0)),
        "65535 channels": lambda: (_wav(wav), _patch(wav, b"fmt ", 10, "<H", 65535)),
        "4 GHz": lambda: (_wav(wav), _patch(wav, b"fmt ", 12, "<I", 4_000_000_000)),
        "not a wav": lambda: wav.write_bytes(png_bytes()),
        "empty data": lambda: _wav(wav, frames=0),
    }
    for name, make in refused.items():
        make()
        with pytest.raises(StoryFileError, match=r"take-1\.wav"):
            read_wav(wav, max_seconds=2.0)
        assert name  # each variant refused, naming the file
    # a header claiming 2 GB of samples, an odd byte count: what is there is read
    _wav(wav, channels=2)
    _patch(wav, b"data", 4, "<I", 0x7FFFFFF0)
    samples, rate = read_wav(wav)
    assert samples.shape == (2, 8_000) and rate == 8_000
    _wav(wav, channels=2)
    wav.write_bytes(wav.read_bytes() + b"\x01")
    _patch(wav, b"data", 4, "<I", 8_000 * 4 + 1)
    assert read_wav(wav)[0].shape == (2, 8_000)
    # ten minutes of sound for a 2 s take: the export reads what the clip needs
    write_wav(wav, np.zeros((1, 8_000 * 600), np.float32), 8_000)
    assert read_wav(wav, max_seconds=2.0)[0].shape[1] <= 2 * 8_000 + 1
    out = story / "dataset" / "long"
    summary = export_dataset(story, out, ExportOptions())
    assert not summary.late_skips, summary.late_skips
    (written,) = out.rglob("arrival-take1.wav")
    assert written.stat().st_size < 8_000 * 2 * 3  # seconds, not ten minutes
    # an 8-bit sound: the clip is skipped with the file named, the rest exported
    _wav(wav, width=1)
    summary = export_dataset(story, story / "dataset" / "odd", ExportOptions())
    assert summary.late_skips and summary.rows > 0  # the rows that use the clip
    assert all("take-1.wav" in s.detail for s in summary.late_skips)
    assert all("8-bit" in s.detail for s in summary.late_skips)


# GGUF -------------------------------------------------------------------------------


def test_a_crafted_gguf_header_is_refused_before_any_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gguf
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize

    from engine.backends.diffusers.gguf import check_gguf, read_gguf_info

    good = tmp_path / "good.gguf"
    writer = GGUFWriter(str(good), arch="ltx2")
    writer.add_array("tokenizer.tokens", ["a", "bb", "ccc"])
    writer.add_tensor(
        "model.diffusion_model.audio_patchify_proj.weight", np.ones((32, 8), np.float32)
    )
    writer.add_tensor(
        "model.diffusion_model.patchify_proj.weight", np.ones((64, 32), np.float32)
    )
    block = quantize(np.ones((32, 64), np.float32), GGMLQuantizationType.Q8_0)
    writer.add_tensor(
        "model.diffusion_model.transformer_blocks.0.attn1.to_q.weight",
        block,
        raw_dtype=GGMLQuantizationType.Q8_0,
    )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    assert check_gguf(good, "ltx2").width == 64
    data = good.read_bytes()

    def crafted(name: str, marker: bytes | None, offset: int, value: int) -> Path:
        at = offset if marker is None else data.index(marker) + len(marker) + offset
        out = bytearray(data)
        out[at : at + 8] = struct.pack("<Q", value)
        path = tmp_path / f"{name}.gguf"
        path.write_bytes(bytes(out))
        return path

    cases = {
        crafted("tensors", None, 8, 2**40): "tensor count",
        crafted("kv", None, 16, 2**40): "key/value count",
        crafted("array", b"tokenizer.tokens", 8, 2**40): "array tokenizer.tokens",
        crafted("string", b"general.architecture", 4, 2**40): "needs",
        crafted(
            "dims", b"model.diffusion_model.patchify_proj.weight", 4, 2**40
        ): "past the end",
    }
    short = tmp_path / "short.gguf"
    short.write_bytes(data[: len(data) - 100])
    cases[short] = "past the end"
    foreign = tmp_path / "foreign.gguf"
    foreign.write_bytes(b"PK\x03\x04" + bytes(200))
    cases[foreign] = "not a GGUF file"

    def no_reader(*args: object, **kwargs: object) -> None:
        raise AssertionError("GGUFReader built before the header was checked")

    monkeypatch.setattr(gguf, "GGUFReader", no_reader)
    for path, field in cases.items():
        with pytest.raises(BackendError, match=field) as exc:
            read_gguf_info(path)
        assert path.name in str(exc.value)


# Take records that lie, clips that cannot play ------------------------------------


def _set_params(folder: Path, scene: str, **values: int) -> None:
    def mutate(st) -> None:  # noqa: ANN001
        for key, value in values.items():
            setattr(st.scene(scene).selected.params, key, value)

    update_story(folder, mutate)


def test_the_film_trusts_the_clip_not_the_take_record(story: Path) -> None:
    truth = plan_film(load_story(story), story)
    meeting = truth.shots[1]
    # 100,000 frames at 1 fps: once 27 hours of film; then 100,000 at 24 fps,
    # and a record shorter than its clip
    for values in (
        {"num_frames": 100_000, "fps": 1},
        {"num_frames": 100_000},
        {"num_frames": 1},
    ):
        _set_params(story, "meeting", **values)
        plan = plan_film(load_story(story), story)
        assert plan.frames == truth.frames and plan.shots[1] == meeting, values
        assert any("its clip holds" in n for n in plan.notes), plan.notes
    film = assemble_film(story, plan)
    assert len(read_video(film.path)) == truth.frames

    clip = take_file(story, "meeting", "video")
    sound = clip.with_name("take-1.sound.wav")
    _wav(sound)
    broken = {
        "not a video": lambda: clip.write_bytes(b"\x00" * 64 + bytes(range(256)) * 8),
        "no video stream": lambda: shutil.copy(sound, clip),
        "empty": lambda: clip.write_bytes(b""),
        "a folder": lambda: (clip.unlink(), clip.mkdir()),
        # 131 frames at 1 fps: longer than any scene may be
        "too long": lambda: (
            clip.rmdir() if clip.is_dir() else None,
            write_video(clip, np.zeros((131, 16, 16, 3), np.uint8), 1),
        ),
    }
    for name, make in broken.items():
        make()
        with pytest.raises(FilmRefusedError) as exc:
            plan_film(load_story(story), story)
        text = str(exc.value)
        assert "no playable take" in text and "meeting" in text, name
        assert "take 1" in text and "take-1.mp4" in text, name
        # timelines are made from the same plan: none exports a clip that cannot play
        at = page_finishes("screening", story)
        assert not at.get("download_button"), name
        assert "cannot be played" in shown_text(at), name
    # a clip that decodes to fewer frames than it holds is named, never padded
    clip.unlink()
    write_video(clip, np.zeros((5, 64, 96, 3), np.uint8), 8)
    with pytest.raises(ValueError, match=r"take-1\.mp4 decodes to 5 of its 9 frames"):
        list(decode_clips([(clip, 9)], (96, 64)))
    # a truncated clip plays what it holds (its last packets are cut off; a
    # quarter of the file: an ultrafast preview's last packet alone can be
    # larger than a few hundred bytes)
    full = take_file(story, "arrival", "video").read_bytes()
    clip.write_bytes(full[: len(full) * 3 // 4])
    plan = plan_film(load_story(story), story)
    assert 0 < plan.shots[1].frames < truth.shots[0].frames
    text = render_timeline(story, plan, "otio", name="t", media_base=None)
    assert "take-1.mp4" in text


# Partial films --------------------------------------------------------------------


def test_partial_films_of_a_killed_film_are_removed(
    story: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.film import assemble as assemble_module
    from studio.cli import film as film_cli

    films = story / "films"
    films.mkdir()
    stale = [films / ".lamp-room-0123456789ab.partial-a1b2c3.mp4"]
    stale.append(stale[0].with_name(".lamp-room-0123456789ab.partial-a1b2c3-video.mp4"))
    fresh = films / ".dawn-0123456789ab.partial-d4e5f6.mp4"
    for path in [*stale, fresh]:
        path.write_bytes(b"half a film")
    for path in stale:  # left by a film killed an hour ago
        os.utime(path, (path.stat().st_atime - 3600, path.stat().st_mtime - 3600))
    plan = plan_film(load_story(story), story)
    assemble_film(story, plan)
    assert not any(p.exists() for p in stale)
    assert fresh.exists()  # another assembly may be writing it right now
    fresh.unlink()

    # SIGTERM to a running `storygraph film`: it ends like Ctrl-C, nothing left
    def killed_midway(real):  # noqa: ANN001, ANN202
        def decode(*args: object, **kwargs: object):  # noqa: ANN202
            for i, frame in enumerate(real(*args, **kwargs)):
                if i == 3:
                    os.kill(os.getpid(), signal.SIGTERM)
                yield frame

        return decode

    # clips of one encoding decode through one decoder, others clip by clip
    for name in ("decode_clips", "decode_joined"):
        real = getattr(assemble_module, name)
        monkeypatch.setattr(assemble_module, name, killed_midway(real))
    plan = plan_film(load_story(story), story, "dawn")
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(FilmCancelledError, match="cancelled"):
        film_cli._assemble(story, plan, None)
    assert [p.name for p in films.iterdir() if ".partial-" in p.name] == []
    assert not list(films.glob("dawn-*.mp4"))
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back


# Links in the stories root, and Duplicate -----------------------------------------


def test_a_link_in_the_stories_root_is_removed_never_followed(
    story: Path, outputs: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere" / "kept"
    shutil.copytree(story, elsewhere)
    before = sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*"))
    # variant 1: an absolute link to a story outside the root, through the library
    os.symlink(elsewhere, outputs / "shortcut")
    entries = {e.slug: e for e in services.list_stories()}
    assert entries["shortcut"].link == str(elsewhere)
    assert services.delete_story(outputs / "shortcut") == str(elsewhere)
    assert not os.path.lexists(outputs / "shortcut")
    assert sorted(p.relative_to(elsewhere) for p in elsewhere.rglob("*")) == before
    # variant 2: a relative link to another story in the root, through the page
    os.symlink("lighthouse", outputs / "alias")
    at = page_test("stories").run()
    assert "Link to" in shown_text(at) and "alias" in shown_text(at)
    at.button(key="stories.del.alias").click().run()
    assert "Remove the link" in shown_text(at) and "is kept" in shown_text(at)
    at.button(key="stories.del_yes.alias").click().run()
    assert not at.exception
    assert "Removed the link alias" in shown_text(at)
    assert not os.path.lexists(outputs / "alias")
    assert load_story(story).title == "The Lighthouse Keeper's Daughter"
    assert take_file(story, "arrival", "video").is_file()
    # variant 3: the open story is the link; deleting it closes it, keeps the story
    os.symlink(elsewhere, outputs / "open-link")
    at = page_test("stories", outputs / "open-link").run()
    at.button(key="stories.del.open-link").click().run()
    at.button(key="stories.del_yes.open-link").click().run()
    assert not at.exception and (elsewhere / "kg_state.json").is_file()
    # a real story folder is still deleted; nothing outside the root ever is
    with pytest.raises(StoryError, match="not a story folder"):
        services.delete_story(elsewhere)
    assert services.delete_story(story) is None and not story.exists()


def test_duplicate_copies_real_files_only_and_never_half(
    story: Path, outputs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not part of the story")
    os.symlink(outside, story / "scenes" / "linked-folder")
    os.symlink(outside / "secret.txt", story / "notes.txt")
    make_fifo(story / "scenes" / "arrival" / "pipe")
    monkeypatch.chdir(story / "scenes" / "meeting")  # a short path for the socket
    sock = socket.socket(socket.AF_UNIX)
    sock.bind("take-1.sock")
    try:
        copy = finishes(lambda: services.duplicate_story(story, "copy"))
    finally:
        sock.close()
    assert not isinstance(copy, BaseException), copy
    left = "\n".join(copy.left_out)
    for name, kind in (
        ("scenes/linked-folder", "symbolic link"),
        ("notes.txt", "symbolic link"),
        ("scenes/arrival/pipe", "FIFO"),
        ("scenes/meeting/take-1.sock", "socket"),
    ):
        assert f"{name} (a {kind}" in left or f"{name} ({kind}" in left, left
    copied = {p.relative_to(copy.folder).as_posix() for p in copy.folder.rglob("*")}
    assert "scenes/arrival/take-1.mp4" in copied and "notes.txt" not in copied
    assert not any(p.is_symlink() for p in copy.folder.rglob("*"))
    assert load_story(copy.folder).title.endswith("(copy)")

    # a copy that fails half-way (a full disk) leaves nothing behind
    from studio import story_copy

    real, calls = story_copy._copy_file, []

    def disk_full(src: Path, dst: Path) -> str | None:
        calls.append(src)
        if len(calls) == 5:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(story_copy, "_copy_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        services.duplicate_story(story, "second")
    assert stories(outputs) == ["copy", "lighthouse"]  # no hidden half copy
    # the same through the Stories page: an error, and no half copy listed
    calls.clear()
    at = page_test("stories").run()
    at.button(key="stories.dup.lighthouse").click().run()
    at.text_input(key="stories.duplicate.lighthouse.slug").input("third")
    at.button(key="FormSubmitter:stories.duplicate.lighthouse-Duplicate").click().run()
    assert not at.exception
    assert "could not be duplicated" in shown_text(at)
    assert stories(outputs) == ["copy", "lighthouse"]
    # and a copy that works reports what it left out
    monkeypatch.setattr(story_copy, "_copy_file", real)
    at.button(key="FormSubmitter:stories.duplicate.lighthouse-Duplicate").click().run()
    assert not at.exception
    text = shown_text(at)
    assert "Duplicated lighthouse as third" in text and "Not copied" in text
    assert "FIFO" in text
