"""Run float (analog-profile) CoreNetworks, mismatched chip instances included, on Lava's ``floating_pt`` models.

The emulator's float core is checked against an independent runtime here: every population becomes a
``MismatchLIF`` (``lava_procs.mismatch_lif``: per-neuron du, dv, v_th, v_reset, biases, the float core's update
order), every projection Lava's own float ``Dense`` (``DelayDense`` for longer delays, ``Sparse`` /
``DelaySparse`` for scipy.sparse weights), each carrying instance k's weights. Batches are laid side by
side as disjoint copies (block-diagonal weights), as in ``backends.lava``; the output has exactly the
structure and shapes of ``neurodeploy.emulator.simulate.simulate``.

Zero delays. A Lava connection always takes at least one step; the float core's zero-delay
projections (analog profiles have no synaptic latency) deliver within the step. So each population P
runs ``offset[P]`` steps later in Lava than in the emulator (``lava_offsets``), and a projection of
delay d becomes a Lava delay of ``d + offset[dst] - offset[src] >= 1``; the recordings are shifted
back. Only a loop whose delays sum to fewer steps than it has projections has no such schedule.

What agrees, and why not always bit for bit: the neuron update is the same float64 operations in the
same order, but the synaptic sums are not formed in the same order (Lava's Dense adds the active
columns with numpy's pairwise sum, including the zeros of the other copies; the emulator uses BLAS,
gathers or sparse products, and sums several projections in its own order). Float addition is not
associative, so u and v may differ in the last bits (``agreement`` reports the largest difference
relative to the variable's scale); spikes are identical unless v lands within those bits of v_th.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterable, Mapping, Sequence
from math import prod
from typing import Any, NamedTuple

import numpy as np

from neurodeploy.emulator.backends.lava import (
    _BUFFERS,
    INSTALL_HINT,
    MAX_TILED_ENTRIES,
    _components,
    _lava,
    _per_sample,
    _shared_buffer,
    _tiled_weights,
    available,
    refuse_refractory,
)
from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.emulator.simulate import RECORDABLE, SimulationOutput, population_batches, simulate
from neurodeploy.emulator.synapses import Synapse, is_sparse
from neurodeploy.errors import NeurodeployError

WHERE = "neurodeploy.emulator.backends.lava_float"
# The float core's defaults for parameters a population may leave out (``FloatCubaState``).
DEFAULTS = {"bias_u": 0.0, "bias_v": 0.0, "v_th": np.inf, "v_reset": 0.0}
RESETS = ("zero", "subtract")


def lava_offsets(net: CoreNetwork) -> dict[str, int]:
    """Steps each population runs behind the emulator in Lava, so that every connection takes >= 1 step.

    The smallest offsets >= 0 with ``offset[dst] >= offset[src] + 1 - delay`` for every projection
    (longest paths, Bellman-Ford). Inputs have no incoming projections and stay at 0.
    """
    offset = {p.name: 0 for p in net.populations}
    edges = [(pr.src, pr.dst, int(pr.delay)) for pr in net.projections]
    for _ in range(len(offset) + 1):
        changed = False
        for src, dst, delay in edges:
            need = offset[src] + 1 - delay
            if offset[dst] < need:
                offset[dst], changed = need, True
        if not changed:
            return offset
    raise NeurodeployError(
        "a loop of projections has fewer steps of delay than projections; every Lava connection takes "
        "at least one step, so this network has no Lava schedule",
        where=WHERE,
        hint="give a projection in the loop a delay of 1 or more",
    )


def _check_network(net: CoreNetwork) -> None:
    """Reject what the float Lava models do not express, instead of returning different numbers."""
    if net.numerics != "float":
        raise NeurodeployError(
            f"the float Lava backend runs float-core networks, not numerics={net.numerics!r}",
            where=WHERE,
            hint="compile for an analog or ideal profile, or use backends.lava.run_lava for Loihi",
        )
    for pop in net.populations:
        if pop.name in net.inputs:
            continue
        where = f"population {pop.name!r}"
        if pop.model != "float" or pop.reset not in RESETS or pop.reset_rule != "nir":
            raise NeurodeployError(
                "MismatchLIF is the float core's CUBA LIF with NIR's reset (to v_reset, or subtract); this "
                f"population is model={pop.model!r}, reset={pop.reset!r}, reset_rule={pop.reset_rule!r}",
                where=where,
                hint="snnTorch reset rules have no Lava model; run them on the emulator",
            )
        refuse_refractory(pop, "MismatchLIF", where)
        missing = {"du", "dv"} - set(pop.params)
        if missing:
            raise NeurodeployError(f"missing float parameters {sorted(missing)}", where=where)
    for pr in net.projections:
        if pr.dst in net.inputs:
            raise NeurodeployError("an input population cannot receive a projection", where=f"projection {pr.name!r}")
        if pr.delay < 0:
            raise NeurodeployError(f"negative delay {pr.delay}", where=f"projection {pr.name!r}")


def _chunk(net: CoreNetwork, delays: dict[int, int], batch: int) -> int:
    """Copies per Lava run keeping each block-diagonal weight matrix (times its delay slots) modest."""
    biggest = max((pr.weight.shape[-1] * pr.weight.shape[-2] * delays[id(pr)] for pr in net.projections), default=1)
    return max(1, min(batch, int(np.sqrt(MAX_TILED_ENTRIES / max(biggest, 1)))))


def _run_chunk(
    lv: dict[str, Any],
    net: CoreNetwork,
    flat: Mapping[str, np.ndarray],
    samples: range,
    batch_shape: tuple[int, ...],
    lava_steps: int,
    offset: dict[str, int],
    delays: dict[int, int],
    monitored: list[tuple[str, str]],
    models: dict[str, str],
) -> dict[tuple[str, str], np.ndarray]:
    """Build, run and stop one Lava graph of samples ``samples``; {(kind, pop): (lava_steps, c, n)}.

    ``models`` receives the ProcessModel class Lava chose for every population and projection.
    """
    from neurodeploy.emulator.backends.lava_procs.mismatch_lif import MismatchLIF

    c = len(samples)
    sl = slice(samples.start, samples.stop)
    senders = {pr.src for pr in net.projections}
    sources: dict[str, Any] = {}
    neurons: dict[str, Any] = {}
    for pop in net.populations:
        if pop.name in net.inputs:
            if pop.name in senders:
                x = flat[pop.name][:lava_steps, sl]  # (t, c, n)
                data = np.zeros((c * pop.size, lava_steps))
                data[:, : x.shape[0]] = x.reshape(x.shape[0], -1).T
                sources[pop.name] = lv["RingBuffer"](data=data)
            continue
        params = {k: pop.params.get(k, DEFAULTS.get(k)) for k in ("du", "dv", *DEFAULTS)}
        if not pop.spiking:  # a leaky integrator: v > inf never holds, so v is never reset
            params["v_th"] = np.inf
        per_neuron = {k: _per_sample(v, batch_shape, (pop.size,))[sl].reshape(-1) for k, v in params.items()}
        neurons[pop.name] = MismatchLIF(
            shape=(c * pop.size,),
            subtract=pop.reset == "subtract",
            start=offset[pop.name],
            name=f"mismatch_lif_{pop.name}",
            **per_neuron,
        )
    if not neurons:
        return {}
    out_port = {**{n: s.s_out for n, s in sources.items()}, **{n: p.s_out for n, p in neurons.items()}}
    conns = {}
    for pr in net.projections:
        weights = _tiled_weights(pr.weight, batch_shape, samples, dtype=np.float64)
        extra = delays[id(pr)] - 1
        if is_sparse(weights) and extra:  # DelaySparse needs a delay per stored synapse
            per_synapse = weights.copy()
            per_synapse.data = np.full(per_synapse.data.shape, extra, dtype=np.int64)
            conn = lv["DelaySparse"](weights=weights, delays=per_synapse)
        elif is_sparse(weights):
            conn = lv["Sparse"](weights=weights)
        else:
            conn = lv["DelayDense"](weights=weights, delays=extra) if extra else lv["Dense"](weights=weights)
        out_port[pr.src].connect(conn.s_in)
        conn.a_out.connect(neurons[pr.dst].a_in)
        conns[pr.name] = conn
    # Disconnected parts joined by all-zero Dense links (adding 0.0 changes no value) so one run() covers all.
    comps = [sorted(comp, key=lambda n: neurons[n].a_in.shape[0]) for comp in _components(net, list(neurons))]
    for comp in comps[1:]:
        a, b = neurons[comps[0][0]], neurons[comp[0]]
        link = lv["Dense"](weights=np.zeros((b.a_in.shape[0], a.s_out.shape[0])))
        a.s_out.connect(link.s_in)
        link.a_out.connect(b.a_in)

    monitors = {}
    for kind, name in monitored:
        mon = lv["Monitor"]()
        target = neurons[name].s_out if kind == "spikes" else getattr(neurons[name], kind)
        mon.probe(target, lava_steps)
        key = f"{id(mon)}-{kind}-{name}"
        mon.proc_params["neurodeploy_key"] = key
        _BUFFERS[key] = _shared_buffer((lava_steps, target.shape[0]), dtype=np.float64)
        monitors[(kind, name)] = mon
    run_cfg = lv["Loihi2SimCfg"](select_tag="floating_pt", exception_proc_model_map={lv["Monitor"]: lv["MonitorModel"]})
    anchor = next(iter(neurons.values()))
    try:
        anchor.run(condition=lv["RunSteps"](num_steps=lava_steps), run_cfg=run_cfg)
        for name, proc in {**neurons, **conns}.items():
            models[name] = proc.model_class.__name__
        return {
            key: _BUFFERS[mon.proc_params["neurodeploy_key"]].copy().reshape(lava_steps, c, -1)
            for key, mon in monitors.items()
        }
    finally:
        if anchor.runtime is not None:
            anchor.stop()
        for mon in monitors.values():
            _BUFFERS.pop(mon.proc_params["neurodeploy_key"], None)


def run_lava_float(
    net: CoreNetwork,
    inputs: Mapping[str, np.ndarray],
    steps: int | None = None,
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
    chunk: int | None = None,
) -> SimulationOutput:
    """Run a float ``net`` in Lava; same arguments and output as ``neurodeploy.emulator.simulate.simulate``.

    Per-instance parameters ``(instances, 1, n)`` and weights ``(instances, n_dst, n_src)`` (a sampled
    network, ``emulator.mismatch.sample``) broadcast with the inputs as in the emulator. ``chunk``:
    samples per Lava run (each run costs about half a second of process start-up).
    """
    record = tuple(record)
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"cannot record {sorted(unknown)}; choose from {RECORDABLE}")
    _check_network(net)
    missing = set(net.inputs) - set(inputs)
    if missing:
        raise NeurodeployError(f"no input spike trains for {sorted(missing)}", where=WHERE)
    t_in = np.shape(inputs[net.inputs[0]])[0]
    steps = t_in if steps is None else int(steps)
    batch_shape, _ = population_batches(net, {n: np.asarray(inputs[n]) for n in net.inputs})
    n_batch = prod(batch_shape)
    flat = {}
    for name in net.inputs:
        x = np.asarray(inputs[name])
        size = net.population(name).size
        if x.shape[0] != t_in or x.shape[-1] != size:
            raise NeurodeployError(f"input {name!r} has shape {x.shape}, expected ({t_in}, ..., {size})", where=WHERE)
        x = x.reshape(t_in, *(1,) * (len(batch_shape) + 2 - x.ndim), *x.shape[1:])
        flat[name] = np.broadcast_to(x != 0, (t_in, *batch_shape, size)).reshape(t_in, n_batch, -1)
    offset = lava_offsets(net)
    delays = {id(pr): int(pr.delay) + offset[pr.dst] - offset[pr.src] for pr in net.projections}
    wanted = [p.name for p in net.populations if populations is None or p.name in set(populations)]
    monitored = [(k, n) for k in record for n in wanted if n not in net.inputs]
    lava_steps = steps + max((offset[n] for _, n in monitored), default=0)

    parts: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in monitored}
    models: dict[str, str] = {}
    if monitored and steps > 0 and n_batch > 0:
        ok, why = available()
        if not ok:
            raise NeurodeployError("the Lava backend is not available", where=WHERE, hint=why or INSTALL_HINT)
        lv = _lava()
        c = _chunk(net, delays, n_batch) if chunk is None else max(1, int(chunk))
        for start in range(0, n_batch, c):
            got = _run_chunk(lv, net, flat, range(start, min(start + c, n_batch)), batch_shape, lava_steps,
                             offset, delays, monitored, models)  # fmt: skip
            for kind, name in monitored:
                parts[(kind, name)].append(got[(kind, name)][offset[name] : offset[name] + steps])

    out = SimulationOutput()
    for kind in record if steps > 0 else ():  # the emulator records nothing for zero steps
        for name in wanted:  # the emulator's key order: population order
            shape = (steps, *batch_shape, net.population(name).size)
            if (kind, name) in parts:
                chunks = parts[(kind, name)]
                data = np.concatenate(chunks, axis=1).reshape(shape) if chunks else np.zeros(shape)
                getattr(out, kind)[name] = data.astype(bool) if kind == "spikes" else data
            elif kind == "spikes":  # input populations: their own trains, silent past the end
                s = np.zeros(shape, dtype=bool)
                s[: min(t_in, steps)] = flat[name][:steps].reshape(-1, *shape[1:])
                out.spikes[name] = s
    out.counters = {"u_wraps": 0, "v_saturations": 0} if all(pr.src in out.spikes for pr in net.projections) else {}
    if out.counters:
        events = sum(Synapse(pr, "float", batch_shape).events(out.spikes[pr.src][: steps - pr.delay], batch_shape)
                     for pr in net.projections if steps > pr.delay)  # fmt: skip
        out.counters["synaptic_events"] = int(events)
    out.paths = {"lava_offsets": offset, "lava_delays": {pr.name: delays[id(pr)] for pr in net.projections},
                 "lava_models": models}  # fmt: skip
    return out


def instance_count(net: CoreNetwork) -> int:
    """Instances of a sampled network (leading axis of its (I, 1, n) parameters / (I, n_dst, n_src) weights)."""
    arrays = [v for p in net.populations for v in p.params.values()]
    arrays += [pr.weight for pr in net.projections if not is_sparse(pr.weight)]
    return max((np.shape(a)[0] for a in arrays if np.ndim(a) == 3), default=1)


def take_instances(net: CoreNetwork, instances: Sequence[int]) -> CoreNetwork:
    """The sampled network cut down to ``instances`` (in that order), keeping the instance axis.

    Arrays without an instance axis (shared by all instances) are kept as they are.
    """
    ks = [int(k) for k in instances]
    count = instance_count(net)
    bad = [k for k in ks if not 0 <= k < count]
    if not ks or bad:
        raise NeurodeployError(
            f"instances {bad or ks} out of range: the network has {count} instance(s)",
            where="instances",
            hint=f"choose instance indices in 0..{count - 1}",
        )

    def pick(arr: Any) -> Any:
        if is_sparse(arr) or np.ndim(arr) != 3:
            return arr
        return np.broadcast_to(arr, (count, *np.shape(arr)[1:]))[ks]

    pops = []
    for pop in net.populations:
        new = copy.copy(pop)
        new.params = {k: pick(v) for k, v in pop.params.items()}
        pops.append(new)
    projs = []
    for pr in net.projections:
        new_pr = copy.copy(pr)
        new_pr.weight = pick(pr.weight)
        projs.append(new_pr)
    return CoreNetwork(pops, projs, list(net.inputs), list(net.outputs), net.numerics, list(net.readouts))


def agreement(ref: SimulationOutput, got: SimulationOutput, instances: int = 1) -> list[dict[str, Any]]:
    """Per instance (the first batch axis, ``instances`` long): identical spikes, how many differ, and the
    largest |u|, |v| difference relative to that instance's largest |u|, |v| in the same population."""
    out = []
    for i in range(instances):
        row: dict[str, Any] = {"identical_spikes": True, "differing_spikes": 0, "max_rel_u": 0.0, "max_rel_v": 0.0}
        for kind in ("spikes", "u", "v"):
            a_all, b_all = getattr(ref, kind), getattr(got, kind)
            for name in a_all.keys() & b_all.keys():
                a = a_all[name].reshape(a_all[name].shape[0], instances, -1)[:, i]
                b = b_all[name].reshape(b_all[name].shape[0], instances, -1)[:, i]
                if kind == "spikes":
                    diff = int(np.count_nonzero(a != b))
                    row["differing_spikes"] += diff
                    row["identical_spikes"] &= diff == 0
                    continue
                scale = float(np.max(np.abs(a), initial=0.0))
                rel = float(np.max(np.abs(a - b), initial=0.0)) / scale if scale > 0 else float(np.any(a != b))
                row[f"max_rel_{kind}"] = max(row[f"max_rel_{kind}"], rel)
        out.append(row)
    return out


class CrossCheck(NamedTuple):
    """Instances run on both the emulator and Lava (``floating_pt``), with their agreement.

    A NamedTuple, not a dataclass: Lava's model search executes this file outside ``sys.modules``,
    where ``@dataclass`` cannot resolve its module.
    """

    instances: list[int]
    agreement: list[dict[str, Any]]
    emulator: SimulationOutput
    lava: SimulationOutput
    steps: int
    wall_seconds: dict[str, float]


def cross_check(
    net: CoreNetwork,
    inputs: Mapping[str, np.ndarray],
    instances: Sequence[int],
    steps: int | None = None,
    record: Iterable[str] = RECORDABLE,
) -> CrossCheck:
    """Run instances ``instances`` of a sampled float network on the emulator and on Lava; compare them."""
    sub = take_instances(net, instances)
    t0 = time.perf_counter()
    ref = simulate(sub, inputs, steps=steps, record=record)
    t1 = time.perf_counter()
    got = run_lava_float(sub, inputs, steps=steps, record=record)
    t2 = time.perf_counter()
    count = len(instances) if instance_count(net) > 1 else 1
    rows = agreement(ref, got, count)
    for k, row in zip(instances, rows, strict=False):
        row["instance"] = int(k)
    n_steps = next(iter(ref.spikes.values())).shape[0] if ref.spikes else int(steps or 0)
    return CrossCheck([int(k) for k in instances], rows, ref, got, n_steps, {"emulator": t1 - t0, "lava": t2 - t1})


__all__ = ["run_lava_float", "lava_offsets", "take_instances", "instance_count", "agreement", "cross_check",
           "CrossCheck"]  # fmt: skip
