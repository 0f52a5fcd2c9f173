"""FA and DFA on a convolutional and on a recurrent layer, against BP / BPTT, on the 8x8 digits.

Nøkland (NeurIPS 2016) trains convolutional networks with DFA, and random feedback through time extends FA
and DFA to recurrent networks. This trains, with each rule's paper variant (float64, every signal written
out): a conv net (8 kernels of 3 × 3 → tanh → 64 tanh → readout) and an Elman RNN (64 tanh units reading
the image row by row, 8 steps), ``--seeds`` networks each, and prints test accuracy and the signal angle
∠(δ, δ_BP) per layer (for the RNN: at the last step and over all steps). ``--write`` stores
docs/fa-conv-recurrent.md.

    .venv/bin/python benchmarks/fa_conv_recurrent.py [--epochs 10] [--seeds 5] [--write]
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    from neurodeploy.rules.paper import learn_conv, learn_recurrent

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    lines = ["| network | rule | test accuracy % | ∠(δ, δ_BP) per layer | wall |", "|---|---|---|---|---|"]
    t_all = time.perf_counter()
    for kind, fn in (("conv", learn_conv), ("recurrent", learn_recurrent)):
        for rule in ("bp", "fa", "dfa"):
            res = fn(rule, "digits", seeds=args.seeds, epochs=args.epochs)
            acc = res.final["test_accuracy"]
            angles = ", ".join(f"{k} {v['mean']:.0f}°" for k, v in res.final["signal_angle"].items()) or "–"
            name = "bptt" if (kind, rule) == ("recurrent", "bp") else rule
            lines.append(f"| {kind} | {name} | {100 * acc['mean']:.1f} ± {100 * acc['std']:.1f} | {angles} "
                         f"| {res.wall_s:.0f} s |")  # fmt: skip
            print(lines[-1], flush=True)
    table = "\n".join(lines)
    command = "python benchmarks/fa_conv_recurrent.py " + shlex.join(sys.argv[1:])
    print(f"\n{table}\n\nwall {time.perf_counter() - t_all:.0f} s; command: {command}")
    if args.write:
        (ROOT / "docs" / "fa-conv-recurrent.md").write_text(
            "# FA and DFA on convolutional and recurrent layers\n\n"
            f"scikit-learn digits (1297 / 250 / 250), the paper variants in float64, {args.seeds} seeds, "
            f"{args.epochs} epochs, SGD. Conv net: 8 kernels of 3 × 3, tanh, 64 tanh units, readout. RNN: 64 "
            "tanh units reading the 8 rows one per step, readout at the last step. The signal angle compares "
            "each rule's δ with backprop's (through time for the RNN) on a probe batch; 90° is uninformative.\n\n"
            f"{table}\n\nIn Python: `neurodeploy.rules.paper.learn_conv(rule, task)` and `learn_recurrent(rule, "
            "task)`, rule in bp, fa, dfa. Produced by:\n\n"
            f"```\n{command}\n```\n",
            encoding="utf-8",
        )


if __name__ == "__main__":
    main()
