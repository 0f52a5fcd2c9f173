"""Activation Relaxation and relaxed predictive coding in the loihi2 profile's integer arithmetic, every weight
update on the Loihi learning engine.

What runs on the chip (emulated): the forward network, the output error, the relaxation and all weight updates
(forward weights W and backward weights B), compiled as a ``CoreNetwork`` (``relaxation_chip_net``) and run by
the emulator's stepped run loop. The host only writes the y1 gate before a minibatch's last presentation, scores
the output neurons' sums and measures the angles of the chip's updates to backprop's gradient (dequantised), as
the float run does.

- Neurons (Loihi 2 programmable neurons with graded spikes): every activity is an 8-bit signed graded payload
  (±127), input features in units of 2^-6, hidden activities in units of 2^-4 (ReLU: max(0, Σ w·p) shifted
  and rounded half up, at most 127/16; the neuron keeps its ReLU slope as the gate Σ w·p > 0). The output
  neurons hold their sums o; a classification output looks σ(o) up in a 257-entry table (steps of 1/16) and
  forms e_L = t − σ(o) from a target input, a regression output e_L = t − o; e_L in units of 2^-7, ±127.
- Relaxation: every hidden neuron has one more compartment, its relaxing node (AR: x_l; PC: ε_l), a 24-bit
  integer state in units of 2^-14, and sends it down through its own 8-bit Dense B_l as a 16-bit graded
  payload in units of 2^-11 (AR with f′: gated by its ReLU slope). Each step, all together:
  ``s += (c·(in − s) + 2^11) >> 12`` with c = round(4096·rate) (PC with f′: in gated by the slope). The output
  neurons send e_L, clamped. Both carry the descent direction (AR: −x_l), so one sign serves both: AR starts
  at minus the forward activity (the same neurons), PC at zero. After the last step each neuron sends its error
  δ_l (AR: gate·x_l, PC: ε_l) rounded to units of 2^-7, ±127.
- Learning (``emulator.plasticity``, Loihi3FLearningRule, one engine epoch per presentation): W_l's pre
  traces are x1 = activity⁺, x2 = activity⁻, its post neuron sends y2/y3 = δ±; B_l's pre traces are δ± of
  the layer above and its post neuron sends y2/y3 = its activity±, the transpose of W's product
  (Kolen-Pollack). The tag gathers the minibatch; y1 = 32 at its last presentation moves it into the weight
  (the scale of inversion_chip.engine_rules). B receives the transposed rounding draws of W, so with
  backward="transpose" (B starts as Wᵀ) B stays Wᵀ up to the engine's rare trace-decay draws; "learned"
  starts B at random.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.emulator.plasticity import LearningRule, PlasticDense
from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems import base
from neurodeploy.rules.systems import relaxation as rx
from neurodeploy.rules.systems.inversion_chip import (
    DELTA_MAX,
    GRADED,
    MESSAGE_MAX,
    MOVE_GATE,
    STATE_MAX,
    WEIGHT_BITS,
    dequantised,
    engine_rules,
    lookup,
    shift_round,
    to_grid,
)
from neurodeploy.rules.systems.inversion_chip import SIGMOID as SIGMOID_TABLES

Progress = Callable[[int, int, dict[str, Any]], None]
STATE_BITS = 14  # relaxing nodes in units of 2^-14, 24 bits signed (±512)
MESSAGE_BITS = 11  # relaxation payloads in units of 2^-11, 16 bits signed (±16)
RATE_BITS = 12  # the rate as the 12-bit factor c = round(4096·rate)
ACT_IN, ACT_HIDDEN = 6, 4  # activity payloads: inputs in units 2^-6 ([0, 1]), hidden in 2^-4 ([0, 7.94])
DELTA_OUT = DELTA_HIDDEN = 7  # errors in units 2^-7 (±127: ±0.99)
PAYLOAD = (-DELTA_MAX, DELTA_MAX)  # activities and errors: graded payloads of ±127, 7-bit pre traces and y2/y3
SIGMOID = SIGMOID_TABLES[DELTA_OUT]  # 257 entries, steps of 1/16, |o| ≤ 8, in units 2^-7


@dataclass
class _ChipFields:
    """The chip's own options: ``mismatch`` (σ of the synapses' fixed pattern, one chip instance per seed) and
    ``seed`` (mismatch draws and the engine's stochastic rounding)."""

    mismatch: float = 0.0
    seed: int = 0

    def _chip_checked(self: Any) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise NeurodeployError(f"option seed={self.seed!r} must be a whole number", "option seed",
                                   "give seed as an integer, e.g. seed=0")  # fmt: skip
        if isinstance(self.mismatch, bool) or not isinstance(self.mismatch, (int, float, np.integer, np.floating)):
            raise NeurodeployError(f"option mismatch={self.mismatch!r} must be a number", "option mismatch",
                                   "e.g. mismatch=0.1 (10 % weight mismatch)")  # fmt: skip
        if not np.isfinite(self.mismatch) or self.mismatch < 0:
            raise NeurodeployError(f"option mismatch must be ≥ 0, got {self.mismatch}", "option mismatch",
                                   "e.g. mismatch=0.1 (10 % weight mismatch)")  # fmt: skip
        refusals = {
            "backward": (self.backward == "bp", "backward='bp' is the exact chain rule, the host's float reference",
                         "use backward='transpose', 'learned' or 'fixed' on the chip"),
            "activation": (self.activation == "tanh", "the chip version is built for ReLU (and linear) neurons",
                           "use activation='relu' or 'linear' on the chip"),
            "decay": (self.decay > 0, "weight decay is not among the chip's engine rules",
                      "leave decay=0 on the chip"),
            "fixed_prediction": (not getattr(self, "fixed_prediction", True), "the energy form recomputes the "
                                 "predictions through W at every step, which the chip version does not build",
                                 "use fixed_prediction=True (the paper's algorithm) on the chip"),
        }  # fmt: skip
        for name, (refused, why, hint) in refusals.items():
            if refused:
                raise NeurodeployError(f"option {name}: {why}", f"option {name}", hint)


@dataclass
class ARChipOptions(rx.AROptions, _ChipFields):
    def checked(self) -> ARChipOptions:
        super().checked()
        self._chip_checked()
        return self


@dataclass
class PCChipOptions(rx.PCOptions, _ChipFields):
    def checked(self) -> PCChipOptions:
        super().checked()
        self._chip_checked()
        return self


def rate_factor(rate: float) -> tuple[int, float]:
    """(c, realised rate): c = round(4096·rate), at least 1 and at most 4096."""
    c = min(max(int(round(rate * (1 << RATE_BITS))), 1), 1 << RATE_BITS)
    return c, c / (1 << RATE_BITS)


def relax_step(system: str, state: list[np.ndarray], clamp: np.ndarray, gates: list[np.ndarray],
               B: list[np.ndarray], c: int, derivative: bool) -> list[np.ndarray]:  # fmt: skip
    """One step of every hidden layer's relaxing node together (units 2^-14): each layer sends the payload of
    its last state (AR with f′: gated), weighted by its Dense B (integer, units 1/128) to the layer below.

    ``state[l]`` and ``gates[l]`` (seeds, batch, n) belong to hidden layer l + 1; ``clamp`` is the output's
    e_L in units 2^-14; ``B[l]`` (seeds, n_{l+1}, n_{l+2}) carries layer l + 2's payload to layer l + 1."""
    sends = [s * g if system == "ar" and derivative else s for s, g in zip(state, gates, strict=True)] + [clamp]
    msgs = [np.clip(shift_round(s, STATE_BITS - MESSAGE_BITS), -MESSAGE_MAX, MESSAGE_MAX) for s in sends]
    back = WEIGHT_BITS + MESSAGE_BITS - STATE_BITS
    out = []
    for l, s in enumerate(state):
        drive = shift_round(np.matmul(msgs[l + 1].astype(np.float64), np.swapaxes(B[l], -1, -2)).astype(np.int64),
                            back)  # exact: |Σ| < 2^53  # fmt: skip
        if system == "pc" and derivative:
            drive = drive * gates[l]
        out.append(np.clip(s + shift_round(c * (drive - s), RATE_BITS), -STATE_MAX, STATE_MAX))
    return out


class ChipNet:
    """Integer weights per seed: ``W[l]`` (seeds, n_{l+1}, n_l + 1; the last column is the bias neuron's
    synapse) and ``B[l]`` (seeds, n_{l+1}, n_{l+2}), started from the float run's initial network."""

    def __init__(self, system: str, task: Any, opts: Any, seeds: int, profile: Any) -> None:
        self.system, self.opts = system, opts
        self.classify, self.relu = task.kind == "classification", opts.activation == "relu"
        self.sizes = [task.n_in, *opts.hidden, task.n_out]
        self.acts = [ACT_IN] + [ACT_HIDDEN] * len(opts.hidden)  # payload scale of each layer feeding the next
        self.bias = [1 << a for a in self.acts]  # the bias neurons' payload: 1.0
        ref = rx.init_net(self.sizes, seeds, opts.init_gain)  # biases start at zero
        self.W = [to_grid(np.concatenate([w, np.zeros(w.shape[:2] + (1,))], 2)) for w in ref.W]
        if opts.backward == "transpose":
            self.B = [np.swapaxes(w[..., :-1], 1, 2).copy() for w in self.W[1:]]
        else:
            self.B = [to_grid(np.swapaxes(g, 1, 2)) for g in ref.G]
        self.c, self.rate = rate_factor(opts.rate)
        if opts.mismatch > 0:
            self._mismatch(profile)

    def _mismatch(self, profile: Any) -> None:
        """Per seed one chip instance of ``emulator.mismatch.sample``: every synapse w·(1 + σ·e), re-rounded."""
        from neurodeploy.emulator import mismatch
        from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection

        n = len(self.W)
        pops = [CorePopulation(f"h{l}", size, "input" if l == 0 else "loihi", {}) for l, size in enumerate(self.sizes)]
        pops += [CorePopulation(f"bias{l}", 1, "input", {}) for l in range(n)]
        for s in range(self.W[0].shape[0]):
            projs = [CoreProjection(f"W{l}", f"h{l}", f"h{l + 1}", self.W[l][s, :, :-1]) for l in range(n)]
            projs += [CoreProjection(f"b{l}", f"bias{l}", f"h{l + 1}", self.W[l][s, :, -1:]) for l in range(n)]
            projs += [CoreProjection(f"B{l}", f"h{l + 2}", f"h{l + 1}", b[s]) for l, b in enumerate(self.B)]
            core = CoreNetwork(pops, projs, ["h0"] + [f"bias{l}" for l in range(n)], [f"h{n}"], numerics="loihi")
            core = mismatch.sample(core, profile, instances=1, seed=int(self.opts.seed),
                                   sigma={"weight": self.opts.mismatch}, first=s)  # fmt: skip
            got = {pr.name: np.asarray(pr.weight, dtype=np.int64).reshape(np.shape(pr.weight)[-2:])
                   for pr in core.projections}  # fmt: skip
            for l in range(n):
                self.W[l][s, :, :-1], self.W[l][s, :, -1:] = got[f"W{l}"], got[f"b{l}"]
            for l, b in enumerate(self.B):
                b[s] = got[f"B{l}"]

    def with_bias(self, p: np.ndarray, layer: int) -> np.ndarray:
        return np.concatenate([p, np.full(p.shape[:-1] + (1,), self.bias[layer], np.int64)], -1)

    def payload(self, x: Any, seeds: int) -> np.ndarray:
        """Input features as graded payloads (units 2^-6, 8 bits signed), one copy per seed."""
        p = np.clip(np.rint(np.asarray(x, float) * (1 << ACT_IN)), *PAYLOAD).astype(np.int64)
        return np.broadcast_to(p, (seeds, *p.shape)) if p.ndim == 2 else p

    def forward(self, p_in: np.ndarray, W: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
        """Payloads p_0..p_{L−1}, the hidden neurons' slope gates and the output sums (units 2^-(7+4))."""
        p, gates = [p_in], []
        for l, w in enumerate(W):
            a = np.matmul(self.with_bias(p[-1], l).astype(np.float64), np.swapaxes(w, 1, 2)).astype(np.int64)
            if l == len(W) - 1:
                return p, gates, a
            gates.append((a > 0).astype(np.int64) if self.relu else np.ones_like(a))
            v = shift_round(np.maximum(a, 0) if self.relu else a, WEIGHT_BITS + self.acts[l] - self.acts[l + 1])
            p.append(np.clip(v, *PAYLOAD))
        raise AssertionError("unreachable")

    def output_error(self, o: np.ndarray, target: np.ndarray) -> np.ndarray:
        """e_L = t − σ(o) (classification, table) or t − o, in units of 2^-7, clipped to ±127."""
        t = np.rint(np.asarray(target, float) * (1 << DELTA_OUT)).astype(np.int64)
        shift = WEIGHT_BITS + self.acts[-1]
        out = lookup(SIGMOID, o, shift - 4) if self.classify else shift_round(o, shift - DELTA_OUT)
        return np.clip(t - out, *PAYLOAD)

    def relax(self, e_out: np.ndarray, p: list[np.ndarray], gates: list[np.ndarray], steps: int,
              trace: Callable[[int, list[np.ndarray]], None] | None = None) -> list[np.ndarray]:  # fmt: skip
        """The relaxing nodes of the hidden layers after ``steps`` steps (units 2^-14)."""
        start = getattr(self.opts, "start", "forward") if self.system == "ar" else "zero"
        state = [-(q << (STATE_BITS - a)) if start == "forward" else np.zeros_like(q)
                 for q, a in zip(p[1:], self.acts[1:], strict=True)]  # fmt: skip
        clamp = e_out << (STATE_BITS - DELTA_OUT)
        for t in range(steps):
            state = relax_step(self.system, state, clamp, gates, self.B, self.c, self.opts.backward_derivative)
            if trace:
                trace(t + 1, state)
        if any((np.abs(s) >= STATE_MAX).any() for s in state):
            raise NeurodeployError(f"the {self.system} relaxation saturated its 24-bit states at rate "
                                   f"{self.opts.rate}", "rate", "lower rate, or lr / init_gain")  # fmt: skip
        return state

    def errors(self, state: list[np.ndarray], gates: list[np.ndarray], e_out: np.ndarray) -> list[np.ndarray]:
        """δ_1..δ_{L−1} (units 2^-7, ±127; AR: gate·x, PC: ε) and e_L: what each neuron sends to the engine."""
        hidden = [s * g if self.system == "ar" else s for s, g in zip(state, gates, strict=True)]
        return [np.clip(shift_round(h, STATE_BITS - DELTA_HIDDEN), *PAYLOAD) for h in hidden] + [e_out]

    def delta_bits(self, layer: int) -> int:
        return DELTA_OUT if layer == len(self.W) - 1 else DELTA_HIDDEN

    def float_net(self, W: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Dequantised weights and biases (the bias neuron's payload folded in), for the host's metrics."""
        ws = [dequantised(w[..., :-1]) for w in W]
        bs = [dequantised(w[..., -1]) * self.bias[l] / (1 << self.acts[l]) for l, w in enumerate(W)]
        return ws, bs


def split_rule(dt: str) -> str:
    """The tag rule with the pre neuron's signed payload split into x1 = p⁺ and x2 = p⁻ (7 bits each, as the
    post neuron's y2/y3): the scale of ``engine_rules``' rule (same widths, so the same shift), the product
    y·p. W and B share it, with activity and error swapping sides, so their tags agree."""
    scale = dt.split("*y0*y2*")[0]
    return f"{scale}*y0*y2*x1 - {scale}*y0*y2*x2 - {scale}*y0*y3*x1 + {scale}*y0*y3*x2 - y0*y1*t"


def split_projection(weights: np.ndarray, dt: str, dw: str, seed: int) -> PlasticDense:
    rule = LearningRule(dw=dw, dt=dt, x1=GRADED, x2=GRADED, t_epoch=1, rng_seed=seed,
                        three_factor=True)  # fmt: skip
    return PlasticDense(weights, rule, batch_shape=weights.shape[:1], draws="hardware")


def _present(plastic: PlasticDense, pre: np.ndarray, post: np.ndarray, move: bool, rounding: np.ndarray
             ) -> np.ndarray:  # fmt: skip
    """One presentation's bAP: the pre neurons' graded payload as x1 = p⁺ and x2 = p⁻, y2/y3 = the post
    neuron's value±, y1 = 32 at a minibatch's last presentation; ``rounding`` are the synapses' draws.
    Returns the tag saturations per seed."""
    plastic.traces["x1"], plastic.traces["x2"] = np.maximum(pre, 0), np.maximum(-pre, 0)
    gate = np.full(post.shape, MOVE_GATE if move else 0, np.int64)
    plastic.step(pre != 0, np.ones(post.shape, bool), {"y1": gate, "y2": np.maximum(post, 0),
                 "y3": np.maximum(-post, 0)}, rounding=rounding)  # fmt: skip
    return ((plastic.tag_1 >= 255) | (plastic.tag_1 <= -257)).sum((-2, -1))


class Engine:
    """The plastic projections: W_l always, B_l unless the feedback is fixed; B_l learns the transpose of
    W_{l+1}'s product with W_{l+1}'s rounding draws transposed."""

    def __init__(self, net: ChipNet, opts: Any) -> None:
        self.net, self.learn_b = net, opts.backward != "fixed"
        self.rng = np.random.default_rng(int(opts.seed) + 7)
        self.rules = []
        for l in range(len(net.W)):
            try:
                dt, dw, realised = engine_rules(opts.lr * opts.batch, opts.batch, net.acts[l], net.delta_bits(l))
            except NeurodeployError as err:
                raise NeurodeployError(
                    f"the learning engine cannot realise lr={opts.lr:g} per sample",
                    "option lr",
                    "use an lr between about 4e-4 and 40 per sample",
                ) from err
            self.rules.append((split_rule(dt), dw, realised))
        seed = int(opts.seed)
        self.W = [split_projection(w, *self.rules[l][:2], seed + l) for l, w in enumerate(net.W)]
        self.B = [split_projection(b, *self.rules[l + 1][:2], seed + 100 + l) for l, b in enumerate(net.B)]
        self.saturated = np.zeros(net.W[0].shape[0], int)
        self.draws: dict[int, np.ndarray] = {}  # W_l's rounding draws of the presentation, which B_{l−1} shares

    def present(self, p: list[np.ndarray], deltas: list[np.ndarray], move: bool) -> None:
        """One sample (seeds, n) through every projection's engine."""
        for l, plastic in enumerate(self.W):
            u = self.rng.random(plastic.weights.shape)
            self.saturated += _present(plastic, self.net.with_bias(p[l], l), deltas[l], move, u)
            if l and self.learn_b:
                u_b = np.swapaxes(u[..., :-1], -1, -2)
                self.saturated += _present(self.B[l - 1], deltas[l], p[l], move, u_b)
        self.net.W = [pl.weights for pl in self.W]
        if self.learn_b:
            self.net.B = [pl.weights for pl in self.B]


# ------------------------------------------------------------------------------------------------ host metrics
def _host_targets(net: ChipNet, data: Any, y: np.ndarray) -> np.ndarray:
    return np.eye(data.n_out)[y] if net.classify else np.asarray(y, float)


def chip_directions(net: ChipNet, p_in: np.ndarray, target: np.ndarray, steps: int | None = None
                    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """The chip's pass on a batch (seeds, batch, n) in the stepped run loop with the weights as they stand, no
    learning (payloads p, integer errors δ), and, on the host, its update direction Σ δ pᵀ (dequantised)
    beside BP's for the same dequantised weights, inputs and the chip's loss."""
    from neurodeploy.emulator.stepped import SteppedRun
    from neurodeploy.rules.systems.relaxation_chip_net import chip_network, present

    run = SteppedRun(chip_network(net, None, steps), p_in.shape[:-1])
    p, deltas = present(run, net, p_in, target, False, steps)
    return host_directions(net, net.W, target, p, deltas)


def host_directions(net: ChipNet, W: list[np.ndarray], target: np.ndarray, p: list[np.ndarray],
                    deltas: list[np.ndarray]
                    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """The host's measurement of a batch the chip ran with weights ``W``: its update direction Σ δ pᵀ
    (dequantised) beside BP's for the same dequantised weights, inputs (p_0) and the chip's loss."""
    p_in = p[0]
    ws, bs = net.float_net(W)
    x = p_in / float(1 << ACT_IN)
    pre, post = rx.forward(ws, bs, x, net.opts.activation)
    grad = 1 / (1 + np.exp(-post[-1])) - target if net.classify else post[-1] - target
    bp = rx.backprop_deltas(ws, pre, grad, net.opts.activation)
    bp_dirs = [-(d.swapaxes(-1, -2) @ h) for d, h in zip(bp, post[:-1], strict=True)]
    dirs = [(d / float(1 << net.delta_bits(l))).swapaxes(-1, -2) @ (q / float(1 << net.acts[l]))
            for l, (d, q) in enumerate(zip(deltas, p, strict=True))]  # fmt: skip
    return dirs, bp_dirs, p, deltas


def _score(o: np.ndarray, net: ChipNet, y: Any) -> list[float]:
    """Host scoring of the output neurons' integer sums ``o``: the accuracy of the largest, or the squared error."""
    if net.classify:
        return (o.argmax(-1) == np.asarray(y)[None]).mean(1).tolist()
    return ((o / 2.0 ** (WEIGHT_BITS + net.acts[-1]) - np.asarray(y, float)[None]) ** 2).mean((1, 2)).tolist()


def train_chip(system: str, data: Any, opts: Any, seeds: int, epochs: int, profile: Any,
               progress: Progress | None = None) -> tuple[list[dict[str, Any]], ChipNet, dict[str, Any]]:  # fmt: skip
    """Minibatch learning on the chip, the float run's batches, in the emulator's stepped run loop
    (``relaxation_chip_net``): one presentation per sample (forward pass, relaxation, one engine epoch per plastic
    projection); the weights move at a batch's last presentation. The host measures each batch's angles from the
    activities and errors it read, and scores the output neurons' sums."""
    from neurodeploy.emulator.stepped import SteppedRun
    from neurodeploy.rules.systems.relaxation_chip_net import chip_network, output_sums, present

    net = ChipNet(system, data, opts, seeds, profile)
    engine = Engine(net, opts)
    run = SteppedRun(chip_network(net, engine), (seeds,))
    x_train, t_train = np.asarray(data.x_train, float), _host_targets(net, data, data.y_train)
    shuffles = [np.random.default_rng(10_000 + s) for s in range(seeds)]  # the float run's batch order
    names = [f"W{i + 1}" for i in range(len(net.W))]
    kind = "accuracy" if net.classify else "mse"
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        order = np.stack([r.permutation(len(x_train)) for r in shuffles])
        angles: list[list[np.ndarray]] = [[] for _ in names]
        for start in range(0, len(x_train), opts.batch):
            idx = order[:, start : start + opts.batch]
            p_in, target = net.payload(x_train[idx], seeds), t_train[idx]
            reads = [present(run, net, p_in[:, k], target[:, k], k == idx.shape[1] - 1) for k in range(idx.shape[1])]
            p, deltas = ([np.stack(q, 1) for q in zip(*side, strict=True)] for side in zip(*reads, strict=True))
            dirs, bp_dirs, _, _ = host_directions(net, net.W, target, p, deltas)  # the weights the batch ran with
            for i, (d, g) in enumerate(zip(dirs, bp_dirs, strict=True)):
                angles[i].append(rx.angle(d, g))
            net.W = [pl.weights for pl in engine.W]
            if engine.learn_b:
                net.B = [pl.weights for pl in engine.B]
        entry: dict[str, Any] = {"epoch": epoch}
        for split, x, y in (("val", data.x_val, data.y_val), ("test", data.x_test, data.y_test)):
            entry[f"{split}_{kind}"] = _score(output_sums(run, net, net.payload(x, seeds)), net, y)
        entry["gradient_angle"] = {nm: np.mean(a, axis=0).tolist() for nm, a in zip(names, angles, strict=True)}
        ws = net.float_net(net.W)[0]
        entry["backward_angle"] = {names[i + 1]: rx.angle(np.swapaxes(dequantised(b), 1, 2), ws[i + 1]).tolist()
                                   for i, b in enumerate(net.B)}  # fmt: skip
        entry["tag_saturations"] = engine.saturated.tolist()
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    gate = f"{MOVE_GATE} at a minibatch's last presentation"
    rules = {names[l]: {"dt": r[0], "dw": r[1], "realised_lr_per_sample": r[2] / opts.batch,
                        "x1": "activity⁺", "x2": "activity⁻", "y1": gate, "y2": "δ⁺", "y3": "δ⁻", "t_epoch": 1}
             for l, r in enumerate(engine.rules)}  # fmt: skip
    if engine.learn_b:
        rules.update({f"B{l + 1}": {**rules[names[l + 1]], "x1": "δ⁺ of the layer above", "x2": "δ⁻",
                                    "y2": "activity⁺", "y3": "activity⁻"} for l in range(len(net.B))})  # fmt: skip
    info = {"rules": rules, "relaxation": {"c": net.c, "realised_rate": net.rate, "state_bits": STATE_BITS,
                                           "message_bits": MESSAGE_BITS},
            "scales": {"activity": net.acts, "delta_hidden": DELTA_HIDDEN, "delta_out": DELTA_OUT}}  # fmt: skip
    return history, net, info


DIFFERENCES = (
    "neurons: Loihi 2 programmable neurons with graded spikes; every activity is an 8-bit signed payload (inputs "
    "in units 1/64, [0, 1]; hidden ReLU activities in units 1/16, rounded half up and clipped to [0, 127/16]), "
    "the same payload that feeds the Dense and, split into x1 = p⁺ and x2 = p⁻, the engine's 7-bit pre traces; "
    "the bias is a synapse from a bias neuron of activity 1.0 per layer",
    "ReLU's slope f′ is the neuron's own gate Σ w·p > 0 (no table); tanh is not built on the chip",
    "classification output: a per-neuron sigmoid from a 257-entry table (steps of 1/16, |o| ≤ 8, entries in "
    "units 2^-7) and the clamped error e_L = t − σ(o) (sigmoid cross-entropy), not the softmax's, which needs all "
    "outputs in one neuron; the gradient angle is measured against BP of that same loss",
    "AR's nodes carry −x_l (the descent direction, starting at minus the forward activity), so AR and PC share "
    "the output clamp e_L = −∂L/∂out",
    "relaxation: 24-bit integer states in units 2^-14 exchanged as 16-bit graded payloads in units 2^-11 (±16, "
    "clipped), each step rounded half up; the rate realised as round(4096·rate)/4096 (0.1 → 0.100098)",
    "backward weights B are their own 8-bit Dense even for backward='transpose' (a Dense runs one way): started "
    "as Wᵀ and given Wᵀ's engine updates with the transposed rounding draws, they stay Wᵀ up to the engine's rare "
    "trace-decay draws (τ = 65535; logged as backward_angle); with mismatch W and B get independent patterns",
    "errors sent to the engine (and e_L into the relaxation) rounded half up to units of 2^-7 and clipped to "
    "±127 (±0.99): the third factors y2 = δ⁺, y3 = δ⁻ are 7 bits each; smaller errors round to 0",
    "weights in units of 1/128: the start rounded to the 8-bit mixed-sign grid (even integers, steps of 1/64, "
    "[−2, 1.98]); learned weights are the engine's 9-bit integers (steps of 1/128, clipped to [−2, 1.99])",
    "learning: one engine epoch per presentation; the tag gathers η·δ·p with the engine's stochastic rounding and "
    "saturates at [−257, 255] (counted as tag_saturations); y1 = 32 moves it into the weight at a minibatch's last "
    "presentation, so that presentation's own product lands one minibatch later",
    "learning rate realised as m·2^e by the engine's mantissa (5e-4 per sample → 4.88e-4); lr below about 3e-4 "
    "cannot be realised and is refused",
    "not on the chip: backward='bp', weight decay, activation='tanh' and PC's energy form "
    "(fixed_prediction=False) are refused",
    "host: only the scoring (the output neurons' integer sums read) and the angles (the chip's dequantised "
    "Σ δ pᵀ against float64 BP on the dequantised weights and inputs)",
)


def check_profile(system: str, profile_name: str) -> Any:
    needs = {"programmable_neurons": "the relaxing nodes, the slope gates and the output's sigmoid table and error "
             "are not LIF neurons",
             "graded_spikes": "activities and relaxing errors travel as signed payloads",
             "third_factor": "errors reach the synapses as y2, y3"}  # fmt: skip
    return base.chip_profile(system, profile_name, "ΔW and ΔB run as engine rules with the errors and activities "
                             "as third factors", needs)  # fmt: skip


def learn_chip(system: str, task: str | None, profile_name: str, seeds: int, epochs: int | None,
               progress: Progress | None, options: dict[str, Any], started: float) -> Any:  # fmt: skip
    """The chip run of ``ar`` or ``pc``: the float run's history entries, from the integer network."""
    opts = base.make_options(ARChipOptions if system == "ar" else PCChipOptions, system, options)
    profile = check_profile(system, profile_name)
    data = rx._resolve_task(task, opts)
    epochs = epochs or 10
    history, net, info = train_chip(system, data, opts, seeds, epochs, profile, progress)
    chip = f"chip ({profile_name}, emulated; integer arithmetic)"
    node = "−x_l (start: minus the forward activity)" if system == "ar" else "ε_l (start: 0)"
    provenance = {
        "network": {"where": chip, "how": "compiled as a CoreNetwork (relaxation_chip_net.chip_network: input and "
                    "target populations, programs h1…h{L−1} and out, bias neurons bias0…; plastic projections W1… "
                    "with bias columns b0…, B1… one layer down, an identity Dense for the target) and run by the "
                    "emulator's stepped run loop (emulator.stepped), one presentation of steps + 1 loop steps per "
                    "sample with the learning engine inside; the host writes the neurons' y1 gate register before a "
                    "minibatch's last presentation"},
        "forward": {"where": chip, "how": "graded ReLU neurons (7-bit payloads), 8-bit Dense W with bias neurons"},
        "output_error": {"where": chip, "how": "output neurons: e_L = t − σ(o) (table) or t − o, from a target input"},
        "relaxation": {"where": chip, "how": f"{node} as integer compartments, {opts.steps} steps, c={net.c}, "
                       f"through 8-bit Dense B ({opts.backward})"},
        "learning": {"where": f"{chip}: learning engine (emulator.plasticity, Loihi3FLearningRule)",
                     "how": "; ".join(f"{k}: dt = {r['dt']}, dw = {r['dw']}" for k, r in info["rules"].items())},
        "scoring": {"where": "host float64", "how": "the output neurons' sums read, accuracy or MSE; the angles of "
                    "the chip's dequantised updates to BP's gradient and of B to Wᵀ"},
    }  # fmt: skip
    equations = rx.EQUATIONS_AR if system == "ar" else rx.EQUATIONS_PC
    result = base.system_result(system, "chip", profile_name, dataclasses.asdict(opts), history, equations=equations,
                                provenance=provenance, differences=DIFFERENCES, started=started,
                                extra_config={"task": data.name, "epochs": epochs, "seeds": seeds})  # fmt: skip
    result.engine.update(info)
    return result


__all__ = ["DIFFERENCES", "SIGMOID", "ARChipOptions", "ChipNet", "Engine", "PCChipOptions", "chip_directions",
           "check_profile", "host_directions", "learn_chip", "rate_factor", "relax_step", "train_chip"]  # fmt: skip
