"""FA and DFA beyond dense layers, as the literature extends them: a convolutional layer and a recurrent
layer, in float64 torch with every learning signal written out (no autograd).

Convolutional net (Nøkland 2016, Sec. 3, convolutional networks trained with DFA): the image x (side × side)
goes through a conv layer of C kernels K_c (k × k, valid, stride 1), φ, flatten, a dense layer W_1, φ and a
linear readout W_2. With a_1 = K ⋆ x + b_k, f = vec(φ(a_1)), a_2 = W_1 f + b_1, a_3 = W_2 φ(a_2) + b_2 and
e = softmax(a_3) − y*:

    BP    δ_2 = (W_2ᵀ e) ⊙ φ'(a_2),  δ_1 = unvec(W_1ᵀ δ_2) ⊙ φ'(a_1)
    FA    δ_2 = (B_2 e) ⊙ φ'(a_2),   δ_1 = unvec(B_1 δ_2) ⊙ φ'(a_1)      B_1 fixed, shape of W_1ᵀ
    DFA   δ_2 = (B_2 e) ⊙ φ'(a_2),   δ_1 = unvec(B_1 e) ⊙ φ'(a_1)        B_1 fixed, (C·P) × n_out

and ΔK_c = −η Σ_p δ_1[c, p] x_p (x_p the k × k patch at output position p), ΔW_1 = −η δ_2 fᵀ, ΔW_2 = −η e
φ(a_2)ᵀ (minibatch means).

Recurrent net (an Elman network reading the image row by row, T = side steps): a_t = W_in x_t + W_rec
h_{t−1} + b, h_t = φ(a_t), h_0 = 0, output W_out h_T + b_out, e at the last step only.

    BPTT  δ_T = (W_outᵀ e) ⊙ φ'(a_T),  δ_t = (W_recᵀ δ_{t+1}) ⊙ φ'(a_t)   (full, untruncated)
    FA    δ_T = (B_out e) ⊙ φ'(a_T),   δ_t = (B_rec δ_{t+1}) ⊙ φ'(a_t)   (random feedback through time)
    DFA   δ_t = (B_t e) ⊙ φ'(a_t) for every t                          (the error broadcast to every step)

and ΔW_in = −η Σ_t δ_t x_tᵀ, ΔW_rec = −η Σ_t δ_t h_{t−1}ᵀ, ΔW_out = −η e h_Tᵀ. DFA's B_t is drawn per step
(each step is a layer of the unrolled net, Nøkland's per-layer B) unless ``shared_feedback``.

The BP/BPTT signals are also the reference every run measures its signal angle ∠(δ_rule, δ_BP) against.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.tasks import Task

RULES = ("bp", "fa", "dfa")
EQUATIONS = {
    "conv": {
        "bp": "Rumelhart et al. 1986 / LeCun et al. 1989: δ_1 = unvec(W_1ᵀ δ_2) ⊙ φ'(a_1), ΔK = −η Σ_p δ_1,p x_p",
        "fa": "Lillicrap et al. 2016 (Nat. Commun. 7:13276, Methods) on a conv stack: δ_1 = unvec(B_1 δ_2) ⊙ "
        "φ'(a_1), B_1 fixed random of W_1ᵀ's shape",
        "dfa": "Nøkland 2016 (NeurIPS, arXiv 1609.01596) Sec. 2 and the convolutional experiments of Sec. 3: "
        "δ_l = unvec(B_l e) ⊙ φ'(a_l) for the conv and the dense layer",
    },
    "recurrent": {
        "bp": "Werbos 1990 (BPTT, untruncated): δ_t = (W_recᵀ δ_{t+1}) ⊙ φ'(a_t), δ_T = (W_outᵀ e) ⊙ φ'(a_T)",
        "fa": "Lillicrap et al. 2016 through time (random feedback, as in Murray 2019 eLife 8:e43299 and "
        "Bellec et al. 2020's random e-prop): δ_t = (B_rec δ_{t+1}) ⊙ φ'(a_t), δ_T = (B_out e) ⊙ φ'(a_T)",
        "dfa": "Nøkland 2016 Sec. 2 applied to the unrolled net: δ_t = (B_t e) ⊙ φ'(a_t) at every step",
    },
}


@dataclass
class StructConfig:
    """Knobs of the conv and recurrent runs (seeds are independent networks, batched on axis 0)."""

    rule: str
    task: str = "digits"
    seeds: int = 3
    seed: int = 0
    epochs: int = 10
    lr: float = 0.1  # SGD step per minibatch mean gradient
    batch: int = 20
    activation: str = "tanh"
    hidden: int = 64  # dense units (conv net) or recurrent units
    channels: int = 8  # conv kernels
    kernel: int = 3
    init_gain: float = 1.0  # W ~ N(0, g²/fan_in)
    feedback_gain: float = 1.0  # B ~ N(0, g²/fan_in of the forward weight it stands in for)
    shared_feedback: bool = False  # recurrent DFA: one B for every step instead of one per step

    def checked(self) -> StructConfig:
        if self.rule not in RULES:
            raise NeurodeployError(f"rule {self.rule!r} has no conv/recurrent variant", "rule", "use bp, fa or dfa")
        if self.activation not in ("tanh", "sigmoid", "relu"):
            raise NeurodeployError(f"unknown activation {self.activation!r}", "activation", "tanh, sigmoid or relu")
        if self.lr <= 0 or self.batch < 1 or self.hidden < 1 or self.channels < 1:
            raise NeurodeployError("lr, batch, hidden and channels must be positive", "learn_conv()", "e.g. lr=0.1")
        return self


def _phi(a: torch.Tensor, kind: str) -> torch.Tensor:
    return torch.tanh(a) if kind == "tanh" else torch.sigmoid(a) if kind == "sigmoid" else torch.relu(a)


def _phi_prime(a: torch.Tensor, h: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "tanh":
        return 1.0 - h * h
    if kind == "sigmoid":
        return h * (1.0 - h)
    return (a > 0).to(a.dtype)


def _side(task: Task) -> int:
    side = int(round(np.sqrt(task.n_in)))
    if side * side != task.n_in:
        raise NeurodeployError(f"{task.n_in} features are not a square image", "task", "use task='digits' (8x8)")
    return side


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


class _StructTrainer:
    """What ``train_epochs`` drives: ``rng``, ``step``, ``evaluate`` and ``alignment``, over ``params``."""

    def __init__(self, cfg: StructConfig, task: Task) -> None:
        self.cfg, self.task, self.side = cfg, task, _side(task)
        self.rng = np.random.default_rng([cfg.seed, 104729])  # the data order of the dense paper runs
        self._init = np.random.default_rng([cfg.seed, 15485863])
        self._fb = np.random.default_rng([cfg.seed, 32452843])
        self.params: list[torch.Tensor] = []
        self.feedback: dict[str, torch.Tensor] = {}

    def normal(self, rng: np.random.Generator, fan: int, gain: float, *shape: int) -> torch.Tensor:
        return torch.from_numpy(rng.normal(0.0, gain / np.sqrt(fan), (self.cfg.seeds, *shape)))

    @staticmethod
    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.asarray(x), dtype=torch.float64)

    def output_error(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """e = softmax(a_L) − one-hot: ∂ of the cross-entropy per sample."""
        return torch.softmax(logits, -1) - F.one_hot(y, logits.shape[-1]).to(logits.dtype)

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        raise NotImplementedError

    def deltas(self, state: dict[str, Any], e: torch.Tensor, rule: str) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def weight_grads(self, state: dict[str, Any], e: torch.Tensor, deltas: dict[str, torch.Tensor]) -> list:
        raise NotImplementedError

    def partners(self) -> dict[str, torch.Tensor]:
        """The Wᵀ each feedback matrix stands in for (by the name of the layer it feeds)."""
        raise NotImplementedError

    def gradients(self, x: np.ndarray, y: np.ndarray, rule: str | None = None) -> list[torch.Tensor]:
        """The update direction of every parameter (``params`` order) under ``rule`` (default: the run's)."""
        with torch.no_grad():
            state = self.forward(self.tensor(x))
            e = self.output_error(state["logits"], torch.as_tensor(np.asarray(y), dtype=torch.long))
            return self.weight_grads(state, e, self.deltas(state, e, rule or self.cfg.rule))

    def step(self, idx: np.ndarray, lr: float) -> None:
        grads = self.gradients(self.task.x_train[idx], self.task.y_train[idx])
        with torch.no_grad():
            for p, g in zip(self.params, grads, strict=True):
                p -= lr * g

    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits = self.forward(self.tensor(x))["logits"]
        return (_np(logits.argmax(-1)) == np.asarray(y)).mean(-1)

    def alignment(self, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        x, y = probe
        with torch.no_grad():
            state = self.forward(self.tensor(x))
            e = self.output_error(state["logits"], torch.as_tensor(np.asarray(y), dtype=torch.long))
            bp, rule = self.deltas(state, e, "bp"), self.deltas(state, e, self.cfg.rule)
        out: dict[str, Any] = {"signal_angle": {}, "weight_angle": {}, "norm_ratio": {}}
        for name in bp:
            out["signal_angle"][name] = metrics.angle(_np(rule[name]), _np(bp[name])).tolist()
        for name, w_t in self.partners().items():
            b = self.feedback.get(name)
            if b is not None and b.shape == w_t.shape:
                out["weight_angle"][name] = metrics.angle(_np(b), _np(w_t)).tolist()
                out["norm_ratio"][name] = metrics.norm_ratio(_np(b), _np(w_t)).tolist()
        return out


class ConvTrainer(_StructTrainer):
    """conv(1 → C, k × k) → φ → flatten → dense → φ → readout, trained by BP, FA or DFA."""

    def __init__(self, cfg: StructConfig, task: Task) -> None:
        super().__init__(cfg, task)
        c, k, h, o, g = cfg.channels, cfg.kernel, cfg.hidden, task.n_out, cfg.init_gain
        self.positions = (self.side - k + 1) ** 2
        flat = c * self.positions
        s = cfg.seeds
        self.params = [self.normal(self._init, k * k, g, c, k * k), torch.zeros(s, c, dtype=torch.float64),
                       self.normal(self._init, flat, g, h, flat), torch.zeros(s, h, dtype=torch.float64),
                       self.normal(self._init, h, g, o, h), torch.zeros(s, o, dtype=torch.float64)]  # fmt: skip
        fg = cfg.feedback_gain
        if cfg.rule != "bp":  # FA and DFA share B_2; B_1 is W_1ᵀ-shaped (FA) or (C·P) × n_out (DFA)
            dense = self.normal(self._fb, h, fg, h, o)
            conv = (flat, fg, flat, h) if cfg.rule == "fa" else (h, fg, flat, o)
            self.feedback = {"dense": dense, "conv": self.normal(self._fb, *conv)}

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        kern, bk, w1, b1, w2, b2 = self.params
        act, n = self.cfg.activation, x.shape[0]
        cols = F.unfold(x.reshape(n, 1, self.side, self.side), self.cfg.kernel)  # (batch, k·k, positions)
        a1 = torch.einsum("sck,bkp->sbcp", kern, cols) + bk[:, None, :, None]
        h1 = _phi(a1, act)
        flat = h1.reshape(*h1.shape[:2], -1)
        a2 = torch.einsum("sbi,shi->sbh", flat, w1) + b1[:, None]
        h2 = _phi(a2, act)
        logits = torch.einsum("sbh,soh->sbo", h2, w2) + b2[:, None]
        return {"cols": cols, "a1": a1, "h1": h1, "flat": flat, "a2": a2, "h2": h2, "logits": logits}

    def deltas(self, state: dict[str, Any], e: torch.Tensor, rule: str) -> dict[str, torch.Tensor]:
        _, _, w1, _, w2, _ = self.params
        act = self.cfg.activation
        gate1, gate2 = _phi_prime(state["a1"], state["h1"], act), _phi_prime(state["a2"], state["h2"], act)
        if rule == "bp":
            d2 = torch.einsum("sbo,soh->sbh", e, w2) * gate2
            up = torch.einsum("sbh,shi->sbi", d2, w1)
        else:
            d2 = torch.einsum("sbo,sho->sbh", e, self.feedback["dense"]) * gate2
            up = torch.einsum("sbj,sij->sbi", d2 if rule == "fa" else e, self.feedback["conv"])
        return {"conv": up.reshape(gate1.shape) * gate1, "dense": d2}

    def weight_grads(self, state: dict[str, Any], e: torch.Tensor, deltas: dict[str, torch.Tensor]) -> list:
        n = e.shape[-2]
        d1, d2 = deltas["conv"], deltas["dense"]
        return [torch.einsum("sbcp,bkp->sck", d1, state["cols"]) / n, d1.sum(-1).mean(-2),
                torch.einsum("sbh,sbi->shi", d2, state["flat"]) / n, d2.mean(-2),
                torch.einsum("sbo,sbh->soh", e, state["h2"]) / n, e.mean(-2)]  # fmt: skip

    def partners(self) -> dict[str, torch.Tensor]:
        return {"conv": self.params[2].transpose(-1, -2), "dense": self.params[4].transpose(-1, -2)}


class RecurrentTrainer(_StructTrainer):
    """An Elman RNN reading the image row by row (T = side steps), trained by BPTT, FA or DFA through time."""

    def __init__(self, cfg: StructConfig, task: Task) -> None:
        super().__init__(cfg, task)
        h, o, g, d, s = cfg.hidden, task.n_out, cfg.init_gain, self.side, cfg.seeds
        self.params = [self.normal(self._init, d, g, h, d), self.normal(self._init, h, g, h, h),
                       torch.zeros(s, h, dtype=torch.float64), self.normal(self._init, h, g, o, h),
                       torch.zeros(s, o, dtype=torch.float64)]  # fmt: skip
        fg = cfg.feedback_gain
        if cfg.rule == "fa":
            self.feedback = {"out": self.normal(self._fb, h, fg, h, o), "rec": self.normal(self._fb, h, fg, h, h)}
        elif cfg.rule == "dfa":
            steps = 1 if cfg.shared_feedback else d
            per_step = self.normal(self._fb, h, fg, steps, h, o).expand(s, d, h, o)
            self.feedback = {"steps": per_step, "out": per_step[:, -1]}

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        w_in, w_rec, b, w_out, b_out = self.params
        rows = x.reshape(x.shape[0], self.side, self.side)
        h = torch.zeros(w_in.shape[0], x.shape[0], w_in.shape[1], dtype=x.dtype)
        acts, hs = [], [h]
        for t in range(self.side):
            a = torch.einsum("shi,bi->sbh", w_in, rows[:, t]) + torch.einsum("shj,sbj->sbh", w_rec, h) + b[:, None]
            h = _phi(a, self.cfg.activation)
            acts.append(a)
            hs.append(h)
        logits = torch.einsum("sbh,soh->sbo", h, w_out) + b_out[:, None]
        return {"rows": rows, "acts": acts, "hs": hs, "logits": logits}

    def deltas(self, state: dict[str, Any], e: torch.Tensor, rule: str) -> dict[str, torch.Tensor]:
        _, w_rec, _, w_out, _ = self.params
        acts, hs, act = state["acts"], state["hs"], self.cfg.activation
        gates = [_phi_prime(a, h, act) for a, h in zip(acts, hs[1:], strict=True)]
        if rule == "dfa":
            steps = self.feedback["steps"]
            ds = [torch.einsum("sbo,sho->sbh", e, steps[:, t]) * gates[t] for t in range(self.side)]
        else:
            down, out = (w_rec, w_out.transpose(-1, -2)) if rule == "bp" else (
                self.feedback["rec"].transpose(-1, -2), self.feedback["out"])  # fmt: skip
            d = torch.einsum("sbo,sho->sbh", e, out) * gates[-1]
            ds = [d]
            for t in range(self.side - 2, -1, -1):
                d = torch.einsum("sbj,sji->sbi", d, down) * gates[t]
                ds.append(d)
            ds = ds[::-1]
        return {"last": ds[-1], "all": torch.stack(ds, 1)}

    def weight_grads(self, state: dict[str, Any], e: torch.Tensor, deltas: dict[str, torch.Tensor]) -> list:
        n, ds, hs = e.shape[-2], deltas["all"], state["hs"]
        prev = torch.stack(hs[:-1], 1)  # h_{t−1}: (seeds, T, batch, hidden)
        return [torch.einsum("stbh,bti->shi", ds, state["rows"]) / n,
                torch.einsum("stbh,stbj->shj", ds, prev) / n, ds.sum(1).mean(-2),
                torch.einsum("sbo,sbh->soh", e, hs[-1]) / n, e.mean(-2)]  # fmt: skip

    def partners(self) -> dict[str, torch.Tensor]:
        return {"out": self.params[3].transpose(-1, -2), "rec": self.params[1].transpose(-1, -2)}


def _learn(
    kind: str,
    cls: type[_StructTrainer],
    rule: str,
    task: str | Sequence[np.ndarray],
    seeds: int,
    progress: Callable[[int, int, dict[str, Any]], None] | None,
    overrides: dict[str, Any],
) -> Any:
    from neurodeploy.learning.epochs import LearnResult, final_summary, train_epochs
    from neurodeploy.learning.tasks import get_task
    from neurodeploy.studies.chip_learning import data_task

    data = get_task(task) if isinstance(task, str) else data_task(task)
    name = task if isinstance(task, str) else "data"
    known = set(StructConfig.__dataclass_fields__) - {"rule", "task", "seeds"}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise NeurodeployError(
            f"unknown option {unknown[0]!r} for a {kind} network",
            f"learn_{kind}()",
            f"options: {', '.join(sorted(known))}",
        )
    cfg = StructConfig(rule=rule, task=name, seeds=seeds, **overrides).checked()
    trainer = cls(cfg, data)
    t0 = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the tensors are tiny: thread hand-offs cost more than they parallelise
    try:
        history = train_epochs(trainer, data, cfg.epochs, cfg.lr, cfg.batch, len(data.x_train), 0.25, progress)
    finally:
        torch.set_num_threads(threads)
    config = {**asdict(cfg), "network": kind, "profile": "ideal", "variant": "paper"}
    provenance = {"all": {"where": "host float64 torch (the paper's equations, written out; no chip, no engine)",
                          "how": f"{rule} on a {kind} network", "host_ops_per_sample": None}}  # fmt: skip
    return LearnResult(config, history, final_summary(data, history), {"equations": EQUATIONS[kind][rule]},
                       provenance, time.perf_counter() - t0, "paper", [])  # fmt: skip


def learn_conv(
    rule: str,
    task: str | Sequence[np.ndarray] = "digits",
    *,
    seeds: int = 3,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> Any:
    """Train conv → dense → readout with ``rule`` in {bp, fa, dfa}; ``overrides`` are ``StructConfig``'s."""
    return _learn("conv", ConvTrainer, rule, task, seeds, progress, overrides)


def learn_recurrent(
    rule: str,
    task: str | Sequence[np.ndarray] = "digits",
    *,
    seeds: int = 3,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> Any:
    """Train an Elman RNN on the image's rows with ``rule`` in {bp (BPTT), fa, dfa} through time."""
    return _learn("recurrent", RecurrentTrainer, rule, task, seeds, progress, overrides)


__all__ = ["ConvTrainer", "RecurrentTrainer", "StructConfig", "learn_conv", "learn_recurrent"]
