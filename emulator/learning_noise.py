"""Noise-driven feedback learning while training: phaseless alignment (PAL) and spike-based alignment
(SAL), run on the compiled network.

While the chip trains, a noise population per hidden layer l (spikes from the chip's random number
generator, ``rate`` per input step in each of two channels) drives layer l one to one through synapses
of ±``charge`` thresholds, so every hidden neuron receives private, zero-mean noise that its synaptic
current low-passes into its membrane (the chip's stand-in for PAL's Ornstein-Uhlenbeck voltage noise).
Tests run without it. The forward pass, the noise and the responses are the emulator's run loop.

After each minibatch the host reads the recorded trains (per step) of the noise, of layer l and of
layer l+1 (the output layer: its membrane's increment per step, which is exactly W z(t − 1) plus the
bias), adds the minibatch's sums to running averages that decay by η_B per minibatch (the paper's −αB)
and writes their ratio as B into the feedback synapses, rounded stochastically on fixed point. A ratio
of running sums cannot be blown up by one noisy minibatch, and keeps steps a rounded write would lose.

- PAL (Max et al. 2023): C = Σ_t ξ̃ (r^HP)ᵀ with ξ = s⁺ − s⁻ the noise, ξ̃ its trace (τ_ξ) and r^HP the
  upper activity minus its running mean (τ_HP). With r = W z, C → D Wᵀ, D_i = Σ_t ξ̃_i z_i^HP each
  lower neuron's own response to its noise: the paper's fixed point (D W)ᵀ. B = C / rms(D) puts it in
  W's units instead of the paper's σ²/α.
- SAL (Gierlich et al. 2025): the anti-symmetric spike-timing kernel on B_ij (pre = upper j, post =
  lower i): + for lower-before-upper pairs, − for upper-before-lower pairs, both e^(−Δt/τ), on trains
  centred on their rate in the presentation, divided by lower neuron i's own spike count. Pairs that
  lower neuron i causes through W_ji survive; shared-input correlation cancels between the two halves
  only where it is symmetric in time, and the private noise decorrelates the lower neurons.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

SPIKE_FLOOR = 0.05  # SAL: a neuron's normaliser is at least this fraction of its layer's mean count


def noise_spikes(shape: tuple[int, ...], steps: int, active: int, rate: float, rng: np.random.Generator) -> np.ndarray:
    """Spikes (steps, *shape) of the two noise channels (the last axis holds + then −), only while the
    input is on, so the readout's last steps see no noise."""
    out = np.zeros((steps, *shape), dtype=bool)
    out[:active] = rng.random((active, *shape)) < rate
    return out


def signed(spikes: np.ndarray) -> np.ndarray:
    """ξ = s⁺ − s⁻ from the two channels, float32, (steps, ..., n)."""
    n = spikes.shape[-1] // 2
    return spikes[..., :n].astype(np.float32) - spikes[..., n:].astype(np.float32)


def _trace(x: np.ndarray, tau: float) -> np.ndarray:
    """x̃(t) = a x̃(t−1) + x(t−1), a = e^(−1/τ): what a synaptic trace holds of strictly earlier steps."""
    a = math.exp(-1.0 / tau)
    out = np.zeros_like(x)
    acc = np.zeros_like(x[0])
    for t in range(1, x.shape[0]):
        acc = a * acc + x[t - 1]
        out[t] = acc
    return out


def _high_pass(x: np.ndarray, tau: float) -> np.ndarray:
    """x − x̄ with x̄ a running mean of strictly earlier steps (time constant ``tau`` steps)."""
    a = math.exp(-1.0 / tau)
    slow = np.zeros_like(x)
    acc = np.zeros_like(x[0])
    for t in range(1, x.shape[0]):
        acc = a * acc + (1.0 - a) * x[t - 1]
        slow[t] = acc
    return x - slow


def pal_correlations(
    xi: np.ndarray, z: np.ndarray, r: np.ndarray, tau_noise: float, tau_hp: float
) -> tuple[np.ndarray, np.ndarray]:
    """PAL's sums over a minibatch: ξ̃ (r^HP)ᵀ (inst, n_lower, n_upper) and each lower neuron's own
    response to its noise, Σ_t ξ̃_i z^HP_i (inst, n_lower), which sets B's scale (``feedback_estimate``). ξ and the
    lower spikes z are (steps, inst, batch, n_lower), the upper activity r (steps, inst, batch, n_upper)."""
    xt = _trace(xi, tau_noise)
    corr = np.einsum("tsbi,tsbj->sij", xt, _high_pass(r, tau_hp), optimize=True)
    own = np.einsum("tsbi,tsbi->si", xt, _high_pass(z, tau_hp), optimize=True)
    return corr, own


def _centred(x: np.ndarray, active: int) -> np.ndarray:
    """x minus its mean over the presentation's first ``active`` steps, per sample and neuron."""
    return x - x[:active].mean(axis=0, keepdims=True)


def sal_correlations(z: np.ndarray, r: np.ndarray, tau: float, active: int) -> tuple[np.ndarray, np.ndarray]:
    """SAL's sums over a minibatch: the kernel's Σ_t [z̃ rᵀ − z r̃ᵀ] (inst, n_lower, n_upper) and each lower
    neuron's spike count (inst, n_lower). z (lower spikes) and r (upper activity) are (steps, inst, batch, n),
    each centred on its rate in the presentation: a presentation is short, so rates are not stationary
    within it and uncentred pairs would not cancel between the kernel's halves."""
    count = z.sum(axis=(0, 2))
    z, r = _centred(z, active), _centred(r, active)
    zt, rt = _trace(z, tau), _trace(r, tau)
    corr = np.einsum("tsbi,tsbj->sij", zt, r, optimize=True) - np.einsum("tsbi,tsbj->sij", z, rt, optimize=True)
    return corr, count


def feedback_estimate(rule: str, corr: np.ndarray, norm: np.ndarray) -> np.ndarray:
    """B from the running sums: PAL divides by the root mean square of the lower neurons' own
    responses (B settles at (D / rms D) Wᵀ: the paper's D Wᵀ with ‖B‖ near ‖W‖); SAL by each lower
    neuron's own spike count, floored at ``SPIKE_FLOOR`` of the layer mean (a local per-neuron gain)."""
    if rule == "pal":
        rms = np.sqrt(np.mean(np.maximum(norm, 0.0) ** 2, axis=-1))
        return corr / np.maximum(rms, 1e-12)[:, None, None]
    floor = SPIKE_FLOOR * norm.mean(axis=-1, keepdims=True) + 1e-12
    return corr / np.maximum(norm, floor)[..., None]


def host_ops_per_sample(rule: str, feedback: list[Any], steps: int, batch: int) -> float:
    """Host multiply-adds per training sample: the traces (one per neuron and step, two for PAL's upper
    layer), the per-step correlation (|B| per step; SAL two halves) and one read-modify-write of B per
    minibatch."""
    ops = 0.0
    for fb in feedback:
        n_lo, n_up = fb.weight.shape[-2:]
        per_step = (2 if rule == "sal" else 1) * n_lo * n_up + n_lo + (2 if rule == "pal" else 1) * n_up
        ops += steps * per_step + 2 * n_lo * n_up / batch
    return round(ops, 2)


__all__ = ["noise_spikes", "signed", "pal_correlations", "sal_correlations", "feedback_estimate", "host_ops_per_sample"]
