"""How closely the exported NIR graph, run on ``ideal``, follows the chip it was exported from.

Trains the demo network (snnTorch, Yin-Yang, ``train_yinyang_snntorch`` defaults as in ``neurodeploy
demo``), compiles it for each profile, exports it with ``neurodeploy.export_nir``, writes and reads the
file, compiles it for ``ideal`` and runs both on the 1000 test samples. Prints, per population, the share
of (step, sample, neuron) entries whose spike differs, and the share of samples whose predicted class
differs. The figures are in docs/concepts/export.md.

    .venv/bin/python benchmarks/export_roundtrip.py [--profiles loihi2,loihi1,spinnaker2] [--epochs N] [--write]

``--write`` replaces the table between the markers in docs/concepts/export.md.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import nir
import numpy as np

import neurodeploy as nd
from neurodeploy.datasets import yin_yang_splits
from neurodeploy.training import train_yinyang_snntorch

PAGE = Path(__file__).resolve().parents[1] / "docs" / "concepts" / "export.md"
START, END = "<!-- export_roundtrip.py: start -->", "<!-- export_roundtrip.py: end -->"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="loihi2,loihi1,spinnaker2")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the demo's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="rewrite the table in docs/concepts/export.md")
    args = parser.parse_args()
    kwargs = {} if args.epochs is None else {"epochs": args.epochs}
    trained = train_yinyang_snntorch(seed=args.seed, **kwargs)
    features, labels = yin_yang_splits()["test"]
    spikes = trained.encoder.encode(features)
    graph = nd.from_torch(trained.module, spikes[:, 0], framework="snntorch")
    print(f"demo network, seed {args.seed}: {spikes.shape[1]} test samples, {spikes.shape[0]} steps")
    print(f"{'profile':<12} {'population':<11} {'spikes differ':>14} {'classes differ':>15}")
    rows = ["| profile | hidden spikes that differ | output spikes that differ | classes that differ |",
            "|---|---|---|---|"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.profiles.split(","):
            compiled = nd.compile(graph, profile)
            path = Path(tmp) / f"{profile}.nir"
            nir.write(str(path), nd.export_nir(compiled))
            exported = nd.compile(nd.load_nir(path), "ideal")
            chip, again = nd.run(compiled, spikes), nd.run(exported, spikes)
            classes = float(np.mean(chip.predictions() != again.predictions()))
            cells = []
            for name in (p.name for p in compiled.core.populations if p.model != "input"):
                differ = float(np.mean(chip.spikes[name] != again.spikes[name]))
                cells.append(f"{100 * differ:.4f} %")
                print(f"{profile:<12} {name:<11} {100 * differ:>13.4f}% {100 * classes:>14.2f}%")
            rows.append(f"| `{profile}` | {' | '.join(cells)} | {100 * classes:.2f} % |")
    if args.write:
        text = PAGE.read_text(encoding="utf-8")
        table = "\n".join(rows)
        text = re.sub(f"{re.escape(START)}.*?{re.escape(END)}", lambda m: f"{START}\n{table}\n{END}", text, flags=re.S)
        PAGE.write_text(text, encoding="utf-8")
        print(f"wrote the table into {PAGE.relative_to(PAGE.parents[2])}")


if __name__ == "__main__":
    main()
