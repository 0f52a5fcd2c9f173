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
  ``dw = 2^e·y0·y1·t``. Biases are synapses from a bias neuron of activity 63/64.
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


def loop_step(ry: np.ndarray, rx: np.ndarray, w: np.ndarray, b: np.ndarray, delta0: np.ndarray, c: int, d: int
              ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One step of the two compartments (units 2^-12): the payloads they sent last step, weighted, summed.

    ``w`` (…, out, hidden) and ``b`` (…, hidden, out) are integer weights (units 1/128), ``delta0`` in 2^-12.
    """
    mx = np.clip(shift_round(rx, LOOP_BITS - MESSAGE_BITS), -MESSAGE_MAX, MESSAGE_MAX).astype(np.float64)
    my = np.clip(shift_round(ry, LOOP_BITS - MESSAGE_BITS), -MESSAGE_MAX, MESSAGE_MAX).astype(np.float64)
    back = WEIGHT_BITS + MESSAGE_BITS - LOOP_BITS
    in_y = shift_round(np.matmul(mx, np.swapaxes(w, -1, -2)).astype(np.int64), back)  # exact: |Σ| < 2^53
    in_x = shift_round(np.matmul(my, np.swapaxes(b, -1, -2)).astype(np.int64), back)
    ry = np.clip(ry + shift_round(c * (in_y - delta0) - d * ry, 12), -STATE_MAX, STATE_MAX)
    return ry, np.clip(rx + shift_round(c * (in_x - rx), 12), -STATE_MAX, STATE_MAX)


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

    def forward(self, p_in: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sums a (units 2^-(7+A)), hidden payloads p_h and output sums o (units 2^-(7+A)), per seed."""
        a = np.matmul(p_in.astype(np.float64), np.swapaxes(w0, 1, 2)).astype(np.int64)
        if self.linear:
            p_h = np.clip(shift_round(a, WEIGHT_BITS), *PAYLOAD)
        else:
            p_h = lookup(TANH[self.sc.act], a, WEIGHT_BITS + self.sc.act - 5)
        o = np.matmul(self.with_bias(p_h).astype(np.float64), np.swapaxes(w1, 1, 2)).astype(np.int64)
        return a, p_h, o

    def output_error(self, o: np.ndarray, target: np.ndarray) -> np.ndarray:
        """δ₀ = t − σ(o) (classification) or t − o, in units of 2^-D_out, clipped to 7 bits."""
        d = self.sc.delta_out
        t = np.rint(np.asarray(target, float) * (1 << d)).astype(np.int64)
        if self.classify:
            out = lookup(SIGMOID[d], o, WEIGHT_BITS + self.sc.act - 4)
        else:
            out = shift_round(o, WEIGHT_BITS + self.sc.act - d)
        return np.clip(t - out, -DELTA_MAX, DELTA_MAX)

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
        if self.linear:
            delta1 = shift_round(rx, LOOP_BITS - self.sc.delta_hidden)
        else:
            slope = (1 << 2 * self.sc.act) - p_h * p_h  # 1 − tanh², units 2^-2A
            delta1 = shift_round(rx * slope, LOOP_BITS + 2 * self.sc.act - self.sc.delta_hidden)
        return np.clip(delta1, -DELTA_MAX, DELTA_MAX), rx


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


def present(plastic: PlasticDense, pre: np.ndarray, delta: np.ndarray, move: bool) -> bool:
    """One presentation's bAP on the engine: x1 = 64 + p from the pre neurons' graded spikes, y2/y3 = δ±,
    y1 = 32 on a minibatch's last presentation. Returns whether the tag saturated somewhere."""
    plastic.traces["x1"] = np.clip(64 + pre, 0, 127)
    gate = np.full(delta.shape, MOVE_GATE if move else 0, np.int64)
    plastic.step(pre != 0, np.ones(delta.shape, bool),
                 {"y1": gate, "y2": np.maximum(delta, 0), "y3": np.maximum(-delta, 0)})  # fmt: skip
    return (plastic.tag_1 >= 255) | (plastic.tag_1 <= -257)


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
def _score(net: ChipNetwork, task: Any, x: Any, y: Any, w0: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """Host scoring of the output neurons' sums: accuracy of the largest, or the mean squared error."""
    o = net.forward(net.payload(x), w0, w1)[2]
    if net.classify:
        return (o.argmax(-1) == np.asarray(y)[None]).mean(1)
    return ((o / 2.0 ** (WEIGHT_BITS + net.sc.act) - np.asarray(y, float)[None]) ** 2).mean((1, 2))


def _signals(net: ChipNetwork, task: Any, opts: ChipOptions, hopts: di.Options, w0: np.ndarray, w1: np.ndarray,
             entry: dict[str, Any]) -> None:  # fmt: skip
    """The chip's hidden error on the validation inputs against the float signals of its own weights."""
    a, p_h, o = net.forward(net.payload(task.x_val), w0, w1)
    delta0 = net.output_error(o, di._targets(task, task.y_val))
    delta1 = net.hidden_error(delta0, p_h, w1, net.b, opts)[0] / 2.0**net.sc.delta_hidden
    d0 = delta0 / 2.0**net.sc.delta_out
    w, b = dequantised(w1[..., :-1]), dequantised(net.b)
    slope = 1.0 if net.linear else 1.0 - np.tanh(a / 2.0 ** (WEIGHT_BITS + net.sc.act)) ** 2
    exact = di.steady_state(w, b, hopts.alpha, d0) * slope
    entry["pinv_angle"] = {"W0": di._angle(delta1, d0 @ np.swapaxes(np.linalg.pinv(w), 1, 2) * slope).tolist()}
    entry["bp_angle"] = {"W0": di._angle(delta1, d0 @ w * slope).tolist()}
    entry["steady_state_gap"] = {"W0": di._angle(delta1, exact).tolist()}
    if net.linear:
        solution = (np.linalg.pinv(np.asarray(task.x_train, float)) @ np.asarray(task.y_train, float)).T
        learned = w @ dequantised(w0[..., :-1])
        entry["solution_angle"] = di._angle(learned, np.broadcast_to(solution, learned.shape)).tolist()


def train_chip(task: Any, opts: ChipOptions, seeds: int, epochs: int, profile: Any,
               progress: Callable[[int, int, dict[str, Any]], None] | None = None
               ) -> tuple[list[dict[str, Any]], dict[str, Any]]:  # fmt: skip
    """Minibatch learning on the chip: per presentation the forward pass, the loop and one engine epoch per
    projection; weights move at each minibatch's last presentation, then the host checks the loop."""
    net = ChipNetwork(task, opts, seeds, profile)
    hopts = host_options(opts)
    lr = opts.lr or (0.01 if net.linear else 0.1)
    rules = {"W0": engine_rules(lr, opts.batch, net.sc.act, net.sc.delta_hidden),
             "W1": engine_rules(lr, opts.batch, net.sc.act, net.sc.delta_out)}  # fmt: skip
    plastic = {name: plastic_projection(w, rules[name][0], rules[name][1], int(opts.seed) + i)
               for i, (name, w) in enumerate((("W0", net.w0), ("W1", net.w1)))}  # fmt: skip
    chip_start(net, hopts, opts)
    x_train, t_train = np.asarray(task.x_train, float), di._targets(task, task.y_train)
    repairs, saturated = np.zeros(seeds, int), np.zeros(seeds, int)
    score = "accuracy" if net.classify else "mse"
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        worst = {"reduced": np.full(seeds, -np.inf), "loop": np.full(seeds, -np.inf)}
        order = np.stack([net.rng.permutation(len(x_train)) for _ in range(seeds)])
        for start in range(0, len(x_train), opts.batch):
            idx = order[:, start : start + opts.batch]
            p_in = net.payload(x_train[idx])
            w0, w1 = plastic["W0"].weights, plastic["W1"].weights
            _, p_h, o = net.forward(p_in, w0, w1)
            delta0 = net.output_error(o, t_train[idx])
            delta1 = net.hidden_error(delta0, p_h, w1, net.b, opts)[0]
            pre1 = net.with_bias(p_h)
            for k in range(idx.shape[1]):
                move = k == idx.shape[1] - 1
                for name, pre, delta in (("W1", pre1, delta0), ("W0", p_in, delta1)):
                    saturated += present(plastic[name], pre[:, k], delta[:, k], move).sum((1, 2))
            report = host_check(net, plastic["W1"].weights, hopts, opts, f"after an update in epoch {epoch}", repairs)
            for key in worst:
                worst[key] = np.maximum(worst[key], report[key])
        w0, w1 = plastic["W0"].weights, plastic["W1"].weights
        entry: dict[str, Any] = {"epoch": epoch}
        entry[f"test_{score}"] = _score(net, task, task.x_test, task.y_test, w0, w1).tolist()
        entry[f"val_{score}"] = _score(net, task, task.x_val, task.y_val, w0, w1).tolist()
        _signals(net, task, opts, hopts, w0, w1, entry)
        report = di.stability_report(dequantised(w1[..., :-1]), dequantised(net.b), hopts)
        entry["spectral_abscissa"] = {di.LAYER: report["reduced"].tolist()}
        entry["worst_spectral_abscissa"] = {di.LAYER: worst["reduced"].tolist()}
        entry["loop_abscissa"] = {di.LAYER: report["loop"].tolist()}
        entry["worst_loop_abscissa"] = {di.LAYER: worst["loop"].tolist()}
        entry["repairs"] = repairs.tolist()
        neg_transpose = -dequantised(np.swapaxes(w1[..., :-1], 1, 2))
        entry["weight_angle_neg"] = {di.LAYER: di._angle(dequantised(net.b), neg_transpose).tolist()}
        entry["tag_saturations"] = saturated.tolist()
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    c, d, dt, alpha = loop_constants(opts)
    gate = f"{MOVE_GATE} at a minibatch's last presentation"
    info = {"rules": {name: {"dt": r[0], "dw": r[1], "realised_lr": r[2], "x1": "64 + graded payload", "y1": gate,
                             "y2": "δ⁺", "y3": "δ⁻", "t_epoch": 1} for name, r in rules.items()},
            "loop": {"c": c, "d": d, "realised_dt": dt, "realised_alpha": alpha},
            "scales": dataclasses.asdict(net.sc)}  # fmt: skip
    return history, info


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
        "scoring": {"where": "host float64", "how": "the output neurons' sums read, accuracy or MSE; signal angles"},
    }  # fmt: skip
    result = base.system_result(SYSTEM, "chip", profile_name, opts, history, equations=di.EQUATIONS,
                                provenance=provenance, differences=DIFFERENCES, started=started,
                                extra_config={"task": data.name, "seeds": seeds, "epochs": epochs})  # fmt: skip
    result.engine.update(info)
    return result


__all__ = ["DIFFERENCES", "SIGMOID", "TANH", "ChipNetwork", "ChipOptions", "dequantised", "engine_rules",
           "learn_chip", "lookup", "loop_constants", "loop_step", "plastic_projection", "present", "rule_scale",
           "shift_round", "to_grid", "train_chip"]  # fmt: skip
