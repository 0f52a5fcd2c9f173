"""Set-up of the Dask worker processes a study starts itself (``local`` and ``slurm``, not ``tcp://``).

Why: Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so glibc hands every freed block
above 64 KiB back to the system and the next numpy temporary of that size faults in fresh pages.
Chunks of the emulator allocate such temporaries every step. ``benchmarks/dask_worker_malloc.py``
runs the same chunks of 32 instances of a 4-64-3 network on 1000 samples on a worker with Dask's
setting and with glibc's thresholds raised through ``mallopt`` (trim 1 GiB, mmap 32 MiB): 13.9 against
17.7 instances/s (1.27x; 21.3 in a plain process). Arrays above 32 MiB are mapped and unmapped on their
own either way, so big chunks gain nothing (the 10,000-instance run of ``benchmarks/variability_chunked.py``
with chunks of 277: 33.1 and 33.2 instances/s) and a worker's peak stays what its arrays need.

The local workers also share the cores among their compiled kernels. Dask caps OpenMP, MKL and
OpenBLAS at one thread per worker but leaves numba's pool at one thread per core, so with one worker
per core every parallel kernel of the emulator runs as many threads as there are cores in each
worker, and the threads of different workers preempt one another inside the kernels' short parallel
regions. ``benchmarks/dask_worker_threads.py`` measures the difference.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
TRIM_BYTES, MMAP_BYTES = 1 << 30, 32 << 20


def tune_malloc() -> bool:
    """Raise glibc's trim and mmap thresholds in this process; False where there is no glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_BYTES)) and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_BYTES))
    except (OSError, AttributeError):  # musl and others: keep the allocator as it is
        return False


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def worker_env(workers: int, cores: int | None = None) -> dict[str, str]:
    """Environment for ``workers`` local worker processes on ``cores`` cores: numba's thread pool of
    cores // workers threads each (at least one), unless the user set ``NUMBA_NUM_THREADS`` already."""
    if "NUMBA_NUM_THREADS" in os.environ:
        return {}
    share = max(1, (cores or usable_cores()) // max(workers, 1))
    return {"NUMBA_NUM_THREADS": str(share)}


class MallocTuning(WorkerPlugin):
    """Runs ``tune_malloc`` in every worker, also in one that replaces a worker that died."""

    name = "neurodeploy-malloc"

    def setup(self, worker: Any) -> None:
        worker.neurodeploy_malloc_tuned = tune_malloc()
