"""Float update requests written as the chip's learning engine writes them.

A rule asks for ΔW = −η·δ·x̄ᵀ (forward weights) or ΔB = η_B·C − α·B (feedback weights). On the chip
that becomes a sum-of-products rule evaluated by ``neurodeploy.emulator.learning_rule`` at each epoch
end (one epoch = one sample presentation, at most 63 steps):

- forward: ``m*2^e*u0*x1*y3 - m*2^e*u0*x1*y2`` into the tag, with x1 the pre trace (impulse 1, no
  decay: the spike count) and y2 / y3 the positive / negative part of δ delivered by the neuron's error
  compartment as graded third-factor traces, 7 bit, stochastically rounded at gain G; the tag moves into
  the weight once per minibatch (``ForwardWriter``);
- feedback: the correlation C accumulates in the synaptic tag (9-bit signed, as R-STDP's eligibility)
  over 2^K updates and ``2^-3*uK*t`` moves it into the weight (``TagWriter``); PAL's decay joins the
  tag as ``-2^e*u0*w``, so B moves once per 2^K updates with a single rounding;
- decay: ``-2^-7*uK*w``, gated to every 2^K-th update so small rates stay representable.

(m, e, G) are chosen once so that m·2^e·G realises η within the 4-bit-mantissa grid; the realised
rate is reported. Each update is rounded stochastically per synapse (independent draws).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from neurodeploy.emulator.learning_rule import parse_rule
from neurodeploy.emulator.plasticity import clip_variable, round_accumulator

TRACE_MAX = 127
TAG_RANGE = (-256, 255)
_MANTISSAS = range(1, 8)
_EXPONENTS = range(-7, 9)


def _scale_grid(target: float, gains: list[int]) -> tuple[int, int, int, float]:
    """(m, e, G, realised) with m·2^e·G closest to ``target``; among those within 10 %, the largest G
    (it keeps the most bits of the learning signal)."""
    options = [(abs(math.log(m * 2.0**e * g / target)), m, e, g) for g in gains for m in _MANTISSAS for e in _EXPONENTS]
    close = [o for o in options if o[0] <= 0.1]
    err, m, e, g = max(close, key=lambda o: (o[3], -o[0])) if close else min(options)
    return m, e, g, m * 2.0**e * g


@dataclass
class ForwardWriter:
    """ΔW = −η δ x̄ᵀ per sample as the engine's x1·y product, summed in the tag over a minibatch.

    The samples of a minibatch are presented one after another with the weights held; each epoch adds
    ``m*2^e*u0*x1*y3 - m*2^e*u0*x1*y2`` to the synaptic tag, which counts in 2^-``tag_bits`` weight LSBs
    (the eligibility of R-STDP), and at the minibatch's end ``2^-tag_bits*uK*t`` moves the tag into the
    weight and the tag restarts at 0. The finer tag keeps small per-sample updates from drowning in
    rounding noise; its 9-bit range bounds one minibatch's change to ±2^(8 - tag_bits) LSB (saturations
    are counted). ``lr`` is η per sample in float units.
    """

    lr: float
    scale: int  # integer units per float weight unit
    active: int  # steps per presentation: the pre trace holds the spike count
    delta_max: float = 4.0  # |δ| the third factor must hold before it saturates at 127
    tag_bits: int = 3

    def __post_init__(self) -> None:
        # tag increment = (x1·y·m >> 3)·2^e = count·(G δ)·m·2^e / 8 = 2^tag_bits·scale·η·δ·count/active
        target = 8.0 * self.scale * self.lr * 2.0**self.tag_bits / self.active
        top = max(1, int(TRACE_MAX / self.delta_max))
        gains = [2**k for k in range(int(math.log2(top)) + 1)]
        m, e, gain, real = _scale_grid(target, gains)
        self.gain, self.mantissa, self.exponent = gain, m, e
        self.realised_lr = self.lr * real / target
        term = f"{m}*2^{e}*u0*x1"
        self.rule = f"dt = {term}*y3 - {term}*y2; dw = 2^-{self.tag_bits}*u0*t"
        self.tag_series = parse_rule(f"{term}*y3 - {term}*y2", "dt")
        self.move_series = parse_rule(f"2^-{self.tag_bits}*u0*t", "dw")
        self.saturated = 0
        self.tag_saturated = 0

    def update(self, counts: np.ndarray, delta: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Integer ΔW of one minibatch: counts (inst, b, n_pre+1), δ (inst, b, n_post)."""
        y = self.gain * delta
        self.saturated += int(np.count_nonzero(np.abs(y) > TRACE_MAX))
        y = np.minimum(np.abs(y), TRACE_MAX)
        y = np.floor(y + rng.random(y.shape)).astype(np.int64)  # stochastic rounding of the third factor
        pos = np.where(delta > 0, y, 0)[..., :, None]
        neg = np.where(delta < 0, y, 0)[..., :, None]
        x1 = np.minimum(np.rint(counts), TRACE_MAX).astype(np.int64)[..., None, :]
        acc = self.tag_series.accumulate({"u": np.int64(1), "x1": x1, "y2": pos, "y3": neg})
        raw = round_accumulator(acc, rng.random(acc.shape)).sum(axis=1)  # one epoch per sample, in turn
        tag = clip_variable(raw, "tag")
        self.tag_saturated += int(np.count_nonzero(tag != raw))
        move = self.move_series.accumulate({"u": np.int64(1), "t": tag})
        return round_accumulator(move, rng.random(move.shape))


@dataclass
class TagWriter:
    """ΔB = η_B·C through the tag, which sums 2^K updates before the weight moves.

    Each update adds SR(G·C) to the tag (9-bit signed, in 2^-``tag_bits`` weight LSBs); every
    2^K-th update ``2^-tag_bits*uK*t`` moves it into the weight and the tag restarts. Moving rarely and
    in fine units keeps the 8-bit feedback weights from random-walking on rounding noise. G is chosen
    from the first correlation seen (with headroom) and then fixed, like a gain register.

    With ``decay`` = α > 0 the tag also receives ``-2^e*u0*w`` each update (2^e ≈ α·2^tag_bits, the
    realised α in ``realised_decay``): the decay then shares the tag's fine units and its one rounding
    per move. A separate ``-2^-7*uK*w`` rule rounds once per decay step instead: at α ≈ 2e-3 that is up
    to 0.25 LSB² every 4 updates, several times the tag's own rounding noise.
    """

    lr: float
    scale: int
    tag_bits: int = 3
    period_exp: int = 3  # K: the weight moves every 2^K updates
    decay: float = 0.0  # α per update, applied through the tag; 0: the caller decays the weight itself
    gain: float | None = None
    saturated: int = 0

    def __post_init__(self) -> None:
        self.decay_series = None
        self.realised_decay = 0.0
        self.decay_term = ""
        if self.decay > 0:
            e = round(math.log2(self.decay * 2.0**self.tag_bits))
            self.decay_term = f"2^{e}*u0*w"
            self.decay_series = parse_rule(f"-1*{self.decay_term}", "dt")
            self.realised_decay = 2.0 ** (e - self.tag_bits)

    @property
    def rule(self) -> str:
        """The engine's rule strings (G·C stands for the rule's correlation term at gain G)."""
        dt = f"G·C - {self.decay_term}" if self.decay_term else "G·C"
        return f"dt = {dt}; dw = 2^-{self.tag_bits}*u{self.period_exp}*t"

    def update(self, corr: np.ndarray, rng: np.random.Generator, weight: np.ndarray | None = None) -> np.ndarray:
        """The integer change of the weight after this update (zero between moves); ``weight`` is the
        current stored weight, needed when the decay runs through the tag."""
        if self.gain is None:
            # t per update = G·C in 2^-tag_bits LSB, and the weight should move scale·η_B·C per update
            self.gain = self.scale * self.lr * 2.0**self.tag_bits
            peak = float(np.percentile(np.abs(corr), 99)) or 1.0
            headroom = TAG_RANGE[1] / (8.0 * peak * 2**self.period_exp)
            if self.gain > headroom:  # would saturate: the rule string's exponent cannot fix the tag's range
                self.saturation_risk = self.gain / headroom
            self.move = parse_rule(f"2^-{self.tag_bits}*u0*t", "dw")
            self.tag = np.zeros(corr.shape, dtype=np.int64)
            self.count = 0
        inc = np.floor(self.gain * corr + rng.random(corr.shape)).astype(np.int64)
        if self.decay_series is not None:
            if weight is None:
                raise ValueError("TagWriter with a decay needs the current weight")
            acc = self.decay_series.accumulate({"u": np.int64(1), "w": weight})
            inc = inc + round_accumulator(acc, rng.random(acc.shape))
        raw = self.tag + inc
        self.tag = clip_variable(raw, "tag")
        self.saturated += int(np.count_nonzero(self.tag != raw))
        self.count += 1
        if self.count % 2**self.period_exp:
            return np.zeros(corr.shape, dtype=np.int64)
        acc = self.move.accumulate({"u": np.int64(1), "t": self.tag})
        self.tag = np.zeros_like(self.tag)
        return round_accumulator(acc, rng.random(acc.shape))


@dataclass
class DecayWriter:
    """−α·Z per update as ``-2^-7*uK*w``: applied every 2^K updates, K chosen from α."""

    rate: float

    def __post_init__(self) -> None:
        self.period = max(1, 2 ** round(math.log2(max(2.0**-7 / self.rate, 1.0)))) if self.rate > 0 else 0
        self.series = parse_rule("-1*2^-7*u0*w", "dw")
        self.count = 0

    def update(self, z: np.ndarray, uniform: np.ndarray) -> np.ndarray:
        """The decay step of this update (zero between gated updates); ``uniform``: rounding draws."""
        self.count += 1
        if not self.period or self.count % self.period:
            return np.zeros_like(z)
        acc = self.series.accumulate({"u": np.int64(1), "w": z})
        return round_accumulator(acc, uniform)


def apply(z: np.ndarray, dz: np.ndarray) -> np.ndarray:
    """Add an integer update and clamp to the 8-bit mixed weight range, as the engine does."""
    return clip_variable(z + dz, "weight", "mixed")
