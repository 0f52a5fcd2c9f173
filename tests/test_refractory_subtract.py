"""Refractory period and subtractive reset on the Loihi core model: profile capabilities beyond Lava.

Lava's fixed_pt LIF has neither, so the oracle is the float reference: the independent NIR simulator
(``compiler.reference.simulate_nir``). Integrate-and-fire networks with weights on the 8-bit mantissa
grid and thresholds on it make every sum exact in both number systems, so spikes must be identical.
The three Loihi implementations (int64 reference, float64 numpy, compiled kernel) must agree bit for
bit on u, v and spikes with random parameters, including wrap and saturation.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurodeploy as nd
from neurodeploy.compiler.reference import simulate_nir
from neurodeploy.emulator import kernels
from neurodeploy.emulator.backends.lava import _check_network
from neurodeploy.emulator.loihi import LoihiCubaState, LoihiFastState
from neurodeploy.errors import CompileError, NeurodeployError
from neurodeploy.hw_profiles import parse_profile

PROFILES = Path(nd.__file__).resolve().parent.parent / "hw_profiles"


def subtract_profile() -> object:
    """loihi1 with the subtractive reset declared (as a user's own profile file would)."""
    text = (PROFILES / "loihi1.toml").read_text(encoding="utf-8")
    old = 'reset_modes = { value = ["zero"]'
    assert old in text
    return parse_profile(text.replace(old, 'reset_modes = { value = ["zero", "subtract"]'))


def if_graph(sizes: list[int], seed: int, threshold: float) -> nir.NIRGraph:
    """IF layers with weights k/128 (k in -127..127, each layer's largest exactly 127/128): on Loihi's
    8-bit mixed grid at scale 256, so quantization is exact and so is every sum."""
    rng = np.random.default_rng(seed)
    nodes: list[nir.NIRNode] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        w = rng.integers(-127, 128, (n_out, n_in)) / 128.0
        w[0, 0] = 127 / 128
        nodes += [nir.Linear(weight=w), nir.IF(r=np.ones(n_out), v_threshold=np.full(n_out, threshold))]
    return nir.NIRGraph.from_list(*nodes)


def _loihi_params(rng: np.random.Generator, n: int, extreme: bool) -> dict[str, np.ndarray]:
    vth_hi = 2**17 - 1 if extreme else 3000
    return {
        "du": rng.integers(0, 4096, n),
        "dv": rng.integers(0, 4096, n),
        "vth": rng.integers(0, vth_hi, n),
        "bias_mant": rng.integers(-(2**12), 2**12, n),
        "bias_exp": rng.integers(0, 8, n),
        "refractory": rng.integers(0, 8, n),
    }


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(1, 64),
    reset=st.sampled_from(["zero", "subtract"]),
    extreme=st.booleans(),
)
def test_three_loihi_implementations_agree(seed: int, n: int, reset: str, extreme: bool) -> None:
    rng = np.random.default_rng(seed)
    params = _loihi_params(rng, n, extreme)
    scale = 2**18 if extreme else 600  # extreme inputs wrap u and saturate v
    a_in = rng.integers(-scale // 3, scale, (60, 2, n))
    ref = LoihiCubaState((2, n), params, reset)
    fast = LoihiFastState((2, n), params, reset)
    states = [fast] + ([kernels.LoihiCompiledState((2, n), params, reset)] if kernels.available() else [])
    for t in range(a_in.shape[0]):
        s_ref = ref.step(a_in[t], t)
        for state in states:
            s = state.step((a_in[t] << 6).astype(float), t).copy()
            assert np.array_equal(s, s_ref), (type(state).__name__, t)
            assert np.array_equal(state.u, ref.u) and np.array_equal(state.v, ref.v), (type(state).__name__, t)
    for state in states:
        assert (state.u_wraps, state.v_saturations) == (ref.u_wraps, ref.v_saturations)


def test_refractory_holds_v_at_zero_for_exactly_k_steps() -> None:
    """A neuron driven above threshold every step fires once per k + 1 steps; u keeps integrating."""
    params = {"du": [4095], "dv": [0], "vth": [10], "bias_mant": [0], "bias_exp": [0], "refractory": [3]}
    state = LoihiCubaState((1,), params)
    fired = [bool(state.step(np.array([1000]), t)[0]) for t in range(12)]
    assert fired == [True, False, False, False] * 3
    assert state.u[0] == 1000 << 6


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31 - 1),
    hidden=st.integers(1, 10),
    refractory=st.integers(0, 6),
    reset=st.sampled_from(["zero", "subtract"]),
    threshold=st.sampled_from([0.5, 1.0, 1.5, 3.0]),
    rate=st.floats(0.05, 0.6),
    kernel=st.sampled_from(["numpy", "numba"] if kernels.available() else ["numpy"]),
)
def test_compiled_loihi_equals_float_reference(
    seed: int, hidden: int, refractory: int, reset: str, threshold: float, rate: float, kernel: str
) -> None:
    graph = if_graph([10, hidden, 4], seed, threshold)
    profile = subtract_profile() if reset == "subtract" else "loihi1"
    compiled = nd.compile(graph, profile, dt=1e-3, reset=reset, refractory=refractory)
    x = np.random.default_rng(seed + 1).random((40, 5, 10)) < rate
    ref = simulate_nir(graph, x.astype(float), dt=1e-3, reset=reset, refractory=refractory, precision="float64")
    core = compiled.core
    assert all(q.weight_snr_db[name] == float("inf") for q in compiled.quantization for name in q.weight_snr_db)
    from neurodeploy.emulator.simulate import simulate

    out = simulate(core, {"input": x}, steps=x.shape[0] + 2, kernels=kernel)
    assert out.counters["u_wraps"] == out.counters["v_saturations"] == 0
    result = nd.run(compiled, x.astype(np.uint8))
    for name in ("if", "if_1"):
        assert np.array_equal(result.spikes[name], ref[name].astype(bool)), name


def test_float_core_matches_the_reference_with_refractory() -> None:
    """The ideal profile's float core (the compile report's reference) agrees with simulate_nir."""
    graph = if_graph([10, 12, 4], 3, 1.0)
    x = np.random.default_rng(4).random((50, 6, 10)) < 0.4
    for reset in ("zero", "subtract"):
        compiled = nd.compile(graph, "ideal", dt=1e-3, reset=reset, refractory=2)
        ref = simulate_nir(graph, x.astype(float), dt=1e-3, reset=reset, refractory=2, precision="float64")
        result = nd.run(compiled, x.astype(np.uint8))
        no_hold = simulate_nir(graph, x.astype(float), dt=1e-3, reset=reset, precision="float64")
        for name in ("if", "if_1"):
            assert np.array_equal(result.spikes[name], ref[name].astype(bool)), (reset, name)
        assert not np.array_equal(ref["if"], no_hold["if"])  # the period changes the spikes


def test_profiles_without_the_capability_refuse_with_a_reason() -> None:
    graph = if_graph([10, 8, 4], 0, 1.0)
    with pytest.raises(CompileError, match="loihi2's neurons have no refractory period.*refractory=0"):
        nd.compile(graph, "loihi2", dt=1e-3, reset="zero", refractory=2)
    with pytest.raises(CompileError, match="refractory counter holds at most 62 steps"):
        nd.compile(graph, "loihi1", dt=1e-3, reset="zero", refractory=63)
    with pytest.raises(CompileError, match="refractory must be a whole number of steps"):
        nd.compile(graph, "loihi1", dt=1e-3, reset="zero", refractory=-1)
    with pytest.raises(CompileError, match="reset mode"):
        nd.compile(graph, "loihi1", dt=1e-3, reset="subtract")


def test_lava_backend_refuses_what_lava_cannot_run() -> None:
    graph = if_graph([10, 8, 4], 0, 1.0)
    held = nd.compile(graph, "loihi1", dt=1e-3, reset="zero", refractory=2)
    with pytest.raises(NeurodeployError, match="no refractory period.*backend='emulator'"):
        _check_network(held.core)
    sub = nd.compile(graph, subtract_profile(), dt=1e-3, reset="subtract")
    with pytest.raises(NeurodeployError, match="reset to zero.*reset='subtract'"):
        _check_network(sub.core)
    _check_network(nd.compile(graph, "loihi1", dt=1e-3, reset="zero").core)  # plain networks still run


def test_artifact_keeps_the_refractory_period(tmp_path: Path) -> None:
    graph = if_graph([10, 8, 4], 1, 1.0)
    compiled = nd.compile(graph, "loihi1", dt=1e-3, reset="zero", refractory=4)
    loaded = nd.load_compiled(compiled.save(tmp_path / "held.ndp"))
    assert loaded.conventions.refractory == 4
    assert np.all(loaded.core.populations[1].params["refractory"] == 4)
    x = (np.random.default_rng(2).random((30, 3, 10)) < 0.5).astype(np.uint8)
    assert np.array_equal(nd.run(loaded, x).spikes["if_1"], nd.run(compiled, x).spikes["if_1"])


def test_cli_compile_takes_refractory(tmp_path: Path) -> None:
    path = tmp_path / "if.nir"
    nir.write(str(path), if_graph([10, 8, 4], 0, 1.0))
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    cmd = [sys.executable, "-m", "neurodeploy.cli", "compile", str(path), "-p"]
    ok = subprocess.run([*cmd, "loihi1", "--dt", "1e-3", "--refractory", "3", "--json"], capture_output=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert nd.load_compiled(tmp_path / "if.ndp").conventions.refractory == 3
    out = tmp_path / "bad.ndp"
    bad = subprocess.run(
        [*cmd, "loihi2", "--dt", "1e-3", "--refractory", "3", "-o", str(out)], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "no refractory period" in " ".join(bad.stderr.split())
    assert not out.exists()


def test_float_lava_backend_refuses_the_refractory_period() -> None:
    from neurodeploy.emulator.backends import lava_float

    held = nd.compile(if_graph([10, 8, 4], 0, 1.0), "ideal", dt=1e-3, reset="zero", refractory=2)
    with pytest.raises(NeurodeployError, match="MismatchLIF has no refractory period"):
        lava_float._check_network(held.core)
