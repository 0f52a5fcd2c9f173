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
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=folder)
    except OSError as exc:
        raise NeurodeployError(f"cannot write here: {exc.strerror}", str(folder), _DISK_HINT) from None
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise NeurodeployError(f"cannot write the file: {exc.strerror}", str(path), _DISK_HINT) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


_DISK_HINT = "check that the folder is writable and the disk has space, or pass another path with -o"


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or what the umask gives a new file (mkstemp's are 0600)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def refuse_overwriting_inputs(output: str | Path | None, *inputs: str | Path | None, flag: str = "-o") -> None:
    """One clear error when ``output`` is one of the files the command reads: writing it would destroy
    the input (the same path, a link to it, or a hard link)."""
    if output is None:
        return
    out = Path(output)
    for item in inputs:
        if item is None:
            continue
        src = Path(item)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, src)
        if same:
            raise NeurodeployError(
                f"the output {out} is also an input ({src}); writing it would destroy the input",
                flag,
                f"pass another path with {flag}, e.g. {out.with_stem(out.stem + '-out')}",
            )
