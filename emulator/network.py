"""CoreNetwork: what a backend executes, already in the chip's number formats.

The compiler lowers a float ``NetworkIR`` into a ``CoreNetwork``; the emulator, the Lava adapter and the
board adapter all consume this one structure, so they cannot disagree about what was compiled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

# "loihi": Lava 0.10 fixed-point CUBA LIF + Dense (integer params);
# "float": the same equations in float64 (ideal profile, reference numerics);
# "xylo" / "xylo_output": SynSense Xylo hidden / output IAF neurons (``emulator.xylo``).
# "program": a Loihi 2 programmable neuron (``emulator.programs.NeuronProgram``, set as ``program``)
CoreModel = Literal["input", "loihi", "float", "xylo", "xylo_output", "program"]
SignMode = Literal["mixed", "excitatory", "inhibitory"]

LOIHI_PARAMS = ("du", "dv", "vth", "bias_mant", "bias_exp")
FLOAT_PARAMS = ("du", "dv", "v_th", "v_reset", "bias_u", "bias_v")
XYLO_PARAMS = ("dash_syn", "dash_mem", "threshold")  # required; dash_syn2, bias and alias are optional


@dataclass(eq=False)
class CorePopulation:
    """Neurons of one model with per-neuron parameters.

    Parameters are arrays of shape ``(size,)`` or with leading batch axes, e.g. ``(instances, 1, size)``
    for sampled chip instances (mismatch) run on inputs ``(time, samples, size)``; they broadcast against
    the batch like numpy arrays, so instances need no special path. ``scale`` is the compiler's voltage
    scale: float 1.0 in the
    reference equals ``scale * 2**6`` in a Loihi v register.
    """

    name: str
    size: int
    model: CoreModel
    params: dict[str, np.ndarray] = field(default_factory=dict)
    reset: Literal["zero", "subtract"] = "zero"
    spiking: bool = True
    scale: float = 1.0
    lag: int | None = None  # steps behind the float reference, set by the compiler; None: derive from delays
    # float cores only: NIR's reset in the spiking step, or snnTorch's (``compiler.ir``), optionally late
    reset_rule: Literal["nir", "snntorch", "snntorch_leaky"] = "nir"
    reset_delay: bool = False
    program: Any = None  # model "program": the NeuronProgram its neurons run


@dataclass(eq=False)
class CoreProjection:
    """A weight matrix ``(dst.size, src.size)`` delivered ``delay`` steps after the source spikes.

    For Loihi numerics ``weight`` holds integer mantissas and the summed input is shifted by
    ``weight_exp`` (Lava's Dense). ``delay`` includes the core's synaptic latency (1 for Dense).
    ``weight`` may be a 2-D ``scipy.sparse`` matrix (kept sparse by the emulator, Lava's Sparse in the
    Lava backend), or ``(*instances, dst.size, src.size)`` per chip instance: shared by all samples,
    its leading axes count as batch axes ``(*instances, 1)``.
    """

    name: str
    src: str
    dst: str
    weight: np.ndarray
    delay: int = 1
    weight_exp: int = 0
    num_weight_bits: int = 8
    sign_mode: SignMode = "mixed"
    synapse: int = 0  # which synaptic state of the destination it feeds (Xylo neurons have up to two)
    # Programmable neurons and plasticity (``emulator.programs``, run step by step by ``emulator.stepped``):
    channel: str = "spikes"  # what it carries: the source's spikes or one of its graded payload channels
    port: str = "soma"  # which input compartment of the destination it feeds
    engine: Any = None  # a plastic projection's Engine (its weights live there; ``weight`` is the initial value)
    # the population whose third factors (y1...y3) the engine reads, when the post neuron's plasticity compartment
    # is modelled as a population of its own (e.g. GLE's error neuron beside its representation neuron)
    third_factor_from: str | None = None


@dataclass(eq=False)
class ReadoutTerm:
    """One source of a readout: ``weight`` (readout size, src size), float, applied ``delay`` steps late."""

    src: str
    weight: Any  # dense numpy array or scipy.sparse matrix
    delay: int = 0


@dataclass(eq=False)
class Readout:
    """Stateless NIR nodes (Affine, Linear, Scale, conv, pooling) between neurons, or an input, and an Output.

    No core holds them, and no chip population can: the host computes
    ``value[t] = sum over terms of W @ x_src[t - delay] + bias`` in float64 from the recorded trains (the
    membrane v for a non-spiking source), so nothing of the graph is dropped. ``nodes`` names the NIR
    nodes it stands for; ``biases`` maps a delay in steps to a constant that starts at that step.
    """

    name: str
    size: int
    terms: list[ReadoutTerm]
    biases: dict[int, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)

    def host_ops_per_step(self) -> int:
        """Multiply-adds per sample and step on the host: what the readout costs off the chip."""
        nnz = sum(
            int(t.weight.nnz) if hasattr(t.weight, "nnz") else int(np.count_nonzero(t.weight)) for t in self.terms
        )
        return nnz + (self.size if self.biases else 0)


@dataclass(eq=False)
class CoreNetwork:
    populations: list[CorePopulation]
    projections: list[CoreProjection]
    inputs: list[str]
    outputs: list[str]
    numerics: Literal["loihi", "float", "xylo"] = "loihi"
    readouts: list[Readout] = field(default_factory=list)  # host-side readouts; their names may be outputs
    # Loihi integer arithmetic: "lava" (Lava 0.10 fixed_pt) or "loihi1" (nengo-loihi / brian2-loihi)
    arithmetic: str = "lava"

    def population(self, name: str) -> CorePopulation:
        for pop in self.populations:
            if pop.name == name:
                return pop
        raise KeyError(name)

    def readout(self, name: str) -> Readout | None:
        return next((r for r in self.readouts if r.name == name), None)

    def output_size(self, name: str) -> int:
        """Width of an output: a population's neurons or a readout's values."""
        readout = self.readout(name)
        return readout.size if readout is not None else self.population(name).size

    def update_order(self) -> list[CorePopulation]:
        """Populations ordered so that zero-delay projections go from earlier to later ones."""
        names = [p.name for p in self.populations]
        deps = {n: {pr.src for pr in self.projections if pr.dst == n and pr.delay == 0} for n in names}
        order: list[str] = []
        while len(order) < len(names):
            ready = [n for n in names if n not in order and deps[n] <= set(order)]
            if not ready:
                raise ValueError("zero-delay projections form a loop; give one of them a delay of 1 or more")
            order.extend(ready)
        return [self.population(n) for n in order]

    def latency(self) -> dict[str, int]:
        """Steps each population runs behind the float reference (how far ``run`` shifts its recording).

        The compiler records this per population (``lag``): it is the chip's synaptic latency along the
        longest feed-forward path, without the network's own delays (NIR Delay nodes). Hand-built
        networks without ``lag`` count every delay on the longest feed-forward path instead; only
        projections that go forward in ``populations`` order count, so loops never shift the alignment.
        """
        if all(p.lag is not None for p in self.populations):
            return {p.name: int(p.lag) for p in self.populations}
        order = {p.name: i for i, p in enumerate(self.populations)}
        lat = {n: 0 for n in self.inputs}
        forward = sorted((pr for pr in self.projections if order[pr.src] < order[pr.dst]), key=lambda pr: order[pr.src])
        for pr in forward:
            if pr.src in lat:
                lat[pr.dst] = max(lat.get(pr.dst, 0), lat[pr.src] + pr.delay)
        return lat
