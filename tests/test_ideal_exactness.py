"""The compiled ideal profile (normalize -> float core emulator) reproduces each framework exactly.

This is the second, independent path next to ``compiler.reference``: NIR -> NetworkIR in Loihi form
-> the vectorised float emulator. Both must equal the framework's own spikes.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_frontends import CASES, _norse_net, _norse_oracle, _snn_net, _snn_oracle, _spikes

import neurodeploy as nd


@pytest.mark.parametrize(("framework", "kind"), CASES)
def test_ideal_emulator_equals_framework(framework: str, kind: str) -> None:
    build, oracle = (_snn_net, _snn_oracle) if framework == "snntorch" else (_norse_net, _norse_oracle)
    net = build(kind, 0)
    x = _spikes(100)
    expected = oracle(net, x)
    compiled = nd.compile(nd.from_torch(net, x[0], framework=framework), "ideal")
    result = nd.run(compiled, x.numpy())
    for name, spikes in expected.items():
        assert int((result.spikes[name] != spikes).sum()) == 0, f"{framework}/{kind} layer {name}"
    assert 0.05 < float(np.mean(expected["3"])) < 0.95
