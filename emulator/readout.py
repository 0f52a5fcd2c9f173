"""Host-side readouts: the stateless nodes between a network's last neurons and its Output.

Why on the host: no chip population holds an Affine, a pooling or a conv without neurons behind it, and
dropping them would silently change what the network outputs. The values are float64 and exact; the
compile report says they ran on the host and what they cost (``Readout.host_ops_per_step``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neurodeploy.emulator.network import Readout


def _apply(weight: object, x: np.ndarray) -> np.ndarray:
    """``weight @ x`` over the last axis of x, for a dense or scipy.sparse weight."""
    flat = x.reshape(-1, x.shape[-1]).astype(float)
    out = np.asarray((weight @ flat.T).T) if hasattr(weight, "nnz") else flat @ np.asarray(weight, dtype=float).T
    return out.reshape(*x.shape[:-1], out.shape[-1])


def readout_values(readout: Readout, sources: Mapping[str, np.ndarray]) -> np.ndarray:
    """``value[t] = sum of W @ x_src[t - delay] + bias`` for (time, *batch, n) source recordings."""
    shape = None
    total: np.ndarray | None = None
    for term in readout.terms:
        x = sources[term.src]
        part = _apply(term.weight, x)
        if term.delay:
            late = np.zeros_like(part)
            late[term.delay :] = part[: part.shape[0] - term.delay] if term.delay < part.shape[0] else 0
            part = late
        total = part if total is None else np.broadcast_arrays(total, part)[0] + part
        shape = part.shape
    if total is None:  # only constants reach the Output
        first = next(iter(sources.values()))
        shape = (*first.shape[:-1], readout.size)
        total = np.zeros(shape)
    for delay, bias in readout.biases.items():
        total[delay:] += np.asarray(bias, dtype=float)
    return total
