"""The command line as users run it: subprocesses, exit codes, one-line errors, no partial files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from conftest import lif_graph, spikes

CLI = [sys.executable, "-m", "neurodeploy.cli"]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def assert_user_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    text = " ".join(proc.stderr.split())
    for fragment in fragments:
        assert fragment in text, text


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli")
    path = folder / "model.nir"
    nir.write(str(path), lif_graph())
    np.save(folder / "spikes.npy", spikes())
    return path


def test_profiles_list_show_validate(tmp_path: Path):
    listed = cli("profiles", "--json")
    assert listed.returncode == 0 and {"loihi2", "ideal"} <= {p["name"] for p in json.loads(listed.stdout)}
    shown = cli("profiles", "show", "loihi2")
    assert shown.returncode == 0 and "lava_lif" in shown.stdout and "davies2018" in shown.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('schema_version = 1\nname = "x"\ntitle = "x"\nkind = "digital"\ncore_model = "quantum"\n')
    assert_user_error(cli("profiles", "validate", str(bad)), "core_model", str(bad))
    assert_user_error(cli("profiles", "show", "loihi9"), "unknown profile", "loihi2")


def test_compile_inspect_run(model: Path, tmp_path: Path):
    out = tmp_path / "m.ndp"
    done = cli("compile", str(model), "--profile", "loihi2", "-o", str(out), "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["artifact"] == str(out) and report["cores"][0]["neurons"] == 33
    inspected = cli("inspect", str(out), "--json")
    assert inspected.returncode == 0 and json.loads(inspected.stdout)["profile"]["name"] == "loihi2"
    result = tmp_path / "out.npz"
    ran = cli(
        "run", str(out), "-i", str(model.parent / "spikes.npy"), "-o", str(result), "--record", "spikes,v", "--json"
    )
    assert ran.returncode == 0, ran.stderr
    with np.load(result) as data:
        assert data["spikes/lif_1"].shape == (40, 16, 3) and "v/lif" in data
    assert json.loads(ran.stdout)["backend"] == "emulator"
    labels = tmp_path / "labels.npy"
    np.save(labels, np.zeros(16, dtype=np.int64))
    table = cli("run", str(out), "-i", str(model.parent / "spikes.npy"), "--labels", str(labels))
    assert table.returncode == 0 and "lif_1 (output)" in table.stdout and "accuracy" in table.stdout, table.stderr
    assert "{" not in table.stdout  # a table, not a dict repr


def test_compile_bad_inputs(model: Path, tmp_path: Path):
    out = tmp_path / "never.ndp"
    assert_user_error(cli("compile", str(tmp_path / "missing.nir"), "-o", str(out)), "file not found")
    text = tmp_path / "notes.nir"
    text.write_text("not a graph")
    assert_user_error(cli("compile", str(text), "-o", str(out)), "not a NIR file", str(text))
    truncated = tmp_path / "truncated.nir"
    truncated.write_bytes(model.read_bytes()[:600])
    assert_user_error(cli("compile", str(truncated), "-o", str(out)), "malformed", str(truncated))
    assert_user_error(cli("compile", str(model), "--profile", "loihi9", "-o", str(out)), "unknown profile")
    assert_user_error(cli("compile", str(model), "--reset", "subtract", "-o", str(out)), "reset mode")
    assert_user_error(cli("compile", str(model), "--dt", "-1", "-o", str(out)), "dt must be a positive")
    too_low = cli("compile", str(model), "--seed", "-1", "-o", str(out))
    assert_user_error(too_low, "--seed", "greater than or equal to 0")
    assert not out.exists()
    assert_user_error(cli("compile"), "Missing argument")


def test_run_and_inspect_bad_inputs(model: Path, tmp_path: Path):
    artifact = tmp_path / "m.ndp"
    assert cli("compile", str(model), "-o", str(artifact)).returncode == 0
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 2, 7)))
    result = tmp_path / "out.npz"
    ran = cli("run", str(artifact), "-i", str(wrong), "-o", str(result))
    assert_user_error(ran, "does not fit", "(time, batch, 5)")
    assert_user_error(cli("run", str(artifact), "-i", str(tmp_path / "none.npy")), "input file not found")
    assert_user_error(
        cli("run", str(artifact), "-i", str(model.parent / "spikes.npy"), "--backend", "gpu"), "unknown backend"
    )
    assert not result.exists()
    corrupt = tmp_path / "corrupt.ndp"
    corrupt.write_bytes(artifact.read_bytes()[:1000])
    assert_user_error(cli("inspect", str(corrupt)), str(corrupt))
    assert_user_error(cli("inspect", str(model)), "not a neurodeploy compiled artifact")


def test_boards_reports_why_there_is_none():
    done = cli("boards", "--json")
    assert done.returncode == 0
    data = json.loads(done.stdout)
    assert data["boards"] == [] and data["reason"]


def test_every_verb_has_help_with_an_example():
    for verb in ("compile", "inspect", "run", "report", "variability", "learn", "boards", "demo"):
        done = cli(verb, "--help")
        assert done.returncode == 0 and "Example" in done.stdout, verb
        assert "<bool>" not in done.stdout, verb  # flags take no value: no metavar


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path: Path):
    """`neurodeploy demo --quick --no-lava --json`: every stage reports, and the files land in out/demo."""
    done = cli("demo", "--quick", "--no-lava", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    data = json.loads(done.stdout)
    assert data["float_accuracy"] > 0.8 and abs(data["chip_accuracy"] - data["ideal_accuracy"]) < 0.05
    assert data["lava_accuracy"] is None and len(data["variability"]["accuracy"]) == 64
    assert data["learning"]["test_accuracy"]["mean"] > 0.7 and data["learning"]["weight_angle"]["B1"]["mean"] < 45
    assert {p.name for p in (tmp_path / "out" / "demo").iterdir()} >= {"yinyang.nir", "learning_kp.html"}


def test_inspect_shows_what_compile_warned_about(tmp_path: Path):
    path = tmp_path / "bare.nir"
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([3])), nir.Linear(np.ones((2, 3))), nir.LIF(*([np.ones(2)] * 4)), nir.Output(np.array([2]))
    )
    nir.write(str(path), graph)  # records neither dt nor reset: compile assumes them and warns
    out = tmp_path / "bare.ndp"
    done = cli("compile", str(path), "-o", str(out))
    assert done.returncode == 0 and "warning: the NIR graph does not record" in done.stderr
    shown = cli("inspect", str(out))
    assert shown.returncode == 0 and "warning: the NIR graph does not record" in " ".join(shown.stdout.split())
    assert json.loads(cli("inspect", str(out), "--json").stdout)["warnings"]


def test_progress_prints_plain_lines_when_not_a_terminal():
    """Piped or logged: a long step says how far it is in plain lines; a quick one says nothing."""
    import io

    from rich.console import Console

    from neurodeploy.cli_common import PlainProgress, progress_bar

    sink = io.StringIO()
    console = Console(file=sink, force_terminal=False)
    assert isinstance(progress_bar(console=console), PlainProgress)
    quick = PlainProgress(console)
    task = quick.add_task("quick", total=3)
    quick.update(task, completed=3)
    assert sink.getvalue() == ""
    slow = PlainProgress(console, every=0.0, quiet=0.0)
    task = slow.add_task("learn", total=2, status="")
    slow.update(task, advance=1, description="learn: 0.912", status="angle 7°")
    slow.advance(task)
    assert sink.getvalue().splitlines() == ["learn: 0.912: 1/2 (0 s)  angle 7°", "learn: 0.912: 2/2 (0 s)  angle 7°"]
