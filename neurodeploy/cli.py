"""The ``neurodeploy`` command line: profiles, compile, inspect, run, report, variability, learn,
learn-table, boards, demo.

Bad input prints one line ``error: what (where). what to do`` on stderr and exits with status 2;
no traceback, and no partial output file.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import warnings

# first: the imports below take a while
from neurodeploy.cli_signals import (
    INTERRUPTED,
    interrupted_while_starting,
    is_the_command_line,
    redeliver_lost_interrupts,
)

# isort: split
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from neurodeploy.cli_common import _emit_json, _load_spikes, console, err_console
from neurodeploy.cli_compile import compile_cmd
from neurodeploy.cli_export import export_cmd
from neurodeploy.cli_run import _run_chunked, run_cmd
from neurodeploy.cli_studies import _study_sections, learn_cmd, variability_cmd
from neurodeploy.cli_study import learn_table_cmd
from neurodeploy.errors import NeurodeployError
from neurodeploy.textsafe import shown

app = typer.Typer(
    name="neurodeploy",
    help="Compile spiking networks (NIR, snnTorch, Norse) onto neuromorphic chip models, emulate them "
    "bit-exactly, and measure what the chip loses.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
profiles_app = typer.Typer(
    help="List, show and validate hardware profiles.", invoke_without_command=True, rich_markup_mode=None
)
app.add_typer(profiles_app, name="profiles")


def _print_version(value: bool) -> None:
    if value:
        from neurodeploy import __version__

        console.print(f"neurodeploy {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Compile spiking networks (NIR, snnTorch, Norse) onto neuromorphic chip models, emulate them
    bit-exactly, and measure what the chip loses."""


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
        _emit_json(
            {
                "name": prof.name,
                "title": prof.title,
                "kind": prof.kind,
                "core_model": prof.core_model,
                "numerics": prof.numerics,
                "limits": prof.limits,
                "energy": prof.energy,
                "mismatch": prof.mismatch,
                "sources": prof.sources,
            }
        )
        return
    console.print(profile_detail_table(prof))
    console.print(sources_table(prof))


@profiles_app.command("validate")
def profiles_validate(
    file: Annotated[Path, typer.Argument(help="A profile .toml file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Check a profile file; report the first problem by field.

    Example: neurodeploy profiles validate my_chip.toml
    """
    from neurodeploy.hw_profiles.schema import load_profile_file

    prof = load_profile_file(file)  # always a file here, whatever its name or suffix
    if as_json:
        _emit_json({"file": str(file), "valid": True, "name": prof.name, "core_model": prof.core_model})
        return
    console.print(
        f"[green]ok[/]: {shown(file)} is a valid profile ({shown(prof.name)}, {shown(prof.core_model)} core model)"
    )


app.command("compile")(compile_cmd)


@app.command("inspect")
def inspect_cmd(
    artifact: Annotated[Path, typer.Argument(help="A compiled .ndp file.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Summarise a compiled artifact: profile, conventions, cores and quantization.

    Example: neurodeploy inspect model.ndp
    """
    import neurodeploy as nd
    from neurodeploy.reports import cores_table, layers_table, readout_lines, violations_table

    compiled = nd.load_compiled(artifact)
    if as_json:
        _emit_json(compiled.report)
        return
    conv = compiled.conventions
    console.print(
        f"[bold]{shown(artifact)}[/]: profile {shown(compiled.profile.name)}, dt {conv.dt:g} s, reset {conv.reset}, "
        f"source {shown(conv.source)}; inputs {shown(compiled.core.inputs)}, outputs {shown(compiled.core.outputs)}"
    )
    for text in compiled.report.get("warnings", []):  # what compile warned about, kept in the artifact
        console.print(f"[yellow]warning[/]: {shown(text)}", highlight=False)
    console.print(cores_table(compiled.report))
    console.print(layers_table(compiled.report))
    for text in readout_lines(compiled.report):
        console.print(text, highlight=False)
    table = violations_table(compiled.report)
    if table is not None:
        console.print(table)


app.command("run")(run_cmd)
app.command("export")(export_cmd)


def _recorded_run(path: Path) -> tuple[Path, Path | None, dict[str, Any], str]:
    """Artifact path, inputs path, spikes and backend from an .npz that `neurodeploy run -o` wrote."""
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as data:
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            meta = {k[5:]: str(data[k]) for k in data.files if k.startswith("meta/")}
            spikes = {k[7:]: data[k] for k in data.files if k.startswith("spikes/")}
    except (ValueError, OSError, EOFError) as exc:
        raise NeurodeployError(
            f"cannot read the recorded run: {exc}",
            str(path),
            "pass an .ndp artifact or the .npz that `neurodeploy run -o` wrote",
        ) from None
    if "artifact" not in meta or not spikes:
        raise NeurodeployError(
            "the .npz does not say which artifact it came from, or holds no spikes",
            str(path),
            "record it again with `neurodeploy run MODEL.ndp -i SPIKES -o OUT.npz`",
        )
    inputs = Path(meta["inputs"]) if meta.get("inputs") else None
    return Path(meta["artifact"]), inputs, spikes, meta.get("backend", "emulator")


@app.command("report")
def report_cmd(
    source: Annotated[Path, typer.Argument(help="A compiled .ndp artifact, or the .npz of `neurodeploy run -o`.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="The HTML file to write.")] = None,
    inputs: Annotated[
        Path | None,
        typer.Option("--inputs", "-i", help="Spikes (.npy/.npz) to run float and chip on, for raster plots."),
    ] = None,
    labels: Annotated[Path | None, typer.Option(help="Class per sample (.npy), to report accuracy.")] = None,
    sample: Annotated[
        int | None, typer.Option(help="Sample to draw (default: where float and chip differ most).")
    ] = None,
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    variability_json: Annotated[
        Path | None, typer.Option("--variability", help="JSON of `neurodeploy variability -o`: accuracy spread.")
    ] = None,
    learning_json: Annotated[
        list[Path] | None, typer.Option("--learning", help="JSON of `neurodeploy learn -o` (repeatable): curves.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Write one self-contained HTML report: network, cores, quantization error, float vs chip rasters.

    Example: neurodeploy report model.ndp --inputs spikes.npy -o report.html
    """
    import numpy as np

    import neurodeploy as nd
    from neurodeploy.atomic import refuse_overwriting_inputs
    from neurodeploy.html_report import build_report, write_report
    from neurodeploy.runner import RunResult

    refuse_overwriting_inputs(output, source, inputs, labels, variability_json, *(learning_json or []))
    recorded = None
    artifact = source
    if source.suffix == ".npz":
        artifact, recorded_inputs, spikes, backend = _recorded_run(source)
        inputs = inputs or recorded_inputs
        recorded = (spikes, backend)
    out = output or source.with_suffix(".html")
    if out.suffix.lower() not in (".html", ".htm"):
        raise NeurodeployError("the report is HTML", str(out), "name the output file *.html")
    compiled = nd.load_compiled(artifact)
    data = _load_spikes(inputs) if inputs is not None else None
    truth = None
    if labels is not None:
        truth = _load_spikes(labels, "labels")
        if isinstance(truth, dict) or np.ndim(truth) != 1:
            raise NeurodeployError("labels must be one integer per sample", str(labels), "save a 1-D array")
    runs: dict[str, Any] = {}
    show = not as_json
    if data is not None:
        ideal = nd.compile(compiled.ir, "ideal")
        runs["float (ideal)"] = _run_chunked(ideal, data, "emulator", ("spikes",), "float reference", show)
    if recorded is not None:
        spikes, backend = recorded
        from neurodeploy.runner import host_readouts

        runs[f"chip ({compiled.profile.name}, {backend}, recorded)"] = RunResult(
            spikes=spikes, backend=backend, outputs=list(compiled.core.outputs),
            readouts=host_readouts(compiled.core, spikes, {}),
        )  # fmt: skip
    elif data is not None:
        runs[f"chip ({compiled.profile.name})"] = _run_chunked(
            compiled, data, "emulator", ("spikes",), compiled.profile.name, show
        )
    shapes = {tuple(np.shape(a)[:2]) for r in runs.values() for a in r.spikes.values()}
    if len(shapes) > 1:
        raise NeurodeployError(
            f"the runs disagree in (time, batch): {sorted(shapes)}",
            str(source),
            "pass the inputs the run was recorded with",
        )
    mismatch, learning = _study_sections(variability_json, learning_json or [])
    kwargs = {"labels": truth, "sample": sample, "title": title, "source": str(artifact)}
    if show and err_console.is_terminal:
        with err_console.status("drawing figures"):
            text = build_report(compiled, runs or None, mismatch=mismatch, learning=learning, **kwargs)
    else:
        text = build_report(compiled, runs or None, mismatch=mismatch, learning=learning, **kwargs)
    write_report(out, text)
    if as_json:
        _emit_json({"report": str(out), "artifact": str(artifact), "bytes": len(text.encode()), "runs": list(runs)})
    else:
        console.print(f"wrote [bold]{shown(out)}[/] ({len(text.encode()) // 1024} KiB, self-contained)")


app.command("variability")(variability_cmd)
app.command("learn")(learn_cmd)
app.command("learn-table")(learn_table_cmd)


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
    seed: Annotated[int, typer.Option(min=0, help="Training seed.")] = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the figures as JSON (progress goes to stderr).")
    ] = False,
) -> None:
    """Train a small snnTorch network on Yin-Yang, compile it for Loihi 2, run it on the emulator and Lava.

    Example: neurodeploy demo --quick
    """
    from dataclasses import asdict

    from neurodeploy.demo import run_demo

    result = run_demo(err_console if as_json else console, quick=quick, with_lava=lava, seed=seed)
    if as_json:
        _emit_json(asdict(result))


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """Every warning as one line, ``warning: ...``, without the file and line of the code that raised it."""
    err_console.print(f"[yellow]warning[/]: {shown(message)}", highlight=False, soft_wrap=True)


def _exit_interrupted() -> None:
    """One line and exit 130, at once: every write in progress has already removed its temp file, and
    the interpreter's own shutdown would report a KeyboardInterrupt it saw earlier as death by SIGINT."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os.write(2, INTERRUPTED)
    if is_the_command_line():
        os._exit(130)
    sys.exit(130)  # called from Python (tests, notebooks): leave the caller's interpreter running


def main() -> None:
    """Entry point: user errors, usage errors included, become one line on stderr and exit status 2."""
    # typer >= 0.20 vendors click as typer._click; older releases re-export click's own: take whichever it uses
    click_exc = sys.modules[typer.BadParameter.__module__]
    no_args = getattr(click_exc, "NoArgsIsHelpError", ())
    warnings.showwarning = _show_warning
    if signal.getsignal(signal.SIGINT) is interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # from here on, cleanups run on Ctrl-C
        redeliver_lost_interrupts()
    try:
        code = app(standalone_mode=False)
        if is_the_command_line():  # done: outputs are complete, exit as the command says
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    except NeurodeployError as exc:  # the message is user data: "[plasticity]" must not read as markup
        err_console.print(f"[red]error[/]: {shown(exc)}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except no_args as exc:  # bare `neurodeploy` or `neurodeploy profiles`: show help
        exc.show()
        sys.exit(2)
    except click_exc.ClickException as exc:
        where = exc.ctx.command_path if getattr(exc, "ctx", None) is not None else "neurodeploy"
        text = " ".join(exc.format_message().split()).rstrip(".")
        err_console.print(
            f"[red]error[/]: {escape(text)} ({where}). Run '{where} --help' for usage and examples",
            highlight=False,
            soft_wrap=True,
            markup=True,
        )
        sys.exit(2)
    except (typer.Abort, KeyboardInterrupt):  # Ctrl-C: any output in progress was left as it was
        _exit_interrupted()
    if code == 130:  # typer turns a KeyboardInterrupt inside a command into exit code 130, silently
        _exit_interrupted()
    if isinstance(code, int) and code:
        sys.exit(code)


if __name__ == "__main__":
    main()
