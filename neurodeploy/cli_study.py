"""What the study verbs share (``--cluster`` and friends, a progress bar over cells) and ``learn-table``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from neurodeploy.cli_common import _emit_json, console, err_console
from neurodeploy.errors import NeurodeployError
from neurodeploy.studies.progress import cell_progress
from neurodeploy.textsafe import shown

ClusterOpt = Annotated[
    str | None,
    typer.Option(help="Where cells run: serial, local (worker processes here), tcp://host:port (a Dask "
                 "scheduler) or slurm (with --cluster-config). Default: serial for one cell, local for more."),
]  # fmt: skip
WorkersOpt = Annotated[int | None, typer.Option(min=1, help="Worker processes for --cluster local; jobs for slurm.")]
ClusterConfigOpt = Annotated[
    Path | None, typer.Option(help="TOML file with a [slurm] table (cores, memory, walltime, queue, jobs).")
]
StoreOpt = Annotated[
    Path | None,
    typer.Option(help="Folder keeping each finished cell; a rerun skips them, so an interrupted study resumes."),
]


def learn_table_cmd(
    rules: Annotated[str, typer.Option(help="Comma-separated rules, e.g. bp,fa,kp (default: all).")] = "",
    conditions: Annotated[
        str,
        typer.Option(
            help="Comma-separated columns: float, loihi2, 'loihi2 + 10 % mismatch' (chip variant), paper, "
            "'paper + 10 % mismatch' (the published equations in float)."
        ),
    ] = "float,loihi2",
    task: Annotated[str, typer.Option(help="yinyang, digits; (paper) teacher, deep-teacher.")] = "yinyang",
    depths: Annotated[str, typer.Option(help="Hidden layers per network, comma separated, e.g. 1,2,3.")] = "1",
    width: Annotated[int, typer.Option(min=1, help="Neurons per hidden layer.")] = 64,
    seeds: Annotated[int, typer.Option(min=1, help="Chips trained at once per cell.")] = 5,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training set.")] = 40,
    cluster: ClusterOpt = None,
    workers: WorkersOpt = None,
    cluster_config: ClusterConfigOpt = None,
    store: StoreOpt = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the markdown table here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print every cell as JSON.")] = False,
) -> None:
    """Train every rule under every condition as a study of cells; print the learning table.

    Example: neurodeploy learn-table --rules fa,kp --conditions float,loihi2 --cluster local --store runs/t1
    """
    from neurodeploy.atomic import atomic_write
    from neurodeploy.studies.learning_grid import RULES, grid, learning_cell, table
    from neurodeploy.studies.study import run_study

    names = [r.strip() for r in rules.split(",") if r.strip()] or list(RULES)
    unknown = [r for r in names if r not in RULES]
    if unknown:
        raise NeurodeployError(f"unknown rule {unknown[0]!r}", "--rules", f"choose from {', '.join(RULES)}")
    columns = [c.strip() for c in conditions.split(",") if c.strip()]
    if output is not None and output.suffix.lower() != ".md":
        raise NeurodeployError(f"{output} should end in .md", str(output), "name it e.g. table.md")
    try:
        depth_list = [int(d) for d in depths.split(",") if d.strip()]
    except ValueError:
        hint = "e.g. --depths 1,2,3"
        raise NeurodeployError(f"--depths {depths!r} is not a list of numbers", "--depths", hint) from None
    cells = grid(names, columns, seeds, epochs, task, depths=depth_list, width=width)
    with cell_progress("learning table") as show:
        study = run_study(learning_cell, cells, store=store, cluster=cluster, workers=workers,
                          cluster_config=cluster_config, progress=show)  # fmt: skip
    text = table(study.results, columns, walls=[c["wall_s"] for c in study.cells])
    if output is not None:

        def write(tmp: str) -> None:
            Path(tmp).write_text(text + "\n", encoding="utf-8")

        atomic_write(output, write, example="table.md")
    if as_json:
        _emit_json({"format": "neurodeploy.learn-table", "cells": study.cells, "summary": study.summary()})
    else:
        console.print(f"{task}: test accuracy %, mean ± std over {seeds} seeds, {epochs} epochs (∠: final alignment; "
                      "then gain over frozen and Welch's p; wall time)")  # fmt: skip
        console.print(text, markup=False, highlight=False)
        console.print(study.summary(), markup=False, highlight=False)
        if output is not None:
            console.print(f"wrote [bold]{shown(output)}[/]")
    if study.failed:
        err_console.print(
            f"{len(study.failed)} cells failed; their errors are in "
            + (f"{shown(store)}/*.failed.json" if store else "the summary above")
            + ". Fix the cause and rerun with the same --store to run only those.",
            highlight=False,
        )
        raise typer.Exit(1)
