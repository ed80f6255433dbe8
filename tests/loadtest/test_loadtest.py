"""Runs the load-test scenarios (``scenarios.py``) in a pytest process of their own.

The load test patches the interpreter with gevent (``loadtest.prepare()``), as
the CLI does when it runs one; inside the shared test session that would
change threads and sockets under every later test of the same worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_the_load_test_scenarios_pass_in_their_own_process():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(HERE / "scenarios.py")],
        cwd=HERE.parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:  # 5 (no tests collected) fails too
        raise AssertionError(result.stdout[-6000:] + result.stderr[-2000:])
    assert " passed" in result.stdout.splitlines()[-1]
