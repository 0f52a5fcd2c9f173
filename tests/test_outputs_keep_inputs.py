"""Outputs never destroy inputs, keep the replaced file's mode, and disk errors are one clear line."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from pathlib import Path

import nir
import numpy as np
import pytest

from neurodeploy.atomic import atomic_write, refuse_overwriting_inputs
from neurodeploy.errors import NeurodeployError

INTERRUPTED_LINE = "error: interrupted (outputs are written whole or not at all)"


def _cli(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}  # wide tables: names are not cut
    return subprocess.run([sys.executable, "-m", "neurodeploy.cli", *argv], capture_output=True, text=True,
                          timeout=180, env=env)  # fmt: skip


@pytest.fixture
def model(tmp_path: Path) -> Path:
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([3])), nir.Linear(np.ones((2, 3))), nir.LIF(*([np.ones(2)] * 4)), nir.Output(np.array([2]))
    )
    path = tmp_path / "model.nir"
    nir.write(str(path), graph)
    return path


def test_compile_and_run_refuse_to_overwrite_their_inputs(model: Path, tmp_path: Path) -> None:
    before = model.read_bytes()
    done = _cli("compile", str(model), "--dt", "1e-3", "-o", str(model))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "also an input" in done.stderr and model.read_bytes() == before
    art = tmp_path / "model.ndp"
    assert _cli("compile", str(model), "--dt", "1e-3", "-o", str(art)).returncode == 0
    spikes = tmp_path / "s.npz"
    np.savez(spikes, input=np.zeros((4, 1, 3), dtype=np.int8))
    kept = spikes.read_bytes()
    done = _cli("run", str(art), "-i", str(spikes), "-o", str(spikes))
    assert done.returncode == 2 and "also an input" in done.stderr and spikes.read_bytes() == kept
    link = tmp_path / "alias.ndp"
    link.symlink_to(art)
    with pytest.raises(NeurodeployError, match="also an input"):
        refuse_overwriting_inputs(link, art)


def test_written_files_keep_the_old_mode_or_follow_the_umask(tmp_path: Path) -> None:
    old = tmp_path / "old.txt"
    old.write_text("x")
    old.chmod(0o640)
    atomic_write(old, lambda tmp: Path(tmp).write_text("y"))
    assert stat.S_IMODE(old.stat().st_mode) == 0o640 and old.read_text() == "y"
    mask = os.umask(0o027)
    try:
        new = atomic_write(tmp_path / "new.txt", lambda tmp: Path(tmp).write_text("z"))
    finally:
        os.umask(mask)
    assert stat.S_IMODE(new.stat().st_mode) == 0o640  # 0666 & ~027, not mkstemp's 0600


def test_a_full_disk_is_one_error_and_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_text("previous")

    def full(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(NeurodeployError, match="No space left") as err:
        atomic_write(target, full)
    assert str(target) in str(err.value)
    assert target.read_text() == "previous" and sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]


def test_identical_compiles_write_byte_identical_artifacts(model: Path, tmp_path: Path) -> None:
    import neurodeploy

    blobs = []
    for i in range(2):
        path = neurodeploy.compile(neurodeploy.load_nir(model), "loihi2", dt=1e-3, reset="zero").save(
            tmp_path / f"m{i}.ndp"
        )
        blobs.append(path.read_bytes())
    assert blobs[0] == blobs[1]
    assert neurodeploy.load_compiled(tmp_path / "m0.ndp").report["compile_seconds"] == 0.0


def test_markup_and_control_characters_in_names_are_shown_not_obeyed(tmp_path: Path) -> None:
    from neurodeploy.textsafe import shown

    assert shown("n[/x]") == "n\\[/x]" and shown("a\x1b[31mb") == "a\\x1b[31mb" and shown("x\u202ey") == "x\\u202ey"
    graph = nir.NIRGraph(
        {"input": nir.Input(np.array([3])), "[red]lin": nir.Linear(np.ones((2, 3))),
         "n[x]\u202e": nir.LIF(*([np.ones(2)] * 4)), "output": nir.Output(np.array([2]))},
        [("input", "[red]lin"), ("[red]lin", "n[x]\u202e"), ("n[x]\u202e", "output")],
    )  # fmt: skip
    model = tmp_path / "m.nir"
    nir.write(str(model), graph)
    done = _cli("compile", str(model), "--dt", "1e-3", "--reset", "zero", "-o", str(tmp_path / "m.ndp"))
    assert done.returncode == 0, done.stderr
    assert "n[x]\\u202e" in done.stdout and "\u202e" not in done.stdout
    prof = tmp_path / "odd.toml"
    text = (Path(__file__).resolve().parents[1] / "hw_profiles" / "loihi2.toml").read_text()
    prof.write_text(text.replace('name = "loihi2"', 'name = "n[/x]"', 1))
    done = _cli("profiles", "show", str(prof))
    assert done.returncode == 0, done.stderr
    assert "n[/x]" in done.stdout


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture) -> None:
    from neurodeploy import cli

    def interrupted(**_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "app", interrupted)
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 130
    err = capfd.readouterr().err
    assert "interrupted" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_interrupted_write_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_text("previous")

    def interrupted(tmp: str) -> None:
        Path(tmp).write_text("partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, interrupted)
    assert target.read_text() == "previous" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_a_killed_writer_s_temp_file_is_swept_by_the_next_write(tmp_path: Path) -> None:
    import signal
    import textwrap

    from neurodeploy import atomic

    target = tmp_path / "model.ndp"
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from neurodeploy.atomic import atomic_write

        def slow(tmp):
            Path(tmp).write_bytes(b"x" * 4096)
            print("writing", flush=True)
            time.sleep(60)

        atomic_write({str(target)!r}, slow)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    left = [p for p in tmp_path.iterdir() if p.name.startswith(".model.ndp.")]
    assert len(left) == 1 and not target.exists()  # SIGKILL cannot clean up after itself
    os.utime(left[0], (0, 0))  # older than STALE_AGE_S
    mine = tmp_path / f".model.ndp.{os.getpid()}.abcd.tmp.ndp"  # a live writer's temp: never touched
    mine.write_text("in progress")
    os.utime(mine, (0, 0))
    atomic.atomic_write(target, lambda tmp: Path(tmp).write_text("new"))
    assert target.read_text() == "new" and not left[0].exists() and mine.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, mine.name])


def test_a_write_that_cannot_fit_is_refused_before_it_starts(tmp_path: Path, monkeypatch) -> None:
    import shutil

    from neurodeploy import atomic

    target = tmp_path / "model.ndp"
    target.write_text("old")
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(atomic.shutil, "disk_usage", lambda _: usage._replace(free=5 << 20))
    with pytest.raises(NeurodeployError, match="not enough free space") as err:
        atomic.atomic_write(target, lambda tmp: Path(tmp).write_text("new"), size_hint=50 << 20)
    assert str(tmp_path) in str(err.value) and "-o" in err.value.hint
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["model.ndp"]


@pytest.mark.parametrize("delay", [0.2, 0.5, 0.8, 1.0, 1.2, 1.6])
def test_a_real_sigint_during_compile_keeps_the_old_file_or_finishes(tmp_path: Path, delay: float) -> None:
    """SIGINT at a few points of a compile (start-up, lowering, the write): exit 130 with one line, or a
    clean finish; the output is the old artifact or the complete new one (an interrupt that lands after
    the rename still exits 130), never a traceback or a temp file."""
    import signal
    import time

    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([300])), nir.Linear(np.random.default_rng(0).normal(size=(2000, 300))),
        nir.LIF(*([np.ones(2000)] * 4)), nir.Output(np.array([2000])),
    )  # fmt: skip
    model = tmp_path / "big.nir"
    nir.write(str(model), graph)
    out = tmp_path / "big.ndp"
    out.write_bytes(b"the previous artifact")
    proc = subprocess.Popen([sys.executable, "-m", "neurodeploy.cli", "compile", str(model), "--dt", "1e-3",
                             "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=180)
    assert "Traceback" not in err, err
    assert proc.returncode in (0, 130), (proc.returncode, err)
    if proc.returncode == 130:  # the one error line (after any warning the compile gave before it)
        assert [line for line in err.splitlines() if line.startswith("error:")] == [INTERRUPTED_LINE]
    if out.read_bytes() != b"the previous artifact":
        import neurodeploy as nd

        assert nd.load_compiled(out).core.population(nd.load_compiled(out).core.outputs[0]).size == 2000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.ndp", "big.nir"]


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs (needs mount rights: root in a container; skipped elsewhere)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True)
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)


def _big_model(path: Path) -> Path:
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([300])), nir.Linear(np.random.default_rng(0).normal(size=(2000, 300))),
        nir.LIF(*([np.ones(2000)] * 4)), nir.Output(np.array([2000])),
    )  # fmt: skip
    nir.write(str(path), graph)
    return path


def test_a_real_full_disk_is_one_line_and_leaves_nothing(small_disk: Path, tmp_path: Path) -> None:
    model = _big_model(tmp_path / "big.nir")
    done = _cli("compile", str(model), "--dt", "1e-3", "-o", str(small_disk / "big.ndp"))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "not enough free space" in done.stderr and str(small_disk) in done.stderr
    assert list(small_disk.iterdir()) == []
    # the estimate passes but the disk fills while writing (another writer took the space): still one line
    (small_disk / "filler").write_bytes(b"\0" * (1 << 20))
    small = tmp_path / "small.nir"
    graph = nir.NIRGraph.from_list(
        nir.Input(np.array([200])), nir.Linear(np.ones((400, 200))), nir.LIF(*([np.ones(400)] * 4)),
        nir.Output(np.array([400])),
    )  # fmt: skip
    nir.write(str(small), graph)
    done = _cli("compile", str(small), "--dt", "1e-3", "-o", str(small_disk / "small.ndp"))
    assert done.returncode in (0, 2) and "Traceback" not in done.stderr and done.returncode != 139, done.stderr
    assert sorted(p.name for p in small_disk.iterdir()) in (["filler"], ["filler", "small.ndp"])


def test_a_read_only_disk_is_one_line(small_disk: Path, tmp_path: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    done = _cli("compile", str(_big_model(tmp_path / "m.nir")), "--dt", "1e-3", "-o", str(small_disk / "m.ndp"))
    assert done.returncode == 2 and "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) <= 2
    assert "cannot write" in done.stderr and str(small_disk) in done.stderr


def test_an_interrupt_swallowed_by_a_weakref_callback_comes_back() -> None:
    """Python prints and drops a KeyboardInterrupt raised in a weakref callback; the CLI raises it again."""
    code = (
        "import time, weakref\n"
        "from neurodeploy.cli_signals import redeliver_lost_interrupts\n"
        "redeliver_lost_interrupts()\n"
        "class A: pass\n"
        "def callback(_):\n"
        "    raise KeyboardInterrupt\n"
        "a = A(); ref = weakref.ref(a, callback)\n"
        "try:\n"
        "    del a\n"
        "    for _ in range(2000): time.sleep(0.001)\n"
        "    print('lost')\n"
        "except KeyboardInterrupt:\n"
        "    print('raised again')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "raised again" and done.stderr == "", done.stderr
