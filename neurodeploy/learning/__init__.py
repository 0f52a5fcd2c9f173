"""On-chip local learning: tasks, the chip's spiking forward pass, credit-assignment rules, metrics.

``learn(rule, profile, task, ...)`` is the entry point; heavy parts load on use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["learn", "RULES", "TASKS"]


def __getattr__(name: str) -> Any:
    if name == "learn":
        from neurodeploy.learning.harness import learn

        return learn
    if name == "RULES":
        from neurodeploy.learning.rules import RULES

        return RULES
    if name == "TASKS":
        from neurodeploy.learning.tasks import TASKS

        return TASKS
    raise AttributeError(name)
