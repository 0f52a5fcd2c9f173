"""Dask workers with and without raised glibc malloc thresholds, against the same chunks in this process.

Dask starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``; ``studies.worker_setup.MallocTuning`` raises
glibc's trim threshold to 1 GiB and its mmap threshold to 32 MiB in the workers a study starts. This runs
``--repeats`` variability chunks of ``--chunk`` instances of a 4-64-3 dynapse2 network on 1000 samples of
32 steps, on a one-worker ``LocalCluster`` without the tuning, with it, and in this process, alternating
the two worker settings ``--rounds`` times so that a change of machine load hits both.

    .venv/bin/python benchmarks/dask_worker_malloc.py [--chunk 32] [--repeats 3] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import neurodeploy as nd
from neurodeploy.studies.montecarlo import variability_chunk

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
SIGMA = {"v_threshold": 0.1, "weight@neuron": 0.1}


def network() -> tuple[Any, Any, Any]:
    from conftest import lif_graph, spikes

    graph = lif_graph(n_in=4, hidden=64, n_out=3, bias=False)  # dynapse2 shares one bias per core
    compiled = nd.compile(graph, "dynapse2", strict=False)
    x = spikes(steps=32, batch=1000, n=4, seed=5)
    return compiled, x, nd.run(compiled, x).predictions()


def on_worker(args: tuple, chunk: int, repeats: int, tuned: bool) -> float:
    """Instances per second of ``repeats`` chunks on a fresh one-worker cluster."""
    from distributed import Client, LocalCluster

    from neurodeploy.studies.worker_setup import MallocTuning

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    client = Client(cluster)
    try:
        if tuned:
            client.register_plugin(MallocTuning())
        client.submit(variability_chunk, *args, 0, 2, 0, SIGMA, pure=False).result()  # imports, warm-up
        t = time.perf_counter()
        for k in range(repeats):
            client.submit(variability_chunk, *args, k * chunk, chunk, 0, SIGMA, pure=False).result()
        return repeats * chunk / (time.perf_counter() - t)
    finally:
        client.close()
        cluster.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunk", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    data = network()
    rates: dict[str, list[float]] = {"Dask default": [], "Dask + MallocTuning": []}
    for _ in range(args.rounds):
        rates["Dask default"].append(on_worker(data, args.chunk, args.repeats, False))
        rates["Dask + MallocTuning"].append(on_worker(data, args.chunk, args.repeats, True))
    t = time.perf_counter()
    for k in range(args.repeats):
        variability_chunk(*data, k * args.chunk, args.chunk, 0, SIGMA)
    here = args.repeats * args.chunk / (time.perf_counter() - t)
    print(f"chunks of {args.chunk} instances, {args.repeats} per measurement, {args.rounds} rounds")
    for name, values in rates.items():
        mid = statistics.median(values)
        rounds = ", ".join(f"{v:.1f}" for v in values)
        print(f"{name:>22}: {mid:6.1f} instances/s (rounds: {rounds}); this process / it: {here / mid:.2f}")
    print(f"{'this process':>22}: {here:6.1f} instances/s")
    ratio = statistics.median(rates["Dask + MallocTuning"]) / statistics.median(rates["Dask default"])
    print(f"tuned / default: {ratio:.2f}")


if __name__ == "__main__":
    main()
