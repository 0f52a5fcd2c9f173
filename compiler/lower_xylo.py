"""Xylo lowering: a float NetworkIR onto SynSense Xylo's integer IAF core (``emulator.xylo``).

Roles. Input populations are the chip's input channels, the network's output populations its output
neurons (at most one spike per step, driven by hidden neurons only), every other population hidden
neurons. Input events act in the step they arrive, hidden spikes one step later (``chips.md`` §3), so
each hop from a hidden population adds one step of latency, like a Loihi Dense; inputs add none.

Numbers, per population with one voltage scale λ (a float 1.0 in v is λ in the chip's v register)::

    dash_syn = nearest integer of log2(1/du) = log2(tau_syn/dt), in 1..15
    dash_mem = nearest integer of log2(1/dv) = log2(tau_mem/dt), in 0..15   (dv = 0, no leak: 15)
    int8(W) * 2^shift ~ λ·W / (1 - 2^-dash_syn)      threshold = round(λ·v_th)      bias = round(λ·bias_v)

Xylo decays Isyn before v integrates it (step 4 of the update), so v receives (1 - 2^-dash_syn)·Isyn;
the weights carry the inverse gain. That also rules out dash_syn = 0 (no input would ever reach v): a
synaptic current without memory (LIF, du = 1) runs with dash_syn = 1, and the report says so. Each of
the core's weight layers (input, recurrent = hidden -> hidden, output = hidden -> output neurons) has
one 3-bit shift: the smallest that fits the largest weight of every population in that layer. λ is as
large as the fields allow, as on Loihi: the largest threshold uses half of v's 16 bits (v must still
hold a threshold plus one step of input), one step of every source spiking once uses at most a quarter
of Isyn's range, the weights fit int8 at shift 7, and a bias fits int16; per layer it is then stepped
down so the largest weight is exactly 127·2^k.
"""

from __future__ import annotations

import math

import numpy as np

from neurodeploy.compiler import weights as wt
from neurodeploy.compiler.ir import NetworkIR, Population
from neurodeploy.compiler.quantize import U_HEADROOM, LayerQuantization, _round, _snr_db
from neurodeploy.compiler.rules import Violation
from neurodeploy.emulator import xylo as xc
from neurodeploy.emulator.network import CorePopulation, CoreProjection
from neurodeploy.errors import CompileError
from neurodeploy.hw_profiles import Profile

VTH_TARGET = 1 << 14  # largest threshold: half of v's range
WEIGHT_TOP = xc.WEIGHT_RANGE[1]
LAYERS = ("input", "recurrent", "output")


def roles(ir: NetworkIR) -> dict[str, str]:
    """The role of every population on the core: input, hidden or output."""
    outputs = set(ir.outputs) | {t.src for r in ir.readouts for t in r.terms}  # a host readout reads these
    out = {}
    for pop in ir.populations:
        out[pop.name] = "input" if pop.name in ir.inputs else ("output" if pop.name in outputs else "hidden")
    return out


def weight_layer(src_role: str, dst_role: str) -> str:
    """Which of the core's three weight layers (and shifts) a projection belongs to."""
    return "input" if src_role == "input" else ("output" if dst_role == "output" else "recurrent")


def xylo_offsets(ir: NetworkIR) -> dict[str, int]:
    """Steps each population runs behind the float reference: inputs act at once, hidden spikes a step later."""
    role = roles(ir)
    order = {p.name: i for i, p in enumerate(ir.populations)}
    offset: dict[str, int] = {}
    for pop in ir.populations:
        if role[pop.name] == "input" or pop.source_node == "<bias clock>":
            offset[pop.name] = 0  # the bias clock spikes from the chip's first step
            continue
        forward = [
            offset[pr.src] + int(role[pr.src] != "input")
            for pr in ir.incoming(pop.name)
            if order[pr.src] < order[pop.name]
        ]
        offset[pop.name] = max(forward, default=0)
    return offset


def timing(ir: NetworkIR) -> dict[str, tuple[int, int]]:
    """Per projection: its chip delay (0 from inputs, else 1) and how many steps later than the float
    reference's timing it arrives (negative: earlier), e.g. a skip connection or a multi-population loop."""
    role, offset = roles(ir), xylo_offsets(ir)
    out = {}
    for pr in ir.projections:
        chip = 0 if role[pr.src] == "input" else 1
        out[pr.name] = (chip, chip - (pr.delay + offset[pr.dst] - offset[pr.src]))
    return out


def _dash(d: np.ndarray, lowest: int) -> np.ndarray:
    """Nearest integer of log2(1/d) (d = dt/tau) in lowest..15; d = 0 (no decay) gets 15."""
    safe = np.where(d > 0, d, 1.0)
    exact = np.where(d > 0, -np.log2(safe), 99.0)
    return np.clip(np.rint(exact), lowest, xc.DASH_RANGE[1]).astype(np.int64)


def _decays(pop: Population) -> tuple[np.ndarray, np.ndarray, float, list[str]]:
    """dash_syn, dash_mem, the largest per-step decay error, and notes on what was approximated."""
    dash_syn, dash_mem = _dash(pop.du, 1), _dash(pop.dv, 0)
    error = max(float(np.max(np.abs(2.0**-dash_syn - pop.du))), float(np.max(np.abs(2.0**-dash_mem - pop.dv))))
    notes = [
        f"dash_syn {int(dash_syn.min())}..{int(dash_syn.max())}, dash_mem {int(dash_mem.min())}..{int(dash_mem.max())}"
        " (tau = 2^dash·dt)"
    ]
    if np.any(_dash(pop.du, 0) == 0):
        notes.append(
            "tau_syn below 1.41·dt (or LIF, no synaptic current) runs as dash_syn = 1: Xylo decays Isyn before "
            "v integrates it, so an input reaches v over several steps (half in the first)"
        )
    if np.any(pop.dv == 0):
        notes.append("no leak (dv = 0) runs as dash_mem = 15: v still decays by at least 1 unit per step")
    return dash_syn, dash_mem, error, notes


def _bias(pop: Population) -> tuple[np.ndarray, bool]:
    """The bias into v (bias_u enters as its steady state bias_u/du), and whether that is exact."""
    bias = np.asarray(pop.bias_v, dtype=float).copy()
    into_u = pop.bias_u != 0
    if np.any(into_u):
        bias = bias + np.where(into_u, pop.bias_u / np.where(into_u, pop.du, 1.0), 0.0)
    return bias, bool(np.all(pop.du[into_u] >= 1.0))


def _scales(
    pop: Population, incoming: list[wt.Matrix], gain: np.ndarray, bias: np.ndarray, per_channel: bool
) -> np.ndarray:
    """λ per neuron (one value for all unless ``per_channel``): as large as the 16-bit fields allow."""
    if np.any(pop.v_th <= 0):
        raise CompileError(
            "threshold must be positive on a Xylo core", f"population {pop.name!r}", "rescale so v_threshold > 0"
        )
    lam = VTH_TARGET / pop.v_th
    l1 = sum((wt.row_abs_sum(w) for w in incoming), np.zeros(pop.size)) * gain
    lam = np.where(l1 > 0, np.minimum(lam, xc.STATE_MAX / (U_HEADROOM * np.where(l1 > 0, l1, 1.0))), lam)
    row_max = np.zeros(pop.size)
    for w in incoming:
        row_max = np.maximum(row_max, wt.row_abs_max(w) * gain)
    top = WEIGHT_TOP * 2.0 ** xc.WEIGHT_SHIFT_RANGE[1]
    lam = np.where(row_max > 0, np.minimum(lam, top / np.where(row_max > 0, row_max, 1.0)), lam)
    lam = np.where(bias != 0, np.minimum(lam, xc.STATE_MAX / np.where(bias != 0, np.abs(bias), 1.0)), lam)
    if per_channel:
        return lam
    scale, w_max = float(lam.min()), float(row_max.max(initial=0.0))
    if w_max > 0:
        k = math.floor(math.log2(scale * w_max / WEIGHT_TOP) + 1e-12)
        if k >= 0:  # the largest weight becomes 127·2^k exactly (a weight trained on an 8-bit grid stays on it)
            scale = WEIGHT_TOP * 2.0**k / w_max
    return np.full(pop.size, scale)


def _numbers(pop: Population, profile: Profile, per_channel: bool, incoming: list) -> dict:
    dash_syn, dash_mem, error, notes = _decays(pop)
    gain = 1.0 / (1.0 - 2.0**-dash_syn)
    bias, exact = _bias(pop)
    has_bias = bool(profile.numerics.get("bias", False))
    lam = _scales(pop, [pr.weight for pr in incoming], gain, bias if has_bias else np.zeros(pop.size), per_channel)
    return {"dash_syn": dash_syn, "dash_mem": dash_mem, "error": error, "notes": notes, "gain": gain,
            "bias": bias, "bias_exact": exact, "has_bias": has_bias, "lam": lam}  # fmt: skip


def _compilable(pop: Population, role: str) -> bool:
    return role != "input" and pop.kind == "cuba_lif" and bool(np.all(pop.v_th > 0))


def weight_shifts(ir: NetworkIR, profile: Profile, per_channel: bool = False) -> dict[str, int]:
    """One shift per weight layer: the smallest (0..7) that fits every population's largest weight at factor 1.

    Scale factors of the scale search are at most 1, so they only make weights smaller than these shifts allow.
    """
    role = roles(ir)
    need = dict.fromkeys(LAYERS, 0)
    for pop in ir.populations:
        if not _compilable(pop, role[pop.name]):
            continue  # the rules report it
        incoming = ir.incoming(pop.name)
        num = _numbers(pop, profile, per_channel, incoming)
        row_gain = num["lam"] * num["gain"]
        for pr in incoming:
            peak = float(np.max(wt.row_abs_max(pr.weight) * row_gain, initial=0.0))
            if peak > 0:
                shift = int(np.clip(math.ceil(math.log2(peak / WEIGHT_TOP) - 1e-9), *xc.WEIGHT_SHIFT_RANGE))
                layer = weight_layer(role[pr.src], role[pop.name])
                need[layer] = max(need[layer], shift)
    return need


def xylo_population(
    ir: NetworkIR,
    index: int,
    profile: Profile,
    per_channel: bool = False,
    factor: float = 1.0,
    rng: np.random.Generator | None = None,
) -> tuple[CorePopulation, list[CoreProjection], LayerQuantization]:
    """(CorePopulation, its incoming CoreProjections, LayerQuantization) for ``ir.populations[index]``."""
    pop = ir.populations[index]
    role = roles(ir)
    if pop.kind != "cuba_lif":
        raise CompileError(
            "Xylo neurons spike; a non-spiking (LI) layer has no Xylo neuron",
            f"population {pop.name!r}",
            "end the network in a spiking layer, or compile for the ideal profile",
        )
    incoming = ir.incoming(pop.name)
    num = _numbers(pop, profile, per_channel, incoming)
    rep = LayerQuantization(pop.name, 0.0, per_channel=per_channel, factor=factor, decay_abs_error=num["error"])
    rep.notes.extend(num["notes"])
    lam = num["lam"] * factor
    rep.scale, rep.scale_min = float(lam.max()), float(lam.min())
    raw = np.rint(lam * pop.v_th)
    threshold = np.clip(raw, 1, xc.STATE_MAX).astype(np.int64)
    rep.thresholds_saturated = int(np.count_nonzero(threshold != raw))
    rep.threshold_rel_error = float(np.max(np.abs(threshold / lam - pop.v_th) / pop.v_th))
    params = {"dash_syn": num["dash_syn"], "dash_mem": num["dash_mem"], "threshold": threshold}
    bias = num["bias"]
    if num["has_bias"]:
        raw = _round(lam * bias, rng)
        params["bias"] = np.clip(raw, xc.STATE_MIN, xc.STATE_MAX).astype(np.int64)
        rep.biases_saturated = int(np.count_nonzero(params["bias"] != raw))
        if np.any(bias):
            rep.bias_rel_error = float(np.max(np.abs(params["bias"] / lam - bias)) / np.max(np.abs(bias)))
        if not num["bias_exact"]:
            rep.notes.append("affine bias into a synaptic current approximated by its steady state in v")
        if pop.source_node == "<bias clock>":  # v = bias every step: exactly one spike, not bias // threshold
            params["threshold"] = np.maximum(params["bias"], 1)
    elif np.any(bias):
        rep.notes.append(f"{profile.name} neurons have no bias: the bias is dropped")
        rep.bias_rel_error = 1.0
    shifts, late = weight_shifts(ir, profile, per_channel), timing(ir)
    row_gain = lam * num["gain"]
    projs = []
    for pr in incoming:
        shift = shifts[weight_layer(role[pr.src], role[pop.name])]
        dense = wt.to_dense(pr.weight).astype(float)
        raw = _round(dense * row_gain[:, None] / 2.0**shift, rng)
        mant = np.clip(raw, *xc.WEIGHT_RANGE)
        rep.weight_exp[pr.name] = shift
        rep.weights_saturated[pr.name] = int(np.count_nonzero(mant != raw))
        rep.weight_snr_db[pr.name] = _snr_db(dense, mant * 2.0**shift / row_gain[:, None])
        delay, steps_late = late[pr.name]
        if steps_late:
            when = f"{abs(steps_late)} step(s) {'later' if steps_late > 0 else 'earlier'}"
            rep.notes.append(f"{pr.name} arrives {when} than in the float reference (Xylo has no delays)")
        projs.append(CoreProjection(pr.name, pr.src, pr.dst, mant.astype(np.int64), delay=delay, weight_exp=shift))
    model = xc.OUTPUT if role[pop.name] == "output" else xc.HIDDEN
    cpop = CorePopulation(pop.name, pop.size, model, params, reset="subtract", spiking=True, scale=rep.scale)
    return cpop, projs, rep


def xylo_rules(ir: NetworkIR, profile: Profile) -> list[Violation]:
    """What the Xylo core cannot hold: its channel and neuron counts, its fixed wiring, its neuron model."""
    out: list[Violation] = []
    role = roles(ir)
    sizes = {r: sum(p.size for p in ir.populations if role[p.name] == r) for r in ("input", "hidden", "output")}
    for r, key, hint in (
        ("input", "input_channels", "merge or drop input channels (e.g. fewer filterbank bands)"),
        ("hidden", "hidden_neurons", "make the hidden layers smaller"),
        ("output", "output_neurons", "use fewer output neurons (classes), or read out through a smaller layer"),
    ):
        limit = profile.limit(key)
        if limit is not None and sizes[r] > limit:
            out.append(Violation("network", key.replace("_", " "), limit, sizes[r], hint))
    has_bias = bool(profile.numerics.get("bias", False))
    for pop in ir.populations:
        if role[pop.name] == "input":
            continue
        if pop.kind != "cuba_lif":
            hint = "end the network in a spiking layer, or compile for the ideal profile"
            out.append(Violation(pop.name, "neuron model", "spiking IAF (LIF / CubaLIF)", "non-spiking", hint))
        elif np.any(pop.v_th <= 0):
            hint = "Xylo spikes up to 31 times while v >= threshold: rescale so v_threshold > 0"
            out.append(Violation(pop.name, "threshold", "> 0", float(pop.v_th.min()), hint))
        bias, _ = _bias(pop)
        if not has_bias and np.any(bias != 0):
            hint = (
                f"{profile.name} neurons have no bias: train without biases (bias=False, v_leak = 0), "
                "or compile for a Xylo profile with bias = true (IMU, Audio 3)"
            )
            out.append(Violation(pop.name, "bias", "none", f"{int(np.count_nonzero(bias))} neurons with a bias", hint))
    late = timing(ir)
    for pr in ir.projections:
        src, dst = role[pr.src], role[pr.dst]
        node = pr.source_node or pr.name
        if src == "output":
            hint = "Xylo's output neurons drive no synapses: add a feed-forward readout layer"
            out.append(Violation(node, "output neuron fan-out", 0, f"projection to {pr.dst!r}", hint))
        elif src == "input" and dst == "output":
            hint = "add a hidden layer between the inputs and the output layer"
            out.append(Violation(node, "input to output neurons", "through hidden neurons", pr.name, hint))
        if pr.delay > 1 or (src == "input" and pr.delay > 0):
            hint = "Xylo has no programmable delays: remove the Delay node"
            out.append(Violation(node, "synaptic delay (steps)", "none", pr.delay, hint))
        elif late[pr.name][1]:
            steps = late[pr.name][1]
            actual = f"{abs(steps)} step(s) {'late' if steps > 0 else 'early'}"
            hint = f"projection {pr.name}: skip connections and loops through several layers cannot be delayed on Xylo"
            out.append(Violation(node, "timing", "float reference's timing", actual, hint, severity="warning"))
    out += _fan_out_rules(ir, profile, role)
    return out


def _fan_out_rules(ir: NetworkIR, profile: Profile, role: dict[str, str]) -> list[Violation]:
    """Recurrent fan-out limits, where the profile states them (Xylo IMU: 512 per neuron, 31,744 in all)."""
    per_neuron, total = profile.limit("recurrent_fan_out_per_neuron"), profile.limit("recurrent_synapses")
    if per_neuron is None and total is None:
        return []
    fan = {p.name: np.zeros(p.size, dtype=np.int64) for p in ir.populations if role[p.name] == "hidden"}
    for pr in ir.projections:
        if role[pr.src] == "hidden" and role[pr.dst] == "hidden":
            fan[pr.src] += (wt.to_dense(pr.weight) != 0).sum(axis=0)
    out = []
    worst = max((int(f.max(initial=0)) for f in fan.values()), default=0)
    if per_neuron is not None and worst > per_neuron:
        hint = "prune the hidden layers' outgoing weights"
        out.append(Violation("network", "recurrent fan-out per neuron", per_neuron, worst, hint))
    count = sum(int(f.sum()) for f in fan.values())
    if total is not None and count > total:
        out.append(Violation("network", "recurrent synapses", total, count, "prune the hidden-to-hidden weights"))
    return out
