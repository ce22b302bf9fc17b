"""The front ends: the Streamlit app and the ``storygraph`` command.

The app (``studio.app``, pages in ``studio.views``, widgets in
``studio.components``, ``studio.services`` as the pages' one door), the
command (``studio.cli``), the wiring both share (``studio.wiring``) and what
only a screen needs: user text shown literally (``studio.literal``), the
status colours (``studio.palette``) and the story graph drawn to a PNG
(``studio.graph_image``).

No torch at import time: the first paint must not wait for it.
"""
