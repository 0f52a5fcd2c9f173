"""Rules × {float, fixed point on loihi2, fixed point + 10 % mismatch} on Yin-Yang, mean ± std over seeds.

Every cell is one ``neurodeploy.learn`` call training ``--seeds`` chips at once (4-64-3
spiking network, 40 epochs by default; ``eprop`` trains a recurrent 4-64-3 network). The float column
runs on the ``ideal`` profile; the fixed-point columns run the loihi2 learning engine (8-bit weights,
7-bit traces, stochastic rounding). ``frozen`` (only the
output layer learns) is the baseline each rule's gain is measured against; ``bp`` is the float reference.
Cells run in parallel worker processes. The markdown table is printed and, with ``--write``, stored as
``docs/learning-table.md`` together with the command that produced it.

    .venv/bin/python benchmarks/learning_table.py [--epochs 40] [--seeds 5] [--rules bp,fa,kp] \
        [--conditions loihi2] [--write]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

RULES = ["bp", "frozen", "fa", "dfa", "drtp", "sign", "kp", "wm", "ia", "pal", "sal", "eprop"]
TITLES = {"yinyang": "Yin-Yang (5000 / 1000 / 1000)", "digits": "scikit-learn digits (1297 / 250 / 250)"}
SHAPES = {"yinyang": "4-64-3", "digits": "64-64-10"}
CONDITIONS = [("float", "ideal", 0.0), ("loihi2", "loihi2", 0.0), ("loihi2 + 10 % mismatch", "loihi2", 0.1)]


def cell(args: tuple[str, str, float, int, int, str]) -> dict[str, Any]:
    from neurodeploy.api_learn import learn

    rule, profile, mismatch, seeds, epochs, task = args
    t0 = time.perf_counter()
    result = learn(rule, profile, task, mismatch=mismatch, seeds=seeds, epochs=epochs)
    fin = result.final
    return {
        "rule": rule,
        "profile": profile,
        "mismatch": mismatch,
        "accuracy": fin["test_accuracy"],
        "weight_angle": fin["weight_angle"],
        "signal_angle": fin["signal_angle"],
        "wall_s": time.perf_counter() - t0,
    }


def fmt(c: dict[str, Any]) -> str:
    acc = c["accuracy"]
    text = f"{100 * acc['mean']:.1f} ± {100 * acc['std']:.1f}"
    angles = c["weight_angle"] or c["signal_angle"]
    if angles:
        a = next(iter(angles.values()))
        sym = "∠B" if c["weight_angle"] else "∠δ"
        text += f" ({sym} {a['mean']:.0f}°)"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--task", default="yinyang")
    ap.add_argument("--rules", default=",".join(RULES))
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--conditions",
        default=",".join(name for name, _, _ in CONDITIONS),
        help="columns to run, comma separated: " + ", ".join(name for name, _, _ in CONDITIONS),
    )
    ap.add_argument("--json", type=Path, default=None, help="also write every cell as JSON here")
    ap.add_argument("--reuse", type=Path, default=None, help="cells of an earlier --json run for rules not in --rules")
    ap.add_argument("--write", action="store_true", help="store the table as docs/learning-table.md")
    args = ap.parse_args()
    rules = [r.strip() for r in args.rules.split(",") if r.strip()]
    wanted = [c.strip() for c in args.conditions.split(",") if c.strip()]
    unknown = [c for c in wanted if c not in {name for name, _, _ in CONDITIONS}]
    if unknown:
        ap.error(f"unknown condition {unknown[0]!r}; choose from {', '.join(n for n, _, _ in CONDITIONS)}")
    conditions = [c for c in CONDITIONS if c[0] in wanted]
    # read the earlier cells before the long run, so a wrong path fails at once
    reused = json.loads(args.reuse.read_text(encoding="utf-8")) if args.reuse else []
    reused = [c for c in reused if c["rule"] not in rules]
    jobs = [(r, prof, mm, args.seeds, args.epochs, args.task) for r in rules for _, prof, mm in conditions]
    jobs.sort(key=lambda j: j[0] not in ("pal", "sal", "wm", "ia"))  # the slow cells first
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        cells = list(pool.map(cell, jobs))
    wall = time.perf_counter() - t0
    cells = reused + cells
    rules = [r for r in RULES if r in {c["rule"] for c in cells}]
    by_key = {(c["rule"], c["profile"], c["mismatch"]): c for c in cells}
    head = "| rule | " + " | ".join(name for name, _, _ in conditions) + " |"
    lines = [head, "|" + "---|" * (len(conditions) + 1)]
    for r in rules:
        row = [fmt(by_key[(r, prof, mm)]) for _, prof, mm in conditions]
        lines.append(f"| {r} | " + " | ".join(row) + " |")
    command = "python benchmarks/learning_table.py " + " ".join(sys.argv[1:])
    if reused:
        command += f" (rows {', '.join(sorted({c['rule'] for c in reused}))} from {args.reuse.name})"
    table = "\n".join(lines)
    print(f"{args.task} test accuracy %, mean ± std over {args.seeds} seeds, {args.epochs} epochs; final ∠(B, Wᵀ)")
    print("(or ∠(δ, δ_BP) for rules without a feedback matrix) in brackets.\n")
    print(table)
    print(f"\nwall {wall:.0f} s over {len(jobs)} cells; command: {command}")
    if args.json is not None:
        args.json.write_text(json.dumps(cells, indent=2) + "\n", encoding="utf-8")
    if args.write:
        name = "learning-table.md" if args.task == "yinyang" else f"learning-table-{args.task}.md"
        out = Path(__file__).resolve().parent.parent / "docs" / name
        mean_wall = float(np.mean([c["wall_s"] for c in cells]))
        out.write_text(
            f"# Learning rules on chip: {TITLES.get(args.task, args.task)}\n\n"
            f"{TITLES.get(args.task, args.task)}, {SHAPES.get(args.task, '')} spiking network, {args.epochs} epochs, "
            "test accuracy in %, "
            f"mean ± std over {args.seeds} seeds. In brackets: the final weight alignment angle ∠(B, Wᵀ), or "
            "for rules without a feedback matrix the signal alignment angle ∠(δ, δ_BP) of the hidden layer.\n\n"
            f"{table}\n\nProduced by `{command}` ({len(jobs)} cells, {wall:.0f} s wall, "
            f"{mean_wall:.0f} s per cell).\n",
            encoding="utf-8",
        )
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
