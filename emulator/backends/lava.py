"""Run a CoreNetwork on Intel Lava 0.10 (CPU ``fixed_pt`` models) or, with lava-loihi, on Loihi 2.

Lava is the independent reference for ``emulator/loihi.py``: the same CoreNetwork is built as a Lava
process graph (RingBuffer sources, ``LIF``, ``Dense``/``DelayDense``, ``Monitor``) and the result is
returned in exactly the structure and shapes of ``neurodeploy.emulator.simulate.simulate``. Float-core
networks (analog profiles, mismatched chip instances) run on Lava's ``floating_pt`` models through
``backends.lava_float`` instead.

Time alignment (measured, see tests/test_lava_backend.py): Lava's RingBuffer sends ``data[:, k - 1]``
at Lava time step ``k`` (1-based); a Dense delivers at step ``k + 1`` what it received at ``k``; a
Monitor stores step ``k`` at index ``k - 1``. Our emulator feeds ``inputs[t]`` at step ``t`` and a
projection of delay ``d`` delivers at ``t + d``. So with ``data[:, t] = inputs[t]`` the emulator's
index ``t`` is Lava's step ``t + 1`` is monitor index ``t``: offset zero, no padding at either end.
A projection of delay ``d`` is a Dense for ``d == 1`` and a DelayDense with ``delays = d - 1``
otherwise (DelayDense delay 0 has Dense timing); a scipy.sparse weight becomes Sparse / DelaySparse.
Recurrent projections (onto the same or an earlier population) are plain Lava connections: every
Dense sends the previous step's buffer first, so cycles do not deadlock (tests/test_emulator_differential.py).

Batch axes are the emulator's (inputs, per-instance parameters and weights broadcast together).
Batches: Lava runs one network, and each run costs 0.2-0.6 s of process start-up, so ``chunk``
samples are run at once as ``chunk`` disjoint copies of the network laid side by side in the neuron
dimension (block-diagonal weights). Every copy starts from zero state, exactly like a fresh run.
"""

from __future__ import annotations

import importlib
import mmap
from collections.abc import Iterable, Mapping
from math import prod
from typing import Any

import numpy as np

from neurodeploy.emulator.backends.lava_compat import INSTALL_HINT, ensure_lava_importable
from neurodeploy.emulator.loihi import prepare_weights
from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.emulator.simulate import RECORDABLE, SimulationOutput, population_batches
from neurodeploy.emulator.synapses import Synapse, is_sparse
from neurodeploy.errors import NeurodeployError

# Cap on the entries of one tiled (block-diagonal) weight matrix, times (max delay + 1) for DelayDense,
# which materialises one masked copy per delay every step. 4M int32 entries = 16 MB per Dense process.
MAX_TILED_ENTRIES = 4_000_000
MAX_DELAY = 64  # DelayDense accepts delays 0..63 (Loihi 2 has 6 delay bits); ours is that + 1
NC_COMPILER = "lava.magma.compiler.subcompilers.nc"
WHERE = "neurodeploy.emulator.backends.lava"

# Ranges that Lava's fixed_pt LIF stores without silent wrap (bias_mant/bias_exp are int16 arrays).
_PARAM_RANGES = {
    "du": (0, 4095),
    "dv": (0, 4095),
    "vth": (0, (1 << 17) - 1),
    "bias_mant": (-(1 << 12), (1 << 12) - 1),
    "bias_exp": (-12, 7),
}


def available() -> tuple[bool, str]:
    """Whether Lava's CPU backend can be imported here, and why not if it cannot."""
    try:
        _lava()
    except NeurodeployError as err:
        return False, str(err)
    except Exception as err:  # a broken install shows up as anything at all
        return False, f"lava-nc failed to import: {type(err).__name__}: {err}"
    return True, "lava-nc (CPU, Loihi2SimCfg fixed_pt)"


def hardware_available() -> tuple[bool, str]:
    """Whether the proprietary lava-loihi compiler (NxSDK) needed for ``hardware=True`` is importable."""
    ok, why = available()
    if not ok:
        return False, why
    try:
        importlib.import_module(NC_COMPILER)
    except ImportError as err:
        return False, (
            f"Loihi 2 hardware needs Intel's proprietary lava-loihi package (NxSDK), which provides "
            f"{NC_COMPILER}; it is not importable here ({err}). lava-loihi is only distributed to "
            f"Intel Neuromorphic Research Community members"
        )
    return True, "lava-loihi importable"


_LAVA: dict[str, Any] = {}
# Recording buffers by key, filled before Lava forks its process models (anonymous shared mmaps).
_BUFFERS: dict[str, np.ndarray] = {}


def _lava() -> dict[str, Any]:
    """Import the Lava pieces used here (after the Python 3.11 compatibility step), once."""
    if _LAVA:
        return _LAVA
    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2HwCfg, Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.models import PyMonitorModel
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode

    class SharedMemoryMonitorModel(PyMonitorModel):
        """Lava's Monitor, but writing each step into a shared buffer instead of its own Var.

        Reading a Monitor's Var back (``Var.get``) sends one channel message per element, about
        45 us each: for 2816 neurons x 50 steps that is 6 s per recorded variable, far more than
        the run. Only recording changes; the neuron and synapse models are Lava's own.
        """

        def run_spk(self) -> None:
            for i in range(self.proc_params["n_in_ports"]):
                data = getattr(self, self.proc_params["InPorts"][i]).recv()
                _BUFFERS[self.proc_params["neurodeploy_key"]][self.time_step - 1] = data

        def run_post_mgmt(self) -> None:
            for i in range(self.proc_params["n_ref_ports"]):
                data = getattr(self, self.proc_params["RefPorts"][i]).read()
                _BUFFERS[self.proc_params["neurodeploy_key"]][self.time_step - 1] = data

    _LAVA.update({
        "RunSteps": RunSteps, "Loihi2SimCfg": Loihi2SimCfg, "Loihi2HwCfg": Loihi2HwCfg,
        "Dense": Dense, "DelayDense": DelayDense, "RingBuffer": RingBuffer, "LIF": LIF,
        "Monitor": Monitor, "SignMode": SignMode, "MonitorModel": SharedMemoryMonitorModel,
        "Sparse": Sparse, "DelaySparse": DelaySparse,
    })  # fmt: skip
    return _LAVA


def _shared_buffer(shape: tuple[int, ...], dtype: Any = np.int64) -> np.ndarray:
    """8-byte array (int64, or float64 for float models) in an anonymous MAP_SHARED mapping: writes from
    forked children are seen here."""
    nbytes = max(1, prod(shape)) * 8
    return np.frombuffer(mmap.mmap(-1, nbytes), dtype=dtype, count=prod(shape)).reshape(shape)


def refuse_refractory(pop: Any, model: str, where: str) -> None:
    """Lava's neuron models have no refractory counter: a population with one must run on the emulator."""
    if np.any(pop.params.get("refractory", 0)):
        raise NeurodeployError(
            f"{model} has no refractory period, and this population has one",
            where=where,
            hint="run it on the emulator (backend='emulator'), or compile with refractory=0",
        )


def _check_network(net: CoreNetwork) -> None:
    """Reject what Lava's fixed_pt models cannot express, instead of returning wrong numbers."""
    if net.numerics != "loihi":
        raise NeurodeployError(
            f"the Lava backend runs Loihi fixed-point networks, not numerics={net.numerics!r}",
            where=WHERE,
            hint="compile for a Loihi profile, or use neurodeploy.emulator.simulate",
        )
    for pop in net.populations:
        if pop.name in net.inputs:
            continue
        where = f"population {pop.name!r}"
        if pop.model != "loihi" or pop.reset != "zero" or not pop.spiking:
            raise NeurodeployError(
                "Lava's LIF is a spiking Loihi CUBA neuron with reset to zero; this population is "
                f"model={pop.model!r}, reset={pop.reset!r}, spiking={pop.spiking}",
                where=where,
                hint="run it on the emulator (backend='emulator'), which models the subtractive reset",
            )
        refuse_refractory(pop, "Lava's fixed_pt LIF", where)
        for name, (lo, hi) in _PARAM_RANGES.items():
            if name not in pop.params:
                raise NeurodeployError(f"missing Loihi parameter {name!r}", where=where)
            val = np.asarray(pop.params[name])
            if val.size and (val.min() < lo or val.max() > hi):
                raise NeurodeployError(
                    f"{name} must lie in [{lo}, {hi}] for Lava's fixed_pt LIF, got [{val.min()}, {val.max()}]",
                    where=where,
                )
    for pr in net.projections:
        where = f"projection {pr.name!r}"
        _refuse_loihi1_shift(net, pr, where)
        if pr.dst in net.inputs:
            raise NeurodeployError("an input population cannot receive a projection", where=where)
        if not 1 <= pr.delay <= MAX_DELAY:
            raise NeurodeployError(
                f"Lava supports delays 1..{MAX_DELAY} (Dense, or DelayDense 0..63 plus one step of "
                f"synaptic latency), got delay={pr.delay}",
                where=where,
                hint="zero-delay projections have no Lava equivalent; give them a delay of 1",
            )
        if pr.sign_mode not in ("mixed", "excitatory", "inhibitory"):
            raise NeurodeployError(f"unknown sign_mode {pr.sign_mode!r}", where=where)
        if not 1 <= pr.num_weight_bits <= 8:
            raise NeurodeployError(f"num_weight_bits must be 1..8, got {pr.num_weight_bits}", where=where)


def _refuse_loihi1_shift(net: CoreNetwork, pr: Any, where: str) -> None:
    """Loihi 1 shifts each weight by a negative exponent (dropping its low bits); Lava shifts the sum.

    Where no weight has bits to drop the two agree, so only a projection that would lose bits is
    refused. Loihi 1's 21-bit accumulator wrap and its u + bias wrap are not Lava's either; they act
    only on overflow, which the emulator counts (``counters["u_wraps"]``) and Lava cannot report.
    """
    if net.arithmetic != "loihi1" or int(pr.weight_exp) >= 0:
        return
    w = pr.weight.data if is_sparse(pr.weight) else np.asarray(pr.weight)
    mant = prepare_weights(np.asarray(w), pr.num_weight_bits, pr.sign_mode)
    if np.any(mant & ((1 << -int(pr.weight_exp)) - 1)):
        raise NeurodeployError(
            f"this network uses Loihi 1's arithmetic, which shifts each weight by weight_exp="
            f"{int(pr.weight_exp)} before the sum; Lava shifts the sum and would give other numbers",
            where=where,
            hint="run it on the emulator (backend='emulator'), which computes Loihi 1's arithmetic, or "
            "compile for loihi2, whose arithmetic is Lava's",
        )


def split_nine_bit(net: CoreNetwork) -> CoreNetwork:
    """Projections with 9-bit mixed-sign weights (what the learning engine writes) as Lava's Dense holds
    them: an 8-bit Dense with the even part and a Dense with the lowest bit (weight 2, weight_exp − 1),
    which add the same charge to u. Other projections are kept as they are."""
    from dataclasses import replace

    projs = []
    for pr in net.projections:
        if pr.num_weight_bits != 9 or pr.sign_mode != "mixed" or is_sparse(pr.weight):
            projs.append(pr)
            continue
        w = np.clip(np.asarray(pr.weight, dtype=np.int64), -256, 255)
        low = w & 1
        projs.append(replace(pr, weight=w - low, num_weight_bits=8))
        if low.any():
            projs.append(replace(pr, name=f"{pr.name}:lsb", weight=2 * low, num_weight_bits=8,
                                 weight_exp=pr.weight_exp - 1))  # fmt: skip
    return replace(net, projections=projs)


def default_chunk(net: CoreNetwork, batch: int) -> int:
    """Largest number of network copies per Lava run keeping each tiled weight matrix modest."""
    biggest = max(
        (pr.weight.shape[-1] * pr.weight.shape[-2] * (1 if pr.delay <= 1 else pr.delay)
         for pr in net.projections),
        default=1,
    )  # fmt: skip
    c = int(np.sqrt(MAX_TILED_ENTRIES / max(biggest, 1)))
    return max(1, min(batch, c))


def _per_sample(value: Any, batch_shape: tuple[int, ...], tail: tuple[int, ...]) -> np.ndarray:
    """Broadcast a parameter like the emulator does, then flatten the batch: (B, *tail)."""
    arr = np.broadcast_to(np.asarray(value), (*batch_shape, *tail))
    return arr.reshape((prod(batch_shape), *tail))


def _tiled_weights(weight: Any, batch_shape: tuple[int, ...], samples: range, dtype: Any = np.int32) -> Any:
    """Block-diagonal (c*dst, c*src) matrix (int32, or ``dtype``) for samples ``samples``: copy i only sees copy i.

    A plain (dst, src) matrix is shared by every copy; leading axes are instance axes, shared by the
    samples (the last batch axis) as in the emulator, picked per sample without materialising the
    whole broadcast. A scipy.sparse matrix gives a sparse (CSR) block diagonal, for Lava's Sparse.
    """
    if is_sparse(weight):
        import scipy.sparse as sp

        kind = np.int64 if np.dtype(dtype).kind in "iu" else dtype
        return sp.block_diag([sp.csr_matrix(weight, dtype=kind)] * len(samples), format="csr")
    w = np.asarray(weight)
    dst, src = w.shape[-2:]
    if w.ndim > 2 and prod(w.shape[:-2]) == 1:
        w = w.reshape(dst, src)
    full = np.broadcast_to(w[..., None, :, :], (*batch_shape, dst, src)) if w.ndim > 2 else None
    c = len(samples)
    out = np.zeros((c * dst, c * src), dtype=dtype)
    for i, s in enumerate(samples):
        block = w if full is None else full[np.unravel_index(s, batch_shape)]
        out[i * dst : (i + 1) * dst, i * src : (i + 1) * src] = block
    return out


def _scalar_or_array(values: np.ndarray) -> int | np.ndarray:
    """Lava's LIF takes one du/dv/vth per population; per-neuron arrays broadcast in its model."""
    flat = values.reshape(-1).astype(np.int64)
    return int(flat[0]) if flat.size and np.all(flat == flat[0]) else flat


def _components(net: CoreNetwork, lif_names: list[str]) -> list[list[str]]:
    """Connected components of the LIF populations (Lava only runs what is connected to one process)."""
    parent = {p.name: p.name for p in net.populations}

    def root(n: str) -> str:
        while parent[n] != n:
            n = parent[n]
        return n

    for pr in net.projections:
        parent[root(pr.src)] = root(pr.dst)
    groups: dict[str, list[str]] = {}
    for n in lif_names:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())


def _run_chunk(
    lv: dict[str, Any],
    net: CoreNetwork,
    inputs: Mapping[str, np.ndarray],
    sl: slice,
    batch_shape: tuple[int, ...],
    steps: int,
    monitored: list[tuple[str, str]],
    run_cfg: Any,
) -> dict[tuple[str, str], np.ndarray]:
    """Build, run and stop one Lava graph holding samples ``sl``; returns {(kind, pop): (steps, c, n)}."""
    first = next(iter(inputs.values()))
    c = len(range(*sl.indices(first.shape[1])))
    lifs: dict[str, Any] = {}
    sources: dict[str, Any] = {}
    sign = {"mixed": lv["SignMode"].MIXED, "excitatory": lv["SignMode"].EXCITATORY,
            "inhibitory": lv["SignMode"].INHIBITORY}  # fmt: skip
    senders = {pr.src for pr in net.projections}
    for pop in net.populations:
        if pop.name in net.inputs:
            if pop.name not in senders:
                continue
            x = inputs[pop.name][:steps, sl]  # (t, c, n)
            data = np.zeros((c * pop.size, steps), dtype=np.int32)
            data[:, : x.shape[0]] = x.reshape(x.shape[0], c * pop.size).T
            sources[pop.name] = lv["RingBuffer"](data=data)
            continue
        p = {k: _per_sample(pop.params[k], batch_shape, (pop.size,))[sl] for k in _PARAM_RANGES}
        lifs[pop.name] = lv["LIF"](
            shape=(c * pop.size,),
            du=_scalar_or_array(p["du"]),
            dv=_scalar_or_array(p["dv"]),
            vth=_scalar_or_array(p["vth"]),
            bias_mant=p["bias_mant"].reshape(-1).astype(np.int64),
            bias_exp=p["bias_exp"].reshape(-1).astype(np.int64),
            name=f"lif_{pop.name}",
        )
    out_port = {**{n: s.s_out for n, s in sources.items()}, **{n: lif.s_out for n, lif in lifs.items()}}
    for pr in net.projections:
        weights = _tiled_weights(pr.weight, batch_shape, range(*sl.indices(first.shape[1])))
        kw = {"weights": weights, "weight_exp": int(pr.weight_exp),
              "num_weight_bits": int(pr.num_weight_bits), "sign_mode": sign[pr.sign_mode]}  # fmt: skip
        if is_sparse(weights):  # DelaySparse needs a delay per stored synapse, not one integer
            delays = weights.copy()
            delays.data = np.full(delays.data.shape, pr.delay - 1, dtype=np.int64)
            conn = lv["Sparse"](**kw) if pr.delay == 1 else lv["DelaySparse"](delays=delays, **kw)
        else:
            conn = lv["Dense"](**kw) if pr.delay == 1 else lv["DelayDense"](delays=pr.delay - 1, **kw)
        out_port[pr.src].connect(conn.s_in)
        conn.a_out.connect(lifs[pr.dst].a_in)
    if not lifs:
        return {}
    # Join disconnected parts with all-zero Dense links (exact no-ops) so one run() covers them all.
    comps = [sorted(comp, key=lambda n: lifs[n].a_in.shape[0]) for comp in _components(net, list(lifs))]
    for comp in comps[1:]:
        a, b = lifs[comps[0][0]], lifs[comp[0]]  # the smallest of each, to keep the link small
        link = lv["Dense"](weights=np.zeros((b.a_in.shape[0], a.s_out.shape[0]), dtype=np.int64))
        a.s_out.connect(link.s_in)
        link.a_out.connect(b.a_in)

    fast = not isinstance(run_cfg, lv["Loihi2HwCfg"])  # on a board, keep Lava's own Monitor path
    monitors = {}
    for kind, name in monitored:
        mon = lv["Monitor"]()  # Lava 0.10's Monitor records one target only
        target = lifs[name].s_out if kind == "spikes" else getattr(lifs[name], kind)
        mon.probe(target, steps)
        if fast:
            key = f"{id(mon)}-{kind}-{name}"
            mon.proc_params["neurodeploy_key"] = key
            _BUFFERS[key] = _shared_buffer((steps, target.shape[0]))
        monitors[(kind, name)] = (mon, target)

    anchor = next(iter(lifs.values()))
    try:
        anchor.run(condition=lv["RunSteps"](num_steps=steps), run_cfg=run_cfg)
        result = {}
        for key, (mon, target) in monitors.items():
            if fast:
                data = _BUFFERS[mon.proc_params["neurodeploy_key"]].copy()
            else:
                data = mon.get_data()[target.process.name][target.name]
            result[key] = np.asarray(data).reshape(steps, c, -1)
        return result
    finally:
        if anchor.runtime is not None:
            anchor.stop()
        for mon, _ in monitors.values():
            _BUFFERS.pop(mon.proc_params.get("neurodeploy_key", None), None)


def run_lava(
    net: CoreNetwork,
    inputs: Mapping[str, np.ndarray],
    steps: int | None = None,
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
    hardware: bool = False,
    chunk: int | None = None,
) -> SimulationOutput:
    """Run ``net`` in Lava; same arguments and output as ``neurodeploy.emulator.simulate.simulate``.

    ``chunk`` is the number of samples per Lava run (default: as many as keep every tiled weight
    matrix under ``MAX_TILED_ENTRIES``). ``counters`` holds ``synaptic_events`` when the spikes of
    every source population were recorded; Lava exposes no overflow counters.
    """
    record = tuple(record)
    unknown = set(record) - set(RECORDABLE)
    if unknown:
        raise ValueError(f"cannot record {sorted(unknown)}; choose from {RECORDABLE}")
    net = split_nine_bit(net)
    _check_network(net)
    missing = set(net.inputs) - set(inputs)
    if missing:
        raise NeurodeployError(f"no input spike trains for {sorted(missing)}", where=WHERE)
    first = np.asarray(inputs[net.inputs[0]])
    t_in = first.shape[0]
    # The emulator's batch: inputs, per-instance parameters and weights broadcast together.
    batch_shape, _ = population_batches(net, {n: np.asarray(inputs[n]) for n in net.inputs})
    steps = t_in if steps is None else int(steps)
    n_batch = prod(batch_shape)
    flat = {}
    for name in net.inputs:
        x = np.asarray(inputs[name])
        size = net.population(name).size
        if x.shape[0] != t_in or x.shape[-1] != size:
            raise NeurodeployError(f"input {name!r} has shape {x.shape}, expected ({t_in}, ..., {size})", where=WHERE)
        x = x.reshape(t_in, *(1,) * (len(batch_shape) + 2 - x.ndim), *x.shape[1:])
        flat[name] = np.broadcast_to(x != 0, (t_in, *batch_shape, size)).reshape(t_in, n_batch, -1)
    wanted = [p.name for p in net.populations if populations is None or p.name in set(populations)]
    lif_names = [n for n in wanted if n not in net.inputs]
    monitored = [(k, n) for k in record for n in lif_names]

    ok, why = hardware_available() if hardware else (True, "")
    if not ok:
        raise NeurodeployError("cannot run on Loihi 2 hardware", where=WHERE, hint=why)
    lv = run_cfg = None
    if monitored and steps > 0 and n_batch > 0:
        ok, why = available()
        if not ok:
            raise NeurodeployError("the Lava backend is not available", where=WHERE, hint=why or INSTALL_HINT)
        lv = _lava()
        cfg_cls = lv["Loihi2HwCfg"] if hardware else lv["Loihi2SimCfg"]
        exceptions = {} if hardware else {lv["Monitor"]: lv["MonitorModel"]}
        run_cfg = cfg_cls(select_tag="fixed_pt", exception_proc_model_map=exceptions)

    size = {p.name: p.size for p in net.populations}
    parts: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in monitored}
    if lv is not None:
        c = default_chunk(net, n_batch) if chunk is None else max(1, int(chunk))
        for start in range(0, n_batch, c):
            got = _run_chunk(lv, net, flat, slice(start, min(start + c, n_batch)), batch_shape, steps,
                             monitored, run_cfg)  # fmt: skip
            for key in monitored:
                parts[key].append(got[key])

    out = SimulationOutput()
    for kind in record if steps > 0 else ():  # the emulator records nothing for zero steps
        for name in wanted:  # same key order as the emulator: population order
            shape = (steps, *batch_shape, size[name])
            if (kind, name) in parts:
                chunks = parts[(kind, name)]
                data = np.concatenate(chunks, axis=1).reshape(shape) if chunks else np.zeros(shape)
                getattr(out, kind)[name] = data.astype(bool) if kind == "spikes" else data.astype(np.int64)
            elif kind == "spikes":  # input populations: their own trains, silent past the end
                s = np.zeros(shape, dtype=bool)
                s[: min(t_in, steps)] = flat[name][:steps].reshape(-1, *shape[1:])
                out.spikes[name] = s
    out.counters = _counters(net, out, steps, batch_shape)
    return out


def _counters(net: CoreNetwork, out: SimulationOutput, steps: int, batch: tuple[int, ...]) -> dict[str, int]:
    """Synaptic events as the emulator counts them (spikes delivered within ``steps``), when known."""
    if not all(pr.src in out.spikes for pr in net.projections):
        return {}
    events = 0
    for pr in net.projections:
        if steps > pr.delay:
            events += Synapse(pr, "loihi", batch).events(out.spikes[pr.src][: steps - pr.delay], batch)
    return {"synaptic_events": events}


__all__ = ["available", "hardware_available", "run_lava", "default_chunk", "MAX_TILED_ENTRIES"]
