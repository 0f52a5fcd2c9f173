"""The golden float model: simulate a NIR graph directly on its nodes.

Deliberately independent of NetworkIR and every compiler pass, so it can judge them. One step, per
neuron node (facts ``nir-conventions.md`` §5; reproduces snnTorch and Norse spike for spike)::

    I <- I + (dt/tau_syn) * (w_in * x - I)                     (CubaLIF / CubaLI; LIF, LI, IF: I = x)
    v <- v + (dt/tau_mem) * (v_leak - v + r * I)               (IF and I: v <- v + r * I, snnTorch's reading)
    z  = v > v_threshold;  v <- v_reset where z   (reset="zero")   or   v - v_threshold   ("subtract")
    Threshold: z = x > threshold (no state)

That reset is ``reset_rule="nir"``. snnTorch's (``"snntorch"``: Synaptic, RLeaky, RSynaptic;
``"snntorch_leaky"``: Leaky) is its forward pass literally: r = v_prev > v_threshold from the membrane
stored last step; Leaky's zero reset clears v_prev before the decay, the others clear the updated v where
r; subtract takes v_threshold off the updated v where r; z = v > v_threshold; and without
``reset_delay`` the step then applies ``v - (z - r) * v_threshold`` (subtract) or ``v - (z - r) * v``
(zero): a reset now, undone where r already acted but no spike followed (snnTorch's "avoid double reset").

Stateless nodes (``compiler.reference_ops``: Affine, Linear, Scale, Flatten, Conv1d/2d, Sum/AvgPool2d)
act within the same step; Delay returns its input of ``round(delay/dt)`` steps ago (zeros before the
start); several edges into one node are summed. State starts at I = 0, v = v_leak (Norse's initial
state; snnTorch has v_leak = 0). Nested graphs are inlined with dotted names.

Loops: neuron nodes are updated in data-flow order (reverse post-order of a depth-first search from the
Input nodes, successors in edge order). Inside a step, a neuron sees the outputs of the neurons before
it; a neuron at or after it contributes its output of the previous step (zeros at step 0).
``loop_delay="out_of_neuron"`` delays exactly those neuron outputs, so a bias inside the loop is added
from step 0 (snnTorch RLeaky: ``recurrent(spk_prev) + b``); ``"into_neuron"`` (nirtorch/Norse) delays
the whole value on each edge into a neuron that closes a loop, bias included.

Everything runs in float32, like the frameworks (``precision="float64"`` for comparisons with the
float64 ideal core). The two ``order`` options are the same algebra in each framework's own float32
operation order, because a one-ulp difference can flip a spike:

* ``"decay"`` (snnTorch): ``I = a_I*I + g_I*x``, ``v = a_v*v + (g_v*I + b_v)``, with a = 1 - dt/tau,
  g = (dt/tau)*gain, b = (dt/tau)*v_leak precomputed in float64 (snnTorch: ``beta*mem + input``).
* ``"euler"`` (Norse): ``I = (I - k_I*I) + g_I*x``, ``v = v + k_v*((v_leak - v) + r*I)``, with
  k = float32(dt) * float32(1/tau) as Norse forms ``dt * tau_inv`` (Norse: ``i += x`` then decays).

Given identical input currents this reproduces each framework's voltages bit for bit when the
exported tau decodes to the framework's own factor (default parameters always do; random per-neuron
tau leave ulp-level differences). Affine outputs match torch's BLAS only to rounding, so across a
network spikes are exact in practice (0 mismatches in the tests), not by construction.

By default the order follows ``graph.metadata["neurodeploy.source"]`` (snntorch -> decay, else euler)
and the loop delay ``graph.metadata["neurodeploy.loop_delay"]`` (else "into_neuron"); the reset mode
follows ``neurodeploy.reset`` (else "zero"), and the reset rule and delay each neuron node's metadata
``neurodeploy.reset_rule`` / ``neurodeploy.reset_delay``, then the graph's (else "nir", no delay).
Unit gains that the exporters encode as r = tau/dt and w_in = tau_syn/dt land within an ulp or two of
1 after float32 storage; gains within 8 ulp of 1 are snapped to exactly 1, which is what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.compiler.reference_ops import STATELESS, add_values, apply_stateless
from neurodeploy.errors import NeurodeployError

NEURONS = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I, nir.Threshold)
ORDERS = ("decay", "euler")
LOOP_DELAYS = ("into_neuron", "out_of_neuron")
RESET_RULES = ("nir", "snntorch", "snntorch_leaky")
F32 = np.float32

__all__ = ["LOOP_DELAYS", "ORDERS", "RESET_RULES", "simulate_nir"]


def simulate_nir(
    graph: nir.NIRGraph,
    inputs: np.ndarray,
    dt: float,
    reset: str | None = None,
    order: str | None = None,
    loop_delay: str | None = None,
    precision: str = "float32",
    reset_rule: str | None = None,
    reset_delay: bool | None = None,
    refractory: int | None = None,
    initial: str = "v_leak",
) -> dict[str, np.ndarray]:
    """Run ``inputs`` (time, batch, n_in) through ``graph``; return (time, batch, n) per node.

    ``initial``: the membrane's state at step 0, ``"v_leak"`` (Norse) or ``"zero"`` (snnTorch, the
    chips, and neurodeploy's compiled networks); NIR leaves it unsaid.

    ``refractory`` (steps, default the graph's ``neurodeploy.refractory`` metadata, else 0) holds a
    spiking neuron's v at v_reset for that many steps after each spike (NIR's reset rule only).

    Keys are the (dotted) names of every neuron node (spikes as 0/1 for LIF/CubaLIF/IF/Threshold, the
    voltage for LI/CubaLI/I) and of every Output node (whatever reaches it, flattened).
    """
    meta = graph.metadata or {}
    if reset is None:
        recorded = _text(meta.get("neurodeploy.reset", "zero"))
        reset = recorded if recorded in ("zero", "subtract") else "zero"
    if reset not in ("zero", "subtract"):
        raise NeurodeployError(f"unknown reset {reset!r}", "simulate_nir(reset=...)", 'use "zero" or "subtract"')
    order = order or ("decay" if meta.get("neurodeploy.source") == "snntorch" else "euler")
    if order not in ORDERS:
        raise NeurodeployError(f"unknown order {order!r}", "simulate_nir(order=...)", f"use one of {ORDERS}")
    loop_delay = loop_delay or str(meta.get("neurodeploy.loop_delay", "into_neuron"))
    if loop_delay not in LOOP_DELAYS:
        raise NeurodeployError(f"unknown loop_delay {loop_delay!r}", "simulate_nir", f"use one of {LOOP_DELAYS}")
    if precision not in ("float32", "float64"):
        raise NeurodeployError(f"unknown precision {precision!r}", "simulate_nir", 'use "float32" or "float64"')
    dtype = np.dtype(precision)
    x = np.asarray(inputs, dtype=dtype)
    if x.ndim != 3:
        raise NeurodeployError(f"inputs must be (time, batch, n_in), got shape {x.shape}", "simulate_nir")
    if reset_rule is not None and reset_rule not in RESET_RULES:
        raise NeurodeployError(f"unknown reset_rule {reset_rule!r}", "simulate_nir", f"use one of {RESET_RULES}")
    refractory = int(meta.get("neurodeploy.refractory", 0)) if refractory is None else int(refractory)
    if refractory < 0:
        raise NeurodeployError(f"refractory must be >= 0 steps, got {refractory}", "simulate_nir(refractory=...)")
    if initial not in ("v_leak", "zero"):
        raise NeurodeployError(
            f"unknown initial state {initial!r}", "simulate_nir(initial=...)", 'use "v_leak" or "zero"'
        )
    resets = _ResetChoice(reset, reset_rule, reset_delay, meta, refractory)
    run = _Run(graph, float(dt), order, resets, loop_delay, dtype)
    if initial == "zero":
        for cell in run.cells.values():
            cell.v0 = dtype.type(0)
    return run.run(x)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _ResetChoice:
    """Reset mode for all nodes; rule and delay per node: argument, node metadata, graph metadata, default."""

    reset: str
    rule: str | None
    delay: bool | None
    graph_meta: dict
    refractory: int = 0

    def for_node(self, name: str, node: nir.NIRNode) -> tuple[str, str, bool]:
        meta = node.metadata or {}
        rule = self.rule or _text(
            meta.get("neurodeploy.reset_rule", self.graph_meta.get("neurodeploy.reset_rule", "nir"))
        )
        if rule not in RESET_RULES:
            raise NeurodeployError(f"unknown reset rule {rule!r}", name, f"use one of {RESET_RULES}")
        delay = self.delay
        if delay is None:
            delay = bool(meta.get("neurodeploy.reset_delay", self.graph_meta.get("neurodeploy.reset_delay", False)))
        return self.reset, rule, bool(delay)


def _inline(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict, list, list]:
    """Nodes and edges with nested graphs inlined (dotted names), and the inner Input/Output ports."""
    nodes, edges, ports, entry, exit_ = {}, [], [], {}, {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_ports = _inline(node, f"{prefix}{name}.")
            nodes.update(sub_nodes)
            edges += sub_edges
            entry[name] = [f"{prefix}{name}.{k}" for k, v in node.nodes.items() if isinstance(v, nir.Input)]
            exit_[name] = [f"{prefix}{name}.{k}" for k, v in node.nodes.items() if isinstance(v, nir.Output)]
            ports += sub_ports + entry[name] + exit_[name]
        else:
            nodes[prefix + name] = node
    for src, dst in graph.edges:
        edges += [(s, d) for s in exit_.get(src, [prefix + src]) for d in entry.get(dst, [prefix + dst])]
    return nodes, edges, ports


class _Run:
    """One simulation: the inlined graph, its neuron order and per-step evaluation."""

    def __init__(
        self, graph: nir.NIRGraph, dt: float, order: str, resets: _ResetChoice, loop_delay: str, dtype
    ) -> None:
        nodes, edges, ports = _inline(graph)
        for port in ports:  # inner Input/Output nodes pass values through
            ins = [s for s, d in edges if d == port]
            outs = [d for s, d in edges if s == port]
            edges = [(s, d) for s, d in edges if port not in (s, d)] + [(s, d) for s in ins for d in outs]
            del nodes[port]
        for name, node in nodes.items():
            if not isinstance(node, (nir.Input, *NEURONS, *STATELESS, nir.Delay)):
                raise NeurodeployError(
                    f"unsupported node type {type(node).__name__}",
                    name,
                    "the reference handles every NIR 1.0 node except multi-port graphs",
                )
        self.nodes, self.dtype, self.loop_delay = nodes, dtype, loop_delay
        self.preds: dict[str, list[str]] = {n: [] for n in nodes}
        for src, dst in edges:
            self.preds[dst].append(src)
        for name in nodes:
            if not self.preds[name] and not isinstance(nodes[name], nir.Input):
                raise NeurodeployError("node has no input", name, "every non-Input node needs an incoming edge")
        entry = [n for n, v in nodes.items() if isinstance(v, nir.Input)]
        if len(entry) != 1:
            raise NeurodeployError(f"expected one Input node, found {len(entry)}", "simulate_nir", "")
        self.entry = entry[0]
        self.rank = _data_flow_rank(nodes, edges, entry)
        self.neurons = sorted((n for n in nodes if isinstance(nodes[n], NEURONS)), key=self.rank.__getitem__)
        self.cells = {n: _Cell(nodes[n], dt, order, resets.for_node(n, nodes[n]), dtype) for n in self.neurons}
        for name, cell in self.cells.items():
            if resets.refractory and cell.spiking and not cell.threshold_only:
                if cell.rule != "nir":
                    raise NeurodeployError(
                        "a refractory period needs NIR's reset rule", name, 'pass reset_rule="nir" or refractory=0'
                    )
                cell.refractory = resets.refractory
        self.sources = {n: self._sources(n, frozenset()) for n in nodes}
        self.delay_steps = {
            n: np.rint(np.asarray(v.delay, dtype=float) / dt).astype(int).reshape(-1)
            for n, v in nodes.items()
            if isinstance(v, nir.Delay)
        }

    def _sources(self, name: str, seen: frozenset[str]) -> set[str]:
        """Neuron nodes whose outputs reach ``name`` through stateless nodes only."""
        out: set[str] = set()
        for p in self.preds[name]:
            if isinstance(self.nodes[p], NEURONS):
                out.add(p)
            elif p not in seen and not isinstance(self.nodes[p], nir.Input):
                out |= self._sources(p, seen | {p})
        return out

    def run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        self.batch = x.shape[1]
        in_shape = self.nodes[self.entry].input_type.get("input")
        self.in_shape = tuple(int(v) for v in np.asarray(in_shape).reshape(-1)) if in_shape is not None else (-1,)
        self.prev: dict[str, np.ndarray | None] = dict.fromkeys(self.neurons)
        self.history: dict[str, list[np.ndarray]] = {n: [] for n in self.nodes}  # end-of-step values
        trains: dict[str, list[np.ndarray]] = {
            n: [] for n in self.nodes if n in self.cells or isinstance(self.nodes[n], nir.Output)
        }
        for t in range(x.shape[0]):
            self.t, self.x_t, self.cur, self.memo = t, x[t], {}, {}
            for n in self.neurons:
                total = None
                for p in self.preds[n]:
                    value = self._edge(p, n)
                    if value is not None:
                        total = add_values(total, value.reshape(self.batch, -1))
                self.cur[n] = self.cells[n].step(total, self.batch)
            end = len(self.rank) + 1
            for name in self.nodes:
                if name in self.cells:
                    self.history[name].append(self.cur[name])
                elif not isinstance(self.nodes[name], nir.Input):
                    self.history[name].append(self._value(name, end))
            for name in trains:
                trains[name].append(self.history[name][-1].reshape(self.batch, -1))
            self.prev = dict(self.cur)
        return {name: np.stack(steps) for name, steps in trains.items()}

    def _edge(self, pred: str, target: str) -> np.ndarray | None:
        """What travels on edge pred -> target (a neuron) in this step."""
        origins = {pred} if pred in self.cells else self.sources[pred]
        closes_loop = any(self.rank[s] >= self.rank[target] for s in origins)
        if self.loop_delay == "into_neuron" and closes_loop:
            return self.history[pred][self.t - 1] if self.t > 0 else None
        return self._value(pred, self.rank[target])

    def _value(self, name: str, view: int) -> np.ndarray:
        """Output of ``name`` in this step as seen by a neuron of rank ``view`` (earlier neurons: current)."""
        key = (name, view)
        if key in self.memo:
            return self.memo[key]
        node = self.nodes[name]
        if isinstance(node, nir.Input):
            out = self.x_t.reshape(self.batch, *self.in_shape)
        elif name in self.cells:
            if self.rank[name] < view:
                out = self.cur[name]
            else:
                out = self.prev[name] if self.prev[name] is not None else self.cells[name].zeros(self.batch)
            if out.size == self.batch * self.cells[name].size:
                out = out.reshape(self.batch, *self.cells[name].shape)  # the layer's own (C, H, W) shape
        elif isinstance(node, nir.Delay):
            out = self._delayed(name, view)
        else:
            total = None
            for p in self.preds[name]:
                total = add_values(total, self._value(p, view))
            out = apply_stateless(name, node, total)
        self.memo[key] = out
        return out

    def _delayed(self, name: str, view: int) -> np.ndarray:
        steps = self.delay_steps[name]
        now = None
        for p in self.preds[name]:
            now = add_values(now, self._value(p, view))
        flat = now.reshape(self.batch, -1)
        out = np.zeros_like(flat)
        for d in np.unique(steps):
            mask = np.broadcast_to(steps == d, flat.shape[1:])
            if d == 0:
                out[:, mask] = flat[:, mask]
            elif self.t - d >= 0:
                past = self._input_history(name, self.t - d)
                out[:, mask] = past[:, mask]
        return out.reshape(now.shape)

    def _input_history(self, name: str, t: int) -> np.ndarray:
        total = None
        for p in self.preds[name]:
            total = add_values(total, self.history[p][t])
        return total.reshape(self.batch, -1)


def _data_flow_rank(nodes: dict, edges: list, entry: list[str]) -> dict[str, int]:
    """Reverse post-order of a depth-first search from the Input nodes, successors in edge order."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    for s, d in edges:
        succ[s].append(d)
    post: list[str] = []
    seen: set[str] = set()
    for start in [*entry, *nodes]:
        if start in seen:
            continue
        stack = [(start, iter(succ[start]))]
        seen.add(start)
        while stack:
            node, it = stack[-1]
            nxt = next((m for m in it if m not in seen), None)
            if nxt is None:
                post.append(node)
                stack.pop()
            else:
                seen.add(nxt)
                stack.append((nxt, iter(succ[nxt])))
    return {n: i for i, n in enumerate(reversed(post))}


def _f64(value: object) -> np.ndarray:
    return np.asarray(value, dtype=np.float64).reshape(-1) if np.size(value) > 1 else np.asarray(value, np.float64)


def _gain(value: np.ndarray, dtype) -> np.ndarray:
    """float64 coefficient -> dtype, snapping exporter-encoded unit gains to exactly 1."""
    out = value.astype(dtype)
    return np.where(np.abs(value - 1.0) <= 8 * np.finfo(F32).eps, dtype.type(1), out).astype(dtype)


@dataclass
class _Stage:
    """One leaky integration ``s <- s + k*(leak - s + gain_in * x)`` in either operation order."""

    decay: np.ndarray  # 1 - k        (decay order)
    k: np.ndarray  # dt / tau         (euler order)
    gain: np.ndarray  # k * gain_in   (decay order)
    gain_in: np.ndarray  # gain_in    (euler order)
    leak: np.ndarray  # v_leak
    bias: np.ndarray  # k * v_leak    (decay order)

    @classmethod
    def build(cls, dt: float, tau: object, gain_in: object, leak: object, dtype) -> _Stage:
        k = dt / _f64(tau)
        gain_in64 = _f64(gain_in)
        kd = dtype.type(dt) * (dtype.type(1) / _f64(tau).astype(dtype))  # Norse: dt * tau_inv, in float32
        return cls(
            decay=(1.0 - k).astype(dtype),
            k=kd,
            gain=_gain(k * gain_in64, dtype),
            gain_in=_gain(gain_in64, dtype),
            leak=_f64(leak).astype(dtype),
            bias=(k * _f64(leak)).astype(dtype),
        )

    def step(self, s: np.ndarray, x: np.ndarray, order: str, synapse: bool = False) -> np.ndarray:
        if order == "decay":
            return self.decay * s + (self.gain * x + self.bias)
        if synapse:  # Norse LIFCell: i += x, and after the voltage update i += -k*i
            return (s - self.k * s) + self.gain * x
        return s + self.k * ((self.leak - s) + self.gain_in * x)


class _Cell:
    """State and step of one neuron node on flat (batch, n) values."""

    def __init__(self, node: nir.NIRNode, dt: float, order: str, reset: tuple[str, str, bool], dtype) -> None:
        (self.reset, self.rule, self.reset_delay), self.order, self.dtype = reset, order, dtype
        self.syn: _Stage | None = None
        self.mem: _Stage | None = None
        self.r_if: np.ndarray | None = None
        self.threshold_only = isinstance(node, nir.Threshold)
        if isinstance(node, nir.CubaLIF | nir.CubaLI):
            self.syn = _Stage.build(dt, node.tau_syn, node.w_in, 0.0, dtype)
            self.mem = _Stage.build(dt, node.tau_mem, node.r, node.v_leak, dtype)
        elif isinstance(node, nir.LIF | nir.LI):
            self.mem = _Stage.build(dt, node.tau, node.r, node.v_leak, dtype)
        elif isinstance(node, nir.IF | nir.I):  # v <- v + r*I per step (snnTorch PR #452, Norse IAFCell)
            self.r_if = _gain(_f64(node.r), dtype)
        self.spiking = isinstance(node, nir.LIF | nir.CubaLIF | nir.IF | nir.Threshold)
        threshold = node.threshold if self.threshold_only else getattr(node, "v_threshold", np.inf)
        self.v_th = _f64(threshold).astype(dtype)
        self.v_reset = _f64(getattr(node, "v_reset", 0.0)).astype(dtype)
        if not self.spiking or self.threshold_only:
            self.rule = "nir"
        elif self.rule != "nir" and np.any(self.v_reset != 0):
            raise NeurodeployError(
                "snnTorch's reset rule has no reset potential, but v_reset != 0",
                "simulate_nir",
                'set v_reset = 0 or reset_rule="nir"',
            )
        self.v0 = self.mem.leak if self.mem is not None else dtype.type(0)
        size_field = threshold if self.spiking else (node.r if self.r_if is not None else node.v_leak)
        self.shape = tuple(np.shape(size_field)) or (1,)
        self.size = int(np.prod(self.shape))
        self.i: np.ndarray | None = None
        self.v: np.ndarray | None = None
        self.refractory = 0  # steps held at v_reset after a spike
        self.count: np.ndarray | None = None

    def zeros(self, batch: int) -> np.ndarray:
        return np.zeros((batch, self.size), dtype=self.dtype)

    def step(self, x: np.ndarray | None, batch: int) -> np.ndarray:
        x = self.zeros(batch) if x is None else x
        if self.threshold_only:
            return (x > self.v_th).astype(self.dtype)
        if self.v is None:
            self.i = np.zeros_like(x, dtype=self.dtype)
            self.v = np.broadcast_to(self.v0, x.shape).astype(self.dtype)
        current = x
        if self.syn is not None:
            self.i = current = self.syn.step(self.i, x, self.order, synapse=True)
        if self.rule != "nir":
            return self._snntorch_step(current)
        v = self._integrate(self.v, current)
        if not self.spiking:
            self.v = v
            return v
        if self.refractory:
            if self.count is None:
                self.count = np.zeros(v.shape, dtype=np.int64)
            held = self.count > 0
            v = np.where(held, self.v_reset, v)
            z = (v > self.v_th) & ~held
            self.count = np.where(z, self.refractory, np.maximum(self.count - 1, 0))
        else:
            z = v > self.v_th
        self.v = np.where(z, self.v_reset if self.reset == "zero" else v - self.v_th, v).astype(self.dtype)
        return z.astype(self.dtype)

    def _integrate(self, v: np.ndarray, current: np.ndarray) -> np.ndarray:
        return self.mem.step(v, current, self.order) if self.mem is not None else v + self.r_if * current

    def _snntorch_step(self, current: np.ndarray) -> np.ndarray:
        """snnTorch 1.0.0's Leaky/Synaptic ``forward`` (``_neurons/leaky.py``, ``synaptic.py``), op for op."""
        zero, subtract = self.dtype.type(0), self.reset == "subtract"
        r = self.v > self.v_th  # mem_reset(mem): heaviside(mem - threshold) of the stored membrane
        v_prev = np.where(r, zero, self.v) if not subtract and self.rule == "snntorch_leaky" else self.v
        v = self._integrate(v_prev, current)
        if subtract:  # _base_sub: mem - reset * threshold
            v = np.where(r, v - self.v_th, v)
        elif self.rule == "snntorch":  # Synaptic._base_zero: mem - reset * mem
            v = np.where(r, zero, v)
        z = v > self.v_th
        if not self.reset_delay:  # do_reset = spk - reset; mem - do_reset * (threshold or mem)
            again = self.v_th if subtract else v
            v = np.where(z & ~r, v - again, np.where(~z & r, v + again, v))
        self.v = v.astype(self.dtype)
        return z.astype(self.dtype)
