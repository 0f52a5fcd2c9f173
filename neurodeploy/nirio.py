"""Reading NIR files with one clear error for each way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import nir

from neurodeploy.errors import NeurodeployError


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
        raise NeurodeployError("not a NIR file (NIR files are HDF5)", where,
                               "export one with nir.write(path, graph) or neurodeploy.from_torch")
    try:
        graph = nir.read(str(path))
    except Exception as exc:  # nir raises bare KeyError/ValueError/TypeError for malformed content
        detail = f"{type(exc).__name__}: {exc}".strip()
        raise NeurodeployError(f"the NIR file is malformed ({detail})", where,
                               "re-export the model; the file may be truncated or from another tool") from None
    if not isinstance(graph, nir.NIRGraph):
        raise NeurodeployError("the file holds a single NIR node, not a graph", where,
                               "wrap the node in a nir.NIRGraph before writing")
    return graph
