"""Programmable neurons and engine-plastic projections: what the step-by-step run loop executes.

Loihi 2's neurons are small programs (microcode) rather than one fixed LIF: a neuron may keep several
integer compartments, look values up in a table, draw random numbers and send a graded spike (a 24-bit
payload) instead of a 1-bit event. The learning systems of ``neurodeploy.rules.systems`` need exactly
that (prospective neurons, dendrites, escape-noise samplers). A ``NeuronProgram`` is one such model in
integer arithmetic; a ``CorePopulation`` with ``model="program"`` runs it.

A program sees, per step, the summed synaptic input of each of its input ports (dendrites: "soma",
"apical", ...) and returns an ``Emission``: its spikes (which the learning engine's traces count), the
graded payloads it sends on its output channels, and the third factors y1…y3 it hands to the plastic
synapses it receives. Projections name the channel they carry (``CoreProjection.channel``) and the port
they feed (``CoreProjection.port``).

A plastic projection carries an ``Engine``: an object holding the weights that delivers input from them
and takes one learning step per time step (``emulator.plasticity.PlasticDense`` is Lava's
LearningDense; the systems add their own engine rules, such as a tag with a carry).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

SPIKES = "spikes"  # the channel every population has: its 1-bit events


@dataclass
class Emission:
    """What a population sends in one step: spikes, graded payloads per channel, third factors."""

    spikes: np.ndarray  # (*batch, n) bool
    payload: dict[str, np.ndarray] = field(default_factory=dict)  # channel -> (*batch, n) int64 or float
    third_factor: dict[str, np.ndarray] = field(default_factory=dict)  # y1...y3 for incoming plastic synapses


@runtime_checkable
class NeuronProgram(Protocol):
    """A programmable neuron model: integer state per neuron, one ``step`` per time step."""

    ports: tuple[str, ...]  # input compartments projections may feed
    channels: tuple[str, ...]  # graded outputs besides "spikes"

    def init(self, shape: tuple[int, ...]) -> dict[str, np.ndarray]:
        """The state at rest for neurons shaped ``(*batch, n)``."""
        ...

    def step(self, state: dict[str, np.ndarray], inputs: Mapping[str, np.ndarray], t: int) -> Emission:
        """Advance ``state`` in place by one step given each port's summed input (missing ports: no input)."""
        ...


@runtime_checkable
class Engine(Protocol):
    """The weights of a plastic projection and the learning engine that moves them."""

    weights: np.ndarray

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        """Synaptic input (*batch, n_post) from the source's channel (*batch, n_pre), weights as they stand."""
        ...

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        """One step of the engine after both ends have stepped; returns whether the weights changed."""
        ...


class LoihiEngine:
    """``PlasticDense`` (Lava's LearningDense) as an ``Engine``: traces from the ends' spikes, y1…y3 from the
    post neuron's third factors, optional connectivity ``mask`` (synapses outside it do not exist)."""

    def __init__(self, plastic: Any, mask: np.ndarray | None = None) -> None:
        self.plastic, self.mask = plastic, mask

    @property
    def weights(self) -> np.ndarray:
        return self.plastic.weights

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        from neurodeploy.emulator.loihi import shift_by_exp

        w = self.plastic.weights.astype(np.float64)
        acc = np.matmul(w, np.asarray(payload, dtype=np.float64)[..., None])[..., 0]  # exact below 2^53
        return shift_by_exp(acc.astype(np.int64), self.plastic.weight_exp)

    def learn(self, pre: Emission, post: Emission, t: int) -> bool:
        third = post.third_factor if self.plastic.rule.three_factor else None
        changed = self.plastic.step(pre.spikes, post.spikes, third)
        if changed and self.mask is not None:
            self.plastic.weights[..., ~self.mask] = 0
        return changed


@dataclass
class StaticDelivery:
    """A static projection's weights and how the core applies them (Loihi: integer sum, weight exponent)."""

    weight: np.ndarray
    weight_exp: int = 0
    integer: bool = True

    def deliver(self, payload: np.ndarray) -> np.ndarray:
        x = np.asarray(payload, dtype=np.float64)
        w = np.asarray(self.weight, dtype=np.float64)
        lead = w.shape[:-2]
        if lead and x.ndim - 1 > len(lead):  # per-instance weights (*instances, n, m) count as (*instances, 1)
            w = w.reshape(*lead, *(1,) * (x.ndim - 1 - len(lead)), *w.shape[-2:])
        acc = np.matmul(w, x[..., None])[..., 0]
        if not self.integer:
            return acc
        from neurodeploy.emulator.loihi import shift_by_exp

        return shift_by_exp(acc.astype(np.int64), self.weight_exp)


__all__ = ["SPIKES", "Emission", "Engine", "LoihiEngine", "NeuronProgram", "StaticDelivery"]
