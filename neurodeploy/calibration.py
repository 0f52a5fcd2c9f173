"""Per-instance calibration of mismatched analog chips, in the spirit of BrainScaleS-2's ``calix``.

Real analog chips are calibrated circuit by circuit: a probe stimulus is applied, each neuron's response
is measured and its bias currents are trimmed until the response matches a target. Here the target is
the nominal chip: a fixed probe spike train drives the nominal network and every sampled instance (all
instances in one batched emulator run), each neuron's spike count is compared with its nominal count,
and the neuron's threshold ``v_th`` is trimmed multiplicatively. Because every layer is driven by the
(already trimmed) layer below, a few damped iterations settle the layers from input to output.

Trim resolution: the profile's ``[numerics] trim_bits`` / ``trim_range`` if given, otherwise the stated
default ``DEFAULT_TRIM_BITS`` (8-bit) steps over +-``DEFAULT_TRIM_RANGE`` (50 %) of the mismatched
value, i.e. factor ``1 + k * step`` with integer ``k`` in ``[-2**(bits-1), 2**(bits-1) - 1]``.

Only the threshold is trimmed: the measured quantity (spike count on one probe) is a single point of
each neuron's response, which fixes one knob; ``bias_v`` is left untouched and reported as such.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.errors import NeurodeployError
from neurodeploy.runner import run_core

DEFAULT_TRIM_BITS = 8
DEFAULT_TRIM_RANGE = 0.5


def trim_resolution(profile: Any) -> tuple[int, float]:
    """(bits, relative range) of a trim: the profile's if stated, else the documented default."""
    numerics = dict(getattr(profile, "numerics", {}) or {})

    def value(key: str, default: float) -> float:
        entry = numerics.get(key, default)
        return float(entry.get("value", default) if isinstance(entry, dict) else entry)

    return int(value("trim_bits", DEFAULT_TRIM_BITS)), value("trim_range", DEFAULT_TRIM_RANGE)


def default_probe(core: CoreNetwork, steps: int = 40, batch: int = 64, p: float = 0.3, seed: int = 0) -> dict:
    """Bernoulli probe spike trains per input: fixed by ``seed``, independent of any test data."""
    rng = np.random.default_rng(seed)
    return {name: rng.random((steps, batch, core.population(name).size)) < p for name in core.inputs}


def _counts(core: CoreNetwork, probe: Any, names: list[str], per_sample: bool = False) -> dict[str, np.ndarray]:
    """Spike counts per neuron over time, per probe sample (*instances, batch, n) or summed (*instances, n)."""
    res = run_core(core, probe, populations=names)
    return {n: res.spikes[n].sum(axis=0) if per_sample else res.spikes[n].sum(axis=(0, -2)) for n in names}


def calibrate(
    compiled: Any, mismatched_core: CoreNetwork, probe: Any = None, seed: int = 0
) -> tuple[CoreNetwork, dict[str, Any]]:
    """Trim each neuron's threshold of every instance so its probe spike count matches the nominal chip.

    ``mismatched_core``: from ``emulator.mismatch.sample`` (parameters ``(instances, 1, n)``).
    ``probe``: input spikes (time, batch, n) or {input: array}; default ``default_probe(seed=seed)``.
    Returns the trimmed network and a report: trim steps per population, resolution, count errors.
    """
    nominal_core = getattr(compiled, "core", compiled)
    if not isinstance(nominal_core, CoreNetwork) or mismatched_core.numerics != "float":
        raise NeurodeployError(
            "calibration needs a float-core network and its sampled instances",
            "calibrate",
            "compile for an analog profile such as dynapse2 and pass emulator.mismatch.sample(...)",
        )
    probe = default_probe(nominal_core, seed=seed) if probe is None else probe
    bits, span = trim_resolution(getattr(compiled, "profile", None))
    step = 2 * span / 2**bits
    k_lo, k_hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    names = [
        p.name
        for p in mismatched_core.populations
        if p.model != "input" and p.spiking and np.all(np.isfinite(p.params.get("v_th", np.inf)))
    ]
    out = copy.copy(mismatched_core)
    out.populations = [copy.copy(p) for p in mismatched_core.populations]
    for p in out.populations:
        p.params = dict(p.params)
    if not names:
        return out, {"populations": {}, "trim_bits": bits, "trim_range": span, "emulator_runs": 0}
    target = _counts(nominal_core, probe, names, per_sample=True)
    raw = {n: np.asarray(out.population(n).params["v_th"], dtype=float) for n in names}
    best: dict[str, np.ndarray] = {}
    before: dict[str, float] = {}
    runs = 0

    def measure(n: str, k: np.ndarray) -> np.ndarray:
        nonlocal runs
        runs += 1
        out.population(n).params["v_th"] = raw[n] * (1.0 + step * k)[..., None, :]
        return _counts(out, probe, [n], per_sample=True)[n]

    for n in names:  # input to output: each layer is trimmed with the layers below already trimmed
        want = target[n].sum(axis=0)
        zero = np.zeros(np.broadcast_shapes(raw[n].shape[:-2] + raw[n].shape[-1:], want.shape), dtype=np.int64)
        got = measure(n, zero)
        before[n] = float(np.abs(got.sum(axis=-2) - want).mean())
        exact = np.all(got == target[n], axis=-2)  # already nominal on every probe sample: no trim
        # bisection for the plateau of trims whose total count equals the nominal one; take its middle
        lo_a, hi_a = np.full_like(zero, k_lo), np.full_like(zero, k_hi)  # smallest k with count <= want
        lo_b, hi_b = np.full_like(zero, k_lo), np.full_like(zero, k_hi)  # largest k with count >= want
        for _ in range(bits + 1):
            mid = (lo_a + hi_a) // 2
            ok = measure(n, mid).sum(axis=-2) <= want
            hi_a, lo_a = np.where(ok, mid, hi_a), np.where(ok, lo_a, mid + 1)
            mid = (lo_b + hi_b + 1) // 2
            ok = measure(n, mid).sum(axis=-2) >= want
            lo_b, hi_b = np.where(ok, mid, lo_b), np.where(ok, hi_b, mid - 1)
        k = np.clip((lo_a + lo_b) // 2, k_lo, k_hi)
        best[n] = np.where(exact, 0, k)
        out.population(n).params["v_th"] = raw[n] * (1.0 + step * best[n])[..., None, :]
    final = _counts(out, probe, names)
    after = {n: float(np.abs(final[n] - target[n].sum(axis=0)).mean()) for n in names}
    report = {
        "trim_bits": bits,
        "trim_range": span,
        "trim_step": step,
        "emulator_runs": runs + 2,
        "trimmed": ["v_th"],
        "untrimmed": ["bias_v"],
        "populations": {
            n: {
                "steps_min": int(best[n].min()),
                "steps_max": int(best[n].max()),
                "steps_mean_abs": float(np.abs(best[n]).mean()),
                "count_error_before": before[n],
                "count_error_after": after[n],
                "nominal_count_mean": float(target[n].mean()),
            }
            for n in names
        },
        "steps": {n: best[n] for n in names},
    }
    return out, report
