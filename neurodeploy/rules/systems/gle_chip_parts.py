"""GLE's integer neurons, synapses and engine rules (the loihi2 profile), used by ``gle_chip`` and ``gle_chip_net``.

Scales (every state an int64 array of a stated width, saturating):

- potentials u and prospective potentials ŭ, rates r and the Dense currents: units of 2^-16 (POT_BITS), 24 bits;
  rates travel as graded spikes whose signed payload is the rate itself;
- error neurons (e, v, ĕ): units of 2^-16 (ERR_BITS), 24 bits (|ĕ| < 128); ĕ travels as a graded spike;
- time-constant factors in 2^-12: k_m = round(4096·dt/τ_m), k_r = round(4096·τ_r/τ_m) for the representation
  neuron, k_v = round(4096·dt/τ_r'), k_q = round(4096·τ_m/τ_r') for the error neuron (τ_r' = max(τ_r, dt));
- weights: 8-bit registers with one exponent per projection, 9 bits signed once learned (the engine's range);
- the engine's pre trace x1 = 64 + p, p the rate in units of 2^-A (7 bits signed, A = 6 for tanh rates);
  the third factor y′ ∈ −8…7 (the post neuron's ĕ times a gain, rounded stochastically), y2 = 8·y′⁺, y3 = 8·y′⁻.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from neurodeploy.emulator.learning_rule import ACC_MAX, ACC_MIN
from neurodeploy.emulator.loihi import shift_by_exp
from neurodeploy.emulator.plasticity import LearningRule, TraceSpec, apply_accumulator
from neurodeploy.learning.metrics import angle
from neurodeploy.rules.systems.gle import GLENet
from neurodeploy.rules.systems.inversion_chip import shift_round
from neurodeploy.rules.systems.microcircuit_chip import (
    DECAY_Y1,
    fixed,
    high_pass_step,
    ou_step,
    ratio,
    third_factor,
    to_register,
    weight_shift,
)
from neurodeploy.rules.systems.microcircuit_chip import phi as sigmoid

POT_BITS = 16  # potentials, rates and currents in units of 2^-16
ERR_BITS = 16  # error neurons in units of 2^-16
STATE_MAX = (1 << 23) - 1  # 24-bit states and payloads saturate
TANH_STEP_BITS = POT_BITS - 7  # the tanh table steps every 1/128: the error neurons' look-ahead (up to
TABLE_HALF = 512  # τ_m/dt = 80 per layer) amplifies the kinks of a coarser table; entries −512…512: ŭ in [−4, 4]
HIDDEN_TRACE_BITS = 6  # tanh rates as 7-bit pre traces in units of 1/64
HP_TRACE_BITS = 6  # PAL: the high-passed rate r^HP as B's pre trace in units of 2^-HP_TRACE_BITS
Y_LOW, Y_HIGH = -8, 7  # y′ of a W with a transposed partner: 8·y′ fits the 7-bit x1 − 64 of B's rule
Y_MAX = 15  # y′ elsewhere: y2 = 8·y′ fits the 7-bit y trace
GRADED_OFFSET = 64
HEADROOM_W, HEADROOM_B = 1.25, 2.0  # the largest initial weight times this fits the 8-bit register (W grows: 9 bits)
ERR_MAX = 8.0  # the |ĕ| (float units) the W rules' gains are sized for; larger values saturate y′
# the lowest layer's ĕ is heavy-tailed (the error neurons of lagging units look ahead by τ_m/dt, and it
# receives the layer above's look-ahead too): on the lagged teacher 1 % of its values exceed 25 in the float
# reference's first 100 τ
ERR_MAX_BOTTOM = 32.0
# The tag t holds the weight's fraction in 1/128 of a register unit: the products of a step land in t, and a
# carry of ±1 moves into w once |t| reaches 128 (sgn(t − 127) + sgn(t + 128) is 2 for t ≥ 128, −2 for
# t ≤ −129, 0 strictly between, and ±1 at t = 127 or −128: half a carry, rounded stochastically); the
# carry's 128 leaves t in the same epoch. So w + t/128 is a 16-bit weight whose
# top 9 bits drive the Dense.
RULE_TAG = "2^{e}*y2*(x1-64)*x0 - 2^{e}*y3*(x1-64)*x0 - 2^6*x0*sgn(t-127) - 2^6*x0*sgn(t+128)"
RULE_CARRY = "2^-1*x0*sgn(t-127) + 2^-1*x0*sgn(t+128)"
PAL_DECAY = " - y1*w*x0"  # into t: y1 = 32 removes w/128 of a register unit
# Where a step's change can exceed a register unit (large η·dt or batches, e.g. the static tasks' η = 0.2,
# dt = 0.5, batch 16), the tag could not carry it: the products go straight into w, stochastically rounded.
RULE_DIRECT = "2^{e}*y2*(x1-64)*x0 - 2^{e}*y3*(x1-64)*x0"
PAL_DECAY_DIRECT = " - 2^-7*y1*w*x0"  # y1 = 32 removes w/128
# y′·p·2^e ≤ 7·64/4 = 112 per step keeps t within the engine's [−257, 255]; where y′ reaches 15 (240 per
# step) t clips at its range in the rare steps that add more than 128 to a nearly full tag
TAG_EXP_MAX = -2


def tanh_table() -> np.ndarray:
    """tanh(ŭ)·2^16 at ŭ = i/128, i = −512…512."""
    u = np.arange(-TABLE_HALF, TABLE_HALF + 1) / (1 << (POT_BITS - TANH_STEP_BITS))
    return np.rint(np.tanh(u) * (1 << POT_BITS)).astype(np.int64)


TANH = tanh_table()


def tanh_lookup(u: np.ndarray) -> np.ndarray:
    """Rate of an integer prospective potential: the table entry plus (Δ·low 9 bits) >> 9; ŭ clips at ±4."""
    top = TABLE_HALF << TANH_STEP_BITS
    u = np.clip(np.asarray(u, dtype=np.int64), -top, top - 1) + top
    i, frac = u >> TANH_STEP_BITS, u & ((1 << TANH_STEP_BITS) - 1)
    return TANH[i] + (((TANH[i + 1] - TANH[i]) * frac) >> TANH_STEP_BITS)


def tanh_slope(r: np.ndarray) -> np.ndarray:
    """φ′ = 1 − r² from the neuron's own rate, in 2^-16: 2^16 − (r² + 2^15) >> 16."""
    r = np.asarray(r, dtype=np.int64)
    return (1 << POT_BITS) - ((r * r + (1 << (POT_BITS - 1))) >> POT_BITS)


def representation_step(u: np.ndarray, current: np.ndarray, k_m: np.ndarray, k_r: np.ndarray
                        ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """τ_m u̇ = I − u, ŭ = u + τ_r u̇: d = I − u; ŭ = u + (k_r·d) >> 12, u ← u + (k_m·d) >> 12 (rounded half up).
    Returns (new u, ŭ); ŭ uses u before the step, as the float Euler step does."""
    d = np.asarray(current, dtype=np.int64) - u
    u_breve = np.clip(u + shift_round(k_r * d, 12), -STATE_MAX, STATE_MAX)
    return np.clip(u + shift_round(k_m * d, 12), -STATE_MAX, STATE_MAX), u_breve


def error_step(v: np.ndarray, e: np.ndarray, k_v: np.ndarray, k_q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """τ_r v̇ = e − v, ĕ = v + τ_m v̇: d = e − v; ĕ = v + (k_q·d) >> 12, v ← v + (k_v·d) >> 12. Returns (v, ĕ)."""
    d = np.asarray(e, dtype=np.int64) - v
    e_breve = np.clip(v + shift_round(k_q * d, 12), -STATE_MAX, STATE_MAX)
    return np.clip(v + shift_round(k_v * d, 12), -STATE_MAX, STATE_MAX), e_breve


def drive(current: np.ndarray, err: np.ndarray | None, gamma: tuple[int, int] | None) -> np.ndarray:
    """The representation neuron's input: W's current, plus γ·ĕ of its error neuron (last step's) if γ > 0."""
    if gamma is None or err is None:
        return current
    return current + shift_round(err * gamma[0], gamma[1] + ERR_BITS - POT_BITS)


def representation_layer(u: np.ndarray, current: np.ndarray, f: dict[str, np.ndarray], last: bool,
                         xi: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:  # fmt: skip
    """One layer's representation neurons: (new u, rate r, slope φ′). The linear output's rate is ŭ; a hidden
    neuron's is tanh(ŭ + ξ) from the table (ξ: PAL's OU noise, None without), φ′ from that rate."""
    u, u_breve = representation_step(u, current, f["k_m"], f["k_r"])
    if last:
        return u, u_breve, None
    if xi is not None:
        u_breve = u_breve + xi
    r = tanh_lookup(u_breve)
    return u, r, tanh_slope(r)


def output_error(target: np.ndarray, r_out: np.ndarray, beta: tuple[int, int], classify: bool) -> np.ndarray:
    """e_L = β (y* − r_L) in 2^-16; with ``classify`` β (y* − σ(r_L)), σ from microcircuit_chip's 16-bit table
    (read with r_L in 2^-12)."""
    if classify:
        sigma = sigmoid(shift_round(r_out, POT_BITS - 12))
        d = (np.asarray(target, np.int64) << (ERR_BITS - POT_BITS)) - sigma
        return shift_round(d * beta[0], beta[1])
    d = np.asarray(target, np.int64) - r_out
    return shift_round(d * beta[0], beta[1] - (ERR_BITS - POT_BITS))


def hidden_error(slope: np.ndarray, feedback: np.ndarray) -> np.ndarray:
    """e = φ′ ⊙ (B ĕ_above) in 2^-16."""
    return shift_round(slope * feedback, POT_BITS)


def error_layer(v: np.ndarray, e: np.ndarray, f: dict[str, np.ndarray], prospective: bool
                ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """One layer's error neurons from their input e (clipped to 24 bits): (v, ĕ); ĕ = e without the dynamics."""
    e = np.clip(e, -STATE_MAX, STATE_MAX)
    if prospective:
        return error_step(v, e, f["k_v"], f["k_q"])
    return v, e


def with_bias(r: np.ndarray) -> np.ndarray:
    """Rates and the bias neuron's payload 1.0 (2^-16) after them: what a layer sends on to the next W."""
    return np.concatenate([r, np.full((*r.shape[:-1], 1), 1 << POT_BITS, np.int64)], -1)


def random_bits(draws: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A neuron's random bits for the stochastic rounding of its third factor."""
    return draws.integers(0, 1 << 62, shape, dtype=np.int64)


def factors(tau_m: np.ndarray, tau_r: np.ndarray, dt: float) -> dict[str, np.ndarray]:
    """The neurons' integer time-constant factors in 2^-12 (the error neuron's τ_r' = max(τ_r, dt))."""
    tau_re = np.maximum(tau_r, dt)
    out = {"k_m": dt / tau_m, "k_r": tau_r / tau_m, "k_v": dt / tau_re, "k_q": tau_m / tau_re}
    return {k: np.rint(np.asarray(v, float) * (1 << 12)).astype(np.int64) for k, v in out.items()}


def rate_trace(r: np.ndarray, bits: int) -> np.ndarray:
    """A rate (2^-16) as the engine's signed 7-bit pre value p (units 2^-bits), rounded half up, −64…63."""
    return np.clip(shift_round(r, POT_BITS - bits), -GRADED_OFFSET, GRADED_OFFSET - 1)


def signed_y(y: np.ndarray) -> dict[str, np.ndarray]:
    """A signed y′ as the engine's non-negative third factors y2 = 8·y′⁺, y3 = 8·y′⁻."""
    return {"y2": 8 * np.maximum(y, 0), "y3": 8 * np.maximum(-y, 0)}


def engine_change(rule: LearningRule, weights: np.ndarray, tag: np.ndarray, x1: np.ndarray, y: dict[str, np.ndarray]
                  ) -> dict[str, np.ndarray]:  # fmt: skip
    """One engine epoch (t_epoch = 1) of every copy of the batch: per target (dw, dt) the copies' products
    summed into one accumulator per synapse (2^-7 units, clipped as the engine's), from the values before
    the epoch. x1 (S, N, pre), y[k] (S, N, post); weights and tag (S, post, pre)."""
    ops: dict[str, Any] = {"x0": np.int64(1), "w": weights[:, None], "x1": x1[..., None, :],
                           "t": np.int64(0) if tag is None else tag[:, None]}  # fmt: skip
    ops.update({k: v[..., :, None] for k, v in y.items()})
    ops.update({k: np.int64(0) for k in ("y1", "y2", "y3") if k not in ops})
    copies = x1.shape[1]
    idle = {**ops, "y1": np.int64(0), "y2": np.int64(0), "y3": np.int64(0)}
    out = {}
    for k, series in rule.series.items():
        full = np.asarray(series.accumulate(ops))
        acc = full.sum(1)
        if copies > 1 and full.shape[1] == copies:
            # summed over the copies, a term without a post factor (the tag's carry) would act once per copy:
            # it acts once per synapse
            once = np.broadcast_to(np.asarray(series.accumulate(idle)), full.shape)[:, 0]
            acc = acc - (copies - 1) * once
        out[k] = np.clip(acc, ACC_MIN, ACC_MAX)
    return out


def engine_exponent(y_per_unit_at_min: float, value_max: float, y_max: int = Y_HIGH) -> int:
    """The smallest exponent e ≥ −7 that keeps y′ within ±y_max for the largest expected value."""
    need = y_per_unit_at_min * value_max / y_max
    return int(min(8, max(-7, -7 + math.ceil(math.log2(need)) if need > 1 else -7)))


@dataclass
class Projection:
    """One 8-bit Dense with an exponent (W = w·2^-shift), and its engine rule and third-factor gain."""

    name: str
    weights: np.ndarray  # (S, n_post, n_pre) int64
    shift: int
    rule: LearningRule | None = None
    gain: tuple[int, int] = (0, 1)  # y′ per unit of the post neuron's integer value: m / 2^s
    exponent: int = -7
    y_range: tuple[int, int] = (Y_LOW, Y_HIGH)
    tag: np.ndarray | None = None  # the engine's tag t: the weight's fraction in 1/128 of a register unit

    def __post_init__(self) -> None:
        if self.rule is not None and self.rule.dt is not None and self.tag is None:
            self.tag = np.zeros_like(self.weights)

    def pending(self) -> bool:
        """Whether a carry is due (|t| ≥ 127): the engine must run even where every product is 0."""
        return self.tag is not None and bool((np.abs(self.tag) >= 127).any())

    def learn(self, change: dict[str, np.ndarray], uniform: np.ndarray) -> None:
        """The engine's update of w and t from their accumulators, stochastically rounded with ``uniform``."""
        self.weights = apply_accumulator(self.weights, change["dw"], uniform, "weight")
        if "dt" in change:
            self.tag = apply_accumulator(self.tag, change["dt"], uniform, "tag")

    def dense(self, payload: np.ndarray) -> np.ndarray:
        """Σ_j w_ij·payload_j shifted by the exponent (floor, as Lava's Dense): the payload's own units."""
        acc = np.matmul(payload.astype(np.float64), np.swapaxes(self.weights, -1, -2).astype(np.float64))
        return shift_by_exp(acc.astype(np.int64), -self.shift)  # exact: |Σ| < 2^53

    def as_float(self) -> np.ndarray:
        return self.weights * 2.0**-self.shift

    @property
    def text(self) -> str:
        if self.rule is None:
            return ""
        return f"dw = {self.rule.dw}" if self.rule.dt is None else f"dt = {self.rule.dt}; dw = {self.rule.dw}"


def plastic(name: str, weights: np.ndarray, shift: int, per_unit: float, value_max: float, value_bits: int,
            pre_bits: int, decay: bool = False, y_range: tuple[int, int] = (Y_LOW, Y_HIGH), copies: int = 1,
            typical: float = ERR_MAX) -> Projection:  # fmt: skip
    """A projection whose engine change is y′·p·2^e tag units (1/128 of a register unit), with y′ = value·gain:
    ``per_unit`` is the float change of W per unit of (post value × pre rate), ``value_bits`` the post value's
    fractional bits, ``pre_bits`` those of the pre trace p. Where ``copies`` (a batch) times a step's change at
    a post value of ``typical`` and the largest pre value could exceed one register unit, the products go
    into w directly (RULE_DIRECT, weight units)."""
    per_unit_w = per_unit * 2.0**shift / 2.0**pre_bits  # register units per (float value · p)
    direct = copies * per_unit_w * min(typical, value_max) * GRADED_OFFSET > 1
    per_unit_t = per_unit_w if direct else per_unit_w * 128  # in the units of the rule's target
    e = engine_exponent(per_unit_t * 128, value_max, y_range[1])
    if direct:
        rule = {"dw": RULE_DIRECT.format(e=e) + (PAL_DECAY_DIRECT if decay else "")}
    else:
        e = min(TAG_EXP_MAX, e)
        rule = {"dw": RULE_CARRY, "dt": RULE_TAG.format(e=e) + (PAL_DECAY if decay else "")}
    gain = per_unit_t / 2.0**e / 2.0**value_bits
    spec = LearningRule(**rule, x1=TraceSpec(0.0, math.inf), t_epoch=1, three_factor=True)
    return Projection(name, weights, shift, spec, fixed(gain, 24), e, y_range)


def y_prime(value: np.ndarray, proj: Projection, bits: np.ndarray) -> np.ndarray:
    """The post neuron's third factor y′ (microcircuit_chip.third_factor), clipped to the projection's range:
    −8…7 where a transposed B shares the products, −15…15 elsewhere."""
    return np.clip(third_factor(value, proj.gain, bits), *proj.y_range)


def mismatched(registers: dict[str, np.ndarray], opts: Any, profile: Any) -> dict[str, np.ndarray]:
    """Per seed one chip instance of ``emulator.mismatch`` (weights per synapse), rounded to the registers."""
    if opts.mismatch == 0:
        return registers
    from neurodeploy.emulator import mismatch
    from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection

    seeds = next(iter(registers.values())).shape[0]
    out: dict[str, list[np.ndarray]] = {n: [] for n in registers}
    for s in range(seeds):
        projs = [CoreProjection(n, "p0", "p0", w[s]) for n, w in registers.items()]  # only the weights vary
        core = CoreNetwork([CorePopulation("p0", 1, "input")], projs, ["p0"], ["p0"], numerics="loihi")
        core = mismatch.sample(core, profile, instances=1, seed=int(opts.seed), sigma={"weight": opts.mismatch},
                               first=s)  # fmt: skip
        for pr in core.projections:
            out[pr.name].append(np.asarray(pr.weight, dtype=np.int64).reshape(registers[pr.name].shape[1:]))
    return {n: np.stack(v) for n, v in out.items()}


def swap(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.swapaxes(a, -1, -2))


class ChipGLE:
    """The integer network for S seeds: its registers, engine rules, factors and random generator, which
    ``gle_chip_net.chip_network`` compiles; ``forward``/``backward`` step its layers by hand (state per
    (seed, sequence): arrays (S, N, n)) with the same layer steps the compiled neurons run.

    ``W[ℓ]`` is (S, n_ℓ, n_{ℓ−1} + 1), its last column the bias synapse from a bias neuron of payload 1.0;
    ``B[k]`` (k ≥ 1) carries ĕ of layer k down to layer k − 1: (S, n_{k−1}, n_k), i.e. B = Wᵀ's shape.
    """

    def __init__(self, ref: GLENet, opts: Any, lr: float, batch: int, in_bits: int, profile: Any) -> None:
        self.o, self.L, self.sizes, self.seeds = opts, ref.n_layers, ref.sizes, len(ref.rngs)
        self.dt = ref.dt
        self.f = [factors(tm, tr, ref.dt) for tm, tr in zip(ref.tau_m, ref.tau_r, strict=True)]
        self.pre_bits = [in_bits] + [HIDDEN_TRACE_BITS] * (self.L - 1)
        floats = {f"W{k}": np.concatenate([w, b[..., None]], -1)
                  for k, (w, b) in enumerate(zip(ref.weights, ref.biases, strict=True))}  # fmt: skip
        shifts = {n: weight_shift(w, HEADROOM_W) for n, w in floats.items()}
        registers = {n: to_register(w, shifts[n]) for n, w in floats.items()}
        for k in range(1, self.L):
            if opts.feedback == "transpose":  # the same register, transposed (the bias column has no partner)
                shifts[f"B{k}"], registers[f"B{k}"] = shifts[f"W{k}"], swap(registers[f"W{k}"][..., :-1])
            else:
                fb = swap(ref.feedback_w[k])
                shifts[f"B{k}"] = weight_shift(fb, HEADROOM_B)
                registers[f"B{k}"] = to_register(fb, shifts[f"B{k}"])
        registers = mismatched(registers, opts, profile)
        self.draws = np.random.default_rng([int(opts.seed), 20240326])
        self.W: list[Projection] = []
        for k in range(self.L):
            name = f"W{k}"
            if opts.learning:
                shared = opts.feedback == "transpose" and k >= 1  # B_k = W_kᵀ shares the products
                self.W.append(plastic(name, registers[name], shifts[name], lr * self.dt / batch,
                                      ERR_MAX_BOTTOM if k == 0 else ERR_MAX, ERR_BITS, self.pre_bits[k],
                                      y_range=(Y_LOW, Y_HIGH) if shared else (-Y_MAX, Y_MAX),
                                      copies=batch))  # fmt: skip
            else:
                self.W.append(Projection(name, registers[name], shifts[name]))
        pal = ref.pal
        self.B: dict[int, Projection] = {}
        self.decay_threshold = 0
        for k in range(1, self.L):
            name = f"B{k}"
            if opts.feedback == "transpose":
                self.B[k] = Projection(name, registers[name], shifts[name], self.W[k].rule)
            elif opts.feedback == "pal":
                self.decay_threshold = int(round(128 * pal["lr"] * self.dt * pal["alpha"] * (1 << 16)))
                self.B[k] = plastic(name, registers[name], shifts[name], pal["lr"] * self.dt / batch,
                                    4 * pal["sigma"], POT_BITS, HP_TRACE_BITS, decay=self.decay_threshold > 0,
                                    y_range=(-Y_MAX, Y_MAX), copies=batch)  # fmt: skip
            else:
                self.B[k] = Projection(name, registers[name], shifts[name])
        if opts.feedback == "pal":
            self.ou_decay, self.hp_decay = ratio(self.dt / pal["tau_xi"]), ratio(self.dt / pal["tau_hp"])
            # the Gaussian kick σ √(dt/τ_ξ) in 2^-16 per standard deviation of Σ₄ U8 (√(4·(256²−1)/12))
            self.ou_gain = fixed(pal["sigma"] * math.sqrt(self.dt / pal["tau_xi"]) * (1 << POT_BITS)
                                 / math.sqrt((256**2 - 1) / 3))  # fmt: skip
        self.beta, self.gamma = fixed(opts.beta), fixed(opts.gamma) if opts.gamma else None
        self.reset(1)

    # ------------------------------------------------------------------ by hand
    def reset(self, batch: int) -> None:
        """Every neuron at rest for ``batch`` sequences per seed (the by-hand steps below)."""
        shape = [(self.seeds, batch, n) for n in self.sizes[1:]]
        self.u = [np.zeros(s, np.int64) for s in shape]
        self.v = [np.zeros(s, np.int64) for s in shape]
        self.err = [np.zeros(s, np.int64) for s in shape]
        self.rates: list[np.ndarray] = []
        self.slopes: list[np.ndarray | None] = []

    def forward(self, x: np.ndarray) -> np.ndarray:
        """One step bottom-up by hand (no noise); x (S or 1, N, n_in) in 2^-16. Returns r_L (2^-16). The runs
        use the same layer steps inside the compiled network (``gle_chip_net``)."""
        r = np.broadcast_to(x, (self.seeds, *x.shape[1:]))
        self.rates, self.slopes = [r], []
        for k in range(self.L):
            current = drive(self.W[k].dense(with_bias(r)), self.err[k], self.gamma)
            self.u[k], r, slope = representation_layer(self.u[k], current, self.f[k], k == self.L - 1, None)
            self.slopes.append(slope)
            self.rates.append(r)
        return r

    def backward(self, target: np.ndarray, classify: bool = False) -> None:
        """One step top-down by hand from the target payload (2^-16): e_L = β (y* − r_L) (with ``classify``,
        β (y* − σ(r_L))), then the error neurons, each fed by the one above through B."""
        for k in reversed(range(self.L)):
            if k == self.L - 1:
                e = output_error(target, self.rates[-1], self.beta, classify)
            else:
                e = hidden_error(self.slopes[k], self.B[k + 1].dense(self.err[k + 1]))
            self.v[k], self.err[k] = error_layer(self.v[k], e, self.f[k], self.o.error_dynamics == "prospective")

    # ------------------------------------------------------------------ host reads
    def weight_angles(self) -> dict[str, list[float]]:
        """∠(B_k, W_kᵀ) per learned or fixed feedback and seed, in degrees (none for ``transpose``), from the
        registers; named as the float reference names them."""
        if self.o.feedback == "transpose":
            return {}
        return {f"B{k + 1}": angle(b.as_float(), swap(self.W[k].as_float()[..., :-1])).tolist()
                for k, b in self.B.items()}  # fmt: skip

    def transpose_gap(self) -> float:
        """max |B − Wᵀ| in register units, the tag's fraction included (0 while the transposed rule keeps B equal
        to Wᵀ, without mismatch)."""
        if self.o.feedback != "transpose":
            return 0.0

        def fine(p: Projection) -> np.ndarray:
            return p.weights + (0 if p.tag is None else p.tag / 128.0)

        return max(float(np.abs(fine(b) - swap(fine(self.W[k])[..., :-1])).max()) for k, b in self.B.items())

    def saturation(self) -> int:
        """Weight registers at the engine's clip, all projections and seeds."""
        return sum(int(((p.weights <= -256) | (p.weights >= 255)).sum()) for p in [*self.W, *self.B.values()])


__all__ = [
    "ChipGLE",
    "DECAY_Y1",
    "ERR_BITS",
    "GRADED_OFFSET",
    "HEADROOM_B",
    "HEADROOM_W",
    "HIDDEN_TRACE_BITS",
    "POT_BITS",
    "STATE_MAX",
    "TANH",
    "Projection",
    "apply_accumulator",
    "drive",
    "engine_change",
    "error_layer",
    "error_step",
    "factors",
    "fixed",
    "hidden_error",
    "high_pass_step",
    "mismatched",
    "ou_step",
    "output_error",
    "plastic",
    "random_bits",
    "rate_trace",
    "ratio",
    "representation_layer",
    "representation_step",
    "signed_y",
    "swap",
    "tanh_lookup",
    "tanh_slope",
    "to_register",
    "weight_shift",
    "with_bias",
    "y_prime",
]
