"""The Lava backend: the Python 3.11 import fix, and Lava vs our emulator bit for bit.

Lava (CPU, ``fixed_pt``) is the independent reference for ``emulator/loihi.py``: identical spikes,
u and v at every step, for random networks and for the overflow corners (u wrap, v saturation,
int32 accumulator wrap). Each Lava run costs about half a second of process start-up, so the
random search is bounded.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from neurodeploy.emulator.backends import lava_compat
from neurodeploy.emulator.network import CoreNetwork, CorePopulation, CoreProjection
from neurodeploy.emulator.simulate import simulate
from neurodeploy.errors import NeurodeployError

HAVE_LAVA = importlib.util.find_spec("lava") is not None
skip_without_lava = pytest.mark.skipif(not HAVE_LAVA, reason="lava-nc is not installed (make venv)")


def _lif(n: int, du=4095, dv=0, vth=100, bias_mant=0, bias_exp=0) -> dict[str, np.ndarray]:
    full = {"du": du, "dv": dv, "vth": vth, "bias_mant": bias_mant, "bias_exp": bias_exp}
    return {k: np.broadcast_to(np.asarray(v, dtype=np.int64), (n,)).copy() for k, v in full.items()}


def _net(sizes, params, projections) -> CoreNetwork:
    names = ["in", "h", "o"][: len(sizes)]
    pops = [CorePopulation("in", sizes[0], "input")]
    pops += [CorePopulation(n, s, "loihi", p) for n, s, p in zip(names[1:], sizes[1:], params, strict=True)]
    return CoreNetwork(pops, projections, inputs=["in"], outputs=[names[-1]], numerics="loihi")


def _compare(net: CoreNetwork, x: np.ndarray, steps: int, chunk: int | None = None):
    """Run both backends; assert identical spikes/u/v everywhere; return the emulator's output."""
    from neurodeploy.emulator.backends.lava import run_lava

    ref = simulate(net, {"in": x}, steps=steps, record=("spikes", "u", "v"))
    got = run_lava(net, {"in": x}, steps=steps, record=("spikes", "u", "v"), chunk=chunk)
    for kind in ("spikes", "u", "v"):
        a, b = getattr(ref, kind), getattr(got, kind)
        assert a.keys() == b.keys(), kind
        for name in a:
            assert a[name].shape == b[name].shape and a[name].dtype == b[name].dtype, (kind, name)
            if not np.array_equal(a[name], b[name]):
                t, *_ = np.argwhere(a[name] != b[name])[0]
                pytest.fail(f"{kind}[{name}] first differs at step {t}: emulator {a[name][t]} lava {b[name][t]}")
    assert got.counters["synaptic_events"] == ref.counters["synaptic_events"]
    return ref


# --------------------------------------------------------------------------- compatibility step


@pytest.mark.lava
@skip_without_lava
def test_compat_imports_lava_after_the_start_method_was_fixed():
    """numba's parallel kernels fix multiprocessing's start method; Lava's import-time
    set_start_method("fork") must not fail then, and the original function is put back."""
    code = textwrap.dedent(
        """
        import multiprocessing as mp
        original = mp.set_start_method
        mp.get_start_method()  # fixes the default ("fork" on Linux), as numba does
        import neurodeploy.emulator.backends.lava_compat as compat
        compat.ensure_lava_importable()
        assert mp.set_start_method == original and mp.get_start_method() == "fork"
        from neurodeploy.emulator.backends.lava import available
        assert available()[0], available()
        print("ok")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


@pytest.mark.lava
@skip_without_lava
def test_compat_restores_dataclasses_and_imports_var_model():
    """In a fresh interpreter: dataclasses is left identical, and Lava's var_model imports."""
    code = textwrap.dedent(
        """
        import dataclasses, sys
        before = dict(vars(dataclasses))
        import neurodeploy, neurodeploy.emulator.backends.lava_compat as compat
        assert not any(m.startswith("lava.magma") for m in sys.modules), "imported at import time"
        compat.ensure_lava_importable()
        compat.ensure_lava_importable()  # idempotent
        after = dict(vars(dataclasses))
        assert before.keys() == after.keys()
        assert all(before[k] is after[k] for k in before), [k for k in before if before[k] is not after[k]]
        import lava.magma.compiler.var_model as vm
        a, b = vm.CoreEncoder(), vm.CoreEncoder()
        assert a.x == vm.ByteEncoder() and a.x is not b.x  # default_factory: one instance each
        @dataclasses.dataclass
        class Outside:  # the fix is not active any more: 3.11's rule applies again
            pass
        try:
            @dataclasses.dataclass
            class Bad:
                x: Outside = Outside()
        except ValueError:
            pass
        else:
            raise AssertionError("unhashable default accepted after the compat step")
        from lava.magma.core.run_configs import Loihi2SimCfg
        print("ok")
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and res.stdout.strip() == "ok", res.stderr


def test_compat_missing_lava_says_how_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, lava_compat.VAR_MODEL, raising=False)
    monkeypatch.setattr(lava_compat, "_lava_installed", lambda: False)
    with pytest.raises(NeurodeployError, match="lava-nc==0.10.0") as err:
        lava_compat.ensure_lava_importable()
    assert "make venv" in str(err.value)


# --------------------------------------------------------------------------- checks without a run


def test_rejects_what_lava_cannot_express():
    from neurodeploy.emulator.backends.lava import run_lava

    x = np.zeros((3, 1, 2), dtype=bool)
    zero_delay = _net([2, 1], [_lif(1)], [CoreProjection("p", "in", "h", np.ones((1, 2)), delay=0)])
    with pytest.raises(NeurodeployError, match="delay"):
        run_lava(zero_delay, {"in": x})
    subtract = _net([2, 1], [_lif(1)], [CoreProjection("p", "in", "h", np.ones((1, 2)))])
    subtract.populations[1].reset = "subtract"
    with pytest.raises(NeurodeployError, match="reset"):
        run_lava(subtract, {"in": x})
    bad_du = _net([2, 1], [_lif(1, du=5000)], [CoreProjection("p", "in", "h", np.ones((1, 2)))])
    with pytest.raises(NeurodeployError, match="du"):
        run_lava(bad_du, {"in": x})


def test_hardware_and_board_fail_clearly_without_lava_loihi():
    from neurodeploy.emulator.backends.board import detect_boards, list_boards, run_board
    from neurodeploy.emulator.backends.lava import run_lava

    if importlib.util.find_spec("lava") is not None:
        lava_compat.ensure_lava_importable()
        if importlib.util.find_spec("lava.magma.compiler.subcompilers.nc") is not None:
            pytest.skip("lava-loihi is installed here")
    net = _net([2, 1], [_lif(1)], [CoreProjection("p", "in", "h", np.ones((1, 2)))])
    x = np.zeros((3, 1, 2), dtype=bool)
    with pytest.raises(NeurodeployError, match="lava"):
        run_lava(net, {"in": x}, hardware=True)
    boards, why = detect_boards()
    assert boards == [] and list_boards() == [] and why
    with pytest.raises(NeurodeployError, match="no Loihi board"):
        run_board(net, {"in": x})


# --------------------------------------------------------------------------- Lava vs emulator


@st.composite
def random_case(draw):
    n_in, n1, n2 = draw(st.integers(1, 6)), draw(st.integers(1, 5)), draw(st.integers(1, 4))
    batch, t_in = draw(st.integers(2, 3)), draw(st.integers(4, 12))

    def ints(n, lo, hi):
        return draw(hnp.arrays(np.int64, (n,), elements=st.integers(lo, hi)))

    def lif(n):
        vth_hi = draw(st.sampled_from([50, 2000, 131071]))
        return {"du": ints(n, 0, 4095), "dv": ints(n, 0, 4095), "vth": ints(n, 0, vth_hi),
                "bias_mant": ints(n, -4096, 4095), "bias_exp": ints(n, -2, 7)}  # fmt: skip

    def proj(name, src, dst, n_dst, n_src, delay):
        return CoreProjection(
            name, src, dst,
            draw(hnp.arrays(np.int64, (n_dst, n_src), elements=st.integers(-256, 255))),
            delay=delay,
            weight_exp=draw(st.integers(-8, 8)),
            num_weight_bits=draw(st.integers(1, 8)),
            sign_mode=draw(st.sampled_from(["mixed", "excitatory", "inhibitory"])),
        )  # fmt: skip

    net = _net(
        [n_in, n1, n2],
        [lif(n1), lif(n2)],
        [proj("p1", "in", "h", n1, n_in, 1), proj("p2", "h", "o", n2, n1, draw(st.integers(1, 3)))],
    )
    p = draw(st.sampled_from([0.2, 0.5, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).random((t_in, batch, n_in)) < p
    return net, x, t_in + draw(st.integers(0, 3))


@pytest.mark.lava
@skip_without_lava
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(random_case())
def test_lava_matches_emulator_random(case):
    net, x, steps = case
    _compare(net, x, steps)


@pytest.mark.lava
@skip_without_lava
def test_time_alignment_one_spike():
    """An input spike at emulator step 0 reaches u at step 1 (Dense latency) in both backends."""
    net = _net([1, 1], [_lif(1, du=4095, dv=4095, vth=131071)], [CoreProjection("p", "in", "h", np.array([[100]]))])
    x = np.zeros((4, 1, 1), dtype=bool)
    x[0] = True
    ref = _compare(net, x, steps=4)
    assert ref.u["h"][:, 0, 0].tolist() == [0, 100 * 64, 0, 0]


@pytest.mark.lava
@skip_without_lava
def test_lava_matches_emulator_u_wrap_and_v_saturation():
    """u wraps (4 x 255 x 2^8 x 2^6 > 2^23); v saturates up (spiking) and down (stuck at the floor)."""
    h = _lif(3, du=[4095, 0, 4095], dv=[0, 0, 0], vth=[131071, 131071, 131071],
             bias_mant=[0, 4095, -4096], bias_exp=[0, 7, 7])  # fmt: skip
    w1 = np.array([[255] * 4, [0] * 4, [1] * 4])
    o = _lif(2, du=[100, 4095], dv=[10, 4095], vth=[20, 1])
    net = _net([4, 3, 2], [h, o], [
        CoreProjection("p1", "in", "h", w1, weight_exp=8, sign_mode="excitatory"),
        CoreProjection("p2", "h", "o", np.array([[-256, 255, 7], [100, -3, 255]]), weight_exp=-2),
    ])  # fmt: skip
    x = np.random.default_rng(1).random((12, 2, 4)) < 0.7
    x[:3, 0] = True  # all four inputs at once: guaranteed wrap in sample 0
    ref = _compare(net, x, steps=15)
    assert ref.counters["u_wraps"] > 0 and ref.counters["v_saturations"] > 0


@pytest.mark.lava
@skip_without_lava
def test_lava_matches_emulator_int32_accumulator_wrap_and_chunks():
    """600 simultaneous spikes x 255 x 2^8 x 2^6 overflow Lava's int32 u; batch (2, 2) in chunks of 3."""
    n_in = 600
    h = _lif(2, du=[4095, 0], dv=[0, 0], vth=[131071, 131071])
    net = _net([n_in, 2], [h], [CoreProjection("p", "in", "h", np.full((2, n_in), 255), weight_exp=8)])
    rng = np.random.default_rng(2)
    x = rng.random((5, 2, 2, n_in)) < 0.9
    x[:2, 0, 0] = True
    ref = _compare(net, x, steps=6, chunk=3)
    assert ref.u["h"].shape == (6, 2, 2, 2)
    assert np.abs(ref.u["h"]).max() > 2**23  # beyond 24 bits: the single wrap cannot bring it back
