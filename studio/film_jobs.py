"""Film assemblies that run beside the page, so the Screening page can stop one.

Assembling a long line takes minutes of encoding. The page starts it here on
a worker thread (one per film file; asking again while it runs returns the
running one), shows its progress on every rerun, and its Stop button sets
the assembly's cancel event, which `engine.film.assemble_film` checks
between shots: a stopped assembly leaves no film and no partial file. The
thread never calls Streamlit; the page polls `assembly`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import FilmCancelledError
from engine.film import FilmPlan, assemble_film
from kg.fields import clip_message

__all__ = ["Assembly", "start", "assembly", "stop", "forget"]


@dataclass
class Assembly:
    """One film being assembled: progress, and how it ended."""

    key: str
    frames_done: int = 0
    frames_total: int = 0
    finished: bool = False
    stopped: bool = False
    error: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return not self.finished

    def fraction(self) -> float:
        return min(1.0, self.frames_done / max(1, self.frames_total))


_LOCK = threading.Lock()
_ASSEMBLIES: dict[str, Assembly] = {}


def _key(folder: Path, planned: FilmPlan) -> str:
    return str(Path(folder).resolve() / planned.path)


def start(folder: Path, planned: FilmPlan) -> Assembly:
    """Start assembling ``planned`` (or return the assembly already running)."""
    key = _key(folder, planned)
    with _LOCK:
        current = _ASSEMBLIES.get(key)
        if current is not None and current.running:
            return current
        job = Assembly(key, frames_total=planned.frames)
        _ASSEMBLIES[key] = job

    def progress(done: int, total: int) -> None:
        job.frames_done, job.frames_total = done, total

    def work() -> None:
        try:
            assemble_film(
                folder, planned, progress=progress, cancelled=job.cancel.is_set
            )
        except FilmCancelledError:
            job.stopped = True
        except Exception as exc:  # noqa: BLE001 - an encoder failure, shown
            job.error = clip_message(str(exc) or type(exc).__name__)
        finally:
            job.finished = True

    job.thread = threading.Thread(target=work, name="film-assembly", daemon=True)
    job.thread.start()
    return job


def assembly(folder: Path, planned: FilmPlan) -> Assembly | None:
    """The assembly of this film started here, running or ended (None: none)."""
    with _LOCK:
        return _ASSEMBLIES.get(_key(folder, planned))


def stop(folder: Path, planned: FilmPlan) -> None:
    """Ask the running assembly to stop at the next shot."""
    job = assembly(folder, planned)
    if job is not None:
        job.cancel.set()


def forget(folder: Path, planned: FilmPlan) -> None:
    """Drop an ended assembly's record (its message has been shown)."""
    with _LOCK:
        job = _ASSEMBLIES.get(_key(folder, planned))
        if job is not None and not job.running:
            del _ASSEMBLIES[job.key]
