"""Every benchmark script answers --help: its command line is what the docs tell users to run."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted(p for p in (Path(__file__).resolve().parent.parent / "benchmarks").glob("*.py")
                    if "add_argument" in p.read_text(encoding="utf-8"))  # fmt: skip


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.stem)
def test_help_prints_and_exits_cleanly(script: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(sys, "argv", [str(script), "--help"])
    monkeypatch.syspath_prepend(str(script.parent))  # as `python benchmarks/X.py` puts the script's folder first
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(script), run_name="__main__")
    assert done.value.code == 0
    assert "usage:" in capsys.readouterr().out
