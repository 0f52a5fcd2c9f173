"""The chip version of AR and PC as a ``CoreNetwork`` that the emulator's stepped run loop (``emulator.stepped``)
executes: the integer neurons of ``relaxation_chip`` as Loihi 2 programmable neurons, its Dense synapses as
projections and its learning engine as the plastic projections' ``Engine``.

One presentation is ``steps + 1`` loop steps. Step 0: the forward pass goes through the layers inside the step
(delay-0 projections from the input and the bias neurons), each hidden neuron starts its relaxing node (AR: minus
its activity, PC: 0) and the output neurons form e_L from the target input. Steps 1…steps: every relaxing node
takes one step from what the layer above sent the step before (B: one step of Dense latency). At the last step
every neuron sends its error δ and its activity to the engine (third factors y1…y3), and each plastic projection
takes its one engine epoch of the presentation. The host writes the y1 gate (a minibatch's last presentation)
into the neurons before a presentation and reads the output neurons' sums, activities and errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.programs import Emission
from neurodeploy.emulator.stepped import SteppedRun
from neurodeploy.errors import NeurodeployError
from neurodeploy.rules.systems.inversion_chip import lookup, shift_round
from neurodeploy.rules.systems.relaxation_chip import (
    DELTA_HIDDEN,
    DELTA_OUT,
    MESSAGE_BITS,
    MESSAGE_MAX,
    MOVE_GATE,
    PAYLOAD,
    RATE_BITS,
    SIGMOID,
    STATE_BITS,
    STATE_MAX,
    WEIGHT_BITS,
    ChipNet,
    Engine,
    _present,
)

TARGET_WEIGHT, TARGET_EXP = 2, -1  # the target input's identity Dense: 2·2^-1 = 1 on the 8-bit even-integer grid


def relax_message(s: np.ndarray) -> np.ndarray:
    """A relaxing node's payload: the 2^-14 state in units of 2^-11, clipped to 16 bits."""
    return np.clip(shift_round(s, STATE_BITS - MESSAGE_BITS), -MESSAGE_MAX, MESSAGE_MAX)


def _third(delta: np.ndarray, move: bool) -> dict[str, np.ndarray]:
    return {"y1": np.full(delta.shape, MOVE_GATE if move else 0, np.int64), "y2": np.maximum(delta, 0),
            "y3": np.maximum(-delta, 0)}  # fmt: skip


class LayerProgram:
    """A hidden ReLU (or linear) neuron with its relaxing node (AR: −x_l, PC: ε_l) as a programmable neuron.

    Ports: "soma" (the forward sum Σ w·p, used at a presentation's first step) and "feedback" (B's sum of the
    layer above's relaxation payloads). Channels: "activity" (8-bit payload, at the first and the last step),
    "relax" (16-bit payload every step) and "delta" (the error δ at the last step). ``move`` is the y1 gate
    register the host writes before a minibatch's last presentation.
    """

    ports = ("soma", "feedback")
    channels = ("activity", "relax", "delta")

    def __init__(self, system: str, relu: bool, shift: int, act: int, c: int, derivative: bool, steps: int,
                 start: str) -> None:  # fmt: skip
        self.system, self.relu, self.shift, self.act, self.c = system, relu, shift, act, c
        self.derivative, self.steps, self.start, self.move = derivative, int(steps), start, False

    def init(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        state = {k: np.zeros(shape, np.int64) for k in ("p", "gate", "s")}
        state["k"] = np.zeros((), np.int64)  # steps since the presentation began
        return state

    def step(self, state: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        k = int(state["k"])
        payload: dict[str, np.ndarray] = {}
        if k == 0:
            a = np.asarray(inputs.get("soma", np.zeros_like(state["s"])), np.int64)
            state["gate"] = (a > 0).astype(np.int64) if self.relu else np.ones_like(a)
            state["p"] = np.clip(shift_round(np.maximum(a, 0) if self.relu else a, self.shift), *PAYLOAD)
            start = self.system == "ar" and self.start == "forward"
            state["s"] = -(state["p"] << (STATE_BITS - self.act)) if start else np.zeros_like(state["p"])
            payload["activity"] = state["p"]
        else:
            drive = shift_round(inputs.get("feedback", np.zeros((), np.int64)), WEIGHT_BITS + MESSAGE_BITS - STATE_BITS)
            if self.system == "pc" and self.derivative:
                drive = drive * state["gate"]
            s = state["s"]
            state["s"] = np.clip(s + shift_round(self.c * (drive - s), RATE_BITS), -STATE_MAX, STATE_MAX)
        gated = self.system == "ar" and self.derivative
        payload["relax"] = relax_message(state["s"] * state["gate"] if gated else state["s"])
        third: dict[str, np.ndarray] = {}
        if k == self.steps:
            error = state["s"] * state["gate"] if self.system == "ar" else state["s"]
            payload["delta"] = np.clip(shift_round(error, STATE_BITS - DELTA_HIDDEN), *PAYLOAD)
            payload["activity"] = state["p"]
            third = _third(payload["delta"], self.move)
        state["k"] = state["k"] + 1
        return Emission(payload["relax"] != 0, payload, third)


class OutputProgram:
    """An output neuron: holds its sum o, forms e_L = t − σ(o) (257-entry table) or t − o from the target input,
    and sends e_L, clamped, as its relaxation payload every step and as its error δ at the last step."""

    ports = ("soma", "target")
    channels = ("sum", "relax", "delta")

    def __init__(self, classify: bool, shift: int, steps: int) -> None:
        self.classify, self.shift, self.steps, self.move = classify, shift, int(steps), False

    def init(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {"e": np.zeros(shape, np.int64), "k": np.zeros((), np.int64)}

    def step(self, state: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        k = int(state["k"])
        payload: dict[str, np.ndarray] = {}
        if k == 0:
            o = np.asarray(inputs.get("soma", np.zeros_like(state["e"])), np.int64)
            target = np.asarray(inputs.get("target", np.zeros_like(state["e"])), np.int64)
            out = lookup(SIGMOID, o, self.shift - 4) if self.classify else shift_round(o, self.shift - DELTA_OUT)
            state["e"] = np.clip(target - out, *PAYLOAD)
            payload["sum"] = o
        payload["relax"] = relax_message(state["e"] << (STATE_BITS - DELTA_OUT))
        third: dict[str, np.ndarray] = {}
        if k == self.steps:
            payload["delta"] = state["e"]
            third = _third(state["e"], self.move)
        state["k"] = state["k"] + 1
        return Emission(payload["relax"] != 0, payload, third)


class BiasProgram:
    """A layer's bias neuron: sends the payload of activity 1.0 when the layer's neurons send theirs, at a
    presentation's first step (the forward pass) and its last (the engine's pre trace)."""

    ports: tuple[str, ...] = ()
    channels = ("activity",)

    def __init__(self, value: int, steps: int) -> None:
        self.value, self.steps = int(value), int(steps)

    def init(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        return {"one": np.full(shape, self.value, np.int64), "k": np.zeros((), np.int64)}

    def step(self, state: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        k = int(state["k"])
        state["k"] = state["k"] + 1
        if k in (0, self.steps):
            return Emission(np.ones(state["one"].shape, bool), {"activity": state["one"]})
        return Emission(np.zeros(state["one"].shape, bool))


def _apply(w: np.ndarray, payload: np.ndarray) -> np.ndarray:
    """Σ w·payload per seed (w: seeds, n_post, n_pre; payload: seeds, *batch, n_pre), exact below 2^53."""
    x = np.asarray(payload, dtype=np.float64)
    flat = x.reshape(w.shape[0], -1, x.shape[-1])
    out = np.matmul(flat, np.swapaxes(w, -1, -2).astype(np.float64))
    return out.reshape(*x.shape[:-1], w.shape[-2]).astype(np.int64)


class WeightEngine:
    """One plastic projection of the module's ``Engine``: W_l (its neurons' part; the bias column is
    ``BiasColumn``) or B_l. It takes its engine epoch when the post neurons send their third factors (a
    presentation's last step): W_l with x1/x2 = the pre activity± (and the bias neuron's), y2/y3 = δ±; B_l with
    x1/x2 = δ± of the layer above, y2/y3 = the post neurons' activity±, and W_{l+1}'s rounding draws transposed."""

    def __init__(self, engine: Engine, kind: str, layer: int, channel: str) -> None:
        self.engine, self.kind, self.layer, self.channel = engine, kind, layer, channel
        self.bias_payload: np.ndarray | None = None  # the bias neuron's payload, handed over by ``BiasColumn``

    @property
    def plastic(self) -> Any:
        return self.engine.W[self.layer] if self.kind == "W" else self.engine.B[self.layer]

    @property
    def weights(self) -> np.ndarray:
        w = self.plastic.weights
        return w[..., :-1] if self.kind == "W" else w

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        return _apply(self.weights, payload)

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        if "y2" not in post.third_factor:
            return False
        move = bool(np.any(post.third_factor["y1"]))
        eng = self.engine
        if self.kind == "W":
            p = np.concatenate([pre.payload[self.channel], self.bias_payload], -1)
            u = eng.rng.random(self.plastic.weights.shape)
            eng.draws[self.layer] = u
            eng.saturated += _present(self.plastic, p, post.third_factor["y2"] - post.third_factor["y3"], move, u)
        else:
            u_b = np.swapaxes(eng.draws[self.layer + 1][..., :-1], -1, -2)
            eng.saturated += _present(self.plastic, pre.payload["delta"], post.payload["activity"], move, u_b)
        return True


class BiasColumn:
    """The bias neuron's synapses: the last column of W_l's learning Dense, learned by W_l's engine epoch."""

    def __init__(self, owner: WeightEngine) -> None:
        self.owner = owner

    @property
    def weights(self) -> np.ndarray:
        return self.owner.plastic.weights[..., -1:]

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        return _apply(self.weights, payload)

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        if "activity" in pre.payload:
            self.owner.bias_payload = pre.payload["activity"]
        return False


class FrozenWeights:
    """A projection's weights as they stand, without an engine epoch: the network for a measuring pass."""

    def __init__(self, weights: np.ndarray) -> None:
        self.weights = weights

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        return _apply(self.weights, payload)

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        return False


def layer_names(n: int) -> list[str]:
    """Population names: the input "x", hidden "h1"…, the output "out"."""
    return ["x"] + [f"h{i}" for i in range(1, n)] + ["out"]


def chip_network(net: ChipNet, engine: Engine | None, steps: int | None = None) -> CoreNetwork:
    """The network as the chip holds it: input and target populations, a program population per hidden layer
    and for the output, a bias neuron per layer; W_l (plastic, with its bias column) forward within a step,
    B_l (plastic unless fixed) one layer down with one step of latency, the target through an identity Dense.
    Without ``engine`` every projection keeps ``net``'s weights as they stand (a pass that measures, no learning);
    ``steps`` overrides the relaxation's steps per presentation."""
    n, opts = len(net.W), net.opts
    steps = opts.steps if steps is None else int(steps)
    names = layer_names(n)
    start = getattr(opts, "start", "forward")
    pops = [CorePopulation("x", net.sizes[0], "input"), CorePopulation("target", net.sizes[-1], "input")]
    pops += [CorePopulation(f"bias{l}", 1, "program", program=BiasProgram(net.bias[l], steps)) for l in range(n)]
    for i in range(1, n):
        prog = LayerProgram(net.system, net.relu, WEIGHT_BITS + net.acts[i - 1] - net.acts[i], net.acts[i], net.c,
                            opts.backward_derivative, steps, start)  # fmt: skip
        pops.append(CorePopulation(names[i], net.sizes[i], "program", program=prog))
    pops.append(CorePopulation("out", net.sizes[-1], "program", program=OutputProgram(net.classify,
                               WEIGHT_BITS + net.acts[-1], steps)))  # fmt: skip
    if engine is not None:
        engine.draws = {}
        w_engines: list[Any] = [WeightEngine(engine, "W", l, "graded" if l == 0 else "activity") for l in range(n)]
        columns: list[Any] = [BiasColumn(w) for w in w_engines]
        b_engines: list[Any] = [WeightEngine(engine, "B", b, "relax") if engine.learn_b else None
                                for b in range(n - 1)]  # fmt: skip
    else:
        w_engines = [FrozenWeights(w[..., :-1]) for w in net.W]
        columns = [FrozenWeights(w[..., -1:]) for w in net.W]
        b_engines = [FrozenWeights(b) for b in net.B]
    projs = [CoreProjection(f"b{l}", f"bias{l}", names[l + 1], net.W[l][..., -1:], delay=0, channel="activity",
                            engine=columns[l]) for l in range(n)]  # fmt: skip
    eye = TARGET_WEIGHT * np.eye(net.sizes[-1], dtype=np.int64)
    projs.append(CoreProjection("target", "target", "out", eye, delay=0, weight_exp=TARGET_EXP, channel="graded",
                                port="target"))  # fmt: skip
    for l in range(n):  # the engine's order: W_l, then B_{l−1} with W_l's draws
        projs.append(CoreProjection(f"W{l + 1}", names[l], names[l + 1], net.W[l][..., :-1], delay=0,
                                    channel="graded" if l == 0 else "activity", engine=w_engines[l]))  # fmt: skip
        if l:
            projs.append(CoreProjection(f"B{l}", names[l + 1], names[l], net.B[l - 1], delay=1, channel="relax",
                                        port="feedback", engine=b_engines[l - 1]))  # fmt: skip
    return CoreNetwork(pops, projs, ["x", "target"], ["out"], numerics="loihi")


def set_move(run: SteppedRun, move: bool) -> None:
    """The host's write of the y1 gate register: set before a minibatch's last presentation, cleared after."""
    for pop in run.net.populations:
        if isinstance(pop.program, (LayerProgram, OutputProgram)):
            pop.program.move = move


def present(run: SteppedRun, net: ChipNet, p_in: np.ndarray, target: np.ndarray, move: bool,
            steps: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:  # fmt: skip
    """One sample (seeds, n) through the network, its engine epochs included (or, without engines, a batch
    (seeds, batch, n) side by side). Returns what the host reads at the last step: the payloads p_0…p_{L−1}
    and the errors δ_1…δ_L. ``steps``: the network's relaxation steps, if not the options'."""
    steps = net.opts.steps if steps is None else int(steps)
    run.reset(p_in.shape[:-1])
    set_move(run, move)
    t = np.rint(np.asarray(target, float) * (1 << DELTA_OUT)).astype(np.int64)
    x = np.zeros((steps + 1, *p_in.shape), np.int64)  # the input neurons send the sample with the layers' activities
    x[0] = x[-1] = p_in
    names = layer_names(len(net.W))
    rec = run.run({"x": x, "target": t[None]}, steps=steps + 1, record=("activity", "delta"), populations=names[1:])
    set_move(run, False)
    if any((np.abs(run.states[h]["s"]) >= STATE_MAX).any() for h in names[1:-1]):
        raise NeurodeployError(f"the {net.system} relaxation saturated its 24-bit states at rate "
                               f"{net.opts.rate}", "rate", "lower rate, or lr / init_gain")  # fmt: skip
    p = [np.asarray(p_in)] + [rec["activity"][h][-1] for h in names[1:-1]]
    return p, [rec["delta"][h][-1] for h in names[1:]]


def output_sums(run: SteppedRun, net: ChipNet, p_in: np.ndarray) -> np.ndarray:
    """The output neurons' sums for a batch of samples (seeds, batch, n_in): one forward step of the network,
    no engine epoch (no neuron sends its third factors)."""
    run.reset(p_in.shape[:-1])
    rec = run.run({"x": p_in[None]}, steps=1, record=("sum",), populations=["out"])
    return rec["sum"]["out"][0]


__all__ = ["BiasColumn", "BiasProgram", "FrozenWeights", "LayerProgram", "OutputProgram", "WeightEngine",
           "chip_network", "layer_names", "output_sums", "present", "relax_message", "set_move"]  # fmt: skip
