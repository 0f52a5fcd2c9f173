"""The tutorial's Python code runs as written (with a shorter training run), so the docs match the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("snntorch")

TUTORIAL = Path(__file__).parents[1] / "docs" / "tutorials" / "snntorch-loihi2.md"


def test_snntorch_tutorial_code_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    blocks = re.findall(r"```python\n(.*?)```", TUTORIAL.read_text(), re.S)
    code = "\n".join(blocks)
    assert "train_yinyang_snntorch(epochs=8, seed=0)" in code
    code = code.replace(
        "train_yinyang_snntorch(epochs=8, seed=0)", "train_yinyang_snntorch(epochs=2, seed=0, n_train=500)"
    )
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"print": lambda *a, **k: None}
    exec(compile(code, str(TUTORIAL), "exec"), namespace)
    assert (tmp_path / "yinyang.html").is_file() and (tmp_path / "yinyang.ndp").is_file()
    assert namespace["chip"].output().shape[1] == len(namespace["y_test"])
