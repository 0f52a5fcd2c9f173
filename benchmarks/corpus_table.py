"""NIR's own test graphs on each profile: compiled (and how many host readouts) or refused, and why.

Reads the corpus copy in tests/data/nir-corpus (BSD-3, see its LICENSE). ``tests/test_corpus.py``
checks the same graphs against the float reference.

    .venv/bin/python benchmarks/corpus_table.py [--profiles ideal,loihi2,xylo-audio2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from neurodeploy.studies.compile_grid import compile_cell, grid
from neurodeploy.studies.study import run_study

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "nir-corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="ideal,loihi2,xylo-audio2")
    parser.add_argument("--cluster", default="serial", help="serial (default), local, tcp://host:port or slurm")
    args = parser.parse_args()
    profiles = args.profiles.split(",")
    paths = sorted(CORPUS.glob("*.nir"))
    study = run_study(compile_cell, grid(paths, profiles, dt=1e-4), cluster=args.cluster)
    if study.failed:
        raise SystemExit(study.summary())
    cells = {(c["path"], c["profile"]): c for c in study.results}
    table = Table(title="NIR corpus: compiled or refused", title_justify="left")
    table.add_column("graph")
    for profile in profiles:
        table.add_column(profile)
    counts = {p: 0 for p in profiles}
    for path in paths:
        row = [path.stem.replace("readwrite__", "rw/").replace("architectures__", "arch/")]
        for profile in profiles:
            c = cells[(str(path), profile)]
            if c["status"] == "refused":
                row.append(f"refused: {c['reason'].split(':')[-1].split('(')[0].strip()[:40]}")
                continue
            counts[profile] += 1
            row.append("compiled" + (f", {c['readouts']} readout" if c["readouts"] else ""))
        table.add_row(*row)
    Console().print(table)
    print("compiled: " + ", ".join(f"{p} {counts[p]}/{len(paths)}" for p in profiles))
    print(study.summary())


if __name__ == "__main__":
    main()
