"""Loihi CUBA-LIF core numerics, bit-exact with Lava 0.10's ``fixed_pt`` LIF and Dense models.

All state is int64 so intermediate products never overflow; the 24-bit behaviour of the chip (wrap of
u, saturation of v) is applied explicitly. Arrays broadcast over any leading axes (chip instances,
batch), with neurons last.

Two neuron features go beyond Lava's CPU model, as profile capabilities (``reset_modes``,
``refractory``), and are tested against the float reference instead of Lava:

- ``reset="subtract"``: v <- v - vth·2^6 where the neuron spikes (Lava: v <- 0 only);
- the optional per-neuron parameter ``refractory`` (steps, 0..62): after a spike, v is held at 0 for
  that many steps while u keeps integrating. This is Loihi 1's refractory counter as nengo-loihi's
  emulator models it (``nengo_loihi/emulator/interface.py``: v zeroed while the count is positive, the
  count loaded on a spike and decremented every step), with ``refractory`` = its ``refract_delay`` - 1
  (a 6-bit register, at most 63).

``arithmetic="loihi1"`` (``LoihiCubaState`` only) switches to Loihi 1 as nengo-loihi 1.1.0
(``nengo_loihi/emulator/interface.py`` CompartmentState.update, ``builder/discretize.py``) and brian2-loihi
0.5.2 (``loihi_neuron_group.py``, ``loihi_synapses.py``) compute it:

- the summed input (already x2^6) wraps at 21 bits plus sign (two's complement, [-2^21, 2^21 - 1]);
- u wraps at 23 bits plus sign, [-2^23, 2^23 - 1] (Lava: (-2^23, 2^23]);
- the bias joins u for this step only (u2 = u + bias, wrapped again), then v <- decay(v) + u2;
- a negative weight exponent shifts each weight before the sum (``synapses.prepared_weights``), not the sum.

Each state class can also keep ``peak_u`` / ``peak_v``: the largest |u| and |v| an update produced, before
the wrap or saturation fixes it up (so a peak above ``MAX_UV`` means the limit was crossed). The compiler
reads them on the sample inputs to report each layer's headroom; they are tracked only when
``track_peaks`` is set, so ordinary runs pay nothing for them.
"""

from __future__ import annotations

import numpy as np

DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
U_DECAY_OFFSET = 1  # Lava's ds_offset: du + 1 is the effective current decay
VTH_SHIFT = 6
ACT_SHIFT = 6
MAX_UV = 1 << 23
V_MIN, V_MAX = -(MAX_UV - 1), MAX_UV - 1

DU_RANGE = (0, 4095)
DV_RANGE = (0, 4095)
VTH_RANGE = (0, (1 << 17) - 1)
BIAS_MANT_RANGE = (-(1 << 12), (1 << 12) - 1)
BIAS_EXP_RANGE = (0, 7)
# Lava keeps a_in, u and v in int32 and adds them without overflow checks (lif/models.py lines 153-157,
# 184-185; a Dense's int64 sum is cast to int32 by the channel, pypychannel.py line 142). The sums
# therefore wrap modulo 2^32 before the 24-bit wrap of u / saturation of v; reproduce that exactly.
INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _decay(x: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """x * keep / 4096, truncated toward zero (sign-magnitude shift, as the chip does)."""
    prod = x * keep
    return np.sign(prod) * (np.abs(prod) >> DECAY_SHIFT)


def effective_bias(bias_mant: np.ndarray, bias_exp: np.ndarray) -> np.ndarray:
    mant = np.asarray(bias_mant, dtype=np.int64)
    exp = np.asarray(bias_exp, dtype=np.int64)
    return np.where(exp >= 0, mant << np.maximum(exp, 0), mant >> np.maximum(-exp, 0))


def prepare_weights(weight: np.ndarray, num_weight_bits: int, sign_mode: str) -> np.ndarray:
    """Clip to the 8-bit synapse range, then drop low bits, exactly as Lava's Dense does once."""
    w = np.array(weight, dtype=np.int64)  # a copy, modified in place below (np.clip is slow on ints)
    inhibitory = sign_mode == "inhibitory"
    mixed = sign_mode == "mixed"
    if inhibitory:
        np.negative(w, out=w)
    np.maximum(w, -256 if mixed else 0, out=w)
    np.minimum(w, 255, out=w)
    shift = 8 - int(num_weight_bits) + int(mixed)
    w >>= shift
    w <<= shift
    if inhibitory:
        np.negative(w, out=w)
    return w


REFRACTORY_RANGE = (0, 62)  # refract_delay - 1, a 6-bit register (nengo-loihi: REFRACT_DELAY_MAX = 63)


def check_reset(reset: str) -> bool:
    """True for a subtractive reset; an unknown mode is a programming error, not user input."""
    if reset not in ("zero", "subtract"):
        raise ValueError(f"unknown reset {reset!r}: use 'zero' or 'subtract'")
    return reset == "subtract"


def refractory_steps(params: dict[str, np.ndarray]) -> np.ndarray | None:
    """The per-neuron refractory period in steps, or None where no neuron has one (Lava's model)."""
    ref = params.get("refractory")
    if ref is None:
        return None
    ref = np.asarray(ref, dtype=np.int64)
    if not ref.any():
        return None
    if ref.min() < REFRACTORY_RANGE[0] or ref.max() > REFRACTORY_RANGE[1]:
        raise ValueError(f"refractory must lie in {REFRACTORY_RANGE} steps, got {ref.min()}..{ref.max()}")
    return ref


def _wrap_int32(x: np.ndarray) -> tuple[np.ndarray, int]:
    """x modulo 2^32 into int32's range, and how many entries changed (none in normal operation)."""
    if x.size == 0 or (x.min() >= INT32_MIN and x.max() <= INT32_MAX):
        return x, 0
    wrapped = ((x - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN
    return wrapped, int(np.count_nonzero(wrapped != x))


def _abs_max(x: np.ndarray) -> float:
    """max |x| (0 for an empty array), as a float: int64 extremes would overflow ``np.abs``."""
    if x.size == 0:
        return 0.0
    return max(float(np.max(x)), -float(np.min(x)), 0.0)


ARITHMETICS = ("lava", "loihi1")
Q_BITS = 21  # Loihi 1's dendritic accumulator: 21 bits plus sign (nengo-loihi discretize.Q_BITS)
U_BITS = 23  # u: 23 bits plus sign (discretize.U_BITS)


def check_arithmetic(arithmetic: str) -> bool:
    """True for Loihi 1's arithmetic; an unknown name is a profile or programming error."""
    if arithmetic not in ARITHMETICS:
        raise ValueError(f"unknown arithmetic {arithmetic!r}: use one of {ARITHMETICS}")
    return arithmetic == "loihi1"


def wrap_signed(x: np.ndarray, bits: int) -> np.ndarray:
    """Two's-complement wrap to ``bits`` bits plus sign: [-2^bits, 2^bits - 1]."""
    half = 1 << bits
    return ((np.asarray(x, dtype=np.int64) + half) & (2 * half - 1)) - half


def shift_by_exp(acc: np.ndarray, weight_exp: int) -> np.ndarray:
    """Apply the weight exponent to a summed input (floor for negative exponents)."""
    return acc << weight_exp if weight_exp > 0 else acc >> -weight_exp


class Violation:
    """The first overflow of a population: step, what overflowed, where, and the value before the fix-up."""

    def __init__(self, step: int, kind: str, index: tuple[int, ...], value: float) -> None:
        self.step, self.kind, self.index, self.value = step, kind, index, value

    def describe(self) -> str:
        *batch, neuron = self.index
        at = f"neuron {neuron}" + (f", batch index {tuple(batch)}" if batch else "")
        return f"{self.kind} at step {self.step} ({at}, value {int(self.value)})"


class LoihiCubaState:
    """u, v of one population over leading axes; ``step`` advances one time step."""

    def __init__(
        self, shape: tuple[int, ...], params: dict[str, np.ndarray], reset: str = "zero", arithmetic: str = "lava"
    ) -> None:
        self.loihi1 = check_arithmetic(arithmetic)
        self.u = np.zeros(shape, dtype=np.int64)
        self.v = np.zeros(shape, dtype=np.int64)
        self.keep_u = DECAY_UNITY - (np.asarray(params["du"], dtype=np.int64) + U_DECAY_OFFSET)
        self.keep_v = DECAY_UNITY - np.asarray(params["dv"], dtype=np.int64)
        self.bias = effective_bias(params["bias_mant"], params["bias_exp"])
        self.vth = np.asarray(params["vth"], dtype=np.int64) << VTH_SHIFT
        self.subtract = check_reset(reset)
        self.refractory = refractory_steps(params)
        self.ref_count = np.zeros(shape, dtype=np.int64) if self.refractory is not None else None
        self.u_wraps = 0
        self.v_saturations = 0
        self.first_violation: Violation | None = None
        self.track_peaks = False
        self.peak_u = self.peak_v = 0.0

    def step(self, a_in: np.ndarray, t: int = 0) -> np.ndarray:
        if self.loihi1:
            return self._step_loihi1(np.asarray(a_in, dtype=np.int64), t)
        raw = _decay(self.u, self.keep_u) + (a_in << ACT_SHIFT)
        if self.track_peaks:
            self.peak_u = max(self.peak_u, _abs_max(raw))
        u, n32 = _wrap_int32(raw)
        self._note(t, "int32 overflow of u", n32, raw != u, raw)
        self.u_wraps += n32
        over, under = u > MAX_UV, u <= -MAX_UV
        if over.any() or under.any():
            self._note(t, "u wrap (24 bit)", 1, over | under, u)
            self.u_wraps += int(over.sum() + under.sum())
            u = np.where(over, u - 2 * MAX_UV, np.where(under, u + 2 * MAX_UV, u))
        raw = _decay(self.v, self.keep_v) + u + self.bias
        if self.track_peaks:
            self.peak_v = max(self.peak_v, _abs_max(raw))
        v, n32 = _wrap_int32(raw)
        self._note(t, "int32 overflow of v", n32, raw != v, raw)
        self.v_saturations += n32
        return self._fire(t, u, v)

    def _fire(self, t: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Both arithmetics' last stage: v saturates, the refractory counter holds it at 0, spike, reset."""
        clipped = np.clip(v, V_MIN, V_MAX)
        n_sat = int(np.count_nonzero(clipped != v))
        self._note(t, "v saturation", n_sat, clipped != v, v)
        self.v_saturations += n_sat
        if self.ref_count is not None:  # held at 0 while the counter runs, so it cannot fire
            clipped = np.where(self.ref_count > 0, 0, clipped)
        spikes = clipped > self.vth
        if self.ref_count is not None:
            self.ref_count = np.where(spikes, self.refractory, np.maximum(self.ref_count - 1, 0))
        self.u = u
        self.v = np.where(spikes, clipped - self.vth if self.subtract else 0, clipped)
        return spikes

    def _wrap(self, t: int, kind: str, x: np.ndarray, bits: int) -> np.ndarray:
        """Wrap x to ``bits`` plus sign, counting (as u wraps) and noting the entries that changed."""
        wrapped = wrap_signed(x, bits)
        changed = wrapped != x
        n = int(np.count_nonzero(changed))
        if n:
            self._note(t, kind, n, changed, x)
            self.u_wraps += n
        return wrapped

    def _step_loihi1(self, a_in: np.ndarray, t: int) -> np.ndarray:
        """Loihi 1's order (nengo-loihi CompartmentState.update): input wrap, u, u + bias, v, clip, spike."""
        q = self._wrap(t, "dendritic accumulator wrap (21 bit)", a_in << ACT_SHIFT, Q_BITS)
        raw = _decay(self.u, self.keep_u) + q
        if self.track_peaks:
            self.peak_u = max(self.peak_u, _abs_max(raw))
        u = self._wrap(t, "u wrap (24 bit)", raw, U_BITS)
        u2 = self._wrap(t, "u + bias wrap (24 bit)", u + self.bias, U_BITS)
        raw = _decay(self.v, self.keep_v) + u2
        if self.track_peaks:
            self.peak_v = max(self.peak_v, _abs_max(raw))
        return self._fire(t, u, raw)

    def _note(self, t: int, kind: str, count: int, mask: np.ndarray, x: np.ndarray) -> None:
        if count and self.first_violation is None:
            index = np.unravel_index(int(np.flatnonzero(mask)[0]), mask.shape)
            self.first_violation = Violation(t, kind, tuple(int(i) for i in index), float(x[index]))


class LoihiFastState:
    """Same numbers as ``LoihiCubaState``, in float64 holding integers, with in-place updates.

    Why float64: the decay T(x·k/4096) is one multiply and one ``trunc`` (x·k/4096 is exact below
    2^53), against five integer operations, and in-place ops avoid allocating per step. Callers must
    keep |a_in·64| + 2^31 below 2^53 (``simulate`` proves that per population, else uses the int64
    class). ``step`` takes the synaptic input already multiplied by 2^6.

    Overflow checks cost two reductions per variable, as much as the update itself, so they are
    skipped while scalar interval bounds prove u and v in range: |T(x·k)| <= |x|·max(k), v after
    the reset is at most max(vth·2^6), and the caller may pass the step's input range. The fix-ups
    (int32 wrap, 24-bit wrap of u, saturation of v) run only when a bound is crossed; the first one is
    kept in ``first_violation`` for strict mode.
    """

    def __init__(self, shape: tuple[int, ...], params: dict[str, np.ndarray], reset: str = "zero") -> None:
        self.u = np.zeros(shape)
        self.v = np.zeros(shape)
        self.spikes = np.zeros(shape, dtype=bool)
        self.subtract = check_reset(reset)
        ref = refractory_steps(params)
        self.refractory = None if ref is None else ref.astype(float)
        self.ref_count = None if ref is None else np.zeros(shape)
        du = np.asarray(params["du"], dtype=np.int64)
        self.keep_u = (DECAY_UNITY - (du + U_DECAY_OFFSET)) / DECAY_UNITY  # exact: 12-bit / 2^12
        self.keep_v = (DECAY_UNITY - np.asarray(params["dv"], dtype=np.int64)) / DECAY_UNITY
        self.bias = effective_bias(params["bias_mant"], params["bias_exp"]).astype(float)
        self.vth = (np.asarray(params["vth"], dtype=np.int64) << VTH_SHIFT).astype(float)
        self._ku, self._kv = float(np.max(self.keep_u, initial=0)), float(np.max(self.keep_v, initial=0))
        self._b_lo, self._b_hi = float(np.min(self.bias, initial=0)), float(np.max(self.bias, initial=0))
        self._vth_hi = float(np.max(self.vth, initial=0))
        self.bounds = (0.0, 0.0, 0.0, 0.0)  # proven (u_lo, u_hi, v_lo, v_hi) of the current state
        self.checks = 0
        self.u_wraps = 0
        self.v_saturations = 0
        self.first_violation: Violation | None = None
        self.track_peaks = False
        self.peak_u = self.peak_v = 0.0

    def _note(self, t: int, kind: str, mask: np.ndarray, x: np.ndarray) -> None:
        if self.first_violation is None:
            index = np.unravel_index(int(np.flatnonzero(mask)[0]), mask.shape)
            self.first_violation = Violation(t, kind, tuple(int(i) for i in index), float(x[index]))

    def _wrap_int32(self, x: np.ndarray, t: int, var: str) -> int:
        bad = (x > INT32_MAX) | (x < INT32_MIN)
        self._note(t, f"int32 overflow of {var}", bad, x)
        np.copyto(x, np.mod(x - INT32_MIN, 2.0**32) + INT32_MIN, where=bad)
        return int(np.count_nonzero(bad))

    def step(
        self,
        a64: np.ndarray | None,
        t: int = 0,
        a_range: tuple[float, float] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """One step; ``a_range`` = proven (min, max) of ``a64`` (None: unknown); spikes go to ``out``."""
        u, v = self.u, self.v
        u_lo, u_hi, v_lo, v_hi = self.bounds
        np.multiply(u, self.keep_u, out=u)
        np.trunc(u, out=u)
        if a64 is None:
            a_lo = a_hi = 0.0
        else:
            np.add(u, a64, out=u)
            a_lo, a_hi = a_range if a_range is not None else (-np.inf, np.inf)
        u_hi = max(u_hi, 0.0) * self._ku + a_hi
        u_lo = min(u_lo, 0.0) * self._ku + a_lo
        if self.track_peaks and max(u_hi, -u_lo) > self.peak_u:  # the bound cannot rule out a new peak
            u_hi, u_lo = u.max(initial=0.0), u.min(initial=0.0)
            self.peak_u = max(self.peak_u, u_hi, -u_lo)
        if u_hi > MAX_UV or u_lo <= -MAX_UV:
            self.checks += 1
            u_hi, u_lo = u.max(initial=0.0), u.min(initial=0.0)
            if u_hi > MAX_UV or u_lo <= -MAX_UV:
                if u_hi > INT32_MAX or u_lo < INT32_MIN:
                    self.u_wraps += self._wrap_int32(u, t, "u")
                over, under = u > MAX_UV, u <= -MAX_UV
                self._note(t, "u wrap (24 bit)", over | under, u)
                self.u_wraps += int(np.count_nonzero(over) + np.count_nonzero(under))
                u -= over * float(2 * MAX_UV)
                u += under * float(2 * MAX_UV)
                u_hi, u_lo = u.max(initial=0.0), u.min(initial=0.0)
        np.multiply(v, self.keep_v, out=v)
        np.trunc(v, out=v)
        np.add(v, u, out=v)
        np.add(v, self.bias, out=v)
        v_hi = max(v_hi, 0.0) * self._kv + u_hi + self._b_hi
        v_lo = min(v_lo, 0.0) * self._kv + u_lo + self._b_lo
        if self.track_peaks and max(v_hi, -v_lo) > self.peak_v:
            v_hi, v_lo = v.max(initial=0.0), v.min(initial=0.0)
            self.peak_v = max(self.peak_v, v_hi, -v_lo)
        if v_hi > V_MAX or v_lo < V_MIN:
            self.checks += 1
            v_hi, v_lo = v.max(initial=0.0), v.min(initial=0.0)
            if v_hi > V_MAX or v_lo < V_MIN:
                if v_hi > INT32_MAX or v_lo < INT32_MIN:
                    self.v_saturations += self._wrap_int32(v, t, "v")
                bad = (v > V_MAX) | (v < V_MIN)
                self._note(t, "v saturation", bad, v)
                self.v_saturations += int(np.count_nonzero(bad))
                np.clip(v, V_MIN, V_MAX, out=v)
                v_hi, v_lo = v.max(initial=0.0), v.min(initial=0.0)
        spikes = self.spikes if out is None else out
        if self.ref_count is not None:  # held at 0 while the counter runs, so it cannot fire
            np.copyto(v, 0.0, where=self.ref_count > 0)
        np.greater(v, self.vth, out=spikes)
        if self.ref_count is not None:
            np.subtract(self.ref_count, 1.0, out=self.ref_count)
            np.maximum(self.ref_count, 0.0, out=self.ref_count)
            np.copyto(self.ref_count, self.refractory, where=spikes)
        if self.subtract:
            # v - vth lies in (0, v] for the neurons that fire; the others are at most their threshold
            np.subtract(v, self.vth, out=v, where=spikes)
            self.bounds = (u_lo, u_hi, min(v_lo, 0.0), max(v_hi, 0.0))
            return spikes
        np.copyto(v, 0.0, where=spikes)
        # After the reset: spiking neurons hold 0, the others at most their threshold.
        self.bounds = (u_lo, u_hi, min(v_lo, 0.0), min(max(v_hi, 0.0), self._vth_hi))
        return spikes
