"""A study: a grid of independent cells, each a pure call ``fn(**params)`` returning a small JSON result.

``run_study`` runs the cells on an executor (``studies.executors``), stores each as it finishes
(``studies.store``), skips cells already in the store, retries a cell that raised once, and returns
every cell's result in grid order, whatever order they finished in. A cell's result depends only on
its parameters (seeds included), so serial, local and cluster runs give identical results.

``fn`` must be importable by name (a module-level function), so that worker processes can run it.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurodeploy._version import __version__
from neurodeploy.errors import NeurodeployError
from neurodeploy.studies.executors import open_executor
from neurodeploy.studies.store import ResultStore, _canonical, cell_key


@dataclass
class StudyProgress:
    """What a progress display shows: cells finished (run or found in the store), running and failed."""

    total: int
    done: int = 0
    reused: int = 0
    running: int = 0
    failed: int = 0
    started: float = field(default_factory=time.perf_counter)
    executor: str = "serial"
    dashboard: str | None = None

    def line(self) -> str:
        text = f"{self.done}/{self.total} cells"
        if self.reused:
            text += f" ({self.reused} from the store)"
        return text + f", {self.running} running, {self.failed} failed"


@dataclass
class StudyResult:
    """Every cell's record in grid order: params, status ("ok" or "failed"), result or error, attempts."""

    cells: list[dict[str, Any]]
    ran: int
    reused: int
    executor: str
    dashboard: str | None
    wall_s: float

    @property
    def results(self) -> list[Any]:
        """The cells' results in grid order (None where a cell failed)."""
        return [c.get("result") for c in self.cells]

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [c for c in self.cells if c["status"] != "ok"]

    def summary(self) -> str:
        text = f"{len(self.cells)} cells on {self.executor}: {self.ran} ran, {self.reused} from the store"
        if self.failed:
            text += f", {len(self.failed)} failed: " + "; ".join(
                f"{json.dumps(c['params'])}: {c['error']}" for c in self.failed[:3]
            )
            if len(self.failed) > 3:
                text += f"; and {len(self.failed) - 3} more"
        return text


def function_name(fn: Callable[..., Any]) -> str:
    name = f"{fn.__module__}.{fn.__qualname__}"
    if "<" in fn.__qualname__:
        raise NeurodeployError(
            f"a study cell must be a module-level function, got {name}",
            "run_study",
            "define the cell function at the top level of an importable module",
        )
    return name


def attempt(task: tuple[Callable[..., Any], dict[str, Any]]) -> dict[str, Any]:
    """Run one cell where the executor puts it; an exception comes back as a value with its traceback."""
    fn, params = task
    t0 = time.perf_counter()
    try:
        result = fn(**params)
        json.dumps(result, allow_nan=True)  # a result that cannot be stored is the cell's error
        return {"ok": True, "result": result, "wall_s": time.perf_counter() - t0}
    except Exception as exc:  # recorded, retried once, summarised: the other cells go on
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "wall_s": time.perf_counter() - t0}  # fmt: skip


def run_study(
    fn: Callable[..., Any],
    grid: Sequence[Mapping[str, Any]],
    *,
    store: str | Path | ResultStore | None = None,
    cluster: str | None = None,
    workers: int | None = None,
    cluster_config: str | Path | None = None,
    retries: int = 1,
    progress: Callable[[StudyProgress], None] | bool | None = None,
    executor: Any = None,
) -> StudyResult:
    """Run ``fn(**params)`` for every ``params`` of ``grid``; see the module docstring.

    ``store``: a folder (or ``ResultStore``) keeping each finished cell; None keeps results in memory.
    ``cluster``: ``serial``, ``local``, ``tcp://host:port`` or ``slurm`` (``studies.executors``); None:
    serial for one cell, local processes for more. ``executor``: an open executor to reuse (the caller
    closes it). ``progress`` is called whenever a cell starts or finishes; ``True`` shows a bar
    (``studies.progress.cell_progress``).
    """
    name = function_name(fn)
    if progress is True:  # a bar in a terminal or a notebook, plain lines in a log
        from neurodeploy.studies.progress import cell_progress

        with cell_progress(fn.__name__) as show:
            return run_study(fn, grid, store=store, cluster=cluster, workers=workers, cluster_config=cluster_config,
                             retries=retries, progress=show, executor=executor)  # fmt: skip
    grid = [dict(p) for p in grid]
    keys = [cell_key(name, p) for p in grid]
    if len(set(keys)) != len(keys):
        raise NeurodeployError("the study grid repeats a cell", "grid", "give every cell different parameters")
    st = store if isinstance(store, ResultStore) or store is None else ResultStore(store)
    t0 = time.perf_counter()
    records: dict[int, dict[str, Any]] = {}
    for i, key in enumerate(keys):
        found = st.get(key) if st is not None else None
        if found is not None and found.get("status") == "ok":
            records[i] = {**found, "reused": True}
    todo = [i for i in range(len(grid)) if i not in records]
    state = StudyProgress(total=len(grid), done=len(records), reused=len(records))
    tell = progress if callable(progress) else (lambda s: None)
    ex = executor
    own = ex is None and bool(todo)
    try:
        if own:
            ex = open_executor(cluster, len(todo), workers, cluster_config)
        state.executor = getattr(ex, "name", "serial") if ex is not None else "serial"
        state.dashboard = getattr(ex, "dashboard", None) if ex is not None else None
        attempts = dict.fromkeys(todo, 0)
        pending = list(todo)
        while pending:
            slots, finished = getattr(ex, "slots", 1), 0
            state.running = min(len(pending), slots)
            tell(state)
            retry = []
            for j, outcome in ex.run(attempt, [(fn, grid[i]) for i in pending]):
                i = pending[j]
                attempts[i] += 1
                finished += 1
                state.running = min(len(pending) - finished, slots)
                if not outcome["ok"] and attempts[i] <= retries:
                    retry.append(i)  # once more after this round
                    tell(state)
                    continue
                record = _record(name, grid[i], outcome, attempts[i])
                if st is not None:
                    st.put(keys[i], record)
                records[i] = record
                state.done += 1
                state.failed += not outcome["ok"]
                tell(state)
            pending = retry
        if not todo:  # every cell came from the store: one update, so a bar shows it complete
            tell(state)
    finally:
        if own and ex is not None:
            ex.close()
    cells = [records[i] for i in range(len(grid))]
    ran = len(todo)
    return StudyResult(cells, ran, len(grid) - ran, state.executor, state.dashboard, time.perf_counter() - t0)


def _record(name: str, params: dict[str, Any], outcome: dict[str, Any], attempts: int) -> dict[str, Any]:
    base = {"function": name, "params": _canonical(params), "version": __version__, "attempts": attempts,
            "wall_s": outcome["wall_s"]}  # fmt: skip
    if outcome["ok"]:
        return {**base, "status": "ok", "result": outcome["result"]}
    return {**base, "status": "failed", "error": outcome["error"], "traceback": outcome.get("traceback", "")}
