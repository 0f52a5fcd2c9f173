"""``neurodeploy run``: a compiled network on input spikes, with a readable summary and an optional
accuracy against labels. ``_run_chunked`` is shared with ``report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from neurodeploy.cli_common import _emit_json, _load_spikes, console, err_console, progress_bar
from neurodeploy.errors import NeurodeployError
from neurodeploy.textsafe import shown


def _atomic_npz(path: Path, arrays: dict) -> None:
    import numpy as np

    from neurodeploy.atomic import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: savez would append ".npz" to a name
            np.savez_compressed(fh, **arrays)

    atomic_write(path, write, example="out.npz")


def _run_chunked(compiled: Any, data: Any, backend: str, kinds: tuple[str, ...], label: str, show: bool) -> Any:
    """``neurodeploy.run`` over slices of the batch, so a bar can show progress on big inputs.

    Samples are independent, so slicing the batch changes nothing but the bar; counters are sums.
    Only the emulator is sliced (Lava pays its start-up per call).
    """
    import numpy as np

    import neurodeploy as nd
    from neurodeploy.runner import RunResult

    arrays = data if isinstance(data, dict) else {"": data}
    batches = {np.shape(a)[1] if np.ndim(a) == 3 else None for a in arrays.values()}
    batch = next(iter(batches)) if len(batches) == 1 else None
    if backend != "emulator" or not show or batch is None or batch < 128:
        if show and backend != "emulator":
            with err_console.status(f"{label}: running on {backend}"):
                return nd.run(compiled, data, backend=backend, record=kinds)
        return nd.run(compiled, data, backend=backend, record=kinds)
    size = max(32, -(-batch // 40))
    parts: list[RunResult] = []
    with progress_bar() as bar:
        task = bar.add_task(f"{label}: samples", total=batch)
        for start in range(0, batch, size):
            chunk = {k: np.asarray(a)[:, start : start + size] for k, a in arrays.items()}
            parts.append(
                nd.run(compiled, chunk if isinstance(data, dict) else chunk[""], backend=backend, record=kinds)
            )
            bar.advance(task, min(size, batch - start))
    first = parts[0]

    def cat(kind: str) -> dict:
        return {n: np.concatenate([getattr(p, kind)[n] for p in parts], axis=1) for n in getattr(first, kind)}

    counters = {k: sum(p.counters.get(k, 0) for p in parts) for k in first.counters}
    return RunResult(
        cat("spikes"),
        cat("u"),
        cat("v"),
        counters,
        first.backend,
        sum(p.wall_seconds for p in parts),
        dict(first.latency),
        list(first.outputs),
        cat("readouts"),
    )


def run_cmd(
    artifact: Annotated[Path, typer.Argument(help="A compiled .ndp file.")],
    inputs: Annotated[
        Path, typer.Option("--inputs", "-i", help=".npy spikes (time, batch, neurons) or .npz with one per input.")
    ],
    backend: Annotated[str, typer.Option(help="emulator, lava or board.")] = "emulator",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write recorded spikes to this .npz.")] = None,
    record: Annotated[str, typer.Option(help="Comma-separated: spikes,u,v.")] = "spikes",
    labels: Annotated[
        Path | None, typer.Option(help=".npy of integer labels (batch,): prints the accuracy of the output.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Run a compiled network on input spikes.

    Example: neurodeploy run model.ndp --inputs spikes.npy --labels labels.npy -o out.npz
    """
    import numpy as np

    import neurodeploy as nd
    from neurodeploy.atomic import refuse_overwriting_inputs
    from neurodeploy.limits import check_numpy_file
    from neurodeploy.runner import check_run_memory

    refuse_overwriting_inputs(output, artifact, inputs, labels)
    compiled = nd.load_compiled(artifact)
    kinds = tuple(k.strip() for k in record.split(",") if k.strip())
    bad = [k for k in kinds if k not in ("spikes", "u", "v")]
    if bad:
        raise NeurodeployError(f"cannot record {bad}", "--record", "choose from spikes, u, v")
    if inputs.is_file():  # from the headers, before a byte of the arrays is loaded
        check_run_memory(compiled.core, check_numpy_file(inputs), kinds)
    data = _load_spikes(inputs)
    result = _run_chunked(compiled, data, backend, kinds, artifact.name, show=not as_json)
    if output is not None:
        arrays = {f"{kind}/{name}": arr for kind in kinds for name, arr in getattr(result, kind).items()}
        arrays.update({f"readout/{name}": arr for name, arr in result.readouts.items()})
        # where the recordings came from, so `neurodeploy report out.npz` can find the artifact and inputs
        arrays.update(
            {
                "meta/artifact": np.array(str(artifact.resolve())),
                "meta/inputs": np.array(str(inputs.resolve())),
                "meta/backend": np.array(result.backend),
            }
        )
        _atomic_npz(output, arrays)
    summary: dict[str, Any] = {
        "backend": result.backend,
        "wall_seconds": round(result.wall_seconds, 4),
        "spike_counts": {n: int(a.sum()) for n, a in result.spikes.items()},
        "readout_sums": {n: a.sum(axis=0).mean(axis=0).round(6).tolist() for n, a in result.readouts.items()},
        "counters": result.counters,
        "output": str(output) if output else None,
    }
    if labels is not None:
        summary["accuracy"] = _accuracy(result, labels)
    if as_json:
        _emit_json(summary)
        return
    _print_run_summary(compiled, result, summary)


def _accuracy(result: Any, path: Path) -> float:
    """Accuracy of the output's most-spiking neuron against integer labels from an .npy."""
    import numpy as np

    labels = _load_spikes(path, "labels")
    if isinstance(labels, dict) or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise NeurodeployError("labels must be one .npy of integers, shaped (batch,)", str(path),
                               "save them with numpy.save('labels.npy', y.astype(int))")  # fmt: skip
    predictions = result.predictions()
    if predictions.ndim != 1 or len(labels) != len(predictions):
        raise NeurodeployError(
            f"{len(labels)} labels for {predictions.shape[0] if predictions.ndim else 1} samples",
            str(path),
            "give one label per sample of the input's batch axis",
        )
    return float(np.mean(predictions == labels))


def _print_run_summary(compiled: Any, result: Any, summary: dict[str, Any]) -> None:
    """Spikes per population as a table, then the accuracy and the output file."""
    from rich.table import Table

    table = Table(title=f"run on {result.backend} ({summary['wall_seconds']:.2f} s)", title_justify="left")
    for col in ("population", "neurons", "spikes", "per neuron and step"):
        table.add_column(col, justify="left" if col == "population" else "right")
    for name, arr in result.spikes.items():
        size = compiled.core.population(name).size
        rate = float(arr.mean()) if arr.size else 0.0
        label = shown(name) + (" (output)" if name in compiled.core.outputs else "")
        table.add_row(label, f"{size:,}", f"{int(arr.sum()):,}", f"{rate:.4f}")
    console.print(table)
    for name, arr in result.readouts.items():
        console.print(
            f"readout {shown(name)} (host): {arr.shape[-1]} values per step, mean sum over time "
            f"{float(arr.sum(axis=0).mean()):.4g}" + (" (output)" if name in compiled.core.outputs else ""),
            highlight=False,
        )
    if "accuracy" in summary:
        what = "largest summed readout" if result.outputs[0] in result.readouts else "most-spiking output neuron"
        console.print(f"accuracy {summary['accuracy']:.4f} ({what} against the labels)")
    if summary["output"]:
        console.print(f"wrote [bold]{shown(summary['output'])}[/]")
