"""A user-defined Kolen-Pollack variant (B learns at half W's rate) on loihi2 and ideal, beside the
built-in KP: the example of docs/concepts/custom-rules.md, whose printed output that page shows.

    .venv/bin/python benchmarks/custom_rule_kp.py
"""

from __future__ import annotations

import neurodeploy
from neurodeploy.rules import LocalRule

kp_half = LocalRule(
    "kp-half",
    forward="dt = y0*d*y3 - y0*d*y2",  # ΔW = −η·δ·x̄, the built-in forward rule
    feedback="dt = -2^-1*y0*(x1-64)*y1",  # ΔB = −½η·δ_up·count: KP's B at half W's rate
    summary="Kolen-Pollack, B learns at half W's rate",
)
for rule, profile in ((kp_half, "loihi2"), (kp_half, "ideal"), ("kp", "loihi2")):
    res = neurodeploy.learn(rule, profile, "yinyang", hidden=[32], seeds=2, epochs=3, init_gain=0.5)
    f = res.final
    print(
        f"{getattr(rule, 'name', rule):8s} {profile:7s} test accuracy {f['test_accuracy']['per_seed']}, "
        f"∠(B, Wᵀ) {f['weight_angle']['B1']['mean']:.1f}°, {res.wall_s:.0f} s"
    )
    if profile == "loihi2" and rule is kp_half:
        for name, r in res.engine["rules"].items():
            print("   ", name, r["dt"], "|", r["dw"])
