"""Quantization: float NetworkIR -> CoreNetwork in the profile's number formats, with per-layer error.

Loihi scaling (one voltage scale lambda per population; float 1.0 in v equals lambda * 2^6 in the
chip's v register, see ``../docs/concepts.md``)::

    vth_int               = round(lambda * v_th)
    W_int * 2^weight_exp  ~ lambda * W          (W already carries the neuron's input gain)
    bias_mant * 2^bias_exp ~ lambda * 2^6 * bias_v
    du_int = round(du * 4096) - 1,  dv_int = round(dv * 4096)

lambda is the largest value for which the threshold fits its 17-bit field and one step of full input
cannot wrap the 24-bit u register, so thresholds and decays keep as many bits as the chip allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from neurodeploy.compiler.ir import NetworkIR, Population
from neurodeploy.emulator import loihi as lc
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import Profile

U_HEADROOM = 4.0  # one step of all-inputs-active input uses at most 1/4 of u's range


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

    def to_dict(self) -> dict:
        return {k: (v if not isinstance(v, float) else round(v, 6)) for k, v in self.__dict__.items()}


def _snr_db(ref: np.ndarray, approx: np.ndarray) -> float:
    signal = float(np.sum(ref**2))
    noise = float(np.sum((ref - approx) ** 2))
    if noise == 0.0:
        return math.inf
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def _round(x: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
    """Nearest rounding, or stochastic rounding (unbiased) when a generator is given."""
    if rng is None:
        return np.rint(x)
    low = np.floor(x)
    return low + (rng.random(x.shape) < (x - low))


def quantize_float(ir: NetworkIR, latency: int = 0) -> tuple[CoreNetwork, list[LayerQuantization]]:
    """The float core model: parameters copied, ``latency`` steps added to every projection.

    With latency 0 this is the float reference of the IR itself.
    """
    pops = [
        CorePopulation(p.name, p.size, "input" if p.kind == "input" else "float",
                       {} if p.kind == "input" else {k: v.copy() for k, v in p.params().items()},
                       reset=p.reset, spiking=p.kind != "cuba_li")
        for p in ir.populations
    ]
    projs = [CoreProjection(pr.name, pr.src, pr.dst, pr.weight.copy(), delay=pr.delay + latency)
             for pr in ir.projections]
    reports = [LayerQuantization(p.name, 1.0) for p in ir.populations if p.kind != "input"]
    return CoreNetwork(pops, projs, list(ir.inputs), list(ir.outputs), numerics="float"), reports


def _mantissa_top(bits: int) -> int:
    """Largest mixed-sign mantissa with ``bits`` weight bits (254 for 8 bits)."""
    return 256 - 2 ** (9 - bits)


def _layer_scale(pop: Population, incoming: list[np.ndarray], bits: int, w_exp_max: int) -> float:
    """The largest voltage scale the fields allow, stepped down so the largest weight is a full mantissa.

    Putting the largest weight exactly on the top mantissa uses all weight bits (a weight trained on an
    8-bit grid then lands on the chip's grid unchanged); it costs at most one bit of threshold precision,
    which has 17.
    """
    v_th_max = float(np.max(pop.v_th))
    if v_th_max <= 0:
        raise CompileError("threshold must be positive on a Loihi core", f"population {pop.name!r}",
                           "retrain or rescale so v_threshold > 0")
    scale = lc.VTH_RANGE[1] / v_th_max
    u_bound = float(np.max(sum(np.abs(w).sum(axis=1) for w in incoming))) if incoming else 0.0
    u_bound += float(np.max(np.abs(pop.bias_u)))
    if u_bound > 0:
        scale = min(scale, lc.MAX_UV / (U_HEADROOM * (1 << lc.ACT_SHIFT) * u_bound))
    w_max = max((float(np.abs(w).max()) for w in incoming), default=0.0)
    if w_max > 0:
        top = _mantissa_top(bits)
        scale = min(scale, top * 2.0**w_exp_max / w_max)
        scale = top * 2.0 ** math.floor(math.log2(scale * w_max / top) + 1e-12) / w_max
    return scale


def _weights(weight: np.ndarray, scale: float, bits: int, exp_range: list[int],
             rng: np.random.Generator | None) -> tuple[np.ndarray, int, int]:
    """Mantissas on the mixed-sign grid of ``bits`` bits, the exponent, and how many were clipped."""
    target = scale * weight
    w_max = float(np.abs(target).max())
    step_bits = 8 - bits + 1  # mixed sign mode drops this many low bits
    if w_max == 0:
        return np.zeros(weight.shape, dtype=np.int64), 0, 0
    exp = math.ceil(math.log2(w_max / _mantissa_top(bits)) - 1e-9)  # smallest exponent that fits
    exp = int(np.clip(exp, exp_range[0], exp_range[1]))
    step = 2**step_bits
    mant = _round(target / (2.0**exp) / step, rng) * step
    clipped = np.clip(mant, -256, 256 - step)
    return clipped.astype(np.int64), exp, int(np.count_nonzero(clipped != mant))


def _bias(bias_v: np.ndarray, scale: float, exp_range: list[int], rng) -> tuple[np.ndarray, np.ndarray]:
    target = scale * (1 << lc.VTH_SHIFT) * bias_v
    b_max = float(np.abs(target).max())
    exp = 0
    while exp < exp_range[1] and b_max / 2**exp > lc.BIAS_MANT_RANGE[1]:
        exp += 1
    mant = np.clip(_round(target / 2**exp, rng), *lc.BIAS_MANT_RANGE).astype(np.int64)
    return mant, np.full(bias_v.shape, exp, dtype=np.int64)


def quantize_loihi(
    ir: NetworkIR, profile: Profile, rounding: str = "nearest", seed: int = 0
) -> tuple[CoreNetwork, list[LayerQuantization]]:
    """Lava-0.10 fixed-point CUBA LIF + Dense parameters for every population and projection."""
    num = profile.numerics
    bits = int(num.get("weight_bits", 8))
    w_exp_range = list(num.get("weight_exp", [-8, 8]))
    b_exp_range = list(num.get("bias_exp", [0, 7]))
    latency = profile.synaptic_latency
    rng = np.random.default_rng(seed) if rounding == "stochastic" else None
    pops: list[CorePopulation] = []
    projs: list[CoreProjection] = []
    reports: list[LayerQuantization] = []
    for pop in ir.populations:
        if pop.kind == "input":
            pops.append(CorePopulation(pop.name, pop.size, "input"))
            continue
        if pop.kind != "cuba_lif":
            raise CompileError(f"{profile.name} cores have no non-spiking (LI) neurons", f"population {pop.name!r}",
                               "end the network in a spiking layer, or compile for the ideal profile")
        incoming = ir.incoming(pop.name)
        rep = LayerQuantization(pop.name, 0.0)
        bias_v = pop.bias_v.copy()
        if np.any(pop.bias_u != 0):
            exact = np.all(pop.du[pop.bias_u != 0] >= 1.0)
            bias_v = bias_v + pop.bias_u / pop.du
            if not exact:
                rep.notes.append("affine bias into a synaptic current approximated by its steady state in v")
        scale = _layer_scale(pop, [pr.weight for pr in incoming], bits, w_exp_range[1])
        rep.scale = scale
        vth = np.clip(np.rint(scale * pop.v_th), 0, lc.VTH_RANGE[1]).astype(np.int64)
        rep.threshold_rel_error = float(np.max(np.abs(vth / scale - pop.v_th) / np.maximum(pop.v_th, 1e-30)))
        du = np.clip(np.rint(pop.du * lc.DECAY_UNITY) - 1, *lc.DU_RANGE).astype(np.int64)
        dv = np.clip(np.rint(pop.dv * lc.DECAY_UNITY), *lc.DV_RANGE).astype(np.int64)
        rep.decay_abs_error = float(max(np.max(np.abs((du + 1) / 4096 - pop.du)), np.max(np.abs(dv / 4096 - pop.dv))))
        bias_mant, bias_exp = _bias(bias_v, scale, b_exp_range, rng)
        bias_back = bias_mant * 2.0**bias_exp / (scale * (1 << lc.VTH_SHIFT))
        denom = max(float(np.abs(bias_v).max()), 1e-30)
        rep.bias_rel_error = float(np.abs(bias_back - bias_v).max() / denom) if np.any(bias_v) else 0.0
        for pr in incoming:
            mant, exp, saturated = _weights(pr.weight, scale, bits, w_exp_range, rng)
            rep.weight_exp[pr.name] = exp
            rep.weight_snr_db[pr.name] = _snr_db(pr.weight, mant * 2.0**exp / scale)
            rep.weights_saturated[pr.name] = saturated
            projs.append(CoreProjection(pr.name, pr.src, pr.dst, mant, delay=pr.delay + latency, weight_exp=exp,
                                        num_weight_bits=bits, sign_mode="mixed"))
        params = {"du": du, "dv": dv, "vth": vth, "bias_mant": bias_mant, "bias_exp": bias_exp}
        pops.append(CorePopulation(pop.name, pop.size, "loihi", params, reset="zero", spiking=True, scale=scale))
        reports.append(rep)
    order = {p.name: i for i, p in enumerate(pops)}
    projs.sort(key=lambda pr: (order[pr.dst], order[pr.src]))
    return CoreNetwork(pops, projs, list(ir.inputs), list(ir.outputs), numerics="loihi"), reports


def quantize(ir: NetworkIR, profile: Profile, rounding: str = "nearest", seed: int = 0):
    """Dispatch on the profile's core model."""
    if rounding not in ("nearest", "stochastic"):
        raise CompileError(f"unknown rounding {rounding!r}", "rounding", 'use "nearest" or "stochastic"')
    if profile.core_model == "loihi":
        return quantize_loihi(ir, profile, rounding, seed)
    return quantize_float(ir, profile.synaptic_latency)
