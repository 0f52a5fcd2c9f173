"""Frontends + golden reference against the frameworks themselves (their own outputs are the oracle).

Each network is Linear -> neuron -> Linear -> neuron with random weights, fed random input spikes for
T = 120 steps and batch 6. The framework is stepped one time step at a time; ``from_torch`` exports it
and ``simulate_nir`` must reproduce every layer's spikes exactly.
"""

from __future__ import annotations

import copy

import nir
import numpy as np
import pytest

from neurodeploy.compiler.ir import Conventions
from neurodeploy.compiler.reference import simulate_nir
from neurodeploy.errors import NeurodeployError
from neurodeploy.frontends import conventions_from_metadata, from_torch

torch = pytest.importorskip("torch")

T, BATCH, N_IN, N_HID, N_OUT = 120, 6, 20, 32, 10


def _linears(gen: torch.Generator, gain: float, bias: float) -> tuple[torch.nn.Linear, torch.nn.Linear]:
    layers = torch.nn.Linear(N_IN, N_HID), torch.nn.Linear(N_HID, N_OUT)
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * gain / layer.in_features**0.5)
            layer.bias.copy_(bias + 0.1 * torch.randn(layer.bias.shape, generator=gen))
    return layers


def _spikes(seed: int, prob: float = 0.3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(T, BATCH, N_IN, generator=gen) < prob).float()


def _record(net: torch.nn.Module, types: tuple[type, ...], run) -> dict[str, np.ndarray]:
    """Spikes of every neuron layer, per step, captured with forward hooks while ``run`` steps the net."""
    rec: dict[str, list[np.ndarray]] = {}

    def hook(name: str):
        def fn(_mod, _args, out) -> None:
            spikes = out[0] if isinstance(out, tuple) else out
            rec.setdefault(name, []).append(spikes.detach().numpy().copy())

        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if isinstance(m, types)]
    with torch.no_grad():
        run()
    for h in handles:
        h.remove()
    return {name: np.stack(steps) for name, steps in rec.items()}


# ------------------------------------------------------------------------------------ snnTorch


def _snn_net(kind: str, seed: int) -> torch.nn.Module:
    snn = pytest.importorskip("snntorch")
    gen = torch.Generator().manual_seed(seed)
    l1, l2 = _linears(gen, gain=3.0, bias=0.1)
    common = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    if kind == "leaky":  # scalar beta in layer 1 (the export trap), per-neuron beta and threshold in layer 2
        n1 = snn.Leaky(beta=0.9, **common)
        n2 = snn.Leaky(
            beta=0.8 + 0.15 * torch.rand(N_OUT, generator=gen), threshold=torch.full((N_OUT,), 0.8), **common
        )
    else:
        n1 = snn.Synaptic(alpha=0.6, beta=0.9, **common)
        n2 = snn.Synaptic(alpha=0.5 + 0.3 * torch.rand(N_OUT, generator=gen), beta=0.85, **common)
    return torch.nn.Sequential(l1, n1, l2, n2)


def _snn_oracle(net: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    import snntorch as snn

    types = (snn.Leaky, snn.Synaptic)
    for m in net.modules():
        if isinstance(m, types):
            m.reset_mem()

    def run() -> None:
        for t in range(x.shape[0]):
            net(x[t])

    return _record(net, types, run)


# ------------------------------------------------------------------------------------ Norse


def _norse_net(kind: str, seed: int) -> torch.nn.Module:
    nt = pytest.importorskip("norse.torch")
    gen = torch.Generator().manual_seed(seed)
    l1, l2 = _linears(gen, gain=8.0, bias=0.8)

    def cell(n: int) -> torch.nn.Module:
        tau_mem_inv = 50.0 + 100.0 * torch.rand(n, generator=gen)
        if kind == "box":
            return nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=tau_mem_inv))
        return nt.LIFCell(nt.LIFParameters(tau_mem_inv=tau_mem_inv, tau_syn_inv=torch.as_tensor(200.0)))

    return nt.SequentialState(l1, cell(N_HID), l2, cell(N_OUT))


def _norse_oracle(net: torch.nn.Module, x: torch.Tensor) -> dict[str, np.ndarray]:
    import norse.torch as nt

    def run() -> None:
        state = None
        for t in range(x.shape[0]):
            _, state = net(x[t], state)

    return _record(net, (nt.LIFCell, nt.LIFBoxCell), run)


# ------------------------------------------------------------------------------------ exactness

CASES = [("snntorch", "leaky"), ("snntorch", "synaptic"), ("norse", "box"), ("norse", "cell")]


@pytest.mark.parametrize(("framework", "kind"), CASES)
def test_reference_reproduces_framework_spikes(framework: str, kind: str) -> None:
    build, oracle = (_snn_net, _snn_oracle) if framework == "snntorch" else (_norse_net, _norse_oracle)
    for seed in range(2):
        net = build(kind, seed)
        x = _spikes(100 + seed)
        expected = oracle(net, x)
        graph = from_torch(net, x[0], framework=framework)
        got = simulate_nir(graph, x.numpy(), dt=graph.metadata["neurodeploy.dt"])
        assert set(expected) == {"1", "3"}
        for name, spikes in expected.items():
            mismatches = int((got[name] != spikes).sum())
            assert mismatches == 0, f"{framework}/{kind} seed {seed} layer {name}: {mismatches} mismatches"
        rate = float(expected["3"].mean())
        assert 0.05 < rate < 0.95, f"output spike rate {rate:.3f} makes the comparison trivial"
        assert 0.05 < float(expected["1"].mean()) < 0.95


def test_snntorch_graph_at_another_dt_still_exact() -> None:
    """dt != 1e-4 rescales every tau, so one graph step at dt is still one snnTorch step."""
    net = _snn_net("synaptic", 7)
    x = _spikes(7)
    expected = _snn_oracle(net, x)
    graph = from_torch(net, x[0], framework="snntorch", dt=1e-3)
    assert graph.metadata["neurodeploy.dt"] == 1e-3
    np.testing.assert_allclose(graph.nodes["1"].tau_mem, 1e-3 / (1 - 0.9), rtol=1e-5)
    got = simulate_nir(graph, x.numpy(), dt=1e-3)
    assert all(int((got[n] != expected[n]).sum()) == 0 for n in expected)


def test_norse_sequential_lif_exports_like_its_cell() -> None:
    nt = pytest.importorskip("norse.torch")
    p = nt.LIFParameters(tau_mem_inv=torch.as_tensor(80.0), v_th=torch.as_tensor(0.7))
    seq = nt.SequentialState(torch.nn.Linear(N_IN, N_HID), nt.LIF(p))
    cell = nt.SequentialState(torch.nn.Linear(N_IN, N_HID), nt.LIFCell(p))
    cell[0].load_state_dict(seq[0].state_dict())
    g_seq = from_torch(seq, torch.zeros(N_IN), framework="norse")
    g_cell = from_torch(cell, torch.zeros(N_IN), framework="norse")
    assert isinstance(seq[1], nt.LIF)  # the user's module keeps its sequential layer
    for key in ("tau_mem", "tau_syn", "r", "w_in", "v_threshold", "v_leak", "v_reset"):
        np.testing.assert_array_equal(getattr(g_seq.nodes["1"], key), getattr(g_cell.nodes["1"], key))
    np.testing.assert_allclose(g_seq.nodes["1"].w_in, 5.0)  # tau_syn / dt = 5 ms / 1 ms


# ------------------------------------------------------------------------------------ conventions


def test_metadata_records_conventions(tmp_path) -> None:
    snn = pytest.importorskip("snntorch")
    net = _snn_net("leaky", 0)
    graph = from_torch(net, torch.zeros(BATCH, N_IN))
    meta = graph.metadata
    assert meta == {
        "neurodeploy.dt": 1e-4,
        "neurodeploy.reset": "zero",
        "neurodeploy.reset_delay": False,
        "neurodeploy.reset_rule": "snntorch_leaky",
        "neurodeploy.source": "snntorch",
        "neurodeploy.integrator": "euler",
        "neurodeploy.loop_delay": "out_of_neuron",
    }
    assert all(type(v) in (float, str, bool) for v in meta.values())
    assert conventions_from_metadata(graph) == Conventions(
        dt=1e-4, reset="zero", source="snntorch", loop_delay="out_of_neuron", reset_rule="snntorch_leaky"
    )
    assert graph.nodes["input"].output_type["output"].tolist() == [N_IN]  # batch dim stripped

    # snnTorch's defaults (subtract, reset_delay=True) still export, and are recorded, not hidden
    default = torch.nn.Sequential(torch.nn.Linear(N_IN, N_HID), snn.Leaky(beta=0.9, init_hidden=True))
    g2 = from_torch(default, torch.zeros(N_IN))
    conv = conventions_from_metadata(g2)
    assert (conv.reset, conv.reset_delay) == ("subtract", True)
    assert g2.nodes["1"].metadata == {
        "neurodeploy.reset": "subtract",
        "neurodeploy.reset_delay": True,
        "neurodeploy.reset_rule": "snntorch_leaky",
    }

    # survives an HDF5 round trip
    nir.write(tmp_path / "g.nir", g2)
    assert conventions_from_metadata(nir.read(tmp_path / "g.nir")) == conv

    norse_graph = from_torch(_norse_net("cell", 0), torch.zeros(N_IN), framework="norse")
    assert conventions_from_metadata(norse_graph) == Conventions(dt=1e-3, reset="zero", source="norse")
    assert conventions_from_metadata(nir.NIRGraph(nodes={}, edges=[])) is None


def test_user_module_not_mutated_and_scalar_beta_broadcast() -> None:
    snn = pytest.importorskip("snntorch")
    net = torch.nn.Sequential(
        torch.nn.Linear(N_IN, N_HID), snn.Leaky(beta=0.9, threshold=1.5, init_hidden=True, reset_mechanism="zero")
    )
    before = copy.deepcopy(net.state_dict())
    graph = from_torch(net, torch.rand(BATCH, N_IN))
    after = net.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert before[key].shape == after[key].shape and torch.equal(before[key], after[key]), key
    assert net[1].beta.ndim == 0 and net[1].threshold.ndim == 0
    lif = graph.nodes["1"]
    for key in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
        assert getattr(lif, key).shape == (N_HID,) and getattr(lif, key).dtype == np.float32, key
    np.testing.assert_allclose(lif.tau, 1e-4 / (1 - 0.9), rtol=1e-5)
    np.testing.assert_allclose(lif.v_threshold, 1.5)


def test_errors_are_clear() -> None:
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, N_OUT))
    with pytest.raises(NeurodeployError, match="unsupported framework"):
        from_torch(net, torch.zeros(N_IN), framework="tensorflow")
    pytest.importorskip("snntorch")
    with pytest.raises(NeurodeployError, match="does not support") as info:
        from_torch(torch.nn.Sequential(torch.nn.Linear(N_IN, N_OUT), torch.nn.ReLU()), torch.zeros(N_IN))
    assert "ReLU" in str(info.value)
    graph = nir.NIRGraph.from_list(nir.Linear(np.eye(3, dtype=np.float32)))
    with pytest.raises(NeurodeployError, match="unknown reset"):
        simulate_nir(graph, np.zeros((2, 1, 3)), 1e-4, reset="none")
