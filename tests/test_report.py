"""The HTML report: self-contained, numbers that match the compile report, renders cleanly in Chromium."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes

import neurodeploy as nd
from neurodeploy.errors import NeurodeployError
from neurodeploy.html_report import Section, build_report, compare_runs, weight_errors, write_report

CLI = [sys.executable, "-m", "neurodeploy.cli"]
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)

# Injected before anything else on the page: collect script errors, failed resource loads and
# console.error calls, then record how many images decoded once the page has loaded.
HOOK = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(
  String(e.message || (e.target && e.target.src) || e.type).slice(0, 120)), true);
const __err = console.error; console.error = (...a) => { window.__errors.push(a.join(" ")); __err(...a); };
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute("data-check", JSON.stringify({errors: window.__errors, images: imgs.length, broken}));
});
</script>"""


@pytest.fixture(scope="module")
def compiled():
    return nd.compile(lif_graph(), "loihi2", sample_inputs=spikes())


@pytest.fixture(scope="module")
def page(compiled) -> str:
    runs = compare_runs(compiled, spikes())
    return build_report(
        compiled,
        runs,
        labels=np.arange(16) % 3,
        source="model.ndp",
        mismatch={"loihi2": [0.9, 0.91, 0.92]},
        learning={"KP": {"accuracy": [0.5, 0.8, 0.9], "alignment angle": [80.0, 30.0, 9.0]}},
        extra_sections=[Section("Notes", "<p>plugged in</p>", "notes")],
    )


def test_report_is_self_contained(page: str):
    assert "http://" not in page and "https://" not in page
    sources = re.findall(r'\bsrc="([^"]*)"', page)
    assert len(sources) >= 6 and all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r"<link|@import|url\(", page)
    for anchor in ("summary", "network", "cores", "quantization", "runs", "mismatch", "learning", "notes"):
        assert f'id="{anchor}"' in page, anchor


def test_optional_sections_render_only_with_data(compiled):
    bare = build_report(compiled)
    assert 'id="runs"' not in bare and 'id="mismatch"' not in bare and 'id="learning"' not in bare
    assert "Not in this report" in bare


@pytest.mark.parametrize("per_channel", [False, True])
def test_weight_errors_recompute_the_reported_snr(per_channel: bool):
    compiled = nd.compile(lif_graph(), "loihi2", per_channel=per_channel)
    rows = weight_errors(compiled)
    layers = {layer["population"]: layer for layer in compiled.report["layers"]}
    assert [r["projection"] for r in rows] == [p.name for p in compiled.ir.projections]
    for r in rows:
        noise = float(np.sum((r["chip"] - r["float"]) ** 2))
        snr = 10 * math.log10(float(np.sum(r["float"] ** 2)) / noise)
        # per-neuron scales are recovered from the thresholds (17 bits), the layer scale is stored exactly
        reported = layers[r["dst"]]["weight_snr_db"][r["projection"]]
        assert snr == pytest.approx(reported, abs=0.1 if per_channel else 1e-3)
        assert np.abs(r["steps"]).max() <= 0.5 + 1e-3  # nearest rounding, nothing clipped


def test_ideal_profile_has_no_quantization_error():
    ideal = nd.compile(lif_graph(), "ideal")
    assert all(r["max_abs_error"] == 0 for r in weight_errors(ideal))
    assert "no quantization error" in build_report(ideal)


def test_write_report_is_atomic(tmp_path: Path, compiled):
    out = write_report(tmp_path / "r.html", build_report(compiled))
    assert out.read_text().startswith("<!DOCTYPE html>") and sorted(tmp_path.iterdir()) == [out]
    with pytest.raises(NeurodeployError, match="folder does not exist"):
        write_report(tmp_path / "missing" / "r.html", "x")
    with pytest.raises(NeurodeployError, match="folder"):
        write_report(tmp_path, "x")


def test_chunked_run_matches_one_run(compiled):
    from neurodeploy.cli import _run_chunked

    data = spikes(batch=300, seed=4)
    whole = nd.run(compiled, data, record=("spikes", "v"))
    parts = _run_chunked(compiled, data, "emulator", ("spikes", "v"), "test", show=True)
    for kind in ("spikes", "v"):
        for name, arr in getattr(whole, kind).items():
            np.testing.assert_array_equal(getattr(parts, kind)[name], arr)
    assert parts.counters == whole.counters


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=300, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    )


def test_report_cli(tmp_path: Path):
    model = tmp_path / "m.nir"
    nir.write(str(model), lif_graph())
    np.save(tmp_path / "spikes.npy", spikes())
    artifact = tmp_path / "m.ndp"
    assert _cli("compile", str(model), "-o", str(artifact)).returncode == 0
    done = _cli("report", str(artifact), "-i", str(tmp_path / "spikes.npy"), "-o", str(tmp_path / "r.html"), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["runs"] == ["float (ideal)", "chip (loihi2)"]
    recorded = tmp_path / "run.npz"
    assert _cli("run", str(artifact), "-i", str(tmp_path / "spikes.npy"), "-o", str(recorded)).returncode == 0
    done = _cli("report", str(recorded), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["report"] == str(tmp_path / "run.html") and (tmp_path / "run.html").is_file()
    for args, fragment in (
        (("-i", str(tmp_path / "none.npy")), "input file not found"),
        (("--sample", "99", "-i", str(tmp_path / "spikes.npy")), "out of range"),
        (("-i", str(artifact)), "cannot read input spikes"),
    ):
        bad = _cli("report", str(artifact), *args, "-o", str(tmp_path / "bad.html"))
        assert bad.returncode == 2 and "Traceback" not in bad.stderr and fragment in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "bad.html").exists()


def test_report_cli_takes_variability_and_learning_results(tmp_path: Path):
    """`report --variability v.json --learning l.json` adds the spread and curve sections from the verbs' JSON."""
    model, artifact = tmp_path / "m.nir", tmp_path / "m.ndp"
    nir.write(str(model), lif_graph())
    assert _cli("compile", str(model), "-o", str(artifact)).returncode == 0
    var = {"profile": "dynapse2", "instances": 3, "accuracy": [0.8, 0.85, 0.7], "calibration": {}}
    (tmp_path / "v.json").write_text(json.dumps(var))
    hist = [{"epoch": 1, "test_accuracy": [0.5, 0.6], "weight_angle": {"B1": [60.0, 70.0]}, "signal_angle": {}}]
    learn = {"config": {"rule": "kp", "profile": "loihi2", "mismatch": 0.0}, "history": hist}
    (tmp_path / "l.json").write_text(json.dumps(learn))
    out = tmp_path / "r.html"
    done = _cli(
        "report",
        str(artifact),
        "-o",
        str(out),
        "--variability",
        str(tmp_path / "v.json"),
        "--learning",
        str(tmp_path / "l.json"),
    )
    assert done.returncode == 0, done.stderr
    page = out.read_text()
    assert "dynapse2: 3 instances" in page and "kp on loihi2" in page and "∠(B, Wᵀ) ° B1" in html.unescape(page)
    bad = _cli("report", str(artifact), "-o", str(tmp_path / "bad.html"), "--learning", str(tmp_path / "v.json"))
    assert bad.returncode == 2 and "not a neurodeploy learn result" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.html").exists()


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (apt-get install chromium; .ci/run does)")
def test_report_renders_in_headless_chromium(tmp_path: Path, page: str):
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("<head>", "<head>" + HOOK, 1), encoding="utf-8")
    base = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [*base, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-check="([^"]*)"', dom.stdout)
    assert found, "the page never finished loading"
    check = json.loads(html.unescape(found.group(1)))
    assert check["errors"] == [] and check["broken"] == 0 and check["images"] >= 6, check

    shot = tmp_path / "report.png"
    plain = tmp_path / "report.html"
    plain.write_text(page, encoding="utf-8")
    done = subprocess.run(
        [*base, "--enable-logging=stderr", "--v=0", f"--screenshot={shot}", "--window-size=1280,2000", plain.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert console == [], console
    import matplotlib.image as mpimg

    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (2000, 1280) and float(pixels[..., :3].std()) > 0.05  # not a blank page
