"""The vectorised time loop: every population and projection of a CoreNetwork, all samples at once.

Why it is fast, and still bit-exact (see ``synapses.py`` for the integer bounds):

- Populations are run stage by stage: a stage is a strongly connected group of populations (one
  population in a feed-forward net). Input arriving from earlier stages is known for a whole block of
  steps before the stage runs, so it is summed for the block at once (one BLAS call or one sparse
  product per projection and block, not one per step). Only projections inside a stage (recurrence)
  are applied step by step, event-driven when few sources spike.
- Loihi neurons use ``LoihiFastState`` (float64 holding integers, in place) whenever the inputs a
  population can receive are provably below 2^52; otherwise the int64 ``LoihiCubaState``.
- Batch axes broadcast: inputs (time, *batch, n), parameters (n,) or (*instances, 1, n), weights
  (n_dst, n_src) or (*instances, n_dst, n_src) (shared by samples). A population carries only the
  batch axes it depends on (an input shared by all instances is projected once).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.emulator import kernels as compiled_kernels
from neurodeploy.emulator.floatcore import FloatCubaState
from neurodeploy.emulator.int8gemm import torch_if_loaded
from neurodeploy.emulator.kernels import LoihiCompiledState
from neurodeploy.emulator.loihi import LoihiCubaState, LoihiFastState, Violation
from neurodeploy.emulator.network import CoreNetwork, CorePopulation
from neurodeploy.emulator.synapses import FLOAT64_EXACT, Synapse, instance_shape
from neurodeploy.errors import NeurodeployError

RECORDABLE = ("spikes", "u", "v")
# Elements (steps x batch x neurons) of one block's precomputed input buffer per population: 32 MB.
BLOCK_ELEMENTS = 1 << 22
# |decay(u)| after an int32 wrap is below 2^31; what a population may receive must keep the sum exact.
_FAST_HEADROOM = FLOAT64_EXACT // 2 - (1 << 32)
# Set inside ``collect_overflow``: (track peaks?, list receiving each run's ``overflow``).
_COLLECT: ContextVar[tuple[bool, list] | None] = ContextVar("neurodeploy_collect_overflow", default=None)


@dataclass
class SimulationOutput:
    """Per-population recordings, each shaped (time, *batch_shape, neurons), plus counters.

    ``paths`` says how the work was done (kernel calls per path, neuron state per population); it is
    diagnostic only. ``overflow`` splits the u/v counters by population (see ``population_overflow``),
    so the compiler can say which layer saturates and when.
    """

    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    u: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    paths: dict[str, Any] = field(default_factory=dict)
    overflow: dict[str, dict[str, Any]] = field(default_factory=dict)
    # networks with programmable neurons (``emulator.stepped``): {channel: {population: (time, *batch, n)}}
    graded: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def _lead(arr: Any) -> tuple[int, ...]:
    return tuple(np.shape(arr)[:-1])


def population_batches(net: CoreNetwork, inputs: Mapping[str, np.ndarray]) -> tuple[tuple[int, ...], dict]:
    """The full batch shape, and the batch axes each population actually varies over."""
    pb: dict[str, tuple[int, ...]] = {}
    try:
        for pop in net.populations:
            if pop.name in net.inputs:
                pb[pop.name] = tuple(np.shape(inputs[pop.name])[1:-1])
            else:
                pb[pop.name] = np.broadcast_shapes(*(_lead(v) for v in pop.params.values()))
        changed = True
        while changed:  # grows monotonically, so this ends (recurrent loops need a second pass)
            changed = False
            for pr in net.projections:
                if pr.dst in net.inputs:
                    continue
                new = np.broadcast_shapes(pb[pr.dst], pb[pr.src], instance_shape(pr))
                changed |= new != pb[pr.dst]
                pb[pr.dst] = new
        full = np.broadcast_shapes(*pb.values())
    except ValueError as err:
        raise NeurodeployError(
            f"batch axes do not broadcast: {err}",
            where="inputs / parameters / weights",
            hint="inputs are (time, *batch, n); per-instance parameters (instances, 1, n); "
            "per-instance weights (instances, n_dst, n_src)",
        ) from err
    return tuple(full), pb


def stages(net: CoreNetwork) -> list[list[CorePopulation]]:
    """Strongly connected groups of populations, in an order where every projection between groups
    goes forward; members keep ``update_order`` (zero-delay projections go forward inside a group)."""
    order = [p.name for p in net.update_order()]
    succ: dict[str, set[str]] = {n: set() for n in order}
    for pr in net.projections:
        if pr.dst not in net.inputs:
            succ[pr.src].add(pr.dst)
    reach: dict[str, set[str]] = {}
    for n in order:
        seen, todo = {n}, [n]
        while todo:
            for m in succ[todo.pop()] - seen:
                seen.add(m)
                todo.append(m)
        reach[n] = seen
    comp: dict[str, int] = {}
    groups: list[list[str]] = []
    for n in order:
        if n not in comp:
            members = [m for m in order if m in reach[n] and n in reach[m]]
            comp.update({m: len(groups) for m in members})
            groups.append(members)
    preds = [{comp[a] for a in order for b in succ[a] if comp[b] == g and comp[a] != g} for g in range(len(groups))]
    ready = [g for g in range(len(groups)) if not preds[g]]
    heapq.heapify(ready)
    out: list[list[CorePopulation]] = []
    while ready:
        g = heapq.heappop(ready)
        out.append([net.population(n) for n in groups[g]])
        for h in range(len(groups)):
            if g in preds[h]:
                preds[h].discard(g)
                if not preds[h]:
                    heapq.heappush(ready, h)
    return out


def _raise_first(viol: list[tuple[Violation, int, str]]) -> None:
    v, _, name = min(viol, key=lambda x: (x[0].step, x[1]))
    raise NeurodeployError(
        f"strict mode: {v.describe()}",
        where=f"population {name!r}",
        hint="the chip would wrap u / saturate v here; lower the weights or weight_exp, or pass strict=False",
    )


def population_overflow(state: Any, peaks: bool) -> dict[str, Any]:
    """One population's u wraps, v saturations (int32 overflows included, as in ``counters``) and first
    violation; with ``peaks`` also the largest |u| and |v| before any fix-up, in register units."""
    first = getattr(state, "first_violation", None)
    out: dict[str, Any] = {
        "u_wraps": int(state.u_wraps),
        "v_saturations": int(state.v_saturations),
        "first_violation": first,
    }
    if peaks and hasattr(state, "peak_u"):
        out["peak_u"], out["peak_v"] = float(state.peak_u), float(state.peak_v)
    return out


@contextmanager
def collect_overflow(peaks: bool = True) -> Iterator[list[dict[str, dict[str, Any]]]]:
    """Within the block, every ``simulate`` call appends its per-population ``overflow`` to the yielded
    list, with peaks when ``peaks``.

    Why a context: the compiler needs these numbers from the very run that ``runner.run_core`` makes
    for its float comparison (inputs checked, steps and alignment as ``neurodeploy.run``), without a
    second run and without threading an option through every runner and backend.
    """
    sink: list[dict[str, dict[str, Any]]] = []
    token = _COLLECT.set((peaks, sink))
    try:
        yield sink
    finally:
        _COLLECT.reset(token)


def simulate(
    net: CoreNetwork,
    inputs: Mapping[str, np.ndarray],
    steps: int | None = None,
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
    *,
    strict: bool = False,
    block_steps: int | None = None,
    kernels: str = "auto",
    peaks: bool = False,
) -> SimulationOutput:
    """Run ``net`` on input spike trains shaped (time, *batch_shape, neurons).

    Input steps beyond the given trains are silent, so ``steps`` may exceed the input length to let
    the last spikes travel through the network's latency. ``strict=True`` raises
    ``NeurodeployError`` naming the population and step of the earliest u wrap, v saturation or int32
    overflow (the chip does these silently). ``block_steps`` overrides how many steps of inter-stage
    input are summed at once (default: as many as fit ``BLOCK_ELEMENTS``); results never depend on it.
    ``kernels`` picks how Loihi numbers are computed: "numba" (compiled neuron update, a block of steps
    per call) or "auto" (numba when installed and the run is long enough to repay loading it), both
    also summing dense blocks as an int8 GEMM when this process has imported torch (``int8gemm``), or
    "numpy" (neither). Results never depend on it. ``peaks=True`` (Loihi numerics) also keeps each
    population's largest |u| and |v| in ``overflow``: a little slower, so only the compiler's check asks
    (also through ``collect_overflow``).
    """
    collect = _COLLECT.get()
    peaks = peaks or (collect is not None and collect[0])
    if kernels not in ("auto", "numba", "numpy"):
        raise ValueError(f"kernels must be 'auto', 'numba' or 'numpy', got {kernels!r}")
    if net.numerics == "xylo":  # saturating sums depend on event order: the chip's own step loop, spike counts
        from neurodeploy.emulator.xylo import simulate_xylo

        return simulate_xylo(net, inputs, steps, record, populations, strict=strict)
    from neurodeploy.emulator.stepped import needs_stepping, simulate_stepped

    if needs_stepping(net):  # programmable neurons or plastic projections: state moves every step
        return simulate_stepped(net, inputs, steps, record, populations)
    record = tuple(record)
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"cannot record {sorted(unknown)}; choose from {RECORDABLE}")
    missing = [n for n in net.inputs if n not in inputs]
    if missing:
        raise NeurodeployError(f"no input spike trains for {missing}", where="simulate")
    trains = {n: np.asarray(inputs[n]) for n in net.inputs}
    t_in = next(iter(trains.values())).shape[0] if trains else 0
    steps = t_in if steps is None else int(steps)
    wanted = set(populations) if populations is not None else {p.name for p in net.populations}
    batch, pb = population_batches(net, trains)
    loihi = net.numerics == "loihi"
    updates = steps * sum(math.prod(pb[p.name]) * p.size for p in net.populations if p.name not in net.inputs)
    use_numba = kernels == "numba" or (kernels == "auto" and compiled_kernels.worth_it(updates))

    # Spike trains of every population, (steps, *pb, n): sources for later stages and the recording.
    spk: dict[str, np.ndarray] = {}
    for pop in net.populations:
        spk[pop.name] = np.zeros((steps, *pb[pop.name], pop.size), dtype=bool)
        if pop.name in trains:
            x = trains[pop.name][:steps]
            spk[pop.name][: x.shape[0]] = x != 0

    torch = torch_if_loaded() if kernels != "numpy" else None
    loihi1 = loihi and net.arithmetic == "loihi1"  # Loihi 1's wraps: only the int64 neuron update implements them
    synapses = {id(pr): Synapse(pr, net.numerics, pb[pr.dst], torch, event_pass=use_numba,
                                arithmetic=net.arithmetic)
                for pr in net.projections if pr.dst not in net.inputs}  # fmt: skip
    incoming = {p.name: [pr for pr in net.projections if pr.dst == p.name and id(pr) in synapses]
                for p in net.populations}  # fmt: skip
    states: dict[str, Any] = {}
    ext_dtype: dict[str, Any] = {}
    for pop in net.populations:
        if pop.name in net.inputs:
            continue
        shape = (*pb[pop.name], pop.size)
        syns = [synapses[id(pr)] for pr in incoming[pop.name]]
        if not loihi:
            states[pop.name] = FloatCubaState(
                shape, pop.params, pop.reset, pop.spiking, pop.reset_rule, pop.reset_delay
            )
            ext_dtype[pop.name] = float
        elif not loihi1 and sum(sy.bound for sy in syns) < _FAST_HEADROOM:
            fast = compiled_kernels.LoihiCompiledState if use_numba else LoihiFastState
            states[pop.name] = fast(shape, pop.params, pop.reset)
            # float32 holds the summed input exactly while it counts fewer than 2^24 units of 2^6
            exact32 = all(sy.dtype == np.float32 for sy in syns) and sum(sy.bound for sy in syns) < 2.0**30
            ext_dtype[pop.name] = np.float32 if exact32 else np.float64
        else:  # Loihi 1 arithmetic, or inputs that could leave float64's exact range: the int64 reference
            states[pop.name] = LoihiCubaState(shape, pop.params, pop.reset, net.arithmetic)
            ext_dtype[pop.name] = np.int64
            for sy in syns:
                sy.mode = "int"
        if peaks and loihi:
            states[pop.name].track_peaks = True
    rec = {kind: {p.name: np.zeros((steps, *pb[p.name], p.size), dtype=np.int64 if loihi else float)
                  for p in net.populations if p.name in wanted and p.name in states}
           for kind in ("u", "v") if kind in record}  # fmt: skip

    per_step = max((math.prod(pb[n]) * net.population(n).size for n in states), default=1)
    block = block_steps or max(1, min(steps, BLOCK_ELEMENTS // max(per_step, 1)))
    plan = [stage for stage in stages(net) if any(p.name in states for p in stage)]
    buffers: dict[str, np.ndarray] = {}
    for t0 in range(0, steps, block):
        t1 = min(t0 + block, steps)
        for stage in plan:
            ext = _external_input(stage, incoming, synapses, spk, ext_dtype, buffers, t0, t1)
            _run_stage(stage, ext, incoming, synapses, spk, states, rec, t0, t1)
        if strict:
            found = [(s.first_violation, i, n) for i, (n, s) in enumerate(states.items())
                     if getattr(s, "first_violation", None) is not None]  # fmt: skip
            if found:
                _raise_first(found)

    out = SimulationOutput()
    if steps > 0:
        if "spikes" in record:
            out.spikes = {p.name: _full(spk[p.name], batch) for p in net.populations if p.name in wanted}
        for kind, per_pop in rec.items():
            getattr(out, kind).update({n: _full(a, batch) for n, a in per_pop.items()})
    events = 0
    for pr in net.projections:
        if id(pr) in synapses and steps > pr.delay:
            events += synapses[id(pr)].events(spk[pr.src][: steps - pr.delay], batch)
    out.counters = {
        "u_wraps": sum(s.u_wraps for s in states.values()),
        "v_saturations": sum(s.v_saturations for s in states.values()),
        "synaptic_events": events,
    }
    out.overflow = {n: population_overflow(s, peaks and loihi) for n, s in states.items()}
    if collect is not None:
        collect[1].append(out.overflow)
    calls = {k: sum(s.calls[k] for s in synapses.values()) for k in ("dense", "gather", "sparse", "int8", "events")}
    out.paths = {"kernel_calls": calls, "block_steps": block,
                 "states": {n: type(s).__name__ for n, s in states.items()},
                 "dtypes": {s.proj.name: np.dtype(s.dtype).name for s in synapses.values()}}  # fmt: skip
    return out


def _full(arr: np.ndarray, batch: tuple[int, ...]) -> np.ndarray:
    """A recording with the full batch axes (a copy only where a population was shared)."""
    shape = (arr.shape[0], *batch, arr.shape[-1])
    if arr.shape == shape:
        return arr
    arr = arr.reshape(arr.shape[0], *(1,) * (len(shape) - arr.ndim), *arr.shape[1:])
    return np.ascontiguousarray(np.broadcast_to(arr, shape))


def _external_input(
    stage: list[CorePopulation],
    incoming: dict[str, list],
    synapses: dict[int, Synapse],
    spk: dict[str, np.ndarray],
    ext_dtype: dict[str, Any],
    buffers: dict[str, np.ndarray],
    t0: int,
    t1: int,
) -> dict[str, np.ndarray]:
    """Input to the stage's populations from earlier stages for steps t0..t1-1, summed per block.

    The first contribution that covers the whole block is written straight into the buffer (for a
    dense kernel, by the GEMM itself); only partial ones need the buffer zeroed first. A population's
    only input, when it is shared along batch axes (the same input to every chip instance), keeps its
    narrower shape and is broadcast by the neuron update instead of copied.
    """
    names = {p.name for p in stage}
    ext: dict[str, np.ndarray] = {}
    for pop in stage:
        for pr in incoming[pop.name]:
            if pr.src in names:
                continue
            lo, hi = max(t0 - pr.delay, 0), t1 - pr.delay
            if hi <= lo:
                continue
            x = spk[pr.src][lo:hi]
            if not x.any():
                continue
            syn = synapses[id(pr)]
            if pop.name not in ext:
                shape = (t1 - t0, *spk[pop.name].shape[1:])
                buf = buffers.get(pop.name)
                if buf is None or buf.shape[0] < shape[0]:
                    buf = buffers[pop.name] = np.empty(shape, dtype=ext_dtype[pop.name])
                ext[pop.name] = buf = buf[: shape[0]]
                if hi - lo == shape[0]:  # covers the block: no zeroing
                    if syn.groups or x.shape[1:-1] == shape[1:-1]:
                        syn.apply(x, out=buf)
                    elif sum(p.src not in names for p in incoming[pop.name]) == 1:
                        ext[pop.name] = _align(syn.apply(x), buf.ndim)  # the only input: left to broadcast
                    else:
                        buf[...] = _align(syn.apply(x), buf.ndim)
                    continue
                buf.fill(0)
            ext[pop.name][lo + pr.delay - t0 : hi + pr.delay - t0] += _align(syn.apply(x), buf.ndim)
    return ext


def _align(c: np.ndarray, ndim: int) -> np.ndarray:
    """(K, *batch, n) with missing batch axes inserted after time, so batch axes broadcast from the right."""
    return c.reshape(c.shape[0], *(1,) * (ndim - c.ndim), *c.shape[1:])


def _run_stage(
    stage: list[CorePopulation],
    ext: dict[str, np.ndarray],
    incoming: dict[str, list],
    synapses: dict[int, Synapse],
    spk: dict[str, np.ndarray],
    states: dict[str, Any],
    rec: dict[str, dict[str, np.ndarray]],
    t0: int,
    t1: int,
) -> None:
    """Steps t0..t1-1 of one stage: projections inside it per step, then every population's update."""
    names = {p.name for p in stage}
    todo = []
    for pop in stage:
        if pop.name not in states:
            continue
        state, e = states[pop.name], ext.get(pop.name)
        internal = [(pr.src, pr.delay, synapses[id(pr)]) for pr in incoming[pop.name] if pr.src in names]
        if not internal and isinstance(state, LoihiCompiledState):  # feed-forward: the block in one call
            r = {kind: per_pop[pop.name][t0:t1] for kind, per_pop in rec.items() if pop.name in per_pop}
            state.run(e, t0, spk[pop.name][t0:t1], r.get("u"), r.get("v"))
            continue
        ranges = None
        if e is not None and isinstance(state, LoihiFastState):  # per-step input bounds, one pass per block
            flat = e.reshape(e.shape[0], -1)
            lo, hi = flat.min(axis=1, initial=0.0).tolist(), flat.max(axis=1, initial=0.0).tolist()
            ranges = list(zip(lo, hi, strict=True))
        recs = [(per_pop[pop.name], kind) for kind, per_pop in rec.items() if pop.name in per_pop]
        todo.append((state, e, internal, ranges, spk[pop.name], recs))
    for t in range(t0, t1):
        for state, e, internal, ranges, out, recs in todo:
            a = None if e is None else e[t - t0]
            a_range = None if ranges is None else ranges[t - t0]
            for src, delay, syn in internal:
                ts = t - delay
                if ts >= 0 and spk[src][ts].any():
                    c = syn.apply(spk[src][ts][None])[0]
                    wide = np.int64 if syn.mode == "int" else np.float64  # a float32 sum could round
                    a = c.astype(wide) if a is None else np.add(a, c, dtype=wide)
                    a_range = None
            if isinstance(state, (LoihiFastState, LoihiCompiledState)):
                state.step(a, t, a_range, out[t])
            elif isinstance(state, LoihiCubaState):
                out[t] = state.step(0 if a is None else a, t)
            else:
                out[t] = state.step(0.0 if a is None else a)
            for arr, kind in recs:
                arr[t] = getattr(state, kind)
