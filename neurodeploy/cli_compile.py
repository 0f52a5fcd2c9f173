"""``neurodeploy compile``: every option of ``neurodeploy.compile`` as a flag of the same name."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from neurodeploy.cli_common import _emit_json, _load_spikes, console, err_console
from neurodeploy.errors import NeurodeployError
from neurodeploy.textsafe import shown

PLACEMENT_BYTES = 1 << 20  # a core map lists one small integer per block: read nothing larger


def _placement(path: Path | None) -> dict[str, list[int]] | None:
    """A placement file: JSON mapping population names to one core per block, e.g. {"1": [0, 1]}, or to
    ``{"blocks": [sizes], "cores": [cores]}`` (``neurodeploy.api`` checks the entries)."""
    if path is None:
        return None
    if not path.is_file():
        raise NeurodeployError("placement file not found", str(path), 'write JSON such as {"1": [0, 1]}')
    if path.stat().st_size > PLACEMENT_BYTES:
        raise NeurodeployError(
            f"the placement file is over {PLACEMENT_BYTES // 1024} KiB", str(path), "list one core per block"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise NeurodeployError(
            f"the placement file is not JSON ({exc})", str(path), 'write JSON such as {"1": [0, 1]}'
        ) from None
    if not isinstance(data, dict):
        raise NeurodeployError(
            "the placement file must map population names to lists of cores", str(path), 'e.g. {"1": [0, 1]}'
        )
    return data


def compile_cmd(
    model: Annotated[Path, typer.Argument(help="A NIR file (.nir, HDF5).")],
    profile: Annotated[str, typer.Option("--profile", "-p", help="Profile name or .toml path.")] = "loihi2",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Artifact path (.ndp).")] = None,
    dt: Annotated[float | None, typer.Option(help="Time step in seconds (default: from the file, else 1e-4).")] = None,
    reset: Annotated[str | None, typer.Option(help="Reset mode: zero or subtract.")] = None,
    reset_rule: Annotated[
        str | None,
        typer.Option(
            help="nir (reset in the spiking step, what chips do), snntorch or snntorch_leaky; "
            "overrides what the file records."
        ),  # fmt: skip
    ] = None,
    reset_delay: Annotated[
        bool | None,
        typer.Option(
            "--reset-delay/--no-reset-delay",
            help="snnTorch's reset_delay: the reset waits a step; overrides what the file records.",
            show_default=False,
        ),
    ] = None,
    loop_delay: Annotated[
        str | None,
        typer.Option(
            help="Where a loop's one-step delay sits: into_neuron (nirtorch, Norse) or out_of_neuron "
            "(snnTorch's RLeaky, RSynaptic); overrides what the file records."
        ),  # fmt: skip
    ] = None,
    refractory: Annotated[
        int | None, typer.Option(help="Steps a neuron stays silent after a spike (profiles with refractory).")
    ] = None,
    rounding: Annotated[str, typer.Option(help="nearest or stochastic.")] = "nearest",
    seed: Annotated[int, typer.Option(min=0, help="Seed for stochastic rounding.")] = 0,
    per_channel: Annotated[
        bool, typer.Option("--per-channel", help="Give every neuron its own quantization scale.")
    ] = False,
    scale_search: Annotated[
        bool,
        typer.Option("--scale-search", help="Try scale factors per layer on --sample-inputs; keep the closest."),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict/--no-strict", help="Refuse a network that breaks a design rule (--no-strict: keep the list)."
        ),
    ] = True,
    placement: Annotated[
        Path | None,
        typer.Option(
            help='JSON file: population -> one core per block, e.g. {"1": [0, 1]}, or block sizes and cores, '
            'e.g. {"1": {"blocks": [512, 512], "cores": [0, 1]}}.'
        ),
    ] = None,
    sample_inputs: Annotated[
        Path | None, typer.Option(help="Spikes (.npy/.npz): compare chip and float reference layer by layer.")
    ] = None,
    sample_labels: Annotated[
        Path | None, typer.Option(help="One class per sample (.npy): adds both accuracies to the report.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Compile a NIR graph for a chip profile and write a .ndp artifact.

    Example: neurodeploy compile model.nir --profile loihi2 -o model.ndp
    """
    import warnings

    import neurodeploy as nd
    from neurodeploy.atomic import refuse_overwriting_inputs
    from neurodeploy.reports import cores_table, evaluation_line, layers_table, readout_lines, violations_table

    out = output or model.with_suffix(".ndp")
    read = [model, placement, sample_inputs, sample_labels, Path(profile) if profile.endswith(".toml") else None]
    refuse_overwriting_inputs(out, *read)
    if sample_labels is not None and sample_inputs is None:
        raise NeurodeployError("--sample-labels needs --sample-inputs", "--sample-labels", "add --sample-inputs x.npy")
    graph = nd.load_nir(model)
    options: dict[str, Any] = {
        "placement": _placement(placement),
        "sample_inputs": _load_spikes(sample_inputs, "sample inputs") if sample_inputs is not None else None,
        "sample_labels": _load_spikes(sample_labels, "sample labels") if sample_labels is not None else None,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        conventions = {"dt": dt, "reset": reset, "reset_rule": reset_rule, "reset_delay": reset_delay,
                       "loop_delay": loop_delay, "refractory": refractory}  # fmt: skip
        compiled = nd.compile(graph, profile, rounding=rounding, seed=seed, per_channel=per_channel,
                              scale_search=scale_search, strict=strict, **conventions, **options)  # fmt: skip
    compiled.save(out)
    if as_json:
        _emit_json({**compiled.report, "artifact": str(out)})
        return
    for w in caught:
        err_console.print(f"[yellow]warning[/]: {shown(w.message)}")
    console.print(cores_table(compiled.report))
    console.print(layers_table(compiled.report))
    table = violations_table(compiled.report)
    if table is not None:
        console.print(table)
    for text in readout_lines(compiled.report):
        console.print(text, highlight=False)
    line = evaluation_line(compiled.report)
    if line:
        console.print(line, highlight=False)
    console.print(f"wrote [bold]{shown(out)}[/]")
