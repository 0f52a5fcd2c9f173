"""The README and the tutorials run as written, in a short form, and print what they say they print.

``docs/run_docs.py`` runs every code block and command of each page (see its docstring for the short
form); ``make docs-figures`` runs the full form and rewrites the pages' output blocks.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("snntorch")

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("run_docs", ROOT / "docs" / "run_docs.py")
run_docs = sys.modules["run_docs"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(run_docs)


@pytest.mark.parametrize("page", run_docs.PAGES)
def test_page_runs_and_prints_what_it_shows(page: str, tmp_path: Path):
    ran = run_docs.run_page(page, short=True, workdir=tmp_path, log=lambda line: None)
    code = [b for b in ran.blocks if b.kind in ("python", "bash")]
    assert code, f"{page} has no code blocks"
    for block in code:
        if block.output is not None:
            assert block.printed.strip(), f"{page}:{block.line} printed nothing, yet the page shows output"


def test_every_tutorial_is_run():
    """A new tutorial page is run too: the runner's list covers the folder."""
    tutorials = {f"docs/tutorials/{p.name}" for p in (ROOT / "docs" / "tutorials").glob("*.md")}
    assert tutorials <= set(run_docs.PAGES)


def test_output_check_catches_a_changed_line():
    shown = run_docs.Block("text", "accuracy 0.882 (instance 5)\nwrote x.json\n", 2)
    block = run_docs.Block("bash", "", 1, output=shown)
    block.printed = "accuracy 0.91\n(instance 12)\nwrote x.json\n"
    run_docs.check_output(block, "page.md")  # numbers may differ, wrapping may differ
    block.printed = "accuracy 0.91 (sample 12)\nwrote x.json\n"
    with pytest.raises(AssertionError, match="the page shows"):
        run_docs.check_output(block, "page.md")


def test_readme_command_list_names_real_verbs_and_options():
    """The README's command list: every verb exists and every option it shows is in the verb's --help."""
    text = (ROOT / "README.md").read_text()
    listing = re.search(r"## Command line\n\n```text\n(.*?)```", text, re.S).group(1)
    lines = [line.split("  ")[0] for line in listing.splitlines() if line.startswith("neurodeploy ")]
    assert len(lines) >= 10
    for line in lines:
        words = line.split()[1:]
        verb = [w for w in words[:2] if not w.startswith("-") and not w.endswith((".nir", ".ndp", ".npy", ".toml"))]
        verb = verb[:2] if verb[:1] == ["profiles"] and verb[1:] in (["show"], ["validate"]) else verb[:1]
        done = subprocess.run([sys.executable, "-m", "neurodeploy.cli", *verb, "--help"], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, f"{line}: {done.stderr}"
        for option in re.findall(r"(?<!\S)(--?[a-z][a-z-]*)", line):
            assert option in done.stdout, f"README shows {option} for `{' '.join(verb)}`, but its --help lacks it"
