"""Atomic file output: a temporary file in the target's folder, flushed to disk, then renamed over it.

A crash or an error mid-write leaves the previous file (or none) in place, never a half-written one.
Temporary files are named ``.<name>.<pid>.<random>.tmp<suffix>``. A process killed mid-write (SIGKILL,
power loss) cannot remove its own, so the next write to the same output removes those whose process
is gone. When the caller knows how large the file will be, the free space is checked first: libhdf5
does not survive a full disk gracefully.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from neurodeploy.errors import NeurodeployError


def atomic_write(path: str | Path, write: Callable[[str], None], example: str = "out.dat", size_hint: int = 0) -> Path:
    """Call ``write(tmp_path)`` to fill a temporary file, then move it to ``path`` in one rename.
    ``size_hint``: the bytes the file will take, checked against the folder's free space first."""
    path = Path(path)
    if path.is_dir():
        raise NeurodeployError("the output path is a folder", str(path), f"give a file name such as {example}")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NeurodeployError("the output folder does not exist", str(folder), "create it first")
    if not os.access(folder, os.W_OK):
        raise NeurodeployError("cannot write here: the folder is read-only or not writable", str(folder), _DISK_HINT)
    sweep_stale_temps(path)
    if size_hint > 0:
        _check_free_space(folder, size_hint)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp" + path.suffix, dir=folder)
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
STALE_AGE_S = 60.0  # a temp younger than this is left alone even when its process looks gone


def sweep_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files of earlier writes to ``path`` whose writing process no longer exists
    (and that are older than ``STALE_AGE_S``); returns what was removed. Only our own naming pattern, in
    the target's folder, is touched."""
    folder = path.parent if str(path.parent) else Path(".")
    removed = []
    prefix, suffix = f".{path.name}.", ".tmp" + path.suffix
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue
        pid_text = name[len(prefix) :].split(".", 1)[0]
        if not pid_text.isdigit() or _alive(int(pid_text)):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and now - entry.stat(follow_symlinks=False).st_mtime > STALE_AGE_S:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # someone else's process, or we cannot tell: leave its file alone
    return True


def _check_free_space(folder: Path, size: int) -> None:
    """One clear error when the folder's file system lacks room for ``size`` bytes plus a margin."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # no figure to check against; the write itself reports a full disk
    need = int(size * 1.1) + (1 << 20)
    if free < need:
        raise NeurodeployError(
            f"not enough free space: the file needs about {need / 1e6:.1f} MB, {free / 1e6:.1f} MB are free",
            str(folder),
            "free some space, or pass another path with -o",
        )


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
