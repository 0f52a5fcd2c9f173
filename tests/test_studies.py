"""The study layer: cells give the same results on every executor (serial, local processes, a Dask
scheduler), also when a worker dies mid-study; an interrupted study resumes from its store; a failing
cell is retried once and recorded; variability in memory-sized chunks equals the batched run."""

from __future__ import annotations

import json
import os
import signal
import time
import tracemalloc

import numpy as np
import pytest
from conftest import lif_graph, spikes

import neurodeploy as nd
from neurodeploy.calibration import default_probe
from neurodeploy.errors import NeurodeployError
from neurodeploy.studies import learning_grid
from neurodeploy.studies.learning_grid import learning_cell
from neurodeploy.studies.montecarlo import (
    RESERVE_BYTES,
    chunk_memory,
    plan_chunks,
    variability_chunk,
)
from neurodeploy.studies.store import ResultStore, cell_key
from neurodeploy.studies.study import run_study
from neurodeploy.studies.variability import variability

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
    graph = lif_graph(hidden=60, bias=False)
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
    # a cell missing from the store shows as not run, and the others keep their text
    partial = learning_grid.table([r["result"] for r in records[:3]], conditions).splitlines()
    assert sum(line.count("| – ") for line in partial) == 1 and "failed" not in "\n".join(partial)


def test_leftover_temp_file_is_not_a_record(tmp_path):
    store = ResultStore(tmp_path)
    key = cell_key("mod.fn", {"a": 1})
    store.put(key, {"status": "ok", "result": 1, "params": {}})
    # a process killed after writing its temporary file but before the rename leaves this behind
    (tmp_path / f".{key}.json.999.x1y2.tmp.json").write_text((tmp_path / f"{key}.json").read_text())
    assert [r["key"] for r in store.records()] == [key]


# ----------------------------------------------------------------------------------------------------
# 7. the memory estimate bounds the measured peak


@pytest.fixture(scope="module")
def wide():
    """A wider network than ``dyn`` (16-256-10, 200 samples of 50 steps): other proportions for the model."""
    graph = lif_graph(n_in=16, hidden=256, n_out=10, bias=False)
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
