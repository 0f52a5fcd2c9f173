"""A progress bar over a study's cells, for the command line and for notebooks.

``with cell_progress("my study") as show: run_study(fn, grid, progress=show)`` (or ``progress=True``):
finished, running and failed cells, those taken from the store, and the time left; the cluster's
dashboard address is printed once. A notebook shows the live bar; a log or pipe gets plain lines.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from neurodeploy.cli_common import err_console, progress_bar


@contextmanager
def cell_progress(title: str) -> Iterator[Callable[[Any], None]]:
    """A bar over a study's cells: finished, running, failed and the time left; the dashboard link once."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[state]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())  # fmt: skip
    told = set()
    with progress_bar(True, err_console, *columns) as bar:
        job = bar.add_task(title, total=None, state="")

        def show(state: Any) -> None:
            if state.dashboard and state.dashboard not in told:
                told.add(state.dashboard)
                err_console.print(f"Dask dashboard: {state.dashboard}", highlight=False)
            extra = f"{state.running} running, {state.failed} failed"
            if state.reused:
                extra += f", {state.reused} from the store"
            bar.update(job, completed=state.done, total=state.total, state=extra,
                       description=f"{title} on {state.executor}")  # fmt: skip

        yield show
