"""Shared fixtures: small NIR graphs and spike inputs built in code (no downloads)."""

from __future__ import annotations

import nir
import numpy as np
import pytest

DT = 1e-4


def write_tiny_model(path):  # noqa: ANN001, ANN201 - a Path in, the same Path out
    """Input(3) → Linear(2×3) → LIF(2) → Output, written as a NIR file without dt or reset: the smallest
    model the file-handling tests compile, corrupt or point elsewhere."""
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([3])), nir.Linear(np.ones((2, 3))), nir.LIF(*([np.ones(2)] * 4)), nir.Output(np.array([2]))
    )
    nir.write(str(path), graph)
    return path


def _bias(drawn: np.ndarray, keep: bool) -> np.ndarray:
    """The drawn biases, or zeros (drawn all the same, so the weights after them stay the same)."""
    return drawn if keep else np.zeros_like(drawn)


def lif_graph(
    n_in: int = 5, hidden: int = 30, n_out: int = 3, seed: int = 0, beta: float = 0.9, bias: bool = True
) -> nir.NIRGraph:
    """Affine -> LIF -> Affine -> LIF in snnTorch's dt = 1e-4 encoding (r = tau/dt).

    ``bias=False``: the same weights with zero biases (dynapse2 shares one bias per core)."""
    rng = np.random.default_rng(seed)
    tau = DT / (1 - beta)

    def lif(n: int) -> nir.LIF:
        return nir.LIF(tau=np.full(n, tau), r=np.full(n, tau / DT), v_leak=np.zeros(n), v_threshold=np.ones(n))

    graph = nir.NIRGraph.from_list(
        nir.Affine(weight=rng.normal(0, 0.6, (hidden, n_in)), bias=_bias(rng.normal(0, 0.05, hidden), bias)),
        lif(hidden),
        nir.Affine(weight=rng.normal(0, 0.5, (n_out, hidden)), bias=np.zeros(n_out)),
        lif(n_out),
    )
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph


def spikes(steps: int = 40, batch: int = 16, n: int = 5, p: float = 0.3, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((steps, batch, n)) < p


@pytest.fixture
def graph() -> nir.NIRGraph:
    return lif_graph()


@pytest.fixture
def inputs() -> np.ndarray:
    return spikes()
