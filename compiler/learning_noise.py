"""The noise motif of PAL and SAL: a noise population of two signed channels per hidden layer with
feedback, one to one into that layer's synaptic current (``emulator.learning_noise`` runs and correlates
it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from neurodeploy.emulator.network import CorePopulation, CoreProjection
from neurodeploy.errors import NeurodeployError

if TYPE_CHECKING:
    from neurodeploy.compiler.learning import LearningNetwork, LearnOptions


def add_training_noise(lnet: LearningNetwork, opt: LearnOptions) -> None:
    """PAL/SAL: a noise population of two channels (+, −) per layer with feedback, one to one into its
    synaptic current at ±``noise_charge`` thresholds per spike (``emulator.learning_noise``)."""
    from neurodeploy.emulator.learning_mirror import noise_weight
    from neurodeploy.emulator.learning_noise import host_ops_per_sample

    ok = (0 < opt.noise_rate < 1 and 0 < opt.noise_charge <= 4 and 0 < opt.noise_lr <= 1
          and opt.noise_tau >= 1 and opt.hp_tau >= 1)  # fmt: skip
    if not ok:
        raise NeurodeployError(
            f"noise_rate {opt.noise_rate}, noise_charge {opt.noise_charge}, noise_lr {opt.noise_lr}, "
            f"noise_tau {opt.noise_tau}, hp_tau {opt.hp_tau} out of range",
            "noise_rate, noise_charge, noise_lr, noise_tau, hp_tau",
            "need 0 < rate < 1, 0 < charge <= 4, 0 < lr <= 1, taus >= 1 step; the defaults are 0.2, 2, 0.001, 8, 8",
        )
    core = lnet.core
    for fb in lnet.feedback:
        pop = core.population(fb.dst)
        fixed = lnet.numerics == "loihi"
        if fixed:
            du = (np.asarray(pop.params["du"], dtype=float) + 1) / 4096.0
            diag = np.clip(np.rint(opt.noise_charge * np.asarray(pop.params["vth"], dtype=float) * du), 1, 254)
            diag = diag.astype(np.int64)
        else:
            diag = opt.noise_charge * noise_weight(pop, "float")
        diag = np.broadcast_to(diag, (lnet.instances, 1, pop.size))[:, 0]
        w = np.zeros((lnet.instances, pop.size, 2 * pop.size), dtype=diag.dtype)
        idx = np.arange(pop.size)
        w[:, idx, idx] = diag
        w[:, idx, pop.size + idx] = -diag
        name = f"noise:{fb.dst}"
        core.populations.append(CorePopulation(name, 2 * pop.size, "input"))
        core.projections.append(CoreProjection(f"{name}->{fb.dst}", name, fb.dst, w, num_weight_bits=9 if fixed else 8))
        core.inputs.append(name)
    lnet.train_noise = (opt.noise_rate, opt.noise_charge, opt.noise_lr, opt.noise_tau, opt.hp_tau)
    lnet.provenance["feedback_learning"]["host_ops_per_sample"] = host_ops_per_sample(
        lnet.rule, lnet.feedback, lnet.schedule.steps, opt.batch
    )


__all__ = ["add_training_noise"]
