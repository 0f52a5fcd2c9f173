"""NetworkIR: the float, discrete-time network every pass and backend shares.

A network is a list of populations (groups of identical-model neurons with per-neuron parameters)
and projections (weighted connections between populations). Everything is discrete-time at the
conventions' ``dt``, so one step of every backend means the same thing.

Neuron model (the Loihi CUBA form; NIR's LIF, CubaLIF, IF, LI map onto it exactly, see
``compiler.normalize``)::

    u <- (1 - du) * u + a_in + bias_u
    v <- (1 - dv) * v + u + bias_v
    s  = v > v_th            (spiking populations only)
    v <- v_reset where s     (reset = "zero")   or   v <- v - v_th where s   (reset = "subtract")

``a_in`` is the sum over incoming projections of ``W @ s_src`` delayed by the projection's delay.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

ResetMode = Literal["zero", "subtract"]
PopulationKind = Literal["input", "cuba_lif", "cuba_li"]


@dataclass(frozen=True)
class Conventions:
    """What a NIR file leaves unsaid, stated once and stored with every artifact."""

    dt: float = 1e-4
    reset: ResetMode = "zero"
    reset_delay: bool = False
    integrator: Literal["euler"] = "euler"
    loop_delay: Literal["into_neuron"] = "into_neuron"
    source: str = "unknown"
    assumed: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        out = asdict(self)
        out["assumed"] = list(self.assumed)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Conventions:
        data = dict(data)
        data["assumed"] = tuple(data.get("assumed", ()))
        data["reset_delay"] = bool(data.get("reset_delay", False))
        data["dt"] = float(data["dt"])
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


@dataclass(eq=False)
class Population:
    """A group of neurons with per-neuron float parameters (arrays of length ``size``)."""

    name: str
    size: int
    kind: PopulationKind
    du: np.ndarray | None = None
    dv: np.ndarray | None = None
    v_th: np.ndarray | None = None
    v_reset: np.ndarray | None = None
    bias_u: np.ndarray | None = None
    bias_v: np.ndarray | None = None
    reset: ResetMode = "zero"
    source_node: str = ""

    PARAMS = ("du", "dv", "v_th", "v_reset", "bias_u", "bias_v")

    @property
    def spiking(self) -> bool:
        return self.kind == "cuba_lif"

    def params(self) -> dict[str, np.ndarray]:
        return {k: getattr(self, k) for k in self.PARAMS if getattr(self, k) is not None}


@dataclass(eq=False)
class Projection:
    """Weights ``(dst.size, src.size)`` from one population to another, with a delay in steps.

    ``delay`` counts steps between a source spike and its arrival in the target's ``a_in``; the
    backend's own synaptic latency (one step per Dense on Loihi) is added by the compiler, not here.
    """

    name: str
    src: str
    dst: str
    weight: np.ndarray
    delay: int = 0
    source_node: str = ""


@dataclass(eq=False)
class NetworkIR:
    populations: list[Population]
    projections: list[Projection]
    inputs: list[str]
    outputs: list[str]
    conventions: Conventions = field(default_factory=Conventions)

    def population(self, name: str) -> Population:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)

    def incoming(self, name: str) -> list[Projection]:
        return [p for p in self.projections if p.dst == name]

    def is_feedforward(self) -> bool:
        order = {p.name: i for i, p in enumerate(self.populations)}
        return all(order[p.src] < order[p.dst] for p in self.projections)
