"""The study layer: cells give the same results on every executor (serial, local processes, a Dask
scheduler), also when a worker dies mid-study; an interrupted study resumes from its store; a failing
cell is retried once and recorded; variability in memory-sized chunks equals the batched run."""

from __future__ import annotations

import json
import os
import signal
import time
import tracemalloc

import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes

import neurodeploy as nd
from neurodeploy.calibration import default_probe
from neurodeploy.errors import NeurodeployError
from neurodeploy.studies import learning_grid
from neurodeploy.studies.executors import SLURM_KEYS, open_executor, read_slurm_config
from neurodeploy.studies.learning_grid import learning_cell
from neurodeploy.studies.montecarlo import (
    RESERVE_BYTES,
    ChunkMemory,
    chunk_memory,
    parse_memory,
    plan_chunks,
    variability_chunk,
)
from neurodeploy.studies.store import ResultStore, cell_key
from neurodeploy.studies.study import run_study
from neurodeploy.variability import variability

SIGMA = {"v_threshold": 0.1, "weight@neuron": 0.1}
INSTANCES = 12
SWEEP = [0.5, 2]
CHUNK = 4  # instances per chunk the memory budget allows: 3 chunks of 12


def _data():
    rng = np.random.default_rng(0)
    x = rng.random((96, 4))
    y = (x[:, 0] > x[:, 1]).astype(int) + (x[:, 2] > 0.5)
    return x[:64], y[:64], x[64:], y[64:]


DATA = _data()


def cells(epochs: int = 2, seeds=(0, 1), rules=("fa", "kp")) -> list[dict]:
    return [{"rule": r, "profile": "loihi2", "seeds": 2, "epochs": epochs, "data": DATA, "hidden": [16], "seed": s}
            for r in rules for s in seeds]  # fmt: skip


def plain(results):
    """A cell's results as compared: whole (timings live in the records, not in the results)."""
    return list(results)


def comparable(res) -> dict:
    """A variability result without what legitimately differs between batched and chunked runs."""
    d = res.to_dict()
    d.pop("wall_seconds")
    d["calibration"]["trim"].pop("emulator_runs", None)
    return d


# ----------------------------------------------------------------------------------------------------
# fixtures: the dynapse2 test network (as in test_calibration), its batched variability, serial studies


@pytest.fixture(scope="module")
def dyn():
    graph = lif_graph(hidden=60)
    for node in graph.nodes.values():
        if isinstance(node, nir.Affine):
            node.bias[:] = 0
    compiled = nd.compile(graph, "dynapse2")
    x = spikes(batch=100, seed=5)
    return compiled, x, nd.run(compiled, x).predictions()


@pytest.fixture(scope="module")
def probe(dyn):
    """A smaller calibration probe than the default (16 samples, not 128): calibration dominates the time."""
    return default_probe(dyn[0].core, batch=16, seed=0)


@pytest.fixture(scope="module")
def budget(dyn, probe):
    """A per-worker memory budget holding CHUNK calibrating instances: several chunks of INSTANCES."""
    compiled, x, _ = dyn
    return RESERVE_BYTES + chunk_memory(compiled, x, calibrate=True, probe=probe).bytes(CHUNK)


@pytest.fixture(scope="module")
def batched(dyn, probe):
    compiled, x, labels = dyn
    return variability(compiled, x, labels, instances=INSTANCES, sigma=SIGMA, sweep=SWEEP, calibrate=True,
                       probe=probe)  # fmt: skip


@pytest.fixture(scope="module")
def serial_learning():
    return run_study(learning_cell, cells(), cluster="serial")


def chunked(dyn, probe, budget, **kw):
    compiled, x, labels = dyn
    return variability(compiled, x, labels, instances=INSTANCES, sigma=SIGMA, sweep=SWEEP, calibrate=True,
                       probe=probe, max_memory=budget, **kw)  # fmt: skip


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    try:
        yield cluster
    finally:
        cluster.close()


# ----------------------------------------------------------------------------------------------------
# 1. the same studies on every executor


def test_batched_variability_is_a_real_spread(batched):
    assert batched.instances == INSTANCES and len(batched.accuracy) == INSTANCES
    assert batched.std > 0 and len(batched.sweep) == 2
    assert batched.sweep[1]["mean"] < batched.sweep[0]["mean"]  # twice the sigma loses more accuracy
    assert len(batched.calibration["accuracy"]) == INSTANCES


def test_serial_learning_and_chunked_variability(serial_learning, dyn, probe, budget, batched):
    assert serial_learning.executor == "serial" and serial_learning.ran == 4 and serial_learning.reused == 0
    assert [c["status"] for c in serial_learning.cells] == ["ok"] * 4
    assert [c["params"]["rule"] for c in serial_learning.cells] == ["fa", "fa", "kp", "kp"]
    assert [c["params"]["seed"] for c in serial_learning.cells] == [0, 1, 0, 1]
    assert all(0 <= r["accuracy"]["mean"] <= 1 for r in serial_learning.results)
    # different seeds are different cells with different outcomes
    assert serial_learning.results[0]["accuracy"] != serial_learning.results[1]["accuracy"]
    # the same cells once more, in this process, give the same numbers
    again = run_study(learning_cell, cells(), cluster="serial")
    assert plain(again.results) == plain(serial_learning.results)

    stages = []
    res = chunked(dyn, probe, budget, cluster="serial", progress=lambda stage, done, total: stages.append(stage))
    assert any("3 chunks x 3 sigma points on serial" in s for s in stages)
    assert comparable(res) == comparable(batched)


@pytest.mark.slow
def test_local_processes_give_the_serial_results(serial_learning, dyn, probe, budget, batched):
    pytest.importorskip("distributed")
    study = run_study(learning_cell, cells(), cluster="local", workers=2)
    assert study.executor == "local" and study.ran == 4
    assert plain(study.results) == plain(serial_learning.results)
    stages = []
    res = chunked(
        dyn, probe, budget, cluster="local", workers=2, progress=lambda stage, done, total: stages.append(stage)
    )
    assert any("3 chunks x 3 sigma points on local" in s for s in stages)
    assert comparable(res) == comparable(batched)


@pytest.mark.slow
def test_dask_scheduler_gives_the_serial_results(dask_cluster, serial_learning, dyn, probe, budget, batched):
    address = dask_cluster.scheduler_address
    assert address.startswith("tcp://")
    study = run_study(learning_cell, cells(), cluster=address)
    assert study.executor == address and study.ran == 4
    assert plain(study.results) == plain(serial_learning.results)
    stages = []
    res = chunked(dyn, probe, budget, cluster=address, progress=lambda stage, done, total: stages.append(stage))
    assert any(f"3 chunks x 3 sigma points on {address}" in s for s in stages)
    assert comparable(res) == comparable(batched)


# ----------------------------------------------------------------------------------------------------
# 2. a worker dies mid-study


@pytest.mark.slow
def test_killed_worker_does_not_change_the_results(dask_cluster):
    distributed = pytest.importorskip("distributed")
    grid = cells(epochs=5)  # 4 cells of about a second: when the first is done, both workers are busy
    expected = [learning_cell(**params) for params in grid]
    client = distributed.Client(dask_cluster.scheduler_address)
    try:
        client.wait_for_workers(2, timeout=60)
        pids = client.run(os.getpid)
        assert len(pids) == 2
        killed = {}

        def kill_one(state):
            if killed or state.done < 1:
                return
            busy = [w for w, keys in client.processing().items() if keys and w in pids]
            victim = busy[0] if busy else next(iter(pids))
            killed.update(worker=victim, busy=bool(busy), done=state.done, total=state.total)
            os.kill(pids[victim], signal.SIGKILL)

        study = run_study(learning_cell, grid, cluster=dask_cluster.scheduler_address, progress=kill_one)
        assert killed and killed["busy"] and killed["done"] < killed["total"]  # killed while cells ran
        assert [c["status"] for c in study.cells] == ["ok"] * len(grid)
        assert all(c["attempts"] == 1 for c in study.cells)  # Dask reran the lost cell, not the study
        assert plain(study.results) == plain(expected)
        # the nanny replaced the killed worker process
        client.wait_for_workers(2, timeout=60)
        deadline = time.monotonic() + 30
        while pids[killed["worker"]] in client.run(os.getpid).values() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pids[killed["worker"]] not in client.run(os.getpid).values()
    finally:
        client.close()


# ----------------------------------------------------------------------------------------------------
# 3. an interrupted study resumes from its store


def test_interrupted_study_resumes(tmp_path, serial_learning):
    grid = cells()
    store = tmp_path / "study"

    def interrupt(state):
        if state.done >= 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_study(learning_cell, grid, store=store, cluster="serial", progress=interrupt)
    keys = [cell_key("neurodeploy.studies.learning_grid.learning_cell", p) for p in grid]
    assert sorted(p.name for p in store.iterdir()) == sorted(f"{k}.json" for k in keys[:2])
    assert [r["key"] for r in ResultStore(store).records()] == sorted(keys[:2])

    seen = []
    study = run_study(learning_cell, grid, store=store, cluster="serial", progress=lambda s: seen.append(s.reused))
    assert study.ran == 2 and study.reused == 2
    assert [c.get("reused", False) for c in study.cells] == [True, True, False, False]
    assert seen and set(seen) == {2}
    assert plain(study.results) == plain(serial_learning.results)
    assert sorted(p.name for p in store.iterdir()) == sorted(f"{k}.json" for k in keys)
    # a third run trains nothing
    third = run_study(learning_cell, grid, store=store, cluster="serial")
    assert third.ran == 0 and third.reused == 4 and third.results == study.results


# ----------------------------------------------------------------------------------------------------
# 4. a failing cell


def test_failing_cell_is_retried_recorded_and_rerun(tmp_path):
    grid = [cells(rules=("kp",), seeds=(0,))[0], {**cells(rules=("kp",), seeds=(1,))[0], "rule": "nonsense"},
            cells(rules=("kp",), seeds=(2,))[0]]  # fmt: skip
    store = ResultStore(tmp_path / "study")
    study = run_study(learning_cell, grid, store=store, cluster="serial")
    assert [c["status"] for c in study.cells] == ["ok", "failed", "ok"]
    bad = study.cells[1]
    assert bad["attempts"] == 2 and study.cells[0]["attempts"] == 1 and study.cells[2]["attempts"] == 1
    assert bad["error"].startswith("NeurodeployError: unknown rule 'nonsense'")
    assert "Traceback" in bad["traceback"] and "learning_cell" in bad["traceback"]
    assert study.results[1] is None and study.results[0]["rule"] == "kp" and study.results[2]["rule"] == "kp"
    assert study.failed == [bad]
    summary = study.summary()
    assert "3 cells on serial: 3 ran, 0 from the store, 1 failed" in summary
    assert '"rule": "nonsense"' in summary and "unknown rule 'nonsense'" in summary

    key = cell_key("neurodeploy.studies.learning_grid.learning_cell", grid[1])
    failed_file = tmp_path / "study" / f"{key}.failed.json"
    assert failed_file.exists() and not (tmp_path / "study" / f"{key}.json").exists()
    on_disk = json.loads(failed_file.read_text())
    assert on_disk["status"] == "failed" and "unknown rule 'nonsense'" in on_disk["error"]
    assert [f["key"] for f in store.failures()] == [key]
    assert len(store.records()) == 2  # failures are not results

    again = run_study(learning_cell, grid, store=store, cluster="serial")
    assert again.ran == 1 and again.reused == 2
    assert [c.get("reused", False) for c in again.cells] == [True, False, True]
    assert again.cells[1]["status"] == "failed" and again.cells[1]["attempts"] == 2

    # fixed (the same cell key now succeeding) removes the failure record
    fixed = {**again.cells[1], "status": "ok", "result": {"rule": "kp"}}
    store.put(key, fixed)
    assert not failed_file.exists() and store.failures() == [] and store.get(key)["result"] == {"rule": "kp"}


def test_retries_zero_records_the_first_failure(tmp_path):
    study = run_study(learning_cell, [{"rule": "nonsense", "data": DATA}], cluster="serial", retries=0)
    assert study.cells[0]["status"] == "failed" and study.cells[0]["attempts"] == 1


# ----------------------------------------------------------------------------------------------------
# 5. the store


def test_corrupt_cell_file_is_recomputed(tmp_path, serial_learning):
    grid = cells()
    store = tmp_path / "study"
    first = run_study(learning_cell, grid, store=store, cluster="serial")
    keys = [cell_key("neurodeploy.studies.learning_grid.learning_cell", p) for p in grid]
    path = store / f"{keys[1]}.json"
    text = path.read_text()
    path.write_text(text[: len(text) // 2])  # a half-written file
    (store / f"{keys[2]}.json").write_text(json.dumps({"format": "something else", "result": 1}))
    assert len(ResultStore(store).records()) == 2
    again = run_study(learning_cell, grid, store=store, cluster="serial")
    assert again.ran == 2 and again.reused == 2
    assert [c.get("reused", False) for c in again.cells] == [True, False, False, True]
    assert plain(again.results) == plain(first.results) == plain(serial_learning.results)
    assert json.loads(path.read_text())["status"] == "ok"
    assert len(ResultStore(store).records()) == 4


def test_keys_follow_the_parameters():
    name = "neurodeploy.studies.learning_grid.learning_cell"
    base = cells()[0]
    key = cell_key(name, base)
    assert len(key) == 32 and key == cell_key(name, dict(reversed(list(base.items()))))  # order does not matter
    assert key == cell_key(name, {**base, "data": tuple(a.copy() for a in DATA)})  # arrays by content
    assert key == cell_key(name, {**base, "hidden": (16,)})
    assert key != cell_key(name, {**base, "epochs": 3})
    assert key != cell_key(name, {**base, "seed": 1})
    assert key != cell_key(name, {**base, "mismatch": 0.1})
    assert key != cell_key("some.other.function", base)
    changed = [a.copy() for a in DATA]
    changed[0][0, 0] += 1e-9
    assert key != cell_key(name, {**base, "data": tuple(changed)})
    assert key != cell_key(name, {**base, "data": tuple(a.astype(np.float32) for a in DATA)})
    with pytest.raises(NeurodeployError, match="grid repeats a cell"):
        run_study(learning_cell, [base, dict(base)], cluster="serial")


def test_table_from_the_store_alone(tmp_path):
    conditions = ["float", "loihi2"]
    grid = learning_grid.grid(["kp", "fa"], conditions, seeds=2, epochs=2, data=DATA, hidden=[16])
    assert [(c["rule"], c["profile"]) for c in grid] == [("kp", "ideal"), ("kp", "loihi2"), ("fa", "ideal"),
                                                         ("fa", "loihi2")]  # fmt: skip
    study = run_study(learning_cell, grid, store=tmp_path / "study", cluster="serial")
    expected = learning_grid.table(study.results, conditions)
    records = ResultStore(tmp_path / "study").records()  # a new store object: nothing from the run
    assert len(records) == 4
    text = learning_grid.table([r["result"] for r in records], conditions)
    assert text == expected
    lines = text.splitlines()
    assert lines[0] == "| rule | float | loihi2 |"
    assert [line.split("|")[1].strip() for line in lines[2:]] == ["fa", "kp"]  # RULES order
    kp_loihi = next(r for r in study.results if r["rule"] == "kp" and r["profile"] == "loihi2")
    assert f"{100 * kp_loihi['accuracy']['mean']:.1f} ± " in lines[3].split("|")[3]
    assert "failed" not in text
    # a missing cell shows as failed
    assert "failed" in learning_grid.table([r["result"] for r in records[:3]], conditions)


def test_leftover_temp_file_is_not_a_record(tmp_path):
    store = ResultStore(tmp_path)
    key = cell_key("mod.fn", {"a": 1})
    store.put(key, {"status": "ok", "result": 1, "params": {}})
    # a process killed after writing its temporary file but before the rename leaves this behind
    (tmp_path / f".{key}.json.999.x1y2.tmp.json").write_text((tmp_path / f"{key}.json").read_text())
    assert [r["key"] for r in store.records()] == [key]


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
# 7. the memory estimate bounds the measured peak


@pytest.fixture(scope="module")
def wide():
    """A wider network than ``dyn`` (16-256-10, 200 samples of 50 steps): other proportions for the model."""
    graph = lif_graph(n_in=16, hidden=256, n_out=10)
    for node in graph.nodes.values():
        if isinstance(node, nir.Affine):
            node.bias[:] = 0
    compiled = nd.compile(graph, "dynapse2", strict=False)
    x = spikes(steps=50, batch=200, n=16, seed=5)
    return compiled, x, nd.run(compiled, x).predictions()


@pytest.mark.parametrize(
    ("network", "calibrate", "small_probe", "chunk"),
    [("dyn", False, False, 1), ("dyn", False, False, 4), ("dyn", False, False, 16), ("dyn", True, True, 4),
     ("dyn", True, False, 1), ("dyn", True, False, 2), ("dyn", True, False, 4),
     ("wide", False, False, 1), ("wide", False, False, 8), ("wide", True, False, 1), ("wide", True, False, 4)],
)  # fmt: skip
def test_chunk_peak_fits_the_budget(request, probe, network, calibrate, small_probe, chunk):
    """The budget holds exactly ``chunk`` instances by the estimate; the traced peak must fit the room."""
    compiled, x, labels = request.getfixturevalue(network)
    p = probe if small_probe else None  # None: calibration's default probe, 128 samples
    memory = chunk_memory(compiled, x, calibrate, p)
    budget = RESERVE_BYTES + memory.bytes(chunk)
    chunks = plan_chunks(2 * chunk, memory, budget)
    assert chunks == [(0, chunk), (chunk, chunk)]
    first, count = chunks[1]
    tracemalloc.start()
    try:
        out = variability_chunk(compiled, x, labels, first, count, 0, SIGMA, calibrate, p)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(out["accuracy"]) == count and ("calibrated" in out) == calibrate
    room = budget - RESERVE_BYTES
    assert peak < room, f"traced peak {peak / 2**20:.1f} MiB > room {room / 2**20:.1f} MiB for {count} instances"
    assert peak > room / 4, f"the estimate {room / 2**20:.1f} MiB is over 4x the peak {peak / 2**20:.1f} MiB"


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
        run_study(learning_cell, cells()[:2], cluster="seriel")
    with pytest.raises(NeurodeployError, match="workers must be a positive integer"):
        open_executor("serial", 3, workers=0)
    assert open_executor("serial", 3).name == "serial"


def test_cell_function_must_be_importable():
    with pytest.raises(NeurodeployError, match="module-level function"):
        run_study(lambda rule: rule, [{"rule": "kp"}], cluster="serial")


@pytest.mark.slow
def test_local_workers_get_glibc_thresholds_and_a_dashboard():
    """Workers a study starts itself run with raised malloc thresholds (see studies.worker_setup)."""
    pytest.importorskip("distributed")
    import sys

    ex = open_executor("local", 2, workers=2)
    try:
        flags = ex.client.run(lambda dask_worker: getattr(dask_worker, "neurodeploy_malloc_tuned", None))
        assert len(flags) == 2 and set(flags.values()) == {sys.platform.startswith("linux")}
        assert ex.slots == 2
        pytest.importorskip("bokeh")
        assert ex.dashboard and ex.dashboard.startswith("http://")
    finally:
        ex.close()


# ----------------------------------------------------------------------------------------------------
# the learning table at depth: gain over the frozen baseline, Welch's p, wall times


def _result(rule: str, depth: int, per_seed: list[float], angle: float | None = None) -> dict:
    acc = {"mean": float(np.mean(per_seed)), "std": float(np.std(per_seed)), "per_seed": per_seed}
    angles = {"B1": {"mean": angle, "std": 0.0}} if angle is not None else {}
    return {"rule": rule, "depth": depth, "profile": "loihi2", "mismatch": 0.0, "score": "test_accuracy",
            "accuracy": acc, "weight_angle": angles, "signal_angle": {}}  # fmt: skip


def test_welch_gain_and_p_value_match_scipy():
    from scipy.stats import ttest_ind

    a, b = [0.95, 0.96, 0.94, 0.97, 0.95], [0.90, 0.93, 0.91, 0.89, 0.92]
    gain, p = learning_grid.welch(a, b)
    assert gain == pytest.approx(np.mean(a) - np.mean(b))
    assert p == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue) and p < 0.01
    assert np.isnan(learning_grid.welch([0.9], [0.8])[1])  # one seed: no test
    assert np.isnan(learning_grid.welch([0.9, 0.9], [0.8, 0.8])[1])  # no spread: no test


def test_table_rows_per_depth_with_gain_p_and_wall_time():
    results = [_result("frozen", 1, [0.90, 0.91, 0.92]), _result("kp", 1, [0.95, 0.96, 0.94], 7.0),
               _result("frozen", 3, [0.85, 0.86, 0.84]), _result("kp", 3, [0.80, 0.82, 0.81], 30.0)]  # fmt: skip
    text = learning_grid.table(results, ["loihi2"], walls=[10.0, 20.0, 30.0, 40.0])
    lines = text.splitlines()
    assert lines[0] == "| rule | depth | loihi2 |"
    rows = {tuple(x.strip() for x in line.split("|")[1:3]): line.split("|")[3].strip() for line in lines[2:]}
    assert rows[("frozen", "1")] == "91.0 ± 0.8 · 10 s"  # the baseline has no gain column
    _, p = learning_grid.welch([0.95, 0.96, 0.94], [0.90, 0.91, 0.92])
    assert rows[("kp", "1")] == f"95.0 ± 0.8 (∠B 7°); +4.0 p={p:.2g} · 20 s"
    assert rows[("kp", "3")].startswith("81.0 ± 0.8 (∠B 30°); -4.0 p=")
    # one depth: no depth column, as in earlier tables
    assert learning_grid.table(results[:2], ["loihi2"]).splitlines()[0] == "| rule | loihi2 |"


def test_grid_gives_deep_networks_the_steps_to_relay_delta():
    cells = learning_grid.grid(["fa", "pal"], ["loihi2"], seeds=5, epochs=40, depths=(1, 3), width=32)
    assert [len(c["hidden"]) for c in cells] == [3, 1, 3, 1]  # slow rules first, deep first
    assert cells[0]["rule"] == "pal" and cells[0]["options"] == {"active": 23}
    assert "options" not in cells[1] and cells[1]["hidden"] == [32]
    # the default depth-1 cell keeps the parameters of earlier tables (and so their stored results)
    assert learning_grid.grid(["fa"], ["loihi2"], 5, 40)[0] == {"rule": "fa", "profile": "loihi2", "mismatch": 0.0,
                                                              "seeds": 5, "epochs": 40, "task": "yinyang"}  # fmt: skip
    with pytest.raises(NeurodeployError, match="depths must be positive"):
        learning_grid.grid(["fa"], ["loihi2"], 5, 40, depths=(0,))


def test_deep_learn_names_the_active_flag_and_it_works(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "neurodeploy.cli", "learn", "--rule", "fa", "--hidden", "8,8,8", "--epochs", "1",
           "--seeds", "1"]  # fmt: skip
    refused = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2 and "lower --active to 23" in refused.stderr and "Traceback" not in refused.stderr
    ok = subprocess.run([*cmd, "--active", "23"], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "fa on loihi2" in ok.stdout
