"""Holding Python's cyclic garbage collector off while a large tree is built.

CPython's collector runs after every 700 net allocations of tracked objects
(containers: dicts, lists, tuples, model instances), and each older
generation's pass walks every object that survived before: building a tree
of hundreds of thousands of objects (a 10,000-scene story, the memory of
10,000 entities) on a large heap triggers passes whose cost grows with the
heap, which took two thirds of a story load and most of a memory query. The
trees built here hold no reference cycles, so reference counting frees all
of them; only the scans wait until the tree is built (see the CPython
``gc`` module documentation, "gc.disable").
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["building_tree"]

_gc_lock = threading.Lock()
_gc_holders = 0
_gc_was_enabled = False


@contextlib.contextmanager
def building_tree() -> Iterator[None]:
    """Hold Python's cyclic garbage collector off while a document is built.

    Re-entrant and shared across threads: the collector runs again when the
    last holder leaves, and only if it was running when the first came in.
    Reference counting still frees everything meanwhile; only the periodic
    scans of the whole heap (which grow with the heap) wait.
    """
    global _gc_holders, _gc_was_enabled
    with _gc_lock:
        if _gc_holders == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_holders += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0 and _gc_was_enabled:
                gc.enable()
