"""The float network every ``paper`` variant trains: the published equations, on the ``ideal`` profile.

A paper variant is the rule as its paper writes it, in float64, with no engine, no rounding and no
schedule of the chip. It is the column a chip result is compared against, so it shares the chip path's
tasks, epoch loop (``learning.epochs.train_epochs``), metrics and result record.

Notation (``../facts``-style, as in the papers): h_0 = x, a_l = g_l ⊙ (W_l h_{l−1} + b_l) + o_l,
h_l = φ(a_l). g_l and o_l are the per-neuron gain and offset of a mismatched population (1 and 0 without
mismatch): the forward pass of a sampled instance, which a rule with fixed feedback does not know about.
Every array carries the seeds (independent networks) on axis 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.tasks import Task

ACTIVATIONS = ("sigmoid", "relu", "tanh")


def phi(a: np.ndarray, kind: str) -> np.ndarray:
    if kind == "sigmoid":
        return 0.5 * (1.0 + np.tanh(0.5 * a))  # overflow-free logistic
    if kind == "tanh":
        return np.tanh(a)
    return np.maximum(a, 0.0)


def phi_prime(a: np.ndarray, h: np.ndarray, kind: str) -> np.ndarray:
    """φ'(a) from the pre-activation and the rate h = φ(a) (the derivative every rule gates its δ with)."""
    if kind == "sigmoid":
        return h * (1.0 - h)
    if kind == "tanh":
        return 1.0 - h * h
    return (a > 0).astype(a.dtype)


@dataclass
class PaperConfig:
    """Knobs every paper variant shares; rule-specific ones live with the rule (its ``Options``)."""

    rule: str
    task: str = "yinyang"
    seeds: int = 5
    seed: int = 0
    epochs: int = 40
    hidden: tuple[int, ...] = (30,)
    activation: str = "tanh"
    lr: float = 0.1  # step size per minibatch mean gradient
    optimizer: str = "sgd"  # "sgd" or "adam" (Kingma and Ba 2015, β 0.9 / 0.999), on the forward weights
    batch: int = 20
    decay: float = 0.0  # L2 on the forward weights per step: W ← W − lr·decay·W (Song, Xu and Lafferty)
    mismatch: float = 0.0  # σ of the per-neuron gain g ~ N(1, σ) and offset o ~ N(0, σ)
    init_gain: float = 1.0  # W ~ N(0, g²/fan_in)
    feedback_gain: float = 1.0  # fixed B ~ N(0, g²/fan_in of the matching forward weight)

    def checked(self) -> PaperConfig:
        if self.activation not in ACTIVATIONS:
            raise NeurodeployError(
                f"unknown activation {self.activation!r}", "activation", f"choose one of {', '.join(ACTIVATIONS)}"
            )
        if self.optimizer not in ("sgd", "adam"):
            raise NeurodeployError(f"unknown optimizer {self.optimizer!r}", "optimizer", "use 'sgd' or 'adam'")
        if self.lr <= 0 or self.batch < 1 or self.decay < 0 or self.mismatch < 0:
            raise NeurodeployError(
                "lr and batch must be positive, decay and mismatch >= 0", "learn()", "e.g. lr=0.1, batch=20"
            )
        if self.seeds < 1 or self.epochs < 1 or not self.hidden or min(self.hidden) < 1:
            raise NeurodeployError(
                f"seeds and epochs must be >= 1 and hidden sizes positive, got seeds={self.seeds}, "
                f"epochs={self.epochs}, hidden={list(self.hidden)}",
                "learn()",
                "e.g. seeds=5, epochs=30, hidden=[30, 30, 30]",
            )
        self.hidden = tuple(int(h) for h in self.hidden)
        return self


class FloatNet:
    """A layered float network of ``sizes``, one copy per seed, with its mismatch (gain, offset)."""

    def __init__(self, sizes: list[int], cfg: PaperConfig, rng: np.random.Generator,
                 weights: list[np.ndarray] | None = None, kind: str = "classification") -> None:  # fmt: skip
        s = cfg.seeds
        self.sizes, self.act, self.kind = sizes, cfg.activation, kind
        if weights is None:
            pairs = zip(sizes[:-1], sizes[1:], strict=True)
            self.w = [rng.normal(0.0, cfg.init_gain / np.sqrt(a), (s, b, a)) for a, b in pairs]
        else:
            self.w = [np.repeat(np.asarray(w, dtype=float)[None], s, axis=0) for w in weights]
        self.b = [np.zeros((s, n)) for n in sizes[1:]]
        sig = cfg.mismatch
        self.gain = [1.0 + sig * rng.standard_normal((s, n)) if sig else np.ones((s, n)) for n in sizes[1:-1]]
        self.offset = [sig * rng.standard_normal((s, n)) if sig else np.zeros((s, n)) for n in sizes[1:-1]]

    @property
    def depth(self) -> int:
        return len(self.w) - 1  # hidden layers

    def forward(self, x: np.ndarray, noise: list[np.ndarray] | None = None) -> tuple[list, list]:
        """Pre-activations a_l and rates h_l (h_0 = x) for inputs x of (batch, n_0) or (seeds, batch, n_0).
        ``noise``: one array per hidden layer added to its voltage (PAL's ξ)."""
        h = np.broadcast_to(x, (self.w[0].shape[0], *x.shape[-2:])) if x.ndim == 2 else x
        hs, acts = [h], []
        for k, (w, b) in enumerate(zip(self.w, self.b, strict=True)):
            a = hs[-1] @ np.swapaxes(w, -1, -2) + b[:, None, :]
            if k < self.depth:
                a = self.gain[k][:, None, :] * a + self.offset[k][:, None, :]
                if noise is not None:
                    a = a + noise[k]
                h = phi(a, self.act)
            else:
                h = a  # linear readout: softmax-CE or squared error act on it
            acts.append(a)
            hs.append(h)
        return acts, hs

    def output_error(self, a_out: np.ndarray, y: np.ndarray) -> np.ndarray:
        """e = ∂L/∂a_L: softmax − one-hot (cross-entropy), or a_L − y (squared error, regression)."""
        if self.kind == "classification":
            z = a_out - a_out.max(-1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(-1, keepdims=True)
            return p - np.eye(a_out.shape[-1])[y]
        return a_out - y

    def gate(self, k: int, acts: list, hs: list) -> np.ndarray:
        """∂h_k/∂(W h + b) of hidden layer k (0-based): φ'(a) times the neuron's gain."""
        return phi_prime(acts[k], hs[k + 1], self.act) * self.gain[k][:, None, :]

    def bp_deltas(self, acts: list, hs: list, e: np.ndarray) -> list[np.ndarray]:
        """Exact backprop δ per hidden layer (bottom first), through this instance's gains."""
        out, d = [], e
        for k in range(self.depth - 1, -1, -1):
            d = d @ self.w[k + 1] * self.gate(k, acts, hs)
            out.append(d)
        return out[::-1]

    def score(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Accuracy (classification) or MSE (regression) per seed."""
        _, hs = self.forward(x)
        if self.kind == "classification":
            return (hs[-1].argmax(-1) == y).mean(-1)
        return ((hs[-1] - y) ** 2).mean((-2, -1))


class PaperTrainer:
    """The minibatch SGD loop of the ANN rules: forward, output error, the rule's hidden δ, the forward
    update ΔW_l = −η (δ_l h_{l−1}ᵀ)/batch − η·decay·W_l, then the rule's feedback update.

    A rule overrides ``hidden_deltas`` (and ``update_feedback`` if its B learns); a rule with its own time
    dynamics (PAL, SAL) overrides ``step``. ``feedback`` holds each hidden layer's B (bottom first)."""

    def __init__(self, cfg: PaperConfig, task: Task, weights: list[np.ndarray] | None = None) -> None:
        self.cfg, self.task = cfg, task
        self.rng = np.random.default_rng([cfg.seed, 104729])
        sizes = [task.n_in, *cfg.hidden, task.n_out]
        if weights is not None:
            sizes = [weights[0].shape[1], *(w.shape[0] for w in weights)]
        self.net = FloatNet(sizes, cfg, np.random.default_rng([cfg.seed, 15485863]), weights, task.kind)
        self.feedback: list[np.ndarray] = []
        self._adam: dict[tuple[str, int], list] = {}

    def hidden_deltas(self, acts: list, hs: list, e: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def update_feedback(self, acts: list, hs: list, deltas: list[np.ndarray], e: np.ndarray, lr: float) -> None:
        """Fixed feedback by default."""

    def step(self, idx: np.ndarray, lr: float) -> None:
        x, y = self.task.x_train[idx], self.task.y_train[idx]
        acts, hs = self.net.forward(x)
        e = self.net.output_error(acts[-1], y)
        deltas = [*self.hidden_deltas(acts, hs, e, y), e]
        self.apply_forward(hs, deltas, lr)
        self.update_feedback(acts, hs, deltas, e, lr)

    def apply_forward(self, hs: list, deltas: list[np.ndarray], lr: float) -> None:
        n = hs[0].shape[-2]
        for k, d in enumerate(deltas):
            if d is None:
                continue  # frozen layer
            grad_w = np.swapaxes(d, -1, -2) @ hs[k] / n
            self.net.w[k] -= self._move(("w", k), grad_w + self.cfg.decay * self.net.w[k], lr)
            self.net.b[k] -= self._move(("b", k), d.mean(-2), lr)

    def _move(self, key: tuple[str, int], grad: np.ndarray, lr: float) -> np.ndarray:
        """The step for one parameter: lr·grad (SGD) or Adam's bias-corrected moment ratio."""
        if self.cfg.optimizer == "sgd":
            return lr * grad
        state = self._adam.setdefault(key, [0, np.zeros_like(grad), np.zeros_like(grad)])
        state[0] += 1
        state[1] = 0.9 * state[1] + 0.1 * grad
        state[2] = 0.999 * state[2] + 0.001 * grad * grad
        m_hat = state[1] / (1 - 0.9 ** state[0])
        v_hat = state[2] / (1 - 0.999 ** state[0])
        return lr * m_hat / (np.sqrt(v_hat) + 1e-8)

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        bad = [k + 1 for k, (w, b) in enumerate(zip(self.net.w, self.net.b, strict=True))
               if not (np.isfinite(w).all() and np.isfinite(b).all())]  # fmt: skip
        if bad:
            raise NeurodeployError(
                f"the {self.cfg.rule} run diverged: layer {bad[0]}'s weights are no longer finite",
                "learn(variant='paper')",
                f"lower the learning rate (lr={self.cfg.lr:g} now, e.g. lr={self.cfg.lr / 5:g})",
            )
        return self.net.score(x, y)

    def chain_partner(self, k: int) -> np.ndarray | None:
        """Wᵀ of the layer above hidden layer k, which a chain rule's B_k stands in for."""
        return np.swapaxes(self.net.w[k + 1], -1, -2)

    def alignment(self, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        x, y = probe
        acts, hs = self.net.forward(x)
        e = self.net.output_error(acts[-1], y)
        bp = self.net.bp_deltas(acts, hs, e)
        rule = self.hidden_deltas(acts, hs, e, y)
        out: dict[str, Any] = {"signal_angle": {}, "weight_angle": {}, "norm_ratio": {}}
        for k in range(self.net.depth):
            if rule[k] is not None:
                out["signal_angle"][f"h{k + 1}"] = metrics.angle(rule[k], bp[k]).tolist()
            if k < len(self.feedback):
                w_t = self.chain_partner(k)
                if w_t is not None and self.feedback[k].shape == w_t.shape:
                    out["weight_angle"][f"B{k + 1}"] = metrics.angle(self.feedback[k], w_t).tolist()
                    out["norm_ratio"][f"B{k + 1}"] = metrics.norm_ratio(self.feedback[k], w_t).tolist()
        return out


def chain_deltas(net: FloatNet, acts: list, hs: list, e: np.ndarray, feedback: list[np.ndarray]) -> list:
    """δ_l = (B_l δ_{l+1}) ⊙ φ'(a_l) down the chain, B_l of shape (n_l, n_{l+1}) (FA, KP, WM, PAL, SAL)."""
    out, d = [], e
    for k in range(net.depth - 1, -1, -1):
        d = d @ np.swapaxes(feedback[k], -1, -2) * net.gate(k, acts, hs)
        out.append(d)
    return out[::-1]


def random_feedback(net: FloatNet, rng: np.random.Generator, gain: float, direct: bool) -> list[np.ndarray]:
    """Fixed random B per hidden layer: (n_l, n_{l+1}) for a chain, (n_l, n_out) for a broadcast,
    N(0, g²/fan_in) with the fan-in of the forward weight it stands in for."""
    s, out = net.w[0].shape[0], []
    for k in range(net.depth):
        n_l = net.sizes[k + 1]
        n_up = net.sizes[-1] if direct else net.sizes[k + 2]
        fan = net.sizes[-2] if direct else n_l
        out.append(rng.normal(0.0, gain / np.sqrt(fan), (s, n_l, n_up)))
    return out
