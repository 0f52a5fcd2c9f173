"""Compiled Loihi CUBA-LIF update: one pass over the neurons per step, a whole block of steps per call.

Why: the numpy update (``LoihiFastState``) makes about ten passes over the state per step and pays
Python's per-call overhead for each; for one chip instance of 1024 neurons that overhead is most of
the run. Here numba compiles the int64 reference arithmetic of ``LoihiCubaState`` operation for
operation (decay by sign-magnitude shift, int32 wrap of the sums, 24-bit wrap of u, saturation of v,
refractory hold, strict compare, reset to 0 or by subtraction), so it needs no proof of range and
stays bit-exact by construction; the tests check it against the numpy classes and Lava.

numba is an optional dependency (the ``fast`` extra). Without it ``available()`` is False and the
emulator uses the numpy classes; nothing here is imported by ``import neurodeploy``.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np

from neurodeploy.emulator.loihi import (
    DECAY_UNITY,
    INT32_MAX,
    INT32_MIN,
    MAX_UV,
    U_DECAY_OFFSET,
    V_MAX,
    V_MIN,
    VTH_SHIFT,
    Violation,
    check_reset,
    effective_bias,
    refractory_steps,
)

# Violation kinds in the order LoihiCubaState checks them within a step.
KINDS = ("int32 overflow of u", "u wrap (24 bit)", "int32 overflow of v", "v saturation")
# Neurons per parallel chunk: u, v, parameters of a chunk (6 x 8 bytes each) stay within L1/L2.
CHUNK = 2048
# Neuron-steps from which "auto" loads the compiled kernel in a process that has not yet: loading numba
# and the cached kernel takes about 0.45 s here, what the numpy update spends on ~2^24 neuron-steps.
AUTO_MIN_UPDATES = 1 << 24
_kernel: Any = None
_step_range: Any = None
prange: Any = range  # numba.prange once compiled


def available() -> bool:
    """True when numba can be imported (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def worth_it(updates: int) -> bool:
    """Whether a run of ``updates`` neuron-steps should use the compiled kernel: always once loaded;
    before that only from ``AUTO_MIN_UPDATES`` on, since loading numba and the cached kernel costs a
    few tenths of a second per process (a first compilation several seconds, once per machine)."""
    return _kernel is not None or (updates >= AUTO_MIN_UPDATES and available())


def _fast_step_py(u, v, c, u_out, v_out, c_out, a64, keep_u, keep_v, bias, vth, refr, sub, spikes):  # noqa: ANN001, ANN202
    """One step of LoihiCubaState's arithmetic on one chunk, (u, v, c) -> (u_out, v_out, c_out); returns
    the number of u and v fix-ups. c is the refractory counter (zero without refractory periods), ``sub``
    1 for the subtractive reset.

    Branches only on the rare fix-ups and keeps its counters in registers, so that it vectorises.
    """
    n_u = 0
    n_v = 0
    for i in range(u.shape[0]):
        x = u[i] * keep_u[i]
        x = (x >> 12) if x >= 0 else -((-x) >> 12)
        x += np.int64(a64[i])
        if x > INT32_MAX or x < INT32_MIN:
            n_u += 1
            x = ((x - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN
        if x > MAX_UV or x <= -MAX_UV:
            n_u += 1
            x = x - 2 * MAX_UV if x > 0 else x + 2 * MAX_UV
        u_out[i] = x
        y = v[i] * keep_v[i]
        y = (y >> 12) if y >= 0 else -((-y) >> 12)
        y += x + bias[i]
        if y > INT32_MAX or y < INT32_MIN:
            n_v += 1
            y = ((y - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN
        if y > V_MAX or y < V_MIN:
            n_v += 1
            y = V_MAX if y > 0 else V_MIN
        held = c[i] > 0
        y = 0 if held else y
        fired = y > vth[i]
        spikes[i] = fired
        c_out[i] = refr[i] if fired else (c[i] - 1 if held else 0)
        v_out[i] = (y - vth[i] if sub else 0) if fired else y
    return n_u, n_v


def _noting_step_py(
    u, v, c, u_out, v_out, c_out, a64, keep_u, keep_v, bias, vth, refr, sub, spikes, first, t, lo, peaks
):  # noqa: ANN001, ANN202, E501
    """``_fast_step`` that also notes each kind's first occurrence: (step, neuron, value before the fix-up),
    and raises ``peaks`` to the largest |u| and |v| before the fix-ups (for the compiler's headroom report;
    a run that tracks peaks takes this path every step, the others only to note a first violation)."""
    n_u = 0
    n_v = 0
    p_u = peaks[0]
    p_v = peaks[1]
    for i in range(u.shape[0]):
        x = u[i] * keep_u[i]
        x = (x >> 12) if x >= 0 else -((-x) >> 12)
        x += np.int64(a64[i])
        p_u = max(p_u, abs(x))
        if x > INT32_MAX or x < INT32_MIN:
            if first[0, 0] < 0:
                first[0, 0], first[0, 1], first[0, 2] = t, lo + i, x
            n_u += 1
            x = ((x - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN
        if x > MAX_UV or x <= -MAX_UV:
            if first[1, 0] < 0:
                first[1, 0], first[1, 1], first[1, 2] = t, lo + i, x
            n_u += 1
            x = x - 2 * MAX_UV if x > 0 else x + 2 * MAX_UV
        u_out[i] = x
        y = v[i] * keep_v[i]
        y = (y >> 12) if y >= 0 else -((-y) >> 12)
        y += x + bias[i]
        p_v = max(p_v, abs(y))
        if y > INT32_MAX or y < INT32_MIN:
            if first[2, 0] < 0:
                first[2, 0], first[2, 1], first[2, 2] = t, lo + i, y
            n_v += 1
            y = ((y - INT32_MIN) & 0xFFFFFFFF) + INT32_MIN
        if y > V_MAX or y < V_MIN:
            if first[3, 0] < 0:
                first[3, 0], first[3, 1], first[3, 2] = t, lo + i, y
            n_v += 1
            y = V_MAX if y > 0 else V_MIN
        held = c[i] > 0
        y = 0 if held else y
        fired = y > vth[i]
        spikes[i] = fired
        c_out[i] = refr[i] if fired else (c[i] - 1 if held else 0)
        v_out[i] = (y - vth[i] if sub else 0) if fired else y
    peaks[0] = p_u
    peaks[1] = p_v
    return n_u, n_v


def _loihi_steps(
    u, v, c, ext, keep_u, keep_v, bias, vth, refr, sub, spikes, rec_u, rec_v, counts, first, t0, lo, peaks, track
):  # noqa: ANN001, ANN202, E501
    """Steps t0.. of one chunk of neurons (views; ``lo`` = index of its first neuron, for reports).

    u, v, c (n,) int64 in place; ext (K, n) input x 2^6; spikes (K, n) out. counts[0] / counts[1]
    accumulate u wraps / v saturations as LoihiCubaState counts them; first[kind] keeps (step, neuron,
    value) of the kind's first occurrence (step -1 while none); with ``track``, peaks[0] / peaks[1] the
    largest |u| / |v| before fix-ups. The state alternates between two buffers, so a step that needs a
    fix-up while a kind is still unseen can be redone from the untouched previous state by the noting
    variant; the common path carries no bookkeeping.
    """
    n = u.shape[0]
    u2 = np.empty(n, dtype=np.int64)
    v2 = np.empty(n, dtype=np.int64)
    c2 = np.empty(n, dtype=np.int64)
    for k in range(spikes.shape[0]):
        if k % 2 == 0:
            src_u, src_v, src_c, dst_u, dst_v, dst_c = u, v, c, u2, v2, c2
        else:
            src_u, src_v, src_c, dst_u, dst_v, dst_c = u2, v2, c2, u, v, c
        if track:
            n_u, n_v = _noting_step(  # noqa: F821
                src_u, src_v, src_c, dst_u, dst_v, dst_c, ext[k], keep_u, keep_v, bias, vth, refr, sub,
                spikes[k], first, t0 + k, lo, peaks,
            )  # fmt: skip
        else:
            n_u, n_v = _fast_step(  # noqa: F821
                src_u, src_v, src_c, dst_u, dst_v, dst_c, ext[k], keep_u, keep_v, bias, vth, refr, sub, spikes[k]
            )
            if (n_u or n_v) and (first[0, 0] < 0 or first[1, 0] < 0 or first[2, 0] < 0 or first[3, 0] < 0):
                n_u, n_v = _noting_step(  # noqa: F821
                    src_u, src_v, src_c, dst_u, dst_v, dst_c, ext[k], keep_u, keep_v, bias, vth, refr, sub,
                    spikes[k], first, t0 + k, lo, peaks,
                )  # fmt: skip
        counts[0] += n_u
        counts[1] += n_v
        if rec_u.shape[0]:
            rec_u[k] = dst_u
        if rec_v.shape[0]:
            rec_v[k] = dst_v
    if spikes.shape[0] % 2 == 1:  # the last step wrote the spare buffers
        u[:] = u2
        v[:] = v2
        c[:] = c2


def _loihi_chunks(
    u, v, c, ext, keep_u, keep_v, bias, vth, refr, sub, spikes, rec_u, rec_v, counts, first, t0, chunk, peaks, track
):  # noqa: ANN001, ANN202, E501
    """The block in chunks of neurons, in parallel: each chunk's state stays in cache over all steps.

    Neurons of a feed-forward population never interact within a block, so chunks are independent;
    per-chunk counters and first violations are merged afterwards (earliest step, then lowest index).
    ``ext`` (K, p) may hold fewer columns than there are neurons (p divides N): neuron i then reads
    column i mod p, the input shared by every chip instance and sample, which is never copied N/p times.
    """
    n = u.shape[0]
    p = ext.shape[1]
    per_row = (p + chunk - 1) // chunk
    n_chunks = (n // p) * per_row
    # counts in columns 0-1, peaks in 2-3: one array, since every allocation here is a parallel region
    c_counts = np.zeros((n_chunks, 4), dtype=np.int64)
    c_first = np.full((n_chunks, 4, 3), -1, dtype=np.int64)
    for ch in prange(n_chunks):
        off = (ch % per_row) * chunk
        lo = (ch // per_row) * p + off
        hi = lo + min(chunk, p - off)
        _step_range(
            u[lo:hi], v[lo:hi], c[lo:hi], ext[:, off : off + hi - lo], keep_u[lo:hi], keep_v[lo:hi], bias[lo:hi],
            vth[lo:hi], refr[lo:hi], sub, spikes[:, lo:hi], rec_u[:, lo:hi], rec_v[:, lo:hi], c_counts[ch],
            c_first[ch], t0, lo, c_counts[ch, 2:], track,
        )  # fmt: skip
    for ch in range(n_chunks):
        counts[0] += c_counts[ch, 0]
        counts[1] += c_counts[ch, 1]
        if track:
            peaks[0] = max(peaks[0], c_counts[ch, 2])
            peaks[1] = max(peaks[1], c_counts[ch, 3])
        for kind in range(4):
            step = c_first[ch, kind, 0]
            if step >= 0 and (first[kind, 0] < 0 or step < first[kind, 0]):
                first[kind, 0], first[kind, 1], first[kind, 2] = step, c_first[ch, kind, 1], c_first[ch, kind, 2]


def _compiled() -> Any:
    """Compile (or load from numba's on-disk cache) the two kernels on first use."""
    global _kernel, _step_range, prange
    if _kernel is None:
        import numba

        prange = numba.prange
        jit = numba.njit(cache=True, nogil=True)
        globals().update(_fast_step=jit(_fast_step_py), _noting_step=jit(_noting_step_py))
        _step_range = jit(_loihi_steps)
        _kernel = numba.njit(cache=True, nogil=True, parallel=True)(_loihi_chunks)
    return _kernel


_NO_REC = np.zeros((0, 0), dtype=np.int64)


class LoihiCompiledState:
    """Same numbers as ``LoihiCubaState``; ``run`` advances a block of steps in one compiled call.

    ``step`` has ``LoihiFastState``'s signature (input already multiplied by 2^6) so the per-step loop of
    recurrent stages can use it too.
    """

    def __init__(self, shape: tuple[int, ...], params: dict[str, np.ndarray], reset: str = "zero") -> None:
        self.shape = tuple(shape)
        size = int(np.prod(shape))

        def full(x: Any) -> np.ndarray:
            return np.ascontiguousarray(np.broadcast_to(np.asarray(x, dtype=np.int64), self.shape)).reshape(size)

        du = np.asarray(params["du"], dtype=np.int64)
        self.keep_u = full(DECAY_UNITY - (du + U_DECAY_OFFSET))
        self.keep_v = full(DECAY_UNITY - np.asarray(params["dv"], dtype=np.int64))
        self.bias = full(effective_bias(params["bias_mant"], params["bias_exp"]))
        self.vth = full(np.asarray(params["vth"], dtype=np.int64) << VTH_SHIFT)
        ref = refractory_steps(params)
        self.refractory = full(0 if ref is None else ref)
        self.subtract = int(check_reset(reset))
        self._u = np.zeros(size, dtype=np.int64)
        self._v = np.zeros(size, dtype=np.int64)
        self._c = np.zeros(size, dtype=np.int64)  # refractory counter
        self._counts = np.zeros(2, dtype=np.int64)
        self._first = np.full((len(KINDS), 3), -1, dtype=np.int64)
        self._peaks = np.zeros(2, dtype=np.int64)
        self.track_peaks = False
        self.spikes = np.zeros(self.shape, dtype=bool)
        self._zeros = np.zeros((0, size), dtype=np.float32)

    @property
    def u(self) -> np.ndarray:
        return self._u.reshape(self.shape)

    @property
    def v(self) -> np.ndarray:
        return self._v.reshape(self.shape)

    @property
    def u_wraps(self) -> int:
        return int(self._counts[0])

    @property
    def v_saturations(self) -> int:
        return int(self._counts[1])

    @property
    def peak_u(self) -> float:
        return float(self._peaks[0])

    @property
    def peak_v(self) -> float:
        return float(self._peaks[1])

    @property
    def first_violation(self) -> Violation | None:
        """The earliest violation; within a step in LoihiCubaState's order of checks."""
        seen = [(int(f[0]), k) for k, f in enumerate(self._first) if f[0] >= 0]
        if not seen:
            return None
        step, kind = min(seen)
        index = np.unravel_index(int(self._first[kind, 1]), self.shape)
        return Violation(step, KINDS[kind], tuple(int(i) for i in index), float(self._first[kind, 2]))

    def run(
        self,
        a64: np.ndarray | None,
        t0: int,
        out: np.ndarray,
        rec_u: np.ndarray | None = None,
        rec_v: np.ndarray | None = None,
    ) -> None:
        """Steps t0..t0+K-1: ``a64`` input x 2^6, (K, *shape) or broadcastable to it, or None; spikes into
        ``out`` (K, *shape).

        ``out``, ``rec_u`` and ``rec_v`` must be C-contiguous (slices of the recordings along time are).
        """
        k, size = out.shape[0], self._u.size
        if size == 0 or k == 0:  # an empty batch or block: nothing to update (the chunking divides by size)
            return
        if a64 is None:  # no input this block: zeros keep the compiled loop free of a branch
            if self._zeros.shape[0] < k:
                self._zeros = np.zeros((k, size), dtype=np.float32)
            ext = self._zeros[:k]
        elif a64[0].size == size:
            ext = np.ascontiguousarray(a64).reshape(k, size)
        elif a64.shape[-1] == a64[0].size and size % a64.shape[-1] == 0:  # one input row shared by all
            ext = np.ascontiguousarray(a64).reshape(k, a64.shape[-1])
        else:  # shared along some batch axes only
            ext = np.ascontiguousarray(np.broadcast_to(a64, (k, *self.shape))).reshape(k, size)
        ru = _NO_REC if rec_u is None else rec_u.reshape(k, size)
        rv = _NO_REC if rec_v is None else rec_v.reshape(k, size)
        spikes = out.reshape(k, size)
        _compiled()(
            self._u, self._v, self._c, ext, self.keep_u, self.keep_v, self.bias, self.vth, self.refractory,
            self.subtract, spikes, ru, rv, self._counts, self._first, t0, CHUNK, self._peaks, self.track_peaks,
        )  # fmt: skip
        if not np.shares_memory(spikes, out):  # reshape copied: a non-contiguous out
            out[...] = spikes.reshape(out.shape)

    def step(
        self,
        a64: np.ndarray | None,
        t: int = 0,
        a_range: tuple[float, float] | None = None,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """One step (``a_range`` is accepted for interface parity and not needed)."""
        spikes = self.spikes if out is None else out
        self.run(None if a64 is None else np.asarray(a64)[None], t, spikes[None])
        return spikes
