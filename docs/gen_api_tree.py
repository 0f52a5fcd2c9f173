"""Give the API reference a source tree laid out like the installed package.

pyproject maps ``compiler/`` to ``neurodeploy.compiler`` (and ``emulator/``, ``hw_profiles/`` likewise),
so a static scan of ``neurodeploy/`` cannot see those subpackages. This mkdocs hook builds
``build/api-src/neurodeploy/`` as a copy of the sources (copies, not links: griffe resolves links back
to the real folders) before any page renders; mkdocstrings reads it (``paths`` in mkdocs.yml).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TREE = ROOT / "build" / "api-src" / "neurodeploy"
MAPPED = {"compiler": "compiler", "emulator": "emulator", "hw_profiles": "hw_profiles"}


def build_tree() -> Path:
    if TREE.exists():
        shutil.rmtree(TREE)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "neurodeploy", TREE, ignore=skip)
    for sub, folder in MAPPED.items():
        shutil.copytree(ROOT / folder, TREE / sub, ignore=skip)
    return TREE.parent


def on_config(config: Any) -> Any:
    """mkdocs hook: (re)build the tree at the start of every build."""
    build_tree()
    return config


if __name__ == "__main__":  # run before `mkdocs build`: mkdocstrings reads its paths before hooks run
    build_tree()
