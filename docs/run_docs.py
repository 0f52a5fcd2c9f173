"""Run the README's and the tutorials' code as a reader would, and check or rewrite what they print.

Why: documented commands and their printed results drift from the tool unless something runs them.
Every ``python`` block of a page runs, in order, in one namespace (a page is one script); every command
of a ``bash`` block runs as a subprocess; a ``text`` block right after a code block is that block's
printed output. Pages run in a fresh folder each.

Two forms:

- ``--short`` (what ``tests/test_docs.py`` runs in CI): fewer epochs, seeds and chip instances, through
  the substitutions in ``SHORT``, each of which must apply. Printed output is checked line by line with
  every number masked, so the words, units and order must match the page.
- full (``make docs-figures``): the pages' own commands; with ``--write`` every output block is replaced
  by what the code printed, and the numbers in a page's prose that no output shows are listed for review.

    .venv/bin/python docs/run_docs.py [--short] [--write] [PAGE.md ...]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGES = ("README.md", "docs/getting-started.md", "docs/tutorials/snntorch-loihi2.md",
         "docs/tutorials/variability-dynapse2.md", "docs/tutorials/learning-kp-pal.md")  # fmt: skip
# Set-up commands a page shows but that this runner does not repeat, and where they are run instead.
NOT_RUN = {
    "make demo": "tests/test_cli.py::test_demo_runs_end_to_end runs `neurodeploy demo --quick --no-lava`",
    "make test": "CI runs it (.ci/run)",
    "git clone": "CI starts from a clean clone",
}
# Short form: (pattern, replacement) per page; every pattern must match at least once.
_TRAIN = (
    r"train_yinyang_snntorch\((?:epochs=\d+)?(?:, )?(seed=\d+)?\)",
    r"train_yinyang_snntorch(epochs=2, n_train=500, \1)",
)
SHORT: dict[str, list[tuple[str, str]]] = {
    "README.md": [_TRAIN, (r"seeds=5\)", "seeds=2, epochs=1)")],
    "docs/getting-started.md": [],
    "docs/tutorials/snntorch-loihi2.md": [_TRAIN],
    "docs/tutorials/variability-dynapse2.md": [
        _TRAIN,
        (r"--instances 64", "--instances 4"),
        (r"instances=64", "instances=4"),
        (r"benchmarks/variability.py( +)#", r"benchmarks/variability.py --quick\1#"),
    ],
    "docs/tutorials/learning-kp-pal.md": [
        (r"--seeds 5", "--seeds 2 --epochs 1"),
        (r"epochs=40", "epochs=1"),
        (r"--task digits", "--task digits --epochs 1"),
    ],  # fmt: skip
}
NUMBER = r"[-−+]?\d+(?:[.,]\d+)*(?:e[-+]?\d+)?"


@dataclass
class Block:
    kind: str  # "python", "bash" or "text"
    code: str
    line: int
    output: Block | None = None  # the text block that shows what this block prints
    printed: str = ""


@dataclass
class Page:
    path: Path
    text: str
    blocks: list[Block] = field(default_factory=list)


def parse(path: Path) -> Page:
    """The fenced blocks of a page; a text block directly after a code block is its output."""
    text = path.read_text(encoding="utf-8")
    page = Page(path, text)
    previous_end = -1
    for match in re.finditer(r"```(\w*)\n(.*?)```", text, re.S):
        block = Block(match.group(1) or "text", match.group(2), text[: match.start()].count("\n") + 1)
        last = page.blocks[-1] if page.blocks else None
        between = text[previous_end : match.start()]
        if block.kind == "text" and last is not None and last.kind in ("python", "bash") and not between.strip():
            last.output = block
        page.blocks.append(block)
        previous_end = match.end()
    return page


def shorten(page: Page, rel: str) -> None:
    """Apply the page's short-form substitutions to its code blocks; each must change something."""
    for pattern, replacement in SHORT.get(rel, []):
        hits = 0
        for block in page.blocks:
            if block.kind in ("python", "bash"):
                block.code, n = re.subn(pattern, replacement, block.code)
                hits += n
        if not hits:
            raise AssertionError(f"{rel}: the short-form pattern {pattern!r} no longer matches; update SHORT")


def commands(code: str) -> list[str]:
    """The commands of a bash block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", code)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            out.append(line)
    return out


def _argv(command: str) -> list[str] | None:
    """The argv that runs a documented command here, or None for a set-up command run elsewhere."""
    if any(command.startswith(prefix) for prefix in NOT_RUN):
        return None
    args = shlex.split(command)
    if args[0] in ("neurodeploy", ".venv/bin/neurodeploy"):
        return [sys.executable, "-m", "neurodeploy.cli", *args[1:]]
    if args[0] in ("python", ".venv/bin/python") and args[1].startswith("benchmarks/"):
        return [sys.executable, str(ROOT / args[1]), *args[2:]]
    raise AssertionError(f"the runner does not know how to run {command!r}; teach docs/run_docs.py")


def _run_bash(block: Block, workdir: Path, log: Callable[[str], None]) -> None:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    printed = []
    for command in commands(block.code):
        argv = _argv(command)
        if argv is None:
            log(f"  not run here: {command} ({next(v for k, v in NOT_RUN.items() if command.startswith(k))})")
            continue
        log(f"  $ {command}")
        done = subprocess.run(argv, cwd=workdir, env=env, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise AssertionError(f"line {block.line}: `{command}` exited {done.returncode}:\n{done.stderr[-3000:]}")
        printed.append(done.stdout)
    block.printed = "".join(printed)


def _run_python(block: Block, namespace: dict, workdir: Path, rel: str) -> None:
    sink = io.StringIO()
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        with contextlib.redirect_stdout(sink):
            exec(compile(block.code, f"{rel}:{block.line}", "exec"), namespace)  # noqa: S102 - the page's own code
    finally:
        os.chdir(cwd)
    block.printed = sink.getvalue()


def _pattern(line: str) -> re.Pattern[str]:
    """A documented output line as a regex: numbers masked, whitespace free, the rest literal."""
    parts = re.split(f"({NUMBER})", " ".join(line.split()))
    body = "".join(NUMBER if i % 2 else r"\s*".join(map(re.escape, p.split(" "))) for i, p in enumerate(parts))
    return re.compile(body)


def check_output(block: Block, rel: str) -> None:
    """Every line of the documented output appears, in order, in what the block printed."""
    assert block.output is not None
    printed = " ".join(block.printed.split())
    at = 0
    for line in block.output.code.splitlines():
        if not line.strip():
            continue
        found = _pattern(line).search(printed, at)
        if found is None:
            raise AssertionError(
                f"{rel}:{block.output.line}: the page shows\n  {line.strip()}\nbut the code printed\n{block.printed}"
            )
        at = found.end()


def fixtures(rel: str, workdir: Path) -> None:
    """Files a page takes from an earlier step (``make demo``): the demo's NIR file and its test inputs."""
    if rel != "docs/getting-started.md":
        return
    import nir
    import numpy as np

    import neurodeploy as nd
    from neurodeploy.datasets import yin_yang_splits
    from neurodeploy.training import train_yinyang_snntorch

    trained = train_yinyang_snntorch(epochs=2, n_train=500)
    features, labels = yin_yang_splits()["test"]
    spikes = trained.encoder.encode(features)
    (workdir / "out" / "demo").mkdir(parents=True)
    nir.write(str(workdir / "out" / "demo" / "yinyang.nir"), nd.from_torch(trained.module, spikes[:, 0]))
    np.save(workdir / "spikes.npy", spikes)
    np.save(workdir / "labels.npy", labels)


def run_page(rel: str, short: bool, workdir: Path, log: Callable[[str], None] = print) -> Page:
    """Run one page in ``workdir``; in the short form, check every documented output."""
    page = parse(ROOT / rel)
    if short:
        shorten(page, rel)
    fixtures(rel, workdir)
    namespace: dict = {"__name__": "__docs__"}
    for block in page.blocks:
        if block.kind == "python":
            log(f"{rel}:{block.line}: python block")
            _run_python(block, namespace, workdir, rel)
        elif block.kind == "bash":
            _run_bash(block, workdir, log)
        else:
            continue
        if block.output is not None and short:
            check_output(block, rel)
    return page


def write_outputs(page: Page) -> list[str]:
    """Replace each output block by what its code printed; return prose numbers no output shows."""
    text = page.text
    for block in reversed([b for b in page.blocks if b.output is not None]):
        old = f"```text\n{block.output.code}```"
        printed = "\n".join(line.rstrip() for line in block.printed.rstrip().splitlines())
        new = f"```text\n{printed}\n```"
        text = text.replace(old, new, 1)
    page.path.write_text(text, encoding="utf-8")
    shown = set(re.findall(r"\d+\.\d+", " ".join(b.printed for b in page.blocks)))
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    return sorted({n for n in re.findall(r"\b\d+\.\d{2,}\b", prose) if n not in shown})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", default=list(PAGES))
    parser.add_argument("--short", action="store_true", help="the CI form: fewer epochs, seeds and instances")
    parser.add_argument("--write", action="store_true", help="rewrite each page's output blocks")
    args = parser.parse_args()
    if args.write and args.short:
        parser.error("--write takes the full form; drop --short")
    for rel in args.pages:
        with tempfile.TemporaryDirectory() as tmp:
            page = run_page(rel, args.short, Path(tmp))
        if args.write:
            stale = write_outputs(page)
            print(f"{rel}: outputs rewritten" + (f"; check these prose numbers: {', '.join(stale)}" if stale else ""))
        else:
            print(f"{rel}: ran")


if __name__ == "__main__":
    main()
