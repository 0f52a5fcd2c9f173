"""Monte Carlo over chip instances in chunks: a memory budget per worker, the same numbers as one batch.

Instance k is drawn from ``default_rng([seed, k, ...])`` (``emulator.mismatch``) whichever chunk holds it,
and every figure of a variability run is assembled from per-instance values, so any split into chunks
(on any executor, finishing in any order) gives exactly the result of one batched run.

A chunk is a study cell (``variability_chunk``): instances ``first .. first + count - 1`` at one sigma
multiplier, with calibration when asked. ``plan_chunks`` sizes chunks from an estimate of a chunk's peak
memory (``chunk_memory``), so each fits ``max_memory`` per worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError

# What a worker holds besides the chunk's arrays: the interpreter, numpy, neurodeploy and the network
# (an idle worker measured 64 MiB resident; after chunks of the demo network, about 210 MiB).
RESERVE_BYTES = 256 << 20
FIXED_BYTES = 8 << 20  # arrays a chunk holds whatever its size (the nominal run, readouts, labels)
# Per element (step x sample x neuron x instance) of a run: the uint8 spike recording and part of a copy.
RECORD_BYTES = 1.5
STATE_BYTES = 48  # per sample, neuron and instance: u, v, the input and their temporaries (float64)
# The emulator sums inputs in blocks of at most BLOCK_ELEMENTS per population (``emulator.simulate``):
# float64 with temporaries, growing with the chunk until the block is full, then fixed.
BLOCK_BYTES = 20
CAL_STATE_BYTES = 1400  # calibration: per probe sample, neuron of the widest layer and instance
CAL_BLOCK_BYTES = 24
DEFAULT_PROBE = (40, 128)  # steps and samples of ``calibration.default_probe``


@dataclass(frozen=True)
class ChunkMemory:
    """Peak bytes of a variability chunk as a function of its instances (``bytes``), from the shapes.

    Fitted with a margin to tracemalloc peaks of chunks of 1 to 32 instances on networks of 63 to 266
    neurons and 100 to 1000 samples, with and without calibration; ``tests/test_studies.py`` checks that
    it bounds the measured peak."""

    elements: int  # steps x samples x neurons of one instance's run
    states: int  # samples x neurons
    weights: int  # synapses that get per-instance values
    cal_elements: int = 0  # the same for calibration on its probe (0: no calibration)
    cal_states: int = 0  # probe samples x neurons of the widest layer

    def bytes(self, count: int) -> int:
        from neurodeploy.emulator.simulate import BLOCK_ELEMENTS

        shared = FIXED_BYTES + count * 3 * 8 * self.weights  # the sampled and the trimmed weights
        run = count * (self.elements * RECORD_BYTES + self.states * STATE_BYTES)
        run += min(count * self.elements, BLOCK_ELEMENTS) * BLOCK_BYTES
        cal = count * self.cal_states * CAL_STATE_BYTES
        cal += min(count * self.cal_elements, BLOCK_ELEMENTS) * CAL_BLOCK_BYTES
        return int(shared + max(run, cal if self.cal_elements else 0))

    def most_instances(self, room: int, limit: int) -> int:
        """The largest chunk (up to ``limit``) whose estimate fits ``room`` bytes; 0 if none does."""
        lo, hi = 0, limit
        while lo < hi:  # bytes() grows with count: bisect
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self.bytes(mid) <= room else (lo, mid - 1)
        return lo


def _shape(arrays: list[Any]) -> tuple[int, int]:
    steps = max(np.shape(a)[0] for a in arrays)
    samples = max(math.prod(np.shape(a)[1:-1]) if np.ndim(a) > 2 else 1 for a in arrays)
    return steps, samples


def chunk_memory(compiled: Any, inputs: Any, calibrate: bool = False, probe: Any = None) -> ChunkMemory:
    """The memory model of variability chunks of ``compiled`` on ``inputs`` (and ``probe`` when calibrating)."""
    core = compiled.core
    steps, samples = _shape(list(inputs.values()) if isinstance(inputs, Mapping) else [inputs])
    steps += max(core.latency().values(), default=0)
    sizes = [p.size for p in core.populations if p.name not in core.inputs]
    neurons = sum(sizes)
    weights = sum(int(np.prod(np.shape(pr.weight)[-2:])) for pr in core.projections)
    cal_elements = cal_states = 0
    if calibrate:
        p_steps, p_samples = _shape(list(probe.values()) if isinstance(probe, Mapping) else [probe]) \
            if probe is not None else DEFAULT_PROBE  # fmt: skip
        cal_elements = p_steps * p_samples * neurons
        cal_states = p_samples * max(sizes, default=0)
    return ChunkMemory(steps * samples * neurons, samples * neurons, weights, cal_elements, cal_states)


def plan_chunks(instances: int, memory: ChunkMemory, max_memory: int | None, workers: int = 1) -> list[tuple[int, int]]:
    """(first, count) chunks covering ``instances`` whose estimated peak fits ``max_memory`` bytes.

    Without a budget, one chunk per worker (one chunk in all when serial). A budget that cannot hold
    even one instance is refused with the budget that would."""
    if max_memory is None:
        size = math.ceil(instances / max(workers, 1))
    else:
        size = memory.most_instances(max_memory - RESERVE_BYTES, instances)
        if size < 1:
            need = RESERVE_BYTES + memory.bytes(1)
            raise NeurodeployError(
                f"a memory budget of {max_memory / 2**20:.0f} MiB cannot hold one chip instance (about "
                f"{need / 2**20:.0f} MiB with the worker's own {RESERVE_BYTES >> 20} MiB)",
                "--max-memory",
                f"raise it to at least --max-memory {math.ceil(need / 2**20)}MB, or use fewer samples",
            )
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
    from neurodeploy.studies.variability import _accuracy

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
