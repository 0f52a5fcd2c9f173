"""One self-contained HTML file that shows what a compiled network costs and loses on its chip.

Everything is inline (CSS, PNG figures as data URIs), so the file can be mailed, archived in CI, or opened
offline. The sections for variability studies (accuracy per sampled chip) and on-chip learning (curves)
render only when that data is passed (``neurodeploy report --variability ... --learning ...``); anything
else plugs in through ``extra_sections``::

    html = build_report(compiled, run_results=compare_runs(compiled, spikes), labels=y)
    write_report("report.html", html)
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurodeploy.atomic import atomic_write
from neurodeploy.errors import NeurodeployError
from neurodeploy.export import voltage_scales

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;margin:0;background:#f5f7fa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:2px solid #e4e7eb;padding-bottom:4px}
.sub{color:#52606d;margin:0 0 16px}nav{background:#f0f4f8;padding:8px 12px;border-radius:6px;margin:12px 0}
nav a{margin-right:14px;color:#2f5d8a;text-decoration:none}nav a:hover{text-decoration:underline}
table{border-collapse:collapse;margin:8px 0 12px;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #e4e7eb;
text-align:right;vertical-align:top}th{background:#f0f4f8;text-align:right}td.l,th.l{text-align:left}
figure{margin:12px 0}img{max-width:100%;height:auto;display:block;margin:4px 0}.note{color:#52606d;font-size:13px}
.warn{color:#8a4b00}.bad{color:#c0392b}.good{color:#2e7d32}.kv td:first-child{text-align:left;color:#52606d}
.pending{color:#7b8794;font-size:13px;border-left:3px solid #cbd2d9;padding-left:10px}
footer{margin-top:36px;color:#7b8794;font-size:12px}
"""


@dataclass
class Section:
    """A report section: ``body`` is an HTML fragment the caller built (escape user text with ``esc``)."""

    title: str
    body: str
    id: str = ""

    @property
    def anchor(self) -> str:
        return self.id or "".join(ch if ch.isalnum() else "-" for ch in self.title.lower()).strip("-")


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def figure(uri: str, caption: str) -> str:
    """An inline figure; ``uri`` comes from ``neurodeploy.plots``."""
    cap = esc(caption)
    return f'<figure><img alt="{cap}" src="{uri}"><figcaption class="note">{cap}</figcaption></figure>'


def table(header: Sequence[str], rows: Iterable[Sequence[object]], left: int = 1, cls: str = "") -> str:
    """An HTML table; the first ``left`` columns are left-aligned (names), the rest are numbers."""
    head = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(header))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{esc(v)}</td>' for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _num(value: object, fmt: str = ".4g") -> str:
    return format(value, fmt) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def _present(ref: Any, chip: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row index and values of two weight matrices (dense or scipy.sparse) where either is non-zero.

    Absent synapses are zero in both and carry no error; skipping them keeps big sparse matrices cheap.
    """
    if hasattr(ref, "tocsr") or hasattr(chip, "tocsr"):
        import scipy.sparse as sp

        r, c = sp.csr_matrix(ref, dtype=float), sp.csr_matrix(chip, dtype=float)
        pattern = (abs(r) + abs(c)).tocoo()
        rows, cols = pattern.row, pattern.col
        return rows, np.asarray(r[rows, cols], dtype=float).ravel(), np.asarray(c[rows, cols], dtype=float).ravel()
    r, c = np.asarray(ref, dtype=float), np.asarray(chip, dtype=float)
    rows, cols = np.nonzero((r != 0) | (c != 0))
    return rows, r[rows, cols], c[rows, cols]


def _nonzero(weight: Any) -> int:
    return int(weight.count_nonzero()) if hasattr(weight, "count_nonzero") else int(np.count_nonzero(weight))


def weight_errors(compiled: Any) -> list[dict[str, Any]]:
    """Float weights of every projection beside the chip's, dequantised: ``mantissa * 2**weight_exp / λ``.

    ``float`` and ``chip`` hold the synapses present in either (flat arrays); ``steps`` is their
    difference in quantization steps (None for float cores, whose weights are stored as values);
    ``lsb`` is one step in float units at the population's largest λ. Recomputed from the artifact's
    ``ir`` and ``core`` rather than taken from the report, so the figure checks the numbers.
    """
    rows = []
    report_layers = {layer["population"]: layer for layer in compiled.report["layers"]}
    core_projs = {c.name: c for c in compiled.core.projections}
    for pr in compiled.ir.projections:
        core_pr = core_projs.get(pr.name)
        if core_pr is None:
            continue
        layer = report_layers.get(pr.dst, {})
        idx, ref, chip = _present(pr.weight, core_pr.weight)
        steps, lsb = None, 0.0
        if compiled.core.numerics == "loihi":
            lam = voltage_scales(compiled, pr.dst)
            step = 2 ** (8 - core_pr.num_weight_bits + (1 if core_pr.sign_mode == "mixed" else 0))
            chip = chip * 2.0**core_pr.weight_exp / lam[idx]
            steps = (chip - ref) / (step * 2.0**core_pr.weight_exp / lam[idx])
            lsb = step * 2.0**core_pr.weight_exp / float(lam.max())
        rows.append(
            {
                "projection": pr.name,
                "src": pr.src,
                "dst": pr.dst,
                "float": ref,
                "chip": chip,
                "steps": steps,
                "lsb": lsb,
                "weight_exp": core_pr.weight_exp,
                "snr_db": layer.get("weight_snr_db", {}).get(pr.name, "–"),
                "saturated": layer.get("weights_saturated", {}).get(pr.name, 0),
                "max_abs_error": float(np.abs(chip - ref).max()) if ref.size else 0.0,
            }
        )
    return rows


def compare_runs(compiled: Any, inputs: Any, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the float reference (the artifact's IR compiled for ``ideal``) and the chip on the same inputs."""
    import neurodeploy as nd

    ideal = nd.compile(compiled.ir, "ideal")
    out = {}
    for label, target in (("float (ideal)", ideal), (f"chip ({compiled.profile.name})", compiled)):
        if progress:
            progress(label)
        out[label] = nd.run(target, inputs)
    return out


def _findings(violations: Sequence[Mapping[str, Any]]) -> str:
    if not violations:
        return "none"
    counts: dict[str, int] = {}
    for v in violations:
        counts[v.get("severity", "error")] = counts.get(v.get("severity", "error"), 0) + 1
    return ", ".join(f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in sorted(counts.items()))


def _summary(compiled: Any, source: str) -> str:
    rep = compiled.report
    conv = rep["conventions"]
    metrics = rep.get("metrics", {})
    rows = [
        ("artifact", source or "(in memory)"),
        ("profile", f"{rep['profile']['title']} ({rep['profile']['name']}, {rep['profile']['core_model']} core)"),
        ("inputs → outputs", f"{', '.join(compiled.core.inputs)} → {', '.join(compiled.core.outputs)}"),
        ("time step dt", f"{conv['dt']:g} s"),
        ("reset", conv["reset"]),
        ("conventions from", conv.get("source", "unknown")),
        ("parameters (non-zero weights)", metrics.get("ParameterCount", "–")),
        ("synapse memory", f"{metrics.get('Footprint', '–')} bytes"),
        ("cores", metrics.get("Cores", "–")),
        ("design-rule findings", _findings(rep["violations"])),
    ]
    if rep.get("compile_seconds"):  # artifacts store no timings (they stay byte-reproducible)
        rows.append(("compile time", f"{rep['compile_seconds']:.3f} s"))
    body = (
        '<table class="kv"><tbody>'
        + "".join(f'<tr><td>{esc(k)}</td><td class="l">{esc(v)}</td></tr>' for k, v in rows)
        + "</tbody></table>"
    )
    if conv.get("assumed"):
        body += (
            f'<p class="warn">Assumed, not read from the file: {esc(", ".join(conv["assumed"]))}. '
            "Pass them explicitly (dt=, reset=) if the defaults are wrong.</p>"
        )
    evaluation = rep.get("evaluation", {}).get("layers", {})
    if evaluation:
        body += "<p>Checked against the float reference on the sample inputs given at compile time:</p>"
        body += table(
            ("population", "spike agreement", "rate float", "rate chip", "count correlation"),
            [
                (
                    n,
                    f"{100 * e.get('spike_agreement', 0):.2f} %",
                    _num(e.get("rate_reference")),
                    _num(e.get("rate_chip")),
                    _num(e.get("count_correlation")),
                )
                for n, e in evaluation.items()
            ],
        )
        from neurodeploy.html_saturation import saturation_html

        body += saturation_html(rep)  # u wraps, v saturations and headroom per layer (Loihi cores)
    return body


def _network(compiled: Any) -> str:
    from neurodeploy import plots

    pops = [{"name": p.name, "size": p.size, "kind": p.kind} for p in compiled.ir.populations]
    projs = [
        {
            "name": p.name,
            "src": p.src,
            "dst": p.dst,
            "shape": tuple(p.weight.shape),
            "nonzero": _nonzero(p.weight),
            "delay": p.delay,
        }
        for p in compiled.ir.projections
    ]
    latency = compiled.report.get("latency_steps", {})
    body = figure(
        plots.network_diagram(pops, projs),
        "Populations (boxes: size × neuron model) and projections "
        "(arrows: weight matrix rows × columns, non-zero weights, extra delay in steps).",
    )
    body += table(
        ("population", "neurons", "model", "chip latency (steps)"),
        [(p["name"], p["size"], p["kind"], latency.get(p["name"], "unreachable")) for p in pops],
    )
    return body


def _cores(compiled: Any) -> str:
    from neurodeploy import plots

    rep = compiled.report
    prof = compiled.profile
    bits = int(prof.numerics.get("weight_bits", 32))
    body = figure(
        plots.core_map(rep["cores"], prof.limits, bits, prof.limit("cores_per_chip")),
        "Per-core utilisation: the largest of the neuron, synapse-memory and input-axon fractions.",
    )
    body += table(
        ("core", "neurons", "synapses", "memory words", "axons in", "axons out", "utilisation %", "blocks"),
        [
            (
                c["core"],
                c["neurons"],
                c["synapses"],
                c["memory_words"],
                c["axons_in"],
                c["axons_out"],
                f"{c['utilisation']:.2f}",
                ", ".join(c["blocks"]),
            )
            for c in rep["cores"]
        ],
        left=1,
    )
    if rep["violations"]:
        body += "<h3>Design-rule findings</h3>" + table(
            ("severity", "node", "rule", "limit", "actual", "what to do"),
            [
                (v.get("severity", "error"), v["node"], v["rule"], v["limit"], v["actual"], v["hint"])
                for v in rep["violations"]
            ],
            left=6,
        )
    return body


def _quantization(compiled: Any) -> str:
    from neurodeploy import plots

    rows = weight_errors(compiled)
    body = table(
        ("population", "λ (scale)", "threshold rel. error", "bias rel. error", "decay abs. error", "notes"),
        [
            (
                q["population"],
                _num(q["scale"]),
                _num(q["threshold_rel_error"], ".2e"),
                _num(q["bias_rel_error"], ".2e"),
                _num(q["decay_abs_error"], ".2e"),
                "; ".join(q["notes"]),
            )
            for q in compiled.report["layers"]
        ],
        left=1,
    )
    if not rows:
        return body + '<p class="note">The network has no projections.</p>'
    body += table(
        ("projection", "w_exp", "SNR dB", "clipped", "max |error|", "one step (LSB)"),
        [
            (
                r["projection"],
                r["weight_exp"],
                _num(r["snr_db"], ".1f"),
                r["saturated"],
                _num(r["max_abs_error"], ".3g"),
                _num(r["lsb"], ".3g") if r["lsb"] else "float",
            )
            for r in rows
        ],
    )
    if all(r["max_abs_error"] == 0 for r in rows):
        return (
            body + f'<p class="note">{esc(compiled.profile.name)} stores the weights exactly: no quantization '
            "error.</p>"
        )
    if compiled.core.numerics == "loihi":
        caption = (
            "Float weights (IR) vs the chip's weights dequantised (mantissa × 2^w_exp / λ); right: the "
            "difference in quantization steps."
        )
    else:
        caption = "Float weights (IR) vs the weights the chip model stores; right: the difference."
    return body + figure(plots.weight_error_histograms(rows), caption)


def _pick_sample(spikes: Mapping[str, Mapping[str, np.ndarray]]) -> int:
    """The sample where the runs differ most (the first one when they agree): the informative raster."""
    labels = list(spikes)
    ref = spikes[labels[0]]
    diff = None
    for label in labels[1:]:
        for name, arr in spikes[label].items():
            if name in ref and ref[name].shape == arr.shape:
                d = np.count_nonzero(ref[name] != arr, axis=(0, 2))
                diff = d if diff is None else diff + d
    return int(np.argmax(diff)) if diff is not None and diff.size else 0


def _runs(compiled: Any, run_results: Mapping[str, Any], labels: Any, sample: int | None) -> str:
    from neurodeploy import plots

    names = list(run_results)
    order = {p.name: i for i, p in enumerate(compiled.core.populations)}
    spikes = {
        k: dict(sorted(r.spikes.items(), key=lambda kv: order.get(kv[0], len(order)))) for k, r in run_results.items()
    }
    ref = spikes[names[0]]
    rows = []
    for pop in ref:
        row: list[object] = [pop]
        for k in names:
            row.append(int(spikes[k][pop].sum()) if pop in spikes[k] else "–")
        for k in names[1:]:
            same = pop in spikes[k] and spikes[k][pop].shape == ref[pop].shape
            row.append(f"{100 * float(np.mean(spikes[k][pop] == ref[pop])):.3f} %" if same else "–")
        rows.append(row)
    header = ["population", *[f"spikes: {k}" for k in names], *[f"agreement {k} vs {names[0]}" for k in names[1:]]]
    body = table(header, rows)
    outputs = list(compiled.core.outputs)
    if outputs and all(outputs[0] in r.spikes or outputs[0] in r.readouts for r in run_results.values()):
        preds = {k: r.predictions() for k, r in run_results.items()}
        line = [
            f"{k}: {100 * float(np.mean(preds[k] == preds[names[0]])):.1f} % same class as {names[0]}"
            for k in names[1:]
        ]
        if labels is not None and len(labels) == len(preds[names[0]]):
            line += [f"accuracy {k}: {100 * float(np.mean(preds[k] == np.asarray(labels))):.1f} %" for k in names]
        body += f"<p>Predictions (most output spikes): {esc('; '.join(line))}.</p>"
    batch = next(iter(ref.values())).shape[1] if ref else 0
    chosen = _pick_sample(spikes) if sample is None else sample
    if not 0 <= chosen < max(batch, 1):
        raise NeurodeployError(f"sample {chosen} is out of range", "sample", f"choose 0 .. {batch - 1}")
    caption = (
        f"Sample {chosen} of {batch}"
        + (" (where the runs differ most)" if sample is None else "")
        + f": spikes of every population; red marks spikes that differ from {names[0]}."
    )
    return body + figure(plots.raster_comparison(spikes, chosen, list(compiled.core.inputs)), caption)


def _mismatch(data: Mapping[str, Sequence[float]]) -> str:
    from neurodeploy import plots

    rows = [
        (
            k,
            len(v),
            f"{100 * np.mean(v):.2f} %",
            f"{100 * np.std(v):.2f}",
            f"{100 * np.min(v):.2f} %",
            f"{100 * np.max(v):.2f} %",
        )
        for k, v in data.items()
        if len(v)
    ]
    return table(("profile / setting", "instances", "mean accuracy", "std (points)", "worst", "best"), rows) + figure(
        plots.distributions({k: np.asarray(v) * 100 for k, v in data.items()}, "accuracy %"),
        "Accuracy of each sampled chip instance.",
    )


def _learning(data: Mapping[str, Mapping[str, Sequence[float]]]) -> str:
    from neurodeploy import plots

    rows = [
        (rule, metric, len(vals), _num(vals[-1]) if len(vals) else "–")
        for rule, metrics in data.items()
        for metric, vals in metrics.items()
    ]
    return table(("rule", "metric", "epochs", "final"), rows, left=2) + figure(
        plots.curves(data), "Learning and alignment curves per rule."
    )


def build_report(
    compiled: Any,
    run_results: Mapping[str, Any] | None = None,
    *,
    labels: Any = None,
    sample: int | None = None,
    mismatch: Mapping[str, Sequence[float]] | None = None,
    learning: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    extra_sections: Sequence[Section] = (),
    title: str | None = None,
    source: str = "",
) -> str:
    """The report as one HTML string.

    ``run_results``: {label: RunResult}, the first one the reference (see ``compare_runs``); adds rasters.
    ``mismatch``: {label: accuracy per sampled chip instance, 0..1}. ``learning``: {rule: {metric: values
    per epoch}} (e.g. accuracy, alignment angle). Both sections render only when given.
    """
    sections = [
        Section("Summary", _summary(compiled, source), "summary"),
        Section("Network", _network(compiled), "network"),
        Section("Cores and placement", _cores(compiled), "cores"),
        Section("Quantization", _quantization(compiled), "quantization"),
    ]
    if run_results:
        sections.append(Section("Float vs chip spikes", _runs(compiled, run_results, labels, sample), "runs"))
    if mismatch:
        sections.append(Section("Mismatch: accuracy across chip instances", _mismatch(mismatch), "mismatch"))
    if learning:
        sections.append(Section("On-chip learning: curves and alignment", _learning(learning), "learning"))
    sections.extend(extra_sections)
    pending = []
    if not run_results:
        pending.append("float vs chip rasters (pass input spikes: <code>--inputs spikes.npy</code>)")
    if not mismatch:
        pending.append("accuracy across sampled chip instances (pass <code>--variability variability.json</code>)")
    if not learning:
        pending.append("learning and alignment curves (pass <code>--learning learn.json</code>)")
    heading = title or f"neurodeploy report: {compiled.report['profile']['name']}"
    nav = "".join(f'<a href="#{esc(s.anchor)}">{esc(s.title)}</a>' for s in sections)
    parts = [f'<section id="{esc(s.anchor)}"><h2>{esc(s.title)}</h2>{s.body}</section>' for s in sections]
    if pending:
        parts.append('<p class="pending">Not in this report: ' + "; ".join(pending) + ".</p>")
    from neurodeploy._version import __version__

    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(heading)}</title><style>{CSS}</style></head><body><main>"
        f'<h1>{esc(heading)}</h1><p class="sub">{esc(compiled.report["profile"]["title"])}</p>'
        f"<nav>{nav}</nav>{''.join(parts)}"
        f"<footer>Written by neurodeploy {esc(__version__)} on {esc(stamp)}. Self-contained: no external "
        "resources.</footer></main></body></html>\n"
    )


def write_report(path: str | Path, text: str) -> Path:
    """Write atomically (see ``neurodeploy.atomic``): never a half-written report."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"), example="report.html")
