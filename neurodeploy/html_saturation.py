"""The HTML report's saturation part: per layer, u wraps, v saturations and the headroom left to 2^23.

Kept apart from ``html_report`` (which stays under ~500 lines); ``html_report._summary`` appends it to
the per-layer comparison with the float reference when the compile had sample inputs on a Loihi core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from neurodeploy.html_report import esc, table


def _first(first: Mapping[str, Any] | None) -> str:
    if not first:
        return "–"
    where = f"neuron {first.get('neuron')}" + (f", sample {first['sample']}" if first.get("sample") is not None else "")
    return f"step {first.get('step')}: {first.get('kind')} ({where})"


def saturation_html(report: Mapping[str, Any]) -> str:
    """A verdict paragraph and a table of every layer's counts and peaks; "" without that data."""
    from neurodeploy.compiler.saturation import warning_text

    evaluation = report.get("evaluation", {})
    layers = {n: e for n, e in evaluation.get("layers", {}).items() if "peak_v" in e}
    if not layers:
        return ""
    searched = any(q.get("search", {}).get("factors") for q in report.get("layers", []))
    message = warning_text(evaluation, searched=searched)
    if message:
        verdict = f'<p class="bad">{esc(message)}</p>'
    else:
        verdict = '<p class="good">No layer wraps u or saturates v on the sample inputs.</p>'
    rows = [
        (
            name,
            e.get("u_wraps", 0),
            e.get("v_saturations", 0),
            f"{e.get('peak_u', 0):.3f}",
            f"{e.get('peak_v', 0):.3f}",
            _first(e.get("first_violation")),
        )
        for name, e in layers.items()
    ]
    note = (
        '<p class="note">Peaks are the largest |u| and |v| the chip computed, before its 24-bit wrap of u and '
        "saturation of v, as fractions of 2^23: above 1 the register overflowed. v near its threshold is "
        "normal (the threshold sits close to 2^23 at the default scale); a large negative v is not.</p>"
    )
    header = ("population", "u wraps", "v saturations", "peak |u| / 2^23", "peak |v| / 2^23", "first overflow")
    return "<h3>Saturation on the sample inputs</h3>" + verdict + table(header, rows) + note
