"""A local Ray cluster ends with the run that started it, even a killed one.

``ray.init()`` without an address starts a local cluster (GCS, raylet,
workers) as child processes of the driver. When the driver exits normally
``ray.shutdown()`` stops them; when it is killed outright (SIGKILL, the OOM
killer, a closed terminal) they go on for minutes, holding CPUs, memory and
a GPU. `guard_local_cluster` starts a small watchdog process holding the
read end of a pipe whose write end only the driver holds: whatever way the
driver ends, the kernel closes that end, the watchdog reads end-of-file and
terminates the cluster's processes (SIGTERM, then SIGKILL after a grace),
each checked by its start time so a reused process id is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import IO

__all__ = ["guard_local_cluster", "end_guard", "cluster_processes"]

_WATCHDOG = r"""
import json, sys
import psutil

procs = []
for pid, started in json.loads(sys.argv[1]):
    try:
        p = psutil.Process(pid)
        if abs(p.create_time() - started) < 0.01:
            procs.append(p)
    except psutil.Error:
        pass
sys.stdin.buffer.read()  # returns when the driver's end closes, however it ends
for p in procs:
    try:
        p.terminate()
    except psutil.Error:
        pass
_, alive = psutil.wait_procs(procs, timeout=5)
for p in alive:
    try:
        p.kill()
    except psutil.Error:
        pass
"""

_GUARDS: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []


def cluster_processes() -> list[tuple[int, float]]:
    """(pid, start time) of every process this driver started (the local
    cluster's GCS, raylet, dashboard and workers are its descendants)."""
    import psutil

    me = psutil.Process(os.getpid())
    watchdogs = {w.pid for w, _ in _GUARDS}
    found = []
    for child in me.children(recursive=True):
        if child.pid in watchdogs:
            continue
        try:
            found.append((child.pid, child.create_time()))
        except psutil.Error:
            continue
    return found


def guard_local_cluster() -> subprocess.Popen[bytes] | None:
    """Start the watchdog of the local cluster this driver just started
    (None when it started no process). Call it right after ``ray.init()``."""
    processes = cluster_processes()
    if not processes:
        return None
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, json.dumps(processes)],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C to the run's group is the run's
    )
    assert watchdog.stdin is not None, "the watchdog reads our pipe"
    _GUARDS.append((watchdog, watchdog.stdin))  # the pipe stays open with us
    return watchdog


def end_guard(watchdog: subprocess.Popen[bytes] | None) -> None:
    """After ``ray.shutdown()``: let the watchdog sweep what is left and end."""
    if watchdog is None:
        return
    for entry in [g for g in _GUARDS if g[0] is watchdog]:
        _GUARDS.remove(entry)
        entry[1].close()
    try:
        watchdog.wait(timeout=15)
    except subprocess.TimeoutExpired:
        watchdog.kill()
