"""A bias into a decaying synaptic current, delivered exactly on Loihi cores.

Why: a Loihi neuron has a bias on v only. A constant b into the current u makes u settle at b/du, and
putting that steady state on v from step 0 is wrong for the first steps and for every step after a
reset of v's input history; a recurrent CubaLIF network with current biases then drifts from the float
reference at once. Here the bias arrives as input instead: the network's bias clock (a one-neuron
population that fires every step, ``lower_neurons.bias_clock``) projects onto the layer with weights b,
so u receives b every step exactly as the float model adds it. The cost, stated in the layer's
quantization notes: one neuron for the clock (shared by every such layer) and one input axon per
layer, plus the clock's weights in synapse memory.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.compiler.ir import NetworkIR, Projection
from neurodeploy.compiler.lower_neurons import bias_clock


def route_current_biases(ir: NetworkIR) -> tuple[NetworkIR, list[str]]:
    """The network with every current bias of a leaky-current layer moved onto a bias-clock projection.

    Returns the new IR (the input is not changed) and the names of the layers whose bias moved. A layer
    whose current does not decay (du = 1) keeps its bias: u then holds one step's input, and a bias on
    u equals one on v exactly.
    """
    moved = [p for p in ir.populations if p.bias_u is not None and np.any(p.bias_u != 0) and np.any(p.du < 1)]
    if not moved:
        return ir, []
    populations = [_copy(p) for p in ir.populations]
    projections = list(ir.projections)
    clock = next((p for p in populations if p.source_node == "<bias clock>"), None)
    if clock is None:
        taken = {p.name for p in populations}
        name, i = "bias_clock", 0
        while name in taken:
            i += 1
            name = f"bias_clock_{i}"
        clock = bias_clock(name)
        first_input = ir.inputs[0]
        size = next(p.size for p in populations if p.name == first_input)
        # a zero-weight anchor makes the clock reachable from the inputs (for latency alignment)
        projections.append(Projection(f"{first_input}->{clock.name}", first_input, clock.name,
                                      np.zeros((1, size)), 0, clock.name))  # fmt: skip
        populations.append(clock)  # last: its projections count as loops and never shift the alignment
    names = []
    for pop in populations:
        if pop.name in {p.name for p in moved}:
            projections.append(Projection(f"{clock.name}->{pop.name}@current", clock.name, pop.name,
                                          pop.bias_u.astype(float)[:, None], 0, pop.source_node))  # fmt: skip
            pop.bias_u = np.zeros(pop.size)
            names.append(pop.name)
    out = NetworkIR(populations, projections, list(ir.inputs), list(ir.outputs), ir.conventions, list(ir.readouts))
    return out, names


def _copy(pop: object) -> object:
    import copy

    return copy.copy(pop)
