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

With a refractory period of k steps (``Conventions.refractory``), v is held at v_reset for the k steps
after a spike, and the neuron cannot fire during them; u keeps integrating.

That reset is ``reset_rule = "nir"``. snnTorch resets differently (``"snntorch"``, ``"snntorch_leaky"``):
the reset signal r = v_prev > v_th comes from the membrane stored at the end of the previous step and
acts inside the update, before the spike test; with ``reset_delay=False`` the spiking step then
subtracts (or clears) once more, minus what r already did::

    v_prev <- 0 where r                                  (zero reset, "snntorch_leaky" only: Leaky)
    v' = (1 - dv) * v_prev + u + bias_v
    v' <- v' - v_th where r  (subtract)    v' <- 0 where r  (zero, "snntorch": Synaptic, RLeaky, RSynaptic)
    s  = v' > v_th
    reset_delay:  v <- v'
    otherwise:    v <- v' - (s - r) * v_th  (subtract)    v <- v' - (s - r) * v'  (zero)

snnTorch has no reset potential, so the snnTorch rules require v_reset = 0.

``a_in`` is the sum over incoming projections of ``W @ s_src`` delayed by the projection's delay.
Weights are dense numpy arrays or, for large conv layers, scipy.sparse CSR (see ``compiler.weights``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np

from neurodeploy.emulator.network import Readout

ResetMode = Literal["zero", "subtract"]
ResetRule = Literal["nir", "snntorch", "snntorch_leaky"]
RESET_RULES = ("nir", "snntorch", "snntorch_leaky")
LoopDelay = Literal["into_neuron", "out_of_neuron"]
LOOP_DELAYS = ("into_neuron", "out_of_neuron")
PopulationKind = Literal["input", "cuba_lif", "cuba_li"]


@dataclass(frozen=True)
class Conventions:
    """What a NIR file leaves unsaid, stated once and stored with every artifact."""

    dt: float = 1e-4
    reset: ResetMode = "zero"
    reset_delay: bool = False
    # How the reset acts (see the module docstring); a neuron node's metadata ``neurodeploy.reset_rule`` /
    # ``neurodeploy.reset_delay`` overrides these per population. NIR files without it: "nir".
    reset_rule: ResetRule = "nir"
    integrator: Literal["euler"] = "euler"
    # Where a loop's one-step delay sits. Observable only through a bias inside the loop: "into_neuron"
    # (nirtorch, Norse) delivers the loop's linear output of step t - 1, so that bias is missing at step 0;
    # "out_of_neuron" (snnTorch's RLeaky/RSynaptic: recurrent(spk_prev) + b) delays the spikes only.
    loop_delay: LoopDelay = "into_neuron"
    # Steps after a spike during which a neuron's membrane is held at its reset value (NIR has no such
    # field; 0: none). Runs on profiles whose ``refractory`` capability is true.
    refractory: int = 0
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
        data["reset_rule"] = str(data.get("reset_rule", "nir"))  # artifacts written before the rule existed
        data["dt"] = float(data["dt"])
        data["refractory"] = int(data.get("refractory", 0))  # artifacts written before it was recorded
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
    reset_rule: ResetRule = "nir"
    reset_delay: bool = False
    refractory: np.ndarray | None = None  # steps held at v_reset after a spike (``Conventions.refractory``)
    shape: tuple[int, ...] = ()  # inputs: the graph's own shape, e.g. (C, H, W); () when flat

    PARAMS = ("du", "dv", "v_th", "v_reset", "bias_u", "bias_v", "refractory")

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
    weight: np.ndarray  # or scipy.sparse.csr_matrix
    delay: int = 0
    source_node: str = ""


@dataclass(eq=False)
class NetworkIR:
    populations: list[Population]
    projections: list[Projection]
    inputs: list[str]
    outputs: list[str]
    conventions: Conventions = field(default_factory=Conventions)
    readouts: list[Readout] = field(default_factory=list)  # stateless tails before an Output, run on the host

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
