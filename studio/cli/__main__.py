"""``python -m studio.cli``: the ``storygraph`` command."""

from studio.cli import main

main()
