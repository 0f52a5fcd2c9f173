"""GLE's chip network as a ``CoreNetwork`` that the emulator's stepped run loop executes (``emulator.stepped``).

One Euler step of GLE is one pass bottom-up through the representation neurons, then one pass top-down
through the error neurons, so every projection of the pass has delay 0 and the loop's update order is
input → rep0 → … → rep{L−1} → err{L−1} → … → err0. Populations (layer k = 0…L−1, W{k} feeding rep{k}):

- ``input``: the task's input units and a bias neuron (payload 1.0), streamed by the host; ``target``: y*;
  ``nudge``: 1 while the target is on (it switches the error neurons, and with them learning, on);
- ``rep{k}``: representation neurons (``RepresentationProgram``), hidden layers with a bias neuron after
  their units; channels "rate" (graded rates), "slope" (φ′), "hp" (PAL's r^HP), "xi" (PAL's OU noise);
- ``err{k}``: error neurons (``ErrorProgram``); channel "error" (ĕ), relays of their partner's "hp" and ξ.

Projections: ``W{k}`` (rate → soma, the engine ``TagEngine``), ``B{k}`` (error of err{k} → apical of
err{k−1}: ``TransposedEngine`` for feedback='transpose', ``PALEngine`` for 'pal', a fixed ``TagEngine`` for
'fa'), and one-to-one links between partner neurons (weight 2, exponent −1: the payload passes exactly):
``slope{k}``, ``rate_out``, ``target``, ``nudge{k}``, ``gamma{k}`` (ĕ back into rep{k} with delay 1, if γ > 0),
``hp{k}`` and ``xi{k}`` (PAL). The integer updates are ``gle_chip_parts``'; this module only wires them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.programs import Emission
from neurodeploy.rules.systems import gle_chip_parts as cp
from neurodeploy.rules.systems.gle_chip_parts import ChipGLE, Projection

PASS = 2  # a one-to-one link: weight 2 with exponent −1 delivers the payload unchanged (8-bit mixed: even)


def _port(inputs: Mapping[str, np.ndarray], name: str, like: np.ndarray) -> np.ndarray:
    """A port's summed input cut to the population's units (the loop sends nothing where a payload is all 0)."""
    x = inputs.get(name)
    return np.zeros_like(like) if x is None else x[..., : like.shape[-1]]


def _pad(x: np.ndarray, bias: bool, value: int = 0) -> np.ndarray:
    """A channel's payload over the population: the units, then the bias neuron's ``value``."""
    if not bias:
        return x
    return np.concatenate([x, np.full((*x.shape[:-1], 1), value, np.int64)], -1)


class RepresentationProgram:
    """One layer's prospective representation neurons (``gle_chip_parts.representation_layer``) as a Loihi 2
    programmable neuron; hidden layers carry a bias neuron after their units. With ``noise`` (PAL) each hidden
    neuron adds its OU state ξ to ŭ, moves ξ once per step after it was used (the move is made at the start of
    the next step, after the learning engines have drawn theirs) and keeps r^HP."""

    ports = ("soma", "error")
    channels = ("rate", "slope", "hp", "xi")

    def __init__(self, net: ChipGLE, k: int, noise: bool) -> None:
        self.net, self.k, self.noise = net, k, noise
        self.last = k == net.L - 1
        self.bias = not self.last
        self.n = net.sizes[k + 1]

    def init(self, shape: tuple[int, ...]) -> dict[str, Any]:
        unit = (*shape[:-1], self.n)
        state: dict[str, Any] = {k: np.zeros(unit, np.int64) for k in ("u", "xi", "hp", "r_prev")}
        state["started"] = False
        return state

    def step(self, state: dict[str, Any], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        net, u = self.net, state["u"]
        xi = None
        if self.noise and not self.last:
            if state["started"]:
                state["xi"] = cp.ou_step(state["xi"], net.draws.integers(0, 256, (4, *state["xi"].shape)),
                                         net.ou_decay, net.ou_gain)  # fmt: skip
            xi = state["xi"]
        err = _port(inputs, "error", u) if net.gamma is not None else None
        current = cp.drive(_port(inputs, "soma", u), err, net.gamma)
        state["u"], r, slope = cp.representation_layer(u, current, net.f[self.k], self.last, xi)
        payload = {"rate": _pad(r, self.bias, 1 << cp.POT_BITS)}
        if slope is not None:
            payload["slope"] = _pad(slope, self.bias)
        if self.noise:
            before = state["r_prev"] if state["started"] else r
            state["hp"] = cp.high_pass_step(state["hp"], r, before, net.hp_decay)
            state["r_prev"] = r
            payload["hp"] = _pad(state["hp"], self.bias)
            if xi is not None:
                payload["xi"] = _pad(xi, self.bias)
        state["started"] = True
        return Emission(payload["rate"] != 0, payload)


class ErrorProgram:
    """One layer's error neurons (``gle_chip_parts.output_error``/``hidden_error``, ``error_layer``): they
    update only while the nudge input is on (the target's phase) and then send ĕ as the third factor of their
    representation partner's W (``CoreProjection.third_factor_from``). They relay their partner's r^HP (pre
    value of PAL's B) and ξ (PAL's third factor)."""

    ports = ("apical", "slope", "rate", "target", "nudge", "hp", "xi")
    channels = ("error", "hp")

    def __init__(self, net: ChipGLE, k: int, classify: bool, pal: bool) -> None:
        self.net, self.k, self.classify, self.pal = net, k, classify, pal
        self.top = k == net.L - 1
        self.prospective = net.o.error_dynamics == "prospective"

    def init(self, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"v": np.zeros(shape, np.int64), "err": np.zeros(shape, np.int64)}

    def step(self, state: dict[str, Any], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        v = state["v"]
        on = "nudge" in inputs and bool(np.any(inputs["nudge"]))
        if on:
            if self.top:
                e = cp.output_error(_port(inputs, "target", v), _port(inputs, "rate", v), self.net.beta, self.classify)
            else:
                e = cp.hidden_error(_port(inputs, "slope", v), _port(inputs, "apical", v))
            state["v"], state["err"] = cp.error_layer(v, e, self.net.f[self.k], self.prospective)
        err = state["err"]
        payload, third = {"error": err}, {}
        if on:  # the third factor of the partner's incoming W; absent while the error compartment is off
            third["error"] = err
        if self.pal:
            payload["hp"] = _port(inputs, "hp", v)
            third["xi"] = _port(inputs, "xi", v)
        return Emission(err != 0, payload, third)


class _ProjectionEngine:
    """What every engine here shares: the weights live in the engine model ``proj``, which also delivers them."""

    proj: Projection

    @property
    def weights(self) -> np.ndarray:
        return self.proj.weights

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        return self.proj.dense(payload)


class TagEngine(_ProjectionEngine):
    """A W (or fixed B) projection held by the engine model ``gle_chip_parts.Projection``: an 8-bit register
    with an exponent, its tag and rule. Each step the post neuron's error compartment is on, y′ is rounded from
    its ĕ with the neuron's random bits, the pre values p come from the source's graded rates, and w and t take
    the engine's step (``engine_change``; skipped, as the engine may, where every product and carry is 0).

    W's post neuron is a representation neuron, and its ĕ is computed by the error neuron after it in the same
    step (on the chip, two compartments of one neuron): W's projection reads its third factor from the error
    population (``third_factor_from``)."""

    def __init__(self, proj: Projection, draws: np.random.Generator, pre_bits: int, channel: str) -> None:
        self.proj, self.draws, self.pre_bits, self.channel = proj, draws, pre_bits, channel
        self.last: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # (y′, p, uniform) of this step

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        self.last = None
        proj = self.proj
        err = post.third_factor.get("error")  # None while the error compartment is off
        if proj.rule is None or err is None:
            return False
        y = cp.y_prime(err, proj, cp.random_bits(self.draws, err.shape))
        if not y.any() and not proj.pending():  # every product and carry is 0: nothing moves
            return False
        rates = pre.payload[self.channel]
        p = cp.rate_trace(np.broadcast_to(rates, (proj.weights.shape[0], *rates.shape[1:])), self.pre_bits)
        change = cp.engine_change(proj.rule, proj.weights, proj.tag, cp.GRADED_OFFSET + p, cp.signed_y(y))
        uniform = self.draws.random(proj.weights.shape)
        proj.learn(change, uniform)
        self.last = (y, p, uniform)
        return True


class TransposedEngine(_ProjectionEngine):
    """B = Wᵀ (feedback='transpose'): W's rule with the operands' roles swapped. x1 = 64 + 8·y′ of the upper
    error neuron (the y′ its W used this step), y2/y3 = p± of the lower one's representation partner, and
    the same per-synapse rounding draws as W (the two synapse groups' generators seeded alike)."""

    def __init__(self, proj: Projection, partner: TagEngine) -> None:
        self.proj, self.partner = proj, partner

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        if self.proj.rule is None or self.partner.last is None:
            return False
        y, p, uniform = self.partner.last
        b, lower = self.proj, p[..., :-1]
        change = cp.engine_change(b.rule, b.weights, b.tag, cp.GRADED_OFFSET + 8 * y,
                                  {"y2": np.maximum(lower, 0), "y3": np.maximum(-lower, 0)})  # fmt: skip
        b.learn(change, cp.swap(uniform[..., :-1]))
        return True


class PALEngine(_ProjectionEngine):
    """B learned by PAL every step: y′ from ξ of the post neuron (relayed by its error neuron), x1 = 64 + r^HP
    of the pre neuron in 1/64, and the decay −η_bw α B as y1 = 32 in rare steps (one copy of a batch)."""

    def __init__(self, proj: Projection, draws: np.random.Generator, decay_threshold: int) -> None:
        self.proj, self.draws, self.decay_threshold = proj, draws, decay_threshold

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        b, xi = self.proj, post.third_factor["xi"]
        y = cp.signed_y(cp.y_prime(xi, b, cp.random_bits(self.draws, xi.shape)))
        if self.decay_threshold:  # one decay per step: set in the first copy of a batch only
            y["y1"] = np.zeros_like(xi)
            y["y1"][:, 0] = np.where(self.draws.integers(0, 1 << 16, xi[:, 0].shape) < self.decay_threshold,
                                     cp.DECAY_Y1, 0)  # fmt: skip
        x1 = cp.GRADED_OFFSET + cp.rate_trace(pre.payload["hp"], cp.HP_TRACE_BITS)
        b.learn(cp.engine_change(b.rule, b.weights, b.tag, x1, y), self.draws.random(b.weights.shape))
        return True


class FrozenEngine:
    """An engine's weights as they stand, for runs without learning (held-out scoring)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    @property
    def weights(self) -> np.ndarray:
        return self.engine.weights

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        return self.engine.deliver(payload)

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        return False


def _link(name: str, src: str, dst: str, n_dst: int, n_src: int, channel: str, port: str, delay: int = 0
          ) -> CoreProjection:  # fmt: skip
    """A one-to-one link between partner neurons (units only; a bias neuron gets and sends nothing)."""
    weight = PASS * np.eye(n_dst, n_src, dtype=np.int64)
    if n_src == 1:
        weight = np.full((n_dst, 1), PASS, np.int64)
    return CoreProjection(name, src, dst, weight, delay=delay, weight_exp=-1, channel=channel, port=port)


def engines(net: ChipGLE) -> dict[str, Any]:
    """The learning engines of W and B around the network's registers (one set per training run)."""
    out: dict[str, Any] = {}
    for k, proj in enumerate(net.W):
        out[proj.name] = TagEngine(proj, net.draws, net.pre_bits[k], "graded" if k == 0 else "rate")
    for k, b in net.B.items():
        if net.o.feedback == "transpose":
            out[b.name] = TransposedEngine(b, out[net.W[k].name])
        elif net.o.feedback == "pal":
            out[b.name] = PALEngine(b, net.draws, net.decay_threshold)
        else:
            out[b.name] = TagEngine(b, net.draws, cp.HIDDEN_TRACE_BITS, "error")
    return out


def chip_network(net: ChipGLE, engine: Mapping[str, Any], *, learn: bool = True, classify: bool = False,
                 noise: bool = False) -> CoreNetwork:  # fmt: skip
    """GLE as the chip holds it. ``learn=False``: the representation pass only, W's engines frozen (scoring
    from rest); ``noise``: PAL's OU noise and high-pass states in the hidden neurons."""
    L, sizes = net.L, net.sizes
    width = [sizes[k + 1] + (k < L - 1) for k in range(L)]  # units, and a bias neuron below the output
    pops = [CorePopulation("input", sizes[0] + 1, "input")]
    pops += [CorePopulation(f"rep{k}", width[k], "program", program=RepresentationProgram(net, k, noise and learn))
             for k in range(L)]  # fmt: skip
    projs = []
    for k, proj in enumerate(net.W):
        e = engine[proj.name] if learn else FrozenEngine(engine[proj.name])
        src = "input" if k == 0 else f"rep{k - 1}"
        projs.append(CoreProjection(proj.name, src, f"rep{k}", proj.weights, delay=0, weight_exp=-proj.shift,
                                    engine=e, channel="graded" if k == 0 else "rate",
                                    third_factor_from=f"err{k}" if learn else None))  # fmt: skip
    inputs = ["input"]
    if learn:
        pal = noise and net.o.feedback == "pal"
        pops += [CorePopulation("target", sizes[-1], "input"), CorePopulation("nudge", 1, "input")]
        errors = [ErrorProgram(net, k, classify, pal) for k in range(L)]
        pops += [CorePopulation(f"err{k}", sizes[k + 1], "program", program=errors[k]) for k in reversed(range(L))]
        inputs += ["target", "nudge"]
        for k, b in net.B.items():
            projs.append(CoreProjection(b.name, f"err{k}", f"err{k - 1}", b.weights, delay=0, weight_exp=-b.shift,
                                        engine=engine[b.name], channel="error", port="apical"))  # fmt: skip
        top, n_out = f"err{L - 1}", sizes[-1]
        projs += [_link("rate_out", f"rep{L - 1}", top, n_out, width[-1], "rate", "rate"),
                  _link("target", "target", top, n_out, n_out, "graded", "target")]  # fmt: skip
        for k in range(L):
            n = sizes[k + 1]
            projs.append(_link(f"nudge{k}", "nudge", f"err{k}", n, 1, "graded", "nudge"))
            if k < L - 1:
                projs.append(_link(f"slope{k}", f"rep{k}", f"err{k}", n, width[k], "slope", "slope"))
            if net.gamma is not None:
                projs.append(_link(f"gamma{k}", f"err{k}", f"rep{k}", width[k], n, "error", "error", delay=1))
            if pal and k >= 1:
                projs.append(_link(f"hp{k}", f"rep{k}", f"err{k}", n, width[k], "hp", "hp"))
            if pal and k < L - 1:
                projs.append(_link(f"xi{k}", f"rep{k}", f"err{k}", n, width[k], "xi", "xi"))
    return CoreNetwork(pops, projs, inputs, [f"rep{L - 1}"], numerics="loihi")


def stream(payload: np.ndarray) -> np.ndarray:
    """Input payloads (time, *batch, n_in) with the bias neuron's 1.0 after them, as the input population sends."""
    return cp.with_bias(np.asarray(payload, np.int64))


__all__ = ["ErrorProgram", "FrozenEngine", "PALEngine", "RepresentationProgram", "TagEngine", "TransposedEngine",
           "chip_network", "engines", "stream"]  # fmt: skip
