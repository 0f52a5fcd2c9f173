"""Loihi learning engine: 7-bit traces, stochastic rounding and learning epochs, as Lava 0.10 models them.

The reference is Lava's ``PyLearningDenseModelBitApproximate`` (``lava/magma/core/model/py/connection.py``;
facts: loihi-fixed-point.md §8.3). ``PlasticDense`` follows its order of operations step by step and, in
the default ``draws="lava"`` mode, its random-number streams too: Lava seeds numpy generators with
``rng_seed`` … ``rng_seed + 3`` for the traces and with the fixed seed 2 for the synaptic rounding, and
re-creating them and drawing in the same order reproduces its numbers exactly (tests/test_plasticity_lava.py).
``draws="hardware"`` keeps the structure but draws independently per trace and per synapse, with unbiased
impulse rounding, as the chip's per-synapse rounding does.

All state is int64 with the synapse axes last: weights ``(..., n_post, n_pre)``, pre traces
``(..., n_pre)``, post traces ``(..., n_post)``; leading axes are batch / chip-instance axes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from neurodeploy.emulator.learning_rule import FRACTION_BITS, ProductSeries, RuleError, parse_rule, u_dependency
from neurodeploy.emulator.loihi import shift_by_exp
from neurodeploy.errors import NeurodeployError

TRACE_MAX = 127  # 7-bit traces
IMPULSE_FRACTION_BITS = 8  # an impulse is stored as integer part + 8-bit fraction
T_EPOCH_MAX = 63  # 6-bit epoch counter on the chip (Lava itself only checks t_epoch > 0)
THIRD_FACTOR_TAU = 65535  # Loihi3FLearningRule: post traces come from the neuron; Lava still decays them
LAVA_ROUNDING_SEED = 2  # Lava's ConnVarRandom() default: the synaptic rounding ignores rng_seed
TAG_RANGE = (-257, 255)  # Lava's clip of tag_1: [-(2^8) - 1, 2^8 - 1]
DELAY_RANGE = (0, 255)
Y_TRACES = ("y1", "y2", "y3")
X_TRACES = ("x1", "x2")

Kind = Literal["weight", "delay", "tag"]
SignMode = Literal["mixed", "excitatory", "inhibitory"]
DrawMode = Literal["lava", "hardware"]
_VAR = {"dw": ("weights", "weight", "w"), "dd": ("tag_2", "delay", "d"), "dt": ("tag_1", "tag", "t")}


@dataclass(frozen=True)
class TraceSpec:
    """Impulse added per spike (integer + 8-bit fraction) and decay time constant in steps.

    As in Lava's fixed-point model, ``tau = 0`` zeroes the trace at every step of the epoch replay (the
    trace then holds only an impulse of that very step), it does not mean "no decay"; ``tau = inf`` is
    exact no-decay (an extension: Lava's integer Var cannot hold it).
    """

    impulse: float = 0.0
    tau: float = 0.0

    def __post_init__(self) -> None:
        if not (self.impulse >= 0 and self.tau >= 0):
            raise NeurodeployError(
                f"trace impulse and tau must be >= 0, got impulse={self.impulse}, tau={self.tau}",
                where="TraceSpec",
                hint="Lava rejects negative values too",
            )

    @property
    def impulse_int(self) -> int:
        return int(np.floor(self.impulse))

    @property
    def impulse_frac(self) -> int:
        """Fraction of the impulse in 1/256 (Lava: round((imp − ⌊imp⌋)·2^8), half to even)."""
        return int(np.round((self.impulse - np.floor(self.impulse)) * 2**IMPULSE_FRACTION_BITS))

    @property
    def decay(self) -> float:
        """Per-step factor e^(−1/τ), computed with numpy on an array exactly as Lava does (0 for τ = 0)."""
        if self.tau == 0:
            return 0.0
        return float(np.exp(-1 / np.array([self.tau], dtype=np.float64))[0])


def decay_trace(x: np.ndarray, spec: TraceSpec, uniform: float | np.ndarray) -> np.ndarray:
    """One step of decay: ⌊e^(−1/τ)·x⌋ + [uniform < fractional part]; τ = 0 gives 0 (Lava's replay)."""
    x = np.asarray(x, dtype=np.int64)
    if spec.tau == 0:
        return np.zeros_like(x)
    if np.isinf(spec.tau):
        return x.copy()
    v = spec.decay * x
    return np.floor(v).astype(np.int64) + (uniform < v % 1)


def add_impulse(x: np.ndarray, where: np.ndarray, spec: TraceSpec, draw: int | np.ndarray) -> np.ndarray:
    """Where ``where``: x + ⌊imp⌋ + [draw < frac·256], clipped to [0, 127]; elsewhere x unchanged.

    ``draw`` is an integer: Lava draws it in 0…127 (so fractions ≥ 1/2 always round up, and the
    probability is twice the fraction below that); uniform in 0…255 gives unbiased rounding.
    """
    x = np.asarray(x, dtype=np.int64)
    new = np.clip(x + spec.impulse_int + (draw < spec.impulse_frac), 0, TRACE_MAX)
    return np.where(where, new, x)


def trace_step(
    x: np.ndarray,
    spikes: np.ndarray,
    spec: TraceSpec,
    draws: np.random.Generator | tuple[float | np.ndarray, int | np.ndarray],
    mode: DrawMode = "lava",
) -> np.ndarray:
    """One trace step: stochastic decay, then an impulse where ``spikes``; vectorised over any axes.

    ``draws`` is a Generator or the pair (decay uniform in [0, 1), impulse integer). With a Generator,
    ``mode="lava"`` draws one decay uniform and one impulse integer in 0…127 shared by every trace of the
    call (Lava's replay shares one draw per side and step, and its 7-bit impulse draw biases fractions
    upwards); ``mode="hardware"`` draws independently per trace, the impulse integer in 0…255 (unbiased).
    """
    x = np.asarray(x, dtype=np.int64)
    if isinstance(draws, np.random.Generator):
        if mode == "lava":
            d, r = draws.random(), int(draws.integers(0, TRACE_MAX + 1))
        elif mode == "hardware":
            d, r = draws.random(x.shape), draws.integers(0, 2**IMPULSE_FRACTION_BITS, x.shape)
        else:
            raise ValueError(f"mode must be 'lava' or 'hardware', got {mode!r}")
    else:
        d, r = draws
    return add_impulse(decay_trace(x, spec, d), np.asarray(spikes, dtype=bool), spec, r)


def round_accumulator(acc: np.ndarray, uniform: float | np.ndarray) -> np.ndarray:
    """Stochastic rounding of an accumulator in 2^-7 units to whole units: ⌊acc/128⌋ + [u < frac].

    ``uniform``: a scalar is Lava's one draw for every synapse; an array (broadcast against ``acc``)
    gives per-synapse draws. Two synapse arrays given the same draws round identical accumulators
    identically: for Kolen-Pollack, round W's update with ``u`` and Bᵀ's with ``u.swapaxes(-1, -2)``
    (B has the transposed shape), and W − Bᵀ keeps no rounding noise.
    """
    acc = np.asarray(acc, dtype=np.int64)
    frac = (acc & ((1 << FRACTION_BITS) - 1)) / float(1 << FRACTION_BITS)  # exactly Lava's (acc / 128) % 1
    return (acc >> FRACTION_BITS) + (np.asarray(uniform) < frac)


def variable_range(kind: Kind, sign_mode: SignMode = "mixed", weight_bits: int = 8) -> tuple[int, int]:
    """Lava's clamp after learning: weights as clip_weights(num_bits) (mixed [−2^b, 2^b − 1], excitatory
    [0, 2^b − 1], inhibitory [−(2^b − 1), 0]; b = 8 in Lava), delay (tag_2) [0, 255], tag (tag_1) [−257, 255]."""
    if kind == "weight":
        top = (1 << weight_bits) - 1
        ranges = {"mixed": (-(1 << weight_bits), top), "excitatory": (0, top), "inhibitory": (-top, 0)}
        if sign_mode not in ranges:
            raise ValueError(f"sign_mode must be mixed, excitatory or inhibitory, got {sign_mode!r}")
        return ranges[sign_mode]
    if kind == "delay":
        return DELAY_RANGE
    if kind == "tag":
        return TAG_RANGE
    raise ValueError(f"kind must be weight, delay or tag, got {kind!r}")


def clip_variable(z: np.ndarray, kind: Kind, sign_mode: SignMode = "mixed", weight_bits: int = 8) -> np.ndarray:
    """Clamp a learned variable to its range (the sign clamp of excitatory/inhibitory weights included)."""
    lo, hi = variable_range(kind, sign_mode, weight_bits)
    return np.clip(np.asarray(z, dtype=np.int64), lo, hi)


def apply_accumulator(
    z: np.ndarray,
    acc: np.ndarray,
    uniform: float | np.ndarray,
    kind: Kind,
    sign_mode: SignMode = "mixed",
    weight_bits: int = 8,
) -> np.ndarray:
    """New value of ``z`` given its change ``acc`` (2^-7 units, ``ProductSeries.accumulate``), in Lava's order.

    A = z·2^7 + acc; sign clamp on A (excitatory ≥ 0, inhibitory ≤ 0, delay ≥ 0); stochastic rounding
    with ``uniform`` (see ``round_accumulator``); clamp to the variable's range.
    """
    a = (np.asarray(z, dtype=np.int64) << FRACTION_BITS) + np.asarray(acc, dtype=np.int64)
    if kind == "delay" or (kind == "weight" and sign_mode == "excitatory"):
        a = np.maximum(a, 0)
    elif kind == "weight" and sign_mode == "inhibitory":
        a = np.minimum(a, 0)
    return clip_variable(round_accumulator(a, uniform), kind, sign_mode, weight_bits)


@dataclass(frozen=True)
class LearningRule:
    """Rules for weight (dw), delay/tag_2 (dd) and tag/tag_1 (dt), trace settings, epoch length, seed.

    ``three_factor=True`` is Lava's Loihi3FLearningRule: y1…y3 are graded values supplied by the post
    neuron each step (``PlasticDense.step(third_factor=...)``, missing ones are 0 as Lava's unconnected
    ports); their TraceSpecs must stay default and become impulse 0, τ = 65535 as in Lava.
    """

    dw: str | None = None
    dd: str | None = None
    dt: str | None = None
    x1: TraceSpec = TraceSpec()
    x2: TraceSpec = TraceSpec()
    y1: TraceSpec = TraceSpec()
    y2: TraceSpec = TraceSpec()
    y3: TraceSpec = TraceSpec()
    t_epoch: int = 1
    rng_seed: int = 0
    three_factor: bool = False
    series: dict[str, ProductSeries] = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        rules = {k: getattr(self, k) for k in ("dw", "dd", "dt") if getattr(self, k) is not None}
        if not rules:
            raise RuleError("no learning rule given", where="LearningRule", hint="give at least one of dw, dd, dt")
        if not 1 <= int(self.t_epoch) <= T_EPOCH_MAX:
            raise NeurodeployError(
                f"t_epoch must be 1...{T_EPOCH_MAX}, got {self.t_epoch}",
                where="LearningRule",
                hint="the chip counts epoch time in 6 bits",
            )
        series = {k: parse_rule(v, k) for k, v in rules.items()}
        ks = {s.decimate_exponent for s in series.values()} - {None}
        if len(ks) > 1:
            raise RuleError(f"uK with different K across dw/dd/dt: {sorted(ks)}", where="LearningRule")
        if self.three_factor:
            if any(getattr(self, y) != TraceSpec() for y in Y_TRACES):
                raise NeurodeployError(
                    "a three-factor rule takes y1...y3 from the post neuron; leave their TraceSpecs default",
                    where="LearningRule",
                )
            for y in Y_TRACES:
                object.__setattr__(self, y, TraceSpec(0.0, THIRD_FACTOR_TAU))
        object.__setattr__(self, "series", series)

    @property
    def decimate_exponent(self) -> int | None:
        ks = {s.decimate_exponent for s in self.series.values()} - {None}
        return ks.pop() if ks else None


class _LavaStreams:
    """Lava's generators (TraceRandom ×2, ConnVarRandom), constructed and advanced in its order."""

    def __init__(self, seed: int) -> None:
        self._gens = [np.random.default_rng(seed + i) for i in range(4)]  # x decay, x impulse, y decay, y impulse
        self._conn = np.random.default_rng(LAVA_ROUNDING_SEED)
        self.advance_traces()
        self.advance_rounding()

    def advance_traces(self) -> None:
        xd, xi, yd, yi = self._gens
        self.x = (xd.random(1)[0], int(xi.integers(0, 2**7, size=1, dtype=int)[0]))
        self.y = (yd.random(1)[0], int(yi.integers(0, 2**7, size=1, dtype=int)[0]))

    def advance_rounding(self) -> None:
        self.rounding = self._conn.random(1)[0]


class PlasticDense:
    """A plastic dense projection with Loihi learning epochs (Lava's LearningDense, fixed point).

    Per step call ``forward(pre)`` (input current from the weights as they stand) and then
    ``step(pre, post)``. Lava's Dense delivers ``forward``'s result one step later; that latency, and
    the post neurons, are the caller's business. At the end of each epoch (``time_step % t_epoch == 0``,
    1-based steps) the rules are applied: x0/y0 = spiked in the epoch; traces are replayed step by step
    over the epoch and a product's trace operand is taken at the pre spike (x0 products), the post
    spike (y0) or the epoch end (uK); w, d, t are the values before the epoch's update; all targets
    update together. The initial weights are truncated to ``num_weight_bits`` once (no clip), like
    Lava's LearningDense; learned weights are not re-truncated.
    """

    def __init__(
        self,
        weights: np.ndarray,
        rule: LearningRule,
        *,
        weight_exp: int = 0,
        num_weight_bits: int = 8,
        sign_mode: SignMode = "mixed",
        tag_1: np.ndarray | None = None,
        tag_2: np.ndarray | None = None,
        batch_shape: tuple[int, ...] = (),
        draws: DrawMode = "lava",
        weight_bits: int = 8,
    ) -> None:
        w = np.asarray(weights, dtype=np.int64)
        if w.ndim < 2:
            raise ValueError(f"weights must be (..., n_post, n_pre), got shape {w.shape}")
        if draws not in ("lava", "hardware"):
            raise ValueError(f"draws must be 'lava' or 'hardware', got {draws!r}")
        variable_range("weight", sign_mode)  # validates sign_mode
        self.rule, self.draws, self.sign_mode = rule, draws, sign_mode
        self.weight_exp, self.weight_bits = int(weight_exp), int(weight_bits)
        self.n_post, self.n_pre = w.shape[-2:]
        self.batch_shape = tuple(np.broadcast_shapes(tuple(batch_shape), w.shape[:-2]))
        full = (*self.batch_shape, self.n_post, self.n_pre)
        self.weights = np.broadcast_to(_truncate(w, num_weight_bits, sign_mode), full).copy()
        self.tag_1 = np.broadcast_to(np.asarray(0 if tag_1 is None else tag_1, dtype=np.int64), full).copy()
        self.tag_2 = np.broadcast_to(np.asarray(0 if tag_2 is None else tag_2, dtype=np.int64), full).copy()
        self.traces = {n: np.zeros((*self.batch_shape, self.n_pre), dtype=np.int64) for n in X_TRACES}
        self.traces.update({n: np.zeros((*self.batch_shape, self.n_post), dtype=np.int64) for n in Y_TRACES})
        self.tx = np.zeros((*self.batch_shape, self.n_pre), dtype=np.int64)  # within-epoch step of the last spike
        self.ty = np.zeros((*self.batch_shape, self.n_post), dtype=np.int64)
        self.time_step = 0  # steps done (Lava's 1-based time step of the last one)
        self.epochs = 0
        self._lava = _LavaStreams(int(rule.rng_seed)) if draws == "lava" else None
        self._rng = np.random.default_rng(int(rule.rng_seed))
        self._specs = {n: getattr(rule, n) for n in (*X_TRACES, *Y_TRACES)}

    # ------------------------------------------------------------------ inference

    def forward(self, pre_spikes: np.ndarray) -> np.ndarray:
        """(Σ_j w_ij s_j)·2^weight_exp (floor for negative exponents), as Lava's Dense: (..., n_post) int64."""
        s = np.asarray(pre_spikes) != 0
        acc = np.matmul(self.weights.astype(np.float64), s[..., None].astype(np.float64))[..., 0]  # exact < 2^53
        return shift_by_exp(acc.astype(np.int64), self.weight_exp)

    # ------------------------------------------------------------------ learning

    def step(
        self,
        pre_spikes: np.ndarray,
        post_spikes: np.ndarray,
        third_factor: Mapping[str, np.ndarray] | None = None,
        rounding: float | np.ndarray | None = None,
    ) -> bool:
        """Record one step's spikes (and third factor); apply the rules if the epoch ends. Returns whether it did.

        ``rounding`` replaces this epoch's rounding draws (scalar or per synapse, see
        ``round_accumulator``); e.g. the same array for two projections that must round identically.
        The internal streams advance as usual either way.
        """
        t = self.time_step + 1
        k = t % self.rule.t_epoch or self.rule.t_epoch
        pre = np.broadcast_to(np.asarray(pre_spikes) != 0, self.tx.shape)
        post = np.broadcast_to(np.asarray(post_spikes) != 0, self.ty.shape)
        # A second pre spike within the epoch adds its impulse at once; Lava rounds it with draw 0.
        multi = (self.tx > 0) & pre
        if multi.any():
            for n in X_TRACES:
                self.traces[n] = add_impulse(self.traces[n], multi, self._specs[n], self._impulse_draw(n, 0))
        self.tx = np.where(pre, k, self.tx)
        self._advance()
        multi = (self.ty > 0) & post
        if multi.any():
            for n in Y_TRACES:
                draw = self._impulse_draw(n, self._lava.y[1] if self._lava else 0)
                self.traces[n] = add_impulse(self.traces[n], multi, self._specs[n], draw)
        self.ty = np.where(post, k, self.ty)
        if self.rule.three_factor:
            given = third_factor or {}
            unknown = set(given) - set(Y_TRACES)
            if unknown:
                raise ValueError(f"third_factor keys must be y1, y2, y3, got {sorted(unknown)}")
            for n in Y_TRACES:
                self.traces[n] = np.broadcast_to(np.asarray(given.get(n, 0), dtype=np.int64), self.ty.shape).copy()
        elif third_factor is not None:
            raise ValueError("third_factor needs LearningRule(three_factor=True)")
        self._advance()
        self.time_step = t
        if t % self.rule.t_epoch:
            return False
        self._learn(rounding)
        return True

    def _advance(self) -> None:
        if self._lava is not None:
            self._lava.advance_traces()

    def _impulse_draw(self, name: str, lava_draw: int) -> int | np.ndarray:
        if self._lava is not None:
            return lava_draw
        return self._rng.integers(0, 2**IMPULSE_FRACTION_BITS, self.traces[name].shape)

    def _replay(self, names: tuple[str, ...], t_spike: np.ndarray, side: tuple[float, int] | None) -> np.ndarray:
        """Trace values at within-epoch steps 0…T, stacked: (len(names), T + 1, *batch, n)."""
        T = self.rule.t_epoch
        out = np.empty((len(names), T + 1, *t_spike.shape), dtype=np.int64)
        for i, n in enumerate(names):
            out[i, 0] = self.traces[n]
            if self._specs[n].impulse == 0 and not out[i, 0].any():  # stays 0: skip (no shared draw is used)
                out[i, 1:] = 0
                continue
            for s in range(1, T + 1):
                draws = side if side is not None else (self._rng.random(t_spike.shape), self._impulse_draw(n, 0))
                out[i, s] = trace_step(out[i, s - 1], t_spike == s, self._specs[n], draws)
        return out

    def _learn(self, rounding: float | np.ndarray | None) -> None:
        T, lava = self.rule.t_epoch, self._lava
        if lava is not None:
            lava.advance_rounding()
        hx = self._replay(X_TRACES, self.tx, lava.x if lava else None)
        hy = self._replay(Y_TRACES, self.ty, lava.y if lava else None)
        for i, n in enumerate(X_TRACES):
            self.traces[n] = hx[i, T].copy()
        if not self.rule.three_factor:  # Lava keeps the received values of a three-factor rule
            for i, n in enumerate(Y_TRACES):
                self.traces[n] = hy[i, T].copy()
        ops = self._operands(hx, hy)
        new = {}
        for target, series in self.rule.series.items():
            attr, kind, _ = _VAR[target]
            z = getattr(self, attr)
            if rounding is not None:
                u = rounding
            elif lava is not None:
                u = lava.rounding  # one draw for every synapse and every variable of the epoch
            else:
                u = self._rng.random(z.shape)
            delta = series.accumulate(ops, start=z)
            new[attr] = apply_accumulator(z, delta, u, kind, self.sign_mode, self.weight_bits)
        for attr, value in new.items():
            setattr(self, attr, np.asarray(value, dtype=np.int64))
        self.tx = np.zeros_like(self.tx)
        self.ty = np.zeros_like(self.ty)
        self.epochs += 1

    def _operands(self, hx: np.ndarray, hy: np.ndarray) -> dict[str, np.ndarray]:
        """The operands the rules read (``ProductSeries.accumulate`` keys), from the replayed traces."""
        keys = set().union(*(s.operand_keys for s in self.rule.series.values()))
        T, tx, ty = self.rule.t_epoch, self.tx, self.ty
        syn = (*self.batch_shape, self.n_post, self.n_pre)
        ops: dict[str, np.ndarray] = {
            "x0": (tx > 0)[..., None, :],
            "y0": (ty > 0)[..., :, None],
            "w": self.weights,
            "d": self.tag_2,
            "t": self.tag_1,
        }
        k = self.rule.decimate_exponent
        ops["u"] = np.int64(u_dependency(self.time_step, T, k) if k is not None else 0)
        for key in keys - set(ops):
            name, dep = key.split("_")
            pre_side = name in X_TRACES
            hist = hx[X_TRACES.index(name)] if pre_side else hy[Y_TRACES.index(name)]  # (T + 1, *batch, n)
            if dep == "u":
                val = hist[T]
                ops[key] = val[..., None, :] if pre_side else val[..., :, None]
            elif (dep == "x0") == pre_side:  # own side: the trace at its own spike
                own = tx if pre_side else ty
                val = np.take_along_axis(hist, own[None], axis=0)[0]
                ops[key] = val[..., None, :] if pre_side else val[..., :, None]
            else:  # the other side's trace at this side's spike: one value per synapse
                seq = np.moveaxis(hist, 0, -1)  # (*batch, n_other, T + 1)
                if pre_side:  # x at the post spike: x_j at ty_i
                    src, idx = seq[..., None, :, :], ty[..., :, None, None]
                else:  # y at the pre spike: y_i at tx_j
                    src, idx = seq[..., :, None, :], tx[..., None, :, None]
                idx = np.broadcast_to(idx, (*syn, 1))
                ops[key] = np.take_along_axis(np.broadcast_to(src, (*syn, T + 1)), idx, axis=-1)[..., 0]
        return ops


def _truncate(w: np.ndarray, num_weight_bits: int, sign_mode: SignMode) -> np.ndarray:
    """Lava's truncate_weights: drop 8 − bits (+1 if mixed) low bits of |w| (inhibitory) or w; no clip."""
    if not 1 <= num_weight_bits <= 8:
        raise ValueError(f"num_weight_bits must be 1...8, got {num_weight_bits}")
    shift = 8 - int(num_weight_bits) + int(sign_mode == "mixed")
    if sign_mode == "inhibitory":
        return -(((-w) >> shift) << shift)
    return (w >> shift) << shift


__all__ = [
    "TraceSpec",
    "LearningRule",
    "PlasticDense",
    "trace_step",
    "decay_trace",
    "add_impulse",
    "round_accumulator",
    "clip_variable",
    "variable_range",
    "apply_accumulator",
    "TRACE_MAX",
]
