"""The README's Python example runs as written (with a shorter training run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("snntorch")


def test_readme_python_example_runs():
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "train_yinyang_snntorch(seed=0)" in code
    code = code.replace("train_yinyang_snntorch(seed=0)", "train_yinyang_snntorch(seed=0, epochs=2, n_train=500)")
    namespace: dict = {"print": lambda *a, **k: None}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].output().shape[1] == 1000
