"""What every learning run shares: the epoch loop, the result record, the final summary and the
profile check. The runs themselves are the chip path (``neurodeploy.studies.chip_learning``) and e-prop
(``neurodeploy.learning.eprop``); both run their networks through the emulator's ``simulate``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.learning.tasks import Task


@dataclass
class LearnResult:
    """Configuration, per-epoch history, final summary, engine rules and the provenance of every signal."""

    config: dict[str, Any]
    history: list[dict[str, Any]]
    final: dict[str, Any]
    engine: dict[str, Any] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0
    variant: str = "chip"
    # what the run departs from the rule's published equations in (the rule motif's list)
    differences_from_paper: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "neurodeploy.learn", "version": 2, **asdict(self)}


def check_profile(profile_name: str, rule: str, steps: int) -> tuple[str, Any]:
    """The profile and its numerics ("fixed" or "float"), or one clear error when its engine cannot run
    ``rule`` or a presentation of ``steps`` exceeds its longest learning epoch."""
    from neurodeploy import profiles

    profile = profiles.get(profile_name)
    engine = profile.plasticity.get("engine")
    if engine not in ("loihi", "float"):
        why = {
            "none": "the chip has no on-chip long-term learning",
            "programmable": "its plasticity is programmable software that neurodeploy does not model",
            None: "the profile declares no [plasticity] section",
        }.get(engine, f"engine {engine!r} is not modelled")
        raise NeurodeployError(
            f"profile {profile.name!r} cannot run learning rule {rule!r}: {why}",
            f"{profile.path}: [plasticity].engine",
            "use --profile loihi2 (fixed point) or --profile ideal (float)",
        )
    if steps > int(profile.plasticity.get("max_epoch", 10**9)):
        raise NeurodeployError(
            f"a presentation of {steps} steps exceeds the chip's longest learning epoch",
            f"{profile.path}: [plasticity].max_epoch = {profile.plasticity['max_epoch']}",
            "use --steps 63 or fewer",
        )
    return ("fixed" if engine == "loihi" else "float"), profile


def train_epochs(
    trainer: Any,
    data: Task,
    epochs: int,
    lr: float,
    batch: int,
    n: int,
    last_factor: float,
    progress: Callable[[int, int, dict[str, Any]], None] | None,
) -> list[dict[str, Any]]:
    """The epoch loop every rule shares: shuffled minibatches of the first ``n`` training samples, the
    learning rate halved at 50 % of the epochs and cut to ``last_factor`` at 75 %, then the test score
    and the alignment on a fixed probe batch of 256 validation samples. ``trainer`` offers ``rng``,
    ``step(idx, lr)``, ``evaluate(x, y)`` and ``alignment(probe)``."""
    probe = (data.x_val[:256], data.y_val[:256])
    history: list[dict[str, Any]] = []
    for epoch in range(epochs):
        rate = lr * (last_factor if epoch >= 0.75 * epochs else 0.5 if epoch >= 0.5 * epochs else 1.0)
        order = trainer.rng.permutation(n)
        for i in range(0, n, batch):
            trainer.step(order[i : i + batch], rate)
        score = trainer.evaluate(data.x_test, data.y_test)
        val = trainer.evaluate(data.x_val, data.y_val)
        entry = {"epoch": epoch + 1, "lr": rate, **_score(data, score), **_score(data, val, "val"),
                 **trainer.alignment(probe)}  # fmt: skip
        history.append(entry)
        if progress is not None:
            progress(epoch + 1, epochs, entry)
    return history


def _score(task: Task, score: np.ndarray, split: str = "test") -> dict[str, Any]:
    key = f"{split}_accuracy" if task.kind == "classification" else f"{split}_mse"
    return {key: score.tolist()}


def final_summary(task: Task, history: list[dict[str, Any]]) -> dict[str, Any]:
    """The last epoch's score and angles as mean, std and per seed, and ``best_epoch``: the epoch with the
    best mean validation score and its test score (the test set never picks the epoch)."""
    last = history[-1]
    classify = task.kind == "classification"
    key = "test_accuracy" if classify else "test_mse"
    vals = np.asarray(last[key])
    out: dict[str, Any] = {key: _stats(vals), "epoch": last["epoch"]}
    for group in ("weight_angle", "signal_angle", "norm_ratio", "fixed_point_angle", "fixed_point_floor"):
        if group in last or group in ("weight_angle", "signal_angle", "norm_ratio"):
            out[group] = {
                name: {"mean": float(np.mean(v)), "std": float(np.std(v))} for name, v in last.get(group, {}).items()
            }
    val_key = "val_accuracy" if classify else "val_mse"
    scored = [h for h in history if val_key in h]
    if scored:
        pick = max if classify else min
        best = pick(scored, key=lambda h: float(np.mean(h[val_key])))
        out["best_epoch"] = {
            "epoch": best["epoch"],
            "chosen_by": f"mean {val_key}",
            val_key: _stats(np.asarray(best[val_key])),
            key: _stats(np.asarray(best[key])),
        }
    return out


def _stats(vals: np.ndarray) -> dict[str, Any]:
    return {"mean": float(vals.mean()), "std": float(vals.std()), "per_seed": vals.tolist()}


__all__ = ["LearnResult", "check_profile", "train_epochs", "final_summary"]
