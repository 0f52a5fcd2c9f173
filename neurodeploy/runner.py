"""``run``: one entry point for every backend, with inputs checked and outputs aligned to input time."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.errors import NeurodeployError

BACKENDS = ("emulator", "lava", "board")


# One dtype for every spike array a user sees, on every profile: counts per step. Most cores fire at
# most once a step (their bool trains are viewed as 0/1, no copy); Xylo's hidden neurons fire up to 31
# times a step and its inputs count up to 15 (emulator/xylo.py caps both), so uint8 holds every count.
SPIKE_DTYPE = np.dtype(np.uint8)
SPIKE_MAX = int(np.iinfo(SPIKE_DTYPE).max)


def spike_counts(arr: object, where: str = "spikes") -> np.ndarray:
    """``arr`` as SPIKE_DTYPE counts per step, so results compare across profiles; bool is viewed, not copied.

    Other integer or integral float arrays (e.g. an old ``out.npz``) are cast after a range check, so a
    count never wraps silently.
    """
    a = np.asarray(arr)
    if a.dtype == SPIKE_DTYPE:
        return a
    if a.dtype == np.bool_:
        return a.view(SPIKE_DTYPE)
    if a.dtype.kind in "iuf":
        whole = a.dtype.kind != "f" or bool(np.all(np.isfinite(a)) and np.all(a == np.rint(a)))
        if a.size == 0 or (whole and a.min() >= 0 and a.max() <= SPIKE_MAX):
            return a.astype(SPIKE_DTYPE)
    raise NeurodeployError(
        f"spikes must be counts from 0 to {SPIKE_MAX} per step, got {a.dtype} values",
        where,
        "pass bool spikes or small non-negative integer counts",
    )


@dataclass
class RunResult:
    """Recordings per population, each (time, batch, neurons), aligned so index t follows input step t.

    ``spikes`` hold spike counts per step as ``np.uint8`` (SPIKE_DTYPE) on every profile and backend:
    0/1 where a neuron fires at most once a step, up to 31 on Xylo's hidden neurons. Sum them with
    ``counts()`` (int64, so totals neither wrap nor underflow when subtracted); use ``!= 0`` or
    ``np.logical_not`` for a logical mask, not ``~``. ``u`` and ``v`` keep their own dtypes.
    The chip's synaptic latency is removed: ``latency[name]`` says how many extra steps were run
    so that the last input steps reach each population.
    """

    spikes: dict[str, np.ndarray]
    u: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    backend: str = "emulator"
    wall_seconds: float = 0.0
    latency: dict[str, int] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    readouts: dict[str, np.ndarray] = field(default_factory=dict)  # host readouts' values (time, batch, n)

    def __post_init__(self) -> None:
        """Every backend's spikes in one dtype here, where results reach the user (not in the hot loops)."""
        self.spikes = {n: spike_counts(a, f"spikes of {n!r}") for n, a in self.spikes.items()}

    def output(self, name: str | None = None) -> np.ndarray:
        """An output per step (the first by default): spike counts (uint8) of a population, or the float
        values of a host readout (stateless nodes before the Output, ``emulator.readout``)."""
        name = name or self.outputs[0]
        return self.readouts[name] if name in self.readouts else self.spikes[name]

    def counts(self, name: str | None = None) -> np.ndarray:
        """Per sample and output, summed over time, (batch, n): int64 spike counts (safe to subtract), or a
        readout's float64 values."""
        out = self.output(name)
        return out.sum(axis=0) if out.dtype.kind == "f" else out.sum(axis=0, dtype=np.int64)

    def predictions(self, name: str | None = None) -> np.ndarray:
        """Class per sample: the output with the largest count or summed readout (ties: lowest index)."""
        return self.counts(name).argmax(axis=-1)


def _check_inputs(
    core: CoreNetwork,
    inputs: np.ndarray | Mapping[str, np.ndarray],
    own_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> dict[str, np.ndarray]:
    """Spikes per input as (time, batch, neurons) bools. ``own_shapes``: inputs' shapes (e.g. (C, H, W)),
    so spikes may also come as (time, batch, C, H, W) and are flattened row-major here."""
    if not isinstance(inputs, Mapping):
        if len(core.inputs) != 1:
            raise NeurodeployError(
                f"the network has {len(core.inputs)} inputs {core.inputs}", "inputs", "pass a dict {input name: array}"
            )
        inputs = {core.inputs[0]: inputs}
    missing = [n for n in core.inputs if n not in inputs]
    extra = [n for n in inputs if n not in core.inputs]
    if missing or extra:
        raise NeurodeployError(
            f"input names do not match: missing {missing}, unknown {extra}",
            "inputs",
            f"the network's inputs are {core.inputs}",
        )
    out: dict[str, np.ndarray] = {}
    shapes = set()
    for name, arr in inputs.items():
        arr = np.asarray(arr)
        size = core.population(name).size
        if arr.dtype.kind not in "biuf":
            raise NeurodeployError(
                f"input dtype {arr.dtype} is not numeric",
                f"input {name!r}",
                "pass spikes as a bool or 0/1 integer array",
            )
        own = tuple((own_shapes or {}).get(name, ()))
        if own and arr.ndim == 2 + len(own) and tuple(arr.shape[2:]) == own:
            arr = arr.reshape(*arr.shape[:2], size)  # the model's own shape, flattened as the graph is
        if arr.ndim == 2:
            arr = arr[:, None, :]
        if arr.ndim != 3 or arr.shape[-1] != size or arr.shape[0] == 0:
            also = f" or (time, batch, {', '.join(map(str, own))})" if own else ""
            raise NeurodeployError(
                f"input shape {arr.shape} does not fit", f"input {name!r}", f"pass (time, batch, {size}){also} spikes"
            )
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
            raise NeurodeployError("input contains NaN or inf", f"input {name!r}", "pass 0/1 spikes")
        if not np.all((arr == 0) | (arr == 1)):
            raise NeurodeployError(
                "input values must be spikes (0 or 1)",
                f"input {name!r}",
                "encode analog values as spike trains first, e.g. datasets.encode_latency",
            )
        out[name] = arr.astype(bool)
        shapes.add(arr.shape[:2])
    if len(shapes) > 1:
        raise NeurodeployError(
            f"inputs disagree in (time, batch): {sorted(shapes)}",
            "inputs",
            "give every input the same number of steps and samples",
        )
    return out


def run_core(
    core: CoreNetwork,
    inputs: np.ndarray | Mapping[str, np.ndarray],
    backend: str = "emulator",
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> RunResult:
    """Run a CoreNetwork on a backend; see ``run``."""
    if backend not in BACKENDS:
        raise NeurodeployError(f"unknown backend {backend!r}", "backend", f"choose one of {', '.join(BACKENDS)}")
    checked = _check_inputs(core, inputs, input_shapes)
    record = tuple(record)
    t_in = next(iter(checked.values())).shape[0]
    latency = core.latency()
    names = list(populations) if populations is not None else [p.name for p in core.populations]
    requested, asked = set(names), record
    if core.readouts:  # the readouts need their sources' trains (v for a non-spiking source)
        sources = _readout_sources(core)
        names += [n for n in sources if n not in requested]
        spiking = {core.population(n).spiking for n in sources}
        record = (*record, *(k for k, need in (("spikes", True in spiking), ("v", False in spiking))
                             if need and k not in record))  # fmt: skip
    for name in names:
        if name not in latency:
            raise NeurodeployError(
                f"population {name!r} is unknown or unreachable from the inputs",
                "populations",
                f"choose from {sorted(latency)}",
            )
    steps = t_in + max(latency[n] for n in names)
    check_run_memory(core, {n: a.shape for n, a in checked.items()}, record, names)
    start = time.perf_counter()
    if backend == "emulator":
        from neurodeploy.emulator.simulate import simulate

        raw = simulate(core, checked, steps=steps, record=record, populations=names)
    elif backend == "lava":
        from neurodeploy.emulator.backends.lava import run_lava

        raw = run_lava(core, checked, steps=steps, record=record, populations=names)
    else:
        from neurodeploy.emulator.backends.board import run_board

        raw = run_board(core, checked, steps=steps, record=record, populations=names)
    wall = time.perf_counter() - start

    def align(per_pop: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {n: a[latency[n] : latency[n] + t_in] for n, a in per_pop.items()}

    spikes, u, v = align(raw.spikes), align(raw.u), align(raw.v)
    readouts = host_readouts(core, spikes, v)
    if core.readouts:
        kept = {k: {n: a for n, a in rec.items() if n in requested and k in asked}
                for k, rec in (("spikes", spikes), ("u", u), ("v", v))}  # fmt: skip
        spikes, u, v = kept["spikes"], kept["u"], kept["v"]
    return RunResult(
        spikes,
        u,
        v,
        dict(raw.counters),
        backend,
        wall,
        {n: latency[n] for n in names},
        list(core.outputs),
        readouts,
    )


def host_readouts(core: CoreNetwork, spikes: Mapping[str, np.ndarray], v: Mapping[str, np.ndarray]) -> dict:
    """The values of the network's host readouts from aligned recordings (those whose sources were kept)."""
    from neurodeploy.emulator.readout import readout_values

    out = {}
    for r in core.readouts:
        sources = {t.src: spikes.get(t.src) if core.population(t.src).spiking else v.get(t.src) for t in r.terms}
        if all(x is not None for x in sources.values()):
            out[r.name] = readout_values(r, sources)
    return out


def _readout_sources(core: CoreNetwork) -> list[str]:
    """Populations the host readouts read: their spikes, or v where the population does not spike."""
    return list(dict.fromkeys(t.src for r in core.readouts for t in r.terms))


RUN_COPIES = 3  # a recording, its aligned view's copy and the written output: measured peaks are within this


def check_run_memory(
    core: CoreNetwork,
    shapes: Mapping[str, tuple[int, ...]],
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
) -> None:
    """Refuse, before anything is loaded or run, a run whose recordings would not fit: steps × batch ×
    recorded neurons × bytes per recorded variable (spikes 1, u and v 8 each), a few copies, against the
    input limit. ``shapes``: the input arrays' (declared) shapes (time, *batch, neurons)."""
    from neurodeploy.limits import ENV, _human, _size_text, max_input_bytes

    if not shapes or any(len(s) < 2 for s in shapes.values()):
        return  # malformed: the input check says what is wrong
    latency = core.latency()
    names = [n for n in (populations if populations is not None else latency) if n in latency]
    steps = max(s[0] for s in shapes.values()) + max((latency[n] for n in names), default=0)
    batch = max(s[1] if len(s) > 3 else math.prod(s[1:-1]) for s in shapes.values())  # (T, B, C, H, W) too
    per_neuron = sum({"spikes": 1, "u": 8, "v": 8}.get(r, 8) for r in record)
    neurons = sum(core.population(n).size for n in names)
    inputs_n = sum(math.prod(s[2:]) if len(s) > 3 else s[-1] for s in shapes.values())
    need = steps * batch * (neurons * per_neuron * RUN_COPIES + inputs_n)
    limit = max_input_bytes()
    if need > limit:
        raise NeurodeployError(
            f"the run would hold about {_human(need)} of recordings ({steps:,} steps x {batch:,} samples x "
            f"{neurons:,} neurons), over the limit of {_human(limit)}",
            "inputs",
            f"split the input into shorter runs or smaller batches, record less (--record spikes), or raise "
            f"the limit: {ENV}={_size_text(2 * need)}",
        )


def run(
    compiled: object,
    inputs: np.ndarray | Mapping[str, np.ndarray],
    backend: str = "emulator",
    record: Iterable[str] = ("spikes",),
    populations: Iterable[str] | None = None,
) -> RunResult:
    """Run a CompiledNetwork on ``backend`` ("emulator", "lava" or "board").

    ``inputs``: spikes (time, batch, neurons) for a single-input network, or {input name: array}; an
    input whose graph has a shape (a conv model's (C, H, W)) also takes (time, batch, C, H, W).
    ``record``: any of "spikes", "u", "v". Results are aligned to input time; see RunResult.
    """
    core = getattr(compiled, "core", None)
    if not isinstance(core, CoreNetwork):
        raise NeurodeployError(
            "run() needs a compiled network",
            "compiled",
            "call neurodeploy.compile(graph, profile) or neurodeploy.load_compiled(path) first",
        )
    ir = getattr(compiled, "ir", None)
    shapes = {p.name: tuple(p.shape) for p in getattr(ir, "populations", []) if getattr(p, "shape", ())}
    return run_core(core, inputs, backend, record, populations, shapes)
