"""A story line as one film, and as edit timelines (OpenTimelineIO).

`plan_film` decides the shots (selected takes along the line, repeated frames
skipped at continuous joins, dissolves at cuts); `assemble_film` encodes them
as one mp4; `engine.film.timeline` writes the same plan as OTIO, FCP X XML,
FCP 7 XML or a CMX 3600 EDL.
"""

from engine.film.assemble import Film, FilmCancelledError, assemble_film
from engine.film.plan import FilmPlan, FilmRefusedError, Shot, plan_film

__all__ = [
    "Film",
    "FilmCancelledError",
    "FilmPlan",
    "FilmRefusedError",
    "Shot",
    "assemble_film",
    "plan_film",
]
