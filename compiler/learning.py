"""The learning pass: a layered network plus a rule's motif, ready for the emulator's run loop.

A learning run is the forward network with what the rule adds (``neurodeploy.rules``):

- a bias population (one neuron that fires on every input step) with a plastic projection into every
  learning layer, so biases learn as synapses do on the chip;
- a target population (input spikes at the target rate) read by the output layer's error compartment;
- learning neurons: each layer's neurons keep their soma (the forward CUBA LIF) and gain an error
  compartment that integrates feedback. At the end of the presentation a learning neuron sends its
  quantised learning signal δ as third factors (y2 = δ⁺, y3 = δ⁻, y1 = its own spike count) and a
  back-propagating action potential (bAP) to its plastic synapses; a hidden neuron does so only if it
  fired in the presentation (f′ of a rectified rate neuron). In chain rules (FA, KP) it also relays δ
  as a graded spike down the feedback projections. These are Loihi 2 programmable neurons with graded
  spikes (profile capabilities ``graded_spikes`` and ``programmable_neurons``);
- feedback projections B (graded spikes from the output error or a relay, into error compartments),
  fixed or plastic;
- engine rules: Lava-style sum-of-products strings on every plastic projection, with a learning epoch
  of one step (t_epoch = 1). The synaptic variable d (tag_2, 8 bits) counts the presentation's pre
  spikes (``dd = x0 - y0*d``: +1 per pre spike, cleared at the bAP); at the bAP the tag t (tag_1, 9
  bits) gains −η·δ·d (``dt = M*y0*d*y3 - M*y0*d*y2``); every 2^K steps, K = log2(steps·batch), the tag
  moves into the weight and restarts (``dw = 2^-b*uK*t``, ``dt -= uK*t``). A pre trace x1 cannot
  count a presentation's spikes: it never resets, and a decay fast enough to forget the previous
  presentation forgets this one too. Kolen-Pollack's B reads the relayed δ as a signed graded spike
  (pre trace 64 + δ) and its post neuron's spike count (y1).

One presentation is ``Schedule.steps`` steps: input for ``active`` steps, the forward network settles,
the output error emits at ``emit``, relays follow one step per layer, and every learning neuron sends
its bAP and third factors at the last step. Every neuron starts a presentation at rest (Lava's LIFReset
with reset_interval = steps); the d counter carries only a pre spike of the bAP step itself.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurodeploy.compiler.ir import NetworkIR
from neurodeploy.compiler.learning_custom import compile_rule, custom_rates, motif_of
from neurodeploy.emulator.loihi import VTH_RANGE
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.errors import NeurodeployError

TRACE_MAX = 127
GRADED_OFFSET = 64  # a signed graded payload p sets the pre trace to 64 + p (KP's B reads δ as (x1 - 64))
_MANTISSAS = range(1, 8)
_EXPONENTS = range(-7, 9)


@dataclass(frozen=True)
class Schedule:
    """Steps of one presentation (one learning epoch): 0-based step indices."""

    steps: int  # t_epoch
    active: int  # input (and bias neuron) steps
    emit: int  # the output layer's error compartment emits its graded δ at this step
    relay: tuple[int, ...] = ()  # hidden layers (top first) relay δ down at these steps


@dataclass
class LearningLayer:
    """One layer of learning neurons: its forward population and where its δ comes from."""

    name: str
    size: int
    plastic: list[str]  # projections into this layer that learn (from the layer below, from the bias)
    output: bool = False
    delta_shift: int = 0  # error compartment value -> δ: a right shift (rounded) on fixed point
    delta_scale: float = 1.0  # δ (float units) per δ LSB: third factor y = |δ| / delta_scale
    q_max: int = TRACE_MAX  # |δ| clip (KP: 63, so that 64 + δ fits a 7-bit trace)


@dataclass
class FeedbackProjection:
    """Graded feedback from an upper signal into a layer's error compartment.

    ``src`` is "error" (the output δ), "target" (−y*, DRTP) or a hidden layer's name (its relayed δ).
    ``weight`` is (instances, n_dst, n_src), integers on fixed point.
    """

    name: str
    src: str
    dst: str
    weight: np.ndarray
    plastic: bool = False
    weight_exp: int = 0


@dataclass
class EngineRule:
    """The learning engine's rule on one projection, and how its scales were realised."""

    projection: str
    dt: str
    dw: str
    dd: str
    pre: str  # "spikes" (d counts pre spikes) or "graded" (x1 := 64 + payload)
    realised_lr: float = 0.0
    realised_decay: float = 0.0
    update: Any = field(default=None, repr=False, compare=False)  # a user rule's float update (ideal)

    def to_dict(self) -> dict[str, Any]:
        return {
            "projection": self.projection,
            "dt": self.dt,
            "dw": self.dw,
            "dd": self.dd,
            "pre_trace": self.pre,
            "realised_lr": self.realised_lr,
            "realised_decay": self.realised_decay,
        }


@dataclass
class LearningNetwork:
    """Forward core network + motif + engine rules: everything the emulator's learning run executes."""

    rule: str
    variant: str
    profile: str
    numerics: str  # "loihi" or "float"
    core: CoreNetwork
    layers: list[LearningLayer]
    feedback: list[FeedbackProjection]
    engine: dict[str, EngineRule]
    schedule: Schedule
    scale: int  # fixed point: a float weight of 1 threshold is ``scale`` LSB
    batch: int  # presentations per weight move (2^K)
    tag_bits: int
    instances: int
    lr: float = 0.0
    decay: float = 0.0
    host_copy: str = ""  # "sign" or "transpose": the host rewrites B from W after every weight move
    mirror: tuple[float, ...] = ()  # WM/IA: (noise rate, η_B); () otherwise
    train_noise: tuple[float, ...] = ()  # PAL/SAL: (rate, charge, η_B, τ_a, τ_b) of ``learning_noise``
    custom: Any = None  # a user-defined rule, checked (``learning_custom.CompiledRule``)
    provenance: dict[str, Any] = field(default_factory=dict)

    def projection(self, name: str) -> CoreProjection:
        for pr in self.core.projections:
            if pr.name == name:
                return pr
        raise KeyError(name)

    def feedback_of(self, name: str) -> list[FeedbackProjection]:
        return [f for f in self.feedback if f.dst == name]


def scale_grid(target: float) -> tuple[int, int, float]:
    """(m, e, m·2^e) closest to ``target`` on the engine's 4-bit-mantissa grid (m 1..7, e −7..8)."""
    best = min((abs(math.log(m * 2.0**e / target)), m, e) for m in _MANTISSAS for e in _EXPONENTS)
    _, m, e = best
    return m, e, m * 2.0**e


def _term(m: int, e: int) -> str:
    return f"{m}*2^{e}" if m != 1 else f"2^{e}"


def layered(ir: NetworkIR) -> list[tuple[str, str, np.ndarray]]:
    """(projection, population, float weight) per layer of a feed-forward chain, or one clear error."""
    if len(ir.inputs) != 1 or len(ir.outputs) != 1:
        raise NeurodeployError(
            f"a learning network needs one input and one output, got {len(ir.inputs)} and {len(ir.outputs)}",
            "network",
            "export a single-input, single-output feed-forward network",
        )
    if ir.readouts:
        nodes = ", ".join(n for r in ir.readouts for n in r.nodes)
        raise NeurodeployError(
            f"the network ends in stateless nodes ({nodes}) that no learning rule trains",
            "network",
            "end the network in its last layer of neurons (drop the readout before the Output)",
        )
    chain, current = [], ir.inputs[0]
    seen = {current}
    while current != ir.outputs[0]:
        out = [p for p in ir.projections if p.src == current]
        if len(out) != 1:
            raise NeurodeployError(
                f"population {current!r} feeds {len(out)} projections; the rules train a layered chain",
                "network",
                "use a feed-forward stack of linear layers and neurons (no skips, no recurrence)",
            )
        proj = out[0]
        dst = ir.population(proj.dst)
        if len(ir.incoming(dst.name)) != 1 or dst.name in seen:
            raise NeurodeployError(
                f"population {dst.name!r} has {len(ir.incoming(dst.name))} inputs; the rules train a layered chain",
                "network",
                "use a feed-forward stack of linear layers and neurons (no skips, no recurrence)",
            )
        if type(proj.weight).__module__.startswith("scipy.sparse"):
            raise NeurodeployError(
                f"projection {proj.name!r} is a convolution or sparse map; learning runs train dense layers",
                "network",
                "flatten to Linear layers, or freeze the conv front end and feed its spikes as the input",
            )
        chain.append((proj.name, dst.name, np.asarray(proj.weight, dtype=float)))
        seen.add(dst.name)
        current = dst.name
    return chain


def delta_shift(value_per_unit: float, q_scale: float) -> tuple[int, float]:
    """Right shift turning a compartment value of ``value_per_unit`` per float unit into δ LSBs of
    about 1/``q_scale`` each; returns the shift and the realised float units per δ LSB."""
    s = max(0, round(math.log2(max(value_per_unit / q_scale, 1.0))))
    return s, 2.0**s / value_per_unit


@dataclass(frozen=True)
class LearnOptions:
    """The learning pass's knobs (``neurodeploy.learn`` fills them from its arguments)."""

    instances: int = 1
    seed: int = 0
    lr: float = 0.01  # η per sample, float units (threshold = 1)
    batch: int = 16  # presentations per weight move
    steps: int = 32  # one presentation; steps·batch must be a power of two up to 512 (the engine's uK)
    active: int = 24  # input steps
    scale: int = 64  # fixed point: threshold in weight LSBs (a power of two)
    tag_bits: int = 4  # the tag counts 2^-tag_bits weight LSBs
    decay: float = 0.0  # per weight move, on W and B (KP)
    mismatch: float = 0.0  # per-neuron threshold gain and offset spread (σ, thresholds)
    init_gain: float = 0.0  # > 0: fresh weights N(0, g²/fan_in); 0: the network's own weights
    delta_max: float = 2.0  # |δ| (float units) the 7-bit third factor spans before it clips
    feedback_gain: float = 1.0  # FA/DFA/DRTP: B ~ N(0, g²/n_upper)
    mirror_rate: float = 0.2  # WM/IA: noise spikes per input step in a mirror presentation
    mirror_lr: float = 0.05  # WM/IA: η_B per minibatch
    noise_rate: float = 0.2  # PAL/SAL: noise spikes per input step and channel (+ and −) into each hidden neuron
    noise_charge: float = 2.0  # PAL/SAL: thresholds of charge per noise spike
    noise_lr: float = 0.001  # PAL/SAL: the running sums' decay per minibatch (α)
    noise_tau: float = 8.0  # PAL: τ_ξ of the noise trace; SAL: τ of the spike-timing kernel (steps)
    hp_tau: float = 8.0  # PAL: τ_HP of the upper layer's high-pass (steps)


def _check(rule: Any, profile: Any, opt: LearnOptions, depth: int) -> str:
    mot = motif_of(rule)
    rule = mot.name
    plast = profile.plasticity
    engine = plast.get("engine")
    if engine not in ("loihi", "float"):
        why = {
            "none": "the chip has no on-chip long-term learning",
            "programmable": "its plasticity is programmable software that neurodeploy does not model",
        }
        raise NeurodeployError(
            f"profile {profile.name!r} cannot run learning rule {rule!r}: {why.get(engine, 'no [plasticity] engine')}",
            f"{profile.path}: [plasticity].engine",
            "use --profile loihi2 (fixed point) or --profile ideal (float)",
        )
    for cap in ("graded_spikes", "programmable_neurons"):
        if mot.source != "none" and not plast.get(cap, False):
            raise NeurodeployError(
                f"rule {rule!r} needs {cap.replace('_', ' ')} for its learning neurons, which {profile.name!r} lacks",
                f"{profile.path}: [plasticity].{cap}",
                "use --profile loihi2 or --profile ideal, or --rule frozen",
            )
    if (mot.mirror or mot.noise) and not plast.get("noise_source", False):
        raise NeurodeployError(
            f"rule {rule!r} drives its hidden layers from a noise source, which {profile.name!r} lacks",
            f"{profile.path}: [plasticity].noise_source",
            "use --profile loihi2 or --profile ideal, or a rule without noise (fa, kp)",
        )
    period = opt.steps * opt.batch
    if opt.active >= opt.steps or opt.batch < 1 or period & (period - 1) or period > 512:
        raise NeurodeployError(
            f"steps {opt.steps} x batch {opt.batch} = {period} is not a power of two up to 512 "
            f"(or active {opt.active} >= steps)",
            "steps, batch",
            "the engine moves weights every 2^K steps with K <= 9: e.g. --steps 32 --batch 16 (Python: steps=32, "
            "batch=16)",
        )
    if opt.scale & (opt.scale - 1) or not 1 <= opt.scale <= 128:
        raise NeurodeployError(f"scale {opt.scale} is not a power of two up to 128", "scale", "e.g. scale=64")
    need = opt.active + depth + 1 + (depth - 1 if mot.source == "chain" else 1) + 1
    if need > opt.steps:
        raise NeurodeployError(
            f"{depth} layers need {need} steps per presentation after {opt.active} input steps, have {opt.steps}",
            "steps",
            f"lower --active to {opt.active - (need - opt.steps)} (Python: active={opt.active - (need - opt.steps)}) "
            "or use fewer layers",
        )
    return "loihi" if engine == "loihi" else "float"


def _warn_if_quantised_away(name: str, w: np.ndarray, weight: np.ndarray, lam: int) -> None:
    """A layer whose weights round to zero carries no spikes, so nothing above it learns: say so early."""
    nonzero = np.asarray(w) != 0
    lost = np.count_nonzero(nonzero & (weight == 0))
    if nonzero.any() and lost > nonzero.sum() / 2:
        warnings.warn(
            f"{lost} of {nonzero.sum()} weights of {name!r} round to zero at {lam} units per threshold "
            f"(largest |w|/v_th {np.abs(w).max():.3g}); the layer will barely drive its neurons. "
            "Check the graph's dt (pass dt= when it does not record one) or raise scale (up to 128)",
            stacklevel=3,
        )


def build(ir: NetworkIR, rule: Any, profile: Any, opt: LearnOptions, variant: str = "chip") -> LearningNetwork:
    """The learning network of ``ir`` for ``rule`` (a name or a ``LocalRule``) on ``profile``: see above."""
    chain = layered(ir)
    depth = len(chain)
    numerics = _check(rule, profile, opt, depth)
    mot = motif_of(rule)
    custom = None if isinstance(rule, str) else compile_rule(rule, profile, numerics)  # locality, engine limits
    rule = mot.name
    fixed = numerics == "loihi"
    rng = np.random.default_rng([opt.seed, 1])
    mis = np.random.default_rng([opt.seed, 2])
    inst = opt.instances
    lam = opt.scale if fixed else 1
    sched = Schedule(
        opt.steps, opt.active, opt.active + depth, tuple(opt.active + depth + 1 + k for k in range(depth - 1))
    )
    pops = [CorePopulation(ir.inputs[0], ir.population(ir.inputs[0]).size, "input"), CorePopulation("bias", 1, "input")]
    projs, layers = [], []
    q_max = 63 if mot.plastic_feedback else TRACE_MAX
    per_unit = 64.0 * lam * opt.active  # output compartment units per float unit of error
    shift, lsb = delta_shift(per_unit, q_max / opt.delta_max) if fixed else (0, 1.0)
    src = ir.inputs[0]
    for k, (pname, name, w) in enumerate(chain):
        pop = ir.population(name)
        out = k == depth - 1
        vth = np.asarray(pop.v_th if pop.v_th is not None else np.ones(pop.size), dtype=float)
        if opt.init_gain > 0:
            fan = w.shape[1] + 1
            w = rng.normal(0.0, opt.init_gain / np.sqrt(fan), (inst, *w.shape))
        else:
            w = np.broadcast_to(w / vth[:, None], (inst, *w.shape))
        gain = np.ones((inst, 1, pop.size))
        offset = np.zeros((inst, 1, pop.size))
        if opt.mismatch > 0:
            gain = np.maximum(1.0 + opt.mismatch * np.clip(mis.standard_normal(gain.shape), -3, 3), 0.2)
            offset = 0.1 * opt.mismatch * np.clip(mis.standard_normal(gain.shape), -3, 3)
        bias = (
            np.asarray((pop.bias_u if pop.bias_u is not None else 0) + (pop.bias_v if pop.bias_v is not None else 0))
            / vth
        )
        du = np.asarray(pop.du if pop.du is not None else np.ones(pop.size), dtype=float)
        dv = np.asarray(pop.dv if pop.dv is not None else np.zeros(pop.size), dtype=float)
        if fixed:
            params = {
                "du": np.clip(np.rint(du * 4096) - 1, 0, 4095).astype(np.int64),
                "dv": np.clip(np.rint(dv * 4096), 0, 4095).astype(np.int64),
                "vth": np.full_like(gain, VTH_RANGE[1], dtype=np.int64)
                if out
                else np.rint(lam * gain).astype(np.int64),
                "bias_mant": np.clip(np.rint((bias + offset) * lam * 64), -4096, 4095).astype(np.int64),
                "bias_exp": np.zeros(pop.size, dtype=np.int64),
            }
            # LearningDense truncates initial weights to 8 bits once (even values, mixed sign); learned
            # weights keep all 9 engine bits, so the projection is declared with 9 (no truncation later)
            weight = np.clip(2 * np.rint(w * lam / 2), -256, 254).astype(np.int64)
            if opt.init_gain <= 0:  # the user's weights (fresh ones start small on purpose and grow)
                _warn_if_quantised_away(pname, w, weight, lam)
        else:
            params = {"du": du, "dv": dv, "v_th": gain, "v_reset": np.zeros(pop.size), "bias_u": np.zeros(pop.size),
                      "bias_v": bias + offset}  # fmt: skip
            weight = np.array(w, dtype=float)
        pops.append(CorePopulation(name, pop.size, "loihi" if fixed else "float", params, spiking=not out, lag=k + 1))
        bits = 9 if fixed else 8
        projs.append(CoreProjection(pname, src, name, weight, num_weight_bits=bits))
        # fresh networks draw the bias neuron's weights with the others (fan-in + 1); a user's network
        # keeps its own biases as bias currents and learns a bias synapse from zero
        b0 = np.zeros((inst, pop.size, 1))
        if opt.init_gain > 0:
            b0 = rng.normal(0.0, opt.init_gain / np.sqrt(w.shape[-1] + 1), b0.shape)
        bias_w = np.clip(2 * np.rint(b0 * lam / 2), -256, 254).astype(np.int64) if fixed else b0
        projs.append(CoreProjection(f"bias->{name}", "bias", name, bias_w, num_weight_bits=bits))
        plastic = [] if (mot.source == "none" and not out) else [pname, f"bias->{name}"]
        layers.append(LearningLayer(name, pop.size, plastic, out, shift if out else int(math.log2(lam)), lsb, q_max))
        src = name
    core = CoreNetwork(
        pops,
        projs,
        [ir.inputs[0], "bias"],
        [chain[-1][1]],
        numerics=numerics,
        arithmetic=str(profile.numerics.get("arithmetic", "lava")) if fixed else "lava",
    )
    feedback = _feedback(mot, layers, inst, lam, fixed, opt, rng)
    lnet = LearningNetwork(rule, variant, profile.name, numerics, core, layers, feedback, {}, sched, lam, opt.batch,
                           opt.tag_bits, inst, decay=opt.decay, custom=custom)  # fmt: skip
    lnet.provenance = mot.provenance(numerics, profile.name)
    if mot.host_copy:  # per move and W entry: sign: sign, square and a write; transpose: a read and a write
        pairs = sum(f.weight[0].size for f in feedback)
        per_entry = 3 if mot.host_copy == "sign" else 2
        lnet.provenance["feedback_learning"]["host_ops_per_sample"] = round(per_entry * pairs / opt.batch, 2)
        lnet.host_copy = mot.host_copy
        for fb in feedback:
            fb.weight = host_copy(lnet, fb)
    if mot.mirror:
        from neurodeploy.emulator.learning_mirror import host_ops_per_sample

        if not 0 < opt.mirror_rate < 1 or opt.mirror_lr <= 0:
            raise NeurodeployError(
                f"mirror_rate {opt.mirror_rate} and mirror_lr {opt.mirror_lr}: need 0 < rate < 1 and lr > 0",
                "mirror_rate, mirror_lr",
                "e.g. mirror_rate=0.2, mirror_lr=0.05",
            )
        lnet.mirror = (opt.mirror_rate, opt.mirror_lr)
        lnet.provenance["feedback_learning"]["host_ops_per_sample"] = host_ops_per_sample(rule, feedback, opt.batch)
    if mot.noise:
        from neurodeploy.compiler.learning_noise import add_training_noise

        add_training_noise(lnet, opt)
    set_rates(lnet, opt.lr, opt.decay)  # every rule's forward weights (L2); KP's B too (its plastic feedback)
    return lnet


def _feedback(mot: Any, layers: list[LearningLayer], inst: int, lam: int, fixed: bool, opt: LearnOptions,
              rng: np.random.Generator) -> list[FeedbackProjection]:  # fmt: skip
    out = []
    n_out = layers[-1].size
    for k, layer in enumerate(layers[:-1]):
        if mot.source == "none":
            break
        upper = {"chain": layers[k + 1].name, "error": "error", "target": "target"}[mot.source]
        n_up = layers[k + 1].size if mot.source == "chain" else n_out
        if mot.plastic_feedback:
            b = np.zeros((inst, layer.size, n_up))
        else:
            b = rng.normal(0.0, opt.feedback_gain / np.sqrt(n_up), (inst, layer.size, n_up))
        weight = np.clip(np.rint(b * lam), -256, 255).astype(np.int64) if fixed else b
        out.append(FeedbackProjection(f"{upper}=>{layer.name}", upper, layer.name, weight, mot.plastic_feedback))
    return out


def host_copy(lnet: LearningNetwork, fb: FeedbackProjection) -> np.ndarray:
    """What the host writes into B from the forward projection of ``fb.dst`` into the layer above:
    s·sign(W)ᵀ (sign symmetry) or Wᵀ itself (the BP reference)."""
    w = next(pr.weight for pr in lnet.core.projections if pr.src == fb.dst)
    if lnet.host_copy == "transpose":
        return np.swapaxes(np.array(w), -1, -2).copy()
    w_t = np.swapaxes(np.asarray(w, dtype=float), -1, -2)
    rms = np.sqrt(np.mean(w_t**2, axis=(-1, -2), keepdims=True))
    if lnet.numerics == "loihi":
        return (np.sign(w_t) * np.maximum(np.rint(rms), 1)).astype(np.int64)
    return np.sign(w_t) * rms


def set_rates(lnet: LearningNetwork, lr: float, decay: float) -> None:
    """(Re)write the engine rules for learning rate ``lr`` and decay per move ``decay`` (a chip reconfigures
    its rule registers between epochs); each rule reports the rate and decay it realises."""
    lnet.lr, lnet.decay = lr, decay
    k = int(math.log2(lnet.batch * lnet.schedule.steps))
    b = lnet.tag_bits
    lsb = lnet.layers[-1].delta_scale
    dd = "x0 - y0*d"
    if lnet.numerics == "loihi":
        # d·y is shifted right by 5 (9 + 7 + 4 bits - 15); KP's B multiplies (x1 - 64)·y1 by y0 twice
        # (1-bit factors, value 1) so that its product has the same widths, the same shift and thus the
        # same integers as W's: W - Bᵀ then keeps no truncation difference
        target = lnet.scale * lr * lsb * 2.0 ** (5 + b) / lnet.schedule.active
        m, e, real = scale_grid(target)
        lr_real = lr * real / target
        dec = ""
        dec_real = 0.0
        if decay > 0:
            md, ed, dreal = scale_grid(decay * 2.0**b)
            if ed < -7:
                md, ed, dreal = 1, -7, 2.0**-7
            dec, dec_real = f" - {_term(md, ed)}*u{k}*w", dreal / 2.0**b
        fwd_dt = f"{_term(m, e)}*y0*d*y3 - {_term(m, e)}*y0*d*y2 - u{k}*t{dec}"
        b_dt = f"-{_term(m, e)}*y0*(x1-{GRADED_OFFSET})*y1*y0*y0 - u{k}*t{dec}"
        dw = f"2^-{b}*u{k}*t"
    else:
        lr_real, dec_real = lr, decay
        fwd_dt = f"{lr:g}/active*y0*d*(y3 - y2) - u{k}*t" + (f" - {decay:g}*u{k}*w" if decay else "")
        b_dt = f"-{lr:g}/active*y0*x1*y1 - u{k}*t" + (f" - {decay:g}*u{k}*w" if decay else "")
        dw = f"u{k}*t"
    lnet.engine = {}
    for layer in lnet.layers:
        for name in layer.plastic:
            lnet.engine[name] = EngineRule(name, fwd_dt, dw, dd, "spikes", lr_real, dec_real)
    for fb in lnet.feedback:
        if fb.plastic:
            lnet.engine[fb.name] = EngineRule(fb.name, b_dt, dw, "", "graded", lr_real, dec_real)
    if lnet.custom is not None:
        custom_rates(lnet)


__all__ = [
    "Schedule",
    "LearningLayer",
    "FeedbackProjection",
    "EngineRule",
    "LearningNetwork",
    "scale_grid",
    "layered",
    "delta_shift",
    "LearnOptions",
    "build",
    "set_rates",
    "host_copy",
    "VTH_RANGE",
    "GRADED_OFFSET",
    "CorePopulation",
    "CoreProjection",
]
