"""What every learning system shares: option checks, per-seed statistics and the ``LearnResult``.

A system's history is a list of entries, one per epoch (or logging point), each with an ``epoch`` and
per-seed lists: ``test_accuracy`` / ``val_accuracy`` for classification, ``test_mse`` for regression,
and any system-specific series (``kl``, ``gradient_angle``, …) as ``{name: [per seed]}`` groups or
plain per-seed lists. ``system_result`` turns it into the same ``LearnResult`` the rules return.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, fields, is_dataclass
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError


def make_options(cls: type, system: str, options: Mapping[str, Any]) -> Any:
    """``cls(**options)`` with one clear error for an option the system does not have; ``cls`` may
    define ``checked()`` to validate values."""
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise NeurodeployError(
            f"option {unknown[0]!r} does not apply to the learning system {system!r}",
            "learn()",
            f"its options: {', '.join(sorted(names))}",
        )
    opts = cls(**options)
    return opts.checked() if hasattr(opts, "checked") else opts


def stats(values: Sequence[float] | np.ndarray) -> dict[str, Any]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "std": float(v.std()), "per_seed": v.tolist()}


def _summary(last: Mapping[str, Any]) -> dict[str, Any]:
    """Every per-seed series of the last entry as mean, std and per seed; groups keep their names."""
    out: dict[str, Any] = {"epoch": last.get("epoch")}
    for key, value in last.items():
        if key in ("epoch", "lr"):
            continue
        if isinstance(value, Mapping):
            out[key] = {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in value.items()}
        elif isinstance(value, (list, tuple, np.ndarray)) and np.asarray(value).ndim == 1:
            out[key] = stats(value)
    return out


def final_of(history: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The last entry summarised, plus ``best_epoch`` picked on the validation score where there is one."""
    if not history:
        raise NeurodeployError("the learning system recorded no epoch", "epochs", "use epochs=1 or more")
    out = _summary(history[-1])
    for val_key, test_key, pick in (("val_accuracy", "test_accuracy", max), ("val_mse", "test_mse", min)):
        scored = [h for h in history if val_key in h and test_key in h]
        if scored:
            best = pick(scored, key=lambda h: float(np.mean(h[val_key])))
            out["best_epoch"] = {"epoch": best["epoch"], "chosen_by": f"mean {val_key}",
                                 val_key: stats(best[val_key]), test_key: stats(best[test_key])}  # fmt: skip
    return out


def system_result(
    system: str,
    variant: str,
    profile: str,
    options: Any,
    history: list[dict[str, Any]],
    *,
    equations: Sequence[str],
    provenance: Mapping[str, Any],
    differences: Sequence[str] = (),
    started: float,
    extra_config: Mapping[str, Any] | None = None,
) -> Any:
    """The ``LearnResult`` of one system run. ``differences`` lists every way a chip version departs
    from the paper's equations (empty for the paper variant); ``provenance`` names where each signal
    ran, e.g. ``{"all": {"where": "host float64", "how": "..."}}``."""
    from neurodeploy.learning.epochs import LearnResult

    if variant == "paper" and differences:
        raise ValueError("a paper variant has no differences from its paper")
    opts = asdict(options) if is_dataclass(options) else dict(options or {})
    config = {"rule": system, "system": system, "variant": variant, "profile": profile, **opts,
              **dict(extra_config or {})}  # fmt: skip
    return LearnResult(config, history, final_of(history), {"equations": list(equations)}, dict(provenance),
                       time.perf_counter() - started, variant, list(differences))  # fmt: skip


def chip_refusal(system: str, profile: str, capability: str, why: str, hint: str) -> NeurodeployError:
    """One error for a profile that cannot hold a system: it names the missing capability."""
    return NeurodeployError(
        f"profile {profile!r} cannot run the learning system {system!r}: it lacks {capability} ({why})",
        f"hw_profiles/{profile}.toml",
        hint,
    )


def chip_profile(system: str, profile_name: str, engine_why: str, needs: Mapping[str, str],
                 hint: str = "use profile='loihi2'") -> Any:  # fmt: skip
    """The profile a chip version runs on, or one refusal naming the first missing capability: the Loihi
    learning engine (``engine_why``: what runs on it), then each of ``needs`` (capability: why it is needed)."""
    from neurodeploy import profiles

    profile = profiles.get(profile_name)
    if profile.plasticity.get("engine") != "loihi":
        raise chip_refusal(system, profile_name, "the Loihi learning engine", engine_why, hint)
    for cap, why in needs.items():
        if not profile.plasticity.get(cap):
            raise chip_refusal(system, profile_name, cap.replace("_", " "), why, hint)
    return profile


__all__ = ["chip_profile", "chip_refusal", "final_of", "make_options", "stats", "system_result"]
