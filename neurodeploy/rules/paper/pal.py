"""Phaseless Alignment Learning as published: Max, Kriener, Pineda García, Nowotny, Jaras, Senn and
Petrovici, "Learning efficient backprojections across cortical hierarchies in real time", ICANN 2023
(arXiv 2212.10249).

The network runs in time. Every hidden layer carries private Ornstein-Uhlenbeck noise ξ_l, always on,
with no phases, on the voltage: during learning, the forward weights learn from the error that reaches them
through B, and B learns at the same time from the noise and the layer above's high-passed rate. Updates
per time step dt (Sec. 2 of the paper; the facts file gives the discretisation of the released code):

    ξ_l   ← ξ_l + (1/τ_ξ)(√(τ_ξ·dt)·σ·w − dt·ξ_l),  w ~ N(0, 1)        (OU noise)
    r_l    = φ(g_l ⊙ (W_l r_{l−1} + b_l) + o_l + ξ_l)                   (instantaneous rate, noisy voltage)
    r^HP   ← r^HP + Δr_{l+1} − (dt/τ_HP) r^HP                           (high-pass of the upper rate)
    dB_l   = η_bw [ξ_l (r^HP_{l+1})ᵀ − α B_l] dt                        (PAL's feedback rule)
    δ_l    = (B_l δ_{l+1}) ⊙ φ'(·),  dW_l = −η δ_l r_{l−1}ᵀ dt           (forward learning through B)

B's stationary value is (σ²-scaled, 1/α) E[φ'_l φ'_{l+1}ᵀ] ∘ W_{l+1}ᵀ: the voltage noise reaches the layer
above through both layers' slopes, so B is the Jacobian of the layer above (the paper's (D W)ᵀ) with each
row also scaled by the lower neuron's own slope. It is what carries the error backwards, and it differs
from Wᵀ wherever the neurons' slopes differ: ``alignment`` reports ∠(B, Wᵀ), the angle of B to this
fixed point (``fixed_point_angle``, the quantity the paper's Fig. 3 tracks) and the angle of the fixed
point itself to Wᵀ (``fixed_point_floor``), the least ∠(B, Wᵀ) that PAL can reach on this network.

``regularizer="slope"`` replaces the decay α B by α φ'_l ∘ B ∘ φ'_{l+1} (batch mean of the two neurons'
slopes), an option of the authors' released code, off in its Fig. 4 parameters. The decay then
carries the same slopes as the noise correlation and they cancel: B settles at (σ²/α) Wᵀ, the floor is 0.

Run settings, against the paper's: neurons respond instantly (the prospective, Latent-Equilibrium
neurons the paper's deep experiments use respond without lag); a pattern is shown for ``pattern_steps``
steps of dt = 1 (the paper's Yin-Yang sweep: 100 steps of dt 0.01) with τ_ξ = τ_HP = 10·dt (the paper's
rule of thumb); the paper's σ = 0.01 and α = 1e-6 let B settle over 400 epochs, so σ, α and η_bw are
raised here so that B settles within tens of epochs (σ²/α, which sets B's scale, is kept near 1/‖D W‖).
Minibatches of patterns run side by side, each with its own noise, and the updates are their mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.tasks import Task
from neurodeploy.rules.paper.ann import FATrainer
from neurodeploy.rules.paper.base import PaperConfig, phi_prime


@dataclass
class PALOptions:
    """PAL's own knobs (time in steps of dt = 1)."""

    pattern_steps: int = 20
    sigma: float = 0.2  # OU noise amplitude on the voltage (paper 0.01)
    tau_xi: float = 10.0  # τ_ξ (paper: 10·dt)
    tau_hp: float = 10.0  # τ_HP (paper: 10·dt)
    alpha: float = 0.004  # B's decay (paper 1e-6 over 400 epochs)
    lr_bw: float = 0.05  # η_bw per step: B averages over 1/(η_bw α) = 5000 steps
    regularizer: str = "plain"  # "plain": α B; "slope": α φ'_l ∘ B ∘ φ'_{l+1}, whose fixed point is Wᵀ


class PALTrainer(FATrainer):
    """PAL (paper): OU voltage noise and the upper layer's high-passed rate teach B, always on, no phases."""

    Options = PALOptions
    EQUATIONS = (
        "Max et al. 2023 (ICANN, arXiv 2212.10249) Sec. 2: OU noise on hidden voltages; dB_l = η_bw[ξ_l "
        "(r^HP_{l+1})ᵀ − α B_l] with r^HP the high-passed rate of layer l+1; forward δ_l = (B_l δ_{l+1}) ⊙ φ'; "
        "all updates continuous in time, no phases"
    )

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None, opts: PALOptions) -> None:
        super().__init__(cfg, task, weights)  # B starts as FA's fixed random feedback, and PAL aligns it
        if opts.regularizer not in ("plain", "slope"):
            raise NeurodeployError(
                f"unknown PAL regularizer {opts.regularizer!r}", "regularizer", "use 'plain' (α B) or 'slope'"
            )
        self.opts = opts
        self.noise_rng = np.random.default_rng([cfg.seed, 49979687])

    def step(self, idx: np.ndarray, lr: float) -> None:
        o, net = self.opts, self.net
        x, y = self.task.x_train[idx], self.task.y_train[idx]
        s, b, depth = net.w[0].shape[0], len(idx), net.depth
        shapes = [(s, b, n) for n in net.sizes[1:-1]]
        xi = [o.sigma / np.sqrt(2.0) * self.noise_rng.standard_normal(sh) for sh in shapes]  # stationary start
        decay_xi, kick = 1.0 / o.tau_xi, np.sqrt(o.tau_xi) * o.sigma / o.tau_xi
        acts, hs = net.forward(x, xi)
        prev = [h.copy() for h in hs[2:]]
        hp = [np.zeros_like(h) for h in hs[2:]]
        eta = lr / o.pattern_steps  # the pattern's summed forward update equals one SGD step of lr
        for _ in range(o.pattern_steps):
            xi = [z + kick * self.noise_rng.standard_normal(z.shape) - decay_xi * z for z in xi]
            acts, hs = net.forward(x, xi)
            for k in range(depth):
                r_up = hs[k + 2]
                hp[k] += r_up - prev[k] - hp[k] / o.tau_hp
                prev[k] = r_up
                corr = np.swapaxes(xi[k], -1, -2) @ hp[k] / b
                self.feedback[k] += o.lr_bw * (corr - o.alpha * self.decay_weight(k, acts, hs) * self.feedback[k])
            e = net.output_error(acts[-1], y)
            deltas = [*self.hidden_deltas(acts, hs, e, y), e]
            self.apply_forward(hs, deltas, eta)

    def decay_weight(self, k: int, acts: list, hs: list) -> np.ndarray | float:
        """What multiplies α B_k: 1 (plain decay), or the batch mean of φ'_lower φ'_upperᵀ ("slope").

        The noise reaches r^HP through the lower neuron's slope φ'(a) (ξ enters after its gain) and the
        upper neuron's slope with its gain, so ⟨ξ r^HPᵀ⟩ = σ² ⟨φ'_l φ'_{l+1}ᵀ⟩ ∘ Wᵀ. Weighting the decay with
        the same product, pattern by pattern, cancels it entry by entry: B settles at (σ²/α) Wᵀ. Both
        slopes are local to the synapse (its post and pre neuron's own derivative)."""
        if self.opts.regularizer == "plain":
            return 1.0
        lower = phi_prime(acts[k], hs[k + 1], self.net.act)
        upper = self.net.gate(k + 1, acts, hs) if k + 1 < self.net.depth else np.ones_like(acts[k + 1])
        return np.swapaxes(lower, -1, -2) @ upper / lower.shape[-2]

    def alignment(self, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        out = super().alignment(probe)
        net = self.net
        acts, hs = net.forward(probe[0])
        out["fixed_point_angle"], out["fixed_point_floor"] = {}, {}
        for k in range(net.depth):
            lower = net.gate(k, acts, hs)
            upper = net.gate(k + 1, acts, hs) if k + 1 < net.depth else np.ones_like(acts[k + 1])
            w_t = self.chain_partner(k)
            slopes = np.swapaxes(lower, -1, -2) @ upper / lower.shape[1]
            fixed = w_t if self.opts.regularizer == "slope" else slopes * w_t
            out["fixed_point_angle"][f"B{k + 1}"] = metrics.angle(self.feedback[k], fixed).tolist()
            out["fixed_point_floor"][f"B{k + 1}"] = metrics.angle(fixed, w_t).tolist()
        return out
