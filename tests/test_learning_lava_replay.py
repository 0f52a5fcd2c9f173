"""A whole FA learning run (2 hidden layers) replayed by the engine step by step: PlasticDense, and
Lava's own LearningDense, given the run's spikes, bAPs and third factors, write the same weights; and
after every epoch Lava's LIF neurons and Dense synapses, given those weights, spike as the emulator does.

The emulator's learning run evaluates the engine in closed form over minibatches of presentations;
``draws="lava"`` uses Lava's streams (one rounding draw per step for all synapses, one third-factor
decay draw per step). PlasticDense follows Lava's LearningDense step by step and is checked against
it in tests/test_plasticity_lava.py; here the whole run is checked against both.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Any

import numpy as np
import pytest

from neurodeploy.compiler import learning as lp
from neurodeploy.compiler.normalize import normalize
from neurodeploy.datasets import encode_rate
from neurodeploy.emulator.learning import LearningRun
from neurodeploy.emulator.plasticity import LearningRule, PlasticDense
from neurodeploy.hw_profiles import get
from neurodeploy.learning.tasks import get_task
from neurodeploy.studies.chip_learning import builtin_graph

SEED, BATCH, STEPS, ACTIVE = 3, 8, 16, 9


def record_run(epochs: int = 3, samples: int = 16) -> tuple:
    """An FA run on loihi2 (4-8-8-3); per minibatch every plastic projection's pre spikes and third factors,
    and the weights after every epoch."""
    ir = normalize(builtin_graph([4, 8, 8, 3]), dt=1e-3, reset="zero")
    opt = lp.LearnOptions(init_gain=1.0, batch=BATCH, steps=STEPS, active=ACTIVE, lr=0.05, seed=SEED)
    lnet = lp.build(ir, "fa", get("loihi2"), opt)
    run = LearningRun(lnet, seed=SEED, draws="lava")
    task = get_task("yinyang")
    initial = {n: lnet.projection(n).weight.copy() for n in lnet.engine}
    inputs: dict[str, list] = {n: [] for n in lnet.engine}
    after_epoch = []
    for _ in range(epochs):
        for i in range(0, samples, BATCH):
            x = encode_rate(task.x_train[i : i + BATCH], STEPS, ACTIVE, bias_spike=False)
            act = run.present(x, np.eye(3)[task.y_train[i : i + BATCH]] * ACTIVE)
            for layer in lnet.layers:
                for name in layer.plastic:
                    pre = act.spikes[lnet.projection(name).src][:, 0]  # (steps, batch, n_pre)
                    inputs[name].append((np.broadcast_to(pre, (STEPS, BATCH, pre.shape[-1])), act.delta[layer.name][0]))
            run.learn(act)
        after_epoch.append({n: lnet.projection(n).weight[0].copy() for n in lnet.engine})
    return lnet, initial, inputs, after_epoch, run


def stepwise(rule: lp.EngineRule, weights: np.ndarray, record: list) -> list[np.ndarray]:
    """PlasticDense driven step by step with the recorded presentations; weights after every minibatch."""
    lr = LearningRule(dw=rule.dw, dd=rule.dd, dt=rule.dt, t_epoch=1, rng_seed=SEED, three_factor=True)
    pd = PlasticDense(weights[0], lr, num_weight_bits=8, draws="lava")
    out = []
    for pre, delta in record:
        y = np.minimum(np.abs(delta), 127)
        for s in range(pre.shape[1]):
            for t in range(STEPS):
                last = t == STEPS - 1
                third = {"y2": np.where(delta[s] > 0, y[s], 0) * last, "y3": np.where(delta[s] < 0, y[s], 0) * last}
                pd.step(pre[t, s], np.full(delta.shape[-1], last), third)
        out.append(pd.weights.copy())
    return out


def test_fa_run_equals_plastic_dense_step_by_step() -> None:
    lnet, initial, inputs, after_epoch, run = record_run()
    per_epoch = len(inputs["input->if0"]) // len(after_epoch)
    moved = 0
    for name, rule in lnet.engine.items():
        ref = stepwise(rule, initial[name], inputs[name])
        for e, weights in enumerate(after_epoch):
            np.testing.assert_array_equal(ref[(e + 1) * per_epoch - 1], weights[name], err_msg=f"{name}, epoch {e + 1}")
        moved += int(np.abs(after_epoch[-1][name] - initial[name][0]).sum())
    assert moved > 20, "the run must actually learn for the comparison to mean anything"


HAVE_LAVA = importlib.util.find_spec("lava") is not None


def lava_replay(rule: lp.EngineRule, weights: np.ndarray, record: list, epochs: int) -> np.ndarray:
    """Lava's LearningDense (fixed_pt) fed the run's pre spikes, bAPs and third factors from RingBuffers;
    its weights at the end of every epoch, (epochs, n_post, n_pre)."""
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "plasticity_vs_lava", Path(__file__).resolve().parents[1] / "benchmarks" / "plasticity_vs_lava.py"
    )
    bench = importlib.util.module_from_spec(spec)
    bench = sys.modules.setdefault("plasticity_vs_lava", bench)
    if not hasattr(bench, "lava_modules"):
        spec.loader.exec_module(bench)
    lv = bench.lava_modules()
    from neurodeploy.emulator.backends.lava import _BUFFERS, _shared_buffer

    pre = np.concatenate([np.moveaxis(p, 1, 0).reshape(-1, p.shape[-1]) for p, _ in record])  # (steps, n_pre)
    n_post = record[0][1].shape[-1]
    bap, y2, y3 = (np.zeros((pre.shape[0], n_post), dtype=np.int32) for _ in range(3))
    last = np.arange(pre.shape[0]) % STEPS == STEPS - 1
    deltas = np.concatenate([d for _, d in record])  # (presentations, n_post)
    y = np.minimum(np.abs(deltas), 127)
    bap[last] = 1
    y2[last], y3[last] = np.where(deltas > 0, y, 0), np.where(deltas < 0, y, 0)
    learning_rule = lv["Loihi3FLearningRule"](dw=rule.dw, dd=rule.dd, dt=rule.dt, t_epoch=1, rng_seed=SEED)
    dense = lv["LearningDense"](weights=weights[0].astype(np.int64), learning_rule=learning_rule, num_weight_bits=8)
    src = lv["RingBuffer"](data=pre.T.astype(np.int32))
    src.s_out.connect(dense.s_in)
    sink = lv["LIF"](shape=(n_post,), du=4095, dv=0, vth=131071)
    dense.a_out.connect(sink.a_in)
    for port, values in (("s_in_bap", bap), ("s_in_y2", y2), ("s_in_y3", y3)):
        buf = lv["RingBuffer"](data=values.T.astype(np.int32))
        buf.s_out.connect(getattr(dense, port))
    mon = lv["Monitor"]()
    mon.probe(dense.weights, pre.shape[0])
    key = f"learning-replay-{id(mon)}"
    mon.proc_params["neurodeploy_key"] = key
    _BUFFERS[key] = _shared_buffer((pre.shape[0], *dense.weights.shape))
    cfg = lv["Loihi2SimCfg"](select_tag="fixed_pt", exception_proc_model_map={lv["Monitor"]: lv["MonitorModel"]})
    try:
        sink.run(condition=lv["RunSteps"](num_steps=pre.shape[0]), run_cfg=cfg)
        trace = _BUFFERS[key].copy()
    finally:
        sink.stop()
        _BUFFERS.pop(key, None)
    per_epoch = pre.shape[0] // epochs
    return trace[per_epoch - 1 :: per_epoch]


@pytest.mark.lava
@pytest.mark.skipif(not HAVE_LAVA, reason="lava-nc is not installed (make venv)")
def test_fa_run_equals_lava_learning_dense() -> None:
    """Every plastic projection of a 2-hidden-layer FA run, 3 epochs: Lava's weights equal ours after each,
    and with them Lava's network gives the emulator's spikes and membranes, layer by layer."""
    epochs = 3
    lnet, initial, inputs, after_epoch, _ = record_run(epochs)
    for name, rule in lnet.engine.items():
        lava = lava_replay(rule, initial[name], inputs[name], epochs)
        for e in range(epochs):
            np.testing.assert_array_equal(lava[e], after_epoch[e][name], err_msg=f"{name}, epoch {e + 1}")
    from neurodeploy.emulator.backends.lava import run_lava
    from neurodeploy.emulator.simulate import simulate

    x = encode_rate(get_task("yinyang").x_test[:8], STEPS, ACTIVE, bias_spike=False)
    bias = np.zeros((STEPS, 8, 1), dtype=bool)
    bias[:ACTIVE] = True
    drive = {lnet.core.inputs[0]: x, "bias": bias}
    names = [layer.name for layer in lnet.layers]
    odd = 0
    for e, weights in enumerate(after_epoch):
        for name, w in weights.items():
            lnet.projection(name).weight = w[None]
        odd += sum(int((w & 1).sum()) for w in weights.values())
        emu = simulate(lnet.core, drive, steps=STEPS, record=("spikes", "v"), populations=names)
        lava = run_lava(lava_network(lnet.core), drive, steps=STEPS, record=("spikes", "v"), populations=names)
        for layer in names:
            np.testing.assert_array_equal(lava.spikes[layer], emu.spikes[layer], err_msg=f"{layer}, epoch {e + 1}")
            np.testing.assert_array_equal(lava.v[layer], emu.v[layer], err_msg=f"{layer} v, epoch {e + 1}")
        assert emu.spikes[names[0]].any() and emu.spikes[names[1]].any()
    assert odd > 0, "learned weights use the ninth bit, which the split into two Dense must carry"


def lava_network(core: Any) -> Any:
    """``core`` as Lava runs it: the non-spiking readout as a LIF whose threshold it never reaches (it has
    the largest vth). The learned 9-bit weights are split by ``run_lava`` itself (``split_nine_bit``)."""
    from dataclasses import replace

    pops = [pop if pop.spiking else replace(pop, spiking=True) for pop in core.populations]
    return replace(core, populations=pops)
