"""The compiled, quantized network back to NIR: the chip's own numbers as float parameters.

Why: a user who compiled for a chip wants to keep working in their framework with the network the chip
will run (its rounded weights, thresholds and decays), not the float one they started from. Every
parameter of the exported graph is the chip's register divided by the population's voltage scale λ
(``CorePopulation.scale``; per neuron with per-channel scales), so the graph is in the units of the
original model.

What cannot agree. The chip rounds its state every step and the float graph does not:

- the decays of u and v truncate toward zero (``emulator.loihi._decay``);
- a negative weight exponent floors the summed input (``emulator.loihi.shift_by_exp``; Loihi 1's arithmetic
  floors each weight instead, which the exported weights include);
- v saturates at ±2²³ and u wraps at 24 bits, where the float graph keeps growing.

Run on ``ideal``, the exported graph therefore matches the chip emulator to within these roundings, not
bit for bit. ``tests/test_export.py`` measures the agreement on the demo network.
"""

from __future__ import annotations

import math
from typing import Any

import nir
import numpy as np

from neurodeploy.errors import NeurodeployError

META = "neurodeploy."
MAX_DENSE_WEIGHTS = 1 << 26  # a sparse (conv) projection exported as a dense Linear: 512 MiB of float64


def voltage_scales(compiled: Any, name: str) -> np.ndarray:
    """λ per neuron of one Loihi population: the stored scale, or with per-channel scales (which the
    artifact does not store) vth / v_th, the threshold's own ratio, good to the threshold's 17 bits."""
    dst = compiled.core.population(name)
    scale = np.full(dst.size, float(dst.scale) or 1.0)
    per_channel = any(q.population == name and q.per_channel for q in compiled.quantization)
    if per_channel:
        vth = np.asarray(dst.params["vth"], dtype=float).reshape(-1, dst.size)[0]
        v_th = np.asarray(compiled.ir.population(name).v_th, dtype=float)
        ok = np.isfinite(v_th) & (v_th > 0)
        scale = np.where(ok, vth / np.where(ok, v_th, 1.0), scale)
    return scale


def chip_weights(compiled: Any, projection: Any) -> np.ndarray:
    """The weights the chip applies, in the destination's float units, dense ``(dst, src)``."""
    from neurodeploy.compiler import weights as wt

    weight = projection.weight
    if wt.is_sparse(weight):
        shape = weight.shape
        if shape[0] * shape[1] > MAX_DENSE_WEIGHTS:
            raise NeurodeployError(
                f"projection {projection.name!r} would need a dense {shape[0]:,} x {shape[1]:,} weight matrix",
                f"projection {projection.name!r}",
                "export networks whose sparse (conv) layers have at most "
                f"{MAX_DENSE_WEIGHTS:,} entries as a dense matrix",
            )
        weight = weight.toarray()
    weight = np.asarray(weight)
    if compiled.core.numerics != "loihi":
        return weight.astype(float)
    from neurodeploy.emulator.loihi import prepare_weights

    applied = prepare_weights(weight, projection.num_weight_bits, projection.sign_mode).astype(float)
    lam = voltage_scales(compiled, projection.dst)
    if compiled.core.arithmetic == "loihi1" and projection.weight_exp < 0:  # each weight floored on chip
        return np.floor(applied * 2.0**projection.weight_exp) / lam[:, None]
    return applied * 2.0**projection.weight_exp / lam[:, None]


def _float_params(compiled: Any, pop: Any) -> dict[str, np.ndarray]:
    """du, dv, v_th, v_reset, bias_u, bias_v of a population in the reference's units (``compiler.ir``)."""
    params = {k: np.asarray(v) for k, v in pop.params.items()}
    if any(v.ndim > 1 for v in params.values()):
        raise NeurodeployError(
            f"population {pop.name!r} has per-instance parameters", "compiled", "export the nominal compiled network"
        )
    if compiled.core.numerics != "loihi":
        size = pop.size
        return {
            "du": params["du"].astype(float),
            "dv": params["dv"].astype(float),
            "v_th": params.get("v_th", np.full(size, np.inf)).astype(float),
            "v_reset": params.get("v_reset", np.zeros(size)).astype(float),
            "bias_u": params.get("bias_u", np.zeros(size)).astype(float),
            "bias_v": params.get("bias_v", np.zeros(size)).astype(float),
        }
    from neurodeploy.emulator.loihi import DECAY_UNITY, U_DECAY_OFFSET, VTH_SHIFT, effective_bias

    lam = voltage_scales(compiled, pop.name)
    unit = lam * 2.0**VTH_SHIFT  # float 1.0 is λ·2^6 in the v register
    vth = (params["vth"].astype(np.int64) << VTH_SHIFT) / unit
    return {
        "du": (params["du"].astype(float) + U_DECAY_OFFSET) / DECAY_UNITY,
        "dv": params["dv"].astype(float) / DECAY_UNITY,
        "v_th": vth if pop.spiking else np.full(pop.size, np.inf),
        "v_reset": np.zeros(pop.size),
        "bias_u": np.zeros(pop.size),
        "bias_v": effective_bias(params["bias_mant"], params["bias_exp"]) / unit,
    }


def _neuron_node(name: str, p: dict[str, np.ndarray], spiking: bool, dt: float) -> tuple[nir.NIRNode, np.ndarray]:
    """The NIR neuron node with these dynamics, and the bias that must arrive through an Affine (per step).

    Gains are set to 1 (``r`` = 1/(du·dv)), so the Linear nodes carry the chip's weights unchanged.
    """
    du, dv, bias_u, bias_v = p["du"], p["dv"], p["bias_u"].copy(), p["bias_v"].copy()
    no_current = bool(np.all(du == 1))
    if np.all(dv == 0):
        if not no_current:
            raise NeurodeployError(
                f"population {name!r} has a decaying current but no membrane leak, which no NIR node expresses",
                f"population {name!r}",
                "give the membrane a leak (tau_mem) before compiling, or keep the compiled artifact",
            )
        bias_u = bias_u + bias_v  # with du = 1, u holds one step's input: a bias on u or on v is the same
        if spiking:
            return nir.IF(r=np.ones_like(dv), v_threshold=p["v_th"], v_reset=p["v_reset"]), bias_u
        return nir.I(r=np.ones_like(dv)), bias_u
    if np.any(dv == 0):
        raise NeurodeployError(
            f"population {name!r} mixes leaky and non-leaky membranes, which no single NIR node expresses",
            f"population {name!r}",
            "give every neuron of the layer a membrane leak, or none",
        )
    v_leak = bias_v / dv
    if no_current:
        if spiking:
            return nir.LIF(tau=dt / dv, r=1 / dv, v_leak=v_leak, v_threshold=p["v_th"], v_reset=p["v_reset"]), bias_u
        return nir.LI(tau=dt / dv, r=1 / dv, v_leak=v_leak), bias_u
    common = {"tau_syn": dt / du, "tau_mem": dt / dv, "r": 1 / (du * dv), "v_leak": v_leak, "w_in": np.ones_like(du)}
    if spiking:
        return nir.CubaLIF(**common, v_threshold=p["v_th"], v_reset=p["v_reset"]), bias_u
    return nir.CubaLI(**common), bias_u


def export_nir(compiled: Any) -> nir.NIRGraph:
    """The compiled network as a NIR graph whose parameters are the chip's values (see the module doc).

    Node names are the population names of the artifact, so a run of the exported graph records the same
    names as a run of the artifact. The conventions (dt, reset, loop delay, refractory period) travel in
    ``graph.metadata``; ``neurodeploy.exported_from`` names the profile.
    """
    core = getattr(compiled, "core", None)
    if core is None or not hasattr(compiled, "conventions"):
        raise NeurodeployError(
            "export needs a compiled network", "compiled", "call neurodeploy.compile(...) or load_compiled(path)"
        )
    if core.numerics == "xylo":
        raise NeurodeployError(
            "Xylo neurons emit several spikes per step, which no NIR neuron node expresses",
            f"profile {compiled.profile.name!r}",
            "export a network compiled for loihi2, loihi1 or a float-core profile",
        )
    conv = compiled.conventions
    dt = float(conv.dt)
    shapes = {p.name: tuple(p.shape) for p in compiled.ir.populations if getattr(p, "shape", ())}
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    biases: dict[str, np.ndarray] = {}
    for pop in core.populations:
        if pop.model == "input":
            shape = shapes.get(pop.name, (pop.size,))
            nodes[pop.name] = nir.Input(input_type={"input": np.array(shape)})
            continue
        node, bias = _neuron_node(pop.name, _float_params(compiled, pop), pop.spiking, dt)
        node.metadata = {META + "reset_rule": pop.reset_rule, META + "reset_delay": bool(pop.reset_delay)}
        nodes[pop.name] = node
        if np.any(bias != 0):
            biases[pop.name] = bias
    for pr in core.projections:
        src = _flat_source(pr.src, shapes, nodes, edges)
        weight = chip_weights(compiled, pr)
        bias = biases.pop(pr.dst, None)
        name = f"{pr.name}.weight"
        nodes[name] = nir.Linear(weight=weight) if bias is None else nir.Affine(weight=weight, bias=bias)
        edges.append((src, name))
        extra = int(pr.delay) - 1  # the chip's one-step synaptic latency is not part of the network
        if extra > 0:
            delay = f"{pr.name}.delay"
            nodes[delay] = nir.Delay(delay=np.full(weight.shape[0], extra * dt))
            edges += [(name, delay), (delay, pr.dst)]
        else:
            edges.append((name, pr.dst))
    if biases:
        name = next(iter(biases))
        raise NeurodeployError(
            f"population {name!r} has a bias but no incoming connection to carry it",
            f"population {name!r}",
            "connect the layer to an input before compiling",
        )
    for out in core.outputs:
        node_name = "output" if len(core.outputs) == 1 else f"output.{out}"
        nodes[node_name] = nir.Output(output_type={"output": np.array([core.output_size(out)])})
        readout = core.readout(out)
        if readout is None:
            edges.append((out, node_name))
        else:
            _export_readout(readout, shapes, nodes, edges, node_name, dt)
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    graph.metadata = {
        META + "dt": dt,
        META + "reset": conv.reset,
        META + "reset_delay": bool(conv.reset_delay),
        META + "reset_rule": conv.reset_rule,
        META + "loop_delay": conv.loop_delay,
        META + "refractory": int(conv.refractory),
        META + "integrator": conv.integrator,
        META + "source": "neurodeploy.export",
        META + "exported_from": compiled.profile.name,
    }
    _check_finite(graph)
    return graph


def _flat_source(src: str, shapes: dict, nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]]) -> str:
    """The node a Linear reads ``src`` from: ``src`` itself, or one shared Flatten of a shaped input."""
    if len(shapes.get(src, ())) <= 1:
        return src
    flat = f"{src}.flatten"
    if flat not in nodes:
        nodes[flat] = nir.Flatten(input_type={"input": np.array(shapes[src])}, start_dim=0, end_dim=-1)
        edges.append((src, flat))
    return flat


def _export_readout(
    readout: Any, shapes: dict, nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]], into: str, dt: float
) -> None:
    """A host readout as the stateless NIR nodes it came from: one Linear (or Affine) per source."""
    late = [d for d in readout.biases if d != 0]
    if late:
        raise NeurodeployError(
            f"readout {readout.name!r} has a bias that starts {late[0]} steps late, which one NIR node cannot hold",
            f"readout {readout.name!r}",
            "export a graph whose readout bias is not behind a Delay",
        )
    bias = readout.biases.get(0)
    for i, term in enumerate(readout.terms):
        src = _flat_source(term.src, shapes, nodes, edges)
        weight = term.weight.toarray() if hasattr(term.weight, "toarray") else np.asarray(term.weight, dtype=float)
        name = f"{readout.name}.{i}" if len(readout.terms) > 1 else readout.name
        with_bias = bias is not None and i == 0
        nodes[name] = nir.Affine(weight=weight, bias=np.asarray(bias)) if with_bias else nir.Linear(weight=weight)
        edges.append((src, name))
        if term.delay:
            delay = f"{name}.delay"
            nodes[delay] = nir.Delay(delay=np.full(weight.shape[0], term.delay * dt))
            edges += [(name, delay), (delay, into)]
        else:
            edges.append((name, into))
    if not readout.terms and bias is not None:
        raise NeurodeployError(
            f"readout {readout.name!r} is a constant, with no input", f"readout {readout.name!r}", "connect it"
        )


def _check_finite(graph: nir.NIRGraph) -> None:
    """A NaN or inf in an exported parameter would be a bug here, never the user's doing: fail loudly."""
    for name, node in graph.nodes.items():
        for field, value in vars(node).items():
            if isinstance(value, np.ndarray) and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
                raise AssertionError(f"export produced a non-finite {field} in node {name!r}")
            if isinstance(value, float) and not math.isfinite(value):
                raise AssertionError(f"export produced a non-finite {field} in node {name!r}")
