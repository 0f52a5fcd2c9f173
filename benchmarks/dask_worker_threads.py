"""Local Dask workers with numba's default thread pool against pools that share the cores.

Dask starts each worker with OpenMP, MKL and OpenBLAS capped at one thread, but numba's pool keeps one
thread per core. A study on ``--cluster local`` starts one worker per core, so each parallel kernel of
the emulator then runs ``cores`` threads in every worker. ``studies.worker_setup.worker_env`` gives
each worker ``cores // workers`` threads instead. This runs the same cells on a ``LocalCluster`` of one
worker per core both ways, and on one worker alone with numba's default pool and with one thread (are
the kernels' parallel regions worth their threads at these sizes?), alternating the two settings of
each ``--rounds`` times so that a change of machine load hits both:

- learning cells: the chip variant of PAL on ``loihi2`` (Yin-Yang, 2 x 30 hidden, 5 seeds, 1 epoch),
  the learning table's kind of cell, whose kernels run on a few hundred samples at a time;
- variability chunks: 32 instances of a 4-64-3 dynapse2 network on 1000 samples of 32 steps each.

    .venv/bin/python benchmarks/dask_worker_threads.py [--cells 1] [--rounds 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
SIGMA = {"v_threshold": 0.1, "weight@neuron": 0.1}


def learning(k: int, warm_up: bool = False) -> Any:
    from neurodeploy.studies.learning_grid import learning_cell

    hidden = (8,) if warm_up else (30, 30)  # a warm-up loads the compiled kernels at the least cost
    return learning_cell("pal", profile="loihi2", seeds=5, epochs=1, task="yinyang", hidden=hidden, seed=k)


def variability(k: int, data: tuple, warm_up: bool = False) -> Any:
    from neurodeploy.studies.montecarlo import variability_chunk

    return variability_chunk(*data, k * 32, 2 if warm_up else 32, 0, SIGMA)


def network() -> tuple[Any, Any, Any]:
    from conftest import lif_graph, spikes

    import neurodeploy as nd

    graph = lif_graph(n_in=4, hidden=64, n_out=3, bias=False)  # dynapse2 shares one bias per core
    compiled = nd.compile(graph, "dynapse2", strict=False)
    x = spikes(steps=32, batch=1000, n=4, seed=5)
    return compiled, x, nd.run(compiled, x).predictions()


def cells_per_minute(fn: Callable[..., Any], extra: tuple, cells: int, threads: int, workers: int) -> float:
    """Cells per minute of ``cells`` cells per worker on a fresh cluster whose numba pools hold
    ``threads`` threads each."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                           env={"NUMBA_NUM_THREADS": str(threads)})  # fmt: skip
    client = Client(cluster)
    try:
        client.gather(
            [client.submit(fn, 1000 + w, *extra, warm_up=True, pure=False) for w in range(workers)]
        )  # warm-up
        t = time.perf_counter()
        client.gather([client.submit(fn, k, *extra, pure=False) for k in range(cells * workers)])
        return 60 * cells * workers / (time.perf_counter() - t)
    finally:
        client.close()
        cluster.close()


def main() -> None:
    from neurodeploy.studies.worker_setup import usable_cores

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cells", type=int, default=1, help="cells per worker and measurement")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    cores = usable_cores()
    workloads: dict[str, tuple[Callable[..., Any], tuple]] = {
        "learning cells": (learning, ()),
        "variability chunks": (variability, (network(),)),
    }
    # (workers, numba threads per worker both ways): one worker per core as a study starts them, Dask's
    # default pools against the shared ones; and one worker alone, where the kernels may use every core
    setups = [(cores, cores, 1), (1, cores, 1)]  # one worker per core: cores // workers = 1 thread each
    print(f"{cores} cores; cells/min, median of {args.rounds} rounds ({args.cells} cells per worker each)")
    for name, (fn, extra) in workloads.items():
        for workers, many, few in setups:
            rates: dict[int, list[float]] = {many: [], few: []}
            for _ in range(args.rounds):
                for threads in rates:
                    rates[threads].append(cells_per_minute(fn, extra, args.cells, threads, workers))
            a, b = (statistics.median(rates[t]) for t in (many, few))
            each = " | ".join(", ".join(f"{v:.1f}" for v in rates[t]) for t in (many, few))
            print(f"{name}, {workers} worker(s): {many} threads {a:.1f}, {few} thread(s) {b:.1f}, "
                  f"ratio {b / a:.2f} (rounds: {each})")  # fmt: skip


if __name__ == "__main__":
    main()
