"""The mirror phase of weight mirrors (WM) and information alignment (IA), run on the compiled network.

Between minibatches the chip runs mirror presentations, one hidden layer l at a time, with the forward
projections' learning switched off: a noise population (spikes from the chip's random number generator,
each spike with probability ``rate`` per input step) drives layer l one to one, so layer l fires a random
pattern ξ; layer l+1 responds through the current forward weights W, with its own neurons (the output
layer: its membrane, as the readout). Everything up to here is the emulator's run loop on the chip's
neurons and synapses.

The host then reads the spike counts and moves the feedback weights B of layer l (float on ``ideal``;
integers with stochastic rounding on fixed point, where the host writes the synapses):

- WM (Akrout et al. 2019, mirror mode): ΔB = η_B (C / σ²_ξ − B), C = mean ξ rᵀ over the mirror samples,
  ξ and r centred over the samples, σ²_ξ the layer's mean noise variance. E[C] = σ²_ξ Wᵀ f′ for a
  response r ≈ f′ W ξ, so B settles at Wᵀ f′: Hebbian term plus decay, the decay rate equal to η_B.
- IA (Kunin et al. 2020, information alignment): ΔB = η_B (C / σ²_ξ − B (R / σ²_r + γ I)), R = mean r rᵀ
  and σ²_r its mean diagonal: the self-prediction term −(B r) rᵀ plus decay γ. B settles at the
  regularised least-squares inverse of the response, (f′ W)⁺ up to the scale σ²_r / σ²_ξ.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import simulate

IA_DECAY = 0.1  # γ of information alignment, relative to the response variance


def noise_weight(pop: CorePopulation, numerics: str) -> np.ndarray:
    """The noise synapse that puts about one threshold of charge into ``pop`` per noise spike: the
    synaptic current decays by du per step, so a spike of weight w deposits w / du."""
    p = pop.params
    if numerics == "loihi":
        du = (np.asarray(p["du"], dtype=float) + 1) / 4096.0
        return np.clip(np.rint(np.asarray(p["vth"], dtype=float) * du), 1, 254).astype(np.int64)
    return np.asarray(p["v_th"], dtype=float) * np.asarray(p["du"], dtype=float)


def mirror_responses(run: Any, lower: str, upper: str, samples: int, rate: float, rng: np.random.Generator) -> tuple:
    """Run ``samples`` mirror presentations of layer ``lower``; return ξ (inst, samples, n_lower) and
    r (inst, samples, n_upper), both centred over the samples and in spikes per input step."""
    lnet = run.lnet
    sched = lnet.schedule
    core = lnet.core
    lo, up = core.population(lower), core.population(upper)
    w_fwd = next(pr for pr in core.projections if pr.src == lower and pr.dst == upper)
    w_noise = run.mirror_noise.get(lower)
    if w_noise is None:  # the neurons' parameters never change: built once per layer and run
        diag = noise_weight(lo, lnet.numerics)  # (inst, 1, n) or (n,)
        diag = np.broadcast_to(diag, (lnet.instances, 1, lo.size))[:, 0]
        w_noise = np.zeros((lnet.instances, lo.size, lo.size), dtype=diag.dtype)
        idx = np.arange(lo.size)
        w_noise[:, idx, idx] = diag
        run.mirror_noise[lower] = w_noise
    pops = [CorePopulation("noise", lo.size, "input"), replace(lo, lag=1), replace(up, lag=2)]
    projs = [CoreProjection("noise->" + lower, "noise", lower, w_noise, num_weight_bits=9 if run.fixed else 8),
             replace(w_fwd)]  # fmt: skip
    net = CoreNetwork(pops, projs, ["noise"], [upper], numerics=core.numerics)
    spikes = np.zeros((sched.steps, samples, lo.size), dtype=bool)
    spikes[: sched.active] = rng.random((sched.active, samples, lo.size)) < rate
    out = simulate(net, {"noise": spikes}, steps=sched.steps, record=("spikes", "v"), populations=[lower, upper],
                   kernels=run._neuron_kernels())  # fmt: skip
    shape = (lnet.instances, samples)
    xi = out.spikes[lower].reshape(sched.steps, *shape, -1).sum(axis=0) / sched.active
    if up.spiking:
        r = out.spikes[upper].reshape(sched.steps, *shape, -1).sum(axis=0) / sched.active
    else:  # the readout: membrane at the last step in score units (spikes per input step)
        unit = 64.0 * lnet.scale if run.fixed else 1.0
        r = out.v[upper].reshape(sched.steps, *shape, -1)[-1] / (unit * sched.active)
    xi = xi - xi.mean(axis=1, keepdims=True)
    r = r - r.mean(axis=1, keepdims=True)
    return xi, r


def mirror_update(rule: str, b: np.ndarray, xi: np.ndarray, r: np.ndarray, lr: float) -> np.ndarray:
    """ΔB (float units, (inst, n_lower, n_upper)) of WM or IA from one set of mirror samples."""
    n = xi.shape[1]
    var_xi = np.maximum((xi**2).mean(axis=(1, 2)), 1e-12)[:, None, None]
    corr = np.einsum("sbi,sbj->sij", xi, r) / n / var_xi
    if rule == "wm":
        return lr * (corr - b)
    resp = np.einsum("sbi,sbj->sij", r, r) / n
    var_r = np.maximum(np.einsum("sii->s", resp) / resp.shape[-1], 1e-12)[:, None, None]
    return lr * (corr - b @ (resp / var_r) - IA_DECAY * b)


def host_write(b_int: np.ndarray, db: np.ndarray, scale: int, rng: np.random.Generator) -> np.ndarray:
    """The host's write of B + ΔB into the feedback synapses' integers, rounding stochastically (unbiased)."""
    z = b_int + db * scale
    low = np.floor(z)
    z = low + (rng.random(z.shape) < (z - low))
    return np.clip(z, -256, 254).astype(np.int64)


def host_ops_per_sample(rule: str, feedback: list[Any], batch: int) -> float:
    """Host multiply-adds per training sample: one mirror sample per training sample per layer (ξ rᵀ:
    |B|; IA also r rᵀ and B R per minibatch) and one read-modify-write of B per minibatch."""
    ops = 0.0
    for fb in feedback:
        n_lo, n_up = fb.weight.shape[-2:]
        ops += n_lo * n_up + 2 * n_lo * n_up / batch
        if rule == "ia":
            ops += n_up * n_up + n_lo * n_up * n_up / batch
    return round(ops, 2)
