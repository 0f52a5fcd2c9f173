"""The feedback-alignment family as published, on ``FloatNet`` (float64, seeds on axis 0).

Every rule keeps the forward update of ``PaperTrainer`` (ΔW_l = −η δ_l h_{l−1}ᵀ, mean over the minibatch)
and differs in where the hidden δ_l comes from and whether the feedback B learns:

    BP      δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ φ'(a_l)                           Rumelhart et al. 1986
    FA      δ_l = (B_l δ_{l+1}) ⊙ φ'(a_l), B_l fixed random              Lillicrap et al. 2016
    DFA     δ_l = (B_l e) ⊙ φ'(a_l), B_l ∈ R^(n_l × n_out) fixed          Nøkland 2016
    DRTP    δ_l = (B_l y*) ⊙ φ'(a_l), the target in place of e           Frenkel et al. 2021
    sign    as FA with B_l = s·sign(W_{l+1})ᵀ after every update          Liao et al. 2016, Xiao et al. 2018
    KP      as FA; ΔB_l = −η h_l δ_{l+1}ᵀ − ηλ B_l, W decays by ηλ too    Akrout et al. 2019
    WM      as FA; mirror step ΔB_l = η_B x_l y_{l+1}ᵀ − λ_B B_l          Akrout et al. 2019
    IA      as FA; ΔB_l = η(α x yᵀ − 2β (B y) yᵀ − 2γ B)                  Kunin et al. 2020

B_l (bottom first) stands in for W_{l+1}ᵀ in the chain rules, so ``alignment`` reports ∠(B_l, W_{l+1}ᵀ);
a broadcast rule's B only has that partner at the top hidden layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.learning.tasks import Task
from neurodeploy.rules.paper.base import PaperConfig, PaperTrainer, chain_deltas, random_feedback


def _feedback_rng(cfg: PaperConfig) -> np.random.Generator:
    """The stream every random B is drawn from: rules with the same seed start from the same B."""
    return np.random.default_rng([cfg.seed, 32452843])


def _transpose(w: np.ndarray) -> np.ndarray:
    return np.swapaxes(w, -1, -2)


def _weight_grads(hs: list, deltas: list) -> list[np.ndarray | None]:
    """δ_l h_{l−1}ᵀ averaged over the minibatch, per layer (None where a layer is frozen)."""
    n = hs[0].shape[-2]
    return [None if d is None else np.swapaxes(d, -1, -2) @ hs[k] / n for k, d in enumerate(deltas)]


class FrozenTrainer(PaperTrainer):
    """Frozen hidden layers (paper): only the readout learns on the fixed random features."""

    EQUATIONS = (
        "Readout only: ΔW_L = −η e h_{L−1}ᵀ with e = ∂L/∂a_L (softmax − one-hot, or a_L − y); hidden W_l keep "
        "their random init (the frozen-hidden baseline of the Yin-Yang reference, Kriener et al. 2022)"
    )

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        return [None] * self.net.depth


class BPTrainer(PaperTrainer):
    """Backprop (paper): δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ φ'(a_l), the exact gradient; B = Wᵀ is weight transport."""

    EQUATIONS = (
        "Rumelhart, Hinton and Williams 1986, Nature 323:533 (the generalised delta rule): "
        "δ_L = e, δ_l = (W_{l+1}ᵀ δ_{l+1}) ⊙ φ'(a_l), ΔW_l = −η δ_l h_{l−1}ᵀ"
    )

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None = None) -> None:
        super().__init__(cfg, task, weights)
        self._copy()

    def _copy(self) -> None:
        # only for reporting: the angle to Wᵀ is 0 by construction
        self.feedback = [_transpose(w).copy() for w in self.net.w[1:]]

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        return self.net.bp_deltas(acts, hs, e)

    def update_feedback(self, acts: list, hs: list, deltas: list[np.ndarray], e: np.ndarray, lr: float) -> None:
        self._copy()


class FATrainer(PaperTrainer):
    """Feedback alignment (paper): fixed random B_l carries δ down the chain in place of W_{l+1}ᵀ."""

    EQUATIONS = (
        "Lillicrap, Cownden, Tweed and Akerman 2016, Nat. Commun. 7:13276, Fig. 1 and Methods: "
        "δ_l = (B_l δ_{l+1}) ⊙ φ'(a_l) with B_l fixed random (shape of W_{l+1}ᵀ), ΔW_l = −η δ_l h_{l−1}ᵀ; "
        "optional forward L2 decay (Song, Xu and Lafferty 2021)"
    )

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None = None) -> None:
        super().__init__(cfg, task, weights)
        self.feedback = random_feedback(self.net, _feedback_rng(cfg), cfg.feedback_gain, direct=False)

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        return chain_deltas(self.net, acts, hs, e, self.feedback)


class _BroadcastTrainer(PaperTrainer):
    """A fixed B_l (n_l × n_out) per hidden layer that projects one output-sized signal to every layer."""

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None = None) -> None:
        super().__init__(cfg, task, weights)
        self.feedback = random_feedback(self.net, _feedback_rng(cfg), cfg.feedback_gain, direct=True)

    def broadcast(self, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        signal = self.broadcast(e, y)
        return [signal @ np.swapaxes(b, -1, -2) * self.net.gate(k, acts, hs) for k, b in enumerate(self.feedback)]

    def chain_partner(self, k: int) -> np.ndarray | None:
        """Only the top hidden layer's B has a forward partner (the readout's Wᵀ)."""
        return super().chain_partner(k) if k == self.net.depth - 1 else None


class DFATrainer(_BroadcastTrainer):
    """Direct feedback alignment (paper): the output error e reaches every hidden layer through fixed B_l."""

    EQUATIONS = (
        "Nøkland 2016, NeurIPS (arXiv 1609.01596), Sec. 2, Eq. for DFA: δ_l = (B_l e) ⊙ φ'(a_l), B_l fixed "
        "random of n_l × n_out, ΔW_l = −η δ_l h_{l−1}ᵀ; optional forward L2 decay"
    )

    def broadcast(self, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        return e


class DRTPTrainer(_BroadcastTrainer):
    """Direct random target projection (paper): the target y* replaces e, through fixed B_l."""

    EQUATIONS = (
        "Frenkel, Lefebvre and Bol 2021, Front. Neurosci. 15:629892, Sec. 2 (DRTP): δ_l = (B_l y*) ⊙ φ'(a_l) "
        "with y* the one-hot target (the target vector in regression), B_l fixed random; the readout learns "
        "from e = ∂L/∂a_L"
    )

    def broadcast(self, e: np.ndarray, y: np.ndarray) -> np.ndarray:
        target = np.eye(e.shape[-1])[y] if self.net.kind == "classification" else np.asarray(y, dtype=float)
        return np.broadcast_to(target, e.shape)


@dataclass
class SignOptions:
    """Sign symmetry's knob: batch-manhattan updates (Liao et al.'s BM)."""

    batch_manhattan: bool = False  # ΔW = −η sign(minibatch gradient) instead of −η gradient


class SignTrainer(PaperTrainer):
    """Sign symmetry, uSF (paper): B_l = s·sign(W_{l+1})ᵀ recomputed from the forward weights every step."""

    Options = SignOptions
    EQUATIONS = (
        "Liao, Leibo and Poggio 2016, AAAI, Sec. 3 (sign-concordant feedback, batch manhattan) and Xiao, Chen, "
        "Liao and Poggio 2018, arXiv 1811.03567, Sec. 2 (uSF): δ_l = (B_l δ_{l+1}) ⊙ φ'(a_l) with "
        "B_l = s_l·sign(W_{l+1})ᵀ, s_l the init std of W_{l+1}; BM option: ΔW = −η sign(Σ_batch ∂L/∂W)"
    )

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None = None,
                 opts: SignOptions | None = None) -> None:  # fmt: skip
        super().__init__(cfg, task, weights)
        self.opts = opts or SignOptions()
        self._refresh()

    def _refresh(self) -> None:
        sizes, g = self.net.sizes, self.cfg.init_gain
        self.feedback = [g / np.sqrt(sizes[k + 1]) * np.sign(_transpose(w)) for k, w in enumerate(self.net.w[1:])]

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        self._refresh()  # B follows W's signs at every use
        return chain_deltas(self.net, acts, hs, e, self.feedback)

    def apply_forward(self, hs: list, deltas: list[np.ndarray], lr: float) -> None:
        if not self.opts.batch_manhattan:
            super().apply_forward(hs, deltas, lr)
            return
        for k, (g, d) in enumerate(zip(_weight_grads(hs, deltas), deltas, strict=True)):  # replaces the optimizer
            self.net.w[k] -= lr * (np.sign(g) + self.cfg.decay * self.net.w[k])
            self.net.b[k] -= lr * np.sign(d.sum(-2))

    def update_feedback(self, acts: list, hs: list, deltas: list[np.ndarray], e: np.ndarray, lr: float) -> None:
        self._refresh()


@dataclass
class KPOptions:
    """Kolen-Pollack's decay λ, applied per step as −η·λ to W and B alike (decoupled from Adam's scaling)."""

    # Yin-Yang 4-30-30-30-3 tanh, SGD lr 0.1: ∠(B, Wᵀ) ≈ 30°/27°/8° after 20 epochs, 11°/10°/3° after 40
    kp_decay: float = 3e-3


class KPTrainer(PaperTrainer):
    """Kolen-Pollack (paper): B learns the transpose of W's update; W and B decay alike, so B → Wᵀ."""

    Options = KPOptions
    EQUATIONS = (
        "Akrout, Wilson, Humphreys, Lillicrap and Tweed 2019, NeurIPS (arXiv 1904.05391), Sec. 4, KP "
        "equations: δ_l = (B_l δ_{l+1}) ⊙ φ'(a_l); ΔW_{l+1} = −η δ_{l+1} h_lᵀ − ηλ W_{l+1}, "
        "ΔB_l = −η h_l δ_{l+1}ᵀ − ηλ B_l, so W_{l+1} − B_lᵀ shrinks by (1 − ηλ) per step"
    )

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None = None,
                 opts: KPOptions | None = None) -> None:  # fmt: skip
        super().__init__(cfg, task, weights)
        self.opts = opts or KPOptions()
        self.feedback = random_feedback(self.net, _feedback_rng(cfg), cfg.feedback_gain, direct=False)
        self._grads: list[np.ndarray | None] = []

    @property
    def decay(self) -> float:
        """λ of W and B: the rule's own plus the shared forward decay (one λ keeps W − Bᵀ contracting)."""
        return self.opts.kp_decay + self.cfg.decay

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        return chain_deltas(self.net, acts, hs, e, self.feedback)

    def apply_forward(self, hs: list, deltas: list[np.ndarray], lr: float) -> None:
        self._grads = _weight_grads(hs, deltas)
        for k, (g, d) in enumerate(zip(self._grads, deltas, strict=True)):
            self.net.w[k] -= self._move(("w", k), g, lr) + lr * self.decay * self.net.w[k]
            self.net.b[k] -= self._move(("b", k), d.mean(-2), lr)

    def update_feedback(self, acts: list, hs: list, deltas: list[np.ndarray], e: np.ndarray, lr: float) -> None:
        # the optimizer sees the transposed gradient, so B's move is W's move transposed (SGD and Adam alike);
        # the decay is decoupled from the optimizer, so W − Bᵀ contracts by (1 − ηλ) under either
        for k, b in enumerate(self.feedback):
            b -= self._move(("B", k), _transpose(self._grads[k + 1]), lr) + lr * self.decay * b


@dataclass
class WMOptions:
    """Weight mirror's mirror phase: noise σ into layer l, rate η_B, decay λ_B, samples per step.
    E[ΔB] = η_B σ² Wᵀ − λ_B B settles at B = (η_B σ²/λ_B) Wᵀ, i.e. Wᵀ with these defaults, in ~1/λ_B steps."""

    mirror_lr: float = 0.5
    mirror_noise: float = 0.1
    mirror_decay: float = 0.005
    mirror_batch: int = 20


class _MirrorTrainer(PaperTrainer):
    """A chain rule whose B learns in a mirror step after every minibatch: x_l ~ N(0, σ²), y_{l+1} = W_{l+1} x_l."""

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None,
                 opts: WMOptions | IAOptions) -> None:  # fmt: skip
        super().__init__(cfg, task, weights)
        self.opts = opts
        self.feedback = random_feedback(self.net, _feedback_rng(cfg), cfg.feedback_gain, direct=False)
        self.mirror_rng = np.random.default_rng([cfg.seed, 86028121])  # the data order stays the other rules'

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        return chain_deltas(self.net, acts, hs, e, self.feedback)

    def mirror_delta(self, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def update_feedback(self, acts: list, hs: list, deltas: list[np.ndarray], e: np.ndarray, lr: float) -> None:
        o, s = self.opts, self.net.w[0].shape[0]
        for k, b in enumerate(self.feedback):
            x = o.mirror_noise * self.mirror_rng.standard_normal((s, o.mirror_batch, b.shape[1]))
            y = x @ np.swapaxes(self.net.w[k + 1], -1, -2)
            b += self.mirror_delta(b, x, y)


class WMTrainer(_MirrorTrainer):
    """Weight mirror (paper): a noise-driven mirror step after every minibatch teaches B the forward Wᵀ."""

    Options = WMOptions
    EQUATIONS = (
        "Akrout, Wilson, Humphreys, Lillicrap and Tweed 2019, NeurIPS (arXiv 1904.05391), Sec. 5 (weight "
        "mirrors): forward as FA, δ_l = (B_l δ_{l+1}) ⊙ φ'(a_l); mirror mode x_l ~ N(0, σ²), y_{l+1} = W_{l+1} "
        "x_l, ΔB_l = η_B x_l y_{l+1}ᵀ − λ_B B_l (E[ΔB] = η_B σ² W_{l+1}ᵀ − λ_B B_l)"
    )

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None = None,
                 opts: WMOptions | None = None) -> None:  # fmt: skip
        super().__init__(cfg, task, weights, opts or WMOptions())

    def mirror_delta(self, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        o = self.opts
        return o.mirror_lr * np.swapaxes(x, -1, -2) @ y / x.shape[-2] - o.mirror_decay * b


@dataclass
class IAOptions:
    """Information alignment's mirror step: ΔB = η(α E[x yᵀ] − 2β E[(B y) yᵀ] − 2γ B). Its fixed point is
    B = α σ² Wᵀ (2β σ² W Wᵀ + 2γ I)⁻¹: Wᵀ scaled where γ dominates, a damped pseudo-inverse where β does."""

    mirror_lr: float = 0.5
    mirror_noise: float = 0.1
    mirror_batch: int = 20
    ia_alpha: float = 1.0  # amplification (WM's Hebbian term)
    ia_beta: float = 0.1  # self-prediction: B learns to reconstruct x from y
    ia_gamma: float = 0.005  # decay


class IATrainer(_MirrorTrainer):
    """Information alignment (paper): a mirror step with amplification, self-prediction and decay terms on B."""

    Options = IAOptions
    EQUATIONS = (
        "Kunin, Nayebi, Sagastuy-Brena, Ganguli, Bloom and Yamins 2020, ICML, Sec. 4-5 (layer-wise "
        "regularisers; Information Alignment = amplification + decay + self-prediction): forward as FA; "
        "mirror x_l ~ N(0, σ²), y = W_{l+1} x_l, ΔB_l = η(α E[x yᵀ] − 2β E[(B_l y) yᵀ] − 2γ B_l)"
    )

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None = None,
                 opts: IAOptions | None = None) -> None:  # fmt: skip
        super().__init__(cfg, task, weights, opts or IAOptions())

    def mirror_delta(self, b: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        o, n = self.opts, x.shape[-2]
        amplify = np.swapaxes(x, -1, -2) @ y / n
        predict = np.swapaxes(y @ np.swapaxes(b, -1, -2), -1, -2) @ y / n
        return o.mirror_lr * (o.ia_alpha * amplify - 2.0 * o.ia_beta * predict - 2.0 * o.ia_gamma * b)


__all__ = ["BPTrainer", "DFATrainer", "DRTPTrainer", "FATrainer", "FrozenTrainer", "IATrainer", "KPTrainer",
           "SignTrainer", "WMTrainer"]  # fmt: skip
