"""The model family's releases on Settings: what each needs and what each
preset runs, from the backend catalog (`engine.catalog.BackendSpec.versions`).

Torch-free: it reads the catalog and the model catalog's local status only;
which release a folder holds is read from its configs when a take is made,
and the take card says which it was.
"""

from __future__ import annotations

import streamlit as st

from engine.catalog import ModelVersion, spec
from studio.literal import markdown_literal as md

__all__ = ["release_rows", "releases_panel"]

PRESETS = ("fast", "balanced", "high")


def release_rows(backend: str) -> list[dict[str, str]]:
    """One row per release of ``backend``'s model family (none: no releases).

    >>> [r["release"] for r in release_rows("ltx2")]
    ['LTX-2.0 (19B)', 'LTX-2.3 (22B)', 'LTX-2.5 (22B)']
    >>> release_rows("animatic")
    []
    """
    rows = []
    for version in spec(backend).versions.values():
        rows.append(_row(version))
    return rows


def _row(version: ModelVersion) -> dict[str, str]:
    dev = version.presets["dev"]
    distilled = version.presets["distilled"]["balanced"]
    row = {
        "release": version.title,
        "text encoder": version.text_encoder,
        "models": ", ".join(version.hub_ids),
        "random-weight build": version.tiny_id,
        "recognised by": version.detected_by,
    }
    for name in PRESETS:
        row[f"dev {name}"] = dev[name].describe()
    row["distilled"] = distilled.describe()
    row["not verified offline"] = "; ".join(version.unverified) or "-"
    return row


def releases_panel(backend: str) -> None:
    """An expander listing the releases (shown for backends that have them)."""
    rows = release_rows(backend)
    if not rows:
        return
    with st.expander(f"{md(backend)}: model releases and their recipes"):
        st.caption(
            "Each release's presets are the makers' recipe (balanced) and "
            "cheaper or longer variants; a take records the release read from "
            "its model's configs and what it ran."
        )
        for row in rows:
            st.markdown(
                f"**{md(row['release'])}** · text encoder {md(row['text encoder'])}"
            )
            st.caption(
                f"models: {md(row['models'])} · random weights: "
                f"`{row['random-weight build']}` · recognised by "
                f"{md(row['recognised by'])}"
            )
            for name in PRESETS:
                st.caption(f"{name}: {md(row[f'dev {name}'])}")
            st.caption(f"distilled: {md(row['distilled'])}")
            if row["not verified offline"] != "-":
                st.caption(f"not verified offline: {md(row['not verified offline'])}")
