"""What every verb of the command line shares: the consoles, JSON output, progress bars, reading spikes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from neurodeploy.errors import NeurodeployError

console = Console()
err_console = Console(stderr=True)


def _emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _progress(transient: bool = True) -> Any:
    """A progress bar on stderr (stdout stays clean for --json); silent when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
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
