"""The golden float model: simulate a feed-forward NIR graph directly on its nodes.

Deliberately independent of NetworkIR and every compiler pass, so it can judge them. One step, per
neuron node (facts ``nir-conventions.md`` §5; reproduces snnTorch and Norse spike for spike)::

    I <- I + (dt/tau_syn) * (w_in * x - I)                     (CubaLIF / CubaLI; LIF, LI, IF: I = x)
    v <- v + (dt/tau_mem) * (v_leak - v + r * I)               (IF: v <- v + r * I, snnTorch/Norse reading)
    z  = v > v_threshold;  v <- v_reset where z   (reset="zero")   or   v - v_threshold   ("subtract")

Linear nodes (Affine, Linear, Scale) act within the same step, so there is no latency anywhere;
several edges into one node are summed. State starts at I = 0, v = v_leak (Norse's initial state;
snnTorch has v_leak = 0).

Everything runs in float32, like the frameworks. The two ``order`` options are the same algebra in
each framework's own float32 operation order, because a one-ulp difference can flip a spike:

* ``"decay"`` (snnTorch): ``I = a_I*I + g_I*x``, ``v = a_v*v + (g_v*I + b_v)``, with a = 1 - dt/tau,
  g = (dt/tau)*gain, b = (dt/tau)*v_leak precomputed in float64 (snnTorch: ``beta*mem + input``).
* ``"euler"`` (Norse): ``I = (I - k_I*I) + g_I*x``, ``v = v + k_v*((v_leak - v) + r*I)``, with
  k = float32(dt) * float32(1/tau) as Norse forms ``dt * tau_inv`` (Norse: ``i += x`` then decays).

Given identical input currents this reproduces each framework's voltages bit for bit when the
exported tau decodes to the framework's own factor (default parameters always do; random per-neuron
tau leave ulp-level differences). Affine outputs match torch's BLAS only to rounding, so across a
network spikes are exact in practice (0 mismatches in the tests), not by construction.

By default the order follows ``graph.metadata["neurodeploy.source"]`` (snntorch -> decay, else euler).
Unit gains that the exporters encode as r = tau/dt and w_in = tau_syn/dt land within an ulp or two of
1 after float32 storage; gains within 8 ulp of 1 are snapped to exactly 1, which is what they mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np

from neurodeploy.errors import NeurodeployError

NEURONS = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI)
LINEARS = (nir.Affine, nir.Linear, nir.Scale)
ORDERS = ("decay", "euler")
F32 = np.float32

__all__ = ["ORDERS", "simulate_nir"]


def simulate_nir(
    graph: nir.NIRGraph,
    inputs: np.ndarray,
    dt: float,
    reset: str = "zero",
    order: str | None = None,
) -> dict[str, np.ndarray]:
    """Run ``inputs`` (time, batch, n_in) through ``graph``; return (time, batch, n) per node.

    Keys are the names of every neuron node (spikes as 0/1 for LIF/CubaLIF/IF, the voltage for
    LI/CubaLI) and of every Output node (whatever reaches it).
    """
    if reset not in ("zero", "subtract"):
        raise NeurodeployError(f"unknown reset {reset!r}", "simulate_nir(reset=...)", 'use "zero" or "subtract"')
    order = order or ("decay" if (graph.metadata or {}).get("neurodeploy.source") == "snntorch" else "euler")
    if order not in ORDERS:
        raise NeurodeployError(f"unknown order {order!r}", "simulate_nir(order=...)", f"use one of {ORDERS}")
    x = np.asarray(inputs, dtype=F32)
    if x.ndim != 3:
        raise NeurodeployError(f"inputs must be (time, batch, n_in), got shape {x.shape}", "simulate_nir")

    names, preds = _topological(graph)
    entry = [n for n in names if isinstance(graph.nodes[n], nir.Input)]
    if len(entry) != 1:
        raise NeurodeployError(f"expected one Input node, found {len(entry)}", "simulate_nir", "")
    cells = {n: _Cell(graph.nodes[n], float(dt), order, reset) for n in names if isinstance(graph.nodes[n], NEURONS)}
    trains: dict[str, list[np.ndarray]] = {n: [] for n in names if n in cells or isinstance(graph.nodes[n], nir.Output)}
    for t in range(x.shape[0]):
        values: dict[str, np.ndarray] = {}
        for name in names:
            node = graph.nodes[name]
            if isinstance(node, nir.Input):
                values[name] = x[t]
                continue
            total = values[preds[name][0]]
            for src in preds[name][1:]:
                total = total + values[src]
            if name in cells:
                values[name] = cells[name].step(total)
            else:
                values[name] = _linear(node, total)
            if name in trains:
                trains[name].append(values[name])
    return {name: np.stack(steps) for name, steps in trains.items()}


def _topological(graph: nir.NIRGraph) -> tuple[list[str], dict[str, list[str]]]:
    """Kahn's order (nir.read returns nodes alphabetically); a cycle means a recurrent graph."""
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            raise NeurodeployError("nested graphs are not supported", name, "flatten the graph first")
        if not isinstance(node, (nir.Input, nir.Output, *NEURONS, *LINEARS)):
            raise NeurodeployError(
                f"unsupported node type {type(node).__name__}",
                name,
                "the reference handles Affine, Linear, Scale and LIF/CubaLIF/IF/LI/CubaLI",
            )
    preds: dict[str, list[str]] = {n: [] for n in graph.nodes}
    for src, dst in graph.edges:
        preds[dst].append(src)
    indegree = {n: len(p) for n, p in preds.items()}
    ready = [n for n in graph.nodes if indegree[n] == 0]
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for src, dst in graph.edges:
            if src == name:
                indegree[dst] -= 1
                if indegree[dst] == 0:
                    ready.append(dst)
    if len(order) != len(graph.nodes):
        raise NeurodeployError("the graph has a cycle", "simulate_nir", "the reference is feed-forward only")
    for name in order:
        if not preds[name] and not isinstance(graph.nodes[name], nir.Input):
            raise NeurodeployError("node has no input", name, "every non-Input node needs an incoming edge")
    return order, preds


def _linear(node: nir.NIRNode, x: np.ndarray) -> np.ndarray:
    """Affine / Linear / Scale / Output on a (batch, n) step."""
    if isinstance(node, nir.Affine):
        return x @ _f32(node.weight).T + _f32(node.bias)
    if isinstance(node, nir.Linear):
        return x @ _f32(node.weight).T
    if isinstance(node, nir.Scale):
        return x * _f32(node.scale)
    return x  # Output


def _f32(value: object) -> np.ndarray:
    return np.asarray(value, dtype=F32)


def _f64(value: object) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def _gain(value: np.ndarray) -> np.ndarray:
    """float64 coefficient -> float32, snapping exporter-encoded unit gains to exactly 1."""
    out = value.astype(F32)
    return np.where(np.abs(value - 1.0) <= 8 * np.finfo(F32).eps, F32(1), out).astype(F32)


@dataclass
class _Stage:
    """One leaky integration ``s <- s + k*(leak - s + gain_in * x)`` in either float32 order."""

    decay: np.ndarray  # 1 - k        (decay order)
    k: np.ndarray  # dt / tau         (euler order)
    gain: np.ndarray  # k * gain_in   (decay order)
    gain_in: np.ndarray  # gain_in    (euler order)
    leak: np.ndarray  # v_leak
    bias: np.ndarray  # k * v_leak    (decay order)

    @classmethod
    def build(cls, dt: float, tau: object, gain_in: object, leak: object) -> _Stage:
        k = dt / _f64(tau)
        gain_in64 = _f64(gain_in)
        k32 = F32(dt) * (F32(1) / _f32(tau))  # Norse: dt * tau_inv, in float32
        return cls(
            decay=(1.0 - k).astype(F32),
            k=k32,
            gain=_gain(k * gain_in64),
            gain_in=_gain(gain_in64),
            leak=_f32(leak),
            bias=(k * _f64(leak)).astype(F32),
        )

    def step(self, s: np.ndarray, x: np.ndarray, order: str, synapse: bool = False) -> np.ndarray:
        if order == "decay":
            return self.decay * s + (self.gain * x + self.bias)
        if synapse:  # Norse LIFCell: i += x, and after the voltage update i += -k*i
            return (s - self.k * s) + self.gain * x
        return s + self.k * ((self.leak - s) + self.gain_in * x)


class _Cell:
    """State and step of one neuron node, vectorised over the batch."""

    def __init__(self, node: nir.NIRNode, dt: float, order: str, reset: str) -> None:
        self.order, self.reset = order, reset
        self.syn: _Stage | None = None
        self.mem: _Stage | None = None
        self.r_if: np.ndarray | None = None
        if isinstance(node, nir.CubaLIF | nir.CubaLI):
            self.syn = _Stage.build(dt, node.tau_syn, node.w_in, 0.0)
            self.mem = _Stage.build(dt, node.tau_mem, node.r, node.v_leak)
        elif isinstance(node, nir.LIF | nir.LI):
            self.mem = _Stage.build(dt, node.tau, node.r, node.v_leak)
        else:  # IF: v <- v + r*I per step (snnTorch PR #452, Norse IAFCell, normalize.py)
            self.r_if = _gain(_f64(node.r))
        self.spiking = isinstance(node, nir.LIF | nir.CubaLIF | nir.IF)
        self.v_th = _f32(getattr(node, "v_threshold", np.inf))
        self.v_reset = _f32(getattr(node, "v_reset", 0.0))
        self.v0 = self.mem.leak if self.mem is not None else F32(0)
        self.i: np.ndarray | None = None
        self.v: np.ndarray | None = None

    def step(self, x: np.ndarray) -> np.ndarray:
        if self.v is None:
            self.i = np.zeros_like(x, dtype=F32)
            self.v = np.broadcast_to(self.v0, x.shape).astype(F32)
        current = x
        if self.syn is not None:
            self.i = current = self.syn.step(self.i, x, self.order, synapse=True)
        v = self.mem.step(self.v, current, self.order) if self.mem is not None else self.v + self.r_if * current
        if not self.spiking:
            self.v = v
            return v
        z = v > self.v_th
        self.v = np.where(z, self.v_reset if self.reset == "zero" else v - self.v_th, v).astype(F32)
        return z.astype(F32)
