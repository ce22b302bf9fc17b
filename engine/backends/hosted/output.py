"""A hosted job's output: downloaded to a file, checked, decoded within bounds.

1. `fetch_output` streams the file to disk (never whole in memory, never
   twice), refusing it once it passes the size limit (a ``Content-Length``
   over it is refused before the first byte). Redirects are followed only
   within the host that served the URL (scheme, host and port), at most
   `MAX_REDIRECTS` of them; one to another host is a `HostedRedirectError`
   and nothing is fetched from there. Every read is within the job's
   deadline and checks its cancel flag.
2. `read_output` checks the file is a video container (an mp4/mov ``ftyp``
   box or a WebM header), reads the picture size its header claims (ffmpeg,
   nothing decoded) and refuses one over `MAX_OUTPUT_PIXELS`, then has
   ffmpeg decode at most the scene's frames, scaled and cropped to the
   story's size on the way: a small file claiming a huge picture or an
   endless clip costs neither memory nor time (ffmpeg's own ``max_pixels``
   guards the decoder too).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import numpy as np

from engine.backend import GenerationRequest
from engine.backends.hosted.transport import (
    HostedError,
    HostedRedirectError,
    JobDeadline,
    ProviderTransport,
)
from engine.redaction import outside_text

__all__ = [
    "MAX_REDIRECTS",
    "MAX_OUTPUT_PIXELS",
    "fetch_output",
    "check_video",
    "read_output",
]

MAX_REDIRECTS = 3
MAX_OUTPUT_PIXELS = 4096 * 4096  # 4K and square 4K fit; a lying header does not
HEADER_BYTES = 256 * 1024  # what ffmpeg may say about a file before we stop it


def _size(limit: int) -> str:
    mb = limit / (1024 * 1024)
    return f"{mb:g} MB" if mb >= 1 else f"{limit} bytes"


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


def _host(url: httpx.URL) -> str:
    """Where a URL points, without its path and query (they may hold a token)."""
    return f"{url.host}:{url.port}" if url.port else url.host


def fetch_output(
    url: str,
    dest: Path,
    limit: int,
    deadline: JobDeadline,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Stream ``url`` into ``dest`` (see the module docstring)."""
    target = httpx.URL(url)
    who = deadline.provider
    if target.scheme not in ("http", "https") or not target.host:
        raise HostedError(
            f"{who} gave an output address that is not an http(s) URL "
            f"({target.scheme or 'none'}:); nothing was downloaded"
        )
    home, here = _origin(target), _host(target)
    headers = {"Accept-Encoding": "identity"}  # the bytes as stored, no inflating
    with httpx.Client(
        transport=ProviderTransport(transport, deadline), follow_redirects=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            with client.stream("GET", target, headers=headers) as resp:
                if not resp.is_redirect:
                    _save(resp, dest, limit, deadline)
                    return
                nxt = resp.next_request
                if nxt is None or _origin(nxt.url) != home:
                    where = _host(nxt.url) if nxt is not None else "nowhere"
                    raise HostedRedirectError(
                        f"{who}'s output at {here} redirects to another host "
                        f"({where}); refused, only redirects within {here} are "
                        "followed, and nothing was downloaded"
                    )
                target = nxt.url
    raise HostedRedirectError(
        f"{who}'s output at {here} redirects more than {MAX_REDIRECTS} times; "
        "refused, nothing was downloaded"
    )


def _too_large(who: str, limit: int) -> HostedError:
    return HostedError(f"{who}'s output is larger than {_size(limit)}; not stored")


def _save(resp: httpx.Response, dest: Path, limit: int, deadline: JobDeadline) -> None:
    who = deadline.provider
    declared = resp.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(who, limit)
    coding = resp.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in ("", "identity"):  # asked for identity: nothing to inflate
        raise HostedError(
            f"{who}'s output came {coding}-compressed although it was asked for "
            "as stored; not stored"
        )
    size = 0
    with dest.open("wb") as out:
        for chunk in resp.iter_bytes():  # each network read: the deadline is asked
            deadline.check("while downloading the output")
            size += len(chunk)
            if size > limit:
                raise _too_large(who, limit)
            out.write(chunk)


def check_video(head: bytes, who: str = "the provider") -> None:
    """Refuse a file whose first bytes are not a video container's."""
    is_mp4 = len(head) >= 12 and head[4:8] == b"ftyp"
    is_webm = head[:4] == b"\x1a\x45\xdf\xa3"
    if not (is_mp4 or is_webm):
        shown = head[:16].decode("ascii", "replace")
        shown = "".join(c if c.isprintable() else "." for c in shown)
        raise HostedError(
            f"{who}'s output is not a video (starts {shown!r}); not stored"
        )


def _ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


_SIZE = re.compile(r"[ ,](\d+)x(\d+)[, \[]")


def probe_size(path: Path) -> tuple[int, int] | None:
    """The picture size the file's first video stream claims (header only)."""
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-i", str(path)]
    with subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stderr is not None
        try:
            said = proc.stderr.read(HEADER_BYTES).decode("utf-8", "replace")
        finally:
            proc.kill()
    for line in said.splitlines():
        if "Stream #" in line and "Video:" in line:
            match = _SIZE.search(line.split("Video:", 1)[1] + " ")
            if match:
                return int(match.group(1)), int(match.group(2))
    return None


def read_output(
    path: Path, request: GenerationRequest, deadline: JobDeadline
) -> np.ndarray:
    """The file's first ``request.num_frames`` frames at the request's size,
    ``[F, H, W, 3]`` uint8 (see the module docstring)."""
    who = deadline.provider
    with path.open("rb") as f:
        check_video(f.read(16), who)
    claimed = probe_size(path)
    if claimed is None:
        raise HostedError(f"{who}'s output holds no video stream ffmpeg can read")
    w, h = claimed
    if w * h > MAX_OUTPUT_PIXELS or not (w and h):
        raise HostedError(
            f"{who}'s output claims a {w}x{h} picture, more than a hosted clip "
            f"may have ({MAX_OUTPUT_PIXELS / 1e6:.1f} megapixels); not decoded"
        )
    width, height, count = request.width, request.height, request.num_frames
    fit = (
        f"scale={width}:{height}:force_original_aspect_ratio=increase"
        f":flags=bicubic,crop={width}:{height},setsar=1"
    )
    cmd = [
        _ffmpeg(), "-hide_banner", "-loglevel", "error", "-nostdin",
        "-max_pixels", str(MAX_OUTPUT_PIXELS), "-i", str(path),
        "-map", "0:v:0", "-vf", fit, "-frames:v", str(count),
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            cmd, capture_output=True, timeout=max(1.0, deadline.remaining())
        )
    except subprocess.TimeoutExpired:
        raise deadline.expired("while decoding the output") from None
    frame = width * height * 3
    got = len(done.stdout) // frame
    if got == 0:
        said = outside_text(done.stderr[-2000:], 200)
        raise HostedError(
            f"{who}'s output could not be decoded (ffmpeg: {said}); not stored"
        )
    data = np.frombuffer(done.stdout[: got * frame], dtype=np.uint8)
    return data.reshape(got, height, width, 3).copy()
