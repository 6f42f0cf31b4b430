"""Trained arrays on disk, named by a key of everything they were trained from: a restart with the same
examples, model and settings loads them instead of training again."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np


def key(*parts: object) -> str:
    """A short digest of JSON-able inputs (examples are sorted by the caller when their order doesn't matter)."""
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()[:20]


def load(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def save(path: Path, **arrays: np.ndarray) -> None:
    write_atomically(path, lambda tmp: np.savez(tmp, **arrays))  # type: ignore[arg-type]


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """`write` a temporary file beside `path`, then move it into place: a concurrent worker never reads half a
    file, and workers starting together each write their own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    write(tmp)
    tmp.replace(path)
