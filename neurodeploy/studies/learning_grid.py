"""Learning tables as studies: rules × conditions (profile, mismatch), each cell one ``learn`` call.

A cell trains ``seeds`` chips at once and returns the final test accuracy and alignment angles with
their spread over seeds. The table is assembled from the cells' records alone, so a study rerun from
its store prints the same table without training anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from neurodeploy.errors import NeurodeployError

RULES = ["bp", "frozen", "fa", "dfa", "drtp", "sign", "kp", "wm", "ia", "pal", "sal", "eprop"]
CONDITIONS = {"float": ("ideal", 0.0), "loihi2": ("loihi2", 0.0), "loihi2 + 10 % mismatch": ("loihi2", 0.1)}
SLOW_RULES = ("pal", "sal", "wm", "ia")  # listed first, so the longest cells start first


def learning_cell(
    rule: str,
    profile: str = "loihi2",
    mismatch: float = 0.0,
    seeds: int = 5,
    epochs: int = 40,
    task: str = "yinyang",
    data: Sequence[np.ndarray] | None = None,
    hidden: Sequence[int] = (64,),
    seed: int = 0,
    options: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """One ``learn`` run: final accuracy (or MSE) and angles, mean ± std over seeds, as plain JSON.

    Only what the parameters determine: the wall time is in the study's record, not in the result."""
    from neurodeploy.api_learn import learn

    source: Any = task if data is None else tuple(np.asarray(a) for a in data)
    result = learn(rule, profile, source, hidden=list(hidden), mismatch=mismatch, seeds=seeds, epochs=epochs,
                   seed=seed, **dict(options or {}))  # fmt: skip
    fin = result.final
    score = "test_accuracy" if "test_accuracy" in fin else "test_mse"
    return {
        "rule": rule,
        "profile": profile,
        "mismatch": float(mismatch),
        "score": score,
        "accuracy": fin[score],
        "weight_angle": fin.get("weight_angle", {}),
        "signal_angle": fin.get("signal_angle", {}),
    }


def grid(
    rules: Sequence[str],
    conditions: Sequence[str],
    seeds: int,
    epochs: int,
    task: str = "yinyang",
    **extra: Any,
) -> list[dict[str, Any]]:
    """The cells of a table: every rule under every named condition, slow rules first."""
    unknown = [c for c in conditions if c not in CONDITIONS]
    if unknown:
        hint = f"choose from {', '.join(CONDITIONS)}"
        raise NeurodeployError(f"unknown condition {unknown[0]!r}", "--conditions", hint)
    cells = [{"rule": r, "profile": CONDITIONS[c][0], "mismatch": CONDITIONS[c][1], "seeds": seeds, "epochs": epochs,
              "task": task, **extra} for r in rules for c in conditions]  # fmt: skip
    return sorted(cells, key=lambda c: c["rule"] not in SLOW_RULES)


def cell_text(c: Mapping[str, Any]) -> str:
    """``95.1 ± 0.5 (∠B 7°)``: accuracy in % over seeds, with the first alignment angle if there is one."""
    acc = c["accuracy"]
    text = f"{100 * acc['mean']:.1f} ± {100 * acc['std']:.1f}"
    angles = c["weight_angle"] or c["signal_angle"]
    if angles:
        a = next(iter(angles.values()))
        sym = "∠B" if c["weight_angle"] else "∠δ"
        text += f" ({sym} {a['mean']:.0f}°)"
    return text


def table(results: Sequence[Mapping[str, Any] | None], conditions: Sequence[str]) -> str:
    """The markdown table of finished cells: a row per rule (in ``RULES`` order), a column per condition."""
    by_key = {(c["rule"], c["profile"], c["mismatch"]): c for c in results if c is not None}
    seen = {c["rule"] for c in results if c is not None}
    rules = [r for r in RULES if r in seen] + sorted(seen - set(RULES))
    lines = ["| rule | " + " | ".join(conditions) + " |", "|" + "---|" * (len(conditions) + 1)]
    for r in rules:
        row = []
        for name in conditions:
            prof, mm = CONDITIONS[name]
            cell = by_key.get((r, prof, mm))
            row.append(cell_text(cell) if cell else "failed")
        lines.append(f"| {r} | " + " | ".join(row) + " |")
    return "\n".join(lines)
