"""One error type for bad input: what was wrong, where, and what to do about it.

The CLI prints ``str(err)`` on one line and exits with status 2; the API raises it unchanged.
"""

from __future__ import annotations

import operator


class NeurodeployError(Exception):
    """A user-facing error: ``what`` went wrong, ``where`` (node, file, field) and a ``hint``."""

    def __init__(self, what: str, where: str = "", hint: str = "") -> None:
        super().__init__(what)
        self.what = what
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = self.what
        if self.where:
            text += f" ({self.where})"
        if self.hint:
            text += f". {self.hint}"
        return text


class ProfileError(NeurodeployError):
    """A hardware profile file is malformed or asks for something impossible."""


class CompileError(NeurodeployError):
    """A network cannot be mapped onto the chosen profile."""


class ArtifactError(NeurodeployError):
    """A compiled artifact (.ndp) is unreadable, corrupted or from an unknown schema version."""


def check_seed(seed: object, where: str = "seed") -> int:
    """``seed`` as an int, or one clear error: numpy's generators take only non-negative integer seeds and
    would otherwise refuse it deep inside a run."""
    try:
        value = operator.index(seed)  # type: ignore[arg-type]
    except TypeError:
        value = -1
    if isinstance(seed, bool) or value < 0:
        raise NeurodeployError(f"seed must be a non-negative integer, got {seed!r}", where, "e.g. seed=0 (--seed 0)")
    return value
