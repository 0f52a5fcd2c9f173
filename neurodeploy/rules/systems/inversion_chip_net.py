"""Dynamic inversion compiled as a ``CoreNetwork`` and trained in the emulator's stepped run loop.

``chip_network`` holds the integer network of ``inversion_chip`` as the chip does: two populations of
programmable neurons (``HiddenProgram``, ``OutputProgram``), the plastic projections W0 and W1 on the learning
engine (``TagEngine``, around the module's ``PlasticDense`` tag rule), a fixed Dense B and a target input.
One ``SteppedRun`` trains it; each minibatch is one run from rest whose presentations are the batch axis (the
weights cannot move within a minibatch: the post neurons send y1 = 0 until its last presentation), and each
engine takes the presentations' learning epochs in presentation order at the bAP. Step k of a run:

- k = 0: the input neurons send the features' payloads and the bias neuron's (held for the run), the target
  input sends t in units of 2^-D_out;
- k = 1 (``FORWARD``): the hidden neurons take W0 p (one step of Dense latency), send their activity p_h;
- k = 2 (``ERROR``): the output neurons hold their sum o = W1 p_h and form δ₀ from the target input;
- k = 3 … 2 + steps (``LOOP``): r_y and r_x exchange 16-bit payloads through W1 and B, one step of latency
  each, so each uses the other's previous state; after the last step the hidden neurons form δ₁;
- k = 3 + steps: the bAP, every post neuron sends its third factors and the engines learn.

The host presents the inputs, reads the output sums, δ₀, δ₁ and the weights between runs (scoring and
signals run the same network without the bAP step), checks the loop's stability and writes a repaired B.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.plasticity import PlasticDense
from neurodeploy.emulator.programs import Emission
from neurodeploy.emulator.stepped import SteppedRun
from neurodeploy.rules.systems import inversion as di
from neurodeploy.rules.systems.inversion_chip import (
    LOOP_BITS,
    MOVE_GATE,
    WEIGHT_BITS,
    ChipNetwork,
    ChipOptions,
    Scales,
    activity,
    bap,
    chip_start,
    dequantised,
    engine_rules,
    error_from_sum,
    hidden_delta,
    host_check,
    host_options,
    loop_constants,
    loop_input,
    loop_message,
    move_factors,
    plastic_projection,
    update_x,
    update_y,
)

FORWARD, ERROR, LOOP = 1, 2, 3  # the steps (since reset) of the hidden sums, the output error, the first loop step


def last_presentation(shape: tuple[int, ...]) -> np.ndarray:
    """True on the batch row (axis −2) that holds a minibatch's last presentation: where y1 moves the tag."""
    move = np.zeros(shape, bool)
    move[..., -1, :] = True
    return move


class HiddenProgram:
    """Hidden neurons and, last, the layer's bias neuron, as Loihi 2 programmable neurons.

    Ports: "soma" (W0's sum a), "loop" (B's sum of r_y payloads). Channels: "act" (the activity p, 7 bits,
    held through the presentation: the engine's pre trace for W1) and "out" (p at ``FORWARD``, then r_x's
    16-bit loop payload: the two phases of W1). The bias neuron's activity is constant and it has no synapses
    in, so its r_x stays 0.
    """

    ports = ("soma", "loop")
    channels = ("out", "act")

    def __init__(self, n_hidden: int, sc: Scales, linear: bool, bias_payload: int, c: int, steps: int) -> None:
        self.n, self.sc, self.linear, self.bias_payload = n_hidden, sc, linear, bias_payload
        self.c, self.steps = c, steps

    def init(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        state = {name: np.zeros(shape, np.int64) for name in ("a", "p", "rx", "delta1")}
        state["k"] = np.zeros((), np.int64)  # steps since rest: the presentation's phase
        return state

    def step(self, state: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        k = int(state["k"])
        state["k"] = np.asarray(k + 1, np.int64)
        shape = state["rx"].shape
        if k == FORWARD:
            state["a"] = np.asarray(inputs.get("soma", np.zeros(shape, np.int64)), np.int64)
            p = np.full(shape, self.bias_payload, np.int64)
            p[..., : self.n] = activity(state["a"][..., : self.n], self.linear, self.sc)
            state["p"] = p
            return Emission(p != 0, {"out": p, "act": p})
        if LOOP <= k < LOOP + self.steps:
            state["rx"] = update_x(state["rx"], loop_input(inputs.get("loop", np.zeros(shape, np.int64))), self.c)
            if k == LOOP + self.steps - 1:
                state["delta1"] = hidden_delta(state["rx"], state["p"], self.linear, self.sc)
        payload = {"out": loop_message(state["rx"]), "act": state["p"]}
        if k == LOOP + self.steps:  # the bAP
            third = move_factors(state["delta1"], last_presentation(shape))
            return Emission(np.ones(shape, bool), payload, third)
        return Emission(np.zeros(shape, bool), payload)


class OutputProgram:
    """Output neurons as Loihi 2 programmable neurons: the sum o, the error δ₀ and the loop state r_y.

    Ports: "soma" (W1's sum: o at ``ERROR``, then the r_x payloads), "target" (t in units 2^-D_out).
    Channel "out": r_y's 16-bit loop payload, into B.
    """

    ports = ("soma", "target")
    channels = ("out",)

    def __init__(self, sc: Scales, classify: bool, c: int, d: int, steps: int) -> None:
        self.sc, self.classify, self.c, self.d, self.steps = sc, classify, c, d, steps

    def init(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        state = {name: np.zeros(shape, np.int64) for name in ("o", "delta0", "ry")}
        state["k"] = np.zeros((), np.int64)
        return state

    def step(self, state: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        k = int(state["k"])
        state["k"] = np.asarray(k + 1, np.int64)
        shape = state["ry"].shape
        soma = inputs.get("soma", np.zeros(shape, np.int64))
        if k == ERROR:
            state["o"] = np.asarray(soma, np.int64)
            target = inputs.get("target", np.zeros(shape, np.int64))
            state["delta0"] = error_from_sum(state["o"], target, self.classify, self.sc)
        elif LOOP <= k < LOOP + self.steps:
            delta_loop = state["delta0"] << (LOOP_BITS - self.sc.delta_out)
            state["ry"] = update_y(state["ry"], loop_input(soma), delta_loop, self.c, self.d)
        payload = {"out": loop_message(state["ry"])}
        if k == LOOP + self.steps:  # the bAP
            third = move_factors(state["delta0"], last_presentation(shape))
            return Emission(np.ones(shape, bool), payload, third)
        return Emission(np.zeros(shape, bool), payload)


class TagEngine:
    """W0 or W1 on the learning engine (``PlasticDense`` with the tag rule of ``engine_rules``) as an ``Engine``.

    It learns only at the post neurons' bAP (the step they send third factors): one learning epoch per
    presentation, in presentation order along the batch axis (−2), with x1 = 64 + p from the pre neurons'
    ``trace_channel``. Delivery is the integer sum Σ w·payload; ``size`` pads it to a destination with neurons
    the engine's synapses do not reach (the hidden layer's bias neuron). ``saturated`` counts, per seed, the
    synapses whose tag sat at its bound after each epoch.
    """

    def __init__(self, plastic: PlasticDense, trace_channel: str, size: int) -> None:
        self.plastic, self.trace_channel, self.size = plastic, trace_channel, size
        self.saturated = np.zeros(plastic.batch_shape, np.int64)

    @property
    def weights(self) -> np.ndarray:
        return self.plastic.weights

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        w = np.swapaxes(self.plastic.weights, -1, -2)
        acc = np.matmul(np.asarray(payload, np.int64).astype(np.float64), w).astype(np.int64)  # exact < 2^53
        pad = self.size - acc.shape[-1]
        return np.concatenate([acc, np.zeros((*acc.shape[:-1], pad), np.int64)], -1) if pad else acc

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        if not post.third_factor:
            return False
        p = np.asarray(pre.payload[self.trace_channel], np.int64)
        n = self.plastic.n_post
        for k in range(p.shape[-2]):
            third = {y: np.asarray(v)[..., k, :n] for y, v in post.third_factor.items()}
            self.saturated += bap(self.plastic, p[..., k, :], post.spikes[..., k, :n], third).sum((-2, -1))
        return True


def padded_b(b: np.ndarray) -> np.ndarray:
    """B (seeds, hidden, out) per chip instance (seeds, 1, hidden + 1, out): no synapse onto the bias neuron."""
    return np.concatenate([b, np.zeros_like(b[:, :1])], 1)[:, None]


def chip_network(net: ChipNetwork, opts: ChipOptions, rules: dict[str, tuple[str, str, float]]) -> CoreNetwork:
    """The compiled network: input, target, hidden and output populations; W0 and W1 plastic, B and the target
    static; every projection with one step of Dense latency. ``rules``: each plastic projection's (dt, dw)."""
    seeds, n_hidden, n_in = net.w0.shape
    n_out = net.w1.shape[1]
    c, d, _, _ = loop_constants(opts)
    hidden = HiddenProgram(n_hidden, net.sc, net.linear, net.bias_payload, c, opts.steps)
    output = OutputProgram(net.sc, net.classify, c, d, opts.steps)
    engines = {name: TagEngine(plastic_projection(w, *rules[name][:2], int(opts.seed) + i), channel, size)
               for i, (name, w, channel, size) in enumerate((("W0", net.w0, "graded", n_hidden + 1),
                                                             ("W1", net.w1, "act", n_out)))}  # fmt: skip
    w0 = np.concatenate([net.w0, np.zeros_like(net.w0[:, :1])], 1)
    populations = [
        CorePopulation("input", n_in, "input"),
        CorePopulation("target", n_out, "input"),
        CorePopulation("hidden", n_hidden + 1, "program", program=hidden),
        CorePopulation("output", n_out, "program", program=output),
    ]
    projections = [
        CoreProjection("W0", "input", "hidden", w0, channel="graded", engine=engines["W0"]),
        CoreProjection("W1", "hidden", "output", net.w1, channel="out", engine=engines["W1"]),
        CoreProjection("B", "output", "hidden", padded_b(net.b), channel="out", port="loop"),
        # the target input, one to one: weight 2 (the 8-bit mixed-sign grid is even) with weight_exp −1 sends t
        CoreProjection("target", "target", "output", 2 * np.eye(n_out, dtype=np.int64), weight_exp=-1, port="target",
                       channel="graded"),
    ]  # fmt: skip
    return CoreNetwork(populations, projections, ["input", "target"], ["output"], numerics="loihi")


def write_b(run: SteppedRun, b: np.ndarray) -> None:
    """The host writes B (compiled, or repaired) into the chip's Dense."""
    run.delivery["B"].weight = padded_b(b)


def run_presentations(run: SteppedRun, net: ChipNetwork, x: np.ndarray, target: np.ndarray | None, steps: int) -> None:
    """Run ``steps`` steps from rest on inputs ``x`` (…, n_in) and targets (…, n_out), one presentation per row,
    broadcast to every seed's chip instance."""
    p = net.payload(x)
    seeds = net.w0.shape[0]
    shape = np.broadcast_shapes(p.shape[:-1], (seeds, 1)) if p.ndim < 3 else p.shape[:-1]
    run.reset(shape)
    trains = {"input": np.broadcast_to(p, (steps, *shape, p.shape[-1]))}
    if target is not None:
        t = net.target(target)
        trains["target"] = np.broadcast_to(t, (steps, *shape, t.shape[-1]))
    run.run(trains, steps=steps, record=())


def _score(run: SteppedRun, net: ChipNetwork, x: Any, y: Any) -> np.ndarray:
    """Host scoring of the output neurons' sums, read after the forward steps: accuracy of the largest, or
    the mean squared error."""
    run_presentations(run, net, np.asarray(x, float), None, ERROR + 1)
    o = run.states["output"]["o"]
    if net.classify:
        return (o.argmax(-1) == np.asarray(y)[None]).mean(1)
    return ((o / 2.0 ** (WEIGHT_BITS + net.sc.act) - np.asarray(y, float)[None]) ** 2).mean((1, 2))


def _signals(run: SteppedRun, net: ChipNetwork, task: Any, opts: ChipOptions, hopts: di.Options,
             entry: dict[str, Any]) -> None:  # fmt: skip
    """The chip's hidden error on the validation inputs (the network run up to the bAP) against the float
    signals of its own weights."""
    run_presentations(run, net, np.asarray(task.x_val, float), di._targets(task, task.y_val), LOOP + opts.steps)
    n = net.w0.shape[1]
    a = run.states["hidden"]["a"][..., :n]
    delta0 = run.states["output"]["delta0"]
    delta1 = run.states["hidden"]["delta1"][..., :n] / 2.0**net.sc.delta_hidden
    d0 = delta0 / 2.0**net.sc.delta_out
    w0, w1 = run.weights("W0"), run.weights("W1")
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
    """Minibatch learning in the stepped run loop: per minibatch one run of the network (forward, loop, bAP);
    weights move at each minibatch's last presentation, then the host checks the loop and writes B if repaired."""
    net = ChipNetwork(task, opts, seeds, profile)
    hopts = host_options(opts)
    lr = opts.lr or (0.01 if net.linear else 0.1)
    rules = {"W0": engine_rules(lr, opts.batch, net.sc.act, net.sc.delta_hidden),
             "W1": engine_rules(lr, opts.batch, net.sc.act, net.sc.delta_out)}  # fmt: skip
    chip_start(net, hopts, opts)
    run = SteppedRun(chip_network(net, opts, rules), (seeds, opts.batch))
    write_b(run, net.b)
    engines = [run.delivery["W0"], run.delivery["W1"]]
    x_train, t_train = np.asarray(task.x_train, float), di._targets(task, task.y_train)
    repairs = np.zeros(seeds, int)
    score = "accuracy" if net.classify else "mse"
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        worst = {"reduced": np.full(seeds, -np.inf), "loop": np.full(seeds, -np.inf)}
        order = np.stack([net.rng.permutation(len(x_train)) for _ in range(seeds)])
        for start in range(0, len(x_train), opts.batch):
            idx = order[:, start : start + opts.batch]
            run_presentations(run, net, x_train[idx], t_train[idx], LOOP + opts.steps + 1)
            before = repairs.sum()
            report = host_check(net, run.weights("W1"), hopts, opts, f"after an update in epoch {epoch}", repairs)
            if repairs.sum() != before:
                write_b(run, net.b)
            for key in worst:
                worst[key] = np.maximum(worst[key], report[key])
        w1 = run.weights("W1")
        entry: dict[str, Any] = {"epoch": epoch}
        entry[f"test_{score}"] = _score(run, net, task.x_test, task.y_test).tolist()
        entry[f"val_{score}"] = _score(run, net, task.x_val, task.y_val).tolist()
        _signals(run, net, task, opts, hopts, entry)
        report = di.stability_report(dequantised(w1[..., :-1]), dequantised(net.b), hopts)
        entry["spectral_abscissa"] = {di.LAYER: report["reduced"].tolist()}
        entry["worst_spectral_abscissa"] = {di.LAYER: worst["reduced"].tolist()}
        entry["loop_abscissa"] = {di.LAYER: report["loop"].tolist()}
        entry["worst_loop_abscissa"] = {di.LAYER: worst["loop"].tolist()}
        entry["repairs"] = repairs.tolist()
        neg_transpose = -dequantised(np.swapaxes(w1[..., :-1], 1, 2))
        entry["weight_angle_neg"] = {di.LAYER: di._angle(dequantised(net.b), neg_transpose).tolist()}
        entry["tag_saturations"] = sum(e.saturated for e in engines).tolist()
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


__all__ = ["ERROR", "FORWARD", "LOOP", "HiddenProgram", "OutputProgram", "TagEngine", "chip_network",
           "run_presentations", "train_chip", "write_b"]  # fmt: skip
