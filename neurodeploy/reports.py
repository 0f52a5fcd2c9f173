"""Rich tables for compile reports, profiles and runs: what users look at before they read."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table

from neurodeploy.hw_profiles import Profile
from neurodeploy.textsafe import shown


def cores_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"Per-core resources on {shown(report['profile']['name'])}", title_justify="left",
                  box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1, 0, 0))  # fmt: skip
    # two-line headers and folded block lists: the table fits 80 columns without cutting a number or a name
    for col in ("core", "neurons", "synapses", "mem\nwords", "axons\nin", "axons\nout", "util\n%"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("blocks", overflow="fold")
    totals = [0, 0, 0, 0, 0]
    for c in report["cores"]:
        vals = [c["neurons"], c["synapses"], c["memory_words"], c["axons_in"], c["axons_out"]]
        totals = [a + b for a, b in zip(totals, vals, strict=True)]
        table.add_row(str(c["core"]), *map(str, vals), f"{c['utilisation']:.2f}", shown(", ".join(c["blocks"])))
    if len(report["cores"]) > 1:
        table.add_row("total", *map(str, totals), "", "", style="bold")
    return table


def layers_table(report: dict[str, Any]) -> Table:
    table = Table(title="Quantization error per layer", title_justify="left")
    # short headers: the table fits 80 columns without cutting them ("agree": spikes as the float reference)
    for col in ("layer", "λ", "weights", "w_exp", "SNR dB", "clipped", "vth err", "agree"):
        table.add_column(col, justify="left" if col in ("layer", "weights") else "right")
    evaluation = report.get("evaluation", {}).get("layers", {})
    for layer in report["layers"]:
        agree = evaluation.get(layer["population"], {}).get("spike_agreement")
        agree_text = f"{100 * agree:.2f} %" if agree is not None else "–"
        projections = list(layer["weight_exp"]) or ["–"]
        for i, proj in enumerate(projections):
            snr = layer["weight_snr_db"].get(proj, "–")
            snr_text = f"{snr:.1f}" if isinstance(snr, float) else str(snr)
            table.add_row(
                shown(layer["population"]) if i == 0 else "",
                f"{layer['scale']:.4g}" if i == 0 else "",
                shown(proj),
                str(layer["weight_exp"].get(proj, "–")),
                snr_text,
                str(layer["weights_saturated"].get(proj, "–")),
                f"{layer['threshold_rel_error']:.1e}" if i == 0 else "",
                agree_text if i == 0 else "",
            )
    return table


def readout_lines(report: dict[str, Any]) -> list[str]:
    """One line per host readout: which NIR nodes no core holds, and what they cost the host."""
    return [
        f"readout {shown(r['name'])} ({', '.join(map(shown, r['nodes']))}) runs on the host: "
        f"{r['size']} values per step from {', '.join(map(shown, r['sources']))}, "
        f"{r['host_ops_per_step']:,} multiply-adds per sample and step"
        for r in report.get("readouts", [])
    ]


def saturation_lines(report: dict[str, Any]) -> list[str]:
    """The layers that wrap u or saturate v on the sample inputs, one short line each under a heading;
    nothing when none does (the headroom of every layer is in the JSON and HTML reports)."""
    layers = report.get("evaluation", {}).get("layers", {})
    bad = [(n, e) for n, e in layers.items() if e.get("u_wraps") or e.get("v_saturations")]
    if not bad:
        return []
    lines = ["u/v overflow on the sample inputs (peaks as fractions of 2^23):"]
    for name, e in bad:
        first = e.get("first_violation") or {}
        at = f" from step {first['step']}" if "step" in first else ""
        lines.append(
            f"  {shown(name)}: {e.get('v_saturations', 0)} v saturations, {e.get('u_wraps', 0)} u wraps{at}; "
            f"peak |u| {e.get('peak_u', 0):.2f}, |v| {e.get('peak_v', 0):.2f}"
        )
    return lines


def evaluation_line(report: dict[str, Any]) -> str:
    """One line on the sample inputs: predictions that agree with the float reference, and accuracies;
    then, only where a layer overflows, ``saturation_lines`` (so every caller shows them)."""
    ev = report.get("evaluation")
    if not ev:
        return ""
    agree = ", ".join(f"{100 * v:.1f} % ({shown(k)})" for k, v in ev.get("prediction_agreement", {}).items())
    line = f"on {ev.get('samples', '?')} sample inputs: predictions agree with the float reference in {agree}"
    acc = ev.get("accuracy")
    if acc:
        line += f"; accuracy {100 * acc['reference']:.1f} % float, {100 * acc['chip']:.1f} % chip"
    return "\n".join([line, *saturation_lines(report)])


def violations_table(report: dict[str, Any]) -> Table | None:
    if not report["violations"]:
        return None
    table = Table(title="Design-rule violations", title_justify="left")
    for col in ("node", "rule", "limit", "actual", "what to do"):
        table.add_column(col)
    for v in report["violations"]:
        table.add_row(*(shown(v[k]) for k in ("node", "rule", "limit", "actual", "hint")))
    return table


def profiles_table(profiles: list[Profile]) -> Table:
    table = Table(title="Hardware profiles", title_justify="left")
    for col in ("name", "title", "kind", "core model", "neurons/core", "weight bits"):
        table.add_column(col)
    for p in profiles:
        n = p.limit("neurons_per_core")
        table.add_row(
            shown(p.name),
            shown(p.title),
            shown(p.kind),
            shown(p.core_model),
            "unlimited" if n is None else str(n),
            str(p.numerics.get("weight_bits", "float")),
        )
    return table


def profile_detail_table(profile: Profile) -> Table:
    table = Table(title=f"{shown(profile.title)} ({shown(profile.name)})", title_justify="left")
    for col in ("field", "value", "source", "verified", "note"):
        table.add_column(col)
    for section in ("numerics", "limits", "energy", "mismatch"):
        for key, value in getattr(profile, section).items():
            cite = profile.citations[f"{section}.{key}"]
            table.add_row(
                shown(f"{section}.{key}"),
                shown(value),
                shown(cite.source),
                "yes" if cite.verified else "[yellow]no[/]",
                shown(cite.note),
            )
    return table


def sources_table(profile: Profile) -> Table:
    table = Table(title="Sources", title_justify="left")
    table.add_column("key")
    table.add_column("reference")
    for key, ref in profile.sources.items():
        table.add_row(shown(key), shown(ref))
    return table
