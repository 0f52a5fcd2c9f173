"""The seed learning systems: whole networks whose dynamics compute their own credit assignment.

Each system is a module here with a float reference (``variant="paper"``: the published equations on the
``ideal`` profile) and, where built, a chip version on a fixed-point profile. ``learn_system`` runs one
and returns the same ``LearnResult`` as the rules, so results, tables and HTML reports treat them alike.

| name | system | module |
|---|---|---|
| ``gle`` | Generalized Latent Equilibrium (Ellenberger et al. 2024) | ``gle`` |
| ``microcircuit`` | PAL in the dendritic cortical microcircuit (Max et al. 2023) | ``microcircuit`` |
| ``sampling`` | SAL in a spiking sampling network (Gierlich et al. 2025) | ``sampling`` |
| ``ar`` | Activation Relaxation (Millidge et al. 2020) | ``relaxation`` |
| ``pc`` | relaxed predictive coding (Millidge et al. 2020) | ``relaxation`` |
| ``di`` | dynamic inversion (Podlaski & Machens 2020) | ``inversion`` |
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from neurodeploy.errors import NeurodeployError

# name -> "module:function"; each function takes (variant, profile, task, seeds, epochs, progress, **options)
# and returns a LearnResult (``base.system_result``)
SYSTEMS: dict[str, str] = {
    "gle": "gle:learn",
    "microcircuit": "microcircuit:learn",
    "sampling": "sampling:learn",
    "ar": "relaxation:learn_ar",
    "pc": "relaxation:learn_pc",
    "di": "inversion:learn",
}


def system_function(name: str) -> Callable[..., Any]:
    """The ``learn`` function of system ``name``, imported on first use (some need torch or mnist1d)."""
    if name not in SYSTEMS:
        raise NeurodeployError(f"unknown learning system {name!r}", "rule", f"systems: {', '.join(SYSTEMS)}")
    module, func = SYSTEMS[name].split(":")
    return getattr(importlib.import_module(f"neurodeploy.rules.systems.{module}"), func)


def learn_system(
    name: str,
    task: str | None = None,
    *,
    variant: str = "paper",
    profile: str | None = None,
    seeds: int = 3,
    epochs: int | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    **options: Any,
) -> Any:
    """Run system ``name``; ``task`` None picks the system's own published task, ``epochs`` None its
    default. ``variant="paper"`` runs on ``ideal`` only; ``variant="chip"`` on a fixed-point profile
    (default loihi2) or, where the profile lacks a capability the system needs, one error naming it."""
    if variant not in ("paper", "chip"):
        raise NeurodeployError(f"unknown variant {variant!r}", "variant", "use 'paper' or 'chip'")
    if variant == "paper" and profile not in (None, "ideal"):
        raise NeurodeployError(
            f"the paper variant of {name!r} runs its published equations in float on the ideal profile, "
            f"not {profile!r}",
            "profile",
            f"drop the profile, or use variant='chip' to run {name!r} on {profile!r}",
        )
    if seeds < 1:
        raise NeurodeployError(f"seeds must be at least 1, got {seeds}", "seeds", "e.g. seeds=3")
    if epochs is not None and epochs < 1:
        raise NeurodeployError(f"epochs must be at least 1, got {epochs}", "epochs", "e.g. epochs=10")
    profile = profile or ("ideal" if variant == "paper" else "loihi2")
    return system_function(name)(variant=variant, profile=profile, task=task, seeds=seeds, epochs=epochs,
                                 progress=progress, **options)  # fmt: skip


__all__ = ["SYSTEMS", "learn_system", "system_function"]
