"""Size limits checked from headers and declared shapes, before anything is read or expanded.

A small file can declare a huge array (an .npy header, an HDF5 dataset's shape, a compressed .npz
member). Each reader checks the declared size against ``max_input_bytes()`` first, so a hostile or
mistaken file costs a header read, not gigabytes. The limit defaults to 4 GiB and is raised (or
lowered) with the environment variable ``NEURODEPLOY_MAX_INPUT_BYTES``, e.g. ``=16G``.

A network can also declare more than it stores: a 3×3 convolution over a 10⁵×10⁵ input is a few bytes
of weights and 10¹¹ synapses once expanded. Shape inference checks every node's neurons against
``NEURODEPLOY_MAX_NEURONS`` (16 M by default) and the conv lowering checks its synapses against
``NEURODEPLOY_MAX_SYNAPSES`` (256 M) before it builds anything.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

from neurodeploy.errors import NeurodeployError

DEFAULT_MAX_INPUT_BYTES = 4 << 30
ENV = "NEURODEPLOY_MAX_INPUT_BYTES"
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def max_input_bytes() -> int:
    """The limit in bytes: ``NEURODEPLOY_MAX_INPUT_BYTES`` (a number with an optional K/M/G/T) or 4 GiB."""
    text = os.environ.get(ENV, "").strip().upper().removesuffix("B").removesuffix("I")
    if not text:
        return DEFAULT_MAX_INPUT_BYTES
    unit = text[-1] if text[-1] in _UNITS else ""
    try:
        value = float(text[: len(text) - len(unit)]) * _UNITS[unit]
    except ValueError:
        raise NeurodeployError(f"{ENV}={os.environ[ENV]!r} is not a size", ENV, "write e.g. 16G or 500M") from None
    if not value > 0:
        raise NeurodeployError(f"{ENV} must be positive, got {os.environ[ENV]!r}", ENV, "write e.g. 16G")
    return int(value)


NEURON_ENV, SYNAPSE_ENV = "NEURODEPLOY_MAX_NEURONS", "NEURODEPLOY_MAX_SYNAPSES"
DEFAULT_MAX_NEURONS, DEFAULT_MAX_SYNAPSES = 1 << 24, 1 << 28


def _count_limit(env: str, default: int) -> int:
    text = os.environ.get(env, "").strip().upper()
    if not text:
        return default
    unit = {"K": 1e3, "M": 1e6, "G": 1e9}.get(text[-1], 1)
    try:
        value = float(text[:-1] if unit != 1 else text) * unit
    except ValueError:
        raise NeurodeployError(f"{env}={os.environ[env]!r} is not a count", env, "write e.g. 50M or 2G") from None
    if not value >= 1:
        raise NeurodeployError(f"{env} must be at least 1, got {os.environ[env]!r}", env, "write e.g. 50M")
    return int(value)


def check_count(count: int, kind: str, what: str, where: str) -> None:
    """One clear error when ``what`` declares more ``kind`` ("neurons" or "synapses") than the limit."""
    env, default = (NEURON_ENV, DEFAULT_MAX_NEURONS) if kind == "neurons" else (SYNAPSE_ENV, DEFAULT_MAX_SYNAPSES)
    limit = _count_limit(env, default)
    if count > limit:
        raise NeurodeployError(
            f"{what} declares {count:,} {kind}, over the limit of {limit:,}",
            where,
            f"check the declared shapes; if you mean it, raise the limit: {env}={_count_text(2 * count)}",
        )


def _count_text(n: int) -> str:
    return f"{math.ceil(n / 1e9)}G" if n >= 1e9 else f"{math.ceil(n / 1e6)}M"


def check_declared(nbytes: int, what: str, where: str) -> None:
    """One clear error when ``what`` declares more bytes than the limit allows."""
    limit = max_input_bytes()
    if nbytes > limit:
        raise NeurodeployError(
            f"{what} declares {_human(nbytes)}, over the input limit of {_human(limit)}",
            where,
            f"if you mean it, raise the limit: {ENV}={_size_text(2 * nbytes)}",
        )


def check_numpy_file(path: str | Path) -> dict[str, tuple[int, ...]]:
    """Declared sizes of an .npy (its header) or .npz (each member's header and uncompressed size);
    returns the declared shapes ({"": shape} for an .npy, {member: shape} for an .npz; {} when the file is
    not numpy's, which numpy's own read then reports)."""
    import numpy as np

    path = Path(path)
    where = str(path)
    shapes: dict[str, tuple[int, ...]] = {}
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                infos = archive.infolist()
                check_declared(sum(i.file_size for i in infos), "the archive", where)
                for info in infos:
                    if info.filename.endswith(".npy"):
                        with archive.open(info) as fh:
                            shape, nbytes = _npy_header(np, fh)
                        check_declared(nbytes, f"member {info.filename!r}", where)
                        shapes[info.filename[:-4]] = shape
        except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
            raise NeurodeployError(f"cannot read the archive: {exc}", where, "save it with numpy.savez") from None
        return shapes
    try:
        with path.open("rb") as fh:
            shape, nbytes = _npy_header(np, fh)
    except (ValueError, OSError, EOFError):
        return shapes
    check_declared(nbytes, "the array", where)
    return {"": shape}


def _npy_header(np: object, fh: object) -> tuple[tuple[int, ...], int]:
    fmt = np.lib.format  # type: ignore[attr-defined]
    version = fmt.read_magic(fh)
    shape, _, dtype = fmt._read_array_header(fh, version)
    count = 1
    for n in shape:
        count *= int(n)
    return tuple(int(n) for n in shape), count * dtype.itemsize


def _size_text(n: int) -> str:
    """A size as the environment variable takes it, rounded up: 3G, 500M."""
    if n >= 1 << 30:
        return f"{math.ceil(n / (1 << 30))}G"
    return f"{math.ceil(n / (1 << 20))}M"


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
