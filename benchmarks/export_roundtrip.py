"""How closely the exported NIR graph, run on ``ideal``, follows the chip it was exported from.

Trains the demo network (snnTorch, Yin-Yang, ``train_yinyang_snntorch`` defaults as in ``neurodeploy
demo``), compiles it for each profile, exports it with ``neurodeploy.export_nir``, writes and reads the
file, compiles it for ``ideal`` and runs both on the 1000 test samples. Prints, per population, the share
of (step, sample, neuron) entries whose spike differs, and the share of samples whose predicted class
differs. The figures are in docs/concepts/export.md.

    .venv/bin/python benchmarks/export_roundtrip.py [--profiles loihi2,loihi1,spinnaker2] [--epochs N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nir
import numpy as np

import neurodeploy as nd
from neurodeploy.datasets import yin_yang_splits
from neurodeploy.training import train_yinyang_snntorch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", default="loihi2,loihi1,spinnaker2")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: the demo's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    kwargs = {} if args.epochs is None else {"epochs": args.epochs}
    trained = train_yinyang_snntorch(seed=args.seed, **kwargs)
    features, labels = yin_yang_splits()["test"]
    spikes = trained.encoder.encode(features)
    graph = nd.from_torch(trained.module, spikes[:, 0], framework="snntorch")
    print(f"demo network, seed {args.seed}: {spikes.shape[1]} test samples, {spikes.shape[0]} steps")
    print(f"{'profile':<12} {'population':<11} {'spikes differ':>14} {'classes differ':>15}")
    with tempfile.TemporaryDirectory() as tmp:
        for profile in args.profiles.split(","):
            compiled = nd.compile(graph, profile)
            path = Path(tmp) / f"{profile}.nir"
            nir.write(str(path), nd.export_nir(compiled))
            exported = nd.compile(nd.load_nir(path), "ideal")
            chip, again = nd.run(compiled, spikes), nd.run(exported, spikes)
            classes = float(np.mean(chip.predictions() != again.predictions()))
            for name in (p for p in compiled.core.populations if p.model != "input"):
                differ = float(np.mean(chip.spikes[name.name] != again.spikes[name.name]))
                print(f"{profile:<12} {name.name:<11} {100 * differ:>13.4f}% {100 * classes:>14.2f}%")


if __name__ == "__main__":
    main()
