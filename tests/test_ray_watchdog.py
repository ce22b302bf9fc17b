"""A local Ray cluster ends with its driver, even one killed outright."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]

DRIVER = r"""
import json, sys
import ray
from engine.ray_watchdog import cluster_processes, guard_local_cluster
ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
watchdog = guard_local_cluster()
print(json.dumps([cluster_processes(), watchdog.pid]), flush=True)
sys.stdin.read()  # until the test kills us
"""


@pytest.mark.slow
def test_a_killed_driver_takes_its_local_cluster_with_it() -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        text=True,
    )
    try:
        assert driver.stdout is not None
        line = driver.stdout.readline()
        cluster, watchdog = json.loads(line)
        assert cluster, "ray.init started processes"
        procs = [psutil.Process(pid) for pid, _ in cluster if psutil.pid_exists(pid)]
        assert procs
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(30)
        gone, alive = psutil.wait_procs(procs, timeout=60)
        assert not alive, [p.info if hasattr(p, "info") else p.pid for p in alive]
        assert not psutil.pid_exists(watchdog) or psutil.Process(
            watchdog
        ).status() == psutil.STATUS_ZOMBIE
    finally:
        if driver.poll() is None:
            driver.kill()
