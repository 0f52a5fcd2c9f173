"""Loihi CUBA-LIF core numerics, bit-exact with Lava 0.10's ``fixed_pt`` LIF and Dense models.

All state is int64 so intermediate products never overflow; the 24-bit behaviour of the chip (wrap of
u, saturation of v) is applied explicitly. Arrays broadcast over any leading axes (chip instances,
batch), with neurons last.
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
    w = np.asarray(weight, dtype=np.int64).copy()
    inhibitory = sign_mode == "inhibitory"
    mixed = sign_mode == "mixed"
    if inhibitory:
        w = -w
    w = np.clip(w, -256 if mixed else 0, 255)
    shift = 8 - int(num_weight_bits) + int(mixed)
    w = (w >> shift) << shift
    return -w if inhibitory else w


def _wrap_int32(x: np.ndarray) -> tuple[np.ndarray, int]:
    """x modulo 2^32 into int32's range, and how many entries changed (none in normal operation)."""
    if x.size == 0 or (x.min() >= INT32_MIN and x.max() <= INT32_MAX):
        return x, 0
    wrapped = ((x - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN
    return wrapped, int(np.count_nonzero(wrapped != x))


def shift_by_exp(acc: np.ndarray, weight_exp: int) -> np.ndarray:
    """Apply the weight exponent to a summed input (floor for negative exponents)."""
    return acc << weight_exp if weight_exp > 0 else acc >> -weight_exp


class LoihiCubaState:
    """u, v of one population over leading axes; ``step`` advances one time step."""

    def __init__(self, shape: tuple[int, ...], params: dict[str, np.ndarray]) -> None:
        self.u = np.zeros(shape, dtype=np.int64)
        self.v = np.zeros(shape, dtype=np.int64)
        self.keep_u = DECAY_UNITY - (np.asarray(params["du"], dtype=np.int64) + U_DECAY_OFFSET)
        self.keep_v = DECAY_UNITY - np.asarray(params["dv"], dtype=np.int64)
        self.bias = effective_bias(params["bias_mant"], params["bias_exp"])
        self.vth = np.asarray(params["vth"], dtype=np.int64) << VTH_SHIFT
        self.u_wraps = 0
        self.v_saturations = 0

    def step(self, a_in: np.ndarray) -> np.ndarray:
        u, n32 = _wrap_int32(_decay(self.u, self.keep_u) + (a_in << ACT_SHIFT))
        self.u_wraps += n32
        over, under = u > MAX_UV, u <= -MAX_UV
        if over.any() or under.any():
            self.u_wraps += int(over.sum() + under.sum())
            u = np.where(over, u - 2 * MAX_UV, np.where(under, u + 2 * MAX_UV, u))
        v, n32 = _wrap_int32(_decay(self.v, self.keep_v) + u + self.bias)
        self.v_saturations += n32
        clipped = np.clip(v, V_MIN, V_MAX)
        if clipped is not v:
            self.v_saturations += int(np.count_nonzero(clipped != v))
        spikes = clipped > self.vth
        self.u = u
        self.v = np.where(spikes, 0, clipped)
        return spikes
