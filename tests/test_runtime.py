"""The process-wide runtime settings the package makes before torch and numpy load (bot/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys


def fresh(code: str, environment: dict[str, str]) -> str:
    """What `code` prints in a fresh process with this environment (the settings are read once, at load)."""
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def without(name: str) -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != name}


def test_torch_threads_spin_briefly_unless_the_operator_says_otherwise() -> None:
    # GOMP_SPINCOUNT as torch's OpenMP sees it in a process that imports the bot, then torch.
    code = "import bot, os, torch; print(os.environ['GOMP_SPINCOUNT'], torch.get_num_threads() > 0)"
    assert fresh(code, without("GOMP_SPINCOUNT")) == "10000 True"
    assert fresh(code, without("GOMP_SPINCOUNT") | {"GOMP_SPINCOUNT": "300000"}) == "300000 True"


def test_numpy_runs_on_one_thread_unless_the_operator_says_otherwise() -> None:
    # numpy's OpenBLAS starts its helper threads when it loads: the threads of a process that imports the bot,
    # then numpy, are the main one and those.
    code = "import bot, os, numpy; print(len(os.listdir('/proc/self/task')))"
    assert fresh(code, without("OPENBLAS_NUM_THREADS")) == "1"
    two = without("OPENBLAS_NUM_THREADS") | {"OPENBLAS_NUM_THREADS": "2"}
    assert fresh(code, two) == str(min(2, os.cpu_count() or 1))
