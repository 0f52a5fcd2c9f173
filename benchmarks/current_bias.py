"""Current biases on Loihi: argmax agreement with ``ideal`` on recurrent CubaLIF networks with biases.

The network shape users reported: 12 inputs, a recurrent CubaLIF layer of 38 neurons, 7 CubaLIF
outputs, an Affine (with bias) on every edge, slow synaptic currents (tau_syn 20-60 ms at dt = 1 ms),
64 samples of 60 steps of random input spikes. Two ways to put a bias into the decaying current on a
chip whose bias acts on v only:

- ``clock``: what ``compile`` does (``compiler.current_bias``): the bias arrives through the bias
  clock as input to u, exactly;
- ``steady state``: the former approximation, the bias's steady state b/du added to v from step 0.

    .venv/bin/python benchmarks/current_bias.py [--seeds 8]
"""

from __future__ import annotations

import argparse
import warnings

import nir
import numpy as np

import neurodeploy as nd
import neurodeploy.compiler.current_bias as current_bias

DT = 1e-3


def network(seed: int) -> nir.NIRGraph:
    rng = np.random.default_rng(seed)
    n_in, n, n_out = 12, 38, 7

    def cuba(k: int) -> nir.CubaLIF:
        tau_mem = rng.uniform(0.01, 0.03, k)
        return nir.CubaLIF(tau_syn=rng.uniform(0.02, 0.06, k), tau_mem=tau_mem, r=tau_mem / DT,
                           v_leak=np.zeros(k), v_threshold=np.ones(k), w_in=np.ones(k))  # fmt: skip

    nodes = {
        "input": nir.Input(np.array([n_in])),
        "w_in": nir.Affine(rng.normal(0, 1.5, (n, n_in)), rng.normal(0, 0.3, n)),
        "rec": cuba(n),
        "w_rec": nir.Affine(rng.normal(0, 0.4, (n, n)), rng.normal(0, 0.1, n)),
        "w_out": nir.Affine(rng.normal(0, 1.0, (n_out, n)), rng.normal(0, 0.2, n_out)),
        "out": cuba(n_out),
        "output": nir.Output(np.array([n_out])),
    }
    edges = [("input", "w_in"), ("w_in", "rec"), ("rec", "w_rec"), ("w_rec", "rec"), ("rec", "w_out"),
             ("w_out", "out"), ("out", "output")]  # fmt: skip
    graph = nir.NIRGraph(nodes=nodes, edges=edges)
    graph.metadata.update({"neurodeploy.dt": DT, "neurodeploy.reset": "zero"})
    return graph


def agreement(graph: nir.NIRGraph, x: np.ndarray) -> float:
    chip, ideal = nd.run(nd.compile(graph, "loihi2"), x), nd.run(nd.compile(graph, "ideal"), x)
    return float(np.mean(chip.predictions() == ideal.predictions()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    routed = current_bias.route_current_biases
    rows = []
    for seed in range(args.seeds):
        graph = network(seed)
        x = np.random.default_rng(100 + seed).random((60, 64, 12)) < 0.1
        clock = agreement(graph, x)
        current_bias.route_current_biases = lambda ir: (ir, [])  # the former steady-state approximation
        try:
            steady = agreement(graph, x)
        finally:
            current_bias.route_current_biases = routed
        rows.append((clock, steady))
        print(f"seed {seed}: argmax agreement with ideal: clock {100 * clock:.1f} %, steady state {100 * steady:.1f} %")
    clock, steady = np.mean(rows, axis=0)
    print(f"mean over {args.seeds} networks: clock {100 * clock:.1f} %, steady state {100 * steady:.1f} %")


if __name__ == "__main__":
    main()
