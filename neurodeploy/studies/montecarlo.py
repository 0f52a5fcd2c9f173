"""Monte Carlo over chip instances in chunks: a memory budget per worker, the same numbers as one batch.

Instance k is drawn from ``default_rng([seed, k, ...])`` (``emulator.mismatch``) whichever chunk holds it,
and every figure of a variability run is assembled from per-instance values, so any split into chunks
(on any executor, finishing in any order) gives exactly the result of one batched run.

A chunk is a study cell (``variability_chunk``): instances ``first .. first + count - 1`` at one sigma
multiplier, with calibration when asked. ``plan_chunks`` sizes chunks from an estimate of the memory an
instance takes while it runs (``instance_bytes``), so each fits ``max_memory`` per worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError

# What a worker holds besides the chunk's arrays: the interpreter, numpy, neurodeploy, the network.
RESERVE_BYTES = 384 << 20
# Bytes per (step x sample x neuron x instance) while a chunk runs: the uint8 spike recording and its
# aligned copy, the input sums of a block (float64, a few temporaries) and the neuron state. A chunk
# also holds runs of the nominal network (calibration's targets) and arrays whose size does not shrink
# with the chunk, so it is planned as one instance more than it holds (``chunk_bytes``). Measured peaks
# (tracemalloc) on the test network stay below that for chunks of 1 to 8 (tests/test_studies.py).
RUN_BYTES = 24
CALIBRATION_BYTES = 72  # calibration keeps counts per instance, sample and neuron for several trial codes


def instance_bytes(compiled: Any, inputs: Any, calibrate: bool = False, probe: Any = None) -> int:
    """Estimated peak bytes one more instance adds to a variability chunk on ``inputs``."""
    core = compiled.core
    arrays = list(inputs.values()) if isinstance(inputs, Mapping) else [inputs]
    steps = max(np.shape(a)[0] for a in arrays) + max(core.latency().values(), default=0)
    samples = max(math.prod(np.shape(a)[1:-1]) if np.ndim(a) > 2 else 1 for a in arrays)
    neurons = sum(p.size for p in core.populations if p.name not in core.inputs)
    per = steps * samples * neurons * RUN_BYTES
    per += 3 * 8 * sum(int(np.prod(np.shape(pr.weight)[-2:])) for pr in core.projections)  # per-instance weights
    per += 16 * 8 * neurons  # per-instance parameters
    if calibrate:
        p_arrays = [probe] if probe is not None and not isinstance(probe, Mapping) else list((probe or {}).values())
        p_samples = max((math.prod(np.shape(a)[1:-1]) for a in p_arrays if np.ndim(a) > 2), default=64)
        p_steps = max((np.shape(a)[0] for a in p_arrays), default=steps)
        per = max(per, (p_steps + steps) * p_samples * neurons * CALIBRATION_BYTES)
    return int(per)


def chunk_bytes(count: int, per_instance: int) -> int:
    """Estimated peak bytes of a chunk of ``count`` instances: one instance's worth more for what is fixed."""
    return (count + 1) * per_instance


def plan_chunks(instances: int, per_instance: int, max_memory: int | None, workers: int = 1) -> list[tuple[int, int]]:
    """(first, count) chunks covering ``instances`` that each fit ``max_memory`` bytes.

    Without a budget, one chunk per worker (one chunk in all when serial). A budget that cannot hold
    even one instance is refused with the budget that would."""
    if max_memory is None:
        size = math.ceil(instances / max(workers, 1))
    else:
        room = max_memory - RESERVE_BYTES
        if room < chunk_bytes(1, per_instance):
            need = RESERVE_BYTES + chunk_bytes(1, per_instance)
            raise NeurodeployError(
                f"a memory budget of {max_memory / 2**20:.0f} MiB cannot hold one chip instance (about "
                f"{need / 2**20:.0f} MiB with the worker's own {RESERVE_BYTES >> 20} MiB)",
                "--max-memory",
                f"raise it to at least --max-memory {math.ceil(need / 2**20)}MB, or use fewer samples",
            )
        size = max(1, min(instances, room // per_instance - 1))
        if workers > 1:  # keep every worker busy when the budget would leave some idle
            size = min(size, math.ceil(instances / workers))
    return [(first, min(size, instances - first)) for first in range(0, instances, size)]


def parse_memory(text: str | int | None) -> int | None:
    """``2GB``, ``512MiB``, ``1.5G`` or a number of bytes -> bytes (None stays None)."""
    if text is None:
        return None
    if isinstance(text, bool):
        value = -1.0
    elif isinstance(text, int):
        value = float(text)
    else:
        raw = str(text).strip().upper().removesuffix("B").removesuffix("I")
        scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(raw[-1:], 1)
        try:
            value = float(raw[:-1] if scale > 1 else raw) * scale
        except ValueError:
            value = -1.0
    if not (math.isfinite(value) and value >= 1):
        raise NeurodeployError(f"bad memory size {text!r}", "--max-memory", "write e.g. --max-memory 2GB")
    return int(value)


def variability_chunk(
    compiled: Any,
    inputs: Any,
    labels: np.ndarray,
    first: int,
    count: int,
    seed: int,
    sigma: Mapping[str, float] | None,
    calibrate: bool = False,
    probe: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Instances ``first .. first + count - 1``: per-instance accuracy and rates, and after calibration."""
    from neurodeploy.emulator.mismatch import sample
    from neurodeploy.variability import _accuracy

    net = sample(compiled, compiled.profile, count, seed, sigma, first=first)
    acc, rates = _accuracy(net, inputs, labels)
    out: dict[str, Any] = {
        "first": first,
        "accuracy": np.broadcast_to(acc, (count,)).tolist(),
        "rates": {n: np.broadcast_to(r, (count,)).tolist() for n, r in rates.items()},
    }
    if calibrate:
        from neurodeploy.calibration import calibrate as trim

        trimmed, report = trim(compiled, net, probe=probe, seed=seed, progress=progress)
        after, _ = _accuracy(trimmed, inputs, labels)
        report["nominal_count_mean"] = {n: pop["nominal_count_mean"] for n, pop in report["populations"].items()}
        for codes in ("steps", "bias_steps", "populations"):  # per-neuron arrays and summaries: rebuilt whole
            report.pop(codes, None)
        report["instances"] = {k: np.broadcast_to(v, (count,)).tolist() for k, v in report["instances"].items()}
        report["per_instance"] = {
            n: {k: np.broadcast_to(v, (count,)).tolist() for k, v in rows.items()}
            for n, rows in report["per_instance"].items()
        }
        out["calibrated"] = {"accuracy": np.broadcast_to(after, (count,)).tolist(), "report": report}
    return out


def join_chunks(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Chunks (any order) -> per-instance lists in instance order, as one batched chunk would give them."""
    chunks = sorted(chunks, key=lambda c: c["first"])
    out: dict[str, Any] = {
        "accuracy": [a for c in chunks for a in c["accuracy"]],
        "rates": {n: [r for c in chunks for r in c["rates"][n]] for n in chunks[0]["rates"]},
    }
    if "calibrated" in chunks[0]:
        reports = [c["calibrated"]["report"] for c in chunks]
        report = {k: v for k, v in reports[0].items() if k not in ("instances", "per_instance", "emulator_runs")}
        report["emulator_runs"] = sum(r["emulator_runs"] for r in reports)
        report["instances"] = {k: [x for r in reports for x in r["instances"][k]] for k in reports[0]["instances"]}
        report["per_instance"] = {
            n: {k: [x for r in reports for x in r["per_instance"][n][k]] for k in rows}
            for n, rows in reports[0]["per_instance"].items()
        }
        out["calibrated"] = {"accuracy": [a for c in chunks for a in c["calibrated"]["accuracy"]], "report": report}
    return out
