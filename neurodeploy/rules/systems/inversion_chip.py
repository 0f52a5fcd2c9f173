"""Dynamic inversion in the loihi2 profile's integer arithmetic, the weight updates on the Loihi learning engine.

What runs on the chip (emulated): the forward network, the inversion loop, the output and hidden errors and
the weight updates. The host checks (and, with ``stability="repair"``, repairs) the loop's stability on the
dequantised integer weights between weight moves, and scores the outputs it reads.

- Neurons (Loihi 2 programmable neurons with graded spikes): every activity is a 7-bit signed graded payload
  p in units of 2^-A (A = 6 on classification tasks, 4 on the linear task), clipped to [−64, 63]. A hidden
  neuron sums Σ w·p (weights in units of 1/128) and looks tanh up in a 257-entry table (steps of 1/32,
  |a| ≤ 4); its slope is 1 − p² (in units of 2^-2A). An output neuron holds its sum o; on classification
  it looks σ(o) up in a 257-entry table (steps of 1/16, |o| ≤ 8) and computes δ₀ = t − σ(o) from a target
  input, on regression δ₀ = t − o; δ₀ is rounded to units of 2^-D and clipped to 7 bits.
- The loop: r_y is a compartment of the output neurons, r_x one of the hidden neurons, integer states in
  units of 2^-12. Each step, r_x travels to the outputs through the forward synapses W1 (the same Dense that
  carries h in the forward phase) and r_y to the hidden neurons through a fixed 8-bit Dense B, both as
  16-bit graded payloads in units of 2^-8; r_y += (c·(W r_x − δ₀) − d·r_y) / 4096 and r_x += c·(B r_y − r_x)
  / 4096, rounded half up, with c = round(4096·dt) and d = round(c·α). After the last step the hidden neuron
  sends δ₁ = slope·r_x (units 2^-D, 7 bits).
- Learning (``emulator.plasticity``: Loihi3FLearningRule, one learning epoch per presentation, at the bAP):
  the pre neuron's graded activity sets its pre trace x1 = 64 + p, the post neuron sends y2 = δ⁺, y3 = δ⁻
  and, at the last presentation of a minibatch, y1 = 32. The tag t gathers η·δ·p per presentation; y1
  moves it into the weight: ``dt = m·2^-7·y0·y2·(x1-64) − m·2^-7·y0·y3·(x1-64) − y0·y1·t``,
  ``dw = 2^e·y0·y1·t``. Biases are synapses from a bias neuron of activity 63/64 (the last input neuron for
  W0, the last neuron of the hidden population for W1).
- Network: ``inversion_chip_net.chip_network`` compiles these neurons and synapses as a ``CoreNetwork`` of
  programmable-neuron populations and engine projections, and ``train_chip`` runs it in the emulator's
  stepped run loop (``emulator.stepped``). This module holds the integer formulas the programs and the engine
  execute, the weights' compilation (``ChipNetwork``, whose ``forward``/``hidden_error`` are the same steps by
  hand) and the host's stability check.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.emulator.loihi import prepare_weights
from neurodeploy.emulator.plasticity import THIRD_FACTOR_TAU, LearningRule, PlasticDense, TraceSpec
from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import base
from neurodeploy.rules.systems import inversion as di

SYSTEM = "di"
WEIGHT_BITS = 7  # a weight of 1.0 is 128 units: 8-bit mixed-sign synapses hold [−2, 2) in steps of 1/64
LOOP_BITS = 12  # r_y, r_x in units of 2^-12
MESSAGE_BITS = 8  # loop payloads in units of 2^-8, 16 bits signed
MESSAGE_MAX = (1 << 15) - 1
STATE_MAX = (1 << 23) - 1  # 24-bit states saturate
PAYLOAD = (-64, 63)  # 7-bit graded activity: 64 + p fits the engine's 7-bit pre trace
DELTA_MAX = 127  # third factors y2, y3: 7 bits
MOVE_GATE = 32  # y1 at a move: y1·t has widths 7 + 9 + 4 = 20, shifted right by 5, so 32·t >> 5 = t
TAG_EXP = -7  # the finest tag: one tag unit is 2^10 / m units of y·p
GRADED = TraceSpec(0.0, THIRD_FACTOR_TAU)  # the graded pre trace, set by each presentation's payload


@dataclass(frozen=True)
class Scales:
    """Fractional bits: activities (A), the output error (D_out) and the hidden error (D_hidden)."""

    act: int
    delta_out: int
    delta_hidden: int


CLASSIFICATION = Scales(6, 7, 8)  # δ₀ ∈ (−1, 1); δ₁ within ±0.5
LINEAR = Scales(4, 5, 6)  # activities within ±4, δ₀ within ±4, δ₁ within ±2


@dataclass
class ChipOptions(di.Options):
    """The float options plus the chip's: ``mismatch`` (σ of the weights' fixed pattern, per seed one chip
    instance) and ``seed`` (mismatch draws and the engine's stochastic rounding)."""

    mismatch: float = 0.0
    seed: int = 0

    def checked(self) -> ChipOptions:
        super().checked()
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise NeurodeployError(f"option seed={self.seed!r} must be a whole number", "option seed",
                                   "give seed as an integer, e.g. seed=0")  # fmt: skip
        if isinstance(self.mismatch, bool) or not isinstance(self.mismatch, (int, float, np.integer, np.floating)):
            raise NeurodeployError(f"option mismatch={self.mismatch!r} must be a number", "option mismatch",
                                   "e.g. mismatch=0.1 (10 % weight mismatch)")  # fmt: skip
        if not np.isfinite(self.mismatch) or self.mismatch < 0:
            raise NeurodeployError(f"option mismatch must be ≥ 0, got {self.mismatch}", "option mismatch",
                                   "e.g. mismatch=0.1 (10 % weight mismatch)")  # fmt: skip
        if self.form != "dynamic":
            raise NeurodeployError("form='least_squares' solves the steady state with a matrix inverse, which the "
                                   "chip does not compute", "option form", "use form='dynamic' on the chip, or "
                                   "variant='paper'")  # fmt: skip
        if self.clip is not None:
            raise NeurodeployError("option clip (a cap on the norm of each sample's hidden error) needs a norm over "
                                   "the layer, which no hidden neuron sees", "option clip",
                                   "leave clip=None on the chip")  # fmt: skip
        return self


# ------------------------------------------------------------------------------------------- integer neurons
def shift_round(x: np.ndarray, s: int) -> np.ndarray:
    """x / 2^s rounded half up ((x + 2^(s−1)) >> s); a left shift for s < 0."""
    x = np.asarray(x, dtype=np.int64)
    return (x + (1 << (s - 1))) >> s if s > 0 else x << -s


def _table(fn: Callable[[np.ndarray], np.ndarray], step_bits: int, scale: int, lo: int, hi: int) -> np.ndarray:
    x = np.arange(-128, 129) / float(1 << step_bits)
    return np.clip(np.rint(scale * fn(x)), lo, hi).astype(np.int64)


TANH = {a: _table(np.tanh, 5, 1 << a, *PAYLOAD) for a in (4, 6)}  # steps of 1/32, |a| ≤ 4
SIGMOID = {d: _table(lambda v: 1 / (1 + np.exp(-v)), 4, 1 << d, 0, 1 << d) for d in (5, 7)}  # steps of 1/16


def lookup(table: np.ndarray, acc: np.ndarray, shift: int) -> np.ndarray:
    """The table entry for a sum ``acc``: acc / 2^shift rounded half up, clipped to the table's ±128 rows."""
    return table[np.clip(shift_round(acc, shift), -128, 128) + 128]


def loop_message(r: np.ndarray) -> np.ndarray:
    """A loop state (units 2^-12) as the 16-bit graded payload it sends (units 2^-8)."""
    return np.clip(shift_round(r, LOOP_BITS - MESSAGE_BITS), -MESSAGE_MAX, MESSAGE_MAX)


def loop_input(acc: np.ndarray) -> np.ndarray:
    """A dendrite's summed loop input (weights 1/128 × payloads 2^-8) in the states' units 2^-12."""
    return shift_round(np.asarray(acc, dtype=np.int64), WEIGHT_BITS + MESSAGE_BITS - LOOP_BITS)


def update_y(ry: np.ndarray, in_y: np.ndarray, delta0: np.ndarray, c: int, d: int) -> np.ndarray:
    """r_y += (c·(W r_x − δ₀) − d·r_y) / 4096, rounded half up, 24-bit saturating."""
    return np.clip(ry + shift_round(c * (in_y - delta0) - d * ry, 12), -STATE_MAX, STATE_MAX)


def update_x(rx: np.ndarray, in_x: np.ndarray, c: int) -> np.ndarray:
    """r_x += c·(B r_y − r_x) / 4096, rounded half up, 24-bit saturating."""
    return np.clip(rx + shift_round(c * (in_x - rx), 12), -STATE_MAX, STATE_MAX)


def loop_step(ry: np.ndarray, rx: np.ndarray, w: np.ndarray, b: np.ndarray, delta0: np.ndarray, c: int, d: int
              ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One step of the two compartments (units 2^-12): the payloads they sent last step, weighted, summed.

    ``w`` (…, out, hidden) and ``b`` (…, hidden, out) are integer weights (units 1/128), ``delta0`` in 2^-12.
    """
    mx = loop_message(rx).astype(np.float64)
    my = loop_message(ry).astype(np.float64)
    in_y = loop_input(np.matmul(mx, np.swapaxes(w, -1, -2)).astype(np.int64))  # exact: |Σ| < 2^53
    in_x = loop_input(np.matmul(my, np.swapaxes(b, -1, -2)).astype(np.int64))
    return update_y(ry, in_y, delta0, c, d), update_x(rx, in_x, c)


def activity(a: np.ndarray, linear: bool, sc: Scales) -> np.ndarray:
    """A hidden neuron's payload from its sum a (units 2^-(7+A)): identity clipped, or the tanh table."""
    if linear:
        return np.clip(shift_round(a, WEIGHT_BITS), *PAYLOAD)
    return lookup(TANH[sc.act], a, WEIGHT_BITS + sc.act - 5)


def error_from_sum(o: np.ndarray, t: np.ndarray, classify: bool, sc: Scales) -> np.ndarray:
    """δ₀ = t − σ(o) (classification) or t − o, from the sum o and the target t in units of 2^-D_out, 7 bits."""
    d = sc.delta_out
    out = lookup(SIGMOID[d], o, WEIGHT_BITS + sc.act - 4) if classify else shift_round(o, WEIGHT_BITS + sc.act - d)
    return np.clip(t - out, -DELTA_MAX, DELTA_MAX)


def hidden_delta(rx: np.ndarray, p_h: np.ndarray, linear: bool, sc: Scales) -> np.ndarray:
    """δ₁ = slope·r_x (units 2^-D_hidden, 7 bits), the slope 1 − p² from the neuron's own payload."""
    if linear:
        delta1 = shift_round(rx, LOOP_BITS - sc.delta_hidden)
    else:
        slope = (1 << 2 * sc.act) - p_h * p_h  # 1 − tanh², units 2^-2A
        delta1 = shift_round(rx * slope, LOOP_BITS + 2 * sc.act - sc.delta_hidden)
    return np.clip(delta1, -DELTA_MAX, DELTA_MAX)


def loop_constants(opts: di.Options) -> tuple[int, int, float, float]:
    """(c, d, realised dt, realised α): c = round(4096·dt) scales the inputs, d = round(c·α) is r_y's leak."""
    c = int(round(4096 * opts.dt))
    if not 1 <= c <= 4095:
        raise NeurodeployError(f"dt={opts.dt:g} does not fit the 12-bit factor round(4096·dt) in 1…4095",
                               "option dt", "use dt in [0.000123, 0.9998]")  # fmt: skip
    d = int(round(c * opts.alpha))
    if d > 4095:
        raise NeurodeployError(
            f"α·dt = {opts.alpha * opts.dt:g} exceeds the 12-bit decay (d = round(c·α) = {d} > 4095 "
            f"with c = round(4096·dt) = {c})",
            "option alpha",
            f"use alpha below {4095.5 / c:.4g} with dt={opts.dt:g}",
        )
    return c, d, c / 4096, d / c


# ----------------------------------------------------------------------------------------------- the network
def to_grid(w: np.ndarray) -> np.ndarray:
    """Float weights to the 8-bit mixed-sign synapse grid (even integers in units of 1/128)."""
    return prepare_weights(2 * np.rint(np.asarray(w) * (1 << WEIGHT_BITS) / 2), 8, "mixed")


def dequantised(w: np.ndarray) -> np.ndarray:
    return np.asarray(w, dtype=np.float64) / (1 << WEIGHT_BITS)


class ChipNetwork:
    """Integer weights per seed ((seeds, post, pre + 1): the last column is the bias synapse) and the neurons."""

    def __init__(self, task: Any, opts: ChipOptions, seeds: int, profile: Any) -> None:
        self.linear, self.classify = task.name == "linear", task.kind == "classification"
        self.sc = LINEAR if self.linear else CLASSIFICATION
        n_hidden = opts.n_hidden or (20 if self.linear else 100)
        self.rng = np.random.default_rng(1000)  # the float run's start and minibatch order
        ref = di.Network(task, n_hidden, seeds, opts, self.rng)
        no_bias = np.zeros((seeds, 1, 1))
        w0 = np.concatenate([ref.w0, no_bias.repeat(n_hidden, 1) if self.linear else np.swapaxes(ref.b0, 1, 2)], 2)
        w1 = np.concatenate([ref.w1, no_bias.repeat(task.n_out, 1) if self.linear else np.swapaxes(ref.b1, 1, 2)], 2)
        self.w0, self.w1 = to_grid(w0), to_grid(w1)
        self.b = -np.swapaxes(self.w1[..., :-1], 1, 2) if opts.init_b == "negative_transpose" else to_grid(ref.feedback)
        self.b = prepare_weights(self.b, 8, "mixed")
        if opts.mismatch > 0:
            self._mismatch(opts, profile, task.n_in, n_hidden, task.n_out)
        self.bias_payload = 0 if self.linear else PAYLOAD[1]

    def _mismatch(self, opts: ChipOptions, profile: Any, n_in: int, n_hidden: int, n_out: int) -> None:
        """Per seed one chip instance of ``emulator.mismatch.sample``: every synapse w·(1 + σ·e), re-rounded."""
        from neurodeploy.emulator import mismatch
        from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection

        sizes = {"input": (n_in + 1, "input"), "bias": (1, "input"), "hidden": (n_hidden, "loihi"),
                 "output": (n_out, "loihi")}  # fmt: skip
        pops = [CorePopulation(name, n, model, {}) for name, (n, model) in sizes.items()]
        for s in range(self.w0.shape[0]):
            projs = [CoreProjection("W0", "input", "hidden", self.w0[s]),
                     CoreProjection("W1", "hidden", "output", self.w1[s, :, :-1]),
                     CoreProjection("W1_bias", "bias", "output", self.w1[s, :, -1:]),
                     CoreProjection("B", "output", "hidden", self.b[s])]  # fmt: skip
            core = CoreNetwork(pops, projs, ["input", "bias"], ["output"], numerics="loihi")
            core = mismatch.sample(core, profile, instances=1, seed=int(opts.seed), sigma={"weight": opts.mismatch},
                                   first=s)  # fmt: skip
            got = {pr.name: np.asarray(pr.weight, dtype=np.int64).reshape(np.shape(pr.weight)[-2:])
                   for pr in core.projections}  # fmt: skip
            self.w0[s], self.b[s] = got["W0"], got["B"]
            self.w1[s, :, :-1], self.w1[s, :, -1:] = got["W1"], got["W1_bias"]

    def payload(self, x: np.ndarray) -> np.ndarray:
        """Input features as graded payloads (units 2^-A, 7 bits) with the bias neuron's payload appended."""
        p = np.clip(np.rint(np.asarray(x, float) * (1 << self.sc.act)), *PAYLOAD).astype(np.int64)
        return np.concatenate([p, np.full(p.shape[:-1] + (1,), self.bias_payload, np.int64)], -1)

    def with_bias(self, p: np.ndarray) -> np.ndarray:
        return np.concatenate([p, np.full(p.shape[:-1] + (1,), self.bias_payload, np.int64)], -1)

    def target(self, target: np.ndarray) -> np.ndarray:
        """Targets as the target input sends them: units of 2^-D_out, rounded."""
        return np.rint(np.asarray(target, float) * (1 << self.sc.delta_out)).astype(np.int64)

    def forward(self, p_in: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sums a (units 2^-(7+A)), hidden payloads p_h and output sums o (units 2^-(7+A)), per seed: the
        network's forward steps by hand (``inversion_chip_net`` runs them on the chip's neurons)."""
        a = np.matmul(p_in.astype(np.float64), np.swapaxes(w0, 1, 2)).astype(np.int64)
        p_h = activity(a, self.linear, self.sc)
        o = np.matmul(self.with_bias(p_h).astype(np.float64), np.swapaxes(w1, 1, 2)).astype(np.int64)
        return a, p_h, o

    def output_error(self, o: np.ndarray, target: np.ndarray) -> np.ndarray:
        """δ₀ = t − σ(o) (classification) or t − o, in units of 2^-D_out, clipped to 7 bits."""
        return error_from_sum(o, self.target(target), self.classify, self.sc)

    def hidden_error(self, delta0: np.ndarray, p_h: np.ndarray, w1: np.ndarray, b: np.ndarray, opts: ChipOptions
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The loop run for ``opts.steps`` steps from rest; returns δ₁ (units 2^-D_hidden, 7 bits) and r_x."""
        c, d, _, _ = loop_constants(opts)
        delta_loop = delta0 << (LOOP_BITS - self.sc.delta_out)
        ry = np.zeros(delta0.shape, np.int64)
        rx = np.zeros(p_h.shape, np.int64)
        w = w1[..., :-1]
        for _ in range(opts.steps):
            ry, rx = loop_step(ry, rx, w, b, delta_loop, c, d)
        return hidden_delta(rx, p_h, self.linear, self.sc), rx


# --------------------------------------------------------------------------------------------- the engine
def rule_scale(lr: float, batch: int, act: int, delta: int) -> tuple[int, int, float]:
    """(m, e_w, realised lr) for Δw = (lr / batch)·δ·x: the tag gains y·p·m·2^(−7−3) per presentation (the
    product's width shift is 3) and the move adds t·2^e_w to the weight, so m·2^(e_w − 10) should equal
    lr·2^(7 − A − D) / batch. The engine's mantissas have 3 magnitude bits, so lr is realised to ~1/8."""
    target = lr * 2.0 ** (WEIGHT_BITS - act - delta) / batch * 2.0 ** (3 - TAG_EXP)
    pairs = [(m, e) for m in range(1, 8) for e in range(-7, 9)]  # ties go to the smaller m: less tag saturation
    m, e = min(pairs, key=lambda me: abs(math.log(me[0] * 2.0 ** me[1] / target)))
    realised = m * 2.0**e / target * lr
    if abs(math.log(realised / lr)) > math.log(1.5):
        raise NeurodeployError(f"the learning engine cannot realise lr={lr:g} (nearest {realised:g})", "option lr",
                               "use an lr between about 0.005 and 2")  # fmt: skip
    return m, e, realised


def engine_rules(lr: float, batch: int, act: int, delta: int) -> tuple[str, str, float]:
    """The tag and weight rules of one projection, and the learning rate they realise."""
    m, e, realised = rule_scale(lr, batch, act, delta)
    scale = f"{m}*2^{TAG_EXP}" if m > 1 else f"2^{TAG_EXP}"
    dt = f"{scale}*y0*y2*(x1-64) - {scale}*y0*y3*(x1-64) - y0*y1*t"
    return dt, f"2^{e}*y0*y1*t", realised


def plastic_projection(weights: np.ndarray, dt: str, dw: str, seed: int) -> PlasticDense:
    rule = LearningRule(dw=dw, dt=dt, x1=GRADED, t_epoch=1, rng_seed=seed, three_factor=True)
    return PlasticDense(weights, rule, batch_shape=weights.shape[:1], draws="hardware")


def bap(plastic: PlasticDense, pre: np.ndarray, post: np.ndarray, third: dict[str, np.ndarray]) -> np.ndarray:
    """One learning epoch at the post neurons' bAP: x1 = 64 + p from the pre neurons' graded spikes, y1…y3 as
    the post neurons send them. Returns where the tag saturated."""
    plastic.traces["x1"] = np.clip(64 + pre, 0, 127)
    plastic.step(pre != 0, post, third)
    return (plastic.tag_1 >= 255) | (plastic.tag_1 <= -257)


def move_factors(delta: np.ndarray, move: bool | np.ndarray) -> dict[str, np.ndarray]:
    """The post neuron's third factors: y2 = δ⁺, y3 = δ⁻ and y1 = 32 where the tag moves into the weight."""
    gate = np.where(move, MOVE_GATE, 0) * np.ones(delta.shape, np.int64)
    return {"y1": gate, "y2": np.maximum(delta, 0), "y3": np.maximum(-delta, 0)}


def present(plastic: PlasticDense, pre: np.ndarray, delta: np.ndarray, move: bool) -> np.ndarray:
    """One presentation's bAP on the engine: x1 = 64 + p from the pre neurons' graded spikes, y2/y3 = δ±,
    y1 = 32 on a minibatch's last presentation. Returns where the tag saturated."""
    return bap(plastic, pre, np.ones(delta.shape, bool), move_factors(delta, move))


# ------------------------------------------------------------------------------------------- host stability
def host_options(opts: ChipOptions) -> di.Options:
    """The float options with the realised α and dt, for the host's eigenvalue checks."""
    _, _, dt, alpha = loop_constants(opts)
    return dataclasses.replace(di.Options(**{f.name: getattr(opts, f.name) for f in dataclasses.fields(di.Options)}),
                               alpha=alpha, dt=dt)  # fmt: skip


def host_repair(w1: np.ndarray, b: np.ndarray, hopts: di.Options, seed: int, when: str) -> np.ndarray:
    """Gradient steps on the dequantised B (host float64), re-rounded to the 8-bit grid and checked again;
    the margin doubles when rounding undid the repair (three tries)."""
    w, margin = dequantised(w1), hopts.margin
    for _ in range(3):
        fixed, ok = di.stabilise(w, dequantised(b), hopts.alpha, dataclasses.replace(hopts, margin=margin), True)
        b = prepare_weights(to_grid(fixed), 8, "mixed")
        report = di.stability_report(w[None], dequantised(b)[None], hopts)
        if ok and not len(di.unstable_seeds(report)) and report["reduced"][0] <= -hopts.margin:
            return b
        margin *= 2
    raise di.stability_error(report, seed, when, hopts, "raise repair_iterations or alpha, or lower lr")


def host_check(net: ChipNetwork, w1: np.ndarray, hopts: di.Options, opts: ChipOptions, when: str,
               repairs: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """The stability check on the dequantised weights; refuse, or repair B and count it (host)."""
    report = di.stability_report(dequantised(w1[..., :-1]), dequantised(net.b), hopts)
    for s in di.unstable_seeds(report):
        if opts.stability == "refuse":
            hint = "use stability='repair' (the paper's approach, on the host), a smaller lr or a larger alpha"
            raise di.stability_error(report, int(s), when, hopts, hint)
        net.b[s] = host_repair(w1[s, :, :-1], net.b[s], hopts, int(s), when)
        repairs[s] += 1
    return report


def chip_start(net: ChipNetwork, hopts: di.Options, opts: ChipOptions) -> None:
    """Before training (host, compile time): optimise B where asked, then refuse an unstable loop."""
    if opts.init_b == "stability_optimised":
        for s in range(net.b.shape[0]):
            net.b[s] = host_repair(net.w1[s, :, :-1], net.b[s], hopts, s, "before training")
    report = di.stability_report(dequantised(net.w1[..., :-1]), dequantised(net.b), hopts)
    bad = di.unstable_seeds(report)
    if len(bad):
        hint = "use init_b='negative_transpose' or 'stability_optimised', or a larger alpha"
        raise di.stability_error(report, int(bad[0]), "before training", hopts, hint)


# ------------------------------------------------------------------------------------------------ training
def train_chip(task: Any, opts: ChipOptions, seeds: int, epochs: int, profile: Any,
               progress: Callable[[int, int, dict[str, Any]], None] | None = None
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """Minibatch learning on the compiled network in the emulator's stepped run loop (``inversion_chip_net``)."""
    from neurodeploy.rules.systems.inversion_chip_net import train_chip as train

    return train(task, opts, seeds, epochs, profile, progress)


DIFFERENCES = (
    "neurons: Loihi 2 programmable neurons with graded spikes; every activity is a 7-bit signed payload (units "
    "1/64 on classification, 1/16 on the linear task, clipped to [−64, 63]: ±1 and ±4), the same payload that "
    "feeds the Dense and the engine's pre trace; input features and the bias neuron (activity 63/64) likewise",
    "tanh from a 257-entry table (steps of 1/32, |a| ≤ 4, entries rounded to 1/64); its slope 1 − p² from the "
    "neuron's own payload",
    "classification output: a per-neuron sigmoid from a 257-entry table (steps of 1/16, |o| ≤ 8) with the error "
    "δ₀ = t − σ(o) (sigmoid cross-entropy), not the softmax's t − p, which needs all outputs in one neuron",
    "errors rounded half up and clipped to 7 bits: δ₀ in units 2^-7 (classification, ±0.99) or 2^-5 (linear, ±3.97), "
    "δ₁ in units 2^-8 (±0.5) or 2^-6 (±1.98); small errors round to 0",
    "weights in units of 1/128: the start rounded to the 8-bit mixed-sign grid (even integers, steps of 1/64, "
    "[−2, 1.98]); learned weights are the engine's 9-bit integers (steps of 1/128); B stays on the 8-bit grid",
    "loop: r_y and r_x are 24-bit integer states in units 2^-12, exchanged as 16-bit graded payloads in units 2^-8 "
    "(±128) with one step of synaptic latency (the Euler step's use of the previous states); dt realised as "
    "round(4096·dt)/4096 (0.1 → 0.100098) and α as round(c·α)/c (0.01 → 0.009756); one rounding per update",
    "the loop runs on the forward synapses W1 (time-multiplexed with the forward phase) and a fixed Dense B",
    "learning: one engine epoch per presentation (its bAP); the tag gathers η·δ·p with the engine's stochastic "
    "rounding and saturates at [−257, 255] (counted as tag_saturations); the post neuron's y1 = 32 moves it into "
    "the weight at a minibatch's last presentation, so that presentation's own update lands one minibatch later, "
    "and a short last minibatch is scaled by 1/batch, not by its size",
    "learning rate realised as m·2^e by the engine's 4-bit mantissa (digits: W1 0.094, W0 0.094 for 0.1)",
    "host: the stability check (W B − α I and the loop's Jacobian with the realised α and dt) runs on the "
    "dequantised integer weights after every weight move; stability='repair' moves B there in float64, rounds it "
    "back to the 8-bit grid (doubling the margin when rounding undoes it) and writes it to the chip",
    "not on the chip: form='least_squares' (a matrix inverse) and clip (a norm over the layer) are refused",
)


def check_profile(profile_name: str) -> Any:
    needs = {"programmable_neurons": "the tanh and sigmoid tables, the output error and the loop's two integer "
             "compartments are not LIF neurons",
             "graded_spikes": "the loop exchanges signed states, and activities travel as payloads",
             "third_factor": "δ reaches the synapses as y2, y3"}  # fmt: skip
    return base.chip_profile(SYSTEM, profile_name, "ΔW = η δ hᵀ runs as an engine rule with δ as third factors",
                             needs)  # fmt: skip


def learn_chip(task: str | None, profile_name: str, seeds: int, epochs: int | None,
               progress: Callable[[int, int, dict[str, Any]], None] | None, options: dict[str, Any],
               started: float) -> Any:  # fmt: skip
    """The chip run: the float run's history entries, from the integer network."""
    opts = base.make_options(ChipOptions, SYSTEM, options)
    profile = check_profile(profile_name)
    data = di.load_task(task)
    epochs = epochs or (20 if data.name == "linear" else 30)
    history, info = train_chip(data, opts, seeds, epochs, profile, progress)
    chip = f"chip ({profile_name}, emulated; integer arithmetic)"
    provenance = {
        "network": {"where": chip, "how": "compiled as a CoreNetwork (inversion_chip_net.chip_network: input and "
                    "target inputs, hidden and output populations of programmable neurons, plastic projections W0 "
                    "and W1 on the learning engine, static projections B and target) and run by the emulator's "
                    "stepped run loop (emulator.stepped), one run per minibatch, the engines learning at the bAP"},
        "forward": {"where": chip, "how": "graded rate neurons (7-bit payloads, tanh table), 8-bit Dense"},
        "output_error": {"where": chip, "how": "output neurons: δ₀ = t − σ(o) (table) or t − o, from a target input"},
        "loop": {"where": chip, "how": f"r_y, r_x compartments, {opts.steps} steps, c={info['loop']['c']}, "
                 f"d={info['loop']['d']}; W1 shared with the forward pass, fixed B"},
        "learning": {"where": f"{chip}: learning engine (emulator.plasticity, Loihi3FLearningRule)",
                     "how": "; ".join(f"{k}: dt = {r['dt']}, dw = {r['dw']}" for k, r in info["rules"].items())},
        "stability": {"where": "host float64", "how": "eigenvalues of W B − α I and of the loop's Jacobian on the "
                      "dequantised weights before training and after every weight move; "
                      + ("repair: B moved by gradient steps on the host, re-rounded and written back to the chip"
                         if opts.stability == "repair" else "refuse: no change to B")},
        "scoring": {"where": "host float64", "how": "the output neurons' sums read after the forward steps of a "
                    "run without the bAP, accuracy or MSE; δ₀ and δ₁ read for the signal angles"},
    }  # fmt: skip
    result = base.system_result(SYSTEM, "chip", profile_name, opts, history, equations=di.EQUATIONS,
                                provenance=provenance, differences=DIFFERENCES, started=started,
                                extra_config={"task": data.name, "seeds": seeds, "epochs": epochs})  # fmt: skip
    result.engine.update(info)
    return result


__all__ = ["DIFFERENCES", "SIGMOID", "TANH", "ChipNetwork", "ChipOptions", "activity", "bap", "dequantised",
           "engine_rules", "error_from_sum", "hidden_delta", "learn_chip", "lookup", "loop_constants", "loop_input",
           "loop_message", "loop_step", "move_factors", "plastic_projection", "present", "rule_scale", "shift_round",
           "to_grid", "train_chip", "update_x", "update_y"]  # fmt: skip
