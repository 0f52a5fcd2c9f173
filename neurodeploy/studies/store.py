"""A study's results on disk: one JSON file per finished cell, so an interrupted study resumes.

A cell's key is a hash of its function, its parameters and the neurodeploy version: a rerun with the
same parameters finds the file and skips the cell; a changed parameter or a new version runs it again.
Files are written atomically (``neurodeploy.atomic``), so a killed run never leaves half a result. A
cell that raised leaves ``<key>.failed.json`` instead, which a rerun retries.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy._version import __version__
from neurodeploy.errors import NeurodeployError

FORMAT = "neurodeploy.cell"
_KEY = re.compile(r"[0-9a-f]{32}")


def _canonical(obj: Any) -> Any:
    """JSON-ready, order-independent form of parameters; arrays and networks enter by content digest."""
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, (bool, str, type(None))):
        return obj
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        f = float(obj)
        return f if math.isfinite(f) else repr(f)
    if isinstance(obj, Path):
        return str(obj)
    return {"digest": digest(obj)}


def digest(obj: Any) -> str:
    """sha256 of an object's content: arrays by dtype, shape and bytes; dataclasses field by field."""
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    if isinstance(obj, np.ndarray) or np.isscalar(obj) and isinstance(obj, np.generic):
        arr = np.ascontiguousarray(obj)
        h.update(f"nd:{arr.dtype.str}:{arr.shape}:".encode())
        h.update(arr.tobytes())
    elif hasattr(obj, "tocsr") and hasattr(obj, "nnz"):  # scipy.sparse
        csr = obj.tocsr()
        h.update(f"csr:{csr.shape}:".encode())
        for part in (csr.data, csr.indices, csr.indptr):
            _feed(h, np.asarray(part))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"dc:{type(obj).__qualname__}:".encode())
        for f in dataclasses.fields(obj):
            h.update(f.name.encode())
            _feed(h, getattr(obj, f.name))
    elif isinstance(obj, Mapping):
        h.update(b"map:")
        for k in sorted(obj, key=str):
            h.update(str(k).encode() + b"=")
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"seq:{len(obj)}:".encode())
        for v in obj:
            _feed(h, v)
    elif isinstance(obj, (str, int, float, bool, type(None), Path)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif hasattr(obj, "__dict__"):  # plain objects (a profile, a compiled network): their fields
        h.update(f"obj:{type(obj).__qualname__}:".encode())
        _feed(h, {k: v for k, v in vars(obj).items() if not k.startswith("_")})
    else:
        raise NeurodeployError(
            f"cannot key a study cell on a {type(obj).__name__}",
            "study parameters",
            "pass numbers, strings, arrays, lists or dicts of them",
        )


def cell_key(function: str, params: Mapping[str, Any]) -> str:
    """The file name stem of one cell: its function, canonical parameters and the neurodeploy version."""
    text = json.dumps({"function": function, "params": _canonical(params), "version": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class ResultStore:
    """Finished cells of one study, one file each under ``folder`` (created on first use)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise NeurodeployError(
                "the study's results folder is a file", str(self.folder), "give a folder, e.g. --store runs/study1"
            )

    def _path(self, key: str, failed: bool = False) -> Path:
        return self.folder / (f"{key}.failed.json" if failed else f"{key}.json")

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored record of a finished cell, or None (absent, or unreadable: then it runs again)."""
        path = self._path(key)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("format") == FORMAT else None

    def put(self, key: str, record: dict[str, Any]) -> None:
        """Store a finished cell atomically; a success removes an earlier failure record of the cell."""
        from neurodeploy.atomic import atomic_write

        failed = record.get("status") == "failed"
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"format": FORMAT, "key": key, **record}, indent=1, sort_keys=True) + "\n"

        def write(tmp: str) -> None:
            Path(tmp).write_text(text, encoding="utf-8")

        atomic_write(self._path(key, failed), write, example=f"{key}.json")
        if not failed:
            self._path(key, True).unlink(missing_ok=True)

    def records(self) -> list[dict[str, Any]]:
        """Every finished cell in the folder, sorted by key (the table is assembled from these alone)."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("*.json")):
            if not _KEY.fullmatch(path.stem):  # failures, and temporary files a killed writer left
                continue
            record = self.get(path.stem)
            if record is not None:
                out.append(record)
        return out

    def failures(self) -> list[dict[str, Any]]:
        """Cells whose last attempt raised."""
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("*.failed.json")):
            try:
                out.append(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError):
                continue
        return out
