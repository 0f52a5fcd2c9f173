"""NIR graph -> NetworkIR: flatten, infer shapes, order, and fix the conventions a file leaves out.

Neuron nodes (``compiler.lower_neurons``) become populations; every chain of stateless nodes between
two of them (``compiler.lower_linear``: Affine, Linear, Scale, Flatten, Conv, pooling, Delay) folds
into projections, one per (source population, delay in steps). Several edges into a node are summed.
A projection closing a loop (its source is not before its target in data-flow order) gets one step of
delay; ``Conventions.loop_delay`` says whether a bias inside that loop also waits a step.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.ir import LOOP_DELAYS, RESET_RULES, Conventions, NetworkIR, Population, Projection
from neurodeploy.compiler.lower_linear import LINEAR_TYPES, LinearMap, arriving_shape, infer_shapes, linear_map
from neurodeploy.compiler.lower_neurons import NEURON_TYPES, bias_clock, population
from neurodeploy.emulator.network import Readout, ReadoutTerm
from neurodeploy.errors import CompileError

META_PREFIX = "neurodeploy."
SUPPORTED = (
    "Input, Output, Affine, Linear, Scale, Flatten, Conv1d, Conv2d, SumPool2d, AvgPool2d, Delay, "
    "LIF, CubaLIF, IF, LI, CubaLI, I, Threshold, nested NIRGraph"
)


def resolve_conventions(graph: nir.NIRGraph, **explicit: object) -> Conventions:
    """Explicit arguments win, then what the exporter recorded in metadata, then stated defaults."""
    meta = graph.metadata or {}
    values: dict[str, object] = {}
    assumed: list[str] = []
    defaults = Conventions()
    for key in ("dt", "reset", "reset_delay", "reset_rule", "integrator", "loop_delay", "refractory", "source"):
        if explicit.get(key) is not None:
            values[key] = explicit[key]
        elif META_PREFIX + key in meta:
            values[key] = meta[META_PREFIX + key]
        else:
            values[key] = getattr(defaults, key)
            guessed = key in ("reset_rule", "reset_delay", "loop_delay") and _matters(graph, key, meta)
            if key in ("dt", "reset") or guessed:
                assumed.append(key)
    if (  # an snnTorch export from before the rule was recorded: NIR's rule differs
        "reset_rule" not in assumed
        and values["reset_rule"] == "nir"
        and META_PREFIX + "reset_rule" not in meta
        and explicit.get("reset_rule") is None
        and values["source"] == "snntorch"
        and (values["reset"] == "subtract" or values["reset_delay"])
    ):
        assumed.append("reset_rule")
    values["assumed"] = tuple(assumed)
    ref = values["refractory"]
    if isinstance(ref, np.ndarray) and ref.size == 1 and ref.dtype.kind in "iu":  # HDF5 metadata
        ref = values["refractory"] = int(ref)
    if isinstance(ref, bool) or not isinstance(ref, (int, np.integer)) or ref < 0:
        raise CompileError(
            f"refractory must be a whole number of steps >= 0, got {ref!r}",
            "conventions.refractory",
            "pass refractory=0 (none) or the number of steps a neuron stays silent after a spike",
        )
    conv = Conventions.from_dict(values)
    if not (math.isfinite(conv.dt) and conv.dt > 0):
        raise CompileError(f"dt must be a positive number, got {conv.dt!r}", "conventions.dt", "pass dt=... in seconds")
    if conv.reset not in ("zero", "subtract"):
        raise CompileError(f"unknown reset mode {conv.reset!r}", "conventions.reset", 'use "zero" or "subtract"')
    if conv.reset_rule not in RESET_RULES:
        raise CompileError(
            f"unknown reset rule {conv.reset_rule!r}", "conventions.reset_rule", f"use one of {', '.join(RESET_RULES)}"
        )
    if conv.loop_delay not in LOOP_DELAYS:
        raise CompileError(
            f"unknown loop_delay {conv.loop_delay!r}", "conventions.loop_delay", f"use one of {', '.join(LOOP_DELAYS)}"
        )
    if assumed:
        said = ", ".join(assumed[:-1]) + (" and " if len(assumed) > 1 else "") + assumed[-1]
        warnings.warn(
            f"the NIR graph does not record {said}; assuming "
            + "; ".join(f"{k}={getattr(conv, k)!r} ({CONSEQUENCE[k]})" for k in assumed)
            + ". Pass them explicitly to silence this: "
            + ", ".join(f"--{k.replace('_', '-')}" for k in assumed)
            + f" (Python: {', '.join(f'{k}=...' for k in assumed)})",
            stacklevel=3,
        )
    return conv


# What each convention changes, said when it has to be assumed (facts: nir-conventions.md).
CONSEQUENCE = {
    "dt": "every time constant becomes a decay per step dt/tau",
    "reset": "what a spike does to v: set to v_reset, or subtract the threshold",
    "reset_rule": "the reset acts in the spiking step; snnTorch resets from the previous step's v, "
    "so its files need --reset-rule snntorch or snntorch_leaky",
    "reset_delay": "no extra step before the reset (snnTorch's reset_delay=True differs)",
    "loop_delay": "a loop's value, bias included, arrives one step late; snnTorch's RLeaky and RSynaptic "
    "delay only the spikes (--loop-delay out_of_neuron)",
}


def _matters(graph: nir.NIRGraph, key: str, meta: dict) -> bool:
    """Whether an unrecorded convention changes this graph: only files without exporter metadata are
    guessed about, the reset conventions only with spiking neurons, the loop delay only with a loop."""
    if META_PREFIX + "dt" in meta:
        return False  # an exporter wrote the file and recorded what it meant
    nodes, edges = flatten_graph(graph)
    if key != "loop_delay":
        return any(isinstance(n, (nir.LIF, nir.CubaLIF, nir.IF)) for n in nodes.values())
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        if src in succ and dst in succ:
            succ[src].append(dst)
    state = dict.fromkeys(nodes, 0)  # 0 unseen, 1 on the path, 2 done: a back edge is a loop
    for root in nodes:
        stack = [(root, iter(succ[root]))] if state[root] == 0 else []
        if stack:
            state[root] = 1
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state[nxt] == 1:
                return True
            elif state[nxt] == 0:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    return False


def flatten_graph(graph: nir.NIRGraph) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]]]:
    """Inline nested graphs with dotted names; edges into/out of a subgraph pass through its Input/Output."""
    nodes, edges, ports = _inline(graph, "")
    for name in ports:  # the inner Input/Output nodes are pass-through: splice them out
        ins = [s for s, d in edges if d == name]
        outs = [d for s, d in edges if s == name]
        edges = [(s, d) for s, d in edges if name not in (s, d)] + [(s, d) for s in ins for d in outs]
        del nodes[name]
    return nodes, edges


def _inline(graph: nir.NIRGraph, prefix: str) -> tuple[dict[str, nir.NIRNode], list[tuple[str, str]], list[str]]:
    nodes: dict[str, nir.NIRNode] = {}
    edges: list[tuple[str, str]] = []
    ports: list[str] = []
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    for name, node in graph.nodes.items():
        full = prefix + name
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_ports = _inline(node, full + ".")
            nodes.update(sub_nodes)
            edges.extend(sub_edges)
            ports.extend(sub_ports)
            entry[name] = [full + "." + n for n, v in node.nodes.items() if isinstance(v, nir.Input)]
            exit_[name] = [full + "." + n for n, v in node.nodes.items() if isinstance(v, nir.Output)]
            ports.extend(entry[name] + exit_[name])
        else:
            nodes[full] = node
    for src, dst in graph.edges:
        srcs = exit_.get(src, [prefix + src])
        dsts = entry.get(dst, [prefix + dst])
        edges.extend((s, d) for s in srcs for d in dsts)
    return nodes, edges, ports


@dataclass
class _Path:
    """What reaches a node from one population: op (None = identity) @ spikes, ``delay`` steps late."""

    origin: str
    op: wt.Matrix | None
    delay: int


Biases = dict[int, np.ndarray]  # delay in steps -> constant input (a bias behind a Delay arrives late)


def _through(lin: LinearMap, path: _Path, n_origin: int) -> list[_Path]:
    op = lin.apply(path.op, n_origin)
    if lin.delays is None:
        return [_Path(path.origin, op, path.delay)]
    values = np.unique(lin.delays)
    if values.size == 1:
        return [_Path(path.origin, op, path.delay + int(values[0]))]
    full = wt.identity(n_origin) if op is None else op  # per-element delays: one path per distinct delay
    return [
        _Path(path.origin, wt.scale_rows(full, (lin.delays == d).astype(float)), path.delay + int(d)) for d in values
    ]


def _bias_through(lin: LinearMap, biases: Biases) -> Biases:
    """Upstream constant inputs through the node (shifted by its delays), plus the node's own bias."""
    out: Biases = {}
    for d, vec in biases.items():
        moved = lin.apply_vector(vec)
        if lin.delays is None:
            out[d] = out.get(d, 0) + moved
            continue
        for k in np.unique(lin.delays):
            out[d + int(k)] = out.get(d + int(k), 0) + moved * (lin.delays == k)
    if lin.bias is not None and np.any(lin.bias):
        out[0] = out.get(0, 0) + lin.bias
    return out


def _validate(nodes: dict[str, nir.NIRNode], edges: list[tuple[str, str]]) -> None:
    for src, dst in edges:
        for end in (src, dst):
            if end not in nodes:
                raise CompileError(
                    f"edge {src!r} -> {dst!r} names an unknown node", f"node {end!r}", "add the node or remove the edge"
                )
    supported = (nir.Input, nir.Output, *NEURON_TYPES, *LINEAR_TYPES)
    for name, node in nodes.items():
        if not isinstance(node, supported):
            raise CompileError(
                f"node type {type(node).__name__} is not supported by this compiler yet",
                f"node {name!r}",
                f"replace it by supported nodes ({SUPPORTED})",
            )
    if not any(isinstance(n, nir.Input) for n in nodes.values()):
        raise CompileError("the graph has no Input node", "graph", "add a nir.Input node feeding the first layer")


def normalize(graph: nir.NIRGraph, **conventions: object) -> NetworkIR:
    """Lower a NIR graph to a float NetworkIR under explicit (or recorded) conventions."""
    conv = resolve_conventions(graph, **conventions)
    nodes, edges = flatten_graph(graph)
    _validate(nodes, edges)
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    for src, dst in edges:
        preds[dst].append(src)
    shapes = infer_shapes(nodes, edges)
    pops: dict[str, Population] = {}
    gains: dict[str, np.ndarray] = {}
    for name, node in nodes.items():
        if isinstance(node, nir.Input):
            shape = tuple(int(d) for d in shapes[name])
            pops[name] = Population(name=name, size=int(np.prod(shape)), kind="input", source_node=name,
                                    shape=shape if len(shape) > 1 else ())  # fmt: skip
        elif isinstance(node, NEURON_TYPES):
            size = int(np.prod(shapes[name]))
            rule, delay = _node_reset(name, node, conv, conventions.get("reset_rule"))
            pops[name], gains[name] = population(name, node, size, conv.dt, conv.reset, rule, delay)
            if conv.refractory and pops[name].spiking:
                pops[name].refractory = np.full(size, conv.refractory, dtype=np.int64)
            if preds[name]:
                arriving = int(np.prod(arriving_shape(name, node, preds[name], shapes)))
                if arriving != size:
                    raise CompileError(
                        f"{arriving} values arrive at a layer of {size} neurons",
                        f"node {name!r}",
                        "check the weight shape of the layer feeding it",
                    )

    maps: dict[str, LinearMap] = {}
    memo: dict[str, tuple[list[_Path], Biases]] = {}

    def paths(name: str, stack: frozenset[str]) -> tuple[list[_Path], Biases]:
        """The output of node ``name`` as spike paths from populations plus constant inputs by delay."""
        if name in pops:
            return [_Path(name, None, 0)], {}
        if name in memo:
            return memo[name]
        if name in stack:
            raise CompileError(
                "a loop made only of stateless nodes has no neuron to hold state",
                f"node {name!r}",
                "put a neuron node inside every loop",
            )
        node = nodes[name]
        if name not in maps:
            maps[name] = linear_map(name, node, arriving_shape(name, node, preds[name], shapes), conv.dt)
        spikes: list[_Path] = []
        biases: Biases = {}
        for p in preds[name]:  # inputs are summed first, then the node acts once (its bias counts once)
            p_spikes, p_biases = paths(p, stack | {name})
            for path in p_spikes:
                spikes.extend(_through(maps[name], path, pops[path.origin].size))
            for d, vec in p_biases.items():
                biases[d] = biases.get(d, 0) + vec
        memo[name] = (spikes, _bias_through(maps[name], biases))
        return memo[name]

    order = _topological_order([n for n in nodes if n in pops], edges, nodes)
    rank = {n: i for i, n in enumerate(order)}
    projections: list[Projection] = []
    clock: Population | None = None
    for dst in order:
        if pops[dst].kind == "input":
            continue
        size = pops[dst].size
        groups: dict[tuple[str, int], wt.Matrix] = {}
        bias_by_delay: Biases = {}
        for p in preds[dst]:
            plist, pbias = paths(p, frozenset({dst}))
            loop_edge = any(rank[q.origin] >= rank[dst] for q in plist)
            for q in plist:
                if pops[q.origin].kind == "cuba_li":
                    raise CompileError(
                        f"non-spiking node {q.origin!r} feeds {dst!r}; cores send spikes only",
                        f"node {q.origin!r}",
                        "use a spiking neuron (LIF, CubaLIF, IF) for hidden "
                        "layers; LI, CubaLI and I can only be network outputs",
                    )
                recurrent = rank[q.origin] >= rank[dst] if conv.loop_delay == "out_of_neuron" else loop_edge
                op = wt.identity(pops[q.origin].size) if q.op is None else q.op
                if op.shape[0] != size:
                    raise CompileError(
                        f"{op.shape[0]} values arrive at a layer of {size} neurons",
                        f"node {dst!r}",
                        "check the weight shape of the layer feeding it",
                    )
                key = (q.origin, q.delay + int(recurrent))
                groups[key] = op if key not in groups else wt.add(groups[key], op)
            late = int(loop_edge and conv.loop_delay == "into_neuron")  # the whole edge value waits a step
            for d, vec in pbias.items():
                bias_by_delay[d + late] = bias_by_delay.get(d + late, 0) + vec
        gain = gains[dst]
        pops[dst].bias_u = pops[dst].bias_u + gain * bias_by_delay.pop(0, np.zeros(size))
        per_origin: dict[str, int] = {}
        for origin, _ in groups:
            per_origin[origin] = per_origin.get(origin, 0) + 1
        for (origin, delay), op in groups.items():
            name = f"{origin}->{dst}" + (f"@{delay}" if per_origin[origin] > 1 else "")
            projections.append(
                Projection(name=name, src=origin, dst=dst, weight=wt.scale_rows(op, gain), delay=delay, source_node=dst)
            )
        late_biases = {d: v for d, v in bias_by_delay.items() if np.any(v)}
        if late_biases and clock is None:
            clock = bias_clock(_unique("bias_clock", pops))
            first_input = next(n for n in order if pops[n].kind == "input")
            # a zero-weight anchor makes the clock reachable from the inputs (for latency alignment)
            projections.append(
                Projection(
                    f"{first_input}->{clock.name}",
                    first_input,
                    clock.name,
                    np.zeros((1, pops[first_input].size)),
                    0,
                    clock.name,
                )
            )
        for d, vec in late_biases.items():  # a bias that starts d steps late: the clock's spikes, delayed
            name = f"{clock.name}->{dst}" + (f"@{d}" if len(late_biases) > 1 else "")
            projections.append(Projection(name, clock.name, dst, (gain * vec)[:, None], delay=d, source_node=dst))
    outputs: list[str] = []
    readouts: list[Readout] = []
    for name, node in nodes.items():
        if not isinstance(node, nir.Output):
            continue
        found = [(p, *paths(p, frozenset({name}))) for p in preds[name]]
        plain = all(len(pl) == 1 and pl[0].op is None and pl[0].delay == 0 and not pb for _, pl, pb in found)
        if plain:  # the Output reads neurons (or an input) directly
            outputs.extend(pl[0].origin for _, pl, _ in found if pl[0].origin not in outputs)
            continue
        readout = _readout(name, found, pops, preds)
        readouts.append(readout)
        outputs.append(readout.name)
    inputs = [n for n in order if pops[n].kind == "input"]
    populations = [pops[n] for n in order]
    if clock is not None:
        # last, so its projections count as loops in CoreNetwork.latency() and never shift the alignment
        populations.append(clock)
    return NetworkIR(populations, projections, inputs, outputs, conv, readouts)


def _readout(
    output: str, found: list[tuple[str, list[_Path], Biases]], pops: dict[str, Population], preds: dict[str, list[str]]
) -> Readout:
    """The stateless nodes before an Output as a host readout, named after the node that feeds the Output."""
    terms: list[ReadoutTerm] = []
    biases: Biases = {}
    stateless: list[str] = []
    for pred, plist, pbias in found:
        for q in plist:
            op = wt.identity(pops[q.origin].size) if q.op is None else q.op
            terms.append(ReadoutTerm(q.origin, op, q.delay))
        for d, vec in pbias.items():
            biases[d] = biases.get(d, 0) + np.asarray(vec, dtype=float)
        todo = [pred]
        while todo:  # the stateless nodes on the way back to the neurons
            n = todo.pop()
            if n not in pops and n not in stateless:
                stateless.append(n)
                todo.extend(preds[n])
    sizes = {t.weight.shape[0] for t in terms} | {np.size(v) for v in biases.values()}
    if len(sizes) != 1:
        raise CompileError(
            f"the values reaching output {output!r} have different widths {sorted(sizes)}",
            f"node {output!r}",
            "make every path into the Output produce the same number of values",
        )
    name = found[0][0] if len(found) == 1 and found[0][0] not in pops else output
    return Readout(name, sizes.pop(), terms, {d: np.broadcast_to(v, (len(np.atleast_1d(v)),)).astype(float)
                                               for d, v in biases.items()}, stateless[::-1])  # fmt: skip


def _node_reset(name: str, node: nir.NIRNode, conv: Conventions, explicit: object) -> tuple[str, bool]:
    """Reset rule and delay of one neuron node: an explicit rule, else the node's metadata, else the graph's."""
    meta = getattr(node, "metadata", None) or {}
    rule = explicit if explicit is not None else meta.get(META_PREFIX + "reset_rule", conv.reset_rule)
    rule = rule.decode() if isinstance(rule, bytes) else str(rule)
    if rule not in RESET_RULES:
        raise CompileError(f"unknown reset rule {rule!r}", f"node {name!r}", f"use one of {', '.join(RESET_RULES)}")
    return rule, bool(meta.get(META_PREFIX + "reset_delay", conv.reset_delay))


def _unique(base: str, taken: dict[str, object]) -> str:
    name, i = base, 0
    while name in taken:
        i += 1
        name = f"{base}_{i}"
    return name


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
