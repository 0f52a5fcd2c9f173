"""The PAL microcircuit in the loihi2 profile's integer arithmetic, every plastic weight on the Loihi learning engine.

What runs on the chip (emulated): the pyramidal and interneurons, every synapse, the OU noise, the high-pass
filter and all four plasticity rules. The host reads the output potentials to score, and converts the
integer weights back to floats for the ∠(B, Wᵀ) metric. The network is compiled as a CoreNetwork
(``microcircuit_chip_net.chip_network``) and run by the emulator's stepped run loop; the host presents the
patterns (writing each one's target into the output neurons' bias and its onset flag) and switches the noise and
the learning engine off to score.

- Neurons: Loihi 2 programmable neurons. Potentials are integers in units of 2^-12 (POT_BITS), rates in
  2^-16 (RATE_BITS, 0…65535). The soma is the conductance-weighted average of its compartments, computed as
  (G_B·v_bas + G_A·v_api + 2^11) >> 12 with G = round(4096·g / g_total); that is the prospective potential
  u + τu̇ the rate reads, so no lagging soma state is kept. φ is a 257-entry table of 16-bit sigmoid values
  every 1/16 of u on [−8, 8], linearly interpolated with the potential's low 8 bits.
- Noise: an integer OU update ξ ← ξ − (A_ξ·ξ >> 12) + (N·(Σ₄ U8 − 510)) >> s, the Gaussian approximated by a
  sum of four 8-bit pseudo-random integers (numpy's PCG64 stands in for the chip's generator).
- High-pass: an integer state of the upper neuron, r^HP ← r^HP + Δr − (A_HP·r^HP >> 12), in rate units.
- Synapses: W_up, B, W_IP, W_PI as 8-bit weights with one exponent per projection (9-bit once learned);
  rates travel as graded spikes whose 16-bit payload multiplies the weight; the target potential of a
  nudged output neuron is its bias; an interneuron receives the upper soma's potential as a graded spike.
- Plasticity: Lava's three-factor rules on ``PlasticDense``. The pre trace x1 takes the graded spike
  (GradedSpikeCfg 1, x1 := payload/2 of an 8-bit payload: here the rate's top 8 bits) and does not decay
  within the epoch; the post neuron writes y1…y3. The third factor is 8·y′ with y′ the neuron's signed value
  times a gain, stochastically rounded to −15…15 with its pseudo-random bits, so the engine's product
  (y·x1) >> 3 is exact. The rules write their products into the tag t (the weight's fraction, 1/128 of a
  unit) with ``gle_chip_parts``' carry rule. PAL's decay −αB
  is a product y1·(w + t/128) where the neuron sets y1 = 32, with probability 128·η_bw·dt·α per step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from neurodeploy.emulator.learning_rule import ACC_MAX, ACC_MIN
from neurodeploy.emulator.loihi import prepare_weights, shift_by_exp
from neurodeploy.emulator.plasticity import TAG_RANGE, LearningRule, TraceSpec, apply_accumulator
from neurodeploy.errors import NeurodeployError
from neurodeploy.learning import metrics
from neurodeploy.learning.tasks import Task, get_task
from neurodeploy.rules.systems import base
from neurodeploy.rules.systems.microcircuit import EQUATIONS, NAME, Microcircuit, Options

if TYPE_CHECKING:
    from neurodeploy.emulator.stepped import SteppedRun

POT_BITS = 12  # potentials in units of 2^-12
RATE_BITS = 16  # rates in units of 2^-16, 0…65535
G_BITS = 12  # conductance ratios and decay factors in units of 2^-12
TABLE_STEP_BITS = 8  # the sigmoid table steps every 2^8 potential units = 1/16
TABLE_HALF = 128  # entries −128…128: u in [−8, 8]
Y_MAX = 15  # |y′|: the third factor 8·y′ stays within the 7-bit y traces
HP_SHIFT = 5  # B's pre trace: x1 = 64 + r^HP >> 5 (r^HP in 2^-11 units), clipped to 0…127
GRADED_OFFSET = 64
DECAY_Y1 = 32  # y1 = 32 makes (y1·w) >> 5 = w exactly
# a projection's exponent leaves this multiple of its largest initial weight within 9 bits: hidden forward
# weights grow about eightfold in the float reference on Yin-Yang (lr_up 50), the others stay near their start
HEADROOM_HIDDEN, HEADROOM = 8.0, 2.0
ERR_MAX = {"w": 0.25, "ip": 0.25, "pi": 1.0}  # the |third factor| each rule's gain is sized for
TAG_MIN, TAG_MAX = TAG_RANGE
DIRECT_UNITS = 64  # a rule whose change at its largest value exceeds this many units per pattern skips the tag
# the tag's carry terms (gle_chip_parts.RULE_TAG's last two; dw = gle_chip_parts.RULE_CARRY): once |t| ≥ 128,
# ±1 moves into w and ∓128 leaves t in the same epoch
CARRY_TAG = "- 2^6*x0*sgn(t-127) - 2^6*x0*sgn(t+128)"
TAG_DECAY = " - y1*w*x0 - 2^-7*y1*t*x0"  # y1 = 32 removes (w + t/128) tag units: (w + t/128)/128 of a unit


@dataclass(frozen=True)
class ChipOptions(Options):
    """The float options plus the chip instance's mismatch."""

    mismatch: float = 0.0  # relative spread of the initial weights per synapse (emulator.mismatch)

    def checked(self) -> ChipOptions:
        out = Options.checked(self)
        if not (np.isfinite(float(self.mismatch)) and 0 <= float(self.mismatch) < 1):
            raise NeurodeployError(f"option mismatch={self.mismatch!r} must be in [0, 1)", f"{NAME} options",
                                   "e.g. mismatch=0.1 (10 % per synapse)")  # fmt: skip
        return replace(out, mismatch=float(self.mismatch))


def sigmoid_table() -> np.ndarray:
    """σ(u)·2^16 at u = i/16, i = −128…128, clipped to 16 bits."""
    u = np.arange(-TABLE_HALF, TABLE_HALF + 1) / (1 << (POT_BITS - TABLE_STEP_BITS))
    return np.clip(np.rint((1 << RATE_BITS) / (1 + np.exp(-u))), 0, (1 << RATE_BITS) - 1).astype(np.int64)


TABLE = sigmoid_table()


def phi(u: np.ndarray) -> np.ndarray:
    """Rate of an integer potential: table entry plus the linear step to the next, (Δ·low 8 bits) >> 8."""
    top = TABLE_HALF << TABLE_STEP_BITS
    u = np.clip(np.asarray(u, dtype=np.int64), -top, top - 1) + top
    i, frac = u >> TABLE_STEP_BITS, u & ((1 << TABLE_STEP_BITS) - 1)
    return TABLE[i] + (((TABLE[i + 1] - TABLE[i]) * frac) >> TABLE_STEP_BITS)


def ratio(g: float) -> int:
    """A conductance ratio or decay factor in 2^-12."""
    return int(round(g * (1 << G_BITS)))


def mix(terms: list[tuple[int, np.ndarray]]) -> np.ndarray:
    """Σ G·v in 2^-12, rounded back to potential units: the conductance-weighted soma."""
    acc = sum(g * np.asarray(v, dtype=np.int64) for g, v in terms)
    return (acc + (1 << (G_BITS - 1))) >> G_BITS


def ou_step(xi: np.ndarray, draws: np.ndarray, decay: int, gain: tuple[int, int]) -> np.ndarray:
    """ξ ← ξ − (A·ξ) >> 12 rounded + (N·(Σ of four 8-bit draws − 510)) >> s rounded; draws (4, *ξ.shape)."""
    m, s = gain
    kick = ((np.asarray(draws, dtype=np.int64).sum(0) - 510) * m + (1 << (s - 1))) >> s
    return xi - ((decay * xi + (1 << (G_BITS - 1))) >> G_BITS) + kick


def high_pass_step(hp: np.ndarray, r_now: np.ndarray, r_before: np.ndarray, decay: int) -> np.ndarray:
    """r^HP ← r^HP + (r_now − r_before) − (A_HP·r^HP) >> 12 rounded, all in rate units."""
    return hp + (r_now - r_before) - ((decay * hp + (1 << (G_BITS - 1))) >> G_BITS)


def fixed(value: float, bits: int = 16) -> tuple[int, int]:
    """(m, s) with value ≈ m / 2^s, m a ``bits``-bit mantissa (s ≥ 1)."""
    if value == 0:
        return 0, 1
    s = max(1, bits - 1 - int(math.floor(math.log2(abs(value)))))
    return int(round(value * 2.0**s)), s


def third_factor(value: np.ndarray, gain: tuple[int, int], uniform_bits: np.ndarray) -> np.ndarray:
    """y′ = value·m / 2^s rounded stochastically with the neuron's random bits, clipped to ±Y_MAX."""
    m, s = gain
    t = np.asarray(value, dtype=np.int64) * m
    q = t >> s
    return np.clip(q + ((uniform_bits & ((1 << s) - 1)) < t - (q << s)), -Y_MAX, Y_MAX)


def rate_trace(r: np.ndarray) -> np.ndarray:
    """x1 := the rate's top 8 bits / 2, i.e. r·128 rounded, at most 127."""
    return np.minimum((np.asarray(r, dtype=np.int64) + (1 << (RATE_BITS - 8))) >> (RATE_BITS - 7), 127)


def hp_trace(hp: np.ndarray) -> np.ndarray:
    """B's signed pre trace: x1 = 64 + r^HP >> HP_SHIFT (rounded), clipped to 0…127."""
    return np.clip(GRADED_OFFSET + ((hp + (1 << (HP_SHIFT - 1))) >> HP_SHIFT), 0, 127)


def engine_exponent(gain_at_min: float, value_max: float) -> int:
    """The smallest engine exponent e ≥ −7 for which |y′| stays ≤ Y_MAX at ``value_max``."""
    need = gain_at_min * value_max / Y_MAX
    return int(min(8, max(-7, -7 + math.ceil(math.log2(need)) if need > 1 else -7)))


@dataclass
class Plastic:
    """One learned projection: its engine rule, weights (9 bits, the Dense's), tag (their fraction in 1/128 of a
    register unit), exponent and the post neuron's third-factor gain."""

    name: str
    rule: LearningRule | None  # the products: into the tag t (with ``carry``) or, without one, into w directly
    weights: np.ndarray  # (seeds, n_post, n_pre) int64, shared by the batch's copies
    shift: int  # W = w·2^-shift
    gain: tuple[int, int] = (0, 1)  # y′ per unit of the post neuron's integer value
    rng: np.random.Generator | None = None  # the engine's per-synapse rounding draws
    carry: LearningRule | None = None  # the same engine rule's carry terms (dw = ±1, dt = ∓128 once |t| ≥ 128)
    tag: np.ndarray | None = None  # (seeds, n_post, n_pre) in 1/128 of a register unit
    saturated: int = 0  # tag updates that hit the accumulator's or the tag's range
    updates: int = 0

    def __post_init__(self) -> None:
        self.tag = np.zeros_like(self.weights) if self.carry is not None and self.tag is None else self.tag

    def dense(self, payload: np.ndarray) -> np.ndarray:
        """Σ_j w_ij·payload_j, shifted into potential units (Dense with graded spikes; the tag takes no part)."""
        acc = np.matmul(self.weights[:, None].astype(np.float64), payload[..., None].astype(np.float64))[..., 0]
        return shift_by_exp(acc.astype(np.int64), -(self.shift + RATE_BITS - POT_BITS))

    def learn(self, x1: np.ndarray, y: dict[str, np.ndarray]) -> None:
        """One engine epoch (t_epoch = 1) for the whole batch: every copy's products in Lava's fixed point summed
        into one accumulator per synapse (``gle_chip_parts.engine_change``), then the engine's clip and
        per-synapse stochastic rounding (``apply_accumulator``). The carry terms depend on t alone: they count
        once per epoch, not once per copy. x1, y: (seeds, batch, n)."""
        if self.rule is None:
            return
        from neurodeploy.rules.systems.gle_chip_parts import engine_change

        uniform = self.rng.random(self.weights.shape)
        if self.carry is None:
            self.weights = apply_accumulator(self.weights, engine_change(self.rule, self.weights, None, x1, y)["dw"],
                                             uniform, "weight")  # fmt: skip
            return
        products = engine_change(self.rule, self.weights, self.tag, x1, y)["dt"]
        carry = engine_change(self.carry, self.weights, self.tag, np.zeros_like(x1[:, :1]), {})
        acc = products + carry["dt"]
        raw = (self.tag << 7) + acc
        self.saturated += int(((acc < ACC_MIN) | (acc > ACC_MAX) | (raw > TAG_MAX << 7) | (raw < TAG_MIN << 7)).sum())
        self.updates += acc.size
        self.weights = apply_accumulator(self.weights, carry["dw"], uniform, "weight")
        self.tag = apply_accumulator(self.tag, np.clip(acc, ACC_MIN, ACC_MAX), uniform, "tag")

    def as_float(self) -> np.ndarray:
        return self.weights * 2.0**-self.shift

    @property
    def text(self) -> str:
        if self.rule is None or self.carry is None:
            return "" if self.rule is None else f"dw = {self.rule.dw}"
        return f"dt = {self.rule.dt} {CARRY_TAG}; dw = {self.carry.dw}"


def split(y: np.ndarray) -> dict[str, np.ndarray]:
    """A signed y′ as the engine's two non-negative third factors y2 = 8·y′⁺, y3 = 8·y′⁻."""
    return {"y2": 8 * np.maximum(y, 0), "y3": 8 * np.maximum(-y, 0)}


def weight_shift(w: np.ndarray, headroom: float = HEADROOM) -> int:
    top = headroom * float(np.abs(w).max())
    return int(np.clip(math.floor(math.log2(255 / top)) if top > 0 else 8, 0, 14))


def to_register(w: np.ndarray, shift: int) -> np.ndarray:
    return prepare_weights(np.rint(w * 2.0**shift), 8, "mixed")


def check_profile(profile_name: str) -> Any:
    needs = {"programmable_neurons": "three-compartment pyramids, a sigmoid table, OU noise and a high-pass state "
             "are not LIF neurons",
             "graded_spikes": "rates travel as graded spikes"}  # fmt: skip
    return base.chip_profile(NAME, profile_name, "W_up, B, W_IP and W_PI learn with three-factor engine rules", needs)


class ChipMicrocircuit:
    """The integer network's parameters: weights (``plastic``) shared per seed, conductance ratios, noise and
    decay constants, the generator; ``microcircuit_chip_net.chip_network`` compiles it into a CoreNetwork whose
    state is per (seed, pattern) copy. ``training`` is the host's register: OU noise and learning engine on."""

    def __init__(self, sizes: list[int], seeds: int, o: ChipOptions, rng: np.random.Generator, profile: Any) -> None:
        self.o, self.sizes, self.seeds, self.depth = o, sizes, seeds, len(sizes) - 2
        ref = Microcircuit(sizes, seeds, o, rng)  # the float start, drawn exactly as the paper variant draws it
        floats = {f"w{k}": w for k, w in enumerate(ref.w)}
        for k in range(self.depth):
            floats.update({f"b{k}": ref.b[k], f"ip{k}": ref.w_ip[k], f"pi{k}": ref.w_pi[k]})
        hidden = {f"w{k}" for k in range(self.depth)}
        shifts = {n: weight_shift(w, HEADROOM_HIDDEN if n in hidden else HEADROOM) for n, w in floats.items()}
        registers = self._instances({n: to_register(w, shifts[n]) for n, w in floats.items()}, profile)
        self.draws = np.random.default_rng([o.seed_offset, 20180716, 2])
        self.training = True
        g_tot, g_out = o.g_l + o.g_b + o.g_a, o.g_l + o.g_b + o.g_som
        self.g = {"b": ratio(o.g_b / g_tot), "a": ratio(o.g_a / g_tot), "b_nudged": ratio(o.g_b / g_out),
                  "som": ratio(o.g_som / g_out), "b_free": ratio(o.g_b / (o.g_l + o.g_b)),
                  "d": ratio(o.g_d / (o.g_l + o.g_d + o.g_som_i)),
                  "som_i": ratio(o.g_som_i / (o.g_l + o.g_d + o.g_som_i)),
                  "d_free": ratio(o.g_d / (o.g_l + o.g_d))}  # fmt: skip
        self.ou_decay, self.hp_decay = ratio(o.dt / o.tau_xi), ratio(o.dt / o.tau_hp)
        # the Gaussian kick: σ √(dt/τ_ξ) in potential units per standard deviation of Σ₄ U8 (√(4·(256²−1)/12))
        self.ou_gain = fixed(o.sigma * math.sqrt(o.dt / o.tau_xi) * (1 << POT_BITS) / math.sqrt((256**2 - 1) / 3))
        self.decay_threshold = int(round(128 * o.lr_bw * o.dt * o.alpha * (1 << 16)))
        self.plastic: dict[str, Plastic] = {}
        for name, w in registers.items():
            kind, k = name.rstrip("0123456789"), int(name.lstrip("wbip"))
            rate = {"w": o.lr_up[k] if kind == "w" else 0.0, "b": o.lr_bw, "ip": o.lr_ip, "pi": o.lr_pi}[kind]
            self.plastic[name] = self._plastic(name, kind, w, shifts[name], rate, k)

    def _instances(self, registers: dict[str, np.ndarray], profile: Any) -> dict[str, np.ndarray]:
        """Per seed one chip instance of ``emulator.mismatch`` (weights per synapse), rounded to the registers."""
        if self.o.mismatch == 0:
            return registers
        from neurodeploy.emulator import mismatch
        from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection

        out: dict[str, list[np.ndarray]] = {n: [] for n in registers}
        for s in range(self.seeds):
            pops = [CorePopulation(f"p{i}", n, "input") for i, n in enumerate(self.sizes)]
            pops += [CorePopulation(f"i{k}", self.sizes[k + 2], "input") for k in range(self.depth)]
            projs = [CoreProjection(n, *self._ends(n), w[s]) for n, w in registers.items()]  # only the weights vary
            core = CoreNetwork(pops, projs, ["p0"], [f"p{len(self.sizes) - 1}"], numerics="loihi")
            core = mismatch.sample(core, profile, instances=1, seed=int(self.o.seed_offset),
                                   sigma={"weight": self.o.mismatch}, first=s)  # fmt: skip
            for pr in core.projections:
                out[pr.name].append(np.asarray(pr.weight, dtype=np.int64).reshape(registers[pr.name].shape[1:]))
        return {n: np.stack(v) for n, v in out.items()}

    @staticmethod
    def _ends(name: str) -> tuple[str, str]:
        """(source, destination) population of a projection: pyramids p0…, interneurons i0…"""
        kind, k = name.rstrip("0123456789"), int(name.lstrip("wbip"))
        return {"w": (f"p{k}", f"p{k + 1}"), "b": (f"p{k + 2}", f"p{k + 1}"), "ip": (f"p{k + 1}", f"i{k}"),
                "pi": (f"i{k}", f"p{k + 1}")}[kind]  # fmt: skip

    def _plastic(self, name: str, kind: str, w: np.ndarray, shift: int, rate: float, k: int) -> Plastic:
        """The engine rule and third-factor gain that make the engine's mean change the float update. The products
        land in the tag t (1/128 of a register unit) and carry into w; only a rule whose change at its largest
        value exceeds DIRECT_UNITS units per pattern (none at the default options) writes into w directly."""
        from neurodeploy.rules.systems.gle_chip_parts import RULE_CARRY, RULE_TAG

        o = self.o
        if rate == 0 or (kind == "b" and o.lr_bw == 0):
            return Plastic(name, None, w, shift)
        if kind == "b":  # y′ from ξ (2^-12), pre trace x1 − 64 = r^HP·2^(16 − HP_SHIFT)
            per_unit, value_max = rate * o.dt * 2.0**shift / 2.0 ** (RATE_BITS - HP_SHIFT), 4 * o.sigma
            value_bits, factor, x_max = POT_BITS, f"(x1-{GRADED_OFFSET})", GRADED_OFFSET
        else:  # y′ from a rate difference (2^-16) or v_api (2^-12), pre trace x1 = r·128
            per_unit, value_max = rate * o.dt * 2.0**shift / 128, ERR_MAX[kind]
            value_bits, factor, x_max = (POT_BITS if kind == "pi" else RATE_BITS), "x1", 127
        # register units per pattern at the largest value and pre trace: the tag takes up to one unit (y′ clips
        # above; typical values are far below value_max: the hidden forward weights' ~10 units clip 4e-6 of y′)
        direct = per_unit * value_max * x_max > DIRECT_UNITS
        per_unit = per_unit if direct else per_unit * 128  # in the units of the rule's target (w or t)
        e = engine_exponent(per_unit * 128, value_max)
        if not direct:  # Y_MAX·x_max·2^e < 128: one copy's products stay within a carry
            e = min(e, int(math.floor(math.log2(127 / (Y_MAX * x_max)))))
        gain = per_unit / 2.0**e / 2.0**value_bits * (-1 if kind == "pi" else 1)
        products = RULE_TAG.format(e=e).replace("(x1-64)", factor).removesuffix(" " + CARRY_TAG)
        decay = kind == "b" and self.decay_threshold > 0
        seed = [int(o.seed_offset), 20180716, 3, k, {"w": 0, "b": 1, "ip": 2, "pi": 3}[kind]]
        trace = {"x1": TraceSpec(0.0, math.inf), "t_epoch": 1, "three_factor": True}
        if direct:
            spec = LearningRule(dw=products + (" - 2^-7*y1*w*x0" if decay else ""), **trace)
            return Plastic(name, spec, w, shift, fixed(gain, 24), np.random.default_rng(seed))
        spec = LearningRule(dt=products + (TAG_DECAY if decay else ""), **trace)
        carry = LearningRule(dw=RULE_CARRY, dt=CARRY_TAG, **trace)
        return Plastic(name, spec, w, shift, fixed(gain, 24), np.random.default_rng(seed), carry)

    def bits(self, shape: tuple[int, ...]) -> np.ndarray:
        """Third-factor rounding bits from the network's generator (the chip's, emulated)."""
        return self.draws.integers(0, 1 << 62, shape, dtype=np.int64)


def to_rate(x: np.ndarray) -> np.ndarray:
    return np.rint(np.asarray(x) * ((1 << RATE_BITS) - 1)).astype(np.int64)


def score(net: ChipMicrocircuit, run: SteppedRun, data: Task) -> dict[str, list[float]]:
    """Accuracy from the output potentials the chip reports after settling (``microcircuit_chip_net.predict``)."""
    from neurodeploy.rules.systems.microcircuit_chip_net import predict

    out = {}
    for key, x, y in (("test_accuracy", data.x_test, data.y_test), ("val_accuracy", data.x_val, data.y_val)):
        pred = predict(run, net, np.broadcast_to(to_rate(x), (net.seeds, *x.shape))).argmax(-1)
        out[key] = (pred == y).mean(-1).tolist()
    return out


def alignment(net: ChipMicrocircuit) -> dict[str, list[float]]:
    names = ["hidden"] if net.depth == 1 else [f"hidden{k + 1}" for k in range(net.depth)]
    p = net.plastic
    return {n: metrics.angle(p[f"b{k}"].as_float(), np.swapaxes(p[f"w{k + 1}"].as_float(), -1, -2)).tolist()
            for k, n in enumerate(names)}  # fmt: skip


DIFFERENCES = (
    "neurons: Loihi 2 programmable neurons in integer arithmetic, potentials in 2^-12, rates in 2^-16 (16-bit "
    "graded payloads); the soma is the conductance-weighted average with ratios rounded to 2^-12, i.e. the "
    "prospective potential u + τu̇ (no lagging soma state, as in the float reference)",
    "φ from a 257-entry table of 16-bit sigmoid values every 1/16 of u on [−8, 8], linearly interpolated; "
    "potentials beyond ±8 clip",
    "OU noise: integer update with the decay dt/τ_ξ in 2^-12 and a Gaussian kick approximated by the sum of four "
    "8-bit pseudo-random integers (Irwin-Hall, bounded at ±3.5σ); numpy's PCG64 stands in for the chip's generator",
    "high-pass r^HP: an integer state of the upper neuron in rate units (2^-16) with decay dt/τ_HP in 2^-12",
    "weights: 8 bits with one exponent per projection, 9 bits signed once learned, clipped to [−256, 255]; the "
    "exponent leaves the largest initial weight room to grow 8- to 16-fold in the hidden forward weights (which "
    "grow 11- to 15-fold in 30 epochs of the float run) and 2- to 4-fold in the others (W_out, W_IP, W_PI and B "
    "stay within about twice their start): weights that outgrow it saturate",
    "the learned weights' fraction: every rule changes a weight by a small fraction of a unit per step, so the "
    "products go into the engine's tag t (1/128 of a unit, Lava's range −257…255) and a carry rule moves ±1 into w "
    "once |t| ≥ 128 (gle_chip_parts' RULE_TAG and RULE_CARRY, on the unsigned pre trace x1 for W_up, W_IP, W_PI): "
    "w + t/128 is a 16-bit weight, the Dense uses only its top 9 bits w. Each rule's exponent keeps one pattern's "
    "products below a carry (Y_MAX·x1·2^e < 128), so values beyond that clip y′ (in the hidden forward weights, "
    "η_up = 50, rate differences above about 0.025); the batch's summed products can leave the tag's range "
    "(clipped, counted in ``Plastic.saturated``). The carry is one term per engine epoch, not one per copy of the "
    "batch; at t = 127 and t = −128 it is half (w ± 1/2, stochastically rounded; unbiased)",
    "pre traces: x1 = the graded rate's top bits, r·128 rounded (GradedSpikeCfg 1 on an 8-bit payload); B's pre "
    "trace x1 = 64 + r^HP·2^14 clipped to 0…127 (upper rate changes beyond ±2^-8 saturate); x1 set by the graded "
    "spike of the step and not decayed within the 1-step epoch",
    "third factors: the post neuron's signed value (φ(u) − φ(v̂), −v_api or ξ) times a gain that folds in η, "
    "stochastically rounded with the neuron's random bits to y′ in −15…15 and written as y2 = 8·y′⁺, "
    "y3 = 8·y′⁻ (so the engine's product shift is exact); values whose y′ would exceed 15 saturate",
    "the engine's y traces decay with τ = 65535 within the epoch (Lava's three-factor model) and its weight "
    "changes are stochastically rounded per synapse",
    "PAL's decay −η_bw α B: the engine's smallest deterministic decay (2^-7 of w per epoch, or 2^-16 per step "
    "with u9) is far above η_bw·dt·α, so the post neuron sets y1 = 32 with probability 128·η_bw·dt·α per step "
    "(16-bit threshold) and the tag rule's −y1·w − 2^-7·y1·t removes (w + t/128)/128 of a unit from the 16-bit "
    "weight w + t/128 then: the same mean decay, in rare steps",
    "a batch of patterns runs on copies of the network whose products of a step are summed into one accumulator "
    "per synapse of the shared weights and rounded once (the patterns are side by side, not one after another)",
    "mismatch (option mismatch): the initial weight registers per synapse, one emulator.mismatch instance per "
    "seed; the programmable neurons' digital ratios and tables have none",
)


def learn_chip(*, profile: str, task: str | None, seeds: int, epochs: int | None,
               progress: Callable[[int, int, dict[str, Any]], None] | None, **options: Any) -> Any:  # fmt: skip
    """The chip run, step for step the float run's schedule and data order, with the same history entries: the
    compiled network (``microcircuit_chip_net.chip_network``) in one stepped run loop; the host presents the
    patterns and scores."""
    from neurodeploy.emulator.stepped import SteppedRun
    from neurodeploy.rules.systems.microcircuit_chip_net import chip_network, present

    started = time.perf_counter()
    o: ChipOptions = base.make_options(ChipOptions, NAME, options)
    chip_profile = check_profile(profile)
    data: Task = get_task(task or "yinyang")
    if data.kind != "classification":
        raise NeurodeployError(f"the microcircuit classifies; task {data.name!r} is a regression", "task",
                               "use yinyang, digits or mnist1d")  # fmt: skip
    epochs = 30 if epochs is None else epochs
    sizes = [data.n_in, *o.hidden, data.n_out]
    rng = np.random.default_rng([o.seed_offset, 20180716])  # the float run's weights and data order
    n_train, batch = len(data.y_train), min(o.batch, len(data.y_train))
    net = ChipMicrocircuit(sizes, seeds, o, rng, chip_profile)
    run = SteppedRun(chip_network(net), (seeds, batch))
    targets = np.rint(np.where(np.eye(data.n_out, dtype=bool), o.target_high, o.target_low) * (1 << POT_BITS))
    targets = targets.astype(np.int64)
    x_train = to_rate(data.x_train)
    history: list[dict[str, Any]] = []
    for epoch in range(1, epochs + 1):
        order = np.stack([rng.permutation(n_train) for _ in range(seeds)])
        run.reset((seeds, batch))
        for start in range(0, n_train - batch + 1, batch):
            idx = order[:, start : start + batch]
            present(run, net, x_train[idx], targets[data.y_train[idx]], o.steps_per_pattern)
        entry = {"epoch": epoch, **score(net, run, data), "weight_angle": alignment(net)}
        history.append(entry)
        if progress is not None:
            progress(epoch, epochs, entry)
    chip = f"chip ({profile}, emulated; integer arithmetic throughout)"
    rules = {n: {"rule": p.text, "x1": "graded (set by the spike, no decay)", "t_epoch": 1, "weight_exp": -p.shift,
                 "third_factor_gain": f"{p.gain[0]}/2^{p.gain[1]}"}
             for n, p in net.plastic.items() if p.text}  # fmt: skip
    provenance = {
        "network": {"where": chip, "how": "compiled as a CoreNetwork (microcircuit_chip_net.chip_network: input p0, "
                    "pyramid programs p1…pL, interneuron programs i0…; engine projections W_up w0…, W_IP ip0…, "
                    "W_PI pi0…, B b0…; static one-to-one up0… carrying the upper soma's potential) and run by the "
                    "emulator's stepped run loop (emulator.stepped) with the learning engine inside"},
        "neurons": {"where": chip, "how": "pyramids (basal, apical, soma), output neurons and interneurons as Loihi 2 "
                    "programmable neurons: integer compartments, 16-bit sigmoid table, integer OU noise and "
                    "high-pass state"},
        "synapses": {"where": chip, "how": "W_up, B, W_IP, W_PI as 8-bit Dense projections with graded 16-bit rate "
                     "payloads"},
        "plasticity": {"where": f"{chip}: learning engine (three-factor rules, Lava's LearningDense fixed point)",
                       "how": "; ".join(f"{n}: {r['rule']}" for n, r in rules.items()) or "none"},
        "host_writes": {"where": "host", "how": "before each pattern: the target potential into the output "
                        "neurons' bias and the onset flag into the neurons with a high-pass state; for scoring: "
                        "noise and learning engine off (ChipMicrocircuit.training), no target"},
        "metrics": {"where": "host float64", "how": "argmax of the output potentials the chip reports; ∠(B, Wᵀ) from "
                    "the weight registers"},
    }  # fmt: skip
    result = base.system_result(NAME, "chip", profile, o, history, equations=EQUATIONS, provenance=provenance,
                                differences=DIFFERENCES, started=started,
                                extra_config={"task": data.name, "sizes": sizes})  # fmt: skip
    tags = {n: {"saturated": p.saturated, "updates": p.updates} for n, p in net.plastic.items() if p.carry}
    result.engine.update({"rules": rules, "tag_saturations": tags})
    return result


__all__ = ["DIFFERENCES", "TABLE", "ChipMicrocircuit", "ChipOptions", "learn_chip", "phi", "third_factor"]
