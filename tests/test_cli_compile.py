"""``neurodeploy compile`` takes every option ``neurodeploy.compile`` takes, under the same name."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import nir
import numpy as np
from conftest import lif_graph, spikes
from test_cli import assert_user_error, cli

from neurodeploy.compiler.compiled import compile_graph


def test_help_lists_every_compile_option():
    """Each keyword of compile_graph is a flag (underscores as dashes); --help shows all of them."""
    shown = " ".join(cli("compile", "--help").stdout.split())
    options = [p for p in inspect.signature(compile_graph).parameters if p not in ("graph", "profile")]
    missing = [o for o in options if f"--{o.replace('_', '-')}" not in shown]
    assert not missing, f"compile_graph options without a CLI flag: {missing}"


def test_flags_reach_the_compiler(tmp_path: Path):
    """per_channel, scale_search, placement, sample inputs and labels, loop_delay: as the API gives them."""
    import neurodeploy as nd

    graph = lif_graph()
    model = tmp_path / "model.nir"
    nir.write(str(model), graph)
    x = spikes(batch=16)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.arange(16) % 3)
    hidden = nd.compile(graph, "loihi2").core.populations[1].name
    (tmp_path / "cores.json").write_text(json.dumps({hidden: [3]}))
    out = tmp_path / "model.ndp"
    done = cli("compile", str(model), "-o", str(out), "--per-channel", "--scale-search", "--sample-inputs",
               str(tmp_path / "x.npy"), "--sample-labels", str(tmp_path / "y.npy"), "--placement",
               str(tmp_path / "cores.json"), "--loop-delay", "out_of_neuron", "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert all(layer["per_channel"] and layer["search"] for layer in report["layers"])
    assert report["evaluation"]["samples"] == 16 and "accuracy" in report["evaluation"]
    assert report["conventions"]["loop_delay"] == "out_of_neuron"
    assert any(c["core"] == 3 for c in report["cores"])
    text = cli("compile", str(model), "-o", str(out), "--sample-inputs", str(tmp_path / "x.npy"))
    assert text.returncode == 0 and "predictions agree with the float reference" in " ".join(text.stdout.split())


def test_strict_and_bad_files(tmp_path: Path):
    model = tmp_path / "model.nir"
    nir.write(str(model), lif_graph(hidden=300))  # over dynapse2's 256 neurons per core
    out = tmp_path / "model.ndp"
    assert_user_error(cli("compile", str(model), "-p", "dynapse2", "-o", str(out)), "dynapse2")
    assert not out.exists()
    loose = cli("compile", str(model), "-p", "dynapse2", "-o", str(out), "--no-strict", "--json")
    assert loose.returncode == 0, loose.stderr
    assert json.loads(loose.stdout)["violations"]
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert_user_error(cli("compile", str(model), "--placement", str(tmp_path / "bad.json")), "placement file")
    assert_user_error(
        cli("compile", str(model), "--sample-labels", str(tmp_path / "bad.json")), "--sample-labels needs"
    )
