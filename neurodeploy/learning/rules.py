"""Credit-assignment rules: how each hidden neuron gets its learning signal, and how feedback learns.

Every rule keeps the forward update ΔW_l = −η δ_l x̄_{l−1}ᵀ (pre rate × post learning signal, the
engine's x1·y product); rules differ in δ_l and in whether the feedback matrices B learn. The forward
pass is always the chip's spiking network (``chipnet``); the signals below are what its error neurons,
feedback synapses, noise sources and plastic synapses compute. Which signals are local is stated per
rule. Notation follows ``../facts``: e = ∂L/∂a_L = softmax(readout) − y*, f′ the neuron's surrogate slope.

The surrogate slope is a function of the neuron's own spike count: its integrate-and-fire transfer is
r ≈ I/(1 + I/2) (reset to zero loses on average half a step of charge per spike), hence
f′ = (1 − r/2)² for firing neurons and 0 for silent ones.

PAL (phaseless alignment; Max et al., ICANN 2023, arXiv 2212.10249) on the chip. The paper's rule is
dB/dt = η[ξ (r^HP)ᵀ − αB]: Ornstein-Uhlenbeck noise ξ on the hidden voltages, correlated with the high-passed
rate of the layer above, always on and in one phase; its fixed point is B ∝ (σ²/α)(D W)ᵀ with D the
neurons' noise sensitivity. Here, per presentation and hidden neuron i, feedback synapse B_ij adds

    C_ij = Σ_t q_i(t)·ξ_i(t)·r^HP_j(t),   D_i = Σ_t q_i(t)·p_i(t)(1 − p_i(t)),   ΔB_ij ∝ C_ij / D̄_i − αB_ij,

with ξ_i(t) ~ N(0, σ²) the noise source's draw added to the membrane v each step, p_i = sigmoid((v − θ)/w)
the firing probability of the escape-noise neuron, r^HP_j the high-passed input (τ_HP = 8 steps) that the
hidden spikes evoke in output neuron j, q_i(t) the gate of ``metrics.sensitivity_gate`` (computed from the
membrane before this step's noise) and D̄_i the running mean of D_i (floored at 5 % of the layer's mean).
For Gaussian ξ Stein's lemma (Stein, Ann. Statist. 9:1135, 1981) gives E[C_ij] = (1 − 1/τ_HP)(σ²/w)·W_ji·E[D_i]
exactly, so B → Wᵀ up to one scale. Deviations from the paper, all chip adaptations:

- white noise (τ_ξ = one step) into v: the noise source's own per-step draw, which makes the identity exact;
- escape-noise neurons (as SAL's, narrower: w = 0.1) during learning, so that D_i = E[p(1 − p)]/w is a
  quantity the neuron knows; dividing by it (a third-factor gain) removes the paper's D, which here
  spans orders of magnitude between neurons (∠((D W)ᵀ, Wᵀ) ≈ 25–35°);
- the gate q, which leaves out steps far from threshold whose products carry only noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurodeploy.errors import NeurodeployError


@dataclass
class Presentation:
    """The per-sample quantities one forward pass exposes to the rules (float units)."""

    rates: list[np.ndarray]  # per layer incl. input, (inst, batch, n): spikes per active step
    pre: list[np.ndarray]  # rates of layer l's inputs with the bias neuron appended, (inst, batch, n + 1)
    fprime: list[np.ndarray]  # per hidden layer
    error: np.ndarray  # e at the output, (inst, batch, n_out)
    target: np.ndarray  # one-hot (classification) or target values (regression)
    noise_corr: list[np.ndarray] = field(default_factory=list)  # PAL: per hidden layer (inst, batch, n_h, n_next)
    stdp_corr: list[np.ndarray] = field(default_factory=list)  # SAL: same shape
    spike_variance: list[np.ndarray] = field(default_factory=list)  # SAL, PAL: mean (gated) p(1 - p) per neuron


@dataclass(frozen=True)
class RuleInfo:
    """What a rule needs from the chip and what it tells the user about locality."""

    name: str
    summary: str
    locality: str
    learns_feedback: bool = False
    noise: bool = False  # PAL: an always-on noise source on hidden neurons
    stochastic: bool = False  # SAL, PAL: escape-noise neurons
    mirror: bool = False  # WM / IA: a separate noise-driven phase


RULES: dict[str, RuleInfo] = {
    "bp": RuleInfo("bp", "backprop through Wᵀ (float reference)", "not local: needs the forward weights' transpose"),
    "frozen": RuleInfo("frozen", "only the output layer learns", "local (delta rule at the output)"),
    "fa": RuleInfo("fa", "feedback alignment: fixed random B", "local; needs a feedback pathway"),
    "dfa": RuleInfo("dfa", "direct feedback alignment: e broadcast to every layer", "error broadcast, no chain"),
    "drtp": RuleInfo("drtp", "direct random target projection: −y* through fixed B", "target broadcast only"),
    "sign": RuleInfo("sign", "sign symmetry (uSF): B = s·sign(W)ᵀ", "one sign bit of the forward partner"),
    "kp": RuleInfo(
        "kp", "Kolen-Pollack: B gets W's update transposed, both decay", "each synapse sees its own pre/post", True
    ),
    "wm": RuleInfo(
        "wm", "weight mirror: Hebbian B in a noise phase, with decay", "local, needs a mirror phase", True, mirror=True
    ),
    "ia": RuleInfo(
        "ia",
        "information alignment: Hebbian B with a self-prediction term",
        "local, needs a mirror phase",
        True,
        mirror=True,
    ),
    "pal": RuleInfo(
        "pal",
        "phaseless alignment: membrane noise correlated with the high-passed response, escape-noise neurons",
        "local, single phase",
        True,
        noise=True,
        stochastic=True,
    ),
    "sal": RuleInfo(
        "sal",
        "spike-timing alignment: antisymmetric STDP on B, escape-noise neurons",
        "local spike times",
        True,
        stochastic=True,
    ),
}


def rule_info(name: str) -> RuleInfo:
    if name not in RULES and name != "eprop":
        raise NeurodeployError(f"unknown rule {name!r}", "--rule", f"choose one of {', '.join([*RULES, 'eprop'])}")
    return RULES.get(name) or RuleInfo("eprop", "e-prop (recurrent)", "eligibility traces + broadcast error")


def surrogate_slope(rate: np.ndarray) -> np.ndarray:
    """f′ of the integrate-and-fire transfer r ≈ I/(1 + I/2), from the neuron's own rate."""
    return np.where(rate > 0, (1.0 - np.minimum(rate, 1.0) / 2.0) ** 2, 0.0)


def init_feedback(name: str, forward: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Feedback matrices per hidden layer l (inst, n_l, n_next): FA shape Wᵀ, DFA/DRTP (n_l, n_out)."""
    out = []
    n_out = forward[-1].shape[1]
    for k in range(len(forward) - 1):
        n_l = forward[k].shape[1]
        n_next = n_out if name in ("dfa", "drtp") else forward[k + 1].shape[1]
        std = 1.0 / np.sqrt(n_next)
        out.append(rng.normal(0.0, std, (forward[k].shape[0], n_l, n_next)))
    return out


def learning_signals(
    name: str, forward: list[np.ndarray], feedback: list[np.ndarray], p: Presentation
) -> list[np.ndarray]:
    """δ_l for every layer (hidden ones first, the output last), float, (inst, batch, n_l)."""
    n_hidden = len(forward) - 1
    deltas: list[np.ndarray] = [np.zeros(0)] * n_hidden + [p.error]
    if name == "frozen":
        return [np.zeros_like(p.rates[k + 1]) for k in range(n_hidden)] + [p.error]
    for k in reversed(range(n_hidden)):
        w_next = forward[k + 1][..., :-1]  # drop the bias column: (inst, n_next, n_l)
        if name == "bp":
            back = np.swapaxes(w_next, -1, -2)
            upstream = deltas[k + 1]
        elif name == "sign":
            scale = np.sqrt(np.mean(w_next**2, axis=(-1, -2), keepdims=True))
            back = scale * np.sign(np.swapaxes(w_next, -1, -2))
            upstream = deltas[k + 1]
        elif name == "dfa":
            back, upstream = feedback[k], p.error
        elif name == "drtp":
            back, upstream = feedback[k], -p.target
        else:  # fa, kp, wm, ia, pal, sal: through the (possibly learned) B
            back, upstream = feedback[k], deltas[k + 1]
        deltas[k] = (upstream @ np.swapaxes(back, -1, -2)) * p.fprime[k]
    return deltas


def feedback_requests(
    name: str,
    forward_updates: list[np.ndarray],
    feedback: list[np.ndarray],
    p: Presentation,
) -> list[np.ndarray | None]:
    """The correlation each learned B follows, summed over the batch (inst, n_l, n_next); None if fixed.

    KP: the transpose of the forward update (its −η is applied by the caller, so this is +ΔWᵀ / −η).
    PAL: Σ_t q ξ (r^HP)ᵀ. SAL: the antisymmetric STDP sum. Normalisation and decay are added by the caller.
    (WM and IA run on the compiled network: ``emulator.learning_mirror``.)
    """
    out: list[np.ndarray | None] = []
    for k in range(len(feedback)):
        if name == "kp":
            out.append(-np.swapaxes(forward_updates[k + 1][..., :-1], -1, -2))
        elif name == "pal" and p.noise_corr:
            out.append(p.noise_corr[k].sum(axis=1))
        elif name == "sal" and p.stdp_corr:
            out.append(p.stdp_corr[k].sum(axis=1))
        else:
            out.append(None)
    return out
