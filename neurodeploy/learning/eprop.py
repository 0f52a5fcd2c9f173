"""e-prop (Bellec et al., Nat. Commun. 2020) on a recurrent spiking network, on chip or in float.

Network: rate-coded inputs plus an always-on bias neuron → one recurrent layer of LIF neurons (W_in and
W_rec, no self-connections) → a leaky, non-spiking readout (W_out, with the bias neuron). Seeds are
independent instances on a leading axis; samples of a minibatch are data-parallel copies of one
instance's weights. The network is a ``CoreNetwork`` (``EpropNet.core``) run by ``simulate``, the
emulator's one run loop: Loihi neurons on integer weights (threshold ``scale``) when the profile's
``[plasticity].engine`` is "loihi", float neurons (threshold 1) on "ideal". Both use du = 4095 (a
synaptic input lasts one step, one step of Dense latency), a membrane decay dv giving α = 1 − dv/4096
(hidden) and κ (readout), reset to zero.

Equations (threshold units, v_th = 1; Dense latency: the input of step t is the presynaptic spikes of t−1):

- v_j^t = α v_j^{t−1} + Σ_i W_ji p_i^{t−1}, p = [x, 1, z] (spike if v > v_th, then reset to 0);
- ψ_j^t = γ·max(0, 1 − |v_j^t − v_th| / v_th), taken on the membrane before the reset;
- z̄_i^t = α z̄_i^{t−1} + p_i^{t−1} (the eligibility vector of an LIF neuron, reset ignored as in the paper);
- e_ji^t = ψ_j^t z̄_i^t; the readout y^t = κ y^{t−1} + (1 − κ) W_out [z^{t−1}, 1].

Choice of learning signal: the loss is taken once per sample, on the readout at the end of the
presentation (softmax cross-entropy for classification, MSE for regression), so the error
e_k = softmax(y)_k − y*_k (or y_k − y*_k) and the learning signal L_j = Σ_k B_jk e_k are per sample.
With a loss at the last step, e-prop's Σ_t L_j^t ē_ji^t reduces to L_j·ē_ji^T with ē the κ-filtered
eligibility trace, ē_ji^T = (1 − κ) Σ_t κ^{T−1−t} e_ji^t (t counting the step whose spike reaches the
readout): ΔW_ji = −η L_j ē_ji^T, and ΔW_out,kj = −η e_k ẑ_j with ẑ the readout's own κ-filtered
presynaptic trace (exact for the readout). Feedback ``"symmetric"``: B = W_outᵀ (the paper's e-prop;
non-local on chip), ``"random"``: a fixed random B (random e-prop, local).

Fixed point: per synapse, the eligibility ē^T is held as the engine's tag (9 bit, stochastically rounded
at gain g_e, a power of two chosen from the first minibatch), the learning signal |L_j| arrives as the
post neuron's graded third-factor trace (7 bit, stochastically rounded at gain G), and the update is the
engine's ``m*2^e*u*t*y3 - m*2^e*u*t*y2`` with per-synapse stochastic rounding of the accumulator
(``EligibilityWriter``); the rounded updates of a minibatch's samples add, then weights clamp to 8 bit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from neurodeploy.datasets import encode_rate
from neurodeploy.emulator.plasticity import clip_variable
from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.epochs import LearnResult, check_profile, final_summary, train_epochs
from neurodeploy.learning.tasks import Task, get_task

DIFFERENCES = (
    "the loss is taken once per sample, on the readout at the end of the presentation, so the learning "
    "signal L_j is one number per sample, not one per step",
    "inputs are rate-coded spikes with an always-on bias neuron",
    "a synaptic input lasts one step (du = 4095) and arrives one step late (Dense latency)",
)
FIXED_DIFFERENCES = (
    "the eligibility ē^T is the engine's 9-bit tag, stochastically rounded at a power-of-two gain",
    "|L_j| arrives as the post neuron's 7-bit graded third factor; updates round stochastically per synapse "
    "and weights clamp to 8 bits",
)

TRACE_MAX = 127
TAG_MAX = 255  # the tag is 9 bit signed; the eligibility is >= 0, so only its positive half is used


@dataclass
class EpropConfig:
    """Every knob of an e-prop run; defaults train Yin-Yang (4-64r-3) for 5 seeds in well under a minute."""

    profile: str = "loihi2"
    task: str = "yinyang"
    mismatch: float = 0.0
    seeds: int = 5
    seed: int = 0
    epochs: int = 20
    hidden: int = 64
    lr: float = 0.0  # per sample, float units (0: 0.03 classification, 0.01 regression, where MSE errors are
    # unbounded and 0.03 diverges); halved at 50 % and x0.2 at 75 % of the epochs
    batch: int = 64
    steps: int = 32  # one presentation = one learning epoch of the engine (<= 63)
    active: int = 26  # steps the input (and the hidden layer's bias neuron) is on
    scale: int = 64
    du: int = 4095  # for the profile check only: the synaptic input lasts one step
    tau_m: float = 10.0  # hidden membrane time constant (steps): α = 1 − dv/4096
    tau_out: float = 8.0  # readout time constant (steps): κ
    gamma: float = 0.3  # pseudo-derivative height
    feedback: str = "random"  # "random" (fixed random B) or "symmetric" (B = W_outᵀ)
    init_in: float = 1.0  # W_in std x sqrt(n_in + 1)
    init_rec: float = 0.5  # W_rec std x sqrt(n_hidden)
    init_out: float = 1.0  # W_out std x sqrt(n_hidden + 1)
    feedback_gain: float = 1.0  # random B std, relative to W_out's initial std
    rate_target: float = 0.2  # firing-rate regulariser: L_j += reg·(r_j − rate_target), r in spikes/step
    reg: float = 0.0  # off by default: on Yin-Yang it cost random feedback accuracy (79 % vs 87 % at epoch 10)
    train_samples: int = 0  # > 0: train on the first N training samples only (quick tests)


class EligibilityWriter:
    """ΔW = −η·L_j·ē_ji per sample as the engine writes it: tag t = SR(g_e·ē) (9 bit), third factor
    y = SR(G·|L|) (7 bit), ``m*2^e*u*t*y3 - m*2^e*u*t*y2``, per-synapse stochastic rounding; returns the
    integer update summed over the batch. ``lr`` is η per sample in float units."""

    def __init__(self, lr: float, scale: int, delta_max: float = 4.0) -> None:
        from neurodeploy.emulator.learning_rule import parse_rule

        self._parse = parse_rule
        self.lr, self.scale = lr, scale
        top = max(1, int(TRACE_MAX / delta_max))
        self.gain = 2 ** int(math.log2(top))  # G
        self.tag_gain: float | None = None  # g_e, fixed at the first update
        self.saturated = 0
        self.tag_saturated = 0

    def _choose(self, elig: np.ndarray) -> None:
        peak = float(np.percentile(elig, 99.9)) or 1.0
        self.tag_gain = 2.0 ** math.floor(math.log2(TAG_MAX / peak))
        # dw_int = (t·y·m >> 5)·2^e ≈ g_e·ē·G·|L|·m·2^e / 32 must equal scale·η·ē·|L|
        target = 32.0 * self.scale * self.lr / (self.tag_gain * self.gain)
        while target < 4 * 2.0**-7 and self.tag_gain > 1:  # keep m·2^e inside the grid at small rates
            self.tag_gain /= 2
            target *= 2
        best = min(
            ((m, e) for m in range(1, 8) for e in range(-7, 9)),
            key=lambda me: (round(abs(math.log(me[0] * 2.0 ** me[1] / target)), 2), -me[0]),
        )
        self.mantissa, self.exponent = best
        self.realised_lr = self.lr * best[0] * 2.0 ** best[1] / target
        term = f"{best[0]}*2^{best[1]}*u0*t"
        self.rule = f"{term}*y3 - {term}*y2"
        self.series = self._parse(self.rule, "dw")

    def update(self, elig: np.ndarray, signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """elig (inst, b, n_post, n_pre) >= 0, signal L (inst, b, n_post) -> integer ΔW (inst, n_post, n_pre)."""
        from neurodeploy.emulator.plasticity import round_accumulator

        if self.tag_gain is None:
            self._choose(elig)
        tag = self.tag_gain * elig
        self.tag_saturated += int(np.count_nonzero(tag > TAG_MAX))
        tag = np.minimum(np.floor(tag + rng.random(tag.shape, dtype=np.float32)), TAG_MAX).astype(np.int64)
        y = self.gain * np.abs(signal)
        self.saturated += int(np.count_nonzero(y > TRACE_MAX))
        y = np.floor(np.minimum(y, TRACE_MAX) + rng.random(y.shape)).astype(np.int64)
        pos = np.where(signal > 0, y, 0)[..., None]
        neg = np.where(signal < 0, y, 0)[..., None]
        one = np.int64(1)
        acc = self.series.accumulate({"u": one, "u0": one, "t": tag, "y2": pos, "y3": neg})
        dw = round_accumulator(acc, rng.random(acc.shape, dtype=np.float32))
        return dw.sum(axis=1)

    def info(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "rule": self.rule,
            "tag_gain": self.tag_gain,
            "third_factor_gain": self.gain,
            "realised_lr": self.realised_lr,
        }


@dataclass
class Pass:
    """What one presentation leaves: readout, κ-filtered eligibilities and traces, spike counts."""

    readout: np.ndarray  # (inst, b, n_out), threshold units
    elig: np.ndarray | None  # ē of the hidden synapses, (inst, b, n_h, n_in + 1 + n_h); None unless asked
    psi_k: np.ndarray | None  # (inst, T, b, n_h): (1 − κ) κ^(T−2−t) ψ^t, zero where the spike cannot reach y
    zbar: np.ndarray | None  # (inst, T, b, n_in + 1 + n_h): the presynaptic traces z̄^t
    zhat: np.ndarray | None  # (inst, b, n_h + 1): the readout's κ-filtered presynaptic trace, x (1 − κ)
    rate: np.ndarray  # (inst, b, n_h): hidden spikes per active step


class EpropNet:
    """Weights and the recurrent forward pass for ``instances`` chips (fixed or float numerics)."""

    def __init__(self, cfg: EpropConfig, task: Task, fixed: bool, rng: np.random.Generator) -> None:
        self.cfg, self.fixed = cfg, fixed
        s, n_in, n_h, n_out = cfg.seeds, task.n_in, cfg.hidden, task.n_out
        self.n_in, self.n_h, self.n_out = n_in, n_h, n_out
        w_in = rng.normal(0.0, cfg.init_in / np.sqrt(n_in + 1), (s, n_h, n_in + 1))
        w_rec = rng.normal(0.0, cfg.init_rec / np.sqrt(n_h), (s, n_h, n_h))
        w_rec[:, np.arange(n_h), np.arange(n_h)] = 0.0
        self.out_std = cfg.init_out / np.sqrt(n_h + 1)
        w_out = rng.normal(0.0, self.out_std, (s, n_out, n_h + 1))
        self.w_h = self.to_storage(np.concatenate([w_in, w_rec], axis=-1), rng)
        self.w_out = self.to_storage(w_out, rng)
        self.no_self = np.ones((n_h, n_in + 1 + n_h))  # no autapses
        self.no_self[np.arange(n_h), n_in + 1 + np.arange(n_h)] = 0.0
        self.dv = int(round(4096 * (1.0 - math.exp(-1.0 / cfg.tau_m))))
        self.dv_out = int(round(4096 * (1.0 - math.exp(-1.0 / cfg.tau_out))))
        self.alpha = 1.0 - self.dv / 4096.0
        self.kappa = 1.0 - self.dv_out / 4096.0
        self.vth_factor = np.ones((s, 1, n_h))
        self.offset = np.zeros((s, 1, n_h))

    def to_storage(self, w: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        if not self.fixed:
            return np.asarray(w, dtype=float)
        scaled = np.asarray(w) * self.cfg.scale
        if rng is not None:
            scaled = np.floor(scaled + rng.random(scaled.shape))
        return np.clip(np.rint(scaled), -256, 255).astype(np.int64)

    def as_float(self, w: np.ndarray) -> np.ndarray:
        return np.asarray(w, dtype=float) / (self.cfg.scale if self.fixed else 1.0)

    def set_mismatch(self, sigma: float, rng: np.random.Generator) -> None:
        """As the chip path's mismatch (``compiler.learning.build``): threshold gain 1 + σ·N(0,1), clipped at
        ±3σ and floored at 0.2, and an offset current σ/10 per step."""
        shape = self.vth_factor.shape
        self.vth_factor = np.maximum(1.0 + sigma * np.clip(rng.standard_normal(shape), -3, 3), 0.2)
        self.offset = 0.1 * sigma * np.clip(rng.standard_normal(shape), -3, 3)

    def core(self) -> Any:
        """The recurrent network as the emulator runs it: input and bias neuron (on for the active steps),
        an always-on neuron for the readout's bias, the hidden LIF layer with its recurrent synapses and the
        non-spiking leaky readout, all with one step of Dense latency."""
        from neurodeploy.emulator.loihi import VTH_RANGE
        from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection

        cfg, n_in, n_h, n_out = self.cfg, self.n_in, self.n_h, self.n_out
        if self.fixed:
            unit = cfg.scale * 64.0
            bias = np.clip(np.rint(self.offset * unit), -4096, 4095).astype(np.int64)
            vth = np.rint(cfg.scale * self.vth_factor).astype(np.int64)
            hidden = {"du": 4095, "dv": self.dv, "vth": vth, "bias_mant": bias, "bias_exp": 0}
            readout = {"du": 4095, "dv": self.dv_out, "vth": VTH_RANGE[1], "bias_mant": 0, "bias_exp": 0}
            model = "loihi"
        else:
            zero = np.zeros(n_h)
            hidden = {"du": 1.0, "dv": self.dv / 4096.0, "v_th": self.vth_factor, "v_reset": zero,
                      "bias_u": zero, "bias_v": self.offset}  # fmt: skip
            readout = {"du": 1.0, "dv": self.dv_out / 4096.0, "v_th": np.ones(n_out), "v_reset": np.zeros(n_out),
                       "bias_u": np.zeros(n_out), "bias_v": np.zeros(n_out)}  # fmt: skip
            model = "float"
        pops = [CorePopulation("input", n_in, "input"), CorePopulation("bias", 1, "input"),
                CorePopulation("always", 1, "input"), CorePopulation("hidden", n_h, model, hidden, lag=1),
                CorePopulation("readout", n_out, model, readout, spiking=False, lag=2)]  # fmt: skip
        bits = 9 if self.fixed else 8
        w_h, w_o = self.w_h, self.w_out

        def proj(src: str, dst: str, w: np.ndarray) -> CoreProjection:
            return CoreProjection(f"{src}->{dst}", src, dst, np.ascontiguousarray(w), num_weight_bits=bits)

        projs = [proj("input", "hidden", w_h[..., :n_in]), proj("bias", "hidden", w_h[..., n_in : n_in + 1]),
                 proj("hidden", "hidden", w_h[..., n_in + 1 :]), proj("hidden", "readout", w_o[..., :n_h]),
                 proj("always", "readout", w_o[..., n_h:])]  # fmt: skip
        return CoreNetwork(pops, projs, ["input", "bias", "always"], ["readout"], numerics=model)

    def _pre_reset(self, v: np.ndarray, u: np.ndarray, spikes: np.ndarray, net: Any) -> np.ndarray:
        """The membrane before the reset, (steps, ..., n_h): where a neuron fired, the recorded v is the
        reset value, so the step's v is rebuilt from the previous step's v, this step's u and the bias with
        the neuron's own update (no recursion: every step at once)."""
        pop = net.population("hidden")
        prev = np.concatenate([np.zeros_like(v[:1]), v[:-1]])
        if self.fixed:
            from neurodeploy.emulator.loihi import effective_bias

            keep = (4096 - np.asarray(pop.params["dv"], dtype=np.int64)) / 4096.0
            bias = effective_bias(pop.params["bias_mant"], pop.params["bias_exp"]).astype(float)
            before = np.trunc(prev * keep) + u + bias
        else:
            before = (1.0 - pop.params["dv"]) * prev + u + pop.params["bias_v"]
        return np.where(spikes, before, v)

    def forward(self, spikes_in: np.ndarray, traces: bool = True, need_elig: bool = False) -> Pass:
        """Present ``spikes_in`` (steps, batch, n_in) through ``simulate``, the emulator's run loop; returns
        the readout and, with ``traces``, the learning quantities (per-synapse eligibilities too with
        ``need_elig``)."""
        from neurodeploy.emulator.simulate import simulate

        cfg = self.cfg
        steps, batch = spikes_in.shape[0], spikes_in.shape[1]
        s, n_in, n_h = cfg.seeds, self.n_in, self.n_h
        unit = cfg.scale * 64.0 if self.fixed else 1.0
        net = self.core()
        on = np.zeros((steps, 1, 1), dtype=bool)
        on[: cfg.active] = True
        drive = {"input": np.where(np.arange(steps)[:, None, None] < cfg.active, spikes_in, 0), "bias": on,
                 "always": np.ones((steps, 1, 1), dtype=bool)}  # fmt: skip
        out = simulate(net, drive, steps=steps, record=("spikes", "u", "v"), populations=["hidden", "readout"])
        z = out.spikes["hidden"].reshape(steps, s, batch, n_h)
        # pres[t]: what the presynaptic neurons emit at step t, [x, bias, z] (instance-leading)
        pres = np.zeros((s, steps, batch, n_in + 1 + n_h))
        pres[:, : cfg.active, :, :n_in] = spikes_in[None, : cfg.active]
        pres[:, : cfg.active, :, n_in] = 1.0
        pres[..., n_in + 1 :] = np.moveaxis(z, 0, 1)
        v_out = out.v["readout"].reshape(steps, s, batch, -1)[-1]
        readout = (1.0 - self.kappa) * np.asarray(v_out, dtype=float) / unit
        count = pres[..., n_in + 1 :].sum(axis=1)
        if not traces:
            return Pass(readout, None, None, None, None, count / cfg.active)
        v_h = out.v["hidden"].reshape(steps, s, batch, n_h)
        u_h = out.u["hidden"].reshape(steps, s, batch, n_h)
        vs = np.moveaxis(self._pre_reset(v_h, u_h, z, net), 0, 1)  # (inst, steps, batch, n_h)
        vth = np.asarray(net.population("hidden").params["vth" if self.fixed else "v_th"], dtype=float)
        vth_f = (vth * (64.0 if self.fixed else 1.0) / unit).reshape(s, 1, 1, n_h)
        psis = cfg.gamma * np.maximum(0.0, 1.0 - np.abs(vs / unit - vth_f) / vth_f)
        zbars = np.empty_like(pres)
        zbar = np.zeros_like(pres[:, 0])
        for t in range(steps):
            zbars[:, t] = zbar
            zbar = self.alpha * zbar + pres[:, t]
        # a spike of step t reaches the readout at t + 1 and decays T − 1 − (t + 1) steps until the end
        k = np.zeros(steps)
        k[:-1] = (1.0 - self.kappa) * self.kappa ** (steps - 2 - np.arange(steps - 1))
        psi_k = psis * k[:, None, None]
        zhat = np.concatenate(
            [np.einsum("t,stbj->sbj", k, pres[..., n_in + 1 :]), np.full((s, batch, 1), k.sum())], axis=-1
        )
        elig = None
        if need_elig:  # Σ_t over (inst, b) as one batched matmul (einsum does not use BLAS here)
            elig = (psi_k.transpose(0, 2, 3, 1) @ zbars.transpose(0, 2, 1, 3)) * self.no_self
        return Pass(readout, elig, psi_k, zbars, zhat, count / cfg.active)


class _Eprop:
    """One run: network, feedback, writers, and the per-epoch bookkeeping."""

    def __init__(self, cfg: EpropConfig, task: Task) -> None:
        self.cfg, self.task = cfg, task
        self.mode, self.profile = check_profile(cfg.profile, "eprop", cfg.steps)
        self.fixed = self.mode == "fixed"
        self.rng = np.random.default_rng([cfg.seed, 7919])
        init_rng = np.random.default_rng([cfg.seed, 1])
        self.net = EpropNet(cfg, task, self.fixed, init_rng)
        if cfg.mismatch > 0:
            self.net.set_mismatch(cfg.mismatch, np.random.default_rng([cfg.seed, 2]))
        b = init_rng.normal(0.0, cfg.feedback_gain * self.net.out_std, (cfg.seeds, cfg.hidden, task.n_out))
        self.b_random = self.net.to_storage(b, init_rng)  # feedback synapses: stored like weights
        self.engine: dict[str, Any] = {"mode": self.mode, "alpha": self.net.alpha, "kappa": self.net.kappa}
        self._lr: float | None = None

    # --- data ------------------------------------------------------------------------------------
    def encode(self, x: np.ndarray) -> np.ndarray:
        return encode_rate(x, self.cfg.steps, self.cfg.active, bias_spike=False)

    def targets(self, y: np.ndarray) -> np.ndarray:
        if self.task.kind == "classification":
            return np.eye(self.task.n_out)[y]
        return np.asarray(y, dtype=float)

    def output_error(self, readout: np.ndarray, y: np.ndarray) -> np.ndarray:
        target = self.targets(y)[None]
        if self.task.kind == "classification":
            z = readout - readout.max(-1, keepdims=True)
            p = np.exp(z)
            return p / p.sum(-1, keepdims=True) - target
        return readout - target

    # --- learning signals --------------------------------------------------------------------------
    def feedback(self) -> np.ndarray:
        """B (inst, n_h, n_out) in float units: W_outᵀ (symmetric) or the fixed random matrix."""
        if self.cfg.feedback == "symmetric":
            return np.swapaxes(self.net.as_float(self.net.w_out)[..., :-1], -1, -2)
        return self.net.as_float(self.b_random)

    def signals(self, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(L with the run's B, L with B = W_outᵀ), each (inst, b, n_h)."""
        sym = np.swapaxes(self.net.as_float(self.net.w_out)[..., :-1], -1, -2)
        return err @ np.swapaxes(self.feedback(), -1, -2), err @ np.swapaxes(sym, -1, -2)

    # --- one minibatch ---------------------------------------------------------------------------
    def step(self, idx: np.ndarray, lr: float) -> None:
        x, y = self.task.x_train[idx], self.task.y_train[idx]
        p = self.net.forward(self.encode(x), need_elig=self.fixed)
        assert p.psi_k is not None and p.zbar is not None and p.zhat is not None
        err = self.output_error(p.readout, y)
        sig, _ = self.signals(err)
        if self.cfg.reg > 0:  # local: each neuron's own rate against the target
            sig = sig + self.cfg.reg * (p.rate - self.cfg.rate_target)
        if self.fixed:
            if self._lr != lr:  # new (m, e) and tag gain for the new rate; saturation counts carry over
                old = (self.w_writer, self.o_writer) if self._lr is not None else None
                self._lr = lr
                self.w_writer = EligibilityWriter(lr, self.cfg.scale)
                self.o_writer = EligibilityWriter(lr, self.cfg.scale)
                if old is not None:
                    for new, prev in zip((self.w_writer, self.o_writer), old, strict=True):
                        new.saturated, new.tag_saturated = prev.saturated, prev.tag_saturated
                self._rules_logged = False
            d_h = self.w_writer.update(p.elig, sig, self.rng)
            elig_o = np.broadcast_to(p.zhat[..., None, :], err.shape + (p.zhat.shape[-1],))
            d_o = self.o_writer.update(elig_o, err, self.rng)
            if not self._rules_logged:
                self._rules_logged = True
                self.engine.setdefault("hidden_rules", []).append(self.w_writer.info())
                self.engine.setdefault("readout_rules", []).append(self.o_writer.info())
            self.net.w_h = clip_variable(self.net.w_h + d_h, "weight", "mixed")  # the engine's 8-bit clamp
            self.net.w_out = clip_variable(self.net.w_out + d_o, "weight", "mixed")
        else:
            s, t, b, j = p.psi_k.shape
            a = (p.psi_k * sig[:, None]).reshape(s, t * b, j)
            d_h = -lr * (np.swapaxes(a, 1, 2) @ p.zbar.reshape(s, t * b, -1)) * self.net.no_self
            d_o = -lr * (np.swapaxes(err, -1, -2) @ p.zhat)
            self.net.w_h = self.net.w_h + d_h
            self.net.w_out = self.net.w_out + d_o

    # --- evaluation ------------------------------------------------------------------------------
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        scores = []
        for i in range(0, len(x), 500):
            p = self.net.forward(self.encode(x[i : i + 500]), traces=False)
            if self.task.kind == "classification":
                scores.append((p.readout.argmax(-1) == y[i : i + 500]).sum(-1))
            else:
                scores.append(((p.readout - y[i : i + 500]) ** 2).mean(-1).sum(-1))
        return np.sum(scores, axis=0) / len(x)

    def alignment(self, probe: tuple[np.ndarray, np.ndarray]) -> dict[str, Any]:
        p = self.net.forward(self.encode(probe[0]), traces=False)
        sig, sym = self.signals(self.output_error(p.readout, probe[1]))
        out: dict[str, Any] = {"signal_angle": {"h1": metrics.angle(sig, sym).tolist()}, "weight_angle": {}}
        out["norm_ratio"] = {}
        if self.cfg.feedback == "random":
            b = self.feedback()
            w_t = np.swapaxes(self.net.as_float(self.net.w_out)[..., :-1], -1, -2)
            out["weight_angle"]["B_out"] = metrics.angle(b, w_t).tolist()
            out["norm_ratio"]["B_out"] = metrics.norm_ratio(b, w_t).tolist()
        out["hidden_rate"] = p.rate.mean(axis=(1, 2)).tolist()
        return out


def learn_eprop(
    profile: str = "loihi2",
    task: str = "yinyang",
    mismatch: float = 0.0,
    seeds: int = 5,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
    **overrides: Any,
) -> LearnResult:
    """Train a recurrent spiking network with e-prop on ``profile`` for ``seeds`` chips at once."""
    unknown = set(overrides) - set(EpropConfig.__dataclass_fields__)
    if unknown:
        raise NeurodeployError(f"unknown e-prop option {sorted(unknown)[0]!r}", "learn('eprop')", "see EpropConfig")
    if seeds < 1 or mismatch < 0:
        raise NeurodeployError("seeds must be >= 1 and mismatch >= 0", "learn()", "e.g. --seeds 5 --mismatch 0.1")
    cfg = EpropConfig(profile=profile, task=task, mismatch=mismatch, seeds=seeds, **overrides)
    if cfg.feedback not in ("random", "symmetric"):
        raise NeurodeployError(
            f"unknown e-prop feedback {cfg.feedback!r}", "feedback=", "use feedback='random' or 'symmetric'"
        )
    if not 0 < cfg.active <= cfg.steps:
        raise NeurodeployError("need 0 < active <= steps", "learn('eprop')", "e.g. steps=32, active=26")
    data = get_task(task)
    if cfg.lr <= 0:
        cfg.lr = 0.03 if data.kind == "classification" else 0.01
    tr = _Eprop(cfg, data)
    t0 = time.perf_counter()
    n = len(data.x_train) if cfg.train_samples <= 0 else min(cfg.train_samples, len(data.x_train))
    history = train_epochs(tr, data, cfg.epochs, cfg.lr, cfg.batch, n, 0.2, progress)
    final = final_summary(data, history) if history else {}
    eng = dict(tr.engine)
    if tr.fixed and tr._lr is not None:
        eng["third_factor_saturations"] = tr.w_writer.saturated + tr.o_writer.saturated
        eng["tag_saturations"] = tr.w_writer.tag_saturated + tr.o_writer.tag_saturated
    prov = provenance([data.n_in, cfg.hidden, data.n_out], cfg.active, tr.fixed)
    diffs = list(DIFFERENCES) + (list(FIXED_DIFFERENCES) if tr.fixed else [])
    if cfg.feedback == "random":
        diffs.append("random e-prop: a fixed random B instead of W_outᵀ (Bellec et al.'s local variant)")
    return LearnResult({"rule": "eprop", **asdict(cfg)}, history, final, eng, prov, time.perf_counter() - t0,
                       "chip", diffs)  # fmt: skip


def provenance(sizes: list[int], steps: int, fixed: bool) -> dict[str, Any]:
    """Where e-prop's signals are computed: the forward pass on the chip model, the learning signal and
    the eligibility traces on the host, the weight writes through the engine's arithmetic. Host operations
    per training sample are multiply-adds (and one exp per output for the softmax)."""
    n_in, n_h, n_out = sizes
    host = "host (float, CPU)"
    chip = "chip" if fixed else "chip (float model of the ideal profile)"
    elig = (n_in + 1 + n_h) * n_h  # hidden synapses; per step ψ·z̄ and the κ filter on each
    return {
        "forward": {"where": chip, "how": "recurrent LIF layer and leaky readout as a compiled network in the "
                    "emulator's run loop", "host_ops_per_sample": 0},
        "output_error": {"where": host, "how": "softmax of the readout minus the target",
                         "host_ops_per_sample": 4 * n_out},
        "hidden_signal": {"where": host, "how": "learning signal Σ B(y − y*) and eligibility traces in numpy",
                          "host_ops_per_sample": 2 * n_h * n_out + 2 * elig * steps + n_h * steps},
        "feedback_learning": {"where": "none", "how": "B is fixed (random e-prop) or Wᵀ (symmetric)",
                              "host_ops_per_sample": 0},
        "weight_write": {"where": f"{chip} engine arithmetic", "how": "tag writes from host eligibilities with "
                         "the engine's stochastic rounding", "host_ops_per_sample": 0},
    }  # fmt: skip


def initial_score(profile: str = "ideal", task: str = "yinyang", seeds: int = 2, **overrides: Any) -> np.ndarray:
    """Test score of the untrained network (per seed): the baseline ``learn_eprop`` should beat."""
    cfg = EpropConfig(profile=profile, task=task, seeds=seeds, **overrides)
    data = get_task(task)
    return _Eprop(cfg, data).evaluate(data.x_test, data.y_test)
