"""Accuracy across sampled chip instances: what share of analog chips would run this network well enough.

One emulator run covers every instance (``emulator.mismatch.sample`` puts them on a batch axis and the
inputs broadcast over it), so 64 instances cost about one run on 64x the batch, not 64 Python loops.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from neurodeploy.emulator.mismatch import mismatch_spec, sample, scale_spec
from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.errors import NeurodeployError, check_seed
from neurodeploy.runner import RunResult, host_readouts, run_core
from neurodeploy.studies.montecarlo import chunk_memory, join_chunks, parse_memory, plan_chunks, variability_chunk

QUANTILES = (5, 25, 50, 75, 95)


@dataclass
class VariabilityResult:
    """Per-instance accuracy and its summary; rates are spikes per neuron and step, averaged per instance."""

    profile: str
    instances: int
    seed: int
    samples: int
    target: float
    spec: dict[str, list[dict[str, Any]]]
    accuracy: list[float]
    nominal_accuracy: float
    mean: float
    std: float
    worst: float
    worst_instance: int
    quantiles: dict[str, float]
    yield_at_target: float
    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    sweep: list[dict[str, float]] = field(default_factory=list)
    wall_seconds: float = 0.0
    calibration: dict[str, Any] = field(default_factory=dict)
    lava: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (floats and lists only)."""
        return asdict(self)


def _labels(labels: Any, batch: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != batch or arr.dtype.kind not in "iub":
        raise NeurodeployError(
            f"labels must be {batch} integers (one class per sample), got shape {arr.shape} of {arr.dtype}",
            "labels",
            "save a 1-D integer array with one entry per sample",
        )
    return arr.astype(np.int64)


def _batch(compiled: Any, inputs: Any) -> int:
    arrays = inputs.values() if isinstance(inputs, Mapping) else [inputs]
    shapes = {np.shape(a)[1] if np.ndim(a) == 3 else 1 for a in arrays}
    if len(shapes) != 1:
        raise NeurodeployError("inputs disagree in batch size", "inputs", "give every input the same samples")
    return shapes.pop()


def _accuracy(core: CoreNetwork, inputs: Any, labels: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Accuracy per instance (argmax of the first output's counts) and firing rate per layer and instance."""
    res = run_core(core, inputs)
    pred = res.predictions()  # (*instances, batch)
    acc = (pred == labels).mean(axis=-1)
    rates = {
        n: s.mean(axis=(0, -2, -1)) if s.ndim == 4 else np.atleast_1d(s.mean())
        for n, s in res.spikes.items()
        if n not in core.inputs
    }
    return np.atleast_1d(acc), rates


def _summary(acc: np.ndarray, target: float) -> dict[str, Any]:
    return {
        "mean": float(acc.mean()),
        "std": float(acc.std()),
        "worst": float(acc.min()),
        "worst_instance": int(acc.argmin()),
        "quantiles": {f"q{q:02d}": float(np.percentile(acc, q)) for q in QUANTILES},
        "yield_at_target": float(np.mean(acc >= target)),
    }


def variability(
    compiled: Any,
    inputs: Any,
    labels: Any,
    instances: int = 64,
    seed: int = 0,
    sigma: Mapping[str, float] | None = None,
    target: float = 0.9,
    sweep: Sequence[float] | None = None,
    calibrate: bool = False,
    probe: Any = None,
    lava_check: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    *,
    max_memory: int | str | None = None,
    cluster: str | None = None,
    workers: int | None = None,
    cluster_config: Any = None,
    store: Any = None,
) -> VariabilityResult:
    """Accuracy of ``instances`` sampled chips on ``inputs`` (time, batch, n) with ``labels`` (batch,).

    ``sigma`` overrides the profile's mismatch sigmas (see ``emulator.mismatch.mismatch_spec``).
    ``sweep``: sigma multipliers; each adds the mean, std, worst accuracy and yield at that multiple,
    with the same draws scaled (common random numbers), so the curve is smooth in the multiplier.
    ``calibrate``: also trim every instance (``neurodeploy.calibration.calibrate`` on ``probe``, default
    a fixed random probe, never the test inputs) and report accuracy after calibration, the mean gap to
    nominal before and after, and the recovered fraction of that gap.
    ``lava_check``: run the first ``lava_check`` instances again on Lava (``floating_pt``, see
    ``emulator.backends.lava_float``) and report whether spikes, u, v and accuracy agree with the emulator.
    ``progress(stage, done, total)`` is called as each emulator pass starts and at the end: the nominal
    run, the instances, each sweep point, and each calibrated layer; in chunks, as cells finish.

    Chunks (``neurodeploy.studies``): with ``max_memory`` (bytes or e.g. "2GB" per worker), ``cluster``
    (serial, local, tcp://host:port, slurm with ``cluster_config``) or ``store`` (a folder keeping finished
    chunks, so a rerun resumes), instances run in chunks that fit the budget, spread over workers. The
    result equals the batched one: instance k always comes from the same draws.
    """
    if not isinstance(getattr(compiled, "core", None), CoreNetwork):
        raise NeurodeployError(
            "variability() needs a compiled network",
            "compiled",
            "call neurodeploy.compile(graph, profile) or neurodeploy.load_compiled(path)",
        )
    seed = check_seed(seed)
    if not 0 <= float(target) <= 1:
        raise NeurodeployError(
            f"target accuracy must be between 0 and 1, got {target!r}", "target", "pass e.g. target=0.9"
        )
    whole = isinstance(lava_check, (int, np.integer)) and not isinstance(lava_check, bool)
    if not (whole and 0 <= lava_check <= instances):
        raise NeurodeployError(
            f"lava_check must be a number of instances in 0..{instances}, got {lava_check!r}",
            "lava_check",
            "pass e.g. lava_check=2 to run the first two instances on Lava as well",
        )
    start = time.perf_counter()
    truth = _labels(labels, _batch(compiled, inputs))
    spec = mismatch_spec(compiled.profile, sigma)
    if not any(c.get("sigma", 0) > 0 for comps in spec.values() for c in comps):
        import warnings

        warnings.warn(
            f"profile {getattr(compiled.profile, 'name', '?')!r} declares no mismatch and no sigma was given: "
            f"all {instances} instances are identical. Set one with --sigma v_threshold=0.05 "
            "(Python: sigma={'v_threshold': 0.05})",
            stacklevel=2,
        )
    sigmas = [sigma] + [_scaled(spec, mult) for mult in (sweep or ())]
    layers = sum(1 for p in compiled.core.populations if p.model != "input" and p.spiking) if calibrate else 0
    total = 2 + len(sweep or ()) + layers
    tell = progress or (lambda stage, done, total: None)
    tell("nominal chip", 0, total)
    nominal, _ = _accuracy(compiled.core, inputs, truth)
    batched = max_memory is None and cluster is None and store is None
    if batched:
        runs = _batched(compiled, inputs, truth, instances, seed, sigmas, calibrate, probe, tell, total)
    else:
        runs = _chunked(compiled, inputs, truth, instances, seed, sigmas, calibrate, probe, tell,
                        max_memory=parse_memory(max_memory), cluster=cluster, workers=workers,
                        cluster_config=cluster_config, store=store)  # fmt: skip
    tell("done", total, total)
    acc = np.asarray(runs[0]["accuracy"])
    points = []
    for mult, run in zip(sweep or (), runs[1:], strict=True):
        s = _summary(np.asarray(run["accuracy"]), target)
        points.append({"multiplier": float(mult), "mean": s["mean"], "std": s["std"], "worst": s["worst"],
                       "yield_at_target": s["yield_at_target"]})  # fmt: skip
    calibration: dict[str, Any] = {}
    if calibrate:
        calibration = _calibration_summary(runs[0]["calibrated"], float(nominal[0]), acc, target)
    rate_stats = {}
    for name, values in runs[0]["rates"].items():
        r = np.asarray(values)
        rate_stats[name] = {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()),
                            "max": float(r.max())}  # fmt: skip
    lava = {}
    if lava_check:
        net = sample(compiled, compiled.profile, int(lava_check), seed, sigma)
        lava = _lava_check(net, inputs, truth, int(lava_check), acc)
    return VariabilityResult(
        profile=compiled.profile.name,
        instances=int(instances),
        seed=int(seed),
        samples=int(truth.shape[0]),
        target=float(target),
        spec=spec,
        accuracy=[float(a) for a in acc],
        nominal_accuracy=float(nominal[0]),
        **_summary(acc, target),
        rates=rate_stats,
        sweep=points,
        wall_seconds=time.perf_counter() - start,
        calibration=calibration,
        lava=lava,
    )


def _scaled(spec: dict[str, list[dict[str, Any]]], mult: float) -> dict[str, float]:
    """The sigma overrides of one sweep point: every sigma of ``spec`` times ``mult`` (same draws)."""
    if not float(mult) >= 0:
        raise NeurodeployError(f"sweep multipliers must be >= 0, got {mult!r}", "sweep", "pass e.g. 0,0.5,1,2")
    return {f"{n}@{c['scope']}": c["sigma"] for n, comps in scale_spec(spec, float(mult)).items() for c in comps}


Tell = Callable[[str, int, int], None]


def _batched(compiled: Any, inputs: Any, truth: np.ndarray, instances: int, seed: int, sigmas: list[Any],
             calibrate: bool, probe: Any, tell: Tell, total: int) -> list[dict[str, Any]]:  # fmt: skip
    """Every instance in one emulator run per sigma point, here."""
    runs = []
    layers = total - 1 - len(sigmas)
    for j, sig in enumerate(sigmas):
        tell(f"{instances} instances" if j == 0 else f"sigma sweep point {j} of {len(sigmas) - 1}",
             1 if j == 0 else 1 + layers + j, total)  # fmt: skip

        def layer_done(done: int, count: int) -> None:
            tell(f"calibration, layer {min(done + 1, count)} of {count}", 2 + done, total)

        part = variability_chunk(compiled, inputs, truth, 0, instances, seed, sig, calibrate and j == 0, probe,
                                 progress=layer_done)  # fmt: skip
        runs.append(join_chunks([part]))
    return runs


def _chunked(compiled: Any, inputs: Any, truth: np.ndarray, instances: int, seed: int, sigmas: list[Any],
             calibrate: bool, probe: Any, tell: Tell, *, max_memory: int | None, cluster: str | None,
             workers: int | None, cluster_config: Any, store: Any) -> list[dict[str, Any]]:  # fmt: skip
    """Instances in chunks that fit ``max_memory``, as study cells on ``cluster``; joined per sigma point."""
    from neurodeploy.studies.executors import open_executor
    from neurodeploy.studies.study import run_study

    memory = chunk_memory(compiled, inputs, calibrate, probe)
    ex = open_executor(cluster, max(instances, 2), workers, cluster_config)
    try:
        chunks = plan_chunks(instances, memory, max_memory, ex.slots)
        grid = [{"compiled": compiled, "inputs": inputs, "labels": truth, "first": first, "count": count, "seed": seed,
                 "sigma": sig, "calibrate": calibrate and j == 0, "probe": probe}
                for j, sig in enumerate(sigmas) for first, count in chunks]  # fmt: skip

        def show(state: Any) -> None:
            where = f" on {state.executor}" + (f" (dashboard {state.dashboard})" if state.dashboard else "")
            tell(f"{len(chunks)} chunks x {len(sigmas)} sigma points{where}: {state.line()}", state.done, state.total)

        study = run_study(variability_chunk, grid, store=store, executor=ex, progress=show)
    finally:
        ex.close()
    if study.failed:
        raise NeurodeployError(
            f"{len(study.failed)} of {len(grid)} instance chunks failed: {study.failed[0]['error']}",
            "variability",
            "the finished chunks are kept when a store is given; fix the cause and run again to finish the rest",
        )
    results = study.results
    return [join_chunks(results[j * len(chunks) : (j + 1) * len(chunks)]) for j in range(len(sigmas))]


def _calibration_summary(cal: dict[str, Any], nominal: float, acc: np.ndarray, target: float) -> dict[str, Any]:
    """Accuracy after trimming, the gap to nominal before and after, and the trim report's layers."""
    from neurodeploy.calibration import summarize_population

    after = np.asarray(cal["accuracy"])
    report = dict(cal["report"])
    samples = report.get("probe_samples", 1)
    report["populations"] = {n: summarize_population(rows, samples, report["nominal_count_mean"][n])
                             for n, rows in report.pop("per_instance").items()}  # fmt: skip
    report.pop("nominal_count_mean", None)
    gap_before, gap_after = float(nominal - acc.mean()), float(nominal - after.mean())
    return {
        "accuracy": [float(a) for a in after],
        **_summary(after, target),
        "gap_before": gap_before,
        "gap_after": gap_after,
        "recovered": (gap_before - gap_after) / gap_before if gap_before > 0 else 0.0,
        "trim": report,
    }


def _lava_check(net: CoreNetwork, inputs: Any, truth: np.ndarray, count: int, acc: np.ndarray) -> dict[str, Any]:
    """Instances 0..count-1 run on the emulator and on Lava: agreement of spikes, u, v and accuracy."""
    from neurodeploy.emulator.backends.lava_float import cross_check
    from neurodeploy.runner import _check_inputs

    trains = _check_inputs(net, inputs)
    t_in = next(iter(trains.values())).shape[0]
    latency = net.latency()
    check = cross_check(net, trains, range(count), steps=t_in + max(latency.values()))
    aligned = {n: a[latency[n] : latency[n] + t_in] for n, a in check.lava.spikes.items()}
    lava_run = RunResult(aligned, outputs=list(net.outputs), readouts=host_readouts(net, aligned, {}))
    lava_acc = (lava_run.predictions() == truth).mean(axis=-1)
    rows = [{**row, "accuracy": float(acc[k]), "accuracy_lava": float(lava_acc[k])}
            for k, row in enumerate(check.agreement)]  # fmt: skip
    return {
        "instances": count,
        "backend": "floating_pt: MismatchLIF + Dense",
        "steps": check.steps,
        "spikes_identical_in": sum(r["identical_spikes"] for r in rows),
        "accuracy_identical_in": sum(r["accuracy"] == r["accuracy_lava"] for r in rows),
        "max_rel_u": max(r["max_rel_u"] for r in rows),
        "max_rel_v": max(r["max_rel_v"] for r in rows),
        "per_instance": rows,
        "wall_seconds": check.wall_seconds,
    }


def reproduce_instance(compiled: Any, k: int, seed: int = 0, sigma: Mapping[str, float] | None = None) -> CoreNetwork:
    """Instance ``k`` of ``variability(compiled, ..., seed=seed, sigma=sigma)`` alone, without instance axes.

    Runs like the nominal network (``run_core(net, inputs)``), e.g. to inspect the worst chip's spikes.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise NeurodeployError(f"instance index must be an integer >= 0, got {k!r}", "k", "pass e.g. k=0")
    net = sample(compiled, getattr(compiled, "profile", None), 1, seed, sigma, first=int(k))
    for pop in net.populations:
        pop.params = {key: v[0, 0] for key, v in pop.params.items()}
    for pr in net.projections:
        if np.ndim(pr.weight) == 3:
            pr.weight = pr.weight[0]
    return net
