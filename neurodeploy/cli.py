"""The ``neurodeploy`` command line: profiles, compile, inspect, run, boards, demo.

Bad input prints one line ``error: what (where). what to do`` on stderr and exits with status 2;
no traceback, and no partial output file.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from neurodeploy.errors import NeurodeployError

app = typer.Typer(
    name="neurodeploy",
    help="Compile spiking networks (NIR, snnTorch, Norse) onto neuromorphic chip models, emulate them "
    "bit-exactly, and measure what the chip loses.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
profiles_app = typer.Typer(help="List, show and validate hardware profiles.", invoke_without_command=True)
app.add_typer(profiles_app, name="profiles")

console = Console()
err_console = Console(stderr=True)


def _emit_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _atomic_npz(path: Path, arrays: dict) -> None:
    import numpy as np

    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NeurodeployError("the output folder does not exist", str(folder), "create it first")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.npz", dir=folder)
    os.close(fd)
    try:
        np.savez_compressed(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@profiles_app.callback()
def profiles_main(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """List the shipped profiles (default), or use `show NAME` / `validate FILE`.

    Example: neurodeploy profiles show loihi2
    """
    if ctx.invoked_subcommand is not None:
        return
    from neurodeploy import profiles
    from neurodeploy.reports import profiles_table

    items = [profiles.get(n) for n in profiles.available()]
    if as_json:
        _emit_json([{"name": p.name, "title": p.title, "kind": p.kind, "core_model": p.core_model} for p in items])
    else:
        console.print(profiles_table(items))


@profiles_app.command("show")
def profiles_show(
    name: Annotated[str, typer.Argument(help="Profile name or path to a .toml file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Print a profile with the source of every number.

    Example: neurodeploy profiles show loihi2
    """
    from neurodeploy import profiles
    from neurodeploy.reports import profile_detail_table, sources_table

    prof = profiles.get(name)
    if as_json:
        _emit_json({"name": prof.name, "title": prof.title, "kind": prof.kind, "core_model": prof.core_model,
                    "numerics": prof.numerics, "limits": prof.limits, "energy": prof.energy,
                    "mismatch": prof.mismatch, "sources": prof.sources})
        return
    console.print(profile_detail_table(prof))
    console.print(sources_table(prof))


@profiles_app.command("validate")
def profiles_validate(file: Annotated[Path, typer.Argument(help="A profile .toml file.")]) -> None:
    """Check a profile file; report the first problem by field.

    Example: neurodeploy profiles validate my_chip.toml
    """
    from neurodeploy import profiles

    prof = profiles.get(str(file) if str(file).endswith(".toml") else f"./{file}")
    console.print(f"[green]ok[/]: {file} is a valid profile ({prof.name}, {prof.core_model} core model)")


@app.command("compile")
def compile_cmd(
    model: Annotated[Path, typer.Argument(help="A NIR file (.nir, HDF5).")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name or .toml path.")] = "loihi2",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Artifact path (.ndp).")] = None,
    dt: Annotated[float | None, typer.Option(help="Time step in seconds (default: from the file, else 1e-4).")] = None,
    reset: Annotated[str | None, typer.Option(help="Reset mode: zero or subtract.")] = None,
    rounding: Annotated[str, typer.Option(help="nearest or stochastic.")] = "nearest",
    seed: Annotated[int, typer.Option(help="Seed for stochastic rounding.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compile a NIR graph for a chip profile and write a .ndp artifact.

    Example: neurodeploy compile model.nir --profile loihi2 -o model.ndp
    """
    import warnings

    import neurodeploy as nd
    from neurodeploy.reports import cores_table, layers_table, violations_table

    graph = nd.load_nir(model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        compiled = nd.compile(graph, profile, dt=dt, reset=reset, rounding=rounding, seed=seed)
    out = output or model.with_suffix(".ndp")
    compiled.save(out)
    if as_json:
        _emit_json({**compiled.report, "artifact": str(out)})
        return
    for w in caught:
        err_console.print(f"[yellow]warning[/]: {w.message}")
    console.print(cores_table(compiled.report))
    console.print(layers_table(compiled.report))
    table = violations_table(compiled.report)
    if table is not None:
        console.print(table)
    console.print(f"wrote [bold]{out}[/]")


@app.command("inspect")
def inspect_cmd(
    artifact: Annotated[Path, typer.Argument(help="A compiled .ndp file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Summarise a compiled artifact: profile, conventions, cores and quantization.

    Example: neurodeploy inspect model.ndp
    """
    import neurodeploy as nd
    from neurodeploy.reports import cores_table, layers_table

    compiled = nd.load_compiled(artifact)
    if as_json:
        _emit_json(compiled.report)
        return
    conv = compiled.conventions
    console.print(f"[bold]{artifact}[/]: profile {compiled.profile.name}, dt {conv.dt:g} s, reset {conv.reset}, "
                  f"source {conv.source}; inputs {compiled.core.inputs}, outputs {compiled.core.outputs}")
    console.print(cores_table(compiled.report))
    console.print(layers_table(compiled.report))


@app.command("run")
def run_cmd(
    artifact: Annotated[Path, typer.Argument(help="A compiled .ndp file.")],
    inputs: Annotated[
        Path, typer.Option("--inputs", "-i", help=".npy spikes (time, batch, neurons) or .npz with one per input.")
    ],
    backend: Annotated[str, typer.Option(help="emulator, lava or board.")] = "emulator",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write recorded spikes to this .npz.")] = None,
    record: Annotated[str, typer.Option(help="Comma-separated: spikes,u,v.")] = "spikes",
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Run a compiled network on input spikes.

    Example: neurodeploy run model.ndp --inputs spikes.npy --backend emulator -o out.npz
    """
    import numpy as np

    import neurodeploy as nd

    compiled = nd.load_compiled(artifact)
    if not inputs.is_file():
        raise NeurodeployError("input file not found", str(inputs), "pass a .npy or .npz file of spikes")
    try:
        loaded = np.load(inputs, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise NeurodeployError(f"cannot read input spikes: {exc}", str(inputs),
                               "save them with numpy.save (.npy) or numpy.savez (.npz)") from None
    data = dict(loaded) if isinstance(loaded, np.lib.npyio.NpzFile) else loaded
    kinds = tuple(k.strip() for k in record.split(",") if k.strip())
    bad = [k for k in kinds if k not in ("spikes", "u", "v")]
    if bad:
        raise NeurodeployError(f"cannot record {bad}", "--record", "choose from spikes, u, v")
    result = nd.run(compiled, data, backend=backend, record=kinds)
    if output is not None:
        arrays = {f"{kind}/{name}": arr for kind in kinds for name, arr in getattr(result, kind).items()}
        _atomic_npz(output, arrays)
    summary = {
        "backend": result.backend, "wall_seconds": round(result.wall_seconds, 4),
        "spike_counts": {n: int(a.sum()) for n, a in result.spikes.items()}, "counters": result.counters,
        "output": str(output) if output else None,
    }
    if as_json:
        _emit_json(summary)
    else:
        console.print(summary)


@app.command("boards")
def boards_cmd(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List attached neuromorphic boards (Loihi 2 through Lava's hardware support).

    Example: neurodeploy boards
    """
    from neurodeploy.emulator.backends.board import detect_boards

    boards, reason = detect_boards()
    if as_json:
        _emit_json({"boards": boards, "reason": reason})
    elif boards:
        for b in boards:
            console.print(b)
    else:
        console.print(f"no boards attached: {reason}")


@app.command("demo")
def demo_cmd(
    quick: Annotated[bool, typer.Option(help="Smaller training run, for a fast look.")] = False,
    lava: Annotated[bool, typer.Option(help="Also run the Lava backend and compare spikes.")] = True,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
) -> None:
    """Train a small snnTorch network on Yin-Yang, compile it for Loihi 2, run it on the emulator and Lava.

    Example: neurodeploy demo
    """
    from neurodeploy.demo import run_demo

    run_demo(console, quick=quick, with_lava=lava, seed=seed)


def main() -> None:
    """Entry point: user errors become one line and exit status 2 (usage errors too, via typer)."""
    try:
        app()
    except NeurodeployError as exc:
        err_console.print(f"[red]error[/]: {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
