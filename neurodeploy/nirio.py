"""Reading NIR files with one clear error for each way a file can be wrong.

Some corrupted HDF5 files crash the HDF5 C library itself (a segmentation fault, found by
``tests/test_fuzz.py`` with a few flipped bits). No ``except`` can catch that, so ``probe_hdf5`` first
reads the whole file in a forked child process; if the child dies, the caller gets a clean error.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import nir

from neurodeploy.errors import NeurodeployError

PROBE_TIMEOUT_S = 60.0
MAX_HDF5_OBJECTS = 200_000  # groups, datasets and links walked before a file counts as hostile
MAX_HDF5_DEPTH = 64


def refuse_outside_storage(path: str | Path, where: str, hint: str) -> None:
    """Refuse an HDF5 file that points outside itself or declares more data than the input limit
    (``neurodeploy.limits``), before any dataset is read.

    External storage (a dataset whose bytes live in another file), virtual datasets (which map other
    files) and external links would let a shared model file read any local file (or ``/dev/zero``)
    into the weights. Only the file's metadata is read here; the walk is bounded so that hard-link
    cycles cannot stall it. A file h5py cannot open is left to the caller's own read, which reports it.
    """
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        return
    with f:
        try:
            _walk(f, where, hint)
        except NeurodeployError:
            raise
        except Exception as exc:  # h5py raises RuntimeError/KeyError/ValueError on damaged metadata
            raise NeurodeployError(f"the file's structure is damaged ({type(exc).__name__}: {exc})", where,
                                   hint) from None  # fmt: skip


def _walk(f: Any, where: str, hint: str) -> None:
    """The metadata walk of ``refuse_outside_storage`` (no dataset is read)."""
    import h5py

    from neurodeploy.limits import check_declared, max_input_bytes

    stack: list[tuple[h5py.Group, int]] = [(f, 0)]
    walked = 0
    declared = 0
    limit = max_input_bytes()
    while stack:
        group, depth = stack.pop()
        for name in group:
            walked += 1
            link = group.get(name, getlink=True)
            full = f"{group.name.rstrip('/')}/{name}"
            if isinstance(link, h5py.ExternalLink):
                raise NeurodeployError(
                    f"{full!r} is an external link to {link.filename!r}: the file must hold its own data",
                    where,
                    hint,
                )
            if isinstance(link, h5py.SoftLink):
                continue  # a path inside this file: its target is walked where it is stored
            obj = group.get(name)
            if isinstance(obj, h5py.Dataset):
                if obj.external:
                    target = obj.external[0][0]
                    target = target.decode(errors="replace") if isinstance(target, bytes) else str(target)
                    raise NeurodeployError(
                        f"dataset {full!r} keeps its data in another file ({target!r}): the file must hold "
                        "its own data",
                        where,
                        hint,
                    )
                declared += int(obj.size) * obj.dtype.itemsize
                if declared > limit:
                    check_declared(declared, f"the file's data (at dataset {full!r})", where)
                if obj.is_virtual:
                    raise NeurodeployError(
                        f"dataset {full!r} is a virtual dataset that maps other files: the file must hold its own data",
                        where,
                        hint,
                    )
            elif isinstance(obj, h5py.Group):
                if depth >= MAX_HDF5_DEPTH or walked > MAX_HDF5_OBJECTS:
                    raise NeurodeployError(
                        f"the file nests groups deeper than {MAX_HDF5_DEPTH} or holds more than "
                        f"{MAX_HDF5_OBJECTS} objects (a hard-link cycle?)",
                        where,
                        hint,
                    )
                stack.append((obj, depth + 1))


def probe_hdf5(path: str | Path) -> str | None:
    """Read every dataset and attribute of an HDF5 file in a child process; say why if that crashed.

    Returns None when the child finished (with or without a Python error, which the real read then reports),
    or a short reason when the HDF5 library killed it. Skipped where ``os.fork`` does not exist.
    """
    if not hasattr(os, "fork"):
        return None
    pid = os.fork()
    if pid == 0:  # the child: touch everything, never return into the caller's code
        code = 1
        try:
            import faulthandler

            import h5py

            faulthandler.disable()  # the crash is expected here: no dump on the caller's stderr
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)

            def touch(_name: str, obj: object) -> None:
                for key in obj.attrs:
                    obj.attrs[key]
                if isinstance(obj, h5py.Dataset):
                    obj[()]

            with h5py.File(path, "r") as f:
                try:
                    _walk(f, str(path), "")
                except NeurodeployError:
                    code = 3  # points outside itself or too big: no data is touched; the caller says why
                    raise
                touch("/", f)
                f.visititems(touch)
            code = 0
        finally:
            os._exit(code)
    deadline, pause = time.monotonic() + PROBE_TIMEOUT_S, 0.001
    while True:  # poll, so a child stuck on a lock inherited from another thread cannot hang the caller
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else str(sig)
        return f"reading it crashed the HDF5 library ({name})"
    return None


def load_nir(path: str | Path) -> nir.NIRGraph:
    """Read a NIR (HDF5) file into a NIRGraph."""
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise NeurodeployError("file not found", where, "check the path")
    if path.is_dir():
        raise NeurodeployError("expected a NIR file, got a folder", where, "pass the .nir file itself")
    try:
        with path.open("rb") as fh:
            magic = fh.read(8)
    except OSError as exc:
        raise NeurodeployError(f"cannot read file: {exc.strerror}", where, "check its permissions") from None
    if magic != b"\x89HDF\r\n\x1a\n":
        raise NeurodeployError(
            "not a NIR file (NIR files are HDF5)",
            where,
            "export one with nir.write(path, graph) or neurodeploy.from_torch",
        )
    crash = probe_hdf5(path)  # first: a damaged file may crash the HDF5 library on its metadata alone
    if crash:
        raise NeurodeployError(
            f"the NIR file is corrupted: {crash}",
            where,
            "re-export the model; the file is damaged beyond what HDF5 can read",
        )
    refuse_outside_storage(path, where, "re-export the model with nir.write, which writes self-contained files")
    try:
        graph = nir.read(str(path))
    except Exception as exc:  # nir raises bare KeyError/ValueError/TypeError for malformed content
        detail = f"{type(exc).__name__}: {exc}".strip()
        raise NeurodeployError(
            f"the NIR file is malformed ({detail})",
            where,
            "re-export the model; the file may be truncated or from another tool",
        ) from None
    if not isinstance(graph, nir.NIRGraph):
        raise NeurodeployError(
            "the file holds a single NIR node, not a graph", where, "wrap the node in a nir.NIRGraph before writing"
        )
    _check_numeric(graph, where)
    return graph


def _check_numeric(graph: nir.NIRGraph, where: str, prefix: str = "") -> None:
    """Every array a node holds (weights, time constants, shapes) must be numbers: a file can hold text there."""
    import numpy as np

    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            _check_numeric(node, where, f"{prefix}{name}.")
            continue
        for field, value in vars(node).items():
            arrays = value.values() if isinstance(value, dict) and field.endswith("_type") else [value]
            for arr in arrays:
                if isinstance(arr, np.ndarray) and arr.dtype.kind not in "biuf":
                    raise NeurodeployError(
                        f"{field} holds {arr.dtype} data, not numbers",
                        f"{where}, node {prefix}{name!r}",
                        "re-export the model",
                    )
