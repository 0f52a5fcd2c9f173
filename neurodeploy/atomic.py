"""Atomic file output: a temporary file in the target's folder, flushed to disk, then renamed over it.

A crash or an error mid-write leaves the previous file (or none) in place, never a half-written one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from neurodeploy.errors import NeurodeployError


def atomic_write(path: str | Path, write: Callable[[str], None], example: str = "out.dat") -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then move it to ``path`` in one rename."""
    path = Path(path)
    if path.is_dir():
        raise NeurodeployError("the output path is a folder", str(path), f"give a file name such as {example}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NeurodeployError("the output folder does not exist", str(folder), "create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=folder)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path
