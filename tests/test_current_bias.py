"""Current biases on Loihi travel through the bias clock, exactly as the float model adds them."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

import neurodeploy as nd
from neurodeploy.compiler.current_bias import route_current_biases
from neurodeploy.compiler.normalize import normalize

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
from current_bias import network  # noqa: E402 - the benchmark's network, one definition


def test_routing_changes_nothing_in_float():
    """The routed network is the same network: on ideal it spikes exactly as before."""
    ir = normalize(network(0))
    routed, moved = route_current_biases(ir)
    assert set(moved) == {"rec", "out"} and all(not np.any(p.bias_u) for p in routed.populations)
    x = np.random.default_rng(1).random((40, 16, 12)) < 0.1
    before, after = nd.run(nd.compile(ir, "ideal"), x), nd.run(nd.compile(routed, "ideal"), x)
    for name in ("rec", "out"):
        np.testing.assert_array_equal(before.spikes[name], after.spikes[name])


def test_loihi2_agrees_with_ideal_on_recurrent_cubalif_with_biases():
    """The users' case (12-38-7 recurrent CubaLIF with biases): at least 95 % argmax agreement, defaults."""
    warnings.simplefilter("ignore")
    agree = []
    for seed in range(4):
        graph = network(seed)
        x = np.random.default_rng(100 + seed).random((60, 64, 12)) < 0.1
        compiled = nd.compile(graph, "loihi2")
        assert any("bias clock" in note for q in compiled.quantization for note in q.notes)
        chip, ideal = nd.run(compiled, x), nd.run(nd.compile(graph, "ideal"), x)
        agree.append(np.mean(chip.predictions() == ideal.predictions()))
    assert np.mean(agree) >= 0.95, agree
