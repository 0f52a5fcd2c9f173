"""Per-layer scale search: pick each population's scale factor by the spikes it produces on sample inputs.

The default scales put as many bits as the fields allow on thresholds and weights, but rounding can
still shift a few spikes. The search tries a handful of factors per population, layer by layer in
data-flow order (earlier layers already fixed), runs the chip model on the sample inputs and keeps the
factor with the smallest error against the float reference:

    error = spike disagreement of the population itself + mean disagreement of the network outputs

Loihi (and Xylo) factors are 2^(-k/8), k = 0..7 (one octave below the largest lambda: inside the fields);
analog weight grids try 1 to 3 (larger factors clip the largest weights to refine the grid for the
rest). Ties keep the smaller change (the first factor).

On Loihi cores, a factor under which the population wraps u or saturates v on the sample inputs
(``compiler.saturation``) is rejected whatever its error: the chip then leaves the float model in a way
a few sample inputs do not bound. When every factor above overflows, smaller ones follow, half an octave
at a time down to 2^-8, until one does not; if none does, the fewest overflows win. ``search`` records
the counts and what was rejected.
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
from neurodeploy.compiler.saturation import overflows, run_chip
from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import Profile

LOIHI_FACTORS = tuple(2.0 ** (-k / 8) for k in range(8))
# tried one by one, only while every factor so far wraps u or saturates v (Loihi: the peaks scale with lambda)
RESCUE_FACTORS = tuple(2.0 ** (-k / 2) for k in range(2, 17))
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


def _chip(core: CoreNetwork, inputs: Any) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
    """Spikes and per-population overflow counts of one chip run (no peaks: only the counts decide)."""
    result, overflow = run_chip(core, inputs, peaks=False)
    return result.spikes, overflow


def _search_note(tried: list[tuple[float, float, int]], chosen: float) -> dict[str, Any]:
    """What the search record says about overflow: the factors rejected for it, and why the choice stands."""
    rejected = [(f, n) for f, _, n in tried if n]
    if not rejected:
        return {}
    first_f, first_n = rejected[0]
    kept = next(n for f, _, n in tried if f == chosen)
    if kept:
        note = f"every factor tried down to {tried[-1][0]:.4g} wraps u or saturates v; kept the fewest ({kept})"
    else:
        note = (
            f"{len(rejected)} factor(s) wrap u or saturate v on the sample inputs (factor {first_f:.4g}: "
            f"{first_n} times) and were rejected; {chosen:.4g} does not"
        )
    return {"rejected": [round(f, 6) for f, _ in rejected], "note": note}


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
    # the populations the outputs come from (a host readout's sources stand in for it)
    sources = {r.name: [t.src for t in r.terms] for r in ir.readouts}
    outputs = list(dict.fromkeys(n for o in ir.outputs for n in sources.get(o, [o]) if n not in ir.inputs))
    for index, pop in enumerate(ir.populations):
        if pop.kind == "input":
            continue
        tried: list[tuple[float, float, int]] = []  # factor, error, u wraps + v saturations of the population
        best: tuple[float, float, int, tuple] | None = None
        queue, rescue = list(factors), iter(RESCUE_FACTORS if profile.core_model == "loihi" else ())
        while queue:
            factor = queue.pop(0)
            built = quantize_population(ir, index, profile, rounding, seed, per_channel, factor)
            replace_population(core, built[0], built[1])
            chip, overflow = _chip(core, sample_inputs)
            error = _disagreement(chip[pop.name], reference[pop.name])
            error += float(np.mean([_disagreement(chip[o], reference[o]) for o in outputs])) if outputs else 0.0
            over = overflows(overflow.get(pop.name))
            tried.append((factor, error, over))
            # fewer overflows first (none beats any), then the smaller error; ties keep the earlier factor
            if best is None or over < best[2] or (over == best[2] and error < best[1] - 1e-12):
                best = (factor, error, over, built)
            if not queue and best[2]:  # everything so far overflows: try the next smaller factor
                smaller = next(rescue, None)
                if smaller is not None:
                    queue.append(smaller)
        factor, error, _, built = best
        replace_population(core, built[0], built[1])
        rep = built[2]
        rep.search = {
            "factors": [round(f, 6) for f, _, _ in tried],
            "errors": [round(e, 6) for _, e, _ in tried],
            "overflows": [n for _, _, n in tried],
            "chosen": round(factor, 6),
            "error": round(error, 6),
            **_search_note(tried, factor),
        }
        by_name[pop.name] = rep
    return core, [by_name[r.population] for r in reports]
