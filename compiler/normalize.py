"""NIR graph -> NetworkIR: flatten, order, broadcast, and fix the conventions a file leaves out.

Linear nodes (Affine, Linear, Scale, Flatten) between two neuron nodes are folded into one
projection; each neuron node becomes a population in the Loihi CUBA form (see ``compiler.ir``)::

    CubaLIF: du = dt/tau_syn, dv = dt/tau_mem, weight gain g = w_in*(dt/tau_syn)*r*(dt/tau_mem)
    LIF:     du = 1,          dv = dt/tau,     g = r*dt/tau
    IF:      du = 1,          dv = 0,          g = r            (v += r*I per step, snnTorch's reading)
    bias_v = v_leak*dv, bias_u = g*(affine bias)

This is the forward-Euler step snnTorch and Norse both use, rewritten with u = r*(dt/tau_mem)*I.
"""

from __future__ import annotations

import math
import warnings

import nir
import numpy as np

from neurodeploy.compiler.ir import Conventions, NetworkIR, Population, Projection
from neurodeploy.errors import CompileError

NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI)
LINEAR_TYPES = (nir.Affine, nir.Linear, nir.Scale, nir.Flatten)
META_PREFIX = "neurodeploy."


def resolve_conventions(graph: nir.NIRGraph, **explicit: object) -> Conventions:
    """Explicit arguments win, then what the exporter recorded in metadata, then stated defaults."""
    meta = graph.metadata or {}
    values: dict[str, object] = {}
    assumed: list[str] = []
    defaults = Conventions()
    for key in ("dt", "reset", "reset_delay", "integrator", "source"):
        if explicit.get(key) is not None:
            values[key] = explicit[key]
        elif META_PREFIX + key in meta:
            values[key] = meta[META_PREFIX + key]
        else:
            values[key] = getattr(defaults, key)
            if key in ("dt", "reset"):
                assumed.append(key)
    values["assumed"] = tuple(assumed)
    conv = Conventions.from_dict(values)
    if not (math.isfinite(conv.dt) and conv.dt > 0):
        raise CompileError(f"dt must be a positive number, got {conv.dt!r}", "conventions.dt", "pass dt=... in seconds")
    if conv.reset not in ("zero", "subtract"):
        raise CompileError(f"unknown reset mode {conv.reset!r}", "conventions.reset", 'use "zero" or "subtract"')
    if assumed:
        warnings.warn(
            f"the NIR graph does not record {' and '.join(assumed)}; assuming "
            + ", ".join(f"{k}={getattr(conv, k)!r}" for k in assumed)
            + " (pass them explicitly to silence this)",
            stacklevel=3,
        )
    return conv


def flatten_graph(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    """Inline nested graphs with dotted names; edges into/out of a subgraph hit its Input/Output nodes."""
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = flatten_graph(node, full + ".")
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            entry[name] = [n for n, v in sub_nodes.items() if isinstance(v, nir.Input)]
            exit_[name] = [n for n, v in sub_nodes.items() if isinstance(v, nir.Output)]
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        srcs = exit_.get(src, [prefix + src])
        dsts = entry.get(dst, [prefix + dst])
        edges.extend((s, d) for s in srcs for d in dsts)
    if prefix:
        return nodes, edges
    # Inner Input/Output nodes of inlined subgraphs are pass-through: splice them out.
    inner = [n for n, v in nodes.items() if "." in n and isinstance(v, (nir.Input, nir.Output))]
    for name in inner:
        ins = [s for s, d in edges if d == name]
        outs = [d for s, d in edges if s == name]
        edges = [(s, d) for s, d in edges if name not in (s, d)] + [(s, d) for s in ins for d in outs]
        del nodes[name]
    return nodes, edges


def _vector(node_name: str, field: str, value: object, size: int, positive: bool = False) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    if arr.size == 1:
        arr = np.full(size, float(arr.reshape(-1)[0]))
    arr = arr.reshape(-1)
    if arr.size != size:
        raise CompileError(f"{field} has {arr.size} values for a layer of {size} neurons", f"node {node_name!r}",
                           "give one value per neuron or a scalar")
    if not np.all(np.isfinite(arr)):
        raise CompileError(f"{field} contains NaN or inf", f"node {node_name!r}", "replace them with finite numbers")
    if positive and np.any(arr <= 0):
        raise CompileError(f"{field} must be > 0 (got {arr.min():g})", f"node {node_name!r}",
                           "time constants are in seconds and must be positive")
    return arr


def _neuron_size(name: str, node: nir.NIRNode) -> int:
    field = {nir.LIF: "tau", nir.CubaLIF: "tau_mem", nir.IF: "r", nir.LI: "tau", nir.CubaLI: "tau_mem"}[type(node)]
    return int(np.asarray(getattr(node, field)).size)


def _population(name: str, node: nir.NIRNode, size: int, dt: float, reset: str) -> tuple[Population, np.ndarray]:
    """The population for a neuron node and its per-neuron input gain g."""
    if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        a = dt / _vector(name, "tau_syn", node.tau_syn, size, positive=True)
        b = dt / _vector(name, "tau_mem", node.tau_mem, size, positive=True)
        w_in = _vector(name, "w_in", node.w_in, size)
        gain = w_in * a * _vector(name, "r", node.r, size) * b
        du, dv = a, b
    elif isinstance(node, (nir.LIF, nir.LI)):
        b = dt / _vector(name, "tau", node.tau, size, positive=True)
        du, dv, gain = np.ones(size), b, _vector(name, "r", node.r, size) * b
    else:  # IF
        du, dv, gain = np.ones(size), np.zeros(size), _vector(name, "r", node.r, size)
    spiking = isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF))
    v_leak = np.zeros(size) if isinstance(node, nir.IF) else _vector(name, "v_leak", node.v_leak, size)
    v_th = _vector(name, "v_threshold", node.v_threshold, size) if spiking else np.full(size, np.inf)
    v_reset_raw = getattr(node, "v_reset", None)
    v_reset = np.zeros(size) if v_reset_raw is None else _vector(name, "v_reset", v_reset_raw, size)
    if np.any(du > 1) or np.any(dv > 1):
        raise CompileError("a time constant is shorter than dt, so forward Euler is unstable", f"node {name!r}",
                           "use a smaller dt or a longer time constant")
    pop = Population(
        name=name, size=size, kind="cuba_lif" if spiking else "cuba_li",
        du=du, dv=dv, v_th=v_th, v_reset=v_reset, bias_u=np.zeros(size), bias_v=v_leak * dv,
        reset=reset, source_node=name,
    )
    return pop, gain


def _linear_map(name: str, node: nir.NIRNode, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    """(matrix, bias) of a linear node acting on a flat vector of n_in values."""
    if isinstance(node, nir.Flatten):
        return np.eye(n_in), np.zeros(n_in)
    if isinstance(node, nir.Scale):
        scale = _vector(name, "scale", node.scale, n_in)
        return np.diag(scale), np.zeros(n_in)
    weight = np.asarray(node.weight, dtype=float)
    if weight.ndim != 2 or weight.shape[1] != n_in:
        raise CompileError(f"weight shape {weight.shape} does not accept {n_in} inputs", f"node {name!r}",
                           "check the layer sizes on both sides of this node")
    if not np.all(np.isfinite(weight)):
        raise CompileError("weight contains NaN or inf", f"node {name!r}", "replace them with finite numbers")
    bias = np.zeros(weight.shape[0])
    if isinstance(node, nir.Affine) and node.bias is not None:
        bias = _vector(name, "bias", node.bias, weight.shape[0])
    return weight, bias


def _input_size(name: str, node: nir.Input) -> int:
    shape = np.asarray(node.input_type.get("input", []), dtype=int).reshape(-1)
    if shape.size == 0 or np.any(shape <= 0):
        raise CompileError(f"input shape {shape.tolist()} is empty or non-positive", f"node {name!r}",
                           "give the Input node a shape such as [4]")
    return int(np.prod(shape))


def normalize(graph: nir.NIRGraph, **conventions: object) -> NetworkIR:
    """Lower a NIR graph to a float NetworkIR under explicit (or recorded) conventions."""
    conv = resolve_conventions(graph, **conventions)
    nodes, edges = flatten_graph(graph)
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise CompileError(f"edge {src!r} -> {dst!r} names an unknown node", f"node {end!r}",
                                   "add the node or remove the edge")
    supported = (nir.Input, nir.Output, *NEURON_TYPES, *LINEAR_TYPES)
    for name, node in nodes.items():
        if not isinstance(node, supported):
            raise CompileError(
                f"node type {type(node).__name__} is not supported by this compiler yet", f"node {name!r}",
                "supported: Input, Output, Affine, Linear, Scale, Flatten, LIF, CubaLIF, IF, LI, CubaLI",
            )
    sizes: dict[str, int] = {}
    pops: dict[str, Population] = {}
    gains: dict[str, np.ndarray] = {}
    for name, node in nodes.items():
        if isinstance(node, nir.Input):
            sizes[name] = _input_size(name, node)
            pops[name] = Population(name=name, size=sizes[name], kind="input", source_node=name)
        elif isinstance(node, NEURON_TYPES):
            sizes[name] = _neuron_size(name, node)
            pops[name], gains[name] = _population(name, node, sizes[name], conv.dt, conv.reset)
    if not any(isinstance(n, nir.Input) for n in nodes.values()):
        raise CompileError("the graph has no Input node", "graph", "add a nir.Input node feeding the first layer")

    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        preds[dst].append(src)

    def paths_into(name: str, seen: frozenset[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """All (source population, matrix, bias) reaching node ``name`` through linear nodes."""
        out = []
        for src in preds[name]:
            if src in pops:
                n = pops[src].size
                out.append((src, np.eye(n), np.zeros(n)))
                continue
            if src in seen:
                raise CompileError("a loop made only of linear nodes has no neuron to hold state", f"node {src!r}",
                                   "put a neuron node inside every loop")
            node = nodes[src]
            if isinstance(node, nir.Output):
                continue
            for origin, mat, bias in paths_into(src, seen | {src}):
                lin, lbias = _linear_map(src, node, mat.shape[0])
                out.append((origin, lin @ mat, lin @ bias + lbias))
        return out

    order = _topological_order([n for n in nodes if n in pops], edges, nodes)
    projections: list[Projection] = []
    for dst in order:
        if pops[dst].kind == "input":
            continue
        by_source: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for origin, mat, bias in paths_into(dst, frozenset({dst})):
            if mat.shape[0] != pops[dst].size:
                raise CompileError(f"{mat.shape[0]} values arrive at a layer of {pops[dst].size} neurons",
                                   f"node {dst!r}", "check the weight shape of the layer feeding it")
            prev = by_source.get(origin)
            by_source[origin] = (mat, bias) if prev is None else (prev[0] + mat, prev[1] + bias)
        gain = gains[dst]
        for origin, (mat, bias) in by_source.items():
            pops[dst].bias_u = pops[dst].bias_u + gain * bias
            recurrent = order.index(origin) >= order.index(dst)
            projections.append(Projection(
                name=f"{origin}->{dst}", src=origin, dst=dst, weight=gain[:, None] * mat,
                delay=1 if recurrent else 0, source_node=dst,
            ))
    outputs = []
    for name, node in nodes.items():
        if isinstance(node, nir.Output):
            for origin, _, _ in paths_into(name, frozenset({name})):
                if origin not in outputs:
                    outputs.append(origin)
    inputs = [n for n in order if pops[n].kind == "input"]
    return NetworkIR([pops[n] for n in order], projections, inputs, outputs, conv)


def _topological_order(names: list[str], edges: list[tuple[str, str]], nodes: dict) -> list[str]:
    """Populations in data-flow order; edges closing a loop are ignored (they become recurrent)."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        succ[s].append(d)
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str) -> None:
        state[n] = 1
        for m in succ[n]:
            if state.get(m, 0) == 0:
                visit(m)
        state[n] = 2
        order.append(n)

    starts = [n for n in nodes if isinstance(nodes[n], nir.Input)] + list(nodes)
    for n in starts:
        if state.get(n, 0) == 0:
            visit(n)
    wanted = set(names)
    return [n for n in reversed(order) if n in wanted]
