"""The process-wide runtime settings the package makes before torch loads (bot/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys


def spin_count(environment: dict[str, str]) -> str:
    """GOMP_SPINCOUNT as torch's OpenMP sees it in a fresh process that imports the bot, then torch."""
    code = "import bot, os, torch; print(os.environ['GOMP_SPINCOUNT'], torch.get_num_threads() > 0)"
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_torch_threads_spin_briefly_unless_the_operator_says_otherwise() -> None:
    clean = {key: value for key, value in os.environ.items() if key != "GOMP_SPINCOUNT"}
    assert spin_count(clean) == "10000 True"
    assert spin_count(clean | {"GOMP_SPINCOUNT": "300000"}) == "300000 True"
