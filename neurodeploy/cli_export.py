"""``neurodeploy export``: a compiled artifact back to NIR, with the chip's values as float parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodeploy.cli_common import _emit_json, console
from neurodeploy.errors import NeurodeployError
from neurodeploy.textsafe import shown


def export_cmd(
    artifact: Annotated[Path, typer.Argument(help="A compiled .ndp file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The NIR file to write (.nir).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print what was written as JSON.")] = False,
) -> None:
    """Write the quantized network as a NIR graph whose weights, thresholds and decays are the chip's.

    Any NIR tool then sees the network the chip runs. The chip rounds its state each step and the float
    graph does not; see docs/concepts/export.md for how closely they agree.

    Example: neurodeploy export model.ndp -o chip.nir
    """
    import nir

    import neurodeploy as nd
    from neurodeploy.atomic import atomic_write, refuse_overwriting_inputs
    from neurodeploy.export import export_nir

    if output.suffix.lower() != ".nir":
        raise NeurodeployError(f"{output} should end in .nir", str(output), "name it e.g. chip.nir")
    refuse_overwriting_inputs(output, artifact)
    compiled = nd.load_compiled(artifact)
    graph = export_nir(compiled)
    weights = sum(int(n.weight.size) for n in graph.nodes.values() if hasattr(n, "weight"))

    def write(tmp: str) -> None:
        nir.write(tmp, graph)

    atomic_write(output, write, example="chip.nir", size_hint=8 * weights + 65536)
    summary = {
        "artifact": str(artifact),
        "output": str(output),
        "profile": compiled.profile.name,
        "nodes": len(graph.nodes),
        "edges": len(graph.edges),
        "weights": weights,
    }
    if as_json:
        _emit_json(summary)
        return
    console.print(
        f"wrote [bold]{shown(output)}[/]: {len(graph.nodes)} nodes, {weights:,} weights, the values "
        f"{shown(compiled.profile.name)} runs (state rounding aside: docs/concepts/export.md)",
        highlight=False,
    )
