"""Learning tables at depth: the grid, the gain over the frozen baseline with Welch's p, wall times, and
the input steps deep networks need."""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.errors import NeurodeployError
from neurodeploy.studies import learning_grid

# ----------------------------------------------------------------------------------------------------
# the learning table at depth: gain over the frozen baseline, Welch's p, wall times


def _result(rule: str, depth: int, per_seed: list[float], angle: float | None = None) -> dict:
    acc = {"mean": float(np.mean(per_seed)), "std": float(np.std(per_seed)), "per_seed": per_seed}
    angles = {"B1": {"mean": angle, "std": 0.0}} if angle is not None else {}
    return {"rule": rule, "depth": depth, "profile": "loihi2", "mismatch": 0.0, "score": "test_accuracy",
            "accuracy": acc, "weight_angle": angles, "signal_angle": {}}  # fmt: skip


def test_welch_gain_and_p_value_match_scipy():
    from scipy.stats import ttest_ind

    a, b = [0.95, 0.96, 0.94, 0.97, 0.95], [0.90, 0.93, 0.91, 0.89, 0.92]
    gain, p = learning_grid.welch(a, b)
    assert gain == pytest.approx(np.mean(a) - np.mean(b))
    assert p == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue) and p < 0.01
    assert np.isnan(learning_grid.welch([0.9], [0.8])[1])  # one seed: no test
    assert np.isnan(learning_grid.welch([0.9, 0.9], [0.8, 0.8])[1])  # no spread: no test


def test_table_rows_per_depth_with_gain_p_and_wall_time():
    results = [_result("frozen", 1, [0.90, 0.91, 0.92]), _result("kp", 1, [0.95, 0.96, 0.94], 7.0),
               _result("frozen", 3, [0.85, 0.86, 0.84]), _result("kp", 3, [0.80, 0.82, 0.81], 30.0)]  # fmt: skip
    text = learning_grid.table(results, ["loihi2"], walls=[10.0, 20.0, 30.0, 40.0])
    lines = text.splitlines()
    assert lines[0] == "| rule | depth | loihi2 |"
    rows = {tuple(x.strip() for x in line.split("|")[1:3]): line.split("|")[3].strip() for line in lines[2:]}
    assert rows[("frozen", "1")] == "91.0 ± 0.8 · 10 s"  # the baseline has no gain column
    _, p = learning_grid.welch([0.95, 0.96, 0.94], [0.90, 0.91, 0.92])
    assert rows[("kp", "1")] == f"95.0 ± 0.8 (∠B 7°); +4.0 p={p:.2g} · 20 s"
    assert rows[("kp", "3")].startswith("81.0 ± 0.8 (∠B 30°); -4.0 p=")
    # one depth: no depth column, as in earlier tables
    assert learning_grid.table(results[:2], ["loihi2"]).splitlines()[0] == "| rule | loihi2 |"


def test_gap_table_gives_bps_lead_per_depth_in_points_and_regression_units():
    results = [_result("bp", 1, [0.96, 0.96]), _result("fa", 1, [0.90, 0.92]), _result("bp", 2, [0.95, 0.95]),
               _result("fa", 2, [0.80, 0.80]), _result("frozen", 2, [0.7, 0.7])]  # fmt: skip
    lines = learning_grid.gap_table(results, ["loihi2"]).splitlines()
    assert lines[0] == "| rule | loihi2 |" and lines[2:] == ["| fa | 5.0 / 15.0 |"]  # frozen has no row
    mse = [{**r, "score": "test_mse"} for r in results]  # lower is better: the rule's MSE minus BP's
    assert learning_grid.gap_table(mse, ["loihi2"]).splitlines()[2] == "| fa | -50.0 / -150.0 |"
    assert learning_grid.gap_table(results[:2], ["loihi2"]) == ""  # one depth: no gaps to compare


def test_paper_columns_are_their_own_cells_beside_the_float_chip_column():
    """The paper variant and the chip variant on ideal share a profile and mismatch; the table keeps them
    apart, each rule compared with the frozen baseline of its own variant, and paper cells carry no chip
    options."""
    cells = learning_grid.grid(["kp"], ["float", "paper"], seeds=3, epochs=5, depths=(3,), width=16)
    chip, paper = (next(c for c in cells if c.get("variant", "chip") == v) for v in ("chip", "paper"))
    assert chip["options"] == {"active": 23, "lr": 0.003} and "variant" not in chip
    assert paper["variant"] == "paper" and "options" not in paper and paper["profile"] == "ideal"
    rows = []
    for variant, base in (("chip", 0.6), ("paper", 0.8)):
        for rule, acc in (("frozen", base), ("kp", base + 0.1)):
            r = _result(rule, 3, [acc - 0.01, acc, acc + 0.01])
            rows.append({**r, "profile": "ideal", "variant": variant})
    text = learning_grid.table(rows, ["float", "paper"])
    kp = next(line for line in text.splitlines() if line.startswith("| kp"))
    assert "70.0 ± 0.8; +10.0" in kp.split("|")[2] and "90.0 ± 0.8; +10.0" in kp.split("|")[3]


def test_grid_gives_deep_networks_the_steps_to_relay_delta():
    cells = learning_grid.grid(["fa", "pal"], ["loihi2"], seeds=5, epochs=40, depths=(1, 3), width=32)
    assert [len(c["hidden"]) for c in cells] == [3, 1, 3, 1]  # slow rules first, deep first
    assert cells[0]["rule"] == "pal" and cells[0]["options"] == {"active": 23, "lr": 0.003}
    assert "options" not in cells[1] and cells[1]["hidden"] == [32]
    # the default depth-1 cell keeps the parameters of earlier tables (and so their stored results)
    assert learning_grid.grid(["fa"], ["loihi2"], 5, 40)[0] == {"rule": "fa", "profile": "loihi2", "mismatch": 0.0,
                                                              "seeds": 5, "epochs": 40, "task": "yinyang"}  # fmt: skip
    with pytest.raises(NeurodeployError, match="depths must be positive"):
        learning_grid.grid(["fa"], ["loihi2"], 5, 40, depths=(0,))


def test_deep_learn_names_the_active_flag_and_it_works(tmp_path):
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "neurodeploy.cli", "learn", "--rule", "fa", "--hidden", "8,8,8", "--epochs", "1",
           "--seeds", "1"]  # fmt: skip
    refused = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert refused.returncode == 2 and "lower --active to 23" in refused.stderr and "Traceback" not in refused.stderr
    ok = subprocess.run([*cmd, "--active", "23"], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "fa (chip) on loihi2" in ok.stdout


def test_a_deep_network_gets_the_deep_learning_rate_unless_one_is_given():
    import neurodeploy
    from neurodeploy.studies.chip_learning import default_lr

    assert default_lr(1) == 0.01 and default_lr(2) == default_lr(3) == 0.003
    deep = neurodeploy.learn("bp", "ideal", "yinyang", hidden=(8, 8), seeds=1, epochs=1)
    assert deep.config["lr"] == 0.003
    given = neurodeploy.learn("bp", "ideal", "yinyang", hidden=(8, 8), seeds=1, epochs=1, lr=0.02)
    assert given.config["lr"] == 0.02
    with pytest.raises(NeurodeployError, match="lr must be > 0"):
        neurodeploy.learn("bp", "ideal", "yinyang", hidden=(8,), seeds=1, epochs=1, lr=-0.1)


def test_a_paper_only_row_runs_under_the_paper_conditions_alone():
    """``pal-slope`` is PAL's paper variant with the slope-weighted decay: the grid gives it paper cells
    only, a cell runs it with that setting, and asking for its chip variant is refused by name."""
    cells = learning_grid.grid(["pal", "pal-slope"], ["paper", "loihi2"], seeds=1, epochs=1, depths=[2], width=8)
    rows = sorted((c["rule"], c.get("variant", "chip")) for c in cells)
    assert rows == [("pal", "chip"), ("pal", "paper"), ("pal-slope", "paper")]
    res = learning_grid.learning_cell("pal-slope", variant="paper", hidden=[6], epochs=1, seeds=1)
    assert res["rule"] == "pal-slope" and res["fixed_point_floor"]["B1"]["mean"] < 1e-3  # its fixed point is Wᵀ
    with pytest.raises(NeurodeployError, match="pal-slope"):
        learning_grid.learning_cell("pal-slope", variant="chip", hidden=[6], epochs=1, seeds=1)
