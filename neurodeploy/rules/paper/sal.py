"""Spike-based Alignment Learning as published: Gierlich, Baumbach, Petrovici et al., "Weight transport
through spike timing for robust local gradients" (arXiv 2503.02642).

Every neuron is a stochastic escape-noise neuron in the neural-sampling form (Buesing et al. 2011): when
not refractory it fires with probability sigmoid(v − ln τ_ref) per step and then stays in its "on" state
for τ_ref steps, so its state z ∈ {0, 1} samples with P(z = 1) = sigmoid(v). The feedback weights B act
*inside* the dynamics: the layer above's state drives the layer below through B, so B's own effect shows
up in the spike timing. SAL's kernel on B_ij (post = lower neuron i, pre = upper neuron j), per step:

    at a lower spike:  ΔB_ij += a_c · Σ_k exp(−(t − t_j^k)/τ)     (causal, a_c = −1, anti-Hebbian)
    at an upper spike: ΔB_ij += a_a · Σ_k exp(−(t − t_i^k)/τ)     (anti-causal, a_a = +1, Hebbian)
    B ← B + η_B ΔB

Lower-before-upper pairs come from W_ji (the forward weight makes the upper neuron fire after the lower
one), upper-before-lower pairs from B_ij itself, and correlations from shared input are symmetric in time
and cancel between the two halves. So the Hebbian half pulls B towards Wᵀ and the anti-Hebbian half
removes B's own echo: B → Wᵀ up to the two layers' gains (the paper's Sec. 2 and its fixed point).

Each pattern runs twice. The sampling network runs it for ``pattern_steps`` steps with B in its dynamics,
and SAL's kernel teaches B. The network's mean field then learns through B as in FA: e = softmax −
one-hot at the readout, δ_l = (B_l δ_{l+1}) ⊙ φ', ΔW_l = −η δ_l h_{l−1}ᵀ. A neuron sends 2z − 1 (±1, the
sampling network's spin form), and P(z = 1) = sigmoid(2v), so the mean field is tanh(v): the tanh
network of the other paper variants, which is also what the test scores. Rates sampled over tens of
steps are too noisy to train a deep network; the paper's patterns last thousands of steps. Run settings
against the paper's: τ_ref = τ = 10 steps as in the paper; patterns of ``pattern_steps`` steps (the
paper's microcircuit: 2000); minibatches of patterns run side by side, each with its own spikes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.learning.tasks import Task
from neurodeploy.rules.paper.base import PaperConfig, PaperTrainer, chain_deltas, random_feedback


@dataclass
class SALOptions:
    """SAL's own knobs (time in steps)."""

    pattern_steps: int = 60
    t_ref: int = 10  # refractory (on-state) steps of a sampling neuron (paper 10)
    tau: float = 10.0  # the STDP kernel's τ (paper 10)
    a_causal: float = -1.0  # upper-before-lower pairs: anti-Hebbian (paper −1)
    a_anticausal: float = 1.0  # lower-before-upper pairs: Hebbian (paper +1)
    lr_b: float = 0.002  # η_B per spike pair, averaged over the minibatch
    coupling: float = 0.5  # gain of B's top-down drive into the lower voltages


class SALTrainer(PaperTrainer):
    """SAL (paper): stochastic sampling neurons with B in their dynamics teach B by anti-symmetric STDP."""

    Options = SALOptions
    EQUATIONS = (
        "Gierlich et al. 2025 (arXiv 2503.02642) Sec. 2: escape-noise sampling neurons, P(spike) = "
        "sigmoid(v − ln τ_ref); STDP on B with K(Δt) = a·exp(−Δt/τ), a_c = −1 causal, a_a = +1 anti-causal, "
        "τ = 10; B drives the lower layer; forward δ_l = (B_l δ_{l+1}) ⊙ f'"
    )

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None, opts: SALOptions) -> None:
        super().__init__(cfg, task, weights)
        self.opts = opts
        self.feedback = random_feedback(self.net, np.random.default_rng([cfg.seed, 86028121]), cfg.feedback_gain,
                                        direct=False)  # fmt: skip
        self.spike_rng = np.random.default_rng([cfg.seed, 179424673])

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        return chain_deltas(self.net, acts, hs, e, self.feedback)

    def _sample(self, x: np.ndarray) -> None:
        """Run the sampling network on a pattern batch, with B in the dynamics, and apply SAL's kernel."""
        o, net, rng = self.opts, self.net, self.spike_rng
        s, b, depth = net.w[0].shape[0], x.shape[0], net.depth
        count = [np.zeros((s, b, n), dtype=np.int16) for n in net.sizes[1:]]  # refractory steps left
        trace = [np.zeros((s, b, n)) for n in net.sizes[1:]]
        keep, log_ref = np.exp(-1.0 / o.tau), np.log(o.t_ref)
        drive_in = x @ np.swapaxes(net.w[0], -1, -2) + net.b[0][:, None, :]
        for _ in range(o.pattern_steps):
            spin = [2.0 * (c > 0) - 1.0 for c in count]
            spikes = []
            for k in range(depth + 1):
                v = drive_in if k == 0 else spin[k - 1] @ np.swapaxes(net.w[k], -1, -2) + net.b[k][:, None, :]
                if k < depth:
                    v = net.gain[k][:, None, :] * v + net.offset[k][:, None, :]
                    v = v + o.coupling * spin[k + 1] @ np.swapaxes(self.feedback[k], -1, -2)
                fire = (count[k] == 0) & (rng.random(v.shape) < 0.5 * (1.0 + np.tanh(0.5 * (2.0 * v - log_ref))))
                count[k] = np.where(fire, o.t_ref, np.maximum(count[k] - 1, 0)).astype(np.int16)
                spikes.append(fire.astype(float))
            for k in range(depth):  # B_k: post = layer k (lower), pre = layer k + 1 (upper)
                causal = np.swapaxes(spikes[k], -1, -2) @ trace[k + 1]
                anti = np.swapaxes(trace[k], -1, -2) @ spikes[k + 1]
                self.feedback[k] += o.lr_b * (o.a_causal * causal + o.a_anticausal * anti) / b
            for k in range(depth + 1):
                trace[k] = keep * trace[k] + spikes[k]

    def step(self, idx: np.ndarray, lr: float) -> None:
        self._sample(self.task.x_train[idx])
        super().step(idx, lr)
