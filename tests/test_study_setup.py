"""Study set-up that needs no run: chunk plans within a memory budget, memory sizes, the SLURM
configuration, executor names and the worker set-up of local clusters."""

from __future__ import annotations

import pytest

from neurodeploy.errors import NeurodeployError
from neurodeploy.studies.executors import SLURM_KEYS, open_executor, read_slurm_config
from neurodeploy.studies.learning_grid import learning_cell
from neurodeploy.studies.montecarlo import RESERVE_BYTES, ChunkMemory, parse_memory, plan_chunks
from neurodeploy.studies.study import run_study

# ----------------------------------------------------------------------------------------------------
# 6. chunk planning


LINEAR = ChunkMemory(elements=0, states=0, weights=(10 << 20) // 24)  # 10 MiB per instance, 8 MiB fixed
BLOCKED = ChunkMemory(elements=3_000_000, states=60_000, weights=1000)  # the block cap bites from 2 instances


@pytest.mark.parametrize(
    ("instances", "memory", "budget", "workers"),
    [(12, LINEAR, RESERVE_BYTES + (50 << 20), 1), (12, LINEAR, RESERVE_BYTES + (50 << 20), 8),
     (100, BLOCKED, RESERVE_BYTES + (400 << 20), 2), (7, LINEAR, 8 << 30, 1), (7, BLOCKED, 8 << 30, 3),
     (1, LINEAR, RESERVE_BYTES + (20 << 20), 4), (10, LINEAR, None, 3), (10, BLOCKED, None, 1)],
)  # fmt: skip
def test_chunks_cover_every_instance_once_within_budget(instances, memory, budget, workers):
    chunks = plan_chunks(instances, memory, budget, workers)
    covered = [k for first, count in chunks for k in range(first, first + count)]
    assert covered == list(range(instances))
    assert all(count >= 1 for _, count in chunks)
    if budget is not None:
        assert all(memory.bytes(count) <= budget - RESERVE_BYTES for _, count in chunks)
        largest = max(count for _, count in chunks)  # and no larger chunk would have fitted
        assert largest == instances or memory.bytes(largest + 1) > budget - RESERVE_BYTES or workers > 1
    if workers > 1:  # no worker idles for want of a chunk when there are instances enough
        assert max(count for _, count in chunks) <= -(-instances // workers)


def test_chunk_sizes_and_the_block_cap():
    assert plan_chunks(12, LINEAR, RESERVE_BYTES + (50 << 20)) == [(0, 4), (4, 4), (8, 4)]
    assert plan_chunks(10, LINEAR, None, 3) == [(0, 4), (4, 4), (8, 2)]
    assert plan_chunks(10, LINEAR, None, 1) == [(0, 10)]
    # past the emulator's block, an instance adds only its recording and state, not another block
    first, second, third = (BLOCKED.bytes(k) for k in (1, 2, 3))
    assert third - second < second - first


def test_budget_below_one_instance_names_max_memory():
    with pytest.raises(NeurodeployError, match="cannot hold one chip instance") as err:
        plan_chunks(12, LINEAR, RESERVE_BYTES + (15 << 20))
    assert err.value.where == "--max-memory"
    assert f"--max-memory {(RESERVE_BYTES >> 20) + 18}MB" in str(err.value)


def test_parse_memory():
    assert parse_memory("2GB") == 2 << 30
    assert parse_memory("512MiB") == 512 << 20
    assert parse_memory("1.5G") == 3 << 29
    assert parse_memory(" 64kb ") == 64 << 10
    assert parse_memory("1000") == 1000
    assert parse_memory(4096) == 4096
    assert parse_memory(None) is None
    for bad in ("lots", "", "GB", "-1GB", "0", "nan", "2 G B"):
        with pytest.raises(NeurodeployError, match="bad memory size") as err:
            parse_memory(bad)
        assert err.value.where == "--max-memory" and "2GB" in err.value.hint


@pytest.mark.parametrize("text", ["inf", "1e400GB", True, 0, -5])
def test_parse_memory_infinite(text):
    with pytest.raises(NeurodeployError, match="bad memory size"):
        parse_memory(text)


# ----------------------------------------------------------------------------------------------------
# 8. SLURM configuration


SLURM_TOML = """
[slurm]
cores = 4
memory = "6GB"
walltime = "00:45:00"
queue = "short"
job_name = "nd-study"
jobs = 3
"""


def test_read_slurm_config(tmp_path):
    path = tmp_path / "slurm.toml"
    path.write_text(SLURM_TOML)
    options, jobs = read_slurm_config(path)
    assert options == {"cores": 4, "memory": "6GB", "walltime": "00:45:00", "queue": "short", "job_name": "nd-study"}
    assert jobs == 3
    path.write_text('[slurm]\ncores = 2\nmemory = "1GB"\n')
    assert read_slurm_config(str(path)) == ({"cores": 2, "memory": "1GB"}, 1)


@pytest.mark.parametrize(
    ("text", "message", "hint"),
    [(None, "cannot read the cluster config", "check the path"),
     ('[other]\ncores = 2\n', "no [slurm] table", "add [slurm]"),
     ('[slurm]\nmemory = "1GB"\n', "[slurm] needs 'cores'", "cores = 8"),
     ('[slurm]\ncores = 2\n', "[slurm] needs 'memory'", 'memory = "16GB"'),
     ('[slurm]\ncores = 2\nmemory = "1GB"\ngpus = 1\n', "unknown [slurm] option 'gpus'", "jobs, account"),
     ('[slurm]\ncores = 2\nmemory = "1GB"\njobs = 0\n', "jobs must be a positive integer", "jobs = 4"),
     ('[slurm]\ncores = 2\nmemory = "1GB"\njobs = true\n', "jobs must be a positive integer", "jobs = 4"),
     ("[slurm\ncores = 2\n", "not valid TOML", "fix the file")],
)  # fmt: skip
def test_bad_slurm_config(tmp_path, text, message, hint):
    path = tmp_path / "slurm.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(NeurodeployError) as err:
        read_slurm_config(path)
    assert message in err.value.what and hint in err.value.hint and err.value.where == str(path)
    if "unknown" in message:  # the hint lists every accepted option
        assert all(key in err.value.hint for key in SLURM_KEYS)


def test_slurm_needs_a_config_file():
    with pytest.raises(NeurodeployError, match="needs a config file") as err:
        read_slurm_config(None)
    assert err.value.where == "--cluster-config" and "[slurm]" in err.value.hint


def test_slurm_options_make_a_job_script(tmp_path):
    jobqueue = pytest.importorskip("dask_jobqueue")
    path = tmp_path / "slurm.toml"
    path.write_text(SLURM_TOML)
    options, _ = read_slurm_config(path)
    cluster = jobqueue.SLURMCluster(**options)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH --cpus-per-task=4" in script
    assert "#SBATCH --mem=6G" in script
    assert "--nthreads" in script and "--nworkers" in script  # a worker command, not just a header
    assert "#SBATCH -t 00:45:00" in script
    assert "#SBATCH -p short" in script
    assert "#SBATCH -J nd-study" in script


# ----------------------------------------------------------------------------------------------------
# 9. executor names


def test_unknown_cluster_names_the_choices():
    with pytest.raises(NeurodeployError, match="unknown cluster 'kubernetes'") as err:
        open_executor("kubernetes", 3)
    for choice in ("serial", "local", "tcp://host:port", "slurm"):
        assert choice in err.value.hint
    assert err.value.where == "--cluster"
    with pytest.raises(NeurodeployError, match="unknown cluster 'seriel'"):
        run_study(learning_cell, [{"rule": "fa", "seed": 0}, {"rule": "fa", "seed": 1}], cluster="seriel")
    with pytest.raises(NeurodeployError, match="workers must be a positive integer"):
        open_executor("serial", 3, workers=0)
    assert open_executor("serial", 3).name == "serial"


def test_cell_function_must_be_importable():
    with pytest.raises(NeurodeployError, match="module-level function"):
        run_study(lambda rule: rule, [{"rule": "kp"}], cluster="serial")


def test_local_workers_share_the_cores_among_numba_pools(monkeypatch):
    pytest.importorskip("distributed")
    from neurodeploy.studies.worker_setup import worker_env

    monkeypatch.delenv("NUMBA_NUM_THREADS", raising=False)
    assert worker_env(2, cores=8) == {"NUMBA_NUM_THREADS": "4"}
    assert worker_env(3, cores=8) == {"NUMBA_NUM_THREADS": "2"}
    assert worker_env(4, cores=2) == {"NUMBA_NUM_THREADS": "1"}  # never below one thread
    monkeypatch.setenv("NUMBA_NUM_THREADS", "3")  # the user's own setting wins
    assert worker_env(2, cores=8) == {}


@pytest.mark.slow
def test_local_workers_get_glibc_thresholds_and_a_dashboard():
    """Workers a study starts itself run with raised malloc thresholds and their share of the cores for
    numba's thread pool (see studies.worker_setup)."""
    pytest.importorskip("distributed")
    pytest.importorskip("numba")
    import os
    import sys

    from neurodeploy.studies.worker_setup import usable_cores

    ex = open_executor("local", 2, workers=2)
    try:
        flags = ex.client.run(lambda dask_worker: getattr(dask_worker, "neurodeploy_malloc_tuned", None))
        assert len(flags) == 2 and set(flags.values()) == {sys.platform.startswith("linux")}
        threads = ex.client.run(lambda: __import__("numba").get_num_threads())
        expected = int(os.environ.get("NUMBA_NUM_THREADS") or max(1, usable_cores() // 2))
        assert set(threads.values()) == {expected}
        assert ex.slots == 2
        pytest.importorskip("bokeh")
        assert ex.dashboard and ex.dashboard.startswith("http://")
    finally:
        ex.close()
