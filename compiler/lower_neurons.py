"""Neuron nodes -> populations in the Loihi CUBA form of ``compiler.ir`` (exact under forward Euler).

    CubaLIF:   du = dt/tau_syn, dv = dt/tau_mem, input gain g = w_in*(dt/tau_syn)*r*(dt/tau_mem)
    LIF:       du = 1,          dv = dt/tau,     g = r*dt/tau
    IF:        du = 1,          dv = 0,          g = r     (v += r*I per step, snnTorch's reading)
    LI/CubaLI: as LIF/CubaLIF without a threshold (non-spiking: the output is v)
    I:         du = 1,          dv = 0,          g = r     (non-spiking integrator, same reading as IF)
    Threshold: du = 1,          dv = 1,          g = 1     (no memory: z = x > threshold every step)
    bias_v = v_leak*dv; an affine bias b arriving at the node adds g*b to bias_u.

The reset rule (``compiler.ir``) is set per population. An snnTorch zero reset without reset delay and
with v_th >= 0 is NIR's reset exactly (r is then always 0), so it is lowered as "nir" and runs on chips.
"""

from __future__ import annotations

import nir
import numpy as np

from neurodeploy.compiler.ir import Population
from neurodeploy.errors import CompileError

NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I, nir.Threshold)
SPIKING_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.Threshold)
_SIZE_FIELD = {
    nir.LIF: "tau",
    nir.CubaLIF: "tau_mem",
    nir.IF: "r",
    nir.LI: "tau",
    nir.CubaLI: "tau_mem",
    nir.I: "r",
    nir.Threshold: "threshold",
}


def vector(node_name: str, field: str, value: object, size: int, positive: bool = False) -> np.ndarray:
    """A per-neuron float parameter of length ``size`` (scalars broadcast), checked finite (and > 0)."""
    arr = np.asarray(value, dtype=float)
    if arr.size == 1:
        arr = np.full(size, float(arr.reshape(-1)[0]))
    arr = arr.reshape(-1)
    if arr.size != size:
        raise CompileError(
            f"{field} has {arr.size} values for a layer of {size} neurons",
            f"node {node_name!r}",
            "give one value per neuron or a scalar",
        )
    if not np.all(np.isfinite(arr)):
        raise CompileError(f"{field} contains NaN or inf", f"node {node_name!r}", "replace them with finite numbers")
    if positive and np.any(arr <= 0):
        raise CompileError(
            f"{field} must be > 0 (got {arr.min():g})",
            f"node {node_name!r}",
            "time constants are in seconds and must be positive",
        )
    return arr


def neuron_shape(node: nir.NIRNode) -> tuple[int, ...]:
    """The layer shape a neuron node's parameters give (a scalar parameter gives (1,))."""
    shape = np.shape(getattr(node, _SIZE_FIELD[type(node)]))
    return tuple(int(s) for s in shape) or (1,)


def population(
    name: str, node: nir.NIRNode, size: int, dt: float, reset: str, reset_rule: str = "nir", reset_delay: bool = False
) -> tuple[Population, np.ndarray]:
    """The population for a neuron node and its per-neuron input gain g."""
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        a = dt / vector(name, "tau_syn", node.tau_syn, size, positive=True)
        b = dt / vector(name, "tau_mem", node.tau_mem, size, positive=True)
        w_in = vector(name, "w_in", node.w_in, size)
        gain = w_in * a * vector(name, "r", node.r, size) * b
        du, dv = a, b
    elif isinstance(node, (nir.LIF, nir.LI)):
        b = dt / vector(name, "tau", node.tau, size, positive=True)
        du, dv, gain = np.ones(size), b, vector(name, "r", node.r, size) * b
    elif isinstance(node, nir.Threshold):
        du, dv, gain = np.ones(size), np.ones(size), np.ones(size)
    else:  # IF, I
        du, dv, gain = np.ones(size), np.zeros(size), vector(name, "r", node.r, size)
    spiking = isinstance(node, SPIKING_TYPES)
    has_leak = isinstance(node, (nir.LIF, nir.CubaLIF, nir.LI, nir.CubaLI))
    v_leak = vector(name, "v_leak", node.v_leak, size) if has_leak else np.zeros(size)
    if isinstance(node, nir.Threshold):
        v_th = vector(name, "threshold", node.threshold, size)
    else:
        v_th = vector(name, "v_threshold", node.v_threshold, size) if spiking else np.full(size, np.inf)
    v_reset_raw = getattr(node, "v_reset", None)
    v_reset = np.zeros(size) if v_reset_raw is None else vector(name, "v_reset", v_reset_raw, size)
    if spiking and reset_rule != "nir" and np.any(v_reset != 0):
        raise CompileError(
            f"snnTorch's reset rule ({reset_rule}) has no reset potential, but v_reset != 0",
            f"node {name!r}",
            'set v_reset = 0, or compile with reset_rule="nir"',
        )
    if not spiking or isinstance(node, nir.Threshold):
        reset_rule, reset_delay = "nir", False  # no membrane to reset
    elif reset_rule != "nir" and reset == "zero" and not reset_delay and np.all(v_th >= 0):
        reset_rule = "nir"  # r = v_prev > v_th never fires: v is 0 after a spike and <= v_th otherwise
    if np.any(du > 1) or np.any(dv > 1):
        raise CompileError(
            "a time constant is shorter than dt, so forward Euler is unstable",
            f"node {name!r}",
            "use a smaller dt or a longer time constant",
        )
    pop = Population(
        name=name,
        size=size,
        kind="cuba_lif" if spiking else "cuba_li",
        du=du,
        dv=dv,
        v_th=v_th,
        v_reset=v_reset,
        bias_u=np.zeros(size),
        bias_v=v_leak * dv,
        reset=reset,
        source_node=name,
        reset_rule=reset_rule,
        reset_delay=bool(reset_delay),
    )
    return pop, gain


def bias_clock(name: str) -> Population:
    """A one-neuron population that spikes every step from step 0 (bias_v = 1 > v_th = 0.5, dv = 1).

    A bias inside a loop whose one-step delay sits on the edge into the neuron (nirtorch's reading) is
    missing at step 0 only, and a bias behind a Delay node starts d steps late; both are delivered exactly
    as this clock's spikes through a projection of that delay. ``normalize`` puts the clock last and
    anchors it to the first input with a zero-weight projection (so every population is reachable).
    """
    one = np.ones(1)
    return Population(
        name=name,
        size=1,
        kind="cuba_lif",
        du=one.copy(),
        dv=one.copy(),
        v_th=np.full(1, 0.5),
        v_reset=np.zeros(1),
        bias_u=np.zeros(1),
        bias_v=one.copy(),
        source_node="<bias clock>",
    )
