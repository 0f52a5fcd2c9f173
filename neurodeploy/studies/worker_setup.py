"""Set-up of the Dask worker processes a study starts itself (``local`` and ``slurm``, not ``tcp://``).

Why: Dask starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536``, so glibc hands every freed block
above 64 KiB back to the system and the next numpy temporary of that size faults in fresh pages.
Chunks of the emulator allocate such temporaries every step. ``benchmarks/dask_worker_malloc.py``
runs the same chunks of 32 instances of a 4-64-3 network on 1000 samples on a worker with Dask's
setting and with glibc's thresholds raised through ``mallopt`` (trim 1 GiB, mmap 32 MiB): 13.9 against
17.7 instances/s (1.27x; 21.3 in a plain process). Arrays above 32 MiB are mapped and unmapped on their
own either way, so big chunks gain nothing (the 10,000-instance run of ``benchmarks/variability_chunked.py``
with chunks of 277: 33.1 and 33.2 instances/s) and a worker's peak stays what its arrays need.
"""

from __future__ import annotations

import ctypes
import ctypes.util
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


class MallocTuning(WorkerPlugin):
    """Runs ``tune_malloc`` in every worker, also in one that replaces a worker that died."""

    name = "neurodeploy-malloc"

    def setup(self, worker: Any) -> None:
        worker.neurodeploy_malloc_tuned = tune_malloc()
