"""NIR's own test graphs on each profile: compiled (and how many host readouts) or refused, and why.

Reads the corpus copy in tests/data/nir-corpus (BSD-3, see its LICENSE). ``tests/test_corpus.py``
checks the same graphs against the float reference.

    .venv/bin/python benchmarks/corpus_table.py [--profiles ideal,loihi2,xylo-audio2]
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from rich.console import Console
from rich.table import Table

import neurodeploy as nd
from neurodeploy.errors import NeurodeployError

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "nir-corpus"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="ideal,loihi2,xylo-audio2")
    args = parser.parse_args()
    profiles = args.profiles.split(",")
    table = Table(title="NIR corpus: compiled or refused", title_justify="left")
    table.add_column("graph")
    for profile in profiles:
        table.add_column(profile)
    counts = {p: 0 for p in profiles}
    reasons: dict[str, int] = {}
    for path in sorted(CORPUS.glob("*.nir")):
        row = [path.stem.replace("readwrite__", "rw/").replace("architectures__", "arch/")]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = nd.load_nir(path)
            for profile in profiles:
                try:
                    compiled = nd.compile(graph, profile, dt=1e-4)
                except NeurodeployError as err:
                    reason = err.what.split(":")[-1].split("(")[0].strip()[:40]
                    reasons[reason] = reasons.get(reason, 0) + 1
                    row.append(f"refused: {reason}")
                    continue
                counts[profile] += 1
                readouts = len(compiled.core.readouts)
                row.append("compiled" + (f", {readouts} readout" if readouts else ""))
        table.add_row(*row)
    Console().print(table)
    total = len(list(CORPUS.glob("*.nir")))
    print("compiled: " + ", ".join(f"{p} {counts[p]}/{total}" for p in profiles))


if __name__ == "__main__":
    main()
