"""Weight matrices as dense numpy arrays or scipy.sparse CSR, behind one small set of helpers.

Conv and pooling layers lower to matrices that are almost all zeros; above ``DENSE_LIMIT`` entries they
stay CSR so a 64-channel conv does not need gigabytes. Every pass (quantize, rules, place, artifact)
goes through these helpers, so it works on both without caring which one it got.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # scipy is optional: without it every matrix is dense
    import scipy.sparse as sp
except ImportError:  # pragma: no cover - exercised only without scipy
    sp = None

DENSE_LIMIT = 1 << 22  # entries; a dense float64 matrix of this size takes 32 MiB

Matrix = Any  # np.ndarray | scipy.sparse.csr_matrix


def is_sparse(w: Matrix) -> bool:
    return sp is not None and sp.issparse(w)


def csr(w: Matrix) -> Matrix:
    """``w`` as a CSR matrix (scipy required)."""
    if sp is None:  # pragma: no cover
        raise ImportError("scipy is needed for sparse weights")
    out = sp.csr_matrix(w)
    out.sum_duplicates()
    return out


def from_coo(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, shape: tuple[int, int]) -> Matrix:
    """A matrix from (row, col, value) triplets: dense when small or scipy is missing, else CSR."""
    keep = data != 0
    rows, cols, data = rows[keep], cols[keep], data[keep]
    if sp is None or shape[0] * shape[1] <= DENSE_LIMIT:
        out = np.zeros(shape)
        np.add.at(out, (rows, cols), data)
        return out
    return csr(sp.coo_matrix((data, (rows, cols)), shape=shape))


def to_dense(w: Matrix) -> np.ndarray:
    return w.toarray() if is_sparse(w) else np.asarray(w)


def nnz(w: Matrix) -> int:
    return int(w.count_nonzero()) if is_sparse(w) else int(np.count_nonzero(w))


def values(w: Matrix) -> np.ndarray:
    """The stored values (all entries of a dense matrix, the explicit ones of a sparse matrix)."""
    return w.data if is_sparse(w) else np.asarray(w).reshape(-1)


def abs_max(w: Matrix) -> float:
    vals = values(w)
    return float(np.abs(vals).max()) if vals.size else 0.0


def row_abs_sum(w: Matrix) -> np.ndarray:
    if is_sparse(w):
        return np.asarray(abs(w).sum(axis=1)).reshape(-1)
    return np.abs(w).sum(axis=1)


def row_abs_max(w: Matrix) -> np.ndarray:
    if is_sparse(w):
        return np.asarray(abs(w).max(axis=1).todense()).reshape(-1)
    return np.abs(w).max(axis=1) if w.shape[1] else np.zeros(w.shape[0])


def row_nnz(w: Matrix) -> np.ndarray:
    if is_sparse(w):
        return np.diff(csr(w).indptr) if w.nnz == w.count_nonzero() else np.asarray((w != 0).sum(axis=1)).reshape(-1)
    return np.count_nonzero(w, axis=1)


def scale_rows(w: Matrix, gain: np.ndarray) -> Matrix:
    """diag(gain) @ w, keeping the format."""
    if is_sparse(w):
        return csr(sp.diags(gain) @ w)
    return gain[:, None] * w


def map_values(w: Matrix, fn: Any, dtype: Any = None) -> Matrix:
    """Apply an elementwise function with fn(0) = 0 to the stored values, keeping the format."""
    if is_sparse(w):
        out = csr(w).copy()
        out.data = np.asarray(fn(out.data), dtype=dtype or out.data.dtype)
        out.eliminate_zeros()
        return out
    out = fn(np.asarray(w))
    return out.astype(dtype) if dtype is not None else out


def rows(w: Matrix, start: int, stop: int) -> Matrix:
    return w[start:stop]


def used_columns(w: Matrix) -> np.ndarray:
    """Boolean per column: does any row use it (one input axon per used source neuron)."""
    if is_sparse(w):
        c = csr(w)
        out = np.zeros(w.shape[1], dtype=bool)
        out[c.indices[c.data != 0]] = True
        return out
    return np.any(w != 0, axis=0)


def signed_columns(w: Matrix) -> tuple[np.ndarray, np.ndarray]:
    """Columns used with a positive and with a negative weight (chips that route sign by synapse row)."""
    if is_sparse(w):
        c = csr(w)
        pos = np.zeros(w.shape[1], dtype=bool)
        neg = np.zeros(w.shape[1], dtype=bool)
        pos[c.indices[c.data > 0]] = True
        neg[c.indices[c.data < 0]] = True
        return pos, neg
    return np.any(w > 0, axis=0), np.any(w < 0, axis=0)


def matmul(a: Matrix, b: Matrix) -> Matrix:
    """a @ b; sparse when either is sparse and the product is large."""
    out = a @ b
    if is_sparse(out) and out.shape[0] * out.shape[1] <= DENSE_LIMIT:
        return out.toarray()
    return out


def add(a: Matrix, b: Matrix) -> Matrix:
    out = a + b
    if is_sparse(out):
        return csr(out) if out.shape[0] * out.shape[1] > DENSE_LIMIT else out.toarray()
    return np.asarray(out)


def identity(n: int) -> Matrix:
    if sp is not None and n * n > DENSE_LIMIT:
        return csr(sp.identity(n, format="csr"))
    return np.eye(n)


def mat_vec(w: Matrix, x: np.ndarray) -> np.ndarray:
    return np.asarray(w @ x).reshape(-1)
