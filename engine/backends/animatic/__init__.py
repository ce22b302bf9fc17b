"""The ``animatic`` backend: storyboard clips on the CPU (`backend`), drawn by `art`."""
