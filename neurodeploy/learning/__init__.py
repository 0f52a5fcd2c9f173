"""Learning runs: built-in tasks, the e-prop network, metrics and the shared epoch loop.

``learn(rule, profile, task, ...)`` is the entry point (``neurodeploy.learn``); heavy parts load on use.
The rules' motifs live in ``neurodeploy.rules``, their networks in ``compiler.learning``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["learn", "RULES", "TASKS"]


def __getattr__(name: str) -> Any:
    if name == "learn":
        from neurodeploy.api_learn import learn

        return learn
    if name == "RULES":
        from neurodeploy.rules.alignment import RULES

        return RULES
    if name == "TASKS":
        from neurodeploy.learning.tasks import TASKS

        return TASKS
    raise AttributeError(name)
