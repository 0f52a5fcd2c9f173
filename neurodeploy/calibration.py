"""Per-instance calibration of mismatched analog chips, in the spirit of BrainScaleS-2's ``calix``.

Real analog chips are calibrated circuit by circuit: a probe stimulus is applied, each neuron's response
is measured and its parameters are trimmed until the response matches a target (BrainScaleS-2 keeps
every neuron's analog parameters in its own 10-bit capacitive-memory cells, ``electronicvisions/haldls:
include/haldls/vx/capmem.h``, and ``calix`` binary-searches each cell against a measured target,
``electronicvisions/calix: src/py/calix/common/algorithms.py``). Here the target is the nominal chip:
the same probe drives the nominal network and every sampled instance (all instances, and several trial
settings per instance, in one batched emulator run), and only what a chip would report is used: each
neuron's spike count on each probe sample.

Each neuron has two knobs, matching the two features of its rate-versus-drive curve that a per-neuron
error moves: a threshold trim ``v_th = v_th' * (1 + k * step)`` (the curve's gain: threshold and mean
weight-current errors scale the drive a neuron needs per spike) and a bias trim ``bias_v = bias_v' +
k_b * bias_step * |v_th nominal|`` (its offset: leak errors move the drive at which firing starts, and
weight errors on always-active inputs add a constant drive). The probe's samples sit at different
drive levels (``default_probe`` draws each sample's input rates from several levels), so every neuron's
counts over the samples trace its curve. Per layer, from input to output with the layers below already
trimmed:

1. gain: bisect the threshold trim until the neuron's total count on the probe equals the nominal one
   (the middle of the plateau of trims that give exactly that total, or the smallest trim that does
   where the plateau runs into the end of the range);
2. curve: rank the probe samples by the neuron's nominal count (its drive), split them into
   ``CURVE_GROUPS`` groups and take the count total per group as the points of its curve; a pattern
   search over (threshold, bias) trims, steps halving from ``SEARCH_STEP`` down to one code, lowers the
   squared distance to the nominal curve, accepting only strict improvements (a neuron already nominal
   on every probe sample is never moved).

The probe decides how far the trims carry over to a task: a probe of encoded training samples (what a
deployment has at hand, never the test set) drives each neuron where the task does; the default random
probe is a generic stand-in whose benefit varies more from network to network.

Trim resolution: the profile's ``[numerics] trim_bits`` / ``trim_range`` and ``bias_trim_bits`` /
``bias_trim_range`` if given, otherwise the stated defaults: 8-bit steps over +-50 % of the mismatched
threshold, and 8-bit steps over +-0.25 nominal thresholds per time step of bias. Integer trim codes run
over ``[-2**(bits-1), 2**(bits-1) - 1]``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np

from neurodeploy.emulator.network import CoreNetwork
from neurodeploy.errors import NeurodeployError
from neurodeploy.runner import run_core

DEFAULT_TRIM_BITS = 8
DEFAULT_TRIM_RANGE = 0.5
DEFAULT_BIAS_TRIM_BITS = 8
DEFAULT_BIAS_TRIM_RANGE = 0.25  # nominal thresholds per time step
KNOBS = ("v_th", "bias_v")
SEARCH_STEP = 8  # first pattern-search step, in trim codes
SEARCH_ROUNDS = 16  # at most this many batched runs of the pattern search per layer
CURVE_GROUPS = 4  # points of each neuron's rate-versus-drive curve that the search matches
PROBE_LEVELS = (0.05, 0.15, 0.3, 0.5, 0.7)  # input spike probabilities per step of the default probe


def _numerics_value(profile: Any, key: str, default: float) -> float:
    numerics = dict(getattr(profile, "numerics", {}) or {})
    entry = numerics.get(key, default)
    return float(entry.get("value", default) if isinstance(entry, dict) else entry)


def trim_resolution(profile: Any) -> tuple[int, float]:
    """(bits, relative range) of a threshold trim: the profile's if stated, else the documented default."""
    bits = int(_numerics_value(profile, "trim_bits", DEFAULT_TRIM_BITS))
    return bits, _numerics_value(profile, "trim_range", DEFAULT_TRIM_RANGE)


def bias_trim_resolution(profile: Any) -> tuple[int, float]:
    """(bits, range in nominal thresholds per step) of a bias trim: the profile's, else the default."""
    bits = int(_numerics_value(profile, "bias_trim_bits", DEFAULT_BIAS_TRIM_BITS))
    return bits, _numerics_value(profile, "bias_trim_range", DEFAULT_BIAS_TRIM_RANGE)


def default_probe(
    core: CoreNetwork, steps: int = 40, batch: int = 128, seed: int = 0, levels: tuple[float, ...] = PROBE_LEVELS
) -> dict:
    """Bernoulli probe spike trains per input, each sample and input at its own level of ``levels``.

    Samples at several levels drive each neuron from silence to strong firing, so its counts over the
    samples trace its rate-versus-drive curve. Fixed by ``seed``, independent of any test data.
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name in core.inputs:
        size = core.population(name).size
        rate = np.asarray(levels, dtype=float)[rng.integers(len(levels), size=(1, batch, size))]
        out[name] = rng.random((steps, batch, size)) < rate
    return out


def _upstream(core: CoreNetwork, name: str) -> CoreNetwork:
    """The part of ``core`` that drives ``name`` (with every input kept): layers above it need not run."""
    keep = {name}
    grew = True
    while grew:
        new = {pr.src for pr in core.projections if pr.dst in keep} - keep
        keep |= new
        grew = bool(new)
    keep |= set(core.inputs)
    pops = [p for p in core.populations if p.name in keep]
    projs = [pr for pr in core.projections if pr.src in keep and pr.dst in keep]
    return CoreNetwork(pops, projs, list(core.inputs), [name], core.numerics, arithmetic=core.arithmetic)


class _Layer:
    """One population's trims in the network being calibrated, and its measurements on the probe."""

    def __init__(self, net: CoreNetwork, nominal: CoreNetwork, name: str, steps: tuple[float, float]) -> None:
        self.net, self.name = net, name
        pop = net.population(name)
        self.v_th = np.asarray(pop.params["v_th"], dtype=float)
        self.bias = np.asarray(pop.params.get("bias_v", 0.0), dtype=float)
        unit = np.abs(np.broadcast_to(np.asarray(nominal.population(name).params["v_th"], dtype=float), pop.size))
        self.th_step, self.bias_step = steps[0], steps[1] * unit
        lead = np.broadcast_shapes(self.v_th.shape[:-1], self.bias.shape[:-1])
        self.shape = (*lead[:-1], pop.size)  # trim codes: (*instances, n); the sample axis has size 1
        self.runs = 0

    def apply(self, k_th: np.ndarray, k_b: np.ndarray) -> None:
        """Set the trims; extra leading axes of the codes (trial settings) become extra batch axes."""
        pop = self.net.population(self.name)
        pop.params["v_th"] = self.v_th * (1.0 + self.th_step * k_th)[..., None, :]
        pop.params["bias_v"] = self.bias + (self.bias_step * k_b)[..., None, :]

    def counts(self, probe: Any, k_th: np.ndarray, k_b: np.ndarray) -> np.ndarray:
        """Per-sample spike counts (*trials, *instances, samples, n) at these trims, int64: differences go negative."""
        self.runs += 1
        self.apply(k_th, k_b)
        return run_core(_upstream(self.net, self.name), probe, populations=[self.name]).counts(self.name)


def _drive_groups(target: np.ndarray, groups: int) -> np.ndarray:
    """One-hot (samples, n, groups): each neuron's probe samples in ``groups`` ranks of its nominal count.

    A neuron's nominal count on a sample orders the samples by the drive they give it, so the group
    totals are points of its rate-versus-drive curve, from the weakest to the strongest drive.
    """
    samples = target.shape[-2]
    rank = np.argsort(np.argsort(target, axis=0, kind="stable"), axis=0, kind="stable")
    group = np.minimum(rank * groups // samples, groups - 1)
    return (group[..., None] == np.arange(groups)).astype(float)


def _curve_error(counts: np.ndarray, target: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Squared distance of a neuron's curve (its count totals per drive group) from the nominal curve."""
    diff = np.einsum("...sn,sng->...gn", counts - target, onehot)
    return (diff * diff).sum(axis=-2)


def _match_total(layer: _Layer, probe: Any, target: np.ndarray, k_b: np.ndarray, bits: int) -> np.ndarray:
    """Threshold codes whose total count equals the nominal total: the middle of that plateau."""
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    want = target.sum(axis=0)
    lo_a, hi_a = np.full(layer.shape, lo), np.full(layer.shape, hi)  # smallest k with count <= want
    lo_b, hi_b = np.full(layer.shape, lo), np.full(layer.shape, hi)  # largest k with count >= want
    for _ in range(bits + 1):  # both ends in one run: the trial axis holds the two settings
        mid_a, mid_b = (lo_a + hi_a) // 2, (lo_b + hi_b + 1) // 2
        total = layer.counts(probe, np.stack([mid_a, mid_b]), k_b).sum(axis=-2)
        ok_a, ok_b = total[0] <= want, total[1] >= want
        hi_a, lo_a = np.where(ok_a, mid_a, hi_a), np.where(ok_a, lo_a, mid_a + 1)
        lo_b, hi_b = np.where(ok_b, mid_b, lo_b), np.where(ok_b, hi_b, mid_b - 1)
    # a plateau that runs into the end of the range (e.g. a neuron silent on the probe) says nothing about
    # where the nominal threshold lies beyond the last change of count: trim no further than needed
    open_ended = (lo_a == lo) | (lo_b == hi)
    return np.where(open_ended & (lo_a <= lo_b), np.clip(0, lo_a, lo_b), np.clip((lo_a + lo_b) // 2, lo, hi))


def _search_curve(
    layer: _Layer,
    probe: Any,
    target: np.ndarray,
    onehot: np.ndarray,
    codes: dict[str, np.ndarray],
    error: np.ndarray,
    bits: dict[str, int],
    knobs: tuple[str, ...],
) -> np.ndarray:
    """Pattern search per neuron over the knobs' codes, lowering its curve error; returns the final error."""
    step = {k: np.full(layer.shape, SEARCH_STEP) for k in knobs}
    limit = {k: (-(2 ** (bits[k] - 1)), 2 ** (bits[k] - 1) - 1) for k in knobs}
    for _ in range(SEARCH_ROUNDS):
        if all(np.all(s == 0) for s in step.values()):
            break
        trials = []
        for knob in knobs:
            for sign in (1, -1):
                trial = dict(codes)
                trial[knob] = np.clip(codes[knob] + sign * step[knob], *limit[knob])
                trials.append(trial)
        k_th = np.stack([t["v_th"] for t in trials])
        k_b = np.stack([t["bias_v"] for t in trials])
        errors = _curve_error(layer.counts(probe, k_th, k_b), target, onehot)
        best = errors.argmin(axis=0)
        better = np.take_along_axis(errors, best[None], axis=0)[0] < error
        for name, stacked in (("v_th", k_th), ("bias_v", k_b)):
            codes[name] = np.where(better, np.take_along_axis(stacked, best[None], axis=0)[0], codes[name])
        error = np.where(better, errors.min(axis=0), error)
        for knob in knobs:
            step[knob] = np.where(better, step[knob], step[knob] // 2)
    return error


def _by_instance(x: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    """(instances, rest): x's instance axes flattened first, or x repeated when it has none."""
    k = int(np.prod(lead)) if lead else 1
    x = np.asarray(x)
    if x.ndim > len(lead) and x.shape[: len(lead)] == lead:
        return x.reshape(k, -1)
    return np.broadcast_to(x.reshape(1, -1), (k, x.size))


def per_instance(codes: dict[str, np.ndarray], first: np.ndarray, final: np.ndarray, target: np.ndarray,
                 before: np.ndarray, after: np.ndarray) -> dict[str, list[float]]:  # fmt: skip
    """One layer's trims and errors per instance: what a chunk of instances reports, so that chunks of a
    study assemble into exactly the figures of one batched run (``summarize_population``)."""
    lead = tuple(codes["v_th"].shape[:-1])
    v, b = _by_instance(codes["v_th"], lead), _by_instance(codes["bias_v"], lead)
    count = target.sum(axis=0)
    return {
        "steps_min": v.min(axis=1).tolist(),
        "steps_max": v.max(axis=1).tolist(),
        "steps_abs_mean": np.abs(v).mean(axis=1).tolist(),
        "bias_steps_min": b.min(axis=1).tolist(),
        "bias_steps_max": b.max(axis=1).tolist(),
        "bias_steps_abs_mean": np.abs(b).mean(axis=1).tolist(),
        "count_error_before": _by_instance(np.abs(first.sum(axis=-2) - count), lead).mean(axis=1).tolist(),
        "count_error_after": _by_instance(np.abs(final.sum(axis=-2) - count), lead).mean(axis=1).tolist(),
        "curve_before": _by_instance(before, lead).mean(axis=1).tolist(),
        "curve_after": _by_instance(after, lead).mean(axis=1).tolist(),
    }


def summarize_population(rows: dict[str, list[float]], samples: int, nominal_count_mean: float) -> dict[str, Any]:
    """A layer's trim report over every instance, from ``per_instance`` rows (of one run or many chunks)."""
    a = {k: np.asarray(v, dtype=float) for k, v in rows.items()}
    return {
        "steps_min": int(a["steps_min"].min()),
        "steps_max": int(a["steps_max"].max()),
        "steps_mean_abs": float(a["steps_abs_mean"].mean()),
        "bias_steps_min": int(a["bias_steps_min"].min()),
        "bias_steps_max": int(a["bias_steps_max"].max()),
        "bias_steps_mean_abs": float(a["bias_steps_abs_mean"].mean()),
        "count_error_before": float(a["count_error_before"].mean()),
        "count_error_after": float(a["count_error_after"].mean()),
        "curve_error_before": float(np.sqrt(a["curve_before"].mean() / samples)),
        "curve_error_after": float(np.sqrt(a["curve_after"].mean() / samples)),
        "nominal_count_mean": nominal_count_mean,
    }


def calibrate(
    compiled: Any,
    mismatched_core: CoreNetwork,
    probe: Any = None,
    seed: int = 0,
    knobs: tuple[str, ...] = KNOBS,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[CoreNetwork, dict[str, Any]]:
    """Trim each neuron's threshold and bias in every instance so its probe responses match the nominal chip.

    ``mismatched_core``: from ``emulator.mismatch.sample`` (parameters ``(instances, 1, n)``).
    ``probe``: input spikes (time, batch, n) or {input: array}, e.g. encoded samples of the training set;
    default ``default_probe(seed=seed)``. ``knobs``: ``("v_th", "bias_v")``, or ``("v_th",)`` for
    threshold trims only. Returns the trimmed network and a report: trim codes per population and
    knob, resolutions, count errors before and after. ``progress(layers_done, layers)`` is called after
    each layer, the unit of work (a layer takes seconds to minutes).
    """
    nominal_core = getattr(compiled, "core", compiled)
    if not isinstance(nominal_core, CoreNetwork) or mismatched_core.numerics != "float":
        raise NeurodeployError(
            "calibration needs a float-core network and its sampled instances",
            "calibrate",
            "compile for an analog profile such as dynapse2 and pass emulator.mismatch.sample(...)",
        )
    knobs = tuple(knobs)
    if "v_th" not in knobs or not set(knobs) <= set(KNOBS):
        raise NeurodeployError(
            f"calibration knobs must be ('v_th',) or ('v_th', 'bias_v'), got {knobs!r}",
            "knobs",
            "pass knobs=('v_th', 'bias_v') (default) or knobs=('v_th',)",
        )
    probe = default_probe(nominal_core, seed=seed) if probe is None else probe
    profile = getattr(compiled, "profile", None)
    bits, span = trim_resolution(profile)
    bias_bits, bias_span = bias_trim_resolution(profile)
    step = 2 * span / 2**bits
    bias_step = 2 * bias_span / 2**bias_bits if "bias_v" in knobs else 0.0
    names = [
        p.name
        for p in mismatched_core.populations
        if p.model != "input" and p.spiking and np.all(np.isfinite(p.params.get("v_th", np.inf)))
    ]
    out = copy.copy(mismatched_core)
    out.populations = [copy.copy(p) for p in mismatched_core.populations]
    for p in out.populations:
        p.params = dict(p.params)
    report: dict[str, Any] = {
        "trim_bits": bits,
        "trim_range": span,
        "trim_step": step,
        "bias_trim_bits": bias_bits,
        "bias_trim_range": bias_span,
        "bias_trim_step": bias_step,
        "trimmed": list(knobs),
        "untrimmed": [k for k in KNOBS if k not in knobs],
        "populations": {},
        "steps": {},
        "bias_steps": {},
        "per_instance": {},
    }
    runs = 0
    curves: dict[str, list[np.ndarray]] = {"curve_error_before": [], "curve_error_after": []}
    for done, n in enumerate(names):  # input to output: each layer trimmed with the layers below already trimmed
        if progress is not None:
            progress(done, len(names))
        layer = _Layer(out, nominal_core, n, (step, bias_step))
        target = run_core(_upstream(nominal_core, n), probe, populations=[n]).counts(n)
        zero = np.zeros(layer.shape, dtype=np.int64)
        first = layer.counts(probe, zero, zero)
        onehot = _drive_groups(target, CURVE_GROUPS)
        before = _curve_error(first, target, onehot)
        exact = np.all(first == target, axis=-2)  # already nominal on every probe sample: never trimmed
        codes = {"v_th": zero, "bias_v": zero}
        if not np.all(exact):
            codes["v_th"] = np.where(exact, 0, _match_total(layer, probe, target, zero, bits))
            error = _curve_error(layer.counts(probe, codes["v_th"], zero), target, onehot)
            error = np.where(exact, -1.0, error)  # no trial can beat a negative error
            error = _search_curve(
                layer, probe, target, onehot, codes, error, {"v_th": bits, "bias_v": bias_bits}, knobs
            )
            error = np.maximum(error, 0.0)
        else:
            error = before
        layer.apply(codes["v_th"], codes["bias_v"])
        runs += layer.runs
        samples = target.shape[-2]
        final = layer.counts(probe, codes["v_th"], codes["bias_v"])
        runs += 1
        report["steps"][n], report["bias_steps"][n] = codes["v_th"], codes["bias_v"]
        curves["curve_error_before"].append(before / samples)
        curves["curve_error_after"].append(error / samples)
        report["per_instance"][n] = per_instance(codes, first, final, target, before, error)
        report["populations"][n] = summarize_population(report["per_instance"][n], samples, float(target.mean()))
    if progress is not None:
        progress(len(names), len(names))
    report["emulator_runs"] = runs + len(names)
    report["probe_samples"] = int(samples) if names else 0
    # per instance: root mean square curve error over every calibrated neuron, before and after trimming
    report["instances"] = {
        key: np.sqrt(np.concatenate(parts, axis=-1).mean(axis=-1)).reshape(-1).tolist() if parts else []
        for key, parts in curves.items()
    }
    return out, report
