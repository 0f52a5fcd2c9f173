"""SAL in a spiking sampling network (Gierlich et al., arXiv 2503.02642; neural sampling: Buesing et al. 2011).

Stochastic escape-noise neurons with a refractory period of ``t_ref`` steps and rectangular PSPs of the
same length sample binary states z (z_k = 1 while neuron k is refractory). With symmetric weights the
network samples the Boltzmann distribution p(z) ∝ exp(zᵀWz/2 + bᵀz). Here the forward half of every
reciprocal pair (k < j: the weight onto k from j, above the diagonal) is the target's W* and stays fixed;
the other half B (below the diagonal) starts random, so the network samples a biased distribution. SAL's
spike-timing rule (anti-Hebbian causal half, Hebbian anti-causal half) drives B towards the forward
half's transpose and the sampled distribution towards the target. The comparisons are the Hebbian half
alone (with a weight decay, ``hebbian_decay``) and no plasticity.

One epoch is a block of ``steps_per_epoch`` steps; after each, the history records the KL divergence
D_KL(p_target ‖ p_sampled) of the states sampled in that block and ∠(B, W_forwardᵀ). Seeds run side by
side on a leading axis: each seed draws its own target, initial B and noise.

``variant="chip"`` runs the same network in the loihi2 profile's fixed-point arithmetic with the STDP
on the Loihi learning engine (``sampling_chip``).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import base

SYSTEM = "sampling"
RULES = ("sal", "hebbian", "none")
PSP_MODES = ("per-step", "onset-offset")  # how the chip delivers B's rectangular PSPs (sampling_chip)
MAX_NEURONS = 12  # the 2^n state histogram must stay small enough to fill in one epoch
WEIGHT_LIMIT = 50.0  # |B| beyond this means the learning rate made B run away

EQUATIONS = (
    "P(neuron k spikes in a step | not refractory) = σ(u_k − ln t_ref),  u_k = b_k + Σ_j W_kj z_j  "
    "(Gierlich et al. 2025, sec. on sampling networks; Buesing et al. 2011, discrete-time neural sampling)",
    "z_k = 1 for the t_ref steps after a spike of k (rectangular PSP, τ_syn = t_ref)  (Buesing et al. 2011; "
    "Petrovici et al. 2016)",
    "p(z) ∝ exp(zᵀ W z / 2 + bᵀ z) for symmetric W  (Buesing et al. 2011)",
    "K(Δt) = a Θ(Δt) e^(−Δt/τ),  a_c = −1 (causal, anti-Hebbian),  a_a = +1 (anti-causal, Hebbian),  τ = 10 steps  "
    "(Gierlich et al. 2025, SAL rule)",
    "at a post spike of i: ΔB_ij += a_c Σ_k e^(−(t − t_j^k)/τ);  at a pre spike of j: "
    "ΔB_ij += a_a Σ_k e^(−(t − t_i^k)/τ);  B ← B + η ΔB  (Gierlich et al. 2025, SAL rule)",
)


@dataclass(frozen=True)
class Options:
    """The sampling network and its plasticity; defaults follow the SAL paper where it gives a value."""

    rule: str = "sal"  # "sal", "hebbian" (the anti-causal half plus decay) or "none"
    neurons: int = 5
    t_ref: int = 10  # refractory period and PSP length τ_syn, steps (SAL code: t_ref = τ_syn = 10)
    tau_stdp: float = 10.0  # STDP kernel time constant, steps
    a_causal: float = -1.0
    a_anticausal: float = 1.0
    lr: float = 2.0**-7  # η per pairing; a power of two so that the chip holds it exactly
    hebbian_decay: float = 0.1  # Hebbian control: B ← B − η·λ·B every step
    steps_per_epoch: int = 20000
    weight_scale: float = 0.6  # std of the target's W* entries
    bias_mean: float = -0.3
    bias_scale: float = 0.5
    init_scale: float = 0.6  # std of B's random initial entries
    seed: int = 0
    mismatch: float = 0.0  # chip only: relative spread of weights, biases and sigmoid offsets
    # chip only: B's PSPs as a graded spike per refractory step ("per-step", B z each step) or as +1/−1 graded
    # spikes at the PSP's onset and end into a non-decaying dendrite ("onset-offset"; see sampling_chip.DIFFERENCES)
    chip_psp: str = "per-step"

    def checked(self) -> Options:
        def bad(name: str, value: Any, hint: str) -> NeurodeployError:
            return NeurodeployError(f"option {name}={value!r} is out of range", f"learning system {SYSTEM!r}", hint)

        if self.rule not in RULES:
            raise bad("rule", self.rule, f"choose one of {', '.join(RULES)}")
        for name in ("neurons", "t_ref", "steps_per_epoch", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise NeurodeployError(
                    f"option {name}={value!r} must be an integer",
                    f"learning system {SYSTEM!r}",
                    f"give {name} as a whole number, e.g. {name}={getattr(Options, name)}",
                )
        for name in ("tau_stdp", "a_causal", "a_anticausal", "lr", "hebbian_decay", "weight_scale", "bias_mean",
                     "bias_scale", "init_scale", "mismatch"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise NeurodeployError(f"option {name}={value!r} must be a number", f"learning system {SYSTEM!r}",
                                       f"give {name} as a number, e.g. {name}={getattr(Options, name)!r}")  # fmt: skip
        if not 2 <= self.neurons <= MAX_NEURONS:
            raise bad("neurons", self.neurons, f"use 2...{MAX_NEURONS} (the 2^n states are counted)")
        if not 1 <= self.t_ref <= 62:
            raise bad("t_ref", self.t_ref, "use 1...62 steps (e.g. 10)")
        if not (math.isfinite(self.tau_stdp) and self.tau_stdp > 0):
            raise bad("tau_stdp", self.tau_stdp, "use a positive time constant in steps, e.g. 10")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 1):
            raise bad("lr", self.lr, "use a small positive learning rate, e.g. 2**-7")
        if not (math.isfinite(self.hebbian_decay) and self.hebbian_decay >= 0):
            raise bad("hebbian_decay", self.hebbian_decay, "use a decay >= 0, e.g. 0.1")
        if self.steps_per_epoch < 100:
            raise bad("steps_per_epoch", self.steps_per_epoch, "use at least 100 steps per epoch, e.g. 20000")
        for name in ("a_causal", "a_anticausal", "bias_mean"):
            if not math.isfinite(getattr(self, name)):
                raise bad(name, getattr(self, name), "use a finite number")
        for name in ("weight_scale", "bias_scale", "init_scale"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value <= 5):
                raise bad(name, value, "use a spread between 0 and 5")
        if not (math.isfinite(self.mismatch) and 0 <= self.mismatch < 1):
            raise bad("mismatch", self.mismatch, "use a relative spread in [0, 1), e.g. 0.1 for 10 %")
        if self.chip_psp not in PSP_MODES:
            raise bad("chip_psp", self.chip_psp, f"choose one of {', '.join(PSP_MODES)}")
        return self


# --------------------------------------------------------------------------- the target and its measures


def reciprocal_masks(n: int) -> tuple[np.ndarray, np.ndarray]:
    """(forward, backward): the fixed half above the diagonal and the plastic half B below it."""
    forward = np.triu(np.ones((n, n), dtype=bool), 1)
    return forward, forward.T.copy()


def make_network(opts: Options, seeds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per seed: the target's symmetric W* (zero diagonal), its bias b and the random initial B.

    Shapes ``(seeds, n, n)``, ``(seeds, n)``, ``(seeds, n, n)`` (B zero outside the lower triangle). Seed
    s draws from ``default_rng([opts.seed, s])`` alone, so a run with more seeds repeats the first ones.
    """
    n = int(opts.neurons)
    forward, backward = reciprocal_masks(n)
    w, b, b0 = [], [], []
    for s in range(seeds):
        rng = np.random.default_rng([int(opts.seed), s])
        upper = rng.normal(0.0, opts.weight_scale, (n, n)) * forward
        w.append(upper + upper.T)
        b.append(rng.normal(opts.bias_mean, opts.bias_scale, n))
        b0.append(rng.normal(0.0, opts.init_scale, (n, n)) * backward)
    return np.stack(w), np.stack(b), np.stack(b0)


def all_states(n: int) -> np.ndarray:
    """The 2^n binary states, row k is state k with neuron 0 as the most significant bit."""
    return np.array(list(itertools.product((0, 1), repeat=n)), dtype=float)


def state_index(z: np.ndarray) -> np.ndarray:
    """Index of each binary state (last axis: neurons) in ``all_states``."""
    n = z.shape[-1]
    return (np.asarray(z, dtype=np.int64) << np.arange(n - 1, -1, -1)).sum(-1)


def boltzmann(w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """p(z) ∝ exp(zᵀWz/2 + bᵀz) over ``all_states``, for a leading seed axis: (seeds, 2^n)."""
    z = all_states(w.shape[-1])
    energy = 0.5 * np.einsum("ki,sij,kj->sk", z, w, z) + np.einsum("ki,si->sk", z, b)
    p = np.exp(energy - energy.max(axis=-1, keepdims=True))
    return p / p.sum(axis=-1, keepdims=True)


def kl_from_counts(p_target: np.ndarray, counts: np.ndarray, prior: float = 0.5) -> np.ndarray:
    """D_KL(p_target ‖ q) with q the state histogram plus ``prior`` pseudo-counts per state (keeps q > 0)."""
    q = counts + prior
    q = q / q.sum(axis=-1, keepdims=True)
    return np.sum(p_target * (np.log(p_target) - np.log(q)), axis=-1)


def reciprocal_angle(weights: np.ndarray) -> np.ndarray:
    """∠(B, W_forwardᵀ) in degrees per seed: B is the lower triangle, W_forwardᵀ the upper one mirrored."""
    n = weights.shape[-1]
    _, backward = reciprocal_masks(n)
    b = weights[..., backward].astype(float)
    f = np.swapaxes(weights, -1, -2)[..., backward].astype(float)
    norm = np.linalg.norm(b, axis=-1) * np.linalg.norm(f, axis=-1)
    cos = np.where(norm > 0, (b * f).sum(-1) / np.where(norm > 0, norm, 1.0), 0.0)
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


# --------------------------------------------------------------------------- float dynamics


def neuron_step(zeta: np.ndarray, u: np.ndarray, uniform: np.ndarray, t_ref: int) -> tuple[np.ndarray, np.ndarray]:
    """One step of the discrete-time sampling neuron: (new refractory counter, spikes).

    A neuron whose counter is 0 or 1 spikes with probability σ(u − ln t_ref) and loads t_ref; otherwise
    the counter counts down. z = counter > 0 then lasts exactly t_ref steps per spike, and for a lone
    neuron p(z = 1) / p(z = 0) = e^u (Buesing et al. 2011).
    """
    free = zeta <= 1
    spikes = free & (uniform < 1.0 / (1.0 + np.exp(-(u - math.log(t_ref)))))
    return np.where(spikes, t_ref, np.maximum(zeta - 1, 0)), spikes


def stdp_delta(pre_trace: np.ndarray, post_trace: np.ndarray, spikes: np.ndarray, a_causal: float,
               a_anticausal: float) -> np.ndarray:  # fmt: skip
    """ΔB_ij of one step for every pair (post i, pre j): a_c·x_j at i's spike plus a_a·y_i at j's spike.

    Traces hold Σ_k e^(−(t − t^k)/τ) over spikes up to and including this step (Θ(0) = 1: a pair in the
    same step counts in both halves, which cancel for SAL's a_c = −a_a).
    """
    s = spikes.astype(float)
    return (
        a_causal * s[..., :, None] * pre_trace[..., None, :] + a_anticausal * post_trace[..., :, None] * s[..., None, :]
    )


def run_float(
    weights: np.ndarray,
    bias: np.ndarray,
    steps: int,
    rng: np.random.Generator,
    opts: Options,
    *,
    plastic: np.ndarray | None = None,
    on_block: Callable[[np.ndarray, np.ndarray], None] | None = None,
    block: int | None = None,
    weight_step: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the float network for ``steps``; returns (final weights, state counts of the last block).

    ``weights`` (seeds, n, n) holds W (post, pre); ``plastic`` marks the entries the rule changes (None:
    none). ``on_block(counts, weights)`` is called every ``block`` steps with that block's histogram.
    ``weight_step`` (an ablation, not the paper's rule): the changes are summed over ``t_ref`` steps and
    then stochastically rounded to multiples of ``weight_step``, as the chip's learning epochs round them.
    """
    seeds, n = bias.shape
    w = np.array(weights, dtype=float)
    zeta = np.zeros((seeds, n), dtype=np.int64)
    trace = np.zeros((seeds, n))
    decay = math.exp(-1.0 / opts.tau_stdp)
    counts = np.zeros((seeds, 1 << n))
    rows = np.arange(seeds)
    learn = plastic is not None and opts.rule != "none"
    a_causal = opts.a_causal if opts.rule == "sal" else 0.0
    shrink = opts.hebbian_decay if opts.rule == "hebbian" else 0.0
    block = block or steps
    z = np.zeros((seeds, n))
    last = counts
    pending = np.zeros_like(w)
    for t in range(steps):
        u = bias + np.einsum("sij,sj->si", w, z)  # PSPs of the states of the previous step
        zeta, spikes = neuron_step(zeta, u, rng.random((seeds, n)), int(opts.t_ref))
        z = (zeta > 0).astype(float)
        counts[rows, state_index(z)] += 1
        trace = trace * decay + spikes
        if learn:
            dw = opts.lr * plastic * (stdp_delta(trace, trace, spikes, a_causal, opts.a_anticausal) - shrink * w)
            if weight_step is None:
                w += dw
            else:
                pending += dw
                if (t + 1) % int(opts.t_ref) == 0:
                    w += weight_step * np.floor(pending / weight_step + rng.random(w.shape))
                    pending[:] = 0.0
        if (t + 1) % block == 0:
            if learn and not np.all(np.abs(w) < WEIGHT_LIMIT):
                raise NeurodeployError(
                    f"the plastic weights ran away (|B| > {WEIGHT_LIMIT:g}) after {t + 1} steps",
                    f"learning system {SYSTEM!r}",
                    "lower lr",
                )
            if on_block is not None:
                on_block(counts, w)
            last, counts = counts, np.zeros_like(counts)
    return w, last


# --------------------------------------------------------------------------- learn


def learn(
    *,
    variant: str,
    profile: str,
    task: str | None,
    seeds: int,
    epochs: int | None,
    progress: Callable[[int, int, dict[str, Any]], None] | None,
    **options: Any,
) -> Any:
    """Sample with a fixed forward half and a learning B; history: per-epoch KL and ∠(B, W_forwardᵀ)."""
    started = time.perf_counter()
    opts = base.make_options(Options, SYSTEM, options)
    if task is not None:
        raise NeurodeployError(
            f"the sampling system learns a target Boltzmann distribution, not the task {task!r}",
            "task",
            "leave task unset (None)",
        )
    epochs = 10 if epochs is None else int(epochs)
    if variant == "chip":
        from neurodeploy.rules.systems.sampling_chip import learn_chip

        return learn_chip(opts, profile, seeds, epochs, progress, started)
    if opts.mismatch:
        raise NeurodeployError(
            "mismatch applies to the chip variant only", "option mismatch", "use variant='chip', or mismatch=0"
        )
    if opts.chip_psp != Options.chip_psp:
        raise NeurodeployError("chip_psp applies to the chip variant only", "option chip_psp",
                               "use variant='chip', or leave chip_psp unset")  # fmt: skip
    w_target, bias, b_init = make_network(opts, seeds)
    forward, backward = reciprocal_masks(opts.neurons)
    p_target = boltzmann(w_target, bias)
    history: list[dict[str, Any]] = []

    def record(counts: np.ndarray, w: np.ndarray) -> None:
        entry = {"epoch": len(history) + 1, "steps": (len(history) + 1) * opts.steps_per_epoch,
                 "kl": kl_from_counts(p_target, counts).tolist(),
                 "weight_angle": {"reciprocal": reciprocal_angle(w).tolist()}}  # fmt: skip
        history.append(entry)
        if progress is not None:
            progress(len(history), epochs, entry)

    rng = np.random.default_rng([int(opts.seed), 1 << 20])
    run_float(w_target * forward + b_init, bias, epochs * opts.steps_per_epoch, rng, opts,
              plastic=backward, on_block=record, block=opts.steps_per_epoch)  # fmt: skip
    how = "escape-noise sampling neurons, rectangular PSPs, STDP on B, KL from state counts"
    provenance = {"all": {"where": "host float64 (the paper's equations; no chip)", "how": how}}
    return base.system_result(SYSTEM, variant, profile, opts, history, equations=EQUATIONS, provenance=provenance,
                              started=started, extra_config={"epochs": epochs, "seeds": seeds})  # fmt: skip


__all__ = ["EQUATIONS", "Options", "boltzmann", "kl_from_counts", "learn", "make_network", "neuron_step",
           "reciprocal_angle", "run_float", "stdp_delta"]  # fmt: skip
