"""Projection kernels: a CoreProjection's weights prepared once, applied to one step or a block of steps.

Integer exactness with float BLAS: spikes are 0/1 and weights integers, so every partial sum of row i
is bounded by its L1 norm sum_j |w_ij| (<= max|w| * fan_in). Below 2^24 float32 is exact whatever the
summation order, below 2^53 float64 is; the kernel picks float32 only when the bound proves it
(``Synapse.dtype``). Three ways to form the sums, chosen per call by activity:

- dense: ``spikes @ W^T`` (BLAS), best when many sources are active;
- gather (event-driven): only the rows of W^T of sources active in any sample of the call;
- sparse spikes (event-driven, scipy): the call's spikes as a CSR matrix times W^T, cost linear in the
  synaptic events; used for blocks of steps at low density;
- events (compiled, ``emulator.events``): each row adds the int8 synapse rows of its active sources,
  where the compiled neuron kernel runs too; it replaces the two above and the GEMM up to
  ``events.MAX_DENSITY``.

``weight`` may be a ``scipy.sparse`` matrix (2-D, shared by all instances); it is kept sparse.
Per-instance weights ``(*instances, n_dst, n_src)`` are shared by the samples (the last batch axis):
for the batch shape they count as ``(*instances, 1)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neurodeploy.emulator import events
from neurodeploy.emulator.int8gemm import MIN_MACS, Int8Weights
from neurodeploy.emulator.loihi import ACT_SHIFT, prepare_weights
from neurodeploy.emulator.network import CoreProjection
from neurodeploy.errors import NeurodeployError

FLOAT32_EXACT = 1 << 24
FLOAT64_EXACT = 1 << 53
# Gather rows of W^T when at most this fraction of the sources is active in the call (all samples).
GATHER_FRACTION = 0.25
# Multiply sparse spikes when at most this fraction of the spike matrix is set (blocks of steps).
SPARSE_SPIKE_DENSITY = 0.02
# Rows below which a CSR spike matrix does not pay for its construction.
SPARSE_MIN_ROWS = 16


def is_sparse(weight: Any) -> bool:
    """A scipy.sparse matrix or array, detected without importing scipy."""
    return type(weight).__module__.startswith("scipy.sparse")


def _scipy_sparse() -> Any | None:
    try:
        import scipy.sparse as sp
    except ImportError:  # scipy is optional: dense and gather paths need numpy only
        return None
    return sp


def instance_shape(proj: CoreProjection) -> tuple[int, ...]:
    """The batch shape a projection's weights imply: ``()`` if shared, else ``(*instances, 1)``."""
    if is_sparse(proj.weight):
        return ()
    lead = np.shape(proj.weight)[:-2]
    return (*lead, 1) if lead and math.prod(lead) > 1 else ()


def prepared_weights(proj: CoreProjection, numerics: str, arithmetic: str = "lava") -> Any:
    """Loihi: clipped and truncated as Lava's Dense/Sparse does once (explicit zeros dropped). Float: as is.

    Loihi 1 (``arithmetic="loihi1"``) applies a negative weight exponent to each weight before the sum
    (nengo-loihi ``discretize_weights``' lossy shift; brian2-loihi ``loihi_synapses.py``): a floor shift
    of every mantissa here, after which the synapse's own exponent is 0.
    """
    w = proj.weight
    per_synapse = numerics == "loihi" and arithmetic == "loihi1" and int(proj.weight_exp) < 0
    if is_sparse(w):
        sp = _scipy_sparse()
        w = sp.csr_matrix(w, copy=True)
        if numerics == "loihi":
            w.data = prepare_weights(w.data, proj.num_weight_bits, proj.sign_mode)
            if per_synapse:
                w.data = w.data >> -int(proj.weight_exp)
        w.eliminate_zeros()
        return w
    if numerics != "loihi":
        return np.asarray(w, dtype=float)
    w = _prepare_float32(w, proj.num_weight_bits, proj.sign_mode)
    if per_synapse:
        np.multiply(w, 2.0 ** int(proj.weight_exp), out=w)  # exact: a power of two on integers < 2^9
        np.floor(w, out=w)
    return w


def _prepare_float32(weight: Any, num_weight_bits: int, sign_mode: str) -> np.ndarray:
    """``loihi.prepare_weights`` computed in float32: exact (the results are integers in [-256, 255]),
    and half the bytes of int64 to move for a large matrix. Truncates like an int conversion."""
    w = np.array(weight, dtype=np.float32)
    np.trunc(w, out=w)
    inhibitory, mixed = sign_mode == "inhibitory", sign_mode == "mixed"
    if inhibitory:
        np.negative(w, out=w)
    np.maximum(w, -256.0 if mixed else 0.0, out=w)
    np.minimum(w, 255.0, out=w)
    step = float(2 ** (8 - int(num_weight_bits) + int(mixed)))
    np.multiply(w, 1.0 / step, out=w)
    np.floor(w, out=w)
    np.multiply(w, step, out=w)
    if inhibitory:
        np.negative(w, out=w)
    return w


def _max_abs(w: Any) -> float:
    """max |w| of a dense or sparse matrix, 0 when empty."""
    if is_sparse(w):
        return float(abs(w).max()) if w.nnz else 0.0
    return max(-float(w.min(initial=0)), float(w.max(initial=0)))


def fan_out(weight: Any) -> np.ndarray:
    """Synapses per source neuron, (*instances, n_src), of prepared weights."""
    if is_sparse(weight):
        return np.bincount(weight.indices, minlength=weight.shape[1]).astype(np.int64)
    return np.count_nonzero(weight, axis=-2).astype(np.int64)


def _transpose(a: np.ndarray, strip: int = 32) -> np.ndarray:
    """C-contiguous a.T of a 2-D array, copied in strips of rows: 2-3x faster than one strided copy."""
    out = np.empty(a.shape[::-1], dtype=a.dtype)
    for i in range(0, a.shape[0], strip):
        out[:, i : i + strip] = a[i : i + strip].T
    return out


def bool_csr(rows: np.ndarray, dtype: Any) -> Any:
    """CSR matrix of a 2-D 0/1 array, built directly from ``np.nonzero`` (faster than scipy's)."""
    sp = _scipy_sparse()
    r, c = np.nonzero(rows)
    indptr = np.zeros(rows.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(r, minlength=rows.shape[0]), out=indptr[1:])
    return sp.csr_matrix((np.ones(c.size, dtype=dtype), c, indptr), shape=rows.shape)


class Synapse:
    """One projection, ready to turn source spikes into the destination's input.

    ``mode`` says what ``apply`` returns: "fast" the input already multiplied by 2^6, as integers in
    ``dtype`` (for ``LoihiFastState``), "int" int64 input after the weight exponent (for
    ``LoihiCubaState``), "float" the float reference sum. ``row_bound`` bounds every row's |weight|
    sum, ``bound`` the largest input to u the projection can deliver in one step. ``event_pass`` allows
    the compiled event sums (``emulator.events``; numba must be loadable, as for the neuron kernel).
    """

    def __init__(
        self,
        proj: CoreProjection,
        numerics: str,
        batch_shape: tuple[int, ...],
        torch: Any | None = None,
        event_pass: bool = False,
        arithmetic: str = "lava",
    ) -> None:
        self.proj = proj
        self.numerics = numerics
        w = prepared_weights(proj, numerics, arithmetic)
        self.sparse = is_sparse(w)
        self.n_src, self.n_dst = proj.weight.shape[-1], proj.weight.shape[-2]
        self.fan_out = fan_out(w)
        # Bound on any row's |weight| sum: max|w| * fan-in first (two reductions); the exact row sums
        # only if that is too coarse for float32.
        big = _max_abs(w)
        self.row_bound = float(big) * self.n_src
        if self.row_bound >= FLOAT32_EXACT:
            l1 = abs(w).sum(axis=-1) if self.sparse else np.abs(w).sum(axis=-1, dtype=np.float64)
            self.row_bound = float(np.max(l1)) if np.size(l1) else 0.0
        if self.row_bound >= FLOAT64_EXACT and numerics == "loihi":
            raise NeurodeployError(f"a row's |weight| sum {self.row_bound:.3g} reaches 2^53",
                                   where=f"projection {proj.name!r}")  # fmt: skip
        exact32 = numerics == "loihi" and self.row_bound < FLOAT32_EXACT
        self.dtype = np.float32 if exact32 else np.float64
        self.exp = int(proj.weight_exp) if numerics == "loihi" else 0
        if arithmetic == "loihi1":  # a negative exponent was applied per weight above
            self.exp = max(self.exp, 0)
        # Largest |input| this projection can add to u (after the exponent and the 2^6 of the LIF).
        self.bound = self.row_bound * 2.0 ** (max(self.exp, 0) + ACT_SHIFT) if numerics == "loihi" else math.inf
        self.mode = "float" if numerics != "loihi" else "fast"
        self.groups = 0  # shared weights; else number of instance groups in the flattened layout
        self._rows_t: Any = None  # (n_src, n_dst) contiguous: row j = synapses of source j (gathers)
        if self.sparse:
            self._rows_t = w.T.tocsr().astype(self.dtype)
        else:
            lead = w.shape[:-2]
            wf = w.astype(self.dtype, copy=False)
            if lead and math.prod(lead) > 1:
                self.inst = tuple(batch_shape[:-1])  # instance axes of the batch (samples are last)
                self.groups = math.prod(self.inst)
                wf = np.broadcast_to(wf, (*self.inst, self.n_dst, self.n_src)).reshape(self.groups, self.n_dst, -1)
            self.w = wf.reshape(-1, self.n_dst, self.n_src) if self.groups else wf.reshape(self.n_dst, self.n_src)
        self.fan_out_b = self.fan_out.reshape(*self.fan_out.shape[:-1], *([1] if self.groups else []), self.n_src)
        self.calls = {"dense": 0, "gather": 0, "sparse": 0, "int8": 0, "events": 0}
        # int8 GEMM (``int8gemm``) for dense blocks when a loaded torch is handed in and the sums are exact
        self._torch = torch if self.mode == "fast" and self.dtype == np.float32 and not self.sparse else None
        self._int8: Int8Weights | None = None
        # compiled event sums (``events``) for shared dense weights with exact float32 sums
        self._events_ok = event_pass and self.mode == "fast" and self.dtype == np.float32 and not self.sparse
        self._events: Any = None

    @property
    def rows_t(self) -> Any:
        """W^T with one contiguous row per source, built on first use (a transpose costs ~ a GEMM)."""
        if self._rows_t is None:
            self._rows_t = _transpose(self.w)
        return self._rows_t

    # ------------------------------------------------------------------ sums

    def _rows(self, rows: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Sums for shared weights: rows (R, n_src) bool -> (R, n_dst) in ``self.dtype`` (dense: into ``out``)."""
        if self.sparse:
            self.calls["sparse"] += 1
            return (bool_csr(rows, self.dtype) @ self.rows_t).toarray()
        n_rows = rows.shape[0]
        nnz = int(np.count_nonzero(rows))
        if self._events_ok and nnz <= events.MAX_DENSITY * rows.size and self._use_events():
            self.calls["events"] += 1
            return self._events.sums(rows, out)
        if n_rows >= SPARSE_MIN_ROWS and nnz <= SPARSE_SPIKE_DENSITY * rows.size and _scipy_sparse() is not None:
            self.calls["sparse"] += 1
            return np.asarray(bool_csr(rows, self.dtype) @ self.rows_t)
        active = np.flatnonzero(rows.any(axis=0)) if n_rows > 1 else np.flatnonzero(rows[0])
        if active.size <= GATHER_FRACTION * self.n_src:
            self.calls["gather"] += 1
            if n_rows == 1:
                return self.rows_t[active].sum(axis=0, keepdims=True)
            return rows[:, active].astype(self.dtype) @ self.rows_t[active]
        if self._use_int8(rows):
            self.calls["int8"] += 1
            return self._int8.matmul(rows, 0, self.dtype, out)
        self.calls["dense"] += 1
        return np.matmul(rows.astype(self.dtype), self.w.T, out=out)  # BLAS reads the transposed view as is

    @property
    def grid_step(self) -> int:
        """The spacing of the prepared weights: the low bits Lava's Dense drops (``prepare_weights``)."""
        mixed = self.proj.sign_mode == "mixed"
        return 2 ** (8 - int(self.proj.num_weight_bits) + int(mixed))

    def _use_events(self) -> bool:
        """Build the int8 levels on first use; weights off a 256-level grid stay on the other paths."""
        if self._events is None:
            try:
                self._events = events.EventWeights(self.w, self.grid_step)
            except ValueError:
                self._events_ok = False
                return False
        return True

    def _use_int8(self, rows: np.ndarray) -> bool:
        """Dense 0/1 blocks big enough to pay for the detour, with weights that fit int8 levels."""
        if self._torch is None or rows.dtype != bool or rows[..., :1].size * self.n_src * self.n_dst < MIN_MACS:
            return False
        if self._int8 is None:
            try:
                self._int8 = Int8Weights(self._torch, self.w, self.grid_step)
            except ValueError:  # not on the expected grid: stay on float32 BLAS
                self._torch = None
                return False
        return True

    def _groups(self, x: np.ndarray) -> np.ndarray:
        """Sums for per-instance weights: x (G, R, n_src) bool -> (G, R, n_dst)."""
        active = np.flatnonzero(x.any(axis=(0, 1)))
        if active.size <= GATHER_FRACTION * self.n_src:
            self.calls["gather"] += 1
            return np.matmul(x[..., active].astype(self.dtype), self.w[..., active].transpose(0, 2, 1))
        if self._use_int8(x):
            self.calls["int8"] += 1
            return np.stack([self._int8.matmul(x[g], g, self.dtype) for g in range(self.groups)])
        self.calls["dense"] += 1
        # order "C": x may be a broadcast view (an input shared by all instances); astype's default keeps its
        # odd strides, which numpy's matmul cannot hand to BLAS (20x slower at 1024 x 1024)
        return np.matmul(x.astype(self.dtype, order="C"), self.w.transpose(0, 2, 1))

    def apply(self, spikes: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Spikes (K, *src_batch, n_src) of K consecutive steps -> inputs (K, *batch, n_dst) in ``mode``.

        The result's batch is the source's (shared weights) or the full batch (per-instance weights).
        With ``out`` (same shape), the result is written there instead of a new array.
        """
        k = spikes.shape[0]
        if not self.groups:
            rows = spikes.reshape(-1, self.n_src)
            direct = (out is not None and self.mode == "fast" and out.dtype == self.dtype and out.flags.c_contiguous
                      and out.size == rows.shape[0] * self.n_dst)  # fmt: skip
            acc = self._rows(rows, out.reshape(-1, self.n_dst) if direct else None)
            acc = acc.reshape(*spikes.shape[:-1], self.n_dst)
        else:
            pad = len(self.inst) + 3 - spikes.ndim  # align the batch axes right, after time
            s = spikes.shape[-2] if spikes.ndim > 2 else 1
            x = np.broadcast_to(spikes.reshape(k, *(1,) * pad, *spikes.shape[1:]), (k, *self.inst, s, self.n_src))
            x = x.reshape(k, self.groups, s, self.n_src).transpose(1, 0, 2, 3).reshape(self.groups, k * s, -1)
            acc = self._groups(x).reshape(self.groups, k, s, self.n_dst).transpose(1, 0, 2, 3)
            acc = acc.reshape(k, *self.inst, s, self.n_dst)
        return self.finish(acc, out)

    def finish(self, acc: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Apply the weight exponent (floor for negative ones, as Lava's shift on the sum) and the 2^6.

        ``acc`` is a fresh array (or ``out`` itself) and is scaled in place. Exact in float32 too: the
        sums are integers below 2^24, and scaling by 2^k only moves the exponent.
        """
        if self.mode == "int":
            acc = np.rint(acc).astype(np.int64)
            res = acc << self.exp if self.exp > 0 else acc >> -self.exp
        elif self.mode == "float":
            res = acc
        elif self.exp >= 0:
            return np.multiply(acc, float(2 ** (self.exp + ACT_SHIFT)), out=acc if out is None else out)
        else:
            np.multiply(acc, 2.0**self.exp, out=acc)
            np.floor(acc, out=acc)
            return np.multiply(acc, float(2**ACT_SHIFT), out=acc if out is None else out)
        if out is None:
            return res
        out[...] = res
        return out

    def events(self, delivered: np.ndarray, batch_shape: tuple[int, ...]) -> int:
        """Synaptic events of ``delivered`` source spikes (T, *src_batch, n_src), counted over the full batch."""
        counts = delivered.sum(axis=0, dtype=np.int64)
        if not self.groups and self.fan_out.ndim == 1:
            per_copy = int(counts.reshape(-1, self.n_src).sum(axis=0) @ self.fan_out)
            return per_copy * (math.prod(batch_shape) // max(math.prod(counts.shape[:-1]), 1))
        full = np.broadcast_to(counts, (*batch_shape, self.n_src))
        return int((full * self.fan_out_b).sum())
