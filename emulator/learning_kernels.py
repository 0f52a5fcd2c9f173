"""The learning engine's per-synapse work for the forward rule family, compiled; and its rounding draws.

Rounding draws are 7-bit integers hashed from (run key, projection, step, synapse index) with a
one-multiply finaliser (the top 7 bits of a mixed 64-bit word), so every synapse of every step has its
own draw (as the chip's per-synapse rounding), and the numpy reference path, the compiled kernel and
KP's transposed B can all reproduce them without storing them. ``r < frac·128`` has the probability
of Lava's ``uniform < frac``.

The kernel evaluates, per synapse and presentation in order, exactly what
``ProductSeries.accumulate`` and ``plasticity.apply_accumulator`` do for the rules the learning pass
writes on forward projections::

    dt = M*y0*d*y3 - M*y0*d*y2 - uK*t [- D*uK*w]        dw = 2^-b*uK*t

(products in that order, each clipped, the running sum clipped, the sum started at t·2^7), skipping
synapses whose products are all zero (their tag stays an exact integer and needs no draw).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurodeploy.emulator import kernels as _loihi_kernels
from neurodeploy.emulator.learning_rule import ACC_MAX, ACC_MIN, ProductSeries

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX = 0x7FB5D329728EA185
_STEP_MUL = 0xD6E8FEB86659FD93
_kernel: Any = None


def draw_key(seed: int, projection: str) -> int:
    """A 64-bit key for one projection of one run (stable across processes)."""
    import zlib

    return ((int(seed) & 0xFFFFFFFF) << 32 | zlib.crc32(projection.encode())) & _MASK


def draws7(key: int, step: int, index: np.ndarray) -> np.ndarray:
    """7-bit draws (0...127) for synapse ``index`` (flat indices in the projection's layout) at ``step``."""
    with np.errstate(over="ignore"):
        z = np.uint64((key + step * _STEP_MUL) & _MASK) + np.asarray(index, dtype=np.uint64) * np.uint64(_GOLDEN)
        z = _mix(z)
    return (z >> np.uint64(57)).astype(np.int64)


def forward_family(dt: ProductSeries, dw: ProductSeries) -> tuple[int, ...] | None:
    """(m, e, md, ed, e_move) when the rules are the learning pass's forward family, else None."""
    p = dt.products
    ok = (
        len(p) in (3, 4)
        and [q.dependency for q in p[:2]] == ["y0", "y0"]
        and [tuple(f.symbol for f in q.factors) for q in p[:2]] == [("d", "y3"), ("d", "y2")]
        and p[0].mantissa == -p[1].mantissa > 0
        and p[0].exponent == p[1].exponent
        and all(f.constant == 0 and not f.is_sign for q in p for f in q.factors)
        and p[2].dependency.startswith("u") and [f.symbol for f in p[2].factors] == ["t"]
        and (p[2].mantissa, p[2].exponent) == (-1, 0)
        and (len(p) == 3 or (p[3].dependency.startswith("u") and [f.symbol for f in p[3].factors] == ["w"]))
        and len(dw.products) == 1 and [f.symbol for f in dw.products[0].factors] == ["t"]
        and dw.products[0].mantissa == 1
    )  # fmt: skip
    if not ok:
        return None
    md, ed = (-p[3].mantissa, p[3].exponent) if len(p) == 4 else (0, 0)
    return p[0].mantissa, p[0].exponent, md, ed, dw.products[0].exponent


def graded_family(dt: ProductSeries, dw: ProductSeries) -> tuple[int, ...] | None:
    """(m, e, md, ed, e_move) when the rules are KP's B family, ``-M*y0*(x1-64)*y1*y0*y0 - uK*t [- D*uK*w]``.

    Its product is W's with pre and post swapped (δ·count·(−m) shifted by the same 5 bits), so the
    forward kernel computes it on Bᵀ with d := the post count and y2 / y3 := the parts of δ."""
    p = dt.products
    ok = (
        len(p) in (2, 3)
        and p[0].dependency == "y0"
        and [(f.symbol, f.constant) for f in p[0].factors] == [("x1", -64), ("y1", 0), ("y0", 0), ("y0", 0)]
        and not any(f.is_sign for f in p[0].factors)
        and p[0].mantissa < 0
        and p[1].dependency.startswith("u") and [f.symbol for f in p[1].factors] == ["t"]
        and (p[1].mantissa, p[1].exponent) == (-1, 0)
        and (len(p) == 2 or (p[2].dependency.startswith("u") and [f.symbol for f in p[2].factors] == ["w"]))
        and len(dw.products) == 1 and [f.symbol for f in dw.products[0].factors] == ["t"]
        and dw.products[0].mantissa == 1
    )  # fmt: skip
    if not ok or p[0].shift != 5:
        return None
    md, ed = (-p[2].mantissa, p[2].exponent) if len(p) == 3 else (0, 0)
    return -p[0].mantissa, p[0].exponent, md, ed, dw.products[0].exponent


def _mix(x):  # noqa: ANN001, ANN202
    x = (x ^ (x >> np.uint64(31))) * np.uint64(_MIX)
    return x ^ (x >> np.uint64(27))


def _clip(x, lo, hi):  # noqa: ANN001, ANN202
    return lo if x < lo else hi if x > hi else x


def _forward_rows(w, t, d, y2, y3, moves, steps, key, m, e, md, ed, e_move, stats):  # noqa: ANN001, ANN202, PLR0913
    """w, t: (A, P, Q) int64 in place; d: (Ad, Q, S) (samples last); y2, y3: (A, P, S); moves, steps: (S,)."""
    n_a, n_p, n_q = w.shape
    n_s = moves.shape[0]
    shared_d = d.shape[0] == 1
    any_move = False
    for s in range(n_s):
        any_move = any_move or moves[s]
    for row in prange(n_a * n_p):  # noqa: F821 - set to numba.prange on compilation
        a = row // n_p
        i = row % n_p
        ad = 0 if shared_d else a
        active = any_move
        for s in range(n_s):
            active = active or y2[a, i, s] != 0 or y3[a, i, s] != 0
        if not active:  # no δ and no move: every product is 0 and the tag stays an exact integer
            continue
        sat = 0
        for j in range(n_q):
            tt = t[a, i, j]
            ww = w[a, i, j]
            idx = np.uint64((a * n_p + i) * n_q + j) * np.uint64(_GOLDEN)
            for s in range(n_s):
                dj = d[ad, j, s]
                p3 = y3[a, i, s]
                p2 = y2[a, i, s]
                mv = moves[s]
                if not mv and (dj == 0 or (p2 == 0 and p3 == 0)):
                    continue
                acc = tt << 7
                if p3 != 0:  # δ has one sign: the other product is 0 and adds nothing
                    acc = _clip(acc + _clip(((dj * p3 * m) >> 5) << (e + 7), ACC_MIN, ACC_MAX), ACC_MIN, ACC_MAX)
                if p2 != 0:
                    acc = _clip(acc + _clip(((dj * p2 * -m) >> 5) << (e + 7), ACC_MIN, ACC_MAX), ACC_MIN, ACC_MAX)
                if mv:
                    acc = _clip(acc + _clip(-tt << 7, ACC_MIN, ACC_MAX), ACC_MIN, ACC_MAX)
                    if md != 0:
                        acc = _clip(acc + _clip((ww * -md) << (ed + 7), ACC_MIN, ACC_MAX), ACC_MIN, ACC_MAX)
                r = np.int64(0)
                if (acc & 127) != 0 or mv:
                    z = _mix(np.uint64(key + np.uint64(steps[s]) * np.uint64(_STEP_MUL)) + idx)
                    r = np.int64(z >> np.uint64(57))
                new_t = (acc >> 7) + (1 if r < (acc & 127) else 0)
                if new_t > 255 or new_t < -257:
                    sat += 1
                new_t = _clip(new_t, -257, 255)
                if mv:
                    acc_w = _clip((ww << 7) + _clip(tt << (e_move + 7), ACC_MIN, ACC_MAX), ACC_MIN, ACC_MAX)
                    nw = (acc_w >> 7) + (1 if r < (acc_w & 127) else 0)
                    ww = _clip(nw, -256, 255)
                tt = new_t
            t[a, i, j] = tt
            w[a, i, j] = ww
        stats[row] = sat


def available() -> bool:
    return _loihi_kernels.available()


def compiled() -> Any:
    """The compiled kernel (numba's on-disk cache after the first compilation)."""
    global _kernel
    if _kernel is None:
        import numba

        g = globals()
        g["prange"] = numba.prange
        g["_mix"] = numba.njit(cache=True, inline="always")(_mix)
        g["_clip"] = numba.njit(cache=True, inline="always")(_clip)
        _kernel = numba.njit(cache=True, parallel=True, nogil=True)(_forward_rows)
    return _kernel


prange: Any = range
