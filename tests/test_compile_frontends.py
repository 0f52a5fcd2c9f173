"""snnTorch recurrent and convolutional networks: reference and compiled ideal profile equal snnTorch's spikes.

RLeaky / RSynaptic (zero reset, reset_delay=False) export as a nested {lif, w_rec} subgraph; snnTorch
adds ``recurrent(spk_prev) + bias`` so the loop delay acts on the spikes and the bias counts from step 0
(``loop_delay="out_of_neuron"``, recorded by the frontend). snnTorch 1.0.0's RSynaptic cannot run with
reset_delay=False (its forward reads undefined locals ``spk``/``mem``); the oracle here is RSynaptic with
exactly that bug fixed (``self.spk``/``self.mem``), everything else snnTorch's own code.
"""

from __future__ import annotations

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.compiler.reference import simulate_nir
from neurodeploy.frontends import from_torch

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")

T, BATCH, N_IN, N_HID, N_OUT = 100, 6, 20, 32, 10
COMMON = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)


class FixedRSynaptic(snn.RSynaptic):
    """snnTorch 1.0.0 RSynaptic, its reset_delay=False branch reading self.spk / self.mem as intended."""

    def forward(self, input_):  # noqa: D102 - same as RSynaptic.forward with init_hidden=True
        for key in ("spk", "syn", "mem"):
            if getattr(self, key).shape != input_.shape:
                setattr(self, key, torch.zeros_like(input_))
        self.reset = self.mem_reset(self.mem)
        self.syn, self.mem = self.state_function(input_)
        self.spk = self.fire(self.mem)
        do_reset = self.spk / self.graded_spikes_factor - self.reset
        self.mem = self.mem - do_reset * self.mem
        return self.spk


def _recurrent_net(kind: str, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    l1, l2 = torch.nn.Linear(N_IN, N_HID), torch.nn.Linear(N_HID, N_OUT)
    with torch.no_grad():
        for layer in (l1, l2):
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen) * 3 / layer.in_features**0.5)
            layer.bias.copy_(0.1 + 0.1 * torch.randn(layer.bias.shape, generator=gen))
    if kind == "rleaky":
        rec = snn.RLeaky(beta=0.9, linear_features=N_HID, **COMMON)
    else:
        rec = FixedRSynaptic(alpha=0.6, beta=0.9, linear_features=N_HID, **COMMON)
    with torch.no_grad():
        rec.recurrent.weight.copy_(torch.randn(N_HID, N_HID, generator=gen) * 0.5 / N_HID**0.5)
        rec.recurrent.bias.copy_(0.1 * torch.randn(N_HID, generator=gen))
    return torch.nn.Sequential(l1, rec, l2, snn.Leaky(beta=0.85, **COMMON))


def _run_snntorch(net: torch.nn.Module, x: torch.Tensor, taps: dict[str, int]) -> dict[str, np.ndarray]:
    """Step the Sequential one time step at a time; record the spikes of the layers in ``taps``."""
    for m in net.modules():
        if hasattr(m, "reset_mem"):
            m.reset_mem()
    out: dict[str, list[np.ndarray]] = {k: [] for k in taps}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = x[t]
            for i, layer in enumerate(net):
                h = layer(h)
                for key, idx in taps.items():
                    if idx == i:
                        out[key].append(h.reshape(h.shape[0], -1).numpy().copy())
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parametrize("kind", ["rleaky", "rsynaptic"])
def test_recurrent_snntorch_layers_are_exact(kind: str) -> None:
    for seed in range(2):
        net = _recurrent_net(kind, seed)
        gen = torch.Generator().manual_seed(100 + seed)
        x = (torch.rand(T, BATCH, N_IN, generator=gen) < 0.3).float()
        expected = _run_snntorch(net, x, {"1.lif": 1, "3": 3})
        graph = from_torch(net, x[0])
        assert graph.metadata["neurodeploy.loop_delay"] == "out_of_neuron"
        assert graph.metadata["neurodeploy.reset_delay"] is False
        ref = simulate_nir(graph, x.numpy(), dt=1e-4)
        got = nd.run(nd.compile(graph, "ideal"), x.numpy())
        for name, spikes in expected.items():
            assert 0.05 < float(spikes.mean()) < 0.95, f"{kind}/{seed} {name}: trivial rate"
            assert int((ref[name] != spikes).sum()) == 0, f"{kind}/{seed} {name}: reference differs"
            assert int((got.spikes[name] != spikes).sum()) == 0, f"{kind}/{seed} {name}: compiled ideal differs"
        # the other loop-delay reading loses the recurrent bias at step 0, and it shows
        other = simulate_nir(graph, x.numpy(), dt=1e-4, loop_delay="into_neuron")
        assert int((other["1.lif"] != expected["1.lif"]).sum()) > 0


def test_snntorch_conv_net_is_exact() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        snn.Leaky(beta=0.9, **COMMON),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(64, 5),
        snn.Leaky(beta=0.9, **COMMON),
    )
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[4].weight.mul_(4)
    x = (torch.rand(60, 4, 2, 8, 8) < 0.3).float()
    expected = _run_snntorch(net, x, {"1": 1, "5": 5})
    graph = from_torch(net, x[0])
    assert graph.nodes["input"].input_type["input"].tolist() == [2, 8, 8]
    flat = x.reshape(60, 4, -1).numpy()
    ref = simulate_nir(graph, flat, dt=1e-4)
    compiled = nd.compile(graph, "ideal")
    got = nd.run(compiled, flat)
    for name, spikes in expected.items():
        assert float(spikes.mean()) > 0.05
        assert int((ref[name] != spikes).sum()) == 0, name
        assert int((got.spikes[name] != spikes).sum()) == 0, name
    assert nd.compile(graph, "loihi2").report["metrics"]["Cores"] >= 1


def test_conv_sample_rank_is_checked() -> None:
    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), snn.Leaky(beta=0.9, **COMMON))
    with pytest.raises(nd.NeurodeployError, match="the first layer expects 3"):
        from_torch(net, torch.zeros(8, 8))
