"""Quantization: float NetworkIR -> CoreNetwork in the profile's number formats, with per-layer error.

Loihi scaling (a voltage scale lambda per neuron; float 1.0 in v equals lambda * 2^6 in the chip's
v register, see ``../docs/concepts.md``)::

    vth_int               = round(lambda * v_th)
    W_int * 2^weight_exp  ~ lambda * W          (W already carries the neuron's input gain)
    bias_mant * 2^bias_exp ~ lambda * 2^6 * bias_v
    du_int = round(du * 4096) - 1,  dv_int = round(dv * 4096)

lambda is the largest value for which the threshold fits its 17-bit field, one step of full input
cannot wrap the 24-bit u register and the bias fits its mantissa and exponent, so thresholds and decays
keep as many bits as the chip allows. Per layer (default) one lambda serves the whole population;
``per_channel`` gives every output neuron its own (weight_exp stays one per projection, as in Lava's
Dense). Analog float cores with ``numerics.weight_magnitude_bits`` put weights on a signed grid of
2^bits - 1 levels per scale (per layer or per neuron). ``factors`` scale a population's lambda (Loihi,
<= 1 stays inside the fields) or grid scale (analog, >= 1 clips the largest weights): the scale search
(``compiler.scale_search``) picks them. Xylo cores are lowered by ``compiler.lower_xylo``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.ir import NetworkIR, Population, Projection
from neurodeploy.emulator import loihi as lc
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import Profile

U_HEADROOM = 4.0  # one step of all-inputs-active input uses at most 1/4 of u's range
IMPLEMENTED = ("loihi", "float", "analog", "xylo")


@dataclass
class LayerQuantization:
    """What quantization did to one population and its incoming projections."""

    population: str
    scale: float
    weight_exp: dict[str, int] = field(default_factory=dict)
    weight_snr_db: dict[str, float] = field(default_factory=dict)
    weights_saturated: dict[str, int] = field(default_factory=dict)
    threshold_rel_error: float = 0.0
    bias_rel_error: float = 0.0
    decay_abs_error: float = 0.0
    notes: list[str] = field(default_factory=list)
    per_channel: bool = False
    scale_min: float = 0.0
    thresholds_saturated: int = 0
    biases_saturated: int = 0
    factor: float = 1.0
    search: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: (v if not isinstance(v, float) else round(v, 6)) for k, v in self.__dict__.items()}


def _snr_db(ref: wt.Matrix, approx: wt.Matrix) -> float:
    signal = float(np.sum(wt.values(ref).astype(float) ** 2))
    noise = float(np.sum(wt.values(wt.add(ref, -approx) if wt.is_sparse(ref) else ref - approx) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def _round(x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Nearest rounding, or stochastic rounding (unbiased) when a generator is given."""
    if rng is None:
        return np.rint(x)
    low = np.floor(x)
    return low + (rng.random(x.shape) < (x - low))


def _row_of_entries(w: wt.Matrix) -> np.ndarray:
    """Row index of every stored value (wt.values order)."""
    if wt.is_sparse(w):
        c = wt.csr(w)
        return np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
    return np.repeat(np.arange(w.shape[0]), w.shape[1])


def _with_values(w: wt.Matrix, vals: np.ndarray, dtype: Any) -> wt.Matrix:
    """A matrix shaped like ``w`` holding ``vals`` (in wt.values order)."""
    if wt.is_sparse(w):
        out = wt.csr(w).astype(dtype)
        out.data = vals.astype(dtype)
        out.eliminate_zeros()
        return out
    return vals.reshape(w.shape).astype(dtype)


def chip_offsets(ir: NetworkIR, latency: int) -> dict[str, int]:
    """Steps each population runs behind the float reference on a core with synaptic ``latency``."""
    order = {p.name: i for i, p in enumerate(ir.populations)}
    offset: dict[str, int] = {}
    for pop in ir.populations:
        forward = [offset[pr.src] + latency for pr in ir.incoming(pop.name) if order[pr.src] < order[pop.name]]
        offset[pop.name] = max(forward, default=0)
    for pop in ir.populations:
        if pop.source_node == "<bias clock>":
            offset[pop.name] = 0  # it spikes from the chip's first step, whatever feeds it
    return offset


def chip_delays(ir: NetworkIR, latency: int) -> tuple[dict[str, int], dict[str, int]]:
    """Chip delay of every projection, and how many steps each one runs late on the chip.

    A core with synaptic ``latency`` runs population P ``offset[P]`` steps behind the float reference
    (the longest chain of hops from the inputs). A projection keeps the reference timing when its chip
    delay is ``delay + offset[dst] - offset[src]``: one extra step per hop on feed-forward paths, more on
    skip connections, and exactly ``delay`` on a population's loop onto itself. Loops through several
    populations need at least ``latency`` per hop; what they lose is returned as the lag. The bias clock
    (``lower_neurons.bias_clock``) spikes from the chip's first step: its offset is 0.
    """
    offset = chip_offsets(ir, latency)
    delays, lag = {}, {}
    for pr in ir.projections:
        exact = pr.delay + offset[pr.dst] - offset[pr.src]
        delays[pr.name] = max(exact, latency) if latency else pr.delay
        lag[pr.name] = delays[pr.name] - exact
    return delays, lag


def _rng(seed: int, index: int, rounding: str) -> np.random.Generator | None:
    """One generator per population, so re-quantizing one layer leaves the others' draws unchanged."""
    return np.random.default_rng([seed, index]) if rounding == "stochastic" else None


# ------------------------------------------------------------------------------------------- float


def _float_population(pop: Population, incoming: list[Projection], delays: dict[str, int]) -> tuple:
    cpop = CorePopulation(
        pop.name,
        pop.size,
        "float",
        {k: v.copy() for k, v in pop.params().items()},
        reset=pop.reset,
        spiking=pop.kind != "cuba_li",
        reset_rule=pop.reset_rule,
        reset_delay=pop.reset_delay,
    )
    projs = [CoreProjection(pr.name, pr.src, pr.dst, pr.weight.copy(), delay=delays[pr.name]) for pr in incoming]
    return cpop, projs, LayerQuantization(pop.name, 1.0, scale_min=1.0)


def _grid_population(
    pop: Population,
    incoming: list[Projection],
    delays: dict[str, int],
    bits: int,
    per_channel: bool,
    factor: float,
    rng: np.random.Generator | None,
) -> tuple:
    """Analog cores: weights on a signed grid of 2^bits - 1 levels (BrainScaleS-2: 6 bits + sign by row)."""
    cpop, _, rep = _float_population(pop, [], delays)
    levels = 2**bits - 1
    row_max = np.zeros(pop.size)
    for pr in incoming:
        row_max = np.maximum(row_max, wt.row_abs_max(pr.weight))
    if not per_channel:
        row_max = np.full(pop.size, row_max.max() if row_max.size else 0.0)
    scale = np.where(row_max > 0, levels / np.where(row_max > 0, row_max, 1.0), 1.0) * factor
    rep.scale, rep.scale_min, rep.per_channel, rep.factor = float(scale.max()), float(scale.min()), per_channel, factor
    projs = []
    for pr in incoming:
        s = scale[_row_of_entries(pr.weight)]
        raw = _round(wt.values(pr.weight) * s, rng)
        grid = np.clip(raw, -levels, levels)
        quant = _with_values(pr.weight, grid / s, float)
        rep.weights_saturated[pr.name] = int(np.count_nonzero(grid != raw))
        rep.weight_snr_db[pr.name] = _snr_db(pr.weight, quant)
        projs.append(CoreProjection(pr.name, pr.src, pr.dst, quant, delay=delays[pr.name]))
    rep.notes.append(f"weights on a {bits}-bit magnitude grid (±{levels} levels per scale)")
    return cpop, projs, rep


def quantize_float(ir: NetworkIR, latency: int = 0) -> tuple[CoreNetwork, list[LayerQuantization]]:
    """The float core model: parameters copied, ``latency`` steps added to every projection.

    With latency 0 this is the float reference of the IR itself.
    """
    pops, projs, reports = [], [], []
    delays, _ = chip_delays(ir, latency)
    for pop in ir.populations:
        if pop.kind == "input":
            pops.append(CorePopulation(pop.name, pop.size, "input", {}, reset=pop.reset, spiking=True))
            continue
        cpop, cprojs, rep = _float_population(pop, ir.incoming(pop.name), delays)
        pops.append(cpop)
        projs.extend(cprojs)
        reports.append(rep)
    return CoreNetwork(
        pops, _sorted(pops, projs), list(ir.inputs), list(ir.outputs), numerics="float", readouts=list(ir.readouts)
    ), reports


# ------------------------------------------------------------------------------------------- loihi


def _mantissa_top(bits: int) -> int:
    """Largest mixed-sign mantissa with ``bits`` weight bits (254 for 8 bits)."""
    return 256 - 2 ** (9 - bits)


def _loihi_scales(
    pop: Population,
    incoming: list[wt.Matrix],
    bias_v: np.ndarray,
    bits: int,
    w_exp: list[int],
    b_exp_max: int,
    per_channel: bool,
) -> np.ndarray:
    """Per-neuron lambda: as large as the fields allow; per layer, stepped so the largest weight is a full
    mantissa (a weight trained on an 8-bit grid then lands on the chip's grid unchanged, at the cost of at
    most one of the threshold's 17 bits)."""
    if np.any(pop.v_th <= 0):
        raise CompileError(
            "threshold must be positive on a Loihi core",
            f"population {pop.name!r}",
            "retrain or rescale so v_threshold > 0",
        )
    lam = lc.VTH_RANGE[1] / pop.v_th
    u_bound = np.abs(pop.bias_u) + sum((wt.row_abs_sum(w) for w in incoming), np.zeros(pop.size))
    cap = lc.MAX_UV / (U_HEADROOM * (1 << lc.ACT_SHIFT) * np.where(u_bound > 0, u_bound, 1.0))
    lam = np.where(u_bound > 0, np.minimum(lam, cap), lam)
    b_cap = lc.BIAS_MANT_RANGE[1] * 2.0**b_exp_max / ((1 << lc.VTH_SHIFT) * np.where(bias_v != 0, np.abs(bias_v), 1))
    lam = np.where(bias_v != 0, np.minimum(lam, b_cap), lam)
    top = _mantissa_top(bits)
    row_max = [wt.row_abs_max(w) for w in incoming]
    if not per_channel:
        scale = float(lam.min())
        w_max = max((float(r.max()) for r in row_max if r.size), default=0.0)
        if w_max > 0:
            scale = min(scale, top * 2.0 ** w_exp[1] / w_max)
            scale = top * 2.0 ** math.floor(math.log2(scale * w_max / top) + 1e-12) / w_max
        return np.full(pop.size, scale)
    for r in row_max:
        peak = float(np.max(lam * r)) if r.size else 0.0
        if peak <= 0:
            continue
        exp = int(np.clip(math.ceil(math.log2(peak / top) - 1e-9), w_exp[0], w_exp[1]))
        lam = np.where(r > 0, np.minimum(lam, top * 2.0**exp / np.where(r > 0, r, 1.0)), lam)
    return lam


def _loihi_weights(
    weight: wt.Matrix,
    lam: np.ndarray,
    bits: int,
    exp_range: list[int],
    rng: np.random.Generator | None,
    per_synapse: bool = False,
) -> tuple[wt.Matrix, int, int]:
    """Mantissas on the mixed-sign grid of ``bits`` bits, the exponent, and how many were clipped.

    ``per_synapse`` (Loihi 1 arithmetic): a negative exponent floors each weight before the sum, so the
    low -exp bits of every mantissa are lost on chip. The mantissas are then rounded to multiples of
    2^-exp (nengo-loihi's ``discretize_weights`` rounds likewise before the shift), which makes the
    chip's shift exact and the reported SNR the one the chip applies.
    """
    target = wt.values(weight) * lam[_row_of_entries(weight)]
    w_max = float(np.abs(target).max()) if target.size else 0.0
    if w_max == 0:
        return _with_values(weight, np.zeros_like(target), np.int64), 0, 0
    exp = math.ceil(math.log2(w_max / _mantissa_top(bits)) - 1e-9)  # smallest exponent that fits
    exp = int(np.clip(exp, exp_range[0], exp_range[1]))
    step = 2 ** (8 - bits + 1)  # mixed sign mode drops this many low bits
    if per_synapse and exp < 0:
        step = max(step, 2**-exp)  # both powers of two: a multiple of the larger is on both grids
    mant = _round(target / (2.0**exp) / step, rng) * step
    clipped = np.clip(mant, -256, (255 // step) * step)
    return _with_values(weight, clipped, np.int64), exp, int(np.count_nonzero(clipped != mant))


def _loihi_bias(
    bias_v: np.ndarray, lam: np.ndarray, exp_range: list[int], rng: np.random.Generator | None
) -> tuple[np.ndarray, np.ndarray, int]:
    """Per-neuron bias mantissa and the smallest exponent that fits it, and how many saturated."""
    target = lam * (1 << lc.VTH_SHIFT) * bias_v
    top = lc.BIAS_MANT_RANGE[1]
    need = np.ceil(np.log2(np.maximum(np.abs(target), 1e-300) / top) - 1e-9)
    exp = np.clip(need, max(exp_range[0], 0), exp_range[1]).astype(np.int64)
    raw = _round(target / 2.0**exp, rng)
    mant = np.clip(raw, *lc.BIAS_MANT_RANGE).astype(np.int64)
    return mant, exp, int(np.count_nonzero(mant != raw))


def _loihi_population(
    pop: Population,
    incoming: list[Projection],
    profile: Profile,
    delays: dict[str, int],
    per_channel: bool,
    factor: float,
    rng: np.random.Generator | None,
) -> tuple:
    num = profile.numerics
    bits = int(num.get("weight_bits", 8))
    w_exp_range = list(num.get("weight_exp", [-8, 8]))
    b_exp_range = list(num.get("bias_exp", [0, 7]))
    if pop.kind != "cuba_lif":
        raise CompileError(
            f"{profile.name} cores have no non-spiking (LI) neurons",
            f"population {pop.name!r}",
            "end the network in a spiking layer, or compile for the ideal profile",
        )
    rep = LayerQuantization(pop.name, 0.0, per_channel=per_channel, factor=factor)
    bias_v = pop.bias_v.copy()
    if np.any(pop.bias_u != 0):
        exact = np.all(pop.du[pop.bias_u != 0] >= 1.0)
        bias_v = bias_v + pop.bias_u / pop.du
        if not exact:
            rep.notes.append("affine bias into a synaptic current approximated by its steady state in v")
    lam = (
        _loihi_scales(pop, [pr.weight for pr in incoming], bias_v, bits, w_exp_range, b_exp_range[1], per_channel)
        * factor
    )
    rep.scale, rep.scale_min = float(lam.max()), float(lam.min())
    raw_vth = np.rint(lam * pop.v_th)
    vth = np.clip(raw_vth, 1, lc.VTH_RANGE[1]).astype(np.int64)
    rep.thresholds_saturated = int(np.count_nonzero(vth != raw_vth))
    rep.threshold_rel_error = float(np.max(np.abs(vth / lam - pop.v_th) / np.maximum(pop.v_th, 1e-30)))
    du = np.clip(np.rint(pop.du * lc.DECAY_UNITY) - 1, *lc.DU_RANGE).astype(np.int64)
    dv = np.clip(np.rint(pop.dv * lc.DECAY_UNITY), *lc.DV_RANGE).astype(np.int64)
    rep.decay_abs_error = float(max(np.max(np.abs((du + 1) / 4096 - pop.du)), np.max(np.abs(dv / 4096 - pop.dv))))
    if np.any(pop.dv >= 1.0):
        rep.notes.append("dv = 1 (no voltage memory) is stored as 4095/4096: v keeps 1/4096 of itself")
    bias_mant, bias_exp, rep.biases_saturated = _loihi_bias(bias_v, lam, b_exp_range, rng)
    bias_back = bias_mant * 2.0**bias_exp / (lam * (1 << lc.VTH_SHIFT))
    denom = max(float(np.abs(bias_v).max()), 1e-30)
    rep.bias_rel_error = float(np.abs(bias_back - bias_v).max() / denom) if np.any(bias_v) else 0.0
    projs = []
    for pr in incoming:
        per_synapse = num.get("arithmetic", "lava") == "loihi1"
        mant, exp, saturated = _loihi_weights(pr.weight, lam, bits, w_exp_range, rng, per_synapse)
        rep.weight_exp[pr.name] = exp
        back = _with_values(mant, wt.values(mant) * 2.0**exp / lam[_row_of_entries(mant)], float)
        rep.weight_snr_db[pr.name] = _snr_db(pr.weight, back)
        rep.weights_saturated[pr.name] = saturated
        projs.append(
            CoreProjection(
                pr.name,
                pr.src,
                pr.dst,
                mant,
                delay=delays[pr.name],
                weight_exp=exp,
                num_weight_bits=bits,
                sign_mode="mixed",
            )
        )
    params = {"du": du, "dv": dv, "vth": vth, "bias_mant": bias_mant, "bias_exp": bias_exp}
    if pop.refractory is not None and np.any(pop.refractory):
        params["refractory"] = np.asarray(pop.refractory, dtype=np.int64)
    cpop = CorePopulation(pop.name, pop.size, "loihi", params, reset=pop.reset, spiking=True, scale=rep.scale)
    return cpop, projs, rep


# ------------------------------------------------------------------------------------------- driver


def quantize_population(
    ir: NetworkIR,
    index: int,
    profile: Profile,
    rounding: str = "nearest",
    seed: int = 0,
    per_channel: bool = False,
    factor: float = 1.0,
) -> tuple:
    """(CorePopulation, its incoming CoreProjections, LayerQuantization) for ``ir.populations[index]``."""
    pop = ir.populations[index]
    incoming = ir.incoming(pop.name)
    rng = _rng(seed, index, rounding)
    if profile.core_model == "xylo":  # roles, timing and weight shifts are fixed by the whole core
        from neurodeploy.compiler.lower_xylo import xylo_population

        return xylo_population(ir, index, profile, per_channel, factor, rng)
    delays, lag = chip_delays(ir, profile.synaptic_latency)
    bits = profile.numerics.get("weight_magnitude_bits")
    if profile.core_model == "loihi":
        out = _loihi_population(pop, incoming, profile, delays, per_channel, factor, rng)
    elif bits is None:
        out = _float_population(pop, incoming, delays)
    else:
        out = _grid_population(pop, incoming, delays, int(bits), per_channel, factor, rng)
    for pr in incoming:
        if lag[pr.name] and pop.source_node != "<bias clock>":
            out[2].notes.append(
                f"{pr.name} closes a loop through several populations: it arrives "
                f"{lag[pr.name]} step(s) later than in the float reference"
            )
    return out


def replace_population(core: CoreNetwork, cpop: CorePopulation, cprojs: list[CoreProjection]) -> None:
    """Swap one population's parameters and incoming projections in place (for the scale search)."""
    core.populations = [cpop if p.name == cpop.name else p for p in core.populations]
    core.projections = _sorted(core.populations, [p for p in core.projections if p.dst != cpop.name] + cprojs)


def _sorted(pops: list[CorePopulation], projs: list[CoreProjection]) -> list[CoreProjection]:
    order = {p.name: i for i, p in enumerate(pops)}
    return sorted(projs, key=lambda pr: (order[pr.dst], order[pr.src]))


def check_core_model(profile: Profile) -> None:
    if profile.core_model not in IMPLEMENTED:
        raise CompileError(
            f"no core model for {profile.core_model} yet",
            f"profile {profile.name!r}",
            "the profile documents the chip's limits; compile for ideal, loihi1 or loihi2 meanwhile",
        )


def quantize(
    ir: NetworkIR,
    profile: Profile,
    rounding: str = "nearest",
    seed: int = 0,
    per_channel: bool = False,
    factors: dict[str, float] | None = None,
) -> tuple[CoreNetwork, list[LayerQuantization]]:
    """Every population in the profile's core model; ``factors`` scale chosen populations' scales."""
    if rounding not in ("nearest", "stochastic"):
        raise CompileError(f"unknown rounding {rounding!r}", "rounding", 'use "nearest" or "stochastic"')
    check_core_model(profile)
    factors = factors or {}
    numerics = profile.core_model if profile.core_model in ("loihi", "xylo") else "float"
    pops: list[CorePopulation] = []
    projs: list[CoreProjection] = []
    reports: list[LayerQuantization] = []
    for index, pop in enumerate(ir.populations):
        if pop.kind == "input":
            pops.append(CorePopulation(pop.name, pop.size, "input"))
            continue
        cpop, cprojs, rep = quantize_population(
            ir, index, profile, rounding, seed, per_channel, factors.get(pop.name, 1.0)
        )
        pops.append(cpop)
        projs.extend(cprojs)
        reports.append(rep)
    if profile.core_model == "xylo":
        from neurodeploy.compiler.lower_xylo import xylo_offsets

        offsets = xylo_offsets(ir)
    else:
        offsets = chip_offsets(ir, profile.synaptic_latency)
    for cpop in pops:
        cpop.lag = offsets[cpop.name]
    return CoreNetwork(
        pops,
        _sorted(pops, projs),
        list(ir.inputs),
        list(ir.outputs),
        numerics=numerics,
        readouts=list(ir.readouts),
        arithmetic=str(profile.numerics.get("arithmetic", "lava")),
    ), reports
