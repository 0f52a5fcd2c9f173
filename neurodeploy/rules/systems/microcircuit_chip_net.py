"""The integer microcircuit compiled as a ``CoreNetwork`` and run by the emulator's stepped run loop.

The neurons of ``microcircuit_chip`` become ``NeuronProgram``s (pyramids p1…pL, interneurons i0…), its learned
synapses ``CoreProjection``s whose ``Engine`` is the module's ``Plastic`` model (tag and carry rule), and the
layer above's potential reaches an interneuron through a static one-to-one Dense. The host presents the
patterns: before each pattern it writes the target potential into the output neurons' bias and the pattern's
onset flag into the neurons that keep a high-pass state; for scoring it turns the OU noise and the learning
engine off (one register, ``ChipMicrocircuit.training``).

Random numbers: the network's one generator (``ChipMicrocircuit.draws``, standing in for the chip's) is read
in a fixed order per step: the hidden pyramids' OU draws as they step, then, at the learning step, each plastic
projection's third-factor rounding bits (and B's decay draw) in projection order: W_up bottom first, then
W_IP, W_PI, B per layer. The post neuron hands its signed value (φ(u) − φ(v̂), v_api or ξ) as the third factor;
its engine rounds it to y′ (``microcircuit_chip.third_factor``) with those bits.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.programs import Emission
from neurodeploy.emulator.stepped import SteppedRun
from neurodeploy.rules.systems import microcircuit_chip as chip
from neurodeploy.rules.systems.microcircuit_chip import (
    DECAY_Y1,
    ChipMicrocircuit,
    Plastic,
    high_pass_step,
    hp_trace,
    mix,
    ou_step,
    phi,
    rate_trace,
    split,
)


def _port(inputs: Mapping[str, np.ndarray], name: str, like: np.ndarray) -> np.ndarray:
    """A port's summed input; a port that received nothing this step holds zero."""
    return inputs[name] if name in inputs else np.zeros_like(like)


class PyramidProgram:
    """A pyramidal neuron of layer ``layer`` ≥ 1 (the top one is the output neuron) as a Loihi 2 program.

    Ports: "basal" (W_up from the layer below, this step), "apical" (B from the layer above and W_PI from the
    interneurons, both the step before). Channels: "rate" φ(u) in 2^-16, "potential" u in 2^-12 (for the
    interneurons), "hp" the high-pass state r^HP (B's pre trace). Third factors: "err" = φ(u) − φ(v̂) for
    W_up, "api" = v_api for W_PI, "xi" = ξ for B. The output neuron is nudged by the target the host writes
    into ``state["target"]`` (its bias); ``state["onset"]``, written by the host at a pattern's first step,
    makes the high-pass state skip the jump between patterns.
    """

    ports = ("basal", "apical")
    channels = ("rate", "potential", "hp")

    def __init__(self, net: ChipMicrocircuit, layer: int) -> None:
        self.net, self.layer = net, layer
        self.output = layer == len(net.sizes) - 1
        self.upper = layer >= 2  # the pre neuron of B_{layer − 2}: keeps r^HP

    def init(self, shape: tuple[int, ...]) -> dict[str, Any]:
        names = ("r",) + (() if self.output else ("xi",)) + (("hp",) if self.upper else ())
        return {k: np.zeros(shape, dtype=np.int64) for k in names}

    def step(self, state: dict[str, Any], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        net, g = self.net, self.net.g
        v_bas = _port(inputs, "basal", state["r"])
        if self.output:
            free = mix([(g["b_free"], v_bas)])
            target = state.get("target")
            u = free if target is None else mix([(g["b_nudged"], v_bas), (g["som"], target)])
            v_hat, third = free, {}
        else:
            if net.training and net.o.sigma > 0:
                draws = net.draws.integers(0, 256, (4, *state["xi"].shape))
                state["xi"] = ou_step(state["xi"], draws, net.ou_decay, net.ou_gain)
            api = _port(inputs, "apical", state["r"])
            u = mix([(g["b"], v_bas), (g["a"], api)]) + state["xi"]
            v_hat, third = mix([(g["b"], v_bas)]), {"api": api, "xi": state["xi"]}
        r = phi(u)
        third["err"] = r - phi(v_hat)
        payload = {"rate": r, "potential": u}
        if self.upper:
            onset = state.pop("onset", False)
            state["hp"] = high_pass_step(state["hp"], r, r if onset else state["r"], net.hp_decay)
            payload["hp"] = state["hp"]
        state["r"] = r
        return Emission(r != 0, payload, third)


class InterneuronProgram:
    """An interneuron of layer ``k``: "dendrite" (W_IP from pyramids k + 1, this step) and "soma" (the potential
    of pyramids k + 2, this step, which nudges it). Channel "rate"; third factor "err" = φ(u) − φ(v_dend)."""

    ports = ("dendrite", "soma")
    channels = ("rate",)

    def __init__(self, net: ChipMicrocircuit) -> None:
        self.net = net

    def init(self, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"r": np.zeros(shape, dtype=np.int64)}

    def step(self, state: dict[str, Any], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        g = self.net.g
        v_dend = _port(inputs, "dendrite", state["r"])
        r = phi(mix([(g["d"], v_dend), (g["som_i"], _port(inputs, "soma", state["r"]))]))
        state["r"] = r
        return Emission(r != 0, {"rate": r}, {"err": r - phi(mix([(g["d_free"], v_dend)]))})


class PlasticEngine:
    """A learned projection's ``Plastic`` model as an ``Engine``.

    It delivers the graded rates with its 9-bit weights (the tag takes no part). Its pre trace x1 is the rate
    that arrived this step (``rate_trace``; delayed projections learn from what they delivered), B's the pre
    neuron's r^HP (``hp_trace``). ``value`` names the post neuron's third factor; the engine rounds it to y′
    with bits from the network's generator, drawn also when the rule is empty (W_up, W_IP, W_PI), as the
    integer network always drew them; B without a rule draws nothing.
    """

    def __init__(self, plastic: Plastic, net: ChipMicrocircuit, value: str) -> None:
        self.plastic, self.net, self.value = plastic, net, value
        self.arrived: np.ndarray | None = None

    @property
    def weights(self) -> np.ndarray:
        return self.plastic.weights

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        self.arrived = payload
        return self.plastic.dense(payload)

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        arrived, self.arrived = self.arrived, None
        net, pl = self.net, self.plastic
        if not net.training or (self.value == "xi" and pl.rule is None):
            return False
        value = post.third_factor[self.value]
        y = split(chip.third_factor(value, pl.gain, net.bits(value.shape)))
        if self.value == "xi":  # B: PAL's decay, y1 = 32 in rare steps
            y["y1"] = np.where(net.draws.integers(0, 1 << 16, value.shape) < net.decay_threshold, DECAY_Y1, 0)
            x1 = hp_trace(pre.payload["hp"])
        else:
            x1 = rate_trace(arrived if arrived is not None else np.zeros(pre.spikes.shape, dtype=np.int64))
        pl.learn(x1, y)
        return pl.rule is not None


def chip_network(net: ChipMicrocircuit) -> CoreNetwork:
    """Input p0 (the pattern's rates as graded spikes), pyramids p1…pL and interneurons i0… as programs;
    W_up (delay 0, basal), W_IP (delay 0, dendrite), W_PI and B (delay 1, apical) as engine projections, and
    up0… (the upper soma's potential, delay 0, one-to-one, weight 2 with exponent −1) as static Dense."""
    sizes, depth, p = net.sizes, net.depth, net.plastic
    pops = [CorePopulation("p0", sizes[0], "input")]
    pops += [CorePopulation(f"p{k}", n, "program", program=PyramidProgram(net, k)) for k, n in enumerate(sizes) if k]
    pops += [CorePopulation(f"i{k}", sizes[k + 2], "program", program=InterneuronProgram(net)) for k in range(depth)]

    def engine(name: str, delay: int, channel: str, port: str, value: str) -> CoreProjection:
        src, dst = ChipMicrocircuit._ends(name)
        return CoreProjection(name, src, dst, p[name].weights, delay=delay, channel=channel, port=port,
                              engine=PlasticEngine(p[name], net, value))  # fmt: skip

    projs = [engine(f"w{k}", 0, "graded" if k == 0 else "rate", "basal", "err") for k in range(depth + 1)]
    for k in range(depth):  # the learning order: W_IP, W_PI, B per layer after every W_up
        projs += [engine(f"ip{k}", 0, "rate", "dendrite", "err"), engine(f"pi{k}", 1, "rate", "apical", "api"),
                  engine(f"b{k}", 1, "rate", "apical", "xi"),
                  CoreProjection(f"up{k}", f"p{k + 2}", f"i{k}", 2 * np.eye(sizes[k + 2], dtype=np.int64), delay=0,
                                 weight_exp=-1, channel="potential", port="soma")]  # fmt: skip
    return CoreNetwork(pops, projs, ["p0"], [f"p{len(sizes) - 1}"], numerics="loihi")


def present(run: SteppedRun, net: ChipMicrocircuit, rates: np.ndarray, target: np.ndarray, steps: int) -> None:
    """One pattern: the host writes the target into the output neurons' bias and the onset flag into the
    neurons with a high-pass state, then the loop runs ``steps`` steps of the rates (seeds, batch, n_in)."""
    top = len(net.sizes) - 1
    run.states[f"p{top}"]["target"] = target
    for k in range(2, top + 1):
        run.states[f"p{k}"]["onset"] = True
    run.run({"p0": np.broadcast_to(rates, (steps, *rates.shape))}, steps=steps, record=())


def predict(run: SteppedRun, net: ChipMicrocircuit, rates: np.ndarray) -> np.ndarray:
    """Output potentials after ``settle_steps`` with the noise and the engine off and no target."""
    net.training = False
    try:
        run.reset(rates.shape[:-1])
        run.run({"p0": np.broadcast_to(rates, (net.o.settle_steps, *rates.shape))}, record=())
        return run.emission(f"p{len(net.sizes) - 1}").payload["potential"]
    finally:
        net.training = True


__all__ = ["InterneuronProgram", "PlasticEngine", "PyramidProgram", "chip_network", "predict", "present"]
