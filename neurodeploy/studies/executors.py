"""Where a study's cells run: in this process, on local worker processes, or on a Dask cluster.

One option picks it (``cluster=`` in the API, ``--cluster`` in the CLI):

- ``"serial"``: one cell after the other in this process;
- ``"local"``: a Dask ``LocalCluster`` of worker processes on this machine (``workers`` of them,
  default one per core, never more than there are cells; each worker's compiled kernels get an equal
  share of the cores, see ``studies.worker_setup``);
- ``"tcp://host:port"``: an existing Dask scheduler, with workers the user started
  (``dask scheduler`` and ``dask worker tcp://host:port``);
- ``"slurm"``: dask-jobqueue's ``SLURMCluster``, its options read from the TOML file named by
  ``cluster_config`` (``[slurm]`` table: cores, memory, walltime, queue, account, jobs, ...).

Dask is an optional dependency (the ``cluster`` extra) and is imported only for the last three. A
worker that dies is replaced and its cell rerun by Dask's scheduler; a cell that raises is handled by
the study layer (``studies.study``), which sees every outcome as a value, never an exception.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from neurodeploy.errors import NeurodeployError

WORKER_WAIT_S = 120  # how long a study waits for the first worker of an existing scheduler
INSTALL_HINT = "install the cluster extra: pip install 'neurodeploy[cluster]' (dask, distributed, dask-jobqueue)"
SLURM_KEYS = {"cores", "processes", "memory", "walltime", "queue", "account", "job_extra_directives",
              "job_script_prologue", "local_directory", "log_directory", "interface", "python",
              "worker_extra_args", "job_name", "shebang"}  # fmt: skip


def describe(cluster: str | None, cells: int) -> str:
    """The executor a study of ``cells`` cells gets: serial for one cell, local processes for more."""
    if cluster is not None:
        return cluster
    return "serial" if cells <= 1 or not dask_available() else "local"


def dask_available() -> bool:
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _check_name(cluster: str) -> None:
    if cluster in ("serial", "local", "slurm") or cluster.startswith(("tcp://", "tls://")):
        return
    raise NeurodeployError(
        f"unknown cluster {cluster!r}",
        "--cluster",
        "use serial, local, tcp://host:port (a running Dask scheduler) or slurm (with --cluster-config)",
    )


def read_slurm_config(path: str | Path | None) -> tuple[dict[str, Any], int]:
    """SLURMCluster's keyword arguments and the number of jobs, from a TOML file's ``[slurm]`` table."""
    if path is None:
        raise NeurodeployError(
            "--cluster slurm needs a config file with the [slurm] options",
            "--cluster-config",
            'write e.g. slurm.toml with [slurm] cores = 8, memory = "16GB", walltime = "02:00:00", jobs = 4',
        )
    path = Path(path)
    try:
        import tomllib
    except ImportError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("slurm")
    except OSError as exc:
        raise NeurodeployError(f"cannot read the cluster config: {exc.strerror}", str(path), "check the path") from None
    except tomllib.TOMLDecodeError as exc:
        raise NeurodeployError(f"the cluster config is not valid TOML: {exc}", str(path), "fix the file") from None
    if not isinstance(table, dict):
        raise NeurodeployError("no [slurm] table in the cluster config", str(path), "add [slurm] with cores, memory")
    options = dict(table)
    jobs = options.pop("jobs", 1)
    unknown = sorted(set(options) - SLURM_KEYS)
    if unknown:
        raise NeurodeployError(
            f"unknown [slurm] option {unknown[0]!r}", str(path), f"use any of: jobs, {', '.join(sorted(SLURM_KEYS))}"
        )
    for needed in ("cores", "memory"):
        if needed not in options:
            raise NeurodeployError(f"[slurm] needs {needed!r}", str(path), 'e.g. cores = 8, memory = "16GB"')
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise NeurodeployError(f"[slurm] jobs must be a positive integer, got {jobs!r}", str(path), "e.g. jobs = 4")
    return options, jobs


class SerialExecutor:
    """Cells run one after the other, here, when the study asks for the next outcome."""

    name = "serial"
    dashboard: str | None = None
    slots = 1

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        for i, task in enumerate(tasks):
            yield i, fn(task)

    def close(self) -> None:
        pass


class DaskExecutor:
    """Cells as Dask futures on a client; outcomes come back in the order they finish."""

    def __init__(self, cluster: str, workers: int | None, cells: int, cluster_config: str | Path | None) -> None:
        try:
            from distributed import Client
        except ImportError:
            raise NeurodeployError(f"--cluster {cluster} needs Dask", "--cluster", INSTALL_HINT) from None
        self.name = cluster
        self._cluster: Any = None
        if cluster == "local":
            from distributed import LocalCluster

            from neurodeploy.studies.worker_setup import worker_env

            n = workers or min(os.cpu_count() or 1, max(cells, 1))
            self._cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, env=worker_env(n),
                                         dashboard_address=":0" if _has_bokeh() else None)  # fmt: skip
            self.client = Client(self._cluster)
        elif cluster == "slurm":
            try:
                from dask_jobqueue import SLURMCluster
            except ImportError:
                raise NeurodeployError("--cluster slurm needs dask-jobqueue", "--cluster", INSTALL_HINT) from None
            options, jobs = read_slurm_config(cluster_config)
            self._cluster = SLURMCluster(**options)
            self._cluster.scale(jobs=workers or jobs)
            self.client = Client(self._cluster)
        else:
            try:
                self.client = Client(cluster, timeout="20s")
            except OSError as exc:
                raise NeurodeployError(
                    f"cannot reach the Dask scheduler: {exc}",
                    cluster,
                    "start one with `dask scheduler` and workers with `dask worker " + cluster + "`",
                ) from None
            try:  # a scheduler without workers would leave the study waiting with no word
                self.client.wait_for_workers(1, timeout=WORKER_WAIT_S)
            except TimeoutError:
                self.client.close()
                raise NeurodeployError(
                    f"the Dask scheduler has had no worker for {WORKER_WAIT_S} s",
                    cluster,
                    f"start workers with `dask worker {cluster} --nworkers 2 --nthreads 1`",
                ) from None
        if self._cluster is not None:  # workers this study started: glibc's thresholds (see worker_setup)
            from neurodeploy.studies.worker_setup import MallocTuning

            self.client.register_plugin(MallocTuning())
        self.dashboard = self.client.dashboard_link if (self._cluster is None or _has_bokeh()) else None

    @property
    def slots(self) -> int:
        return max(sum(self.client.nthreads().values()), 1)

    def run(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        futures = {self.client.submit(fn, task, pure=False): i for i, task in enumerate(tasks)}
        try:
            for fut in as_completed(futures):
                i = futures[fut]
                try:
                    yield i, fut.result()
                except Exception as exc:  # lost more workers than Dask allows (KilledWorker), or a cancel
                    yield i, _lost(exc)
        finally:
            self.client.cancel(list(futures))

    def close(self) -> None:
        self.client.close()
        if self._cluster is not None:
            self._cluster.close()


def _lost(exc: BaseException) -> dict[str, Any]:
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": "", "wall_s": 0.0}


def _has_bokeh() -> bool:
    try:
        import bokeh  # noqa: F401
    except ImportError:
        return False
    return True


def open_executor(
    cluster: str | None, cells: int, workers: int | None = None, cluster_config: str | Path | None = None
) -> SerialExecutor | DaskExecutor:
    """The executor for ``cluster`` (``describe`` picks one when it is None)."""
    name = describe(cluster, cells)
    _check_name(name)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise NeurodeployError(f"workers must be a positive integer, got {workers!r}", "--workers", "e.g. 4")
    if name == "serial":
        return SerialExecutor()
    return DaskExecutor(name, workers, cells, cluster_config)
