"""The vectorised time loop: every population and projection of a CoreNetwork, all samples at once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from neurodeploy.emulator.floatcore import FloatCubaState
from neurodeploy.emulator.loihi import LoihiCubaState, prepare_weights, shift_by_exp
from neurodeploy.emulator.network import CoreNetwork, CoreProjection

RECORDABLE = ("spikes", "u", "v")


@dataclass
class SimulationOutput:
    """Per-population recordings, each shaped (time, *batch_shape, neurons), plus counters."""

    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    u: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)


class _ProjectionKernel:
    """Weights prepared once, and a ring buffer of source spikes for the projection's delay."""

    def __init__(self, proj: CoreProjection, numerics: str) -> None:
        self.proj = proj
        if numerics == "loihi":
            self.weight_t = prepare_weights(proj.weight, proj.num_weight_bits, proj.sign_mode).astype(float)
        else:
            self.weight_t = np.asarray(proj.weight, dtype=float)
        self.weight_t = np.swapaxes(self.weight_t, -1, -2)  # (.., src, dst) for spikes @ W^T
        self.integer = numerics == "loihi"
        self.fan_out = np.count_nonzero(self.weight_t, axis=-1)  # per source neuron
        self.events = 0

    def apply(self, spikes: np.ndarray) -> np.ndarray:
        # Spikes are 0/1 and weights are integers below 2^9: float64 sums are exact up to 2^53.
        self.events += int((spikes * self.fan_out).sum())
        acc = spikes.astype(float) @ self.weight_t
        if not self.integer:
            return acc
        return shift_by_exp(np.rint(acc).astype(np.int64), self.proj.weight_exp)


def simulate(
    net: CoreNetwork,
    inputs: Mapping[str, np.ndarray],
    steps: int | None = None,
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
) -> SimulationOutput:
    """Run ``net`` on input spike trains shaped (time, *batch_shape, neurons).

    Input steps beyond the given trains are silent, so ``steps`` may exceed the input length to let
    the last spikes travel through the network's latency.
    """
    record = tuple(record)
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"cannot record {sorted(unknown)}; choose from {RECORDABLE}")
    first = next(iter(inputs.values()))
    t_in = first.shape[0]
    batch_shape = first.shape[1:-1]
    steps = t_in if steps is None else int(steps)
    wanted = set(populations) if populations is not None else {p.name for p in net.populations}

    states = {}
    for pop in net.populations:
        if pop.name in net.inputs:
            continue
        shape = (*batch_shape, pop.size)
        if net.numerics == "loihi":
            states[pop.name] = LoihiCubaState(shape, pop.params)
        else:
            states[pop.name] = FloatCubaState(shape, pop.params, pop.reset, pop.spiking)
    kernels = [_ProjectionKernel(pr, net.numerics) for pr in net.projections]
    max_delay = max((pr.delay for pr in net.projections), default=0)
    history = {p.name: [np.zeros((*batch_shape, p.size), dtype=bool)] * (max_delay + 1) for p in net.populations}
    order = net.update_order()
    incoming = {p.name: [k for k in kernels if k.proj.dst == p.name] for p in net.populations}
    out = SimulationOutput()
    rec = {kind: {n: [] for n in wanted} for kind in record}
    dtype = np.int64 if net.numerics == "loihi" else float

    for t in range(steps):
        current: dict[str, np.ndarray] = {}
        for pop in order:
            if pop.name in net.inputs:
                train = inputs[pop.name]
                s = train[t].astype(bool) if t < t_in else np.zeros((*batch_shape, pop.size), dtype=bool)
            else:
                a_in = np.zeros((*batch_shape, pop.size), dtype=dtype)
                for k in incoming[pop.name]:
                    d = k.proj.delay
                    src = current[k.proj.src] if d == 0 else history[k.proj.src][-d]
                    if src.any():
                        a_in = a_in + k.apply(src)
                s = states[pop.name].step(a_in)
            current[pop.name] = s
            if pop.name in wanted:
                if "spikes" in rec:
                    rec["spikes"][pop.name].append(s)
                for kind in ("u", "v"):
                    if kind in rec and pop.name in states:
                        rec[kind][pop.name].append(getattr(states[pop.name], kind).copy())
        for name, s in current.items():
            hist = history[name]
            hist.append(s)
            del hist[0]

    for kind, per_pop in rec.items():
        target = getattr(out, kind)
        for name, frames in per_pop.items():
            if frames:
                target[name] = np.stack(frames)
    out.counters = {
        "u_wraps": sum(s.u_wraps for s in states.values()),
        "v_saturations": sum(s.v_saturations for s in states.values()),
        "synaptic_events": sum(k.events for k in kernels),
    }
    return out
