"""Profile comparisons as studies: NIR files × profiles, each cell one ``neurodeploy.compile``.

A cell reads its NIR file where it runs, so workers need the file at the same path (a shared disk);
the file's sha256 is part of the cell's parameters, so an edited file is compiled again, not reused.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from neurodeploy.errors import NeurodeployError


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def compile_cell(path: str, profile: str, sha256: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Compile one file for one profile: compiled (cores, neurons, host readouts) or refused and why."""
    import neurodeploy as nd

    if file_digest(path) != sha256:
        raise NeurodeployError("the file changed since the study was planned", path, "run the study again")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # assumed conventions are reported by `neurodeploy compile`
        graph = nd.load_nir(path)
        try:
            compiled = nd.compile(graph, profile, **dict(options or {}))
        except NeurodeployError as err:
            return {"path": path, "profile": profile, "status": "refused", "reason": err.what}
    core = compiled.core
    return {
        "path": path,
        "profile": profile,
        "status": "compiled",
        "readouts": len(core.readouts),
        "neurons": int(sum(p.size for p in core.populations if p.name not in core.inputs)),
        "cores": len(compiled.report.get("cores", [])),
    }


def grid(paths: Sequence[str | Path], profiles: Sequence[str], **options: Any) -> list[dict[str, Any]]:
    """Every file on every profile (the file's digest taken now, checked again in the cell)."""
    return [{"path": str(p), "profile": prof, "sha256": file_digest(p), "options": options}
            for p in paths for prof in profiles]  # fmt: skip
