"""Per-layer scale search: pick each population's scale factor by the spikes it produces on sample inputs.

The default scales put as many bits as the fields allow on thresholds and weights, but rounding can
still shift a few spikes. The search tries a handful of factors per population, layer by layer in
data-flow order (earlier layers already fixed), runs the chip model on the sample inputs and keeps the
factor with the smallest error against the float reference:

    error = spike disagreement of the population itself + mean disagreement of the network outputs

Loihi (and Xylo) factors are 2^(-k/8), k = 0..7 (one octave below the largest lambda: inside the fields);
analog weight grids try 1 to 3 (larger factors clip the largest weights to refine the grid for the
rest). Ties keep the smaller change (the first factor).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.compiler.quantize import (
    LayerQuantization,
    quantize,
    quantize_float,
    quantize_population,
    replace_population,
)
from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import Profile

LOIHI_FACTORS = tuple(2.0 ** (-k / 8) for k in range(8))
GRID_FACTORS = (1.0, 1.25, 1.5, 2.0, 3.0)


def candidate_factors(profile: Profile) -> tuple[float, ...]:
    """The factors worth trying on this profile (none for plain float cores: nothing is rounded)."""
    if profile.core_model in ("loihi", "xylo"):
        return LOIHI_FACTORS
    if profile.numerics.get("weight_magnitude_bits") is not None:
        return GRID_FACTORS
    return ()


def _spikes(core: CoreNetwork, inputs: Any) -> dict[str, np.ndarray]:
    from neurodeploy.runner import run_core

    return run_core(core, inputs, backend="emulator").spikes


def _disagreement(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a != b))


def search_scales(
    ir: NetworkIR,
    profile: Profile,
    sample_inputs: Any,
    rounding: str = "nearest",
    seed: int = 0,
    per_channel: bool = False,
) -> tuple[CoreNetwork, list[LayerQuantization]]:
    """Quantize with a searched factor per population; each report's ``search`` lists what was tried."""
    if sample_inputs is None:
        raise CompileError(
            "scale_search needs sample inputs",
            "compile(scale_search=True) / --scale-search",
            "pass --sample-inputs x.npy (Python: sample_inputs=spikes shaped (time, batch, n_in))",
        )
    core, reports = quantize(ir, profile, rounding, seed, per_channel)
    factors = candidate_factors(profile)
    if not factors:
        for rep in reports:
            rep.search = {"skipped": f"{profile.core_model} core without a weight grid: nothing is rounded"}
        return core, reports
    reference_core, _ = quantize_float(ir, latency=0)
    reference = _spikes(reference_core, sample_inputs)
    by_name = {rep.population: rep for rep in reports}
    outputs = list(ir.outputs)
    for index, pop in enumerate(ir.populations):
        if pop.kind == "input":
            continue
        tried: list[tuple[float, float]] = []
        best: tuple[float, float, tuple] | None = None
        for factor in factors:
            built = quantize_population(ir, index, profile, rounding, seed, per_channel, factor)
            replace_population(core, built[0], built[1])
            chip = _spikes(core, sample_inputs)
            error = _disagreement(chip[pop.name], reference[pop.name])
            error += float(np.mean([_disagreement(chip[o], reference[o]) for o in outputs])) if outputs else 0.0
            tried.append((factor, error))
            if best is None or error < best[1] - 1e-12:
                best = (factor, error, built)
        factor, error, built = best
        replace_population(core, built[0], built[1])
        rep = built[2]
        rep.search = {
            "factors": [round(f, 6) for f, _ in tried],
            "errors": [round(e, 6) for _, e in tried],
            "chosen": round(factor, 6),
            "error": round(error, 6),
        }
        by_name[pop.name] = rep
    return core, [by_name[r.population] for r in reports]
