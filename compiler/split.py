"""What a block of neurons needs on a core, and how to cut a population into blocks that fit one.

The counts are the ones ``rules.check_placement`` compares with a profile's ``[limits]``:

- neurons: the block's size (``neurons_per_core``);
- synapses: non-zero weights in the block's incoming rows, all incoming projections together
  (``synapse_memory_bits_per_core`` / synapse bits);
- fan-in axons: per incoming projection, one per distinct source neuron the block uses, two when the chip
  routes the sign by synapse row and the source drives both signs (``fan_in_axons_per_core``);
- fan-out axons: per neuron, one per distinct core that its targets lie on, cores of the neuron's own
  block included (``fan_out_axons_per_core``); network inputs come from the host and have none.

Neurons, synapses and fan-out axons add up neuron by neuron, so the largest block from a given start is
a search in a prefix sum. Fan-in axons do not add up (neighbours share sources), so they are counted as a
prefix of first uses: entry j is the number of distinct sources of the first j + 1 neurons. A neuron's
fan-out depends on how its targets are split and placed, which is why ``place`` places targets first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodeploy.compiler import weights as wt


@dataclass(frozen=True)
class Caps:
    """Per-core limits of a profile (None: unlimited), in the units the counts use."""

    neurons: int | None = None
    synapses: int | None = None  # synapse memory bits // bits per synapse
    axons_in: int | None = None
    axons_out: int | None = None

    def vector(self) -> np.ndarray:
        """The caps in the order of a demand vector (neurons, synapses, axons in, axons out)."""
        return np.array([np.inf if c is None else float(c) for c in self.astuple()])

    def astuple(self) -> tuple[int | None, ...]:
        return (self.neurons, self.synapses, self.axons_in, self.axons_out)


class Rows:
    """One projection's weight matrix (dst × src), read by row ranges without copying the matrix."""

    def __init__(self, weight: wt.Matrix) -> None:
        self.sparse = wt.is_sparse(weight)
        if self.sparse:
            self.w = weight if weight.format == "csr" else wt.csr(weight)
        else:
            self.w = np.asarray(weight)
        self.n_dst, self.n_src = self.w.shape

    def entries(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row relative to start, column, value) of the non-zero weights of rows start..stop, row-major."""
        if self.sparse:
            ptr = self.w.indptr
            a, b = int(ptr[start]), int(ptr[stop])
            cols, vals = self.w.indices[a:b], self.w.data[a:b]
            rows = np.repeat(np.arange(stop - start), np.diff(ptr[start : stop + 1]))
            keep = vals != 0
            return rows[keep], cols[keep], vals[keep]
        block = self.w[start:stop]
        rows, cols = np.nonzero(block)
        return rows, cols, block[rows, cols]

    def row_nnz(self) -> np.ndarray:
        return np.asarray(wt.row_nnz(self.w), dtype=np.int64)


def _groups(vals: np.ndarray, sign_rows: bool) -> tuple[np.ndarray | slice, ...]:
    return (vals > 0, vals < 0) if sign_rows else (slice(None),)


def axons_in(incoming: list[Rows], start: int, stop: int, sign_rows: bool) -> int:
    """Fan-in axons of neurons start..stop: distinct sources per projection (per sign on sign-row chips)."""
    total = 0
    for rows in incoming:
        _, cols, vals = rows.entries(start, stop)
        for group in _groups(vals, sign_rows):
            used = np.zeros(rows.n_src, dtype=bool)
            used[cols[group]] = True
            total += int(used.sum())
    return total


def axons_in_prefix(incoming: list[Rows], start: int, stop: int, sign_rows: bool) -> np.ndarray:
    """Fan-in axons of the blocks start..start+j+1 for j = 0 .. stop-start-1 (non-decreasing)."""
    new = np.zeros(stop - start, dtype=np.int64)
    for rows in incoming:
        r, cols, vals = rows.entries(start, stop)
        for group in _groups(vals, sign_rows):
            c, rr = cols[group], r[group]
            if c.size:
                _, first = np.unique(c, return_index=True)  # entries are row-major: first use = first row
                new += np.bincount(rr[first], minlength=stop - start)
    return np.cumsum(new)


def reach(outgoing: list[Rows], targets: list[list[tuple[int, int, int]]], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Which cores each of ``n`` source neurons reaches: ((n, k) bool, the k core ids).

    ``outgoing[i]`` is a projection from the source population, ``targets[i]`` its target's placed
    blocks as (start, stop, core); a neuron reaches a block's core when it has a weight in the block's rows.
    """
    cores = np.array(sorted({core for blocks in targets for *_, core in blocks}), dtype=np.int64)
    out = np.zeros((n, cores.size), dtype=bool)
    column = {int(c): i for i, c in enumerate(cores)}
    for rows, blocks in zip(outgoing, targets, strict=True):
        for start, stop, core in blocks:
            _, cols, _ = rows.entries(start, stop)
            out[cols, column[core]] = True
    return out, cores


def cut(
    size: int,
    row_synapses: np.ndarray,
    row_fan_out: np.ndarray,
    incoming: list[Rows],
    caps: Caps,
    sign_rows: bool,
) -> list[tuple[int, int]]:
    """Consecutive (start, stop) blocks, each as large as one core's limits allow (at least one neuron).

    A neuron too big for a core on its own gets a block of its own; ``rules`` reports it.
    """
    cum_syn = np.concatenate([[0], np.cumsum(row_synapses, dtype=np.int64)])
    cum_out = np.concatenate([[0], np.cumsum(row_fan_out, dtype=np.int64)])
    blocks, start = [], 0
    while start < size:
        stop = size if caps.neurons is None else min(size, start + caps.neurons)
        for cum, cap in ((cum_syn, caps.synapses), (cum_out, caps.axons_out)):
            if cap is not None:
                stop = min(stop, int(np.searchsorted(cum, cum[start] + cap, side="right")) - 1)
        stop = max(stop, start + 1)
        if caps.axons_in is not None and stop - start > 1:
            prefix = axons_in_prefix(incoming, start, stop, sign_rows)
            stop = start + max(1, int(np.searchsorted(prefix, caps.axons_in, side="right")))
        blocks.append((start, stop))
        start = stop
    return blocks
