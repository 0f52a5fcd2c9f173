"""Foresee u wraps and v saturations at compile time, from the chip run on the sample inputs.

The chip wraps u at 24 bits and clips v to +-2^23 silently (``emulator/loihi.py``); a run only counts
them. With sample inputs the compiler already runs the chip model (``compiler.evaluate``), so that run
also keeps, per population, the counters, the first violation and the largest |u| and |v| before any
fix-up (``simulate(..., peaks=True)``). This module turns them into the report's per-layer numbers
(peaks as fractions of 2^23: above 1 means the limit was crossed), the one-line compile warning, and
the count the scale search (``compiler.scale_search``) uses to reject factors that saturate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from neurodeploy.emulator.loihi import MAX_UV, Violation
from neurodeploy.emulator.network import CoreNetwork

LIMIT = MAX_UV  # 2^23: u wraps past it, v saturates at it
FIX = (
    "compile with --scale-search --sample-inputs x.npy (Python: scale_search=True, sample_inputs=...) "
    "to pick a smaller scale"
)
FIX_SEARCHED = "no searched scale avoids it: lower the layer's weights or bias relative to its threshold"


class SaturationWarning(UserWarning):
    """A layer wraps u or saturates v on the sample inputs: the chip will not follow the float model there."""


def run_chip(core: CoreNetwork, inputs: Any, peaks: bool = True) -> tuple[Any, dict[str, dict[str, Any]]]:
    """``runner.run_core`` on the emulator, and each population's overflow record from that same run
    (``simulate``'s ``overflow``; empty for cores that keep none, e.g. Xylo): one run serves both the
    comparison with the float reference and the saturation check, and its counters are those of
    ``neurodeploy.run`` on the same inputs."""
    from neurodeploy.emulator.simulate import collect_overflow
    from neurodeploy.runner import run_core

    with collect_overflow(peaks) as runs:
        result = run_core(core, inputs, backend="emulator")
    return result, (runs[-1] if runs else {})


def overflows(record: Mapping[str, Any] | None) -> int:
    """u wraps plus v saturations of one population (0 where nothing was counted)."""
    if not record:
        return 0
    return int(record.get("u_wraps", 0)) + int(record.get("v_saturations", 0))


def _violation(v: Violation | None) -> dict[str, Any] | None:
    if v is None:
        return None
    *batch, neuron = v.index
    sample = int(batch[-1]) if batch else None  # runs are (time, batch, n): the last batch axis is the sample
    return {"step": int(v.step), "kind": v.kind, "sample": sample, "neuron": int(neuron), "value": int(v.value)}


def layer_saturation(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """The report's per-layer fields: counts, peaks as fractions of 2^23, the first violation (chip step,
    counted from the first input step; kind; sample and neuron; the value before the fix-up)."""
    record = record or {}
    return {
        "u_wraps": int(record.get("u_wraps", 0)),
        "v_saturations": int(record.get("v_saturations", 0)),
        "peak_u": round(float(record.get("peak_u", 0.0)) / LIMIT, 6),
        "peak_v": round(float(record.get("peak_v", 0.0)) / LIMIT, 6),
        "first_violation": _violation(record.get("first_violation")),
    }


def totals(layers: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Network totals and the layers that overflow, for ``evaluation["saturation"]``."""
    bad = [n for n, e in layers.items() if e.get("u_wraps", 0) or e.get("v_saturations", 0)]
    return {
        "u_wraps": int(sum(e.get("u_wraps", 0) for e in layers.values())),
        "v_saturations": int(sum(e.get("v_saturations", 0) for e in layers.values())),
        "layers": bad,
        "limit": LIMIT,
    }


def warning_text(evaluation: Mapping[str, Any], searched: bool = False) -> str | None:
    """One line naming the layer that overflows first, how often and when, and the fix; None when none does."""
    layers = evaluation.get("layers", {})
    bad = [(n, e) for n, e in layers.items() if e.get("u_wraps", 0) or e.get("v_saturations", 0)]
    if not bad:
        return None

    def when(item: tuple[str, Mapping[str, Any]]) -> tuple[float, int]:
        first = item[1].get("first_violation") or {}
        return (first.get("step", np.inf), list(layers).index(item[0]))

    name, e = min(bad, key=when)
    first = e.get("first_violation") or {}
    at = f", first at step {first['step']} ({first['kind']})" if first else ""
    more = f" (and {len(bad) - 1} more layer{'s' if len(bad) > 2 else ''})" if len(bad) > 1 else ""
    return (
        f"layer {name!r} overflows on the chip: {e.get('v_saturations', 0)} v saturations, "
        f"{e.get('u_wraps', 0)} u wraps on the sample inputs{at}{more}; fix: " + (FIX_SEARCHED if searched else FIX)
    )
