"""snnTorch's reset (subtract / zero, with and without reset_delay) reproduced exactly on both float paths.

snnTorch 1.0.0 computes its reset signal from the membrane stored in the previous step, not from this
step's spike (``compiler.ir``, reset rules "snntorch" and "snntorch_leaky"). The oracle is snnTorch
itself: Linear -> neuron -> Linear -> neuron, random weights, T = 120, batch 6. ``simulate_nir`` (the
golden reference) and the compiled ideal profile (``nd.compile`` + ``nd.run``) must both give 0
mismatches; NIR's own rule must not, where the rules differ, or the test would prove nothing.
"""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
from conftest import lif_graph
from test_frontends import N_HID, N_OUT, _linears, _norse_oracle, _snn_oracle, _spikes

import neurodeploy as nd
from neurodeploy.compiler.ir import Conventions
from neurodeploy.compiler.normalize import normalize
from neurodeploy.compiler.reference import simulate_nir
from neurodeploy.errors import CompileError
from neurodeploy.frontends import conventions_from_metadata, from_torch

torch = pytest.importorskip("torch")
snn = pytest.importorskip("snntorch")

CASES = [
    (kind, mech, delay) for kind in ("leaky", "synaptic") for mech in ("subtract", "zero") for delay in (False, True)
]


def _net(kind: str, mech: str, delay: bool, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    l1, l2 = _linears(gen, gain=3.0, bias=0.1)
    common = dict(init_hidden=True, reset_mechanism=mech, reset_delay=delay)
    if kind == "leaky":  # per-neuron beta and threshold in layer 2
        n1 = snn.Leaky(beta=0.9, **common)
        n2 = snn.Leaky(
            beta=0.8 + 0.15 * torch.rand(N_OUT, generator=gen), threshold=torch.full((N_OUT,), 0.8), **common
        )
    else:
        n1 = snn.Synaptic(alpha=0.6, beta=0.9, **common)
        n2 = snn.Synaptic(alpha=0.5 + 0.3 * torch.rand(N_OUT, generator=gen), beta=0.85, **common)
    return torch.nn.Sequential(l1, n1, l2, n2)


def _mismatches(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> int:
    return sum(int((np.asarray(got[name]) != spikes).sum()) for name, spikes in expected.items())


@pytest.mark.parametrize(("kind", "mech", "delay"), CASES)
def test_snntorch_reset_is_exact_on_both_paths(kind: str, mech: str, delay: bool) -> None:
    rule = "snntorch_leaky" if kind == "leaky" else "snntorch"
    for seed in range(2):
        net = _net(kind, mech, delay, seed)
        x = _spikes(100 + seed)
        expected = _snn_oracle(net, x)
        for name, spikes in expected.items():
            assert 0.05 < float(spikes.mean()) < 0.95, f"{kind}/{mech}/{delay} layer {name}: trivial rate"
        graph = from_torch(net, x[0])
        assert graph.nodes["1"].metadata == {
            "neurodeploy.reset": mech,
            "neurodeploy.reset_delay": delay,
            "neurodeploy.reset_rule": rule,
        }
        assert graph.metadata["neurodeploy.reset_rule"] == rule
        ref = simulate_nir(graph, x.numpy(), dt=1e-4)  # reset, rule and delay from the metadata
        assert _mismatches(ref, expected) == 0, f"reference, {kind}/{mech}/delay={delay}/seed {seed}"
        compiled = nd.compile(graph, "ideal")
        assert compiled.violations == []
        got = nd.run(compiled, x.numpy()).spikes
        assert _mismatches(got, expected) == 0, f"compiled ideal, {kind}/{mech}/delay={delay}/seed {seed}"
        # NIR's rule differs from snnTorch's except for a zero reset without delay (and Leaky's, in spikes)
        nir_rule = simulate_nir(graph, x.numpy(), dt=1e-4, reset_rule="nir")
        same_spikes = mech == "zero" and (not delay or kind == "leaky")
        assert (_mismatches(nir_rule, expected) == 0) == same_spikes


def test_recurrent_snntorch_subtract_is_exact() -> None:
    """RLeaky shares the rule ("snntorch": its zero reset clears the updated membrane, unlike Leaky)."""
    gen = torch.Generator().manual_seed(4)
    l1, l2 = _linears(gen, gain=3.0, bias=0.1)
    common = dict(init_hidden=True, reset_mechanism="subtract", reset_delay=False)
    rec = snn.RLeaky(beta=0.9, linear_features=N_HID, **common)
    with torch.no_grad():
        rec.recurrent.weight.copy_(torch.randn(N_HID, N_HID, generator=gen) * 0.5 / N_HID**0.5)
    net = torch.nn.Sequential(l1, rec, l2, snn.Leaky(beta=0.85, **common))
    x = _spikes(4)
    expected: dict[str, list[np.ndarray]] = {"1.lif": [], "3": []}
    for m in (rec, net[3]):
        m.reset_mem()
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = net[1](net[0](x[t]))
            expected["1.lif"].append(h.numpy().copy())
            expected["3"].append(net[3](net[2](h)).numpy().copy())
    oracle = {k: np.stack(v) for k, v in expected.items()}
    graph = from_torch(net, x[0])
    assert graph.nodes["1.lif"].metadata["neurodeploy.reset_rule"] == "snntorch"
    assert _mismatches(simulate_nir(graph, x.numpy(), dt=1e-4), oracle) == 0
    assert _mismatches(nd.run(nd.compile(graph, "ideal"), x.numpy()).spikes, oracle) == 0
    assert 0.05 < float(oracle["3"].mean()) < 0.95


def test_norse_subtract_stays_exact_on_both_paths() -> None:
    """LIFBoxCell's reset_subtract is NIR-style subtract (v - v_th): recorded, and reproduced."""
    nt = pytest.importorskip("norse.torch")
    from norse.torch.functional.reset import reset_subtract

    gen = torch.Generator().manual_seed(3)
    l1, l2 = _linears(gen, gain=8.0, bias=0.8)

    def cell(n: int) -> torch.nn.Module:
        tau_mem_inv = 50.0 + 100.0 * torch.rand(n, generator=gen)
        return nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=tau_mem_inv, reset_method=reset_subtract))

    net = nt.SequentialState(l1, cell(N_HID), l2, cell(N_OUT))
    x = _spikes(3)
    expected = _norse_oracle(net, x)
    graph = from_torch(net, x[0], framework="norse")
    assert graph.metadata["neurodeploy.reset_rule"] == "nir"
    assert conventions_from_metadata(graph).reset == "subtract"
    assert _mismatches(simulate_nir(graph, x.numpy(), dt=1e-3), expected) == 0
    assert _mismatches(simulate_nir(graph, x.numpy(), dt=1e-3, reset="subtract"), expected) == 0
    compiled = nd.compile(graph, "ideal")
    assert {p.reset_rule for p in compiled.core.populations} == {"nir"}
    assert _mismatches(nd.run(compiled, x.numpy()).spikes, expected) == 0
    assert 0.05 < float(expected["3"].mean()) < 0.95


# ------------------------------------------------------------------------------------ chips and files


def test_chips_reject_snntorch_resets_with_a_clear_message() -> None:
    x = _spikes(0)
    subtract = from_torch(_net("synaptic", "subtract", False, 0), x[0])
    with pytest.raises(CompileError, match='reset mode.*zero only.*reset_mechanism="zero", reset_delay=False'):
        nd.compile(subtract, "loihi2")
    late = from_torch(_net("synaptic", "zero", True, 0), x[0])
    with pytest.raises(CompileError, match="reset delay.*reset_delay=False"):
        nd.compile(late, "loihi2")
    # spinnaker2 subtracts, but in the spiking step (NIR's rule), not snnTorch's way
    rules = {v.rule: v for v in nd.compile(subtract, "spinnaker2", strict=False).violations}
    assert "reset rule" in rules and "previous step's membrane" in rules["reset rule"].hint
    # a zero reset without delay is NIR's reset exactly: it is lowered as "nir" and fits Loihi
    plain = nd.compile(from_torch(_net("leaky", "zero", False, 0), x[0]), "loihi2")
    assert {p.reset_rule for p in plain.ir.populations} == {"nir"}


def test_conventions_and_artifacts_default_to_the_nir_rule(tmp_path) -> None:
    old = {"dt": 1e-4, "reset": "subtract", "reset_delay": False, "integrator": "euler", "source": "x"}
    assert Conventions.from_dict(old).reset_rule == "nir"
    assert {p.reset_rule for p in normalize(lif_graph()).populations} == {"nir"}
    stale = lif_graph()  # an snnTorch subtract export from before the rule was recorded: say what is assumed
    stale.metadata.update({"neurodeploy.source": "snntorch", "neurodeploy.reset": "subtract"})
    with pytest.warns(UserWarning, match="reset_rule='nir'"):
        assert "reset_rule" in normalize(stale).conventions.assumed

    x = _spikes(1)
    graph = from_torch(_net("leaky", "subtract", True, 1), x[0])
    compiled = nd.compile(graph, "ideal")
    path = compiled.save(tmp_path / "m.ndp")
    loaded = nd.load_compiled(path)
    assert loaded.conventions.reset_rule == "snntorch_leaky"
    assert [(p.reset_rule, p.reset_delay) for p in loaded.core.populations[1:]] == [("snntorch_leaky", True)] * 2
    a, b = nd.run(compiled, x.numpy()).spikes, nd.run(loaded, x.numpy()).spikes
    assert all(np.array_equal(a[n], b[n]) for n in a)

    from neurodeploy.compiler.artifact import _digest

    with h5py.File(path, "r+") as f:  # an artifact written before the rule was stored
        for part in ("ir", "core"):
            for g in f[part]["populations"].values():
                del g.attrs["reset_rule"], g.attrs["reset_delay"]
        f.attrs["checksum"] = _digest(f)
    assert {p.reset_rule for p in nd.load_compiled(path).core.populations} == {"nir"}


def test_snntorch_rule_needs_a_zero_reset_potential() -> None:
    graph = from_torch(_net("leaky", "subtract", False, 0), _spikes(0)[0])
    graph.nodes["1"] = dataclasses.replace(graph.nodes["1"], v_reset=np.full(N_HID, 0.1, np.float32))
    with pytest.raises(CompileError, match="no reset potential"):
        nd.compile(graph, "ideal")
    with pytest.raises(nd.NeurodeployError, match="no reset potential"):
        simulate_nir(graph, np.zeros((2, 1, 20)), 1e-4)
