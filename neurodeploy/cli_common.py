"""What every verb of the command line shares: the consoles, JSON output, progress bars, reading spikes."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from neurodeploy.errors import NeurodeployError

console = Console()
err_console = Console(stderr=True)


def _emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


class PlainProgress:
    """What a progress bar says, as plain lines, for a stream that is not a terminal (a log, a pipe).

    Why: a piped or logged run of many minutes must still show that it moves. Once a task has run for
    ``quiet`` seconds, a line is written at most every ``every`` seconds and when it finishes; quicker
    steps stay silent. Takes the calls of ``rich.progress.Progress`` that the commands use.
    """

    def __init__(self, console: Console, every: float = 2.0, quiet: float = 1.0) -> None:
        self.console, self.every, self.quiet = console, every, quiet
        self.tasks: dict[int, dict[str, Any]] = {}

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None, **fields: Any) -> int:
        now = time.monotonic()
        task = len(self.tasks)
        self.tasks[task] = {"description": description, "total": total, "completed": 0, "start": now,
                            "last": now, "fields": fields}  # fmt: skip
        return task

    def advance(self, task: int, advance: float = 1) -> None:
        self.update(task, advance=advance)

    def update(
        self,
        task: int,
        completed: float | None = None,
        advance: float | None = None,
        description: str | None = None,
        total: float | None = None,
        **fields: Any,
    ) -> None:
        t = self.tasks[task]
        t["completed"] = completed if completed is not None else t["completed"] + (advance or 0)
        t["description"] = description if description is not None else t["description"]
        t["total"] = total if total is not None else t["total"]
        t["fields"].update(fields)
        now = time.monotonic()
        finished = t["total"] is not None and t["completed"] >= t["total"]
        if now - t["start"] >= self.quiet and (finished or now - t["last"] >= self.every):
            t["last"] = now
            of = f"/{t['total']:g}" if t["total"] is not None else ""
            extra = "  ".join(str(v) for v in t["fields"].values() if v)
            self.console.print(
                f"{t['description']}: {t['completed']:g}{of} ({now - t['start']:.0f} s){'  ' + extra if extra else ''}",
                highlight=False,
                markup=False,
            )


def progress_bar(transient: bool = True, console: Console | None = None, *columns: Any) -> Any:
    """A progress bar in a terminal, plain lines otherwise; on stderr unless ``console`` says (stdout
    stays clean for --json). ``columns``: the bar's rich columns, default description, bar, n/total, time."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or err_console
    if not (console.is_terminal or console.is_jupyter):  # a notebook renders the live bar too
        return PlainProgress(console)
    return Progress(
        *(columns or (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())),
        console=console,
        transient=transient,
    )


def _load_spikes(path: Path, what: str = "input spikes") -> Any:
    """Input spikes from .npy (one array) or .npz (one array per input population)."""
    import numpy as np

    from neurodeploy.limits import check_numpy_file

    if not path.is_file():
        raise NeurodeployError("input file not found", str(path), f"pass a .npy or .npz file of {what}")
    check_numpy_file(path)
    try:
        loaded = np.load(path, allow_pickle=False)
        return {k: loaded[k] for k in loaded.files} if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    except (ValueError, OSError, EOFError) as exc:
        raise NeurodeployError(
            f"cannot read {what}: {exc}", str(path), "save them with numpy.save (.npy) or numpy.savez (.npz)"
        ) from None
